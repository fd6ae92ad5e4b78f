//! The rollup job's SQL: the statements that sum one local day of one site's stored visits into
//! the rollup tables, the day markers, and what the job decides with.

use jiff::Timestamp;

use crate::event_counts;
use crate::sql_text::{datetime, lit};
use crate::stats::query::Dimension;
use crate::stats::sql::dimensions::dimension;
use crate::stats::sql::rollups::{DURATION_SECONDS, PAIRED, ROLLED_UP, ROLLUP_COLUMNS};
use crate::stats::sql::{Scope, COMPONENTS};
use crate::visits::units::{stored_units, Stored};

/// The statements that roll up one local day (`s.from`..`s.to`) of one site from its stored
/// visits, in order; the last one marks the day done under `version` (see
/// `schema/0004_rollups.sql`), computed at `now`.
pub fn rollup_day(s: &Scope, day: jiff::civil::Date, version: u64, now: Timestamp) -> Vec<String> {
    let site = &s.site;
    let (visits, slices) = (s.table("visits"), s.table("visit_slices"));
    let units = stored_units(&Stored {
        visits: &visits,
        slices: &slices,
        site: site.as_str(),
        from: s.from.as_str(),
        to: s.to.as_str(),
        timeout_seconds: s.timeout_seconds.as_str(),
        rows_where: "",
    });
    let breakdowns = breakdowns(s);
    let mut pairs = vec!["('', '')".to_string()];
    pairs.extend(
        breakdowns
            .iter()
            .filter(|(name, _)| *name != DURATION_SECONDS)
            .map(|(name, value)| format!("({}, {value})", lit(name))),
    );
    let comps: Vec<String> = COMPONENTS[..ROLLUP_COLUMNS.len()]
        .iter()
        .map(|c| format!("toUInt64({c})"))
        .collect();
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
GROUP BY dv.1, dv.2",
            db = s.database,
            cols = ROLLUP_COLUMNS.join(", "),
            comps = comps.join(", "),
            pairs = pairs.join(", "),
        ),
        pairs_statement(s, &units, &breakdowns, &comps, &day, version),
        format!(
            "INSERT INTO {db}.rollup_durations (site, day, seconds, visits, version)
SELECT {site}, toDate({day}), duration, count(), {version}
FROM
(
{units}
)
WHERE kind = 0
GROUP BY duration",
            db = s.database,
        ),
        format!(
            "INSERT INTO {db}.rollup_page_seconds (site, day, dimension, value, seconds, page_visits, version)
SELECT {site}, toDate({day}), dv.1, dv.2, seconds, count(), {version}
FROM
(
    SELECT intDiv(page_ms, 1000) AS seconds, [('', ''), ({page_name}, {page})] AS dvs
    FROM
    (
{units}
    )
    WHERE kind = 1 AND page_visit = 1
)
ARRAY JOIN dvs AS dv
GROUP BY dv.1, dv.2, seconds",
            db = s.database,
            page_name = lit(Dimension::Page.name()),
            page = dimension(Dimension::Page, s),
        ),
        format!(
            "INSERT INTO {db}.rollup_days (site, day, computed, events, version, pairs, page_seconds)
SELECT {site}, toDate({day}), {computed}, count(), {version}, 1, 1
FROM
(
{units}
)",
            db = s.database,
            computed = datetime(now),
        ),
    ]
}

/// Every breakdown of a unit row in the rollups: (dimension name, its value's expression); the
/// visit duration in whole seconds last (paired only: `rollup_durations` has the whole site's).
fn breakdowns(s: &Scope) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = ROLLED_UP
        .iter()
        .map(|d| (d.name(), dimension(*d, s)))
        .collect();
    out.push(("time:hour", format!("formatDateTime(ts, '%H', {})", s.tz)));
    out.push((DURATION_SECONDS, "toString(duration)".to_string()));
    out
}

/// The statement that writes a day's `rollup_pairs`: each unit row once per pair of a paired
/// filter dimension's value and another dimension's value, grouped. The dimension names are
/// grouped as their positions (`UInt8`) and named after grouping: on the benchmark's busiest
/// day the rows are expanded to 14 million pairs, and grouping two strings fewer took a third
/// less time. ClickHouse 18.16 takes one `ARRAY JOIN` per `SELECT`, so the pairs are one array.
fn pairs_statement(
    s: &Scope,
    units: &str,
    breakdowns: &[(&'static str, String)],
    comps: &[String],
    day: &str,
    version: u64,
) -> String {
    let per_filter: Vec<String> = PAIRED
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let own = breakdowns
                .iter()
                .position(|(name, _)| *name == f.name())
                .expect("every paired dimension is rolled up");
            format!(
                "arrayMap(b -> (toUInt8({i}), {value}, b.1, b.2), \
                 arrayFilter(b -> b.1 != {own}, breakdowns))",
                value = dimension(*f, s),
            )
        })
        .collect();
    let indexed: Vec<String> = breakdowns
        .iter()
        .enumerate()
        .map(|(i, (_, value))| format!("(toUInt8({i}), {value})"))
        .collect();
    let names = |names: Vec<&str>| -> String {
        let quoted: Vec<String> = names.into_iter().map(lit).collect();
        format!("[{}]", quoted.join(", "))
    };
    let filter_names = names(PAIRED.iter().map(|d| d.name()).collect());
    let breakdown_names = names(breakdowns.iter().map(|(name, _)| *name).collect());
    let comp_names: Vec<String> = (0..comps.len()).map(|i| format!("c{i}")).collect();
    let comps: Vec<String> = comps
        .iter()
        .zip(&comp_names)
        .map(|(c, name)| format!("{c} AS {name}"))
        .collect();
    format!(
        "INSERT INTO {db}.rollup_pairs
    (site, day, filter, filter_value, dimension, value, {cols}, version)
SELECT {site}, toDate({day}), arrayElement({filter_names}, fi + 1), fv,
    arrayElement({breakdown_names}, bi + 1), bv, {comp_names}, {version}
FROM
(
    SELECT p.1 AS fi, p.2 AS fv, p.3 AS bi, p.4 AS bv, {comps}
    FROM
    (
        SELECT kind, day_visitor, duration, pageviews, bounce, page_visit, page_ms, page_sd,
            has_sd, [{indexed}] AS breakdowns,
            arrayConcat({per_filter}) AS pairs
        FROM
        (
{units}
        )
    )
    ARRAY JOIN pairs AS p
    GROUP BY p.1, p.2, p.3, p.4
)",
        db = s.database,
        site = s.site,
        cols = ROLLUP_COLUMNS.join(", "),
        comp_names = comp_names.join(", "),
        comps = comps.join(", "),
        indexed = indexed.join(", "),
        per_filter = per_filter.join(",\n                "),
    )
}

