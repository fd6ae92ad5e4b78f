//! The visit job's SQL: the statement that stores one slice (the visits whose last event lies
//! in one UTC hour), the copy of its rows ordered by page (`visit_pages`), its markers, and the
//! counts the job decides with.

use jiff::{SignedDuration, Timestamp};

use super::units::{
    by_hour, by_hour_events, raw_units, CarryRead, RawUnits, EVENT_COLUMNS, MAX_VISIT_SECONDS,
    UNIT_COLUMNS,
};
use crate::sql_text::{datetime, lit};

/// Slices to compute in one statement: the site, its time zone and visit settings, and the
/// hours `hour .. hour + hours`. One statement for several hours reads the events they share
/// once: on ClickHouse 18.16 a time range inside a day prunes nothing (events are ordered by
/// date, then visitor), so every slice reads one or two whole days; twelve hours at once cost
/// about a sixth of twelve single hours (BENCHMARKS.md, "Storing visits").
#[derive(Clone, Copy)]
pub struct Slice<'a> {
    pub database: &'a str,
    pub site: &'a str,
    pub tz: &'a str,
    pub timeout_seconds: u32,
    pub bounce_ms: u32,
    /// The site allow-lists props, so its pageviews may carry some ([`RawUnits`]).
    pub pageview_props: bool,
    /// Start of the first UTC hour.
    pub hour: Timestamp,
    /// Hours, from `hour` on (at least 1).
    pub hours: u32,
    /// The visitors stored: part `.0` of `.1` equal ranges of the visitor hash (`(0, 1)`: all).
    pub part: (u32, u32),
    /// Read the carry of the slice before instead of the hours before `hour` ([`Carry`]);
    /// `None`: the whole read range from `events`.
    pub carry: Option<Carry>,
}

/// The open visits a computation left at the end of its last slice (`visit_carry`): the slice
/// and the computation's version. A batch that reads them reads its own hours from
/// `events_by_hour` (ordered by the hour first) and nothing before `hour`: each event is read
/// about once in the steady state, where the whole read range of 25.5 hours read every day it
/// touched (BENCHMARKS.md, "Carrying open visits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carry {
    pub slice: Timestamp,
    pub version: u64,
}

/// The events a carried batch reads, as a subquery: its own from its first hour to `to` (from
/// `events_by_hour`, with `own` appended to their condition) and the carry `c` (with `kept`).
fn carried(s: &Slice, c: Carry, to: Timestamp, own: &str, kept: &str) -> String {
    let db = s.database;
    by_hour_events(
        &format!("{db}.events_by_hour"),
        &lit(s.site),
        (&datetime(s.hour), &datetime(to)),
        own,
        Some(CarryRead {
            table: &format!("{db}.visit_carry"),
            slice: &datetime(c.slice),
            version: c.version,
            kept,
        }),
    )
}

/// ` AND visitor >= … AND visitor < …` for part `k` of `n` equal ranges of the 64-bit visitor
/// hash (nothing for one part). A visitor's events are in one range, so each visit is built
/// from all of them; `events` is ordered by visitor within a day, so a range reads only its
/// share of each day.
pub fn visitor_range((k, n): (u32, u32)) -> String {
    if n <= 1 {
        return String::new();
    }
    let bound = |i: u32| ((u128::from(i) << 64) / u128::from(n)) as u64;
    let mut sql = String::new();
    if k > 0 {
        sql.push_str(&format!(" AND visitor >= {}", bound(k)));
    }
    if k + 1 < n {
        sql.push_str(&format!(" AND visitor < {}", bound(k + 1)));
    }
    sql
}

impl Slice<'_> {
    /// The end of the last hour.
    pub fn end(&self) -> Timestamp {
        self.hour + SignedDuration::from_hours(i64::from(self.hours.max(1)))
    }

    /// The events any visit ending in these hours is built from: from the earliest start such a
    /// visit can have, to the end of the last hour plus the timeout (an event there would have
    /// continued it).
    pub fn read_range(&self) -> (Timestamp, Timestamp) {
        let timeout = SignedDuration::from_secs(i64::from(self.timeout_seconds));
        let lo = self.hour - SignedDuration::from_secs(MAX_VISIT_SECONDS) - timeout;
        let hi = self.end() + timeout;
        (lo, hi)
    }
}

