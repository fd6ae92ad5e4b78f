//! Unit rows, the records every report counts, in SQL: built from raw events ([`raw_units`]: the
//! one definition both the visit job, which stores them, and the reports, which read the
//! still-open tail, use) or read back from the `visits` table ([`stored_units`]).
//!
//! The events of each visitor hash are sorted by `(ts, micros, event_id)`; a gap of more than
//! the visit timeout starts a new visit. Every kind of event extends a visit; a visit counts only
//! if it has a pageview. Per visit, one *unit* row is written for the visit itself (kind 0, at
//! its start: the time of its first pageview), one per pageview (kind 1, at its time, with its
//! allow-listed props) and one per custom event (kind 2). The visit's attributes are those of
//! its first pageview; its duration is its last event (of any kind) minus its start. A pageview
//! that is the first view of its page in the visit carries the page's engaged time and deepest
//! scroll (`page_visit` = 1).
//!
//! A visitor hash lives one salt day and the grace after it (see `visitor`), so a visit is never
//! longer than [`MAX_VISIT_SECONDS`] plus the timeout: a visit that ends at or after an instant
//! started no earlier than that much before it. Reading events from there on is all it takes to
//! rebuild any visit in full, however long it ran.
//!
//! Runs on ClickHouse 18.16 (no window functions) and on current ClickHouse.

/// A salt day is at most 25 hours long (the day a DST change gives back an hour).
pub const MAX_VISIT_SECONDS: i64 = 25 * 3600;

/// The columns of `events` after `site` that a visit is built from ([`raw_units`]): what
/// `visit_carry` keeps of the events of a visit still open, and what a union standing in for
/// `events` selects.
pub const EVENT_COLUMNS: &str = "ts, micros, visitor, name, host, path, utm_source, utm_medium, \
    utm_campaign, utm_content, utm_term, referrer_host, source, country, device, browser, os, \
    screen, engaged_ms, scroll_depth, props_keys, props_values, event_id";

/// `site = … AND ts` in `[from, to)` (SQL expressions) on `events_by_hour`, with the bounds on
/// the hour that its order starts with: ClickHouse 18.16 prunes by `toStartOfHour(ts)` only
/// from a condition on that expression itself (one and a half hours read the whole day
/// without it).
pub fn by_hour(site: &str, from: &str, to: &str) -> String {
    format!(
        "site = {site} AND toStartOfHour(ts) >= toStartOfHour({from}) AND toStartOfHour(ts) < {to} \
         AND ts >= {from} AND ts < {to}"
    )
}

/// A carry to read with [`by_hour_events`]: the `visit_carry` table, the slice (an SQL
/// expression) and version of the computation that left it, and a condition appended to its
/// read (` AND …`, or empty).
pub struct CarryRead<'a> {
    pub table: &'a str,
    pub slice: &'a str,
    pub version: u64,
    pub kept: &'a str,
}

/// Raw events as a subquery of `site` and [`EVENT_COLUMNS`]: those of `table` (an
/// `events_by_hour`) of `site` in `[from, to)` (with `own` appended to their condition), and
/// the events of the visits a computation left open before `from` ([`CarryRead`]), if any.
/// What a carried batch of the visit job reads, and the open tail of a report read by the hour.
pub fn by_hour_events(
    table: &str,
    site: &str,
    (from, to): (&str, &str),
    own: &str,
    carry: Option<CarryRead>,
) -> String {
    let hours = format!(
        "SELECT site, {EVENT_COLUMNS} FROM {table} WHERE {}{own}",
        by_hour(site, from, to)
    );
    match carry {
        None => format!("({hours})"),
        Some(c) => format!(
            "({hours}\n    UNION ALL SELECT site, {EVENT_COLUMNS} FROM {table} \
             WHERE site = {site} AND slice = {slice} AND version = {version}{kept})",
            table = c.table,
            slice = c.slice,
            version = c.version,
            kept = c.kept,
        ),
    }
}

