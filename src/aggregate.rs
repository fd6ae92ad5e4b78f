//! Aggregate-only mode (`privacy.aggregate_only`): no per-event row and no visitor hash is ever
//! written to ClickHouse; each batch is folded into counts per site, local day, dimension and
//! value, and added to the rollup tables the reports already read.
//!
//! Without a hash there are no visits, so the reports that need them are refused (see
//! `stats::aggregate_mode`); what remains is per pageview: views
//! per page, host, hour, weekday, country, device, browser and OS; time on page and scroll
//! depth as averages over engagement beacons; and sources, referrers and campaigns counted over
//! the pageviews that arrived from outside the site (there is no visit to attribute the rest to).
//!
//! The rows are written under version [`VERSION`] and each day they touch is marked with it in
//! `rollup_days`, so the rollup readers (`stats::sql::current_versions`) sum them; the rollup
//! job does not run in this mode (there are no raw events to roll up).
//!
//! Counts have no event ids to check a replay against, so each row carries the id of the events
//! of its batch it counts ([`batch_id`] of those of its site and day, from their random ids;
//! migration 0013): the site-days of a spooled batch whose counts ClickHouse already has (the
//! insert was written but its answer lost) are not added again (`sink`). An id per site and day
//! rather than per batch, so that the part of a batch replayed without its stored site-days
//! writes the same ids as the whole batch would have.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use crate::config::Config;
use crate::event::EventRow;
use crate::sql_text::day_number;

/// Version of every aggregate row and day marker (additive: all rows of a day are summed).
pub const VERSION: u64 = 0;

/// In this mode `EventRow::visitor` holds no hash: it is [`ENTRY`] when the pageview arrived from
/// outside the site (no referrer, or another site's), 0 when it came from one of the site's own
/// pages. Sources are counted over entries only.
pub const ENTRY: u64 = 1;

/// One row of `rollup_daily` (the columns the fold fills; the visit columns stay 0).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct DailyRow {
    pub site: String,
    /// Days since 1970-01-01 (ClickHouse `Date`).
    pub day: u16,
    pub dimension: &'static str,
    pub value: String,
    pub pageviews: u64,
    pub visitors: u64,
    pub visits: u64,
    pub bounces: u64,
    pub duration_sum: u64,
    pub visit_pageviews: u64,
    pub page_visits: u64,
    pub page_ms_sum: u64,
    pub scroll_count: u64,
    pub scroll_sum: u64,
    pub version: u64,
    /// The events counted ([`batch_id`] of the batch's events of this site and day); 0 in
    /// rows the rollup job writes.
    pub batch: u64,
}

/// One row of `rollup_days`: the day is (also) made of aggregate rows.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct DayMark {
    pub site: String,
    pub day: u16,
    pub computed: u32,
    pub events: u64,
    pub version: u64,
}

/// Folds batches into rollup rows, in each site's time zone.
pub struct Folder {
    zones: HashMap<String, TimeZone>,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    pageviews: u64,
    page_ms_sum: u64,
    scroll_count: u64,
    scroll_sum: u64,
}

impl Folder {
    pub fn new(config: &Config) -> Self {
        Self {
            zones: config
                .sites
                .iter()
                .map(|s| (s.domain.clone(), s.time_zone.clone()))
                .collect(),
        }
    }

    /// The site and local day (days since 1970-01-01) an event is counted on; `None` for a site
    /// without a zone (not folded).
    pub fn site_day(&self, e: &EventRow) -> Option<(String, u16)> {
        let local = self.local(e)?;
        Some((e.site.to_string(), day_number(local.date())))
    }

    fn local(&self, e: &EventRow) -> Option<jiff::Zoned> {
        let tz = self.zones.get(&*e.site).cloned()?;
        Some(
            Timestamp::from_second(i64::from(e.ts))
                .unwrap_or(Timestamp::UNIX_EPOCH)
                .to_zoned(tz),
        )
    }