/// Stores the slices' visits under `version`: every visit of a visitor active in the hours (and
/// in the slice's visitor range) whose last event lies in them, each under the slice of its
/// last event's hour.
pub fn store(s: &Slice, version: u64) -> String {
    let (lo, hi) = s.read_range();
    let hour_end = s.end();
    let site = lit(s.site);
    let range = visitor_range(s.part);
    let (events, narrow) = match s.carry {
        None => {
            let events = format!("{}.events", s.database);
            let narrow = format!(
                "{range}\n                AND visitor IN (SELECT visitor FROM {events} WHERE site = {site} \
                 AND ts >= {from} AND ts < {to}{range})",
                from = datetime(s.hour),
                to = datetime(hour_end),
            );
            (events, narrow)
        }
        // The batch's own events to its end and the timeout, and the open visits before it,
        // each of the visitor range: ClickHouse 18.16 does not push the outer condition into
        // the union, so without it every part read all of them (8.4 rows read per event
        // stored at three parts an hour, BENCHMARKS.md, "Storing visits").
        Some(c) => {
            let db = s.database;
            let events = carried(s, c, hi, &range, &range);
            let narrow = format!(
                "{range}\n                AND visitor IN (SELECT visitor FROM {db}.events_by_hour \
                 WHERE {}{range})",
                by_hour(&site, &datetime(s.hour), &datetime(hour_end)),
            );
            (events, narrow)
        }
    };
    let units = raw_units(&RawUnits {
        events: &events,
        site: &site,
        tz: &lit(s.tz),
        timeout_seconds: &s.timeout_seconds.to_string(),
        bounce_ms: &s.bounce_ms.to_string(),
        lo: &datetime(lo),
        hi: &datetime(hi),
        narrow: &narrow,
        pageview_props: s.pageview_props,
    });
    let columns = UNIT_COLUMNS.join(", ");
    format!(
        "INSERT INTO {db}.visits (site, slice, version, {columns})
SELECT {site}, slice, {version}, {columns}
FROM
(
{units}
)
WHERE slice >= {hour} AND slice < {end}",
        db = s.database,
        hour = datetime(s.hour),
        end = datetime(s.end()),
    )
}

/// Writes the carry of the slices' computation under `version` (for the slice range's
/// visitors): the events before the end of the last hour of every visitor whose last event lies
/// within the timeout of it (a later event would continue its visit), from the first event of
/// that visitor's last visit (after its last gap over the timeout), and none before the read
/// range of the hour after (where that hour's read range would cut the visit). From the carry
/// the batch read and its own hours, or, without one, from `events` over that read range.
pub fn write_carry(s: &Slice, version: u64) -> String {
    let site = lit(s.site);
    let end = s.end();
    let timeout = SignedDuration::from_secs(i64::from(s.timeout_seconds));
    let next = Slice {
        hour: end,
        hours: 1,
        ..*s
    };
    let (lo_next, _) = next.read_range();
    let range = visitor_range(s.part);
    let db = s.database;
    let source = match s.carry {
        None => format!(
            "(SELECT site, {EVENT_COLUMNS} FROM {db}.events WHERE site = {site} \
             AND ts >= {lo} AND ts < {end}{range})",
            lo = datetime(lo_next),
            end = datetime(end),
        ),
        Some(c) => carried(
            s,
            c,
            end,
            &range,
            &format!(" AND ts >= {}{range}", datetime(lo_next)),
        ),
    };
    format!(
        "INSERT INTO {db}.visit_carry (site, slice, version, {EVENT_COLUMNS})
SELECT site, {last}, {version}, {EVENT_COLUMNS}
FROM {source} AS e
ANY INNER JOIN
(
    SELECT visitor,
        arrayReduce('max', arrayMap((x, d, i) -> if(i = 1 OR d > {timeout_s}, x, 0),
            t, arrayDifference(t), arrayEnumerate(t))) AS visit_start
    FROM
    (
        SELECT visitor, arraySort(groupArray(toUInt32(ts))) AS t
        FROM {source}
        GROUP BY visitor
        HAVING max(ts) >= {open_from}
    )
) AS open USING visitor
WHERE toUInt32(ts) >= visit_start",
        last = datetime(end - SignedDuration::from_hours(1)),
        timeout_s = s.timeout_seconds,
        open_from = datetime(end - timeout),
    )
}

