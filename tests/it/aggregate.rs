//! Issue 6, aggregate-only mode: with `privacy.aggregate_only` no row per event and no visitor
//! hash reaches ClickHouse, no salt is made, the reports that remain give the right numbers,
//! those that need visits are refused with a reason, and the privacy report says so.

use serde_json::{json, Value};

use crate::support::*;

const TOKEN: &str = "aggregate-token";

fn tokens() -> String {
    use sha2::Digest;
    format!(
        "[[api_tokens]]\nname = \"web\"\nsha256 = \"{}\"\n",
        hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
    )
}

async fn query(t: &Tally, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/query", t.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn privacy_json(t: &Tally) -> Value {
    reqwest::Client::new()
        .get(format!("{}/privacy", t.base))
        .bearer_auth(TOKEN)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_6_aggregate_only_stores_counts_without_any_hash_and_says_what_is_lost() {
    let setup = Setup::new("aggregate")
        .with(&tokens())
        .with("[privacy]\naggregate_only = true\n");
    let t = setup.start().await;
    let page = |path: &str, referrer: &str| {
        format!(
            r#"{{"n":"pageview","u":"https://www.example.org{path}","r":"{referrer}","d":"www.example.org"}}"#
        )
    };
    // Three visits arriving from a search engine, two internal navigations, one engagement
    // with 30 s on /b scrolled to 80 %, and a custom event (not kept in this mode).
    let beacons = [
        page("/a", "https://www.google.com/"),
        page("/a", "https://www.google.nl/"),
        page("/b", "https://duckduckgo.com/"),
        page("/b", "https://www.example.org/a"),
        page("/c", "https://www.example.org/b"),
        r#"{"n":"engagement","u":"https://www.example.org/b","d":"www.example.org","e":30000,"sd":80}"#
            .to_string(),
        r#"{"n":"signup","u":"https://www.example.org/c","d":"www.example.org"}"#.to_string(),
    ];
    for (i, b) in beacons.iter().enumerate() {
        let ip = format!("203.0.113.{}", i + 1);
        assert_eq!(t.browser_beacon(b, CHROME, &ip).await, 202, "{b}");
    }
    let db = &t.db;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ch_count(&format!(
        "SELECT sum(pageviews) FROM {db}.rollup_daily WHERE dimension = ''"
    ))
    .await
        < 5
    {
        assert!(std::time::Instant::now() < deadline, "{}", t.logs());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Stored: counts only. No event row, no salt (both tables exist, empty), no hash column in
    // what is written.
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {db}.events")).await,
        0
    );
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {db}.salts")).await,
        0
    );
    // Nor their copy ordered by the hour (but for migration 0011's mark), nor open visits.
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {db}.events_by_hour WHERE site != ''"
        ))
        .await,
        0
    );
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {db}.visit_carry")).await,
        0
    );
    // Stored visits (with their per-day visitor key) are not written in this mode either.
    for table in ["visits", "visit_pages", "visit_page_days"] {
        assert_eq!(
            ch_count(&format!("SELECT count() FROM {db}.{table}")).await,
            0,
            "{table}"
        );
    }
    let hash_columns = ch(&format!(
        "SELECT table, name FROM system.columns WHERE database = '{db}' \
         AND table NOT IN ('events', 'events_by_hour', 'events_by_hour_mv', 'visit_carry', 'salts') AND (name LIKE '%visitor%' OR name LIKE '%salt%') \
         AND NOT (table IN ('rollup_daily', 'rollup_pairs') AND name = 'visitors') \
         AND NOT (table IN ('visits', 'visit_pages') AND name = 'day_visitor') FORMAT TSV"
    ))
    .await;
    assert_eq!(
        hash_columns.trim(),
        "",
        "tables written in this mode have no hash column"
    );
    assert_eq!(
        ch_count(&format!(
            "SELECT count() FROM {db}.rollup_daily WHERE visitors != 0 OR visits != 0"
        ))
        .await,
        0
    );
    let m = t.metrics().await;
    assert_eq!(
        metric(
            &m,
            "tally_events_dropped_total{reason=\"custom_event_in_aggregate_mode\"}"
        ),
        1.0,
        "the custom event is counted, not silently lost"
    );

    // What remains answers correctly.
    let (status, pages) = query(
        &t,
        json!({"site_id": "www.example.org", "metrics": ["pageviews", "time_on_page", "scroll_depth"],
               "date_range": "day", "dimensions": ["event:page"]}),
    )
    .await;
    assert_eq!(status, 200, "{pages}");
    assert_eq!(
        pages["results"],
        json!([
            {"metrics": [2, 0, null], "dimensions": ["/a"]},
            {"metrics": [2, 15, 80], "dimensions": ["/b"]},
            {"metrics": [1, 0, null], "dimensions": ["/c"]},
        ])
    );
    let (status, sources) = query(
        &t,
        json!({"site_id": "www.example.org", "metrics": ["pageviews"], "date_range": "day",
               "dimensions": ["visit:source"]}),
    )
    .await;
    assert_eq!(status, 200, "{sources}");
    assert_eq!(
        sources["results"],
        json!([
            {"metrics": [2], "dimensions": ["Google"]},
            {"metrics": [1], "dimensions": ["DuckDuckGo"]},
        ]),
        "sources count the pageviews arriving from outside only"
    );

    // What needs visits is refused with the reason.
    for (body, what) in [
        (
            json!({"site_id": "www.example.org", "metrics": ["visitors"], "date_range": "day"}),
            "visitors",
        ),
        (
            json!({"site_id": "www.example.org", "metrics": ["pageviews"], "date_range": "day",
                "dimensions": ["visit:entry_page"]}),
            "visit:entry_page",
        ),
        (
            json!({"site_id": "www.example.org", "metrics": ["pageviews"], "date_range": "day",
                "filters": [["is", "event:page", ["/a"]]]}),
            "filters",
        ),
    ] {
        let (status, answer) = query(&t, body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(what) && error.contains("aggregate-only"),
            "{error}"
        );
    }

    // The privacy report describes this mode and lists what is lost; the default one does not.
    let report = privacy_json(&t).await;
    assert!(report["visitor_hash"].is_null(), "{report:#}");
    assert_eq!(report["stored_fields"], json!([]));
    let lost = &report["aggregate_only"]["unavailable_metrics"];
    for m in ["visitors", "visits", "bounce_rate", "visit_duration"] {
        assert!(lost.as_array().unwrap().contains(&json!(m)), "{lost}");
    }
    let default = Setup::new("aggregate_default")
        .with(&tokens())
        .start()
        .await;
    let report = privacy_json(&default).await;
    assert!(report["aggregate_only"].is_null());
    assert_eq!(report["visitor_hash"]["output_bits"], 64);
    assert!(!report["stored_fields"].as_array().unwrap().is_empty());
}
