//! Hostile input against the real binary over real TCP: every `[server]` limit (body, URL,
//! headers, connections, header/idle and body timeouts), bodies that are not beacons, request
//! smuggling, HTTP/2 garbage, memory after a burst, the rate limit and the path cap. Each test
//! checks the status and reason, that the server still stores another visitor's beacon
//! afterwards, the metric where there is one, and that no test input reached the logs.
//!
//! Raw `TcpStream`s misbehave byte by byte where a real client would not (slow-loris, partial
//! bodies, thousands of headers). The server is started here rather than through
//! `support::Setup::start`, because these tests set `[server]` and `[ingest]` keys that the
//! shared config text already opens as tables, and they need the child's pid for its memory.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Put into every hostile URL, header and body; it must never show up in tally's output.
const MARKER: &str = "zqhostilemarker";

/// Longest a test waits for the server to answer or close; a liveness guard, not a timing check.
const PATIENCE: Duration = Duration::from_secs(20);

/// `tally serve` with extra keys in its `[server]` and `[ingest]` tables.
struct Server {
    /// Declared before `setup`: the process stops before its folder is removed.
    tally: Tally,
    setup: Setup,
    addr: String,
    base: String,
    /// Page paths of the ordinary visitors sent between hostile requests; all must be stored.
    visitors: Vec<String>,
}

impl Server {
    async fn start(name: &str, server_keys: &str, ingest_keys: &str) -> Server {
        let setup = Setup::new(name);
        let text = setup
            .config_text()
            .replacen("[server]\n", &format!("[server]\n{server_keys}\n"), 1)
            .replacen("[ingest]\n", &format!("[ingest]\n{ingest_keys}\n"), 1);
        let tally = setup.start_with_config(&text).await;
        let addr = format!("127.0.0.1:{}", setup.port);
        Server {
            base: format!("http://{addr}"),
            tally,
            addr,
            setup,
            visitors: Vec::new(),
        }
    }

    fn logs(&self) -> String {
        self.tally.logs()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics reachable")
            .text()
            .await
            .unwrap()
    }

    async fn rejected(&self, reason: &str) -> f64 {
        metric(
            &self.metrics().await,
            &format!("tally_beacons_rejected_total{{reason=\"{reason}\"}}"),
        )
    }

    /// An ordinary visitor's pageview, through a normal client: must be accepted (and, at
    /// [`Server::finish`], stored).
    async fn visitor(&mut self, case: &str) {
        let path = format!("/na/{case}");
        let body = format!(r#"{{"n":"pageview","u":"https://www.example.org{path}"}}"#);
        let r = reqwest::Client::new()
            .post(format!("{}/api/event", self.base))
            .header("content-type", "text/plain")
            .header("user-agent", CHROME)
            .header("x-forwarded-for", "193.0.6.139")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("after {case}: tally unreachable: {e}"));
        assert_eq!(r.status(), 202, "after {case}: a normal beacon was refused");
        self.visitors.push(path);
    }

    /// Resident memory of the server process in KiB: now (`VmRSS`) or at its peak (`VmHWM`).
    fn memory_kib(&self, which: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.tally.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(which)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    /// Every ordinary visitor's row is in ClickHouse, nothing of a hostile request is, and no
    /// test input appears in the logs.
    async fn finish(self) {
        let db = &self.setup.db;
        let deadline = Instant::now() + PATIENCE;
        let want = self.visitors.len() as u64;
        loop {
            let n = ch_count(&format!(
                "SELECT count() FROM {db}.events WHERE path LIKE '/na/%'"
            ))
            .await;
            if n >= want || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rows = ch_rows(&format!("SELECT path FROM {db}.events")).await;
        let paths: Vec<&str> = rows.iter().filter_map(|r| r["path"].as_str()).collect();
        for p in &self.visitors {
            assert!(paths.contains(&p.as_str()), "{p} not stored: {paths:?}");
        }
        assert!(
            paths.iter().all(|p| !p.contains(MARKER)),
            "a hostile request was stored: {paths:?}"
        );
        let logs = self.logs();
        assert!(
            !logs.contains(MARKER),
            "test input in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(MARKER))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// What the server sent on a raw connection, and whether it closed it.
#[derive(Debug)]
struct Reply {
    raw: String,
    /// The server closed (FIN or reset) before [`PATIENCE`] ran out.
    closed: bool,
}

impl Reply {
    /// Status of the first response, if one came.
    fn status(&self) -> Option<u16> {
        self.raw
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok())
    }

    /// The `error` of the first response's JSON body (tally's own refusals), if any.
    fn reason(&self) -> Option<String> {
        let body = self.raw.split_once("\r\n\r\n")?.1;
        let body = body.split("HTTP/1.1 ").next().unwrap_or("");
        let json: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        json["error"].as_str().map(str::to_string)
    }

    fn responses(&self) -> usize {
        self.raw.matches("HTTP/1.1 ").count()
    }

    fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split_once("\r\n\r\n")?.0;
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Reads until the server closes the connection or `patience` runs out.
async fn read_reply(stream: &mut (impl AsyncReadExt + Unpin), patience: Duration) -> Reply {
    let deadline = tokio::time::Instant::now() + patience;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    };
    Reply {
        raw: String::from_utf8_lossy(&raw).into_owned(),
        closed,
    }
}

/// Sends `request` on a new connection (reading concurrently, so an early answer is not lost
/// to a reset), then reads until the server closes.
async fn exchange(addr: &str, request: Vec<u8>) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // A refused request may be closed before all of it is written: that is the point.
        for piece in request.chunks(16 * 1024) {
            if wr.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the write half open: shutting it would end slow requests early.
        tokio::time::sleep(PATIENCE).await;
        drop(wr);
    });
    let reply = read_reply(&mut rd, PATIENCE).await;
    writer.abort();
    reply
}

/// A beacon request head for the raw tests (`Connection: close` so the server ends it).
fn head(target: &str, extra: &str) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: {CHROME}\r\n\
         Content-Type: text/plain\r\nConnection: close\r\n{extra}"
    )
}

