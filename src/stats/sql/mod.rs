//! SQL for reports: the pieces every report query shares (the scope of a query, the metric
//! components). `units` gives a period's unit rows (stored visits and the still-open tail built
//! from raw events), `visits` groups them into the components per dimension, `rollups` reads the
//! rollup tables.
//!
//! A report counts *unit rows* (see `visits::units`): one per visit (kind 0, at its start), per
//! pageview (kind 1, at its time) and per custom event (kind 2), each carrying its visit's
//! attributes. The caller's filters and the period select unit rows; metrics are conditional
//! aggregates over the kinds, grouped by the dimensions. The SQL runs on ClickHouse 18.16 (no
//! window functions) and on current ClickHouse.
//!
//! Every value from a request is written as an escaped string literal ([`lit`]); names of
//! dimensions and metrics come from fixed tables, never from the request.

use jiff::Timestamp;

pub use crate::sql_text::{datetime, lit};

/// What one query needs besides the filters and dimensions.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub database: &'a str,
    pub site: &'a str,
    pub tz: &'a str,
    pub from: Timestamp,
    pub to: Timestamp,
    pub timeout_seconds: u32,
    pub bounce_ms: u32,
    /// First day of the period (local), for week labels that do not start before it.
    pub first_date: jiff::civil::Date,
    /// Rows are grouped by page or host: a page filter then keeps the rows of matching pages
    /// only (visit rows by their entry page), so no non-matching page appears as a row.
    pub pages_grouped: bool,
    /// Read stored visits (and the open tail); `false` (`visits.store = false`): build every
    /// visit from raw events.
    pub stored_visits: bool,
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
/// Median time on page is asked for separately: the extra sort is only paid when wanted.
pub const TIME_ON_PAGE_MEDIAN: &str =
    "quantileExactIf(0.5)(intDiv(page_ms, 1000), kind = 1 AND page_visit = 1)";

pub mod rollups;
pub mod units;
pub mod visits;
