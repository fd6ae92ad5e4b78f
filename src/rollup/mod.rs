//! The rollup job: once a site's local day is complete, its report numbers are summed from its
//! stored visits (see `visits`) into hash-free rollup tables, so that reports over long periods
//! read a few rows per day.
//!
//! A day is complete once the visits that started on it have ended and are stored: after its
//! local midnight, the hour the last of them can end in, the visit timeout and
//! [`SETTLE_SECONDS`], and when the visit job has stored every hour with events up to then. A
//! visit that runs on for hours, or events that arrive late, are stored later: when a slice of
//! visits is stored after a day's rollup and holds visits that started on that day, the day is
//! computed again (redone) by itself. Every collector runs the job; each computation writes
//! under a new version and names it in `rollup_days` last, and reads take one named version per
//! day, so two collectors computing the same day never double-count and a half-written day is
//! unseen. Days are computed oldest first, at most [`MAX_DAYS_PER_RUN`] per run, so a backfill
//! spreads out. Days rolled up before the newest rollup table existed (`rollup_pairs`, migration
//! 0007; `rollup_page_seconds`, 0008) are computed again the same way, when their visits are
//! stored whole.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;

use crate::cluster::{Cluster, ShardRef};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::error::Error;
use crate::event_counts;
use crate::metrics::Metrics;
use crate::stats::period::start_of_day;
use crate::stats::sql::rollups::DayRow;
use crate::stats::sql::{Scope, ScopeValues};
use crate::visits::units::MAX_VISIT_SECONDS;

pub mod sql;

pub use crate::visits::SETTLE_SECONDS;
/// Most site-days one run computes.
pub const MAX_DAYS_PER_RUN: usize = 31;
/// How often the job looks for complete days.
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How far back stored slices are looked at for days to redo.
const REDO_WINDOW_DAYS: i64 = 7;

struct Site {
    domain: String,
    tz: TimeZone,
    tz_name: String,
}

pub struct RollupJob {
    /// Rollups are summed shard by shard from each shard's stored visits; a report adds the
    /// shards' rollups up.
    shards: Vec<ShardRef>,
    database: String,
    sites: Vec<Site>,
    timeout_seconds: u32,
    bounce_ms: u32,
    metrics: Arc<Metrics>,
}

/// Why a day is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Complete,
    Changed,
    /// Rolled up without `rollup_pairs` or `rollup_page_seconds` (before migration 0007 or
    /// 0008).
    Outdated,
}

/// A day to compute, and why.
type Due = (Date, Why);

impl RollupJob {
    pub fn new(config: &Config, cluster: &Arc<Cluster>, metrics: Arc<Metrics>) -> RollupJob {
        RollupJob {
            shards: cluster.shard_refs(),
            database: config.clickhouse.database.clone(),
            sites: config
                .sites
                .iter()
                .map(|s| Site {
                    domain: s.domain.clone(),
                    tz: s.time_zone.clone(),
                    tz_name: s.time_zone_name().to_string(),
                })
                .collect(),
            timeout_seconds: config.visits.timeout.as_secs() as u32,
            bounce_ms: config.visits.bounce_engaged.as_millis() as u32,
            metrics,
        }
    }

    /// Rolls up complete days not yet rolled up and redoes days whose visits changed (at most
    /// `max_days` with visits); returns how many site-days it computed or marked, days without
    /// visits included.
    pub async fn run_once(&self, now: Timestamp, max_days: usize) -> Result<usize, Error> {
        let mut done = 0;
        for shard in &self.shards {
            let Some(client) = self.caught_up(shard).await else {
                return Err(Error::Config(format!(
                    "{}: the replica has not caught up with its shard; rollups wait",
                    shard.label()
                )));
            };
            done += self
                .run_shard(&client, now, max_days.saturating_sub(done))
                .await?;
        }
        self.metrics.rollup_last_success.set(now.as_second());
        Ok(done)
    }

    /// The client of the shard's replica to read, once it has every visit its shard has:
    /// a rollup is computed once, so it must not miss visits replication has not brought yet.
    async fn caught_up(&self, shard: &ShardRef) -> Option<Client> {
        let client = shard.client().clone();
        if shard.cluster().is_cluster()
            && !crate::storage::sync_replica(&client, &["visits", "visit_slices", "rollup_days"])
                .await
        {
            return None;
        }
        Some(client)
    }

