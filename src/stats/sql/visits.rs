//! Reports from raw events: visits are built at query time (steps 1–3 in `super`), then the
//! caller's filters and the period select unit rows and one grouped aggregation computes the
//! metric components.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{datetime, lit, Scope, COMPONENTS, TIME_ON_PAGE_MEDIAN};
use crate::stats::query::{Dimension, Filter, Op};

/// Visit duration buckets of `visit:duration_bucket`: a visit of `d` seconds is in the first
/// bucket whose bound is over `d` (lower bounds inclusive), or in the last.
pub const DURATION_BUCKETS: [(&str, Option<u32>); 7] = [
    ("0-10s", Some(10)),
    ("10-30s", Some(30)),
    ("30s-1m", Some(60)),
    ("1-3m", Some(180)),
    ("3-10m", Some(600)),
    ("10-30m", Some(1800)),
    ("30m+", None),
];

/// Step 1–3: the unit rows of the visits that touch the period. `narrow` is an extra condition
/// on the events read (see [`prefilter`]); it may only drop visitors whose visits cannot match.
/// The scope's `events_where` is added to it.
pub fn units(s: &Scope, narrow: &str) -> String {
    let extra = match &s.events_where {
        Some(cond) => format!("\n                AND {cond}"),
        None => String::new(),
    };
    format!(
        "SELECT
    r.1 AS kind, r.2 AS ts, visitor, r.3 AS path, r.4 AS host,
    pages, entry, exit, source, referrer, utm_source, utm_medium, utm_campaign, utm_content,
    utm_term, country, device, browser, os, duration, vpageviews, bounce,
    r.5 AS page_ms, r.6 AS page_sd, r.7 AS has_sd
FROM
(
    SELECT
        visitor,
        minIf(ts, pv) AS start,
        toUInt32(toUInt32(max(ts)) - toUInt32(start)) AS duration,
        toUInt32(countIf(pv)) AS vpageviews,
        toUInt8(vpageviews = 1 AND sumIf(engaged_ms, name = 'engagement') < {bounce_ms}) AS bounce,
        -- One aggregate for all attributes of the first pageview; `ord` is the event's position
        -- in its visitor's sorted events, a cheaper key than (ts, event_id).
        argMinIf((path, host, ev_source, ev_referrer, ev_utm_source, ev_utm_medium,
            ev_utm_campaign, ev_utm_content, ev_utm_term, ev_country, ev_device, ev_browser,
            ev_os), ord, pv) AS first,
        first.1 AS entry,
        first.2 AS entry_host,
        argMaxIf(path, ord, pv) AS exit,
        first.3 AS source,
        first.4 AS referrer,
        first.5 AS utm_source,
        first.6 AS utm_medium,
        first.7 AS utm_campaign,
        first.8 AS utm_content,
        first.9 AS utm_term,
        first.10 AS country,
        first.11 AS device,
        first.12 AS browser,
        first.13 AS os,
        groupArrayIf((ts, path, host), pv) AS pvs,
        groupArrayIf((path, host, engaged_ms, scroll_depth), name = 'engagement') AS engs,
        groupUniqArrayIf((path, host), pv) AS pages,
        arrayConcat(
            [(toUInt8(0), start, entry, entry_host, toUInt32(0), toUInt8(0), toUInt8(0))],
            arrayMap(p -> (toUInt8(1), p.1, p.2, p.3, toUInt32(0), toUInt8(0), toUInt8(0)), pvs),
            arrayMap(pg -> (
                toUInt8(2),
                arrayReduce('min', arrayMap(p -> p.1, arrayFilter(p -> p.2 = pg.1 AND p.3 = pg.2, pvs))),
                pg.1,
                pg.2,
                toUInt32(arraySum(arrayMap(x -> x.3, arrayFilter(x -> x.1 = pg.1 AND x.2 = pg.2, engs)))),
                toUInt8(arrayReduce('max', arrayMap(x -> x.4, arrayFilter(x -> x.1 = pg.1 AND x.2 = pg.2, engs)))),
                toUInt8(notEmpty(arrayFilter(x -> x.1 = pg.1 AND x.2 = pg.2, engs)))
            ),
            -- `engs` is named outside a lambda too: ClickHouse 18.16 prunes subquery columns
            -- referenced only inside lambdas, which would drop `engs` and its source columns.
            if(empty(engs), pages, pages))
        ) AS units
    FROM
    (
        SELECT
            visitor, vno, ord, e.1 AS ts, e.2 AS event_id, e.3 AS name, e.4 AS path,
            e.5 AS host,
            e.6 AS engaged_ms, e.7 AS scroll_depth, e.8 AS ev_source, e.9 AS ev_referrer,
            e.10 AS ev_utm_source, e.11 AS ev_utm_medium, e.12 AS ev_utm_campaign,
            e.13 AS ev_utm_content, e.14 AS ev_utm_term, e.15 AS ev_country, e.16 AS ev_device,
            e.17 AS ev_browser, e.18 AS ev_os,
            e.3 = 'pageview' AS pv
        FROM
        (
            SELECT
                visitor,
                arraySort(x -> (x.1, x.2), groupArray((ts, event_id, name, path, host,
                    engaged_ms, scroll_depth, source, referrer_host, utm_source, utm_medium,
                    utm_campaign, utm_content, utm_term, country,
                    if(screen != '', screen, device), browser, os))) AS evs,
                arrayCumSum(arrayMap(d -> d > {timeout},
                    arrayDifference(arrayMap(x -> toUInt32(x.1), evs)))) AS vnos
            FROM {events}
            WHERE site = {site} AND ts >= {lo} AND ts < {hi}{narrow}{extra}
            GROUP BY visitor
        )
        ARRAY JOIN evs AS e, vnos AS vno, arrayEnumerate(evs) AS ord
    )
    GROUP BY visitor, vno
    HAVING vpageviews > 0
)
ARRAY JOIN units AS r",
        bounce_ms = s.bounce_ms,
        timeout = s.timeout_seconds,
        events = s.table("events"),
        site = s.site,
        lo = s.lo,
        hi = s.hi,
    )
}

