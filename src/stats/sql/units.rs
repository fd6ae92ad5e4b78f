//! A report period's unit rows: the visits stored once they ended (`visits` table, each slice at
//! its current version), and the still-open tail built from raw events: the visits whose
//! slice (the hour of their last event) is not stored yet, because they may still go on or the
//! visit job has not got to them. Every visit is in exactly one of the two: both sides are
//! kept or dropped by one read of the slices' current versions (a join), so a slice the visit
//! job marks done while the query runs is counted once, on one side or the other.

use std::fmt::Write as _;

use super::by_page::Key;
use super::dimensions::{dimension, filter};
use super::Scope;
use crate::stats::query::{Dimension, Filter, Op};
use crate::visits::units::{
    and_condition, by_hour_events, current_copy, current_version, markers_read, raw_units,
    stored_rows, stored_units, CarryRead, RawUnits, Stored, MAX_VISIT_SECONDS, UNIT_COLUMNS,
};

/// The unit rows of the visits in the period: stored, then the tail (or all built from raw
/// events when visits are not stored). `filters` only narrow the raw events read, and
/// `rows_where` (a condition over the unit columns, or empty) the rows read on either side; the
/// caller still applies both to the rows. Pushed to each side, a report's filters are applied
/// where the rows are read: ClickHouse 18.16 moves no condition into a `UNION ALL` or past a
/// join, so a filtered report would otherwise carry every stored row of the period through the
/// union and the join with the slices' versions before dropping most of them.
pub fn units(s: &Scope, filters: &[Filter], rows_where: &str) -> String {
    if let Some(table) = &s.units_table {
        let columns: Vec<String> = UNIT_COLUMNS
            .iter()
            .map(|c| match left_out(c) {
                Some(value) => format!("{value} AS {c}"),
                None => c.to_string(),
            })
            .chain(KEEP_FLAGS.iter().map(|f| f.to_string()))
            .collect();
        return format!("SELECT {} FROM {table}", columns.join(", "));
    }
    if !s.stored_visits {
        return raw_period_units(s, &narrow(filters, s, &s.table("events"), ""));
    }
    let (visits, slices) = (s.table("visits"), s.table("visit_slices"));
    let read = stored_read(s, &visits, &slices, rows_where);
    if !s.open_tail {
        // Stored visits only: each slice at its current version, read by one set.
        return stored_units(&read);
    }
    let stored = stored_rows(&read);
    let columns = UNIT_COLUMNS.join(", ");
    // Stored rows of a slice's current version, tail rows (version 0) of slices with none.
    format!(
        "SELECT {columns}
FROM
(
{stored}
UNION ALL
{tail}
) AS unit
ANY LEFT JOIN
(
    SELECT slice, max(version) AS current FROM {slices}
    WHERE site = {site} AND done = 1 AND slice >= toStartOfHour({from})
    GROUP BY slice
) AS done USING slice
WHERE version = current",
        tail = tail_units(s, filters, rows_where),
        site = s.site,
        from = s.from,
    )
}

/// For a report whose period has no open tail to read ([`Scope::open_tail`] is `false`): the
/// `visits` table and the condition that keeps each slice's current version, so that the
/// report aggregates the table itself. Its rows are the unit rows [`units`] would give, but
/// without the subquery around them ClickHouse 18.16 reads only the columns the report names
/// and applies its conditions as it reads (a filtered 30-day report took a third less time).
/// `None` when the report needs the tail or builds every visit from raw events.
pub fn stored_only(s: &Scope) -> Option<(String, String)> {
    if !s.stored_visits || s.open_tail || s.units_table.is_some() {
        return None;
    }
    let (visits, slices) = (s.table("visits"), s.table("visit_slices"));
    let current = current_version(&stored_read(s, &visits, &slices, ""));
    Some((visits, current))
}

/// [`stored_only`] for a report keyed on a page filter (`by_page`), when every slice it reads
/// has its rows ordered by page ([`Scope::by_page`]): the `visit_pages` table and the condition
/// that keeps each slice's current copy. `None` otherwise.
pub fn stored_by_page(s: &Scope) -> Option<(String, String)> {
    if !s.by_page {
        return None;
    }
    stored_only(s)?;
    let (pages, slices) = (s.table("visit_pages"), s.table("visit_slices"));
    let current = current_copy(&stored_read(s, &pages, &slices, ""));
    Some((pages, current))
}

