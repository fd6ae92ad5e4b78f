//! The rollup job's SQL: the statements that sum one local day of one site's stored visits into
//! the rollup tables, the day markers, and what the job decides with.

use jiff::Timestamp;

use crate::sql_text::{datetime, lit};
use crate::stats::sql::rollups::{DURATION_SECONDS, PAIRED, ROLLED_UP, ROLLUP_COLUMNS};
use crate::stats::sql::visits::dimension;
use crate::stats::sql::{Scope, COMPONENTS};
use crate::visits::units::{stored_units, Stored};

/// The statements that roll up one local day (`s.from`..`s.to`) of one site from its stored
/// visits, in order; the last one marks the day done under `version` (see
/// `schema/0004_rollups.sql`), computed at `now`.
pub fn rollup_day(s: &Scope, day: jiff::civil::Date, version: u64, now: Timestamp) -> Vec<String> {
    let tz = &s.tz;
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
    // Every breakdown of a unit row: (dimension name, its value).
    let mut breakdowns = Vec::new();
    for d in ROLLED_UP {
        breakdowns.push(format!("({}, {})", lit(d.name()), dimension(d, s)));
    }
    breakdowns.push(format!("('time:hour', formatDateTime(ts, '%H', {tz}))"));
    let mut pairs = vec!["('', '')".to_string()];
    pairs.extend(breakdowns.iter().cloned());
    // The whole site's durations are in `rollup_durations`; a filter value's are paired.
    breakdowns.push(format!("({}, toString(duration))", lit(DURATION_SECONDS)));
    let filters: Vec<String> = PAIRED
        .iter()
        .map(|d| format!("({}, {})", lit(d.name()), dimension(*d, s)))
        .collect();
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
        // Each unit row once per filter value it has, then once per breakdown value (ClickHouse
        // 18.16 takes one ARRAY JOIN per SELECT); a filter is not crossed with itself.
        format!(
            "INSERT INTO {db}.rollup_pairs
    (site, day, filter, filter_value, dimension, value, {cols}, version)
SELECT {site}, toDate({day}), pair_filter, pair_filter_value, dv.1, dv.2, {comps}, {version}
FROM
(
    SELECT f.1 AS pair_filter, f.2 AS pair_filter_value, *
    FROM
    (
{units}
    )
    ARRAY JOIN [{filters}] AS f
)
ARRAY JOIN [{breakdowns}] AS dv
WHERE dv.1 != pair_filter
GROUP BY pair_filter, pair_filter_value, dv.1, dv.2",
            db = s.database,
            cols = ROLLUP_COLUMNS.join(", "),
            comps = comps.join(", "),
            filters = filters.join(", "),
            breakdowns = breakdowns.join(", "),
        ),
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
            "INSERT INTO {db}.rollup_days (site, day, computed, events, version, pairs)
SELECT {site}, toDate({day}), {computed}, count(), {version}, 1
FROM
(
{units}
)",
            db = s.database,
            computed = datetime(now),
        ),
    ]
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
                "({}, toDate({}), {}, 0, {version}, 1)",
                lit(site),
                lit(&d.to_string()),
                datetime(now)
            )
        })
        .collect();
    format!(
        "INSERT INTO {database}.rollup_days (site, day, computed, events, version, pairs) VALUES {}",
        rows.join(", ")
    )
}

/// UTC hours with raw events of `site` whose visits are not stored yet (`h`, unix seconds).
pub fn unstored_hours(database: &str, site: &str) -> String {
    format!(
        "SELECT DISTINCT toUInt32(toStartOfHour(ts)) AS h FROM {database}.events
WHERE site = {site} AND toStartOfHour(ts) NOT IN (
    SELECT slice FROM {database}.visit_slices WHERE site = {site} AND done = 1)",
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
/// and whether that computation wrote `rollup_pairs` (`pairs`).
pub fn rolled_since(database: &str, site: &str, first: jiff::civil::Date) -> String {
    format!(
        "SELECT toString(day) AS day_text, toUInt32(max(computed)) AS computed,
    argMax(pairs, version) AS pairs
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
    pub pairs: u8,
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
