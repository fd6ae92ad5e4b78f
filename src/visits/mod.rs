//! The visit job: visits that have ended are stored without the visitor hash (table `visits`),
//! so that reports read one row per visit and per pageview instead of building visits from raw
//! events, for as long as rollups are kept; the hashed raw events are then needed only briefly.
//!
//! The unit of work is a *slice*: the visits of one site whose last event lies in one UTC hour.
//! A slice is due once no event can extend its visits any more: after its hour, the visit
//! timeout and [`SETTLE_SECONDS`] for beacons still on their way. Its visits are built from raw
//! events by `units` (the same SQL the reports use for the still-open tail) and written under a
//! new version; then a marker in `visit_slices` says that version is done. Readers take, per
//! slice, the highest done version, so:
//! - a slice appears whole or not at all (a job killed half-way leaves rows no reader takes);
//! - every collector may run the job at once: a claim marker makes the others skip a slice for
//!   [`CLAIM_SECONDS`], and if two compute it anyway, both versions are complete and one wins;
//! - events that arrive late (a spool replay after an outage, a slow collector) change the count
//!   of raw events in a stored slice's read range; the job recounts every run (per minute, from
//!   the counts ClickHouse keeps at insert: `event_counts`) and computes such
//!   a slice again, and the new version replaces the old; the rollup job then redoes the days
//!   the slice's visits started on.
//!
//! In the steady state a batch does not read the 25.5 hours before it: the computation before
//! it left the raw events of its still-open visits in `visit_carry`, and the batch reads those
//! and its own hours from `events_by_hour` (the raw events ordered by the hour, migration 0011),
//! each event about once; it writes its own carry for the next. It reads a carry only when the
//! computation that wrote it still answers for its raw events ([`sql::Carry`]); else the whole
//! read range from `events`, as the first batch after the upgrade does.
//!
//! Each computation also writes its rows ordered by page (`visit_pages`, for reports filtered by
//! a page) under the same version before it is marked done; slices stored before that table
//! existed are copied by `pages`.
//!
//! No visit state lives in a collector's memory: everything the job decides with is in
//! ClickHouse, so restarts and several collectors change nothing.

pub mod pages;
pub mod repair;
pub mod sql;
pub mod units;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clickhouse::Client;

use crate::cluster::{Cluster, ShardRef};
use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::error::Error;
use crate::event_counts::{self, MinuteCount};
use crate::metrics::Metrics;
use sql::{Marker, MarkerRow, Slice, Stored};

/// Margin after a slice's hour and the visit timeout for events accepted but not yet inserted.
pub const SETTLE_SECONDS: i64 = 10 * 60;
/// How long a claim keeps other collectors off a slice (then its claimer is presumed gone).
pub const CLAIM_SECONDS: i64 = 10 * 60;
/// Most slices one run computes (a backfill spreads over runs; a batch started is finished).
pub const MAX_SLICES_PER_RUN: usize = 48;
/// Most slices one run of `tally visits` computes before it reports progress. Larger than the
/// server's: every run counts each site's events per minute first (the whole retained window;
/// from the raw events themselves for the minutes before `event_counts`' mark, which after an
/// upgrade is every event already stored), so a backfill of 90 days in runs of 48 slices read
/// every raw event ~180 times.
pub const CLI_SLICES_PER_RUN: usize = 720;
/// Most hours one statement stores.
pub const MAX_BATCH_HOURS: u32 = 24;
/// Most raw events of their own the hours of one statement have: ClickHouse holds the events
/// of a statement's visitors in memory at once (on 18.16 about 100 MiB plus 650 bytes per
/// event read: a day of 250,000 events read took 260 MiB, BENCHMARKS.md "Storing visits"). A
/// batch with more is stored by several statements, each for its own range of the visitor
/// hash ([`sql::visitor_range`]).
pub const BATCH_EVENTS: u64 = 500_000;
/// Most statements (visitor ranges) one batch is stored by: a batch ends before it would hold
/// more than this many times [`BATCH_EVENTS`].
pub const MAX_PARTS: u64 = 64;
/// In the server's job, due slices wait until the oldest of them has been due this many hours
/// minus one (or the batch holds [`BATCH_EVENTS`]), so that one statement stores several
/// hours; until then their visits are answered from raw events, as they were before they ended.
pub const STEADY_BATCH_HOURS: u32 = 4;
/// How often the job runs.
pub const INTERVAL: Duration = Duration::from_secs(60);

struct Site {
    domain: String,
    tz_name: String,
    /// The site allow-lists props: its pageviews may carry some to keep.
    pageview_props: bool,
}

