//! The stats API (`POST /api/v2/query`): a Plausible-v2-shaped query in, JSON numbers out.
//!
//! `query` parses and validates the request, `period` turns its date range into UTC instants in
//! the site's time zone, `sql` builds the one ClickHouse query (visits included), and this file
//! turns the per-group components into metrics, orders, pages and compares them. Metric
//! definitions are in the README ("Stats API"); the rounding is Rust's (half away from zero).

pub mod access;
pub mod period;
pub mod query;
pub mod sql;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use clickhouse::Client;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::error::StatsError;
use crate::metrics::{Metrics, Source};
use access::Access;
use period::Period;
use query::{Comparison, Dimension, Direction, Metric, OrderKey, Query};

struct SiteStats {
    tz: TimeZone,
    tz_name: String,
}

/// The stats service shared by the HTTP handlers.
pub struct Stats {
    client: Client,
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
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct GroupRow {
    dims: Vec<String>,
    comps: Vec<f64>,
}

/// One answer row before paging: dimension values and metric values (`None` = null).
struct Row {
    dims: Vec<String>,
    metrics: Vec<Option<f64>>,
}

impl Stats {
    pub fn new(config: &Config, client: Client, metrics: Arc<Metrics>) -> Stats {
        let sites = config
            .sites
            .iter()
            .map(|s| {
                let tz = TimeZone::get(&s.time_zone).unwrap_or(TimeZone::UTC);
                (
                    s.domain.clone(),
                    SiteStats {
                        tz,
                        tz_name: s.time_zone.clone(),
                    },
                )
            })
            .collect();
        Stats {
            client,
            metrics,
            use_rollups: config.rollups.enabled,
            database: config.clickhouse.database.clone(),
            sites,
            access: Access::from_config(config),
            timeout_seconds: config.visits.timeout_minutes * 60,
            bounce_ms: config.visits.bounce_engaged_seconds * 1000,
            aggregate_only: config.privacy.aggregate_only,
        }
    }

    /// Checks access to the query's site: unknown sites and refused tokens look the same.
    pub fn authorize(&self, site_id: &str, authorization: Option<&str>) -> Result<(), StatsError> {
        if !self.sites.contains_key(site_id) {
            return Err(StatsError::Unauthorized);
        }
        self.access.check(site_id, authorization)
    }

    /// Runs an authorized query at `now`.
    pub async fn run(&self, q: &Query, now: Timestamp) -> Result<Value, StatsError> {
        let started = Instant::now();
        let site = self.sites.get(&q.site_id).ok_or(StatsError::Unauthorized)?;
        if self.aggregate_only {
            aggregate_supports(q)?;
        }
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

        let mut rows = self.rows(q, site, &period, &dims).await?;
        sort(&mut rows, &order, q, &dims);
        let total_rows = rows.len();
        let page: Vec<Row> = rows.into_iter().skip(q.offset).take(q.limit).collect();

        let comparison = match q.comparison {
            Some(mode) => {
                let prev = period.compared(mode)?;
                let prev_rows = self.rows(q, site, &prev, &dims).await?;
                Some((prev, prev_rows))
            }
            None => None,
        };

        let mut results = Vec::with_capacity(page.len());
        for row in &page {
            let mut r = Map::new();
            r.insert("metrics".into(), metric_values(&q.metrics, &row.metrics));
            r.insert("dimensions".into(), dimension_values(&dims, &row.dims));
            if let Some((prev, prev_rows)) = &comparison {
                r.insert(
                    "comparison".into(),
                    compare(row, &dims, &period, prev, prev_rows, &q.metrics),
                );
            }
            results.push(Value::Object(r));
        }

        let mut meta = Map::new();
        if q.time_labels {
            if let Some(d) = dims.iter().find(|d| d.is_time_series()) {
                meta.insert("time_labels".into(), json!(period.labels(*d)));
            }
        }
        if q.total_rows {
            meta.insert("total_rows".into(), json!(total_rows));
        }
        tracing::debug!(
            site = %q.site_id,
            rows = total_rows,
            ms = started.elapsed().as_millis() as u64,
            "stats query"
        );
        Ok(json!({
            "results": results,
            "meta": meta,
            "query": echo(q, &period, &dims, &order),
        }))
    }

