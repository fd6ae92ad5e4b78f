//! The rollup job: once a site's local day is complete, its report numbers are summed into
//! hash-free rollup tables, so that reports over long periods read a few rows per day instead
//! of sessionizing millions of events.
//!
//! A day is complete when its last visit can no longer grow: after its local midnight plus the
//! visit lookahead (`stats::LOOKAHEAD_SECONDS`) plus [`SETTLE_SECONDS`] for beacons still in
//! a writer's queue. Every collector runs the job; each computation writes under a random
//! version and names it in `rollup_days` last, and reads take one named version per day, so
//! two collectors computing the same day never double-count and a half-written day is unseen. Days are
//! computed oldest first, at most [`MAX_DAYS_PER_RUN`] per run, so a backfill spreads out.

use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::stats::period::start_of_day;
use crate::stats::sql::rollups::{rolled_days, DayRow};
use crate::stats::sql::visits::{first_event, FirstEvent};
use crate::stats::sql::{Scope, ScopeValues, LOOKAHEAD_SECONDS};

pub mod sql;

/// Margin after the lookahead for events accepted but not yet inserted.
pub const SETTLE_SECONDS: i64 = 10 * 60;
/// Most site-days one run computes.
pub const MAX_DAYS_PER_RUN: usize = 31;
/// How often the job looks for complete days.
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);

struct Site {
    domain: String,
    tz: TimeZone,
    tz_name: String,
}

pub struct RollupJob {
    client: Client,
    database: String,
    sites: Vec<Site>,
    timeout_seconds: u32,
    bounce_ms: u32,
    metrics: Arc<Metrics>,
}

