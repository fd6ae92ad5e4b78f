//! The report engine: a typed [`Query`] in, a typed [`Answer`] out, for the stats API, the
//! dashboard and the Grafana generator alike.
//!
//! It resolves the period in the site's time zone, reads the per-group metric components from
//! the rollups where they can answer (whole, rolled-up days without filters) and from raw events
//! otherwise, then shapes them (`answer`). Metric definitions are in `docs/http-api.md`
//! ("Definitions"); the rounding is Rust's (half away from zero).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use clickhouse::Client;
use futures_util::future::join_all;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

use super::access::Access;
use super::aggregate_mode;
use super::answer::{self, compare, effective_order, metric, sort, Answer, Row};
use super::period::Period;
use super::prefiltered::{self, Prefiltered, Session};
use super::query::{self, Dimension, Filter, Metric, Op, Query};
use super::sql;
use super::sql::conversions::{Conversions, GoalRule};
use super::sql::rollups::{Slice, PAIRED};
use super::sql::visits::{Components, HistogramRow, Percentiles, ADDITIVE};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::StatsError;
use crate::metrics::{Metrics, Source};

struct SiteStats {
    tz: TimeZone,
    tz_name: String,
    /// The site's goals as SQL (`event:goal`).
    goals: Vec<GoalRule>,
    /// Custom property keys that can be stored, so reported: `props_allowlist` and the
    /// built-in events' own.
    props: Vec<String>,
    /// `props_allowlist` alone, in the config's order (the dashboard's properties panel).
    allowlist: Vec<String>,
}

/// The stats service shared by the HTTP handlers.
pub struct Stats {
    /// The servers; on a cluster each shard answers for its visitors and the answers are added.
    cluster: Arc<Cluster>,
    metrics: Arc<Metrics>,
    /// Read complete days from the rollup tables (else every query sessionizes raw events).
    use_rollups: bool,
    database: String,
    sites: HashMap<String, SiteStats>,
    pub access: Access,
    timeout_seconds: u32,
    bounce_ms: u32,
    /// `privacy.aggregate_only`: every number comes from the folded counts in the rollups.
    aggregate_only: bool,
    /// `visits.store`: read stored visits (else build every visit from raw events).
    stored_visits: bool,
}

/// A row of the rollup and realtime queries (no percentiles: those come as histograms).
#[derive(Debug, Deserialize, clickhouse::Row)]
struct GroupRow {
    dims: Vec<String>,
    comps: Vec<f64>,
}

/// Which histograms a query needs: visit durations (for the duration percentiles) and seconds
/// on page (for the median time on page); and which additive components (all by default).
#[derive(Debug, Clone, Copy)]
struct Wanted {
    durations: bool,
    page_seconds: bool,
    components: Components,
    /// Also a group with no dimension values for all the rows read (the denominator of
    /// `percentage`), from the same pass where unit rows answer.
    total: bool,
}

impl Default for Wanted {
    fn default() -> Wanted {
        Wanted {
            durations: false,
            page_seconds: false,
            components: Components::ALL,
            total: false,
        }
    }
}

impl Wanted {
    /// Distinct visitors alone (the denominators of percentages and conversion rates).
    fn visitors() -> Wanted {
        Wanted {
            components: Components(0).with(1),
            ..Wanted::default()
        }
    }

    /// What the metrics of `q` are made of.
    fn of(q: &Query) -> Wanted {
        let components = q
            .metrics
            .iter()
            .flat_map(|m| answer::components(*m))
            .fold(Components(0), |c, i| c.with(*i));
        Wanted {
            durations: q.metrics.iter().any(|m| {
                matches!(
                    m,
                    Metric::VisitDurationMedian
                        | Metric::VisitDurationP75
                        | Metric::VisitDurationP90
                )
            }),
            page_seconds: q.metrics.contains(&Metric::TimeOnPageMedian),
            components,
            total: false,
        }
    }
}

/// The metric components of one group on one shard, or added up over shards: the additive
/// ones, and the histograms the percentiles are read from once every shard's are in (or, from
/// a single shard, the percentiles themselves).
#[derive(Debug, Default)]
struct Group {
    dims: Vec<String>,
    comps: Vec<f64>,
    durations: BTreeMap<u32, u64>,
    page_seconds: BTreeMap<u32, u64>,
    /// Median, p75 and p90 of the visit durations, computed by ClickHouse; empty: read them
    /// from `durations`.
    duration_quantiles: Vec<f64>,
    /// Median seconds on page, computed by ClickHouse; empty: read it from `page_seconds`.
    page_quantiles: Vec<f64>,
}

impl Group {
    fn from_row(row: GroupRow) -> Group {
        let mut comps = row.comps;
        comps.resize(ADDITIVE + 1, 0.0);
        Group {
            dims: row.dims,
            comps,
            ..Group::default()
        }
    }

    fn from_histogram_row(row: HistogramRow) -> Group {
        let mut comps = row.comps;
        comps.resize(ADDITIVE + 1, 0.0);
        let histogram = |keys: Vec<u32>, counts: Vec<u64>| keys.into_iter().zip(counts).collect();
        let values = |v: Vec<u32>| v.into_iter().map(f64::from).collect();
        Group {
            dims: row.dims,
            comps,
            durations: histogram(row.duration_keys, row.duration_counts),
            page_seconds: histogram(row.page_keys, row.page_counts),
            duration_quantiles: values(row.duration_quantiles),
            page_quantiles: values(row.page_quantiles),
        }
    }

    /// Only groups whose percentiles come as histograms add up: percentiles computed by
    /// ClickHouse are asked for only where one shard answers alone.
    fn add(&mut self, other: Group) {
        debug_assert!(self.duration_quantiles.is_empty() && other.duration_quantiles.is_empty());
        debug_assert!(self.page_quantiles.is_empty() && other.page_quantiles.is_empty());
        for (a, b) in self.comps.iter_mut().zip(&other.comps) {
            *a += b;
        }
        for (histogram, more) in [
            (&mut self.durations, other.durations),
            (&mut self.page_seconds, other.page_seconds),
        ] {
            for (k, v) in more {
                *histogram.entry(k).or_default() += v;
            }
        }
    }

