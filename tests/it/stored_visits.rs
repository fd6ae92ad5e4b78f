//! Issue 14: visits stored without the hash once they end. The hand-computed fixture answers the
//! same from stored visits and from rollups summed from them; new hand-computed cases cover a
//! visit still open at query time, a late event joining a stored visit (visit and rollup
//! corrected by the jobs alone), two collectors storing at once, a job killed half-way, a visit
//! longer than six hours, filters over twelve months (answered after the raw events are gone)
//! and filters combined.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use tally::stats::api::Request;

use crate::reports::{cases, config, load_events, post_query, run_fixture, secret};
use crate::support::*;

/// One raw event row for `events`, at `ts`; `extra` overrides columns (`source`, `country`, …).
fn event(site: &str, ts: Timestamp, visitor: u64, name: &str, path: &str, extra: Value) -> Value {
    let mut row = json!({
        "site": site, "ts": ts.as_second(), "micros": 0, "visitor": visitor, "name": name,
        "host": site, "path": path, "query": "", "utm_source": "", "utm_medium": "",
        "utm_campaign": "", "utm_content": "", "utm_term": "", "referrer_host": "",
        "source": "", "country": "NL", "device": "desktop", "browser": "Firefox",
        "os": "GNU/Linux", "screen": "laptop", "engaged_ms": 0, "scroll_depth": 0,
        "interactive": 1, "props_keys": [], "props_values": [],
        "event_id": visitor * 1_000_000 + ts.as_second() as u64 % 1_000_000,
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            row[k] = v;
        }
    }
    row
}

