//! Issue 6: after rotation plus the grace period, the old salt is gone from every place it was
//! kept: its row and part files in ClickHouse, and this process's memory (the collector runs
//! in-process here, with a manual clock, so the test can read its memory and move its time).
//!
//! The test itself never holds the salt: ClickHouse sends it reversed (`reverse(salt)`), and the
//! scans compare memory against the reversed text without building the original.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use tally::clock::{Clock, ManualClock};
use tally::salt::SaltStore;

use crate::support::*;

/// The hex digit value of an ASCII hex character.
fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Does `hay` hold the salt as text (hex) or as its 32 raw bytes? `rev` is the reversed hex.
fn holds_salt(hay: &[u8], rev: &[u8]) -> (bool, bool) {
    let n = rev.len();
    let text_at = |i: usize| (0..n).all(|k| hay[i + k].to_ascii_lowercase() == rev[n - 1 - k]);
    // Raw byte k is the hex pair (2k, 2k+1) of the original, i.e. rev[n-1-2k], rev[n-2-2k].
    let raw = |k: usize| (nibble(rev[n - 1 - 2 * k]) << 4) | nibble(rev[n - 2 - 2 * k]);
    let raw_at = |i: usize| (0..n / 2).all(|k| hay[i + k] == raw(k));
    let (first_text, first_raw) = (rev[n - 1], raw(0));
    let mut found = (false, false);
    for i in 0..hay.len() {
        if !found.0 && i + n <= hay.len() && hay[i].to_ascii_lowercase() == first_text && text_at(i)
        {
            found.0 = true;
        }
        if !found.1 && i + n / 2 <= hay.len() && hay[i] == first_raw && raw_at(i) {
            found.1 = true;
        }
    }
    found
}

/// Scans every readable, writable mapping of this process (heap, stacks, anonymous memory).
fn in_memory(rev: &[u8]) -> (bool, bool) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
    let mut found = (false, false);
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue; // guard pages and the like
        }
        let f = holds_salt(&buf, rev);
        found = (found.0 || f.0, found.1 || f.1);
        // The copy we just made must not be found by the next region's scan.
        buf.iter_mut().for_each(|b| *b = 0);
    }
    found
}

/// The decompressed contents of a ClickHouse column file: a chain of blocks, each a 16-byte
/// checksum, a method byte (0x82 = LZ4), the compressed size (with the 9-byte header) and the
/// decompressed size, little-endian. Without this, the scan would see the salt only when LZ4 found
/// no repeat inside its 64 hex characters (about 97 % of salts), and a clean run missed it once.
/// Files that are not such a chain (marks, checksums, other methods) give what decoded before.
fn lz4_blocks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 25 <= bytes.len() && bytes[at + 16] == 0x82 {
        let le = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let (compressed, size) = (le(at + 17), le(at + 21));
        if compressed < 9 || at + 16 + compressed > bytes.len() {
            break;
        }
        match lz4_flex::block::decompress(&bytes[at + 25..at + 16 + compressed], size) {
            Ok(block) => out.extend_from_slice(&block),
            Err(_) => break,
        }
        at += 16 + compressed;
    }
    out
}

/// Every file under `dir` that holds the salt as text or raw bytes, stored or LZ4-compressed.
fn on_disk(dir: &Path, rev: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(on_disk(&p, rev));
        } else if let Ok(bytes) = std::fs::read(&p) {
            let (text, raw) = holds_salt(&bytes, rev);
            let (ztext, zraw) = holds_salt(&lz4_blocks(&bytes), rev);
            if text || raw || ztext || zraw {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_the_old_salt_is_gone_from_storage_and_memory() {
    let data_dir = std::env::var("TALLY_TEST_CLICKHOUSE_DATA").expect(
        "TALLY_TEST_CLICKHOUSE_DATA (the ClickHouse data folder) is set by scripts/test.sh",
    );
    let db = fresh_db("salts");
    let spool = tempfile::tempdir().unwrap();
    let config = tally::config::Config::parse(&format!(
        "[clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\n[ingest]\nflush_interval_ms = 50\n\
         spool_dir = \"{}\"\n\
         [rollups]\nenabled = false\n[[sites]]\ndomain = \"www.example.org\"\n",
        clickhouse_url(),
        spool.path().display()
    ))
    .unwrap();
    // 10:00 in Amsterdam on 23 November; the salt of that day is created now.
    let clock = Arc::new(ManualClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
    let prepared = tally::prepare(&config, clock.clone()).await.unwrap();
    let app = prepared.app().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tally::run(listener, prepared, async {
        let _ = stopped.await;
    }));
    // Use the salt: a few visitors hashed with it.
    for ip in ["193.0.6.139", "8.8.8.8", "203.0.113.5"] {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/event"))
            .header("user-agent", CHROME)
            .header("x-forwarded-for", ip)
            .body(r#"{"n":"pageview","u":"https://www.example.org/","d":"www.example.org"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }

    let rev = ch(&format!(
        "SELECT reverse(salt) FROM {db}.salts WHERE day = '2026-11-23'"
    ))
    .await
    .trim()
    .to_string()
    .into_bytes();
    assert_eq!(rev.len(), 64, "one agreed salt for the day");
    let table_dir = Path::new(&data_dir).join(&db).join("salts");
    // The scanners work: before rotation the salt is in storage and in memory.
    assert!(
        !on_disk(&table_dir, &rev).is_empty(),
        "salt found in its part files"
    );
    assert!(
        in_memory(&rev).1,
        "salt bytes found in the collector's memory"
    );

    // Midnight passes, then the grace (visits.timeout_minutes = 30) ends: 00:31 on the 24th.
    let store = SaltStore::ClickHouse(std::sync::Arc::new(tally::cluster::Cluster::new(
        &config.clickhouse,
    )));
    for at in ["2026-11-23T23:10:00Z", "2026-11-23T23:31:00Z"] {
        clock.set(at.parse().unwrap());
        app.ingest
            .visitors
            .book
            .refresh(&store, clock.now())
            .await
            .unwrap();
    }
    drop(store);

    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {db}.salts WHERE day = '2026-11-23'"
        ))
        .await,
        0,
        "row deleted"
    );
    assert_eq!(
        on_disk(&table_dir, &rev),
        Vec::<String>::new(),
        "no ClickHouse file holds the old salt"
    );
    let (text, raw) = in_memory(&rev);
    assert!(
        !raw,
        "the old salt's bytes are gone from the collector's memory"
    );
    assert!(
        !text,
        "the old salt's hex is gone from the collector's memory"
    );

    let _ = stop.send(());
    server.await.unwrap();
}
