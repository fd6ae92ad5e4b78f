//! Reports from the rollup tables (`rollup_daily`, `rollup_durations`, `rollup_days`): whole
//! local days, summed, at the version each day's marker names.

use super::lit;
use crate::stats::query::Dimension;

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
pub const ROLLUP_COLUMNS: [&str; 10] = [
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

/// A row of [`rolled_days`] and [`days_with_events`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct DayRow {
    pub day_text: String,
}
