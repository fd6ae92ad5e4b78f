// The built-in dashboard in a real browser: headless Chromium against a running `tally serve`
// (the real binary) and the test ClickHouse, seeded with the reports fixture
// (tests/it/fixtures/reports/events.jsonl, converted as tests/it/reports.rs load_events does).
// The fixture lies in March 2026; it is moved by whole weeks (weekdays and local hours stay)
// so that its last day falls in the week before today and "last 7/30 days" show it; complete
// days' visits are stored and rolled up (`tally visits`, `tally rollup`) before serve starts.
//
// The test logs in, switches site and period (links, the custom-date form), filters by
// clicking rows, and checks every number on the page against the stats API's answer to the
// query a script would send. It also looks at the page with JavaScript off, at phone width,
// through a share link, and checks that nothing is loaded from elsewhere. It renders the
// dashboard in English, Dutch and French (the browser's language, then the switch): no message
// key or English sentence is left on the page, and the numbers are still the API's. The goals
// panel (a.example has a page goal and an event goal) equals the API, alone, with another
// filter and when a click filters the view by a goal. A panel's CSV download holds the table's
// rows. Screenshots of each
// view go to target/screenshots/dashboard/ (printed at the end). The render time of the
// 30-day view is measured (Server-Timing) and printed, never asserted.
//
// Run: tests/browser/run.sh (needs TALLY_TEST_CLICKHOUSE_URL and target/debug/tally).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  REPO, skipReason, sha256, randomHex, ch, userLines, startTally, userAgent, launch,
} = require('./real-tally.js');

const SKIP = skipReason() || false;
const TOKEN = `tly_${randomHex(16)}`;
const SHARE = randomHex(24);
const PASSWORD = 'correct horse battery staple';
const SHOTS = path.join(REPO, 'target', 'screenshots', 'dashboard');
const FIXTURE = path.join(REPO, 'tests', 'it', 'fixtures', 'reports', 'events.jsonl');
const DAY = 86400;

let tally;
let browser;
let context; // logged in as alice
let page;
let shift; // seconds the fixture was moved by
let fixtureDays; // [first, last] UTC dates of the moved fixture
const requests = [];
const consoleErrors = [];

// ---------------------------------------------------------------- fixture

// "2026-03-29 01:15:00" (UTC) → Unix seconds.
const utcSeconds = (ts) => Date.parse(`${ts.replace(' ', 'T')}Z`) / 1000;
const isoDate = (secs) => new Date(secs * 1000).toISOString().slice(0, 10);

// Custom properties for the properties panel (a.example allow-lists `author` and `lang`): the
// blog's pageviews carry an author, the Signup a language; nothing else in the fixture changes.
function props(r) {
  if (r.site !== 'a.example') return {};
  if (r.name === 'pageview' && r.path.startsWith('/blog')) {
    const author = r.visitor % 2 ? 'Jan' : 'Piet';
    return { props_keys: ['author', 'lang'], props_values: [author, 'nl'] };
  }
  if (r.name === 'Signup') return { props_keys: ['lang'], props_values: ['en'] };
  return {};
}

async function loadFixture(db) {
  const rows = fs.readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  // Whole weeks, so that the last fixture day lands in the 7 days before today.
  const lastDay = utcSeconds('2026-03-31 00:00:00');
  const yesterday = Math.floor(Date.now() / 1000 / DAY) * DAY - DAY;
  shift = Math.max(0, Math.floor((yesterday - lastDay) / (7 * DAY))) * 7 * DAY;
  const times = [];
  const lines = rows.map((r) => {
    const t = utcSeconds(r.ts) + shift;
    times.push(t);
    return JSON.stringify({ ...r, ts: t, ...props(r) });
  });
  await ch(`INSERT INTO ${db}.events FORMAT JSONEachRow\n${lines.join('\n')}`);
  fixtureDays = [isoDate(Math.min(...times)), isoDate(Math.max(...times))];
  return rows.length;
}

// ---------------------------------------------------------------- setup