pub struct VisitJob {
    /// Visits are built shard by shard: a shard holds whole visitors, so whole visits.
    shards: Vec<ShardRef>,
    database: String,
    sites: Vec<Site>,
    timeout_seconds: u32,
    bounce_ms: u32,
    raw_days: u32,
    /// Most hours per statement ([`MAX_BATCH_HOURS`] unless `tally visits --batch-hours`).
    batch_hours: u32,
    /// Most raw events of their own per statement ([`BATCH_EVENTS`] unless `tally visits
    /// --batch-events`).
    batch_events: u64,
    metrics: Arc<Metrics>,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Slices stored for the first time.
    pub stored: usize,
    /// Slices computed again because their raw events changed.
    pub recomputed: usize,
    /// Slices due and still to do after this run.
    pub pending: usize,
    /// Slices stored before migration 0009 copied into `visit_pages` ([`pages`]).
    pub copied: usize,
    /// Such slices still to copy.
    pub uncopied: usize,
    /// Raw events an insert's views had missed, put back ([`repair`]): their hours may be due
    /// now, found by the next run.
    pub repaired: u64,
}

/// What `tally visits` has done so far ([`VisitJob::run_until_done`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Slices stored or computed again, of `to_store`.
    pub stored: usize,
    pub to_store: usize,
    /// Slices stored before migration 0009 copied by page ([`pages`]), of `to_copy`.
    pub copied: usize,
    pub to_copy: usize,
}

/// Why a slice is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    New,
    Late,
}

impl VisitJob {
    pub fn new(config: &Config, cluster: &Arc<Cluster>, metrics: Arc<Metrics>) -> VisitJob {
        VisitJob {
            shards: cluster.shard_refs(),
            database: config.clickhouse.database.clone(),
            sites: config
                .sites
                .iter()
                .map(|s| Site {
                    domain: s.domain.clone(),
                    tz_name: s.time_zone_name().to_string(),
                    pageview_props: !s.props_allowlist.is_empty(),
                })
                .collect(),
            timeout_seconds: config.visits.timeout.as_secs() as u32,
            bounce_ms: config.visits.bounce_engaged.as_millis() as u32,
            raw_days: config.retention.raw_days,
            batch_hours: MAX_BATCH_HOURS,
            batch_events: BATCH_EVENTS,
            metrics,
        }
    }

    /// At most `hours` (1 to [`MAX_BATCH_HOURS`]) per statement.
    pub fn with_batch_hours(mut self, hours: u32) -> VisitJob {
        self.batch_hours = hours.clamp(1, MAX_BATCH_HOURS);
        self
    }

    /// At most `events` raw events of their own per statement (at least 1; more go in parts
    /// by visitor range).
    pub fn with_batch_events(mut self, events: u64) -> VisitJob {
        self.batch_events = events.max(1);
        self
    }

