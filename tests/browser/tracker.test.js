// Browser tests for the tally tracker (assets/tracker.min.js, served as /t.js).
//
// Run: tests/browser/run.sh   (or `node --test tracker.test.js` in this folder)
//
// A small Node HTTP server plays the website: pages on http://www.example.org:PORT/
// (and a referring site on http://search.example.net:PORT/). Chromium maps those
// names to 127.0.0.1 with --host-resolver-rules.
//
// Two modes:
//  * default: the same Node server is also a FAKE collector. It serves t.js from
//    assets/tracker.min.js on http://stats.example.org:PORT/t.js and records every
//    POST .../api/event (body, content type, cookies, host). The tests assert on
//    those records.
//  * TALLY_URL=http://stats.example.org:PORT (a running tally server): the pages load
//    TALLY_URL/t.js and send to TALLY_URL/api/event. The browser flows run the
//    same way, but assertions on recorded bodies are skipped (check the rows in
//    ClickHouse instead); the tests still check that t.js loads from the server
//    and that the page raised no errors.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const TALLY_URL = (process.env.TALLY_URL || '').replace(/\/+$/, '');
const FAKE = !TALLY_URL;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// TRACKER_JS: serve another build (e.g. to check that a broken tracker fails these tests).
const TRACKER = process.env.TRACKER_JS || path.join(__dirname, '..', '..', 'assets', 'tracker.min.js');
const DOMAIN = 'www.example.org';
const TEST_TIMEOUT = 30000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- site + fake collector

let server;
let port;
let events = []; // every POST .../api/event seen by the fake: {host, path, ct, cookie, body}
let preflights = []; // every OPTIONS request (the tracker must never cause one)
let diags = []; // POST /diag from the test's own sendBeacon spy (see spyBeacon)
let refuseNext = 0; // the fake answers this many beacons with 503 + Retry-After: 2
let refused = []; // bodies it refused
let slowMs = 0; // the fake records each beacon at once but answers it only after this long

const site = () => `http://${DOMAIN}:${port}`;
const statsOrigin = () => TALLY_URL || `http://stats.example.org:${port}`;

// The <script> tag as a site owner would paste it.
function scriptTag({ api = true, hash = false, allowLocalhost = false, extra = '' } = {}) {
  const attrs = [`defer`, `data-domain="${DOMAIN}"`];
  if (api) {
    // Fake mode: a first-party proxy path, so the test can tell data-api was used.
    attrs.push(`data-api="${TALLY_URL ? TALLY_URL + '/api/event' : site() + '/proxy/api/event'}"`);
  }
  if (hash) attrs.push('data-hash');
  if (allowLocalhost) attrs.push('data-allow-localhost');
  if (extra) attrs.push(extra);
  attrs.push(`src="${statsOrigin()}/t.js"`);
  return `<script ${attrs.join(' ')}></script>`;
}