/// When this server began copying raw events into `events_by_hour` (the mark of migration
/// 0011; Unix seconds, 0 when there is none, read like `event_counts::mark`): `events_by_hour`
/// holds every event of an hour from then on.
pub fn by_hour_since(database: &str) -> String {
    format!("SELECT toUInt32(max(ts)) AS since FROM {database}.events_by_hour WHERE site = ''")
}

/// Copies stored rows into `visit_pages` under `pages_version`: each row once with its own page,
/// a visit row (kind 0) once per page the visit viewed with the page's position in
/// `pages_path`; and lists their pages per UTC day in `visit_page_days`. Two statements, run in
/// this order. The rows are those of `visits` with `ts` in `[lo, hi)` that `rows` keeps (a
/// condition on `slice` and `version`): bounding `ts`, the table's order after `site`, keeps
/// the copy from reading every visit stored so far.
pub fn copy_pages(
    database: &str,
    site: &str,
    (lo, hi): (Timestamp, Timestamp),
    rows: &str,
    pages_version: u64,
) -> [String; 2] {
    let columns = UNIT_COLUMNS.join(", ");
    let rows = format!(
        "WHERE site = {site} AND ts >= {lo} AND ts < {hi} AND {rows}",
        site = lit(site),
        lo = datetime(lo),
        hi = datetime(hi),
    );
    [
        format!(
            "INSERT INTO {database}.visit_pages (site, slice, version, {columns}, page_path, page_host, page_no)
SELECT site, slice, {pages_version}, {columns}, page.1, page.2, page.3
FROM {database}.visits
ARRAY JOIN if(kind = 0,
    arrayMap((p, h, i) -> (p, h, toUInt16(i)), pages_path, pages_host, arrayEnumerate(pages_path)),
    [(path, host, toUInt16(0))]) AS page
{rows}"
        ),
        format!(
            "INSERT INTO {database}.visit_page_days (site, day, page_path)
SELECT DISTINCT site, toDate(ts) AS day, page_path
FROM {database}.visits
ARRAY JOIN if(kind = 0, pages_path, [path]) AS page_path
{rows}"
        ),
    ]
}

/// The rows of the slices' computation under `version` ([`copy_pages`]'s `rows`).
pub fn version_rows(s: &Slice, version: u64) -> String {
    format!(
        "slice >= {} AND slice < {} AND version = {version}",
        datetime(s.hour),
        datetime(s.end())
    )
}

/// Slices of `site` whose current computation has no copy in `visit_pages` (stored before
/// migration 0009), oldest first: each slice with that computation's version and earliest
/// visit start.
pub fn uncopied(database: &str, site: &str) -> String {
    format!(
        "SELECT toUInt32(slice) AS slice, current AS version, first_start
FROM
(
    SELECT slice, max(version) AS current, argMax(pages, (version, pages)) AS copy,
        toUInt32(argMax(if(visits > 0, first_start, slice), version)) AS first_start
    FROM {database}.visit_slices
    WHERE site = {} AND done = 1
    GROUP BY slice
)
WHERE copy = 0
ORDER BY slice",
        lit(site)
    )
}

/// A row of [`uncopied`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct Uncopied {
    pub slice: u32,
    pub version: u64,
    /// Unix seconds of the earliest visit start in the slice (its hour when it has none).
    pub first_start: u32,
}