before(async () => {
  if (SKIP) return;
  fs.rmSync(SHOTS, { recursive: true, force: true });
  fs.mkdirSync(SHOTS, { recursive: true });
  tally = await startTally({
    name: 'dashboard',
    toml: `[retention]
raw_days = 3650

[[sites]]
domain = "a.example"
time_zone = "Europe/Amsterdam"
props_allowlist = ["author", "lang"]
[[sites.goals]]
page = "/blog*"
[[sites.goals]]
event = "Signup"

[[sites]]
domain = "b.example"
time_zone = "UTC"

[[api_tokens]]
name = "browser test"
sha256 = "${sha256(TOKEN)}"

${userLines('alice', PASSWORD)}
[[dashboard.share_links]]
site = "b.example"
sha256 = "${sha256(SHARE)}"
`,
    before: async (t) => {
      const n = await loadFixture(t.db);
      assert.equal(n, 71, 'the reports fixture has 71 events');
      // Visits stored before serve starts: its own first visits job would otherwise store them
      // while the pages are read, and answers taken a moment apart would differ.
      t.run('visits');
      t.run('rollup');
    },
  });
  browser = await launch();
  context = await browser.newContext({ userAgent, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
});

after(async () => {
  if (browser) await browser.close();
  if (tally) await tally.stop();
  if (!SKIP) console.log(`dashboard screenshots: ${SHOTS}`);
});

const shot = (p, name) => p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

// ---------------------------------------------------------------- reading the page

// The headline numbers: {metric: {value, change}} from data-value / data-change.
function readHeadline(p) {
  return p.$$eval('.headline .stat', (stats) => Object.fromEntries(stats.map((s) => {
    const v = s.querySelector('.value').getAttribute('data-value');
    const c = s.querySelector('.change[data-change]');
    return [s.getAttribute('data-metric'), {
      value: v === 'null' ? null : Number(v),
      change: c ? Number(c.getAttribute('data-change')) : null,
    }];
  })));
}

// A table's rows: [{dim, metrics: {name: value}}].
function readTable(p, panel) {
  return p.$$eval(`table[data-panel="${panel}"] tbody tr`, (trs) => trs.map((tr) => ({
    dim: tr.getAttribute('data-dimension'),
    metrics: Object.fromEntries([...tr.querySelectorAll('td[data-metric]')].map((td) => {
      const v = td.getAttribute('data-value');
      return [td.getAttribute('data-metric'), v === 'null' ? null : Number(v)];
    })),
  })));
}

function readHeat(p) {
  return p.$$eval('table.heat td[data-weekday]', (tds) => tds
    .filter((td) => Number(td.getAttribute('data-value')) > 0)
    .map((td) => [Number(td.getAttribute('data-weekday')), Number(td.getAttribute('data-hour')),
      Number(td.getAttribute('data-value'))]));
}

// ---------------------------------------------------------------- what the API says

// A view as the test understands it, independent of the dashboard's code.
function query(view, metrics, dimensions = [], extra = {}) {
  return {
    site_id: view.site,
    metrics,
    date_range: view.range,
    dimensions,
    filters: Object.entries(view.filters || {}).map(([dim, v]) => ['is', dim, [v]]),
    ...extra,
  };
}

const HEADLINE = ['visitors', 'visits', 'pageviews', 'visit_duration_median', 'bounce_rate'];

// Every number on the page equals the stats API's; returns the API's headline values.
async function checkPage(p, view, label) {
  const api = (body) => tally.api(TOKEN, body);
  const head = await readHeadline(p);
  const h = await api(query(view, HEADLINE, [], { include: { comparisons: { mode: 'previous_period' } } }));
  const row = h.results[0];
  HEADLINE.forEach((m, i) => {
    assert.equal(head[m].value, row.metrics[i], `${label}: headline ${m}`);
    assert.equal(head[m].change, row.comparison.change[i], `${label}: change of ${m}`);
  });

  // A filtered view has no share column (see src/dashboard/panels.rs, breakdowns).
  const share = Object.keys(view.filters || {}).length ? ['visitors'] : ['visitors', 'percentage'];
  const tables = [
    ['pages', 'event:page', ['pageviews', 'visitors', 'time_on_page', 'bounce_rate']],
    ['sources', 'visit:source', ['visitors', 'visits', 'bounce_rate']],
    ['countries', 'visit:country', share],
    ['devices', 'visit:device', share],
    ['browsers', 'visit:browser', share],
    ['oses', 'visit:os', share],
  ];
  for (const [panel, dim, metrics] of tables) {
    const a = await api(query(view, metrics, [dim], { pagination: { limit: 10 } }));
    const expected = a.results.map((r) => ({ dim: r.dimensions[0], metrics: Object.fromEntries(metrics.map((m, i) => [m, r.metrics[i]])) }));
    assert.deepEqual(await readTable(p, panel), expected, `${label}: ${panel} table`);
  }
  const campaigns = await api(query(view, ['visitors', 'visits'], ['visit:utm_campaign'], { pagination: { limit: 11 } }));
  assert.deepEqual(await readTable(p, 'campaigns'), campaigns.results
    .filter((r) => r.dimensions[0] !== '(not set)').slice(0, 10)
    .map((r) => ({ dim: r.dimensions[0], metrics: { visitors: r.metrics[0], visits: r.metrics[1] } })),
  `${label}: campaigns`);

  // Over time: every bucket of the period, zeros where the API has no row.
  const series = await api(query(view, ['visitors', 'pageviews'], ['time'], { include: { time_labels: true } }));
  const byLabel = new Map(series.results.map((r) => [r.dimensions[0], r.metrics]));
  assert.deepEqual(await readTable(p, 'over-time'), series.meta.time_labels.map((l) => ({
    dim: l, metrics: { visitors: (byLabel.get(l) || [0, 0])[0], pageviews: (byLabel.get(l) || [0, 0])[1] },
  })), `${label}: over time`);

  const hours = await api(query(view, ['visitors', 'pageviews'], ['time:hour_of_day']));
  const byHour = new Map(hours.results.map((r) => [Number(r.dimensions[0]), r.metrics]));
  assert.deepEqual(await readTable(p, 'hours'), Array.from({ length: 24 }, (_, hr) => ({
    dim: String(hr), metrics: { visitors: (byHour.get(hr) || [0, 0])[0], pageviews: (byHour.get(hr) || [0, 0])[1] },
  })), `${label}: hours`);

  const heat = await api(query(view, ['visitors'], ['time:weekday', 'time:hour_of_day'], { pagination: { limit: 168 } }));
  const sortCells = (cells) => cells.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  assert.deepEqual(sortCells(await readHeat(p)), sortCells(heat.results
    .filter((r) => r.metrics[0] > 0)
    .map((r) => [Number(r.dimensions[0]), Number(r.dimensions[1]), r.metrics[0]])), `${label}: heatmap`);

  const buckets = await api(query(view, ['visits'], ['visit:duration_bucket']));
  const byBucket = new Map(buckets.results.map((r) => [r.dimensions[0], r.metrics[0]]));
  assert.deepEqual(await readTable(p, 'durations'),
    ['0-10s', '10-30s', '30s-1m', '1-3m', '3-10m', '10-30m', '30m+'].map((b) => ({ dim: b, metrics: { visits: byBucket.get(b) || 0 } })),
    `${label}: duration buckets`);
  return Object.fromEntries(HEADLINE.map((m, i) => [m, row.metrics[i]]));
}

// ---------------------------------------------------------------- tests

test('log in: the dashboard asks for a login first, and a wrong password is refused',
  { skip: SKIP, timeout: 60000 }, async () => {
    await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
    assert.match(page.url(), /\/login\?next=%2Fdashboard%2Fa\.example%3Fperiod%3D30d$/);
    assert.equal(await page.$$eval('[data-value]', (e) => e.length), 0, 'no numbers before login');
    await shot(page, '01-login');
    await page.fill('#name', 'alice');
    await page.fill('#password', 'not the password');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(await page.textContent('[role=alert]'), /Wrong name or password/);
    await shot(page, '02-login-wrong-password');

    await page.fill('#name', 'alice');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(page.url(), `${tally.base}/dashboard/a.example?period=30d`, 'back where the user was going');
    const [cookie] = (await context.cookies()).filter((c) => c.name === 'tally_session');
    assert.ok(cookie, 'session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.secure, false, 'plain http here');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page script cannot read it');
    assert.equal(await page.evaluate(() => document.documentElement.className), 'js', 'the script ran');
    // The browser reports the 401 of the refused login as an error; nothing else may be one.
    consoleErrors.length = 0;
  });

test('a.example, last 30 days: every number equals the stats API', { skip: SKIP, timeout: 60000 }, async () => {
  const resp = await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
  assert.equal(resp.status(), 200);
  const csp = resp.headers()['content-security-policy'];
  assert.match(csp, /default-src 'self'/);
  const head = await checkPage(page, { site: 'a.example', range: '30d' }, 'a.example 30d');
  assert.ok(head.visitors > 0 && head.pageviews > head.visitors, `the fixture is in the period: ${JSON.stringify(head)}`);
  assert.equal(await page.getAttribute('.periods a[aria-current=page]', 'href'), '/dashboard/a.example?period=30d');
  // Numbers are written for people too.
  assert.match(await page.textContent('.stat[data-metric=visit_duration_median] .value'), /^\d+(s|m \d\ds)$/);
  await shot(page, '03-a.example-30d');
});

test('switch site with the site picker', { skip: SKIP, timeout: 60000 }, async () => {
  await page.click('.site-picker summary');
  await Promise.all([page.waitForNavigation(), page.click('.site-picker a:text-is("b.example")')]);
  assert.equal(page.url(), `${tally.base}/dashboard/b.example?period=30d`);
  const head = await checkPage(page, { site: 'b.example', range: '30d' }, 'b.example 30d');
  assert.ok(head.visitors > 0);
  await shot(page, '04-b.example-30d');
});

test('switch period: last 7 days, then a custom range with the date form', { skip: SKIP, timeout: 60000 }, async () => {
  await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
  await Promise.all([page.waitForNavigation(), page.click('.periods a:text-is("Last 7 days")')]);
  assert.equal(page.url(), `${tally.base}/dashboard/a.example?period=7d`);
  await checkPage(page, { site: 'a.example', range: '7d' }, 'a.example 7d');
  await shot(page, '05-a.example-7d');

  await page.click('.periods .custom summary');
  await page.fill('#from', fixtureDays[0]);
  await page.fill('#to', fixtureDays[1]);
  await Promise.all([page.waitForNavigation(), page.click('.custom button[type=submit]')]);
  assert.equal(page.url(), `${tally.base}/dashboard/a.example?period=custom&from=${fixtureDays[0]}&to=${fixtureDays[1]}`);
  const head = await checkPage(page, { site: 'a.example', range: fixtureDays }, 'a.example custom');
  assert.ok(head.visits > 0);
  await shot(page, '06-a.example-custom');

  await Promise.all([page.waitForNavigation(), page.click('.periods a:text-is("Today")')]);
  await checkPage(page, { site: 'a.example', range: 'day' }, 'a.example today');
});

test('filter by clicking a country, then a page; remove a filter', { skip: SKIP, timeout: 90000 }, async () => {
  await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
  await Promise.all([page.waitForNavigation(), page.click('table[data-panel=countries] tr[data-dimension=NL] a')]);
  assert.equal(page.url(), `${tally.base}/dashboard/a.example?period=30d&country=NL`);
  assert.match(await page.textContent('.filters'), /Country is NL/);
  const nl = await checkPage(page, { site: 'a.example', range: '30d', filters: { 'visit:country': 'NL' } }, 'country NL');
  assert.ok(nl.visitors > 0);
  await shot(page, '07-filter-country');

  await Promise.all([page.waitForNavigation(), page.click('table[data-panel=pages] tr[data-dimension="/"] a')]);
  assert.equal(page.url(), `${tally.base}/dashboard/a.example?period=30d&page=%2F&country=NL`);
  await checkPage(page, { site: 'a.example', range: '30d', filters: { 'event:page': '/', 'visit:country': 'NL' } }, 'page / and NL');
  await shot(page, '08-filter-country-and-page');

  // A device row, the other way into a filter; then remove the country with its ✕.
  await Promise.all([page.waitForNavigation(), page.click('table[data-panel=devices] tbody tr:first-child a')]);
  assert.match(page.url(), /&device=/);
  await Promise.all([page.waitForNavigation(), page.click('.filters li[data-filter=country] a.remove')]);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('country'), null);
  assert.equal(url.searchParams.get('page'), '/');
  await checkPage(page, {
    site: 'a.example', range: '30d', filters: { 'event:page': '/', 'visit:device': url.searchParams.get('device') },
  }, 'page / and a device');
});

test('nothing is loaded from anywhere else, and no script or CSP error happened', { skip: SKIP, timeout: 30000 }, async () => {
  const foreign = requests.filter((u) => !u.startsWith(`${tally.base}/`));
  assert.deepEqual(foreign, [], 'every request went to tally itself');
  assert.ok(requests.some((u) => u.includes('/assets/dashboard.css?v=')), 'the embedded stylesheet loaded');
  assert.ok(requests.some((u) => u.includes('/assets/dashboard.js?v=')), 'the embedded script loaded');
  assert.deepEqual(consoleErrors, []);
});

test('with JavaScript off the page reads the same', { skip: SKIP, timeout: 60000 }, async () => {
  const noJs = await browser.newContext({
    userAgent, viewport: { width: 1280, height: 900 }, javaScriptEnabled: false,
    storageState: await context.storageState(),
  });
  const p = await noJs.newPage();
  await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
  // dashboard.js marks <html class="js"> when it runs; here it must not have.
  assert.equal(await p.evaluate(() => document.documentElement.className), '', 'scripts really are off');
  await checkPage(p, { site: 'a.example', range: '30d' }, 'no JS');
  // The pickers are links and a form: the custom period works without script too.
  await p.click('.periods .custom summary');
  await p.fill('#from', fixtureDays[0]);
  await p.fill('#to', fixtureDays[1]);
  await Promise.all([p.waitForNavigation(), p.click('.custom button[type=submit]')]);
  await checkPage(p, { site: 'a.example', range: fixtureDays }, 'no JS, custom');
  await shot(p, '09-no-javascript');
  await noJs.close();
});

test('at phone width nothing overflows the screen', { skip: SKIP, timeout: 60000 }, async () => {
  const phone = await browser.newContext({
    userAgent, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    storageState: await context.storageState(),
  });
  const p = await phone.newPage();
  await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
  const { scroll, width } = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  assert.ok(scroll <= width + 1, `page ${scroll} px wide on a ${width} px screen`);
  await checkPage(p, { site: 'a.example', range: '30d' }, 'phone');
  await shot(p, '10-phone');
  await phone.close();
});

test('a share link shows its one site read-only, without a login', { skip: SKIP, timeout: 60000 }, async () => {
  const anon = await browser.newContext({ userAgent, viewport: { width: 1280, height: 900 } });
  const p = await anon.newPage();
  await p.goto(`${tally.base}/share/${SHARE}`);
  await checkPage(p, { site: 'b.example', range: '30d' }, 'share link');
  assert.equal(await p.$('.site-picker'), null, 'no site picker');
  assert.equal(await p.$('form[action="/logout"]'), null, 'no account');
  assert.match(await p.textContent('header'), /Shared, read-only view/);
  await shot(p, '11-share-link');
  // Clicking a filter keeps the view inside the share link.
  await Promise.all([p.waitForNavigation(), p.click('table[data-panel=countries] tbody tr:first-child a')]);
  assert.ok(p.url().startsWith(`${tally.base}/share/${SHARE}?period=30d&country=`), p.url());
  // It opens nothing else.
  await p.goto(`${tally.base}/dashboard/b.example`);
  assert.match(p.url(), /\/login\?next=/);
  await anon.close();
});

// ---------------------------------------------------------------- languages

// locales/LANG.toml as {dotted key: message}: the files hold only `[section]` lines, comments
// and `key = "message"` lines (TOML basic strings, which JSON reads the same).
function messages(lang) {
  const out = {};
  let section = '';
  for (const line of fs.readFileSync(path.join(REPO, 'locales', `${lang}.toml`), 'utf8').split('\n')) {
    const head = line.match(/^\[([^\]]+)\]\s*$/);
    if (head) { section = `${head[1]}.`; continue; }
    const kv = line.match(/^([A-Za-z0-9_.]+) = (".*")\s*$/);
    if (kv) out[section + kv[1]] = JSON.parse(kv[2]);
  }
  return out;
}