impl RollupJob {
    pub fn new(config: &Config, client: Client, metrics: Arc<Metrics>) -> RollupJob {
        RollupJob {
            client,
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

    /// Rolls up complete days not yet rolled up (at most `max_days` with events); returns how
    /// many site-days it marked rolled up, days without events included.
    pub async fn run_once(&self, now: Timestamp, max_days: usize) -> Result<usize, Error> {
        let mut done = 0;
        let mut marked = 0;
        for site in &self.sites {
            if done >= max_days {
                break;
            }
            let due = self.due_days(site, now).await?;
            let (Some(first), Some(last)) = (due.first(), due.last()) else {
                continue;
            };
            // Days without events of their own have no visit and no pageview: marked at once.
            let busy = self.days_with_events(site, *first, *last).await?;
            let (due, empty): (Vec<Date>, Vec<Date>) =
                due.into_iter().partition(|d| busy.contains(&d.to_string()));
            if !empty.is_empty() {
                self.mark_empty(site, &empty).await?;
                self.metrics.rollup_days.inc_by(empty.len() as u64);
                marked += empty.len();
            }
            for day in due.into_iter().take(max_days - done) {
                let started = std::time::Instant::now();
                self.roll_up(site, day).await?;
                done += 1;
                self.metrics.rollup_days.inc();
                tracing::info!(
                    site = %site.domain,
                    %day,
                    ms = started.elapsed().as_millis() as u64,
                    "day rolled up"
                );
            }
        }
        self.metrics.rollup_last_success.set(now.as_second());
        Ok(done + marked)
    }

    /// Computes the days `first..=last` again (those complete at `now`), for every site, e.g.
    /// after events for them arrived late; the new version replaces the old in every read.
    pub async fn redo(&self, first: Date, last: Date, now: Timestamp) -> Result<usize, Error> {
        let mut done = 0;
        for site in &self.sites {
            let Some(complete) = Self::last_complete_day(site, now) else {
                continue;
            };
            let mut day = first;
            while day <= last.min(complete) {
                self.roll_up(site, day).await?;
                done += 1;
                day = match day.tomorrow() {
                    Ok(d) => d,
                    Err(_) => break,
                };
            }
        }
        Ok(done)
    }

    /// The last local day of `site` that is complete at `now`.
    fn last_complete_day(site: &Site, now: Timestamp) -> Option<Date> {
        let wait = (LOOKAHEAD_SECONDS + SETTLE_SECONDS).seconds();
        let mut day = now.to_zoned(site.tz.clone()).date().yesterday().ok()?;
        loop {
            let end = start_of_day(day.tomorrow().ok()?, &site.tz).ok()?;
            if end.checked_add(wait).ok()? <= now {
                return Some(day);
            }
            day = day.yesterday().ok()?;
        }
    }

    async fn due_days(&self, site: &Site, now: Timestamp) -> Result<Vec<Date>, Error> {
        let Some(last) = Self::last_complete_day(site, now) else {
            return Ok(Vec::new());
        };
        let first: FirstEvent = self
            .client
            .query_raw(&first_event(&self.database, &site.domain))
            .fetch_one()
            .await?;
        if first.n == 0 {
            return Ok(Vec::new());
        }
        let Ok(first_ts) = Timestamp::from_second(i64::from(first.t)) else {
            return Ok(Vec::new());
        };
        let first = first_ts.to_zoned(site.tz.clone()).date();
        if first > last {
            return Ok(Vec::new());
        }
        let rolled: Vec<DayRow> = self
            .client
            .query_raw(&rolled_days(&self.database, &site.domain, first, last))
            .fetch_all()
            .await?;
        let rolled: std::collections::HashSet<String> =
            rolled.into_iter().map(|r| r.day_text).collect();
        let mut due = Vec::new();
        let mut d = first;
        while d <= last {
            if !rolled.contains(&d.to_string()) {
                due.push(d);
            }
            match d.tomorrow() {
                Ok(n) => d = n,
                Err(_) => break,
            }
        }
        Ok(due)
    }

    async fn days_with_events(
        &self,
        site: &Site,
        first: Date,
        last: Date,
    ) -> Result<std::collections::HashSet<String>, Error> {
        let (from, to) = local_days(site, first, last)?;
        let rows: Vec<DayRow> = self
            .client
            .query_raw(&sql::days_with_events(
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

    async fn mark_empty(&self, site: &Site, days: &[Date]) -> Result<(), Error> {
        let sql = sql::mark_days(&self.database, &site.domain, days, new_version()?);
        self.client.query_raw(&sql).execute().await?;
        Ok(())
    }

    async fn roll_up(&self, site: &Site, day: Date) -> Result<(), Error> {
        let from = start_of_day(day, &site.tz).map_err(|e| Error::Config(e.to_string()))?;
        let to = start_of_day(
            day.tomorrow()
                .map_err(|e| Error::Config(format!("day {day}: {e}")))?,
            &site.tz,
        )
        .map_err(|e| Error::Config(e.to_string()))?;
        let scope = Scope::literal(ScopeValues {
            database: &self.database,
            site: &site.domain,
            tz: &site.tz_name,
            from,
            to,
            timeout_seconds: self.timeout_seconds,
            bounce_ms: self.bounce_ms,
            first_date: day,
        });
        for statement in sql::rollup_day(&scope, day, new_version()?) {
            self.client.query_raw(&statement).execute().await?;
        }
        Ok(())
    }
}

/// The version of one computation: its start second in the high half, so a recomputation wins
/// over what it replaces, and random bits in the low half, so concurrent computations differ.
fn new_version() -> Result<u64, Error> {
    use rand::TryRngCore;
    let now = u64::try_from(Timestamp::now().as_second()).unwrap_or(0);
    let random = rand::rngs::OsRng
        .try_next_u32()
        .map_err(|e| Error::Config(format!("operating system RNG failed: {e}")))?;
    Ok((now << 32) | u64::from(random))
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
    fn a_day_is_complete_after_midnight_plus_lookahead_and_settling() {
        let site = Site {
            domain: "a".into(),
            tz: TimeZone::get("Europe/Amsterdam").unwrap(),
            tz_name: "Europe/Amsterdam".into(),
        };
        // 2026-03-29 ends at 22:00 UTC (CEST); complete from 04:10 UTC on the 30th.
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            RollupJob::last_complete_day(&site, at("2026-03-30T04:10:00Z")),
            Some("2026-03-29".parse().unwrap())
        );
        assert_eq!(
            RollupJob::last_complete_day(&site, at("2026-03-30T04:09:59Z")),
            Some("2026-03-28".parse().unwrap())
        );
    }
}
