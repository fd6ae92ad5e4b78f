//! Issue 6, the privacy officer's view: the end-to-end audit on an injected clock. Known IP
//! addresses, user agents and personal data (Faker-made e-mails, BSNs, IBANs, phone numbers,
//! UUIDs, tokens, plus fixed markers) go in through HTTP over two simulated days, with the
//! collector in-process so that the test owns its clock and its log: the salt rotates at midnight
//! and expires after the grace, batches wait in the spool while ClickHouse is cut off, one is
//! refused and kept aside, rollups run, and retention drops the first day and the kept-aside
//! file. Every column of every table (before and after retention), every spool file seen, every
//! log line at trace level and every HTTP answer is then searched for every known value.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use serde_json::{json, Value};
use tally::clock::{Clock, ManualClock};
use tally::salt::SaltStore;
use tokio::net::TcpListener;

use crate::reports::post_query;
use crate::support::*;

/// Browsers whose user agents carry a marker that could only come from the raw header.
const UA_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.205 Safari/537.36 PRIVMUA-Wq4r";
const UA_ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/PRIVMUA-Kx7m) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.200 Mobile Safari/537.36";
const UA_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/PRIVMUA-Pz3n Safari/604.1";
const UA_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0; PRIVMUA-Lm8s) Gecko/20100101 Firefox/133.0";
/// A crawler: answered 202, counted by reason, never stored.
const UA_BOT: &str =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) PRIVMUA-Bt5v";
const USER_AGENTS: [&str; 5] = [UA_WINDOWS, UA_ANDROID, UA_IPHONE, UA_MAC, UA_BOT];

/// A visitor: how its address reaches tally (a header from the trusted proxy, which is this
/// test on 127.0.0.1, or none: then the socket peer 127.0.0.1 is the client) and its browser.
struct Visitor {
    forwarded: Option<(&'static str, &'static str)>,
    ua: &'static str,
}

const VISITORS: [Visitor; 6] = [
    Visitor {
        forwarded: Some(("x-forwarded-for", "193.0.6.139")),
        ua: UA_WINDOWS,
    },
    Visitor {
        forwarded: Some(("x-forwarded-for", "2a00:1450:4001:80b::200e")),
        ua: UA_ANDROID,
    },
    Visitor {
        forwarded: Some(("x-forwarded-for", "::ffff:198.51.100.23")),
        ua: UA_IPHONE,
    },
    Visitor {
        forwarded: Some(("x-forwarded-for", "203.0.113.77, 10.20.30.40")),
        ua: UA_MAC,
    },
    Visitor {
        forwarded: Some((
            "forwarded",
            "for=\"[2001:67c:2e8:22::c100:68b]:4711\";proto=https",
        )),
        ua: UA_WINDOWS,
    },
    Visitor {
        forwarded: None,
        ua: UA_ANDROID,
    },
];

/// Every address named in a forwarding header above (each is searched in several spellings).
const ADDRESSES: [&str; 6] = [
    "193.0.6.139",
    "2a00:1450:4001:80b::200e",
    "198.51.100.23",
    "203.0.113.77",
    "10.20.30.40",
    "2001:67c:2e8:22::c100:68b",
];

/// Personal data of our own besides Faker's, one per class, in the shapes people type.
const FIXED: [(&str, &str); 6] = [
    ("email", "jan.jansen@example.nl"),
    ("bsn", "123456782"),
    ("iban", "NL91ABNA0417164300"),
    ("phone", "0612345678"),
    ("uuid", "9f1c2b7e-4d3a-4c8e-9b1a-2f6d7e8c9a0b"),
    ("token", "q7Zt3KfW9xLm2VbN8pRc4YhJ6sDg1QaE"),
];
/// Faker samples taken per class from `pii-samples.json`.
const PER_CLASS: usize = 6;

/// Markers that only ever travel in parts of a URL or beacon that tally drops.
const MARKERS: [&str; 6] = [
    "SESSIONAUDIT42",
    "fragsecret-audit",
    "refpath-audit",
    "Wachtwoord-AUDIT7",
    "Marijke-AUDIT",
    "Z-2026-0042-AUDIT",
];
/// An allow-listed property value: it must be found where rows are (tables, spool), which
/// proves those places are really searched.
const CANARY: &str = "gold-AUDITCANARY";
/// The stats API token of the privacy officer.
const TOKEN: &str = "audit-officer-token";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn form(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// The log: every tracing event of the collector's threads, at trace level, into a buffer.

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The runtime threads' log subscriber, set when each starts and dropped when it stops.
    static LOG_GUARD: RefCell<Option<tracing::dispatcher::DefaultGuard>> = const { RefCell::new(None) };
}

// ---------------------------------------------------------------------------------------------
// What is searched (places) and what is searched for (needles).

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Table,
    Spool,
    Log,
    Http,
}

struct Place {
    name: String,
    kind: Kind,
    text: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Personal,
    /// The socket peer. Tally's own addresses (the listener, ClickHouse's) are in its log and
    /// its privacy report, so only tables and spool files are searched for it.
    Loopback,
    /// A salt: expected in the `salts.salt` column while it lives, nowhere else ever.
    Salt,
    /// A daily visitor hash: expected in the raw `events.visitor` column, its copies in
    /// `events_by_hour` and `visit_carry` (dropped with it), and in spool files (rows on their
    /// way there), nowhere else: stored visits and rollups carry none.
    Hash,
}

