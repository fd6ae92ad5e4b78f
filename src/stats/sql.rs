//! SQL for the stats API: visits built from raw events, then one grouped aggregation.
//!
//! Visits are computed at query time from the stored events, never kept in a collector's memory,
//! so they come out the same whichever collector received a visitor's beacons, and across
//! restarts. The SQL runs on ClickHouse 18.16 (no window functions) and on current ClickHouse:
//!
//! 1. per visitor, events sorted by `(ts, event_id)`; a gap over the timeout starts a new visit
//!    (`arrayCumSum` over `arrayDifference`), then one row per event with its visit number;
//! 2. per visit: start, end, pageviews, engaged time, bounce, entry/exit page and the attributes
//!    of its first pageview (`argMinIf`), plus its pageviews and engagement beacons as arrays;
//! 3. one *unit* row per visit (`kind` 0, at its start), per pageview (`kind` 1, at its time) and
//!    per page visit (`kind` 2, at its first pageview), all carrying their visit's attributes;
//! 4. the caller's filters and the period select unit rows; metrics are conditional aggregates
//!    over the kinds, grouped by the dimensions.
//!
//! Every value from a request is written as an escaped string literal ([`lit`]); names of
//! dimensions and metrics come from fixed tables, never from the request.

use std::fmt::Write;

use jiff::Timestamp;

use super::query::{Dimension, Filter, Op};

/// Events read after the period's end so that visits starting inside it are complete, and
/// before its start so that a visit under way at the start keeps its first pageview's entry
/// page and source. A visit of uninterrupted activity longer than this is cut.
pub const LOOKAHEAD_SECONDS: i64 = 6 * 3600;

/// What one query needs besides the filters and dimensions.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub database: &'a str,
    pub site: &'a str,
    pub tz: &'a str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub timeout_seconds: u32,
    pub bounce_ms: u32,
    /// First day of the period (local), for week labels that do not start before it.
    pub first_date: jiff::civil::Date,
    /// Rows are grouped by page or host: a page filter then keeps the rows of matching pages
    /// only (visit rows by their entry page), so no non-matching page appears as a row.
    pub pages_grouped: bool,
}

/// The per-group numbers every metric is derived from, in this order (see `mod.rs`).
pub const COMPONENTS: [&str; 13] = [
    // 0 pageviews
    "countIf(kind = 1)",
    // 1 visitors: distinct (hash, local day) over pageviews
    "uniqExactIf(visitor, toDate(ts, {tz}), kind = 1)",
    // 2 visits
    "countIf(kind = 0)",
    // 3 bounces
    "sumIf(bounce, kind = 0)",
    // 4 total visit duration, s
    "sumIf(duration, kind = 0)",
    // 5 pageviews of those visits
    "sumIf(vpageviews, kind = 0)",
    // 6 page visits
    "countIf(kind = 2)",
    // 7 total time on page, ms
    "sumIf(page_ms, kind = 2)",
    // 8 page visits that reported a scroll depth
    "countIf(kind = 2 AND has_sd)",
    // 9 their total scroll depth
    "sumIf(page_sd, kind = 2 AND has_sd)",
    // 10..12 visit duration percentiles
    "quantileExactIf(0.5)(duration, kind = 0)",
    "quantileExactIf(0.75)(duration, kind = 0)",
    "quantileExactIf(0.9)(duration, kind = 0)",
];
/// Median time on page is asked for separately: the extra sort is only paid when wanted.
pub const TIME_ON_PAGE_MEDIAN: &str = "quantileExactIf(0.5)(intDiv(page_ms, 1000), kind = 2)";

/// A ClickHouse string literal holding exactly `s`.
pub fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn datetime(t: Timestamp) -> String {
    format!("toDateTime({}, 'UTC')", t.as_second())
}

