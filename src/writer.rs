//! The writer: a bounded queue from the HTTP handlers to one task that inserts in batches.
//!
//! Handlers never wait on ClickHouse: they `try_send` into the queue and answer 503 when it is
//! full (counted as `beacons_rejected{reason="overloaded"}`). The writer flushes at
//! `ingest.batch_size` rows or every `ingest.flush_interval_ms`, whichever comes first. A failed
//! insert is retried with backoff; rows it still cannot write are counted as dropped and logged
//! (by count, never by content). On shutdown the queue is closed, drained and flushed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clickhouse::Client;
use tokio::sync::{mpsc, oneshot};

use crate::error::Rejection;
use crate::event::EventRow;
use crate::metrics::{Metrics, Reason};

/// Backoff between insert attempts; one attempt more than there are entries.
const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// The sending side, held by the HTTP handlers.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::Sender<EventRow>,
    metrics: Arc<Metrics>,
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
}

/// The writer task's handle: ask it to drain and wait until it has.
pub struct Writer {
    close: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Closes the queue, writes what is in it, and returns when the last batch is done.
    pub async fn drain(mut self) {
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
}

/// Starts the writer task.
pub fn spawn(client: Client, config: WriterConfig, metrics: Arc<Metrics>) -> (Queue, Writer) {
    let (tx, rx) = mpsc::channel(config.capacity);
    let (close_tx, close_rx) = oneshot::channel();
    let task = tokio::spawn(run(client, rx, close_rx, config, metrics.clone()));
    (
        Queue { tx, metrics },
        Writer {
            close: Some(close_tx),
            task,
        },
    )
}

async fn run(
    client: Client,
    mut rx: mpsc::Receiver<EventRow>,
    mut close: oneshot::Receiver<()>,
    config: WriterConfig,
    metrics: Arc<Metrics>,
) {
    let mut batch: Vec<EventRow> = Vec::with_capacity(config.batch_size);
    let mut ticker = tokio::time::interval(config.flush_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = false;
    loop {
        tokio::select! {
            row = rx.recv() => match row {
                Some(row) => {
                    metrics.queue_depth.dec();
                    batch.push(row);
                    if batch.len() >= config.batch_size {
                        flush(&client, &mut batch, &metrics).await;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    flush(&client, &mut batch, &metrics).await;
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
        flush(&client, &mut batch, &metrics).await;
    }
    tracing::info!("writer drained");
}

async fn flush(client: &Client, batch: &mut Vec<EventRow>, metrics: &Metrics) {
    let rows = batch.len();
    for attempt in 0..=RETRY_BACKOFF.len() {
        let started = Instant::now();
        match insert(client, batch).await {
            Ok(()) => {
                metrics
                    .insert_seconds
                    .observe(started.elapsed().as_secs_f64());
                metrics.rows_inserted.inc_by(rows as u64);
                tracing::debug!(rows, "inserted batch");
                batch.clear();
                return;
            }
            Err(e) => {
                metrics.insert_failures.inc();
                tracing::warn!(rows, attempt, error = %e, "insert failed");
                if let Some(wait) = RETRY_BACKOFF.get(attempt) {
                    tokio::time::sleep(*wait).await;
                }
            }
        }
    }
    metrics
        .events_dropped
        .get_or_create(&Reason {
            reason: "insert_failed",
        })
        .inc_by(rows as u64);
    tracing::error!(rows, "dropping batch after repeated insert failures");
    batch.clear();
}

async fn insert(client: &Client, batch: &[EventRow]) -> Result<(), clickhouse::error::Error> {
    let mut insert = client.insert::<EventRow>("events").await?;
    for row in batch {
        insert.write(row).await?;
    }
    insert.end().await
}