    /// Distinct visitors with a pageview in the last 5 minutes (Plausible's v1 realtime number).
    pub async fn realtime_visitors(
        &self,
        site_id: &str,
        now: Timestamp,
    ) -> Result<u64, StatsError> {
        let q = Query {
            site_id: site_id.to_string(),
            metrics: vec![Metric::Visitors],
            date_range: query::DateRange::Realtime,
            dimensions: Vec::new(),
            filters: Vec::new(),
            filters_json: Value::Array(Vec::new()),
            order_by: Vec::new(),
            time_labels: false,
            total_rows: false,
            comparison: None,
            limit: 1,
            offset: 0,
        };
        let answer = self.run(&q, now).await?;
        Ok(answer["results"][0]["metrics"][0].as_u64().unwrap_or(0))
    }

    async fn first_event(&self, site: &str) -> Result<Option<Timestamp>, StatsError> {
        let row: sql::FirstEvent = self
            .client
            .query_raw(&sql::first_event(&self.database, site))
            .fetch_one()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok((row.n > 0)
            .then(|| Timestamp::from_second(i64::from(row.t)).ok())
            .flatten())
    }

    /// All groups of the period with their metrics (before ordering and paging).
    async fn rows(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
    ) -> Result<Vec<Row>, StatsError> {
        let median = q.metrics.contains(&Metric::TimeOnPageMedian);
        let grouped = self.groups(q, site, period, dims, median).await?;
        let total_visitors = if q.metrics.contains(&Metric::Percentage) {
            if dims.is_empty() {
                grouped.first().map(|r| r.comps[1])
            } else {
                self.groups(q, site, period, &[], false)
                    .await?
                    .first()
                    .map(|r| r.comps[1])
            }
        } else {
            None
        };
        let mut rows: Vec<Row> = grouped
            .into_iter()
            .map(|g| Row {
                metrics: q
                    .metrics
                    .iter()
                    .map(|m| metric(*m, &g.comps, total_visitors))
                    .collect(),
                dims: g.dims,
            })
            .collect();
        // An aggregate over an empty period still answers one row of zeros, as Plausible does.
        if dims.is_empty() && rows.is_empty() {
            let zeros = vec![0.0; sql::COMPONENTS.len() + 1];
            rows.push(Row {
                dims: Vec::new(),
                metrics: q
                    .metrics
                    .iter()
                    .map(|m| metric(*m, &zeros, total_visitors))
                    .collect(),
            });
        }
        Ok(rows)
    }