    /// The components in `COMPONENTS` order, then the median time on page, then events.
    fn components(&self) -> Vec<f64> {
        let mut c = self.comps[..ADDITIVE.min(self.comps.len())].to_vec();
        c.resize(sql::COMPONENTS.len() + 1, 0.0);
        for (k, (i, q)) in [(10, 0.5), (11, 0.75), (12, 0.9)].into_iter().enumerate() {
            c[i] = match self.duration_quantiles.get(k) {
                Some(v) => *v,
                None => percentile(&self.durations, q),
            };
        }
        c[sql::COMPONENTS.len()] = match self.page_quantiles.first() {
            Some(v) => *v,
            None => percentile(&self.page_seconds, 0.5),
        };
        c.push(self.comps.get(ADDITIVE).copied().unwrap_or(0.0));
        c
    }
}

/// Adds `more` into `groups`, summing the groups with the same dimension values (the first
/// occurrence keeps its place).
fn add_groups(groups: &mut Vec<Group>, more: Vec<Group>) {
    let mut index: HashMap<Vec<String>, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.dims.clone(), i))
        .collect();
    for g in more {
        match index.get(&g.dims) {
            Some(&i) => groups[i].add(g),
            None => {
                index.insert(g.dims.clone(), groups.len());
                groups.push(g);
            }
        }
    }
}

impl Stats {
    pub fn new(config: &Config, cluster: Arc<Cluster>, metrics: Arc<Metrics>) -> Stats {
        let sites = config
            .sites
            .iter()
            .map(|s| {
                (
                    s.domain.clone(),
                    SiteStats {
                        tz: s.time_zone.clone(),
                        tz_name: s.time_zone_name().to_string(),
                        goals: s.goals.iter().map(GoalRule::of).collect(),
                        props: s
                            .props_allowlist
                            .iter()
                            .map(String::as_str)
                            .chain(crate::builtin_events::STORED_PROPS.iter().map(|p| p.1))
                            .map(str::to_string)
                            .collect(),
                        allowlist: s.props_allowlist.clone(),
                    },
                )
            })
            .collect();
        Stats {
            cluster,
            metrics,
            use_rollups: config.rollups.enabled,
            database: config.clickhouse.database.clone(),
            sites,
            access: Access::from_config(config),
            timeout_seconds: config.visits.timeout.as_secs() as u32,
            bounce_ms: config.visits.bounce_engaged.as_millis() as u32,
            aggregate_only: config.privacy.aggregate_only,
            stored_visits: config.visits.store,
        }
    }

    /// Whether the site has goals configured (the dashboard shows its goals table then).
    pub fn has_goals(&self, site_id: &str) -> bool {
        self.sites.get(site_id).is_some_and(|s| !s.goals.is_empty())
    }

    /// The site's `props_allowlist`, in the config's order (empty for an unknown site).
    pub fn prop_keys(&self, site_id: &str) -> &[String] {
        self.sites
            .get(site_id)
            .map_or(&[], |s| s.allowlist.as_slice())
    }

    /// Checks access to the query's site: unknown sites and refused tokens look the same.
    pub fn authorize(&self, site_id: &str, authorization: Option<&str>) -> Result<(), StatsError> {
        if !self.sites.contains_key(site_id) {
            return Err(StatsError::Unauthorized);
        }
        self.access.check(site_id, authorization)
    }

    /// Runs an authorized query at `now`.
    pub async fn run(&self, q: &Query, now: Timestamp) -> Result<Answer, StatsError> {
        self.run_with(q, now, None).await
    }

    /// Runs an authorized query at `now`, reading unit rows from `pre` where it holds them
    /// (the same site, filters and period; see [`Stats::prefilter`]).
    pub async fn run_with(
        &self,
        q: &Query,
        now: Timestamp,
        pre: Option<&Prefiltered>,
    ) -> Result<Answer, StatsError> {
        let started = Instant::now();
        let site = self.sites.get(&q.site_id).ok_or(StatsError::Unauthorized)?;
        if self.aggregate_only {
            aggregate_mode::supports(q)?;
        }
        check_conversions(q, site)?;
        let first = if q.date_range == query::DateRange::All {
            self.first_event(&q.site_id).await?
        } else {
            None
        };
        let period = Period::resolve(&q.date_range, &site.tz, now, first)?;
        let dims: Vec<Dimension> = q
            .dimensions
            .iter()
            .map(|d| {
                if *d == Dimension::Time {
                    period.time_dimension()
                } else {
                    *d
                }
            })
            .collect();
        let order = effective_order(q, &dims);
        let median_after = median_after_order(q, &dims, &order);

        let mut rows = self
            .rows(q, site, &period, &dims, !median_after, pre)
            .await?;
        sort(&mut rows, &order, q, &dims);
        let total_rows = rows.len();
        let mut page: Vec<Row> = rows.into_iter().skip(q.offset).take(q.limit).collect();
        if median_after {
            self.shown_medians(q, site, &period, &dims, &mut page, pre)
                .await?;
        }

        if let Some(mode) = q.comparison {
            let prev = period.compared(mode)?;
            let prev_rows = self.rows(q, site, &prev, &dims, true, pre).await?;
            for row in &mut page {
                row.compared = Some(compare(row, &dims, &period, &prev, &prev_rows, &q.metrics));
            }
        }
        let time_labels = if q.time_labels {
            dims.iter()
                .find(|d| d.is_time_series())
                .map(|d| period.labels(*d))
        } else {
            None
        };
        tracing::debug!(
            site = %q.site_id,
            rows = total_rows,
            ms = started.elapsed().as_millis() as u64,
            "stats query"
        );
        Ok(Answer {
            rows: page,
            total_rows,
            time_labels,
            period,
            dimensions: dims,
            order,
        })
    }