/// How a report of unit rows with these filters reads by page (`visit_pages`, see `by_page`):
/// its key, the table and the condition that keeps each slice's current copy. `None` (it reads
/// `visits`) for a conversion report, without a positive page filter, with an open tail, or
/// while a slice it reads has no copy. The one rule for reports, prefilters and the count of
/// reads by page.
pub fn read_by_page<'f>(s: &Scope, filters: &'f [Filter]) -> Option<(Key<'f>, (String, String))> {
    if s.conversions.is_some() {
        return None;
    }
    Some((Key::of(filters)?, stored_by_page(s)?))
}

/// Whether a report reads by page ([`read_by_page`]).
pub fn reads_by_page(s: &Scope, filters: &[Filter]) -> bool {
    read_by_page(s, filters).is_some()
}

/// The slices a report over stored visits alone reads whose current computation has no copy in
/// `visit_pages` (stored before migration 0009 and not copied yet): none, and the report may
/// read by page ([`Scope::by_page`]). Asked before the report, it stays true during it: a
/// slice computed meanwhile is written with its copy.
pub fn pages_ready(s: &Scope) -> String {
    let slices = s.table("visit_slices");
    format!(
        "SELECT countIf(copy = 0) AS uncopied FROM (
    SELECT slice, argMax(pages, (version, pages)) AS copy FROM {slices}
    WHERE {markers}
    GROUP BY slice
)",
        markers = markers_read(&stored_read(s, "", &slices, "")),
    )
}

/// A row of [`pages_ready`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct PagesReady {
    pub uncopied: u64,
}

/// The statement that fills `table`, a temporary table of a ClickHouse session, with the
/// scope's unit rows that `filters` keep, so that several reports over the same period and
/// filters (a dashboard page's panels) read those rows instead of scanning the period each
/// ([`Scope::units_table`]). A page or host filter keeps a visit row by the pages it viewed,
/// or by its entry page when the report is grouped by page ([`Scope::pages_grouped`]): the
/// table keeps the rows either form keeps, with a flag for each form ([`KEEP_FLAGS`]), and a
/// report tests the flag of its own form, so it reads exactly the rows it would read from
/// [`units`]. With a page filter it reads by page when it can ([`read_by_page`]): a visit
/// row may then be there twice, the copy each form counts, each with its own flag. At most
/// `max_rows + 1` rows: the
/// caller counts them and gives up on more than `max_rows` (the table lives in the server's
/// memory).
pub fn prefilter(s: &Scope, filters: &[Filter], table: &str, max_rows: u64) -> String {
    let ungrouped = Scope {
        pages_grouped: false,
        units_where: None,
        units_table: None,
        ..s.clone()
    };
    let grouped = Scope {
        pages_grouped: true,
        ..ungrouped.clone()
    };
    let mut cond = vec![format!("ts >= {} AND ts < {}", s.from, s.to)];
    let (mut visits, mut pages) = (Vec::new(), Vec::new());
    let mut keep = |visit: String, page: String| {
        cond.push(if visit == page {
            format!("({visit})")
        } else {
            format!("(({visit}) OR ({page}))")
        });
        visits.push(format!("({visit})"));
        pages.push(format!("({page})"));
    };
    for f in filters {
        keep(filter(f, &ungrouped), filter(f, &grouped));
    }
    // Read by page (see `by_page`): a visit's copy for each form, each in its flag.
    let by_page = read_by_page(&ungrouped, filters);
    if let Some((key, _)) = &by_page {
        if let (Some(visit), Some(page)) = (key.one_copy(&ungrouped), key.one_copy(&grouped)) {
            keep(visit, page);
        }
        cond.push(key.pages(s));
    }
    let cond = cond.join(" AND ");
    let all = |v: Vec<String>| {
        if v.is_empty() {
            "1".to_string()
        } else {
            v.join(" AND ")
        }
    };
    let columns = UNIT_COLUMNS
        .iter()
        .filter(|c| left_out(c).is_none())
        .map(|c| c.to_string())
        .chain([
            format!("toUInt8({}) AS {}", all(visits), KEEP_FLAGS[0]),
            format!("toUInt8({}) AS {}", all(pages), KEEP_FLAGS[1]),
        ])
        .collect::<Vec<_>>()
        .join(", ");
    let stored = match by_page {
        Some((_, read)) => Some(read),
        None => stored_only(&ungrouped),
    };
    let rows = match stored {
        Some((visits, current)) => format!(
            "SELECT {columns}\nFROM {visits}\nWHERE site = {site} AND {cond}\n    AND {current}",
            site = s.site
        ),
        None => format!(
            "SELECT {columns}\nFROM\n(\n{units}\n)\nWHERE {cond}",
            units = units(&ungrouped, filters, &cond)
        ),
    };
    format!(
        "CREATE TEMPORARY TABLE {table} ENGINE = Memory AS\n{rows}\nLIMIT {}",
        max_rows + 1
    )
}

