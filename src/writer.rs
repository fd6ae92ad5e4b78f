//! The writer: a bounded queue from the HTTP handlers to one task that places batches in
//! ClickHouse, or in the spool when ClickHouse cannot take them.
//!
//! Handlers never wait on ClickHouse: they `try_send` into the queue and answer 503 when it is
//! full (counted as `beacons_rejected{reason="overloaded"}`). The writer flushes at
//! `ingest.batch_size` rows or every `ingest.flush_interval_ms`, whichever comes first. A batch
//! goes to ClickHouse directly only while the spool is empty, so spooled batches are replayed
//! (by `replay`) before anything newer: order is kept. When neither ClickHouse nor the spool
//! can take a batch (spool full, disk full), the writer holds it and retries; the queue then
//! fills, beacons get 503 with `Retry-After`, and `/readyz` says not ready, so nothing accepted
//! is dropped. On shutdown the queue is closed and drained; what ClickHouse cannot take then
//! is spooled for the next start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::Rejection;
use crate::event::EventRow;
use crate::metrics::{Metrics, Reason};
use crate::retry::Backoff;
use crate::sink::Sink;

/// Readiness turns false when the queue is fuller than this fraction: a load balancer should
/// move traffic before beacons start getting 503.
const READY_QUEUE_FRACTION: f64 = 0.9;

/// The sending side, held by the HTTP handlers.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::Sender<EventRow>,
    metrics: Arc<Metrics>,
    /// Set while the writer holds a batch that neither ClickHouse nor the spool would take.
    blocked: Arc<AtomicBool>,
}

impl Queue {
    pub fn push(&self, row: EventRow) -> Result<(), Rejection> {
        match self.tx.try_send(row) {
            Ok(()) => {
                self.metrics.queue_depth.inc();
                Ok(())
            }
            Err(_) => Err(Rejection::Overloaded),
        }
    }

    /// Free places in the queue, for all-or-nothing pushes of multi-site beacons.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// Whether beacons can be taken without loss: the writer is not stuck and the queue has room.
    pub fn accepting(&self) -> bool {
        let free = self.tx.capacity() as f64 / self.tx.max_capacity() as f64;
        !self.blocked.load(Ordering::Relaxed) && free > 1.0 - READY_QUEUE_FRACTION
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
    let (tx, rx) = mpsc::channel(config.capacity);
    let (close_tx, close_rx) = oneshot::channel();
    let blocked = Arc::new(AtomicBool::new(false));
    let closing = Arc::new(AtomicBool::new(false));
    let metrics = sink.metrics.clone();
    let task = tokio::spawn(
        Task {
            sink,
            config,
            spooled,
            blocked: blocked.clone(),
            closing: closing.clone(),
        }
        .run(rx, close_rx),
    );
    (
        Queue {
            tx,
            metrics,
            blocked,
        },
        Writer {
            close: Some(close_tx),
            closing,
            task,
        },
    )
}

struct Task {
    sink: Arc<Sink>,
    config: WriterConfig,
    spooled: Arc<Notify>,
    blocked: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
}

impl Task {
    async fn run(self, mut rx: mpsc::Receiver<EventRow>, mut close: oneshot::Receiver<()>) {
        let metrics = self.sink.metrics.clone();
        // One buffer for the life of the task: placed, then cleared. (Taking it and starting a
        // new empty one made every batch regrow through a dozen reallocations, each copying and
        // wiping the rows so far.)
        let mut batch: Vec<EventRow> = Vec::with_capacity(self.config.batch_size);
        let mut ticker = tokio::time::interval(self.config.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing = false;
        loop {
            tokio::select! {
                row = rx.recv() => match row {
                    Some(row) => {
                        metrics.queue_depth.dec();
                        batch.push(row);
                        if batch.len() >= self.config.batch_size {
                            self.place(&batch).await;
                            batch.clear();
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    if !batch.is_empty() {
                        self.place(&batch).await;
                        batch.clear();
                    }
                }
                _ = &mut close, if !closing => {
                    // No new rows from now on; `recv` yields what is queued, then `None`.
                    closing = true;
                    rx.close();
                }
            }
        }
        if !batch.is_empty() {
            self.place(&batch).await;
        }
        tracing::info!("writer drained");
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
            if spool.is_empty() && self.sink.store(batch).await.is_ok() {
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
                    if !self.blocked.swap(true, Ordering::Relaxed) {
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
        if self.blocked.swap(false, Ordering::Relaxed) {
            tracing::info!("batches are being taken again");
        }
    }
}