/// A dimension's value computed from `events` columns, for the filters [`prefilter`] can use.
fn event_dimension(d: Dimension, s: &Scope) -> Option<String> {
    Some(match d {
        Dimension::Page | Dimension::EntryPage | Dimension::ExitPage => "path".into(),
        Dimension::Referrer => dimension(d, s).replace("referrer", "referrer_host"),
        Dimension::Device => dimension(d, s).replace("device", "if(screen != '', screen, device)"),
        Dimension::Hostname
        | Dimension::Source
        | Dimension::UtmSource
        | Dimension::UtmMedium
        | Dimension::UtmCampaign
        | Dimension::UtmContent
        | Dimension::UtmTerm
        | Dimension::Country
        | Dimension::Browser
        | Dimension::Os => dimension(d, s),
        _ => return None,
    })
}

/// Narrows the events read to visitors that have at least one event matching each positive
/// top-level filter (`is`, `contains`, `matches`): a visit, or a pageview, can only match if
/// one of its visitor's events does. Exact filtering still happens on the unit rows; this only
/// skips sessionizing visitors that cannot match, which makes selective filters cheap.
fn prefilter(filters: &[Filter], s: &Scope) -> String {
    let mut out = String::new();
    for f in filters {
        let Filter::Leaf {
            op,
            dimension: d,
            values,
            case_sensitive,
        } = f
        else {
            continue;
        };
        if !matches!(op, Op::Is | Op::Contains | Op::Matches) {
            continue;
        }
        let Some(expr) = event_dimension(*d, s) else {
            continue;
        };
        let _ = write!(
            out,
            "\n                AND visitor IN (SELECT visitor FROM {events} WHERE site = {site} \
             AND ts >= {lo} AND ts < {hi} AND {cond})",
            events = s.table("events"),
            site = s.site,
            lo = s.lo,
            hi = s.hi,
            cond = leaf(*op, &expr, values, *case_sensitive),
        );
    }
    out
}