    /// Selects the unit rows that `q`'s filters keep over its period once, into a temporary
    /// table per shard, for several reports of the same site, period
    /// and filters to read ([`Stats::run_with`]; a dashboard page's panels). Only for filters
    /// that send every report to the unit rows (none the rollups answer), not for conversion
    /// reports; `None` when that does not hold, when the filters keep more than
    /// [`prefiltered::MAX_ROWS`] rows, or when ClickHouse refused: each report then
    /// reads the visits itself, as without it. The caller releases it when done.
    pub async fn prefilter(&self, q: &Query, now: Timestamp) -> Option<Prefiltered> {
        self.prefilter_at_most(q, now, prefiltered::MAX_ROWS).await
    }

    /// [`Stats::prefilter`] with another bound on the rows of a period.
    pub async fn prefilter_at_most(
        &self,
        q: &Query,
        now: Timestamp,
        max_rows: u64,
    ) -> Option<Prefiltered> {
        if q.filters.is_empty()
            || self.aggregate_only
            || q.counts_conversions()
            || q.date_range == query::DateRange::Realtime
            || (self.use_rollups && Slice::of(&q.filters).is_some())
        {
            return None;
        }
        let site = self.sites.get(&q.site_id)?;
        let first = match q.date_range {
            query::DateRange::All => self.first_event(&q.site_id).await.ok()?,
            _ => None,
        };
        let period = Period::resolve(&q.date_range, &site.tz, now, first).ok()?;
        let pre = Prefiltered::new(
            q,
            (period.from, period.to),
            self.cluster.shards.iter().map(|shard| shard.client()),
        );
        for (shard, session) in self.cluster.shards.iter().zip(pre.sessions()) {
            match self
                .fill_prefiltered(shard.client(), session, q, site, &period, max_rows)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    pre.release().await;
                    return None;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "prefiltering a page's rows");
                    pre.release().await;
                    return None;
                }
            }
        }
        Some(pre)
    }

    /// Fills a session's prefiltered table; `false` when the filters keep too many rows.
    /// The open tail's bounds are asked on the shard's `client`: they need no session.
    async fn fill_prefiltered(
        &self,
        client: &Client,
        session: &Session,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        max_rows: u64,
    ) -> Result<bool, StatsError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Count {
            n: u64,
        }
        let scope = self.unit_scope(client, q, site, period).await?;
        self.count_by_page(&scope, &q.filters);
        let table = prefiltered::TABLE;
        let fill = sql::units::prefilter(&scope, &q.filters, table, max_rows);
        tracing::trace!(sql = fill, "stats sql");
        session
            .run(|client| limited(client.query_raw(&fill)).execute())
            .await
            .map_err(|e| unavailable(&e))?;
        let count = format!("SELECT count() AS n FROM {table}");
        let rows: Vec<Count> = session
            .run(|client| client.query_raw(&count).fetch_all())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(rows.first().is_some_and(|r| r.n <= max_rows))
    }

    /// Distinct visitors with a pageview in the last 5 minutes (Plausible's v1 realtime number).
    pub async fn realtime_visitors(
        &self,
        site_id: &str,
        now: Timestamp,
    ) -> Result<u64, StatsError> {
        let mut q = Query::new(site_id, &[Metric::Visitors], query::DateRange::Realtime);
        q.limit = 1;
        let answer = self.run(&q, now).await?;
        Ok(answer
            .rows
            .first()
            .and_then(|r| r.metrics.first().copied().flatten())
            .unwrap_or(0.0) as u64)
    }

    /// The earliest stored visit or raw event of a site, over every shard.
    async fn first_event(&self, site: &str) -> Result<Option<Timestamp>, StatsError> {
        let sql = sql::visits::first_event(&self.database, site);
        let answers = join_all(self.cluster.shards.iter().map(|shard| {
            shard.run(|client| {
                let sql = &sql;
                async move {
                    client
                        .query_raw(sql)
                        .fetch_one::<sql::visits::FirstEvent>()
                        .await
                        .map_err(|e| unavailable(&e))
                }
            })
        }))
        .await;
        let mut first: Option<Timestamp> = None;
        for row in answers {
            let row = row?;
            if row.n > 0 {
                let t = Timestamp::from_second(i64::from(row.t)).ok();
                first = match (first, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(first)
    }

    /// All groups of the period with their metrics (before ordering and paging). With `medians`
    /// false the median time on page is a placeholder, for [`Stats::shown_medians`] to fill in.
    async fn rows(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        medians: bool,
        pre: Option<&Prefiltered>,
    ) -> Result<Vec<Row>, StatsError> {
        let mut wanted = Wanted::of(q);
        wanted.page_seconds &= medians;
        let percentage = q.metrics.contains(&Metric::Percentage);
        // A conversion report's rows are joined with its goals; its percentage is of all visitors.
        wanted.total = percentage && !dims.is_empty() && !q.counts_conversions();
        let mut grouped = self
            .groups(q, site, period, dims, wanted, None, pre)
            .await?;
        let total_visitors = if !percentage {
            None
        } else if dims.is_empty() {
            grouped.first().map(|g| g.comps[1])
        } else if let Some(i) = grouped.iter().position(|g| g.dims.is_empty()) {
            Some(grouped.remove(i).comps[1])
        } else {
            self.groups(q, site, period, &[], Wanted::visitors(), None, pre)
                .await?
                .first()
                .map(|g| g.comps[1])
        };
        let rates = self.conversion_totals(q, site, period, dims).await?;
        let mut rows: Vec<Row> = grouped
            .into_iter()
            .map(|g| {
                let comps = g.components();
                Row {
                    metrics: q
                        .metrics
                        .iter()
                        .map(|m| {
                            rates
                                .rate(*m, comps[1], &g.dims)
                                .or_else(|| metric(*m, &comps, total_visitors))
                        })
                        .collect(),
                    dims: g.dims,
                    compared: None,
                }
            })
            .collect();
        // An aggregate over an empty period still answers one row of zeros, as Plausible does.
        if dims.is_empty() && rows.is_empty() {
            let zeros = vec![0.0; sql::COMPONENTS.len() + 2];
            rows.push(Row {
                dims: Vec::new(),
                compared: None,
                metrics: q
                    .metrics
                    .iter()
                    .map(|m| {
                        rates
                            .rate(*m, 0.0, &[])
                            .or_else(|| metric(*m, &zeros, total_visitors))
                    })
                    .collect(),
            });
        }
        Ok(rows)
    }

    fn scope<'a>(&'a self, q: &'a Query, site: &'a SiteStats, period: &Period) -> sql::Scope<'a> {
        let mut scope = sql::Scope::literal(sql::ScopeValues {
            database: &self.database,
            site: &q.site_id,
            tz: &site.tz_name,
            from: period.from,
            to: period.to,
            timeout_seconds: self.timeout_seconds,
            bounce_ms: self.bounce_ms,
            first_date: period.from.to_zoned(period.tz.clone()).date(),
            stored_visits: self.stored_visits,
        });
        if q.counts_conversions() {
            scope.conversions = Some(Conversions {
                goals: site.goals.clone(),
                prop_keys: q.prop_keys.clone(),
            });
        }
        scope
    }

    /// The denominators of `conversion_rate` (the visitors of the whole query) and
    /// `group_conversion_rate` (the visitors of each group of the dimensions other than
    /// `event:goal` and `event:props:*`), both without the filters on goals and properties, as
    /// Plausible computes them. Empty when neither metric is asked for.
    async fn conversion_totals(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
    ) -> Result<Rates, StatsError> {
        let mut rates = Rates::default();
        let global = q.metrics.contains(&Metric::ConversionRate);
        let group = q.metrics.contains(&Metric::GroupConversionRate);
        if !global && !group {
            return Ok(rates);
        }
        let mut totals = q.clone();
        totals.filters.retain(|f| !f.has_conversion());
        totals.dimensions.retain(|d| !d.is_conversion());
        totals.metrics = vec![Metric::Visitors];
        totals.order_by.clear();
        let visitors = |groups: Vec<Group>| -> HashMap<Vec<String>, f64> {
            groups.into_iter().map(|g| (g.dims, g.comps[1])).collect()
        };
        if global {
            let all = self
                .groups(&totals, site, period, &[], Wanted::visitors(), None, None)
                .await?;
            rates.total = Some(visitors(all).into_values().next().unwrap_or(0.0));
        }
        if group {
            // Where the other dimensions sit in a row's values.
            rates.positions = dims
                .iter()
                .enumerate()
                .filter(|(_, d)| !d.is_conversion())
                .map(|(i, _)| i)
                .collect();
            let others: Vec<Dimension> = rates.positions.iter().map(|&i| dims[i]).collect();
            let groups = self
                .groups(
                    &totals,
                    site,
                    period,
                    &others,
                    Wanted::visitors(),
                    None,
                    None,
                )
                .await?;
            rates.groups = Some(visitors(groups));
        }
        Ok(rates)
    }

    /// The median time on page of the rows shown (`page`), read from unit rows of their
    /// dimension values alone: the rows were ordered and cut without it (see
    /// [`median_after_order`]), so the rest of the report could come from rollups, which keep
    /// no time-on-page histograms, and only the shown groups' page visits are sorted for their
    /// medians. Each shown group's unit rows are the ones the whole report would have read for
    /// it, so its median is the same.
    async fn shown_medians(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        page: &mut [Row],
        pre: Option<&Prefiltered>,
    ) -> Result<(), StatsError> {
        let Some(at) = q
            .metrics
            .iter()
            .position(|m| *m == Metric::TimeOnPageMedian)
        else {
            return Ok(());
        };
        if page.is_empty() {
            return Ok(());
        }
        let shown: Vec<Vec<String>> = page.iter().map(|r| r.dims.clone()).collect();
        let wanted = Wanted {
            durations: false,
            page_seconds: true,
            components: Components(0).with(PAGE_VISITS),
            total: false,
        };
        let groups = self
            .groups(q, site, period, dims, wanted, Some(&shown), pre)
            .await?;
        let medians: HashMap<Vec<String>, Option<f64>> = groups
            .into_iter()
            .map(|g| {
                let median = metric(Metric::TimeOnPageMedian, &g.components(), None);
                (g.dims, median)
            })
            .collect();
        for row in page {
            row.metrics[at] = medians.get(&row.dims).copied().flatten();
        }
        Ok(())
    }

    /// The metric components per group, added up over the shards (each shard holds whole
    /// visitors, so every component, distinct visitors included, is a sum of the shards').
    /// `only`: the groups of these dimension values alone, read from unit rows.
    #[allow(clippy::too_many_arguments)]
    async fn groups(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        wanted: Wanted,
        only: Option<&[Vec<String>]>,
        pre: Option<&Prefiltered>,
    ) -> Result<Vec<Group>, StatsError> {
        let answers = join_all(self.cluster.shards.iter().enumerate().map(|(i, shard)| {
            let held = pre.and_then(|p| p.lookup(i, q, period.from, period.to));
            async move {
                if let Some(session) = held {
                    match self
                        .prefiltered_groups(session, q, site, period, dims, wanted, only)
                        .await
                    {
                        Ok(groups) => {
                            pre.inspect(|p| p.count_read());
                            return Ok(groups);
                        }
                        // The session expired or its server failed: read the visits instead.
                        Err(e) => tracing::debug!(error = %e, "prefiltered rows unavailable"),
                    }
                }
                shard
                    .run(|client| async move {
                        let mut groups = self
                            .shard_groups(&client, q, site, period, dims, wanted, only)
                            .await?;
                        // Rollups answer without the total: every shard gives one or none,
                        // so that the shards' totals add up.
                        if wanted.total && !groups.iter().any(|g| g.dims.is_empty()) {
                            let total = self
                                .shard_groups(
                                    &client,
                                    q,
                                    site,
                                    period,
                                    &[],
                                    Wanted::visitors(),
                                    None,
                                )
                                .await?;
                            groups.extend(total.into_iter().take(1).map(|mut g| {
                                g.dims.clear();
                                g
                            }));
                        }
                        Ok(groups)
                    })
                    .await
            }
        }))
        .await;
        let mut groups = Vec::new();
        for answer in answers {
            add_groups(&mut groups, answer?);
        }
        Ok(groups)
    }

    /// One shard's components: from rollups where they can answer, else from visits.
    #[allow(clippy::too_many_arguments)]
    async fn shard_groups(
        &self,
        client: &Client,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        wanted: Wanted,
        only: Option<&[Vec<String>]>,
    ) -> Result<Vec<Group>, StatsError> {
        if let Some(shown) = only {
            // Unfiltered medians of pages (or the whole site) from `rollup_page_seconds`.
            if let Some(groups) = self
                .rollup_groups(client, q, site, period, dims, wanted, Some(shown))
                .await?
            {
                self.count_query("rollup");
                return Ok(groups);
            }
            self.count_query("raw");
            let mut scope = self.unit_scope(client, q, site, period).await?;
            scope.units_where = Some(sql::visits::groups_in(&scope, dims, shown));
            self.count_by_page(&scope, &q.filters);
            let one_shard = self.cluster.shards.len() == 1;
            return self
                .fetch_histograms(
                    client,
                    &grouped(&scope, dims, &q.filters, wanted, one_shard),
                )
                .await;
        }
        if self.aggregate_only {
            self.count_query("rollup");
            return self.aggregate_groups(client, q, period, dims).await;
        }
        if realtime_counts(q, dims, wanted) {
            self.count_query("raw");
            let scope = self.scope(q, site, period);
            return self
                .fetch(client, &sql::units::recent_pageviews(&scope, &q.filters))
                .await;
        }
        if let Some(groups) = self
            .rollup_groups(client, q, site, period, dims, wanted, None)
            .await?
        {
            self.count_query("rollup");
            return Ok(groups);
        }
        self.count_query("raw");
        let scope = self.unit_scope(client, q, site, period).await?;
        let one_shard = self.cluster.shards.len() == 1;
        self.count_by_page(&scope, &q.filters);
        self.fetch_histograms(
            client,
            &grouped(&scope, dims, &q.filters, wanted, one_shard),
        )
        .await
    }

    /// One shard's components from its prefiltered unit rows (see [`Stats::prefilter`]).
    #[allow(clippy::too_many_arguments)]
    async fn prefiltered_groups(
        &self,
        session: &Session,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        wanted: Wanted,
        only: Option<&[Vec<String>]>,
    ) -> Result<Vec<Group>, StatsError> {
        let mut scope = self.scope(q, site, period);
        scope.units_table = Some(prefiltered::TABLE.to_string());
        if let Some(shown) = only {
            scope.units_where = Some(sql::visits::groups_in(&scope, dims, shown));
        }
        let one_shard = self.cluster.shards.len() == 1;
        let sql = grouped(&scope, dims, &q.filters, wanted, one_shard);
        tracing::trace!(sql, "stats sql");
        let rows = session
            .run(|client| limited(client.query_raw(&sql)).fetch_all::<HistogramRow>())
            .await
            .map_err(|e| unavailable(&e))?;
        self.count_query("prefiltered");
        Ok(rows.into_iter().map(Group::from_histogram_row).collect())
    }

    /// The scope of a report over unit rows. With stored visits the open tail's first hour is
    /// asked first, so that the report holds it as a literal (see `sql::units::tail_start`),
    /// and, when it starts after the period, whether any tail visit reaches back into the
    /// period (a report on past days then reads stored visits alone), and then, for a report with
    /// a page filter, whether it can read by page (`sql::units::pages_ready`). All are bounds that
    /// can only be on the safe side when asked before the report: a slice stored meanwhile
    /// has its visits read from the stored side, and no stored slice is ever unstored.
    async fn unit_scope<'a>(
        &'a self,
        client: &Client,
        q: &'a Query,
        site: &'a SiteStats,
        period: &Period,
    ) -> Result<sql::Scope<'a>, StatsError> {
        let mut scope = self.scope(q, site, period);
        if self.stored_visits {
            let start = limited(client.query_raw(&sql::units::tail_start(&scope)))
                .fetch_one::<sql::units::TailStart>()
                .await
                .map_err(|e| unavailable(&e))?;
            let hour = Timestamp::from_second(i64::from(start.hour))
                .map_err(|_| StatsError::Unavailable)?;
            scope.tail_from = Some(sql::Sql::datetime(hour));
            scope.tail_after_period = hour >= period.to;
            // Its raw events from its own hours and the open visits before them, where the
            // visit job left those: a report on today of a busy site reads the last hours,
            // not the last day and more of `events` (ordered by the day).
            if start.hour != u32::MAX {
                let carry = limited(client.query_raw(&sql::units::tail_carry(&scope)))
                    .fetch_one::<sql::units::TailCarry>()
                    .await
                    .map_err(|e| unavailable(&e))?;
                scope.tail_by_hour = carry.by_hour(start.hour, self.timeout_seconds);
            }
            if scope.tail_after_period {
                let reaching = limited(client.query_raw(&sql::units::tail_reaches_period(&scope)))
                    .fetch_one::<sql::units::TailVisitors>()
                    .await
                    .map_err(|e| unavailable(&e))?;
                scope.open_tail = reaching.n > 0;
            }
            if scope.open_tail && scope.tail_by_hour.is_some() {
                self.count_query("tail_by_hour");
            }
            // A page filter over stored visits alone reads by page once every slice of the
            // period has its rows ordered by page (a conversion report never does: not asked).
            if !scope.open_tail
                && scope.conversions.is_none()
                && sql::by_page::Key::of(&q.filters).is_some()
            {
                let ready = limited(client.query_raw(&sql::units::pages_ready(&scope)))
                    .fetch_one::<sql::units::PagesReady>()
                    .await
                    .map_err(|e| unavailable(&e))?;
                scope.by_page = ready.uncopied == 0;
            }
        }
        Ok(scope)
    }

    /// Counts a report that reads stored rows by page (as `by_page`, besides its `raw`).
    fn count_by_page(&self, scope: &sql::Scope, filters: &[crate::stats::query::Filter]) {
        if sql::units::reads_by_page(scope, filters) {
            self.count_query("by_page");
        }
    }

    fn count_query(&self, source: &'static str) {
        self.metrics
            .stats_queries
            .get_or_create(&Source { source })
            .inc();
    }

    /// Rollups answer when there is no filter or one `is` filter they keep rows for ([`Slice`]),
    /// the dimensions are rolled up, the period is whole days and its first days are rolled
    /// up; the days after the last rolled-up one (today, typically) are read from visits and
    /// added, as every component is a sum over days.
    #[allow(clippy::too_many_arguments)]
    async fn rollup_groups(
        &self,
        client: &Client,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        wanted: Wanted,
        only: Option<&[Vec<String>]>,
    ) -> Result<Option<Vec<Group>>, StatsError> {
        // One `is` filter reads the rows of its dimension value (see `Slice`); other filters
        // read unit rows.
        let slice = match q.filters.as_slice() {
            [] => None,
            filters => match Slice::of(filters) {
                Some(slice) => Some(slice),
                None => return Ok(None),
            },
        };
        if !self.use_rollups
            // Rollups keep no custom events (nor goals, nor properties).
            || q.counts_conversions()
            || q.metrics.contains(&Metric::Events)
            // Seconds on page are kept for the whole site and per page, without filters.
            || (wanted.page_seconds && (slice.is_some() || !sql::rollups::page_dimensions(dims)))
            || (wanted.durations && !dims.is_empty())
            // Visits per second of duration are kept for the whole site and paired values.
            || (wanted.durations && slice.is_some_and(|s| !PAIRED.contains(&s.dimension)))
        {
            return Ok(None);
        }
        let Some((first, last)) = period.whole_days() else {
            return Ok(None);
        };
        if sql::rollups::rollup_grouped(&self.database, &q.site_id, first, last, dims, slice)
            .is_none()
        {
            return Ok(None);
        }
        // Rolled-up days, and whether they answer this report: a day rolled up before
        // `rollup_pairs` existed answers only reads of `rollup_daily` until it is computed again.
        let pairs = sql::rollups::reads_pairs(dims, slice) || (wanted.durations && slice.is_some());
        let rolled: HashMap<String, bool> = client
            .query_raw(&sql::rollups::rolled_days(
                &self.database,
                &q.site_id,
                first,
                last,
            ))
            .fetch_all::<sql::rollups::RolledDay>()
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .map(|r| {
                let answers =
                    (!pairs || r.pairs == 1) && (!wanted.page_seconds || r.page_seconds == 1);
                (r.day_text, answers)
            })
            .collect();
        // Days before the site's first rolled-up day count as rolled up when no event falls in
        // them: a "12mo" report on a site with three months of history must not fall back to
        // raw events for all of it.
        let Some(first_rolled) = rolled
            .keys()
            .filter_map(|d| d.parse::<jiff::civil::Date>().ok())
            .min()
        else {
            return Ok(None);
        };
        if first_rolled > first {
            let before = Period::days(
                first,
                first_rolled
                    .yesterday()
                    .map_err(|_| StatsError::Unavailable)?,
                &period.tz,
            )?;
            if self.has_events(client, &q.site_id, &before).await? {
                return Ok(None);
            }
        }
        let mut rolled_until = None;
        let mut d = first_rolled;
        while d <= last && rolled.get(&d.to_string()) == Some(&true) {
            rolled_until = Some(d);
            d = match d.tomorrow() {
                Ok(n) => n,
                Err(_) => break,
            };
        }
        let Some(until) = rolled_until else {
            return Ok(None);
        };
        let mut groups = match only {
            // The shown rows' medians alone (see `shown_medians`): no other component.
            Some(_) => Vec::new(),
            None => {
                let rollup_sql = sql::rollups::rollup_grouped(
                    &self.database,
                    &q.site_id,
                    first,
                    until,
                    dims,
                    slice,
                )
                .ok_or(StatsError::Unavailable)?;
                self.fetch(client, &rollup_sql).await?
            }
        };
        if wanted.page_seconds {
            let sql =
                sql::rollups::page_seconds(&self.database, &q.site_id, first, until, dims, only)
                    .ok_or(StatsError::Unavailable)?;
            add_page_seconds(client, &sql, dims, &mut groups).await?;
        }
        let mut histogram = BTreeMap::new();
        if wanted.durations {
            let sql = match slice {
                Some(slice) => {
                    sql::rollups::pair_durations(&self.database, &q.site_id, first, until, slice)
                        .ok_or(StatsError::Unavailable)?
                }
                None => sql::rollups::rollup_durations(&self.database, &q.site_id, first, until),
            };
            add_durations(client, &sql, &mut histogram).await?;
        }
        if until < last {
            let rest_first = until.tomorrow().map_err(|_| StatsError::Unavailable)?;
            let rest = Period::days(rest_first, last, &period.tz)?;
            let mut scope = self.unit_scope(client, q, site, &rest).await?;
            self.count_by_page(&scope, &q.filters);
            // Week labels do not start before the whole period's first day, not the rest's.
            scope.first_date = sql::Sql::date(first);
            if let Some(shown) = only {
                scope.units_where = Some(sql::visits::groups_in(&scope, dims, shown));
            }
            let rest_wanted = Wanted {
                page_seconds: wanted.page_seconds,
                ..Wanted::default()
            };
            let raw = self
                .fetch_histograms(
                    client,
                    &grouped(&scope, dims, &q.filters, rest_wanted, false),
                )
                .await?;
            add_groups(&mut groups, raw);
            if wanted.durations {
                let sql = sql::visits::durations(&scope, &q.filters);
                add_durations(client, &sql, &mut histogram).await?;
            }
        }
        if wanted.durations {
            // Only without dimensions (checked above): the whole period's one group.
            if groups.is_empty() {
                groups.push(Group {
                    comps: vec![0.0; ADDITIVE],
                    ..Group::default()
                });
            }
            groups[0].durations = histogram;
        }
        Ok(Some(groups))
    }

    /// Aggregate-only mode: the local days the period touches, read from the folded counts
    /// (a period that starts or ends inside a day reads that whole day: counts have no time
    /// finer than the local hour).
    async fn aggregate_groups(
        &self,
        client: &Client,
        q: &Query,
        period: &Period,
        dims: &[Dimension],
    ) -> Result<Vec<Group>, StatsError> {
        let first = period.from.to_zoned(period.tz.clone()).date();
        let end = period
            .to
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap_or(period.to);
        let last = end.to_zoned(period.tz.clone()).date().max(first);
        let sql = sql::rollups::rollup_grouped(&self.database, &q.site_id, first, last, dims, None)
            .ok_or_else(|| {
                StatsError::Invalid(format!(
                    "#/dimensions: this combination is not kept in aggregate-only mode \
                     (privacy.aggregate_only); ask for one dimension at a time{}",
                    aggregate_mode::HINT
                ))
            })?;
        self.fetch(client, &sql).await
    }

    /// Whether the site has any stored event in the period (a primary-key range read).
    async fn has_events(
        &self,
        client: &Client,
        site: &str,
        period: &Period,
    ) -> Result<bool, StatsError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Count {
            n: u64,
        }
        let row: Count = client
            .query_raw(&sql::visits::count_events(
                &self.database,
                site,
                period.from,
                period.to,
            ))
            .fetch_one()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(row.n > 0)
    }

    async fn fetch(&self, client: &Client, sql: &str) -> Result<Vec<Group>, StatsError> {
        tracing::trace!(sql, "stats sql");
        Ok(limited(client.query_raw(sql))
            .fetch_all::<GroupRow>()
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .map(Group::from_row)
            .collect())
    }

    async fn fetch_histograms(&self, client: &Client, sql: &str) -> Result<Vec<Group>, StatsError> {
        tracing::trace!(sql, "stats sql");
        Ok(limited(client.query_raw(sql))
            .fetch_all::<HistogramRow>()
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .map(Group::from_histogram_row)
            .collect())
    }
}

