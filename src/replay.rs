//! The replayer: sends spooled batches to ClickHouse, oldest first, once it takes them again.
//!
//! It runs beside new traffic from the start (a previous run's spool included). Each batch is
//! first checked against ClickHouse for rows it already has (an insert that timed out may have
//! been written), then inserted, then deleted from disk. A retriable failure waits with
//! exponential backoff (up to `MAX_BACKOFF`, 5 s) and tries the same batch again; a batch refused
//! for good is split and its refused rows kept aside (see `sink`).
//!
//! Guarantee: at least once. A row is deleted from the spool only after ClickHouse confirmed
//! it; a duplicate needs an insert that ClickHouse completes after the replayer's check found
//! it missing (the check runs at least one backoff after the failed insert).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::retry::{Backoff, Failure};
use crate::sink::Sink;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Short enough that a returning ClickHouse is noticed within seconds; a refused connection
/// costs nothing to retry.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an empty spool is looked at even without a notification.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub async fn run(sink: Arc<Sink>, spooled: Arc<Notify>) {
    let spool = sink.spool.clone();
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let Some(seq) = spool.oldest() else {
            if tokio::time::timeout(IDLE_CHECK, spooled.notified())
                .await
                .is_ok()
            {
                // A batch was just spooled after a failed insert, which may still be finishing
                // in ClickHouse: give it a moment before checking which rows it wrote.
                tokio::time::sleep(FIRST_BACKOFF).await;
            }
            continue;
        };
        let reader = spool.clone();
        let rows = match tokio::task::spawn_blocking(move || reader.read(seq)).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "spooled batch unreadable");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "spool reader failed");
                tokio::time::sleep(backoff.next_wait()).await;
                continue;
            }
        };
        let result = match sink.missing(rows).await {
            Ok(missing) => {
                let n = missing.len() as u64;
                sink.store(&missing)
                    .await
                    .map(|()| n)
                    .map_err(|()| Failure::Retriable)
            }
            Err(failure) => Err(failure),
        };
        match result {
            Ok(n) => {
                sink.metrics.rows_replayed.inc_by(n);
                if let Err(e) = spool.remove(seq) {
                    // Left on disk it would be replayed again; the duplicate check skips it.
                    tracing::error!(error = %e, "replayed batch not deleted");
                    tokio::time::sleep(backoff.next_wait()).await;
                    continue;
                }
                tracing::debug!(rows = n, "replayed a spooled batch");
                backoff.reset();
            }
            Err(_) => {
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}
