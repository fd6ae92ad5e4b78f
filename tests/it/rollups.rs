//! Rollups and raw events agree: every query of the reports fixture gives the same answer from a
//! tally reading raw events only and from one reading the rollup tables (`tally rollup`).

use serde_json::Value;

use crate::reports::{config, fixture, load_events, post_query, secret};
use crate::support::{metric, tally_command, Setup, Tally};

#[tokio::test]
async fn rollup_and_raw_event_queries_agree() {
    let raw_setup = Setup::new("rollups")
        .with(&config())
        .with("[rollups]\nenabled = false\n[visits]\nstore = false\n");
    let raw = raw_setup.start().await;
    load_events(&raw_setup.db).await;

    let mut rolled_setup = Setup::new("rollups").with(&config());
    rolled_setup.db = raw_setup.db.clone();
    let config = rolled_setup.config_path();
    // Rollups are summed from stored visits: store them first.
    let out = tally_command(&["visits", "--config", &config.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (days, stdout) = roll_up(&config.to_string_lossy());
    // Both sites, from their first fixture day (26 March) up to the last complete day.
    assert!(days > 2 * 200, "site-days rolled up: {stdout}");
    let rolled = rolled_setup.start().await;

    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("cases.json")).unwrap()).unwrap();
    let mut compared = 0;
    let mut failures = Vec::new();
    for case in cases.iter().filter(|c| c["expect_status"] == 200) {
        let token = secret(&case["token"]);
        let (s1, a) = post_query(&raw.base, token, &case["query"]).await;
        let (s2, b) = post_query(&rolled.base, token, &case["query"]).await;
        let a: Value = serde_json::from_str(&a).unwrap();
        let b: Value = serde_json::from_str(&b).unwrap();
        if s1 != 200 || s2 != 200 || a["results"] != b["results"] || a["meta"] != b["meta"] {
            failures.push(format!(
                "{}:\n  raw    ({s1}) {}\n  rollup ({s2}) {}",
                case["name"], a["results"], b["results"]
            ));
        }
        compared += 1;
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} queries differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The comparison means something only if rollups really answered.
    let raw_metrics = raw.metrics().await;
    let rolled_metrics = rolled.metrics().await;
    let from_rollups = metric(
        &rolled_metrics,
        "tally_stats_queries_total{source=\"rollup\"}",
    );
    assert_eq!(
        metric(&raw_metrics, "tally_stats_queries_total{source=\"rollup\"}"),
        0.0
    );
    assert!(
        from_rollups >= 20.0,
        "only {from_rollups} of {compared} queries were answered from rollups"
    );
    println!("{compared} queries agree; {from_rollups} answered from rollups");

    issue_14_one_is_filter_reads_its_dimension_rows(&raw, &rolled).await;
    issue_14_days_rolled_up_before_pairs_are_computed_again(
        &raw,
        &rolled,
        &rolled_setup.config_path().to_string_lossy(),
        &raw_setup.db,
    )
    .await;
    issue_14_a_percentage_over_unit_rows_reads_them_once(&raw, &rolled).await;
    issue_14_medians_of_pages_read_their_seconds_on_page_rollup(
        &raw,
        &rolled,
        &rolled_setup.config_path().to_string_lossy(),
        &raw_setup.db,
    )
    .await;

    // A period that starts long before the first event is still answered from rollups (the
    // empty days before it need no raw-event pass), with the same numbers.
    let long = serde_json::json!({"site_id": "a.example", "metrics": ["visitors", "pageviews", "visits", "bounce_rate"],
        "date_range": ["2025-12-01", "2026-04-30"], "dimensions": ["time:month"]});
    let fixture_token = secret(&Value::from("fixture"));
    let rollup_before = metric(
        &rolled.metrics().await,
        "tally_stats_queries_total{source=\"rollup\"}",
    );
    let a = post_query(&raw.base, fixture_token, &long).await.1;
    let b = post_query(&rolled.base, fixture_token, &long).await.1;
    let rollup_after = metric(
        &rolled.metrics().await,
        "tally_stats_queries_total{source=\"rollup\"}",
    );
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    assert_eq!(results(&a), results(&b));
    assert!(
        results(&b).as_array().unwrap().len() == 1,
        "only March has data: {b}"
    );
    assert_eq!(rollup_after - rollup_before, 1.0, "answered from rollups");

    // A second computation of every day, as when two collectors roll up the same day: first its
    // rows without its marker (a computation cut short), then the marker too. Neither changes
    // an answer: half-written days are unseen, and one version per day is read.
    let db = &raw_setup.db;
    let pages = serde_json::json!({"site_id": "a.example", "metrics": ["visitors", "pageviews", "visits"],
        "date_range": ["2026-03-26", "2026-03-31"], "dimensions": ["event:page"]});
    let before = post_query(&rolled.base, secret(&Value::from("fixture")), &pages)
        .await
        .1;
    crate::support::ch(&format!(
        "INSERT INTO {db}.rollup_daily SELECT site, day, dimension, value, pageviews, visitors, \
         visits, bounces, duration_sum, visit_pageviews, page_visits, page_ms_sum, scroll_count, \
         scroll_sum, version + 1, batch FROM {db}.rollup_daily"
    ))
    .await;
    crate::support::ch(&format!(
        "INSERT INTO {db}.rollup_pairs SELECT site, day, filter, filter_value, dimension, value, \
         pageviews, visitors, visits, bounces, duration_sum, visit_pageviews, page_visits, \
         page_ms_sum, scroll_count, scroll_sum, version + 1 FROM {db}.rollup_pairs"
    ))
    .await;
    let partial = post_query(&rolled.base, secret(&Value::from("fixture")), &pages)
        .await
        .1;
    crate::support::ch(&format!(
        "INSERT INTO {db}.rollup_page_seconds SELECT site, day, dimension, value, seconds, \
         page_visits, version + 1 FROM {db}.rollup_page_seconds"
    ))
    .await;
    crate::support::ch(&format!(
        "INSERT INTO {db}.rollup_days SELECT site, day, computed, events, version + 1, pairs, \
         page_seconds FROM {db}.rollup_days"
    ))
    .await;
    let twice = post_query(&rolled.base, secret(&Value::from("fixture")), &pages)
        .await
        .1;
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    assert_eq!(
        results(&before),
        results(&partial),
        "rows without a marker are not read"
    );
    assert_eq!(
        results(&before),
        results(&twice),
        "a day computed twice is counted once"
    );
    assert!(results(&before).as_array().unwrap().len() > 3);

    // An event that arrives for a day after it was rolled up (a late replay) is in raw answers
    // at once, and in rollup answers once its visit is stored again and the day rolled up
    // again (here by `tally rollup --redo`; the jobs also do it by themselves).
    crate::support::ch(&format!(
        "INSERT INTO {db}.events (site, ts, visitor, name, host, path, event_id) VALUES \
         ('a.example', toDateTime('2026-03-30 10:00:00', 'UTC'), 424242, 'pageview', 'a.example', '/late', 999999)"
    ))
    .await;
    let raw_late = results(
        &post_query(&raw.base, secret(&Value::from("fixture")), &pages)
            .await
            .1,
    );
    let stale = results(
        &post_query(&rolled.base, secret(&Value::from("fixture")), &pages)
            .await
            .1,
    );
    assert_ne!(
        raw_late, stale,
        "the rollup does not see the late event yet"
    );
    let config = rolled_setup.config_path();
    // The visit job stores the late event's visit again by itself (its hour's raw events
    // changed); the rollup is then computed again from the stored visits.
    let out = tally_command(&["visits", "--config", &config.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tally_command(&[
        "rollup",
        "--redo",
        "2026-03-30",
        "2026-03-30",
        "--config",
        &config.to_string_lossy(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 site-day(s) computed again"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let redone = results(
        &post_query(&rolled.base, secret(&Value::from("fixture")), &pages)
            .await
            .1,
    );
    assert_eq!(raw_late, redone, "after --redo the rollup has it");
}

/// Issue 14: a report filtered by one `is` on a visit dimension reads that value's rollup rows,
/// and answers exactly as the raw-event tally does: aggregates with the previous period, day
/// series, weekdays and the filtered dimension's own breakdown, for every such dimension and
/// its most frequent values. Filters the rollup rows cannot answer exactly (two values,
/// case-insensitive, pages, `is_not`) still agree, read from unit rows.
async fn issue_14_one_is_filter_reads_its_dimension_rows(raw: &Tally, rolled: &Tally) {
    let token = secret(&Value::from("fixture"));
    // The fixture's days (26-31 March) on both sides of the comparison: the previous period
    // (22-27 March) starts before the first rolled-up day, on days without events.
    let range = serde_json::json!(["2026-03-28", "2026-04-30"]);
    let metrics = serde_json::json!([
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
        "time_on_page",
        "scroll_depth",
        "bounces",
        "entries"
    ]);
    let from_rollups = |text: &str| metric(text, "tally_stats_queries_total{source=\"rollup\"}");
    let from_units = |text: &str| metric(text, "tally_stats_queries_total{source=\"raw\"}");
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    let mut failures = Vec::new();
    let mut sliced = 0;
    let mut rolled_up: Vec<Value> = Vec::new();
    let ask = |q: Value| async move {
        let (s1, a) = post_query(&raw.base, token, &q).await;
        let (s2, b) = post_query(&rolled.base, token, &q).await;
        (q, s1, a, s2, b)
    };
    for dimension in [
        "visit:entry_page",
        "visit:exit_page",
        "visit:source",
        "visit:referrer",
        "visit:utm_source",
        "visit:utm_medium",
        "visit:utm_campaign",
        "visit:country",
        "visit:device",
        "visit:browser",
        "visit:os",
    ] {
        let (_, status, values, _, _) = ask(serde_json::json!({"site_id": "a.example",
            "metrics": ["visits"], "date_range": range, "dimensions": [dimension]}))
        .await;
        assert_eq!(status, 200, "{values}");
        let values = results(&values);
        let values: Vec<String> = values
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|r| r["dimensions"][0].as_str().unwrap().to_string())
            .collect();
        assert!(!values.is_empty(), "{dimension}: the fixture has values");
        let paired = PAIRED.contains(&dimension);
        for (i, value) in values.iter().enumerate() {
            let filters = serde_json::json!([["is", dimension, [value]]]);
            let mut queries = vec![
                serde_json::json!({"site_id": "a.example", "metrics": metrics, "date_range": range,
                    "filters": filters, "include": {"comparisons": {"mode": "previous_period"}}}),
                serde_json::json!({"site_id": "a.example", "metrics": metrics, "date_range": range,
                    "filters": filters, "dimensions": ["time:day"]}),
                serde_json::json!({"site_id": "a.example", "metrics": metrics, "date_range": range,
                    "filters": filters, "dimensions": ["time:week"]}),
                serde_json::json!({"site_id": "a.example", "metrics": metrics, "date_range": range,
                    "filters": filters, "dimensions": ["time:weekday"]}),
                serde_json::json!({"site_id": "a.example", "metrics": ["visitors", "percentage", "visits"],
                    "date_range": range, "filters": filters, "dimensions": [dimension]}),
            ];
            // A paired filter's two most frequent values, by every other dimension.
            if paired && i < 2 {
                queries.extend(breakdowns(dimension).map(|dims| {
                    serde_json::json!({"site_id": "a.example", "metrics": metrics,
                        "date_range": range, "filters": filters, "dimensions": dims})
                }));
                queries.push(
                    serde_json::json!({"site_id": "a.example", "metrics": metrics,
                    "date_range": ["2026-03-30", "2026-03-30"], "filters": filters,
                    "dimensions": ["time:hour"]}),
                );
                queries.push(serde_json::json!({"site_id": "a.example", "date_range": range,
                    "metrics": ["visit_duration_median", "visit_duration_p75", "visit_duration_p90", "visits"],
                    "filters": filters, "include": {"comparisons": {"mode": "previous_period"}}}));
            }
            rolled_up.extend(queries);
        }
    }
    // Two dimensions without a filter, one of them paired: all the pairs of its values.
    for dims in [
        serde_json::json!(["visit:source", "visit:country"]),
        serde_json::json!(["event:page", "visit:device"]),
        serde_json::json!(["visit:browser", "time:hour_of_day"]),
        serde_json::json!(["time:day", "visit:os"]),
        serde_json::json!(["visit:entry_page", "visit:utm_campaign"]),
    ] {
        rolled_up.push(
            serde_json::json!({"site_id": "a.example", "metrics": metrics,
            "date_range": range, "dimensions": dims}),
        );
    }
    for q in rolled_up {
        let before = rolled.metrics().await;
        let (q, s1, a, s2, b) = ask(q).await;
        let after = rolled.metrics().await;
        if s1 != 200 || s2 != 200 || results(&a) != results(&b) {
            failures.push(format!("{q}:\n  raw    ({s1}) {a}\n  rollup ({s2}) {b}"));
        }
        // Whole days, all rolled up: read from rollups alone.
        if from_rollups(&after) - from_rollups(&before) < 1.0
            || from_units(&after) != from_units(&before)
        {
            failures.push(format!("{q}: not answered from rollups alone"));
        }
        sliced += 1;
    }
    // What one value's rows cannot answer exactly is read from unit rows, and still agrees:
    // filters on dimensions with many values by another dimension,
    let mut unpaired: Vec<Value> = Vec::new();
    for (dimension, value) in [
        ("visit:entry_page", "/"),
        ("visit:exit_page", "/pricing"),
        ("visit:referrer", "www.google.com"),
        ("visit:utm_content", "(not set)"),
    ] {
        for dims in breakdowns(dimension).take(3) {
            unpaired.push(
                serde_json::json!({"site_id": "a.example", "metrics": metrics,
                "date_range": range, "filters": [["is", dimension, [value]]], "dimensions": dims}),
            );
        }
    }
    // (their duration percentiles too),
    unpaired.push(
        serde_json::json!({"site_id": "a.example", "date_range": range,
        "metrics": ["visit_duration_median", "visit_duration_p90"],
        "filters": [["is", "visit:exit_page", ["/pricing"]]]}),
    );
    // two dimensions neither of which is paired,
    unpaired.push(
        serde_json::json!({"site_id": "a.example", "metrics": metrics,
        "date_range": range, "dimensions": ["event:page", "visit:referrer"]}),
    );
    // and filters that are not one exact value.
    for filters in [
        serde_json::json!([["is", "visit:source", ["Google", "Direct / None"]]]),
        serde_json::json!([["is", "visit:source", ["google"], {"case_sensitive": false}]]),
        serde_json::json!([["is", "event:page", ["/"]]]),
        serde_json::json!([["is_not", "visit:country", ["NL"]]]),
        serde_json::json!([
            ["is", "visit:country", ["NL"]],
            ["is", "visit:device", ["Desktop"]]
        ]),
    ] {
        unpaired.push(
            serde_json::json!({"site_id": "a.example", "metrics": metrics,
            "date_range": range, "filters": filters}),
        );
    }
    for q in unpaired {
        let before = rolled.metrics().await;
        let (q, s1, a, s2, b) = ask(q).await;
        let after = rolled.metrics().await;
        if s1 != 200 || s2 != 200 || results(&a) != results(&b) {
            failures.push(format!("{q}:\n  raw    ({s1}) {a}\n  rollup ({s2}) {b}"));
        }
        if from_rollups(&after) != from_rollups(&before) {
            failures.push(format!("{q}: answered from rollups"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sliced} filtered queries:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "{sliced} queries with one `is` filter or two dimensions agree, answered from rollups"
    );
}

/// The dimensions a paired filter on `filter` is crossed with (see `schema/0007_rollup_pairs.sql`).
fn breakdowns(filter: &'static str) -> impl Iterator<Item = Value> {
    [
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
        "visit:duration_bucket",
        "time:hour_of_day",
    ]
    .into_iter()
    .filter(move |d| *d != filter)
    .map(|d| serde_json::json!([d]))
    .chain([serde_json::json!(["time:weekday", "time:hour_of_day"])])
}

/// The filter dimensions with pairs (`PAIRED` in src/stats/sql/rollups.rs).
const PAIRED: [&str; 8] = [
    "visit:source",
    "visit:utm_source",
    "visit:utm_medium",
    "visit:utm_campaign",
    "visit:country",
    "visit:device",
    "visit:browser",
    "visit:os",
];

/// Issue 14, the upgrade: days rolled up before `rollup_pairs` existed (their marker says
/// `pairs` = 0) answer a paired report from stored visits, with the same numbers, until the
/// rollup job computes them again by itself; reads of `rollup_daily` use them all along.
async fn issue_14_days_rolled_up_before_pairs_are_computed_again(
    raw: &Tally,
    rolled: &Tally,
    config: &str,
    db: &str,
) {
    // Every day computed once more without pairs, as tally before migration 0007 did.
    for table in ["rollup_daily", "rollup_durations"] {
        let columns = if table == "rollup_daily" {
            "site, day, dimension, value, pageviews, visitors, visits, bounces, duration_sum, \
             visit_pageviews, page_visits, page_ms_sum, scroll_count, scroll_sum"
        } else {
            "site, day, seconds, visits"
        };
        crate::support::ch(&format!(
            "INSERT INTO {db}.{table} ({columns}, version) \
             SELECT {columns}, version + 1 FROM {db}.{table} \
             WHERE (site, day, version) IN (SELECT site, day, max(version) FROM {db}.rollup_days GROUP BY site, day)"
        ))
        .await;
    }
    crate::support::ch(&format!(
        "INSERT INTO {db}.rollup_days (site, day, computed, events, version, pairs) \
         SELECT site, day, max(computed), argMax(events, version), max(version) + 1, 0 \
         FROM {db}.rollup_days GROUP BY site, day"
    ))
    .await;
    let token = secret(&Value::from("fixture"));
    let range = serde_json::json!(["2026-03-28", "2026-04-30"]);
    let paired = serde_json::json!({"site_id": "a.example", "metrics": ["visitors", "visits", "pageviews", "bounce_rate"],
        "date_range": range, "filters": [["is", "visit:country", ["NL"]]], "dimensions": ["event:page"]});
    let daily = serde_json::json!({"site_id": "a.example", "metrics": ["visitors", "visits", "pageviews", "bounce_rate"],
        "date_range": range, "filters": [["is", "visit:country", ["NL"]]], "dimensions": ["time:day"]});
    let from_rollups = |text: &str| metric(text, "tally_stats_queries_total{source=\"rollup\"}");
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    let expected = results(&post_query(&raw.base, token, &paired).await.1);
    assert!(expected.as_array().unwrap().len() > 1, "{expected}");

    let before = from_rollups(&rolled.metrics().await);
    let without = results(&post_query(&rolled.base, token, &paired).await.1);
    let between = from_rollups(&rolled.metrics().await);
    let by_day = results(&post_query(&rolled.base, token, &daily).await.1);
    let after = from_rollups(&rolled.metrics().await);
    assert_eq!(
        without, expected,
        "days without pairs: read from stored visits"
    );
    assert_eq!(between, before, "not from rollups");
    assert_eq!(
        by_day,
        results(&post_query(&raw.base, token, &daily).await.1)
    );
    assert_eq!(after, between + 1.0, "the value's own rows need no pairs");

    // The job computes the days without pairs again (here `tally rollup`, as it runs in serve).
    let (days, stdout) = roll_up(config);
    assert!(days > 2 * 200, "every site-day computed again: {stdout}");
    let again = results(&post_query(&rolled.base, token, &paired).await.1);
    assert_eq!(again, expected);
    assert_eq!(
        from_rollups(&rolled.metrics().await),
        after + 1.0,
        "read from pairs again"
    );
    let (_, stdout) = roll_up(config);
    assert!(
        stdout.starts_with("0 "),
        "nothing left to compute: {stdout}"
    );
}

/// Issue 14: a breakdown with `percentage` that reads unit rows (a filter the rollups cannot
/// answer) takes its denominator, the distinct visitors of all its rows, from the same pass:
/// one read of unit rows per report instead of two, with the raw-event tally's numbers. With
/// one `is` filter (rollups) the denominator is still asked on its own.
async fn issue_14_a_percentage_over_unit_rows_reads_them_once(raw: &Tally, rolled: &Tally) {
    let token = secret(&Value::from("fixture"));
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    let from_units = |text: &str| metric(text, "tally_stats_queries_total{source=\"raw\"}");
    let from_rollups = |text: &str| metric(text, "tally_stats_queries_total{source=\"rollup\"}");
    for (dimension, filters, reads_units) in [
        (
            "visit:country",
            serde_json::json!([["contains", "event:page", ["/"]]]),
            true,
        ),
        (
            "visit:source",
            serde_json::json!([["is", "visit:country", ["NL", "DE"]]]),
            true,
        ),
        (
            "visit:device",
            serde_json::json!([
                ["is_not", "visit:source", ["Google"]],
                ["contains", "event:page", ["/"]]
            ]),
            true,
        ),
        (
            "visit:source",
            serde_json::json!([["is", "visit:country", ["NL"]]]),
            false,
        ),
    ] {
        let q = serde_json::json!({"site_id": "a.example", "date_range": ["2026-03-26", "2026-03-31"],
            "metrics": ["visitors", "percentage"], "dimensions": [dimension], "filters": filters});
        let want = results(&post_query(&raw.base, token, &q).await.1);
        let rows = want.as_array().unwrap();
        assert!(rows.len() > 1, "{q}: {want}");
        // Percentages of one total: they add up to 100 when every visitor has one value.
        let sum: f64 = rows.iter().map(|r| r["metrics"][1].as_f64().unwrap()).sum();
        assert!(sum > 90.0 && sum < 110.0, "{q}: {want}");
        let before = rolled.metrics().await;
        let got = results(&post_query(&rolled.base, token, &q).await.1);
        let after = rolled.metrics().await;
        assert_eq!(got, want, "{q}");
        if reads_units {
            assert_eq!(
                from_units(&after) - from_units(&before),
                1.0,
                "one pass over unit rows: {q}"
            );
        } else {
            assert_eq!(from_units(&after), from_units(&before), "{q}");
            assert_eq!(
                from_rollups(&after) - from_rollups(&before),
                2.0,
                "the breakdown and its denominator from rollups: {q}"
            );
        }
    }
}

/// Issue 14: the median time on page of the pages a report shows, and of the whole site, is
/// read from `rollup_page_seconds` without filters, with the same numbers as the raw-event
/// tally: over rolled-up days alone, and over days of which the last are read from stored
/// visits (here: rolled up before migration 0008, which the rollup job then computes again).
async fn issue_14_medians_of_pages_read_their_seconds_on_page_rollup(
    raw: &Tally,
    rolled: &Tally,
    config: &str,
    db: &str,
) {
    let token = secret(&Value::from("fixture"));
    let range = serde_json::json!(["2026-03-26", "2026-03-31"]);
    let queries = [
        // Ordered by visitors: the median of the rows shown only (`shown_medians`).
        serde_json::json!({"site_id": "a.example", "date_range": range,
            "metrics": ["visitors", "pageviews", "time_on_page", "time_on_page_median"],
            "dimensions": ["event:page"], "pagination": {"limit": 4}}),
        // Ordered by the median: every page's.
        serde_json::json!({"site_id": "a.example", "date_range": range,
            "metrics": ["pageviews", "time_on_page_median"], "dimensions": ["event:page"],
            "order_by": [["time_on_page_median", "desc"]], "pagination": {"limit": 4}}),
        // The whole site.
        serde_json::json!({"site_id": "a.example", "date_range": range,
            "metrics": ["pageviews", "time_on_page_median"]}),
    ];
    let from_rollups = |text: &str| metric(text, "tally_stats_queries_total{source=\"rollup\"}");
    let from_units = |text: &str| metric(text, "tally_stats_queries_total{source=\"raw\"}");
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    let mut expected = Vec::new();
    for q in &queries {
        let want = results(&post_query(&raw.base, token, q).await.1);
        let rows = want.as_array().unwrap();
        assert!(!rows.is_empty(), "{want}");
        // A median that means something: not every page's 0 or missing.
        assert!(
            rows.iter().any(|r| r["metrics"]
                .as_array()
                .unwrap()
                .last()
                .and_then(Value::as_f64)
                .is_some_and(|m| m > 0.0)),
            "{want}"
        );
        expected.push(want);
    }
    let (before, after) = agree(rolled, token, &queries, &expected, "all days rolled up").await;
    assert_eq!(
        from_units(&after),
        from_units(&before),
        "no report read unit rows"
    );
    assert!(from_rollups(&after) >= from_rollups(&before) + 4.0);

    // The last three days as rolled up before migration 0008: their numbers, no seconds on page.
    let last_days = "day >= toDate('2026-03-29')";
    let current = format!(
        "(site, day, version) IN (SELECT site, day, max(version) FROM {db}.rollup_days GROUP BY site, day)"
    );
    for (table, columns) in [
        (
            "rollup_daily",
            "site, day, dimension, value, pageviews, visitors, visits, bounces, duration_sum, \
             visit_pageviews, page_visits, page_ms_sum, scroll_count, scroll_sum",
        ),
        ("rollup_durations", "site, day, seconds, visits"),
        (
            "rollup_pairs",
            "site, day, filter, filter_value, dimension, value, pageviews, visitors, visits, \
             bounces, duration_sum, visit_pageviews, page_visits, page_ms_sum, scroll_count, \
             scroll_sum",
        ),
    ] {
        crate::support::ch(&format!(
            "INSERT INTO {db}.{table} ({columns}, version) \
             SELECT {columns}, version + 1 FROM {db}.{table} WHERE {last_days} AND {current}"
        ))
        .await;
    }
    crate::support::ch(&format!(
        "INSERT INTO {db}.rollup_days (site, day, computed, events, version, pairs, page_seconds) \
         SELECT site, day, max(computed), argMax(events, version), max(version) + 1, 1, 0 \
         FROM {db}.rollup_days WHERE {last_days} GROUP BY site, day"
    ))
    .await;
    let (before, after) = agree(
        rolled,
        token,
        &queries,
        &expected,
        "three days from stored visits",
    )
    .await;
    assert!(
        from_rollups(&after) >= from_rollups(&before) + 4.0,
        "the first days still from rollups"
    );
    // The job computes those days again by itself (both sites' three days, at least).
    let (days, stdout) = roll_up(config);
    assert!(
        days >= 6,
        "the days without seconds on page computed again: {stdout}"
    );
    let (before, after) = agree(rolled, token, &queries, &expected, "computed again").await;
    assert_eq!(
        from_units(&after),
        from_units(&before),
        "no report read unit rows"
    );
    let (_, stdout) = roll_up(config);
    assert!(
        stdout.starts_with("0 "),
        "nothing left to compute: {stdout}"
    );
}

/// Asks `rolled` every query of `queries` and requires the answer of `expected` at the same
/// index (`what` says which state of the rollups this is); tally's metrics before and after.
async fn agree(
    rolled: &Tally,
    token: Option<&str>,
    queries: &[Value],
    expected: &[Value],
    what: &str,
) -> (String, String) {
    let before = rolled.metrics().await;
    for (q, want) in queries.iter().zip(expected) {
        let (status, body) = post_query(&rolled.base, token, q).await;
        let got = serde_json::from_str::<Value>(&body).unwrap()["results"].clone();
        assert_eq!((status, &got), (200, want), "{what}: {q}");
    }
    (before, rolled.metrics().await)
}

/// Runs `tally rollup` with `config`; the site-days it computed (the first number it prints)
/// and what it printed.
fn roll_up(config: &str) -> (u64, String) {
    let out = tally_command(&["rollup", "--config", config]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "tally rollup failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let days = stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (days, stdout)
}