/// One report must not occupy ClickHouse for long: past this it is stopped there and the
/// caller told to ask for less (a filtered report over a long period).
fn limited(query: clickhouse::query::Query) -> clickhouse::query::Query {
    query.with_setting("max_execution_time", MAX_QUERY_SECONDS.to_string())
}

/// The engine's grouped query over visits: additive components and the histograms wanted.
/// `one_shard`: this shard answers alone, so its percentiles are final (see `Percentiles`).
fn grouped(
    scope: &sql::Scope,
    dims: &[Dimension],
    filters: &[query::Filter],
    wanted: Wanted,
    one_shard: bool,
) -> String {
    let percentiles = Percentiles::Histograms {
        durations: wanted.durations,
        page_seconds: wanted.page_seconds,
        components: wanted.components,
        one_shard,
    };
    if wanted.total {
        sql::visits::grouped_with_total(scope, dims, filters, percentiles)
    } else {
        sql::visits::grouped(scope, dims, filters, percentiles)
    }
}

/// The denominators of the conversion rates of one report (see `Stats::conversion_totals`).
#[derive(Debug, Default)]
struct Rates {
    /// Visitors of the whole query without goal and property filters.
    total: Option<f64>,
    /// The same per group of the other dimensions, keyed by their values.
    groups: Option<HashMap<Vec<String>, f64>>,
    /// Positions of the other dimensions in a row's values.
    positions: Vec<usize>,
}