fn beacon_with_length(body: &str) -> Vec<u8> {
    format!(
        "{}Content-Length: {}\r\n\r\n{body}",
        head("/api/event", ""),
        body.len()
    )
    .into_bytes()
}

fn hostile_page(path: &str) -> String {
    format!(r#"{{"n":"pageview","u":"https://www.example.org/{MARKER}/{path}"}}"#)
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(4096) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_chunked() {
    let mut s = Server::start("h_body", "", "").await;

    // Declared: refused from the header, before any of the body is read.
    let mut req = head("/api/event", "Content-Length: 1048576\r\n\r\n").into_bytes();
    req.extend_from_slice(MARKER.as_bytes());
    let r = exchange(&s.addr, req).await;
    assert_eq!(r.status(), Some(413), "{r:?}");
    assert_eq!(r.reason().as_deref(), Some("body_too_large"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    s.visitor("declared").await;

    // Undeclared (chunked): refused once more than max_body_bytes arrived.
    let body = format!(
        r#"{{"n":"pageview","u":"https://www.example.org/{MARKER}","p":{{"x":"{}"}}}}"#,
        "a".repeat(64 * 1024)
    );
    let mut req = head("/api/event", "Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    req.extend(chunked(body.as_bytes()));
    let r = exchange(&s.addr, req).await;
    assert_eq!(r.status(), Some(413), "{r:?}");
    assert_eq!(r.reason().as_deref(), Some("body_too_large"));
    s.visitor("chunked").await;

    // Declared small, but longer than the limit in truth: only the declared bytes are the body,
    // the rest is garbage on the connection (closed, not taken as a second request).
    let small = r#"{"n":"pageview","u":"https://www.example.org/na/declared_small"}"#;
    let mut req = head(
        "/api/event",
        &format!("Content-Length: {}\r\n\r\n", small.len()),
    )
    .into_bytes();
    req.extend_from_slice(small.as_bytes());
    req.extend(std::iter::repeat_n(b'x', 64 * 1024));
    let r = exchange(&s.addr, req).await;
    assert_eq!(r.status(), Some(202), "{r:?}");
    assert_eq!(r.responses(), 1, "{r:?}");
    s.visitors.push("/na/declared_small".into());

    assert_eq!(s.rejected("body_too_large").await, 2.0);
    s.visitor("after_all").await;
    s.finish().await;
}

#[tokio::test]
async fn over_long_urls_get_414_and_over_long_heads_431() {
    let mut s = Server::start("h_url", "", "").await;
    let body = hostile_page("url");

    // Past max_url_bytes (4096) but inside the header buffer: tally's own 414.
    for len in [4097, 10_000] {
        let target = format!("/api/event?{MARKER}={}", "q".repeat(len));
        let mut req =
            head(&target, &format!("Content-Length: {}\r\n\r\n", body.len())).into_bytes();
        req.extend_from_slice(body.as_bytes());
        let r = exchange(&s.addr, req).await;
        assert_eq!(r.status(), Some(414), "{len}: {r:.200?}");
        assert_eq!(r.reason().as_deref(), Some("uri_too_long"));
        s.visitor(&format!("url{len}")).await;
    }
    // Longer than the whole header buffer (max_header_bytes, 16384): hyper refuses the head
    // before tally sees it, with 431 and no body of ours.
    let target = format!("/api/event?{MARKER}={}", "q".repeat(20_000));
    let r = exchange(&s.addr, head(&target, "\r\n").into_bytes()).await;
    assert_eq!(r.status(), Some(431), "{r:.200?}");
    assert!(r.closed);
    s.visitor("url20000").await;

    // An over-long target on any path is refused the same way.
    let target = format!("/healthz?{}", "q".repeat(5000));
    let r = exchange(
        &s.addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(),
    )
    .await;
    assert_eq!(r.status(), Some(414));

    assert_eq!(s.rejected("uri_too_long").await, 3.0);
    s.finish().await;
}

#[tokio::test]
async fn huge_and_too_many_headers_get_431() {
    let mut s = Server::start("h_headers", "", "").await;
    let body = hostile_page("headers");
    let cases: Vec<(&str, String)> = vec![
        // One header bigger than the 16 KiB buffer.
        (
            "one huge",
            format!("X-{MARKER}: {}\r\n", "v".repeat(20_000)),
        ),
        // More than max_headers (100), each small.
        (
            "101 headers",
            (0..101)
                .map(|i| format!("X-{MARKER}-{i}: {i}\r\n"))
                .collect(),
        ),
        // Thousands of tiny headers (fewer bytes than the buffer per line, many lines).
        (
            "5000 headers",
            (0..5000).map(|i| format!("X{i}: {MARKER}\r\n")).collect(),
        ),
    ];
    for (case, headers) in cases {
        let mut req = head(
            "/api/event",
            &format!("{headers}Content-Length: {}\r\n\r\n", body.len()),
        )
        .into_bytes();
        req.extend_from_slice(body.as_bytes());
        let r = exchange(&s.addr, req).await;
        assert_eq!(r.status(), Some(431), "{case}: {r:.200?}");
        assert!(r.closed, "{case}");
        s.visitor(&case.replace(' ', "_")).await;
    }
    // 99 ordinary headers are fine.
    let headers: String = (0..90).map(|i| format!("X-Ok-{i}: {i}\r\n")).collect();
    let ok = r#"{"n":"pageview","u":"https://www.example.org/na/many_headers_ok"}"#;
    let mut req = head(
        "/api/event",
        &format!("{headers}Content-Length: {}\r\n\r\n", ok.len()),
    )
    .into_bytes();
    req.extend_from_slice(ok.as_bytes());
    let r = exchange(&s.addr, req).await;
    assert_eq!(r.status(), Some(202), "{r:.300?}");
    s.visitors.push("/na/many_headers_ok".into());
    s.finish().await;
}

#[tokio::test]
async fn slow_loris_headers_are_cut_off_after_the_header_timeout() {
    let mut s = Server::start("h_loris", "header_timeout_secs = 2", "").await;
    let mut stream = TcpStream::connect(&s.addr).await.unwrap();
    stream
        .write_all(format!("POST /api/event?{MARKER} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .await
        .unwrap();
    // One header byte every 200 ms, never finishing the head, for up to PATIENCE.
    let started = Instant::now();
    let mut closed_by_server = false;
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    'drip: while started.elapsed() < PATIENCE {
        if stream.write_all(b"X").await.is_err() {
            closed_by_server = true;
            break;
        }
        // Meanwhile another visitor is served (once, a second in).
        if s.visitors.is_empty() && started.elapsed() > Duration::from_secs(1) {
            s.visitor("during_loris").await;
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_by_server = true;
                break 'drip;
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert!(closed_by_server, "a slow-loris head was kept open");
    // Closed without an answer: nothing was parsed, so there is nothing to answer.
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    s.visitor("after_loris").await;
    s.finish().await;
}

#[tokio::test]
async fn slow_bodies_get_408_after_the_request_timeout() {
    let mut s = Server::start("h_slowbody", "request_timeout_secs = 2", "").await;
    let body = hostile_page("slowbody");
    let mut stream = TcpStream::connect(&s.addr).await.unwrap();
    // The head and a third of the body, then nothing (still connected).
    let mut req = head(
        "/api/event",
        &format!("Content-Length: {}\r\n\r\n", body.len()),
    )
    .into_bytes();
    req.extend_from_slice(&body.as_bytes()[..body.len() / 3]);
    stream.write_all(&req).await.unwrap();
    s.visitor("during_slow_body").await;
    let r = read_reply(&mut stream, PATIENCE).await;
    assert_eq!(r.status(), Some(408), "{r:?}");
    assert_eq!(r.reason().as_deref(), Some("request_timeout"));
    assert!(r.closed);

    // Chunked, one byte a second: the timeout bounds the whole body, not each read.
    let stream = TcpStream::connect(&s.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head("/api/event", "Transfer-Encoding: chunked\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let drip = tokio::spawn(async move {
        for b in hostile_page("drip").bytes() {
            if wr
                .write_all(format!("1\r\n{}\r\n", b as char).as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let r = read_reply(&mut rd, PATIENCE).await;
    drip.abort();
    assert_eq!(r.status(), Some(408), "{r:?}");
    assert_eq!(r.reason().as_deref(), Some("request_timeout"));

    assert_eq!(s.rejected("request_timeout").await, 2.0);
    s.visitor("after_slow_body").await;
    s.finish().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let mut s = Server::start("h_idle", "header_timeout_secs = 2", "").await;
    let mut stream = TcpStream::connect(&s.addr).await.unwrap();
    let body = r#"{"n":"pageview","u":"https://www.example.org/na/keep_alive"}"#;
    // A complete request on a keep-alive connection, answered, then silence.
    let req = format!(
        "POST /api/event HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: {CHROME}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let r = read_reply(&mut stream, PATIENCE).await;
    assert!(r.raw.starts_with("HTTP/1.1 202"), "{r:?}");
    assert!(r.closed, "an idle keep-alive connection was kept open");
    assert_eq!(r.responses(), 1);
    s.visitors.push("/na/keep_alive".into());
    s.visitor("after_idle").await;
    s.finish().await;
}

/// A connection that never sends a byte, or only the first byte of the HTTP/2 preface, is held
/// by hyper-util's protocol detection (`auto::Builder` reads up to 24 bytes before choosing
/// HTTP/1 or HTTP/2), where no header timeout runs yet: enough of them take every connection.
#[tokio::test]
async fn silent_connections_are_closed_after_the_header_timeout() {
    let mut s = Server::start("h_silent", "header_timeout_secs = 2", "").await;
    let mut silent = TcpStream::connect(&s.addr).await.unwrap();
    let mut one_byte = TcpStream::connect(&s.addr).await.unwrap();
    one_byte.write_all(b"P").await.unwrap();
    let mut preface = TcpStream::connect(&s.addr).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        read_reply(&mut silent, PATIENCE),
        read_reply(&mut one_byte, PATIENCE),
        read_reply(&mut preface, PATIENCE),
    );
    let open: Vec<&str> = [
        ("silent", a.closed),
        ("one byte of the HTTP/2 preface", b.closed),
        ("the bare HTTP/2 preface", c.closed),
    ]
    .into_iter()
    .filter(|(_, closed)| !closed)
    .map(|(what, _)| what)
    .collect();
    assert!(open.is_empty(), "kept open for {PATIENCE:?}: {open:?}");
    s.visitor("after_silent").await;
    s.finish().await;
}

/// An HTTP/2 (prior knowledge) connection that completes the handshake, answers the server's
/// pings like any HTTP/2 client does, and never sends a request. hyper's HTTP/2 side has no
/// idle timeout (only the ping, which a live client answers), so such connections are held for
/// good and add up against `server.max_connections`.
#[tokio::test]
async fn idle_http2_connections_are_closed() {
    let mut s = Server::start("h_h2idle", "header_timeout_secs = 2", "").await;
    let mut c = TcpStream::connect(&s.addr).await.unwrap();
    // Preface, then an empty SETTINGS frame.
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut buf = Vec::new();
    let mut pings = 0;
    let closed = 'read: loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, c.read(&mut chunk)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        // Answer every complete frame that asks for an answer.
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let reply = match (kind, flags & 1) {
                (4, 0) => vec![0, 0, 0, 4, 1, 0, 0, 0, 0],
                (6, 0) => {
                    pings += 1;
                    [vec![0, 0, 8, 6, 1, 0, 0, 0, 0], payload].concat()
                }
                (7, _) => break 'read true,
                _ => continue,
            };
            if c.write_all(&reply).await.is_err() {
                break 'read true;
            }
        }
    };
    assert!(
        closed,
        "an idle HTTP/2 connection stayed open for {PATIENCE:?} ({pings} pings answered)"
    );
    s.visitor("after_h2_idle").await;
    s.finish().await;
}

#[tokio::test]
async fn the_connection_limit_refuses_extra_connections_and_recovers() {
    // A long header timeout, so the held connections stay open for the whole test.
    let mut s = Server::start(
        "h_conns",
        "max_connections = 8\nheader_timeout_secs = 60",
        "",
    )
    .await;
    // Eight keep-alive connections, each proven accepted by an answered request (a connection
    // of the readiness check may still hold a place for a moment: then try again).
    let mut held = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while held.len() < 8 {
        let mut c = TcpStream::connect(&s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        match c.read(&mut buf).await {
            Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") => held.push(c),
            _ => {
                assert!(Instant::now() < deadline, "only {} connections", held.len());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // The ninth is accepted by the kernel and closed by tally at once, unanswered.
    let r = exchange(
        &s.addr,
        format!("GET /healthz?{MARKER} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
    )
    .await;
    assert!(r.closed && r.raw.is_empty(), "{r:?}");

    // After closing two, new connections work again (once tally has seen the closes).
    held.truncate(6);
    let deadline = Instant::now() + PATIENCE;
    let m = loop {
        if let Ok(r) = reqwest::get(format!("{}/metrics", s.base)).await {
            break r.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no connection accepted after closing two"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metric(&m, "tally_connections_refused_total") >= 1.0, "{m}");
    let open = metric(&m, "tally_connections_open");
    assert!((1.0..=8.0).contains(&open), "{open} open");
    s.visitor("after_limit").await;
    drop(held);
    s.finish().await;
}

#[tokio::test]
async fn bodies_that_are_not_beacons_get_a_clear_400() {
    // Room for 100k-deep nesting to reach the parser.
    let mut s = Server::start("h_json", "max_body_bytes = 1048576", "").await;
    let page = format!("https://www.example.org/{MARKER}");
    let deep_array = "[".repeat(100_000);
    let deep_object = format!(
        r#"{{"n":"pageview","u":"{page}","p":{}"#,
        "{\"a\":".repeat(100_000)
    );
    let deep_props = format!(
        r#"{{"n":"x","u":"{page}","p":{}1{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "invalid utf-8",
            format!(r#"{{"n":"pageview","u":"{page}/"#)
                .into_bytes()
                .into_iter()
                .chain([0xff, 0xfe, b'"', b'}'])
                .collect(),
            "malformed_json",
        ),
        (
            "lone surrogate escape",
            format!(r#"{{"n":"pageview","u":"{page}/\ud800"}}"#).into_bytes(),
            "malformed_json",
        ),
        ("empty", Vec::new(), "malformed_json"),
        ("whitespace", b"   \r\n\t ".to_vec(), "malformed_json"),
        (
            "binary garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            "malformed_json",
        ),
        ("nul bytes", vec![0; 512], "malformed_json"),
        // An array is the wrong type for a beacon: refused at the first `[`, never nested.
        ("100k [", deep_array.into_bytes(), "invalid_field"),
        (
            "100k nested objects",
            deep_object.into_bytes(),
            "malformed_json",
        ),
        (
            "50k nested props",
            deep_props.into_bytes(),
            "malformed_json",
        ),
        (
            "trailing garbage",
            format!(r#"{{"n":"pageview","u":"{page}"}} {{"#).into_bytes(),
            "malformed_json",
        ),
        (
            "two objects",
            format!(r#"{{"n":"pageview","u":"{page}"}}{{"n":"x"}}"#).into_bytes(),
            "malformed_json",
        ),
        (
            "1e309",
            format!(r#"{{"n":"engagement","u":"{page}","e":1e309}}"#).into_bytes(),
            "malformed_json",
        ),
        (
            "NaN",
            format!(r#"{{"n":"engagement","u":"{page}","e":NaN}}"#).into_bytes(),
            "malformed_json",
        ),
        (
            "Infinity",
            format!(r#"{{"n":"engagement","u":"{page}","sd":-Infinity}}"#).into_bytes(),
            "malformed_json",
        ),
        (
            "negative",
            format!(r#"{{"n":"engagement","u":"{page}","e":-1}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "negative width",
            format!(r#"{{"n":"pageview","u":"{page}","w":-1e300}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "number as string",
            format!(r#"{{"n":"engagement","u":"{page}","e":"5300"}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "unknown field",
            format!(r#"{{"n":"pageview","u":"{page}","{MARKER}":1}}"#).into_bytes(),
            "unknown_field",
        ),
        (
            "name is a number",
            format!(r#"{{"n":5,"u":"{page}"}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "url is an array",
            br#"{"n":"pageview","u":["https://www.example.org/"]}"#.to_vec(),
            "invalid_field",
        ),
        (
            "props is an array",
            format!(r#"{{"n":"x","u":"{page}","p":[1]}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "props value an object",
            format!(r#"{{"n":"x","u":"{page}","p":{{"k":{{"a":1}}}}}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "encoded props not json",
            format!(r#"{{"n":"x","u":"{page}","m":"{{nope"}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "interactive a string",
            format!(r#"{{"n":"x","u":"{page}","i":"yes"}}"#).into_bytes(),
            "invalid_field",
        ),
        ("not an object", b"[]".to_vec(), "invalid_field"),
        ("a bare string", b"\"pageview\"".to_vec(), "invalid_field"),
        ("null", b"null".to_vec(), "invalid_field"),
        (
            "duplicate key",
            format!(r#"{{"n":"pageview","n":"x","u":"{page}"}}"#).into_bytes(),
            "invalid_field",
        ),
        (
            "url too long",
            format!(r#"{{"n":"pageview","u":"{page}/{}"}}"#, "a".repeat(5000)).into_bytes(),
            "invalid_url",
        ),
        (
            "url with only a scheme",
            br#"{"n":"pageview","u":"https://"}"#.to_vec(),
            "invalid_url",
        ),
        (
            "empty name",
            format!(r#"{{"n":"  ","u":"{page}"}}"#).into_bytes(),
            "missing_field",
        ),
    ];
    let mut reasons = std::collections::BTreeMap::<&str, f64>::new();
    for (case, body, reason) in &cases {
        let mut req = head(
            "/api/event",
            &format!("Content-Length: {}\r\n\r\n", body.len()),
        )
        .into_bytes();
        req.extend_from_slice(body);
        let r = exchange(&s.addr, req).await;
        assert_eq!(r.status(), Some(400), "{case}: {r:.300?}");
        assert_eq!(r.reason().as_deref(), Some(*reason), "{case}");
        *reasons.entry(reason).or_default() += 1.0;
        s.visitor(&case.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
            .await;
    }
    for (reason, n) in reasons {
        assert_eq!(s.rejected(reason).await, n, "{reason}");
    }

    // Huge but valid: 30 000 properties and a 600 kB event name. Accepted; the name is cut to
    // ingest.max_event_name_chars and no property is kept (none is on the allow-list).
    let props: Vec<String> = (0..30_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let huge = format!(
        r#"{{"n":"{}","u":"https://www.example.org/na/huge_valid","p":{{{}}}}}"#,
        "N".repeat(600_000),
        props.join(",")
    );
    assert!(huge.len() < 1_048_576);
    let r = exchange(&s.addr, beacon_with_length(&huge)).await;
    assert_eq!(r.status(), Some(202), "{r:.300?}");
    s.visitors.push("/na/huge_valid".into());
    let db = s.setup.db.clone();
    s.finish().await;
    let rows = ch_rows(&format!(
        "SELECT toUInt32(length(name)) AS n, toUInt32(length(props_keys)) AS p FROM {db}.events WHERE path = '/na/huge_valid'"
    ))
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["n"].as_u64(), rows[0]["p"].as_u64()),
        (Some(120), Some(0)),
        "{rows:?}"
    );
}

#[tokio::test]
async fn absurd_but_finite_numbers_are_clamped_not_refused() {
    let mut s = Server::start("h_numbers", "", "").await;
    for (path, body_tail) in [
        (
            "huge_e",
            r#""e":1e300,"sd":1e20,"w":12345678901234567890123"#,
        ),
        ("tiny_e", r#""e":5e-324,"sd":0.000001,"w":-0.0"#),
        ("big_int", r#""e":18446744073709551616,"sd":100.0000001"#),
    ] {
        let body =
            format!(r#"{{"n":"engagement","u":"https://www.example.org/na/{path}",{body_tail}}}"#);
        let r = exchange(&s.addr, beacon_with_length(&body)).await;
        assert_eq!(r.status(), Some(202), "{path}: {r:?}");
        s.visitors.push(format!("/na/{path}"));
    }
    s.visitor("numbers").await;
    let sql = format!(
        "SELECT path, engaged_ms, scroll_depth, screen FROM {}.events WHERE name = 'engagement'",
        s.setup.db
    );
    let deadline = Instant::now() + PATIENCE;
    let rows = loop {
        let rows = ch_rows(&sql).await;
        if rows.len() >= 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let row = |p: &str| {
        rows.iter()
            .find(|r| r["path"] == format!("/na/{p}"))
            .unwrap_or_else(|| panic!("{p} missing: {rows:?}"))
    };
    // A day at most, 100 % at most, and the widest screen class.
    assert_eq!(row("huge_e")["engaged_ms"], 86_400_000);
    assert_eq!(row("huge_e")["scroll_depth"], 100);
    assert_eq!(row("huge_e")["screen"], "desktop");
    assert_eq!(row("tiny_e")["engaged_ms"], 0);
    assert_eq!(row("tiny_e")["screen"], "mobile");
    assert_eq!(row("big_int")["engaged_ms"], 86_400_000);
    assert_eq!(row("big_int")["scroll_depth"], 100);
    s.finish().await;
}

#[tokio::test]
async fn request_smuggling_attempts_are_refused_or_closed() {
    let mut s = Server::start("h_smuggle", "", "").await;
    let smuggled = hostile_page("smuggled");
    let smuggled_req = format!(
        "POST /api/event HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: {CHROME}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let keep = "POST /api/event HTTP/1.1\r\nHost: www.example.org\r\nContent-Type: text/plain\r\n";

    // CL.TE: a front end that goes by Content-Length would forward the smuggled request as part
    // of this body; tally goes by Transfer-Encoding and closes the connection after answering,
    // so what follows the chunked body is never read as a request.
    let cl_te = format!(
        "{keep}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled_req}",
        5 + smuggled_req.len()
    );
    // TE.CL: a front end going by Transfer-Encoding, a back end by Content-Length.
    let chunk = format!("{:x}\r\n{smuggled_req}\r\n0\r\n\r\n", smuggled_req.len());
    let te_cl = format!("{keep}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{chunk}");
    let cases: Vec<(&str, String, u16)> = vec![
        ("CL.TE", cl_te, 400),
        ("TE.CL", te_cl, 400),
        (
            "two different Content-Length",
            format!("{keep}Content-Length: 0\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
            400,
        ),
        (
            "Content-Length with a sign",
            format!("{keep}Content-Length: +{}\r\n\r\n{smuggled}", smuggled.len()),
            400,
        ),
        (
            "Transfer-Encoding not ending in chunked",
            format!("{keep}Transfer-Encoding: chunked, identity\r\n\r\n{smuggled}"),
            400,
        ),
        (
            "obfuscated Transfer-Encoding",
            format!("{keep}Transfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n{smuggled_req}"),
            400,
        ),
        (
            "space before the colon",
            format!("{keep}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n{smuggled_req}"),
            400,
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!(
                "POST /api/event HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled_req}"
            ),
            400,
        ),
        (
            "a folded header",
            format!("{keep}X-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n{smuggled_req}"),
            400,
        ),
    ];
    for (case, req, status) in cases {
        let r = exchange(&s.addr, req.into_bytes()).await;
        assert_eq!(r.status(), Some(status), "{case}: {r:?}");
        assert_eq!(
            r.responses(),
            1,
            "{case}: the smuggled request was answered: {r:?}"
        );
        assert!(r.closed, "{case}: connection left open");
        s.visitor(&case.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
            .await;
    }
    // Nothing smuggled was stored (checked by `finish`: no path holds the marker).
    s.finish().await;
}

#[tokio::test]
async fn http2_and_protocol_garbage_closes_the_connection_only() {
    let mut s = Server::start("h_h2", "header_timeout_secs = 2", "").await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let garbage: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "h2 preface then garbage",
            [preface.clone(), garbage.clone()].concat(),
        ),
        // A SETTINGS frame whose length does not fit its payload, then a HEADERS frame with a
        // bogus HPACK block naming the marker.
        (
            "h2 bad frames",
            [
                preface.clone(),
                vec![0, 0, 5, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5],
                vec![0, 0, 16, 1, 5, 0, 0, 0, 1],
                MARKER.as_bytes()[..15].to_vec(),
                vec![0xff],
            ]
            .concat(),
        ),
        ("garbage", garbage.clone()),
        (
            "a request line of garbage",
            [b"G\x00T / HTTP/1.1\r\n\r\n".to_vec(), garbage].concat(),
        ),
        (
            "an unknown HTTP version",
            format!("GET /{MARKER} HTTP/9.9\r\n\r\n").into_bytes(),
        ),
        (
            "TLS client hello",
            vec![
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ],
        ),
    ];
    for (case, bytes) in cases {
        let r = exchange(&s.addr, bytes).await;
        assert!(r.closed, "{case}: connection kept open: {r:?}");
        if let Some(status) = r.status() {
            assert_eq!(status, 400, "{case}: {r:?}");
        }
        s.visitor(&case.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))
            .await;
    }
    s.finish().await;
}

#[tokio::test]
async fn memory_stays_bounded_after_a_burst_of_large_hostile_requests() {
    let mut s = Server::start("h_memory", "max_body_bytes = 1048576", "").await;
    let before = s.memory_kib("VmRSS");
    // 32 at a time, 128 in all: 1 MiB bodies of deep nesting, chunked bodies past the limit,
    // heads at the header limit.
    let mut rounds = 0;
    for round in 0..4 {
        let mut tasks = Vec::new();
        for i in 0..32 {
            let addr = s.addr.clone();
            tasks.push(tokio::spawn(async move {
                let req = match (round + i) % 3 {
                    0 => {
                        let body = "[".repeat(1_048_000);
                        let mut r = head(
                            "/api/event",
                            &format!("Content-Length: {}\r\n\r\n", body.len()),
                        )
                        .into_bytes();
                        r.extend_from_slice(body.as_bytes());
                        r
                    }
                    1 => {
                        let mut r =
                            head("/api/event", "Transfer-Encoding: chunked\r\n\r\n").into_bytes();
                        r.extend(chunked(&vec![b'{'; 2 * 1024 * 1024]));
                        r
                    }
                    _ => head(
                        "/api/event",
                        &format!("X-{MARKER}: {}\r\n\r\n", "h".repeat(16_000)),
                    )
                    .into_bytes(),
                };
                exchange(&addr, req).await.status()
            }));
        }
        for t in tasks {
            let status = t.await.unwrap();
            assert!(
                matches!(status, Some(400 | 413 | 431)),
                "unexpected answer {status:?}"
            );
        }
        rounds += 1;
    }
    assert_eq!(rounds, 4);
    let (after, peak) = (s.memory_kib("VmRSS"), s.memory_kib("VmHWM"));
    eprintln!("tally RSS: {before} KiB before the burst, {after} KiB after, peak {peak} KiB");
    assert!(
        after < 200 * 1024 && peak < 200 * 1024,
        "RSS {after} KiB after the burst, peak {peak} KiB (before: {before} KiB)"
    );
    s.visitor("after_burst").await;
    s.finish().await;
}

#[tokio::test]
async fn a_client_over_the_rate_limit_gets_429_with_retry_after() {
    let mut s = Server::start("h_rate", "", "rate_limit_per_minute = 5").await;
    let send = |ip: &'static str, path: String| {
        let base = s.base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/event"))
                .header("content-type", "text/plain")
                .header("user-agent", CHROME)
                .header("x-forwarded-for", ip)
                .body(format!(
                    r#"{{"n":"pageview","u":"https://www.example.org{path}"}}"#
                ))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry, r.text().await.unwrap())
        }
    };
    // One client (the IP a trusted proxy passes on) sends 8 beacons in a minute. The windows
    // are clock minutes: start early in one, so the eight fall into the same window.
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if second > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second)).await;
    }
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (status, retry, body) = send("203.0.113.77", format!("/rl/{i}")).await;
        if status == 429 {
            assert_eq!(body, r#"{"error":"rate_limited"}"#);
            let secs: u64 = retry.expect("Retry-After").parse().expect("seconds");
            assert!((1..=60).contains(&secs), "Retry-After {secs}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429, 429, 429]);
    // Another client is not affected.
    s.visitor("other_client").await;
    assert_eq!(s.rejected("rate_limited").await, 3.0);
    // The limiter's key is a salted hash held in memory: the client's address is nowhere.
    let logs = s.logs();
    assert!(!logs.contains("203.0.113.77"), "client IP in the logs");
    let db = s.setup.db.clone();
    s.finish().await;
    // The other client's row is in (finish); the limited client has exactly its five.
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {db}.events WHERE path LIKE '/rl/%'"
        ))
        .await,
        5
    );
}

#[tokio::test]
async fn new_paths_past_the_hourly_cap_are_stored_as_other() {
    let mut s = Server::start("h_paths", "", "max_new_paths_per_hour = 3").await;
    let db = s.setup.db.clone();
    // Six new paths for one site: three kept, three folded into /(other); a kept path seen
    // again stays itself.
    for p in ["/p/1", "/p/2", "/p/3", "/p/4", "/p/5", "/p/6", "/p/1"] {
        let body = format!(r#"{{"n":"pageview","u":"https://www.example.org{p}"}}"#);
        let r = exchange(&s.addr, beacon_with_length(&body)).await;
        assert_eq!(r.status(), Some(202), "{p}: {r:?}");
    }
    let deadline = Instant::now() + PATIENCE;
    while ch_count(&format!("SELECT count() FROM {db}.events")).await < 7 {
        assert!(Instant::now() < deadline, "rows missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = ch_rows(&format!(
        "SELECT path, count() AS n FROM {db}.events GROUP BY path ORDER BY path"
    ))
    .await;
    let count = |p: &str| {
        rows.iter().find(|r| r["path"] == p).map_or(0, |r| {
            r["n"]
                .as_str()
                .map_or_else(|| r["n"].as_u64().unwrap(), |n| n.parse().unwrap())
        })
    };
    assert_eq!(count("/p/1"), 2, "{rows:?}");
    assert_eq!(count("/p/2"), 1);
    assert_eq!(count("/p/3"), 1);
    assert_eq!(count("/(other)"), 3, "{rows:?}");
    let m = s.metrics().await;
    assert_eq!(metric(&m, "tally_paths_capped_total"), 3.0);
    s.visitors.clear();
    s.finish().await;
}
