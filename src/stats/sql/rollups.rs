//! Reports from the rollup tables (`rollup_daily`, `rollup_durations`, `rollup_days`): whole
//! local days, summed, at the version each day's marker names.

use super::{lit, qualified, Scope, Sql};
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

/// The local days a rollup read covers: those of `first..=last` that are rolled up, each at the
/// version its marker names, and, where the reader chooses days in SQL, only those matching
/// `only`.
#[derive(Clone, Debug)]
pub struct Days<'a> {
    /// Database that qualifies table names; empty: unqualified (see [`Scope`]).
    pub database: &'a str,
    pub site: Sql,
    /// First and last day, inclusive (Date expressions).
    pub first: Sql,
    pub last: Sql,
    /// A condition on `day`, for readers that cannot choose the days before asking (Grafana);
    /// the engine chooses them in Rust and sets none.
    pub only: Option<Sql>,
}

impl<'a> Days<'a> {
    /// The days `first..=last` of `site`, as the engine reads them.
    pub fn dates(
        database: &'a str,
        site: &str,
        first: jiff::civil::Date,
        last: jiff::civil::Date,
    ) -> Days<'a> {
        Days {
            database,
            site: Sql::lit(site),
            first: Sql::date(first),
            last: Sql::date(last),
            only: None,
        }
    }

    /// The local days wholly inside the scope's period, chosen in SQL: the SQL form of
    /// `Period::whole_days` for a period known only as expressions.
    pub fn inside(s: &Scope<'a>) -> Days<'a> {
        let (tz, from, to) = (&s.tz, &s.from, &s.to);
        Days {
            database: s.database,
            site: s.site.clone(),
            first: Sql(format!("toDate({from}, {tz})")),
            last: Sql(format!("toDate({to} - 1, {tz})")),
            only: Some(Sql(format!(
                "toDateTime(day, {tz}) >= {from} AND toDateTime(day + 1, {tz}) <= {to}"
            ))),
        }
    }

    /// The same days, only where `cond` (a condition on `day` or a constant) also holds.
    pub fn and(&self, cond: &Sql) -> Days<'a> {
        Days {
            only: Some(Sql(match &self.only {
                Some(only) => format!("{only} AND {cond}"),
                None => cond.to_string(),
            })),
            ..self.clone()
        }
    }

    fn table(&self, table: &str) -> String {
        qualified(self.database, table)
    }

    fn having(&self) -> String {
        match &self.only {
            Some(only) => format!(" HAVING {only}"),
            None => String::new(),
        }
    }
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

/// The days a rollup read of `days` covers (column `day`), for reading the other days
/// elsewhere.
pub fn covered(days: &Days) -> String {
    format!(
        "SELECT day FROM {table}
WHERE site = {site} AND day >= {first} AND day <= {last}
GROUP BY day{having}",
        table = days.table("rollup_days"),
        site = days.site,
        first = days.first,
        last = days.last,
        having = days.having(),
    )
}

/// How a dimension is read from `rollup_daily`: the row kind (`dimension` column) and the
/// value expression over `day` and `value`. `None`: not answerable from rollups.
fn rollup_dimension(d: Dimension, first: &Sql) -> Option<(&'static str, String)> {
    Some(match d {
        Dimension::Day => ("", "toString(day)".into()),
        Dimension::Week => ("", format!("toString(greatest(toMonday(day), {first}))")),
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
    grouped_over(&Days::dates(database, site, first, last), dimensions)
}

/// [`rollup_grouped`] over `days`.
pub fn grouped_over(days: &Days, dimensions: &[Dimension]) -> Option<String> {
    let mut kind = "";
    let mut exprs = Vec::new();
    for d in dimensions {
        let (k, e) = rollup_dimension(*d, &days.first)?;
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
FROM {table}
WHERE site = {site} AND day >= {first} AND day <= {last} AND dimension = {kind}
    AND {current}{group}",
        dims = exprs.join(", "),
        comps = comps.join(", "),
        table = days.table("rollup_daily"),
        site = days.site,
        first = days.first,
        last = days.last,
        kind = lit(kind),
        current = current_versions(days),
    ))
}

/// Rows of the version each day's marker names (the highest if a day was computed twice).
fn current_versions(days: &Days) -> String {
    format!(
        "(day, version) IN (SELECT day, max(version) FROM {} \
         WHERE site = {} AND day >= {} AND day <= {} GROUP BY day{})",
        days.table("rollup_days"),
        days.site,
        days.first,
        days.last,
        days.having(),
    )
}

/// Visits per second of duration over rolled-up days (`seconds`, `visits`).
pub fn rollup_durations(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
) -> String {
    durations_over(&Days::dates(database, site, first, last))
}

/// [`rollup_durations`] over `days`.
pub fn durations_over(days: &Days) -> String {
    format!(
        "SELECT seconds, toUInt64(sum(visits)) AS visits FROM {}
WHERE site = {} AND day >= {} AND day <= {} AND {}
GROUP BY seconds",
        days.table("rollup_durations"),
        days.site,
        days.first,
        days.last,
        current_versions(days)
    )
}

/// A row of [`rolled_days`] and [`days_with_events`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct DayRow {
    pub day_text: String,
}