function pageHtml(opts = {}, head = '', body = '') {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tally test page</title>
${head}
${scriptTag(opts)}
</head><body style="margin:0">
${body}
<button id="go" onclick="history.pushState({}, '', '/spa/other')">go</button>
<a id="sec" href="#section2">section 2</a>
<div style="height:3000px">a tall page, so scroll depth means something</div>
<p id="section2">end</p>
</body></html>`;
}

// Links and a form for the built-in events (outbound links, downloads, form submissions).
// `#mail` and `#svg` cancel their own navigation, so clicking them leaves the page in place.
const outboundUrl = () => `http://search.example.net:${port}/results?utm_source=x&who=jan#top`;
const LINKS = () => `
<a id="out" href="${outboundUrl()}"><span id="out-inner">partner</span></a>
<a id="pdf" href="/files/report.PDF?session=abc">report</a>
<a id="odt" href="/files/notes.odt">notes</a>
<a id="internal" href="/spa/other">internal</a>
<a id="mail" href="mailto:jan@example.nl" onclick="event.preventDefault()">mail</a>
<svg width="40" height="20"><a id="svg" href="${outboundUrl()}" onclick="event.preventDefault()"><rect width="40" height="20"/></a></svg>
<form id="form" action="/thanks" method="post"><input name="q" value="x"><button id="send">send</button></form>`;
const EXT = 'data-outbound-links data-file-downloads data-form-submissions';

// Snippet that queues calls made before t.js has loaded (defer).
const QUEUE_SNIPPET = `<script>
window.tally = window.tally || function () { (window.tally.q = window.tally.q || []).push(arguments) };
tally('Early', {props: {queued: true}});
</script>`;

// Plausible's own snippet and a call made before the script loaded: a page written for
// Plausible's script, with tally's script in its place.
const PLAUSIBLE_SNIPPET = `<script>
window.plausible = window.plausible || function () { (window.plausible.q = window.plausible.q || []).push(arguments) };
plausible('Bad address', {u: 'http://', callback: function () { throw new Error('a site bug'); }});
plausible('Early P', {props: {via: 'plausible'}});
plausible('After', {props: {n: '3'}});
</script>`;

// Elements tagged with Plausible's class names (and tally's), and one that only looks so.
const TAGGED = () => `
<a id="t-link" class="btn plausible-event-name=Sign+up plausible-event-plan=Pro+yearly" href="/thanks">sign up</a>
<button id="t-btn" class="tally-event-name=Open+menu"><span id="t-btn-inner">menu</span></button>
<a id="t-out" class="plausible-event-name=Partner" href="${outboundUrl()}">partner</a>
<div id="t-plain" class="plausible-event-name">not tagged</div>
<button id="t-dash" class="plausible-event-Name--Dash+style">dash</button>
<div class="plausible-event-name=Outer"><span id="t-empty" class="plausible-event-name=">empty value</span></div>
<label id="t-label" class="plausible-event-name=Agree"><input type="checkbox"> agree</label>
<form action="/thanks"><button id="u-btn" type="button" class="plausible-event-name=Inside+form">in a form</button></form>
<form id="t-form" class="plausible-event-name=Newsletter plausible-event-position=footer" action="/thanks" method="post"><input name="e" value="x"><button id="t-send">send</button></form>
<div class="plausible-event-name=Wrapped+form"><form action="/thanks" method="post"><input id="w-input" name="w" value="y"><button id="w-send">send</button></form></div>`;

function route(req) {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (p === '/' || p === '/spa/other') return pageHtml();
  if (p === '/noapi/') return pageHtml({ api: false });
  if (p === '/hash/') return pageHtml({ hash: true });
  if (p === '/queued/') return pageHtml({}, QUEUE_SNIPPET);
  if (p === '/plausible/') return pageHtml({}, PLAUSIBLE_SNIPPET);
  if (p === '/manual/') return pageHtml({ extra: 'data-manual' });
  if (p === '/props/') return pageHtml({ extra: `${EXT} event-author="Jan Jansen" event-lang="nl"` }, '', LINKS());
  if (p === '/tagged/') return pageHtml({ extra: EXT }, '', TAGGED());
  if (p === '/ignored/') return pageHtml({}, '<script>window.tallyIgnore = true</script>');
  if (p === '/allow-localhost/') return pageHtml({ allowLocalhost: true });
  if (p === '/ext/') return pageHtml({ extra: EXT }, '', LINKS());
  if (p === '/ext-off/') return pageHtml({}, '', LINKS());
  if (p === '/ext-odt/') return pageHtml({ extra: 'data-file-downloads="odt, .ODS"' }, '', LINKS());
  if (p === '/thanks') return '<!doctype html><title>thanks</title>thanks';
  if (p.startsWith('/incl/') || p.startsWith('/outside/')) {
    return pageHtml({ extra: `${EXT} data-include="/incl/**, /news/*, /, /docs**" data-exclude="/incl/drafts/**"` }, '', LINKS());
  }
  if (p.startsWith('/private/') || p.startsWith('/excl/')) {
    return pageHtml({ extra: `${EXT} data-exclude="/private/**, /account/*, /preview, /how-to-*"` }, '', LINKS());
  }
  if (p === '/results') {
    return `<!doctype html><title>search</title><a id="hit" href="${site()}/">www.example.org</a>`;
  }
  return null;
}

function startServer() {
  const tracker = () => fs.readFileSync(TRACKER);
  server = http.createServer((req, res) => {
    const host = (req.headers.host || '').split(':')[0];
    const p = new URL(req.url, 'http://x').pathname;
    const cors = { 'Access-Control-Allow-Origin': '*' };
    if (req.method === 'OPTIONS') {
      preflights.push({ host, path: p, headers: req.headers });
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': 'POST', 'Access-Control-Allow-Headers': 'Content-Type' });
      return res.end();
    }
    if (req.method === 'POST' && p === '/diag') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => { diags.push(JSON.parse(Buffer.concat(chunks).toString('utf8'))); res.end(); });
      return;
    }
    if (req.method === 'POST' && p.endsWith('/api/event')) {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body;
        try { body = JSON.parse(raw); } catch { body = { unparsable: raw }; }
        if (slowMs) {
          // A slow collector: the beacon is here, the answer comes late.
          events.push({
            host, path: p, ct: req.headers['content-type'] || '', cookie: req.headers.cookie,
            ua: req.headers['user-agent'] || '', raw, body, at: Date.now(),
          });
          setTimeout(() => { res.writeHead(202, cors); res.end(); }, slowMs);
          return;
        }
        if (refuseNext > 0) {
          // Overloaded: not accepted (not recorded), come back after Retry-After.
          refuseNext -= 1;
          refused.push(body);
          res.writeHead(503, { ...cors, 'Retry-After': '2', 'Access-Control-Expose-Headers': 'Retry-After' });
          return res.end('{"error":"overloaded"}');
        }
        events.push({
          host, path: p, ct: req.headers['content-type'] || '', cookie: req.headers.cookie,
          ua: req.headers['user-agent'] || '', raw, body,
        });
        res.writeHead(202, cors);
        res.end();
      });
      return;
    }
    if (req.method === 'GET' && p === '/t.js') {
      res.writeHead(200, { 'Content-Type': 'application/javascript; charset=utf-8', 'Cache-Control': 'no-cache' });
      return res.end(tracker());
    }
    if (req.method === 'GET' && p.startsWith('/files/')) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Disposition': 'attachment' });
      return res.end('%PDF-1.4 not really');
    }
    if (req.method === 'POST' && p === '/thanks') {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end('<!doctype html><title>thanks</title>thanks');
    }
    if (req.method === 'GET' && p.startsWith('/missing/')) {
      res.writeHead(404, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(pageHtml({ extra: 'data-404' }));
    }
    const html = req.method === 'GET' && route(req);
    if (html) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(html);
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    port = server.address().port;
    resolve();
  }));
}

// ---------------------------------------------------------------- browser

let browser;

// A normal desktop Chrome user agent, not "HeadlessChrome". It is set on the
// command line as well as on each context: Playwright's per-page override does
// not reach beacons sent by a document that is being unloaded into the
// back/forward cache, and the server would (rightly) drop those as a bot.
const major = (execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  .match(/(\d+)\.\d+\.\d+/) || [])[1];
const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major || '140'}.0.0.0 Safari/537.36`;

function launch(options = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    ...options,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--user-agent=${userAgent}`,
      '--host-resolver-rules=MAP www.example.org 127.0.0.1, MAP stats.example.org 127.0.0.1, ' +
        'MAP search.example.net 127.0.0.1',
    ],
  });
}

before(async () => {
  await startServer();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (server) await new Promise((r) => server.close(r));
});

