//! What the views filled at insert missed, found and put back before the visit job relies on it.
//!
//! `events_minutes` (the per-minute counts, migration 0010) and `events_by_hour` (the raw events
//! ordered by the hour, migration 0011) are written by materialized views after each insert has
//! written its raw events, not together with them. A server that stops between the two (a
//! replica restarted under load) keeps the raw events without their copies, and the insert
//! retried on another replica does not write them either: ClickHouse deduplicates the retried
//! block as a whole and runs no view for a block it already has. (Found by the cluster fault test
//! in CI: 30 of a replica's 7,467 events were neither counted nor copied.) The visit job decides
//! from the counts and reads the copies, so before it stores a batch it compares both with the
//! raw events of the batch's hours, minute by minute, and puts back what is missing.
//!
//! Most batches find nothing, and comparing minute by minute reads the `ts` of every raw event
//! of the days the batch touches (events are ordered by day, then visitor): 0.5 s of ClickHouse
//! CPU for a 4-hour batch of a site of 20 million events a day, 1 % of storing it. So the UTC
//! days of the batch are compared first as wholes, from what ClickHouse knows without reading
//! them ([`day_totals`]: the rows of the days' parts, the counts' sum); only days whose totals
//! differ are compared minute by minute.
//!
//! Only minutes the job relies on are compared: the counts from their mark on, the copies from
//! theirs (`event_counts`, [`super::sql::by_hour_since`]). A shortfall is repaired only if a
//! second look [`RECHECK`] later still finds it, and by the smaller of the two: an insert under
//! way has written its raw events a few milliseconds before their copies, and repairing those
//! would count them twice.

use std::time::Duration;

use clickhouse::Client;
use jiff::{SignedDuration, Timestamp};

use super::units::by_hour;
use crate::error::Error;
use crate::sql_text::{datetime, lit};

/// How long after finding a shortfall it is looked for again before it is repaired.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The columns `events_by_hour_mv` copies (migration 0011), in its order.
pub const BY_HOUR_COLUMNS: &str = "site, ts, micros, visitor, name, host, path, query, \
    utm_source, utm_medium, utm_campaign, utm_content, utm_term, referrer_host, source, \
    country, device, browser, os, screen, engaged_ms, scroll_depth, interactive, props_keys, \
    props_values, event_id";

/// A UTC minute whose raw events outnumber their count or their copies ([`shortfalls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct Shortfall {
    /// Unix seconds.
    pub minute: u32,
    /// Raw events more than `events_minutes` counts.
    pub uncounted: u64,
    /// Raw events more than `events_by_hour` holds.
    pub uncopied: u64,
}

/// What [`repair`] put back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// Events added to the per-minute counts.
    pub counted: u64,
    /// Events copied into `events_by_hour`.
    pub copied: u64,
}

/// The UTC days that `[from, to)` touches: each as `YYYYMMDD` (the partitions of all three
/// tables) and its first second.
pub fn days(from: Timestamp, to: Timestamp) -> Vec<(u32, Timestamp)> {
    let mut out = Vec::new();
    let mut day = from.as_second() - from.as_second().rem_euclid(86_400);
    while day < to.as_second() {
        if let Ok(t) = Timestamp::from_second(day) {
            let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
            out.push((
                d.year() as u32 * 10_000 + d.month() as u32 * 100 + d.day() as u32,
                t,
            ));
        }
        day += 86_400;
    }
    out
}