impl Rates {
    /// `conversion_rate` or `group_conversion_rate` of a row whose converted visitors are
    /// `converted`: percent with two decimals, 0 when there is no visitor (Plausible's); `None`
    /// for other metrics.
    fn rate(&self, m: Metric, converted: f64, dims: &[String]) -> Option<f64> {
        let of = |total: f64| {
            Some(if total > 0.0 {
                (converted / total * 100.0 * 100.0).round() / 100.0
            } else {
                0.0
            })
        };
        match m {
            Metric::ConversionRate => of(self.total.unwrap_or(0.0)),
            Metric::GroupConversionRate => {
                let key: Vec<String> = self
                    .positions
                    .iter()
                    .filter_map(|&i| dims.get(i).cloned())
                    .collect();
                of(self
                    .groups
                    .as_ref()
                    .and_then(|g| g.get(&key))
                    .copied()
                    .unwrap_or(0.0))
            }
            _ => None,
        }
    }
}

/// Goals and custom properties a report names must exist for the site: a property key that
/// is not stored, or a goal name (`is`) that is not configured, is the caller's mistake (400),
/// not an empty answer.
fn check_conversions(q: &Query, site: &SiteStats) -> Result<(), StatsError> {
    if let Some(key) = q.prop_keys.iter().find(|k| !site.props.contains(k)) {
        return Err(StatsError::Invalid(format!(
            "event:props:{key}: the property {key:?} is not stored for this site; only the keys \
             in its props_allowlist ({}) and the built-in events' url and path are",
            if site.props.is_empty() {
                "none".to_string()
            } else {
                site.props.join(", ")
            }
        )));
    }
    fn goals_named(f: &Filter, site: &SiteStats) -> Result<(), StatsError> {
        match f {
            Filter::Leaf {
                op: Op::Is,
                dimension: Dimension::Goal,
                values,
                case_sensitive,
            } => {
                let known = Conversions {
                    goals: site.goals.clone(),
                    prop_keys: Vec::new(),
                };
                for v in values {
                    if known
                        .selected(Op::Is, std::slice::from_ref(v), *case_sensitive)
                        .is_empty()
                    {
                        return Err(StatsError::Invalid(format!(
                            "Invalid filters. The goal `{v}` is not configured for this site \
                             ([[sites.goals]] in the config)."
                        )));
                    }
                }
                Ok(())
            }
            Filter::Leaf { .. } => Ok(()),
            Filter::And(v) | Filter::Or(v) => v.iter().try_for_each(|f| goals_named(f, site)),
            Filter::Not(f) => goals_named(f, site),
        }
    }
    q.filters.iter().try_for_each(|f| goals_named(f, site))
}

