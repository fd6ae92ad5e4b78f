//! Retention: raw events, stored visits and rollups are deleted when they reach their configured
//! age, a whole partition at a time (no row rewrites), and every deletion is logged and counted.
//!
//! Raw events (which carry the daily visitor hash) are partitioned by UTC day; a day is dropped
//! once its first second is `retention.raw_days` days old, so nothing is kept longer than that.
//! Stored visits and rollups (no hash) are partitioned by month; a month is dropped once its
//! first day is `retention.rollup_months` months old, so nothing is kept longer than that either
//! (CNIL's audience-measurement exemption allows 25 months). Salts have their own, shorter, life (see
//! `salt`). Rows ClickHouse refused and the spool kept aside (`spool/rejected/`) are raw rows
//! too: their files are deleted once they are `raw_days` old.
//!
//! On a cluster the job looks at every server's partitions and drops each expired one on every
//! server that has it; a replicated drop also reaches a replica that is away now when it is back.

use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;

use crate::cluster::Cluster;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use crate::config::Config;
use crate::error::Error;
use crate::metrics::{Metrics, Table};

/// How often the job runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Tables under retention: name, partition granularity, and which limit applies.
pub const TABLES: [(&str, Granularity); 13] = [
    ("events", Granularity::Day),
    ("events_minutes", Granularity::Day),
    ("events_by_hour", Granularity::Day),
    ("visit_carry", Granularity::Day),
    ("visits", Granularity::Month),
    ("visit_pages", Granularity::Month),
    ("visit_page_days", Granularity::Month),
    ("visit_slices", Granularity::Month),
    ("rollup_daily", Granularity::Month),
    ("rollup_durations", Granularity::Month),
    ("rollup_pairs", Granularity::Month),
    ("rollup_page_seconds", Granularity::Month),
    ("rollup_days", Granularity::Month),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// `toYYYYMMDD` partitions, kept `raw_days`.
    Day,
    /// `toYYYYMM` partitions, kept `rollup_months`.
    Month,
}

/// The name under which kept-aside spool files appear in the retention log and metrics.
pub const REJECTED_FILES: &str = "spool/rejected";

/// A partition (or kept-aside spool file) that is (or would be) dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub table: &'static str,
    pub partition: String,
    pub rows: u64,
    /// Cluster mode: the shard (1-based) whose partition it is; 0 otherwise.
    pub shard: usize,
    /// The servers (indexes into the shard's replicas) that hold it.
    servers: Vec<usize>,
}

pub struct Retention {
    cluster: Arc<Cluster>,
    database: String,
    raw_days: u32,
    rollup_months: u32,
    /// The spool's folder of rows ClickHouse refused.
    rejected_dir: std::path::PathBuf,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize, clickhouse::Row)]
struct PartitionRow {
    partition_id: String,
    rows: u64,
}

impl Retention {
    pub fn new(config: &Config, cluster: Arc<Cluster>, metrics: Arc<Metrics>) -> Retention {
        Retention {
            cluster,
            database: config.clickhouse.database.clone(),
            raw_days: config.retention.raw_days,
            rollup_months: config.retention.rollup_months,
            rejected_dir: config.ingest.spool_dir.join(crate::spool::REJECTED),
            metrics,
        }
    }

