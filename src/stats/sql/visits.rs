//! Reports over unit rows: dimension values and filters as SQL, and the grouped query that
//! computes the metric components per dimension tuple from a period's units (`super::units`).

use std::fmt::Write as _;

use jiff::Timestamp;

use super::conversions::{self, Conversions};
use super::units::{stored_only, units};
use super::{datetime, lit, Scope, COMPONENTS, EVENTS, TIME_ON_PAGE_MEDIAN};
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

/// A dimension shown as its stored column, with a label for the empty value: the column and
/// the label. One list for the value shown ([`dimension`]) and the exact filter on it.
fn labelled(d: Dimension) -> Option<(&'static str, &'static str)> {
    Some(match d {
        Dimension::Source => ("source", "Direct / None"),
        Dimension::Referrer => ("referrer", "Direct / None"),
        Dimension::UtmSource => ("utm_source", "(not set)"),
        Dimension::UtmMedium => ("utm_medium", "(not set)"),
        Dimension::UtmCampaign => ("utm_campaign", "(not set)"),
        Dimension::UtmContent => ("utm_content", "(not set)"),
        Dimension::UtmTerm => ("utm_term", "(not set)"),
        Dimension::Country => ("country", "(not set)"),
        Dimension::Browser => ("browser", "(not set)"),
        Dimension::Os => ("os", "(not set)"),
        _ => return None,
    })
}

/// The SQL expression of a dimension's value over unit rows (as shown in answers and filters).
pub fn dimension(d: Dimension, s: &Scope) -> String {
    let tz = &s.tz;
    match d {
        Dimension::Source
        | Dimension::Referrer
        | Dimension::UtmSource
        | Dimension::UtmMedium
        | Dimension::UtmCampaign
        | Dimension::UtmContent
        | Dimension::UtmTerm
        | Dimension::Country
        | Dimension::Browser
        | Dimension::Os => labelled(d)
            .map(|(col, empty)| format!("if({col} = '', {}, {col})", lit(empty)))
            .unwrap_or_default(),
        Dimension::Page => "path".into(),
        Dimension::Hostname => "host".into(),
        Dimension::EntryPage => "entry".into(),
        Dimension::ExitPage => "exit".into(),
        Dimension::CountryName => crate::country_names::sql("country"),
        Dimension::Channel => {
            crate::channel::sql("source", "utm_source", "utm_medium", "utm_campaign")
        }
        Dimension::Device => {
            "if(device = '', '(not set)', concat(upper(substring(device, 1, 1)), substring(device, 2)))".into()
        }
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
        // The column `grouped` joins in (`conversions::goal_join`).
        Dimension::Goal => "goal".into(),
        Dimension::Prop(i) => s
            .conversions
            .as_ref()
            .map(|c| c.prop_value(i))
            .unwrap_or_else(|| "'(none)'".into()),
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
            let wildcards = d.is_page();
            let on = |expr: &str| leaf(*op, expr, values, *case_sensitive, wildcards);
            match d {
                Dimension::Goal => match &s.conversions {
                    Some(c) => c.goal_filter(*op, values, *case_sensitive),
                    None => "0".into(),
                },
                Dimension::Page | Dimension::Hostname if s.pages_grouped => {
                    on(if *d == Dimension::Page {
                        "path"
                    } else {
                        "host"
                    })
                }
                Dimension::Page | Dimension::Hostname => {
                    let (col, elem) = if *d == Dimension::Page {
                        ("path", "pp")
                    } else {
                        ("host", "ph")
                    };
                    // A negative operator on a visit: the visit viewed no matching page.
                    let (pos, negated) = match op {
                        Op::IsNot => (Op::Is, true),
                        Op::ContainsNot => (Op::Contains, true),
                        Op::MatchesNot => (Op::Matches, true),
                        other => (*other, false),
                    };
                    // A visit row's pages are its `(pages_path, pages_host)` pairs.
                    let array = if *d == Dimension::Page {
                        "pages_path"
                    } else {
                        "pages_host"
                    };
                    let any = any_element(pos, array, values, *case_sensitive, wildcards)
                        .unwrap_or_else(|| {
                            format!(
                                "arrayExists((pp, ph) -> {}, pages_path, pages_host)",
                                leaf(pos, elem, values, *case_sensitive, wildcards)
                            )
                        });
                    let visit = if negated { format!("NOT {any}") } else { any };
                    format!("if(kind = 0, {visit}, {})", on(col))
                }
                other => stored_value(*op, *other, values, *case_sensitive)
                    .unwrap_or_else(|| on(&dimension(*other, s))),
            }
        }
    }
}