/// The events read for a period: from the lookahead before it to the lookahead after it.
fn window(s: &Scope) -> (Timestamp, Timestamp) {
    let lo = s
        .from
        .checked_sub(jiff::SignedDuration::from_secs(
            LOOKAHEAD_SECONDS.max(i64::from(s.timeout_seconds)),
        ))
        .unwrap_or(s.from);
    let hi =
        s.to.checked_add(jiff::SignedDuration::from_secs(LOOKAHEAD_SECONDS))
            .unwrap_or(s.to);
    (lo, hi)
}

/// Step 1–3: the unit rows of the visits that touch the period. `narrow` is an extra condition
/// on the events read (see [`prefilter`]); it may only drop visitors whose visits cannot match.
fn units(s: &Scope, narrow: &str) -> String {
    let (lo, hi) = window(s);
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
            FROM {db}.events
            WHERE site = {site} AND ts >= {lo} AND ts < {hi}{narrow}
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
        db = s.database,
        site = lit(s.site),
        lo = datetime(lo),
        hi = datetime(hi),
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
    let (lo, hi) = window(s);
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
            "\n                AND visitor IN (SELECT visitor FROM {db}.events WHERE site = {site} \
             AND ts >= {lo} AND ts < {hi} AND {cond})",
            db = s.database,
            site = lit(s.site),
            lo = datetime(lo),
            hi = datetime(hi),
            cond = leaf(*op, &expr, values, *case_sensitive),
        );
    }
    out
}

/// The SQL expression of a dimension's value over unit rows (as shown in answers and filters).
pub fn dimension(d: Dimension, s: &Scope) -> String {
    let tz = lit(s.tz);
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
            "toString(greatest(toMonday(toDate(ts, {tz})), toDate({})))",
            lit(&s.first_date.to_string())
        ),
        Dimension::Month => format!("toString(toStartOfMonth(toDate(ts, {tz})))"),
        Dimension::HourOfDay => format!("toString(toHour(ts, {tz}))"),
        Dimension::Weekday => format!("toString(toDayOfWeek(toDate(ts, {tz})))"),
        Dimension::DurationBucket => "multiIf(duration < 10, '0-10s', duration < 30, '10-30s', \
             duration < 60, '30s-1m', duration < 180, '1-3m', duration < 600, '3-10m', \
             duration < 1800, '10-30m', '30m+')"
            .into(),
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
    let tz = lit(s.tz);
    let grouped_scope = Scope {
        pages_grouped: dimensions
            .iter()
            .any(|d| matches!(d, Dimension::Page | Dimension::Hostname)),
        ..*s
    };
    let s = &grouped_scope;
    let dims: Vec<String> = dimensions.iter().map(|d| dimension(*d, s)).collect();
    let mut comps: Vec<String> = COMPONENTS
        .iter()
        .map(|c| format!("toFloat64({})", c.replace("{tz}", &tz)))
        .collect();
    if with_time_on_page_median {
        comps.push(format!("toFloat64({TIME_ON_PAGE_MEDIAN})"));
    }
    let mut wheres = vec![format!(
        "ts >= {} AND ts < {}",
        datetime(s.from),
        datetime(s.to)
    )];
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

/// Dimensions kept per day in `rollup_daily`, besides the whole site (`''`) and `time:hour`.
pub const ROLLED_UP: [Dimension; 16] = [
    Dimension::Page,
    Dimension::Hostname,
    Dimension::EntryPage,
    Dimension::ExitPage,
    Dimension::Source,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::UtmContent,
    Dimension::UtmTerm,
    Dimension::Country,
    Dimension::Device,
    Dimension::Browser,
    Dimension::Os,
    Dimension::DurationBucket,
];

/// Column list of `rollup_daily` after `(site, day, dimension, value)`, in [`COMPONENTS`] order
/// (the first ten; percentiles come from `rollup_durations`).
const ROLLUP_COLUMNS: [&str; 10] = [
    "pageviews",
    "visitors",
    "visits",
    "bounces",
    "duration_sum",
    "visit_pageviews",
    "page_visits",
    "page_ms_sum",
    "scroll_count",
    "scroll_sum",
];

