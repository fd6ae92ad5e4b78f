//! The sink: how a batch of event rows reaches ClickHouse, or the spool when it cannot.
//!
//! Two callers use it: the writer (fresh batches) and the replayer (spooled batches). An insert
//! that fails with a retriable error leaves the batch for the spool; one that fails for good is
//! split until the refused rows are found, and those are kept aside in the spool's `rejected/`
//! folder with a log line (count and code, never content) and a metric.
//!
//! Each insert carries a query id of its own. When one fails in a way that leaves its outcome
//! unknown (a time-out, a connection lost), its id is kept; before the replayer checks which of
//! a spooled batch's rows ClickHouse already has, it waits until none of those inserts still
//! runs there, so that one finishing after the check cannot write the same rows twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clickhouse::Client;

use crate::cluster::Cluster;
use crate::event::EventRow;
use crate::metrics::Metrics;
use crate::retry::{classify, Failure};
use crate::spool::Spool;

/// Longest an insert may take before it is treated as failed (and its batch spooled). A slow
/// ClickHouse must not hold the writer long, or the queue fills and beacons get 503 while the
/// spool has room; a normal batch takes well under a second. The batch may still have been
/// written: the replayer checks before inserting it again.
const INSERT_TIMEOUT: Duration = Duration::from_secs(10);
/// Halvings tried to find the refused rows of a batch; after that, the remaining part (at most
/// a batch / 2^6) is kept aside whole, so one systematic error cannot cost thousands of inserts.
const MAX_SPLITS: u32 = 6;
/// Rows encoded between two yields of the writer to other tasks (about 0.3 ms of work).
const ROWS_PER_YIELD: usize = 1_000;
/// How often the replayer asks whether an insert of unknown outcome still runs.
const SETTLE_POLL: Duration = Duration::from_millis(500);
/// Longest the replayer waits for such an insert; then it asks ClickHouse to cancel it (a
/// ClickHouse that still holds an insert after this long is stuck, not slow) and waits as long
/// again for it to go; if it is still listed then, the replay is tried later.
const SETTLE_PATIENCE: Duration = Duration::from_secs(60);
/// Most query ids of unknown outcome kept for [`Sink::settle`]: a writer holding a batch that
/// neither ClickHouse nor a full spool takes retries it for as long as that lasts, and every
/// try would add one. The newest are kept (a thousand ids are about 30 KiB of SQL, well under
/// ClickHouse's 256 KiB limit); a thousand tries take over half an hour at the writer's
/// back-off of up to 2 s, and an insert still running after that is stuck past the patience.
const MAX_UNSETTLED: usize = 1_000;
/// Event ids per duplicate check (keeps the query text well below ClickHouse's 256 KiB limit).
const CHECK_CHUNK: usize = 5_000;

pub struct Sink {
    /// Batches go to any server that takes them (on a cluster, into `events_all`, which places
    /// each row on its visitor's shard).
    pub cluster: Arc<Cluster>,
    pub spool: Arc<Spool>,
    pub metrics: Arc<Metrics>,
    /// Set in aggregate-only mode: batches are folded into rollup counts, never stored as rows.
    pub aggregate: Option<crate::aggregate::Folder>,
    /// Query ids of inserts that failed with an unknown outcome and may still be running in
    /// ClickHouse (see [`Sink::settle`]).
    pub unsettled: Mutex<Vec<String>>,
}

impl Sink {
    /// Inserts `rows`. `Ok` means they are in ClickHouse or (refused for good) kept aside;
    /// `Err` means try again later.
    pub async fn store(&self, rows: &[EventRow]) -> Result<(), ()> {
        match self.insert(rows).await {
            Ok(()) => Ok(()),
            Err(Failure::Retriable) => Err(()),
            Err(Failure::Permanent { code, whole_batch }) => {
                if whole_batch {
                    self.keep_aside(rows, &code);
                    Ok(())
                } else {
                    self.isolate(rows, code, 0).await
                }
            }
        }
    }