/// The SQL expression of a dimension's value over unit rows (as shown in answers and filters).
pub fn dimension(d: Dimension, s: &Scope) -> String {
    let tz = &s.tz;
    let or = |col: &str, empty: &str| format!("if({col} = '', {}, {col})", lit(empty));
    match d {
        Dimension::Page => "path".into(),
        Dimension::Hostname => "host".into(),
        Dimension::EntryPage => "entry".into(),
        Dimension::ExitPage => "exit".into(),
        Dimension::Source => or("source", "Direct / None"),
        Dimension::Referrer => or("referrer", "Direct / None"),
        Dimension::UtmSource => or("utm_source", "(not set)"),
        Dimension::UtmMedium => or("utm_medium", "(not set)"),
        Dimension::UtmCampaign => or("utm_campaign", "(not set)"),
        Dimension::UtmContent => or("utm_content", "(not set)"),
        Dimension::UtmTerm => or("utm_term", "(not set)"),
        Dimension::Country => or("country", "(not set)"),
        Dimension::Device => {
            "if(device = '', '(not set)', concat(upper(substring(device, 1, 1)), substring(device, 2)))".into()
        }
        Dimension::Browser => or("browser", "(not set)"),
        Dimension::Os => or("os", "(not set)"),
        Dimension::Hour | Dimension::Time => {
            format!("formatDateTime(ts, '%Y-%m-%d %H:00:00', {tz})")
        }
        Dimension::Day => format!("toString(toDate(ts, {tz}))"),
        Dimension::Week => format!(
            "toString(greatest(toMonday(toDate(ts, {tz})), {}))",
            s.first_date
        ),
        Dimension::Month => format!("toString(toStartOfMonth(toDate(ts, {tz})))"),
        Dimension::HourOfDay => format!("toString(toHour(ts, {tz}))"),
        Dimension::Weekday => format!("toString(toDayOfWeek(toDate(ts, {tz})))"),
        Dimension::DurationBucket => {
            let mut arms = String::new();
            let mut last = "";
            for (name, bound) in DURATION_BUCKETS {
                match bound {
                    Some(b) => {
                        let _ = write!(arms, "duration < {b}, {}, ", lit(name));
                    }
                    None => last = name,
                }
            }
            format!("multiIf({arms}{})", lit(last))
        }
    }
}

/// A filter as a boolean SQL expression over unit rows.
///
/// Page and host filters mean, for a visit row, "the visit viewed a matching page"; for a
/// pageview or page-visit row, "this page matches".
pub fn filter(f: &Filter, s: &Scope) -> String {
    match f {
        Filter::And(v) => join(v, " AND ", s),
        Filter::Or(v) => join(v, " OR ", s),
        Filter::Not(inner) => format!("NOT ({})", filter(inner, s)),
        Filter::Leaf {
            op,
            dimension: d,
            values,
            case_sensitive,
        } => {
            let on = |expr: &str| leaf(*op, expr, values, *case_sensitive);
            match d {
                Dimension::Page | Dimension::Hostname if s.pages_grouped => {
                    on(if *d == Dimension::Page {
                        "path"
                    } else {
                        "host"
                    })
                }
                Dimension::Page | Dimension::Hostname => {
                    let (col, elem) = if *d == Dimension::Page {
                        ("path", "p.1")
                    } else {
                        ("host", "p.2")
                    };
                    // A negative operator on a visit: the visit viewed no matching page.
                    let (pos, negated) = match op {
                        Op::IsNot => (Op::Is, true),
                        Op::ContainsNot => (Op::Contains, true),
                        Op::MatchesNot => (Op::Matches, true),
                        other => (*other, false),
                    };
                    let any = format!(
                        "arrayExists(p -> {}, pages)",
                        leaf(pos, elem, values, *case_sensitive)
                    );
                    let visit = if negated { format!("NOT {any}") } else { any };
                    format!("if(kind = 0, {visit}, {})", on(col))
                }
                other => on(&dimension(*other, s)),
            }
        }
    }
}

fn join(v: &[Filter], sep: &str, s: &Scope) -> String {
    let parts: Vec<String> = v.iter().map(|f| format!("({})", filter(f, s))).collect();
    parts.join(sep)
}

fn leaf(op: Op, expr: &str, values: &[String], case_sensitive: bool) -> String {
    let one = |v: &str| -> String {
        match op {
            Op::Is | Op::IsNot if case_sensitive => format!("{expr} = {}", lit(v)),
            Op::Is | Op::IsNot => format!("lowerUTF8({expr}) = lowerUTF8({})", lit(v)),
            Op::Contains | Op::ContainsNot if case_sensitive => {
                format!("position({expr}, {}) > 0", lit(v))
            }
            Op::Contains | Op::ContainsNot => {
                format!("positionCaseInsensitiveUTF8({expr}, {}) > 0", lit(v))
            }
            Op::Matches | Op::MatchesNot => format!("match({expr}, {})", lit(v)),
        }
    };
    let any = values
        .iter()
        .map(|v| one(v))
        .collect::<Vec<_>>()
        .join(" OR ");
    match op {
        Op::IsNot | Op::ContainsNot | Op::MatchesNot => format!("NOT ({any})"),
        _ => format!("({any})"),
    }
}