/// The component that counts page visits (`sql::COMPONENTS`).
const PAGE_VISITS: usize = 6;

/// Adds the page visits per second on page of [`sql::rollups::page_seconds`] to the groups of
/// their page (`dims` = `[event:page]`) or to the one group of the whole site (`dims` empty),
/// making the group where there is none yet (with its count of page visits, which the median
/// is only defined with; a group read from `rollup_daily` has it already).
async fn add_page_seconds(
    client: &Client,
    sql: &str,
    dims: &[Dimension],
    groups: &mut Vec<Group>,
) -> Result<(), StatsError> {
    let rows: Vec<sql::rollups::PageSeconds> = client
        .query_raw(sql)
        .fetch_all()
        .await
        .map_err(|e| unavailable(&e))?;
    let mut at: HashMap<Vec<String>, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.dims.clone(), i))
        .collect();
    let existing = groups.len();
    for row in rows {
        let key = if dims.is_empty() {
            Vec::new()
        } else {
            vec![row.value]
        };
        let i = *at.entry(key.clone()).or_insert_with(|| {
            groups.push(Group {
                dims: key,
                comps: vec![0.0; ADDITIVE + 1],
                ..Group::default()
            });
            groups.len() - 1
        });
        *groups[i].page_seconds.entry(row.seconds).or_default() += row.page_visits;
        if i >= existing {
            groups[i].comps[PAGE_VISITS] += row.page_visits as f64;
        }
    }
    Ok(())
}

