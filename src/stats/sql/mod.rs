//! SQL for reports: the pieces every report query shares (the scope of a query, the metric
//! components). `units` gives a period's unit rows (stored visits and the still-open tail built
//! from raw events), `by_page` reads the stored ones by page for a page filter, `dimensions`
//! writes dimension values and filters over them, `visits` groups them into the components per
//! dimension, `rollups` reads the rollup tables, `metrics` holds the metric formulas in SQL,
//! and `report` puts them together into one statement for readers that cannot run the
//! engine's Rust (the Grafana dashboards).
//!
//! A report counts *unit rows* (see `visits::units`): one per visit (kind 0, at its start), per
//! pageview (kind 1, at its time) and per custom event (kind 2), each carrying its visit's
//! attributes. The caller's filters and the period select unit rows; metrics are conditional
//! aggregates over the kinds, grouped by the dimensions. The SQL runs on ClickHouse 18.16 (no
//! window functions) and on current ClickHouse.
//!
//! Every value from a request is written as an escaped string literal ([`lit`]); names of
//! dimensions and metrics come from fixed tables, never from the request. The values of a
//! [`Scope`] are [`Sql`]: literals for the engine's own queries, or the reader's expressions
//! (Grafana's variables and macros) for SQL that is stored and run elsewhere.

use jiff::Timestamp;

pub use crate::sql_text::{datetime, lit};
use crate::visits::units::MAX_VISIT_SECONDS;

/// A piece of SQL that is safe to paste into a statement: a literal escaped here, a number, or
/// text written in this crate (never request data). The fields of a [`Scope`] are these, so a
/// request's site or zone cannot reach the SQL unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sql(String);

impl Sql {
    /// A string literal holding exactly `s` ([`lit`]).
    pub fn lit(s: &str) -> Sql {
        Sql(lit(s))
    }

    /// An instant, as the engine writes it ([`datetime`]).
    pub fn datetime(t: Timestamp) -> Sql {
        Sql(datetime(t))
    }

    /// A calendar date: `toDate('2026-03-01')`.
    pub fn date(d: jiff::civil::Date) -> Sql {
        Sql(format!("toDate({})", lit(&d.to_string())))
    }

    /// A whole number.
    pub fn uint(n: u64) -> Sql {
        Sql(n.to_string())
    }