/// The statements that roll up one local day (`s.from`..`s.to`) of one site, in order; the
/// last one marks the day done under `version` (random; see `schema/0004_rollups.sql`).
pub fn rollup_day(s: &Scope, day: jiff::civil::Date, version: u64) -> Vec<String> {
    let tz = lit(s.tz);
    let mut pairs = vec!["('', '')".to_string()];
    for d in ROLLED_UP {
        pairs.push(format!("({}, {})", lit(d.name()), dimension(d, s)));
    }
    pairs.push(format!("('time:hour', formatDateTime(ts, '%H', {tz}))"));
    let comps: Vec<String> = COMPONENTS[..ROLLUP_COLUMNS.len()]
        .iter()
        .map(|c| format!("toUInt64({})", c.replace("{tz}", &tz)))
        .collect();
    let period = format!("ts >= {} AND ts < {}", datetime(s.from), datetime(s.to));
    let day = lit(&day.to_string());
    vec![
        format!(
            "INSERT INTO {db}.rollup_daily (site, day, dimension, value, {cols}, version)
SELECT {site}, toDate({day}), dv.1, dv.2, {comps}, {version}
FROM
(
{units}
)
ARRAY JOIN [{pairs}] AS dv
WHERE {period}
GROUP BY dv.1, dv.2",
            db = s.database,
            cols = ROLLUP_COLUMNS.join(", "),
            site = lit(s.site),
            comps = comps.join(", "),
            units = units(s, ""),
            pairs = pairs.join(", "),
        ),
        format!(
            "INSERT INTO {db}.rollup_durations (site, day, seconds, visits, version)
SELECT {site}, toDate({day}), duration, count(), {version}
FROM
(
{units}
)
WHERE kind = 0 AND {period}
GROUP BY duration",
            db = s.database,
            site = lit(s.site),
            units = units(s, ""),
        ),
        format!(
            "INSERT INTO {db}.rollup_days (site, day, computed, events, version)
SELECT {site}, toDate({day}), now(), count(), {version}
FROM {db}.events
WHERE site = {site} AND {period}",
            db = s.database,
            site = lit(s.site),
        ),
    ]
}

/// Local days (as `day_text`) on which `site` has events, between two instants.
pub fn days_with_events(
    database: &str,
    site: &str,
    tz: &str,
    from: Timestamp,
    to: Timestamp,
) -> String {
    format!(
        "SELECT DISTINCT toString(toDate(ts, {tz})) AS day_text FROM {database}.events
WHERE site = {site} AND ts >= {from} AND ts < {to}",
        tz = lit(tz),
        site = lit(site),
        from = datetime(from),
        to = datetime(to),
    )
}

/// Marks days as rolled up without rows (days without events).
pub fn mark_days(database: &str, site: &str, days: &[jiff::civil::Date], version: u64) -> String {
    let rows: Vec<String> = days
        .iter()
        .map(|d| {
            format!(
                "({}, toDate({}), now(), 0, {version})",
                lit(site),
                lit(&d.to_string())
            )
        })
        .collect();
    format!(
        "INSERT INTO {database}.rollup_days (site, day, computed, events, version) VALUES {}",
        rows.join(", ")
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
WHERE kind = 0 AND ts >= {from} AND ts < {to}
GROUP BY seconds",
        units = units(s, ""),
        from = datetime(s.from),
        to = datetime(s.to),
    )
}

/// Days of `site` rolled up between two local dates (inclusive), as `YYYY-MM-DD` strings.
pub fn rolled_days(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
) -> String {
    format!(
        "SELECT DISTINCT toString(day) AS day_text FROM {database}.rollup_days
WHERE site = {} AND day >= toDate({}) AND day <= toDate({})",
        lit(site),
        lit(&first.to_string()),
        lit(&last.to_string())
    )
}