/// Adds the `(seconds, visits)` rows of `sql` to `histogram`.
async fn add_durations(
    client: &Client,
    sql: &str,
    histogram: &mut BTreeMap<u32, u64>,
) -> Result<(), StatsError> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Bucket {
        seconds: u32,
        visits: u64,
    }
    let buckets: Vec<Bucket> = client
        .query_raw(sql)
        .fetch_all()
        .await
        .map_err(|e| unavailable(&e))?;
    for b in buckets {
        *histogram.entry(b.seconds).or_default() += b.visits;
    }
    Ok(())
}

/// Realtime visitors and pageviews without filters or dimensions: answered from raw events
/// directly (the last minutes' visits are all still open anyway).
fn realtime_counts(q: &Query, dims: &[Dimension], wanted: Wanted) -> bool {
    q.date_range == query::DateRange::Realtime
        && q.filters.iter().all(Filter::is_visitor_constant)
        && dims.is_empty()
        && !wanted.page_seconds
        && !wanted.durations
        && q.metrics
            .iter()
            .all(|m| matches!(m, Metric::Visitors | Metric::Pageviews))
}

/// Whether the median time on page is read after the rows are ordered and cut, for the rows
/// shown alone ([`Stats::shown_medians`]): when the order does not depend on it and the
/// groups are plain dimension values (no comparison, goals or properties).
fn median_after_order(
    q: &Query,
    dims: &[Dimension],
    order: &[(query::OrderKey, query::Direction)],
) -> bool {
    q.metrics.contains(&Metric::TimeOnPageMedian)
        && !dims.is_empty()
        && q.comparison.is_none()
        && !q.counts_conversions()
        && !dims.iter().any(|d| d.is_conversion())
        && !order
            .iter()
            .any(|(k, _)| *k == query::OrderKey::Metric(Metric::TimeOnPageMedian))
}

