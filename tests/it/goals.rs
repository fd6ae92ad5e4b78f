//! Issue 18: goals, the `events` metric, conversion rates and custom properties through the real
//! stats API against a real ClickHouse, with hand-computed answers. The same five visitors are
//! asked about twice: once after the visit job stored their visits (the raw events then gone),
//! once while their visits are still open (built from raw events), since reports combine both.
//!
//! The fixture (minutes after its start; site `g.example`, goals `Visit /afval*` and
//! `Download`, `props_allowlist = ["format", "lang"]`):
//!
//! | visitor | source | country | events |
//! | --- | --- | --- | --- |
//! | 1 | Google | NL | 0 pageview /afval, 1 pageview /afvalkalender, 2 Download {format: pdf}, 3 engagement |
//! | 2 | (direct) | BE | 5 pageview /home, 6 Download {format: docx, lang: nl}, 7 Download {format: pdf} |
//! | 3 | Google | BE | 8 pageview /home, 13 pageview /x/afval (not `/afval*`: the whole path must match) |
//! | 4 | (direct) | NL | 14 pageview /afval/2026, 15 Signup (no goal) |
//! | 5 | Google | NL | 16 pageview /contact {lang: en} (a pageview prop) |
//!
//! 5 visitors, 7 pageviews, 4 custom events: 11 events (the engagement is none).
//! `Visit /afval*`: visitors 1 and 4, 3 pageviews. `Download`: visitors 1 and 2, 3 events.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::reports::{config, post_query, secret};
use crate::support::*;

const SITE: &str = "g.example";

fn goals_config() -> String {
    format!(
        "{}\n[[sites]]\ndomain = \"{SITE}\"\ntime_zone = \"UTC\"\n\
         props_allowlist = [\"format\", \"lang\"]\n\
         [[sites.goals]]\npage = \"/afval*\"\n\
         [[sites.goals]]\nevent = \"Download\"\n",
        config()
    )
}

/// The fixture's raw events, `start` being minute 0.
fn fixture(start: Timestamp) -> Vec<Value> {
    let at = |m: i64| start + SignedDuration::from_mins(m);
    let row = |m: i64, visitor: u64, name: &str, path: &str, props: &[(&str, &str)]| {
        let (source, country) = match visitor {
            1 => ("Google", "NL"),
            2 => ("", "BE"),
            3 => ("Google", "BE"),
            4 => ("", "NL"),
            _ => ("Google", "NL"),
        };
        let ts = at(m);
        json!({
            "site": SITE, "ts": ts.as_second(), "micros": 0, "visitor": 7000 + visitor,
            "name": name, "host": SITE, "path": path, "query": "", "utm_source": "",
            "utm_medium": "", "utm_campaign": "", "utm_content": "", "utm_term": "",
            "referrer_host": "", "source": source, "country": country, "device": "desktop",
            "browser": "Firefox", "os": "GNU/Linux", "screen": "laptop",
            "engaged_ms": if name == "engagement" { 30_000 } else { 0 }, "scroll_depth": 0,
            "interactive": 1,
            "props_keys": props.iter().map(|p| p.0).collect::<Vec<_>>(),
            "props_values": props.iter().map(|p| p.1).collect::<Vec<_>>(),
            "event_id": visitor * 1_000 + m as u64,
        })
    };
    vec![
        row(0, 1, "pageview", "/afval", &[]),
        row(1, 1, "pageview", "/afvalkalender", &[]),
        row(2, 1, "Download", "/afvalkalender", &[("format", "pdf")]),
        row(3, 1, "engagement", "/afvalkalender", &[]),
        row(5, 2, "pageview", "/home", &[]),
        row(
            6,
            2,
            "Download",
            "/home",
            &[("format", "docx"), ("lang", "nl")],
        ),
        row(7, 2, "Download", "/home", &[("format", "pdf")]),
        row(8, 3, "pageview", "/home", &[]),
        row(13, 3, "pageview", "/x/afval", &[]),
        row(14, 4, "pageview", "/afval/2026", &[]),
        row(15, 4, "Signup", "/afval/2026", &[]),
        row(16, 5, "pageview", "/contact", &[("lang", "en")]),
    ]
}

async fn insert(db: &str, rows: &[Value]) {
    let mut sql = format!("INSERT INTO {db}.events FORMAT JSONEachRow\n");
    for r in rows {
        sql.push_str(&r.to_string());
        sql.push('\n');
    }
    ch(&sql).await;
}