/// For each of `days` (`YYYYMMDD`): its raw events of every site, their counts and their copies
/// by the hour, from the rows of the days' active parts of `events` and `events_by_hour` (less
/// the latter's mark) and the sum of the counts: without reading the raw events. The three are
/// equal for a day whose views missed nothing since their marks.
pub fn day_totals(database: &str, days: &[u32]) -> String {
    let ids: Vec<String> = days.iter().map(|d| format!("'{d}'")).collect();
    let ids = ids.join(", ");
    let list: Vec<String> = days.iter().map(u32::to_string).collect();
    let list = list.join(", ");
    let db = lit(database);
    format!(
        "SELECT day, sumIf(n, k = 0) AS raw, sumIf(n, k = 1) AS counted, sumIf(n, k = 2) AS copied
FROM (
    SELECT 0 AS k, toUInt32(partition_id) AS day, toUInt64(sum(rows)) AS n FROM system.parts
    WHERE database = {db} AND table = 'events' AND active AND partition_id IN ({ids})
    GROUP BY day
    UNION ALL
    SELECT 1 AS k, toYYYYMMDD(minute) AS day, toUInt64(sum(n)) AS n FROM {database}.events_minutes
    WHERE site != '' AND toYYYYMMDD(minute) IN ({list})
    GROUP BY day
    UNION ALL
    SELECT 2 AS k, toUInt32(partition_id) AS day, toUInt64(sum(rows)) AS n FROM system.parts
    WHERE database = {db} AND table = 'events_by_hour' AND active AND partition_id IN ({ids})
    GROUP BY day
    UNION ALL
    SELECT 3 AS k, toYYYYMMDD(ts) AS day, toUInt64(count()) AS n FROM {database}.events_by_hour
    WHERE site = '' AND toYYYYMMDD(ts) IN ({list})
    GROUP BY day
)
GROUP BY day
HAVING raw != counted OR raw + sumIf(n, k = 3) != copied
ORDER BY day"
    )
}

/// A day of [`day_totals`] whose totals differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clickhouse::Row)]
pub struct DayTotals {
    pub day: u32,
    pub raw: u64,
    pub counted: u64,
    pub copied: u64,
}

/// Per UTC minute of `site` in `[from, to)` where the raw events outnumber their count (for
/// minutes from `counted` on) or their copies by the hour (from `copied` on): by how many.
pub fn shortfalls(
    database: &str,
    site: &str,
    (from, to): (Timestamp, Timestamp),
    counted: Timestamp,
    copied: Timestamp,
) -> String {
    let (lo, hi) = (datetime(from), datetime(to));
    let by_hour = by_hour(&lit(site), &lo, &hi);
    let (counted, copied) = (counted.as_second(), copied.as_second());
    let site = lit(site);
    format!(
        "SELECT minute,
    toUInt64(if(minute >= {counted} AND raw > counted, raw - counted, 0)) AS uncounted,
    toUInt64(if(minute >= {copied} AND raw > copied, raw - copied, 0)) AS uncopied
FROM (
    SELECT minute, sumIf(n, k = 0) AS raw, sumIf(n, k = 1) AS counted, sumIf(n, k = 2) AS copied
    FROM (
        SELECT 0 AS k, toUInt32(toStartOfMinute(ts)) AS minute, count() AS n
        FROM {database}.events WHERE site = {site} AND ts >= {lo} AND ts < {hi}
        GROUP BY minute
        UNION ALL
        SELECT 1 AS k, toUInt32(minute) AS minute, sum(n) AS n
        FROM {database}.events_minutes WHERE site = {site} AND minute >= {lo} AND minute < {hi}
        GROUP BY minute
        UNION ALL
        SELECT 2 AS k, toUInt32(toStartOfMinute(ts)) AS minute, count() AS n
        FROM {database}.events_by_hour WHERE {by_hour}
        GROUP BY minute
    )
    GROUP BY minute
)
WHERE uncounted > 0 OR uncopied > 0
ORDER BY minute"
    )
}

/// Adds `n` events to the count of each `(minute, n)` (a summing table: the rows add up).
pub fn count_missing(database: &str, site: &str, missing: &[(u32, u64)]) -> String {
    let rows: Vec<String> = missing
        .iter()
        .map(|(minute, n)| {
            let minute =
                Timestamp::from_second(i64::from(*minute)).unwrap_or(Timestamp::UNIX_EPOCH);
            format!("({}, {}, {n})", lit(site), datetime(minute))
        })
        .collect();
    format!(
        "INSERT INTO {database}.events_minutes (site, minute, n) VALUES {}",
        rows.join(", ")
    )
}