// Everything on a page people read: its text, and the titles, labels and alt texts.
const readable = (p) => p.evaluate(() => {
  const attrs = [...document.querySelectorAll('[title],[aria-label],[alt],[placeholder]')]
    .flatMap((e) => ['title', 'aria-label', 'alt', 'placeholder'].map((a) => e.getAttribute(a)).filter(Boolean));
  const svgTitles = [...document.querySelectorAll('title')].map((t) => t.textContent);
  return [document.body.innerText, ...attrs, ...svgTitles].join('\n');
});

test('the dashboard in English, Dutch and French: no untranslated key, numbers as the API\'s, the switch',
  { skip: SKIP, timeout: 600000 }, async () => {
    const en = messages('en');
    const keys = Object.keys(en);
    assert.ok(keys.length > 100, `${keys.length} keys in locales/en.toml`);
    const dateOf = { en: 'Mar 31, 2026', nl: '31 mrt 2026', fr: '31 mars 2026' };
    for (const [lang, locale] of [['en', 'en-GB'], ['nl', 'nl-NL'], ['fr', 'fr-FR']]) {
      // The browser's language (Accept-Language), as a visitor's own browser sends it.
      const ctx = await browser.newContext({
        userAgent, locale, viewport: { width: 1280, height: 900 }, storageState: await context.storageState(),
      });
      const p = await ctx.newPage();
      // Three full renders per language: give a loaded machine time (a debug build takes seconds).
      p.setDefaultTimeout(120000);
      const errors = [];
      p.on('pageerror', (e) => errors.push(e.message));
      await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
      assert.equal(await p.getAttribute('html', 'lang'), lang);
      const text = await readable(p);
      // No key written as itself, and no `{placeholder}` left unfilled.
      const untranslated = keys.filter((k) => k.includes('.') && text.includes(k));
      assert.deepEqual(untranslated, [], `${lang}: keys on the page`);
      assert.doesNotMatch(text, /\{[a-z_]+\}/, `${lang}: an unfilled placeholder`);
      // No English sentence on a Dutch or French page: every English message of three words
      // or more that the language writes differently (its literal parts between placeholders).
      if (lang !== 'en') {
        const mine = messages(lang);
        const english = keys
          .filter((k) => !k.startsWith('privacy.') && mine[k] !== en[k])
          .flatMap((k) => en[k].split(/\{[a-z_]+\}/))
          .map((s) => s.trim())
          .filter((s) => s.split(/\s+/).length >= 3);
        assert.deepEqual(english.filter((s) => text.includes(s)), [], `${lang}: English text on the page`);
        assert.ok(text.includes(mine['metric.visitors']) && text.includes(mine['header.logout']), `${lang}: its own words`);
      }
      // The numbers are the API's in every language; written as the language writes them.
      await checkPage(p, { site: 'a.example', range: '30d' }, `30d in ${lang}`);
      const visitors = (await readHeadline(p)).visitors.value;
      const shown = await p.textContent('.stat[data-metric=visitors] .value');
      const grouped = new Intl.NumberFormat(lang).format(visitors).replace(/\u00a0/g, '\u202f');
      assert.equal(shown.trim(), grouped, `${lang}: visitors written ${shown}`);
      // A custom period ending on the fixture's last day shows that date in the language.
      await p.goto(`${tally.base}/dashboard/a.example?period=custom&from=2026-03-26&to=2026-03-31`);
      assert.ok((await readable(p)).includes(dateOf[lang]), `${lang}: ${dateOf[lang]}`);
      await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
      await shot(p, `12-language-${lang}`);
      assert.deepEqual(errors, []);
      await ctx.close();
    }

    // The switch: a French browser picks Dutch; the choice stays on every link and page.
    const ctx = await browser.newContext({
      userAgent, locale: 'fr-FR', viewport: { width: 1280, height: 900 }, storageState: await context.storageState(),
    });
    const p = await ctx.newPage();
    p.setDefaultTimeout(120000);
    await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
    assert.equal(await p.getAttribute('html', 'lang'), 'fr');
    await Promise.all([p.waitForNavigation(), p.click('.languages a[hreflang=nl]')]);
    assert.equal(p.url(), `${tally.base}/dashboard/a.example?period=30d&lang=nl`);
    assert.equal(await p.getAttribute('html', 'lang'), 'nl');
    assert.equal(await p.getAttribute('.languages a[aria-current]', 'hreflang'), 'nl');
    await Promise.all([p.waitForNavigation(), p.click(`.periods a:text-is("${messages('nl')['period.7d']}")`)]);
    assert.equal(p.url(), `${tally.base}/dashboard/a.example?period=7d&lang=nl`);
    assert.equal(await p.getAttribute('html', 'lang'), 'nl');
    await shot(p, '13-language-switched-to-nl');
    await ctx.close();
  });