    /// Fixed text of this crate, such as a Grafana macro (`$__fromTime`) or variable.
    pub fn fixed(text: &'static str) -> Sql {
        Sql(text.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one query needs besides the filters and dimensions, as SQL.
///
/// The engine and the rollup job build it from known values ([`Scope::literal`]): the events
/// window is then computed in Rust and every value is a literal. The Grafana generator builds it
/// from the dashboard's expressions ([`Scope::expressions`]): the window is computed in SQL.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    /// Database that qualifies table names; empty: unqualified, so the reader's default database
    /// is read (a Grafana data source's).
    pub database: &'a str,
    pub site: Sql,
    /// The site's time zone (an IANA name), in which days and hours are cut.
    pub tz: Sql,
    /// The period `[from, to)`, DateTime expressions.
    pub from: Sql,
    pub to: Sql,
    /// The raw events any visit with a unit row in the period is built from: `[lo, hi)`, the
    /// period widened by the longest a visit can last (see `visits::units`).
    pub lo: Sql,
    pub hi: Sql,
    /// A gap over this many seconds between a visitor's events starts a new visit.
    pub timeout_seconds: Sql,
    /// A visit of one pageview engaged for less than this many milliseconds is a bounce.
    pub bounce_ms: Sql,
    /// First day of the period (local; a Date expression), for week labels that do not start
    /// before it.
    pub first_date: Sql,
    /// Rows are grouped by page or host: a page filter then keeps the rows of matching pages
    /// only (visit rows by their entry page), so no non-matching page appears as a row.
    pub pages_grouped: bool,
    /// An extra condition on the events read. It may only drop events that cannot belong to a
    /// visit whose unit rows the query selects (the engine sets none).
    pub events_where: Option<Sql>,
    /// An extra condition on the unit rows, besides the period (the engine sets one only to
    /// read the groups of the rows shown, [`visits::groups_in`]).
    pub units_where: Option<Sql>,
    /// Read stored visits and the open tail; `false` (`visits.store = false`): build every
    /// visit from raw events.
    pub stored_visits: bool,
    /// A conversion report (`event:goal`, `event:props:*`): the goals and property keys; the
    /// grouped query then counts matching pageview and custom-event rows (see `conversions`).
    pub conversions: Option<conversions::Conversions>,
    /// The first hour of the open tail when the caller has asked for it beforehand
    /// ([`units::tail_start`]); `None`: the query finds it itself, with a subquery.
    pub tail_from: Option<Sql>,
    /// The open tail starts at or after the period's end (`tail_from >= to`, known to the
    /// caller): a tail visit with a record in the period then went on past its end.
    pub tail_after_period: bool,
    /// Whether the open tail is read at all: `false` when the caller found that no visit of
    /// it has a record in the period ([`units::tail_reaches_period`]).
    pub open_tail: bool,
    /// Read the open tail from `events_by_hour` and the carry the visit job left at its start
    /// instead of from `events` (the caller found both complete: [`units::tail_carry`]); `None`:
    /// from `events`.
    pub tail_by_hour: Option<TailByHour>,
    /// A temporary table holding this scope's unit rows already narrowed by the report's
    /// filters ([`units::prefilter`]): when set, the unit rows are read from it alone.
    pub units_table: Option<String>,
    /// The kinds of unit rows the query reads: all three, unless its metrics are made of
    /// fewer ([`visits::grouped`] narrows it). A page or host filter is then written for
    /// those kinds alone (see `dimensions::filter`).
    pub unit_kinds: UnitKinds,
    /// Every stored slice the period reads has its rows ordered by page (`visit_pages`), as
    /// the caller found ([`units::pages_ready`]): a report over stored visits alone with a
    /// page filter then reads the rows of the matching pages there ([`by_page`]).
    pub by_page: bool,
    /// The period's length in whole days, rounded down (0 where it is not known here: a
    /// Grafana expression).
    pub period_days: u32,
}

/// Where the open tail's raw events come from when not from `events`: its own hours from
/// `events_by_hour` (ordered by the hour, so they alone are read) and, when a visit may have
/// been open at the tail's first hour, the events the visit job kept of those visits
/// (`visit_carry`): the slice before the tail and its computation's version.
#[derive(Debug, Clone)]
pub struct TailByHour {
    pub carry: Option<(Sql, u64)>,
}

/// A set of unit row kinds (bit `k`: kind `k`; 0 visits, 1 pageviews, 2 custom events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnitKinds(pub u8);

impl UnitKinds {
    pub const ALL: UnitKinds = UnitKinds(0b111);
    pub const NONE: UnitKinds = UnitKinds(0);
    pub const VISITS: UnitKinds = UnitKinds(0b001);
    pub const PAGEVIEWS: UnitKinds = UnitKinds(0b010);
    pub const EVENTS: UnitKinds = UnitKinds(0b100);

    pub fn has(self, kind: u8) -> bool {
        self.0 & (1 << kind) != 0
    }

    pub fn with(self, other: UnitKinds) -> UnitKinds {
        UnitKinds(self.0 | other.0)
    }

    /// The condition that keeps rows of these kinds; `None` for all of them (or for none,
    /// which a query never asks for).
    pub fn condition(self) -> Option<String> {
        let kinds: Vec<String> = (0..3)
            .filter(|k| self.has(*k))
            .map(|k| k.to_string())
            .collect();
        match kinds.as_slice() {
            [] | [_, _, _] => None,
            [one] => Some(format!("kind = {one}")),
            many => Some(format!("kind IN ({})", many.join(", "))),
        }
    }
}

/// The known values a [`Scope`] is made of for the engine's and the rollup job's queries.
pub struct ScopeValues<'a> {
    pub database: &'a str,
    pub site: &'a str,
    pub tz: &'a str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub timeout_seconds: u32,
    pub bounce_ms: u32,
    /// First day of the period (local), for week labels that do not start before it.
    pub first_date: jiff::civil::Date,
    /// Read stored visits (see [`Scope::stored_visits`]).
    pub stored_visits: bool,
}

impl<'a> Scope<'a> {
    /// A scope of known values: every value a literal, the events window computed here.
    pub fn literal(v: ScopeValues<'a>) -> Scope<'a> {
        let reach =
            jiff::SignedDuration::from_secs(MAX_VISIT_SECONDS + i64::from(v.timeout_seconds));
        let lo = v.from.checked_sub(reach).unwrap_or(v.from);
        let hi = v.to.checked_add(reach).unwrap_or(v.to);
        Scope {
            database: v.database,
            site: Sql::lit(v.site),
            tz: Sql::lit(v.tz),
            from: Sql::datetime(v.from),
            to: Sql::datetime(v.to),
            lo: Sql::datetime(lo),
            hi: Sql::datetime(hi),
            timeout_seconds: Sql::uint(v.timeout_seconds.into()),
            bounce_ms: Sql::uint(v.bounce_ms.into()),
            first_date: Sql::date(v.first_date),
            pages_grouped: false,
            events_where: None,
            units_where: None,
            stored_visits: v.stored_visits,
            conversions: None,
            tail_from: None,
            tail_after_period: false,
            open_tail: true,
            tail_by_hour: None,
            units_table: None,
            unit_kinds: UnitKinds::ALL,
            by_page: false,
            period_days: u32::try_from(
                v.to.as_second().saturating_sub(v.from.as_second()) / 86_400,
            )
            .unwrap_or(u32::MAX),
        }
    }

    /// A scope of expressions the reader evaluates (Grafana's macros and variables). `from` and
    /// `to` are DateTime expressions of the period `[from, to)`; the events window and the first
    /// day are computed in SQL from them, as [`Scope::literal`] computes them in Rust.
    pub fn expressions(
        database: &'a str,
        site: Sql,
        tz: Sql,
        from: Sql,
        to: Sql,
        timeout_seconds: Sql,
        bounce_ms: Sql,
    ) -> Scope<'a> {
        Scope {
            database,
            lo: Sql(format!(
                "{from} - ({MAX_VISIT_SECONDS} + {timeout_seconds})"
            )),
            hi: Sql(format!("{to} + ({MAX_VISIT_SECONDS} + {timeout_seconds})")),
            first_date: Sql(format!("toDate({from}, {tz})")),
            site,
            tz,
            from,
            to,
            timeout_seconds,
            bounce_ms,
            pages_grouped: false,
            events_where: None,
            units_where: None,
            stored_visits: true,
            conversions: None,
            tail_from: None,
            tail_after_period: false,
            open_tail: true,
            tail_by_hour: None,
            units_table: None,
            unit_kinds: UnitKinds::ALL,
            by_page: false,
            period_days: 0,
        }
    }