    /// The rows to add for `batch`, sorted, and the day markers. Custom events are not folded
    /// (the reports have no dimension for them), nor rows of a site the config does not name;
    /// their count is returned as the third value. Only the whole-site row of a site-day
    /// (dimension `''`) carries the id of the events it counts: on the rows of a dimension it
    /// would tie together the values of one event (a batch of a quiet site often holds one).
    pub fn fold(&self, batch: &[EventRow], now: Timestamp) -> (Vec<DailyRow>, Vec<DayMark>, u64) {
        let mut sums: HashMap<(String, u16, &'static str, String), Sums> = HashMap::new();
        let mut days: HashMap<(String, u16), Vec<u64>> = HashMap::new();
        let mut skipped = 0;
        for e in batch {
            let pageview = e.name == "pageview";
            if !pageview && e.name != "engagement" {
                skipped += 1;
                continue;
            }
            // Ingest accepts only configured sites, so every row has its zone; a row without
            // one is not folded (counted with the others) rather than put on a guessed day.
            let Some(local) = self.local(e) else {
                skipped += 1;
                continue;
            };
            let day = day_number(local.date());
            days.entry((e.site.to_string(), day))
                .or_default()
                .push(e.event_id);
            let add = Sums {
                pageviews: u64::from(pageview),
                page_ms_sum: u64::from(e.engaged_ms),
                scroll_count: u64::from(!pageview && e.scroll_depth > 0),
                scroll_sum: if pageview {
                    0
                } else {
                    u64::from(e.scroll_depth)
                },
            };
            let mut dims: Vec<(&'static str, String)> = vec![
                ("", String::new()),
                ("event:page", e.path.clone()),
                ("event:hostname", e.host.to_string()),
                ("visit:country", e.country.to_string()),
                ("visit:device", e.device.to_string()),
                ("visit:browser", e.browser.to_string()),
                ("visit:os", e.os.to_string()),
                ("time:hour", format!("{:02}", local.hour())),
            ];
            if pageview && e.visitor == ENTRY {
                dims.extend([
                    ("visit:source", e.source.clone()),
                    ("visit:referrer", e.referrer_host.clone()),
                    ("visit:utm_source", e.utm_source.clone()),
                    ("visit:utm_medium", e.utm_medium.clone()),
                    ("visit:utm_campaign", e.utm_campaign.clone()),
                    ("visit:utm_content", e.utm_content.clone()),
                    ("visit:utm_term", e.utm_term.clone()),
                ]);
            }
            for (dimension, value) in dims {
                let s = sums
                    .entry((e.site.to_string(), day, dimension, value))
                    .or_default();
                s.pageviews += add.pageviews;
                s.page_ms_sum += add.page_ms_sum;
                s.scroll_count += add.scroll_count;
                s.scroll_sum += add.scroll_sum;
            }
        }
        let ids: HashMap<(String, u16), u64> = days
            .iter()
            .map(|(key, events)| (key.clone(), batch_id(events)))
            .collect();
        let mut sums: Vec<_> = sums.into_iter().collect();
        // A fixed order, so that the same batch is the same block whatever the
        // hash map did: a replicated table then recognises an insert of it repeated.
        sums.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let rows = sums
            .into_iter()
            .map(|((site, day, dimension, value), s)| DailyRow {
                batch: if dimension.is_empty() {
                    ids.get(&(site.clone(), day)).copied().unwrap_or(1)
                } else {
                    0
                },
                site,
                day,
                dimension,
                value,
                pageviews: s.pageviews,
                visitors: 0,
                visits: 0,
                bounces: 0,
                duration_sum: 0,
                visit_pageviews: 0,
                // Time on page is engaged time per pageview here (no page visits without a hash).
                page_visits: s.pageviews,
                page_ms_sum: s.page_ms_sum,
                scroll_count: s.scroll_count,
                scroll_sum: s.scroll_sum,
                version: VERSION,
            })
            .collect();
        let computed = u32::try_from(now.as_second()).unwrap_or(0);
        let mut days: Vec<_> = days.into_iter().collect();
        days.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let marks = days
            .into_iter()
            .map(|((site, day), events)| DayMark {
                site,
                day,
                computed,
                events: events.len() as u64,
                version: VERSION,
            })
            .collect();
        (rows, marks, skipped)
    }
}

/// The id of a set of events: the first 8 bytes of the SHA-256 of their random ids, sorted, so
/// that a batch read back from the spool gives the ids its first insert wrote. Never 0 (the
/// rollup job's rows).
pub fn batch_id(events: &[u64]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut ids = events.to_vec();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.to_le_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, path: &str, ts: &str, entry: bool) -> EventRow {
        let engagement = name == "engagement";
        EventRow {
            ts: ts.parse::<Timestamp>().unwrap().as_second() as u32,
            visitor: if entry { ENTRY } else { 0 },
            name: name.to_string().into(),
            referrer_host: if entry {
                "duckduckgo.com".into()
            } else {
                String::new()
            },
            source: if entry {
                "DuckDuckGo".into()
            } else {
                String::new()
            },
            engaged_ms: if engagement { 30_000 } else { 0 },
            scroll_depth: if engagement { 80 } else { 0 },
            ..EventRow::example(path)
        }
    }