/// A prefiltered table's flags: whether the report's filters keep the row when the report is
/// not grouped by page, and when it is ([`Scope::pages_grouped`]; the forms differ for a page
/// filter on a visit row). Reports over the table test these instead of the filters
/// (`dimensions::filter_conditions`).
pub const KEEP_FLAGS: [&str; 2] = ["keep_visits", "keep_pages"];

/// A unit column that a prefiltered table leaves out, and the value its reports read instead:
/// the custom events' name and properties (conversion reports do not read the table) and the
/// visit's pages (only page and host filters read them, and those were evaluated into the
/// table's flags, [`KEEP_FLAGS`]). Each column a table holds is copied out of every row the
/// fill reads, whether the filters keep it or not: a fifth of the fill's time for these.
fn left_out(column: &str) -> Option<&'static str> {
    match column {
        "name" => Some("''"),
        "props_keys" | "props_values" | "pages_path" | "pages_host" => Some("emptyArrayString()"),
        _ => None,
    }
}

/// Where the stored side of the scope's period is read.
fn stored_read<'a>(
    s: &'a Scope,
    visits: &'a str,
    slices: &'a str,
    rows_where: &'a str,
) -> Stored<'a> {
    Stored {
        visits,
        slices,
        site: s.site.as_str(),
        from: s.from.as_str(),
        to: s.to.as_str(),
        timeout_seconds: s.timeout_seconds.as_str(),
        rows_where,
    }
}

/// The first UTC hour, from the period's first on, with raw events whose slice is not stored:
/// the tail starts there (now, in effect, when every hour is stored). Earlier hours need no
/// look: a unit row in the period is no later than its visit's last event, so its slice (that
/// event's hour) is never before the period's first hour. Bounding the scan by the period keeps
/// it from reading every raw event kept.
///
/// The engine asks for it first ([`tail_start`]) and writes the answer in as a literal
/// ([`Scope::tail_from`]): ClickHouse 18.16 runs a scalar subquery again wherever it is written
/// and each time it analyses the query around it, and the tail names it four times, so on a
/// 90-day period whose raw events are all kept that cost seconds. Asked before the report, the
/// hour can only be earlier than one asked during it (slices are stored, never unstored), and
/// an earlier start reads more raw events but counts the same: which side counts a slice is
/// decided by the join in [`units`] alone.
fn tail_from(s: &Scope) -> String {
    match &s.tail_from {
        Some(hour) => hour.as_str().to_string(),
        None => tail_from_subquery(s),
    }
}

/// The first hour of the open tail (4294967295 when there is none), as a query of its own.
pub fn tail_start(s: &Scope) -> String {
    format!("SELECT toUInt32({}) AS hour", tail_from_subquery(s))
}

/// Visitors of the open tail active in the last `timeout` seconds of the period, for a tail
/// that starts at or after the period's end ([`Scope::tail_after_period`]): none means no
/// tail visit has a record in the period (see [`tail_units`]), so the report reads stored
/// visits only. Mostly none for a period in the past.
pub fn tail_reaches_period(s: &Scope) -> String {
    format!(
        "SELECT count() AS n FROM {events}
WHERE site = {site} AND ts >= {from} AND ts < {hi}
    AND visitor IN (SELECT visitor FROM {events} WHERE site = {site}
        AND ts >= {to} - {timeout} AND ts < {to})",
        events = tail_events(s),
        site = s.site,
        from = tail_from(s),
        hi = s.hi,
        to = s.to,
        timeout = s.timeout_seconds,
    )
}

/// A row of [`tail_reaches_period`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct TailVisitors {
    pub n: u64,
}

