//! A report as one SQL statement, for readers that cannot run the engine's Rust (the Grafana
//! dashboards): a typed [`Query`] and a [`Scope`] whose bounds may be expressions in, SQL whose
//! rows are the engine's answer out.
//!
//! The engine chooses in Rust which days it reads from the rollups and adds the rest from raw
//! events; here the same is done in SQL, with the engine's builders:
//!
//! - the local days wholly inside the period that are rolled up come from the rollup tables, at
//!   the version their marker names ([`rollups::Days::inside`], [`rollups::grouped_over`]);
//! - every other unit row of the period comes from the engine's unit rows ([`visits::grouped`]:
//!   stored visits and the open tail built from raw events);
//! - the metric components of both are summed per group (each is a sum over local days:
//!   visitors are distinct per visitor and local day), then the metrics are computed with the
//!   formulas of [`metrics`] and the rows ordered and cut as the engine's answer is.
//!
//! Percentiles come from visits per second of duration (rollups and unit rows), as the engine
//! computes them for rolled-up days.

use std::fmt::Write as _;

use super::{dimensions, metrics, rollups, visits, Scope, Sql, COMPONENTS};
use crate::stats::answer::effective_order;
use crate::stats::query::{Dimension, Direction, Metric, OrderKey, Query};

/// A query this SQL cannot answer; the engine can.
#[derive(Debug, thiserror::Error)]
#[error("not answerable in one SQL statement: {0}")]
pub struct Unsupported(pub String);

/// `time` is resolved by the period's length, as `Period::time_dimension` does: hours up to
/// this many hours, else days. (The engine goes on to weeks past 40 days and months past a
/// year; here days are kept, as the dashboards have always shown them.)
pub const HOURLY_UP_TO_HOURS: u32 = 48;

/// The percentile metrics and their levels (the levels of `COMPONENTS` 10..=12).
const PERCENTILES: [(Metric, &str); 3] = [
    (Metric::VisitDurationMedian, "0.5"),
    (Metric::VisitDurationP75, "0.75"),
    (Metric::VisitDurationP90, "0.9"),
];

/// The statement of `q`'s rows: one column per dimension, named `names` (its values as the
/// engine labels them), then one column per metric, named as in the stats API; ordered as the
/// engine orders them, `q.offset` and `q.limit` applied. With `q.time_labels`, every label of
/// the time dimension has a row (zero where there is no data). The site and the period are the
/// scope's: `q.site_id` and `q.date_range` are not read.
pub fn rows(q: &Query, s: &Scope, names: &[&str]) -> Result<String, Unsupported> {
    if names.len() != q.dimensions.len() {
        return Err(Unsupported(format!(
            "{} column names for {} dimensions",
            names.len(),
            q.dimensions.len()
        )));
    }
    if !q.filters.is_empty() {
        return Err(Unsupported("filters (the engine reads raw events)".into()));
    }
    if q.comparison.is_some() {
        return Err(Unsupported("comparisons".into()));
    }
    for m in [Metric::Percentage, Metric::TimeOnPageMedian] {
        if q.metrics.contains(&m) {
            return Err(Unsupported(m.name().into()));
        }
    }
    let body = if q.metrics.iter().any(|m| level(*m).is_some()) {
        percentiles(q, s)?
    } else {
        grouped(q, s, names)?
    };
    Ok(format!("{body}{}", order_and_page(q, names)))
}