/// An exact `is` / `is_not` on a column the API shows with a label for the empty value
/// (`Direct / None`, `(not set)`), written on the stored column: `source = 'Google'` rather
/// than `if(source = '', 'Direct / None', source) = 'Google'`, which ClickHouse 18.16 computes
/// for every row it reads (a fifth of a filtered report's filtering). The label itself
/// selects the empty value and any stored value equal to it, as the labelled form does; an
/// empty value selects nothing. `None`: another operator, dimension or a case-insensitive value.
fn stored_value(op: Op, d: Dimension, values: &[String], case_sensitive: bool) -> Option<String> {
    let (column, label) = labelled(d)?;
    if !case_sensitive || !matches!(op, Op::Is | Op::IsNot) {
        return None;
    }
    let mut stored: Vec<String> = Vec::new();
    for v in values.iter().filter(|v| !v.is_empty()) {
        if v == label {
            stored.push(lit(""));
        }
        stored.push(lit(v));
    }
    let any = match stored.as_slice() {
        [] => "0".to_string(),
        [one] => format!("{column} = {one}"),
        many => format!("{column} IN ({})", many.join(", ")),
    };
    Some(match op {
        Op::IsNot => format!("NOT ({any})"),
        _ => format!("({any})"),
    })
}

/// "Some element of `array` matches" without a lambda, for the common positive operators:
/// `is` (no wildcard, case-sensitive) as `has`, `contains` as a search in the elements joined
/// by a line feed. ClickHouse 18.16 evaluates `arrayExists` with a lambda by copying every
/// other column of the block once per element, which made a visit-level page filter a third
/// of a filtered report's time. The joined search finds exactly the elements' matches: a
/// stored path or host never holds a line feed (the URL parser drops it), and a value holding
/// one, or an empty value, takes the lambda. `None`: another operator, a wildcard or such a
/// value.
fn any_element(
    op: Op,
    array: &str,
    values: &[String],
    case_sensitive: bool,
    wildcards: bool,
) -> Option<String> {
    if values.is_empty() || values.iter().any(|v| v.is_empty() || v.contains('\n')) {
        return None;
    }
    let one = |v: &str| -> Option<String> {
        match op {
            Op::Is if wildcards && v.contains('*') => None,
            Op::Is if case_sensitive => Some(format!("has({array}, {})", lit(v))),
            Op::Contains if case_sensitive => Some(format!(
                "position(arrayStringConcat({array}, '\\n'), {}) > 0",
                lit(v)
            )),
            Op::Contains => Some(format!(
                "positionCaseInsensitiveUTF8(arrayStringConcat({array}, '\\n'), {}) > 0",
                lit(v)
            )),
            _ => None,
        }
    };
    let parts = values.iter().map(|v| one(v)).collect::<Option<Vec<_>>>()?;
    Some(format!("({})", parts.join(" OR ")))
}

/// The report's filters as conditions on its unit rows. Over a prefiltered table
/// ([`Scope::units_table`]) they were evaluated when the table was filled: a row's
/// `keep_visits` or `keep_pages` (grouped by page) says whether they keep it.
pub fn filter_conditions(s: &Scope, filters: &[Filter]) -> Vec<String> {
    if s.units_table.is_some() && !filters.is_empty() {
        let flag = if s.pages_grouped {
            "keep_pages"
        } else {
            "keep_visits"
        };
        return vec![format!("({flag} = 1)")];
    }
    filters
        .iter()
        .map(|f| format!("({})", filter(f, s)))
        .collect()
}

fn join(v: &[Filter], sep: &str, s: &Scope) -> String {
    let parts: Vec<String> = v.iter().map(|f| format!("({})", filter(f, s))).collect();
    parts.join(sep)
}