/// `(slice, version) IN (…)` for slices copied by one statement.
pub fn slice_versions(slices: &[Uncopied]) -> String {
    let pairs: Vec<String> = slices
        .iter()
        .map(|u| format!("({}, {})", datetime_of(u.slice), u.version))
        .collect();
    format!("(slice, version) IN ({})", pairs.join(", "))
}

fn datetime_of(second: u32) -> String {
    format!("toDateTime({second}, 'UTC')")
}

/// Marks the copied slices: a second `done` marker of each slice's computation, as it was,
/// naming the copy (`pages`). A marker's `at` is kept, so the rollup job, which redoes the days
/// of slices finished since it last looked, does not take a copy for a new computation.
pub fn mark_copied(database: &str, site: &str, slices: &[Uncopied], pages_version: u64) -> String {
    format!(
        "INSERT INTO {database}.visit_slices (site, slice, version, done, at, events, visits, first_start, pages, carry)
SELECT site, slice, version, done, at, events, visits, first_start, {pages_version}, carry
FROM {database}.visit_slices
WHERE site = {} AND done = 1 AND pages = 0 AND {}
LIMIT 1 BY slice",
        lit(site),
        slice_versions(slices)
    )
}

/// A marker row: `done` 0 claims the slice for this computation, 1 says its rows are written.
#[derive(Debug, Clone, serde::Serialize, clickhouse::Row)]
pub struct Marker {
    pub site: String,
    /// Unix seconds of the hour.
    pub slice: u32,
    pub version: u64,
    pub done: u8,
    /// Unix seconds when claimed or finished.
    pub at: u32,
    /// Raw events in the slice's read range when it was computed.
    pub events: u64,
    /// Visits stored.
    pub visits: u64,
    /// Unix seconds of the earliest visit start in the slice (for the rollup job).
    pub first_start: u32,
    /// The version of the slice's rows in `visit_pages` (0: none yet).
    pub pages: u64,
    /// 1: this computation wrote the open visits at the slice's end into `visit_carry`.
    pub carry: u8,
}

/// The markers of `site`'s slices from `from` on: per slice, the current (highest done)
/// version with its counts, and the latest claim.
pub fn markers(database: &str, site: &str, from: Timestamp) -> String {
    format!(
        "SELECT toUInt32(slice) AS slice,
    maxIf(version, done = 1) AS done_version,
    argMaxIf(events, version, done = 1) AS events,
    toUInt32(maxIf(at, done = 0)) AS claimed_at,
    toUInt32(maxIf(at, done = 1)) AS done_at,
    argMaxIf(carry, version, done = 1) AS carry
FROM {database}.visit_slices
WHERE site = {} AND slice >= {}
GROUP BY slice",
        lit(site),
        datetime(from)
    )
}

/// A row of [`markers`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct MarkerRow {
    pub slice: u32,
    /// 0: never done.
    pub done_version: u64,
    pub events: u64,
    /// 0: never claimed.
    pub claimed_at: u32,
    pub done_at: u32,
    /// 1: the current version wrote its carry ([`Marker::carry`]).
    pub carry: u8,
}

/// Per slice of the hours, the visits stored under `version` and their earliest start. The rows
/// were built from the raw events of the read range, so their `ts` lies in it: bounding `ts`
/// (the table's order after `site`) keeps this from reading every visit stored so far. A slice
/// without a visit has no row.
pub fn stored(s: &Slice, version: u64) -> String {
    let (lo, hi) = s.read_range();
    format!(
        "SELECT toUInt32(slice) AS slice, count() AS visits, toUInt32(min(ts)) AS first_start
FROM {database}.visits
WHERE site = {} AND ts >= {} AND ts < {} AND slice >= {} AND slice < {} AND version = {version}
    AND kind = 0
GROUP BY slice",
        lit(s.site),
        datetime(lo),
        datetime(hi),
        datetime(s.hour),
        datetime(s.end()),
        database = s.database,
    )
}

