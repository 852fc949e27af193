//! The click rules: bots and implausible browsers, velocity per IP,
//! partner and link, duplicate clicks, paid-search click ids and banned
//! referrers. A click with any reason is flagged and kept, and left out of
//! unique clicks and attribution.
//!
//! Each rule is a small type implementing [`ClickRule`]: its name (from
//! [`RULES`](super::config::RULES)), what it checks, and a `check` that
//! returns the evidence when it fires. [`assess_click`] runs them all with
//! the program's weights. [`Velocity`] is the in-memory sliding-window
//! counter the server keeps to fill in [`ClickCounts`].
//!
//! Pure: the time of the click comes in [`ClickFacts::at`].

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;

use super::{FraudConfig, Reason};
use crate::click::BotDetector;

/// What the edge knows about one click (the server fills it from the
/// request).
#[derive(Debug, Clone, Copy)]
pub struct ClickFacts<'a> {
    pub user_agent: Option<&'a str>,
    pub accept_language: Option<&'a str>,
    /// The `Sec-CH-UA` client hint (Chromium browsers send it).
    pub sec_ch_ua: Option<&'a str>,
    /// The `Referer` header: a full URL.
    pub referrer: Option<&'a str>,
    /// The query parameters the click carried (`gclid`, `utm_campaign`, …),
    /// decoded, in order.
    pub destination_query: &'a [(String, String)],
    /// The keyed hash of the full IP (the address itself never gets here).
    pub ip_hash: u64,
    /// The keyed hash of IP and user agent.
    pub visitor_hash: u64,
    pub partner_id: &'a str,
    pub link_id: &'a str,
    pub at: DateTime<Utc>,
}

/// Recent counts the server keeps (sliding windows, see [`Velocity`]),
/// including the click being assessed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickCounts {
    pub ip_last_minute: u32,
    pub ip_last_hour: u32,
    pub partner_last_minute: u32,
    pub link_last_minute: u32,
    /// Seconds since the same visitor last clicked the same link, if they
    /// did within the last hour.
    pub same_visitor_link_seconds_ago: Option<u32>,
}

/// Everything a click rule may look at.
#[derive(Clone, Copy)]
pub struct ClickInput<'a> {
    pub facts: &'a ClickFacts<'a>,
    pub counts: &'a ClickCounts,
    pub config: &'a FraudConfig,
    pub bots: &'a BotDetector,
}

/// One click rule.
pub trait ClickRule: Sync {
    /// The rule's name in [`RULES`](super::config::RULES), which also
    /// names its weight in [`FraudConfig::weights`].
    fn name(&self) -> &'static str;

    /// What the rule checks, for the owner (the rule table's text).
    fn description(&self) -> &'static str {
        super::config::RULES
            .iter()
            .find(|(name, _, _)| *name == self.name())
            .map_or("", |(_, _, text)| *text)
    }

    /// The evidence, if the click breaks the rule. Weights are applied by
    /// [`assess_click`], not here.
    fn check(&self, input: &ClickInput<'_>) -> Option<String>;
}

/// Every click rule, in the order their reasons are listed.
pub static CLICK_RULES: [&dyn ClickRule; 8] = [
    &BotUserAgent,
    &ImplausibleBrowser,
    &IpVelocity,
    &PartnerVelocity,
    &LinkVelocity,
    &DuplicateClick,
    &PaidSearchClick,
    &BannedReferrer,
];

/// The reasons a click looks wrong, each with its weight in this program.
///
/// A rule whose weight is 0 is not even evaluated. When fraud checks are
/// off for the program (`enabled: false`), only `bot_user_agent` runs:
/// bots are flagged regardless.
pub fn assess_click(
    f: &ClickFacts<'_>,
    counts: &ClickCounts,
    config: &FraudConfig,
    bots: &BotDetector,
) -> Vec<Reason> {
    let input = ClickInput {
        facts: f,
        counts,
        config,
        bots,
    };
    CLICK_RULES
        .iter()
        .filter(|rule| config.enabled || rule.name() == BotUserAgent.name())
        .filter_map(|rule| {
            let weight = config.weight(rule.name());
            if weight == 0 {
                return None;
            }
            rule.check(&input).map(|evidence| Reason {
                rule: rule.name().to_owned(),
                evidence,
                contribution: weight,
            })
        })
        .collect()
}

