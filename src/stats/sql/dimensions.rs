//! Dimensions and filters as SQL over unit rows: the value of each dimension as reports show
//! it, and each filter as a condition on a row (for a visit row, page filters look at the pages
//! it viewed). Shared by the grouped query (`super::visits`), the unit rows' reads
//! (`super::units`), the rollup job and the SQL written for Grafana.

use std::fmt::Write as _;

use super::{lit, Scope, UnitKinds};
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
                    // Rows of pageviews and events alone: the page itself (the query then
                    // neither reads a visit's pages nor tests the kind of every row).
                    if !searches_visit_pages(*d, s) {
                        return on(col);
                    }
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
                    if s.unit_kinds == UnitKinds::VISITS {
                        visit
                    } else {
                        format!("if(kind = 0, {visit}, {})", on(col))
                    }
                }
                other => on_stored(*op, *other, values, *case_sensitive, &on)
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

/// A filter on a column the API shows with a label for the empty value, written on the stored
/// column: an exact `is` / `is_not` as a list of stored values ([`stored_value`]), any other
/// (`contains`, `matches`, their negations, a case-insensitive `is`) with the label's outcome
/// decided once: `position(referrer, 'facebook') > 0` rather than
/// `position(if(referrer = '', 'Direct / None', referrer), 'facebook') > 0`, whose `if`
/// ClickHouse 18.16 computes for every row it reads (the aggregate of `visit:referrer contains
/// "facebook"` over 90 days of the benchmark data: 311 → 251 ms, by hand). Exact: a row with
/// the empty value gets the label's outcome, any other row its own. Where Rust cannot decide a
/// condition exactly as ClickHouse would (a regular expression, a case-insensitive non-ASCII
/// value), ClickHouse decides it on the label once (`if(referrer = '', <on the label>, <on the
/// column>)`: 311 → 286 ms). `None`: not a labelled dimension.
fn on_stored(
    op: Op,
    d: Dimension,
    values: &[String],
    case_sensitive: bool,
    on: &dyn Fn(&str) -> String,
) -> Option<String> {
    let (column, label) = labelled(d)?;
    if let Some(exact) = stored_value(op, d, values, case_sensitive) {
        return Some(exact);
    }
    let stored = on(column);
    let outcome = |text: &str| holds(op, text, values, case_sensitive);
    Some(match (outcome(label), outcome("")) {
        // The empty value's outcome differs from the label's: said for that value alone.
        (Some(true), Some(false)) => format!("({column} = '' OR {stored})"),
        (Some(false), Some(true)) => format!("({column} != '' AND {stored})"),
        (Some(_), Some(_)) => stored,
        _ => format!("if({column} = '', {}, {stored})", on(&lit(label))),
    })
}

/// Whether [`leaf`]'s condition holds for the text `text`, decided as ClickHouse decides it;
/// `None` where that is not certain here (a regular expression, a case-insensitive comparison
/// of non-ASCII text, whose case folding is ClickHouse's own).
fn holds(op: Op, text: &str, values: &[String], case_sensitive: bool) -> Option<bool> {
    let one = |v: &str| -> Option<bool> {
        let ascii = v.is_ascii() && text.is_ascii();
        match op {
            Op::Is | Op::IsNot if case_sensitive => Some(text == v),
            Op::Is | Op::IsNot if ascii => Some(text.eq_ignore_ascii_case(v)),
            // `position` finds bytes, as `str::contains` does (an empty value: everywhere).
            Op::Contains | Op::ContainsNot if case_sensitive => Some(text.contains(v)),
            Op::Contains | Op::ContainsNot if ascii => {
                Some(text.to_ascii_lowercase().contains(&v.to_ascii_lowercase()))
            }
            _ => None,
        }
    };
    let mut any = false;
    for v in values {
        any |= one(v)?;
    }
    Some(match op {
        Op::IsNot | Op::ContainsNot | Op::MatchesNot => !any,
        _ => any,
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

/// Whether [`filter`] writes `f` over a visit's pages (the array columns `pages_path` and
/// `pages_host`), which cost a query far more per row than a plain column: such a condition
/// is best tested on the rows the others keep (`visits::grouped` puts the others in
/// `PREWHERE`).
pub fn reads_visit_pages(f: &Filter, s: &Scope) -> bool {
    match f {
        Filter::And(v) | Filter::Or(v) => v.iter().any(|f| reads_visit_pages(f, s)),
        Filter::Not(inner) => reads_visit_pages(inner, s),
        Filter::Leaf { dimension, .. } => searches_visit_pages(*dimension, s),
    }
}

/// Whether a filter on `d` is written, for visit rows, over the visit's pages: a page or host
/// filter, not grouped by page or host, in a query that reads visit rows. One rule for
/// [`filter`] and [`reads_visit_pages`], so the two cannot disagree.
fn searches_visit_pages(d: Dimension, s: &Scope) -> bool {
    matches!(d, Dimension::Page | Dimension::Hostname) && !s.pages_grouped && s.unit_kinds.has(0)
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

    /// A filter on a labelled column other than an exact `is`: written on the stored column,
    /// the empty value given the label's outcome (the values against ClickHouse are checked in
    /// `tests/it/stored_visits.rs`, `labelled_values_filter_the_rows_their_breakdown_row_shows`).
    #[test]
    fn labelled_columns_are_searched_stored_with_the_labels_outcome() {
        let s = crate::stats::sql::example_scope();
        let sql = |op: Op, d: Dimension, v: &str, case_sensitive: bool| {
            filter(
                &Filter::Leaf {
                    op,
                    dimension: d,
                    values: vec![v.into()],
                    case_sensitive,
                },
                &s,
            )
        };
        // The label does not match: the stored column alone.
        assert_eq!(
            sql(Op::Contains, Dimension::Referrer, "facebook", true),
            "(position(referrer, 'facebook') > 0)"
        );
        // The label matches: the empty value too.
        assert_eq!(
            sql(Op::Contains, Dimension::Source, "none", false),
            "(source = '' OR (positionCaseInsensitiveUTF8(source, 'none') > 0))"
        );
        // Negated, the label matching: the empty value is left out.
        assert_eq!(
            sql(Op::ContainsNot, Dimension::Country, "not", true),
            "(country != '' AND NOT (position(country, 'not') > 0))"
        );
        // An empty value is found in every text, the label's and the empty one alike.
        assert_eq!(
            sql(Op::Contains, Dimension::Os, "", true),
            "(position(os, '') > 0)"
        );
        assert_eq!(
            sql(Op::Is, Dimension::Browser, "(NOT SET)", false),
            "(browser = '' OR (lowerUTF8(browser) = lowerUTF8('(NOT SET)')))"
        );
        // A regular expression, or case folding beyond ASCII: ClickHouse decides the label.
        assert_eq!(
            sql(Op::Matches, Dimension::UtmSource, "^\\(", true),
            "if(utm_source = '', (match('(not set)', '^\\\\(')), (match(utm_source, '^\\\\(')))"
        );
        assert!(
            sql(Op::Contains, Dimension::Referrer, "É", false).starts_with(
                "if(referrer = '', (positionCaseInsensitiveUTF8('Direct / None', 'É') > 0), "
            )
        );
        // Exact `is` keeps its list of stored values.
        assert_eq!(
            sql(Op::Is, Dimension::Source, "Direct / None", true),
            "(source IN ('', 'Direct / None'))"
        );
    }
}
