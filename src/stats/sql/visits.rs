//! Reports over unit rows: the grouped query that computes the metric components per
//! dimension tuple from a period's units (`super::units`), with dimension values and filters
//! written by `super::dimensions`.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::conversions::{self, Conversions};
use super::dimensions::{dimension, filter_conditions, reads_visit_pages};
use super::units::{read_by_page, stored_only, units};
use super::{datetime, lit, Scope, UnitKinds, COMPONENTS, EVENTS, TIME_ON_PAGE_MEDIAN};
use crate::stats::query::{Dimension, Filter};

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

    /// The kinds of unit rows these components count, with the histograms (or quantiles) of
    /// visit durations and of seconds on page when asked for.
    pub fn kinds(self, durations: bool, page_seconds: bool) -> UnitKinds {
        let mut kinds = UnitKinds::NONE;
        for i in 0..=ADDITIVE {
            if !self.has(i) {
                continue;
            }
            kinds = kinds.with(match i {
                // visits, bounces, durations and pageviews of visits
                2..=5 => UnitKinds::VISITS,
                ADDITIVE => UnitKinds::PAGEVIEWS.with(UnitKinds::EVENTS),
                _ => UnitKinds::PAGEVIEWS,
            });
        }
        if durations {
            kinds = kinds.with(UnitKinds::VISITS);
        }
        if page_seconds {
            kinds = kinds.with(UnitKinds::PAGEVIEWS);
        }
        kinds
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
    grouped_rows(s, dimensions, filters, percentiles, false)
}

/// [`grouped`], plus one row with no dimension values (`dims` = `[]`) for all the rows the
/// report reads together: its distinct visitors are the denominator of `percentage`, which
/// otherwise takes a second pass over the same unit rows. The rows are repeated for the total
/// after the filters, so only the rows the filters keep are counted twice.
pub fn grouped_with_total(
    s: &Scope,
    dimensions: &[Dimension],
    filters: &[Filter],
    percentiles: Percentiles,
) -> String {
    grouped_rows(s, dimensions, filters, percentiles, !dimensions.is_empty())
}

