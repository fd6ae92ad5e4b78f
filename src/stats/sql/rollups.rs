//! Reports from the rollup tables (`rollup_daily`, `rollup_durations`, `rollup_days`): whole
//! local days, summed, at the version each day's marker names.

use super::{lit, qualified, Scope, Sql};
use crate::stats::query::{Dimension, Filter, Op};

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

/// Filter dimensions of `rollup_pairs`: those with few values per day. Each of their values is
/// crossed with every value of every [`ROLLED_UP`] dimension and the local hour. Pages and
/// referrers would multiply a day's rows by their thousands of values.
///
/// In the order of how many values a site usually has, fewest first: a breakdown by two paired
/// dimensions reads the first one's rows (`filter`), each crossed with the other. The table is
/// ordered by filter value before dimension, so every filter value costs at least a granule:
/// the source (hundreds of referrer hosts) × country breakdown read 1.0 M rows for 30 days of
/// the benchmark site as source rows, far fewer as country rows (20 values there).
pub const PAIRED: [Dimension; 8] = [
    Dimension::Device,
    Dimension::Browser,
    Dimension::Os,
    Dimension::UtmMedium,
    Dimension::Country,
    Dimension::UtmSource,
    Dimension::Source,
    Dimension::UtmCampaign,
];

/// The breakdown of `rollup_pairs` by whole seconds of visit duration (`value`; its `visits`
/// column counts the visits): a paired filter value's duration percentiles, as
/// `rollup_durations` holds the whole site's. Not an API dimension.
pub const DURATION_SECONDS: &str = "visit:duration_seconds";

/// Column list of `rollup_daily` (and `rollup_pairs`) after `(site, day, dimension, value)`, in
/// [`COMPONENTS`] order (the first ten; percentiles come from `rollup_durations`).
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