/// Copies into `events_by_hour` the raw events of `site` in the given minutes (Unix seconds)
/// whose event id it does not hold in those minutes.
pub fn copy_missing(database: &str, site: &str, minutes: &[u32]) -> String {
    let list: Vec<String> = minutes.iter().map(u32::to_string).collect();
    let list = list.join(", ");
    let (first, last) = (
        minutes.iter().min().copied().unwrap_or(0),
        minutes.iter().max().copied().unwrap_or(0),
    );
    let (lo, hi) = (
        datetime(Timestamp::from_second(i64::from(first)).unwrap_or(Timestamp::UNIX_EPOCH)),
        datetime(Timestamp::from_second(i64::from(last) + 60).unwrap_or(Timestamp::UNIX_EPOCH)),
    );
    let in_minutes = format!("toUInt32(toStartOfMinute(ts)) IN ({list})");
    let held = by_hour(&lit(site), &lo, &hi);
    format!(
        "INSERT INTO {database}.events_by_hour ({BY_HOUR_COLUMNS})
SELECT {BY_HOUR_COLUMNS} FROM {database}.events
WHERE site = {site} AND ts >= {lo} AND ts < {hi} AND {in_minutes}
    AND event_id NOT IN (
        SELECT event_id FROM {database}.events_by_hour WHERE {held} AND {in_minutes}
    )",
        site = lit(site),
    )
}

/// The smaller shortfall of two looks, per minute found in both ([`shortfalls`]).
pub fn confirmed(first: &[Shortfall], second: &[Shortfall]) -> Vec<Shortfall> {
    second
        .iter()
        .filter_map(|b| {
            let a = first.iter().find(|a| a.minute == b.minute)?;
            let s = Shortfall {
                minute: b.minute,
                uncounted: a.uncounted.min(b.uncounted),
                uncopied: a.uncopied.min(b.uncopied),
            };
            (s.uncounted > 0 || s.uncopied > 0).then_some(s)
        })
        .collect()
}

/// Which raw events [`repair`] compares with their counts and copies.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    /// `[from, to)`.
    pub range: (Timestamp, Timestamp),
    /// From here on the counts are relied on (`event_counts::counted_since`).
    pub counted: Timestamp,
    /// From here on the copies by the hour are ([`super::sql::by_hour_since`]).
    pub copied: Timestamp,
}

