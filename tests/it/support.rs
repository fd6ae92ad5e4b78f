//! Test support: the real ClickHouse started by `scripts/test.sh`, and the real `tally` binary
//! run as a child process with a generated config, talked to over HTTP by a real client.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1";

/// The ClickHouse HTTP endpoint the test command started.
pub fn clickhouse_url() -> String {
    std::env::var("TALLY_TEST_CLICKHOUSE_URL").expect(
        "TALLY_TEST_CLICKHOUSE_URL is not set: run the integration tests with scripts/test.sh, \
         which starts a real ClickHouse server for them",
    )
}

/// The folder with the real corpora fetched by `scripts/testdata.sh`.
pub fn testdata(file: &str) -> PathBuf {
    let dir = std::env::var("TALLY_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/testdata"));
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "{} missing: run scripts/testdata.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A database name no other test uses.
pub fn fresh_db(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "it_{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs SQL on the test ClickHouse over HTTP and returns the text answer.
pub async fn ch(sql: &str) -> String {
    let r = reqwest::Client::new()
        .post(clickhouse_url())
        .body(sql.to_string())
        .send()
        .await
        .expect("ClickHouse reachable");
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "ClickHouse error for {sql}: {text}");
    text
}

/// Rows as JSON objects (`FORMAT JSONEachRow`).
pub async fn ch_rows(sql: &str) -> Vec<serde_json::Value> {
    ch(&format!("{sql} FORMAT JSONEachRow"))
        .await
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSONEachRow line"))
        .collect()
}

pub async fn ch_count(sql: &str) -> u64 {
    ch(sql).await.trim().parse().expect("a number")
}

/// A port nothing listens on, never handed out twice in one test run.
///
/// Not the kernel's pick (`bind(":0")`): that comes from the ephemeral range, where a port just
/// released is soon handed out again. Then two tests' collectors were given one port; the second
/// could not bind it, yet its readiness poll was answered by the first (with other limits), and
/// a test failed on an answer that was not its server's. These ports lie below the ephemeral
/// range (32768 and up), each test process counts through its own window of them, and a port
/// still in use by anything is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const WINDOW: u16 = 500;
    const WINDOWS: u32 = 24; // 20000..32000
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = FIRST + (std::process::id() % WINDOWS) as u16 * WINDOW;
    for _ in 0..WINDOW {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % WINDOW;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {base}..{}", base + WINDOW)
}

/// Config for one test run; `extra` is appended TOML (sections, sites).
pub struct Setup {
    pub db: String,
    pub extra: String,
    pub flush_ms: u64,
    /// `ingest.batch_size`: an insert goes as soon as this many rows are queued.
    pub batch_size: usize,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// ClickHouse as tally should reach it (default: the test server itself).
    pub clickhouse_url: Option<String>,
    /// More `[ingest]` keys, one per line.
    pub ingest_extra: String,
    /// More `[clickhouse]` keys, one per line (a cluster's name and shards).
    pub clickhouse_extra: String,
}

impl Setup {
    pub fn new(name: &str) -> Self {
        Self {
            db: fresh_db(name),
            extra: String::new(),
            flush_ms: 100,
            batch_size: 100_000,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            clickhouse_url: None,
            ingest_extra: String::new(),
            clickhouse_extra: String::new(),
        }
    }

