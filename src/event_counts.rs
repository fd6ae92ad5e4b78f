//! How many raw events a site has per UTC minute, for the jobs that decide from it (the visit
//! job: late events; the rollup job: hours whose visits are not stored yet), without reading
//! the raw events themselves: `events_minutes` (migration 0010) is filled by a materialized view
//! as events are inserted. The view counts only what was inserted after it was created, so the
//! minutes before the latest mark it left (its row with the empty site) are counted from raw
//! events; once retention has dropped the day of that mark, nothing is.

use clickhouse::Client;
use jiff::Timestamp;

use crate::error::Error;
use crate::sql_text::{datetime, lit};

/// From this instant on, every raw event is counted in `events_minutes` (the Unix epoch once
/// the mark is gone: every raw event kept was counted). On a cluster, `client` is one shard's
/// replica and the mark is the latest of the shard's replicas (the table is replicated).
pub async fn counted_since(client: &Client, database: &str) -> Result<Timestamp, Error> {
    let since: u32 = client.query_raw(&mark(database)).fetch_one().await?;
    Ok(Timestamp::from_second(i64::from(since)).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The latest mark (Unix seconds; 0 when there is none), for [`counted_since`].
pub fn mark(database: &str) -> String {
    format!("SELECT toUInt32(max(minute)) AS since FROM {database}.events_minutes WHERE site = ''")
}

/// Per UTC minute with events of `site` in `[from, to)`, in order: the minute and its events.
/// `since`: from [`counted_since`].
pub fn per_minute(
    database: &str,
    site: &str,
    from: Timestamp,
    to: Timestamp,
    since: Timestamp,
) -> String {
    let (site, lo, hi) = (lit(site), datetime(from), datetime(to));
    let since = datetime(since);
    format!(
        "SELECT minute, toUInt64(sum(n)) AS n FROM (
    SELECT toUInt32(minute) AS minute, n FROM {database}.events_minutes
    WHERE site = {site} AND minute >= {lo} AND minute < {hi} AND minute >= {since}
    UNION ALL
    SELECT toUInt32(toStartOfMinute(ts)) AS minute, count() AS n FROM {database}.events
    WHERE site = {site} AND ts >= {lo} AND ts < {hi} AND ts < {since}
    GROUP BY minute
)
GROUP BY minute ORDER BY minute"
    )
}

/// A row of [`per_minute`].
#[derive(Debug, serde::Deserialize, clickhouse::Row)]
pub struct MinuteCount {
    pub minute: u32,
    pub n: u64,
}

/// Every UTC hour with events of `site` (`h`, Unix seconds), as a subquery. `since`: from
/// [`counted_since`].
pub fn hours(database: &str, site: &str, since: Timestamp) -> String {
    let (site, since) = (lit(site), datetime(since));
    format!(
        "SELECT DISTINCT toUInt32(toStartOfHour(minute)) AS h FROM {database}.events_minutes
    WHERE site = {site} AND minute >= {since}
    UNION ALL
    SELECT DISTINCT toUInt32(toStartOfHour(ts)) AS h FROM {database}.events
    WHERE site = {site} AND ts < {since}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_before_the_mark_are_counted_from_raw_events_and_none_twice() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let since = t("2026-03-29T10:10:00Z");
        let sql = per_minute(
            "db",
            "a.example",
            t("2026-03-28T00:00:00Z"),
            t("2026-03-30T00:00:00Z"),
            since,
        );
        let mark = datetime(since);
        // The view's counts from the mark on, raw events before it: each minute from one side.
        assert!(sql.contains(&format!("minute >= {mark}")), "{sql}");
        assert!(sql.contains(&format!("ts < {mark}")), "{sql}");
        assert!(sql.contains("FROM db.events_minutes"), "{sql}");
        assert!(sql.contains("site = 'a.example'"), "{sql}");
        let hours = hours("db", "a.example", since);
        assert!(hours.contains(&format!("minute >= {mark}")), "{hours}");
        assert!(hours.contains(&format!("ts < {mark}")), "{hours}");
    }
}