/// Compares the counts and copies of `site`'s raw events in `checked` with the events
/// themselves and puts back what a second look confirms missing.
pub async fn repair(
    client: &Client,
    database: &str,
    site: &str,
    checked: &Checked,
) -> Result<Repaired, Error> {
    // Before both marks nothing is compared (a backfill after the upgrade reads nothing more).
    let (from, to) = checked.range;
    let from = from.max(checked.counted.min(checked.copied));
    if from >= to {
        return Ok(Repaired::default());
    }
    let days = days(from, to);
    let ids: Vec<u32> = days.iter().map(|(id, _)| *id).collect();
    let differ: Vec<DayTotals> = client
        .query_raw(&day_totals(database, &ids))
        .fetch_all()
        .await?;
    // Only the days whose totals differ (from the first to the last), minute by minute.
    let start = |d: &DayTotals| days.iter().find(|(id, _)| *id == d.day).map(|(_, t)| *t);
    let (Some(lo), Some(hi)) = (
        differ.first().and_then(start),
        differ.last().and_then(start),
    ) else {
        return Ok(Repaired::default());
    };
    let (lo, hi) = (lo.max(from), (hi + SignedDuration::from_hours(24)).min(to));
    let look = shortfalls(database, site, (lo, hi), checked.counted, checked.copied);
    let first: Vec<Shortfall> = client.query_raw(&look).fetch_all().await?;
    if first.is_empty() {
        return Ok(Repaired::default());
    }
    tokio::time::sleep(RECHECK).await;
    let second: Vec<Shortfall> = client.query_raw(&look).fetch_all().await?;
    let missing = confirmed(&first, &second);
    let uncounted: Vec<(u32, u64)> = missing
        .iter()
        .filter(|s| s.uncounted > 0)
        .map(|s| (s.minute, s.uncounted))
        .collect();
    let uncopied: Vec<u32> = missing
        .iter()
        .filter(|s| s.uncopied > 0)
        .map(|s| s.minute)
        .collect();
    if !uncopied.is_empty() {
        client
            .query_raw(&copy_missing(database, site, &uncopied))
            .execute()
            .await?;
    }
    if !uncounted.is_empty() {
        client
            .query_raw(&count_missing(database, site, &uncounted))
            .execute()
            .await?;
    }
    Ok(Repaired {
        counted: uncounted.iter().map(|(_, n)| n).sum(),
        copied: missing.iter().map(|s| s.uncopied).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Fails, showing the statement, unless it holds `part`.
    fn has(sql: &str, part: impl AsRef<str>) {
        assert!(
            sql.contains(part.as_ref()),
            "{:?} not in:\n{sql}",
            part.as_ref()
        );
    }

    #[test]
    fn the_copied_columns_are_those_of_the_view() {
        let schema = include_str!("../../schema/0011_visit_carry.sql");
        let view = schema
            .split("CREATE MATERIALIZED VIEW")
            .nth(1)
            .and_then(|v| v.split("AS SELECT").nth(1))
            .and_then(|v| v.split("FROM").next())
            .unwrap();
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(view), words(BY_HOUR_COLUMNS));
    }

    #[test]
    fn minutes_are_compared_only_from_the_marks_the_job_relies_on() {
        let sql = shortfalls(
            "db",
            "s.example",
            (t("2026-03-29T10:00:00Z"), t("2026-03-29T14:00:00Z")),
            t("2026-03-29T10:10:00Z"),
            t("2026-03-29T11:00:00Z"),
        );
        let counted = t("2026-03-29T10:10:00Z").as_second();
        let copied = t("2026-03-29T11:00:00Z").as_second();
        has(&sql, format!("minute >= {counted} AND raw > counted"));
        has(&sql, format!("minute >= {copied} AND raw > copied"));
        // Each table read for the range alone; events_by_hour pruned by its hour.
        has(&sql, "FROM db.events WHERE site = 's.example' AND ts >= ");
        let lo = t("2026-03-29T10:00:00Z").as_second();
        has(&sql, format!("minute >= toDateTime({lo}, 'UTC')"));
        has(&sql, "toStartOfHour(ts) >= toStartOfHour(");
    }

    #[test]
    fn the_days_a_range_touches_are_its_partitions() {
        assert_eq!(
            days(t("2026-03-29T22:00:00Z"), t("2026-03-30T02:00:00Z")),
            vec![
                (20260329, t("2026-03-29T00:00:00Z")),
                (20260330, t("2026-03-30T00:00:00Z"))
            ]
        );
        assert_eq!(
            days(t("2026-03-29T10:00:00Z"), t("2026-03-30T00:00:00Z")),
            vec![(20260329, t("2026-03-29T00:00:00Z"))]
        );
        let sql = day_totals("db", &[20260329, 20260330]);
        has(
            &sql,
            "table = 'events' AND active AND partition_id IN ('20260329', '20260330')",
        );
        has(&sql, "table = 'events_by_hour' AND active");
        // The copies' mark is a row of its part too; the counts' mark is left out.
        has(&sql, "raw + sumIf(n, k = 3) != copied");
        has(&sql, "FROM db.events_minutes\n    WHERE site != ''");
    }

    #[test]
    fn only_a_shortfall_seen_twice_is_repaired_and_by_the_smaller_amount() {
        let s = |minute, uncounted, uncopied| Shortfall {
            minute,
            uncounted,
            uncopied,
        };
        // 60: an insert under way at the first look (its copies written by the second);
        // 120: missing both times; 180: events arriving between the looks; 240: copies
        // missing, one more event arrived meanwhile.
        let first = [s(60, 5, 5), s(120, 30, 30), s(240, 0, 7)];
        let second = [s(120, 30, 30), s(180, 4, 4), s(240, 1, 8)];
        assert_eq!(
            confirmed(&first, &second),
            vec![s(120, 30, 30), s(240, 0, 7)]
        );
    }

    #[test]
    fn missing_copies_are_those_whose_event_id_the_minute_does_not_hold() {
        let sql = copy_missing("db", "s.example", &[1_774_778_400, 1_774_778_520]);
        has(&sql, "INSERT INTO db.events_by_hour (site, ts, micros");
        has(
            &sql,
            "toUInt32(toStartOfMinute(ts)) IN (1774778400, 1774778520)",
        );
        // From the first minute to the end of the last.
        has(&sql, "ts >= toDateTime(1774778400, 'UTC')");
        has(&sql, "ts < toDateTime(1774778580, 'UTC')");
        has(
            &sql,
            "AND event_id NOT IN (\n        SELECT event_id FROM db.events_by_hour",
        );
        let count = count_missing("db", "s.example", &[(1_774_778_400, 3), (1_774_778_520, 1)]);
        assert_eq!(
            count,
            "INSERT INTO db.events_minutes (site, minute, n) VALUES \
             ('s.example', toDateTime(1774778400, 'UTC'), 3), \
             ('s.example', toDateTime(1774778520, 'UTC'), 1)"
        );
    }
}