/// How a dimension is read from `rollup_daily`: the row kind (`dimension` column) and the
/// value expression over `day` and `value`. `None`: not answerable from rollups.
fn rollup_dimension(d: Dimension, first: jiff::civil::Date) -> Option<(&'static str, String)> {
    Some(match d {
        Dimension::Day => ("", "toString(day)".into()),
        Dimension::Week => (
            "",
            format!(
                "toString(greatest(toMonday(day), toDate({})))",
                lit(&first.to_string())
            ),
        ),
        Dimension::Month => ("", "toString(toStartOfMonth(day))".into()),
        Dimension::Weekday => ("", "toString(toDayOfWeek(day))".into()),
        Dimension::Hour => (
            "time:hour",
            "concat(toString(day), ' ', value, ':00:00')".into(),
        ),
        Dimension::HourOfDay => (
            "time:hour",
            "toString(toUInt8(toUInt32OrZero(value)))".into(),
        ),
        d if ROLLED_UP.contains(&d) => (d.name(), "value".into()),
        _ => return None,
    })
}

/// The grouped query over rollups for whole local days `first..=last`, in the same shape as
/// [`grouped`] (percentile components are 0; they come from [`rollup_durations`]). `None` when
/// the dimensions cannot be answered from rollups.
pub fn rollup_grouped(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
    dimensions: &[Dimension],
) -> Option<String> {
    let mut kind = "";
    let mut exprs = Vec::new();
    for d in dimensions {
        let (k, e) = rollup_dimension(*d, first)?;
        exprs.push(e);
        if !k.is_empty() {
            if !kind.is_empty() && kind != k {
                return None;
            }
            kind = k;
        }
    }
    // Weekday alone reads whole-site rows; with hour of day it reads the hourly rows.
    if dimensions.len() > 1
        && !(dimensions.contains(&Dimension::Weekday)
            && dimensions.contains(&Dimension::HourOfDay)
            && dimensions.len() == 2)
    {
        return None;
    }
    let comps: Vec<String> = ROLLUP_COLUMNS
        .iter()
        .map(|c| format!("toFloat64(sum({c}))"))
        .chain(std::iter::repeat_n("toFloat64(0)".to_string(), 3))
        .collect();
    let group = if exprs.is_empty() {
        ""
    } else {
        "\nGROUP BY dims"
    };
    Some(format!(
        "SELECT [{dims}] AS dims, [{comps}] AS comps
FROM {database}.rollup_daily
WHERE site = {site} AND day >= toDate({first}) AND day <= toDate({last}) AND dimension = {kind}
    AND {current}{group}",
        dims = exprs.join(", "),
        comps = comps.join(", "),
        site = lit(site),
        first = lit(&first.to_string()),
        last = lit(&last.to_string()),
        kind = lit(kind),
        current = current_versions(database, site, first, last),
    ))
}

/// Rows of the version each day's marker names (the highest if a day was computed twice).
fn current_versions(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
) -> String {
    format!(
        "(day, version) IN (SELECT day, max(version) FROM {database}.rollup_days \
         WHERE site = {} AND day >= toDate({}) AND day <= toDate({}) GROUP BY day)",
        lit(site),
        lit(&first.to_string()),
        lit(&last.to_string())
    )
}

/// Visits per second of duration over rolled-up days (`seconds`, `visits`).
pub fn rollup_durations(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
) -> String {
    format!(
        "SELECT seconds, toUInt64(sum(visits)) AS visits FROM {database}.rollup_durations
WHERE site = {} AND day >= toDate({}) AND day <= toDate({}) AND {}
GROUP BY seconds",
        lit(site),
        lit(&first.to_string()),
        lit(&last.to_string()),
        current_versions(database, site, first, last)
    )
}

/// A row of [`first_event`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct FirstEvent {
    /// Unix seconds of the earliest event (0 when there is none).
    pub t: u32,
    pub n: u64,
}