// The goals panel as the API answers it: a row per goal with conversions.
const GOAL_METRICS = ['visitors', 'events', 'conversion_rate'];
async function checkGoals(p, view, label) {
  const a = await tally.api(TOKEN, query(view, GOAL_METRICS, ['event:goal'], { pagination: { limit: 10 } }));
  const expected = a.results.map((r) => ({
    dim: r.dimensions[0], metrics: Object.fromEntries(GOAL_METRICS.map((m, i) => [m, r.metrics[i]])),
  }));
  assert.deepEqual(await readTable(p, 'goals'), expected, `${label}: goals table`);
  return expected;
}

test('goals panel: its numbers are the API\'s, with other filters too; a click filters the view by the goal',
  { skip: SKIP, timeout: 120000 }, async () => {
    await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
    const rows = await checkGoals(page, { site: 'a.example', range: '30d' }, 'goals 30d');
    // The fixture's /blog/… pageviews and its Signup event convert.
    assert.deepEqual(rows.map((r) => r.dim).sort(), ['Signup', 'Visit /blog*']);
    assert.ok(rows.every((r) => r.metrics.visitors > 0 && r.metrics.events >= r.metrics.visitors));
    await shot(page, '14-goals');

    // The view's other filters apply to the panel.
    await Promise.all([page.waitForNavigation(), page.click('table[data-panel=countries] tr[data-dimension=NL] a')]);
    await checkGoals(page, { site: 'a.example', range: '30d', filters: { 'visit:country': 'NL' } }, 'goals, NL');

    // Clicking a goal filters the view: every panel counts that goal's conversions.
    const goal = 'Visit /blog*';
    await Promise.all([page.waitForNavigation(), page.click(`table[data-panel=goals] tr[data-dimension="${goal}"] a`)]);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('goal'), goal);
    assert.equal(url.searchParams.get('country'), 'NL');
    const view = { site: 'a.example', range: '30d', filters: { 'visit:country': 'NL', 'event:goal': goal } };
    const goalRows = await checkGoals(page, view, 'goal filter');
    assert.deepEqual(goalRows.map((r) => r.dim), [goal]);
    const head = await readHeadline(page);
    const h = await tally.api(TOKEN, query(view, GOAL_METRICS));
    GOAL_METRICS.forEach((m, i) => assert.equal(head[m].value, h.results[0].metrics[i], `goal filter: headline ${m}`));
    const conv = ['visitors', 'events', 'group_conversion_rate'];
    const pages = await tally.api(TOKEN, query(view, conv, ['event:page'], { pagination: { limit: 10 } }));
    assert.deepEqual(await readTable(page, 'pages'), pages.results.map((r) => ({
      dim: r.dimensions[0], metrics: Object.fromEntries(conv.map((m, i) => [m, r.metrics[i]])),
    })), 'goal filter: pages table');
    await shot(page, '15-goal-filter');

    // Its CSV holds the panel's rows.
    const dl = await browser.newContext({ userAgent, acceptDownloads: true, storageState: await context.storageState() });
    const p = await dl.newPage();
    await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
    const [download] = await Promise.all([p.waitForEvent('download'), p.click('a.csv[data-csv=goals]')]);
    const [header, ...lines] = fs.readFileSync(await download.path(), 'utf8').trimEnd().split('\r\n');
    assert.equal(header, 'event:goal,visitors,events,conversion_rate');
    assert.deepEqual(lines.map((l) => l.split(',')[0]).sort(), ['Signup', 'Visit /blog*']);
    // A site without goals has no goals panel.
    await p.goto(`${tally.base}/dashboard/b.example?period=30d`);
    assert.equal(await p.$('#goals-panel'), null, 'no goals panel on b.example');
    await dl.close();
  });

