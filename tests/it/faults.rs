//! Issue 7's fault test: steady load for a minute while ClickHouse is killed for 20 s and
//! restarted, and tally itself is stopped with SIGTERM and started again. Afterwards the rows
//! in ClickHouse must equal the 202s the load generator counted: nothing lost, no duplicates.
//!
//! It runs its own ClickHouse server (`scripts/clickhouse.sh`, the same 18.16 the suite uses),
//! since killing the shared one would break the other tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

/// Beacons per second offered (the test checks counts, not the rate; the reached rate is
/// printed).
const RATE: u64 = 3_000;
const WORKERS: u64 = 30;
const LOAD: Duration = Duration::from_secs(60);
const KILL_AT: Duration = Duration::from_secs(10);
const DOWN_FOR: Duration = Duration::from_secs(20);
const SIGTERM_AT: Duration = Duration::from_secs(42);

struct OwnClickHouse {
    dir: PathBuf,
    http: u16,
    tcp: u16,
}

impl OwnClickHouse {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/clickhouse.sh")
    }

    fn run(&self, verb: &str) {
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script()).arg(verb).arg(&self.dir);
        if verb == "start" {
            cmd.arg(self.http.to_string()).arg(self.tcp.to_string());
        }
        let out = cmd.output().expect("scripts/clickhouse.sh runs");
        assert!(
            out.status.success(),
            "clickhouse.sh {verb}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}

impl Drop for OwnClickHouse {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

async fn own_count(url: &str, sql: &str) -> Option<u64> {
    let r = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .send()
        .await
        .ok()?;
    r.text().await.ok()?.trim().parse().ok()
}

#[derive(Default)]
struct Tally202 {
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_7_clickhouse_killed_and_tally_restarted_under_load_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let ch = OwnClickHouse {
        dir: work.path().join("clickhouse"),
        http: free_port(),
        tcp: free_port(),
    };
    ch.run("start");
    let mut setup = Setup::new("faults");
    setup.clickhouse_url = Some(ch.url());
    // The per-client limit would refuse a load generator; the path cap would fold its URLs.
    setup.ingest_extra = "rate_limit_per_minute = 0\nmax_new_paths_per_hour = 0\n".into();
    let setup = setup.flush_ms(200);
    let tally = Arc::new(tokio::sync::Mutex::new(Some(setup.start().await)));

    let counts = Arc::new(Tally202::default());
    let started = Instant::now();
    let base = format!("http://127.0.0.1:{}", setup.port);
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let counts = counts.clone();
        let base = base.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut tick = tokio::time::interval(Duration::from_micros(
                1_000_000 * WORKERS / RATE,
            ));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut i: u64 = 0;
            while started.elapsed() < LOAD {
                tick.tick().await;
                i += 1;
                let n = w * 1_000_000 + i;
                let body = format!(
                    r#"{{"n":"pageview","u":"https://www.example.org/load/{}","d":"www.example.org"}}"#,
                    n % 5_000
                );
                let ip = format!("100.{}.{}.{}", 64 + w, (i >> 8) & 255, i & 255);
                let sent = client
                    .post(format!("{base}/api/event"))
                    .header("user-agent", CHROME)
                    .header("x-forwarded-for", ip)
                    .body(body)
                    .send()
                    .await;
                let slot = match sent.map(|r| r.status().as_u16()) {
                    Ok(202) => &counts.accepted,
                    Ok(_) => &counts.refused,
                    // Connection refused while tally restarts: the beacon was not accepted.
                    Err(_) => &counts.failed,
                };
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    tokio::time::sleep(KILL_AT).await;
    ch.run("kill");
    let killed_at = counts.accepted.load(Ordering::Relaxed);
    tokio::time::sleep(DOWN_FOR).await;
    ch.run("start");
    let restarted_at = counts.accepted.load(Ordering::Relaxed);
    tokio::time::sleep(SIGTERM_AT.saturating_sub(started.elapsed())).await;
    let old = tally.lock().await.take().unwrap();
    let spooled_before_sigterm = metric(&old.metrics().await, "tally_rows_spooled_total");
    let (status, logs) = tokio::task::spawn_blocking(move || old.terminate())
        .await
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM:\n{}", tail(&logs));
    *tally.lock().await = Some(setup.start().await);
    for w in workers {
        w.await.unwrap();
    }
    let accepted = counts.accepted.load(Ordering::Relaxed);
    let refused = counts.refused.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);

    // Every 202 must become exactly one row, once the spool has drained.
    let db = &setup.db;
    let deadline = Instant::now() + Duration::from_secs(180);
    let rows = loop {
        let rows = own_count(&ch.url(), &format!("SELECT count() FROM {db}.events"))
            .await
            .unwrap_or(0);
        if rows >= accepted || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rows_now = own_count(&ch.url(), &format!("SELECT count() FROM {db}.events"))
        .await
        .unwrap();
    let distinct = own_count(
        &ch.url(),
        &format!("SELECT uniqExact(event_id) FROM {db}.events"),
    )
    .await
    .unwrap();
    let t = tally.lock().await;
    let m = t.as_ref().unwrap().metrics().await;
    println!(
        "fault test: offered {RATE}/s for {}s; 202: {accepted} ({:.0}/s), other status: {refused}, \
         no answer (restart): {failed}; accepted before the kill {killed_at}, during the outage {}; \
         spooled before SIGTERM {spooled_before_sigterm}; rows {rows_now}, distinct event ids {distinct}, \
         duplicates {}; after restart: replayed {}, duplicates skipped {}",
        LOAD.as_secs(),
        accepted as f64 / LOAD.as_secs_f64(),
        restarted_at - killed_at,
        rows_now - distinct,
        metric(&m, "tally_rows_replayed_total"),
        metric(&m, "tally_replay_duplicates_skipped_total"),
    );
    assert!(
        restarted_at > killed_at,
        "beacons were accepted while ClickHouse was down"
    );
    assert!(
        spooled_before_sigterm > 0.0,
        "the outage went through the spool"
    );
    assert_eq!(rows, accepted, "rows in ClickHouse = 202s counted");
    assert_eq!(rows_now, accepted, "and no more arrive later");
    assert_eq!(distinct, rows_now, "no duplicates");
    assert_eq!(metric(&m, "tally_spool_batches"), 0.0, "the spool drained");
}

fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