struct Needle {
    what: String,
    /// Lower case; the places are searched lower-cased.
    text: String,
    class: Class,
}

impl Needle {
    /// Found in `hay` (lower case)? A number only counts with no digit right before or after
    /// it, so that a BSN cannot be "found" inside a random event id.
    fn in_text(&self, hay: &str) -> bool {
        if !self.text.bytes().all(|b| b.is_ascii_digit()) {
            return hay.contains(&self.text);
        }
        let b = hay.as_bytes();
        hay.match_indices(&self.text).any(|(i, m)| {
            (i == 0 || !b[i - 1].is_ascii_digit())
                && b.get(i + m.len()).is_none_or(|c| !c.is_ascii_digit())
        })
    }
}

/// An address in the spellings a log line, a row or a file could hold it in.
fn address_forms(ip: IpAddr) -> Vec<String> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let mapped = v4.to_ipv6_mapped();
            vec![
                v4.to_string(),
                format!("::ffff:{v4}"),
                mapped.to_string(),
                format!("{}.{}.{}.", o[0], o[1], o[2]),
                hex::encode(mapped.octets()),
                hex::encode(o),
            ]
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let groups = |w: usize| {
                s.iter()
                    .map(|g| format!("{g:0w$x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            };
            vec![
                v6.to_string(),
                groups(4),
                groups(1),
                format!("{:x}:{:x}:{:x}:", s[0], s[1], s[2]),
                hex::encode(v6.octets()),
            ]
        }
    }
}

