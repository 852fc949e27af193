// Tribute first-party snippet, served as /t.js (comment lines and indentation
// are stripped when served; there is no build step).
//
// Embed on every page of the site:
//   <script src="https://TRIBUTE/t.js" data-key="WRITE_KEY" async></script>
// data-key: the program's ingest write key (public-safe: it can only send
//   events). The endpoint is the script's own src without "/t.js".
// Calls made before the script loads are replayed from an array:
//   window.tribute = window.tribute || []; tribute.push(['lead', {email: e}]);
//
// API (window.tribute): track(name, props), identify(userId, traits),
// lead(props), conversion(props: value in minor units or revenue, currency,
// order_id, products, coupon), consent(true|false), flush() -> Promise,
// ready (a Promise settled once the program's settings are known), and
// status: "loading" | "waiting" (opt-in, no answer yet) | "on" | "off".
//
// The landing URL's tid (click id), via (partner slug or link code) and
// coupon are kept with an anonymous id in the first-party cookie _tribute
// and in localStorage (key "tribute"). Nothing is stored and nothing is sent
// while the program's consent mode is opt_in and tribute.consent(true) has
// not been called, nor (when the program honours them) under Do Not Track or
// Global Privacy Control, unless the visitor then explicitly consents.
(function (w, d) {
  'use strict';
  var me = d.currentScript, pre = w.tribute;
  if (!me || (pre && pre.status)) return;
  var key = me.getAttribute('data-key');
  var base = me.src.replace(/\/t\.js([?#].*)?$/, '');
  var N = '_tribute', nav = navigator;
  // cfg: the program's settings; ok: may store and send; choice: explicit consent
  var cfg, ok, choice, st = {}, q = [], timer;
  var u = new URLSearchParams(location.search);
  var tid = u.get('tid'), via = u.get('via'), coupon = u.get('coupon');
  // A malformed value in the URL must not spoil every later event.
  if (tid && !/^clk_[A-Za-z0-9]{1,64}$/.test(tid)) tid = null;
  if (coupon && !/^[\w-]{2,64}$/.test(coupon)) coupon = null;
  if (via && via.length > 64) via = null;

  function uuid() {
    var c = w.crypto;
    if (c.randomUUID) return c.randomUUID();
    return Array.from(c.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join('');
  }

  // The stored state: a anonymous id, t click id, v via, c coupon, u user id,
  // k consent (1 given, 0 refused).
  function read() {
    var m = d.cookie.match(/(?:^|;\s*)_tribute=([^;]*)/);
    try { return JSON.parse(m ? decodeURIComponent(m[1]) : localStorage.getItem('tribute')) || {}; } catch (e) { return {}; }
  }

  function cookie(value, age) {
    var dom = (cfg.cookie_domain || '').replace(/^\./, ''), h = location.hostname;
    var c = N + '=' + value + ';path=/;SameSite=Lax;max-age=' + age;
    if (dom && (h == dom || h.slice(-dom.length - 1) == '.' + dom)) c += ';domain=' + dom;
    if (location.protocol == 'https:') c += ';Secure';
    d.cookie = c;
  }

  function save() {
    cookie(encodeURIComponent(JSON.stringify(st)), cfg.cookie_days * 86400);
    try { localStorage.setItem('tribute', JSON.stringify(st)); } catch (e) {}
  }

  function wipe() {
    cookie('', 0);
    try { localStorage.removeItem('tribute'); } catch (e) {}
  }

  // Decide what may happen, once the settings are known and on every consent call.
  function decide() {
    if (!cfg) return;
    var prev = read();
    var signal = (cfg.honor_dnt && (nav.doNotTrack == '1' || w.doNotTrack == '1')) ||
      (cfg.honor_gpc && nav.globalPrivacyControl === true);
    var given = choice != null ? choice : prev.k != null ? prev.k == 1 : null;
    ok = given != null ? given : cfg.consent == 'opt_out' && !signal;
    if (ok) {
      // A user id from an identify() made before the settings came is kept.
      if (st.u) prev.u = st.u;
      st = prev;
      if (choice) st.k = 1;
      st.a = st.a || uuid();
      if (tid) st.t = tid;
      if (via) st.v = via;
      if (coupon) st.c = coupon;
      save();
      api.status = 'on';
      schedule();
    } else {
      if (choice === false) {
        wipe();
        // Opt-out mode tracks by default: remember the refusal, and only it.
        if (cfg.consent == 'opt_out') {
          st = {k: 0};
          save();
        }
      }
      api.status = given == null && !signal ? 'waiting' : 'off';
      // Waiting keeps events in memory only, to send if consent comes.
      if (api.status == 'off') q = [];
    }
  }

  function add(type, name, props, extra) {
    if (ok === false && api.status == 'off') return;
    props = Object.assign({}, props);
    var e = Object.assign({type: type, event_id: uuid(), at: Date.now(), properties: props}, extra);
    if (name) e.name = String(name);
    if (props.email) e.email = String(props.email), delete props.email;
    if (q.length < 200) q.push(e);
    schedule();
  }

  // Fill in the identifiers when the event leaves: they may be known only now.
  function wire(e) {
    e.anonymous_id = st.a;
    if (st.t) e.click_id = st.t;
    if (st.u && !e.user_id) e.user_id = st.u;
    if (e.type == 'conversion' && !e.coupon && st.c) e.coupon = st.c;
    // Age, not a time: the visitor's clock may be wrong.
    e.ago = Math.max(0, Date.now() - e.at);
    delete e.at;
    return e;
  }

  // Send a batch; one retry after a network error or a server error.
  function send(batch, beacon, retry) {
    var url = base + '/collect', body = JSON.stringify({key: key, events: batch});
    // A string body goes as text/plain: a simple request, no CORS preflight.
    if (beacon && nav.sendBeacon && nav.sendBeacon(url, body)) return Promise.resolve();
    return fetch(url, {method: 'POST', body: body, credentials: 'omit', keepalive: body.length < 60000})
      .then((r) => {
        if (r.status >= 500 || r.status == 429) throw r;
      })
      .catch(() => retry || new Promise((go) => setTimeout(go, 1000)).then(() => send(batch, beacon, 1)));
  }

  function flush(beacon) {
    clearTimeout(timer);
    timer = 0;
    if (!ok || !q.length) return Promise.resolve();
    var batch = q.splice(0, 50).map(wire);
    return Promise.all([send(batch, beacon), flush(beacon)]).then(() => {});
  }

  function schedule() {
    if (ok && q.length && !timer) timer = setTimeout(flush, 250);
  }

  var api = {
    status: 'loading',
    track: (name, props) => add('custom', name, props),
    identify: (id, traits) => {
      if (id && typeof id == 'object') traits = id, id = null;
      if (id) {
        st.u = String(id);
        if (ok) save();
      }
      add('identify', null, traits, {user_id: id ? String(id) : undefined});
    },
    lead: (props) => add('lead', null, props),
    conversion: (props) => add('conversion', null, props, {coupon: (props || {}).coupon}),
    consent: (yes) => {
      choice = !!yes;
      decide();
    },
    flush: () => flush()
  };

  api.ready = fetch(base + '/collect/config?key=' + encodeURIComponent(key), {credentials: 'omit'})
    .then((r) => {
      if (!r.ok) throw r;
      return r.json();
    })
    .then((c) => {
      cfg = c;
      decide();
    })
    .catch(() => (api.status = 'off', q = []));

  w.tribute = api;
  add('page_view', null, {url: location.href, title: d.title, referrer: d.referrer}, {via: via || undefined, coupon: coupon || undefined});
  if (Array.isArray(pre)) pre.forEach((c) => api[c[0]] && api[c[0]](...c.slice(1)));
  // Leaving the page: send what is left with a beacon, which outlives the page.
  d.addEventListener('visibilitychange', () => d.visibilityState == 'hidden' && flush(1));
  w.addEventListener('pagehide', () => flush(1));
})(window, document);