/// `bot_user_agent`: a known bot or crawler (the `isbot` pattern list), or
/// no user agent at all.
#[derive(Debug, Clone, Copy)]
pub struct BotUserAgent;

impl ClickRule for BotUserAgent {
    fn name(&self) -> &'static str {
        "bot_user_agent"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let ua = input.facts.user_agent.map(str::trim).unwrap_or_default();
        if ua.is_empty() {
            return Some("no user agent".into());
        }
        input
            .bots
            .is_bot(Some(ua))
            .then(|| format!("bot user agent \"{}\"", excerpt(ua, 60)))
    }
}

/// `implausible_browser`: no `Accept-Language` (every browser sends one),
/// or the markers of a headless or automated browser. Electron is not a
/// marker: it is real desktop apps.
#[derive(Debug, Clone, Copy)]
pub struct ImplausibleBrowser;

/// Markers of automation in a user agent, matched case-insensitively.
const HEADLESS_UA_MARKERS: &[&str] = &[
    "HeadlessChrome",
    "PhantomJS",
    "puppeteer",
    "Playwright",
    "selenium",
    "webdriver",
];

impl ClickRule for ImplausibleBrowser {
    fn name(&self) -> &'static str {
        "implausible_browser"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let f = input.facts;
        let mut found = Vec::new();
        if f.accept_language.is_none_or(|l| l.trim().is_empty()) {
            found.push("no Accept-Language".to_owned());
        }
        if let Some(ua) = f.user_agent {
            let lower = ua.to_ascii_lowercase();
            if let Some(marker) = HEADLESS_UA_MARKERS
                .iter()
                .find(|m| lower.contains(&m.to_ascii_lowercase()))
            {
                found.push(format!("{marker} in user agent"));
            }
        }
        if f.sec_ch_ua
            .is_some_and(|hint| hint.to_ascii_lowercase().contains("headless"))
        {
            found.push("Headless in Sec-CH-UA".to_owned());
        }
        (!found.is_empty()).then(|| found.join("; "))
    }
}

/// `ip_velocity`: more clicks from one IP than the program allows within a
/// minute or within an hour.
#[derive(Debug, Clone, Copy)]
pub struct IpVelocity;

impl ClickRule for IpVelocity {
    fn name(&self) -> &'static str {
        "ip_velocity"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let (c, v) = (input.counts, &input.config.velocity);
        let mut found = Vec::new();
        if c.ip_last_minute > v.per_ip_per_minute {
            found.push(format!(
                "{} clicks from this IP in a minute (limit {})",
                c.ip_last_minute, v.per_ip_per_minute
            ));
        }
        if c.ip_last_hour > v.per_ip_per_hour {
            found.push(format!(
                "{} clicks from this IP in an hour (limit {})",
                c.ip_last_hour, v.per_ip_per_hour
            ));
        }
        (!found.is_empty()).then(|| found.join("; "))
    }
}

/// `partner_velocity`: more clicks for one partner within a minute than the
/// program allows.
#[derive(Debug, Clone, Copy)]
pub struct PartnerVelocity;

impl ClickRule for PartnerVelocity {
    fn name(&self) -> &'static str {
        "partner_velocity"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let (n, limit) = (
            input.counts.partner_last_minute,
            input.config.velocity.per_partner_per_minute,
        );
        (n > limit).then(|| format!("{n} clicks for this partner in a minute (limit {limit})"))
    }
}

/// `link_velocity`: more clicks on one link within a minute than the
/// program allows.
#[derive(Debug, Clone, Copy)]
pub struct LinkVelocity;

impl ClickRule for LinkVelocity {
    fn name(&self) -> &'static str {
        "link_velocity"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let (n, limit) = (
            input.counts.link_last_minute,
            input.config.velocity.per_link_per_minute,
        );
        (n > limit).then(|| format!("{n} clicks on this link in a minute (limit {limit})"))
    }
}

/// `duplicate_click`: the same visitor clicked the same link within the
/// program's `duplicate_click_seconds` (inclusive; 0 turns the check off).
#[derive(Debug, Clone, Copy)]
pub struct DuplicateClick;

