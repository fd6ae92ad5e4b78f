// The tracker's built-in events and excluded pages against the real collector: headless
// Chromium on pages that load /t.js from a running `tally serve` (the real binary, the test
// ClickHouse) with data-outbound-links, data-file-downloads, data-form-submissions, data-404 and
// data-exclude. A visitor clicks an outbound link, downloads a PDF, clicks a button tagged with
// Plausible's class names, sends a form, lands on a "not found" page and opens an excluded page; the test then reads ClickHouse: each action is
// one event row with its property reduced (no query but the allow-list, no fragment, personal
// data replaced), nothing at all from the excluded page, and none of the raw values anywhere.
//
// Names as in e2e-tracker.test.js: the pages are www.example.org, the outbound link goes to
// partner.example.net, tally is stats.example.org (Chromium maps all to 127.0.0.1).
//
// Run: tests/browser/run.sh (needs TALLY_TEST_CLICKHOUSE_URL and target/debug/tally).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { skipReason, sleep, ch, chRows, startTally, userAgent, launch, setHidden } = require('./real-tally.js');

const SKIP = skipReason();
const DOMAIN = 'www.example.org';

let tally;
let site;
let sitePort;
let browser;

const origin = () => `http://${DOMAIN}:${sitePort}`;
const partner = () => `http://partner.example.net:${sitePort}`;
// Personal data and secrets in the addresses the visitor meets; none may be stored.
const OUTBOUND = () => `${partner()}/offer/e2emark.jansen@example.nl?utm_source=tally&email=jan%40example.nl&sid=E2ESID#E2EFRAG`;
const PDF = '/files/87654321/report.pdf?session=E2ESESSION#page=2';
const RAW = ['e2emark', 'jan%40', 'E2ESID', 'E2EFRAG', '87654321', 'E2ESESSION', 'page=2', 'e2esecret',
  'e2eprivate'];

function page(statsOrigin, extra, body = '') {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tally extensions page</title>
<script defer data-domain="${DOMAIN}" data-exclude="/private/**" ${extra} src="${statsOrigin}/t.js"></script>
</head><body>${body}</body></html>`;
}

const LINKS = () => `
<a id="out" href="${OUTBOUND()}">partner offer</a>
<a id="pdf" href="${PDF}">report</a>
<button id="tagged" class="plausible-event-name=Sign+up plausible-event-plan=pro plausible-event-who=e2emark.jansen@example.nl">sign up</button>
<form id="form" action="/thanks" method="get"><input name="email" value="e2esecret@example.nl"><button id="send">send</button></form>`;

before(async () => {
  if (SKIP) return;
  tally = await startTally({
    name: 'extensions',
    // The built-in events' props are stored without the allow-list; the tagged button's
    // \`plan\` is allow-listed, its \`who\` is not.
    toml: `[[sites]]
domain = "${DOMAIN}"
time_zone = "UTC"
exclude_paths = ["/private/**"]
props_allowlist = ["plan"]
`,
  });
  site = http.createServer((req, res) => {
    const host = (req.headers.host || '').split(':')[0];
    const p = new URL(req.url, 'http://x').pathname;
    const stats = `http://stats.example.org:${tally.port}`;
    const html = (status, text) => {
      res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(text);
    };
    if (host === 'partner.example.net') return html(200, '<!doctype html><title>partner</title>partner');
    if (p === '/') return html(200, page(stats, 'data-outbound-links data-file-downloads data-form-submissions', LINKS()));
    // Pageview props from the tag (Plausible's `event-KEY`): `plan` is allow-listed, `who` is not.
    if (p === '/thanks') return html(200, page(stats, 'event-plan="basic" event-who="e2emark.jansen@example.nl"'));
    if (p.startsWith('/private/')) {
      return html(200, page(stats, 'data-outbound-links data-file-downloads data-form-submissions', LINKS()));
    }
    if (p.startsWith('/files/')) {
      res.writeHead(200, { 'Content-Type': 'application/pdf', 'Content-Disposition': 'attachment; filename="report.pdf"' });
      return res.end('%PDF-1.4 not really');
    }
    return html(404, page(stats, 'data-404'));
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  sitePort = site.address().port;
  browser = await launch([DOMAIN, 'stats.example.org', 'partner.example.net']);
});

after(async () => {
  if (browser) await browser.close();
  if (site) await new Promise((r) => site.close(r));
  if (tally) await tally.stop();
});