// One fresh browser context (no shared cookies/storage) per test. Returns helpers
// scoped to the events that arrive from now on.
async function session(t, { initScript, inBrowser = browser } = {}) {
  events = [];
  preflights = [];
  diags = [];
  refuseNext = 0;
  refused = [];
  slowMs = 0;
  const context = await inBrowser.newContext({ userAgent, viewport: { width: 1280, height: 720 } });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  const errors = [];
  const scripts = [];
  page.on('pageerror', (e) => errors.push(e));
  page.on('response', (r) => { if (new URL(r.url()).pathname === '/t.js') scripts.push(r); });
  t.after(async () => {
    await context.close();
    await sleep(200); // let late beacons land before the next test resets `events`
  });
  return {
    context,
    page,
    errors,
    // Wait until `count` events match `pred` (default: any), or fail after `ms`.
    async waitFor(pred = () => true, count = 1, ms = 5000) {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const got = events.filter((e) => pred(e.body));
        if (got.length >= count) return got;
        await sleep(50);
      }
      assert.fail(`timed out waiting for ${count} matching event(s); got: ${JSON.stringify(events.map((e) => e.body))}`);
    },
    // Real-server mode: t.js must have come from tally and no page error happened.
    checkLoaded() {
      assert.deepEqual(errors, []);
      assert.ok(scripts.length > 0, 't.js was requested');
      for (const r of scripts) {
        assert.equal(r.status(), 200, `t.js status from ${r.url()}`);
        assert.match(r.headers()['content-type'] || '', /javascript/);
      }
    },
  };
}

// Init script: log each beacon the tracker hands to the browser, by sendBeacon
// or fetch (window.__sent, in call order, with window.__via), and report which
// DOM event was being dispatched when a sendBeacon call was made to POST /diag
// on the test server (readable even after the page has closed).
function spyBeacon() {
  window.__sent = [];
  window.__via = [];
  const orig = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    const body = JSON.parse(data);
    window.__sent.push(body);
    window.__via.push('beacon');
    const during = window.event ? window.event.type : null;
    orig(`${location.origin}/diag`, JSON.stringify({ during, n: body.n, u: body.u }));
    return orig(url, data);
  };
  const origFetch = window.fetch.bind(window);
  window.fetch = (url, opts) => {
    if (String(url).endsWith('/api/event')) {
      window.__sent.push(JSON.parse(opts.body));
      window.__via.push('fetch');
    }
    return origFetch(url, opts);
  };
}

const isPv = (u) => (b) => b.n === 'pageview' && (u === undefined || b.u === u);
const isEng = (u) => (b) => b.n === 'engagement' && (u === undefined || b.u === u);

// Make the page hidden / visible again. Headless Chromium keeps every page
// 'visible' (bringing another page to front, minimizing the window through CDP,
// or freezing it do not change it; checked with Chromium 156), so this does
// what the browser would: flip document.visibilityState/hidden and fire
// visibilitychange.
async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    if (h) {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
    } else {
      delete document.visibilityState; // back to Document.prototype's getters
      delete document.hidden;
    }
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

function checkCommon(ev, { u } = {}) {
  assert.match(ev.ct, /^text\/plain/i, 'content type');
  assert.equal(ev.cookie, undefined, 'no cookie header on the beacon');
  assert.equal(ev.ua, userAgent, 'beacon carries the browser user agent, not HeadlessChrome');
  assert.equal(ev.body.d, DOMAIN);
  if (u !== undefined) assert.equal(ev.body.u, u);
}

// ---------------------------------------------------------------- tests

test('tracker.min.js is built from tracker.js', { timeout: TEST_TIMEOUT }, async () => {
  const { build, out } = require('./build-tracker.js');
  assert.equal(fs.readFileSync(out, 'utf8'), await build(),
    'assets/tracker.min.js is stale: run `npm run build` in tests/browser');
});

test('a. a normal load sends one pageview with u, d, r, w as text/plain', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  // Arrive from another site, so document.referrer is set by a real navigation.
  await s.page.goto(`http://search.example.net:${port}/results`);
  await Promise.all([s.page.waitForURL(`${site()}/`), s.page.click('#hit')]);
  assert.equal(await s.page.evaluate(() => typeof window.tally), 'function');
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [pv] = await s.waitFor(isPv());
  await sleep(700);
  assert.equal(events.length, 1, `exactly one event: ${JSON.stringify(events.map((e) => e.body))}`);
  checkCommon(pv, { u: `${site()}/` });
  // Cross-site referrer: Chromium's default policy sends the origin only.
  assert.equal(pv.body.r, `http://search.example.net:${port}/`);
  assert.equal(pv.body.w, 1280);
  assert.deepEqual(Object.keys(pv.body).sort(), ['d', 'n', 'r', 'u', 'w']);
  // data-api was honoured (first-party proxy path), without a CORS preflight.
  assert.equal(pv.host, DOMAIN);
  assert.equal(pv.path, '/proxy/api/event');
  assert.deepEqual(preflights, []);
});

test('b. SPA: pushState, popstate and hash-only changes', { timeout: TEST_TIMEOUT }, async (t) => {
  // Log the order in which beacons are handed to the browser (arrival order over
  // separate connections is not guaranteed).
  const s = await session(t, { initScript: spyBeacon });
  const home = `${site()}/`;
  const other = `${site()}/spa/other`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  await sleep(400);

  await s.page.click('#go'); // history.pushState({}, '', '/spa/other')
  assert.equal(s.page.url(), other);
  if (FAKE) {
    await s.waitFor(isPv(other));
    await s.waitFor(isEng(home));
  }
  await sleep(400);

  await s.page.evaluate(() => history.back()); // popstate
  await s.page.waitForURL(home);
  if (FAKE) {
    await s.waitFor(isPv(home), 2);
    await s.waitFor(isEng(other));
  }

  // Hash-only changes: link click, location.hash and pushState with a hash.
  await s.page.click('#sec');
  await s.page.evaluate(() => { location.hash = 'elsewhere'; });
  await s.page.evaluate(() => history.pushState(null, '', '#pushed'));
  await sleep(800);
  const sent = await s.page.evaluate(() => window.__sent);
  if (!FAKE) return s.checkLoaded();

  const got = events.map((e) => e.body);
  assert.equal(got.length, 5, `5 events: ${JSON.stringify(got)}`);
  assert.deepEqual(sent.map((b) => [b.n, b.u]), [
    ['pageview', home],
    ['engagement', home],
    ['pageview', other],
    ['engagement', other],
    ['pageview', home],
  ]);
  for (const e of events) checkCommon(e);
  for (const b of sent.filter(isEng())) {
    assert.ok(Number.isInteger(b.e) && b.e >= 300 && b.e < 10000, `engagement e=${b.e}`);
    assert.ok(Number.isInteger(b.sd) && b.sd >= 0 && b.sd <= 100, `sd=${b.sd}`);
  }
  // SPA pageviews keep the page's original referrer (none here) and width.
  for (const b of sent.filter(isPv())) {
    assert.equal(b.r, null);
    assert.equal(b.w, 1280);
  }
});