/// The metrics over summed components, one row per group.
fn grouped(q: &Query, s: &Scope, names: &[&str]) -> Result<String, Unsupported> {
    let mut branches = Vec::new();
    let variants = variants(q, s)?;
    let days = rollups::Days::inside(s);
    // Rollups answer the rolled-up days when they keep every dimension asked (the same
    // condition as the engine's); else every day is read from raw events.
    let rolled: Option<Vec<String>> = variants
        .iter()
        .map(|v| {
            let days = match &v.when {
                Some(cond) => days.and(cond),
                None => days.clone(),
            };
            rollups::grouped_over(&days, &v.dims)
        })
        .collect();
    let covered = Sql(rollups::covered(&days));
    for v in &variants {
        if q.time_labels {
            branches.push((
                "every label of the period, so that buckets without data are 0",
                labels(v, s)?,
            ));
        }
    }
    if let Some(rolled) = &rolled {
        for sql in rolled {
            branches.push(("rolled-up days, from the rollups", sql.clone()));
        }
    }
    for v in &variants {
        let raw = raw_scope(s, v.when.as_ref(), rolled.is_some().then_some(&covered));
        branches.push((
            "the other days, visits from raw events",
            visits::grouped(
                &raw,
                &v.dims,
                &[],
                visits::Percentiles::Values {
                    time_on_page_median: false,
                },
            ),
        ));
    }
    let c = |i: usize| format!("c[{}]", i + 1);
    let mut columns: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("dims[{}] AS {n}", i + 1))
        .collect();
    columns.extend(
        q.metrics
            .iter()
            .map(|m| format!("{} AS {}", metrics::metric(*m, &c, None), m.name())),
    );
    Ok(format!(
        "SELECT
    {columns}
FROM
(
    SELECT dims, sumForEach(comps) AS c
    FROM
    (
{union}
    )
    GROUP BY dims
)",
        columns = columns.join(",\n    "),
        union = union(&branches, 8),
    ))
}

/// One way the dimensions resolve, and when (`time` becomes hours or days by the period's
/// length, decided in SQL).
struct Variant {
    dims: Vec<Dimension>,
    when: Option<Sql>,
}

fn variants(q: &Query, s: &Scope) -> Result<Vec<Variant>, Unsupported> {
    if !q.dimensions.contains(&Dimension::Time) {
        return Ok(vec![Variant {
            dims: q.dimensions.clone(),
            when: None,
        }]);
    }
    let hourly = Sql(format!(
        "intDiv(toUInt32({}) - toUInt32({}), 3600) <= {HOURLY_UP_TO_HOURS}",
        s.to, s.from
    ));
    let with = |d: Dimension| -> Vec<Dimension> {
        q.dimensions
            .iter()
            .map(|x| if *x == Dimension::Time { d } else { *x })
            .collect()
    };
    Ok(vec![
        Variant {
            dims: with(Dimension::Hour),
            when: Some(Sql(format!("({hourly})"))),
        },
        Variant {
            dims: with(Dimension::Day),
            when: Some(Sql(format!("NOT ({hourly})"))),
        },
    ])
}

/// The scope of the unit-row part: the unit rows outside the days `covered` reads (when it
/// reads any), only when `when` holds (on the raw events read for the open tail too).
fn raw_scope<'a>(s: &Scope<'a>, when: Option<&Sql>, covered: Option<&Sql>) -> Scope<'a> {
    let mut events = Vec::new();
    let mut units = Vec::new();
    if let Some(cond) = when {
        events.push(cond.to_string());
        units.push(cond.to_string());
    }
    if let Some(days) = covered {
        units.push(format!(
            "toDate(ts, {tz}) NOT IN (\n{}\n)",
            indent(days.as_str(), 4),
            tz = s.tz
        ));
    }
    let join = |v: Vec<String>| (!v.is_empty()).then(|| Sql(v.join("\n                AND ")));
    Scope {
        events_where: join(events),
        units_where: join(units),
        ..s.clone()
    }
}

/// Rows of zero components, one per label of the time dimension of `v` over the period: the
/// SQL form of `Period::labels`, each label computed by the engine's dimension SQL from an
/// instant inside its bucket.
fn labels(v: &Variant, s: &Scope) -> Result<String, Unsupported> {
    let (from, to, tz) = (&s.from, &s.to, &s.tz);
    let mut dims = Vec::new();
    let mut instants = None;
    for d in &v.dims {
        let (ts, n) = match d {
            // Every UTC hour from the start, the last one clamped into the period: each local
            // hour is met at least once (duplicates are summed away by the grouping).
            Dimension::Hour => (
                format!("least({from} + number * 3600, {to} - 1)"),
                format!("intDiv(toUInt32({to}) - toUInt32({from}), 3600) + 2"),
            ),
            Dimension::Day => (
                format!("toDateTime(toDate({from}, {tz}) + number, {tz})"),
                format!("toDate({to} - 1, {tz}) - toDate({from}, {tz}) + 1"),
            ),
            d if d.is_time_series() => {
                return Err(Unsupported(format!("time labels of {}", d.name())))
            }
            _ => return Err(Unsupported("time labels with other dimensions".into())),
        };
        instants = Some((ts, n));
        dims.push(format!("toString({})", dimensions::dimension(*d, s)));
    }
    let Some((ts, n)) = instants else {
        return Err(Unsupported("time labels without a time dimension".into()));
    };
    // At least one row: ClickHouse 18.16 reads `numbers(0)` as numbers without end. A variant
    // that does not apply is left out by its condition instead.
    let when = match &v.when {
        Some(cond) => format!("\nWHERE {cond}"),
        None => String::new(),
    };
    Ok(format!(
        "SELECT [{dims}] AS dims, [{zeros}] AS comps
FROM (SELECT {ts} AS ts FROM numbers(toUInt64(greatest({n}, 1)))){when}",
        dims = dims.join(", "),
        zeros = vec!["toFloat64(0)"; COMPONENTS.len()].join(", "),
    ))
}