    /// Kept-aside spool files last written `raw_days` or more before `now`.
    fn expired_rejected(&self, now: Timestamp) -> Vec<Expired> {
        let Ok(entries) = std::fs::read_dir(&self.rejected_dir) else {
            return Vec::new();
        };
        let limit = std::time::Duration::from_secs(u64::from(self.raw_days) * 86_400);
        let now =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.as_second().max(0) as u64);
        let mut out: Vec<Expired> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= limit))
            })
            .map(|e| Expired {
                table: REJECTED_FILES,
                partition: e.file_name().to_string_lossy().into_owned(),
                rows: std::fs::read_to_string(e.path())
                    .map(|t| t.lines().count() as u64)
                    .unwrap_or(0),
                shard: 0,
                servers: Vec::new(),
            })
            .collect();
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        out
    }

    /// The partitions that have reached their age at `now`, oldest first (shard by shard).
    /// A server that does not answer is left out (its shard's other replicas speak for it);
    /// a shard of which no server answers is an error.
    pub async fn expired(&self, now: Timestamp) -> Result<Vec<Expired>, Error> {
        let mut out = Vec::new();
        for shard in &self.cluster.shards {
            let mut found: Vec<Expired> = Vec::new();
            let mut last_error = None;
            let mut answered = false;
            for (i, server) in shard.replicas.iter().enumerate() {
                match self.expired_on(server.client(), now).await {
                    Ok(list) => {
                        answered = true;
                        for (table, partition, rows) in list {
                            match found
                                .iter_mut()
                                .find(|e| e.table == table && e.partition == partition)
                            {
                                Some(e) => {
                                    e.rows = e.rows.max(rows);
                                    e.servers.push(i);
                                }
                                None => found.push(Expired {
                                    table,
                                    partition,
                                    rows,
                                    shard: if self.cluster.is_cluster() {
                                        shard.index + 1
                                    } else {
                                        0
                                    },
                                    servers: vec![i],
                                }),
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(server = %server.url, error = %crate::clickhouse_code::describe(&e), "retention: server not looked at");
                        last_error = Some(e);
                    }
                }
            }
            if let (false, Some(e)) = (answered, last_error) {
                return Err(e.into());
            }
            out.extend(found);
        }
        out.extend(self.expired_rejected(now));
        Ok(out)
    }

    /// `(table, partition, rows)` of the expired partitions one server holds.
    async fn expired_on(
        &self,
        client: &Client,
        now: Timestamp,
    ) -> Result<Vec<(&'static str, String, u64)>, clickhouse::error::Error> {
        let mut out = Vec::new();
        for (table, granularity) in TABLES {
            let parts: Vec<PartitionRow> = client
                .query(
                    "SELECT partition_id, toUInt64(sum(rows)) AS rows FROM system.parts \
                     WHERE database = ? AND table = ? AND active \
                     GROUP BY partition_id ORDER BY partition_id",
                )
                .bind(self.database.as_str())
                .bind(table)
                .fetch_all()
                .await?;
            let limit = self.first_kept(granularity, now);
            for p in parts {
                // Partition ids are YYYYMMDD / YYYYMM numbers, so they compare as strings too.
                if p.partition_id.len() == limit.len() && p.partition_id < limit {
                    out.push((table, p.partition_id, p.rows));
                }
            }
        }
        Ok(out)
    }

    /// The oldest partition id kept at `now`: partitions before it have reached their age.
    pub fn first_kept(&self, granularity: Granularity, now: Timestamp) -> String {
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        match granularity {
            // A day whose start is `raw_days` days before now is dropped: its first events are
            // that old. Days after it are kept.
            Granularity::Day => {
                let oldest_start = now
                    .checked_sub((i64::from(self.raw_days) * 24).hours())
                    .unwrap_or(now)
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .date();
                let first_kept = oldest_start.tomorrow().unwrap_or(today);
                first_kept.strftime("%Y%m%d").to_string()
            }
            Granularity::Month => {
                let oldest_start = today
                    .checked_sub(i64::from(self.rollup_months).months())
                    .unwrap_or(today);
                let first_kept = oldest_start
                    .first_of_month()
                    .checked_add(1.month())
                    .unwrap_or(today);
                first_kept.strftime("%Y%m").to_string()
            }
        }
    }

    /// Drops every expired partition, logging each; returns what was dropped.
    pub async fn run_once(&self, now: Timestamp) -> Result<Vec<Expired>, Error> {
        let expired = self.expired(now).await?;
        for e in &expired {
            if e.table == REJECTED_FILES {
                std::fs::remove_file(self.rejected_dir.join(&e.partition))?;
            } else {
                let shard = &self.cluster.shards[e.shard.saturating_sub(1)];
                let sql = format!(
                    "ALTER TABLE {}.{} DROP PARTITION ID '{}'",
                    self.database, e.table, e.partition
                );
                let mut dropped = false;
                let mut last_error = None;
                for &i in &e.servers {
                    match shard.replicas[i].client().query(&sql).execute().await {
                        Ok(()) => dropped = true,
                        Err(err) => last_error = Some(err),
                    }
                }
                if let (false, Some(err)) = (dropped, last_error) {
                    return Err(err.into());
                }
            }
            tracing::info!(
                table = e.table,
                partition = %e.partition,
                rows = e.rows,
                shard = e.shard,
                "retention: partition dropped"
            );
            let label = Table { table: e.table };
            self.metrics
                .retention_partitions
                .get_or_create(&label)
                .inc();
            self.metrics
                .retention_rows
                .get_or_create(&label)
                .inc_by(e.rows);
        }
        self.metrics.retention_last_run.set(now.as_second());
        Ok(expired)
    }
}

/// Runs the job every [`INTERVAL`], forever (the server aborts it at shutdown).
/// Longest the first run waits for the visit job to catch up (see [`maintain`]).
pub const BACKFILL_WAIT: Duration = Duration::from_secs(3600);

/// Runs the job every [`INTERVAL`], forever (the server aborts it at shutdown). The first run
/// waits until `caught_up` resolves (the visit job has stored every due hour: after an upgrade,
/// the raw events a shorter `raw_days` would drop are stored as visits first), at most
/// [`BACKFILL_WAIT`].
pub async fn maintain(
    job: Retention,
    clock: Arc<dyn crate::clock::Clock>,
    caught_up: impl std::future::Future<Output = ()>,
) {
    if tokio::time::timeout(BACKFILL_WAIT, caught_up)
        .await
        .is_err()
    {
        tracing::warn!("the visit job has not caught up within an hour; retention runs anyway");
    }
    loop {
        if let Err(e) = job.run_once(clock.now()).await {
            let detail = match &e {
                Error::ClickHouse(ch) => crate::clickhouse_code::describe(ch),
                other => other.to_string(),
            };
            job.metrics.retention_failures.inc();
            tracing::warn!(error = %detail, "retention run failed; retried next run");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(raw_days: u32, rollup_months: u32) -> Retention {
        Retention {
            cluster: Arc::new(Cluster::new(
                &Config::parse("[[sites]]\ndomain = \"a.example\"\n")
                    .unwrap()
                    .clickhouse,
            )),
            database: "t".into(),
            raw_days,
            rollup_months,
            rejected_dir: std::path::PathBuf::from("/nonexistent"),
            metrics: Arc::new(Metrics::new()),
        }
    }

    #[test]
    fn nothing_is_kept_longer_than_its_limit() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let j = job(30, 25);
        // 30 days before now is 2026-10-24T10:00Z: the 24th began more than 30 days ago, so it
        // goes; the 25th began 29 days 10 hours ago and stays.
        assert_eq!(j.first_kept(Granularity::Day, now), "20261025");
        // 25 months before is 2024-10-23: October 2024 began more than 25 months ago and goes.
        assert_eq!(j.first_kept(Granularity::Month, now), "202411");
        let j = job(1, 1);
        assert_eq!(j.first_kept(Granularity::Day, now), "20261123");
        assert_eq!(j.first_kept(Granularity::Month, now), "202611");
    }

    #[test]
    fn kept_aside_spool_files_go_when_they_reach_the_raw_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job(3, 25);
        j.rejected_dir = dir.path().to_path_buf();
        std::fs::write(
            dir.path().join("00000000000000000001-code-16.jsonl"),
            "{}\n{}\n",
        )
        .unwrap();
        let now = Timestamp::now();
        assert!(j.expired_rejected(now).is_empty(), "a new file is kept");
        let later = now.checked_add((3 * 24).hours().seconds(1)).unwrap();
        let gone = j.expired_rejected(later);
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].table, gone[0].rows), (REJECTED_FILES, 2));
    }
}