impl ClickRule for DuplicateClick {
    fn name(&self) -> &'static str {
        "duplicate_click"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let window = input.config.duplicate_click_seconds;
        let ago = input.counts.same_visitor_link_seconds_ago?;
        (window > 0 && ago <= window)
            .then(|| format!("same visitor clicked this link {ago} s before (window {window} s)"))
    }
}

/// `paid_search_click`: where the program forbids brand bidding, a click
/// carrying a paid-search click id, unless its `utm_campaign` is on the
/// program's allowlist (exact, case-insensitive; the first `utm_campaign`
/// counts, and an empty one is none).
#[derive(Debug, Clone, Copy)]
pub struct PaidSearchClick;

/// The click ids ad networks append to their paid clicks: Google (three),
/// Meta, Microsoft, TikTok.
pub const PAID_CLICK_IDS: &[&str] = &["gclid", "gbraid", "wbraid", "fbclid", "msclkid", "ttclid"];

impl ClickRule for PaidSearchClick {
    fn name(&self) -> &'static str {
        "paid_search_click"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let config = input.config;
        if !config.forbid_brand_bidding {
            return None;
        }
        let query = input.facts.destination_query;
        let ids: Vec<&str> = PAID_CLICK_IDS
            .iter()
            .copied()
            .filter(|id| {
                query
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(id) && !v.trim().is_empty())
            })
            .collect();
        if ids.is_empty() {
            return None;
        }
        let campaign = query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("utm_campaign"))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty());
        let ids = ids.join(", ");
        match campaign {
            Some(c) if config.allowed_campaigns.iter().any(|a| same_text(a, c)) => None,
            Some(c) => Some(format!(
                "{ids} present, utm_campaign={} not allowed",
                excerpt(c, 60)
            )),
            None => Some(format!("{ids} present, no utm_campaign")),
        }
    }
}

/// `banned_referrer`: the referrer's host is a banned domain or a subdomain
/// of one. Hosts and banned entries are compared lower-case, without
/// trailing dots or a leading `www.`, and regardless of port; only `http`
/// and `https` referrers with a domain name are checked, so a malformed
/// one (or an IP address) never matches.
#[derive(Debug, Clone, Copy)]
pub struct BannedReferrer;

impl ClickRule for BannedReferrer {
    fn name(&self) -> &'static str {
        "banned_referrer"
    }

    fn check(&self, input: &ClickInput<'_>) -> Option<String> {
        let banned = &input.config.banned_referrers;
        if banned.is_empty() {
            return None;
        }
        let host = referrer_host(input.facts.referrer?)?;
        let host = bare_domain(&host);
        let hit = banned.iter().find(|b| {
            let b = bare_domain(b);
            !b.is_empty() && is_same_or_subdomain(&host, &b)
        })?;
        Some(format!(
            "referrer {} is under banned {}",
            excerpt(&host, 80),
            bare_domain(hit)
        ))
    }
}

/// The domain of an `http(s)` referrer, if it has one.
fn referrer_host(referrer: &str) -> Option<String> {
    let url = url::Url::parse(referrer.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.host()? {
        url::Host::Domain(d) => Some(d.to_owned()),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => None,
    }
}

/// A domain as compared: lower-case, no trailing dots, no leading `www.`.
fn bare_domain(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    match d.strip_prefix("www.") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => d,
    }
}