/// The columns of a unit row, in the order [`raw_units`] selects them and `visits` stores them
/// (after `site`, `slice` and `version`).
pub const UNIT_COLUMNS: [&str; 30] = [
    "kind",
    "ts",
    "day_visitor",
    "path",
    "host",
    "pages_path",
    "pages_host",
    "entry",
    "exit",
    "source",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "country",
    "device",
    "browser",
    "os",
    "duration",
    "pageviews",
    "bounce",
    "page_visit",
    "page_ms",
    "page_sd",
    "has_sd",
    "name",
    "props_keys",
    "props_values",
];

/// What one build reads. Every field is SQL text (literals built with `sql_text`, or
/// expressions such as a dashboard's time-range macros and variables).
pub struct RawUnits<'a> {
    /// The events table (`database.events`, or unqualified).
    pub events: &'a str,
    /// The site, as a literal.
    pub site: &'a str,
    /// The site's time zone, as a literal: `day_visitor` is per local date.
    pub tz: &'a str,
    /// Seconds; a longer gap between a visitor's events starts a new visit.
    pub timeout_seconds: &'a str,
    /// Milliseconds; a one-page visit engaged for less is a bounce.
    pub bounce_ms: &'a str,
    /// Events read: `ts >= lo AND ts < hi`.
    pub lo: &'a str,
    pub hi: &'a str,
    /// Extra conditions on the events read (` AND …`); they may only drop whole visitors.
    pub narrow: &'a str,
    /// Whether the pageview rows carry their pageviews' props: where the site allow-lists
    /// props (the visit job) or the report reads them (a conversion report). Otherwise no
    /// pageview can have any to keep, and collecting them would cost the statement about 7 %
    /// of its CPU (BENCHMARKS.md, "Pageview props in the visit job").
    pub pageview_props: bool,
}