test('c. hiding the tab sends one engagement with visible time and scroll depth', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const home = `${site()}/`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  await s.page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await sleep(2000);
  await setHidden(s.page, true);
  let engs = FAKE && await s.waitFor(isEng(home));
  await sleep(1500); // hidden time is not counted, and nothing more is sent
  if (FAKE) {
    engs = events.filter((e) => isEng()(e.body));
    assert.equal(engs.length, 1, `one engagement: ${JSON.stringify(engs.map((e) => e.body))}`);
    const b = engs[0].body;
    checkCommon(engs[0], { u: home });
    assert.ok(Number.isInteger(b.e) && b.e >= 1500 && b.e <= 10000, `e=${b.e}`);
    assert.equal(b.sd, 100, 'scrolled to the bottom');
    assert.deepEqual(Object.keys(b).sort(), ['d', 'e', 'n', 'sd', 'u']);
  }

  // Back to the tab for ~0.7 s, then away again: a second engagement with only
  // the additional visible time.
  await setHidden(s.page, false);
  await sleep(700);
  await setHidden(s.page, true);
  if (!FAKE) { await sleep(500); return s.checkLoaded(); }
  engs = await s.waitFor(isEng(home), 2);
  await sleep(500);
  assert.equal(events.filter((e) => isEng()(e.body)).length, 2);
  const e2 = engs[1].body.e;
  assert.ok(e2 >= 500 && e2 < 2500, `second engagement counts only the new interval: e=${e2}`);
  assert.equal(events.filter((e) => isPv()(e.body)).length, 1, 'showing the tab again is not a pageview');
});

test('d. closing the page delivers the engagement (pagehide)', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t, { initScript: spyBeacon });
  const home = `${site()}/`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  await sleep(1000);
  await s.page.close({ runBeforeUnload: true });
  if (!FAKE) { await sleep(1000); return; }
  const [eng] = await s.waitFor(isEng(home));
  await sleep(700);
  assert.equal(events.filter((e) => isEng()(e.body)).length, 1, 'exactly one engagement on close');
  checkCommon(eng, { u: home });
  assert.ok(eng.body.e >= 900 && eng.body.e <= 10000, `e=${eng.body.e}`);
  // Chromium fires pagehide (still 'visible') before visibilitychange on close:
  // the beacon must come from the pagehide handler.
  assert.deepEqual(diags.filter((x) => x.n === 'engagement').map((x) => x.during), ['pagehide']);
});

test('e. no cookies, no storage but the opt-out read, no fingerprinting APIs', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t, {
    // Record any use of cookie, storage or typical fingerprinting APIs by the page.
    initScript: () => {
      const touched = (window.__touched = []);
      const spied = (window.__spied = []);
      const spy = (obj, prop, label) => {
        const d = Object.getOwnPropertyDescriptor(obj, prop);
        if (!d) return; // not in this context (e.g. secure-context-only APIs on http)
        spied.push(label);
        const nd = { configurable: true, enumerable: d.enumerable };
        if (d.get || d.set) {
          if (d.get) nd.get = function () { touched.push(label + ' get'); return d.get.call(this); };
          if (d.set) nd.set = function (v) { touched.push(label + ' set'); return d.set.call(this, v); };
        } else {
          nd.writable = true;
          nd.value = function (...a) { touched.push(label); return d.value.apply(this, a); };
        }
        Object.defineProperty(obj, prop, nd);
      };
      spy(Document.prototype, 'cookie', 'document.cookie');
      for (const k of ['localStorage', 'sessionStorage', 'indexedDB', 'caches', 'screen']) spy(window, k, k);
      for (const k of ['getItem', 'setItem', 'removeItem', 'clear', 'key']) spy(Storage.prototype, k, 'Storage.' + k);
      for (const k of ['plugins', 'mimeTypes', 'hardwareConcurrency', 'deviceMemory', 'languages', 'platform', 'userAgentData', 'storage', 'cookieEnabled']) {
        spy(Navigator.prototype, k, 'navigator.' + k);
      }
      spy(HTMLCanvasElement.prototype, 'getContext', 'canvas.getContext');
      spy(HTMLCanvasElement.prototype, 'toDataURL', 'canvas.toDataURL');
      if (window.OffscreenCanvas) spy(OffscreenCanvas.prototype, 'getContext', 'OffscreenCanvas.getContext');
      if (window.AudioContext) spy(window, 'AudioContext', 'AudioContext');
    },
  });
  const home = `${site()}/`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  // Exercise everything the tracker does: SPA navigation, custom event, hide.
  await sleep(300);
  await s.page.click('#go');
  await s.page.evaluate(() => window.tally('Signup', { props: { plan: 'a' } }));
  await setHidden(s.page, true);
  if (FAKE) await s.waitFor(() => true, 5);
  await sleep(300);

  const { touched, spied } = await s.page.evaluate(() => ({ touched: window.__touched, spied: window.__spied }));
  for (const k of ['document.cookie', 'localStorage', 'sessionStorage', 'indexedDB', 'Storage.setItem',
    'Storage.getItem', 'navigator.plugins', 'canvas.getContext', 'screen']) {
    assert.ok(spied.includes(k), `spy on ${k} installed (${spied})`);
  }
  // The one storage access: reading the visitor's own opt-out flag, once, at load.
  assert.deepEqual(touched, ['localStorage get', 'Storage.getItem'], 'tracker used none of these APIs but the opt-out read');
  assert.deepEqual(await s.context.cookies(), []);
  const st = await s.page.evaluate(() => ({
    cookie: document.cookie, local: localStorage.length, session: sessionStorage.length,
  }));
  assert.deepEqual(st, { cookie: '', local: 0, session: 0 });
  if (!FAKE) return s.checkLoaded();
  for (const e of events) checkCommon(e);
});