/// The level of a percentile metric.
fn level(m: Metric) -> Option<&'static str> {
    PERCENTILES.iter().find(|(p, _)| *p == m).map(|(_, l)| *l)
}

/// Percentile metrics (and visits) without dimensions: from visits per second of duration, the
/// duration at 0-based position ⌊q·n⌋ of the sorted durations, as the engine computes it.
fn percentiles(q: &Query, s: &Scope) -> Result<String, Unsupported> {
    if !q.dimensions.is_empty() {
        return Err(Unsupported("percentiles with dimensions".into()));
    }
    if let Some(m) = q
        .metrics
        .iter()
        .find(|m| level(**m).is_none() && !matches!(m, Metric::Visits | Metric::Entries))
    {
        return Err(Unsupported(format!(
            "{} together with percentiles",
            m.name()
        )));
    }
    let days = rollups::Days::inside(s);
    let covered = Sql(rollups::covered(&days));
    let raw = raw_scope(s, None, Some(&covered));
    let branches = [
        (
            "rolled-up days, from the rollups",
            rollups::durations_over(&days),
        ),
        (
            "the other days, visits from raw events",
            visits::durations(&raw, &[]),
        ),
    ];
    // Components as `metrics::metric` reads them: visits, and the three percentiles.
    let c = |i: usize| match i {
        2 => "total".to_string(),
        10..=12 => format!(
            "secs[arrayFirstIndex(x -> x > floor({} * total), cum)]",
            PERCENTILES[i - 10].1
        ),
        _ => "0".to_string(),
    };
    let columns: Vec<String> = q
        .metrics
        .iter()
        .map(|m| format!("{} AS {}", metrics::metric(*m, &c, None), m.name()))
        .collect();
    Ok(format!(
        "SELECT
    {columns}
FROM
(
    SELECT
        arraySort(x -> x.1, groupArray((seconds, visits))) AS h,
        arrayMap(x -> x.1, h) AS secs,
        arrayCumSum(arrayMap(x -> x.2, h)) AS cum,
        sum(visits) AS total
    FROM
    (
        SELECT seconds, sum(visits) AS visits
        FROM
        (
{union}
        )
        GROUP BY seconds
    )
)",
        columns = columns.join(",\n    "),
        union = union(&branches, 12),
    ))
}

/// `ORDER BY` and `LIMIT` of the engine's answer: the query's order (or the default), nulls
/// smallest, ties by every dimension ascending (numbers as numbers).
fn order_and_page(q: &Query, names: &[&str]) -> String {
    if q.dimensions.is_empty() {
        return String::new();
    }
    let column = |d: Dimension| -> Option<String> {
        let i = q.dimensions.iter().position(|x| *x == d)?;
        Some(if d.is_numeric() {
            format!("toUInt32OrZero({})", names[i])
        } else {
            names[i].to_string()
        })
    };
    let mut keys = Vec::new();
    let mut ordered = Vec::new();
    for (key, dir) in effective_order(q, &q.dimensions) {
        let (dir, nulls) = match dir {
            Direction::Asc => ("ASC", "FIRST"),
            Direction::Desc => ("DESC", "LAST"),
        };
        match key {
            // The engine sorts a missing value as the smallest.
            OrderKey::Metric(m) if q.metrics.contains(&m) => {
                keys.push(format!("{} {dir} NULLS {nulls}", m.name()));
            }
            OrderKey::Dimension(d) => {
                keys.extend(column(d).map(|c| format!("{c} {dir}")));
                ordered.push(d);
            }
            OrderKey::Metric(_) => {}
        }
    }
    // Ties: every other dimension ascending, as the engine breaks them.
    for d in q.dimensions.iter().filter(|d| !ordered.contains(d)) {
        keys.extend(column(*d).map(|c| format!("{c} ASC")));
    }
    let mut out = format!("\nORDER BY {}", keys.join(", "));
    if q.offset > 0 {
        let _ = write!(out, "\nLIMIT {}, {}", q.offset, q.limit);
    } else {
        let _ = write!(out, "\nLIMIT {}", q.limit);
    }
    out
}