/// The unit rows of every visit built from the events in `[lo, hi)`, in [`UNIT_COLUMNS`] order,
/// followed by `pages` (kind 0: the visit's distinct `(path, host)` pairs), `last` (the visit's
/// last event) and `slice` (the UTC hour of `last`).
pub fn raw_units(p: &RawUnits) -> String {
    format!(
        "SELECT
    r.1 AS kind, r.2 AS ts, sipHash64(visitor, toDate(r.2, {tz})) AS day_visitor,
    r.3 AS path, r.4 AS host,
    arrayMap(x -> x.1, pages) AS pages_path,
    arrayMap(x -> x.2, pages) AS pages_host,
    entry, exit, source, referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term,
    country, device, browser, os, duration, vpageviews AS pageviews, bounce,
    r.5 AS page_visit, r.6 AS page_ms, r.7 AS page_sd, r.8 AS has_sd,
    r.9 AS name, r.10 AS props_keys, r.11 AS props_values,
    arrayFilter(x -> r.1 = 0, vpages) AS pages,
    last, toStartOfHour(last) AS slice
FROM
(
    SELECT
        visitor,
        minIf(ts, pv) AS start,
        max(ts) AS last,
        toUInt32(toUInt32(last) - toUInt32(start)) AS duration,
        toUInt32(countIf(pv)) AS vpageviews,
        toUInt8(vpageviews = 1 AND sumIf(engaged_ms, name = 'engagement') < {bounce_ms}) AS bounce,
        -- One aggregate for all attributes of the first pageview; `ord` is the event's position
        -- in its visitor's sorted events.
        argMinIf((path, host, ev_source, ev_referrer, ev_utm_source, ev_utm_medium,
            ev_utm_campaign, ev_utm_content, ev_utm_term, ev_country, ev_device, ev_browser,
            ev_os), ord, pv) AS first,
        first.1 AS entry,
        first.2 AS entry_host,
        argMaxIf(path, ord, pv) AS exit,
        first.3 AS source,
        first.4 AS referrer,
        first.5 AS utm_source,
        first.6 AS utm_medium,
        first.7 AS utm_campaign,
        first.8 AS utm_content,
        first.9 AS utm_term,
        first.10 AS country,
        first.11 AS device,
        first.12 AS browser,
        first.13 AS os,
        groupArrayIf((ts, path, host, ord), pv) AS pvs,{pv_props}
        groupArrayIf((path, host, engaged_ms, scroll_depth), name = 'engagement') AS engs,
        groupArrayIf((ts, path, host, name, ev_props_keys, ev_props_values),
            name != 'pageview' AND name != 'engagement') AS customs,
        groupUniqArrayIf((path, host), pv) AS vpages,
        arrayConcat(
            [(toUInt8(0), start, entry, entry_host, toUInt8(0), toUInt32(0), toUInt8(0),
                toUInt8(0), '', emptyArrayString(), emptyArrayString())],
            arrayMap({pv_args} -> (
                toUInt8(1), p.1, p.2, p.3,
                -- the first view of this page in the visit
                toUInt8(p.4 = arrayReduce('min', arrayMap(q -> q.4,
                    arrayFilter(q -> q.2 = p.2 AND q.3 = p.3, pvs)))),
                toUInt32(arraySum(arrayMap(x -> x.3,
                    arrayFilter(x -> x.1 = p.2 AND x.2 = p.3, engs)))),
                toUInt8(arrayReduce('max', arrayMap(x -> x.4,
                    arrayFilter(x -> x.1 = p.2 AND x.2 = p.3, engs)))),
                toUInt8(notEmpty(arrayFilter(x -> x.1 = p.2 AND x.2 = p.3, engs))),
                '', {pv_props_out}),
            -- `engs` is named outside a lambda too: ClickHouse 18.16 prunes subquery columns
            -- referenced only inside lambdas, which would drop `engs` and its source columns.
            if(empty(engs), pvs, pvs){pv_props_arg}),
            arrayMap(c -> (toUInt8(2), c.1, c.2, c.3, toUInt8(0), toUInt32(0), toUInt8(0),
                toUInt8(0), c.4, c.5, c.6), customs)
        ) AS units
    FROM
    (
        SELECT
            visitor, vno, ord, e.1 AS ts, e.3 AS name, e.4 AS path, e.5 AS host,
            e.6 AS engaged_ms, e.7 AS scroll_depth, e.8 AS ev_source, e.9 AS ev_referrer,
            e.10 AS ev_utm_source, e.11 AS ev_utm_medium, e.12 AS ev_utm_campaign,
            e.13 AS ev_utm_content, e.14 AS ev_utm_term, e.15 AS ev_country, e.16 AS ev_device,
            e.17 AS ev_browser, e.18 AS ev_os, e.19 AS ev_props_keys, e.20 AS ev_props_values,
            e.3 = 'pageview' AS pv
        FROM
        (
            SELECT
                visitor,
                -- Arrival order, also within one second.
                arraySort(x -> (x.1, x.2.1, x.2.2), groupArray((ts, (micros, event_id), name,
                    path, host, engaged_ms, scroll_depth, source, referrer_host, utm_source,
                    utm_medium, utm_campaign, utm_content, utm_term, country,
                    if(screen != '', screen, device), browser, os, props_keys,
                    props_values))) AS evs,
                -- a gap longer than the visit timeout starts a new visit
                arrayCumSum(arrayMap(d -> d > {timeout},
                    arrayDifference(arrayMap(x -> toUInt32(x.1), evs)))) AS vnos
            FROM {events}
            WHERE site = {site} AND ts >= {lo} AND ts < {hi}{narrow}
            GROUP BY visitor
        )
        ARRAY JOIN evs AS e, vnos AS vno, arrayEnumerate(evs) AS ord
    )
    GROUP BY visitor, vno
    HAVING vpageviews > 0
)
ARRAY JOIN units AS r",
        tz = p.tz,
        bounce_ms = p.bounce_ms,
        timeout = p.timeout_seconds,
        events = p.events,
        site = p.site,
        lo = p.lo,
        hi = p.hi,
        narrow = p.narrow,
        pv_props = if p.pageview_props {
            // Apart from `pvs`, in the same order: the lambdas that read `pvs` for every
            // pageview would copy them once per pageview of the visit.
            "\n        groupArrayIf((ev_props_keys, ev_props_values), pv) AS pv_props,"
        } else {
            ""
        },
        pv_args = if p.pageview_props { "(p, pp)" } else { "p" },
        // the pageview's own allow-listed props (Plausible's pageview props)
        pv_props_out = if p.pageview_props {
            "pp.1, pp.2"
        } else {
            "emptyArrayString(), emptyArrayString()"
        },
        pv_props_arg = if p.pageview_props { ", pv_props" } else { "" },
    )
}

