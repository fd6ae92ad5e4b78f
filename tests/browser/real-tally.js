// Helpers for the browser tests that run against the real thing: the `tally` binary built by
// cargo (target/debug/tally, under CARGO_TARGET_DIR when set, or TALLY_BIN) started with a
// generated config against the test ClickHouse (TALLY_TEST_CLICKHOUSE_URL, started by
// scripts/test.sh), and headless Chromium launched the way tracker.test.js launches it.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn, execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const REPO = path.join(__dirname, '..', '..');
const CLICKHOUSE = (process.env.TALLY_TEST_CLICKHOUSE_URL || '').replace(/\/+$/, '');
// Where cargo put it: CARGO_TARGET_DIR (a relative one from the repository, where
// scripts/test.sh runs cargo), or target/.
const TALLY_BIN = process.env.TALLY_BIN
  || path.join(path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target'), 'debug', 'tally');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Why a real-server test cannot run here, or null.
function skipReason() {
  if (!CLICKHOUSE) return 'TALLY_TEST_CLICKHOUSE_URL is not set (scripts/test.sh starts ClickHouse and sets it)';
  if (!fs.existsSync(TALLY_BIN)) return `${TALLY_BIN} is missing: run cargo build first`;
  return null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const randomHex = (n) => crypto.randomBytes(n).toString('hex');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// SQL over ClickHouse's HTTP interface; returns the text answer.
async function ch(sql) {
  const r = await fetch(`${CLICKHOUSE}/`, { method: 'POST', body: sql });
  const text = await r.text();
  if (!r.ok) throw new Error(`ClickHouse: ${text}\nfor: ${sql.slice(0, 300)}`);
  return text;
}

async function chRows(sql) {
  return (await ch(`${sql} FORMAT JSONEachRow`)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// The config lines of a dashboard user, made by the real `tally hash-password`.
function userLines(name, password) {
  const out = execFileSync(TALLY_BIN, ['hash-password', name], { input: `${password}\n`, encoding: 'utf8' });
  return out.split('add to the config:\n')[1];
}

// A running `tally serve`. `toml` is appended to the generated [server]/[clickhouse]/[ingest]
// sections (sites, tokens, dashboard...). `before(tally)` runs after `tally migrate` and before
// `serve` (to load data and roll it up the way production does).
async function startTally({ name, toml, before }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tally-${name}-`));
  const port = await freePort();
  const db = `browser_${name}_${process.pid}_${Date.now() % 100000}`;
  const config = path.join(dir, 'tally.toml');
  fs.writeFileSync(config, `[server]
listen = "127.0.0.1:${port}"

[clickhouse]
url = "${CLICKHOUSE}"
database = "${db}"

[ingest]
flush_interval_ms = 100

${toml}
`);
  const run = (...args) => execFileSync(TALLY_BIN, [...args, '--config', config], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  run('migrate');
  const tally = { base: `http://127.0.0.1:${port}`, port, db, dir, config, run };
  if (before) await before(tally);
  const log = fs.openSync(path.join(dir, 'serve.log'), 'w');
  const child = spawn(TALLY_BIN, ['serve', '--config', config], {
    stdio: ['ignore', log, log],
    env: { ...process.env, TALLY_LOG: process.env.TALLY_LOG || 'info' },
  });
  tally.logs = () => fs.readFileSync(path.join(dir, 'serve.log'), 'utf8');
  let exited = null;
  child.on('exit', (code) => { exited = code; });
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited !== null) throw new Error(`tally exited (${exited}):\n${tally.logs()}`);
    try {
      const r = await fetch(`${tally.base}/readyz`);
      if (r.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`tally not ready in 30 s:\n${tally.logs()}`);
    await sleep(100);
  }
  tally.stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && exited === null; i++) await sleep(50);
      if (exited === null) child.kill('SIGKILL');
    }
    await ch(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  };
  // The stats API with a bearer token.
  tally.api = async (token, body) => {
    const r = await fetch(`${tally.base}/api/v2/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`stats API ${r.status}: ${text}\nfor ${JSON.stringify(body)}`);
    return JSON.parse(text);
  };
  return tally;
}

// A normal desktop Chrome user agent, not "HeadlessChrome" (tally drops bots), on the command
// line too, so that beacons from unloading documents carry it (see tracker.test.js).
const major = (execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  .match(/(\d+)\.\d+\.\d+/) || [])[1];
const userAgent = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major || '140'}.0.0.0 Safari/537.36`;

function launch(hostRules = []) {
  const args = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-agent=${userAgent}`,
  ];
  if (hostRules.length) args.push(`--host-resolver-rules=${hostRules.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30000, args });
}

// Make the page hidden, as the browser does when the tab is switched away (headless Chromium
// keeps pages visible; see tracker.test.js).
async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    if (h) {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
    } else {
      delete document.visibilityState;
      delete document.hidden;
    }
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

module.exports = {
  REPO, CLICKHOUSE, skipReason, sleep, sha256, randomHex, freePort, ch, chRows, userLines,
  startTally, userAgent, launch, setHidden,
};