    /// One insert attempt, timed and counted.
    pub async fn insert(&self, rows: &[EventRow]) -> Result<(), Failure> {
        if rows.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let table = self.cluster.events_everywhere();
        let attempt = |client: Client| async move {
            let query_id = format!("tally-insert-{:016x}", rand::random::<u64>());
            let write = async {
                match &self.aggregate {
                    Some(folder) => {
                        insert_folded(&client, folder, rows, &query_id, &self.metrics).await
                    }
                    None => insert(&client, table, rows, &query_id).await,
                }
            };
            let result = match tokio::time::timeout(INSERT_TIMEOUT, write).await {
                Ok(r) => r,
                Err(_) => Err(clickhouse::error::Error::TimedOut),
            };
            // A refusal means nothing was written; anything else may have been, or may
            // still be: a replay of these rows must first wait for this insert to end.
            if let Err(e) = &result {
                if classify(e) == Failure::Retriable {
                    let mut unsettled = self.lock_unsettled();
                    unsettled.push(query_id);
                    let over = unsettled.len().saturating_sub(MAX_UNSETTLED);
                    unsettled.drain(..over);
                }
            }
            result
        };
        // Each server gets the whole time-out; a server that fails is passed over for the next.
        // Counts (aggregate-only mode) are not tried on another server after a failure: the
        // insert may have been written, and a server of another shard would not recognise
        // it; the batch goes to the spool, whose replay looks for its counts first.
        let result = if self.aggregate.is_some() {
            self.cluster.run_once_anywhere(attempt).await
        } else {
            self.cluster.run_anywhere(attempt).await
        };
        match result {
            Ok(()) => {
                self.metrics
                    .insert_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.metrics.rows_inserted.inc_by(rows.len() as u64);
                self.metrics.clickhouse_up.set(1);
                tracing::debug!(rows = rows.len(), "inserted batch");
                Ok(())
            }
            Err(e) => {
                self.metrics.insert_failures.inc();
                let failure = classify(&e);
                if failure == Failure::Retriable {
                    self.metrics.clickhouse_up.set(0);
                }
                // ClickHouse's message names columns and codes; the rows are anonymous anyway.
                tracing::warn!(rows = rows.len(), error = %e, ?failure, "insert failed");
                Err(failure)
            }
        }
    }