/// Local days (as `day_text`) on which `site` has stored visit records, between two instants
/// (any version: a day without any is empty for sure).
pub fn days_with_visits(
    database: &str,
    site: &str,
    tz: &str,
    from: Timestamp,
    to: Timestamp,
) -> String {
    format!(
        "SELECT DISTINCT toString(toDate(ts, {tz})) AS day_text FROM {database}.visits
WHERE site = {site} AND ts >= {from} AND ts < {to}",
        tz = lit(tz),
        site = lit(site),
        from = datetime(from),
        to = datetime(to),
    )
}

/// Marks days as rolled up without rows (days without visits), computed at `now`.
pub fn mark_days(
    database: &str,
    site: &str,
    days: &[jiff::civil::Date],
    version: u64,
    now: Timestamp,
) -> String {
    let rows: Vec<String> = days
        .iter()
        .map(|d| {
            format!(
                "({}, toDate({}), {}, 0, {version}, 1, 1)",
                lit(site),
                lit(&d.to_string()),
                datetime(now)
            )
        })
        .collect();
    format!(
        "INSERT INTO {database}.rollup_days (site, day, computed, events, version, pairs, page_seconds) \
         VALUES {}",
        rows.join(", ")
    )
}

/// UTC hours with raw events of `site` whose visits are not stored yet (`h`, unix seconds).
/// `since`: from [`event_counts::counted_since`].
pub fn unstored_hours(database: &str, site: &str, since: Timestamp) -> String {
    format!(
        "SELECT DISTINCT h FROM ({hours})
WHERE h NOT IN (
    SELECT toUInt32(slice) FROM {database}.visit_slices WHERE site = {site} AND done = 1)",
        hours = event_counts::hours(database, site, since),
        site = lit(site),
    )
}

/// A row of [`unstored_hours`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct Hour {
    pub h: u32,
}

/// Stored slices of `site` finished since `since`: when, and the earliest visit start in them.
pub fn slices_done_since(database: &str, site: &str, since: Timestamp) -> String {
    format!(
        "SELECT toUInt32(slice) AS slice, toUInt32(max(at)) AS done_at,
    toUInt32(argMax(first_start, at)) AS first_visit, argMax(visits, at) AS stored
FROM {database}.visit_slices
WHERE site = {site} AND done = 1 AND at >= {since}
GROUP BY slice",
        site = lit(site),
        since = datetime(since),
    )
}

/// A row of [`slices_done_since`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct DoneSlice {
    pub slice: u32,
    pub done_at: u32,
    pub first_visit: u32,
    pub stored: u64,
}

/// When each rolled-up day of `site` from `first` on was last computed (`day_text`, `computed`),
/// and whether that computation wrote every rollup table: `rollup_pairs` (migration 0007) and
/// `rollup_page_seconds` (0008) (`complete`).
pub fn rolled_since(database: &str, site: &str, first: jiff::civil::Date) -> String {
    format!(
        "SELECT toString(day) AS day_text, toUInt32(max(computed)) AS computed,
    toUInt8(argMax(pairs, version) = 1 AND argMax(page_seconds, version) = 1) AS complete
FROM {database}.rollup_days WHERE site = {} AND day >= toDate({})
GROUP BY day",
        lit(site),
        lit(&first.to_string())
    )
}

/// A row of [`rolled_since`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct Rolled {
    pub day_text: String,
    pub computed: u32,
    pub complete: u8,
}

/// The first stored slice of `site` (`t`, 0 when none) and the earliest stored visit (`first`).
pub fn stored_since(database: &str, site: &str) -> String {
    format!(
        "SELECT toUInt32(min(slice)) AS t, toUInt32(min(first_start)) AS first, count() AS n
FROM {database}.visit_slices WHERE site = {} AND done = 1 AND visits > 0",
        lit(site)
    )
}

/// A row of [`stored_since`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct StoredSince {
    pub t: u32,
    pub first: u32,
    pub n: u64,
}