fn grouped_rows(
    s: &Scope,
    dimensions: &[Dimension],
    filters: &[Filter],
    percentiles: Percentiles,
    total: bool,
) -> String {
    // A report whose metrics count one kind of row reads only those rows: a page filter
    // then tests the page itself, not a visit's pages, and the other rows are dropped as they
    // are read (countries of the visitors of `contains "/blog/"`: 206 → 132 ms for 30 days of
    // the benchmark data, by hand).
    let unit_kinds = match percentiles {
        Percentiles::Histograms {
            durations,
            page_seconds,
            components,
            ..
        } if s.conversions.is_none() => match components.kinds(durations, page_seconds) {
            UnitKinds::NONE => UnitKinds::ALL,
            kinds => kinds,
        },
        _ => UnitKinds::ALL,
    };
    let grouped_scope = Scope {
        unit_kinds,
        ..grouped_scope(s, dimensions)
    };
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
    let from_days = if total {
        BY_DAY_FROM_DAYS
    } else {
        BY_DAY_WITHOUT_TOTAL_FROM_DAYS
    };
    let by_day = s.period_days >= from_days && counts_visitors_by_day(percentiles, dimensions);
    let mut wheres = vec![period(s)];
    if s.conversions.is_some() {
        wheres.push(conversions::ROWS.into());
    }
    wheres.extend(s.unit_kinds.condition());
    // Conditions on a visit's pages last, and apart: over stored visits they are tested
    // after the others (`PREWHERE`).
    // (A prefiltered table's rows carry the filters' outcome in one flag.)
    // Read by page, the key filter holds for every row kept (`by_page::Key::index`): testing
    // it again read every row's page a second time (countries of the visitors of `contains
    // "/blog/"` at 12 months: 656 → 598 ms, by hand).
    let by_page = read_by_page(s, filters);
    let tested = filters
        .iter()
        .enumerate()
        .filter(|(i, _)| by_page.as_ref().is_none_or(|(key, _)| key.index != *i))
        .map(|(_, f)| f.clone());
    let (late, early): (Vec<Filter>, Vec<Filter>) = match s.units_table {
        Some(_) => (Vec::new(), tested.collect()),
        None => tested.partition(|f| reads_visit_pages(f, s)),
    };
    wheres.extend(filter_conditions(s, &early));
    let pre = wheres.len();
    wheres.extend(filter_conditions(s, &late));
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
    } else if total {
        "\nGROUP BY dims".to_string()
    } else {
        format!("\nGROUP BY {}", dims.join(", "))
    };
    let dims: Vec<String> = dims.iter().map(|d| format!("toString({d})")).collect();
    // Per day: the dimension values, grouped by as plain columns and made one array after
    // (12 months of countries of the visitors of `contains "/blog/"`: 598 → 571 ms, by hand),
    // and every component but the visitors (with a total, which merges the visitors' sets).
    let by_day = by_day.then(|| {
        let mut comps = comps.clone();
        if total {
            comps[VISITORS] = "toFloat64(0)".to_string();
        }
        let names: Vec<String> = (0..dims.len()).map(|i| format!("g{i}")).collect();
        let select: Vec<String> = dims
            .iter()
            .zip(&names)
            .map(|(d, n)| format!("{d} AS {n}"))
            .collect();
        (select.join(", "), names.join(", "), comps.join(", "))
    });
    let dims = dims.join(", ");
    let dims = if total {
        format!("arrayJoin([[{dims}], emptyArrayString()])")
    } else {
        format!("[{dims}]")
    };
    let comps = comps.join(", ");
    if s.conversions.is_none() {
        // With a page filter, the rows of its pages alone, read by page (countries of the
        // visitors of `contains "/blog/"`: 97 → 45 ms for 30 days of the benchmark data; the
        // aggregate of three filters: 524 → 123 ms for 90 days, by hand).
        let read = match by_page {
            Some((key, (table, current))) => {
                let mut early = vec![key.pages(s)];
                early.extend(wheres[..pre].iter().cloned());
                let mut late: Vec<String> = key.one_copy(s).into_iter().collect();
                late.extend(wheres[pre..].iter().cloned());
                late.push(current);
                Some((table, early, late))
            }
            None => stored_only(s).map(|(table, current)| {
                let mut late = wheres[pre..].to_vec();
                late.push(current);
                (table, wheres[..pre].to_vec(), late)
            }),
        };
        if let Some((table, early, late)) = read {
            // ClickHouse 18.16 computes every condition of a WHERE on every row it reads; in
            // PREWHERE the plain ones drop rows before a visit's pages are joined and searched
            // (the aggregate of three filters with `contains`: 233 → 195 ms for 30 days of the
            // benchmark data, by hand).
            let (early, late) = (early.join(" AND "), late.join("\n    AND "));
            if let Some((by_day_dims, by_day_names, inner)) = by_day {
                // The rows of each group and local day, read once by either form below.
                let day = format!(
                    "SELECT {by_day_dims}, toDate(ts, {tz}) AS day, [{inner}] AS c",
                    tz = s.tz
                );
                let rows = format!(
                    "FROM {table}\nPREWHERE site = {site} AND {early}\nWHERE {late}\n\
                     GROUP BY {by_day_names}, day",
                    site = s.site,
                );
                if !total {
                    // Without a total, each group's visitors are its days' distinct visitors
                    // summed (exact for the reason below), every other component with them.
                    return format!(
                        "SELECT [{by_day_names}] AS dims, sumForEach(c) AS comps{extra}\nFROM\n(\n\
                         {day}\n{rows}\n)\nGROUP BY {by_day_names}"
                    );
                }
                // Distinct visitors per local day, summed: `day_visitor` differs for one
                // person on each local day, so the days' sets are disjoint and their sizes add
                // up to the distinct count of the whole period, as the other components add
                // up. Small sets filled a day at a time stay in the CPU's cache where one set of
                // all the period's visitors (the total) does not (see [`BY_DAY_FROM_DAYS`];
                // grouping by a hash bucket of `day_visitor` instead of the day: slower than
                // either, 1,033 ms at 12 months).
                // Each row is counted once, in its value's set of the day; the day's total
                // merges those sets (`total = 1`), where counting every row a second time in
                // the total's group cost a fifth more (countries of the visitors of `contains
                // "/blog/"` at 12 months: 1,110 → 945 ms by hand, with a rollup running).
                return format!(
                    "SELECT dims, sumForEach(comps) AS comps{extra}\nFROM\n(\n\
                     SELECT if(total = 1, emptyArrayString(), [{by_day_names}]) AS dims,\n    \
                     toFloat64(if(total = 1, uniqExactMergeIf(visitors, total = 1), \
                     sum(visitors_n))) AS v,\n    \
                     sumForEach(c) AS sums,\n    \
                     arrayConcat(arraySlice(sums, 1, {VISITORS}), [v], arraySlice(sums, {after})) \
                     AS comps\nFROM\n(\n\
                     {day},\n    \
                     {VISITORS_STATE} AS visitors, finalizeAggregation(visitors) AS visitors_n\n\
                     {rows}\n)\nARRAY JOIN [0, 1] AS total\nGROUP BY total, dims, day\n)\n\
                     GROUP BY dims",
                    after = VISITORS + 2,
                );
            }
            return format!(
                "SELECT {dims} AS dims, [{comps}] AS comps{extra}\nFROM {table}\n\
                 PREWHERE site = {site} AND {early}\nWHERE {late}{group}",
                site = s.site,
            );
        }
    }
    let wheres = wheres.join(" AND ");
    format!(
        "SELECT {dims} AS dims, [{comps}] AS comps{extra}\nFROM\n(\n{units}\n){join}\nWHERE {wheres}{group}",
        units = units(s, filters, &wheres),
    )
}

