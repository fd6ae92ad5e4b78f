//! The rollup job's SQL: the statements that compute one local day of one site into the rollup
//! tables (visits built from raw events as the reports build them), and the day markers.

use jiff::Timestamp;

use crate::stats::sql::rollups::{ROLLED_UP, ROLLUP_COLUMNS};
use crate::stats::sql::visits::{dimension, units};
use crate::stats::sql::{datetime, lit, Scope, COMPONENTS};

/// The statements that roll up one local day (`s.from`..`s.to`) of one site, in order; the
/// last one marks the day done under `version` (random; see `schema/0004_rollups.sql`).
pub fn rollup_day(s: &Scope, day: jiff::civil::Date, version: u64) -> Vec<String> {
    let tz = s.tz.as_str();
    let mut pairs = vec!["('', '')".to_string()];
    for d in ROLLED_UP {
        pairs.push(format!("({}, {})", lit(d.name()), dimension(d, s)));
    }
    pairs.push(format!("('time:hour', formatDateTime(ts, '%H', {tz}))"));
    let comps: Vec<String> = COMPONENTS[..ROLLUP_COLUMNS.len()]
        .iter()
        .map(|c| format!("toUInt64({})", c.replace("{tz}", tz)))
        .collect();
    let period = format!("ts >= {} AND ts < {}", s.from, s.to);
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
            site = s.site,
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
            site = s.site,
            units = units(s, ""),
        ),
        format!(
            "INSERT INTO {db}.rollup_days (site, day, computed, events, version)
SELECT {site}, toDate({day}), now(), count(), {version}
FROM {db}.events
WHERE site = {site} AND {period}",
            db = s.database,
            site = s.site,
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