/// Where [`stored_units`] reads. Every field is SQL text.
pub struct Stored<'a> {
    /// The `visits` table (qualified or not).
    pub visits: &'a str,
    /// The `visit_slices` table.
    pub slices: &'a str,
    /// The site, as a literal.
    pub site: &'a str,
    /// Records at `ts >= from AND ts < to`.
    pub from: &'a str,
    pub to: &'a str,
    /// Seconds.
    pub timeout_seconds: &'a str,
    /// A further condition on the rows (SQL over [`UNIT_COLUMNS`]), or empty: the
    /// report's own filters, so that the rows a report drops are not read past the table.
    pub rows_where: &'a str,
}

/// The stored unit rows of every version, in [`UNIT_COLUMNS`] order followed by
/// `slice` and `version`: for a reader that picks each slice's current version itself (see
/// `stats::sql::units`).
pub fn stored_rows(p: &Stored) -> String {
    let columns = UNIT_COLUMNS.join(", ");
    format!(
        "SELECT {columns}, slice, version
FROM {visits}
WHERE site = {site} AND ts >= {from} AND ts < {to}{rows_where}",
        visits = p.visits,
        site = p.site,
        from = p.from,
        to = p.to,
        rows_where = and_condition(p.rows_where),
    )
}

/// `\n    AND (cond)`, or nothing for an empty `cond`.
pub fn and_condition(cond: &str) -> String {
    if cond.is_empty() {
        String::new()
    } else {
        format!("\n    AND ({cond})")
    }
}

/// The stored unit rows, at each slice's current version, in [`UNIT_COLUMNS`] order.
pub fn stored_units(p: &Stored) -> String {
    let columns = UNIT_COLUMNS.join(", ");
    format!(
        "SELECT {columns}
FROM {visits}
WHERE site = {site} AND ts >= {from} AND ts < {to}{rows_where}
    AND {current}",
        visits = p.visits,
        site = p.site,
        from = p.from,
        to = p.to,
        rows_where = and_condition(p.rows_where),
        current = current_version(p),
    )
}

/// The condition that keeps the rows of each slice's current computation on a read of
/// `visit_pages` in `[from, to)`: the copy its marker names (`visit_slices.pages`, migration
/// 0009), of the highest version marked done. A slice whose current computation has no copy
/// gives version 0, which no row has: a reader first makes sure there is none
/// (`stats::sql::units::pages_ready`).
pub fn current_copy(p: &Stored) -> String {
    format!(
        "(slice, version) IN (
        SELECT slice, argMax(pages, (version, pages)) FROM {slices}
        WHERE {markers}
        GROUP BY slice
    )",
        slices = p.slices,
        markers = markers_read(p),
    )
}

/// The done markers of the slices whose rows can lie in `[from, to)`.
pub fn markers_read(p: &Stored) -> String {
    format!(
        "site = {site} AND done = 1 AND slice >= toStartOfHour({from})
            AND slice < {to} + ({reach} + {timeout} + 3600)",
        site = p.site,
        from = p.from,
        to = p.to,
        reach = MAX_VISIT_SECONDS,
        timeout = p.timeout_seconds,
    )
}

/// The condition that keeps the rows of each slice's current version (the highest marked
/// done) on a read of `visits` in `[from, to)`. A visit's records lie between its start and its
/// last event, which ends its slice within [`MAX_VISIT_SECONDS`] plus the timeout: only those
/// slices' markers are read.
pub fn current_version(p: &Stored) -> String {
    format!(
        "(slice, version) IN (
        SELECT slice, max(version) FROM {slices}
        WHERE {markers}
        GROUP BY slice
    )",
        slices = p.slices,
        markers = markers_read(p),
    )
}