    /// `table` in the scope's database.
    pub fn table(&self, table: &str) -> String {
        qualified(self.database, table)
    }
}

/// `table` in `database`, or unqualified when `database` is empty.
pub fn qualified(database: &str, table: &str) -> String {
    if database.is_empty() {
        table.to_string()
    } else {
        format!("{database}.{table}")
    }
}

/// The per-group numbers every metric is derived from, in this order (see `answer::metric`).
pub const COMPONENTS: [&str; 13] = [
    // 0 pageviews
    "countIf(kind = 1)",
    // 1 visitors: distinct visitors per local day (`day_visitor` is one per visitor and day)
    "uniqExactIf(day_visitor, kind = 1)",
    // 2 visits
    "countIf(kind = 0)",
    // 3 bounces
    "sumIf(bounce, kind = 0)",
    // 4 total visit duration, s
    "sumIf(duration, kind = 0)",
    // 5 pageviews of those visits
    "sumIf(pageviews, kind = 0)",
    // 6 page visits (first views of a page in a visit)
    "countIf(kind = 1 AND page_visit = 1)",
    // 7 total time on page, ms
    "sumIf(page_ms, kind = 1 AND page_visit = 1)",
    // 8 page visits that reported a scroll depth
    "countIf(kind = 1 AND page_visit = 1 AND has_sd = 1)",
    // 9 their total scroll depth
    "sumIf(page_sd, kind = 1 AND page_visit = 1 AND has_sd = 1)",
    // 10..12 visit duration percentiles
    "quantileExactIf(0.5)(duration, kind = 0)",
    "quantileExactIf(0.75)(duration, kind = 0)",
    "quantileExactIf(0.9)(duration, kind = 0)",
];
/// Pageviews and custom events (the `events` metric): read by the engine after the additive
/// components (at `ADDITIVE`), not part of `COMPONENTS`, so report SQL for Grafana is unchanged.
pub const EVENTS: &str = "countIf(kind = 1 OR kind = 2)";

/// Median time on page is asked for separately: the extra sort is only paid when wanted.
pub const TIME_ON_PAGE_MEDIAN: &str =
    "quantileExactIf(0.5)(intDiv(page_ms, 1000), kind = 1 AND page_visit = 1)";

/// A literal scope of one day for unit tests of the SQL builders.
#[cfg(test)]
pub(crate) fn example_scope() -> Scope<'static> {
    Scope::literal(ScopeValues {
        database: "db",
        site: "a.example",
        tz: "Europe/Amsterdam",
        from: "2026-03-29T00:00:00Z".parse().unwrap(),
        to: "2026-03-30T00:00:00Z".parse().unwrap(),
        timeout_seconds: 1800,
        bounce_ms: 10_000,
        first_date: "2026-03-29".parse().unwrap(),
        stored_visits: true,
    })
}

pub mod by_page;
pub mod conversions;
pub mod dimensions;
pub mod metrics;
pub mod report;
pub mod rollups;
pub mod units;
pub mod visits;
