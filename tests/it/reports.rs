//! The stats API (`POST /api/v2/query`) against expectations computed by hand from the
//! definitions in `docs/http-api.md` ("Definitions"), written before the implementation existed.
//!
//! `fixtures/reports/events.jsonl` holds rows for `events` (ts in UTC); `fixtures/reports/cases.json`
//! the queries, the expected answers and, per case, a note with the arithmetic. The visits of the
//! fixture, in local time (a.example: Europe/Amsterdam, UTC+1 until 2026-03-29 02:00, UTC+2 from
//! 03:00; b.example: UTC), as the notes name them:
//!
//! | visit | visitor | start (local) | pageviews → path (engaged s) | source | country, screen/UA device, browser, OS | duration | bounce |
//! | --- | --- | --- | --- | --- | --- | --- | --- |
//! | A0 | 100 | Thu 26 Mar 15:00 | / (20) | direct | NL desktop Chrome Windows | 20 | no |
//! | A1 | 101 | Fri 27 Mar 09:05 | / (45) | Google | NL desktop Chrome Windows | 45 | no |
//! | A2 | 102 | 27 Mar 10:30 | /blog/dst | direct | DE mobile Safari iOS | 0 | yes |
//! | A5a | 105 | 27 Mar 11:00 | /docs (50) | direct | US desktop Chrome Linux | 50 | no |
//! | A5b | 105 | 27 Mar 12:00 (59 min later) | /docs (12) | direct | same | 12 | no |
//! | A3 | 103 | 27 Mar 14:00 | /pricing (5) | newsletter/email/spring | NL laptop(desktop UA) Firefox Mac OSX | 5 | yes |
//! | A4 | 104 | 27 Mar 16:00 | / (30) → /blog/dst (119) → /pricing (29.7) | Google | BE tablet Safari iOS | 180 | no |
//! | A6 | 106 | Sat 28 Mar 10:00 | / (8) | Google (www.google.nl) | NL mobile Chrome Android | 8 | yes |
//! | A7 | 107 | 28 Mar 13:00 | /blog/privacy (200) → / (60) → /blog/privacy (40) | news.ycombinator.com | US desktop Firefox Windows | 302 | no |
//! | M | 108 | 28 Mar 23:50 | / (300) → Sun 29 Mar 00:10 /blog/dst (120) | newsletter/email/spring | NL desktop Chrome Windows | 1320 | no |
//! | A8 | 109 | Sun 29 Mar 01:30 (+01) | / (15) | direct | FR desktop Chrome Windows | 15 | no |
//! | A10 | 111 | 29 Mar 01:50 (+01) | /docs (300) → 03:05 (+02) /pricing (55) | direct | DE desktop Firefox Linux | 960 | no |
//! | A9 | 110 | 29 Mar 03:15 (+02) | /blog/dst | Google | NL mobile Safari iOS | 0 | yes |
//! | A11 | 112 | 29 Mar 14:00 | / (30) → /signup (60), custom Signup at 14:01:40 | direct | NL laptop(desktop UA) Edge Windows | 100 | no |
//! | A12 | 113 | 29 Mar 20:00 | / (10) | Google (www.google.de) | (no country) no screen/mobile UA Chrome Android | 10 | no |
//! | A13 | 114 | Mon 30 Mar 08:00 | / (25) | direct | NL desktop Chrome Windows | 25 | no |
//! | A14 | 115 | 30 Mar 09:30 | /pricing | newsletter/email/launch | NL mobile Safari iOS | 0 | yes |
//! | C | 120 | 30 Mar 12:30 | custom event Outbound only: no visit | | | | |
//! | A15 | 116 | 30 Mar 12:00 | /blog/privacy (120) → /blog/dst (60) | Google | BE desktop Firefox Linux | 182 | no |
//! | A17 | 117 | Tue 31 Mar 10:00 | / (60) | Google | DE laptop(desktop UA) Chrome Mac OSX | 60 | no |
//! | A20 | 117 | 31 Mar 11:00 (59 min later) | /pricing (35) | direct | same | 35 | no |
//! | A18 | 118 | 31 Mar 15:00 | /docs (3) | direct | US desktop Chrome Linux | 3 | yes |
//! | A19 | 119 | 31 Mar 18:00 | / → /pricing (no engagement) | direct | NL tablet Safari iOS | 40 | no |
//! | B2 | 202 | b: Fri 27 Mar 22:10 UTC | / (20) | Google | DE mobile Safari iOS | 20 | no |
//! | B1 | 201 | b: 27 Mar 22:50 UTC | / (300) → 23:10 /about (120), across the 23:00 UTC salt rotation | direct | NL desktop Chrome Windows | 1320 | no |
//! | B2' | 203 | b: 27 Mar 23:50 UTC | /about (5): B2's person with the new day's hash | direct | DE mobile Safari iOS | 5 | yes |
//! | B3 | 204 | b: Sat 28 Mar 09:00 UTC | / | direct | NL desktop Firefox Linux | 0 | yes |
//! | B4 | 205 | b: Mon 30 Mar 12:00 UTC | /about (30) | Google | NL desktop Chrome Windows | 30 | no |
//! | B5 | 205 | b: 30 Mar 13:00 UTC | / | direct | same | 0 | yes |
//!
//! Scroll depths and exact engagement timestamps are in the JSONL. Results are compared exactly:
//! row order, dimensions, and numbers as f64 within 1e-9 (`null` only equals `null`). A dimension
//! expected as a string also accepts the same number (`docs/http-api.md` writes hour of day and weekday
//! as `0` … `23` and `1` … `7` without saying whether they are strings).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