/// A row of [`tail_start`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct TailStart {
    pub hour: u32,
}

/// The hours with events come from the per-minute counts (`events_minutes`, migration 0010)
/// from its mark on and from `events` before it (as `event_counts::hours`): a report on today
/// of a busy site read all of today's raw events for them.
fn tail_from_subquery(s: &Scope) -> String {
    format!(
        "(SELECT if(count() = 0, toDateTime(4294967295, 'UTC'), min(h)) FROM (
            SELECT DISTINCT toStartOfHour(minute) AS h FROM {minutes}
            WHERE site = {site} AND minute >= toStartOfHour({from}) AND minute < {hi}
                AND minute >= (SELECT max(minute) FROM {minutes} WHERE site = '')
            UNION ALL
            SELECT DISTINCT toStartOfHour(ts) AS h FROM {events}
            WHERE site = {site} AND ts >= toStartOfHour({from}) AND ts < {hi}
                AND ts < (SELECT max(minute) FROM {minutes} WHERE site = '')
        ) WHERE h NOT IN (SELECT slice FROM {slices} WHERE site = {site} AND done = 1
            AND slice >= toStartOfHour({from})))",
        events = s.table("events"),
        minutes = s.table("events_minutes"),
        slices = s.table("visit_slices"),
        site = s.site,
        from = s.from,
        hi = s.hi,
    )
}

/// Whether the open tail starting at [`tail_from`] can be read from `events_by_hour` and the
/// carry ([`TailByHour`](super::TailByHour)): when `events_by_hour` holds every event from the
/// earliest a tail visit can start (its mark, migration 0011, is no later: `since`, also the
/// per-minute counts' mark, which `prev` is read from), the last hour with events before the
/// tail within that reach (`prev`, 0: none, so no visit was open),
/// and that hour's current computation (`version`) and whether it left its carry (`carry`).
/// The visit job reads a carry on the same terms; a late event in an hour before the tail
/// reaches the tail when the job has computed that hour again, as it reaches stored visits.
pub fn tail_carry(s: &Scope) -> String {
    let from = tail_from(s);
    let lo = format!("{from} - ({MAX_VISIT_SECONDS} + {})", s.timeout_seconds);
    let by_hour = s.table("events_by_hour");
    format!(
        "SELECT since, prev, done_version AS version, done_carry AS carry FROM
(
    SELECT greatest(toUInt32((SELECT max(ts) FROM {by_hour} WHERE site = '')),
            toUInt32((SELECT max(minute) FROM {minutes} WHERE site = ''))) AS since,
        toUInt32((SELECT max(toStartOfHour(minute)) FROM {minutes} WHERE site = {site}
            AND minute >= {lo} AND minute < {from})) AS prev
) AS tail
ANY LEFT JOIN
(
    SELECT toUInt32(slice) AS prev, maxIf(version, done = 1) AS done_version,
        argMaxIf(carry, version, done = 1) AS done_carry
    FROM {slices}
    WHERE site = {site} AND slice >= toStartOfHour({lo}) AND slice < {from}
    GROUP BY slice
) AS computed USING prev",
        site = s.site,
        minutes = s.table("events_minutes"),
        slices = s.table("visit_slices"),
    )
}

/// A row of [`tail_carry`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct TailCarry {
    pub since: u32,
    pub prev: u32,
    pub version: u64,
    pub carry: u8,
}

impl TailCarry {
    /// Where the tail starting at `tail_from` (Unix seconds) can read its events, given the
    /// visit `timeout` in seconds; `None`: from `events` alone.
    pub fn by_hour(&self, tail_from: u32, timeout: u32) -> Option<super::TailByHour> {
        let reach = u32::try_from(MAX_VISIT_SECONDS).unwrap_or(u32::MAX) + timeout;
        if self.since > tail_from.saturating_sub(reach) {
            return None;
        }
        if self.prev == 0 {
            return Some(super::TailByHour { carry: None });
        }
        let prev = jiff::Timestamp::from_second(i64::from(self.prev)).ok()?;
        (self.version > 0 && self.carry == 1).then(|| super::TailByHour {
            carry: Some((super::Sql::datetime(prev), self.version)),
        })
    }
}