test('properties panel: its numbers are the API\'s; a tab shows another property, also without JavaScript; its CSV',
  { skip: SKIP, timeout: 120000 }, async () => {
    const metrics = ['visitors', 'pageviews', 'events'];
    const check = async (p, key, label) => {
      const a = await tally.api(TOKEN, query({ site: 'a.example', range: '30d' }, metrics, [`event:props:${key}`],
        { pagination: { limit: 10 } }));
      const rows = await readTable(p, 'props');
      assert.deepEqual(rows, a.results.map((r) => ({
        dim: r.dimensions[0], metrics: Object.fromEntries(metrics.map((m, i) => [m, r.metrics[i]])),
      })), `${label}: props table`);
      return rows;
    };
    await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
    const authors = await check(page, 'author', 'author');
    assert.deepEqual(authors.map((r) => r.dim).sort(), ['(none)', 'Jan', 'Piet']);
    assert.ok(authors.filter((r) => r.dim !== '(none)').every((r) => r.metrics.pageviews > 0),
      'the authors are pageview props');
    await shot(page, '16-props');
    // The lang tab, a plain link: the same view showing `lang`.
    await Promise.all([page.waitForNavigation(), page.click('#props-panel nav.tabs a:text-is("lang")')]);
    assert.equal(new URL(page.url()).searchParams.get('prop'), 'lang');
    const langs = await check(page, 'lang', 'lang');
    assert.deepEqual(langs.map((r) => r.dim).sort(), ['(none)', 'en', 'nl']);
    assert.equal(langs.find((r) => r.dim === 'en').metrics.pageviews, 0, 'en is the Signup event\'s');
    assert.equal(await page.getAttribute('#props-panel nav.tabs a[aria-current]', 'href').then((h) => new URL(h, tally.base).searchParams.get('prop')), 'lang');
    // Without JavaScript the tab works the same.
    const noJs = await browser.newContext({ userAgent, javaScriptEnabled: false, storageState: await context.storageState() });
    const q = await noJs.newPage();
    await q.goto(`${tally.base}/dashboard/a.example?period=30d`);
    await Promise.all([q.waitForNavigation(), q.click('#props-panel nav.tabs a:text-is("lang")')]);
    await check(q, 'lang', 'lang, no JavaScript');
    await noJs.close();
    // A row filters the view by its value: the page is then a conversion report, as the API's
    // answer to the same filter.
    await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
    await Promise.all([page.waitForNavigation(), page.click('table[data-panel=props] tr[data-dimension=Jan] a')]);
    assert.equal(new URL(page.url()).searchParams.get('props.author'), 'Jan');
    const byJan = { site: 'a.example', range: '30d', filters: { 'event:props:author': 'Jan' } };
    const head = await readHeadline(page);
    const h = await tally.api(TOKEN, query(byJan, GOAL_METRICS));
    GOAL_METRICS.forEach((m, i) => assert.equal(head[m].value, h.results[0].metrics[i], `author Jan: headline ${m}`));
    assert.ok(head.visitors.value > 0);
    const jp = await tally.api(TOKEN, query(byJan, ['visitors', 'events', 'group_conversion_rate'], ['event:page'], { pagination: { limit: 10 } }));
    assert.deepEqual((await readTable(page, 'pages')).map((r) => r.dim), jp.results.map((r) => r.dimensions[0]));
    assert.ok(jp.results.every((r) => r.dimensions[0].startsWith('/blog')), 'Jan wrote on the blog only');
    // Its CSV: every row of the shown property.
    const dl = await browser.newContext({ userAgent, acceptDownloads: true, storageState: await context.storageState() });
    const d = await dl.newPage();
    await d.goto(`${tally.base}/dashboard/a.example?period=30d&prop=lang`);
    const [download] = await Promise.all([d.waitForEvent('download'), d.click('a.csv[data-csv=props]')]);
    const [header, ...lines] = fs.readFileSync(await download.path(), 'utf8').trimEnd().split('\r\n');
    assert.equal(header, 'event:props:lang,visitors,pageviews,events');
    assert.deepEqual(lines.map((l) => l.split(',')[0]).sort(), ['(none)', 'en', 'nl']);
    // b.example allow-lists nothing: no properties panel.
    await d.goto(`${tally.base}/dashboard/b.example?period=30d`);
    assert.equal(await d.$('#props-panel'), null, 'no properties panel on b.example');
    await dl.close();
  });