/// The personal data: the fixed values, then Faker's first samples of each class. Numbers
/// shorter than 8 digits are left out (they could be a count or a time in an answer).
fn personal_data() -> Vec<(String, String)> {
    let samples: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("pii-samples.json")).unwrap())
            .unwrap();
    let mut out: Vec<(String, String)> = FIXED
        .iter()
        .map(|(c, v)| (c.to_string(), v.to_string()))
        .collect();
    for class in ["email", "bsn", "iban", "phone", "uuid", "token", "number"] {
        let usable = |s: &&str| {
            let digits = s.bytes().filter(u8::is_ascii_digit).count();
            // TSV output escapes these; a needle must read the same in every place.
            !s.contains(['\'', '\\'])
                && (!matches!(class, "number" | "phone" | "bsn") || digits >= 8)
        };
        let list = samples[class].as_array().expect("a class of samples");
        out.extend(
            list.iter()
                .filter_map(Value::as_str)
                .filter(usable)
                .take(PER_CLASS)
                .map(|s| (class.to_string(), s.to_string())),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The run: an HTTP client that keeps every answer, the expected row count, what was sent.

struct Run {
    http: reqwest::Client,
    /// Moved a second after each beacon, so that no two events of a visit tie on time.
    clock: Arc<ManualClock>,
    base: String,
    db: String,
    places: Vec<Place>,
    expected_rows: u64,
    /// Page and referrer URLs with a query, fragment or user info, their raw query strings
    /// and fragments: none may be stored or logged whole.
    sent_urls: BTreeSet<String>,
    /// Every salt seen in the `salts` table at any time.
    salts: BTreeSet<(String, String)>,
    spool_files: BTreeSet<PathBuf>,
}

impl Run {
    async fn request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> u16 {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("tally reachable");
        let status = r.status().as_u16();
        let mut text = String::new();
        for (k, v) in r.headers() {
            text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
        }
        text.push_str(&r.text().await.unwrap_or_default());
        self.places.push(Place {
            name: format!(
                "HTTP answer {status} to {method} {}",
                path.chars().take(40).collect::<String>()
            ),
            kind: Kind::Http,
            text,
        });
        status
    }

    fn remember_urls(&mut self, body: &Value) {
        for key in ["u", "url", "r", "referrer"] {
            let Some(raw) = body[key].as_str() else {
                continue;
            };
            let Ok(url) = url::Url::parse(raw) else {
                continue;
            };
            let parts = [url.query(), url.fragment(), url.password()];
            if parts.iter().any(Option::is_some) {
                self.sent_urls.insert(raw.to_string());
            }
            self.sent_urls
                .extend(parts.into_iter().flatten().map(str::to_string));
        }
    }

    /// A beacon from `v`; answered 202 always; `stored` if it must become a row.
    async fn beacon(&mut self, v: &Visitor, body: &Value, stored: bool, extra: &[(&str, &str)]) {
        let mut headers = vec![
            ("content-type", "text/plain;charset=UTF-8"),
            ("user-agent", v.ua),
        ];
        headers.extend(v.forwarded);
        headers.extend_from_slice(extra);
        self.remember_urls(body);
        let status = self
            .request(
                reqwest::Method::POST,
                "/api/event",
                &headers,
                body.to_string(),
            )
            .await;
        assert_eq!(status, 202, "beacon {body}");
        self.clock.advance(Duration::from_secs(1));
        if stored {
            self.expected_rows += 1;
        }
    }

    async fn events(&self) -> u64 {
        ch_count(&format!("SELECT count() FROM {}.events", self.db)).await
    }

    /// Waits until every beacon meant to be stored is a row, and no more.
    async fn wait_rows(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = self.events().await;
            assert!(
                n <= self.expected_rows,
                "{n} rows, {} expected",
                self.expected_rows
            );
            if n == self.expected_rows {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} rows, {} expected",
                self.expected_rows
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn observe_salts(&mut self) -> BTreeSet<String> {
        let rows = ch(&format!(
            "SELECT toString(day), salt FROM {}.salts FORMAT TSV",
            self.db
        ))
        .await;
        let mut days = BTreeSet::new();
        for line in rows.lines() {
            let (day, salt) = line.split_once('\t').expect("day and salt");
            assert_eq!(salt.len(), 64, "a salt is 32 bytes in hex");
            days.insert(day.to_string());
            self.salts.insert((day.to_string(), salt.to_string()));
        }
        days
    }

    /// Every column of every table of the database, as text, one place per column.
    async fn snapshot_tables(&mut self, when: &str) -> (usize, usize) {
        let db = self.db.clone();
        let tables = ch(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' ORDER BY name FORMAT TSV"
        ))
        .await;
        let (mut columns, mut rows) = (0, 0);
        for table in tables.lines() {
            // From system.columns, not `*`, so that materialized and alias columns are read too.
            let names: Vec<String> = ch(&format!(
                "SELECT name FROM system.columns WHERE database = '{db}' AND table = '{table}' \
                 FORMAT TSV"
            ))
            .await
            .lines()
            .map(str::to_string)
            .collect();
            let select = names
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let dump = ch(&format!(
                "SELECT {select} FROM {db}.`{table}` FORMAT TabSeparated"
            ))
            .await;
            let mut texts = vec![String::new(); names.len()];
            for line in dump.lines() {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), names.len(), "{table}: {line}");
                for (text, field) in texts.iter_mut().zip(fields) {
                    text.push_str(field);
                    text.push('\n');
                }
                rows += 1;
            }
            for (name, text) in names.iter().zip(texts) {
                self.places.push(Place {
                    name: format!("column {table}.{name} ({when})"),
                    kind: Kind::Table,
                    text,
                });
                columns += 1;
            }
        }
        (columns, rows)
    }

    /// Every file in the spool (batches and `rejected/`), as it is now.
    fn snapshot_spool(&mut self, dir: &Path, when: &str) -> usize {
        let mut n = 0;
        for path in files_under(dir) {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            self.places.push(Place {
                name: format!("spool file {} ({when})", path.display()),
                kind: Kind::Spool,
                text,
            });
            self.spool_files.insert(path);
            n += 1;
        }
        n
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for path in entries.map(|e| e.unwrap().path()) {
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A pageview carrying `value` in the path (scrubbed), in dropped and allow-listed query
/// parameters, in the fragment, in the referrer's path and query (only its host is kept), and
/// in pageview props: an allow-listed one (`who`, stored scrubbed) and an unlisted one.
fn pageview(value: &str) -> Value {
    let q = form(value);
    json!({
        "n": "pageview",
        "u": format!("https://www.example.org/x/{value}?email={q}&sessie=SESSIONAUDIT42&utm_source=nieuwsbrief&utm_campaign={q}&ref={q}#fragsecret-audit-{q}"),
        "r": format!("https://www.google.com/refpath-audit/{value}?q={q}"),
        "w": 1280,
        "d": "www.example.org",
        "p": {"who": value, "voornaam": "Marijke-AUDIT"},
    })
}

/// A custom event with `value` in the path, in an allow-listed property (`who`, stored scrubbed),
/// in an unlisted property (as value and as key) and, for numbers, in the referrer's host name.
fn custom_event(class: &str, value: &str) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("who".into(), json!(value));
    props.insert("voornaam".into(), json!("Marijke-AUDIT"));
    props.insert(value.to_string(), json!("as a key"));
    props.insert("plan".into(), json!(CANARY));
    let referrer = if matches!(class, "bsn" | "number") {
        format!("https://klant-{value}.example.net/")
    } else {
        format!("https://duckduckgo.com/refpath-audit/?who={}", form(value))
    };
    json!({
        "name": "Download",
        "url": format!("https://www.example.org/docs/{value}/brief.pdf?sid={}", form(value)),
        "domain": "www.example.org",
        "referrer": referrer,
        "props": props,
    })
}

fn engagement(value: &str) -> Value {
    json!({
        "n": "engagement",
        "u": format!("https://www.example.org/x/{value}?token={}", form(value)),
        "d": "www.example.org",
        "e": 15000,
        "sd": 60,
    })
}

/// Pages every visitor opens: one of its own (to compare its ids across days), one with user
/// info in the URL, a hash-mode route, and one the site's rewrite rule coarsens.
fn visitor_pages(i: usize, value: &str) -> [Value; 4] {
    let q = form(value);
    [
        json!({"n": "pageview", "u": format!("https://www.example.org/kiosk/{i}"), "d": "www.example.org"}),
        json!({"n": "pageview", "u": format!("https://piet.pietersen:Wachtwoord-AUDIT7@www.example.org/login?email={q}"), "d": "www.example.org"}),
        json!({"n": "pageview", "u": format!("https://www.example.org/app#/klant/{value}?token={q}"), "h": 1, "d": "www.example.org"}),
        json!({"n": "pageview", "u": "https://www.example.org/zaken/Z-2026-0042-AUDIT", "d": "www.example.org"}),
    ]
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(t.as_second()).unwrap())
}

#[test]
fn issue_6_audit_with_injected_clock_finds_no_personal_data_anywhere() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    // tracing caches, per call site, whether anyone listens. With a single dispatcher in the
    // process it asks only the subscriber of the thread that reaches a call site first, so a
    // call site first reached by another test's thread (hyper's pool, tally's salt code in
    // salts.rs) would be cached as silent and this log would miss its lines. A second, silent
    // dispatcher makes tracing ask all of them and decide per event instead.
    let _second_dispatcher = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // Spawned tasks do not inherit a thread's subscriber: every thread of this test's runtime
    // (workers and blocking threads) gets it when it starts, and so does this thread, which
    // runs the scenario itself. Other tests in this binary are not affected.
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            LOG_GUARD.with(|g| {
                *g.borrow_mut() = Some(tracing::dispatcher::set_default(&for_threads));
            });
        })
        .on_thread_stop(|| LOG_GUARD.with(|g| drop(g.borrow_mut().take())))
        .build()
        .unwrap();
    let _this_thread = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(scenario(logs));
    runtime.shutdown_timeout(Duration::from_secs(5));
}