/// A row of [`stored`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct Stored {
    pub slice: u32,
    pub visits: u64,
    pub first_start: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hours from 10:00 on 29 March 2026 (UTC) of `a.example`, reading the carry of `before`
    /// (version 5).
    fn carried(hours: u32, part: (u32, u32), before: &str) -> Slice<'static> {
        Slice {
            database: "db",
            site: "a.example",
            tz: "UTC",
            timeout_seconds: 1800,
            bounce_ms: 10_000,
            pageview_props: false,
            hour: "2026-03-29T10:00:00Z".parse().unwrap(),
            hours,
            part,
            carry: Some(Carry {
                slice: before.parse().unwrap(),
                version: 5,
            }),
        }
    }

    /// A site that allow-lists props keeps its pageviews' props on their rows; for one that
    /// does not (no pageview can have any), the statement collects none.
    #[test]
    fn pageview_props_are_collected_only_where_the_site_keeps_props() {
        let plain = store(&carried(1, (0, 1), "2026-03-29T09:00:00Z"), 7);
        assert!(!plain.contains("pv_props"), "{plain}");
        assert!(plain.contains("'', emptyArrayString(), emptyArrayString()),\n"));
        let with = store(
            &Slice {
                pageview_props: true,
                ..carried(1, (0, 1), "2026-03-29T09:00:00Z")
            },
            7,
        );
        assert!(
            with.contains("groupArrayIf((ev_props_keys, ev_props_values), pv) AS pv_props,"),
            "{with}"
        );
        assert!(with.contains("arrayMap((p, pp) -> ("), "{with}");
        assert!(with.contains("'', pp.1, pp.2),"), "{with}");
        assert!(
            with.contains("if(empty(engs), pvs, pvs), pv_props),"),
            "{with}"
        );
    }

    #[test]
    fn a_carried_batch_reads_its_own_hours_by_hour_and_the_carry_before_it() {
        let s = carried(2, (0, 1), "2026-03-29T08:00:00Z");
        let sql = store(&s, 7);
        // No raw event before the batch's first hour is read, and the hours are bounded on the
        // hour too (10:00 to 12:30, the timeout past the batch's end).
        assert!(!sql.contains("db.events "), "{sql}");
        assert!(
            sql.contains(
                "FROM db.events_by_hour WHERE site = 'a.example' AND toStartOfHour(ts) >= \
                 toStartOfHour(toDateTime(1774778400, 'UTC')) AND toStartOfHour(ts) < \
                 toDateTime(1774787400, 'UTC') AND ts >= toDateTime(1774778400, 'UTC') AND ts < \
                 toDateTime(1774787400, 'UTC')"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(
                "FROM db.visit_carry WHERE site = 'a.example' AND slice = \
                 toDateTime(1774771200, 'UTC') AND version = 5"
            ),
            "{sql}"
        );
        // The carry left at 12:00: of the visitors last seen from 11:30 on, nothing before the
        // read range of the hour from 12:00 (25 h and the timeout before it).
        let carry = write_carry(&s, 7);
        assert!(carry.starts_with("INSERT INTO db.visit_carry (site, slice, version, ts,"));
        assert!(
            carry.contains("SELECT site, toDateTime(1774782000, 'UTC'), 7, ts,"),
            "{carry}"
        );
        assert!(
            carry.contains("HAVING max(ts) >= toDateTime(1774783800, 'UTC')"),
            "{carry}"
        );
        assert!(
            carry.contains("AND ts >= toDateTime(1774693800, 'UTC')"),
            "{carry}"
        );
        // Without a carry it is written from the raw events of that read range.
        let full = write_carry(&Slice { carry: None, ..s }, 7);
        assert!(
            full.contains(
                "FROM db.events WHERE site = 'a.example' AND ts >= toDateTime(1774693800, 'UTC') \
                 AND ts < toDateTime(1774785600, 'UTC')"
            ),
            "{full}"
        );
    }

    #[test]
    fn a_carried_part_reads_its_visitor_range_inside_the_union() {
        let s = carried(1, (1, 3), "2026-03-29T09:00:00Z");
        let range = visitor_range((1, 3));
        assert!(!range.is_empty());
        for sql in [store(&s, 7), write_carry(&s, 7)] {
            // Each branch of the union carries the range itself: an outer condition is not
            // pushed into it, and every part would read every visitor's events.
            let line = |from: &str| {
                let rest = &sql[sql.find(from).unwrap()..];
                rest[..rest.find('\n').unwrap()].to_string()
            };
            let own = line("FROM db.events_by_hour WHERE");
            assert!(own.ends_with(&range), "{own}");
            let carry = line("FROM db.visit_carry WHERE");
            assert!(carry.contains(&range), "{carry}");
        }
    }

    #[test]
    fn a_slice_reads_back_the_longest_visit_and_ahead_the_timeout() {
        let s = Slice {
            database: "db",
            site: "a.example",
            tz: "Europe/Amsterdam",
            timeout_seconds: 1800,
            bounce_ms: 10_000,
            pageview_props: false,
            hour: "2026-03-29T10:00:00Z".parse().unwrap(),
            hours: 1,
            part: (0, 1),
            carry: None,
        };
        let (lo, hi) = s.read_range();
        assert_eq!(lo.to_string(), "2026-03-28T08:30:00Z");
        assert_eq!(hi.to_string(), "2026-03-29T11:30:00Z");
        let sql = store(&s, 7);
        assert!(sql.starts_with("INSERT INTO db.visits (site, slice, version, kind, ts,"));
        assert!(
            sql.contains(
                "WHERE slice >= toDateTime(1774778400, 'UTC') AND slice < toDateTime(1774782000, 'UTC')"
            ),
            "{sql}"
        );
        assert!(sql.contains("'a.example'") && sql.contains("'Europe/Amsterdam'"));
        // Counting what was stored reads the same range of visit records, not all of them.
        let count = stored(&s, 7);
        assert!(
            count.contains(&format!("ts >= {} AND ts < {}", datetime(lo), datetime(hi))),
            "{count}"
        );

        // Twelve hours in one statement: read from the first hour's reach to the last's end.
        let s = Slice { hours: 12, ..s };
        let (lo, hi) = s.read_range();
        assert_eq!(lo.to_string(), "2026-03-28T08:30:00Z");
        assert_eq!(hi.to_string(), "2026-03-29T22:30:00Z");
        let sql = store(&s, 7);
        assert!(
            sql.contains(
                "WHERE slice >= toDateTime(1774778400, 'UTC') AND slice < toDateTime(1774821600, 'UTC')"
            ),
            "{sql}"
        );
        assert!(stored(&s, 7).contains("GROUP BY slice"));

        // A part of the visitors: the range bounds the events read and the visitors narrowed to.
        let s = Slice { part: (1, 4), ..s };
        let sql = store(&s, 7);
        assert_eq!(
            sql.matches(" AND visitor >= 4611686018427387904 AND visitor < 9223372036854775808")
                .count(),
            2,
            "{sql}"
        );
    }

    #[test]
    fn visitor_ranges_cover_every_hash_once() {
        assert_eq!(visitor_range((0, 1)), "");
        assert_eq!(visitor_range((0, 3)), " AND visitor < 6148914691236517205");
        assert_eq!(
            visitor_range((1, 3)),
            " AND visitor >= 6148914691236517205 AND visitor < 12297829382473034410"
        );
        assert_eq!(
            visitor_range((2, 3)),
            " AND visitor >= 12297829382473034410"
        );
        // Each range starts where the one before ends, for any number of parts.
        for n in [2u32, 7, 64] {
            let ranges: Vec<String> = (0..n).map(|k| visitor_range((k, n))).collect();
            for k in 1..n as usize {
                let end = ranges[k - 1].rsplit("visitor < ").next().unwrap();
                assert!(
                    ranges[k].starts_with(&format!(" AND visitor >= {end}")),
                    "{n} {k}"
                );
            }
        }
    }
}