/// One filter condition on `expr`. With `wildcards` (page paths), an `is` / `is_not` value
/// holding `*` is a pattern, as in Plausible ([`wildcard_regex`]).
pub fn leaf(
    op: Op,
    expr: &str,
    values: &[String],
    case_sensitive: bool,
    wildcards: bool,
) -> String {
    let one = |v: &str| -> String {
        match op {
            Op::Is | Op::IsNot if wildcards && v.contains('*') && case_sensitive => {
                format!("match({expr}, {})", lit(&wildcard_regex(v)))
            }
            // Both sides lower-cased rather than re2's `(?i)`: ClickHouse 18.16 looks for the
            // pattern's literal part case-sensitively before running the regex, so `(?i)`
            // matched nothing there. The escaped pattern has no letter escapes to break.
            Op::Is | Op::IsNot if wildcards && v.contains('*') => format!(
                "match(lowerUTF8({expr}), {})",
                lit(&wildcard_regex(&v.to_lowercase()))
            ),
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

/// The regular expression of a page pattern, as Plausible writes it (`page_regex` in its
/// `Plausible.Stats.Filters.Utils`): anchored at both ends, `*` and `**` both any run of
/// characters (`/` too: `/blog*` matches `/blog` and `/blog/a/b`), everything else literal.
pub fn wildcard_regex(pattern: &str) -> String {
    let parts: Vec<String> = pattern.split('*').map(regex_syntax::escape).collect();
    // `**` splits into an empty part between two stars; consecutive `.*` are the same pattern.
    let mut out = String::from("^");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && !out.ends_with(".*") {
            out.push_str(".*");
        }
        out.push_str(part);
    }
    out.push('$');
    out
}

/// How a grouped query gives the percentile components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentiles {
    /// As values: `comps` is all of [`COMPONENTS`], then the median time on page when asked
    /// for. For readers that run the SQL alone (the Grafana dashboards).
    Values { time_on_page_median: bool },
    /// As histograms, which add up over shards: `comps` is the ten additive components, then
    /// `duration_keys`/`duration_counts` (visits per whole second of duration) and
    /// `page_keys`/`page_counts` (page visits per whole second on the page), each empty unless
    /// asked for. For the report engine ([`HistogramRow`]). Only the additive components in
    /// `components` are computed; the others answer 0. With `one_shard` (every visitor is on
    /// the shard asked), the percentiles asked for come as values instead, in
    /// `duration_quantiles` (median, p75, p90 of the visit duration) and `page_quantiles`
    /// (median seconds on page), and the histograms stay empty: ClickHouse 18.16 builds a
    /// histogram (`sumMap`) about ten times slower than it sorts the values (`quantilesExact`,
    /// the same position ⌊q·n⌋ the engine reads from a histogram).
    Histograms {
        durations: bool,
        page_seconds: bool,
        components: Components,
        one_shard: bool,
    },
}

/// A set of the additive components: bit `i` is `COMPONENTS[i]` for `i` below [`ADDITIVE`],
/// bit [`ADDITIVE`] the events ([`EVENTS`]). Each costs ClickHouse work on every row a report
/// reads, so the engine asks for those its metrics are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Components(pub u16);

impl Components {
    pub const ALL: Components = Components(u16::MAX);

    pub fn with(self, i: usize) -> Components {
        Components(self.0 | 1 << i)
    }

    pub fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

/// The components that add up over days and shards: every one but the percentiles. In
/// [`Percentiles::Histograms`] rows, `events` ([`EVENTS`]) follows them at this index.
pub const ADDITIVE: usize = 10;

/// A row of [`grouped`] with [`Percentiles::Histograms`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct HistogramRow {
    pub dims: Vec<String>,
    pub comps: Vec<f64>,
    pub duration_keys: Vec<u32>,
    pub duration_counts: Vec<u64>,
    pub page_keys: Vec<u32>,
    pub page_counts: Vec<u64>,
    pub duration_quantiles: Vec<u32>,
    pub page_quantiles: Vec<u32>,
}

/// The scope of a query grouped by `dimensions`: grouped by page or host, a page filter keeps
/// the matching pages' rows only ([`Scope::pages_grouped`]).
fn grouped_scope<'a>(s: &Scope<'a>, dimensions: &[Dimension]) -> Scope<'a> {
    Scope {
        pages_grouped: dimensions
            .iter()
            .any(|d| matches!(d, Dimension::Page | Dimension::Hostname)),
        ..s.clone()
    }
}