    async fn run_shard(
        &self,
        client: &Client,
        now: Timestamp,
        max_days: usize,
    ) -> Result<usize, Error> {
        let mut done = 0;
        let mut marked = 0;
        // Once per shard: every site's hours are read from the same mark.
        let counted_since = event_counts::counted_since(client, &self.database).await?;
        for site in &self.sites {
            if done >= max_days {
                break;
            }
            let work = self.due_days(client, site, counted_since, now).await?;
            let (Some(first), Some(last)) = (work.first(), work.last()) else {
                continue;
            };
            // Days without stored visits have no visit and no pageview: marked at once.
            let busy = self.days_with_visits(client, site, first.0, last.0).await?;
            let (work, empty): (Vec<Due>, Vec<Due>) = work
                .into_iter()
                .partition(|(d, _)| busy.contains(&d.to_string()));
            if !empty.is_empty() {
                let days: Vec<Date> = empty.iter().map(|(d, _)| *d).collect();
                self.mark_empty(client, site, &days, now).await?;
                self.metrics.rollup_days.inc_by(days.len() as u64);
                marked += days.len();
            }
            for (day, why) in work.into_iter().take(max_days - done) {
                let started = std::time::Instant::now();
                self.roll_up(client, site, day, now).await?;
                done += 1;
                self.metrics.rollup_days.inc();
                tracing::info!(
                    site = %site.domain,
                    %day,
                    redone = why == Why::Changed,
                    tables_added = why == Why::Outdated,
                    ms = started.elapsed().as_millis() as u64,
                    "day rolled up"
                );
            }
        }
        Ok(done + marked)
    }

    /// Computes the days `first..=last` again (those complete at `now`), for every site.
    pub async fn redo(&self, first: Date, last: Date, now: Timestamp) -> Result<usize, Error> {
        let mut done = 0;
        for shard in &self.shards {
            let Some(client) = self.caught_up(shard).await else {
                return Err(Error::Config(format!(
                    "{}: the replica has not caught up with its shard",
                    shard.label()
                )));
            };
            for site in &self.sites {
                let Some(complete) = self.last_complete_day(site, now) else {
                    continue;
                };
                let mut day = first;
                while day <= last.min(complete) {
                    self.roll_up(&client, site, day, now).await?;
                    done += 1;
                    day = match day.tomorrow() {
                        Ok(d) => d,
                        Err(_) => break,
                    };
                }
            }
        }
        // Site-days, not site-days times shards.
        Ok(done / self.shards.len().max(1))
    }

    /// How long after a day's local midnight its visits have ended and are stored, when none
    /// runs on: the hour the last of them ends in, the timeout after it, and settling.
    fn wait(&self) -> SignedDuration {
        SignedDuration::from_secs(3600 + i64::from(self.timeout_seconds) + SETTLE_SECONDS)
    }

    /// The last local day of `site` that is complete at `now` (by the clock).
    fn last_complete_day(&self, site: &Site, now: Timestamp) -> Option<Date> {
        let mut day = now.to_zoned(site.tz.clone()).date().yesterday().ok()?;
        loop {
            let end = start_of_day(day.tomorrow().ok()?, &site.tz).ok()?;
            if end.checked_add(self.wait()).ok()? <= now {
                return Some(day);
            }
            day = day.yesterday().ok()?;
        }
    }