pub const FIXTURE_TOKEN: &str = "fixture-token";
const B_ONLY_TOKEN: &str = "b-only-token";
const WRONG_TOKEN: &str = "not-a-configured-token";

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Two sites (a private one in Amsterdam time, a public one in UTC) and two tokens. The fixture
/// lies in March 2026, so raw events are kept for ten years here (retention would drop them).
pub fn config() -> String {
    format!(
        r#"
[retention]
raw_days = 3650

[[api_tokens]]
name = "fixture"
sha256 = "{fixture}"

[[api_tokens]]
name = "b-only"
sha256 = "{b_only}"
sites = ["b.example"]

[[sites]]
domain = "a.example"
time_zone = "Europe/Amsterdam"

[[sites]]
domain = "b.example"
time_zone = "UTC"
public = true
"#,
        fixture = sha256_hex(FIXTURE_TOKEN),
        b_only = sha256_hex(B_ONLY_TOKEN),
    )
}

pub fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures/reports")
        .join(file)
}

/// The bearer secret for a case's `token` name (`null`: no header).
pub fn secret(name: &Value) -> Option<&'static str> {
    match name {
        Value::Null => None,
        Value::String(s) => Some(match s.as_str() {
            "fixture" => FIXTURE_TOKEN,
            "b-only" => B_ONLY_TOKEN,
            "wrong" => WRONG_TOKEN,
            other => panic!("cases.json: unknown token name {other:?}"),
        }),
        other => panic!("cases.json: token must be a string or null, not {other}"),
    }
}

/// "2026-03-29 01:15:00" (UTC) as Unix seconds, so the ClickHouse server's own time zone cannot
/// shift the fixture.
fn utc_seconds(ts: &str) -> i64 {
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", ts)
        .unwrap_or_else(|e| panic!("fixture ts {ts:?}: {e}"))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second()
}

/// The rows of `events.jsonl` as JSON lines for `INSERT … FORMAT JSONEachRow` (ts as Unix
/// seconds).
pub fn fixture_rows() -> Vec<String> {
    let text = std::fs::read_to_string(fixture("events.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut row: Value =
                serde_json::from_str(line).expect("events.jsonl: a JSON object a line");
            let ts = row["ts"].as_str().expect("events.jsonl: ts").to_string();
            row["ts"] = json!(utc_seconds(&ts));
            row.to_string()
        })
        .collect()
}