test('outbound link, PDF download, form, 404 and an excluded page become the expected rows in ClickHouse',
  { skip: SKIP || false, timeout: 90000 }, async () => {
    const context = await browser.newContext({ userAgent, viewport: { width: 1280, height: 720 } });
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    // The body of every beacon the browser sends (fetch and sendBeacon alike).
    const beacons = [];
    tab.on('request', (r) => {
      if (r.url().endsWith('/api/event')) beacons.push(r.postData() || '');
    });

    await tab.goto(`${origin()}/`);                                   // pageview /
    await sleep(500);
    await tab.click('#pdf');                                          // File Download (the page stays)
    await sleep(500);
    await tab.click('#tagged');                                       // Sign up, a tagged button
    await sleep(500);
    await Promise.all([tab.waitForURL(/partner\.example\.net/), tab.click('#out')]); // Outbound Link: Click
    await tab.goto(`${origin()}/`);                                   // pageview /
    await sleep(500);
    await Promise.all([tab.waitForURL(/\/thanks/), tab.click('#send')]);           // Form: Submission, pageview /thanks
    await sleep(500);
    const missing = await tab.goto(`${origin()}/missing/e2emark.jansen@example.nl`); // pageview + 404
    assert.equal(missing.status(), 404);
    await sleep(500);

    // The excluded page: the tracker loads, and nothing leaves the browser.
    const before = beacons.length;
    await tab.goto(`${origin()}/private/e2eprivate`);
    await tab.evaluate(() => window.tally('Signup'));
    await tab.click('#pdf');
    await tab.click('#tagged');
    await sleep(500);
    await setHidden(tab, true);
    await sleep(800);
    // Only the engagement of the page left before it (the 404 page) may go out meanwhile.
    const sent = beacons.slice(before);
    assert.deepEqual(sent.filter((b) => b.includes('/private')), [], 'nothing about the excluded page');
    assert.ok(sent.every((b) => JSON.parse(b).n === 'engagement'), `sent meanwhile: ${sent}`);
    // The listener sees the page's beacons (engagements sent while a page unloads may escape it),
    // so its silence on the excluded page means something.
    const seen = beacons.slice(0, before).map((b) => JSON.parse(b).n).filter((n) => n !== 'engagement');
    assert.deepEqual(seen.sort(), ['pageview', 'File Download', 'Sign up', 'Outbound Link: Click', 'pageview',
      'Form: Submission', 'pageview', 'pageview', '404'].sort(), 'beacons seen before the excluded page');
    assert.deepEqual(errors, []);
    assert.deepEqual(await context.cookies(), [], 'no cookies');

    // What tally stored, engagements aside (their times vary).
    const query = `SELECT name, path, query, props_keys, props_values FROM ${tally.db}.events
      WHERE site = '${DOMAIN}' AND name != 'engagement' ORDER BY ts, micros, event_id`;
    const expected = [
      ['pageview', '/', [], []],
      ['File Download', '/', ['url'], ['http://www.example.org/files/:number/report.pdf']],
      ['Sign up', '/', ['plan'], ['pro']],
      ['Outbound Link: Click', '/', ['url'], ['http://partner.example.net/offer/:email?utm_source=tally']],
      ['pageview', '/', [], []],
      ['Form: Submission', '/', [], []],
      ['pageview', '/thanks', ['plan'], ['basic']],
      ['pageview', '/missing/:email', [], []],
      ['404', '/missing/:email', ['path'], ['/missing/:email']],
    ];
    let rows = [];
    for (let i = 0; i < 50 && rows.length < expected.length; i++) {
      rows = await chRows(query);
      if (rows.length < expected.length) await sleep(200);
    }
    const got = rows.map((r) => [r.name, r.path, r.props_keys, r.props_values]);
    // A click and the navigation it starts send two requests at once: their arrival order is
    // not fixed, so the rows are compared as a multiset.
    const key = (r) => JSON.stringify(r);
    assert.deepEqual(got.map(key).sort(), expected.map(key).sort(), `stored rows: ${JSON.stringify(rows)}`);
    assert.ok(rows.every((r) => r.query === ''), 'no query string was stored (none allow-listed on the pages)');
    // An engagement never keeps props (the tracker sends none; the collector would drop them).
    const engProps = await chRows(`SELECT count() AS n FROM ${tally.db}.events
      WHERE site = '${DOMAIN}' AND name = 'engagement' AND notEmpty(props_keys)`);
    assert.equal(Number(engProps[0].n), 0);

    // Looked for in every column of every stored row (engagements included) and in tally's log.
    const everything = await ch(`SELECT * FROM ${tally.db}.events FORMAT TSV`);
    assert.ok(!everything.includes('/private'), 'nothing of the excluded page is stored');
    for (const raw of RAW) {
      assert.ok(!everything.includes(raw), `${raw} is stored:\n${everything}`);
      assert.ok(!tally.logs().includes(raw), `${raw} is in tally's log`);
    }
    await context.close();
  });