async fn insert(db: &str, rows: &[Value]) {
    let mut sql = format!("INSERT INTO {db}.events FORMAT JSONEachRow\n");
    for r in rows {
        sql.push_str(&r.to_string());
        sql.push('\n');
    }
    ch(&sql).await;
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `tally visits` (store every due slice) on this setup's database; its stdout.
fn store_visits(setup: &Setup) -> String {
    let config = setup.config_path();
    let out = tally_command(&["visits", "--config", &config.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tally visits failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// As if `events_by_hour` (migration 0011) had existed before the events to come: no mark, so
/// that the visit job carries open visits from batch to batch for these past hours too (the
/// migration's mark makes it do so only for hours after it). Called before the events are
/// inserted: the view copies them. (After, a collector's own visit job could store some hours
/// first, before the mark is gone, without a carry.)
async fn by_hour_from_the_start(db: &str) {
    ch(&format!("TRUNCATE TABLE {db}.events_by_hour")).await;
}

/// The metrics the comparisons of stored and raw answers ask for.
const COMPARED_METRICS: [&str; 8] = [
    "visitors",
    "visits",
    "pageviews",
    "bounce_rate",
    "visit_duration",
    "time_on_page",
    "scroll_depth",
    "entries",
];

/// A started tally that builds every visit from raw events (`visits.store = false`) and a
/// migrated setup, no collector running, with `events_by_hour` holding every event (no mark,
/// [`by_hour_from_the_start`]) and, with `minutes`, the per-minute counts too (migration
/// 0010's mark removed); then `rows` inserted into both. The first setup lives as long as its
/// tally.
async fn raw_and_by_hour(name: &str, rows: &[Value], minutes: bool) -> (Setup, Tally, Setup) {
    let raw_setup = Setup::new(&format!("{name}_raw"))
        .with(&site_config())
        .with("[visits]\nstore = false\n");
    let raw = raw_setup.start().await;
    let setup = Setup::new(&format!("{name}_by_hour")).with(&site_config());
    migrate(&setup);
    let db = setup.db.clone();
    by_hour_from_the_start(&db).await;
    if minutes {
        ch(&format!("TRUNCATE TABLE {db}.events_minutes")).await;
    }
    for chunk in rows.chunks(5000) {
        insert(&raw.db, chunk).await;
        insert(&db, chunk).await;
    }
    (raw_setup, raw, setup)
}

/// `tally visits` on this setup's database, an hour per batch, and in two or more visitor
/// ranges where an hour has over 200 events (each range reads and leaves the carry of its own
/// visitors). Its output and log.
fn store_by_the_hour(setup: &Setup) -> String {
    tally_succeeds(
        &["visits", "--batch-hours", "1", "--batch-events", "200"],
        &setup.config_path(),
    )
}

/// `tally migrate` on this setup's database, with no collector running: the tests that count
/// what `tally visits` carries run it alone, as a collector's own visit job could store the
/// same hours first in its own batches.
fn migrate(setup: &Setup) {
    let config = setup.config_path();
    let out = tally_command(&["migrate", "--config", &config.to_string_lossy()]);
    assert!(out.status.success(), "{out:?}");
}

/// Queries of s.example for [`COMPARED_METRICS`] over `range`: every filter list with every
/// dimension (`None`: no breakdown).
fn compared_queries(range: &Value, filters: &[Value], dimensions: &[Option<&str>]) -> Vec<Value> {
    let mut queries = Vec::new();
    for f in filters {
        for d in dimensions {
            let mut q = json!({"site_id": "s.example", "metrics": COMPARED_METRICS,
                "date_range": range, "filters": f});
            if let Some(d) = d {
                q["dimensions"] = json!([d]);
            }
            queries.push(q);
        }
    }
    queries
}

/// Asks `raw` and `stored` each query; returns how many were asked, and adds to `differ` each
/// whose `results` differ (or are missing), labelled.
async fn compare_answers(
    raw: &Tally,
    stored: &Tally,
    label: &str,
    queries: &[Value],
    differ: &mut Vec<String>,
) -> usize {
    let parse = |s: &str| {
        serde_json::from_str::<Value>(s)
            .map(|v| v["results"].clone())
            .unwrap_or(Value::Null)
    };
    for q in queries {
        let a = post_query(&raw.base, secret(&json!("fixture")), q).await.1;
        let b = post_query(&stored.base, secret(&json!("fixture")), q)
            .await
            .1;
        if parse(&a) != parse(&b) || parse(&a).is_null() {
            differ.push(format!("{label}{q}\n  raw:    {a}\n  stored: {b}"));
        }
    }
    queries.len()
}

/// Fails listing every answer of [`compare_answers`] that differed, out of `compared`.
fn assert_none_differ(differ: &[String], compared: usize) {
    assert!(
        differ.is_empty(),
        "{} of {compared} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// `tally rollup` on this setup's database.
fn roll_up(setup: &Setup) {
    let config = setup.config_path();
    let out = tally_command(&["rollup", "--config", &config.to_string_lossy()]);
    assert!(
        out.status.success(),
        "tally rollup failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One visitor's count of "visitors" for pageviews at `times` on `s.example`: one per local day
/// in Europe/Amsterdam (a visitor counts once per day of the site's time zone).
fn local_days(times: &[Timestamp]) -> f64 {
    let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
    let dates: std::collections::BTreeSet<_> = times
        .iter()
        .map(|t| t.to_zoned(tz.clone()).date())
        .collect();
    dates.len() as f64
}

/// The stats API's results for `query` (status 200 asserted).
async fn results(t: &Tally, query: Value) -> Value {
    let (status, body) = post_query(&t.base, secret(&json!("fixture")), &query).await;
    assert_eq!(status, 200, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["results"].clone()
}

/// The metrics of an aggregate query (no dimensions).
async fn totals(t: &Tally, site: &str, metrics: &[&str], range: Value, filters: Value) -> Vec<f64> {
    let r = results(
        t,
        json!({"site_id": site, "metrics": metrics, "date_range": range, "filters": filters}),
    )
    .await;
    r[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// Hours of raw events whose visits are not stored (the tail), and stored done slices.
async fn stored_state(db: &str, site: &str) -> (u64, u64) {
    let unstored = ch_count(&format!(
        "SELECT count() FROM (SELECT DISTINCT toStartOfHour(ts) AS h FROM {db}.events \
         WHERE site = '{site}') WHERE h NOT IN (SELECT slice FROM {db}.visit_slices \
         WHERE site = '{site}' AND done = 1)"
    ))
    .await;
    let done = ch_count(&format!(
        "SELECT count(DISTINCT slice) FROM {db}.visit_slices WHERE site = '{site}' AND done = 1"
    ))
    .await;
    (unstored, done)
}

fn assert_fixture(failures: Vec<String>, how: &str) {
    assert!(
        failures.is_empty(),
        "{} fixture case(s) failed {how}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The 47 hand-computed cases, answered from stored visits, then from rollups summed from them.
#[tokio::test]
async fn issue_14_the_fixture_answers_the_same_from_stored_visits_and_their_rollups() {
    let setup = Setup::new("stored_fixture").with(&config());
    let t = setup.start().await;
    load_events(&t.db).await;
    store_visits(&setup);
    for site in ["a.example", "b.example"] {
        let (unstored, done) = stored_state(&t.db, site).await;
        assert_eq!(unstored, 0, "{site}: every hour with events is stored");
        assert!(done > 0);
    }
    // The raw events are no longer needed for any of it.
    ch(&format!("TRUNCATE TABLE {}.events", t.db)).await;
    let cases = cases();
    assert_fixture(run_fixture(&t, &cases).await, "from stored visits");
    // The cases a dashboard page would prefilter (several values, `is_not`, `contains`,
    // `matches`, `or`, `not`) answer the same from the page's table.
    let prefiltered = prefiltered_cases_answer_the_same(&setup).await;
    assert!(prefiltered >= 7, "{prefiltered} cases prefiltered");
    roll_up(&setup);
    assert!(ch_count(&format!("SELECT count() FROM {}.rollup_days", t.db)).await > 0);
    assert_fixture(
        run_fixture(&t, &cases).await,
        "from rollups of stored visits",
    );
}

/// An exact filter on a dimension that shows a label for an empty value (`Direct / None`,
/// `(not set)`) compares the stored column, not the shown value: it must select exactly the
/// rows its breakdown row shows, the label's row included, and `is_not` the rest. The other
/// operators (`contains`, `matches`, their negations, a case-insensitive `is`) are written on
/// the stored column too, the empty value taking the label's outcome: each must select exactly
/// the breakdown rows whose shown value it matches.
#[tokio::test]
async fn labelled_values_filter_the_rows_their_breakdown_row_shows() {
    let setup = Setup::new("stored_labels").with(&config());
    let t = setup.start().await;
    load_events(&t.db).await;
    store_visits(&setup);
    let range = json!(["2026-03-27", "2026-03-31"]);
    let metrics = ["visitors", "visits", "pageviews"];
    let all = totals(&t, "a.example", &metrics, range.clone(), json!([])).await;
    let mut labels = 0;
    for dim in [
        "visit:source",
        "visit:referrer",
        "visit:utm_source",
        "visit:country",
        "visit:browser",
        "visit:os",
    ] {
        let rows = results(
            &t,
            json!({"site_id": "a.example", "metrics": metrics, "date_range": range,
                   "dimensions": [dim]}),
        )
        .await;
        let rows = rows.as_array().unwrap();
        assert!(!rows.is_empty(), "{dim}: rows");
        for row in rows {
            let value = row["dimensions"][0].as_str().unwrap().to_string();
            labels += usize::from(value == "Direct / None" || value == "(not set)");
            let shown: Vec<f64> = row["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let is = totals(
                &t,
                "a.example",
                &metrics,
                range.clone(),
                json!([["is", dim, [&value]]]),
            )
            .await;
            assert_eq!(is, shown, "{dim} is {value}");
            let not = totals(
                &t,
                "a.example",
                &metrics,
                range.clone(),
                json!([["is_not", dim, [&value]]]),
            )
            .await;
            // Visits and pageviews add up; visitors need not (one visitor, two sources).
            assert_eq!(
                (not[1], not[2]),
                (all[1] - shown[1], all[2] - shown[2]),
                "{dim} is_not {value}"
            );
        }
        type Shown = fn(&str) -> bool;
        let searches: [(Value, Shown); 7] = [
            (json!(["contains", dim, ["None", "not"]]), |v| {
                v.contains("None") || v.contains("not")
            }),
            (
                json!(["contains", dim, ["E"], {"case_sensitive": false}]),
                |v| v.to_lowercase().contains('e'),
            ),
            (json!(["contains_not", dim, ["o"]]), |v| !v.contains('o')),
            (
                json!(["contains_not", dim, ["/ n", "SET)"], {"case_sensitive": false}]),
                |v| {
                    let v = v.to_lowercase();
                    !(v.contains("/ n") || v.contains("set)"))
                },
            ),
            (json!(["matches", dim, ["^[(D]"]]), |v| {
                v.starts_with('(') || v.starts_with('D')
            }),
            (json!(["matches_not", dim, ["[et]$"]]), |v| {
                !(v.ends_with('e') || v.ends_with('t'))
            }),
            (
                json!(["is", dim, ["DIRECT / NONE", "(Not Set)"], {"case_sensitive": false}]),
                |v| v == "Direct / None" || v == "(not set)",
            ),
        ];
        for (search, shows) in searches {
            let (mut visits, mut pageviews) = (0.0, 0.0);
            for row in rows {
                if shows(row["dimensions"][0].as_str().unwrap()) {
                    visits += row["metrics"][1].as_f64().unwrap();
                    pageviews += row["metrics"][2].as_f64().unwrap();
                }
            }
            let found = totals(&t, "a.example", &metrics, range.clone(), json!([search])).await;
            assert_eq!((found[1], found[2]), (visits, pageviews), "{search}");
        }
    }
    assert!(
        labels >= 3,
        "the fixture has empty values shown as labels: {labels}"
    );
}

/// Two collectors store visits at the same moment, one is killed half-way and run again: every
/// visit is still counted exactly once.
#[tokio::test]
async fn issue_14_concurrent_and_killed_jobs_count_every_visit_once() {
    let setup = Setup::new("stored_concurrent").with(&config());
    let t = setup.start().await;
    load_events(&t.db).await;
    let config = setup.config_path().to_string_lossy().into_owned();
    // A job killed at once (before, during or after its first slice), then two at a time.
    let mut killed = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["visits", "--config", &config])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    killed.kill().unwrap();
    killed.wait().unwrap();
    // A crash after writing rows but before marking them done leaves rows no reader takes.
    ch(&format!(
        "INSERT INTO {db}.visits (site, slice, version, kind, ts, day_visitor, path, pageviews) \
         SELECT site, slice, 1, kind, ts, day_visitor, path, pageviews FROM {db}.visits",
        db = t.db
    ))
    .await;
    let (a, b) = (config.clone(), config.clone());
    let first = std::thread::spawn(move || tally_command(&["visits", "--config", &a]));
    let second = std::thread::spawn(move || tally_command(&["visits", "--config", &b]));
    for out in [first.join().unwrap(), second.join().unwrap()] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    store_visits(&setup);
    for site in ["a.example", "b.example"] {
        assert_eq!(stored_state(&t.db, site).await.0, 0, "{site}: all stored");
    }
    ch(&format!("TRUNCATE TABLE {}.events", t.db)).await;
    assert_fixture(
        run_fixture(&t, &cases()).await,
        "after concurrent and killed jobs",
    );
}

fn site_config() -> String {
    format!(
        "{}\n[[sites]]\ndomain = \"s.example\"\ntime_zone = \"Europe/Amsterdam\"\n",
        config()
    )
}

/// A visit of 8 h 20 min of pageviews every 20 minutes is one visit (the raw-event reports used
/// to cut it at six hours), stored once it ended.
#[tokio::test]
async fn issue_14_a_visit_longer_than_six_hours_is_one_visit() {
    let setup = Setup::new("stored_long").with(&site_config());
    let t = setup.start().await;
    let start = at("2026-02-10T08:00:00Z");
    let rows: Vec<Value> = (0..26)
        .map(|i| {
            let path = if i % 2 == 0 { "/long/a" } else { "/long/b" };
            let extra = if i == 0 {
                json!({"source": "Google", "referrer_host": "www.google.com"})
            } else {
                json!({})
            };
            event(
                "s.example",
                start + SignedDuration::from_mins(20 * i),
                900,
                "pageview",
                path,
                extra,
            )
        })
        .collect();
    insert(&t.db, &rows).await;
    let range = json!(["2026-02-10", "2026-02-10"]);
    let metrics = [
        "visitors",
        "visits",
        "pageviews",
        "visit_duration",
        "views_per_visit",
        "bounce_rate",
    ];
    // From the raw events (nothing stored yet) and from the stored visit: the same.
    let want = vec![1.0, 1.0, 26.0, 30_000.0, 26.0, 0.0];
    assert_eq!(
        totals(&t, "s.example", &metrics, range.clone(), json!([])).await,
        want
    );
    store_visits(&setup);
    assert_eq!(stored_state(&t.db, "s.example").await.0, 0);
    ch(&format!("TRUNCATE TABLE {}.events", t.db)).await;
    assert_eq!(
        totals(&t, "s.example", &metrics, range.clone(), json!([])).await,
        want
    );
    let r = results(
        &t,
        json!({"site_id": "s.example", "metrics": ["visits"], "date_range": range,
               "dimensions": ["visit:entry_page", "visit:exit_page", "visit:source"]}),
    )
    .await;
    assert_eq!(
        r,
        json!([{"metrics": [1], "dimensions": ["/long/a", "/long/b", "Google"]}])
    );
}

/// A visit still going on is counted from raw events until it ends; a late event joins a stored
/// visit, and the visit and the day's rollup are corrected by the jobs alone.
#[tokio::test]
async fn issue_14_open_visits_count_and_late_events_correct_stored_visits_and_rollups() {
    let setup = Setup::new("stored_late").with(&site_config());
    let t = setup.start().await;
    let db = t.db.clone();

    // Open: pageviews 15 and 3 minutes ago, an engagement 2 minutes ago.
    let now = Timestamp::now();
    let ago = |m: i64| now - SignedDuration::from_mins(m);
    insert(
        &db,
        &[
            event("s.example", ago(15), 901, "pageview", "/open/1", json!({})),
            event("s.example", ago(3), 901, "pageview", "/open/2", json!({})),
            event(
                "s.example",
                ago(2),
                901,
                "engagement",
                "/open/2",
                json!({"engaged_ms": 60000}),
            ),
        ],
    )
    .await;
    // Late: a visit of two pageviews on 2026-02-11, stored and rolled up.
    let t10 = at("2026-02-11T10:00:00Z");
    insert(
        &db,
        &[
            event("s.example", t10, 902, "pageview", "/late/a", json!({})),
            event(
                "s.example",
                t10 + SignedDuration::from_mins(5),
                902,
                "pageview",
                "/late/b",
                json!({}),
            ),
        ],
    )
    .await;
    store_visits(&setup);
    roll_up(&setup);
    let window = json!([
        (now - SignedDuration::from_mins(60)).to_string(),
        (now + SignedDuration::from_mins(1)).to_string()
    ]);
    let open = ["visitors", "visits", "pageviews", "visit_duration"];
    // Not stored (it may go on), still counted: 13 minutes from first pageview to last event
    // (one visitor, or one per local day when the site's midnight falls between the pageviews).
    assert_eq!(
        totals(&t, "s.example", &open, window.clone(), json!([])).await,
        vec![local_days(&[ago(15), ago(3)]), 1.0, 2.0, 780.0]
    );
    assert_eq!(
        totals(
            &t,
            "s.example",
            &["visitors", "pageviews"],
            json!("realtime"),
            json!([])
        )
        .await,
        vec![1.0, 1.0]
    );
    let day = json!(["2026-02-11", "2026-02-11"]);
    let late = ["visits", "pageviews", "visit_duration"];
    assert_eq!(
        totals(&t, "s.example", &late, day.clone(), json!([])).await,
        vec![1.0, 2.0, 300.0]
    );
    // The late pageview 15 minutes after the first one continues the visit.
    insert(
        &db,
        &[event(
            "s.example",
            t10 + SignedDuration::from_mins(15),
            902,
            "pageview",
            "/late/c",
            json!({}),
        )],
    )
    .await;
    store_visits(&setup);
    roll_up(&setup);
    assert_eq!(
        totals(&t, "s.example", &late, day.clone(), json!([])).await,
        vec![1.0, 3.0, 900.0],
        "the stored visit and the day's rollup include the late event"
    );
    let versions = ch_count(&format!(
        "SELECT count() FROM {db}.rollup_days WHERE site = 's.example' AND day = '2026-02-11'"
    ))
    .await;
    assert!(versions >= 2, "the day was rolled up again without --redo");
    let r = results(
        &t,
        json!({"site_id": "s.example", "metrics": ["visits"], "date_range": day,
               "dimensions": ["visit:exit_page"]}),
    )
    .await;
    assert_eq!(r, json!([{"metrics": [1], "dimensions": ["/late/c"]}]));
}

/// A batch with more raw events than one statement may hold (`--batch-events`) is stored by
/// several statements, each for a range of the visitor hash, under one version: every visit
/// is still stored exactly once, and the fixture answers the same without the raw events.
#[tokio::test]
async fn issue_14_visits_stored_in_visitor_ranges_answer_the_fixture_the_same() {
    let setup = Setup::new("stored_parts").with(&config());
    let t = setup.start().await;
    load_events(&t.db).await;
    // The fixture's visitors are small numbers, all in the first range: spread them over the
    // hash space as real visitor hashes are (one to one, so every answer stays the same).
    let db = &t.db;
    let columns = ch(&format!(
        "SELECT name FROM system.columns WHERE database = '{db}' AND table = 'events' FORMAT TSV"
    ))
    .await;
    let select: Vec<String> = columns
        .lines()
        .map(|c| match c {
            "visitor" => "intHash64(visitor) AS visitor".to_string(),
            c => c.to_string(),
        })
        .collect();
    ch(&format!("CREATE TABLE {db}.fixture_events AS {db}.events")).await;
    ch(&format!(
        "INSERT INTO {db}.fixture_events SELECT * FROM {db}.events"
    ))
    .await;
    ch(&format!("TRUNCATE TABLE {db}.events")).await;
    ch(&format!("TRUNCATE TABLE {db}.events_minutes")).await;
    ch(&format!(
        "INSERT INTO {db}.events ({}) SELECT {} FROM {db}.fixture_events",
        columns.lines().collect::<Vec<_>>().join(", "),
        select.join(", ")
    ))
    .await;
    ch(&format!("DROP TABLE {db}.fixture_events")).await;
    assert!(
        ch_count(&format!(
            "SELECT uniqExact(intDiv(visitor, 6148914691236517205)) FROM {db}.events"
        ))
        .await
            == 3,
        "visitors in each third of the hash space"
    );
    let config = setup.config_path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["visits", "--batch-events", "3", "--config"])
        .arg(&config)
        .env("TALLY_LOG", "tally::visits=debug")
        .output()
        .expect("tally runs");
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let most = log
        .lines()
        .filter(|l| l.contains("visits stored"))
        .filter_map(|l| l.split("parts=").nth(1))
        .filter_map(|p| p.split_whitespace().next()?.parse::<u32>().ok())
        .max();
    assert!(
        most.is_some_and(|p| p >= 3),
        "batches were stored in visitor ranges ({most:?}):\n{log}"
    );
    for site in ["a.example", "b.example"] {
        assert_eq!(stored_state(&t.db, site).await.0, 0, "{site}: all stored");
    }
    ch(&format!("TRUNCATE TABLE {}.events", t.db)).await;
    assert_fixture(run_fixture(&t, &cases()).await, "stored in visitor ranges");
}

/// The jobs read how many raw events each minute has from `events_minutes` (migration 0010),
/// which its view fills as events are inserted. Events stored before the view existed are not
/// in it: the minutes before the migration's mark are counted from the raw events, so their
/// visits are still stored, late events among them still found, and their day rolled up.
#[tokio::test]
async fn issue_14_events_stored_before_the_per_minute_counts_began_are_counted_from_raw_events() {
    let setup = Setup::new("stored_counts").with(&site_config());
    let t = setup.start().await;
    let db = t.db.clone();
    let t10 = at("2026-02-11T10:00:00Z");
    let later = |m: i64| t10 + SignedDuration::from_mins(m);
    insert(
        &db,
        &[
            event("s.example", t10, 903, "pageview", "/old/a", json!({})),
            event("s.example", later(5), 903, "pageview", "/old/b", json!({})),
        ],
    )
    .await;
    let counted = format!("SELECT sum(n) FROM {db}.events_minutes WHERE site = 's.example'");
    assert_eq!(
        ch_count(&counted).await,
        2,
        "the view counts inserted events"
    );
    // As if both were stored before the migration: no counts, and the mark the migration
    // leaves when it creates the view.
    ch(&format!("TRUNCATE TABLE {db}.events_minutes")).await;
    ch(&format!(
        "INSERT INTO {db}.events_minutes (site, minute, n) \
         SELECT '', toStartOfMinute(now()) + 600, 1"
    ))
    .await;
    store_visits(&setup);
    roll_up(&setup);
    let (unstored, done) = stored_state(&db, "s.example").await;
    assert_eq!(
        (unstored, done > 0),
        (0, true),
        "the hour's visits are stored"
    );
    let day = json!(["2026-02-11", "2026-02-11"]);
    let m = ["visits", "pageviews", "visit_duration"];
    assert_eq!(
        totals(&t, "s.example", &m, day.clone(), json!([])).await,
        vec![1.0, 2.0, 300.0]
    );
    assert!(
        ch_count(&format!(
            "SELECT count() FROM {db}.rollup_days WHERE site = 's.example' AND day = '2026-02-11'"
        ))
        .await
            >= 1,
        "the day was rolled up: no hour of it looked unstored"
    );
    // A late event before the mark: the view counts it, but that minute is read from the raw
    // events, which have it too, so the visit is computed again.
    insert(
        &db,
        &[event(
            "s.example",
            later(15),
            903,
            "pageview",
            "/old/c",
            json!({}),
        )],
    )
    .await;
    assert_eq!(ch_count(&counted).await, 1);
    store_visits(&setup);
    roll_up(&setup);
    assert_eq!(
        totals(&t, "s.example", &m, day, json!([])).await,
        vec![1.0, 3.0, 900.0],
        "the late event joined the stored visit"
    );
}

/// A report on a period that ended before the open tail starts reads the tail only for the
/// visits that went on past the period's end: one still going on is counted in the period
/// (its earlier hours are stored, its own slice is not), beside one stored whole.
#[tokio::test]
async fn issue_14_a_visit_still_going_on_counts_in_a_period_that_ended_before_the_open_tail() {
    let setup = Setup::new("stored_across").with(&site_config());
    let t = setup.start().await;
    let now = Timestamp::now();
    let ago = |m: i64| now - SignedDuration::from_mins(m);
    // Pageviews every 12 minutes from 170 minutes ago, the last 2 minutes ago: one visit, open.
    let mut rows: Vec<Value> = (0..14)
        .map(|k| {
            event(
                "s.example",
                ago(170 - 12 * k),
                903,
                "pageview",
                "/long",
                json!({}),
            )
        })
        .collect();
    rows.push(event(
        "s.example",
        ago(2),
        903,
        "pageview",
        "/now",
        json!({}),
    ));
    // A visit of two pageviews that ended 160 minutes ago: stored.
    rows.push(event(
        "s.example",
        ago(165),
        904,
        "pageview",
        "/short/a",
        json!({}),
    ));
    rows.push(event(
        "s.example",
        ago(160),
        904,
        "pageview",
        "/short/b",
        json!({}),
    ));
    insert(&t.db, &rows).await;
    store_visits(&setup);
    // Hours up to 100 minutes ago are due and stored (the open visit's earlier hours among
    // them), so the tail starts after the period's end 116 minutes ago (its end is inclusive, as in
    // Plausible; no event falls on it).
    let period = json!([ago(170).to_string(), ago(116).to_string()]);
    let metrics = ["visitors", "visits", "pageviews"];
    // In the period: visitor 903's first five pageviews (170 … 122 minutes ago) and its visit,
    // which began there; visitor 904's visit and two pageviews. Visitors are counted per local
    // day: a visitor whose pageviews in the period fall on both sides of the site's midnight
    // counts once per day (the test failed when run between 02:02 and 02:50 in Amsterdam).
    let days =
        |minutes_ago: &[i64]| local_days(&minutes_ago.iter().map(|m| ago(*m)).collect::<Vec<_>>());
    let long = [170, 158, 146, 134, 122];
    assert_eq!(
        totals(&t, "s.example", &metrics, period.clone(), json!([])).await,
        vec![days(&long) + days(&[165, 160]), 2.0, 7.0]
    );
    assert_eq!(
        totals(
            &t,
            "s.example",
            &metrics,
            period,
            json!([["is", "event:page", ["/long"]]])
        )
        .await,
        vec![days(&long), 1.0, 5.0],
        "filtered too"
    );
}

/// Filters over twelve months, one and several at once, answered from stored visits after the
/// raw events are gone.
#[tokio::test]
async fn issue_14_filters_reach_twelve_months_and_combine() {
    let setup = Setup::new("stored_year").with(&site_config());
    let t = setup.start().await;
    let this_month = Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())
        .date()
        .first_of_month();
    let mut rows = Vec::new();
    for m in 1..=11i64 {
        let day = this_month
            .checked_sub(jiff::Span::new().months(m))
            .unwrap()
            .checked_add(jiff::Span::new().days(14))
            .unwrap();
        let ts = day
            .at(10, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp();
        let m = m as u64;
        rows.push(event(
            "s.example",
            ts,
            1000 + m,
            "pageview",
            "/afval",
            json!({"source": "Google", "referrer_host": "www.google.com"}),
        ));
        rows.push(event(
            "s.example",
            ts,
            2000 + m,
            "pageview",
            "/afval",
            json!({"country": "DE"}),
        ));
        rows.push(event(
            "s.example",
            ts,
            3000 + m,
            "pageview",
            "/other",
            json!({}),
        ));
        rows.push(event(
            "s.example",
            ts + SignedDuration::from_mins(2),
            3000 + m,
            "pageview",
            "/afval",
            json!({}),
        ));
        // A second visit the same day, three hours later: one more visit, the same visitor.
        if m == 1 {
            rows.push(event(
                "s.example",
                ts + SignedDuration::from_hours(3),
                2000 + m,
                "pageview",
                "/afval",
                json!({"country": "DE"}),
            ));
        }
    }
    insert(&t.db, &rows).await;
    store_visits(&setup);
    assert_eq!(stored_state(&t.db, "s.example").await.0, 0);
    ch(&format!("TRUNCATE TABLE {}.events", t.db)).await;
    let year = json!("12mo");
    let f = |op: &str, dim: &str, v: &str| json!([op, dim, [v]]);
    let m = ["visitors", "visits", "pageviews"];
    let check = |filters: Value, want: Vec<f64>| {
        let t = &t;
        let year = year.clone();
        async move {
            assert_eq!(
                totals(t, "s.example", &m, year, filters.clone()).await,
                want,
                "{filters}"
            );
        }
    };
    check(json!([]), vec![33.0, 34.0, 45.0]).await;
    check(
        json!([f("is", "visit:country", "DE")]),
        vec![11.0, 12.0, 12.0],
    )
    .await;
    // Page filters: pageviews of /afval, and visits that viewed it.
    check(
        json!([f("is", "event:page", "/afval")]),
        vec![33.0, 34.0, 34.0],
    )
    .await;
    check(
        json!([
            f("is", "visit:country", "NL"),
            f("is", "visit:source", "Google")
        ]),
        vec![11.0, 11.0, 11.0],
    )
    .await;
    check(
        json!([
            f("is", "visit:country", "NL"),
            f("contains", "event:page", "afv"),
            f("is_not", "visit:source", "Google")
        ]),
        vec![11.0, 11.0, 11.0],
    )
    .await;
    check(
        json!([
            f("is", "visit:entry_page", "/other"),
            f("is", "event:page", "/afval")
        ]),
        vec![11.0, 11.0, 11.0],
    )
    .await;
    check(
        json!([[
            "or",
            [
                f("is", "visit:country", "DE"),
                f("is", "visit:source", "Google")
            ]
        ]]),
        vec![22.0, 23.0, 23.0],
    )
    .await;
    check(json!([f("is", "visit:country", "FR")]), vec![0.0, 0.0, 0.0]).await;
    // Countries without `percentage` over the year, counted per local day and summed too
    // (`visits::BY_DAY_WITHOUT_TOTAL_FROM_DAYS`): the DE visitor of two visits is one visitor.
    let r = results(
        &t,
        json!({"site_id": "s.example", "metrics": ["visitors", "visits"],
            "date_range": year, "dimensions": ["visit:country"],
            "filters": [f("is_not", "visit:source", "Google")],
            "order_by": [["visits", "desc"]]}),
    )
    .await;
    assert_eq!(
        r,
        json!([
            {"dimensions": ["DE"], "metrics": [11, 12]},
            {"dimensions": ["NL"], "metrics": [11, 11]}
        ])
    );
    // Countries with `percentage` over the year, counted per local day and summed
    // (`visits::BY_DAY_FROM_DAYS`): the DE visitor of two visits on one day is one visitor.
    let r = results(
        &t,
        json!({"site_id": "s.example", "metrics": ["visitors", "visits", "percentage"],
            "date_range": year, "dimensions": ["visit:country"],
            "filters": [f("contains", "event:page", "afv")]}),
    )
    .await;
    assert_eq!(
        r,
        json!([
            {"dimensions": ["NL"], "metrics": [22, 22, 66.7]},
            {"dimensions": ["DE"], "metrics": [11, 12, 33.3]}
        ])
    );
}

/// A small deterministic generator (xorshift), so the generated traffic is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Visitors over five days around the switch to summer time in Amsterdam (29 March 2026):
/// visits of one to eight pageviews with engagement, returns on the same day after a pause,
/// visits across local midnight, custom events, sources, campaigns, countries, devices.
fn generated_traffic(visitors: u64) -> Vec<Value> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pages = [
        "/",
        "/afval",
        "/afval/kalender",
        "/paspoort",
        "/contact",
        "/nieuws/a",
        "/nieuws/b",
        "/werk",
    ];
    let sources = [
        ("", "", ""),
        ("Google", "www.google.com", ""),
        ("Bing", "www.bing.com", ""),
        ("Facebook", "www.facebook.com", ""),
        ("nieuwsbrief", "", "nieuwsbrief"),
    ];
    let countries = ["NL", "NL", "NL", "BE", "DE", ""];
    let devices = [
        ("desktop", "laptop"),
        ("mobile", "mobile"),
        ("tablet", "tablet"),
        ("desktop", ""),
    ];
    let browsers = ["Chrome", "Firefox", "Safari", "Edge"];
    let oses = ["Windows", "Mac", "Android", "iOS", "GNU/Linux"];
    let first_day = at("2026-03-27T00:00:00Z");
    let mut rows = Vec::new();
    let mut id = 0u64;
    for v in 0..visitors {
        let visitor = 10_000 + v;
        let (country, (device, screen), browser, os) = (
            rng.pick(&countries),
            devices[rng.below(devices.len() as u64) as usize],
            rng.pick(&browsers),
            rng.pick(&oses),
        );
        // Start anywhere in the five days; 1 in 20 starts ten minutes before a local midnight.
        let mut t = if rng.below(20) == 0 {
            let day =
                at("2026-03-27T22:50:00Z") + SignedDuration::from_hours(24 * rng.below(4) as i64);
            day - SignedDuration::from_hours(if day < at("2026-03-29T01:00:00Z") {
                0
            } else {
                1
            })
        } else {
            first_day + SignedDuration::from_secs(rng.below(5 * 86_400) as i64)
        };
        let visits = 1 + u64::from(rng.below(5) == 0);
        for _ in 0..visits {
            let (source, referrer, campaign) = sources[rng.below(sources.len() as u64) as usize];
            let views = 1 + rng.below(8);
            for k in 0..views {
                let path = rng.pick(&pages);
                let mut extra = json!({"country": country, "device": device, "screen": screen,
                    "browser": browser, "os": os, "micros": rng.below(1_000_000)});
                if k == 0 {
                    extra["source"] = json!(source);
                    extra["referrer_host"] = json!(referrer);
                    extra["utm_campaign"] = json!(campaign);
                }
                id += 1;
                let mut row = event("s.example", t, visitor, "pageview", path, extra.clone());
                row["event_id"] = json!(id);
                rows.push(row);
                if rng.below(10) < 7 {
                    let engaged = rng.below(120_000);
                    t += SignedDuration::from_millis(engaged as i64 + 500);
                    extra["engaged_ms"] = json!(engaged);
                    extra["scroll_depth"] = json!(rng.below(101));
                    id += 1;
                    let mut row = event("s.example", t, visitor, "engagement", path, extra.clone());
                    row["event_id"] = json!(id);
                    rows.push(row);
                }
                if rng.below(15) == 0 {
                    id += 1;
                    let mut row = event("s.example", t, visitor, "Download", path, extra.clone());
                    row["event_id"] = json!(id);
                    rows.push(row);
                }
                t += SignedDuration::from_secs(5 + rng.below(600) as i64);
            }
            // A return the same day, after more than the visit timeout.
            t += SignedDuration::from_secs(1900 + rng.below(7200) as i64);
        }
    }
    rows
}

/// Two tallies given the same generated traffic: `raw` builds every visit from raw events
/// (`visits.store = false`); `stored` has its visits stored by `tally visits`. The setups own
/// the servers' directories, so they live as long as the servers.
struct RawAndStored {
    rows: Vec<Value>,
    _raw_setup: Setup,
    raw: Tally,
    stored_setup: Setup,
    stored: Tally,
}

/// [`RawAndStored`] with `visitors` of generated traffic.
async fn raw_and_stored(name: &str, visitors: u64) -> RawAndStored {
    let rows = generated_traffic(visitors);
    let raw_setup = Setup::new(&format!("{name}_raw"))
        .with(&site_config())
        .with("[visits]\nstore = false\n");
    let raw = raw_setup.start().await;
    let stored_setup = Setup::new(&format!("{name}_stored")).with(&site_config());
    let stored = stored_setup.start().await;
    by_hour_from_the_start(&stored.db).await;
    for chunk in rows.chunks(5000) {
        insert(&raw.db, chunk).await;
        insert(&stored.db, chunk).await;
    }
    store_visits(&stored_setup);
    RawAndStored {
        rows,
        _raw_setup: raw_setup,
        raw,
        stored_setup,
        stored,
    }
}

/// Generated traffic gives the same numbers from stored visits (and their rollups) as from the
/// raw events, for every metric and dimension, with and without filters.
#[tokio::test]
async fn issue_14_generated_traffic_gives_the_same_numbers_stored_and_raw() {
    let RawAndStored {
        rows,
        _raw_setup: _keep,
        raw,
        stored_setup,
        stored,
    } = raw_and_stored("gen", 3000).await;
    assert_eq!(stored_state(&stored.db, "s.example").await.0, 0);

    let metrics = [
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
        "time_on_page",
        "scroll_depth",
        "visit_duration_median",
        "visit_duration_p75",
        "visit_duration_p90",
        "time_on_page_median",
        "bounces",
        "entries",
    ];
    let dimensions = [
        "event:page",
        "event:hostname",
        "visit:entry_page",
        "visit:exit_page",
        "visit:source",
        "visit:referrer",
        "visit:utm_source",
        "visit:utm_medium",
        "visit:utm_campaign",
        "visit:utm_content",
        "visit:utm_term",
        "visit:country",
        "visit:device",
        "visit:browser",
        "visit:os",
        "time",
        "time:hour",
        "time:day",
        "time:hour_of_day",
        "time:weekday",
        "visit:duration_bucket",
    ];
    let filters = [
        json!([]),
        json!([["is", "visit:country", ["NL"]]]),
        json!([
            ["contains", "event:page", ["afval"]],
            ["is_not", "visit:source", ["Google"]]
        ]),
        json!([
            ["is", "visit:device", ["Mobile"]],
            ["is", "visit:entry_page", ["/"]]
        ]),
    ];
    let range = json!(["2026-03-27", "2026-03-31"]);
    let mut compared = 0;
    let mut differ = Vec::new();
    for round in ["stored visits", "rollups of stored visits"] {
        if round == "rollups of stored visits" {
            roll_up(&stored_setup);
        }
        for f in &filters {
            let mut queries = vec![json!({"site_id": "s.example", "metrics": metrics,
                "date_range": range, "filters": f})];
            for d in dimensions {
                queries.push(json!({"site_id": "s.example", "metrics": metrics,
                    "date_range": range, "filters": f, "dimensions": [d]}));
            }
            queries.push(
                json!({"site_id": "s.example", "metrics": ["visitors", "percentage"],
                "date_range": range, "filters": f, "dimensions": ["visit:country"]}),
            );
            queries.push(
                json!({"site_id": "s.example", "metrics": ["visitors", "visits"],
                "date_range": range, "filters": f, "dimensions": ["visit:source", "event:page"]}),
            );
            // A month and two months around the same days: stored visits count their visitors
            // per local day and sum them, without a total from a month on and with the total of
            // `percentage` from two (`visits::BY_DAY_WITHOUT_TOTAL_FROM_DAYS`,
            // `visits::BY_DAY_FROM_DAYS`); the DST change falls within both.
            for long in [
                json!(["2026-03-05", "2026-04-04"]),
                json!(["2026-02-01", "2026-04-02"]),
            ] {
                for d in [
                    "visit:country",
                    "visit:device",
                    "visit:browser",
                    "visit:os",
                    "visit:source",
                    "visit:channel",
                    "visit:duration_bucket",
                ] {
                    queries.push(json!({"site_id": "s.example",
                        "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
                        "date_range": long, "filters": f, "dimensions": [d]}));
                }
                queries.push(
                    json!({"site_id": "s.example", "metrics": ["visitors", "percentage"],
                    "date_range": long, "filters": f, "dimensions": ["visit:country"]}),
                );
            }
            compared +=
                compare_answers(&raw, &stored, &format!("{round}: "), &queries, &mut differ).await;
        }
    }
    println!(
        "generated traffic: {} events, {compared} queries compared, {} differ",
        rows.len(),
        differ.len()
    );
    assert_none_differ(&differ, compared);
}

/// The visit job reads, per batch, its own hours and the open visits the batch before left
/// (`visit_carry`), not the 25.5 hours before it: stored an hour at a time (busier hours in
/// visitor ranges), with visits that cross hours, midnight and the DST change, every report
/// answers as from the raw events. The markers say each batch wrote its carry, and the carry
/// holds only open visits' events.
#[tokio::test]
async fn issue_14_visits_carried_from_hour_to_hour_answer_as_the_raw_events() {
    let (_raw_setup, raw, setup) = raw_and_by_hour("carry", &generated_traffic(1500), false).await;
    let db = setup.db.clone();
    store_by_the_hour(&setup);
    assert_eq!(
        stored_state(&db, "s.example").await.0,
        0,
        "nothing left due"
    );
    // One batch per hour with events, each marked as having written its carry.
    let hours = ch_count(&format!(
        "SELECT uniqExact(toStartOfHour(ts)) FROM {db}.events WHERE site = 's.example'"
    ))
    .await;
    let carried = ch_count(&format!(
        "SELECT count() FROM (SELECT slice, argMaxIf(carry, version, done = 1) AS c \
         FROM {db}.visit_slices WHERE site = 's.example' GROUP BY slice) WHERE c = 1"
    ))
    .await;
    assert!(hours > 48, "{hours}");
    assert_eq!(carried, hours);
    // The carry holds the events of visits open at an hour's end: some, not all.
    let (in_carry, events) = (
        ch_count(&format!("SELECT count() FROM {db}.visit_carry")).await,
        ch_count(&format!("SELECT count() FROM {db}.events")).await,
    );
    assert!(in_carry > 0 && in_carry < events, "{in_carry} of {events}");
    let stored = setup.start().await;

    let metrics = COMPARED_METRICS;
    let range = json!(["2026-03-27", "2026-03-31"]);
    let mut differ = Vec::new();
    let mut compared = 0;
    for f in [json!([]), json!([["is", "visit:country", ["NL"]]])] {
        let mut queries = vec![json!({"site_id": "s.example", "metrics": metrics,
            "date_range": range, "filters": f})];
        for d in [
            "visit:entry_page",
            "visit:exit_page",
            "visit:source",
            "event:page",
            "time:hour",
            "visit:duration_bucket",
        ] {
            queries.push(json!({"site_id": "s.example", "metrics": metrics,
                "date_range": range, "filters": f, "dimensions": [d]}));
        }
        compared += compare_answers(&raw, &stored, "", &queries, &mut differ).await;
    }
    assert_none_differ(&differ, compared);
}

/// Regression (the cluster fault test, CI run of 2026-12-05: 30 of a replica's 7,467 events
/// neither counted per minute nor copied by the hour): a server that stops between an insert's
/// raw events and its views' rows keeps the events alone, and the insert retried elsewhere is
/// deduplicated without running the views. Here the views are detached while the events of
/// three hours go in; `tally visits` puts back their count and copy before it stores those
/// hours, each once, and the stored visits answer as the raw events.
#[tokio::test]
async fn issue_17_events_an_insert_wrote_without_its_views_are_put_back_before_visits_are_stored() {
    let rows = generated_traffic(1000);
    let mut hours: Vec<i64> = rows
        .iter()
        .map(|r| r["ts"].as_i64().unwrap() / 3600)
        .collect();
    hours.sort_unstable();
    hours.dedup();
    let missed_hours = [hours[20], hours[21], hours[60]];
    let (missed, kept): (Vec<Value>, Vec<Value>) = rows
        .into_iter()
        .partition(|r| missed_hours.contains(&(r["ts"].as_i64().unwrap() / 3600)));
    let (_raw_setup, raw, setup) = raw_and_by_hour("views_missed", &kept, true).await;
    let db = setup.db.clone();
    insert(&raw.db, &missed).await;
    for view in ["events_minutes_mv", "events_by_hour_mv"] {
        ch(&format!("DETACH TABLE {db}.{view}")).await;
    }
    insert(&db, &missed).await;
    for view in ["events_minutes_mv", "events_by_hour_mv"] {
        ch(&format!("ATTACH TABLE {db}.{view}")).await;
    }
    let counts = || async {
        (
            ch_count(&format!("SELECT count() FROM {db}.events")).await,
            ch_count(&format!(
                "SELECT sum(n) FROM {db}.events_minutes WHERE site != ''"
            ))
            .await,
            ch_count(&format!(
                "SELECT count() FROM {db}.events_by_hour WHERE site != ''"
            ))
            .await,
            ch_count(&format!(
                "SELECT uniqExact(event_id) FROM {db}.events_by_hour WHERE site != ''"
            ))
            .await,
        )
    };
    let (events, counted, copied, _) = counts().await;
    let n = missed.len() as u64;
    assert!(n > 20, "{n} events in the hours without views");
    assert_eq!(
        (counted, copied),
        (events - n, events - n),
        "the views missed them"
    );

    let out = store_by_the_hour(&setup);
    assert!(out.contains("were put back"), "{out}");
    assert_eq!(
        counts().await,
        (events, events, events, events),
        "every event counted and copied once"
    );
    // A second run finds nothing missing and nothing to compute.
    let again = store_by_the_hour(&setup);
    assert!(!again.contains("were put back"), "{again}");
    assert_eq!(counts().await, (events, events, events, events));
    assert_eq!(
        stored_state(&db, "s.example").await.0,
        0,
        "nothing left due"
    );

    let stored = setup.start().await;
    let range = json!(["2026-03-27", "2026-03-31"]);
    let queries = compared_queries(
        &range,
        &[json!([])],
        &[
            None,
            Some("event:page"),
            Some("time:hour"),
            Some("visit:entry_page"),
        ],
    );
    let mut differ = Vec::new();
    let compared = compare_answers(&raw, &stored, "", &queries, &mut differ).await;
    assert_none_differ(&differ, compared);
}

/// The open tail read from `events_by_hour` and the carry the visit job left before it: the
/// generated traffic moved to end now, its hours stored up to the last due one by `tally visits`
/// (an hour per batch, busier hours in visitor ranges, each leaving its carry), so that reports
/// on the last days read the last hours' visits from the tail, which answers as when every visit
/// is built from raw events.
#[tokio::test]
async fn issue_14_the_open_tail_read_by_the_hour_answers_as_the_raw_events() {
    let now = Timestamp::now();
    // The traffic's five days end at now less ten minutes; nothing after now, nothing older than
    // two days (the reports compare the last three local days).
    let shift =
        (now - SignedDuration::from_mins(10)).as_second() - at("2026-04-01T00:00:00Z").as_second();
    let rows: Vec<Value> = generated_traffic(3000)
        .into_iter()
        .filter_map(|mut r| {
            let ts = r["ts"].as_i64().unwrap() + shift;
            r["ts"] = json!(ts);
            (ts < now.as_second() - 60 && ts > now.as_second() - 2 * 86_400).then_some(r)
        })
        .collect();
    // The per-minute counts without their mark too, so that the tail's first hour is found
    // from them, not from the raw events.
    let (_raw_setup, raw, setup) = raw_and_by_hour("tail", &rows, true).await;
    let db = setup.db.clone();
    store_by_the_hour(&setup);
    // Stored up to the last due hour, which left its carry; the last hour or two are the tail.
    let (unstored, stored_hours) = stored_state(&db, "s.example").await;
    assert!(
        unstored >= 1 && stored_hours > 24,
        "{unstored} {stored_hours}"
    );
    let in_carry = ch_count(&format!(
        "SELECT count() FROM {db}.visit_carry WHERE (slice, version) IN (SELECT slice, \
         max(version) FROM {db}.visit_slices WHERE done = 1 AND carry = 1 GROUP BY slice \
         ORDER BY slice DESC LIMIT 1)"
    ))
    .await;
    assert!(in_carry > 0, "the last stored hour left no open visit");
    let stored = setup.start().await;

    let today = now
        .to_zoned(jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap())
        .date();
    let range = json!([
        (today - jiff::Span::new().days(2)).to_string(),
        today.to_string()
    ]);
    let queries = compared_queries(
        &range,
        &[
            json!([]),
            json!([["is", "visit:country", ["NL"]]]),
            json!([["contains", "event:page", ["afval"]]]),
        ],
        &[
            None,
            Some("visit:entry_page"),
            Some("visit:source"),
            Some("event:page"),
            Some("time:hour"),
        ],
    );
    let mut differ = Vec::new();
    let compared = compare_answers(&raw, &stored, "", &queries, &mut differ).await;
    assert_none_differ(&differ, compared);
    let by_hour = metric(
        &stored.metrics().await,
        "tally_stats_queries_total{source=\"tail_by_hour\"}",
    );
    assert!(by_hour > 0.0, "no report read the tail by the hour");
}

/// An event that arrives late in the hour before a carried batch (a visit from 10:50 to 11:10
/// was stored by the 11:00 batch from the 10:00 batch's carry; then its 10:40 pageview comes):
/// both hours are computed again, the 10:00 batch leaves a new carry, the 11:00 batch reads it,
/// and the visit is stored whole, with its new entry page.
#[tokio::test]
async fn issue_14_a_late_event_before_a_carried_batch_reaches_the_visit() {
    let setup = Setup::new("carry_late").with(&site_config());
    migrate(&setup);
    let db = setup.db.clone();
    by_hour_from_the_start(&db).await;
    let at_ = |hm: &str| at(&format!("2026-02-11T{hm}:00Z"));
    insert(
        &db,
        &[
            event("s.example", at_("10:50"), 903, "pageview", "/b", json!({})),
            event("s.example", at_("11:10"), 903, "pageview", "/c", json!({})),
            event("s.example", at_("12:40"), 904, "pageview", "/x", json!({})),
        ],
    )
    .await;
    let config = setup.config_path();
    let hourly = || {
        let out = tally_command(&[
            "visits",
            "--batch-hours",
            "1",
            "--config",
            &config.to_string_lossy(),
        ]);
        assert!(out.status.success(), "{out:?}");
    };
    hourly();
    let day = json!(["2026-02-11", "2026-02-11"]);
    let metrics = ["visits", "pageviews", "visit_duration"];
    let carried = format!("SELECT count() FROM {db}.visit_carry WHERE visitor = 903");
    assert_eq!(
        ch_count(&carried).await,
        1,
        "10:50 carried from the 10:00 batch"
    );
    // A collector to ask, stopped again before the late event: its own visit job would store
    // the hours in batches of its own.
    let t = setup.start().await;
    assert_eq!(
        totals(&t, "s.example", &metrics, day.clone(), json!([])).await,
        vec![2.0, 3.0, 600.0]
    );
    t.terminate();
    insert(
        &db,
        &[event(
            "s.example",
            at_("10:40"),
            903,
            "pageview",
            "/a",
            json!({}),
        )],
    )
    .await;
    hourly();
    assert_eq!(ch_count(&carried).await, 3, "10:40 and 10:50 carried again");
    // The day's rollup redone before a collector answers from it (the collector's own rollup
    // job would redo it too, but maybe after the report is asked).
    roll_up(&setup);
    let t = setup.start().await;
    assert_eq!(
        totals(&t, "s.example", &metrics, day.clone(), json!([])).await,
        vec![2.0, 4.0, 900.0],
        "the visit from 10:40 to 11:10 and the one at 12:40"
    );
    let entries = results(
        &t,
        json!({"site_id": "s.example", "metrics": ["visits"], "date_range": day,
               "dimensions": ["visit:entry_page"]}),
    )
    .await;
    assert_eq!(
        entries,
        json!([{"metrics": [1], "dimensions": ["/a"]}, {"metrics": [1], "dimensions": ["/x"]}])
    );
}

/// A report with a page filter reads the stored rows of the matching pages, ordered by page
/// (`visit_pages`), once every slice it reads has them: before that (slices stored before
/// migration 0009, simulated here by marking every slice uncopied) it reads `visits`; `tally
/// visits` copies such slices; either way every answer is the raw events' answer. Covers each
/// operator the key takes (`is`, wildcard, `contains`, `matches`, case-insensitive), a visit's
/// copies (a visit counted once, on its first matching page or, grouped by page, its entry
/// page), and filters combined with one on the key's pages that is not the key.
#[tokio::test]
async fn issue_14_a_page_filter_reads_the_rows_of_its_pages_and_answers_the_same() {
    let RawAndStored {
        _raw_setup: _keep,
        raw,
        stored_setup,
        stored,
        ..
    } = raw_and_stored("bypage", 1500).await;
    let db = &stored.db;
    // Every visit row is copied once per page it viewed; pageview and event rows once.
    let (visits, copies) = (
        ch_count(&format!("SELECT count() FROM {db}.visits")).await,
        ch_count(&format!("SELECT count() FROM {db}.visit_pages")).await,
    );
    let pages_viewed = ch_count(&format!(
        "SELECT sum(length(pages_path)) - count() FROM {db}.visits WHERE kind = 0"
    ))
    .await;
    assert_eq!(copies, visits + pages_viewed);

    // As if stored before migration 0009: no slice names a copy (the copies already written
    // stay, under versions no marker names).
    ch(&format!(
        "CREATE TABLE {db}.visit_slices_old AS {db}.visit_slices"
    ))
    .await;
    ch(&format!(
        "INSERT INTO {db}.visit_slices_old SELECT site, slice, version, done, at, events, visits, \
         first_start, 0, carry FROM {db}.visit_slices"
    ))
    .await;
    ch(&format!("DROP TABLE {db}.visit_slices")).await;
    ch(&format!(
        "RENAME TABLE {db}.visit_slices_old TO {db}.visit_slices"
    ))
    .await;

    let metrics = [
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
        "time_on_page",
        "scroll_depth",
        "events",
    ];
    let filters = [
        json!([["contains", "event:page", ["afval"]]]),
        json!([["is", "event:page", ["/contact", "/werk"]]]),
        json!([["is", "event:page", ["/nieuws/*"]]]),
        json!([["matches", "event:page", ["^/(paspoort|werk)$"]]]),
        json!([["contains", "event:page", ["AFVAL"], {"case_sensitive": false}]]),
        json!([
            ["is", "visit:country", ["NL"]],
            ["contains", "event:page", ["/"]],
            ["is_not", "event:page", ["/"]],
            ["is", "visit:source", ["Google", "Direct / None"]]
        ]),
    ];
    let dimensions = [
        json!([]),
        json!(["event:page"]),
        json!(["visit:entry_page"]),
        json!(["visit:exit_page"]),
        json!(["visit:source"]),
        json!(["visit:country"]),
        json!(["time:day"]),
        json!(["event:hostname"]),
        json!(["visit:source", "event:page"]),
    ];
    let range = json!(["2026-03-27", "2026-03-31"]);
    let mut queries = Vec::new();
    for f in &filters {
        for d in &dimensions {
            queries.push(json!({"site_id": "s.example", "metrics": metrics,
                "date_range": range, "filters": f, "dimensions": d}));
        }
        queries.push(
            json!({"site_id": "s.example", "metrics": ["visitors", "percentage"],
            "date_range": range, "filters": f, "dimensions": ["visit:country"]}),
        );
    }
    let by_page = |text: &str| metric(text, "tally_stats_queries_total{source=\"by_page\"}");
    let results = |s: &str| {
        serde_json::from_str::<Value>(s)
            .map(|v| v["results"].clone())
            .unwrap_or(Value::Null)
    };
    let mut differ = Vec::new();
    for round in ["uncopied slices", "copied slices"] {
        if round == "copied slices" {
            let out = store_visits(&stored_setup);
            assert!(
                out.contains("hour(s) stored earlier copied by page"),
                "{out}"
            );
            assert_eq!(
                ch_count(&format!(
                    "SELECT count() FROM (SELECT slice, argMax(pages, (version, pages)) AS p \
                     FROM {db}.visit_slices WHERE done = 1 GROUP BY slice) WHERE p = 0"
                ))
                .await,
                0,
                "every slice copied"
            );
        }
        let before = by_page(&stored.metrics().await);
        for q in &queries {
            let (s1, a) = post_query(&raw.base, secret(&json!("fixture")), q).await;
            let (s2, b) = post_query(&stored.base, secret(&json!("fixture")), q).await;
            if s1 != 200 || s2 != 200 || results(&a) != results(&b) || results(&a).is_null() {
                differ.push(format!("{round}: {q}\n  raw:    {a}\n  stored: {b}"));
            }
        }
        let read = by_page(&stored.metrics().await) - before;
        if round == "uncopied slices" {
            assert_eq!(
                read, 0.0,
                "no report reads by page before the slices are copied"
            );
        } else {
            assert!(
                read >= queries.len() as f64,
                "every report read by page: {read} of {}",
                queries.len()
            );
        }
    }
    assert_none_differ(&differ, queries.len() * 2);
}

/// The median time on page of a report ordered by another metric is read for the rows shown
/// only, after the rest of the report came from rollups (`Stats::shown_medians`). Each shown
/// row's median is the one the whole report gives when ordered by the median (which reads every
/// group's median in one pass), for page, source, day and two-dimension breakdowns, with and
/// without filters, on a cut page (limit and offset) and on a whole one.
#[tokio::test]
async fn issue_14_median_time_on_page_of_the_rows_shown_is_the_whole_reports() {
    let rows = generated_traffic(1500);
    let setup = Setup::new("shown_medians").with(&site_config());
    let t = setup.start().await;
    for chunk in rows.chunks(5000) {
        insert(&t.db, chunk).await;
    }
    store_visits(&setup);
    roll_up(&setup);
    let range = json!(["2026-03-27", "2026-03-31"]);
    let metrics = json!(["visitors", "pageviews", "time_on_page_median"]);
    let medians = |r: &Value| -> Vec<(Value, Value)> {
        r.as_array()
            .unwrap()
            .iter()
            .map(|row| (row["dimensions"].clone(), row["metrics"][2].clone()))
            .collect()
    };
    let rollup_reads = |text: &str| metric(text, "tally_stats_queries_total{source=\"rollup\"}");
    let mut checked = 0;
    for dims in [
        json!(["event:page"]),
        json!(["visit:source"]),
        json!(["time:day"]),
        json!(["visit:country", "event:page"]),
    ] {
        for filters in [
            json!([]),
            json!([["is", "visit:country", ["NL"]]]),
            json!([
                ["contains", "event:page", ["afval"]],
                ["is_not", "visit:source", ["Google"]]
            ]),
        ] {
            let base = json!({"site_id": "s.example", "metrics": metrics, "date_range": range,
                "dimensions": dims, "filters": filters});
            let mut by_median = base.clone();
            by_median["order_by"] = json!([["time_on_page_median", "desc"]]);
            let whole: std::collections::HashMap<String, Value> =
                medians(&results(&t, by_median).await)
                    .into_iter()
                    .map(|(d, m)| (d.to_string(), m))
                    .collect();
            assert!(whole.len() >= 2, "{base}: {whole:?}");
            for pagination in [json!({"limit": 3, "offset": 1}), json!({"limit": 1000})] {
                let mut shown = base.clone();
                shown["pagination"] = pagination.clone();
                let before = t.metrics().await;
                let got = medians(&results(&t, shown.clone()).await);
                let after = t.metrics().await;
                assert!(!got.is_empty(), "{shown}");
                let (limit, offset) = (
                    pagination["limit"].as_u64().unwrap() as usize,
                    pagination["offset"].as_u64().unwrap_or(0) as usize,
                );
                assert_eq!(
                    got.len(),
                    whole.len().saturating_sub(offset).min(limit),
                    "{shown}"
                );
                for (d, m) in &got {
                    assert_eq!(Some(m), whole.get(&d.to_string()), "{shown}: row {d}");
                    assert!(m.is_number(), "{shown}: row {d} has a median");
                    checked += 1;
                }
                // Without filters the rows themselves come from rollups.
                if filters == json!([]) {
                    assert!(
                        rollup_reads(&after) > rollup_reads(&before),
                        "{shown} read rollups"
                    );
                }
            }
        }
    }
    println!("{checked} medians of shown rows checked");
}

/// The report engine of `setup`'s config, in this process.
fn engine(setup: &Setup) -> tally::stats::Stats {
    let config = tally::Config::load(&setup.config_path()).expect("config");
    tally::stats::Stats::new(
        &config,
        std::sync::Arc::new(tally::cluster::Cluster::new(&config.clickhouse)),
        std::sync::Arc::new(tally::metrics::Metrics::new()),
    )
}

/// Every hand-computed case whose filters a dashboard page would prefilter answers the same
/// read from the prefiltered table (`Stats::run_with`) as by itself (`Stats::run`, which the
/// fixture checks); how many such cases there are.
pub async fn prefiltered_cases_answer_the_same(setup: &Setup) -> usize {
    let stats = engine(setup);
    let now = Timestamp::now();
    let mut prefiltered = 0;
    for case in cases() {
        if case["expect_status"] != 200 {
            continue;
        }
        let request = Request::parse(case["query"].to_string().as_bytes()).expect("a query");
        let Some(pre) = stats.prefilter(&request.query, now).await else {
            continue;
        };
        let own = stats.run(&request.query, now).await.expect("report");
        let from_table = stats
            .run_with(&request.query, now, Some(&pre))
            .await
            .expect("report from the table");
        assert!(pre.reads() > 0, "{}: read the table", case["name"]);
        assert_eq!(
            request.answer_json(&own),
            request.answer_json(&from_table),
            "{}",
            case["name"]
        );
        pre.release().await;
        prefiltered += 1;
    }
    prefiltered
}

/// A filtered dashboard page selects the rows its filters keep once, into a temporary table of
/// a ClickHouse session, and its panels' reports read that table (`Stats::prefilter`,
/// `Stats::run_with`). Every report a page asks, and more (comparisons, percentages, two
/// dimensions, medians of the rows shown), answers exactly what it answers reading the visits
/// itself, for page filters on visit and page rows (`is`, `contains`, wildcards, negated) with
/// other filters and for two filters on visit dimensions, while every visit is still in the open tail and once all are stored. Filters
/// the rollups answer, and filters that keep more rows than the bound, are not prefiltered. The
/// dashboard's own page reads its panels from the table.
#[tokio::test]
async fn issue_14_a_filtered_dashboard_page_reads_its_rows_once_and_answers_the_same() {
    const SHARE: &str = "share-secret-for-s-example-0123456789";
    let rows = generated_traffic(1500);
    let setup = Setup::new("prefiltered").with(&format!(
        "{}\n[dashboard]\n\n[[dashboard.share_links]]\nsite = \"s.example\"\nsha256 = \"{}\"\nname = \"bench\"\n",
        site_config(),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(SHARE.as_bytes())),
    ));
    let t = setup.start().await;
    for chunk in rows.chunks(5000) {
        insert(&t.db, chunk).await;
    }
    let stats = engine(&setup);
    let now = Timestamp::now();
    let range = json!(["2026-03-27", "2026-03-31"]);
    let filter_sets = [
        json!([
            ["is", "visit:country", ["NL"]],
            ["is", "visit:source", ["Google"]],
            ["is", "event:page", ["/afval"]]
        ]),
        json!([
            ["contains", "event:page", ["afval"]],
            ["is_not", "visit:source", ["Google"]]
        ]),
        json!([
            ["is", "event:page", ["/nieuws/*"]],
            ["is_not", "visit:country", ["DE"]]
        ]),
        json!([
            ["contains_not", "event:page", ["kalender"]],
            ["is", "visit:device", ["Mobile"]],
            ["is", "visit:entry_page", ["/"]]
        ]),
        // No page filter: the table leaves the visits' pages out.
        json!([
            ["is", "visit:country", ["NL"]],
            ["is_not", "visit:source", ["Google"]]
        ]),
    ];
    let metrics = json!([
        "visitors",
        "visits",
        "pageviews",
        "bounce_rate",
        "visit_duration",
        "views_per_visit",
        "time_on_page",
        "scroll_depth"
    ]);
    let queries = |filters: &Value| -> Vec<Value> {
        let q = |more: Value| {
            let mut q = json!({"site_id": "s.example", "date_range": range, "filters": filters,
                "metrics": metrics});
            for (k, v) in more.as_object().unwrap() {
                q[k] = v.clone();
            }
            q
        };
        let mut all = vec![
            q(
                json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate",
                "visit_duration", "visit_duration_median", "visit_duration_p75",
                "visit_duration_p90"], "include": {"comparisons": {"mode": "previous_period"}}}),
            ),
            q(json!({"dimensions": ["time:day"]})),
            q(json!({"dimensions": ["time:weekday", "time:hour_of_day"]})),
            q(json!({"dimensions": ["time:hour_of_day"]})),
            q(json!({"dimensions": ["visit:duration_bucket"], "metrics": ["visits"]})),
            q(json!({"dimensions": ["visit:country"], "metrics": ["visitors", "percentage"]})),
            q(json!({"dimensions": ["visit:source", "event:page"], "metrics": ["visitors"]})),
            q(
                json!({"dimensions": ["event:page"], "metrics": ["visitors", "pageviews",
                "time_on_page_median"], "pagination": {"limit": 3}}),
            ),
            q(
                json!({"dimensions": ["event:page"], "metrics": ["visitors", "time_on_page_median"],
                "order_by": [["time_on_page_median", "desc"]]}),
            ),
        ];
        for d in [
            "event:page",
            "event:hostname",
            "visit:entry_page",
            "visit:exit_page",
            "visit:source",
            "visit:referrer",
            "visit:utm_campaign",
            "visit:country",
            "visit:device",
            "visit:browser",
            "visit:os",
        ] {
            all.push(q(json!({"dimensions": [d]})));
        }
        all
    };
    let parse = |q: &Value| Request::parse(q.to_string().as_bytes()).expect("a valid query");
    let mut compared = 0;
    for round in ["open tail", "stored visits"] {
        if round == "stored visits" {
            store_visits(&setup);
            roll_up(&setup);
        }
        for filters in &filter_sets {
            let queries = queries(filters);
            let head = parse(&queries[0]).query;
            let pre = stats
                .prefilter(&head, now)
                .await
                .unwrap_or_else(|| panic!("{round}: {filters} is prefiltered"));
            for q in &queries {
                let request = parse(q);
                let own = stats.run(&request.query, now).await.expect("report");
                let read = pre.reads();
                let from_table = stats
                    .run_with(&request.query, now, Some(&pre))
                    .await
                    .expect("report from the table");
                assert!(pre.reads() > read, "{round}: {q} read the table");
                let (own, from_table) =
                    (request.answer_json(&own), request.answer_json(&from_table));
                assert!(
                    !own["results"].as_array().unwrap().is_empty(),
                    "{round}: {q} has rows"
                );
                assert_eq!(own, from_table, "{round}: {q}");
                compared += 1;
            }
            pre.release().await;
            // Past the bound, each report reads the visits itself.
            assert!(
                stats.prefilter_at_most(&head, now, 3).await.is_none(),
                "{round}: {filters} keeps more than 3 rows"
            );
        }
        // No filter, or one the rollups keep: nothing to prefilter.
        for filters in [json!([]), json!([["is", "visit:country", ["NL"]]])] {
            let q = parse(&json!({"site_id": "s.example", "date_range": range,
                "filters": filters, "metrics": ["visitors"]}));
            assert!(stats.prefilter(&q.query, now).await.is_none(), "{filters}");
        }
    }
    println!("{compared} reports compared with and without the prefiltered table");

    // The dashboard page with three filters reads its panels from the table.
    let prefiltered =
        |text: &str| metric(text, "tally_stats_queries_total{source=\"prefiltered\"}");
    let before = prefiltered(&t.metrics().await);
    let page = reqwest::get(format!(
        "{}/share/{SHARE}?period=custom&from=2026-03-27&to=2026-03-31&country=NL&source=Google&page=%2Fafval",
        t.base
    ))
    .await
    .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-panel=\"pages\""),
        "the page shows its tables"
    );
    let after = prefiltered(&t.metrics().await);
    assert!(
        after >= before + 10.0,
        "panels read the table: {before} → {after}"
    );
}