/// A row of [`rolled_days`] and [`days_with_events`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct DayRow {
    pub day_text: String,
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

/// One query per dimension and per filter kind, for checking the SQL on other ClickHouse
/// versions (`tests/it/schema.rs` runs them on current ClickHouse via chDB).
pub fn catalogue(database: &str) -> Vec<(String, String)> {
    let scope = Scope {
        database,
        site: "a.example",
        tz: "Europe/Amsterdam",
        from: "2026-03-28T23:00:00Z".parse().unwrap(),
        to: "2026-03-29T22:00:00Z".parse().unwrap(),
        timeout_seconds: 1800,
        bounce_ms: 10_000,
        first_date: "2026-03-29".parse().unwrap(),
        pages_grouped: false,
    };
    let leaf = |op, dimension, value: &str| Filter::Leaf {
        op,
        dimension,
        values: vec![value.to_string()],
        case_sensitive: true,
    };
    let mut out = vec![("aggregate".to_string(), grouped(&scope, &[], &[], true))];
    for d in Dimension::ALL {
        out.push((d.name().to_string(), grouped(&scope, &[d], &[], false)));
    }
    let filters = vec![
        leaf(Op::Is, Dimension::Country, "NL"),
        leaf(Op::ContainsNot, Dimension::Page, "/admin"),
        leaf(Op::Matches, Dimension::Hostname, "^a\\."),
        Filter::Not(Box::new(Filter::Or(vec![
            leaf(Op::IsNot, Dimension::Source, "Direct / None"),
            Filter::Leaf {
                op: Op::Contains,
                dimension: Dimension::UtmCampaign,
                values: vec!["Spring".into(), "fall".into()],
                case_sensitive: false,
            },
        ]))),
    ];
    let day: jiff::civil::Date = "2026-03-29".parse().unwrap();
    for (i, statement) in rollup_day(&scope, day, 1).into_iter().enumerate() {
        out.push((format!("rollup statement {i}"), statement));
    }
    out.push((
        "mark days".into(),
        mark_days(database, "a.example", &[day], 2),
    ));
    out.push((
        "rolled days".into(),
        rolled_days(database, "a.example", day, day),
    ));
    out.push((
        "days with events".into(),
        days_with_events(
            database,
            "a.example",
            "Europe/Amsterdam",
            scope.from,
            scope.to,
        ),
    ));
    out.push(("durations".into(), durations(&scope)));
    out.push((
        "rollup durations".into(),
        rollup_durations(database, "a.example", day, day),
    ));
    for dims in [
        vec![],
        vec![Dimension::Page],
        vec![Dimension::Week],
        vec![Dimension::Hour],
        vec![Dimension::Weekday, Dimension::HourOfDay],
    ] {
        let sql = rollup_grouped(database, "a.example", day, day, &dims).expect("rolled up");
        out.push((format!("rollup read {dims:?}"), sql));
    }
    out.push((
        "filters".to_string(),
        grouped(
            &scope,
            &[Dimension::Weekday, Dimension::HourOfDay],
            &filters,
            true,
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_be_broken_out_of() {
        assert_eq!(lit("plain"), "'plain'");
        assert_eq!(lit("o'clock"), "'o\\'clock'");
        assert_eq!(lit("a\\' OR 1=1 --"), "'a\\\\\\' OR 1=1 --'");
        assert_eq!(lit("line\nbreak\0"), "'line\\x0Abreak\\x00'");
    }

    #[test]
    fn filters_compose() {
        let s = Scope {
            database: "db",
            site: "a.example",
            tz: "Europe/Amsterdam",
            from: "2026-03-29T00:00:00Z".parse().unwrap(),
            to: "2026-03-30T00:00:00Z".parse().unwrap(),
            timeout_seconds: 1800,
            bounce_ms: 10_000,
            first_date: "2026-03-29".parse().unwrap(),
            pages_grouped: false,
        };
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