    fn scope<'a>(&'a self, q: &'a Query, site: &'a SiteStats, period: &Period) -> sql::Scope<'a> {
        sql::Scope {
            database: &self.database,
            site: &q.site_id,
            tz: &site.tz_name,
            from: period.from,
            to: period.to,
            timeout_seconds: self.timeout_seconds,
            bounce_ms: self.bounce_ms,
            pages_grouped: false,
            first_date: period.from.to_zoned(period.tz.clone()).date(),
        }
    }

    /// The metric components per group: from rollups where they can answer, else raw events.
    async fn groups(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        median: bool,
    ) -> Result<Vec<GroupRow>, StatsError> {
        if self.aggregate_only {
            self.count_query("rollup");
            return self.aggregate_groups(q, period, dims).await;
        }
        if let Some(rows) = self.rollup_groups(q, site, period, dims, median).await? {
            self.count_query("rollup");
            return Ok(rows);
        }
        self.count_query("raw");
        let scope = self.scope(q, site, period);
        self.fetch(&sql::grouped(&scope, dims, &q.filters, median))
            .await
    }

    fn count_query(&self, source: &'static str) {
        self.metrics
            .stats_queries
            .get_or_create(&Source { source })
            .inc();
    }

    /// Rollups answer when there is no filter, the dimensions are rolled up, the period is whole
    /// days and its first days are rolled up; the days after the last rolled-up one (today,
    /// typically) are read from raw events and added, as every component is a sum over days.
    async fn rollup_groups(
        &self,
        q: &Query,
        site: &SiteStats,
        period: &Period,
        dims: &[Dimension],
        median: bool,
    ) -> Result<Option<Vec<GroupRow>>, StatsError> {
        let percentiles = q.metrics.iter().any(|m| {
            matches!(
                m,
                Metric::VisitDurationMedian | Metric::VisitDurationP75 | Metric::VisitDurationP90
            )
        });
        if !self.use_rollups || !q.filters.is_empty() || median || (percentiles && !dims.is_empty())
        {
            return Ok(None);
        }
        let Some((first, last)) = period.whole_days() else {
            return Ok(None);
        };
        if sql::rollup_grouped(&self.database, &q.site_id, first, last, dims).is_none() {
            return Ok(None);
        }
        let rolled: HashSet<String> = self
            .client
            .query_raw(&sql::rolled_days(&self.database, &q.site_id, first, last))
            .fetch_all::<sql::DayRow>()
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .map(|r| r.day_text)
            .collect();
        // Days before the site's first rolled-up day count as rolled up when no event falls in
        // them: a "12mo" report on a site with three months of history must not fall back to
        // raw events for all of it.
        let Some(first_rolled) = rolled
            .iter()
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
            if self.has_events(&q.site_id, &before).await? {
                return Ok(None);
            }
        }
        let mut rolled_until = None;
        let mut d = first_rolled;
        while d <= last && rolled.contains(&d.to_string()) {
            rolled_until = Some(d);
            d = match d.tomorrow() {
                Ok(n) => n,
                Err(_) => break,
            };
        }
        let Some(until) = rolled_until else {
            return Ok(None);
        };
        let rollup_sql = sql::rollup_grouped(&self.database, &q.site_id, first, until, dims)
            .ok_or(StatsError::Unavailable)?;
        let mut rows = self.fetch(&rollup_sql).await?;
        let mut histogram = BTreeMap::new();
        if percentiles {
            let sql = sql::rollup_durations(&self.database, &q.site_id, first, until);
            self.add_durations(&sql, &mut histogram).await?;
        }
        if until < last {
            let rest_first = until.tomorrow().map_err(|_| StatsError::Unavailable)?;
            let rest = Period::days(rest_first, last, &period.tz)?;
            let mut scope = self.scope(q, site, &rest);
            // Week labels do not start before the whole period's first day, not the rest's.
            scope.first_date = first;
            let raw = self.fetch(&sql::grouped(&scope, dims, &[], false)).await?;
            add_rows(&mut rows, raw);
            if percentiles {
                self.add_durations(&sql::durations(&scope), &mut histogram)
                    .await?;
            }
        }
        if percentiles {
            if let Some(row) = rows.first_mut() {
                for (i, q) in [(10, 0.5), (11, 0.75), (12, 0.9)] {
                    row.comps[i] = percentile(&histogram, q);
                }
            }
        }
        Ok(Some(rows))
    }

    /// Aggregate-only mode: the local days the period touches, read from the folded counts
    /// (a period that starts or ends inside a day reads that whole day: counts have no time
    /// finer than the local hour).
    async fn aggregate_groups(
        &self,
        q: &Query,
        period: &Period,
        dims: &[Dimension],
    ) -> Result<Vec<GroupRow>, StatsError> {
        let first = period.from.to_zoned(period.tz.clone()).date();
        let end = period
            .to
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap_or(period.to);
        let last = end.to_zoned(period.tz.clone()).date().max(first);
        let sql = sql::rollup_grouped(&self.database, &q.site_id, first, last, dims).ok_or_else(
            || {
                StatsError::Invalid(format!(
                    "#/dimensions: this combination is not kept in aggregate-only mode \
                     (privacy.aggregate_only); ask for one dimension at a time{}",
                    AGGREGATE_HINT
                ))
            },
        )?;
        self.fetch(&sql).await
    }

    /// Whether the site has any stored event in the period (a primary-key range read).
    async fn has_events(&self, site: &str, period: &Period) -> Result<bool, StatsError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Count {
            n: u64,
        }
        let row: Count = self
            .client
            .query_raw(&sql::count_events(
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

    async fn add_durations(
        &self,
        sql: &str,
        histogram: &mut BTreeMap<u32, u64>,
    ) -> Result<(), StatsError> {
        #[derive(Deserialize, clickhouse::Row)]
        struct Bucket {
            seconds: u32,
            visits: u64,
        }
        let buckets: Vec<Bucket> = self
            .client
            .query_raw(sql)
            .fetch_all()
            .await
            .map_err(|e| unavailable(&e))?;
        for b in buckets {
            *histogram.entry(b.seconds).or_default() += b.visits;
        }
        Ok(())
    }

    async fn fetch(&self, sql: &str) -> Result<Vec<GroupRow>, StatsError> {
        tracing::trace!(sql, "stats sql");
        self.client
            .query_raw(sql)
            // One report must not occupy ClickHouse for long: past this it is stopped there
            // and the caller told to ask for less (a filtered report over a long period).
            .with_setting("max_execution_time", MAX_QUERY_SECONDS.to_string())
            .fetch_all::<GroupRow>()
            .await
            .map_err(|e| unavailable(&e))
    }
}

const AGGREGATE_HINT: &str =
    " (available: pageviews, time_on_page, scroll_depth by page, host, source, referrer, UTM, \
     country, device, browser, OS, time, hour of day and weekday; see GET /privacy)";

/// Aggregate-only mode keeps no visits: refuse what needs them, saying what is available.
fn aggregate_supports(q: &Query) -> Result<(), StatsError> {
    let refuse = |what: String| {
        Err(StatsError::Invalid(format!(
            "{what} needs individual events, which this tally does not store: it runs in \
             aggregate-only mode (privacy.aggregate_only){AGGREGATE_HINT}"
        )))
    };
    if let Some(m) = q
        .metrics
        .iter()
        .find(|m| crate::aggregate::UNAVAILABLE_METRICS.contains(m))
    {
        return refuse(format!("#/metrics: {}", m.name()));
    }
    if let Some(d) = q
        .dimensions
        .iter()
        .find(|d| crate::aggregate::UNAVAILABLE_DIMENSIONS.contains(d))
    {
        return refuse(format!("#/dimensions: {}", d.name()));
    }
    if !q.filters.is_empty() {
        return refuse("#/filters: filtering".into());
    }
    if matches!(
        q.date_range,
        query::DateRange::All | query::DateRange::Realtime
    ) {
        return refuse("#/date_range: this date range".into());
    }
    Ok(())
}

/// Adds `more` into `rows`, summing the components of rows with the same dimension values.
fn add_rows(rows: &mut Vec<GroupRow>, more: Vec<GroupRow>) {
    let mut index: HashMap<Vec<String>, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.dims.clone(), i))
        .collect();
    for r in more {
        match index.get(&r.dims) {
            Some(&i) => {
                for (a, b) in rows[i].comps.iter_mut().zip(&r.comps) {
                    *a += b;
                }
            }
            None => {
                index.insert(r.dims.clone(), rows.len());
                rows.push(r);
            }
        }
    }
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
    let code = crate::storage::error_code(e);
    tracing::warn!(error = %code, "stats query failed");
    match code.as_str() {
        // TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED: the query asks for too much, retrying won't help.
        "Code: 159" | "Code: 241" => StatsError::TooLarge,
        _ => StatsError::Unavailable,
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// A metric from the components of `sql::COMPONENTS` (and the median of time on page after them).
fn metric(m: Metric, c: &[f64], total_visitors: Option<f64>) -> Option<f64> {
    let (visits, page_visits) = (c[2], c[6]);
    let per_visit = |x: f64| if visits == 0.0 { 0.0 } else { x / visits };
    Some(match m {
        Metric::Pageviews => c[0],
        Metric::Visitors => c[1],
        Metric::Visits | Metric::Entries => visits,
        Metric::Bounces => c[3],
        Metric::BounceRate => round(per_visit(c[3]) * 100.0, 0),
        Metric::VisitDuration => round(per_visit(c[4]), 0),
        Metric::ViewsPerVisit => round(per_visit(c[5]), 2),
        Metric::TimeOnPage if page_visits > 0.0 => round(c[7] / page_visits / 1000.0, 0),
        Metric::ScrollDepth if c[8] > 0.0 => round(c[9] / c[8], 0),
        Metric::Percentage => match total_visitors {
            Some(t) if t > 0.0 => round(c[1] / t * 100.0, 1),
            _ => return None,
        },
        Metric::VisitDurationMedian if visits > 0.0 => c[10],
        Metric::VisitDurationP75 if visits > 0.0 => c[11],
        Metric::VisitDurationP90 if visits > 0.0 => c[12],
        Metric::TimeOnPageMedian if page_visits > 0.0 => *c.get(13)?,
        _ => return None,
    })
}

fn effective_order(q: &Query, dims: &[Dimension]) -> Vec<(OrderKey, Direction)> {
    let resolve = |k: OrderKey| match k {
        OrderKey::Dimension(Dimension::Time) => dims
            .iter()
            .find(|d| d.is_time_series())
            .map(|d| OrderKey::Dimension(*d))
            .unwrap_or(k),
        other => other,
    };
    if !q.order_by.is_empty() {
        return q.order_by.iter().map(|(k, d)| (resolve(*k), *d)).collect();
    }
    let mut order = Vec::new();
    if let Some(t) = dims.iter().find(|d| d.is_time_series()) {
        order.push((OrderKey::Dimension(*t), Direction::Asc));
    }
    order.push((OrderKey::Metric(q.metrics[0]), Direction::Desc));
    order
}

fn cmp_dim(d: Dimension, a: &str, b: &str) -> std::cmp::Ordering {
    if d.is_numeric() {
        let n = |s: &str| s.parse::<i64>().unwrap_or(i64::MAX);
        n(a).cmp(&n(b))
    } else {
        a.cmp(b)
    }
}

/// Orders rows by the requested keys, then by every dimension ascending (stable pages).
fn sort(rows: &mut [Row], order: &[(OrderKey, Direction)], q: &Query, dims: &[Dimension]) {
    rows.sort_by(|a, b| {
        for (key, dir) in order {
            let o = match key {
                OrderKey::Metric(m) => {
                    let i = q.metrics.iter().position(|x| x == m).unwrap_or(0);
                    // Nulls sort as the smallest value.
                    let v = |r: &Row| r.metrics[i].unwrap_or(f64::NEG_INFINITY);
                    v(a).total_cmp(&v(b))
                }
                OrderKey::Dimension(d) => match dims.iter().position(|x| x == d) {
                    Some(i) => cmp_dim(*d, &a.dims[i], &b.dims[i]),
                    None => std::cmp::Ordering::Equal,
                },
            };
            let o = if *dir == Direction::Desc {
                o.reverse()
            } else {
                o
            };
            if o.is_ne() {
                return o;
            }
        }
        for (i, d) in dims.iter().enumerate() {
            let o = cmp_dim(*d, &a.dims[i], &b.dims[i]);
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn number(m: Option<Metric>, v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(x)
            if x.fract() == 0.0
                && m != Some(Metric::ViewsPerVisit)
                && m != Some(Metric::Percentage) =>
        {
            json!(x as i64)
        }
        Some(x) => json!(x),
    }
}

fn metric_values(metrics: &[Metric], values: &[Option<f64>]) -> Value {
    Value::Array(
        metrics
            .iter()
            .zip(values)
            .map(|(m, v)| number(Some(*m), *v))
            .collect(),
    )
}

fn dimension_values(dims: &[Dimension], values: &[String]) -> Value {
    Value::Array(
        dims.iter()
            .zip(values)
            .map(|(d, v)| match (d.is_numeric(), v.parse::<i64>()) {
                (true, Ok(n)) => json!(n),
                _ => json!(v),
            })
            .collect(),
    )
}

/// The comparison object of one row: the matching row of the other period.
///
/// Time-series buckets match by position (the 3rd day with the 3rd day); other dimensions by value.
fn compare(
    row: &Row,
    dims: &[Dimension],
    period: &Period,
    prev: &Period,
    prev_rows: &[Row],
    metrics: &[Metric],
) -> Value {
    let mut key = row.dims.clone();
    // Hours and days of whole-day periods map to the same local time the periods' offset earlier
    // (so 10:00 compares with 10:00 even across a DST day); other buckets map by position.
    let shift = match (period.whole_days(), prev.whole_days()) {
        (Some((a, _)), Some((b, _))) => a.until(b).ok().map(|s| s.get_days()),
        _ => None,
    };
    for (i, d) in dims.iter().enumerate() {
        if let (Some(days), Dimension::Hour | Dimension::Day) = (shift, d) {
            let value = &row.dims[i];
            let (date, rest) = value.split_at(value.len().min(10));
            if let Ok(date) = date.parse::<jiff::civil::Date>() {
                if let Ok(shifted) = date.checked_add(jiff::Span::new().days(days)) {
                    key[i] = format!("{shifted}{rest}");
                    continue;
                }
            }
        }
        if d.is_time_series() {
            let now_labels = period.labels(*d);
            let prev_labels = prev.labels(*d);
            key[i] = now_labels
                .iter()
                .position(|l| *l == row.dims[i])
                .and_then(|p| prev_labels.get(p).cloned())
                .unwrap_or_default();
        }
    }
    let matched = prev_rows.iter().find(|r| r.dims == key);
    let prev_values: Vec<Option<f64>> = match matched {
        Some(r) => r.metrics.clone(),
        None => metrics
            .iter()
            .map(|m| match m {
                Metric::ScrollDepth
                | Metric::TimeOnPage
                | Metric::TimeOnPageMedian
                | Metric::VisitDurationMedian
                | Metric::VisitDurationP75
                | Metric::VisitDurationP90
                | Metric::Percentage => None,
                _ => Some(0.0),
            })
            .collect(),
    };
    let change: Vec<Value> = metrics
        .iter()
        .zip(row.metrics.iter().zip(&prev_values))
        .map(|(m, (new, old))| match (new, old) {
            (Some(new), Some(old)) => {
                if *m == Metric::BounceRate {
                    json!((new - old) as i64)
                } else if *old == 0.0 {
                    json!(if *new == 0.0 { 0 } else { 100 })
                } else {
                    json!(((new - old) / old * 100.0).round() as i64)
                }
            }
            _ => Value::Null,
        })
        .collect();
    json!({
        "dimensions": dimension_values(dims, &key),
        "metrics": metric_values(metrics, &prev_values),
        "change": change,
    })
}

fn echo(q: &Query, period: &Period, dims: &[Dimension], order: &[(OrderKey, Direction)]) -> Value {
    let mut include = Map::new();
    if q.time_labels {
        include.insert("time_labels".into(), json!(true));
    }
    if q.total_rows {
        include.insert("total_rows".into(), json!(true));
    }
    if let Some(c) = q.comparison {
        let mode = match c {
            Comparison::PreviousPeriod => "previous_period",
            Comparison::YearOverYear => "year_over_year",
        };
        include.insert("comparisons".into(), json!({ "mode": mode }));
    }
    let order: Vec<Value> = order
        .iter()
        .map(|(k, d)| {
            let name = match k {
                OrderKey::Metric(m) => m.name(),
                OrderKey::Dimension(d) => d.name(),
            };
            json!([name, if *d == Direction::Asc { "asc" } else { "desc" }])
        })
        .collect();
    json!({
        "site_id": q.site_id,
        "metrics": q.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "date_range": period.echo(),
        "filters": q.filters_json,
        "dimensions": dims.iter().map(|d| d.name()).collect::<Vec<_>>(),
        "order_by": order,
        "include": include,
        "pagination": {"offset": q.offset, "limit": q.limit},
    })
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