/// The grouped query: one row per dimension tuple with the metric components.
pub fn grouped(
    s: &Scope,
    dimensions: &[Dimension],
    filters: &[Filter],
    with_time_on_page_median: bool,
) -> String {
    let grouped_scope = Scope {
        pages_grouped: dimensions
            .iter()
            .any(|d| matches!(d, Dimension::Page | Dimension::Hostname)),
        ..s.clone()
    };
    let s = &grouped_scope;
    let dims: Vec<String> = dimensions.iter().map(|d| dimension(*d, s)).collect();
    let mut comps: Vec<String> = COMPONENTS
        .iter()
        .map(|c| format!("toFloat64({})", c.replace("{tz}", s.tz.as_str())))
        .collect();
    if with_time_on_page_median {
        comps.push(format!("toFloat64({TIME_ON_PAGE_MEDIAN})"));
    }
    let mut wheres = vec![period(s)];
    wheres.extend(filters.iter().map(|f| format!("({})", filter(f, s))));
    let group = if dims.is_empty() {
        String::new()
    } else {
        "\nGROUP BY dims".to_string()
    };
    format!(
        "SELECT [{dims}] AS dims, [{comps}] AS comps\nFROM\n(\n{units}\n)\nWHERE {wheres}{group}",
        dims = dims
            .iter()
            .map(|d| format!("toString({d})"))
            .collect::<Vec<_>>()
            .join(", "),
        comps = comps.join(", "),
        units = units(s, &prefilter(filters, s)),
        wheres = wheres.join(" AND "),
    )
}

/// Visits per whole second of duration in the period, from raw events (`seconds`, `visits`).
pub fn durations(s: &Scope) -> String {
    format!(
        "SELECT duration AS seconds, toUInt64(count()) AS visits
FROM
(
{units}
)
WHERE kind = 0 AND {period}
GROUP BY seconds",
        units = units(s, ""),
        period = period(s),
    )
}

/// The unit rows of the period (and of the scope's `units_where`).
fn period(s: &Scope) -> String {
    let mut out = format!("ts >= {} AND ts < {}", s.from, s.to);
    if let Some(cond) = &s.units_where {
        let _ = write!(out, " AND {cond}");
    }
    out
}

/// A row of [`first_event`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct FirstEvent {
    /// Unix seconds of the earliest event (0 when there is none).
    pub t: u32,
    pub n: u64,
}

/// Events of a site between two instants (`n`).
pub fn count_events(database: &str, site: &str, from: Timestamp, to: Timestamp) -> String {
    format!(
        "SELECT count() AS n FROM {database}.events WHERE site = {} AND ts >= {} AND ts < {}",
        lit(site),
        datetime(from),
        datetime(to)
    )
}

/// Earliest stored event of a site, for `date_range: "all"`.
pub fn first_event(database: &str, site: &str) -> String {
    format!(
        "SELECT toUInt32(min(ts)) AS t, count() AS n FROM {database}.events WHERE site = {}",
        lit(site)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::sql::{Scope, ScopeValues};

    #[test]
    fn filters_compose() {
        let s = Scope::literal(ScopeValues {
            database: "db",
            site: "a.example",
            tz: "Europe/Amsterdam",
            from: "2026-03-29T00:00:00Z".parse().unwrap(),
            to: "2026-03-30T00:00:00Z".parse().unwrap(),
            timeout_seconds: 1800,
            bounce_ms: 10_000,
            first_date: "2026-03-29".parse().unwrap(),
        });
        let f = Filter::Or(vec![
            Filter::Leaf {
                op: Op::Is,
                dimension: Dimension::Country,
                values: vec!["NL".into()],
                case_sensitive: true,
            },
            Filter::Not(Box::new(Filter::Leaf {
                op: Op::Contains,
                dimension: Dimension::Page,
                values: vec!["/a".into(), "/b".into()],
                case_sensitive: false,
            })),
        ]);
        let sql = filter(&f, &s);
        assert!(
            sql.contains("if(country = '', '(not set)', country) = 'NL'"),
            "{sql}"
        );
        assert!(
            sql.contains("arrayExists(p -> (positionCaseInsensitiveUTF8(p.1, '/a') > 0"),
            "{sql}"
        );
        assert!(sql.starts_with("(") && sql.contains(" OR (NOT ("), "{sql}");
    }
}
