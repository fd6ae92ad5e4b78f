//! CSV downloads against the real binary over real HTTP: every dashboard panel's CSV holds the
//! stats API's answer to that panel's query (all rows, every bucket of the period), and the
//! stats API answers any query as CSV for `Accept: text/csv` with the same values as its JSON.

use reqwest::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::dashboard::{dashboard_config, login, ALICE_PASSWORD};
use crate::reports::{load_events, post_query, FIXTURE_TOKEN};
use crate::support::*;

/// The fixture's days (the reports fixture lies in March 2026).
const FROM: &str = "2026-03-26";
const TO: &str = "2026-03-31";

/// Stores the visits of the fixture and rolls up its days (`tally visits`, `tally rollup`) before
/// anything is asked: the events are inserted behind the running server's back, and its own
/// first visits job would otherwise store them while the test compares answers taken at
/// different moments (seen: a period's visitors 21 in one answer, 20 in the next).
pub fn settle(setup: &Setup) {
    let config = setup.config_path().to_string_lossy().into_owned();
    for job in ["visits", "rollup"] {
        let out = tally_command(&[job, "--config", &config]);
        assert!(
            out.status.success(),
            "tally {job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A CSV document: its header and rows, read by the `csv` crate (RFC 4180).
fn read_csv(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// A CSV cell against the JSON answer's value: numbers as numbers, `null` as an empty cell.
fn cell_is(cell: &str, v: &Value, what: &str) {
    match v {
        Value::Null => assert_eq!(cell, "", "{what}"),
        Value::Number(n) => {
            let got: f64 = cell
                .parse()
                .unwrap_or_else(|_| panic!("{what}: {cell:?} is no number"));
            assert!(
                (got - n.as_f64().unwrap()).abs() < 1e-9,
                "{what}: {cell} ≠ {n}"
            );
        }
        Value::String(s) => assert_eq!(cell, s, "{what}"),
        other => panic!("{what}: unexpected {other}"),
    }
}

/// The API's answer to `query`, as JSON.
async fn api(base: &str, query: &Value) -> Value {
    let (s, body) = post_query(base, Some(FIXTURE_TOKEN), query).await;
    assert_eq!(s, 200, "{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The metric names of a table on the page (`data-metric` of its first row's cells), so that
/// the test knows the panel shows what its CSV holds.
fn page_metrics(html: &str, panel: &str) -> Vec<String> {
    let at = html
        .find(&format!("data-panel=\"{panel}\""))
        .unwrap_or_else(|| panic!("no {panel} table on the page"));
    let table = &html[at..html[at..].find("</table>").unwrap() + at];
    let row = &table[table.find("<tbody").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    row.split("data-metric=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

#[tokio::test]
async fn every_dashboard_panel_downloads_as_the_apis_answer() {
    let setup = Setup::new("export_panels").with(&dashboard_config(""));
    let t = setup.start().await;
    load_events(&t.db).await;
    settle(&setup);
    let base = &t.base;
    let (session, _) = login(base, "alice", ALICE_PASSWORD).await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{base}{path}"))
            .header("cookie", &session)
            .send()
    };

    for filter in ["", "&country=NL"] {
        let view = format!("period=custom&from={FROM}&to={TO}{filter}");
        let page = get(format!("/dashboard/a.example?{view}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let filters = if filter.is_empty() {
            json!([])
        } else {
            json!([["is", "visit:country", ["NL"]]])
        };
        for panel in [
            "headline",
            "over-time",
            "pages",
            "sources",
            "campaigns",
            "countries",
            "devices",
            "browsers",
            "oses",
            "heatmap",
            "hours",
            "durations",
        ] {
            // The page links to the download of this view.
            let href = format!(
                "/dashboard/a.example/csv/{panel}?{}",
                view.replace('&', "&#38;")
            );
            assert!(page.contains(&href), "{panel}: no link {href}");
            let r = get(format!("/dashboard/a.example/csv/{panel}?{view}"))
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{panel}");
            assert_eq!(r.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
            assert_eq!(
                r.headers()[CONTENT_DISPOSITION],
                format!("attachment; filename=\"a.example_{panel}_{FROM}_{TO}.csv\"").as_str()
            );
            let body = r.text().await.unwrap();
            assert!(body.ends_with("\r\n"), "{panel}: CRLF line ends");
            let (header, rows) = read_csv(&body);
            let what = format!("{panel}{filter}");

            // The query this CSV answers, by the names in its header.
            let plain: Vec<&String> = header
                .iter()
                .filter(|h| !h.starts_with("comparison:") && !h.starts_with("change:"))
                .collect();
            let dims: Vec<&String> = plain
                .iter()
                .copied()
                .filter(|h| h.contains(':') || *h == "time")
                .collect();
            let metrics: Vec<&String> = plain
                .iter()
                .copied()
                .filter(|h| !dims.contains(h))
                .collect();
            let mut q = json!({
                "site_id": "a.example", "metrics": metrics, "date_range": [FROM, TO],
                "dimensions": dims, "filters": filters, "pagination": {"limit": 10000},
            });
            match panel {
                "headline" => {
                    q["include"] = json!({"comparisons": {"mode": "previous_period"}});
                    assert!(header.iter().any(|h| h == "change:visitors"), "{header:?}");
                }
                "over-time" => q["include"] = json!({"time_labels": true}),
                "pages" | "sources" | "campaigns" | "countries" | "devices" | "browsers"
                | "oses" => {
                    // What the table shows is what the CSV holds.
                    assert_eq!(
                        page_metrics(&page, panel),
                        metrics.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                        "{what}"
                    );
                }
                _ => {}
            }
            let a = api(base, &q).await;
            let results = a["results"].as_array().unwrap();

            // The rows expected: the API's, or every bucket with 0 where it has no row.
            let keys: Option<Vec<Vec<Value>>> = match panel {
                "over-time" => Some(
                    a["meta"]["time_labels"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| vec![l.clone()])
                        .collect(),
                ),
                "hours" => Some((0..24).map(|h| vec![json!(h)]).collect()),
                "heatmap" => Some(
                    (1..=7)
                        .flat_map(|w| (0..24).map(move |h| vec![json!(w), json!(h)]))
                        .collect(),
                ),
                "durations" => Some(
                    [
                        "0-10s", "10-30s", "30s-1m", "1-3m", "3-10m", "10-30m", "30m+",
                    ]
                    .iter()
                    .map(|b| vec![json!(b)])
                    .collect(),
                ),
                _ => None,
            };
            let expected: Vec<Vec<Value>> = match keys {
                None => results
                    .iter()
                    .map(|r| {
                        let mut cells = r["dimensions"].as_array().unwrap().clone();
                        cells.extend(r["metrics"].as_array().unwrap().clone());
                        if let Some(c) = r.get("comparison") {
                            cells.extend(c["dimensions"].as_array().unwrap().clone());
                            cells.extend(c["metrics"].as_array().unwrap().clone());
                            cells.extend(c["change"].as_array().unwrap().clone());
                        }
                        cells
                    })
                    .collect(),
                Some(keys) => {
                    keys.into_iter()
                        .map(|key| {
                            let found = results.iter().find(|r| {
                                r["dimensions"].as_array().unwrap().iter().zip(&key).all(
                                    |(a, b)| {
                                        a.to_string().trim_matches('"')
                                            == b.to_string().trim_matches('"')
                                    },
                                )
                            });
                            let mut cells = key.clone();
                            match found {
                                Some(r) => cells.extend(r["metrics"].as_array().unwrap().clone()),
                                None => cells.extend(metrics.iter().map(|_| json!(0))),
                            }
                            cells
                        })
                        .collect()
                }
            };
            assert_eq!(rows.len(), expected.len(), "{what}: rows\n{body}");
            assert!(
                !rows.is_empty() || filter.is_empty() && panel == "campaigns",
                "{what}: rows"
            );
            for (i, (row, want)) in rows.iter().zip(&expected).enumerate() {
                assert_eq!(row.len(), header.len(), "{what} row {i}");
                for (j, (cell, v)) in row.iter().zip(want).enumerate() {
                    cell_is(cell, v, &format!("{what} row {i} {}", header[j]));
                }
            }
        }
    }

    // A panel the page does not have, and a view that is not one.
    let r = get("/dashboard/a.example/csv/nope?period=7d".to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = get("/dashboard/a.example/csv/pages?period=week".to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // No download without a login.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/dashboard/a.example/csv/pages?period=7d"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// `POST /api/v2/query` with `Accept: text/csv`.
async fn post_csv(base: &str, query: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/v2/query"))
        .bearer_auth(FIXTURE_TOKEN)
        .header(ACCEPT, "text/csv")
        .json(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_stats_api_answers_any_query_as_csv() {
    let setup = Setup::new("export_api").with(&crate::reports::config());
    let t = setup.start().await;
    load_events(&t.db).await;
    settle(&setup);
    let base = &t.base;
    let queries = [
        json!({"site_id": "a.example", "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": "all"}),
        json!({"site_id": "a.example", "metrics": ["visitors", "percentage"], "date_range": [FROM, TO], "dimensions": ["visit:country", "visit:device"]}),
        json!({"site_id": "a.example", "metrics": ["pageviews", "time_on_page"], "date_range": [FROM, TO], "dimensions": ["event:page"], "filters": [["contains", "event:page", ["/"]]], "order_by": [["pageviews", "desc"]]}),
        json!({"site_id": "a.example", "metrics": ["visitors"], "date_range": [FROM, TO], "dimensions": ["time:day"], "include": {"comparisons": {"mode": "previous_period"}}}),
        json!({"site_id": "b.example", "metrics": ["visitors"], "date_range": "all", "dimensions": ["time:hour_of_day"]}),
    ];
    for q in &queries {
        let json_answer = api(base, q).await;
        let r = post_csv(base, q).await;
        assert_eq!(r.status(), 200, "{q}");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
        let (header, rows) = read_csv(&r.text().await.unwrap());
        let dims: Vec<Value> = q["dimensions"].as_array().cloned().unwrap_or_default();
        let mut want_header: Vec<Value> = dims.clone();
        want_header.extend(q["metrics"].as_array().unwrap().clone());
        let compared = q.get("include").is_some();
        if compared {
            want_header.extend(
                dims.iter()
                    .map(|d| json!(format!("comparison:{}", d.as_str().unwrap()))),
            );
            want_header.extend(
                q["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| json!(format!("comparison:{}", m.as_str().unwrap()))),
            );
            want_header.extend(
                q["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| json!(format!("change:{}", m.as_str().unwrap()))),
            );
        }
        assert_eq!(
            header,
            want_header
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        );
        let results = json_answer["results"].as_array().unwrap();
        assert_eq!(rows.len(), results.len(), "{q}");
        assert!(!rows.is_empty(), "{q}: the fixture has rows");
        for (row, r) in rows.iter().zip(results) {
            let mut cells = r["dimensions"].as_array().unwrap().clone();
            cells.extend(r["metrics"].as_array().unwrap().clone());
            if compared {
                let c = &r["comparison"];
                cells.extend(c["dimensions"].as_array().unwrap().clone());
                cells.extend(c["metrics"].as_array().unwrap().clone());
                cells.extend(c["change"].as_array().unwrap().clone());
            }
            assert_eq!(row.len(), cells.len(), "{q}");
            for (cell, v) in row.iter().zip(&cells) {
                cell_is(cell, v, &q.to_string());
            }
        }
    }

    // JSON stays the default, and wins when the client prefers it.
    let q = &queries[0];
    for accept in [
        "application/json",
        "*/*",
        "application/json, text/csv;q=0.5",
        "text/csv;q=0",
    ] {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/v2/query"))
            .bearer_auth(FIXTURE_TOKEN)
            .header(ACCEPT, accept)
            .json(q)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json", "{accept}");
    }
    // A bad query is refused with the machine-readable JSON error, whatever was asked.
    let r = post_csv(base, &json!({"site_id": "a.example", "metrics": ["visitors"], "date_range": "all", "dimensions": ["visit:city"]})).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("visit:city"), "{e}");
}