/// The grouped query: one row per dimension tuple with the metric components.
pub fn grouped(
    s: &Scope,
    dimensions: &[Dimension],
    filters: &[Filter],
    percentiles: Percentiles,
) -> String {
    let grouped_scope = grouped_scope(s, dimensions);
    let s = &grouped_scope;
    let dims: Vec<String> = dimensions.iter().map(|d| dimension(*d, s)).collect();
    let (components, extra) = match percentiles {
        Percentiles::Values {
            time_on_page_median,
        } => {
            let mut comps: Vec<&str> = COMPONENTS.to_vec();
            if time_on_page_median {
                comps.push(TIME_ON_PAGE_MEDIAN);
            }
            (comps, String::new())
        }
        Percentiles::Histograms {
            durations,
            page_seconds,
            components,
            one_shard,
        } => {
            let histogram = |wanted: bool, name: &str, of: &str, when: &str| {
                if wanted && !one_shard {
                    format!(
                        ", (sumMapIf([toUInt32({of})], [toUInt64(1)], {when}) AS {name}_histogram).1 \
                         AS {name}_keys, {name}_histogram.2 AS {name}_counts"
                    )
                } else {
                    format!(
                        ", emptyArrayUInt32() AS {name}_keys, emptyArrayUInt64() AS {name}_counts"
                    )
                }
            };
            let quantiles = |wanted: bool, name: &str, levels: &str, of: &str, when: &str| {
                if wanted && one_shard {
                    format!(
                        ", quantilesExactIf({levels})(toUInt32({of}), {when}) AS {name}_quantiles"
                    )
                } else {
                    format!(", emptyArrayUInt32() AS {name}_quantiles")
                }
            };
            let (duration, page) = (
                ("duration", "duration", "kind = 0"),
                (
                    "page",
                    "intDiv(page_ms, 1000)",
                    "kind = 1 AND page_visit = 1",
                ),
            );
            let extra = histogram(durations, duration.0, duration.1, duration.2)
                + &histogram(page_seconds, page.0, page.1, page.2)
                + &quantiles(
                    durations,
                    duration.0,
                    "0.5, 0.75, 0.9",
                    duration.1,
                    duration.2,
                )
                + &quantiles(page_seconds, page.0, "0.5", page.1, page.2);
            let comps = match &s.conversions {
                Some(_) => conversions::COMPONENTS.to_vec(),
                None => COMPONENTS[..ADDITIVE]
                    .iter()
                    .chain([&EVENTS])
                    .enumerate()
                    .map(|(i, c)| if components.has(i) { *c } else { "0" })
                    .collect(),
            };
            (comps, extra)
        }
    };
    let comps: Vec<String> = components
        .iter()
        .map(|c| format!("toFloat64({c})"))
        .collect();
    let mut wheres = vec![period(s)];
    if s.conversions.is_some() {
        wheres.push(conversions::ROWS.into());
    }
    wheres.extend(filter_conditions(s, filters));
    let join = match &s.conversions {
        Some(c) if dimensions.contains(&Dimension::Goal) => {
            Conversions::goal_join(&goals_of_filters(c, filters))
        }
        _ => String::new(),
    };
    // By the values themselves, not by the array of their strings: hashing a key of plain
    // columns is cheaper than hashing an array (290 → 272 ms for a filtered 30-day page report
    // on the benchmark data).
    let group = if dims.is_empty() {
        String::new()
    } else {
        format!("\nGROUP BY {}", dims.join(", "))
    };
    let dims = dims
        .iter()
        .map(|d| format!("toString({d})"))
        .collect::<Vec<_>>()
        .join(", ");
    let comps = comps.join(", ");
    let wheres = wheres.join(" AND ");
    if s.conversions.is_none() {
        if let Some((table, current)) = stored_only(s) {
            return format!(
                "SELECT [{dims}] AS dims, [{comps}] AS comps{extra}\nFROM {table}\n\
                 WHERE site = {site} AND {wheres}\n    AND {current}{group}",
                site = s.site,
            );
        }
    }
    format!(
        "SELECT [{dims}] AS dims, [{comps}] AS comps{extra}\nFROM\n(\n{units}\n){join}\nWHERE {wheres}{group}",
        units = units(s, filters, &wheres),
    )
}

/// A condition on unit rows (for [`Scope::units_where`]) that keeps the rows of the groups
/// `shown` alone: their dimension values, as [`grouped`] writes them, are among these tuples.
pub fn groups_in(s: &Scope, dimensions: &[Dimension], shown: &[Vec<String>]) -> super::Sql {
    let s = &grouped_scope(s, dimensions);
    let tuple = |items: Vec<String>| match items.len() {
        1 => items.into_iter().next().unwrap_or_default(),
        _ => format!("({})", items.join(", ")),
    };
    let key = tuple(
        dimensions
            .iter()
            .map(|d| format!("toString({})", dimension(*d, s)))
            .collect(),
    );
    let values: Vec<String> = shown
        .iter()
        .map(|dims| tuple(dims.iter().map(|v| lit(v)).collect()))
        .collect();
    super::Sql(format!("{key} IN ({})", values.join(", ")))
}

