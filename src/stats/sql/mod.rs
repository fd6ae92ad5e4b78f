//! SQL for reports: the pieces every report query shares (the scope of a query, the metric
//! components, escaping). `visits` builds visits from raw events, `rollups` reads the rollup
//! tables.
//!
//! Visits are computed at query time from the stored events, never kept in a collector's memory,
//! so they come out the same whichever collector received a visitor's beacons, and across
//! restarts. The SQL runs on ClickHouse 18.16 (no window functions) and on current ClickHouse:
//!
//! 1. per visitor, events sorted by `(ts, event_id)`; a gap over the timeout starts a new visit
//!    (`arrayCumSum` over `arrayDifference`), then one row per event with its visit number;
//! 2. per visit: start, end, pageviews, engaged time, bounce, entry/exit page and the attributes
//!    of its first pageview (`argMinIf`), plus its pageviews and engagement beacons as arrays;
//! 3. one *unit* row per visit (`kind` 0, at its start), per pageview (`kind` 1, at its time) and
//!    per page visit (`kind` 2, at its first pageview), all carrying their visit's attributes;
//! 4. the caller's filters and the period select unit rows; metrics are conditional aggregates
//!    over the kinds, grouped by the dimensions.
//!
//! Every value from a request is written as an escaped string literal ([`lit`]); names of
//! dimensions and metrics come from fixed tables, never from the request.

use std::fmt::Write;

use jiff::Timestamp;

/// Events read after the period's end so that visits starting inside it are complete, and
/// before its start so that a visit under way at the start keeps its first pageview's entry
/// page and source. A visit of uninterrupted activity longer than this is cut.
pub const LOOKAHEAD_SECONDS: i64 = 6 * 3600;

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
}

/// The per-group numbers every metric is derived from, in this order (see `mod.rs`).
pub const COMPONENTS: [&str; 13] = [
    // 0 pageviews
    "countIf(kind = 1)",
    // 1 visitors: distinct (hash, local day) over pageviews
    "uniqExactIf(visitor, toDate(ts, {tz}), kind = 1)",
    // 2 visits
    "countIf(kind = 0)",
    // 3 bounces
    "sumIf(bounce, kind = 0)",
    // 4 total visit duration, s
    "sumIf(duration, kind = 0)",
    // 5 pageviews of those visits
    "sumIf(vpageviews, kind = 0)",
    // 6 page visits
    "countIf(kind = 2)",
    // 7 total time on page, ms
    "sumIf(page_ms, kind = 2)",
    // 8 page visits that reported a scroll depth
    "countIf(kind = 2 AND has_sd)",
    // 9 their total scroll depth
    "sumIf(page_sd, kind = 2 AND has_sd)",
    // 10..12 visit duration percentiles
    "quantileExactIf(0.5)(duration, kind = 0)",
    "quantileExactIf(0.75)(duration, kind = 0)",
    "quantileExactIf(0.9)(duration, kind = 0)",
];
/// Median time on page is asked for separately: the extra sort is only paid when wanted.
pub const TIME_ON_PAGE_MEDIAN: &str = "quantileExactIf(0.5)(intDiv(page_ms, 1000), kind = 2)";

/// A ClickHouse string literal holding exactly `s`.
pub fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub fn datetime(t: Timestamp) -> String {
    format!("toDateTime({}, 'UTC')", t.as_second())
}

/// The events read for a period: from the lookahead before it to the lookahead after it.
pub fn window(s: &Scope) -> (Timestamp, Timestamp) {
    let lo = s
        .from
        .checked_sub(jiff::SignedDuration::from_secs(
            LOOKAHEAD_SECONDS.max(i64::from(s.timeout_seconds)),
        ))
        .unwrap_or(s.from);
    let hi =
        s.to.checked_add(jiff::SignedDuration::from_secs(LOOKAHEAD_SECONDS))
            .unwrap_or(s.to);
    (lo, hi)
}

pub mod rollups;
pub mod visits;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_be_broken_out_of() {
        assert_eq!(lit("plain"), "'plain'");
        assert_eq!(lit("o'clock"), "'o\\'clock'");
        assert_eq!(lit("a\\' OR 1=1 --"), "'a\\\\\\' OR 1=1 --'");
        assert_eq!(lit("line\nbreak\0"), "'line\\x0Abreak\\x00'");
    }
}