    /// Splits a batch refused for bad data until the refused rows are found; keeps those aside.
    fn isolate<'a>(
        &'a self,
        rows: &'a [EventRow],
        code: String,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ()>> + Send + 'a>> {
        Box::pin(async move {
            if rows.len() <= 1 || depth >= MAX_SPLITS {
                self.keep_aside(rows, &code);
                return Ok(());
            }
            let (left, right) = rows.split_at(rows.len() / 2);
            for half in [left, right] {
                match self.insert(half).await {
                    Ok(()) => {}
                    Err(Failure::Retriable) => return Err(()),
                    Err(Failure::Permanent { code, .. }) => {
                        self.isolate(half, code, depth + 1).await?
                    }
                }
            }
            Ok(())
        })
    }

    fn keep_aside(&self, rows: &[EventRow], code: &str) {
        match self.spool.set_aside(rows, code) {
            Ok(path) => tracing::error!(
                rows = rows.len(),
                code,
                file = %path.display(),
                "ClickHouse refused rows for good; kept aside for inspection"
            ),
            Err(e) => {
                // Nowhere left to keep them: count them as lost, loudly.
                self.metrics
                    .events_dropped
                    .get_or_create(&crate::metrics::Reason {
                        reason: "refused_and_not_kept",
                    })
                    .inc_by(rows.len() as u64);
                tracing::error!(rows = rows.len(), code, error = %e, "refused rows lost");
            }
        }
    }

    fn lock_unsettled(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A list of ids stays valid whatever a panicking holder did to it.
        self.unsettled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until no insert of unknown outcome still runs in ClickHouse. Such an insert may
    /// have reached ClickHouse and be reading its rows (from a slow or stalled link, or a
    /// server paused for a while) when this collector gave up on it: checking for its rows
    /// before it ends would miss them, and the replay would write them a second time. "Not
    /// running" must be seen twice, [`SETTLE_POLL`] apart. After [`SETTLE_PATIENCE`] it asks
    /// ClickHouse to cancel the insert and waits for it to go: ClickHouse 18.16 refuses to
    /// cancel an insert that waits for its rows ("unkillable stages"), and one it cancels may
    /// still be writing its part, so checking at once could miss its rows. One still listed
    /// after twice the patience fails the replay as retriable (its rows stay in the spool).
    ///
    /// ClickHouse 18.16 lists an HTTP insert only once it has read its first 1 MiB of rows, or
    /// all of them: a smaller insert whose rows are still on their way is not seen.
    async fn settle(&self) -> Result<(), Failure> {
        let ids = self.lock_unsettled().clone();
        if ids.is_empty() {
            return Ok(());
        }
        // Our own ids (hex digits), safe to write into the SQL as they are.
        let list = ids
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let running_sql =
            format!("SELECT count() FROM system.processes WHERE query_id IN ({list})");
        let started = Instant::now();
        // Counted once per call that had to wait (a call cut short by an error and run again
        // may count a wait twice).
        let mut waited = false;
        let mut clear = false;
        let mut cancelled = false;
        loop {
            let running: u64 = self
                .cluster
                .run_anywhere(|client| {
                    let sql = &running_sql;
                    async move { client.query(sql).fetch_one().await }
                })
                .await
                .map_err(|e| {
                    self.metrics.clickhouse_up.set(0);
                    tracing::warn!(error = %e, "could not ask whether an earlier insert still runs");
                    classify(&e)
                })?;
            if running == 0 {
                // Twice in a row, half a second apart: the first answer shows ClickHouse
                // answering again (after a pause, say); an insert whose rows were already in its
                // socket then is taken up meanwhile, and is listed at the second look or done.
                if clear {
                    break;
                }
                clear = true;
                tokio::time::sleep(SETTLE_POLL).await;
                continue;
            }
            clear = false;
            if cancelled && started.elapsed() >= 2 * SETTLE_PATIENCE {
                tracing::warn!(
                    inserts = running,
                    "an earlier insert still runs after it was cancelled; the replay waits"
                );
                return Err(Failure::Retriable);
            }
            if !cancelled && started.elapsed() >= SETTLE_PATIENCE {
                cancelled = true;
                let kill = format!("KILL QUERY WHERE query_id IN ({list}) ASYNC");
                let killed = self
                    .cluster
                    .run_anywhere(|client| {
                        let sql = &kill;
                        async move { client.query(sql).execute().await }
                    })
                    .await;
                tracing::warn!(
                    inserts = running,
                    cancel = ?killed.err().map(|e| e.to_string()),
                    "an earlier insert still runs after a minute; asked ClickHouse to cancel it"
                );
            }
            if !waited {
                waited = true;
                self.metrics.replay_insert_waits.inc();
                tracing::info!(
                    inserts = running,
                    "waiting for an earlier insert to end before checking which spooled rows ClickHouse has"
                );
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        self.lock_unsettled().retain(|id| !ids.contains(id));
        Ok(())
    }

    /// The rows of a spooled batch that ClickHouse does not have yet. A batch is spooled after
    /// a failed or timed-out insert, which may have been written all the same; inserting only
    /// the missing rows keeps a replay from counting a visit twice. Inserts of unknown outcome
    /// are waited for first ([`Sink::settle`]).
    pub async fn missing(&self, rows: Vec<EventRow>) -> Result<Vec<EventRow>, Failure> {
        self.settle().await?;
        if let Some(folder) = &self.aggregate {
            return self.missing_counts(folder, rows).await;
        }
        let (Some(first), Some(last)) = (
            rows.iter().map(|r| r.ts).min(),
            rows.iter().map(|r| r.ts).max(),
        ) else {
            return Ok(rows);
        };
        let mut present = HashSet::new();
        for chunk in rows.chunks(CHECK_CHUNK) {
            let ids = chunk
                .iter()
                .map(|r| r.event_id.to_string())
                .collect::<Vec<_>>()
                .join(",");
            // The time range lets ClickHouse read only the partitions the batch can be in.
            let sql = format!(
                "SELECT event_id FROM {} WHERE ts >= toDateTime(?, 'UTC') \
                 AND ts <= toDateTime(?, 'UTC') AND event_id IN ({ids})",
                self.cluster.events_everywhere()
            );
            let found: Vec<u64> = self
                .cluster
                .run_anywhere(|client| {
                    let sql = &sql;
                    async move { client.query(sql).bind(first).bind(last).fetch_all().await }
                })
                .await
                .map_err(|e| {
                    self.metrics.clickhouse_up.set(0);
                    tracing::warn!(error = %e, "duplicate check failed");
                    classify(&e)
                })?;
            present.extend(found);
        }
        if present.is_empty() {
            return Ok(rows);
        }
        let before = rows.len();
        let rows: Vec<EventRow> = rows
            .into_iter()
            .filter(|r| !present.contains(&r.event_id))
            .collect();
        let skipped = (before - rows.len()) as u64;
        self.metrics.replay_duplicates_skipped.inc_by(skipped);
        tracing::info!(
            rows = skipped,
            "spooled rows were already in ClickHouse; not inserted again"
        );
        Ok(rows)
    }

    /// Aggregate-only mode: the events of a spooled batch whose counts ClickHouse does not have.
    /// Its counts are looked for by site, day and the id of the batch's events of that site and
    /// day (see `aggregate`) on every shard; the site-days found are left out, and their day
    /// markers written again (an insert whose answer was lost may have ended before them;
    /// markers of a day are alike, a second one changes nothing).
    async fn missing_counts(
        &self,
        folder: &crate::aggregate::Folder,
        rows: Vec<EventRow>,
    ) -> Result<Vec<EventRow>, Failure> {
        let (daily, marks, _) = folder.fold(&rows, jiff::Timestamp::now());
        let keys: Vec<String> = daily
            .iter()
            .filter(|r| r.dimension.is_empty())
            .map(|r| {
                format!(
                    "({}, toDate({}), {})",
                    crate::sql_text::lit(&r.site),
                    crate::sql_text::lit(&crate::sql_text::date_of_day(r.day).to_string()),
                    r.batch
                )
            })
            .collect();
        if keys.is_empty() {
            return Ok(rows);
        }
        let sql = format!(
            "SELECT DISTINCT site, toUInt16(day) AS d FROM rollup_daily \
             WHERE dimension = '' AND (site, day, batch) IN ({})",
            keys.join(", ")
        );
        let mut present: HashSet<(String, u16)> = HashSet::new();
        for shard in self.cluster.shard_refs() {
            let found: Vec<(String, u16)> = shard
                .shard()
                .run(|client| {
                    let sql = &sql;
                    async move { client.query(sql).fetch_all::<(String, u16)>().await }
                })
                .await
                .map_err(|e| {
                    self.metrics.clickhouse_up.set(0);
                    tracing::warn!(error = %crate::clickhouse_code::describe(&e), "duplicate check of counts failed");
                    classify(&e)
                })?;
            present.extend(found);
        }
        if present.is_empty() {
            return Ok(rows);
        }
        let marks: Vec<crate::aggregate::DayMark> = marks
            .into_iter()
            .filter(|m| present.contains(&(m.site.clone(), m.day)))
            .collect();
        self.cluster
            .run_anywhere(|client| {
                let marks = &marks;
                async move {
                    let mut insert = client
                        .insert::<crate::aggregate::DayMark>("rollup_days")
                        .await?;
                    for mark in marks {
                        insert.write(mark).await?;
                    }
                    insert.end().await
                }
            })
            .await
            .map_err(|e| classify(&e))?;
        // Custom events of those site-days go too: the insert that wrote the counts counted
        // them as dropped. Only the folded ones count as skipped duplicates.
        let mut skipped = 0u64;
        let rows: Vec<EventRow> = rows
            .into_iter()
            .filter(|e| {
                let keep = folder.site_day(e).is_none_or(|key| !present.contains(&key));
                if !keep && (&*e.name == "pageview" || &*e.name == "engagement") {
                    skipped += 1;
                }
                keep
            })
            .collect();
        self.metrics.replay_duplicates_skipped.inc_by(skipped);
        tracing::info!(
            rows = skipped,
            "the counts of spooled rows were already in ClickHouse; not added again"
        );
        Ok(rows)
    }
}

async fn insert(
    client: &Client,
    table: &str,
    rows: &[EventRow],
    query_id: &str,
) -> Result<(), clickhouse::error::Error> {
    let mut insert = client
        .insert::<EventRow>(table)
        .await?
        .with_setting("query_id", query_id);
    for (i, row) in rows.iter().enumerate() {
        insert.write(row).await?;
        // Encoding runs on an async worker, and a write rarely waits: without a yield, the
        // beacons on this worker would wait for the whole batch (6 ms for 20,000 rows).
        if i % ROWS_PER_YIELD == ROWS_PER_YIELD - 1 {
            tokio::task::yield_now().await;
        }
    }
    insert.end().await
}

/// Aggregate-only mode: the batch's counts are added to the rollups; the day markers go last so
/// a reader never names a day whose rows are not written (they are additive, so an earlier
/// marker of the same day already covers them).
async fn insert_folded(
    client: &Client,
    folder: &crate::aggregate::Folder,
    rows: &[EventRow],
    query_id: &str,
    metrics: &Metrics,
) -> Result<(), clickhouse::error::Error> {
    let (daily, marks, skipped) = folder.fold(rows, jiff::Timestamp::now());
    let mut insert = client
        .insert::<crate::aggregate::DailyRow>("rollup_daily")
        .await?
        .with_setting("query_id", query_id);
    for row in &daily {
        insert.write(row).await?;
    }
    insert.end().await?;
    let mut insert = client
        .insert::<crate::aggregate::DayMark>("rollup_days")
        .await?;
    for mark in &marks {
        insert.write(mark).await?;
    }
    insert.end().await?;
    if skipped > 0 {
        metrics
            .events_dropped
            .get_or_create(&crate::metrics::Reason {
                reason: "custom_event_in_aggregate_mode",
            })
            .inc_by(skipped);
    }
    Ok(())
}