test('f. window.tally() sends a custom event with props', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const home = `${site()}/`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  await s.page.evaluate(() => window.tally('Signup', { props: { plan: 'a' } }));
  await s.page.evaluate(() => window.tally('Download'));
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [signup] = await s.waitFor((b) => b.n === 'Signup');
  const [dl] = await s.waitFor((b) => b.n === 'Download');
  checkCommon(signup, { u: home });
  assert.deepEqual(signup.body, { n: 'Signup', u: home, d: DOMAIN, p: { plan: 'a' } });
  assert.deepEqual(dl.body, { n: 'Download', u: home, d: DOMAIN });
});

test('f2. calls queued before t.js loaded are sent', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/queued/`;
  await s.page.goto(url);
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [early] = await s.waitFor((b) => b.n === 'Early');
  assert.deepEqual(early.body, { n: 'Early', u: url, d: DOMAIN, p: { queued: true } });
  await s.waitFor(isPv(url));
});

test('g. without data-api the endpoint is the script origin + /api/event', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/noapi/`;
  await s.page.goto(url);
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [pv] = await s.waitFor(isPv(url));
  checkCommon(pv, { u: url });
  assert.equal(pv.host, 'stats.example.org');
  assert.equal(pv.path, '/api/event');
  assert.deepEqual(preflights, []);
});

test('h. localhost is not tracked unless data-allow-localhost is set', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  await s.page.goto(`http://localhost:${port}/`);
  await s.page.evaluate(() => window.tally('Signup'));
  await s.page.click('#go');
  await setHidden(s.page, true);
  await sleep(1000);
  if (FAKE) assert.deepEqual(events.map((e) => e.body), [], 'nothing sent from localhost');

  const url = `http://localhost:${port}/allow-localhost/`;
  await s.page.goto(url);
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [pv] = await s.waitFor(isPv(url));
  checkCommon(pv);
});

test('i. data-hash counts hash changes, with "h":1', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/hash/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  await sleep(300);
  await s.page.click('#sec'); // #section2: popstate + hashchange, one pageview
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [pv] = await s.waitFor(isPv(url + '#section2'));
  await s.waitFor(isEng(url));
  await sleep(500);
  assert.equal(pv.body.h, 1);
  assert.equal(events.length, 3, JSON.stringify(events.map((e) => e.body)));
  for (const e of events.filter((x) => isPv()(x.body))) assert.equal(e.body.h, 1);
});

test('j. window.tallyIgnore = true stops all sending', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  await s.page.goto(`${site()}/ignored/`);
  await s.page.evaluate(() => window.tally('Signup'));
  await s.page.click('#go');
  await setHidden(s.page, true);
  await sleep(1000);
  if (FAKE) assert.deepEqual(events.map((e) => e.body), []);
  else s.checkLoaded();
});

test('m. tally.optOut() is remembered in this browser only; optIn() resumes', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const home = `${site()}/`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  assert.equal(await s.page.evaluate(() => window.tally.optedOut()), false);
  await s.page.evaluate(() => window.tally.optOut());
  const before = events.length;
  await s.page.click('#go');
  await s.page.evaluate(() => window.tally('Signup'));
  await s.page.reload();
  await s.page.click('#go');
  await setHidden(s.page, true);
  await sleep(1000);
  if (FAKE) assert.equal(events.length, before, JSON.stringify(events.slice(before).map((e) => e.body)));
  // What is stored is the visitor's choice, on the visitor's device, and nothing else.
  const stored = await s.page.evaluate(() => ({ ...localStorage }));
  assert.deepEqual(stored, { tally_ignore: '1' });
  assert.equal(await s.page.evaluate(() => window.tally.optedOut()), true);
  assert.deepEqual(await s.context.cookies(), []);

  await s.page.evaluate(() => window.tally.optIn());
  assert.equal(await s.page.evaluate(() => localStorage.length), 0);
  await s.page.reload();
  if (FAKE) await s.waitFor(isPv(home), 1);
  else s.checkLoaded();
});

test('k. without sendBeacon it falls back to fetch keepalive, text/plain, no preflight', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t, { initScript: () => { delete Navigator.prototype.sendBeacon; } });
  const home = `${site()}/`;
  await s.page.goto(home);
  assert.equal(await s.page.evaluate(() => typeof navigator.sendBeacon), 'undefined');
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  const [pv] = await s.waitFor(isPv(home));
  checkCommon(pv, { u: home });
  await sleep(300);
  await s.page.close({ runBeforeUnload: true }); // keepalive fetch survives the page
  const [eng] = await s.waitFor(isEng(home));
  checkCommon(eng, { u: home });
  assert.deepEqual(preflights, []);
});

test('l. back/forward cache: leaving sends the engagement, coming back is a new pageview', { timeout: TEST_TIMEOUT }, async (t) => {
  // Playwright disables the back/forward cache by default; this test needs it.
  const bfBrowser = await launch({ ignoreDefaultArgs: ['--disable-back-forward-cache'] });
  t.after(() => bfBrowser.close());
  const s = await session(t, { inBrowser: bfBrowser, initScript: spyBeacon });
  const home = `${site()}/`;
  const next = `${site()}/noapi/`;
  await s.page.goto(home);
  if (FAKE) await s.waitFor(isPv(home));
  await s.page.evaluate(() => { window.__notReloaded = true; });
  await sleep(500);
  await s.page.goto(next);
  if (FAKE) {
    await s.waitFor(isPv(next));
    await s.waitFor(isEng(home));
  }
  await sleep(500);
  await s.page.goBack({ waitUntil: 'commit' }); // no load event on a cache restore
  await s.page.waitForFunction(() => document.readyState === 'complete');
  assert.equal(await s.page.evaluate(() => window.__notReloaded), true, 'page came from the bfcache');
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  await s.waitFor(isPv(home), 2);
  await s.waitFor(isEng(next));
  await sleep(500);
  const got = events.map((e) => [e.body.n, e.body.u]).sort();
  assert.deepEqual(got, [
    ['engagement', home], ['engagement', next],
    ['pageview', home], ['pageview', home], ['pageview', next],
  ].sort(), 'no stray engagement for the restored page');
  for (const e of events) checkCommon(e);
  // Visible time keeps counting after the restore.
  await sleep(500);
  await setHidden(s.page, true);
  const engs = await s.waitFor(isEng(home), 2);
  assert.ok(engs[1].body.e >= 400, `e=${engs[1].body.e}`);
});

