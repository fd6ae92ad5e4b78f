//! A report's answer, typed, and how it is shaped from the per-group metric components: metrics
//! derived, rows ordered (ties broken by the dimension values, so pages do not shift between
//! requests), and each row compared with the matching row of an earlier period.

use super::period::Period;
use super::query::{Dimension, Direction, Metric, OrderKey, Query};

/// What the engine answers: the asked page of rows and what it resolved on the way.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The rows of the asked page, in order.
    pub rows: Vec<Row>,
    /// Rows before paging.
    pub total_rows: usize,
    /// Every label of the time-series dimension, when asked for (`time_labels`).
    pub time_labels: Option<Vec<String>>,
    /// The period the date range resolved to.
    pub period: Period,
    /// The dimensions as run (`time` resolved to `time:hour`, `time:day`, …).
    pub dimensions: Vec<Dimension>,
    /// The order as run (the default filled in).
    pub order: Vec<(OrderKey, Direction)>,
}

impl Answer {
    /// The resolved time-series dimension, if the query had one.
    pub fn time_dimension(&self) -> Option<Dimension> {
        self.dimensions.iter().copied().find(|d| d.is_time_series())
    }
}

/// One row: its dimension values as text (numbers for hour of day and weekday), its metric
/// values in the order asked (`None` where a metric has no value, JSON `null`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub dims: Vec<String>,
    pub metrics: Vec<Option<f64>>,
    /// With a comparison: the matching row of the earlier period.
    pub compared: Option<Compared>,
}

impl Row {
    /// Metric `i` as a number (0 for none).
    pub fn metric(&self, i: usize) -> f64 {
        self.metrics.get(i).copied().flatten().unwrap_or(0.0)
    }
}

/// The matching row of the earlier period and the change to it: percent rounded (100 when the
/// earlier value is 0 and the new is not, 0 when both are), points for `bounce_rate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub dims: Vec<String>,
    pub metrics: Vec<Option<f64>>,
    pub change: Vec<Option<i64>>,
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// The additive components (indexes into `sql::COMPONENTS`, then `ADDITIVE` for events) that
/// [`metric`] reads for `m`; the percentiles also need `visits` (2) or page visits (6), whose
/// histograms the engine asks for separately.
pub fn components(m: Metric) -> &'static [usize] {
    match m {
        Metric::Pageviews => &[0],
        Metric::Visitors | Metric::Percentage => &[1],
        Metric::ConversionRate | Metric::GroupConversionRate => &[1],
        Metric::Visits | Metric::Entries => &[2],
        Metric::Bounces | Metric::BounceRate => &[2, 3],
        Metric::VisitDuration => &[2, 4],
        Metric::ViewsPerVisit => &[2, 5],
        Metric::VisitDurationMedian | Metric::VisitDurationP75 | Metric::VisitDurationP90 => &[2],
        Metric::TimeOnPage => &[6, 7],
        Metric::TimeOnPageMedian => &[6],
        Metric::ScrollDepth => &[8, 9],
        Metric::Events => &[super::sql::visits::ADDITIVE],
    }
}

/// A metric from the components of `sql::COMPONENTS` (then the median of time on page, then
/// events). The conversion rates need other queries' visitors: the engine computes them.
pub fn metric(m: Metric, c: &[f64], total_visitors: Option<f64>) -> Option<f64> {
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
        // After the median time on page; readers of `COMPONENTS` alone (Grafana) have none.
        Metric::Events => *c.get(14)?,
        _ => return None,
    })
}

pub fn effective_order(q: &Query, dims: &[Dimension]) -> Vec<(OrderKey, Direction)> {
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
pub fn sort(rows: &mut [Row], order: &[(OrderKey, Direction)], q: &Query, dims: &[Dimension]) {
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

/// The comparison of one row: the matching row of the other period, and the change.
///
/// Time-series buckets match by position (the 3rd day with the 3rd day); other dimensions by value.
pub fn compare(
    row: &Row,
    dims: &[Dimension],
    period: &Period,
    prev: &Period,
    prev_rows: &[Row],
    metrics: &[Metric],
) -> Compared {
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
    let change = metrics
        .iter()
        .zip(row.metrics.iter().zip(&prev_values))
        .map(|(m, (new, old))| match (new, old) {
            (Some(new), Some(old)) => Some(if *m == Metric::BounceRate {
                (new - old) as i64
            } else if *old == 0.0 {
                if *new == 0.0 {
                    0
                } else {
                    100
                }
            } else {
                ((new - old) / old * 100.0).round() as i64
            }),
            _ => None,
        })
        .collect();
    Compared {
        dims: key,
        metrics: prev_values,
        change,
    }
}
