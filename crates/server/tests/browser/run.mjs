// Drives Debian's Chromium (never a downloaded browser) through playwright-core
// for crates/server/tests/browser.rs.
//
//   node run.mjs '<json>'   with {scenario: "lead" | "consent", start_url,
//                                 tribute_origin, email, chromium?}
//
// Prints one JSON object per line on stdout: checkpoints ({"step": ...}) and,
// at the end, {"step": "done", ...} or {"step": "error", "message"}. At a
// checkpoint whose object has "wait": true it reads one line from stdin
// before going on, so the Rust test can look at the database in between.

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const opts = JSON.parse(process.argv[2] ?? '{}');
const TIMEOUT = 20_000;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function checkpoint(obj) {
  emit({ ...obj, wait: true });
  const next = await lines.next();
  if (next.done) throw new Error('stdin closed at checkpoint ' + obj.step);
}

const isCollectPost = (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/collect';

async function main() {
  const browser = await chromium.launch({
    executablePath: opts.chromium ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    // A new context is a fresh profile: no cookies, no storage. Headless
    // Chromium says "HeadlessChrome", which Tribute rightly takes for a bot:
    // present the same browser as a person's.
    const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${browser.version()} Safari/537.36`;
    const context = await browser.newContext({ userAgent });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const seen = []; // every request to Tribute, in order
    const collected = []; // every POST /collect with its answer
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('request', (r) => {
      if (r.url().startsWith(opts.tribute_origin)) {
        seen.push({ method: r.method(), path: new URL(r.url()).pathname });
      }
    });
    page.on('response', async (r) => {
      if (!isCollectPost(r.request())) return;
      collected.push({ status: r.status(), body: JSON.parse(r.request().postData() ?? 'null') });
    });

    // What the page has stored, as the page itself sees it.
    const storage = async () => ({
      document_cookie: await page.evaluate(() => document.cookie),
      local_storage: await page.evaluate(() => Object.fromEntries(Object.entries(localStorage))),
      cookies: (await context.cookies()).map((c) => ({ name: c.name, value: c.value, domain: c.domain })),
      status: await page.evaluate(() => window.tribute && window.tribute.status),
    });
    const ready = async () => {
      await page.waitForFunction(() => window.tribute && window.tribute.ready);
      await page.evaluate(() => window.tribute.ready);
    };
    // Wait for a POST /collect answered 200 whose batch holds an event of `type`.
    const answered = (type) =>
      page.waitForResponse(
        (r) =>
          isCollectPost(r.request()) &&
          r.status() === 200 &&
          (JSON.parse(r.request().postData() ?? '{}').events ?? []).some((e) => e.type === type),
      );

    if (opts.scenario === 'lead') {
      const pageView = answered('page_view');
      await page.goto(opts.start_url);
      await ready();
      await pageView;
      const lead = answered('lead');
      await page.fill('#email', opts.email);
      await page.click('#submit');
      await lead;
      await page.waitForSelector('#done:has-text("thanks")');
      emit({ step: 'done', url: page.url(), ...(await storage()), seen, collected, errors });
    } else if (opts.scenario === 'consent') {
      await page.goto(opts.start_url);
      await ready();
      // Calls while waiting for consent, then everything queued is flushed.
      await page.evaluate(async (email) => {
        window.tribute.track('Pricing Viewed', { plan: 'pro' });
        window.tribute.lead({ email });
        await window.tribute.flush();
      }, opts.email);
      await checkpoint({ step: 'before_consent', url: page.url(), ...(await storage()), seen: [...seen], collected: [...collected], errors });
      const sent = answered('lead');
      await page.evaluate(async () => {
        window.tribute.consent(true);
        await window.tribute.flush();
      });
      await sent;
      emit({ step: 'done', url: page.url(), ...(await storage()), seen, collected, errors });
    } else {
      throw new Error('unknown scenario ' + opts.scenario);
    }
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    emit({ step: 'error', message: String(e && e.stack ? e.stack : e) });
    process.exit(1);
  },
);