/// The goals an `event:goal` dimension shows: those every top-level `event:goal` filter selects
/// (all of the site's without one), in the configured order.
fn goals_of_filters<'c>(c: &'c Conversions, filters: &[Filter]) -> Vec<&'c conversions::GoalRule> {
    let mut goals: Vec<&conversions::GoalRule> = c.goals.iter().collect();
    for f in filters {
        if let Filter::Leaf {
            op,
            dimension: Dimension::Goal,
            values,
            case_sensitive,
        } = f
        {
            let selected = c.selected(*op, values, *case_sensitive);
            goals.retain(|g| selected.contains(g));
        }
    }
    goals
}

/// Visits per whole second of duration in the period (`seconds`, `visits`), of the visits
/// `filters` keep.
pub fn durations(s: &Scope, filters: &[Filter]) -> String {
    let mut cond = format!("kind = 0 AND {}", period(s));
    for c in filter_conditions(s, filters) {
        let _ = write!(cond, " AND {c}");
    }
    format!(
        "SELECT duration AS seconds, toUInt64(count()) AS visits
FROM
(
{units}
)
WHERE {cond}
GROUP BY seconds",
        units = units(s, filters, "kind = 0"),
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

/// Visits and raw events of a site between two instants (`n`): whether anything happened.
pub fn count_events(database: &str, site: &str, from: Timestamp, to: Timestamp) -> String {
    let (site, from, to) = (lit(site), datetime(from), datetime(to));
    format!(
        "SELECT (SELECT count() FROM {database}.events WHERE site = {site} AND ts >= {from} AND ts < {to})
    + (SELECT count() FROM {database}.visits WHERE site = {site} AND ts >= {from} AND ts < {to} AND kind = 0) AS n"
    )
}

/// Earliest stored visit or raw event of a site, for `date_range: "all"` (`t`; `n` = 0: none).
pub fn first_event(database: &str, site: &str) -> String {
    let site = lit(site);
    format!(
        "SELECT toUInt32(min(first)) AS t, toUInt64(sum(rows)) AS n FROM (
    SELECT min(ts) AS first, count() AS rows FROM {database}.events WHERE site = {site}
    UNION ALL
    SELECT min(ts) AS first, count() AS rows FROM {database}.visits WHERE site = {site} AND kind = 0
) WHERE rows > 0"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_wildcards_are_plausibles_patterns() {
        let re = |p: &str| regex::Regex::new(&wildcard_regex(p)).unwrap();
        assert_eq!(wildcard_regex("/blog*"), "^/blog.*$");
        assert_eq!(wildcard_regex("/a/**/b"), "^/a/.*/b$");
        assert_eq!(wildcard_regex("/c++/*.html"), r"^/c\+\+/.*\.html$");
        for (pattern, path, hit) in [
            ("/blog*", "/blog", true),
            ("/blog*", "/blog/a/b", true),
            ("/blog*", "/blogger", true),
            ("/blog*", "/en/blog", false),
            ("/blog/*", "/blog", false),
            ("/blog/*", "/blog/a/b", true),
            ("/blog/**", "/blog/a", true),
            ("*/pricing", "/en/pricing", true),
            ("*/pricing", "/en/pricing/x", false),
            ("/a.b*", "/aXb", false),
        ] {
            assert_eq!(re(pattern).is_match(path), hit, "{pattern} {path}");
        }
        // Only `is` / `is_not` on pages read `*` as a wildcard; a value without one is compared.
        let page = leaf(Op::Is, "path", &["/blog*".into(), "/".into()], false, true);
        assert_eq!(
            page,
            "(match(lowerUTF8(path), '^/blog.*$') OR lowerUTF8(path) = lowerUTF8('/'))"
        );
        let other = leaf(Op::IsNot, "source", &["Goo*".into()], true, false);
        assert_eq!(other, "NOT (source = 'Goo*')");
    }

    #[test]
    fn filters_compose() {
        let s = crate::stats::sql::example_scope();
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
        assert!(sql.contains("((country = 'NL')) OR"), "{sql}");
        // A visit's pages searched joined, without a lambda (see `any_element`).
        assert!(
            sql.contains(
                "if(kind = 0, (positionCaseInsensitiveUTF8(arrayStringConcat(pages_path, '\\n'), '/a') > 0 OR "
            ),
            "{sql}"
        );
        assert!(sql.starts_with("(") && sql.contains(" OR (NOT ("), "{sql}");
    }
}