test('m. a 503 with Retry-After: the tracker waits, then sends the held beacons (the refused one first)', { timeout: TEST_TIMEOUT }, async (t) => {
  if (!FAKE) return; // needs the fake collector to answer 503
  const s = await session(t, { initScript: spyBeacon });
  const home = `${site()}/`;
  const other = `${site()}/spa/other`;
  refuseNext = 1;
  const t0 = Date.now();
  await s.page.goto(home);
  while (refused.length === 0) await sleep(20);
  assert.deepEqual(refused.map((b) => [b.n, b.u]), [['pageview', home]]);
  // Within the pause an SPA navigation makes an engagement and a pageview: held, not sent.
  await sleep(300);
  await s.page.click('#go');
  await sleep(500);
  assert.equal(events.length, 0, `nothing sent during the pause: ${JSON.stringify(events.map((e) => e.body))}`);
  // Each beacon from now on is answered 400 ms after it arrives: sent in parallel, the held
  // ones would arrive together (and may arrive in any order); one at a time, 400 ms apart.
  slowMs = 400;
  await s.waitFor(isPv(), 2);
  await s.waitFor(isEng(home));
  const waited = Date.now() - t0;
  assert.ok(waited >= 1900, `sent again only after Retry-After (2 s): ${waited} ms`);
  assert.deepEqual(events.map((e) => [e.body.n, e.body.u]), [
    ['pageview', home], ['engagement', home], ['pageview', other],
  ], 'the refused pageview first, then the held ones, in order');
  const gaps = events.slice(1).map((e, i) => e.at - events[i].at);
  assert.ok(gaps.every((g) => g >= 350), `each sent after the previous one's answer: gaps ${gaps} ms`);
  for (const e of events) checkCommon(e);
  // Only fetch was used while the page stayed (its answer is what tells the tracker to wait).
  assert.ok((await s.page.evaluate(() => window.__via)).every((v) => v === 'fetch'));
});

test('f3. window.plausible: Plausible\'s snippet and queue, u, interactive: false, and callback (also when nothing is sent)', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/plausible/`;
  await s.page.goto(url);
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  // Queued after the pageview, as with Plausible; a queued call with a bad address and one
  // whose callback throws stop neither the calls after them nor the tracker.
  const [early] = await s.waitFor((b) => b.n === 'Early P');
  assert.deepEqual(early.body, { n: 'Early P', u: url, d: DOMAIN, p: { via: 'plausible' } });
  await s.waitFor((b) => b.n === 'After');
  assert.deepEqual(events.map((e) => e.body.n).slice(0, 3), ['pageview', 'Early P', 'After']);
  assert.ok(!events.some((e) => e.body.n === 'Bad address'));
  await s.page.evaluate(() => window.plausible('Signup', {
    u: '/virtual/step-2', interactive: false, props: { plan: 'a' },
    callback: (r) => { window.__signup = r; },
  }));
  const [signup] = await s.waitFor((b) => b.n === 'Signup');
  assert.deepEqual(signup.body, { n: 'Signup', u: `${site()}/virtual/step-2`, d: DOMAIN, p: { plan: 'a' }, i: false });
  await s.page.waitForFunction(() => window.__signup !== undefined);
  assert.deepEqual(await s.page.evaluate(() => window.__signup), { status: 202 });
  // Opted out: nothing is sent, and the callback is still called (a site may navigate in it).
  await s.page.evaluate(() => {
    window.tally.optOut();
    window.plausible('Not sent', { callback: (r) => { window.__notSent = r; } });
  });
  assert.deepEqual(await s.page.evaluate(() => window.__notSent), {});
  await sleep(300);
  assert.ok(!events.some((e) => e.body.n === 'Not sent'));
  assert.equal(await s.page.evaluate(() => window.plausible === window.tally), true);
});

test('f4. data-manual: no pageview of its own; tally(\'pageview\', {u}) sends one, and its engagement follows', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  await s.page.goto(`${site()}/manual/`);
  await s.page.click('#go'); // pushState: no pageview either
  await sleep(700);
  if (!FAKE) return s.checkLoaded();
  assert.deepEqual(events.map((e) => e.body), [], 'nothing before the page asks');
  await s.page.evaluate(() => window.tally('pageview', {
    u: '/user/:id', props: { kind: 'profile' }, callback: () => { window.__called = 1; },
  }));
  const [pv] = await s.waitFor(isPv(`${site()}/user/:id`));
  assert.deepEqual(pv.body, { n: 'pageview', u: `${site()}/user/:id`, d: DOMAIN, r: null, w: 1280, p: { kind: 'profile' } });
  await s.page.waitForFunction(() => window.__called === 1);
  await sleep(300);
  await setHidden(s.page, true);
  const [eng] = await s.waitFor(isEng(`${site()}/user/:id`));
  assert.ok(eng.body.e > 0, JSON.stringify(eng.body));
  assert.deepEqual(events.map((e) => e.body.n), ['pageview', 'engagement']);
});

test('f5. event-KEY attributes: props of every pageview and custom event (a call\'s own prop wins), none on engagements', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/props/`;
  await s.page.goto(url);
  if (!FAKE) return s.checkLoaded();
  const [pv] = await s.waitFor(isPv(url));
  assert.deepEqual(pv.body, { n: 'pageview', u: url, d: DOMAIN, r: null, w: 1280, p: { author: 'Jan Jansen', lang: 'nl' } });
  await s.page.evaluate(() => window.tally('Signup', { props: { lang: 'en', plan: 'pro' } }));
  const [ev] = await s.waitFor((b) => b.n === 'Signup');
  assert.deepEqual(ev.body.p, { author: 'Jan Jansen', lang: 'en', plan: 'pro' });
  // A pageview the page asks for merges the same way.
  await s.page.evaluate(() => window.tally('pageview', { u: '/virtual', props: { lang: 'en' } }));
  const [vpv] = await s.waitFor(isPv(`${site()}/virtual`));
  assert.deepEqual(vpv.body.p, { author: 'Jan Jansen', lang: 'en' });
  await s.page.click('#go'); // SPA navigation: an engagement, then a pageview with the props
  const [pv2] = await s.waitFor(isPv(`${site()}/spa/other`));
  assert.deepEqual(pv2.body.p, { author: 'Jan Jansen', lang: 'nl' });
  const engs = events.filter((e) => e.body.n === 'engagement');
  assert.ok(engs.length >= 1, 'the SPA navigation reported the first page\'s engagement');
  assert.ok(engs.every((e) => !('p' in e.body)), JSON.stringify(engs.map((e) => e.body)));
  // A built-in event gets them too, its own url prop kept.
  await Promise.all([s.page.waitForURL(/search\.example\.net/), s.page.click('#out')]);
  const [out] = await s.waitFor((b) => b.n === 'Outbound Link: Click');
  assert.deepEqual(out.body.p, { author: 'Jan Jansen', lang: 'nl', url: outboundUrl() });
});