async fn scenario(logs: LogBuffer) {
    use sha2::Digest;
    let started = Instant::now();
    let data = personal_data();
    let relay = Relay::start().await;
    let db = fresh_db("audit");
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let rejected_dir = spool_dir.join("rejected");
    let config = tally::config::Config::parse(&format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\", \"::1/128\"]\nshutdown_grace_secs = 2\n\
         [clickhouse]\nurl = \"{relay}\"\ndatabase = \"{db}\"\n\
         [ingest]\nflush_interval_ms = 50\nspool_dir = {spool:?}\n\
         [privacy]\ncountry_database = {mmdb:?}\n\
         [retention]\nraw_days = 3\n\
         [[api_tokens]]\nname = \"privacy officer\"\nsha256 = \"{sha}\"\n\
         [[sites]]\ndomain = \"www.example.org\"\naliases = [\"example.org\"]\n\
         props_allowlist = [\"plan\", \"who\"]\n\
         rewrite = [{{ pattern = \"/zaken/*\", replacement = \"/zaken/:id\" }}]\n",
        relay = relay.url,
        spool = spool_dir.display().to_string(),
        mmdb = testdata("dbip-country.mmdb").display().to_string(),
        sha = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes())),
    ))
    .unwrap();

    // Day 1: 10:00 in Amsterdam on Friday 20 November 2026; that day's salt is created now.
    let clock = Arc::new(ManualClock::new(at("2026-11-20T09:00:00Z")));
    let prepared = tally::prepare(&config, clock.clone()).await.unwrap();
    let app = prepared.app().clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tally::run(listener, prepared, async {
        let _ = stopped.await;
    }));
    // The server's salt task wakes on real time; the test refreshes the book itself right
    // after moving the clock, as that task would at the boundary.
    let store = SaltStore::ClickHouse(std::sync::Arc::new(tally::cluster::Cluster::new(
        &config.clickhouse,
    )));
    let metrics_text = || app.ingest.metrics.encode();
    let mut run = Run {
        http: reqwest::Client::new(),
        clock: clock.clone(),
        base: base.clone(),
        db: db.clone(),
        places: Vec::new(),
        expected_rows: 0,
        sent_urls: BTreeSet::new(),
        salts: BTreeSet::new(),
        spool_files: BTreeSet::new(),
    };
    run.observe_salts().await;

    for (k, (class, value)) in data.iter().enumerate() {
        let v = &VISITORS[k % VISITORS.len()];
        run.beacon(v, &pageview(value), true, &[]).await;
        run.beacon(v, &custom_event(class, value), true, &[]).await;
        run.beacon(v, &engagement(value), true, &[]).await;
        clock.advance(Duration::from_secs(5));
    }
    for (i, v) in VISITORS.iter().enumerate() {
        for page in visitor_pages(i, &data[i].1) {
            run.beacon(v, &page, true, &[]).await;
        }
    }
    // A crawler, and browsers asking not to be tracked: 202, nothing stored.
    let crawler = Visitor {
        forwarded: Some(("x-forwarded-for", "193.0.6.139")),
        ua: UA_BOT,
    };
    run.beacon(&crawler, &pageview(&data[0].1), false, &[])
        .await;
    run.beacon(&VISITORS[1], &pageview(&data[1].1), false, &[("dnt", "1")])
        .await;
    run.beacon(
        &VISITORS[2],
        &pageview(&data[2].1),
        false,
        &[("sec-gpc", "1")],
    )
    .await;

    // Refusals carrying personal data: their answers and log lines must not repeat it.
    let (e, bsn, tok) = (&data[0].1, &data[1].1, &data[5].1);
    let (qe, qt) = (form(e), form(tok));
    let beacon_headers = [
        ("user-agent", UA_WINDOWS),
        ("x-forwarded-for", "193.0.6.139"),
        ("content-type", "text/plain"),
    ];
    let refusals: Vec<(&str, String, u16)> = vec![
        ("unknown site", json!({"n": "pageview", "u": format!("https://unknown.example.com/x/{e}?t={qt}")}).to_string(), 400),
        ("malformed JSON", format!(r#"{{"n":"pageview","u":"https://www.example.org/x/{e}"#), 400),
        ("unknown field", json!({"n": "pageview", "u": "https://www.example.org/", "email": e}).to_string(), 400),
        ("invalid field", json!({"n": "pageview", "u": "https://www.example.org/", "w": bsn}).to_string(), 400),
        ("invalid URL", json!({"n": "pageview", "u": format!("mailto:{e}?subject={bsn}")}).to_string(), 400),
        ("missing name", json!({"u": format!("https://www.example.org/x/{e}")}).to_string(), 400),
        ("nested props", json!({"n": "Download", "u": "https://www.example.org/", "p": {"who": {"email": e}}}).to_string(), 400),
        ("too large", json!({"n": "pageview", "u": format!("https://www.example.org/x/{e}?pad={}", "a".repeat(9000))}).to_string(), 413),
    ];
    for (what, body, want) in refusals {
        let status = run
            .request(reqwest::Method::POST, "/api/event", &beacon_headers, body)
            .await;
        assert_eq!(status, want, "{what}");
    }
    let form_headers = [
        ("user-agent", UA_WINDOWS),
        ("x-forwarded-for", "193.0.6.139"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let status = run
        .request(
            reqwest::Method::POST,
            "/api/event",
            &form_headers,
            format!("email={qe}&bsn={bsn}"),
        )
        .await;
    assert_eq!(status, 415);
    let long = format!("/api/event?email={qe}&pad={}", "x".repeat(5000));
    let status = run
        .request(reqwest::Method::POST, &long, &beacon_headers, String::new())
        .await;
    assert_eq!(status, 414);
    let status = run
        .request(
            reqwest::Method::GET,
            &format!("/x/{e}?token={qt}"),
            &beacon_headers,
            String::new(),
        )
        .await;
    assert_eq!(status, 404);
    let status = run
        .request(
            reqwest::Method::PUT,
            "/api/event",
            &beacon_headers,
            pageview(e).to_string(),
        )
        .await;
    assert_eq!(status, 405);
    run.wait_rows().await;

    // ClickHouse cut off: the batches wait in the spool, then are replayed.
    clock.set(at("2026-11-20T10:00:00Z"));
    let spooled_before = metric(&metrics_text(), "tally_rows_spooled_total");
    relay.set(Link::Down);
    let outage = 8;
    for (k, (class, value)) in data.iter().take(outage).enumerate() {
        let v = &VISITORS[k % VISITORS.len()];
        run.beacon(v, &custom_event(class, value), true, &[]).await;
    }
    wait_for("the outage's rows in the spool", async || {
        metric(&metrics_text(), "tally_rows_spooled_total") >= spooled_before + outage as f64
    })
    .await;
    let batches = run.snapshot_spool(&spool_dir, "while ClickHouse is cut off");
    assert!(batches >= 1, "batches are spooled");
    relay.set(Link::Up);
    run.wait_rows().await;
    wait_for("the spool to be replayed", async || {
        files_under(&spool_dir).is_empty()
    })
    .await;

    // A batch ClickHouse refuses for good (a column it needs is gone): kept aside.
    ch(&format!("ALTER TABLE {db}.events DROP COLUMN utm_term")).await;
    for (class, value) in data.iter().skip(2).take(2) {
        let mut refused = custom_event(class, value);
        refused["url"] = json!(format!(
            "https://www.example.org/refused/{value}?utm_term={}",
            form(value)
        ));
        run.beacon(&VISITORS[0], &refused, false, &[]).await;
    }
    wait_for("the refused rows in rejected/", async || {
        !files_under(&rejected_dir).is_empty()
    })
    .await;
    ch(&format!(
        "ALTER TABLE {db}.events ADD COLUMN utm_term String AFTER utm_content"
    ))
    .await;
    let kept_aside = files_under(&rejected_dir);
    run.snapshot_spool(&spool_dir, "with refused rows kept aside");
    // The disk does not follow the injected clock: the file is stamped with the simulated
    // instant it was written, so that retention judges its age on the test's timeline.
    for path in &kept_aside {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(system_time(clock.now()))
            .unwrap();
    }

    // Midnight in Amsterdam (23:00 UTC): visitors active just before it...
    clock.set(at("2026-11-20T22:50:00Z"));
    for (i, v) in VISITORS.iter().enumerate().take(3) {
        run.beacon(v, &visitor_pages(i, &data[i].1)[0], true, &[])
            .await;
    }
    run.wait_rows().await;
    // ...and after it, within the grace: yesterday's salt still continues their visits.
    clock.set(at("2026-11-20T23:10:00Z"));
    app.ingest
        .visitors
        .book
        .refresh(&store, clock.now())
        .await
        .unwrap();
    let days = run.observe_salts().await;
    assert!(
        days.contains("2026-11-20") && days.contains("2026-11-22"),
        "{days:?}"
    );
    for (k, (_, value)) in data.iter().take(8).enumerate() {
        run.beacon(&VISITORS[k % 4], &pageview(value), true, &[])
            .await;
    }
    run.wait_rows().await;
    // The grace is over: the 20th's salt is deleted.
    clock.set(at("2026-11-20T23:31:00Z"));
    app.ingest
        .visitors
        .book
        .refresh(&store, clock.now())
        .await
        .unwrap();
    assert!(!run.observe_salts().await.contains("2026-11-20"));

    // Day 2.
    clock.set(at("2026-11-21T09:00:00Z"));
    app.ingest
        .visitors
        .book
        .refresh(&store, clock.now())
        .await
        .unwrap();
    for (k, (class, value)) in data.iter().enumerate() {
        let v = &VISITORS[(k + 1) % VISITORS.len()];
        run.beacon(v, &pageview(value), true, &[]).await;
        run.beacon(v, &custom_event(class, value), true, &[]).await;
        clock.advance(Duration::from_secs(5));
    }
    for (i, v) in VISITORS.iter().enumerate() {
        run.beacon(v, &visitor_pages(i, &data[i].1)[0], true, &[])
            .await;
    }
    run.wait_rows().await;

    // The same browser at the same address is someone else the next day.
    let ids = ch_rows(&format!(
        "SELECT path, toString(toDate(ts)) AS day, toString(visitor) AS visitor \
         FROM {db}.events WHERE path LIKE '/kiosk/%'"
    ))
    .await;
    for i in 0..VISITORS.len() {
        let on = |day: &str| -> BTreeSet<String> {
            ids.iter()
                .filter(|r| r["path"] == format!("/kiosk/{i}") && r["day"] == day)
                .map(|r| r["visitor"].as_str().unwrap().to_string())
                .collect()
        };
        let (first, second) = (on("2026-11-20"), on("2026-11-21"));
        assert!(
            !first.is_empty() && !second.is_empty(),
            "visitor {i}: {ids:?}"
        );
        assert!(
            first.is_disjoint(&second),
            "visitor {i} linkable across days"
        );
    }

    // Visits stored without the hash, and rollups of the 20th summed from them (complete
    // since 00:40 UTC on the 21st).
    clock.set(at("2026-11-21T09:30:00Z"));
    let visits = tally::visits::VisitJob::new(
        &config,
        &std::sync::Arc::new(tally::cluster::Cluster::new(&config.clickhouse)),
        app.ingest.metrics.clone(),
    );
    assert!(
        visits
            .run_until_done(clock.now(), |_| {})
            .await
            .unwrap()
            .stored
            >= 1
    );
    // Every table of stored visits holds rows for the audit to search.
    for table in ["visits", "visit_pages", "visit_page_days"] {
        assert!(
            ch_count(&format!("SELECT count() FROM {db}.{table}")).await > 0,
            "{table}"
        );
    }
    let rollups = tally::rollup::RollupJob::new(
        &config,
        &std::sync::Arc::new(tally::cluster::Cluster::new(&config.clickhouse)),
        app.ingest.metrics.clone(),
    );
    assert!(rollups.run_once(clock.now(), 31).await.unwrap() >= 1);
    assert!(ch_count(&format!("SELECT count() FROM {db}.rollup_daily")).await > 0);

    // What the privacy officer and an analyst read: reports, the privacy report, metrics.
    let mut countries = String::new();
    for dimension in [
        "event:page",
        "visit:entry_page",
        "visit:source",
        "visit:referrer",
        "visit:utm_campaign",
        "visit:country",
        "visit:browser",
    ] {
        let query = json!({
            "site_id": "www.example.org",
            "metrics": ["visitors", "pageviews"],
            "date_range": ["2026-11-20", "2026-11-21"],
            "dimensions": [dimension],
        });
        let (status, body) = post_query(&base, Some(TOKEN), &query).await;
        assert_eq!(status, 200, "{dimension}: {body}");
        if dimension == "visit:country" {
            countries = body.clone();
        }
        run.places.push(Place {
            name: format!("stats API answer for {dimension}"),
            kind: Kind::Http,
            text: body,
        });
    }
    // The addresses were used (for the country), then dropped.
    assert!(
        countries.contains("\"NL\"") && countries.contains("\"DE\""),
        "{countries}"
    );
    for accept in ["text/markdown", "application/json"] {
        let status = run
            .request(
                reqwest::Method::GET,
                "/privacy",
                &[
                    ("authorization", &format!("Bearer {TOKEN}")),
                    ("accept", accept),
                ],
                String::new(),
            )
            .await;
        assert_eq!(status, 200);
    }
    run.request(reqwest::Method::GET, "/metrics", &[], String::new())
        .await;
    let (table_columns, table_rows_before) = run.snapshot_tables("before retention").await;
    // Every daily visitor hash the raw events hold, to look for everywhere else.
    let hashes = ch(&format!(
        "SELECT DISTINCT toString(visitor) FROM {db}.events FORMAT TSV"
    ))
    .await;

    // Retention, on the injected clock. Two days on, nothing has reached raw_days = 3 yet.
    let retention = tally::retention::Retention::new(
        &config,
        std::sync::Arc::new(tally::cluster::Cluster::new(&config.clickhouse)),
        app.ingest.metrics.clone(),
    );
    // The salt task refreshes every minute, so a running collector has deleted the 21st's salt
    // by now (see the ignored test below for one that was down on the 22nd).
    clock.set(at("2026-11-22T12:00:00Z"));
    app.ingest
        .visitors
        .book
        .refresh(&store, clock.now())
        .await
        .unwrap();
    let dropped = retention.run_once(clock.now()).await.unwrap();
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(files_under(&rejected_dir), kept_aside, "not old enough yet");
    // Three days on: the 20th (UTC) and the kept-aside rows go; the 21st stays. The 22nd's
    // salt expires.
    clock.set(at("2026-11-23T12:00:00Z"));
    app.ingest
        .visitors
        .book
        .refresh(&store, clock.now())
        .await
        .unwrap();
    let days = run.observe_salts().await;
    assert_eq!(
        days.into_iter().collect::<Vec<_>>(),
        ["2026-11-23", "2026-11-24"],
        "only today's and tomorrow's salts are left"
    );
    let dropped = retention.run_once(clock.now()).await.unwrap();
    let dropped: Vec<(&str, &str)> = dropped
        .iter()
        .map(|e| (e.table, e.partition.as_str()))
        .collect();
    assert!(dropped.contains(&("events", "20261120")), "{dropped:?}");
    // The day's per-minute counts of raw events (migration 0010) go with it, and its copy
    // ordered by the hour (migration 0011).
    assert!(
        dropped.contains(&("events_minutes", "20261120")),
        "{dropped:?}"
    );
    assert!(
        dropped.contains(&("events_by_hour", "20261120")),
        "{dropped:?}"
    );
    for path in &kept_aside {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            dropped.contains(&(tally::retention::REJECTED_FILES, name)),
            "{dropped:?}"
        );
    }
    assert_eq!(
        dropped.len(),
        3 + kept_aside.len(),
        "nothing else: {dropped:?}"
    );
    assert!(files_under(&rejected_dir).is_empty());
    let by_day = async |day: &str| {
        ch_count(&format!(
            "SELECT count() FROM {db}.events WHERE toDate(ts) = '{day}'"
        ))
        .await
    };
    assert_eq!(by_day("2026-11-20").await, 0, "day 1 is gone");
    assert!(by_day("2026-11-21").await > 0, "day 2 is kept");
    run.request(reqwest::Method::GET, "/metrics", &[], String::new())
        .await;
    let (_, table_rows_after) = run.snapshot_tables("after retention").await;
    run.snapshot_spool(&spool_dir, "at the end");

    let _ = stop.send(());
    server.await.unwrap();
    drop(run.http);
    let log =
        String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let log_lines = log.lines().count();
    let log_bytes = log.len();
    run.places.push(Place {
        name: "the trace-level log".into(),
        kind: Kind::Log,
        text: log,
    });

    // The needles.
    let mut needles: Vec<Needle> = Vec::new();
    let add = |needles: &mut Vec<Needle>, what: &str, text: &str, class: Class| {
        let text = text.to_lowercase();
        if !needles.iter().any(|n| n.text == text) {
            needles.push(Needle {
                what: what.to_string(),
                text,
                class,
            });
        }
    };
    for (class, value) in &data {
        add(&mut needles, class, value, Class::Personal);
        add(&mut needles, class, &form(value), Class::Personal);
    }
    for marker in MARKERS {
        add(&mut needles, "marker", marker, Class::Personal);
    }
    let personal = needles.len();
    for address in ADDRESSES {
        for spelling in address_forms(address.parse().unwrap()) {
            add(&mut needles, "IP address", &spelling, Class::Personal);
        }
    }
    add(&mut needles, "IP address", "127.0.0.1", Class::Loopback);
    let addresses = needles.len() - personal;
    for ua in USER_AGENTS {
        add(&mut needles, "user agent", ua, Class::Personal);
        let marker = &ua[ua.find("PRIVMUA-").unwrap()..][..12];
        add(&mut needles, "user-agent marker", marker, Class::Personal);
    }
    add(
        &mut needles,
        "user-agent marker",
        "PRIVMUA",
        Class::Personal,
    );
    let agents = needles.len() - personal - addresses;
    let urls = std::mem::take(&mut run.sent_urls);
    for url in &urls {
        add(
            &mut needles,
            "URL, query string or fragment",
            url,
            Class::Personal,
        );
    }
    let queries = needles.len() - personal - addresses - agents;
    for (day, salt) in &run.salts {
        add(&mut needles, &format!("salt of {day}"), salt, Class::Salt);
    }
    for hash in hashes.lines() {
        add(&mut needles, "visitor hash", hash, Class::Hash);
    }
    let values_searched = needles.len();

    // The search.
    let mut hits = Vec::new();
    for place in &run.places {
        let hay = place.text.to_lowercase();
        for n in &needles {
            let skip = match n.class {
                Class::Personal => false,
                Class::Loopback => matches!(place.kind, Kind::Log | Kind::Http),
                Class::Salt => place.name.starts_with("column salts.salt "),
                Class::Hash => {
                    // The raw events, their copy ordered by the hour and the open visits'
                    // events (migration 0011) hold the hash by design, for raw_days.
                    place.name.starts_with("column events.visitor ")
                        || place.name.starts_with("column events_by_hour.visitor ")
                        // (its view, read, answers with that table's rows)
                        || place.name.starts_with("column events_by_hour_mv.visitor ")
                        || place.name.starts_with("column visit_carry.visitor ")
                        || matches!(place.kind, Kind::Spool)
                }
            };
            if !skip && n.in_text(&hay) {
                hits.push(format!("{} {:?} in {}", n.what, n.text, place.name));
            }
        }
    }

    // The places were really read: each holds what it should.
    let holds = |kind: Kind, name: &str, text: &str| {
        run.places
            .iter()
            .any(|p| p.kind == kind && p.name.contains(name) && p.text.contains(text))
    };
    assert!(holds(Kind::Table, "events.props_values (before", CANARY));
    assert!(holds(Kind::Table, "events.props_values (after", CANARY));
    for placeholder in [
        ":email", ":bsn", ":iban", ":phone", ":uuid", ":token", ":number",
    ] {
        assert!(
            holds(Kind::Table, "events.path (before", placeholder),
            "{placeholder} stored"
        );
        // The allow-listed prop `who` carries each value too: stored, scrubbed.
        assert!(
            holds(Kind::Table, "events.props_values (before", placeholder),
            "{placeholder} stored as a prop"
        );
    }
    assert!(holds(Kind::Table, "events.path (before", "/zaken/:id"));
    assert!(holds(Kind::Table, "events.utm_campaign (before", ":email"));
    assert!(holds(Kind::Table, "rollup_daily", ":email"));
    assert!(holds(Kind::Table, "visits.path (before", ":email"));
    assert!(holds(Kind::Table, "visits.path (before", "/zaken/:id"));
    assert!(holds(Kind::Spool, "while ClickHouse is cut off", CANARY));
    assert!(holds(Kind::Spool, "rejected", CANARY));
    assert!(holds(
        Kind::Http,
        "stats API answer for event:page",
        ":email"
    ));
    assert!(holds(Kind::Http, "400", "\"error\""));
    for line in [
        "stats sql",      // trace
        "inserted batch", // debug
        "insert failed",  // warn
        "kept aside for inspection",
        "deleted expired salt from storage",
        "retention: partition dropped",
        "shutdown complete",
    ] {
        assert!(holds(Kind::Log, "log", line), "{line:?} logged");
    }
    let count = |kind: Kind| run.places.iter().filter(|p| p.kind == kind).count();
    println!(
        "audit: {values_searched} values searched: {personal} forms of {} personal-data values \
         and markers, {addresses} address spellings (+ loopback), {agents} user agents and \
         markers, {queries} URLs/query strings/fragments sent, {} salts (days {}). Places: \
         {table_columns} table columns read twice = {} column texts ({table_rows_before} rows \
         before retention, {table_rows_after} after), {} snapshots of {} spool files, \
         {log_lines} log lines ({log_bytes} bytes) at trace level, {} HTTP answers. Hits: {}. \
         {:.1} s",
        data.len() + MARKERS.len(),
        run.salts.len(),
        run.salts
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        count(Kind::Table),
        count(Kind::Spool),
        run.spool_files.len(),
        count(Kind::Http),
        hits.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        hits.is_empty(),
        "{} personal values found:\n{}",
        hits.len(),
        hits.join("\n")
    );
}

/// A collector that was not running for a whole day (stopped, crashed, or one of several that
/// all were) must still delete, at its next start, every salt older than yesterday: those days'
/// events may still be in `events` (raw_days), and with their salt the hashes could be matched
/// to candidate addresses and user agents again.
#[tokio::test]
async fn issue_6_salts_older_than_yesterday_are_deleted_after_a_day_without_refresh() {
    let db = fresh_db("audit_salt_gap");
    let config = tally::config::Config::parse(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n[[sites]]\ndomain = \"www.example.org\"\n",
        clickhouse_url()
    ))
    .unwrap();
    tally::storage::migrate(&tally::cluster::Cluster::new(&config.clickhouse))
        .await
        .unwrap();
    let store = SaltStore::ClickHouse(std::sync::Arc::new(tally::cluster::Cluster::new(
        &config.clickhouse,
    )));
    let book =
        || tally::salt::SaltBook::new(config.privacy.salt_time_zone.clone(), config.visits.timeout);
    // Running on the 21st (salts of the 21st and 22nd), then down until the 23rd.
    book()
        .refresh(&store, at("2026-11-21T09:00:00Z"))
        .await
        .unwrap();
    book()
        .refresh(&store, at("2026-11-23T12:00:00Z"))
        .await
        .unwrap();
    let days = ch(&format!(
        "SELECT toString(day) FROM {db}.salts ORDER BY day FORMAT TSV"
    ))
    .await;
    assert_eq!(
        days.lines().collect::<Vec<_>>(),
        ["2026-11-23", "2026-11-24"],
        "the salts of the 21st and 22nd are gone"
    );
}