test('CSV download of a panel: the table\'s rows, all of them', { skip: SKIP, timeout: 60000 }, async () => {
  const dl = await browser.newContext({ userAgent, acceptDownloads: true, storageState: await context.storageState() });
  const p = await dl.newPage();
  await p.goto(`${tally.base}/dashboard/a.example?period=30d`);
  const [download] = await Promise.all([p.waitForEvent('download'), p.click('a.csv[data-csv=pages]')]);
  assert.match(download.suggestedFilename(), /^a\.example_pages_\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d\.csv$/);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  const [header, ...lines] = csv.trimEnd().split('\r\n');
  assert.equal(header, 'event:page,pageviews,visitors,time_on_page,bounce_rate');
  const table = await readTable(p, 'pages');
  assert.ok(lines.length >= table.length && table.length > 0);
  // The page shows the first rows of the CSV (paths in the fixture hold no comma or quote).
  table.forEach((row, i) => {
    const cells = lines[i].split(',');
    assert.equal(cells[0], row.dim);
    assert.deepEqual(cells.slice(1).map((c) => (c === '' ? null : Number(c))),
      ['pageviews', 'visitors', 'time_on_page', 'bounce_rate'].map((m) => row.metrics[m]));
  });
  await dl.close();
});

test('render time of the 30-day view (measured, not asserted)', { skip: SKIP, timeout: 60000 }, async (t) => {
  const server = [];
  const load = [];
  for (let i = 0; i < 7; i++) {
    const r = await page.goto(`${tally.base}/dashboard/a.example?period=30d&n=${i}`);
    const st = r.headers()['server-timing'] || '';
    server.push(Number((st.match(/dur=([\d.]+)/) || [])[1]));
    load.push(await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return n.loadEventEnd - n.startTime;
    }));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const msg = `30-day view of the reports fixture, ${server.length} loads: server render median ${median(server).toFixed(1)} ms `
    + `(max ${Math.max(...server).toFixed(1)}), page load in the browser median ${median(load).toFixed(0)} ms `
    + `(max ${Math.max(...load).toFixed(0)}); tally ${process.env.TALLY_BIN ? 'from TALLY_BIN' : 'debug build'}`;
  t.diagnostic(msg);
  console.log(msg);
  assert.ok(server.every(Number.isFinite), 'Server-Timing present');
});

test('log out', { skip: SKIP, timeout: 30000 }, async () => {
  await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button')]);
  assert.equal(page.url(), `${tally.base}/login`);
  assert.deepEqual((await context.cookies()).filter((c) => c.name === 'tally_session'), []);
  await page.goto(`${tally.base}/dashboard/a.example?period=30d`);
  assert.match(page.url(), /\/login\?next=/);
});
