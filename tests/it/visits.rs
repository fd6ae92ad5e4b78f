//! Issue 4: a visit is one visit whichever collector receives its beacons, and across a
//! collector restart, because no collector keeps visit state that the numbers depend on.

use std::time::Duration;

use serde_json::{json, Value};

use crate::reports::{config, post_query};
use crate::support::{Setup, CHROME};

const TOKEN: &str = "fixture-token";
const IP: &str = "193.0.6.139";

#[tokio::test]
async fn issue_4_visits_span_collectors_and_restarts() {
    // All beacons must fall on one local day and under one salt (both turn at 00:00 Amsterdam).
    let now = jiff::Zoned::now().in_tz("Europe/Amsterdam").unwrap();
    if now.hour() == 23 && now.minute() >= 58 {
        tokio::time::sleep(Duration::from_secs(150)).await;
    }
    let a_setup = Setup::new("visits").with(&config());
    let mut b_setup = Setup::new("visits").with(&config());
    b_setup.db = a_setup.db.clone();
    let a = a_setup.start().await;
    let b = b_setup.start().await;

    let pageview = |path: &str| {
        format!(r#"{{"n":"pageview","u":"https://a.example{path}","d":"a.example","w":1280}}"#)
    };

    // A visitor's beacons alternate between two collectors behind a load balancer...
    assert_eq!(a.browser_beacon(&pageview("/"), CHROME, IP).await, 202);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(b.browser_beacon(&pageview("/b"), CHROME, IP).await, 202);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let engagement =
        r#"{"n":"engagement","u":"https://a.example/b","d":"a.example","e":2000,"sd":50}"#;
    assert_eq!(a.browser_beacon(engagement, CHROME, IP).await, 202);
    // ...and one of them restarts in the middle of the visit.
    let (status, _) = b.terminate();
    assert!(status.success());
    let b = b_setup.start().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(b.browser_beacon(&pageview("/c"), CHROME, IP).await, 202);
    assert_eq!(a.wait_rows(4).await, 4);

    let ask = |metrics: Value, dimensions: Value| {
        let base = a.base.clone();
        async move {
            let q = json!({"site_id": "a.example", "date_range": "day",
                           "metrics": metrics, "dimensions": dimensions});
            let (status, body) = post_query(&base, Some(TOKEN), &q).await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["results"].clone()
        }
    };
    let total = ask(
        json!([
            "visitors",
            "visits",
            "pageviews",
            "views_per_visit",
            "bounce_rate",
            "visit_duration"
        ]),
        json!([]),
    )
    .await;
    let m = &total[0]["metrics"];
    assert_eq!(m[0], 1, "one visitor: {total}");
    assert_eq!(
        m[1], 1,
        "one visit, not one per collector or per restart: {total}"
    );
    assert_eq!(m[2], 3, "{total}");
    assert_eq!(m[3], 3.0, "{total}");
    assert_eq!(m[4], 0, "{total}");
    let duration = m[5].as_i64().unwrap();
    assert!((3..60).contains(&duration), "first to last beacon: {total}");

    let entry = ask(json!(["visits"]), json!(["visit:entry_page"])).await;
    assert_eq!(entry, json!([{"dimensions": ["/"], "metrics": [1]}]));
    let exit = ask(json!(["visits"]), json!(["visit:exit_page"])).await;
    assert_eq!(exit, json!([{"dimensions": ["/c"], "metrics": [1]}]));
    // Both collectors answer the same, since neither holds state the numbers depend on.
    let q =
        json!({"site_id": "a.example", "date_range": "day", "metrics": ["visits", "pageviews"]});
    let (_, from_a) = post_query(&a.base, Some(TOKEN), &q).await;
    let (_, from_b) = post_query(&b.base, Some(TOKEN), &q).await;
    let results = |s: &str| serde_json::from_str::<Value>(s).unwrap()["results"].clone();
    assert_eq!(results(&from_a), results(&from_b));
}