/// `host` is `domain` or ends with `.domain` (so `notspam.example` is not
/// under `spam.example`).
fn is_same_or_subdomain(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// Case-insensitive equality of whole strings (Unicode-aware, no copies).
fn same_text(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// At most `max` characters of text that came from the visitor, with
/// control characters replaced, for evidence.
fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------
// Sliding windows.

/// Counts over a sliding window kept in fixed buckets: `(bucket, clicks)`,
/// oldest first, with a running total.
#[derive(Debug, Clone, Default)]
struct Window {
    buckets: VecDeque<(u32, u32)>,
    total: u32,
}

impl Window {
    /// Forget the buckets outside the `span` buckets ending at `current`.
    fn expire(&mut self, current: u32, span: u32) {
        while let Some(&(bucket, n)) = self.buckets.front() {
            if bucket.saturating_add(span) > current {
                break;
            }
            self.total = self.total.saturating_sub(n);
            self.buckets.pop_front();
        }
    }

    /// Count one click in `bucket` and return the clicks in the window. A
    /// click older than the newest bucket (clocks of concurrent requests
    /// differ slightly) is counted in the newest.
    fn add(&mut self, bucket: u32, span: u32) -> u32 {
        let newest = self.buckets.back().map_or(0, |&(b, _)| b);
        let bucket = bucket.max(newest);
        self.expire(bucket, span);
        match self.buckets.back_mut() {
            Some((b, n)) if *b == bucket => *n = n.saturating_add(1),
            _ => self.buckets.push_back((bucket, 1)),
        }
        self.total = self.total.saturating_add(1);
        self.total
    }

    /// The newest bucket (for eviction), if any.
    fn newest(&self) -> Option<u32> {
        self.buckets.back().map(|&(b, _)| b)
    }
}

/// Per-IP windows: a minute in seconds and an hour in minutes.
#[derive(Debug, Clone, Default)]
struct IpWindows {
    minute: Window,
    hour: Window,
    /// The last click, in seconds (for eviction).
    last: u32,
}

/// In-memory sliding-window click counters for [`ClickCounts`]: per IP
/// hash over a minute and an hour, per partner and per link over a minute,
/// and the last click of each visitor on each link.
///
/// **Windows.** Minute windows use 60 one-second buckets: a click counts
/// until 60 s after the second it fell in (59 s later it still counts,
/// 60 or 61 s later it does not). The hour window uses 60 one-minute
/// buckets, so it spans between 59 and 60 minutes. Counts are computed on
/// each [`record`](Self::record) from the buckets themselves, so they do
/// not depend on when [`prune`](Self::prune) last ran. Times are whole
/// seconds since 1970 in a `u32` (good until 2106).
///
/// **Memory bound.** Each window holds at most 60 buckets of 8 bytes, so
/// one IP costs at most about 1 KiB and one partner or link about 0.5 KiB
/// (a key with one click a few dozen bytes). Each of the four maps (IPs,
/// partners, links, visitor-and-link pairs) holds at most `max_keys` keys
/// (default [`Velocity::DEFAULT_MAX_KEYS`], 65,536): about 64 MiB for the
/// IPs, 32 MiB each for partners and links and 6 MiB for the pairs in the
/// worst case, typically a few MiB. When a map is full, what is older than
/// an hour is dropped first; if that frees less than an eighth of it, the
/// least recently active eighth is dropped (so the linear pass is paid once
/// per `max_keys / 8` new keys). Under a flood of new keys the oldest,
/// quiet ones are forgotten, never the ones being counted.
///
/// Not synchronised: the server keeps it behind a `Mutex` (each call is
/// short and never awaits).
#[derive(Debug, Clone)]
pub struct Velocity {
    ips: FxHashMap<u64, IpWindows>,
    partners: FxHashMap<String, Window>,
    links: FxHashMap<String, Window>,
    /// Last click (seconds) of a visitor on a link.
    /// Keyed by the visitor hash and a hash of the link id.
    seen: FxHashMap<(u64, u64), u32>,
    max_keys: usize,
}

impl Default for Velocity {
    fn default() -> Self {
        Self::new()
    }
}

const MINUTE: u32 = 60;
const HOUR: u32 = 3_600;

impl Velocity {
    /// Keys per map unless told otherwise.
    pub const DEFAULT_MAX_KEYS: usize = 65_536;

    /// An empty counter holding at most [`Self::DEFAULT_MAX_KEYS`] keys per
    /// map.
    pub fn new() -> Self {
        Self::with_max_keys(Self::DEFAULT_MAX_KEYS)
    }

    /// An empty counter holding at most `max_keys` (at least 8) keys in each
    /// of its maps.
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            ips: FxHashMap::default(),
            partners: FxHashMap::default(),
            links: FxHashMap::default(),
            seen: FxHashMap::default(),
            max_keys: max_keys.max(8),
        }
    }

    /// Count a click and return the counts including it.
    pub fn record(
        &mut self,
        ip_hash: u64,
        partner: &str,
        link: &str,
        visitor_hash: u64,
        at: DateTime<Utc>,
    ) -> ClickCounts {
        let now = seconds(at);
        let cap = self.max_keys;

        if !self.ips.contains_key(&ip_hash) {
            make_room(&mut self.ips, cap, now, HOUR, |w| w.last);
        }
        let ip = self.ips.entry(ip_hash).or_default();
        ip.last = ip.last.max(now);
        let ip_last_minute = ip.minute.add(now, MINUTE);
        let ip_last_hour = ip.hour.add(now / MINUTE, HOUR / MINUTE);

        let partner_last_minute = count_minute(&mut self.partners, partner, now, cap);
        let link_last_minute = count_minute(&mut self.links, link, now, cap);

        // Keys without an allocation: a link id as its 64-bit hash (two
        // links of one visitor colliding within an hour is negligible).
        let key = (visitor_hash, rustc_hash::FxBuildHasher.hash_one(link));
        let previous = self.seen.get(&key).copied();
        if previous.is_none() {
            // A pair matters while its last click is at most an hour old.
            make_room(&mut self.seen, cap, now, HOUR + 1, |&t| t);
        }
        // Keep the newest time if requests arrive slightly out of order.
        let last = previous.map_or(now, |p| p.max(now));
        self.seen.insert(key, last);
        let same_visitor_link_seconds_ago = previous
            .map(|p| now.saturating_sub(p))
            .filter(|ago| *ago <= HOUR);

        ClickCounts {
            ip_last_minute,
            ip_last_hour,
            partner_last_minute,
            link_last_minute,
            same_visitor_link_seconds_ago,
        }
    }

    /// Forget what is older than an hour (and minute windows' buckets older
    /// than a minute), dropping keys left empty. Call it every minute or
    /// so; the counts do not depend on it, only the memory does.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        prune_maps(
            &mut self.ips,
            &mut self.partners,
            &mut self.links,
            &mut self.seen,
            seconds(now),
        );
    }

    /// How many keys the counter holds in all (IPs, partners, links and
    /// visitor-and-link pairs).
    pub fn len(&self) -> usize {
        self.ips.len() + self.partners.len() + self.links.len() + self.seen.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn prune_maps(
    ips: &mut FxHashMap<u64, IpWindows>,
    partners: &mut FxHashMap<String, Window>,
    links: &mut FxHashMap<String, Window>,
    seen: &mut FxHashMap<(u64, u64), u32>,
    now: u32,
) {
    ips.retain(|_, w| {
        w.minute.expire(now, MINUTE);
        w.hour.expire(now / MINUTE, HOUR / MINUTE);
        w.hour.total > 0
    });
    for map in [partners, links] {
        map.retain(|_, w| {
            w.expire(now, MINUTE);
            w.total > 0
        });
    }
    seen.retain(|_, t| now.saturating_sub(*t) <= HOUR);
}

/// Count a click in a minute window keyed by `key`, making room first if
/// the key is new and the map is full.
fn count_minute(map: &mut FxHashMap<String, Window>, key: &str, now: u32, cap: usize) -> u32 {
    if let Some(w) = map.get_mut(key) {
        return w.add(now, MINUTE);
    }
    make_room(map, cap, now, MINUTE, |w| w.newest().unwrap_or(0));
    let mut w = Window::default();
    let n = w.add(now, MINUTE);
    map.insert(key.to_owned(), w);
    n
}

/// Before adding a key to a full map: drop the entries whose last activity
/// (`last`, in seconds) is more than `keep_for` seconds before `now`; if
/// that leaves less than an eighth free, drop the least recently active
/// until an eighth is free.
fn make_room<K: Eq + Hash + Clone, V>(
    map: &mut FxHashMap<K, V>,
    cap: usize,
    now: u32,
    keep_for: u32,
    last: impl Fn(&V) -> u32,
) {
    if map.len() < cap {
        return;
    }
    let target = cap - cap / 8;
    map.retain(|_, v| now.saturating_sub(last(v)) < keep_for);
    if map.len() <= target {
        return;
    }
    let mut ages: Vec<(u32, K)> = map.iter().map(|(k, v)| (last(v), k.clone())).collect();
    let excess = ages.len() - target;
    ages.select_nth_unstable_by_key(excess - 1, |(t, _)| *t);
    for (_, k) in &ages[..excess] {
        map.remove(k);
    }
}

/// Whole seconds since 1970, clamped to `u32`.
fn seconds(at: DateTime<Utc>) -> u32 {
    u32::try_from(at.timestamp().max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "clicks_tests.rs"]
mod tests;