    /// The days to compute, oldest first: complete days not rolled up, and rolled-up days whose
    /// stored visits changed since. `counted_since`: from [`event_counts::counted_since`].
    async fn due_days(
        &self,
        client: &Client,
        site: &Site,
        counted_since: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Due>, Error> {
        let Some(last) = self.last_complete_day(site, now) else {
            return Ok(Vec::new());
        };
        let since: sql::StoredSince = client
            .query_raw(&sql::stored_since(&self.database, &site.domain))
            .fetch_one()
            .await?;
        if since.n == 0 {
            return Ok(Vec::new());
        }
        let first_ts =
            Timestamp::from_second(i64::from(since.first)).unwrap_or(Timestamp::UNIX_EPOCH);
        let first = first_ts.to_zoned(site.tz.clone()).date();
        let rolled: HashMap<String, (u32, u8)> = client
            .query_raw(&sql::rolled_since(
                &self.database,
                &site.domain,
                first.yesterday().unwrap_or(first),
            ))
            .fetch_all::<sql::Rolled>()
            .await?
            .into_iter()
            .map(|r| (r.day_text, (r.computed, r.complete)))
            .collect();
        // Visits started from here on were built from every raw event they had. Before it (after
        // an upgrade, the first day of the raw events still kept) they may lack events that
        // retention had dropped: such days keep the rollup they had, computed from raw events.
        let first_slice = i64::from(since.t);
        let history_before = rolled.contains_key(&first.yesterday().unwrap_or(first).to_string());
        let complete_from = if history_before {
            first_slice + MAX_VISIT_SECONDS + i64::from(self.timeout_seconds)
        } else {
            // Nothing came before the first stored visits: they are all whole.
            i64::MIN
        };
        let unstored: HashSet<i64> = client
            .query_raw(&sql::unstored_hours(
                &self.database,
                &site.domain,
                counted_since,
            ))
            .fetch_all::<sql::Hour>()
            .await?
            .into_iter()
            .map(|h| i64::from(h.h))
            .collect();
        let changed: Vec<sql::DoneSlice> = client
            .query_raw(&sql::slices_done_since(
                &self.database,
                &site.domain,
                now - SignedDuration::from_hours(24 * REDO_WINDOW_DAYS),
            ))
            .fetch_all()
            .await?;
        let mut due = Vec::new();
        let mut d = first;
        while d <= last {
            let (from, to) = local_days(site, d, d)?;
            let (from_s, to_s) = (from.as_second(), to.as_second());
            // The visits that started on this day and ended in time are not all stored yet.
            let ended_by = to_s + i64::from(self.timeout_seconds) + 3600;
            let blocked = unstored.iter().any(|h| *h + 3600 > from_s && *h < ended_by);
            if !blocked {
                match rolled.get(&d.to_string()) {
                    None => due.push((d, Why::Complete)),
                    // Rolled up before the newest rollup table existed: computed again, oldest
                    // first like a backfill, so that reports read that table there too.
                    Some((_, 0)) if from_s >= complete_from => due.push((d, Why::Outdated)),
                    Some((computed, _)) if from_s >= complete_from => {
                        let newer = changed.iter().any(|c| {
                            c.done_at > *computed
                                && c.stored > 0
                                && i64::from(c.slice) + 3600 > from_s
                                && i64::from(c.first_visit) < to_s
                        });
                        if newer {
                            due.push((d, Why::Changed));
                        }
                    }
                    Some(_) => {}
                }
            }
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        Ok(due)
    }

    async fn days_with_visits(
        &self,
        client: &Client,
        site: &Site,
        first: Date,
        last: Date,
    ) -> Result<HashSet<String>, Error> {
        let (from, to) = local_days(site, first, last)?;
        let rows: Vec<DayRow> = client
            .query_raw(&sql::days_with_visits(
                &self.database,
                &site.domain,
                &site.tz_name,
                from,
                to,
            ))
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(|r| r.day_text).collect())
    }

    async fn mark_empty(
        &self,
        client: &Client,
        site: &Site,
        days: &[Date],
        now: Timestamp,
    ) -> Result<(), Error> {
        let sql = sql::mark_days(
            &self.database,
            &site.domain,
            days,
            crate::storage::new_version()?,
            now - SignedDuration::from_secs(1),
        );
        client.query_raw(&sql).execute().await?;
        Ok(())
    }

    async fn roll_up(
        &self,
        client: &Client,
        site: &Site,
        day: Date,
        now: Timestamp,
    ) -> Result<(), Error> {
        let (from, to) = local_days(site, day, day)?;
        let scope = Scope::literal(ScopeValues {
            database: &self.database,
            site: &site.domain,
            tz: &site.tz_name,
            from,
            to,
            timeout_seconds: self.timeout_seconds,
            bounce_ms: self.bounce_ms,
            first_date: day,
            stored_visits: true,
        });
        // Recorded a second early: a slice of visits marked done in the same second as this
        // computation may or may not be in it, so it counts as newer and the day is redone.
        let computed = now - SignedDuration::from_secs(1);
        for statement in sql::rollup_day(&scope, day, crate::storage::new_version()?, computed) {
            client.query_raw(&statement).execute().await?;
        }
        Ok(())
    }
}

/// UTC bounds of the local days `first..=last`.
fn local_days(site: &Site, first: Date, last: Date) -> Result<(Timestamp, Timestamp), Error> {
    let bad = |e: crate::error::StatsError| Error::Config(e.to_string());
    let from = start_of_day(first, &site.tz).map_err(bad)?;
    let next = last
        .tomorrow()
        .map_err(|e| Error::Config(format!("day {last}: {e}")))?;
    let to = start_of_day(next, &site.tz).map_err(bad)?;
    Ok((from, to))
}

/// Runs the job every [`INTERVAL`], forever (the server aborts it at shutdown).
pub async fn maintain(job: RollupJob, clock: Arc<dyn crate::clock::Clock>) {
    loop {
        match job.run_once(clock.now(), MAX_DAYS_PER_RUN).await {
            Ok(_) => {}
            Err(e) => {
                job.metrics.rollup_failures.inc();
                let detail = match &e {
                    Error::ClickHouse(ch) => crate::clickhouse_code::describe(ch),
                    other => other.to_string(),
                };
                tracing::warn!(error = %detail, "rollup run failed; retried next run");
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_complete_after_midnight_its_last_hour_the_timeout_and_settling() {
        let config = Config::parse("[[sites]]\ndomain = \"a\"\n").unwrap();
        let cluster = Arc::new(Cluster::new(&config.clickhouse));
        let job = RollupJob::new(&config, &cluster, Arc::new(Metrics::new()));
        // 2026-03-29 ends at 22:00 UTC (CEST); complete from 23:40 UTC (an hour for its last
        // visits to end in, the 30-minute timeout, 10 minutes settling).
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            job.last_complete_day(&job.sites[0], at("2026-03-29T23:40:00Z")),
            Some("2026-03-29".parse().unwrap())
        );
        assert_eq!(
            job.last_complete_day(&job.sites[0], at("2026-03-29T23:39:59Z")),
            Some("2026-03-28".parse().unwrap())
        );
    }
}