/// `tally visits`: stores every visit that has ended.
fn store_visits(setup: &Setup) {
    let config = setup.config_path();
    let out = tally_command(&["visits", "--config", &config.to_string_lossy()]);
    assert!(
        out.status.success(),
        "tally visits failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The answer's `results` for a query of `SITE` over `range` (status 200 asserted).
async fn ask(t: &Tally, range: &Value, query: Value) -> Value {
    let mut body = json!({"site_id": SITE, "date_range": range});
    for (k, v) in query.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, text) = post_query(&t.base, secret(&json!("fixture")), &body).await;
    assert_eq!(status, 200, "{body}: {text}");
    serde_json::from_str::<Value>(&text).unwrap()["results"].clone()
}

/// The hand-computed cases over `range` (the fixture's day or instants around it); `how` names
/// the state in failure messages.
async fn check_cases(t: &Tally, range: &Value, how: &str) {
    let cases = [
        // `events` = pageviews + custom events; the engagement counts for nothing.
        (
            json!({"metrics": ["visitors", "pageviews", "events"]}),
            json!([{"metrics": [5, 7, 11], "dimensions": []}]),
        ),
        // A row per goal with conversions: unique and total conversions, rate of all 5.
        (
            json!({"metrics": ["visitors", "events", "conversion_rate"],
                   "dimensions": ["event:goal"]}),
            json!([
                {"metrics": [2, 3, 40.0], "dimensions": ["Download"]},
                {"metrics": [2, 3, 40.0], "dimensions": ["Visit /afval*"]},
            ]),
        ),
        // The page goal's wildcard: /afval, /afvalkalender, /afval/2026; not /x/afval.
        (
            json!({"metrics": ["visitors", "events"],
                   "filters": [["is", "event:goal", ["Visit /afval*"]]]}),
            json!([{"metrics": [2, 3], "dimensions": []}]),
        ),
        // `pageviews` in a conversion report: the goal's pageviews (none for an event goal).
        (
            json!({"metrics": ["visitors", "pageviews", "events"],
                   "filters": [["is", "event:goal", ["Visit /afval*"]]]}),
            json!([{"metrics": [2, 3, 3], "dimensions": []}]),
        ),
        (
            json!({"metrics": ["visitors", "pageviews", "events"],
                   "filters": [["is", "event:goal", ["Download"]]]}),
            json!([{"metrics": [2, 0, 3], "dimensions": []}]),
        ),
        // The event goal, and `contains` on goal names (case-insensitive).
        (
            json!({"metrics": ["visitors", "events"],
                   "filters": [["contains", "event:goal", ["downl"], {"case_sensitive": false}]]}),
            json!([{"metrics": [2, 3], "dimensions": []}]),
        ),
        // Conversion rate with another filter: of NL's 3 visitors (1, 4, 5), 1 and 4 converted.
        (
            json!({"metrics": ["visitors", "conversion_rate"],
                   "filters": [["is", "event:goal", ["Visit /afval*"]], ["is", "visit:country", ["NL"]]]}),
            json!([{"metrics": [2, 66.67], "dimensions": []}]),
        ),
        // event:goal filter with visit:country: BE's visitor 3 saw /x/afval only.
        (
            json!({"metrics": ["visitors", "events", "conversion_rate"],
                   "filters": [["is", "event:goal", ["Visit /afval*"]], ["is", "visit:country", ["BE"]]]}),
            json!([{"metrics": [0, 0, 0], "dimensions": []}]),
        ),
        (
            json!({"metrics": ["visitors"], "dimensions": ["event:goal"],
                   "filters": [["is", "visit:country", ["BE"]]]}),
            json!([{"metrics": [1], "dimensions": ["Download"]}]),
        ),
        // Group conversion rate by source: Google 1 of 3 (1, 3, 5), direct 1 of 2 (2, 4);
        // the conversion rate divides by all 5.
        (
            json!({"metrics": ["visitors", "events", "group_conversion_rate", "conversion_rate"],
                   "dimensions": ["visit:source"],
                   "filters": [["is", "event:goal", ["Download"]]]}),
            json!([
                {"metrics": [1, 2, 50.0, 20.0], "dimensions": ["Direct / None"]},
                {"metrics": [1, 1, 33.33, 20.0], "dimensions": ["Google"]},
            ]),
        ),
        // Props breakdown of the Download goal.
        (
            json!({"metrics": ["visitors", "events"], "dimensions": ["event:props:format"],
                   "filters": [["is", "event:goal", ["Download"]]]}),
            json!([
                {"metrics": [2, 2], "dimensions": ["pdf"]},
                {"metrics": [1, 1], "dimensions": ["docx"]},
            ]),
        ),
        // Without a goal: every pageview and custom event, `(none)` where the prop is missing
        // (7 pageviews and Signup, of all 5 visitors).
        (
            json!({"metrics": ["visitors", "events"], "dimensions": ["event:props:format"]}),
            json!([
                {"metrics": [5, 8], "dimensions": ["(none)"]},
                {"metrics": [2, 2], "dimensions": ["pdf"]},
                {"metrics": [1, 1], "dimensions": ["docx"]},
            ]),
        ),
        // A pageview prop: visitor 5's pageview alone.
        (
            json!({"metrics": ["visitors", "pageviews", "events"],
                   "filters": [["is", "event:props:lang", ["en"]]]}),
            json!([{"metrics": [1, 1, 1], "dimensions": []}]),
        ),
        // Broken down among NL's visitors (1, 4, 5): visitor 5's pageview has `en`, the
        // 3 pageviews and 2 custom events of visitors 1 and 4 have none.
        (
            json!({"metrics": ["visitors", "pageviews", "events"],
                   "dimensions": ["event:props:lang"],
                   "filters": [["is", "visit:country", ["NL"]]]}),
            json!([
                {"metrics": [2, 3, 5], "dimensions": ["(none)"]},
                {"metrics": [1, 1, 1], "dimensions": ["en"]},
            ]),
        ),
        // A props filter.
        (
            json!({"metrics": ["visitors", "events", "conversion_rate"],
                   "filters": [["is", "event:props:lang", ["nl"]]]}),
            json!([{"metrics": [1, 1, 20.0], "dimensions": []}]),
        ),
    ];
    let mut failures = Vec::new();
    for (query, want) in cases {
        let got = ask(t, range, query.clone()).await;
        if !same(&got, &want) {
            failures.push(format!("{query}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{how}: {} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Equal JSON, numbers compared as numbers (`40` and `40.0` alike).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[tokio::test]
async fn issue_18_goals_events_and_props_from_stored_visits_and_open_ones() {
    let setup = Setup::new("goals").with(&goals_config());
    let t = setup.start().await;

    // Stored: a past day, its visits stored by the visit job, the raw events then gone.
    insert(&t.db, &fixture("2026-03-10T10:00:00Z".parse().unwrap())).await;
    store_visits(&setup);
    // At each slice's current version, as readers take them: the server's own visit job may
    // store a slice at the same moment as `tally visits` (a second, equal version).
    let stored = ch_count(&format!(
        "SELECT count() FROM {db}.visits WHERE site = '{SITE}' AND kind = 2 \
         AND (slice, version) IN (SELECT slice, max(version) FROM {db}.visit_slices \
         WHERE site = '{SITE}' AND done = 1 GROUP BY slice)",
        db = t.db
    ))
    .await;
    assert_eq!(
        stored, 4,
        "the four custom events are stored as kind 2 records"
    );
    ch(&format!("TRUNCATE TABLE {}.events", t.db)).await;
    check_cases(
        &t,
        &json!(["2026-03-10", "2026-03-10"]),
        "from stored visits",
    )
    .await;

    // Open: the same visitors in the last 20 minutes; their visits may go on, so none is stored.
    let now = Timestamp::now();
    insert(&t.db, &fixture(now - SignedDuration::from_mins(20))).await;
    let window = json!([
        (now - SignedDuration::from_mins(60)).to_string(),
        (now + SignedDuration::from_mins(1)).to_string()
    ]);
    check_cases(&t, &window, "from open visits (raw events)").await;
    let open = ch_count(&format!(
        "SELECT count() FROM {}.visits WHERE site = '{SITE}' AND ts >= now() - 3600",
        t.db
    ))
    .await;
    assert_eq!(open, 0, "the recent visits were answered from raw events");
}

#[tokio::test]
async fn issue_18_what_tally_cannot_answer_about_goals_is_a_clear_400() {
    let setup = Setup::new("goals_refused").with(&goals_config());
    let t = setup.start().await;
    let refused = |query: Value| {
        let t = &t;
        async move {
            let mut body = json!({"site_id": SITE, "date_range": "7d"});
            for (k, v) in query.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (status, text) = post_query(&t.base, secret(&json!("fixture")), &body).await;
            assert_eq!(status, 400, "{body}: {text}");
            text
        }
    };
    // A property that is not allow-listed is never stored, so never reported.
    let text = refused(json!({"metrics": ["visitors"], "dimensions": ["event:props:email"]})).await;
    assert!(
        text.contains("event:props:email") && text.contains("props_allowlist"),
        "{text}"
    );
    let text =
        refused(json!({"metrics": ["visitors"], "filters": [["is", "event:props:email", ["x"]]]}))
            .await;
    assert!(text.contains("props_allowlist"), "{text}");
    // A goal that is not configured, and metrics that need a goal.
    let text =
        refused(json!({"metrics": ["visitors"], "filters": [["is", "event:goal", ["Signup"]]]}))
            .await;
    assert!(
        text.contains("The goal `Signup` is not configured"),
        "{text}"
    );
    let text = refused(json!({"metrics": ["conversion_rate"]})).await;
    assert!(text.contains("conversion_rate"), "{text}");
    let text = refused(json!({"metrics": ["bounce_rate"], "dimensions": ["event:goal"]})).await;
    assert!(text.contains("bounce_rate cannot be queried"), "{text}");
}