    fn config() -> Config {
        Config::parse("[[sites]]\ndomain = \"www.example.org\"\ntime_zone = \"Europe/Amsterdam\"\n")
            .unwrap()
    }

    #[test]
    fn pageviews_fold_by_local_day_and_hour_and_sources_count_entries_only() {
        let folder = Folder::new(&config());
        // 23:30 UTC on the 22nd is 00:30 on the 23rd in Amsterdam.
        let batch = [
            event("pageview", "/a", "2026-11-22T23:30:00Z", true),
            event("pageview", "/b", "2026-11-22T23:31:00Z", false),
            event("engagement", "/b", "2026-11-22T23:32:00Z", false),
            event("signup", "/b", "2026-11-22T23:33:00Z", false),
        ];
        let (rows, marks, skipped) = folder.fold(&batch, Timestamp::UNIX_EPOCH);
        assert_eq!(skipped, 1, "custom events are not folded");
        let day = (jiff::civil::date(2026, 11, 23) - jiff::civil::date(1970, 1, 1)).get_days();
        let get = |dim: &str, value: &str| {
            rows.iter()
                .find(|r| r.dimension == dim && r.value == value)
                .unwrap_or_else(|| panic!("no row {dim}={value}"))
        };
        let site = get("", "");
        assert_eq!((site.day as i32, site.pageviews), (day, 2));
        assert_eq!(
            (site.page_ms_sum, site.scroll_count, site.scroll_sum),
            (30_000, 1, 80)
        );
        assert_eq!(get("time:hour", "00").pageviews, 2);
        assert_eq!(get("event:page", "/b").page_ms_sum, 30_000);
        assert_eq!(get("visit:source", "DuckDuckGo").pageviews, 1);
        assert!(
            !rows
                .iter()
                .any(|r| r.dimension == "visit:source" && r.value.is_empty()),
            "internal navigation is no source"
        );
        assert!(rows.iter().all(|r| r.visitors == 0 && r.visits == 0));
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].events, 3);
    }

    #[test]
    fn each_site_day_of_a_batch_has_one_id_whatever_the_order_or_the_rest_of_the_batch() {
        let folder = Folder::new(&config());
        // Two events on the 22nd, two on the 23rd (Amsterdam), and a custom event.
        let at = |i: u64, ts: &str| EventRow {
            event_id: 1000 + i,
            ..event("pageview", "/a", ts, i == 0)
        };
        let batch = vec![
            at(0, "2026-11-22T10:00:00Z"),
            at(1, "2026-11-22T23:30:00Z"),
            at(2, "2026-11-22T11:00:00Z"),
            at(3, "2026-11-23T08:00:00Z"),
            EventRow {
                event_id: 1004,
                ..event("signup", "/a", "2026-11-22T10:00:00Z", false)
            },
        ];
        let id_of = |rows: &[DailyRow], day: u16| {
            let ids: Vec<u64> = rows
                .iter()
                .filter(|r| r.day == day && r.dimension.is_empty())
                .map(|r| r.batch)
                .collect();
            assert_eq!(ids.len(), 1, "one whole-site row per site-day");
            // The rows of a dimension carry none: they would tie one event's values together.
            assert!(rows
                .iter()
                .filter(|r| r.day == day && !r.dimension.is_empty())
                .all(|r| r.batch == 0));
            ids[0]
        };
        let (rows, _, _) = folder.fold(&batch, Timestamp::UNIX_EPOCH);
        let (first, second) = (
            folder.site_day(&batch[0]).unwrap().1,
            folder.site_day(&batch[1]).unwrap().1,
        );
        assert_eq!(second, first + 1);
        assert_eq!(id_of(&rows, first), batch_id(&[1000, 1002]));
        assert_eq!(id_of(&rows, second), batch_id(&[1001, 1003]));
        assert_ne!(batch_id(&[1000, 1002]), 0);
        // The batch read back in another order; and the events of the second day alone.
        let mut reversed = batch.clone();
        reversed.reverse();
        let (again, _, _) = folder.fold(&reversed, Timestamp::UNIX_EPOCH);
        assert_eq!(id_of(&again, first), id_of(&rows, first));
        // The same rows in the same order, whatever the order of the events.
        assert_eq!(again, rows);
        let part: Vec<EventRow> = batch
            .iter()
            .filter(|e| folder.site_day(e).is_some_and(|(_, d)| d == second))
            .cloned()
            .collect();
        let (alone, _, _) = folder.fold(&part, Timestamp::UNIX_EPOCH);
        assert_eq!(id_of(&alone, second), id_of(&rows, second));
        assert_ne!(batch_id(&[1000]), batch_id(&[1000, 1002]), "another set");
    }
}