/// The position of the visitors among a report's components ([`super::COMPONENTS`]).
const VISITORS: usize = 1;

/// The visitors component ([`super::COMPONENTS`]) as a state that [`BY_DAY_FROM_DAYS`] queries
/// merge into each day's total. `-StateIf`, not `-IfState`: its state is plain `uniqExact`'s on
/// every ClickHouse version, so `uniqExactMerge` reads it.
const VISITORS_STATE: &str = "uniqExactStateIf(day_visitor, kind = 1)";

/// From how many days on a query [`grouped_with_total`] over stored unit rows counts its
/// components per local day (see [`counts_visitors_by_day`]). Measured by hand on the 12-month
/// benchmark data, countries of the visitors of `contains "/blog/"` with `percentage`, the
/// same answers each way: 30 days 84 → 94 ms, 90 days 224 → 208 ms, 12 months 898 → 682 ms.
/// Without the total (one distinct count per group, not one more of all the period's visitors)
/// it did not pay off even at 12 months: the aggregate of three filters 484 → 510 ms, source
/// by country 1,069 → 1,167 ms.
pub const BY_DAY_FROM_DAYS: u32 = 60;

/// The same for a grouped query without a total: from 30 days its groups' visitor sets counted
/// a day at a time are cheaper than one set per group for the period, as a value such as the
/// site's own country or the most used browser holds most of the period's visitors. Measured by
/// hand on the 12-month benchmark data (statements as tally sent them and per day, alternating,
/// same answers; `source is_not Google`): countries 192 → 175 ms at 30 days, 599 → 517 at 90
/// days, 2,538 → 1,963 at 12 months; devices 203 → 176, 623 → 495, 2,494 → 1,914; browsers at
/// 90 days and 12 months 650 → 503 and 2,703 → 1,896; sources 539 → 485 and 2,267 → 1,890.
/// Sources of the visits entering on `/` were even (12 months 1,260 → 1,290).
pub const BY_DAY_WITHOUT_TOTAL_FROM_DAYS: u32 = 30;

