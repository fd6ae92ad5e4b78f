//! The writer: a bounded queue from the HTTP handlers to one task that places batches in
//! ClickHouse, or in the spool when ClickHouse cannot take them.
//!
//! Handlers never wait on ClickHouse: they push into the queue and answer 503 when it is
//! full (counted as `beacons_rejected{reason="overloaded"}`). The writer flushes at
//! `ingest.batch_size` rows or every `ingest.flush_interval_ms`, whichever comes first. A batch
//! goes to ClickHouse directly only while the spool is empty, so spooled batches are replayed
//! (by `replay`) before anything newer: order is kept. When neither ClickHouse nor the spool
//! can take a batch (spool full, disk full), the writer holds it and retries; the queue then
//! fills, beacons get 503 with `Retry-After`, and `/readyz` says not ready, so nothing accepted
//! is dropped. On shutdown the queue is closed and drained; what ClickHouse cannot take then
//! is spooled for the next start.
//!
//! A ClickHouse that is slow to answer an insert, without failing it, would also fill the queue:
//! while an insert is under way, a queue that reaches [`SPILL_FRACTION`] of its capacity is
//! moved to the spool whole (`rows_spilled`), so beacons keep being taken. Those rows are then
//! replayed like any spooled batch, possibly before older rows of the writer's own batch that
//! were still waiting their turn; each row keeps its own time, and the visit job takes a late
//! row as it takes any late event.
//!
//! The queue is a vector under a lock that the writer takes whole, and the writer is woken per
//! batch, not per row: when the queue holds a batch (or half its capacity, if that is less),
//! at each flush tick, and at shutdown. (A channel woke the writer task for every beacon.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use crate::error::Rejection;
use crate::event::EventRow;
use crate::metrics::{Metrics, Reason};
use crate::retry::Backoff;
use crate::sink::Sink;

/// Readiness turns false when the queue is fuller than this fraction: a load balancer should
/// move traffic before beacons start getting 503.
const READY_QUEUE_FRACTION: f64 = 0.9;
/// While an insert is under way, a queue this full is moved to the spool: before readiness
/// turns false, and before beacons get 503.
const SPILL_FRACTION: f64 = 0.8;

/// The sending side, held by the HTTP handlers.
#[derive(Clone)]
pub struct Queue {
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

/// What the handlers and the writer task share.
struct Shared {
    rows: Mutex<Rows>,
    /// Most rows queued at once (`ingest.queue_capacity`).
    capacity: usize,
    /// The queue length at which the writer is woken.
    wake_at: usize,
    /// Wakes the writer (a stored permit if it is busy: no wake-up is lost).
    wake: Notify,
    /// The queue length at which a writer waiting for an insert moves the queue to the spool.
    spill_at: usize,
    /// Tells a writer waiting for an insert that the queue reached `spill_at`.
    full: Notify,
    /// Set while the writer holds a batch that neither ClickHouse nor the spool would take.
    blocked: AtomicBool,
}

/// Rows accepted and not yet taken by the writer.
struct Rows {
    queued: Vec<EventRow>,
    /// Set at shutdown: nothing more is taken.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Rows> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Queue {
    pub fn push(&self, row: EventRow) -> Result<(), Rejection> {
        let mut rows = self.shared.lock();
        if rows.closed || rows.queued.len() >= self.shared.capacity {
            return Err(Rejection::Overloaded);
        }
        rows.queued.push(row);
        let len = rows.queued.len();
        drop(rows);
        self.metrics.queue_depth.inc();
        if len == self.shared.wake_at {
            self.shared.wake.notify_one();
        }
        if len == self.shared.spill_at {
            self.shared.full.notify_one();
        }
        Ok(())
    }

    /// Free places in the queue, for all-or-nothing pushes of multi-site beacons.
    pub fn capacity(&self) -> usize {
        let rows = self.shared.lock();
        if rows.closed {
            return 0;
        }
        self.shared.capacity.saturating_sub(rows.queued.len())
    }

