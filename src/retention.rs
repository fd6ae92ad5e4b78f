//! Retention: raw events and rollups are deleted when they reach their configured age, a whole
//! partition at a time (no row rewrites), and every deletion is logged and counted.
//!
//! Raw events (which carry the daily visitor hash) are partitioned by UTC day; a day is dropped
//! once its first second is `retention.raw_days` days old, so nothing is kept longer than that.
//! Rollups (no hash) are partitioned by month; a month is dropped once its first day is
//! `retention.rollup_months` months old, so nothing is kept longer than that either (CNIL's
//! audience-measurement exemption allows 25 months). Salts have their own, shorter, life (see
//! `salt`).

use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

use crate::config::Config;
use crate::error::Error;
use crate::metrics::{Metrics, Table};

/// How often the job runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Tables under retention: name, partition granularity, and which limit applies.
pub const TABLES: [(&str, Granularity); 4] = [
    ("events", Granularity::Day),
    ("rollup_daily", Granularity::Month),
    ("rollup_durations", Granularity::Month),
    ("rollup_days", Granularity::Month),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// `toYYYYMMDD` partitions, kept `raw_days`.
    Day,
    /// `toYYYYMM` partitions, kept `rollup_months`.
    Month,
}

/// A partition that is (or would be) dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub table: &'static str,
    pub partition: String,
    pub rows: u64,
}

pub struct Retention {
    client: Client,
    database: String,
    raw_days: u32,
    rollup_months: u32,
    metrics: Arc<Metrics>,
}

#[derive(Deserialize, clickhouse::Row)]
struct PartitionRow {
    partition_id: String,
    rows: u64,
}

impl Retention {
    pub fn new(config: &Config, client: Client, metrics: Arc<Metrics>) -> Retention {
        Retention {
            client,
            database: config.clickhouse.database.clone(),
            raw_days: config.retention.raw_days,
            rollup_months: config.retention.rollup_months,
            metrics,
        }
    }

    /// The partitions that have reached their age at `now`, oldest first.
    pub async fn expired(&self, now: Timestamp) -> Result<Vec<Expired>, Error> {
        let mut out = Vec::new();
        for (table, granularity) in TABLES {
            let parts: Vec<PartitionRow> = self
                .client
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
                    out.push(Expired {
                        table,
                        partition: p.partition_id,
                        rows: p.rows,
                    });
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
            self.client
                .query(&format!(
                    "ALTER TABLE {}.{} DROP PARTITION ID '{}'",
                    self.database, e.table, e.partition
                ))
                .execute()
                .await?;
            tracing::info!(
                table = e.table,
                partition = %e.partition,
                rows = e.rows,
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
pub async fn maintain(job: Retention, clock: Arc<dyn crate::salt::Clock>) {
    loop {
        if let Err(e) = job.run_once(clock.now()).await {
            let detail = match &e {
                Error::ClickHouse(ch) => crate::storage::error_code(ch),
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
            client: Client::default(),
            database: "t".into(),
            raw_days,
            rollup_months,
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
}