/// Whether a grouped query over stored unit rows (from [`BY_DAY_FROM_DAYS`] days with a total,
/// from [`BY_DAY_WITHOUT_TOTAL_FROM_DAYS`] without) counts its components per local day and
/// then adds them up: when it counts visitors, every other component it computes adds
/// up over days (no percentile or histogram is asked for), and it is grouped by one dimension
/// of few values, so that a group per value and day stays small (grouped by page, a year would
/// make a group of every page and day).
fn counts_visitors_by_day(percentiles: Percentiles, dimensions: &[Dimension]) -> bool {
    let Percentiles::Histograms {
        durations: false,
        page_seconds: false,
        components,
        ..
    } = percentiles
    else {
        return false;
    };
    let [d] = dimensions else {
        return false;
    };
    components.has(VISITORS)
        && (d.is_time()
            || matches!(
                d,
                Dimension::Country
                    | Dimension::CountryName
                    | Dimension::Channel
                    | Dimension::Source
                    | Dimension::Device
                    | Dimension::Browser
                    | Dimension::Os
                    | Dimension::DurationBucket
            ))
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
    use crate::stats::query::Op;
    use crate::stats::sql::units::reads_by_page;

    fn leaf(op: Op, dimension: Dimension, value: &str) -> Filter {
        Filter::Leaf {
            op,
            dimension,
            values: vec![value.into()],
            case_sensitive: true,
        }
    }

    /// Visitors and the median visit duration: a percentile, which is not counted per day.
    fn visitors_and_duration_median() -> Percentiles {
        Percentiles::Histograms {
            durations: true,
            page_seconds: false,
            components: Components(0).with(1),
            one_shard: true,
        }
    }

    fn histograms(components: Components) -> Percentiles {
        Percentiles::Histograms {
            durations: false,
            page_seconds: false,
            components,
            one_shard: true,
        }
    }

    #[test]
    fn issue_14_a_report_of_one_kind_of_row_reads_only_those_rows() {
        let mut s = crate::stats::sql::example_scope();
        s.open_tail = false;
        let filters = [leaf(Op::Contains, Dimension::Page, "/blog/")];
        // Visitors alone are counted on pageview rows: the page itself is tested.
        let visitors = Components(0).with(1);
        let sql = grouped(&s, &[Dimension::Country], &filters, histograms(visitors));
        assert!(
            sql.contains("AND kind = 1 AND ((position(path, '/blog/') > 0))"),
            "{sql}"
        );
        assert!(!sql.contains("pages_path"), "{sql}");
        // Visits alone are counted on visit rows: the visit's pages are tested.
        let visits = Components(0).with(2).with(3);
        let sql = grouped(&s, &[Dimension::Country], &filters, histograms(visits));
        assert!(
            sql.contains("AND kind = 0\nWHERE ((position(arrayStringConcat(pages_path"),
            "{sql}"
        );
        assert!(!sql.contains("if(kind = 0"), "{sql}");
        // Both, or the medians of both: every row, each tested in its own form.
        for p in [
            histograms(visits.with(1)),
            Percentiles::Histograms {
                durations: true,
                page_seconds: false,
                components: visitors,
                one_shard: true,
            },
        ] {
            let sql = grouped(&s, &[Dimension::Country], &filters, p);
            assert!(
                !sql.contains("kind = 0 AND") && !sql.contains("AND kind ="),
                "{sql}"
            );
            assert!(
                sql.contains("if(kind = 0, (position(arrayStringConcat"),
                "{sql}"
            );
        }
        // Events count pageviews and custom events.
        let events = Components(0).with(ADDITIVE);
        let sql = grouped(&s, &[], &filters, histograms(events));
        assert!(sql.contains("AND kind IN (1, 2) AND"), "{sql}");
    }

    #[test]
    fn the_visitors_state_is_the_visitors_component() {
        assert_eq!(COMPONENTS[VISITORS], "uniqExactIf(day_visitor, kind = 1)");
        assert_eq!(VISITORS_STATE, "uniqExactStateIf(day_visitor, kind = 1)");
    }

    #[test]
    fn issue_14_a_long_period_with_a_total_counts_visitors_per_day() {
        let mut s = crate::stats::sql::example_scope();
        s.open_tail = false;
        let filters = [leaf(Op::Contains, Dimension::Page, "/blog/")];
        let visitors = histograms(Components(0).with(1));
        s.period_days = BY_DAY_FROM_DAYS;
        let sql = grouped_with_total(&s, &[Dimension::Country], &filters, visitors);
        assert!(
            sql.starts_with("SELECT dims, sumForEach(comps) AS comps"),
            "{sql}"
        );
        // Each row counted once, in its value's set of its local day; the day's total merges
        // those sets.
        assert!(
            sql.contains(", toDate(ts, 'Europe/Amsterdam') AS day, ["),
            "{sql}"
        );
        assert!(
            sql.contains(&format!("{VISITORS_STATE} AS visitors")),
            "{sql}"
        );
        assert!(!sql.contains("arrayJoin"), "{sql}");
        assert!(
            sql.contains("GROUP BY g0, day\n)\nARRAY JOIN [0, 1] AS total\nGROUP BY total, dims, day\n)\nGROUP BY dims"),
            "{sql}"
        );
        // The dimension's value a plain column until the end; the page filter, which the pages
        // read by page imply, is not tested on each row again (with `by_page`).
        assert!(
            sql.contains("if(total = 1, emptyArrayString(), [g0]) AS dims"),
            "{sql}"
        );
        s.by_page = true;
        s.stored_visits = true;
        let sql = grouped_with_total(&s, &[Dimension::Country], &filters, visitors);
        assert!(sql.contains("FROM db.visit_pages"), "{sql}");
        assert!(sql.contains("(position(page_path, '/blog/') > 0)"), "{sql}");
        assert!(!sql.contains("position(path, '/blog/')"), "{sql}");
        s.by_page = false;
        // The visitors component counted alone, and put back in its place among the others.
        assert!(
            !sql.contains(COMPONENTS[VISITORS])
                && sql.contains("arraySlice(sums, 1, 1), [v], arraySlice(sums, 3)"),
            "{sql}"
        );
        // Not: a shorter period, grouped by page, a percentile, two dimensions.
        let once = |sql: String| assert!(!sql.contains("sumForEach"), "{sql}");
        once(grouped_with_total(
            &s,
            &[Dimension::Page],
            &filters,
            visitors,
        ));
        once(grouped_with_total(
            &s,
            &[Dimension::Country, Dimension::Device],
            &filters,
            visitors,
        ));
        let median = visitors_and_duration_median();
        once(grouped_with_total(
            &s,
            &[Dimension::Country],
            &filters,
            median,
        ));
        s.period_days = BY_DAY_FROM_DAYS - 1;
        once(grouped_with_total(
            &s,
            &[Dimension::Country],
            &filters,
            visitors,
        ));
    }

    #[test]
    fn issue_14_a_month_or_more_without_a_total_counts_visitors_per_day() {
        let mut s = crate::stats::sql::example_scope();
        s.open_tail = false;
        let filters = [leaf(Op::IsNot, Dimension::Source, "Google")];
        let visitors = histograms(Components(0).with(1).with(2));
        s.period_days = BY_DAY_WITHOUT_TOTAL_FROM_DAYS;
        let sql = grouped(&s, &[Dimension::Device], &filters, visitors);
        // Each group's and day's visitors counted as ever, then summed over the days with
        // the other components; no total, so no sets are merged.
        assert!(
            sql.starts_with("SELECT [g0] AS dims, sumForEach(c) AS comps"),
            "{sql}"
        );
        assert!(
            sql.contains(&format!(
                "toDate(ts, 'Europe/Amsterdam') AS day, [toFloat64(0), toFloat64({}), toFloat64({})",
                COMPONENTS[VISITORS], COMPONENTS[2]
            )),
            "{sql}"
        );
        assert!(sql.contains("GROUP BY g0, day\n)\nGROUP BY g0"), "{sql}");
        assert!(
            !sql.contains("uniqExactMerge") && !sql.contains("ARRAY JOIN"),
            "{sql}"
        );
        // Not: a shorter period, grouped by page, two dimensions, a percentile.
        let once = |sql: String| assert!(!sql.contains("sumForEach"), "{sql}");
        once(grouped(&s, &[Dimension::Page], &filters, visitors));
        once(grouped(
            &s,
            &[Dimension::Country, Dimension::Device],
            &filters,
            visitors,
        ));
        let median = visitors_and_duration_median();
        once(grouped(&s, &[Dimension::Country], &filters, median));
        s.period_days = BY_DAY_WITHOUT_TOTAL_FROM_DAYS - 1;
        once(grouped(&s, &[Dimension::Device], &filters, visitors));
    }

    #[test]
    fn issue_14_conditions_on_a_visits_pages_come_after_the_plain_ones() {
        let mut s = crate::stats::sql::example_scope();
        s.open_tail = false;
        let filters = [
            leaf(Op::Contains, Dimension::Page, "/a"),
            leaf(Op::Is, Dimension::Country, "NL"),
        ];
        let sql = grouped(&s, &[], &filters, histograms(Components::ALL));
        let (pre, post) = sql
            .split_once("\nWHERE ")
            .expect("a WHERE after the PREWHERE");
        assert!(
            pre.contains("PREWHERE site = 'a.example' AND ts >="),
            "{sql}"
        );
        assert!(pre.contains("((country = 'NL'))"), "{sql}");
        assert!(!pre.contains("pages_path"), "{sql}");
        assert!(
            post.starts_with("(if(kind = 0, (position(arrayStringConcat(pages_path"),
            "{sql}"
        );
        assert!(post.contains("(slice, version) IN ("), "{sql}");
        // Grafana's SQL (all components, the open tail) keeps one WHERE over the unit rows.
        let s = crate::stats::sql::example_scope();
        let sql = grouped(
            &s,
            &[],
            &filters,
            Percentiles::Values {
                time_on_page_median: false,
            },
        );
        assert!(
            !sql.contains("PREWHERE") && !sql.contains("AND kind ="),
            "{sql}"
        );
    }

    #[test]
    fn issue_14_a_page_filter_reads_by_page_once_every_slice_is_copied() {
        let mut s = crate::stats::sql::example_scope();
        s.open_tail = false;
        let filters = [
            leaf(Op::Is, Dimension::Country, "NL"),
            leaf(Op::Is, Dimension::Page, "/a"),
        ];
        let components = histograms(Components::ALL);
        assert!(!reads_by_page(&s, &filters));
        assert!(grouped(&s, &[], &filters, components).contains("FROM db.visits\n"));
        s.by_page = true;
        assert!(reads_by_page(&s, &filters));
        let sql = grouped(&s, &[], &filters, components);
        let (pre, post) = sql.split_once("\nWHERE ").unwrap();
        assert!(pre.contains("FROM db.visit_pages\n"), "{sql}");
        assert!(
            pre.contains("PREWHERE site = 'a.example' AND page_path IN ('/a') AND ts >="),
            "{sql}"
        );
        // A visit counted on its first copy the key matches, after the plain conditions.
        assert!(
            post.starts_with(
                "(kind != 0 OR page_no = arrayFirstIndex(pp -> (pp = '/a'), pages_path))"
            ),
            "{sql}"
        );
        assert!(post.contains("argMax(pages, (version, pages))"), "{sql}");
        // Grouped by page, on its entry page's copy.
        let sql = grouped(&s, &[Dimension::Page], &filters, components);
        assert!(
            sql.contains("(kind != 0 OR (page_path = path AND page_host = host))"),
            "{sql}"
        );
        // No positive page filter, a tail to read, or conversions: `visits`.
        let other = [leaf(Op::IsNot, Dimension::Page, "/a")];
        assert!(!reads_by_page(&s, &other));
        assert!(grouped(&s, &[], &other, components).contains("FROM db.visits\n"));
        s.open_tail = true;
        assert!(!reads_by_page(&s, &filters));
    }
}