    /// Whether beacons can be taken without loss: the writer is not stuck and the queue has room.
    pub fn accepting(&self) -> bool {
        let free = self.capacity() as f64 / self.shared.capacity as f64;
        !self.shared.blocked.load(Ordering::Relaxed) && free > 1.0 - READY_QUEUE_FRACTION
    }
}

/// The writer task's handle: ask it to drain and wait until it has.
pub struct Writer {
    close: Option<oneshot::Sender<()>>,
    closing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Closes the queue, places what is in it (ClickHouse or spool), and returns when done.
    pub async fn drain(mut self) {
        // Also seen by a batch the writer is holding right now (spool full, ClickHouse away):
        // from here on it waits at most `shutdown_patience`.
        self.closing.store(true, Ordering::Relaxed);
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        let _ = self.task.await;
    }
}

pub struct WriterConfig {
    pub capacity: usize,
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// How long a batch may wait for room at shutdown before it is counted as lost.
    pub shutdown_patience: Duration,
}

/// Starts the writer task. `spooled` is notified whenever a batch is written to the spool.
pub fn spawn(sink: Arc<Sink>, config: WriterConfig, spooled: Arc<Notify>) -> (Queue, Writer) {
    // Woken at a batch, or at half the queue when that is less: the writer then gathers rows
    // into its batch while the queue keeps room, as it did when it took them one at a time.
    let wake_at = config.batch_size.min(config.capacity / 2).max(1);
    let shared = Arc::new(Shared {
        rows: Mutex::new(Rows {
            queued: Vec::with_capacity(wake_at),
            closed: false,
        }),
        capacity: config.capacity,
        wake_at,
        wake: Notify::new(),
        spill_at: ((config.capacity as f64 * SPILL_FRACTION) as usize).max(1),
        full: Notify::new(),
        blocked: AtomicBool::new(false),
    });
    let (close_tx, close_rx) = oneshot::channel();
    let closing = Arc::new(AtomicBool::new(false));
    let metrics = sink.metrics.clone();
    let task = tokio::spawn(
        Task {
            sink,
            config,
            spooled,
            shared: shared.clone(),
            closing: closing.clone(),
        }
        .run(close_rx),
    );
    (
        Queue { shared, metrics },
        Writer {
            close: Some(close_tx),
            closing,
            task,
        },
    )
}

/// Spool writes of queues moved there during one insert, and the rows each carries.
#[derive(Default)]
struct Spills {
    set: tokio::task::JoinSet<Result<(), (crate::Error, Vec<EventRow>)>>,
    rows: Vec<(tokio::task::Id, usize)>,
}

type SpillDone =
    Result<(tokio::task::Id, Result<(), (crate::Error, Vec<EventRow>)>), tokio::task::JoinError>;

struct Task {
    sink: Arc<Sink>,
    config: WriterConfig,
    spooled: Arc<Notify>,
    shared: Arc<Shared>,
    closing: Arc<AtomicBool>,
}

impl Task {
    async fn run(self, mut close: oneshot::Receiver<()>) {
        let batch_size = self.config.batch_size;
        // The batch being gathered, and the queue's buffer swapped out with each take: both
        // kept for the life of the task. (Starting a new empty vector per batch made every
        // batch regrow through a dozen reallocations, each copying and wiping the rows so far.)
        let mut batch: Vec<EventRow> = Vec::with_capacity(batch_size);
        let mut taken: Vec<EventRow> = Vec::with_capacity(self.shared.wake_at);
        let mut ticker = tokio::time::interval(self.config.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing = false;
        loop {
            let mut flush = false;
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = ticker.tick() => flush = true,
                _ = &mut close, if !closing => {
                    // No new rows from now on; what is queued is placed below.
                    closing = true;
                    flush = true;
                    self.shared.lock().closed = true;
                }
            }
            // Everything queued, at once (a swap of two vectors under the lock).
            std::mem::swap(&mut self.shared.lock().queued, &mut taken);
            self.sink.metrics.queue_depth.dec_by(taken.len() as i64);
            if batch.is_empty() {
                std::mem::swap(&mut batch, &mut taken);
            } else {
                batch.append(&mut taken);
            }
            // Full batches go at once; a partial one at the tick (or at shutdown).
            let full = batch.len() / batch_size * batch_size;
            for chunk in batch[..full].chunks(batch_size) {
                self.place(chunk).await;
            }
            batch.drain(..full);
            if flush && !batch.is_empty() {
                self.place(&batch).await;
                batch.clear();
            }
            if closing && batch.is_empty() && self.shared.lock().queued.is_empty() {
                break;
            }
        }
        tracing::info!("writer drained");
    }