/// The value at 0-based position ⌊q·n⌋ of the sorted durations (ClickHouse's quantileExact).
fn percentile(histogram: &BTreeMap<u32, u64>, q: f64) -> f64 {
    let n: u64 = histogram.values().sum();
    if n == 0 {
        return 0.0;
    }
    let position = ((q * n as f64).floor() as u64).min(n - 1);
    let mut seen = 0;
    for (seconds, count) in histogram {
        seen += count;
        if seen > position {
            return f64::from(*seconds);
        }
    }
    0.0
}

/// Longest a report query may run in ClickHouse.
pub const MAX_QUERY_SECONDS: u32 = 30;

fn unavailable(e: &clickhouse::error::Error) -> StatsError {
    // The SQL holds filter values from the request, never visitor data; still, log the code only.
    use crate::clickhouse_code::{describe, of, MEMORY_LIMIT_EXCEEDED, TIMEOUT_EXCEEDED};
    tracing::warn!(error = %describe(e), "stats query failed");
    match of(e) {
        // The query asks for too much; retrying won't help.
        Some(TIMEOUT_EXCEEDED | MEMORY_LIMIT_EXCEEDED) => StatsError::TooLarge,
        _ => StatsError::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_memory_limits_are_the_callers_too_large_query() {
        let err = |text: &str| clickhouse::error::Error::BadResponse(text.to_string());
        assert_eq!(
            unavailable(&err(
                "Code: 159, e.displayText() = DB::Exception: Timeout exceeded"
            )),
            StatsError::TooLarge
        );
        assert_eq!(
            unavailable(&err(
                "Code: 241, e.displayText() = DB::Exception: Memory limit"
            )),
            StatsError::TooLarge
        );
        assert_eq!(
            unavailable(&err("Code: 210, e.displayText() = Connection refused")),
            StatsError::Unavailable
        );
        assert_eq!(StatsError::TooLarge.status().as_u16(), 422);
    }

    #[test]
    fn percentiles_follow_quantile_exact() {
        // Durations 0, 10, 10, 30, 60: position ⌊q·5⌋ of the sorted list.
        let h: BTreeMap<u32, u64> = [(0, 1), (10, 2), (30, 1), (60, 1)].into_iter().collect();
        assert_eq!(percentile(&h, 0.5), 10.0);
        assert_eq!(percentile(&h, 0.75), 30.0);
        assert_eq!(percentile(&h, 0.9), 60.0);
        assert_eq!(percentile(&BTreeMap::new(), 0.5), 0.0);
    }
}