/// The raw events the open tail reads: `events`, or its own hours of `events_by_hour` and the
/// carry before them ([`Scope::tail_by_hour`]) as a subquery of the same columns.
fn tail_events(s: &Scope) -> String {
    let Some(t) = &s.tail_by_hour else {
        return s.table("events");
    };
    let carry_table = s.table("visit_carry");
    by_hour_events(
        &s.table("events_by_hour"),
        s.site.as_str(),
        (&tail_from(s), s.hi.as_str()),
        "",
        t.carry.as_ref().map(|(slice, version)| CarryRead {
            table: &carry_table,
            slice: slice.as_str(),
            version: *version,
            kept: "",
        }),
    )
}

/// The tail: visits of visitors active since [`tail_from`], built from their raw events as far
/// back as such a visit can start, kept when their slice is not stored.
///
/// Every read of raw events here, subqueries included, is bounded in time (each would otherwise
/// read every raw event kept, however long `retention.raw_days` is): below by [`tail_from`]
/// less the longest visit (a tail visit's last event is at or after it) or by the period's
/// start, above by the period's events window end `hi` (a visit with a unit row in the period
/// lies wholly before it, see [`Scope::hi`]).
fn tail_units(s: &Scope, filters: &[Filter], rows_where: &str) -> String {
    let from = tail_from(s);
    let events = tail_events(s);
    let site = s.site.as_str();
    let lo = format!("{from} - ({MAX_VISIT_SECONDS} + {})", s.timeout_seconds);
    // A tail visit ends at or after `from`, so its events, one matching each filter, are no
    // older than `lo`.
    // When the tail starts after the period, a tail visit with a record in the period began
    // before its end and went on past it; with no gap over the timeout, it has an event in the
    // last `timeout` seconds before the end (its last one before the end is no older). Few
    // visitors were active both then and now, so few visits are built (a report on past days
    // builds almost none).
    let across_end = if s.tail_after_period {
        format!(
            "\n                AND visitor IN (SELECT visitor FROM {events} WHERE site = {site} \
             AND ts >= {to} - {timeout} AND ts < {to})",
            to = s.to,
            timeout = s.timeout_seconds,
        )
    } else {
        String::new()
    };
    let narrow = format!(
        "\n                AND visitor IN (SELECT visitor FROM {events} WHERE site = {site} \
         AND ts >= {period_from} AND ts >= {from} AND ts < {hi}){across_end}{narrow}",
        period_from = s.from,
        hi = s.hi,
        narrow = narrow(filters, s, &events, &format!(" AND ts >= {lo}")),
    );
    let raw = raw_units(&RawUnits {
        events: &events,
        site,
        tz: s.tz.as_str(),
        timeout_seconds: s.timeout_seconds.as_str(),
        bounce_ms: s.bounce_ms.as_str(),
        lo: &lo,
        hi: s.hi.as_str(),
        narrow: &narrow,
        // Only a conversion report reads props.
        pageview_props: s.conversions.is_some(),
    });
    format!(
        "SELECT {columns}, slice, toUInt64(0) AS version
FROM
(
{raw}
)
WHERE {period} AND slice >= {from}
    AND slice NOT IN (SELECT slice FROM {slices} WHERE site = {site} AND done = 1){rows_where}",
        columns = UNIT_COLUMNS.join(", "),
        period = period(s),
        rows_where = and_condition(rows_where),
        slices = s.table("visit_slices"),
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

/// Every visit with a record in the period, built from raw events: those from as far before
/// the period as a visit can start, to as far after it as one can last.
fn raw_period_units(s: &Scope, narrow: &str) -> String {
    let events = s.table("events");
    let narrow = match &s.events_where {
        Some(cond) => format!("{narrow}\n                AND {cond}"),
        None => narrow.to_string(),
    };
    let raw = raw_units(&RawUnits {
        events: &events,
        site: s.site.as_str(),
        tz: s.tz.as_str(),
        timeout_seconds: s.timeout_seconds.as_str(),
        bounce_ms: s.bounce_ms.as_str(),
        lo: s.lo.as_str(),
        hi: s.hi.as_str(),
        narrow: &narrow,
        // Only a conversion report reads props.
        pageview_props: s.conversions.is_some(),
    });
    format!(
        "SELECT {columns}
FROM
(
{raw}
)
WHERE {period}",
        columns = UNIT_COLUMNS.join(", "),
        period = period(s),
    )
}

/// A dimension's value computed from `events` columns, for the filters [`narrow`] can use.
fn event_dimension(d: Dimension, s: &Scope) -> Option<String> {
    Some(match d {
        Dimension::Page | Dimension::EntryPage | Dimension::ExitPage => "path".into(),
        Dimension::Referrer => dimension(d, s).replace("referrer", "referrer_host"),
        Dimension::Device => dimension(d, s).replace("device", "if(screen != '', screen, device)"),
        Dimension::Hostname
        | Dimension::Source
        | Dimension::UtmSource
        | Dimension::UtmMedium
        | Dimension::UtmCampaign
        | Dimension::UtmContent
        | Dimension::UtmTerm
        | Dimension::Country
        | Dimension::CountryName
        | Dimension::Channel
        | Dimension::Browser
        | Dimension::Os => dimension(d, s),
        _ => return None,
    })
}

/// Narrows the raw events the tail reads to visitors that have at least one event matching each
/// positive top-level filter (`is`, `contains`, `matches`): a visit, or a pageview, can only
/// match if one of its own events does, and a visit with a unit row in the period lies within
/// the events window `[lo, hi)`, so only that window is searched. Exact filtering happens on the
/// unit rows; this only skips building visits that cannot match. `since`: a further condition
/// on the events searched (` AND …`), for a reader that knows its visits' events lie later.
fn narrow(filters: &[Filter], s: &Scope, events: &str, since: &str) -> String {
    let mut out = String::new();
    for f in filters {
        let Filter::Leaf {
            op,
            dimension: d,
            values,
            case_sensitive,
        } = f
        else {
            continue;
        };
        if !matches!(op, Op::Is | Op::Contains | Op::Matches) {
            continue;
        }
        let Some(expr) = event_dimension(*d, s) else {
            continue;
        };
        let _ = write!(
            out,
            "\n                AND visitor IN (SELECT visitor FROM {events} WHERE site = {site} \
             AND ts >= {lo} AND ts < {hi}{since} AND {cond})",
            site = s.site,
            lo = s.lo,
            hi = s.hi,
            cond = super::dimensions::leaf(*op, &expr, values, *case_sensitive, d.is_page()),
        );
    }
    out
}

/// Pageviews (component 0) and visitors (component 1) of the period straight from raw events,
/// in the shape of the grouped query: what "realtime" asks for, without building visits (each
/// pageview belongs to a visit, and `day_visitor` is derived from the hash the same way), of
/// the events `filters` keep: only filters on visitor-constant dimensions, which hold for an
/// event exactly when they hold for its visit (`Filter::is_visitor_constant`).
pub fn recent_pageviews(s: &Scope, filters: &[Filter]) -> String {
    let mut keep = String::new();
    for f in filters {
        debug_assert!(f.is_visitor_constant(), "{f:?}");
        let _ = write!(keep, " AND ({})", filter(f, s));
    }
    format!(
        "SELECT CAST([] AS Array(String)) AS dims, [toFloat64(countIf(name = 'pageview')),
    toFloat64(uniqExactIf(sipHash64(visitor, toDate(ts, {tz})), name = 'pageview'))] AS comps
FROM {events}
WHERE site = {site} AND ts >= {from} AND ts < {to}{keep}",
        tz = s.tz,
        events = s.table("events"),
        site = s.site,
        from = s.from,
        to = s.to,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::sql::{example_scope as scope, Sql};

    #[test]
    fn issue_14_the_report_conditions_are_applied_where_rows_are_read() {
        let sql = units(&scope(), &[], "country = 'NL'");
        let stored = &sql[..sql.find("UNION ALL").unwrap()];
        let tail = &sql[sql.find("UNION ALL").unwrap()..sql.find(") AS unit\n").unwrap()];
        assert!(stored.contains("AND (country = 'NL')"), "{stored}");
        assert!(tail.contains("AND (country = 'NL')"), "{tail}");
        // The tail's first hour found by the query itself, unless the caller has it.
        assert!(sql.contains("SELECT DISTINCT toStartOfHour(ts)"), "{sql}");
        let mut s = scope();
        s.tail_from = Some(Sql::fixed("toDateTime(1775000000, 'UTC')"));
        let sql = units(&s, &[], "");
        assert!(!sql.contains("SELECT DISTINCT toStartOfHour(ts)"), "{sql}");
        assert!(sql.contains("toDateTime(1775000000, 'UTC') - ("), "{sql}");
    }

    #[test]
    fn issue_14_the_open_tail_reads_its_own_hours_and_the_carry_before_them() {
        let mut s = scope();
        s.tail_from = Some(Sql::fixed("toDateTime(1775000000, 'UTC')"));
        let nl = [Filter::Leaf {
            op: Op::Is,
            dimension: Dimension::Country,
            values: vec!["NL".into()],
            case_sensitive: true,
        }];
        // From `events` unless the caller found `events_by_hour` and the carry complete.
        let raw = units(&s, &nl, "");
        assert!(raw.contains("FROM db.events WHERE") && !raw.contains("events_by_hour"));
        s.tail_by_hour = Some(crate::stats::sql::TailByHour {
            carry: Some((Sql::fixed("toDateTime(1774996400, 'UTC')"), 42)),
        });
        let sql = units(&s, &nl, "");
        let tail = &sql[sql.find("UNION ALL").unwrap()..];
        // Every read of the tail (the visits built, the visitors active since its start, those
        // matching the filter) reads the union, bounded on the hour, and never `events`.
        assert!(!tail.contains("FROM db.events "), "{tail}");
        let own = "FROM db.events_by_hour WHERE site = 'a.example' AND toStartOfHour(ts) >= \
                   toStartOfHour(toDateTime(1775000000, 'UTC')) AND toStartOfHour(ts) < ";
        assert_eq!(tail.matches(own).count(), 3, "{tail}");
        let carry = "FROM db.visit_carry WHERE site = 'a.example' AND slice = \
                     toDateTime(1774996400, 'UTC') AND version = 42)";
        assert_eq!(tail.matches(carry).count(), 3, "{tail}");
        // No visit open before the tail: its hours alone.
        s.tail_by_hour = Some(crate::stats::sql::TailByHour { carry: None });
        let sql = units(&s, &nl, "");
        assert!(sql.contains(own) && !sql.contains("visit_carry"), "{sql}");
        s.tail_after_period = true;
        assert!(tail_reaches_period(&s).contains(own));
    }

    #[test]
    fn issue_14_the_tail_reads_the_carry_only_where_the_visit_job_left_it() {
        let from = 1_775_000_000 - 1_775_000_000 % 3600;
        let reach = 25 * 3600 + 1800;
        let row = |since, prev, version, carry| TailCarry {
            since,
            prev,
            version,
            carry,
        };
        let carried = |t: Option<crate::stats::sql::TailByHour>| t.map(|t| t.carry.map(|c| c.1));
        assert_eq!(
            carried(row(0, from - 3600, 9, 1).by_hour(from, 1800)),
            Some(Some(9))
        );
        assert_eq!(
            carried(row(from - reach, from - 7200, 9, 1).by_hour(from, 1800)),
            Some(Some(9))
        );
        // `events_by_hour` began after the earliest start of a tail visit.
        assert_eq!(
            carried(row(from - reach + 60, from - 3600, 9, 1).by_hour(from, 1800)),
            None
        );
        // The hour before was stored without a carry, or never.
        assert_eq!(carried(row(0, from - 3600, 9, 0).by_hour(from, 1800)), None);
        assert_eq!(carried(row(0, from - 3600, 0, 0).by_hour(from, 1800)), None);
        // No event within reach before the tail: nothing was open.
        assert_eq!(carried(row(0, 0, 0, 0).by_hour(from, 1800)), Some(None));
    }

    #[test]
    fn issue_14_a_tail_after_the_period_is_narrowed_or_left_out() {
        let mut s = scope();
        s.tail_from = Some(Sql::fixed("toDateTime(1775000000, 'UTC')"));
        let across = format!("ts >= {} - 1800 AND ts < {}", s.to.as_str(), s.to.as_str());
        assert!(!units(&s, &[], "").contains(&across));
        s.tail_after_period = true;
        assert!(units(&s, &[], "").contains(&across));
        assert!(tail_reaches_period(&s).contains(&across));
        // No tail visit reaches the period: stored visits alone, each slice at its version.
        s.open_tail = false;
        let sql = units(&s, &[], "kind = 0");
        assert!(
            !sql.contains("UNION ALL") && !sql.contains("FROM db.events"),
            "{sql}"
        );
        assert!(sql.contains("(slice, version) IN ("), "{sql}");
        assert!(sql.contains("AND (kind = 0)"), "{sql}");
    }

    #[test]
    fn issue_14_a_prefiltered_table_reads_by_page_and_flags_each_forms_copy() {
        let filters = [Filter::Leaf {
            op: Op::Contains,
            dimension: Dimension::Page,
            values: vec!["/a".into()],
            case_sensitive: true,
        }];
        let mut s = scope();
        s.open_tail = false;
        assert!(prefilter(&s, &filters, "t", 10).contains("FROM db.visits\n"));
        s.by_page = true;
        let sql = prefilter(&s, &filters, "t", 10);
        assert!(sql.contains("FROM db.visit_pages\n"), "{sql}");
        assert!(
            sql.contains("AND page_path IN (SELECT page_path FROM db.visit_page_days"),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT slice, argMax(pages, (version, pages))"),
            "{sql}"
        );
        let first =
            "(kind != 0 OR page_no = arrayFirstIndex(pp -> (position(pp, '/a') > 0), pages_path))";
        let entry = "(kind != 0 OR (page_path = path AND page_host = host))";
        assert!(
            sql.contains(&format!("(({first}) OR ({entry}))")),
            "a row is read if either form counts it: {sql}"
        );
        let flag = |name: &str| {
            let end = sql.find(&format!(" AS {name}")).unwrap();
            sql[sql[..end].rfind("toUInt8(").unwrap()..end].to_string()
        };
        assert!(flag("keep_visits").contains(first), "{sql}");
        assert!(!flag("keep_visits").contains(entry), "{sql}");
        assert!(flag("keep_pages").contains(entry), "{sql}");
        assert!(!flag("keep_pages").contains(first), "{sql}");
    }

    #[test]
    fn issue_14_a_prefiltered_table_keeps_the_rows_of_either_page_filter_form() {
        let page = Filter::Leaf {
            op: Op::Is,
            dimension: Dimension::Page,
            values: vec!["/a".into()],
            case_sensitive: true,
        };
        let country = Filter::Leaf {
            op: Op::IsNot,
            dimension: Dimension::Country,
            values: vec!["NL".into()],
            case_sensitive: true,
        };
        let mut s = scope();
        s.open_tail = false;
        let sql = prefilter(&s, &[page.clone(), country.clone()], "t", 10);
        assert!(
            sql.starts_with("CREATE TEMPORARY TABLE t ENGINE = Memory AS"),
            "{sql}"
        );
        assert!(sql.ends_with("\nLIMIT 11"), "{sql}");
        // A visit row by its pages, or (grouped by page) by its entry page: the table keeps
        // the rows of either, and says which in its flags.
        let (visit, entry) = (
            "(if(kind = 0, (has(pages_path, '/a')), (path = '/a')))",
            "((path = '/a'))",
        );
        assert!(sql.contains(&format!("({visit} OR {entry})")), "{sql}");
        assert!(sql.contains("(NOT (country = 'NL'))"), "{sql}");
        assert!(
            sql.contains(&format!(
                "toUInt8({visit} AND (NOT (country = 'NL'))) AS keep_visits"
            )),
            "{sql}"
        );
        assert!(
            sql.contains(&format!(
                "toUInt8({entry} AND (NOT (country = 'NL'))) AS keep_pages"
            )),
            "{sql}"
        );
        // The pages are read by the filters alone, not copied into the table.
        let columns = &sql[..sql.find("FROM").unwrap()];
        assert!(
            !columns.contains(" pages_path,") && !columns.contains("props_keys"),
            "{sql}"
        );
        // Reports over the table test its flags.
        s.units_table = Some("t".into());
        let read = units(&s, std::slice::from_ref(&country), "");
        assert!(read.contains("emptyArrayString() AS pages_path"), "{read}");
        assert!(
            read.contains("'' AS name") && read.ends_with("keep_visits, keep_pages FROM t"),
            "{read}"
        );
        assert!(stored_only(&s).is_none());
        let filters = [page, country];
        assert_eq!(
            super::super::dimensions::filter_conditions(&s, &filters),
            ["(keep_visits = 1)"]
        );
        s.pages_grouped = true;
        assert_eq!(
            super::super::dimensions::filter_conditions(&s, &filters),
            ["(keep_pages = 1)"]
        );
        assert!(super::super::dimensions::filter_conditions(&s, &[]).is_empty());
    }
}