    /// Inserts the batch into ClickHouse; while the insert is under way, moves the queue to the
    /// spool each time it reaches `spill_at`. Whether the insert succeeded. The spool writes run
    /// beside each other and beside the insert: the queue keeps filling while one is flushed to
    /// disk, and a writer that waited for it could not move the queue again in time.
    async fn store_spilling(&self, batch: &[EventRow]) -> bool {
        let store = self.sink.store(batch);
        tokio::pin!(store);
        let mut spills = Spills::default();
        let stored = loop {
            tokio::select! {
                stored = &mut store => break stored.is_ok(),
                _ = self.shared.full.notified() => self.spill(&mut spills),
                Some(done) = spills.set.join_next_with_id(), if !spills.set.is_empty() => {
                    self.spilled(&mut spills, done);
                }
            }
        };
        while let Some(done) = spills.set.join_next_with_id().await {
            self.spilled(&mut spills, done);
        }
        stored
    }

    /// Takes the queue, if it is still at least `spill_at` long, and starts writing it to the
    /// spool.
    fn spill(&self, spills: &mut Spills) {
        let rows = {
            let mut queue = self.shared.lock();
            if queue.queued.len() < self.shared.spill_at {
                return; // a permit stored before the writer took the queue
            }
            std::mem::take(&mut queue.queued)
        };
        let n = rows.len();
        let spool = self.sink.spool.clone();
        let task = spills
            .set
            .spawn_blocking(move || spool.append(&rows).map_err(|e| (e, rows)));
        spills.rows.push((task.id(), n));
    }

    /// Counts a finished spool write. Rows the spool did not take go back to the front of the
    /// queue, which then fills and refuses as before.
    fn spilled(&self, spills: &mut Spills, done: SpillDone) {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let n = spills
            .rows
            .iter()
            .position(|(i, _)| *i == id)
            .map_or(0, |at| spills.rows.swap_remove(at).1);
        match done {
            Ok((_, Ok(()))) => {
                self.sink.metrics.queue_depth.dec_by(n as i64);
                self.sink.metrics.rows_spilled.inc_by(n as u64);
                self.spooled.notify_one();
                tracing::warn!(
                    rows = n,
                    "ClickHouse is slow to take an insert; the queue was moved to the spool"
                );
            }
            Ok((_, Err((e, mut rows)))) => {
                let mut queue = self.shared.lock();
                rows.append(&mut queue.queued);
                queue.queued = rows;
                tracing::warn!(error = %e, "the spool did not take the queue; it stays queued");
            }
            Err(e) => {
                self.sink.metrics.queue_depth.dec_by(n as i64);
                self.sink
                    .metrics
                    .events_dropped
                    .get_or_create(&Reason {
                        reason: "spill_failed",
                    })
                    .inc_by(n as u64);
                tracing::error!(rows = n, error = %e, "moving the queue to the spool failed; its rows are lost");
            }
        }
    }

    /// Puts a batch in ClickHouse (when nothing older waits in the spool) or in the spool.
    /// Holds on to it, retrying, until one of them takes it; gives up only once shutdown has
    /// waited `shutdown_patience` for room.
    async fn place(&self, batch: &[EventRow]) {
        let spool = &self.sink.spool;
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut deadline: Option<Instant> = None;
        loop {
            if deadline.is_none() && self.closing.load(Ordering::Relaxed) {
                deadline = Some(Instant::now() + self.config.shutdown_patience);
            }
            if spool.is_empty() && self.store_spilling(batch).await {
                break;
            }
            let to_spool = batch.to_vec();
            let spool_for_task = spool.clone();
            // File writes and fsync block: keep them off the async workers.
            let written = tokio::task::spawn_blocking(move || spool_for_task.append(&to_spool))
                .await
                .unwrap_or_else(|e| Err(crate::Error::Spool(format!("writer task: {e}"))));
            match written {
                Ok(()) => {
                    tracing::debug!(rows = batch.len(), "batch spooled");
                    self.spooled.notify_one();
                    break;
                }
                Err(e) => {
                    if !self.shared.blocked.swap(true, Ordering::Relaxed) {
                        tracing::error!(
                            rows = batch.len(),
                            error = %e,
                            "neither ClickHouse nor the spool takes batches; holding them and refusing new beacons (503) until one does"
                        );
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        self.sink
                            .metrics
                            .events_dropped
                            .get_or_create(&Reason {
                                reason: "shutdown_with_spool_full",
                            })
                            .inc_by(batch.len() as u64);
                        tracing::error!(
                            rows = batch.len(),
                            "shutting down with nowhere to put a batch; its rows are lost"
                        );
                        break;
                    }
                    tokio::time::sleep(backoff.next_wait()).await;
                }
            }
        }
        if self.shared.blocked.swap(false, Ordering::Relaxed) {
            tracing::info!("batches are being taken again");
        }
    }
}