    /// The last hour whose slice is due at `now`.
    fn last_due_hour(&self, now: Timestamp) -> Timestamp {
        let wait = 3600 + i64::from(self.timeout_seconds) + SETTLE_SECONDS;
        let limit = now.as_second() - wait;
        start_of_hour(Timestamp::from_second(limit).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    /// Raw events from here on are certainly all still stored: retention drops whole UTC days
    /// once their first second is `raw_days` old, so the day after that is whole.
    fn retained_from(&self, now: Timestamp) -> Timestamp {
        let limit = now.as_second() - i64::from(self.raw_days) * 86_400;
        let day = limit - limit.rem_euclid(86_400) + 86_400;
        Timestamp::from_second(day).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Stores due slices and recomputes changed ones, oldest first, at most `max_slices`;
    /// slices another collector claimed recently are left to it.
    pub async fn run_once(&self, now: Timestamp, max_slices: usize) -> Result<Progress, Error> {
        self.run(now, max_slices, true).await
    }

    async fn run(
        &self,
        now: Timestamp,
        max_slices: usize,
        respect_claims: bool,
    ) -> Result<Progress, Error> {
        let mut total = Progress::default();
        let mut failed = None;
        for shard in &self.shards {
            let client = shard.client().clone();
            if shard.cluster().is_cluster() {
                // Raw events and markers written through other replicas, as far as they are
                // known now (what is missed is late and recomputed later).
                crate::storage::sync_replica(
                    &client,
                    &[
                        "events",
                        "events_minutes",
                        "events_by_hour",
                        "visit_slices",
                        "visit_carry",
                    ],
                )
                .await;
            }
            // Once per shard: every site's counts are read from the same marks.
            let marks = async {
                let since = event_counts::counted_since(&client, &self.database).await?;
                let by_hour: u32 = client
                    .query_raw(&sql::by_hour_since(&self.database))
                    .fetch_one()
                    .await?;
                Ok::<_, Error>(Marks {
                    since,
                    by_hour: Timestamp::from_second(i64::from(by_hour))
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                })
            };
            let marks = match marks.await {
                Ok(marks) => marks,
                // The other shards go on; this one is tried again next run.
                Err(e) => {
                    tracing::warn!(shard = %shard.label(), error = %e, "visits not stored");
                    failed = Some(e);
                    continue;
                }
            };
            for site in &self.sites {
                let budget = max_slices.saturating_sub(total.stored + total.recomputed);
                match self
                    .run_site(&client, site, &marks, now, budget, respect_claims)
                    .await
                {
                    Ok(p) => {
                        total.stored += p.stored;
                        total.recomputed += p.recomputed;
                        total.pending += p.pending;
                        total.repaired += p.repaired;
                    }
                    // The other shards go on; this one is tried again next run.
                    Err(e) => {
                        tracing::warn!(shard = %shard.label(), site = %site.domain, error = %e, "visits not stored");
                        failed = Some(e);
                        break;
                    }
                }
                let budget = max_slices.saturating_sub(total.copied);
                match pages::copy_uncopied(&client, &self.database, &site.domain, budget).await {
                    Ok(c) => {
                        total.copied += c.copied;
                        total.uncopied += c.pending;
                    }
                    // The other shards go on; this one is tried again next run.
                    Err(e) => {
                        tracing::warn!(shard = %shard.label(), site = %site.domain, error = %e, "stored visits not copied by page");
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.metrics.visit_slices_pending.set(total.pending as i64);
        self.metrics
            .visit_slices_uncopied
            .set(total.uncopied as i64);
        self.metrics.visit_job_last_success.set(now.as_second());
        Ok(total)
    }

    /// Runs until no slice is due (`tally visits`), reporting progress after every run. Claims
    /// are not respected: whoever asks for this wants every due slice stored now (a claim left
    /// by a killed job would otherwise hold its slice back for [`CLAIM_SECONDS`]); a slice
    /// computed twice at once is still counted once.
    pub async fn run_until_done(
        &self,
        now: Timestamp,
        mut progress: impl FnMut(&Done),
    ) -> Result<Done, Error> {
        let mut done = Done::default();
        loop {
            let p = self.run(now, CLI_SLICES_PER_RUN, false).await?;
            done.stored += p.stored + p.recomputed;
            done.copied += p.copied;
            done.to_store = done.stored + p.pending;
            done.to_copy = done.copied + p.uncopied;
            progress(&done);
            let worked = p.stored + p.recomputed + p.copied > 0;
            if !worked || (p.pending + p.uncopied == 0 && p.repaired == 0) {
                return Ok(done);
            }
        }
    }

    /// `since`: from [`event_counts::counted_since`].
    async fn run_site(
        &self,
        client: &Client,
        site: &Site,
        marks: &Marks,
        now: Timestamp,
        budget: usize,
        respect_claims: bool,
    ) -> Result<Progress, Error> {
        let last_due = self.last_due_hour(now);
        let timeout = SignedDuration::from_secs(i64::from(self.timeout_seconds));
        // Every raw event of the site that a due slice can read.
        // (Nothing older than a day before the retention limit is left, nor needed.)
        let oldest = self.retained_from(now) - SignedDuration::from_hours(48);
        let counts: Vec<MinuteCount> = client
            .query_raw(&event_counts::per_minute(
                &self.database,
                &site.domain,
                oldest,
                last_due + SignedDuration::from_hours(1) + timeout,
                marks.since,
            ))
            .fetch_all()
            .await?;
        let Some(first) = counts.first() else {
            return Ok(Progress::default());
        };
        let first_hour = i64::from(first.minute) - i64::from(first.minute) % 3600;
        let markers: HashMap<u32, MarkerRow> = client
            .query_raw(&sql::markers(
                &self.database,
                &site.domain,
                Timestamp::from_second(first_hour).unwrap_or(Timestamp::UNIX_EPOCH),
            ))
            .fetch_all::<MarkerRow>()
            .await?
            .into_iter()
            .map(|m| (m.slice, m))
            .collect();
        let retained_from = self.retained_from(now);
        // Every hour with events up to the last due one, with why it is computed (`None`: it
        // is done, or claimed by another collector); in order.
        let mut hours = Vec::new();
        let totals = Counts::new(&counts);
        for hour in hours_with_events(&counts) {
            let Ok(hour) = Timestamp::from_second(hour) else {
                continue;
            };
            if hour > last_due {
                break;
            }
            let (lo, hi) = self.slice(site, hour, 1).read_range();
            let events = totals.between(lo, hi);
            let key = hour.as_second() as u32;
            let marker = markers.get(&key);
            let claimed = respect_claims
                && marker.is_some_and(|m| {
                    m.claimed_at > m.done_at
                        && now.as_second() - i64::from(m.claimed_at) < CLAIM_SECONDS
                });
            let reason = match marker {
                None => Some(Reason::New),
                Some(m) if m.done_version == 0 => Some(Reason::New),
                // More raw events than it was built from: some arrived late. Only while the
                // whole read range is still kept (else retention dropped a day of it), and only
                // for more events, never fewer: raw events removed by other means must not
                // remove stored visits.
                Some(m) if events > m.events && lo >= retained_from => Some(Reason::Late),
                Some(_) => None,
            };
            let own = totals.between(hour, hour + SignedDuration::from_hours(1));
            // Its computation's carry, while that still answers for the raw events before the
            // hour after it: the same count of events in its read range as when computed.
            let carry = marker.and_then(|m| {
                (m.done_version > 0 && m.carry == 1 && m.events == events && lo >= retained_from)
                    .then_some(sql::Carry {
                        slice: hour,
                        version: m.done_version,
                    })
            });
            hours.push(Hour {
                hour,
                due: reason.filter(|_| !claimed),
                events,
                own,
                carry,
            });
        }
        // In the steady state (`respect_claims`: the server's job) the newest due slices wait
        // until a batch is worth a statement; `tally visits` stores everything due now.
        let batches = batches(
            &hours,
            last_due,
            respect_claims,
            self.batch_hours,
            self.batch_events,
        );
        let mut progress = Progress {
            pending: batches
                .iter()
                .filter(|b| !b.deferred)
                .map(|b| b.hours.len())
                .sum(),
            ..Progress::default()
        };
        // Carries written in this run, by slice.
        let mut written: HashMap<i64, sql::Carry> = HashMap::new();
        for batch in batches.iter().filter(|b| !b.deferred) {
            if progress.stored + progress.recomputed >= budget {
                break;
            }
            // The batch reads the carry of the hour with events before it (none between), if
            // that hour's computation left one that still holds, and `events_by_hour` holds
            // every event of the batch's hours.
            let first = batch.hours[0].hour;
            let before = hours.iter().take_while(|h| h.hour < first).last();
            let carry = before.filter(|_| first >= marks.by_hour).and_then(|b| {
                match written.get(&b.hour.as_second()) {
                    Some(c) => Some(*c),
                    None if b.due.is_none() => b.carry,
                    None => None,
                }
            });
            // A carry is written only for a batch after which `events_by_hour` holds every
            // event: before its mark no batch could read it (written from the whole read
            // range, it cost as much again as the batch: BENCHMARKS.md, "Storing visits").
            let last = batch.hours[batch.hours.len() - 1].hour;
            let leave = last + SignedDuration::from_hours(1) >= marks.by_hour;
            // The raw events compared with their counts and copies before the batch is stored
            // ([`repair`]): from the hour after the last one counted before the batch, for the
            // job knows hours only from their counts, and an hour whose events were not counted
            // at all is found only by looking at the raw events between. (The first batch looks
            // from the earlier mark on: before both nothing is relied on.)
            let checked_from = match before {
                Some(b) => b.hour + SignedDuration::from_hours(1),
                None => start_of_hour(oldest.max(marks.since.min(marks.by_hour))).min(first),
            };
            let plan = Plan {
                carry,
                leave,
                checked: repair::Checked {
                    range: (checked_from, last + SignedDuration::from_hours(1)),
                    counted: marks.since,
                    copied: marks.by_hour,
                },
            };
            let (version, repaired) = self.compute(client, site, batch, &plan, now).await?;
            progress.repaired += repaired.counted.max(repaired.copied);
            if leave {
                written.insert(
                    last.as_second(),
                    sql::Carry {
                        slice: last,
                        version,
                    },
                );
            }
            progress.pending -= batch.hours.len();
            for h in &batch.hours {
                match h.due {
                    Some(Reason::New) => {
                        progress.stored += 1;
                        self.metrics.visit_slices_stored.inc();
                    }
                    Some(Reason::Late) => {
                        progress.recomputed += 1;
                        self.metrics.visit_slices_recomputed.inc();
                        tracing::info!(site = %site.domain, slice = %h.hour, "visits computed again: events arrived late");
                    }
                    None => {}
                }
            }
        }
        Ok(progress)
    }

    fn slice<'a>(&'a self, site: &'a Site, hour: Timestamp, hours: u32) -> Slice<'a> {
        Slice {
            database: &self.database,
            site: &site.domain,
            tz: &site.tz_name,
            timeout_seconds: self.timeout_seconds,
            bounce_ms: self.bounce_ms,
            pageview_props: site.pageview_props,
            hour,
            hours,
            part: (0, 1),
            carry: None,
        }
    }

    /// Claims, stores and marks done the slices of one batch as `plan` says: one statement per
    /// visitor range, all under one version, marked done once every range is stored. Returns
    /// the version and what [`repair`] put back first.
    async fn compute(
        &self,
        client: &Client,
        site: &Site,
        batch: &Batch,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<(u64, repair::Repaired), Error> {
        let Plan {
            carry,
            leave,
            ref checked,
        } = *plan;
        let started = std::time::Instant::now();
        let version = crate::storage::new_version()?;
        let (first, last) = (batch.hours[0].hour, batch.hours[batch.hours.len() - 1].hour);
        let markers = |done: u8, stored: &HashMap<u32, Stored>| {
            batch
                .hours
                .iter()
                .map(|h| {
                    let slice = h.hour.as_second() as u32;
                    let s = stored.get(&slice);
                    Marker {
                        site: site.domain.clone(),
                        slice,
                        version,
                        done,
                        at: now.as_second() as u32,
                        events: h.events,
                        visits: s.map_or(0, |s| s.visits),
                        first_start: s.map_or(0, |s| s.first_start),
                        // The rows are copied into `visit_pages` before this marker is written.
                        pages: if done == 1 { version } else { 0 },
                        // And the carry, for the batch's last slice.
                        carry: u8::from(leave && done == 1 && h.hour == last),
                    }
                })
                .collect::<Vec<_>>()
        };
        mark(client, &markers(0, &HashMap::new())).await?;
        // What the batch reads (the copies by the hour) and decides from (the counts) is checked
        // against the raw events of `checked` first, once claimed: only one collector puts back
        // what is missing. The counts added make the next run compute the slices whose events
        // they are (as for late events); the copies are read by this batch already.
        let repaired = repair::repair(client, &self.database, &site.domain, checked).await?;
        for (table, n) in [
            ("events_minutes", repaired.counted),
            ("events_by_hour", repaired.copied),
        ] {
            if n > 0 {
                self.metrics
                    .view_events_repaired
                    .get_or_create(&crate::metrics::Table { table })
                    .inc_by(n);
            }
        }
        if repaired != repair::Repaired::default() {
            tracing::warn!(
                site = %site.domain,
                from = %first,
                counted = repaired.counted,
                copied = repaired.copied,
                "raw events the insert's views had missed were put back (a server stopped mid-insert)"
            );
        }
        let span = ((last.as_second() - first.as_second()) / 3600 + 1) as u32;
        let parts = parts(batch.own(), self.batch_events);
        // Several hours in several visitor ranges read the whole range instead: on
        // `events_by_hour` a range of visitors touches every hour's granules (each hour is
        // ordered by visitor on its own), while on `events` it reads its share of each day.
        // A day stored in 23 ranges read 162 M rows carried against 3.2 M (BENCHMARKS.md,
        // "Storing visits"); a busy hour alone in its ranges reads its share of that hour.
        let carry = carry.filter(|_| parts == 1 || span == 1);
        let slice = sql::Slice {
            carry,
            ..self.slice(site, first, span)
        };
        for k in 0..parts {
            let part = sql::Slice {
                part: (k, parts),
                ..slice
            };
            client
                .query_raw(&sql::store(&part, version))
                .execute()
                .await?;
            if leave {
                client
                    .query_raw(&sql::write_carry(&part, version))
                    .execute()
                    .await?;
            }
        }
        let stored: HashMap<u32, Stored> = client
            .query_raw(&sql::stored(&slice, version))
            .fetch_all::<Stored>()
            .await?
            .into_iter()
            .map(|s| (s.slice, s))
            .collect();
        // The rows just stored lie from their earliest visit's start to the batch's end: read
        // back those alone (the slices' read range holds 2.4 times as many rows of a day's
        // batch on the benchmark data), and nothing for a batch without visits.
        if let Some(first) = stored.values().map(|s| s.first_start).min() {
            let rows = sql::version_rows(&slice, version);
            let from = Timestamp::from_second(i64::from(first)).unwrap_or(Timestamp::UNIX_EPOCH);
            for statement in sql::copy_pages(
                &self.database,
                &site.domain,
                (from, slice.end()),
                &rows,
                version,
            ) {
                client.query_raw(&statement).execute().await?;
            }
        }
        mark(client, &markers(1, &stored)).await?;
        tracing::debug!(
            site = %site.domain,
            from = %first,
            hours = span,
            slices = batch.hours.len(),
            parts,
            carried = carry.is_some(),
            visits = stored.values().map(|s| s.visits).sum::<u64>(),
            ms = started.elapsed().as_millis() as u64,
            "visits stored"
        );
        Ok((version, repaired))
    }
}

/// An hour with events, up to the last due one.
#[derive(Debug, Clone, Copy)]
struct Hour {
    hour: Timestamp,
    /// Why its slice is computed now; `None`: done (or claimed elsewhere).
    due: Option<Reason>,
    /// Raw events in its slice's read range.
    events: u64,
    /// Raw events in the hour itself.
    own: u64,
    /// The carry its current computation wrote, if it still holds.
    carry: Option<sql::Carry>,
}

/// How one batch is computed.
struct Plan {
    /// The open visits before the batch (`visit_carry`), read if given.
    carry: Option<sql::Carry>,
    /// Writes the open visits at the batch's end (`visit_carry`) under its version, for the
    /// next batch.
    leave: bool,
    /// The raw events compared with their counts and copies first ([`repair`]).
    checked: repair::Checked,
}

/// When a shard began keeping what the job reads (migrations 0010 and 0011).
struct Marks {
    /// Per-minute counts (`event_counts`).
    since: Timestamp,
    /// `events_by_hour`.
    by_hour: Timestamp,
}

/// Due slices stored together: by one statement, or by one per visitor range ([`Batch::parts`]).
#[derive(Debug)]
struct Batch {
    hours: Vec<Hour>,
    /// Left for a later run (the steady state's wait for a fuller batch).
    deferred: bool,
}

impl Batch {
    /// Raw events of the batch's hours.
    fn own(&self) -> u64 {
        self.hours.iter().map(|x| x.own).sum()
    }
}

/// Statements for `own` events, each for one range of the visitor hash, so that none has more
/// than `batch_events` events of its own (on average: the hash spreads visitors evenly).
fn parts(own: u64, batch_events: u64) -> u32 {
    own.div_ceil(batch_events.max(1)).clamp(1, MAX_PARTS) as u32
}

/// Groups the due hours into batches: hours due one after the other (hours without events
/// between them need no slice and do not split a batch; a done hour does), at most
/// `max_hours` long and [`MAX_PARTS`] × `batch_events` events of their own (at least one
/// hour). A statement reads the one to three whole days its read range touches, so a batch
/// of many hours stored in parts by visitor range reads them once where a batch per hour read
/// them each time (each part reads its share of them). With
/// `wait`, a batch whose oldest slice has been due for less than [`STEADY_BATCH_HOURS`] − 1
/// hours and that is under [`BATCH_EVENTS`] is deferred: the slices of a site's quiet hours
/// are stored a few at a time, each slice at most that much later.
fn batches(
    hours: &[Hour],
    last_due: Timestamp,
    wait: bool,
    max_hours: u32,
    batch_events: u64,
) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    let mut open = false;
    for h in hours {
        if h.due.is_none() {
            open = false;
            continue;
        }
        let fits = open
            && out.last().is_some_and(|b| {
                let first = b.hours[0].hour;
                let span = (h.hour.as_second() - first.as_second()) / 3600 + 1;
                span <= i64::from(max_hours) && b.own() + h.own <= MAX_PARTS * batch_events
            });
        if fits {
            out.last_mut().expect("open batch").hours.push(*h);
        } else {
            out.push(Batch {
                hours: vec![*h],
                deferred: false,
            });
        }
        open = true;
    }
    if wait {
        let oldest_due = last_due - SignedDuration::from_hours(i64::from(STEADY_BATCH_HOURS) - 1);
        for b in &mut out {
            b.deferred = b.hours[0].hour > oldest_due && b.own() < batch_events;
        }
    }
    out
}

async fn mark(client: &Client, markers: &[Marker]) -> Result<(), Error> {
    let mut insert = client.insert::<Marker>("visit_slices").await?;
    for marker in markers {
        insert.write(marker).await?;
    }
    insert.end().await?;
    Ok(())
}

/// The start of the UTC hour `t` lies in.
fn start_of_hour(t: Timestamp) -> Timestamp {
    let s = t.as_second();
    Timestamp::from_second(s - s.rem_euclid(3600)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The start of every UTC hour with an event, in order.
fn hours_with_events(counts: &[MinuteCount]) -> Vec<i64> {
    let mut hours: Vec<i64> = counts
        .iter()
        .map(|c| i64::from(c.minute) - i64::from(c.minute) % 3600)
        .collect();
    hours.dedup();
    hours
}

/// A site's raw events per minute, in minute order, with running totals: the events of any
/// range in two binary searches. Summing the counts afresh for each hour was quadratic in the
/// minutes kept: a year's backfill scanned up to 525,600 minutes for each of 8,760 hours, twice,
/// in every run.
struct Counts {
    minutes: Vec<i64>,
    /// `running[i]`: the events of the first `i` minutes.
    running: Vec<u64>,
}

impl Counts {
    fn new(rows: &[MinuteCount]) -> Counts {
        let mut rows: Vec<(i64, u64)> = rows.iter().map(|c| (i64::from(c.minute), c.n)).collect();
        rows.sort_unstable_by_key(|r| r.0);
        let mut running = Vec::with_capacity(rows.len() + 1);
        running.push(0);
        let mut total = 0u64;
        for (_, n) in &rows {
            total += n;
            running.push(total);
        }
        Counts {
            minutes: rows.into_iter().map(|r| r.0).collect(),
            running,
        }
    }

    /// Events in `[lo, hi)` (both bounds are whole minutes).
    fn between(&self, lo: Timestamp, hi: Timestamp) -> u64 {
        let first = self.minutes.partition_point(|m| *m < lo.as_second());
        let end = self.minutes.partition_point(|m| *m < hi.as_second());
        self.running[end.max(first)] - self.running[first]
    }
}

/// Runs the job every [`INTERVAL`], forever (the server aborts it at shutdown). `caught_up` is
/// told the first time a run leaves nothing due (retention waits for it).
pub async fn maintain(
    job: VisitJob,
    clock: Arc<dyn crate::clock::Clock>,
    caught_up: tokio::sync::oneshot::Sender<()>,
) {
    let mut caught_up = Some(caught_up);
    loop {
        let run = job.run_once(clock.now(), MAX_SLICES_PER_RUN).await;
        if run.as_ref().is_ok_and(|p| p.pending == 0) {
            if let Some(tell) = caught_up.take() {
                let _ = tell.send(());
            }
        }
        match run {
            Ok(p) if p.pending > 0 => {
                tracing::info!(
                    stored = p.stored,
                    recomputed = p.recomputed,
                    pending = p.pending,
                    "visits: storing the backlog"
                );
                // More to do: go on at once rather than after a whole interval.
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                job.metrics.visit_job_failures.inc();
                let detail = match &e {
                    Error::ClickHouse(ch) => crate::clickhouse_code::describe(ch),
                    other => other.to_string(),
                };
                tracing::warn!(error = %detail, "visit job run failed; retried next run");
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(raw_days: u32) -> VisitJob {
        let config = Config::parse(&format!(
            "[retention]\nraw_days = {raw_days}\n[[sites]]\ndomain = \"a.example\"\n"
        ))
        .unwrap();
        VisitJob::new(
            &config,
            &Arc::new(Cluster::new(&config.clickhouse)),
            Arc::new(Metrics::new()),
        )
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_slice_is_due_after_its_hour_the_timeout_and_settling() {
        let j = job(3);
        // 10:00–11:00 is due from 11:40 (30 min timeout, 10 min settle).
        assert_eq!(
            j.last_due_hour(at("2026-03-29T11:40:00Z")),
            at("2026-03-29T10:00:00Z")
        );
        assert_eq!(
            j.last_due_hour(at("2026-03-29T11:39:59Z")),
            at("2026-03-29T09:00:00Z")
        );
    }

    #[test]
    fn raw_events_are_whole_from_the_day_after_the_retention_limit() {
        let j = job(3);
        assert_eq!(
            j.retained_from(at("2026-03-29T11:00:00Z")),
            at("2026-03-27T00:00:00Z")
        );
        assert_eq!(
            j.retained_from(at("2026-03-29T00:00:00Z")),
            at("2026-03-27T00:00:00Z")
        );
    }

    fn hour(at_: &str, due: Option<Reason>, own: u64) -> Hour {
        Hour {
            hour: at(at_),
            due,
            events: own,
            own,
            carry: None,
        }
    }

    fn spans(b: &[Batch]) -> Vec<(String, usize, bool)> {
        b.iter()
            .map(|b| (b.hours[0].hour.to_string(), b.hours.len(), b.deferred))
            .collect()
    }

    #[test]
    fn due_hours_are_batched_until_a_done_hour_a_day_or_the_parts_limit() {
        let new = Some(Reason::New);
        let hours = vec![
            hour("2026-03-29T01:00:00Z", new, 10),
            // 02:00 had no events: no slice, no split.
            hour("2026-03-29T03:00:00Z", Some(Reason::Late), 10),
            hour("2026-03-29T04:00:00Z", None, 10),
            hour("2026-03-29T05:00:00Z", new, BATCH_EVENTS - 5),
            hour("2026-03-29T06:00:00Z", new, 10),
            hour("2026-03-30T07:00:00Z", new, 1),
        ];
        let last_due = at("2026-03-30T07:00:00Z");
        let b = batches(&hours, last_due, false, MAX_BATCH_HOURS, BATCH_EVENTS);
        assert_eq!(
            spans(&b),
            vec![
                ("2026-03-29T01:00:00Z".into(), 2, false),
                ("2026-03-29T05:00:00Z".into(), 2, false),
                ("2026-03-30T07:00:00Z".into(), 1, false),
            ]
        );
        // Over the event limit: stored in two visitor ranges.
        assert_eq!(
            b.iter()
                .map(|b| parts(b.own(), BATCH_EVENTS))
                .collect::<Vec<_>>(),
            [1, 2, 1]
        );
        // The server's job: the newest batch waits (due less than three hours), the rest not.
        let b = batches(&hours, last_due, true, MAX_BATCH_HOURS, BATCH_EVENTS);
        assert_eq!(
            spans(&b).iter().map(|s| s.2).collect::<Vec<_>>(),
            [false, false, true]
        );
        // Three hours later it goes, with what was due since.
        let mut later = hours.clone();
        later.push(hour("2026-03-30T09:00:00Z", new, 1));
        let b = batches(
            &later,
            at("2026-03-30T10:00:00Z"),
            true,
            MAX_BATCH_HOURS,
            BATCH_EVENTS,
        );
        assert_eq!(
            spans(&b).last().unwrap(),
            &("2026-03-30T07:00:00Z".into(), 2, false)
        );
        // A batch holding the event limit does not wait.
        let busy = vec![hour("2026-03-30T07:00:00Z", new, BATCH_EVENTS)];
        assert!(!batches(&busy, last_due, true, MAX_BATCH_HOURS, BATCH_EVENTS)[0].deferred);
        // Busy hours: a batch holds at most MAX_PARTS parts' worth, an hour over it alone in
        // MAX_PARTS parts.
        let busy = vec![
            hour("2026-03-30T05:00:00Z", new, 40 * BATCH_EVENTS),
            hour("2026-03-30T06:00:00Z", new, 20 * BATCH_EVENTS),
            hour("2026-03-30T07:00:00Z", new, 100 * BATCH_EVENTS),
        ];
        let b = batches(&busy, last_due, false, MAX_BATCH_HOURS, BATCH_EVENTS);
        assert_eq!(
            b.iter()
                .map(|b| (b.hours.len(), parts(b.own(), BATCH_EVENTS)))
                .collect::<Vec<_>>(),
            [(2, 60), (1, MAX_PARTS as u32)]
        );
        // `tally visits --batch-hours 1`: one hour per statement.
        assert_eq!(batches(&hours, last_due, false, 1, BATCH_EVENTS).len(), 5);
    }

    #[test]
    fn counts_are_summed_per_read_range() {
        let c = |minute: &str, n| MinuteCount {
            minute: at(minute).as_second() as u32,
            n,
        };
        let counts = vec![
            c("2026-03-29T09:59:00Z", 1),
            c("2026-03-29T10:00:00Z", 2),
            c("2026-03-29T10:59:00Z", 3),
            c("2026-03-29T12:00:00Z", 4),
        ];
        assert_eq!(
            hours_with_events(&counts),
            vec![
                at("2026-03-29T09:00:00Z").as_second(),
                at("2026-03-29T10:00:00Z").as_second(),
                at("2026-03-29T12:00:00Z").as_second()
            ]
        );
        let totals = Counts::new(&counts);
        let between = |lo: &str, hi: &str| totals.between(at(lo), at(hi));
        assert_eq!(between("2026-03-29T10:00:00Z", "2026-03-29T12:00:00Z"), 5);
        // Bounds are half-open, at, between or beyond the minutes counted.
        assert_eq!(between("2026-03-29T09:59:00Z", "2026-03-29T12:01:00Z"), 10);
        assert_eq!(between("2026-03-29T12:00:00Z", "2026-03-29T12:00:00Z"), 0);
        assert_eq!(between("2026-03-29T11:00:00Z", "2026-03-29T12:00:00Z"), 0);
        assert_eq!(between("2026-03-29T13:00:00Z", "2026-03-29T14:00:00Z"), 0);
        assert_eq!(between("2026-03-29T12:00:00Z", "2026-03-29T10:00:00Z"), 0);
        // Rows in any order.
        let mut reversed = counts;
        reversed.reverse();
        assert_eq!(
            Counts::new(&reversed).between(at("2026-03-29T09:00:00Z"), at("2026-03-29T11:00:00Z")),
            6
        );
    }
}
