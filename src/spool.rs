//! The spool: batches ClickHouse could not take, kept on local disk (bounded) until they are
//! replayed in the order they were written.
//!
//! One file per batch, named by a zero-padded sequence number (`00000000000000000042.jsonl`) so
//! that names sort in write order; one JSON row per line. A batch is written under a `.tmp`
//! name, synced and renamed, so a crash leaves the whole batch or nothing (left-over `.tmp`
//! files are deleted at start). The rows are the anonymous `EventRow`s that go to ClickHouse:
//! the spool holds nothing the `events` table would not, and nothing it holds can identify a
//! visitor beyond the day's hash. Rows ClickHouse refuses for good go to `rejected/` for an
//! operator to inspect; they are never replayed automatically and are deleted by retention.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::event::EventRow;
use crate::metrics::{Code, Metrics};

/// Suffix of a complete batch file.
const BATCH: &str = "jsonl";
/// Suffix of a batch being written.
const PARTIAL: &str = "tmp";
/// Folder (inside the spool) for rows ClickHouse refused for good.
pub const REJECTED: &str = "rejected";

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    metrics: Arc<Metrics>,
}

struct State {
    /// Sequence number of the next batch.
    next: u64,
    /// Batches on disk: sequence number → file size.
    batches: BTreeMap<u64, u64>,
    bytes: u64,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir`, readable by this user only, and takes
    /// stock of the batches a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let io =
            |what: &str, e: std::io::Error| Error::Spool(format!("{what} {}: {e}", dir.display()));
        create_private_dir(dir).map_err(|e| io("cannot create", e))?;
        create_private_dir(&dir.join(REJECTED)).map_err(|e| io("cannot create", e))?;
        let mut batches = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(|e| io("cannot read", e))? {
            let entry = entry.map_err(|e| io("cannot read", e))?;
            let path = entry.path();
            let Some(seq) = sequence(&path) else { continue };
            match path.extension().and_then(|e| e.to_str()) {
                Some(PARTIAL) => {
                    // Never renamed: the process died while writing it, so it was never
                    // counted as spooled; its rows were the in-memory batch the crash lost.
                    fs::remove_file(&path).map_err(|e| io("cannot clean", e))?;
                }
                Some(BATCH) => {
                    let len = entry.metadata().map_err(|e| io("cannot read", e))?.len();
                    batches.insert(seq, len);
                }
                _ => {}
            }
        }
        let next = batches.keys().next_back().map_or(0, |s| s + 1);
        let bytes = batches.values().sum();
        let spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(State {
                next,
                batches,
                bytes,
            }),
            metrics,
        };
        spool.publish(&spool.lock());
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_empty(&self) -> bool {
        self.lock().batches.is_empty()
    }

    /// Bytes and batches waiting.
    pub fn usage(&self) -> (u64, usize) {
        let state = self.lock();
        (state.bytes, state.batches.len())
    }

    /// Writes a batch as the newest. Fails when it would not fit in `max_bytes` or the disk
    /// refuses it; then nothing is written and the caller keeps the rows.
    pub fn append(&self, rows: &[EventRow]) -> Result<(), Error> {
        let data = encode(rows)?;
        let len = data.len() as u64;
        let seq = {
            let mut state = self.lock();
            if state.bytes + len > self.max_bytes {
                return Err(Error::SpoolFull {
                    bytes: state.bytes,
                    max: self.max_bytes,
                });
            }
            // Reserve the bytes now so two writers cannot both squeeze in.
            state.bytes += len;
            let seq = state.next;
            state.next += 1;
            seq
        };
        match self.write_file(seq, &data) {
            Ok(()) => {
                let mut state = self.lock();
                state.batches.insert(seq, len);
                self.publish(&state);
                self.metrics.rows_spooled.inc_by(rows.len() as u64);
                Ok(())
            }
            Err(e) => {
                self.lock().bytes -= len;
                let _ = fs::remove_file(self.path(seq, PARTIAL));
                Err(Error::Spool(format!("cannot write a batch: {e}")))
            }
        }
    }

    /// The oldest batch waiting, if any.
    pub fn oldest(&self) -> Option<u64> {
        self.lock().batches.keys().next().copied()
    }

    /// Reads a batch back. A file that does not parse (damaged on disk) is moved to
    /// `rejected/` and reported as an error; the spool goes on with the next batch.
    pub fn read(&self, seq: u64) -> Result<Vec<EventRow>, Error> {
        let path = self.path(seq, BATCH);
        let text = fs::read_to_string(&path)
            .map_err(|e| Error::Spool(format!("cannot read batch {seq}: {e}")))?;
        let rows: Result<Vec<EventRow>, _> = text.lines().map(serde_json::from_str).collect();
        match rows {
            Ok(rows) => Ok(rows),
            Err(e) => {
                let aside = self
                    .dir
                    .join(REJECTED)
                    .join(format!("{seq:020}-damaged.jsonl"));
                let _ = fs::rename(&path, aside);
                self.forget(seq);
                Err(Error::Spool(format!(
                    "batch {seq} is damaged ({e}); moved to {REJECTED}/"
                )))
            }
        }
    }

    /// Deletes a batch that is now in ClickHouse.
    pub fn remove(&self, seq: u64) -> Result<(), Error> {
        let path = self.path(seq, BATCH);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Spool(format!("cannot delete batch {seq}: {e}"))),
        }
        self.forget(seq);
        Ok(())
    }

    /// Keeps rows ClickHouse refused for good (error `code`) in `rejected/`, for inspection.
    pub fn set_aside(&self, rows: &[EventRow], code: &str) -> Result<PathBuf, Error> {
        let data = encode(rows)?;
        let seq = {
            let mut state = self.lock();
            let seq = state.next;
            state.next += 1;
            seq
        };
        let path = self
            .dir
            .join(REJECTED)
            .join(format!("{seq:020}-code-{code}.jsonl"));
        write_synced(&path, &data)
            .map_err(|e| Error::Spool(format!("cannot keep refused rows aside: {e}")))?;
        self.metrics
            .rows_set_aside
            .get_or_create(&Code {
                code: code.to_string(),
            })
            .inc_by(rows.len() as u64);
        Ok(path)
    }

    fn forget(&self, seq: u64) {
        let mut state = self.lock();
        if let Some(len) = state.batches.remove(&seq) {
            state.bytes -= len;
        }
        self.publish(&state);
    }

    fn write_file(&self, seq: u64, data: &[u8]) -> std::io::Result<()> {
        let partial = self.path(seq, PARTIAL);
        write_synced(&partial, data)?;
        fs::rename(&partial, self.path(seq, BATCH))?;
        // The rename itself must survive a power cut too.
        fs::File::open(&self.dir)?.sync_all()
    }

    fn path(&self, seq: u64, suffix: &str) -> PathBuf {
        self.dir.join(format!("{seq:020}.{suffix}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counts half-updated in a way that
        // matters more than stopping would; keep going with what is there.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, state: &State) {
        self.metrics.spool_bytes.set(state.bytes as i64);
        self.metrics.spool_batches.set(state.batches.len() as i64);
    }
}

fn encode(rows: &[EventRow]) -> Result<Vec<u8>, Error> {
    let mut data = Vec::with_capacity(rows.len() * 400);
    for row in rows {
        serde_json::to_writer(&mut data, row)
            .map_err(|e| Error::Spool(format!("cannot encode a row: {e}")))?;
        data.push(b'\n');
    }
    Ok(data)
}

/// The sequence number in a spool file name, if it is one.
fn sequence(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str) -> EventRow {
        EventRow::example(path)
    }

    #[test]
    fn batches_come_back_in_write_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20, Arc::new(Metrics::new())).unwrap();
        assert!(spool.is_empty());
        spool.append(&[row("/a"), row("/b")]).unwrap();
        spool.append(&[row("/c")]).unwrap();
        // A crash while writing leaves a `.tmp` file: it is not a batch.
        fs::write(dir.path().join(format!("{:020}.tmp", 99)), "half a ro").unwrap();
        drop(spool);

        let spool = Spool::open(dir.path(), 1 << 20, Arc::new(Metrics::new())).unwrap();
        assert_eq!(spool.usage().1, 2);
        assert!(!dir.path().join(format!("{:020}.tmp", 99)).exists());
        let first = spool.oldest().unwrap();
        assert_eq!(spool.read(first).unwrap(), vec![row("/a"), row("/b")]);
        spool.remove(first).unwrap();
        let second = spool.oldest().unwrap();
        assert!(second > first);
        assert_eq!(spool.read(second).unwrap(), vec![row("/c")]);
        spool.remove(second).unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.usage(), (0, 0));
        // New batches continue the numbering: never reuse a name an operator may have seen.
        spool.append(&[row("/d")]).unwrap();
        assert!(spool.oldest().unwrap() > second);
    }

    #[test]
    fn a_full_spool_refuses_and_keeps_nothing_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode(&[row("/a")]).unwrap().len() as u64;
        let spool = Spool::open(dir.path(), one * 2, Arc::new(Metrics::new())).unwrap();
        spool.append(&[row("/a")]).unwrap();
        spool.append(&[row("/b")]).unwrap();
        assert!(matches!(
            spool.append(&[row("/c")]),
            Err(Error::SpoolFull { .. })
        ));
        assert_eq!(spool.usage(), (one * 2, 2));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3); // two batches + rejected/
        spool.remove(spool.oldest().unwrap()).unwrap();
        spool.append(&[row("/c")]).unwrap();
    }

    #[test]
    fn a_damaged_batch_is_moved_aside_and_the_next_one_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20, Arc::new(Metrics::new())).unwrap();
        spool.append(&[row("/a")]).unwrap();
        spool.append(&[row("/b")]).unwrap();
        let first = spool.oldest().unwrap();
        fs::write(spool.path(first, BATCH), "{not json").unwrap();
        assert!(spool.read(first).is_err());
        assert_eq!(fs::read_dir(dir.path().join(REJECTED)).unwrap().count(), 1);
        let next = spool.oldest().unwrap();
        assert_ne!(next, first);
        assert_eq!(spool.read(next).unwrap(), vec![row("/b")]);
    }

    /// A batch file as the version before shared row strings wrote it (`site`, `name`, `host`,
    /// `country`, `browser`, `os` were owned strings then): it still reads back, equal, and
    /// writes out again byte for byte.
    #[test]
    fn a_batch_written_by_the_previous_row_format_still_replays() {
        const OLD: &str = concat!(
            r#"{"site":"www.example.org","ts":1790000000,"micros":0,"visitor":42,"name":"pageview","#,
            r#""host":"www.example.org","path":"/a","query":"","utm_source":"","utm_medium":"","#,
            r#""utm_campaign":"","utm_content":"","utm_term":"","referrer_host":"","source":"","#,
            r#""country":"NL","device":"desktop","browser":"Firefox","os":"Linux","#,
            r#""screen":"laptop","engaged_ms":0,"scroll_depth":0,"interactive":1,"#,
            r#""props_keys":[],"props_values":[],"event_id":7}"#,
            "\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 20, Arc::new(Metrics::new())).unwrap();
        spool.append(&[row("/z")]).unwrap();
        let seq = spool.oldest().unwrap();
        fs::write(spool.path(seq, BATCH), OLD).unwrap();
        assert_eq!(spool.read(seq).unwrap(), vec![row("/a")]);
        assert_eq!(encode(&[row("/a")]).unwrap(), OLD.as_bytes());
    }

    #[test]
    fn refused_rows_are_kept_by_code_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let spool = Spool::open(dir.path(), 1 << 20, metrics.clone()).unwrap();
        let path = spool.set_aside(&[row("/x")], "16").unwrap();
        assert!(path.starts_with(dir.path().join(REJECTED)));
        assert!(path.to_string_lossy().contains("code-16"));
        assert!(metrics
            .encode()
            .contains("tally_rows_set_aside_total{code=\"16\"} 1"));
        // Set-aside rows are not batches to replay.
        assert!(spool.is_empty());
    }
}