// ---------------------------------------------------------------- built-in events, exclusions

const builtin = () => events.map((e) => e.body.n).filter((n) => n !== 'pageview' && n !== 'engagement');

test('o1. outbound link: "Outbound Link: Click" with the link, and the page leaves at once while the collector is slow', { timeout: TEST_TIMEOUT }, async (t) => {
  if (!FAKE) return; // needs the fake collector to answer slowly
  const s = await session(t, { initScript: spyBeacon });
  const url = `${site()}/ext/`;
  await s.page.goto(url);
  await s.waitFor(isPv(url));
  slowMs = 6000; // every beacon from now on is answered after 6 s
  const t0 = Date.now();
  // A click on an element inside the link, as people click.
  await Promise.all([s.page.waitForURL(/search\.example\.net/), s.page.click('#out-inner')]);
  const took = Date.now() - t0;
  assert.ok(took < 3000, `the link was followed after ${took} ms; the collector answers after 6 s`);
  const [ev] = await s.waitFor((b) => b.n === 'Outbound Link: Click');
  checkCommon(ev, { u: url });
  assert.deepEqual(ev.body, { n: 'Outbound Link: Click', u: url, d: DOMAIN, p: { url: outboundUrl() } });
  // Handed to sendBeacon during the click: delivered by the browser after the page is gone.
  assert.deepEqual(diags.filter((x) => x.n === 'Outbound Link: Click').map((x) => x.during), ['click']);
});

test('o2. without sendBeacon, a keepalive fetch: the link is still followed at once', { timeout: TEST_TIMEOUT }, async (t) => {
  if (!FAKE) return;
  const s = await session(t, { initScript: () => { delete Navigator.prototype.sendBeacon; } });
  const url = `${site()}/ext/`;
  await s.page.goto(url);
  await s.waitFor(isPv(url));
  slowMs = 6000;
  const t0 = Date.now();
  await Promise.all([s.page.waitForURL(/search\.example\.net/), s.page.click('#out')]);
  const took = Date.now() - t0;
  assert.ok(took < 3000, `the link was followed after ${took} ms`);
  const [ev] = await s.waitFor((b) => b.n === 'Outbound Link: Click');
  checkCommon(ev, { u: url });
  assert.deepEqual(preflights, []);
});

test('o3. a middle click counts; mailto:, SVG and internal links and untracked types do not', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/ext/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  await s.page.click('#out', { button: 'middle' }); // a new tab; this page stays
  await s.page.click('#mail');
  await s.page.click('#svg');
  await s.page.click('#odt'); // .odt is not in the default list (a download; the page stays)
  await sleep(700);
  assert.equal(s.page.url(), url);
  await Promise.all([s.page.waitForURL(`${site()}/spa/other`), s.page.click('#internal')]);
  await sleep(700);
  if (!FAKE) return s.checkLoaded();
  assert.deepEqual(builtin(), ['Outbound Link: Click'], JSON.stringify(events.map((e) => e.body)));
  assert.deepEqual(events.find((e) => e.body.n === 'Outbound Link: Click').body.p, { url: outboundUrl() });
});

test('o4. file downloads: the default list (any case), or the attribute\'s own list', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  let url = `${site()}/ext/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  await s.page.click('#pdf'); // report.PDF, served as an attachment: a download, the page stays
  if (FAKE) {
    const [ev] = await s.waitFor((b) => b.n === 'File Download');
    checkCommon(ev, { u: url });
    assert.deepEqual(ev.body.p, { url: `${site()}/files/report.PDF?session=abc` });
  }
  // data-file-downloads="odt, .ODS": only those, and no outbound links (not switched on).
  url = `${site()}/ext-odt/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  events = [];
  await s.page.click('#pdf');
  await s.page.click('#odt');
  await Promise.all([s.page.waitForURL(/search\.example\.net/), s.page.click('#out')]);
  await sleep(700);
  if (!FAKE) return s.checkLoaded();
  assert.deepEqual(builtin(), ['File Download']);
  assert.deepEqual(events.find((e) => e.body.n === 'File Download').body,
    { n: 'File Download', u: url, d: DOMAIN, p: { url: `${site()}/files/notes.odt` } });
});

test('o5. form submissions: "Form: Submission", sent as the form leaves the page', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t, { initScript: spyBeacon });
  const url = `${site()}/ext/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  await s.page.fill('input[name=q]', 'hello');
  await Promise.all([s.page.waitForURL(`${site()}/thanks`), s.page.click('#send')]);
  if (!FAKE) { await sleep(1000); return; }
  const [ev] = await s.waitFor((b) => b.n === 'Form: Submission');
  checkCommon(ev, { u: url });
  assert.deepEqual(ev.body, { n: 'Form: Submission', u: url, d: DOMAIN });
  assert.deepEqual(diags.filter((x) => x.n === 'Form: Submission').map((x) => x.during), ['submit']);
});

test('o6. data-404 on the not-found page: a pageview, then "404" with the path', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/missing/some/page?x=1`;
  const resp = await s.page.goto(url);
  assert.equal(resp.status(), 404);
  if (!FAKE) { await sleep(1000); return s.checkLoaded(); }
  await s.waitFor(isPv(url));
  const [ev] = await s.waitFor((b) => b.n === '404');
  checkCommon(ev, { u: url });
  assert.deepEqual(ev.body.p, { path: '/missing/some/page' });
  await sleep(500);
  // Both, once each; sent at once by two fetches, they may arrive in either order.
  assert.deepEqual(events.map((e) => e.body.n).sort(), ['404', 'pageview']);
});