/// Days of `site` rolled up between two local dates (inclusive), as `YYYY-MM-DD` strings, and
/// whether their current computation wrote `rollup_pairs` ([`RolledDay`]).
pub fn rolled_days(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
) -> String {
    format!(
        "SELECT toString(day) AS day_text, argMax(pairs, version) AS pairs,
    argMax(page_seconds, version) AS page_seconds
FROM {database}.rollup_days
WHERE site = {} AND day >= toDate({}) AND day <= toDate({})
GROUP BY day",
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

/// One value of one rolled-up dimension: the rows a report filtered by `dimension is value`
/// reads instead of unit rows.
///
/// The rollup job groups a day's unit rows by `dimensions::dimension(d)` and computes every
/// component per value; the filter `d is v` keeps the unit rows where that same expression
/// equals `v`. So the rows of `(d, v)` hold exactly the filtered report's components, distinct
/// visitors included, for one value. Not for several values or a case-insensitive match: a
/// visitor can have visits with two sources in a day, so distinct visitors do not add up over
/// values. Not for pages and hosts either: there a filter keeps the visits that viewed a
/// matching page, while the rollup groups visits by their entry page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slice<'a> {
    pub dimension: Dimension,
    pub value: &'a str,
}

impl<'a> Slice<'a> {
    /// The slice that answers `filters` (the report's filters, all of which must hold), if
    /// they are one case-sensitive `is` with one value on a rolled-up dimension whose filter
    /// compares the dimension's value; `None` for anything else.
    pub fn of(filters: &'a [Filter]) -> Option<Slice<'a>> {
        let [only] = filters else {
            return None;
        };
        match only {
            Filter::And(inner) => Slice::of(inner),
            Filter::Leaf {
                op: Op::Is,
                dimension,
                values,
                case_sensitive: true,
            } if ROLLED_UP.contains(dimension)
                && !matches!(dimension, Dimension::Page | Dimension::Hostname) =>
            {
                let [value] = values.as_slice() else {
                    return None;
                };
                // A `*` in an entry or exit page is a pattern (`dimensions::leaf`).
                if dimension.is_page() && value.contains('*') {
                    return None;
                }
                Some(Slice {
                    dimension: *dimension,
                    value,
                })
            }
            _ => None,
        }
    }
}

/// The grouped query over rollups for whole local days `first..=last`, in the same shape as
/// [`grouped`] (percentile components are 0; they come from [`rollup_durations`]), over the
/// rows of `slice` if given. `None` when the dimensions cannot be answered from rollups.
pub fn rollup_grouped(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
    dimensions: &[Dimension],
    slice: Option<Slice>,
) -> Option<String> {
    grouped_slice(&Days::dates(database, site, first, last), dimensions, slice)
}

/// [`rollup_grouped`] over `days`, not filtered.
pub fn grouped_over(days: &Days, dimensions: &[Dimension]) -> Option<String> {
    grouped_slice(days, dimensions, None)
}

/// Where a report over rollups reads: the table and the condition on its row kind.
struct Source {
    table: &'static str,
    rows: String,
    /// The expressions of the dimensions, over `day` and `value`.
    exprs: Vec<String>,
}

/// Which rollup rows answer `dimensions` over `slice`, if any (`first`: the period's first day,
/// where its first week starts).
///
/// Every rollup row is one local day of one kind (`''`, a dimension, `time:hour`), so the
/// dimensions read from `day` alone (day, week, month, weekday) go with any kind, and one
/// other kind is read from its rows in `rollup_daily`. Two kinds are a pair: read from
/// `rollup_pairs` when one of them is a paired filter dimension, its value in `filter_value`.
fn source(first: &Sql, dimensions: &[Dimension], slice: Option<Slice>) -> Option<Source> {
    let mut parts = Vec::new();
    for d in dimensions {
        let (kind, expr) = rollup_dimension(*d, first)?;
        parts.push((*d, kind, expr));
    }
    let mut kinds: Vec<&str> = Vec::new();
    for (_, kind, _) in &parts {
        if !kind.is_empty() && !kinds.contains(kind) {
            kinds.push(kind);
        }
    }
    let daily = |rows: String, parts: Vec<(Dimension, &str, String)>| Source {
        table: "rollup_daily",
        rows,
        exprs: parts.into_iter().map(|p| p.2).collect(),
    };
    match (kinds.as_slice(), slice) {
        ([], None) => Some(daily(format!("dimension = {}", lit("")), parts)),
        ([kind], None) => Some(daily(format!("dimension = {}", lit(kind)), parts)),
        // The value's own rows: whole-site numbers of the filtered units, by day, or its row
        // of its own breakdown.
        ([], Some(s)) => Some(daily(value_rows(s), parts)),
        ([kind], Some(s)) if *kind == s.dimension.name() => Some(daily(value_rows(s), parts)),
        ([kind], Some(s)) if PAIRED.contains(&s.dimension) => Some(Source {
            table: "rollup_pairs",
            rows: format!(
                "filter = {} AND filter_value = {} AND dimension = {}",
                lit(s.dimension.name()),
                lit(s.value),
                lit(kind)
            ),
            exprs: parts.into_iter().map(|p| p.2).collect(),
        }),
        // Two dimensions, one of them paired: all of its values, each crossed with the other.
        // Both paired: the one with fewer values is the filter side (see [`PAIRED`]).
        ([a, b], None) => {
            let filter = parts
                .iter()
                .filter(|(d, k, _)| (k == a || k == b) && PAIRED.contains(d))
                .min_by_key(|(d, _, _)| PAIRED.iter().position(|p| p == d))?
                .0;
            let breakdown = if filter.name() == *a { *b } else { *a };
            Some(Source {
                table: "rollup_pairs",
                rows: format!(
                    "filter = {} AND dimension = {}",
                    lit(filter.name()),
                    lit(breakdown)
                ),
                exprs: parts
                    .into_iter()
                    .map(|(d, _, expr)| {
                        if d == filter {
                            "filter_value".to_string()
                        } else {
                            expr
                        }
                    })
                    .collect(),
            })
        }
        _ => None,
    }
}

/// The condition on `rollup_daily` that keeps the rows of one dimension value.
fn value_rows(s: Slice) -> String {
    format!(
        "dimension = {} AND value = {}",
        lit(s.dimension.name()),
        lit(s.value)
    )
}

/// Whether the rollup read of `dimensions` over `slice` reads `rollup_pairs`, which days rolled
/// up before migration 0007 lack (`rollup_days.pairs` = 0).
pub fn reads_pairs(dimensions: &[Dimension], slice: Option<Slice>) -> bool {
    source(&Sql::fixed("toDate(0)"), dimensions, slice).is_some_and(|s| s.table == "rollup_pairs")
}

/// [`rollup_grouped`] over `days`.
fn grouped_slice(days: &Days, dimensions: &[Dimension], slice: Option<Slice>) -> Option<String> {
    let source = source(&days.first, dimensions, slice)?;
    let comps: Vec<String> = ROLLUP_COLUMNS
        .iter()
        .map(|c| format!("toFloat64(sum({c}))"))
        .chain(std::iter::repeat_n("toFloat64(0)".to_string(), 3))
        .collect();
    let group = if source.exprs.is_empty() {
        ""
    } else {
        "\nGROUP BY dims"
    };
    Some(format!(
        "SELECT [{dims}] AS dims, [{comps}] AS comps
FROM {table}
WHERE site = {site} AND day >= {first} AND day <= {last} AND {rows}
    AND {current}{group}",
        dims = source.exprs.join(", "),
        comps = comps.join(", "),
        table = days.table(source.table),
        site = days.site,
        first = days.first,
        last = days.last,
        rows = source.rows,
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

/// Visits per second of duration of `slice` over rolled-up days (`seconds`, `visits`), like
/// [`rollup_durations`]; `None` when the slice's dimension is not paired.
pub fn pair_durations(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
    slice: Slice,
) -> Option<String> {
    if !PAIRED.contains(&slice.dimension) {
        return None;
    }
    let days = Days::dates(database, site, first, last);
    Some(format!(
        "SELECT toUInt32(value) AS seconds, toUInt64(sum(visits)) AS visits FROM {}
WHERE site = {} AND day >= {} AND day <= {}
    AND filter = {} AND filter_value = {} AND dimension = {}
    AND {}
GROUP BY seconds",
        days.table("rollup_pairs"),
        days.site,
        days.first,
        days.last,
        lit(slice.dimension.name()),
        lit(slice.value),
        lit(DURATION_SECONDS),
        current_versions(&days)
    ))
}

/// Page visits per whole second on the page over rolled-up days (`value`, `seconds`,
/// `page_visits`): the whole site's (`dimensions` empty; `value` is `''`) or each page's
/// (`[event:page]`), of the pages in `only` alone when given (the rows a report shows). `None`
/// for other dimensions: `rollup_page_seconds` keeps these two.
pub fn page_seconds(
    database: &str,
    site: &str,
    first: jiff::civil::Date,
    last: jiff::civil::Date,
    dimensions: &[Dimension],
    only: Option<&[Vec<String>]>,
) -> Option<String> {
    if !page_dimensions(dimensions) {
        return None;
    }
    let dimension = if dimensions.is_empty() {
        ""
    } else {
        Dimension::Page.name()
    };
    let days = Days::dates(database, site, first, last);
    let values = match only {
        Some(shown) => {
            let values: Vec<String> = shown
                .iter()
                .filter_map(|dims| dims.first())
                .map(|v| lit(v))
                .collect();
            if values.is_empty() {
                // Nothing shown: no value matches.
                "\n    AND 0".to_string()
            } else {
                format!("\n    AND value IN ({})", values.join(", "))
            }
        }
        None => String::new(),
    };
    Some(format!(
        "SELECT value, seconds, toUInt64(sum(page_visits)) AS page_visits FROM {table}
WHERE site = {site} AND dimension = {dimension}{values}
    AND day >= {first} AND day <= {last} AND {current}
GROUP BY value, seconds",
        table = days.table("rollup_page_seconds"),
        site = days.site,
        dimension = lit(dimension),
        first = days.first,
        last = days.last,
        current = current_versions(&days),
    ))
}

/// Whether `rollup_page_seconds` keeps the page seconds grouped by `dimensions`: the whole
/// site's (none) and each page's.
pub fn page_dimensions(dimensions: &[Dimension]) -> bool {
    matches!(dimensions, [] | [Dimension::Page])
}

/// A row of [`page_seconds`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct PageSeconds {
    pub value: String,
    pub seconds: u32,
    pub page_visits: u64,
}

/// A row of [`rolled_days`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct RolledDay {
    pub day_text: String,
    pub pairs: u8,
    pub page_seconds: u8,
}

/// A row of [`days_with_events`] and the rollup job's day lists.
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct DayRow {
    pub day_text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is(dimension: Dimension, values: &[&str], case_sensitive: bool) -> Filter {
        Filter::Leaf {
            op: Op::Is,
            dimension,
            values: values.iter().map(|v| v.to_string()).collect(),
            case_sensitive,
        }
    }

    #[test]
    fn issue_14_only_one_exact_value_of_a_visit_dimension_is_a_slice() {
        let nl = [is(Dimension::Country, &["NL"], true)];
        assert_eq!(
            Slice::of(&nl),
            Some(Slice {
                dimension: Dimension::Country,
                value: "NL"
            })
        );
        let wrapped = [Filter::And(nl.to_vec())];
        assert_eq!(Slice::of(&wrapped).map(|s| s.value), Some("NL"));
        let entry = [is(Dimension::EntryPage, &["/a"], true)];
        assert_eq!(
            Slice::of(&entry).map(|s| s.dimension),
            Some(Dimension::EntryPage)
        );

        // Distinct visitors do not add up over values, and a page filter keeps the visits
        // that viewed the page, not those that entered on it.
        for refused in [
            vec![],
            vec![is(Dimension::Country, &["NL", "DE"], true)],
            vec![is(Dimension::Source, &["google"], false)],
            vec![is(Dimension::Page, &["/a"], true)],
            vec![is(Dimension::Hostname, &["a.example"], true)],
            vec![is(Dimension::EntryPage, &["/blog/*"], true)],
            vec![is(Dimension::Channel, &["Direct"], true)],
            vec![
                is(Dimension::Country, &["NL"], true),
                is(Dimension::Os, &["Linux"], true),
            ],
            vec![Filter::Not(Box::new(is(Dimension::Country, &["NL"], true)))],
            vec![Filter::Leaf {
                op: Op::Contains,
                dimension: Dimension::Source,
                values: vec!["Goo".into()],
                case_sensitive: true,
            }],
        ] {
            assert_eq!(Slice::of(&refused), None, "{refused:?}");
        }
    }

    #[test]
    fn issue_14_a_slice_reads_its_value_rows_for_day_dimensions_and_itself() {
        let day: jiff::civil::Date = "2026-03-29".parse().unwrap();
        let nl = Slice {
            dimension: Dimension::Country,
            value: "NL",
        };
        let read = |dims: &[Dimension]| rollup_grouped("db", "a.example", day, day, dims, Some(nl));
        for dims in [
            vec![],
            vec![Dimension::Day],
            vec![Dimension::Month],
            vec![Dimension::Weekday],
            vec![Dimension::Country],
        ] {
            let sql = read(&dims).unwrap();
            assert!(
                sql.contains("dimension = 'visit:country' AND value = 'NL'"),
                "{sql}"
            );
        }
        // Crossed with the hour and the other dimensions in `rollup_pairs`.
        for dims in [
            vec![Dimension::Hour],
            vec![Dimension::HourOfDay],
            vec![Dimension::Weekday, Dimension::HourOfDay],
            vec![Dimension::Source],
            vec![Dimension::Page],
        ] {
            let sql = read(&dims).unwrap();
            assert!(
                sql.contains("FROM db.rollup_pairs")
                    && sql.contains("filter = 'visit:country' AND filter_value = 'NL'"),
                "{sql}"
            );
            assert!(reads_pairs(&dims, Some(nl)));
        }
        assert!(!reads_pairs(&[Dimension::Country], Some(nl)));
        assert!(!reads_pairs(&[Dimension::Source], None));
        // A filter with many values is not paired.
        let entry = Slice {
            dimension: Dimension::EntryPage,
            value: "/",
        };
        assert!(
            rollup_grouped("db", "a.example", day, day, &[Dimension::Day], Some(entry)).is_some()
        );
        for dims in [vec![Dimension::Source], vec![Dimension::HourOfDay]] {
            assert_eq!(
                rollup_grouped("db", "a.example", day, day, &dims, Some(entry)),
                None
            );
        }
    }

    #[test]
    fn issue_14_two_paired_dimensions_read_the_rows_of_the_one_with_fewer_values() {
        let day: jiff::civil::Date = "2026-03-29".parse().unwrap();
        let read = |dims: &[Dimension]| rollup_grouped("db", "a.example", day, day, dims, None);
        for (dims, filter, breakdown) in [
            (
                [Dimension::Source, Dimension::Country],
                "visit:country",
                "visit:source",
            ),
            (
                [Dimension::Country, Dimension::Source],
                "visit:country",
                "visit:source",
            ),
            (
                [Dimension::Country, Dimension::Device],
                "visit:device",
                "visit:country",
            ),
            // One paired: that one, whatever the order.
            (
                [Dimension::Page, Dimension::Source],
                "visit:source",
                "event:page",
            ),
        ] {
            let sql = read(&dims).unwrap();
            assert!(
                sql.contains(&format!(
                    "filter = '{filter}' AND dimension = '{breakdown}'"
                )),
                "{dims:?}: {sql}"
            );
            // The answer's columns stay in the order asked for.
            let columns = if dims[0].name() == filter {
                "SELECT [filter_value, value] AS dims"
            } else {
                "SELECT [value, filter_value] AS dims"
            };
            assert!(sql.starts_with(columns), "{dims:?}: {sql}");
        }
    }
}