    pub fn with(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    pub fn flush_ms(mut self, ms: u64) -> Self {
        self.flush_ms = ms;
        self
    }

    pub fn config_text(&self) -> String {
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntrusted_proxies = [\"127.0.0.1/32\", \"::1/128\"]\nshutdown_grace_secs = 5\n\n\
             [clickhouse]\nurl = \"{url}\"\ndatabase = \"{db}\"\n{clickhouse_extra}\n\
             [ingest]\nflush_interval_ms = {flush}\nbatch_size = {batch_size}\nspool_dir = \"{spool}\"\n{ingest_extra}\n",
            port = self.port,
            url = self.clickhouse_url.clone().unwrap_or_else(clickhouse_url),
            ingest_extra = self.ingest_extra,
            clickhouse_extra = self.clickhouse_extra,
            db = self.db,
            flush = self.flush_ms,
            batch_size = self.batch_size,
            spool = self.spool_dir().display(),
        );
        if !self.extra.contains("[[sites]]") {
            text.push_str(
                "[[sites]]\ndomain = \"www.example.org\"\naliases = [\"example.org\"]\n\n",
            );
        }
        text.push_str(&self.extra);
        text
    }

    /// Where this run's tally keeps its spool.
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    pub fn config_path(&self) -> PathBuf {
        let p = self.dir.path().join("tally.toml");
        std::fs::write(&p, self.config_text()).unwrap();
        p
    }

    /// Starts `tally serve` with this config; returns when `/readyz` answers 200.
    pub async fn start(&self) -> Tally {
        Tally::start(self, &self.config_text()).await
    }

    /// Starts `tally serve` with a config text of the caller's own (in this setup's folder and
    /// on its port); returns when `/readyz` answers 200.
    pub async fn start_with_config(&self, text: &str) -> Tally {
        Tally::start(self, text).await
    }
}

/// Runs a one-shot `tally` command (`migrate`, `rollup`, `hash-password`, …) to its end.
pub fn tally_command(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .output()
        .expect("tally runs")
}

/// Runs a one-shot `tally` command with `--config config`, which must succeed; its output and
/// log.
pub fn tally_succeeds(args: &[&str], config: &std::path::Path) -> String {
    let config = config.to_string_lossy();
    let out = tally_command(&[args, &["--config", &config]].concat());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tally {args:?} failed:\n{text}");
    text
}

/// Runs a one-shot `tally` command with `input` on its standard input.
pub fn tally_command_with_input(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tally runs");
    writeln!(child.stdin.take().expect("stdin is piped"), "{input}").expect("tally reads stdin");
    child.wait_with_output().expect("tally ends")
}

/// A running `tally serve` child process; its combined output goes to a file we can search.
pub struct Tally {
    child: Child,
    pub base: String,
    pub log: PathBuf,
    pub db: String,
}

impl Tally {
    async fn start(setup: &Setup, text: &str) -> Tally {
        let n = std::fs::read_dir(setup.dir.path()).unwrap().count();
        let config = setup.dir.path().join(format!("tally-{n}.toml"));
        std::fs::write(&config, text).unwrap();
        let log = setup.dir.path().join(format!("tally-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["serve", "--config"])
            .arg(&config)
            // Every level, so the privacy check covers trace-level lines too.
            .env("TALLY_LOG", "trace")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("tally binary runs");
        let mut t = Tally {
            child,
            base: format!("http://127.0.0.1:{}", setup.port),
            log,
            db: setup.db.clone(),
        };
        // Generous: on a cluster the first start creates replicated tables through ZooKeeper.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = t.child.try_wait().unwrap() {
                panic!("tally exited early ({status}):\n{}", t.logs());
            }
            // Only once this process says it listens: before that, an answer on the port
            // would come from someone else.
            if t.logs().contains("tally is collecting") {
                if let Ok(r) = reqwest::get(format!("{}/readyz", t.base)).await {
                    if r.status() == 200 {
                        return t;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "tally not ready in 90 s:\n{}",
                t.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The child's process id (for reading its `/proc` status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// SIGTERM, then wait for the exit (a graceful shutdown drains the queue first).
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "tally did not exit within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs a beacon body with the given headers; returns (status, body).
    pub async fn beacon(&self, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/event", self.base))
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("tally reachable");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// A beacon from a normal browser (`text/plain`, like `sendBeacon`) at a given client IP,
    /// passed through the trusted-proxy header as a reverse proxy would.
    pub async fn browser_beacon(&self, body: &str, ua: &str, ip: &str) -> u16 {
        self.beacon(
            body,
            &[
                ("content-type", "text/plain;charset=UTF-8"),
                ("user-agent", ua),
                ("x-forwarded-for", ip),
            ],
        )
        .await
        .0
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until the events table holds `n` rows (the writer flushes asynchronously).
    pub async fn wait_rows(&self, n: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let c = ch_count(&format!("SELECT count() FROM {}.events", self.db)).await;
            if c >= n || Instant::now() > deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a metric's value from Prometheus text (`name{labels} value`), 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// What the relay does with traffic between tally and ClickHouse.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Link {
    /// Passes everything.
    Up = 0,
    /// Closes every connection at once: ClickHouse looks down.
    Down = 1,
    /// Passes requests, but cuts the connection when ClickHouse answers: the insert is
    /// written, tally never hears so.
    AnswersLost = 2,
    /// Passes everything, but holds each of ClickHouse's answers for [`SLOW_ANSWER`]: a server
    /// that is slow, not down.
    Slow = 3,
    /// Holds the body of the next row insert (its head and first [`HELD_AFTER`] bytes pass, so
    /// ClickHouse starts the insert and waits for the rest) for [`HELD_BODY`], then delivers
    /// it; the link is `Up` for everything else from the moment the hold starts. tally's insert times out meanwhile: a
    /// stalled link or a paused server whose insert ends after tally gave up on it.
    InsertBodyHeld = 4,
    /// As [`Link::InsertBodyHeld`], for [`HELD_BODY_LONG`]: past the minute after which the
    /// replayer asks ClickHouse to cancel the insert (which it cannot while the insert waits
    /// for its rows).
    InsertBodyHeldLong = 5,
}

impl Link {
    /// How long this link holds an insert's body, if it does.
    fn hold(state: u8) -> Option<Duration> {
        match state {
            s if s == Link::InsertBodyHeld as u8 => Some(HELD_BODY),
            s if s == Link::InsertBodyHeldLong as u8 => Some(HELD_BODY_LONG),
            _ => None,
        }
    }
}

/// How long [`Link::InsertBodyHeld`] holds an insert's rows: past tally's insert timeout (10 s)
/// and the replayer's first look at the spool (half a second after it).
pub const HELD_BODY: Duration = Duration::from_secs(16);
/// How long [`Link::InsertBodyHeldLong`] holds an insert's rows: past the replayer's minute of
/// patience (counted from its first look, after tally's 10 s time-out) and its cancel.
pub const HELD_BODY_LONG: Duration = Duration::from_secs(80);
/// How much of the held insert's body [`Link::InsertBodyHeld`] lets through first. ClickHouse
/// 18.16 reads a whole buffer (1 MiB) of an HTTP insert's body before it starts the insert and
/// lists it in `system.processes` (checked by hand: an insert with less is not listed).
pub const HELD_AFTER: usize = 1100 * 1024;

/// How long [`Link::Slow`] holds an answer (well under tally's insert timeout of 10 s).
pub const SLOW_ANSWER: Duration = Duration::from_secs(3);

/// A TCP relay in front of the test ClickHouse whose link can be cut and restored.
pub struct Relay {
    pub url: String,
    link: Arc<AtomicU8>,
}

impl Relay {
    pub async fn start() -> Relay {
        let upstream = clickhouse_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let link = Arc::new(AtomicU8::new(Link::Up as u8));
        let l = link.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if l.load(Ordering::SeqCst) == Link::Down as u8 {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(pump(client, server, l.clone()));
            }
        });
        Relay { url, link }
    }

    pub fn set(&self, link: Link) {
        self.link.store(link as u8, Ordering::SeqCst);
    }
}

/// Passes an insert's head and the first [`HELD_AFTER`] bytes of its body, so that ClickHouse
/// starts it, then holds the rest (all that tally still sends until it gives up) for `hold`
/// and delivers it. `buf[..n]` is the first read, its head ending at `head_end`.
async fn hold_insert_body(
    cr: &mut tokio::net::tcp::OwnedReadHalf,
    sw: &mut tokio::net::tcp::OwnedWriteHalf,
    buf: &mut [u8],
    n: usize,
    head_end: usize,
    hold: Duration,
) {
    let until = tokio::time::Instant::now() + hold;
    let mut held = Vec::new();
    let mut passed = 0;
    let mut chunk = (head_end, n);
    loop {
        let (from, to) = chunk;
        let pass = (to - from).min(HELD_AFTER.saturating_sub(passed));
        let head = if passed == 0 {
            &buf[..from + pass]
        } else {
            &buf[from..from + pass]
        };
        if sw.write_all(head).await.is_err() {
            return;
        }
        passed += pass;
        held.extend_from_slice(&buf[from + pass..to]);
        tokio::select! {
            r = cr.read(buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(m) => chunk = (0, m),
            },
            _ = tokio::time::sleep_until(until) => break,
        }
    }
    tokio::time::sleep_until(until).await;
    let _ = sw.write_all(&held).await;
}

/// Where the head of a row insert (`POST /?…query=INSERT…`, as the clickhouse crate sends one)
/// ends in `bytes`, if they start with one.
fn row_insert_head(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let request_line = head.lines().next()?;
    (request_line.starts_with("POST ") && request_line.contains("query=INSERT")).then_some(end)
}

async fn pump(client: TcpStream, server: TcpStream, link: Arc<AtomicU8>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = link.clone();
    let to_server = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let state = up.load(Ordering::SeqCst);
            if let Some(hold) = Link::hold(state) {
                if let Some(head_end) = row_insert_head(&buf[..n]) {
                    // Only this one insert is held.
                    if up
                        .compare_exchange(state, Link::Up as u8, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        hold_insert_body(&mut cr, &mut sw, &mut buf, n, head_end, hold).await;
                        // ClickHouse answers once it has the rows, which ends this relay.
                        std::future::pending::<()>().await;
                    }
                }
            }
            if state == Link::Down as u8 || sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let to_client = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let state = link.load(Ordering::SeqCst);
            if state == Link::Slow as u8 {
                tokio::time::sleep(SLOW_ANSWER).await;
            } else if state != Link::Up as u8 && Link::hold(state).is_none() {
                return;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends both (dropping the halves closes the sockets).
    tokio::select! {
        _ = to_server => {},
        _ = to_client => {},
    }
}