test('o7. without their attributes, links and forms send nothing', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t);
  const url = `${site()}/ext-off/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  await s.page.click('#pdf');
  await s.page.click('#out', { button: 'middle' });
  await Promise.all([s.page.waitForURL(`${site()}/thanks`), s.page.click('#send')]);
  await sleep(700);
  if (!FAKE) return;
  assert.deepEqual(builtin(), [], JSON.stringify(events.map((e) => e.body)));
});

test('o10. tagged elements: a click (inside) one, a middle click on a tagged link, a tagged form; "+" is a space, classes give props', { timeout: TEST_TIMEOUT }, async (t) => {
  const s = await session(t, { initScript: spyBeacon });
  const url = `${site()}/tagged/`;
  await s.page.goto(url);
  if (FAKE) await s.waitFor(isPv(url));
  await s.page.click('#t-btn-inner');
  await s.page.click('#t-plain');
  await s.page.click('#t-dash'); // "--" for "=", "Name" in any case
  await s.page.click('#t-empty'); // no value: the tagged parent's event
  await s.page.click('#t-label'); // the browser clicks the checkbox too: one event
  await s.page.click('#u-btn'); // inside a form: left to the form's submit
  await s.page.click('#t-out', { button: 'middle' }); // a new tab; this page stays
  await sleep(500);
  assert.equal(s.page.url(), url);
  await Promise.all([s.page.waitForURL(`${site()}/thanks`), s.page.click('#t-link')]);
  await s.page.goto(url);
  await Promise.all([s.page.waitForURL(`${site()}/thanks`), s.page.click('#t-send')]);
  await s.page.goto(url);
  await s.page.click('#w-input'); // a click in the form sends nothing; its submit the wrapper's
  await Promise.all([s.page.waitForURL(`${site()}/thanks`), s.page.click('#w-send')]);
  await sleep(700);
  if (!FAKE) return s.checkLoaded();
  const body = (n) => events.find((e) => e.body.n === n).body;
  // The tagged outbound link sends its own event, not "Outbound Link: Click"; the tagged form
  // its own and, with data-form-submissions, "Form: Submission".
  assert.deepEqual(builtin().sort(), ['Agree', 'Dash style', 'Form: Submission', 'Form: Submission',
    'Newsletter', 'Open menu', 'Outer', 'Partner', 'Sign up', 'Wrapped form'],
  JSON.stringify(events.map((e) => e.body)));
  assert.deepEqual(body('Open menu'), { n: 'Open menu', u: url, d: DOMAIN, p: {} });
  assert.deepEqual(body('Sign up'), { n: 'Sign up', u: url, d: DOMAIN, p: { plan: 'Pro yearly' } });
  assert.deepEqual(body('Partner').p, {});
  assert.deepEqual(body('Newsletter').p, { position: 'footer' });
  // Handed to sendBeacon while the click or submit happened, so leaving the page loses nothing.
  assert.deepEqual(diags.filter((x) => x.n === 'Sign up').map((x) => x.during), ['click']);
  assert.deepEqual(diags.filter((x) => x.n === 'Newsletter').map((x) => x.during), ['submit']);
});

// Opens `start`, a page that is not counted (nothing may be sent from it, not even a custom
// event or a download click), then moves through `paths` by SPA navigation: exactly the
// pageviews of `counted` are sent, and nothing at all about any other page.
async function onlyCountedPagesSent(t, start, paths, counted) {
  const s = await session(t);
  await s.page.goto(`${site()}${start}`);
  await s.page.evaluate(() => window.tally('Signup'));
  await s.page.click('#pdf');
  await sleep(500);
  if (FAKE) assert.deepEqual(events.map((e) => e.body), [], `nothing from ${start}`);
  for (const p of paths) {
    await s.page.evaluate((to) => history.pushState({}, '', to), p);
    await sleep(60);
  }
  await setHidden(s.page, true);
  await sleep(800);
  if (!FAKE) return s.checkLoaded();
  const path = (b) => new URL(b.u).pathname;
  // Separate requests may arrive out of order: compared as sets.
  assert.deepEqual(events.filter((e) => isPv()(e.body)).map((e) => path(e.body)).sort(), [...counted].sort());
  for (const e of events) {
    assert.ok(counted.includes(path(e.body)), `sent about a page not counted: ${JSON.stringify(e.body)}`);
  }
  assert.ok(events.some((e) => isEng()(e.body)), 'engagements of counted pages are sent');
}

test('o8. data-exclude: nothing at all is sent about an excluded page; the same patterns as exclude_paths', { timeout: TEST_TIMEOUT }, async (t) => {
  // data-exclude="/private/**, /account/*, /preview, /how-to-*"; the path cases of
  // src/exclusions.rs.
  return onlyCountedPagesSent(t, '/private/a',
    ['/admin', '/account', '/account/jan', '/account/jan/', '/account/jan/settings', '/preview',
      '/preview/', '/previews', '/how-to-play', '/private', '/private/', '/private/x/y', '/Private/x'],
    ['/admin', '/account', '/account/jan/settings', '/previews', '/private', '/private/', '/Private/x']);
});

test('o9. data-include: only included pages are counted, data-exclude still applies; the same patterns as include_paths', { timeout: TEST_TIMEOUT }, async (t) => {
  // data-include="/incl/**, /news/*, /, /docs**" data-exclude="/incl/drafts/**"; `/docs**` as
  // Plausible has it: any characters after `/docs`, also none.
  return onlyCountedPagesSent(t, '/outside/a',
    ['/incl/a', '/incl', '/incl/drafts/x', '/incl/b/c/', '/news', '/news/today', '/news/today/x',
      '/', '/contact', '/docs', '/doc', '/docs/a/b', '/docsy', '/Incl/a'],
    ['/incl/a', '/incl/b/c/', '/news/today', '/', '/docs', '/docs/a/b', '/docsy']);
});