/// Inserts `events.jsonl` into `{db}.events`; returns the number of rows.
pub async fn load_events(db: &str) -> u64 {
    let rows = fixture_rows();
    ch(&format!(
        "INSERT INTO {db}.events FORMAT JSONEachRow\n{}\n",
        rows.join("\n")
    ))
    .await;
    rows.len() as u64
}

pub async fn post_query(base: &str, token: Option<&str>, body: &Value) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v2/query"))
        .json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.expect("tally reachable");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn num_eq(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Null, Value::Null) => true,
        (Value::Number(e), Value::Number(a)) => match (e.as_f64(), a.as_f64()) {
            (Some(e), Some(a)) => (e - a).abs() <= 1e-9,
            _ => false,
        },
        _ => false,
    }
}

fn nums_eq(expected: &Value, actual: &Value) -> bool {
    match (expected.as_array(), actual.as_array()) {
        (Some(e), Some(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| num_eq(e, a)),
        _ => false,
    }
}

fn dims_eq(expected: &Value, actual: &Value) -> bool {
    let one = |e: &Value, a: &Value| {
        e == a || matches!((e, a), (Value::String(s), Value::Number(n)) if *s == n.to_string())
    };
    match (expected.as_array(), actual.as_array()) {
        (Some(e), Some(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| one(e, a)),
        _ => false,
    }
}

fn row_eq(expected: &Value, actual: &Value) -> bool {
    let base = dims_eq(&expected["dimensions"], &actual["dimensions"])
        && nums_eq(&expected["metrics"], &actual["metrics"]);
    let comparison = match expected.get("comparison") {
        Some(e) => {
            let a = &actual["comparison"];
            dims_eq(&e["dimensions"], &a["dimensions"])
                && nums_eq(&e["metrics"], &a["metrics"])
                && nums_eq(&e["change"], &a["change"])
        }
        None => actual.get("comparison").is_none_or(Value::is_null),
    };
    base && comparison
}

fn results_eq(expected: &Value, actual: &Value) -> bool {
    match (expected.as_array(), actual.as_array()) {
        (Some(e), Some(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| row_eq(e, a)),
        _ => false,
    }
}

/// Only the keys the case names; numbers within 1e-9, the rest exactly.
fn meta_eq(expected: &Value, actual: &Value) -> bool {
    expected
        .as_object()
        .expect("expect_meta is an object")
        .iter()
        .all(|(k, e)| match e {
            Value::Number(_) => num_eq(e, &actual[k]),
            _ => e == &actual[k],
        })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// Runs one case; `Some(report)` when it fails.
pub async fn run_case(t: &Tally, case: &Value) -> Option<String> {
    let name = case["name"].as_str().expect("case name");
    let note = case["note"].as_str().unwrap_or("");
    let query = &case["query"];
    let want_status = case["expect_status"].as_u64().expect("expect_status") as u16;
    let (status, body) = post_query(&t.base, secret(&case["token"]), query).await;
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let actual_text = parsed.as_ref().map(pretty).unwrap_or_else(|| body.clone());
    let fail = |what: &str, expected: String| {
        Some(format!(
            "── case {name:?}: {what}\nnote: {note}\nquery: {query}\nexpected: {expected}\nactual (status {status}): {actual_text}"
        ))
    };
    if status != want_status {
        let expected = match case.get("expect_results") {
            Some(r) => format!("status {want_status}, results {}", pretty(r)),
            None => format!("status {want_status}"),
        };
        return fail("wrong status", expected);
    }
    let Some(answer) = parsed else {
        return fail("body is not JSON", "a JSON body".into());
    };
    if want_status != 200 {
        let Some(error) = answer["error"].as_str() else {
            return fail("no {\"error\": …} body", "{\"error\": \"message\"}".into());
        };
        if let Some(part) = case["expect_error_contains"].as_str() {
            if !error.to_lowercase().contains(&part.to_lowercase()) {
                return fail("error message", format!("an error containing {part:?}"));
            }
        }
        return None;
    }
    let expected = case
        .get("expect_results")
        .unwrap_or_else(|| panic!("case {name:?}: a 200 case needs expect_results"));
    if !results_eq(expected, &answer["results"]) {
        return fail("results differ", pretty(expected));
    }
    if let Some(meta) = case.get("expect_meta") {
        if !meta_eq(meta, &answer["meta"]) {
            return fail("meta differs", format!("meta containing {}", pretty(meta)));
        }
    }
    None
}

/// The hand-computed cases of `cases.json`.
pub fn cases() -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(fixture("cases.json")).unwrap())
        .expect("cases.json is a JSON array")
}

/// Runs every case against `t`; the reports of the failed ones.
pub async fn run_fixture(t: &Tally, cases: &[Value]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        if let Some(report) = run_case(t, case).await {
            failures.push(report);
        }
    }
    failures
}

#[tokio::test]
async fn stats_api_answers_the_hand_computed_fixture() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    let setup = Setup::new("reports").with(&config());
    let t = setup.start().await;
    let rows = load_events(&t.db).await;
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", t.db)).await,
        rows,
        "fixture inserted"
    );

    let failures = run_fixture(&t, &cases).await;
    assert!(
        failures.is_empty(),
        "{} of {} stats API cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Real beacons through ingest: bots are not stored, so `day`, `realtime` and the v1 realtime
/// endpoint count the real browsers only.
#[tokio::test]
async fn bots_are_not_counted_today_or_in_realtime() {
    // The expected counts need all beacons on one local day and under one salt (both turn at
    // 00:00 Amsterdam); do not start in the last minute before that midnight.
    let now = jiff::Zoned::now().in_tz("Europe/Amsterdam").unwrap();
    if now.hour() == 23 && now.minute() == 59 {
        tokio::time::sleep(Duration::from_secs(65)).await;
    }
    let setup = Setup::new("realtime").with(&config());
    let t = setup.start().await;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    // Three people, four pageviews (Chrome views two pages).
    for (ua, ip, path) in [
        (CHROME, "8.8.8.8", "/"),
        (CHROME, "8.8.8.8", "/pricing"),
        (IPHONE, "193.0.6.139", "/blog"),
        (FIREFOX, "203.0.113.9", "/"),
    ] {
        let body =
            format!(r#"{{"n":"pageview","u":"https://a.example{path}","d":"a.example","w":1280}}"#);
        assert_eq!(t.browser_beacon(&body, ua, ip).await, 202, "{ua}");
    }
    for (i, ua) in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
    ]
    .into_iter()
    .enumerate()
    {
        let ip = format!("198.51.100.{}", i + 1);
        for path in ["/", "/pricing"] {
            let body = format!(r#"{{"n":"pageview","u":"https://a.example{path}","d":"a.example"}}"#);
            assert_eq!(t.browser_beacon(&body, ua, &ip).await, 202, "{ua}");
        }
    }
    assert_eq!(t.wait_rows(4).await, 4);
    // Anything accepted was flushed with or before the people's rows; give it one more interval.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", t.db)).await,
        4,
        "only the browsers' pageviews are stored"
    );

    for (range, metrics, expected) in [
        (
            "day",
            json!(["visitors", "pageviews", "visits"]),
            json!([3, 4, 3]),
        ),
        ("realtime", json!(["visitors", "pageviews"]), json!([3, 4])),
    ] {
        let query = json!({"site_id": "a.example", "date_range": range, "metrics": metrics});
        let (status, body) = post_query(&t.base, Some(FIXTURE_TOKEN), &query).await;
        assert_eq!(status, 200, "{range}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON answer");
        let want = json!([{"dimensions": [], "metrics": expected}]);
        assert!(
            results_eq(&want, &answer["results"]),
            "{range}: expected results {want}, got {}",
            pretty(&answer)
        );
    }

    // Realtime with filters on what the visitor hash is made of (country from the address;
    // device, browser, OS from the user agent) counts raw events directly: the same numbers as
    // the day's report, which builds the visits (all pageviews are in the last five minutes).
    let mut sum = [0.0, 0.0];
    for filters in [
        json!([["is", "visit:country", ["NL"]]]),
        json!([["is_not", "visit:country", ["NL"]]]),
        json!([["is", "visit:device", ["Mobile"]]]),
        json!([["is", "visit:browser", ["Safari"]]]),
        json!([
            ["is_not", "visit:browser", ["Chrome"]],
            ["contains", "visit:os", ["i"]]
        ]),
        json!([[
            "or",
            [["is", "visit:os", ["iOS"]], ["is", "visit:country", ["US"]]]
        ]]),
    ] {
        let mut answers = Vec::new();
        for range in ["realtime", "day"] {
            let query = json!({"site_id": "a.example", "date_range": range,
                "metrics": ["visitors", "pageviews"], "filters": filters});
            let (status, body) = post_query(&t.base, Some(FIXTURE_TOKEN), &query).await;
            assert_eq!(status, 200, "{range} {filters}: {body}");
            let answer: Value = serde_json::from_str(&body).unwrap();
            answers.push(answer["results"][0]["metrics"].clone());
        }
        assert_eq!(answers[0], answers[1], "realtime and day with {filters}");
        if filters[0][2] == json!(["NL"]) {
            sum[0] += answers[0][0].as_f64().unwrap();
            sum[1] += answers[0][1].as_f64().unwrap();
        }
    }
    // NL and not NL split the three people and four pageviews.
    assert_eq!(sum, [3.0, 4.0]);

    let v1 = format!(
        "{}/api/v1/stats/realtime/visitors?site_id=a.example",
        t.base
    );
    let client = reqwest::Client::new();
    let r = client
        .get(&v1)
        .bearer_auth(FIXTURE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let number: Value = serde_json::from_str(text.trim()).expect("a bare JSON number");
    assert!(
        number.is_number() && num_eq(&json!(3), &number),
        "v1 realtime visitors: expected the bare number 3, got {text:?}"
    );
    let r = client.get(&v1).send().await.unwrap();
    assert_eq!(r.status(), 401, "a.example is not public");
}

/// A page or host filter on a visit ("the visit viewed a matching page") is written without a
/// lambda for `is` and `contains` (`has`, a search in the joined pages; see
/// `stats::sql::dimensions::filter`). On real ClickHouse it selects exactly the visits the
/// element-by-element lambda selects, for case-sensitive and -insensitive values, several
/// values, negations, non-ASCII letters and values that would span two pages if joined.
#[tokio::test]
async fn page_filters_on_visits_select_what_the_element_lambda_selects() {
    use tally::stats::sql::dimensions::{filter, leaf};
    use tally::stats::{Dimension, Filter, Op};

    let db = fresh_db("page_filter_forms");
    ch(&format!("CREATE DATABASE {db}")).await;
    ch(&format!(
        "CREATE TABLE {db}.v (id UInt32, kind UInt8, path String, host String, \
         pages_path Array(String), pages_host Array(String)) ENGINE = Memory"
    ))
    .await;
    let visits: [(&[&str], &[&str]); 8] = [
        (&["/"], &["a.example"]),
        (&["/", "/blog/dst"], &["a.example", "a.example"]),
        (&["/BLOG/Privacy"], &["www.a.example"]),
        (&["/Über/Straße", "/c"], &["a.example", "b.example"]),
        (&["/über/x"], &["B.Example"]),
        (&["/ab", "/cd"], &["a.example", "a.example"]),
        (
            &["/docs", "/pricing", "/docs/api"],
            &["a.example", "a.example", "a.example"],
        ),
        (&["/pricing"], &["A.EXAMPLE"]),
    ];
    let quote = |v: &[&str]| {
        let items: Vec<String> = v.iter().map(|s| format!("'{s}'")).collect();
        format!("[{}]", items.join(", "))
    };
    let values: Vec<String> = visits
        .iter()
        .enumerate()
        .map(|(i, (p, h))| format!("({i}, 0, '', '', {}, {})", quote(p), quote(h)))
        .collect();
    ch(&format!("INSERT INTO {db}.v VALUES {}", values.join(", "))).await;

    let scope = crate::schema::example_scope(&db);
    // (operator, dimension, values, case-sensitive, the visits selected, counted by hand)
    #[allow(clippy::type_complexity)]
    let cases: &[(Op, Dimension, &[&str], bool, &[u32])] = &[
        (Op::Is, Dimension::Page, &["/"], true, &[0, 1]),
        (
            Op::Is,
            Dimension::Page,
            &["/pricing", "/c"],
            true,
            &[3, 6, 7],
        ),
        (Op::Is, Dimension::Page, &["/blog/privacy"], false, &[2]),
        (Op::Is, Dimension::Page, &["/über/straße"], false, &[3]),
        (
            Op::IsNot,
            Dimension::Page,
            &["/"],
            true,
            &[2, 3, 4, 5, 6, 7],
        ),
        (Op::Contains, Dimension::Page, &["/blog"], true, &[1]),
        (Op::Contains, Dimension::Page, &["blog"], false, &[1, 2]),
        (Op::Contains, Dimension::Page, &["über"], false, &[3, 4]),
        (
            Op::Contains,
            Dimension::Page,
            &["Über", "/docs/"],
            true,
            &[3, 6],
        ),
        // Across two pages of one visit ("/ab", "/cd"): no page holds it.
        (Op::Contains, Dimension::Page, &["b/c", "ab/"], true, &[]),
        (Op::Contains, Dimension::Page, &["s/"], true, &[6]),
        (
            Op::ContainsNot,
            Dimension::Page,
            &["doc"],
            true,
            &[0, 1, 2, 3, 4, 5, 7],
        ),
        (
            Op::ContainsNot,
            Dimension::Page,
            &["PRI"],
            false,
            &[0, 1, 3, 4, 5],
        ),
        (Op::Is, Dimension::Hostname, &["b.example"], true, &[3]),
        (Op::Is, Dimension::Hostname, &["b.example"], false, &[3, 4]),
        (Op::Contains, Dimension::Hostname, &["www."], true, &[2]),
        (
            Op::Contains,
            Dimension::Hostname,
            &["a.example"],
            false,
            &[0, 1, 2, 3, 5, 6, 7],
        ),
    ];
    let mut rewritten = 0;
    for (op, dimension, vals, case_sensitive, expected) in cases {
        let values: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
        let f = Filter::Leaf {
            op: *op,
            dimension: *dimension,
            values: values.clone(),
            case_sensitive: *case_sensitive,
        };
        let written = filter(&f, &scope);
        if !written.contains("arrayExists") {
            rewritten += 1;
        }
        let (positive, negated) = match op {
            Op::IsNot => (Op::Is, true),
            Op::ContainsNot => (Op::Contains, true),
            other => (*other, false),
        };
        let elem = if *dimension == Dimension::Page {
            "pp"
        } else {
            "ph"
        };
        let lambda = format!(
            "arrayExists((pp, ph) -> {}, pages_path, pages_host)",
            leaf(positive, elem, &values, *case_sensitive, true)
        );
        let reference = if negated {
            format!("NOT {lambda}")
        } else {
            lambda
        };
        let select =
            |cond: &str| format!("SELECT arraySort(groupArray(id)) FROM {db}.v WHERE {cond}");
        let want: Vec<String> = expected.iter().map(|i| i.to_string()).collect();
        let want = format!("[{}]", want.join(","));
        assert_eq!(
            ch(&select(&written)).await.trim(),
            want,
            "{f:?} written as {written}"
        );
        assert_eq!(
            ch(&select(&reference)).await.trim(),
            want,
            "{f:?} as the lambda"
        );
    }
    assert_eq!(
        rewritten, 14,
        "case-sensitive is and every contains take no lambda"
    );
    ch(&format!("DROP DATABASE {db}")).await;
}