/// `UNION ALL` of commented branches, indented by `n`.
fn union(branches: &[(&str, String)], n: usize) -> String {
    branches
        .iter()
        .map(|(what, sql)| indent(&format!("-- {what}\n{sql}"), n))
        .collect::<Vec<_>>()
        .join(&format!("\n{}UNION ALL\n", " ".repeat(n)))
}

/// `text` with every non-empty line indented by `n` spaces.
fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::period::Period;

    #[test]
    fn time_becomes_hours_for_the_periods_the_engine_shows_hourly() {
        let tz = jiff::tz::TimeZone::UTC;
        let from: jiff::Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
        for minutes in [60, 47 * 60 + 59, 48 * 60, 48 * 60 + 59, 49 * 60, 72 * 60] {
            let to = from
                .checked_add(jiff::SignedDuration::from_mins(minutes))
                .unwrap();
            let period = Period {
                from,
                to,
                tz: tz.clone(),
            };
            // The SQL's test: whole hours of the period at most HOURLY_UP_TO_HOURS.
            let hourly = minutes / 60 <= i64::from(HOURLY_UP_TO_HOURS);
            assert_eq!(
                period.time_dimension() == Dimension::Hour,
                hourly,
                "{minutes} minutes"
            );
        }
    }

    #[test]
    fn percentile_levels_are_those_of_the_components() {
        for (i, (_, level)) in PERCENTILES.iter().enumerate() {
            assert!(
                COMPONENTS[10 + i].starts_with(&format!("quantileExactIf({level})(duration")),
                "{}",
                COMPONENTS[10 + i]
            );
        }
    }

    #[test]
    fn what_the_sql_cannot_answer_is_refused() {
        let s = Scope::expressions(
            "",
            Sql::fixed("'a.example'"),
            Sql::fixed("'UTC'"),
            Sql::fixed("toDateTime(0)"),
            Sql::fixed("toDateTime(3600)"),
            Sql::fixed("1800"),
            Sql::fixed("10000"),
        );
        let q = |metrics: &[Metric], dims: &[Dimension]| {
            Query::new("", metrics, crate::stats::query::DateRange::Day).by(dims)
        };
        let refused = |q: &Query, names: &[&str]| rows(q, &s, names).is_err();
        assert!(refused(&q(&[Metric::Percentage], &[]), &[]));
        assert!(refused(&q(&[Metric::TimeOnPageMedian], &[]), &[]));
        assert!(refused(
            &q(&[Metric::VisitDurationMedian], &[Dimension::Page]),
            &["page"]
        ));
        assert!(refused(
            &q(&[Metric::VisitDurationMedian, Metric::Visitors], &[]),
            &[]
        ));
        assert!(refused(&q(&[Metric::Visitors], &[Dimension::Page]), &[]));
        let filtered = q(&[Metric::Visitors], &[]).filtered(vec![crate::stats::Filter::Leaf {
            op: crate::stats::Op::Is,
            dimension: Dimension::Country,
            values: vec!["NL".into()],
            case_sensitive: true,
        }]);
        assert!(refused(&filtered, &[]));
        // Dimensions rollups do not keep together are read from raw events only.
        let sql = rows(
            &q(&[Metric::Visitors], &[Dimension::Page, Dimension::Country]),
            &s,
            &["page", "country"],
        )
        .unwrap();
        assert!(
            !sql.contains("rollup_daily") && sql.contains("FROM events"),
            "{sql}"
        );
        assert!(
            sql.ends_with("ORDER BY visitors DESC NULLS LAST, page ASC, country ASC\nLIMIT 10000"),
            "{sql}"
        );
    }
}
