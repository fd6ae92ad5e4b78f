// The tracker against the real collector: headless Chromium loads a test page that includes
// /t.js from a running `tally serve` (the real binary, the test ClickHouse), navigates the way a
// visitor does (a normal load, an SPA navigation with history.pushState, the tab hidden after a
// few seconds), and the test then reads what tally stored in ClickHouse and what the stats API
// makes of it (one visit, two pageviews, its duration).
//
// The page is served by this test on 127.0.0.1 under the name www.example.org, and tally under
// stats.example.org (Chromium maps both names to 127.0.0.1), because the tracker deliberately
// sends nothing from a page on "localhost" (see tracker.test.js, h.).
//
// Run: tests/browser/run.sh (needs TALLY_TEST_CLICKHOUSE_URL and target/debug/tally).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const {
  skipReason, sleep, sha256, randomHex, chRows, startTally, userAgent, launch, setHidden,
} = require('./real-tally.js');

const SKIP = skipReason();
const DOMAIN = 'www.example.org';
const TOKEN = `tly_${randomHex(16)}`;

let tally;
let site;
let sitePort;
let browser;

function page(statsOrigin) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>tally end-to-end page</title>
<script defer data-domain="${DOMAIN}" src="${statsOrigin}/t.js"></script>
</head><body>
<button id="go" onclick="history.pushState({}, '', '/spa/other')">go</button>
<div style="height:3000px">a tall page</div>
</body></html>`;
}

before(async () => {
  if (SKIP) return;
  tally = await startTally({
    name: 'tracker',
    toml: `[[sites]]
domain = "${DOMAIN}"
time_zone = "UTC"

[[api_tokens]]
name = "e2e"
sha256 = "${sha256(TOKEN)}"
`,
  });
  site = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (req.method === 'GET' && (p === '/' || p === '/spa/other')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(page(`http://stats.example.org:${tally.port}`));
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  sitePort = site.address().port;
  browser = await launch([DOMAIN, 'stats.example.org']);
});

after(async () => {
  if (browser) await browser.close();
  if (site) await new Promise((r) => site.close(r));
  if (tally) await tally.stop();
});

test('load, SPA navigation and a hidden tab become one visit in ClickHouse, with its duration',
  { skip: SKIP || false, timeout: 60000 }, async () => {
    const context = await browser.newContext({ userAgent, viewport: { width: 1280, height: 720 } });
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    const beacons = [];
    tab.on('response', (r) => { if (r.url().endsWith('/api/event')) beacons.push(r.status()); });
    const home = `http://${DOMAIN}:${sitePort}/`;
    const from = new Date(Date.now() - 60000).toISOString();

    await tab.goto(home);                    // a normal load: pageview of /
    await sleep(1500);
    await tab.click('#go');                  // SPA: engagement of /, pageview of /spa/other
    assert.equal(tab.url(), `http://${DOMAIN}:${sitePort}/spa/other`);
    await sleep(3000);
    await setHidden(tab, true);              // tab hidden: engagement of /spa/other
    const hiddenAt = Date.now();
    await sleep(1500);                       // tally flushes every 100 ms

    assert.deepEqual(errors, []);
    assert.deepEqual(await context.cookies(), [], 'no cookies, from the page or from tally');

    // What tally stored.
    let rows = [];
    for (let i = 0; i < 50 && rows.length < 4; i++) {
      rows = await chRows(`SELECT name, path, engaged_ms, scroll_depth, visitor, browser, os, device,
        toUnixTimestamp(ts) AS t FROM ${tally.db}.events WHERE site = '${DOMAIN}' ORDER BY ts, event_id`);
      if (rows.length < 4) await sleep(200);
    }
    // The engagement of / and the pageview of /spa/other leave together (two requests), so
    // their arrival order, and so their order within one second, is not fixed.
    const key = (r) => `${r.name} ${r.path}`;
    assert.deepEqual(rows.map(key).sort(), [
      'engagement /', 'engagement /spa/other', 'pageview /', 'pageview /spa/other',
    ], `stored rows: ${JSON.stringify(rows)}`);
    assert.equal(key(rows[0]), 'pageview /', 'the load comes first');
    assert.equal(key(rows[3]), 'engagement /spa/other', 'hiding the tab comes last');
    const row = (k) => rows.find((r) => key(r) === k);
    const e1 = Number(row('engagement /').engaged_ms);
    const e2 = Number(row('engagement /spa/other').engaged_ms);
    assert.ok(e1 >= 1000 && e1 <= 6000, `engaged ms on / = ${e1} (the test stayed ~1.5 s)`);
    assert.ok(e2 >= 2500 && e2 <= 8000, `engaged ms on /spa/other = ${e2} (the test stayed ~3 s)`);
    assert.equal(new Set(rows.map((r) => r.visitor)).size, 1, 'one visitor hash');
    assert.equal(rows[0].browser, 'Chrome');
    assert.equal(rows[0].os, 'GNU/Linux');
    assert.ok(beacons.length >= 3 && beacons.every((s) => s === 202), `beacon answers ${beacons}`);

    // What the stats API makes of it: one visit of two pageviews, not a bounce, lasting from
    // the first pageview to the last event (whole seconds of the stored times).
    const to = new Date(hiddenAt + 60000).toISOString();
    const answer = await tally.api(TOKEN, {
      site_id: DOMAIN,
      metrics: ['visitors', 'visits', 'pageviews', 'bounce_rate', 'visit_duration', 'time_on_page'],
      date_range: [from, to],
    });
    const [visitors, visits, pageviews, bounceRate, duration] = answer.results[0].metrics;
    const expected = Number(rows[3].t) - Number(rows[0].t);
    assert.deepEqual([visitors, visits, pageviews, bounceRate], [1, 1, 2, 0], JSON.stringify(answer.results));
    assert.equal(duration, expected, `visit duration = last event − first pageview (${expected} s)`);
    assert.ok(duration >= 3 && duration <= 12, `the test kept the page ~4.5 s: duration ${duration} s`);

    // Per page: the time on page is the engaged time of each page.
    const pages = await tally.api(TOKEN, {
      site_id: DOMAIN,
      metrics: ['pageviews', 'time_on_page'],
      date_range: [from, to],
      dimensions: ['event:page'],
      order_by: [['event:page', 'asc']],
    });
    assert.deepEqual(pages.results.map((r) => [r.dimensions[0], r.metrics[0], r.metrics[1]]), [
      ['/', 1, Math.round(e1 / 1000)],
      ['/spa/other', 1, Math.round(e2 / 1000)],
    ]);
    await context.close();
  });
