//! The Grafana dashboards in `dashboards/`: valid for the official ClickHouse plugin
//! (`grafana-clickhouse-datasource`), and every panel query, with the dashboard variables and the
//! plugin's macros substituted as Grafana does, gives the stats API's numbers on the real
//! ClickHouse 18.16 and the same rows on current ClickHouse (chDB).
//!
//! The reports fixture (`fixtures/reports/`) is loaded and read in four states: raw events only;
//! every day rolled up (`tally rollup`); the first days rolled up and the rest raw (the usual
//! state: today is never rolled up); rollups only, with a second computation of every day and a
//! half-written third (raw events past retention). The panels must give the API's answer in each.

use std::process::Command;

use serde_json::{json, Value};

use crate::reports::{config, load_events, post_query, secret};
use crate::support::{ch, clickhouse_url, Setup};

const PLUGIN: &str = "grafana-clickhouse-datasource";

/// The macros of the plugin (`pkg/macros/macros.go`); the ones emulated here are those the
/// dashboards use, any other makes the test fail with its name.
const PLUGIN_MACROS: [&str; 12] = [
    "fromTime",
    "toTime",
    "fromTime_ms",
    "toTime_ms",
    "timeFilter",
    "timeFilter_ms",
    "dateFilter",
    "dateTimeFilter",
    "dt",
    "timeInterval",
    "timeInterval_ms",
    "interval_s",
];

fn dashboards() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard JSON in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

fn panels(d: &Value) -> Vec<&Value> {
    // Rows may hold collapsed panels of their own.
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .collect()
}

/// Names after `$` in SQL: `${name}`, `${name:format}`, `$name` and `$__macro`.
fn references(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        rest = &rest[i + 1..];
        let name: String = if let Some(inner) = rest.strip_prefix('{') {
            inner
                .chars()
                .take_while(|c| *c != '}' && *c != ':')
                .collect()
        } else {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        out.push(name);
    }
    out
}

#[test]
fn dashboards_are_valid_for_the_clickhouse_plugin() {
    for (file, d) in dashboards() {
        let at = |what: &str| format!("{file}: {what}");
        for key in ["uid", "title"] {
            assert!(
                d[key].as_str().is_some_and(|s| !s.is_empty()),
                "{}",
                at(key)
            );
        }
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
            "{}",
            at("schemaVersion of Grafana 9+")
        );
        assert!(
            d["time"]["from"].is_string() && d["time"]["to"].is_string(),
            "{}",
            at("default time range")
        );

        let vars = variables(&d);
        let var = |name: &str| {
            vars.iter()
                .find(|v| v["name"] == name)
                .unwrap_or_else(|| panic!("{}", at(&format!("variable {name}"))))
        };
        let ds = var("datasource");
        assert_eq!(ds["type"], "datasource", "{}", at("datasource variable"));
        assert_eq!(ds["query"], PLUGIN, "{}", at("datasource variable plugin"));
        let site = var("site");
        assert_eq!(site["type"], "query", "{}", at("site is a query variable"));
        assert_eq!(
            site["datasource"]["type"],
            PLUGIN,
            "{}",
            at("site variable data source")
        );
        assert!(
            site["query"]
                .as_str()
                .is_some_and(|q| q.contains("rollup_days") && q.contains("events")),
            "{}",
            at("site query reads events and rollups, so old sites stay listed")
        );
        let tz = var("tz");
        assert!(
            tz["query"]
                .as_str()
                .is_some_and(|z| jiff::tz::TimeZone::get(z).is_ok()),
            "{}",
            at("tz default is an IANA zone")
        );
        let names: Vec<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();

        let panels = panels(&d);
        assert!(!panels.is_empty(), "{}", at("panels"));
        let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), panels.len(), "{}", at("panel ids are unique"));
        for p in &panels {
            let title = p["title"].as_str().unwrap_or("?");
            let at = |what: &str| format!("{file}: panel {title:?}: {what}");
            assert_eq!(
                p["datasource"]["type"],
                PLUGIN,
                "{}",
                at("data source type")
            );
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
            assert!(
                x + w <= 24 && g["h"].as_u64().unwrap() > 0,
                "{}",
                at("gridPos")
            );
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{}", at("a query"));
            for t in targets {
                assert_eq!(
                    t["datasource"]["type"],
                    PLUGIN,
                    "{}",
                    at("query data source")
                );
                assert_eq!(t["editorType"], "sql", "{}", at("SQL editor"));
                let series = p["type"] == "timeseries";
                assert_eq!(
                    t["format"],
                    json!(if series { 0 } else { 1 }),
                    "{}",
                    at("format: 0 time series, 1 table")
                );
                assert_eq!(
                    t["queryType"],
                    if series { "timeseries" } else { "table" },
                    "{}",
                    at("queryType")
                );
                let sql = t["rawSql"].as_str().unwrap_or("");
                assert!(sql.contains("SELECT"), "{}", at("rawSql"));
                // Wired to the site, the time zone and the time picker.
                for needed in [
                    "${site:singlequote}",
                    "${tz:singlequote}",
                    "$__fromTime",
                    "$__toTime",
                ] {
                    assert!(sql.contains(needed), "{}", at(&format!("uses {needed}")));
                }
                for r in references(sql) {
                    match r.strip_prefix("__") {
                        Some(m) => assert!(
                            PLUGIN_MACROS.contains(&m),
                            "{}",
                            at(&format!("$__{m} is not a macro of the plugin"))
                        ),
                        None => assert!(
                            names.contains(&r.as_str()),
                            "{}",
                            at(&format!("${r} is not a dashboard variable"))
                        ),
                    }
                }
            }
        }
    }
}

/// The provisioning examples name the plugin, tally's database and the dashboards' folder.
#[test]
fn provisioning_examples_match_the_dashboards() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/provisioning");
    let ds = std::fs::read_to_string(dir.join("datasources/tally-clickhouse.yaml")).unwrap();
    for needed in [
        &format!("type: {PLUGIN}"),
        "defaultDatabase: tally",
        "protocol: http",
        "secureJsonData:",
    ] {
        assert!(ds.contains(needed), "datasource example lacks {needed:?}");
    }
    let provider = std::fs::read_to_string(dir.join("dashboards/tally.yaml")).unwrap();
    assert!(provider.contains("type: file") && provider.contains("path: "));
}

/// A Grafana time range: what the plugin receives (milliseconds) for a picker range.
#[derive(Clone, Copy)]
struct Range {
    name: &'static str,
    site: &'static str,
    tz: &'static str,
    /// First and last second, with offset (the API's two-instant `date_range`, end inclusive).
    from: &'static str,
    to: &'static str,
    /// Local days wholly inside, read from rollups when those are the only data.
    whole_days: bool,
}

impl Range {
    fn seconds(t: &str) -> i64 {
        t.parse::<jiff::Timestamp>().unwrap().as_second()
    }
    /// Grafana's "to" of a picked day is its last millisecond.
    fn start_ms(&self) -> i64 {
        Self::seconds(self.from) * 1000
    }
    fn end_ms(&self) -> i64 {
        Self::seconds(self.to) * 1000 + 999
    }
}

const RANGES: [Range; 4] = [
    Range {
        name: "a.example, six whole days",
        site: "a.example",
        tz: "Europe/Amsterdam",
        from: "2026-03-26T00:00:00+01:00",
        to: "2026-03-31T23:59:59+02:00",
        whole_days: true,
    },
    Range {
        name: "a.example, the DST day (hourly)",
        site: "a.example",
        tz: "Europe/Amsterdam",
        from: "2026-03-29T00:00:00+01:00",
        to: "2026-03-29T23:59:59+02:00",
        whole_days: true,
    },
    Range {
        name: "a.example, noon to noon (partial first and last day)",
        site: "a.example",
        tz: "Europe/Amsterdam",
        from: "2026-03-27T12:00:00+01:00",
        to: "2026-03-30T11:59:59+02:00",
        whole_days: false,
    },
    Range {
        name: "b.example, two UTC days across the salt rotation (hourly)",
        site: "b.example",
        tz: "UTC",
        from: "2026-03-27T00:00:00Z",
        to: "2026-03-28T23:59:59Z",
        whole_days: true,
    },
];

/// The panel's SQL as the plugin sends it: Grafana's variable interpolation (`singlequote`
/// escapes `'` with a backslash), then the backend macros (`pkg/macros/macros.go`).
fn interpolate(sql: &str, r: &Range, constants: &[(String, String)]) -> String {
    let quote = |v: &str| format!("'{}'", v.replace('\'', "\\'"));
    let mut out = sql
        .replace("${site:singlequote}", &quote(r.site))
        .replace("${tz:singlequote}", &quote(r.tz));
    for (name, value) in constants {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    // Go's time.Unix() truncates milliseconds.
    out = out
        .replace(
            "$__fromTime_ms",
            &format!("fromUnixTimestamp64Milli({})", r.start_ms()),
        )
        .replace(
            "$__toTime_ms",
            &format!("fromUnixTimestamp64Milli({})", r.end_ms()),
        )
        .replace(
            "$__fromTime",
            &format!("toDateTime({})", r.start_ms().div_euclid(1000)),
        )
        .replace(
            "$__toTime",
            &format!("toDateTime({})", r.end_ms().div_euclid(1000)),
        );
    if let Some(i) = out.find('$') {
        panic!(
            "not substituted (variable or macro this test does not emulate): {}",
            &out[i..(i + 40).min(out.len())]
        );
    }
    out
}

/// Constant variables (visit timeout, bounce threshold) with their values.
fn constants(d: &Value) -> Vec<(String, String)> {
    variables(d)
        .into_iter()
        .filter(|v| v["type"] == "constant")
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["query"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A query's answer: column names and types, rows with numbers as JSON numbers.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    columns: Vec<String>,
    types: Vec<String>,
    rows: Vec<Vec<Value>>,
}

fn numeric(ty: &str) -> bool {
    let inner = ty
        .strip_prefix("Nullable(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(ty);
    inner.starts_with("UInt") || inner.starts_with("Int") || inner.starts_with("Float")
}

impl Answer {
    /// From `JSONCompact` (`meta`, `data`): 64-bit integers arrive as strings on 18.16.
    fn new(columns: Vec<String>, types: Vec<String>, data: &[Value]) -> Answer {
        let rows = data
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .zip(&types)
                    .map(|(v, ty)| match v {
                        Value::String(s) if numeric(ty) => {
                            json!(s.parse::<f64>().unwrap_or_else(|_| panic!("{s:?} as {ty}")))
                        }
                        Value::Number(n) => json!(n.as_f64().unwrap()),
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect();
        Answer {
            columns,
            types,
            rows,
        }
    }

    fn column(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.columns))
    }
}

/// Runs SQL on the test ClickHouse with `db` as the default database, as the data source's
/// default database is for the dashboards' unqualified table names.
async fn run(db: &str, sql: &str) -> Result<Answer, String> {
    let url = format!(
        "{}/?database={db}&default_format=JSONCompact",
        clickhouse_url().trim_end_matches('/')
    );
    let r = reqwest::Client::new()
        .post(url)
        .body(sql.to_string())
        .send()
        .await
        .expect("ClickHouse reachable");
    let ok = r.status().is_success();
    let text = r.text().await.unwrap();
    if !ok {
        return Err(text);
    }
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
    let meta = doc["meta"].as_array().unwrap();
    Ok(Answer::new(
        meta.iter()
            .map(|m| m["name"].as_str().unwrap().into())
            .collect(),
        meta.iter()
            .map(|m| m["type"].as_str().unwrap().into())
            .collect(),
        doc["data"].as_array().unwrap(),
    ))
}

/// The shape a panel type needs: a stat one row of numbers; a time series a `time` column of
/// DateTime, ascending, then numbers; tables, pie and bar charts a label column then numbers.
fn check_shape(ptype: &str, a: &Answer) -> Result<(), String> {
    let numbers_from = |i: usize| a.types[i..].iter().all(|t| numeric(t));
    let ok = match ptype {
        "stat" => a.rows.len() == 1 && numbers_from(0),
        "timeseries" => {
            a.columns.first().is_some_and(|c| c == "time")
                && a.types[0].starts_with("DateTime")
                && a.columns.len() > 1
                && numbers_from(1)
                && a.rows
                    .windows(2)
                    .all(|w| w[0][0].as_str() < w[1][0].as_str())
        }
        "table" | "piechart" | "barchart" => {
            a.columns.len() > 1 && a.types[0] == "String" && numbers_from(1)
        }
        other => return Err(format!("panel type {other} has no shape check")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{ptype} panel: unexpected shape {a:?}"))
    }
}

async fn api(base: &str, body: Value) -> Value {
    let (status, text) = post_query(base, secret(&json!("fixture")), &body).await;
    assert_eq!(status, 200, "stats API: {body} → {text}");
    serde_json::from_str(&text).unwrap()
}

/// What the stats API says for a panel, as rows in the panel's columns.
async fn expected(base: &str, title: &str, r: &Range, a: &Answer) -> Option<Vec<Vec<Value>>> {
    let query = |metrics: &[&str], dims: &[&str], extra: Value| {
        let mut q = json!({"site_id": r.site, "date_range": [r.from, r.to],
            "metrics": metrics, "dimensions": dims});
        if let Value::Object(m) = extra {
            q.as_object_mut().unwrap().extend(m);
        }
        q
    };
    let num = |v: &Value| match v {
        Value::Null => Value::Null,
        v => json!(v.as_f64().unwrap()),
    };
    let metrics_of = |row: &Value| -> Vec<Value> {
        row["metrics"].as_array().unwrap().iter().map(num).collect()
    };
    let results = |v: &Value| v["results"].as_array().unwrap().clone();
    let breakdown = |dim: &'static str, limit: u64| async move {
        // The panel's columns after the label are API metric names, in order.
        let metrics: Vec<&str> = a.columns[1..].iter().map(String::as_str).collect();
        let answer = api(
            base,
            query(&metrics, &[dim], json!({"pagination": {"limit": limit}})),
        )
        .await;
        results(&answer)
            .iter()
            .map(|row| {
                let mut out = vec![row["dimensions"][0].clone()];
                out.extend(metrics_of(row));
                out
            })
            .collect::<Vec<_>>()
    };
    Some(match title {
        "Overview" => {
            let metrics: Vec<&str> = a.columns.iter().map(String::as_str).collect();
            assert_eq!(
                metrics,
                [
                    "visitors",
                    "visits",
                    "pageviews",
                    "views_per_visit",
                    "bounce_rate",
                    "visit_duration"
                ]
            );
            let answer = api(base, query(&metrics, &[], json!({}))).await;
            vec![metrics_of(&results(&answer)[0])]
        }
        "Visit duration percentiles" => {
            assert_eq!(a.columns, ["median", "p75", "p90"]);
            let answer = api(
                base,
                query(
                    &[
                        "visit_duration_median",
                        "visit_duration_p75",
                        "visit_duration_p90",
                    ],
                    &[],
                    json!({}),
                ),
            )
            .await;
            vec![metrics_of(&results(&answer)[0])]
        }
        "Visitors, visits and pageviews" => {
            assert_eq!(a.columns, ["time", "visitors", "visits", "pageviews"]);
            let answer = api(
                base,
                query(
                    &["visitors", "visits", "pageviews"],
                    &["time"],
                    json!({"include": {"time_labels": true}}),
                ),
            )
            .await;
            // Day labels are local midnights in the panel; every label is a bucket, empty ones 0.
            let full = |l: &str| {
                if l.len() == 10 {
                    format!("{l} 00:00:00")
                } else {
                    l.to_string()
                }
            };
            let rows = results(&answer);
            answer["meta"]["time_labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let l = l.as_str().unwrap();
                    let mut out = vec![json!(full(l))];
                    match rows.iter().find(|r| r["dimensions"][0] == l) {
                        Some(r) => out.extend(metrics_of(r)),
                        None => out.extend([json!(0.0), json!(0.0), json!(0.0)]),
                    }
                    out
                })
                .collect()
        }
        "Top pages" => breakdown("event:page", 100).await,
        "Sources" => breakdown("visit:source", 50).await,
        "Countries" => breakdown("visit:country", 50).await,
        "Devices" => breakdown("visit:device", 10).await,
        "Peak hours" => {
            let answer = api(
                base,
                query(
                    &["visitors"],
                    &["time:weekday", "time:hour_of_day"],
                    json!({}),
                ),
            )
            .await;
            let rows = results(&answer);
            let days = [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ];
            (1..=7)
                .map(|wd| {
                    let mut out = vec![json!(days[wd - 1])];
                    for h in 0..24 {
                        let v = rows
                            .iter()
                            .find(|r| r["dimensions"] == json!([wd, h]))
                            .map(|r| num(&r["metrics"][0]))
                            .unwrap_or(json!(0.0));
                        out.push(v);
                    }
                    out
                })
                .collect()
        }
        "Visit durations" => {
            assert_eq!(a.columns, ["duration", "visits"]);
            let answer = api(
                base,
                query(&["visits"], &["visit:duration_bucket"], json!({})),
            )
            .await;
            let rows = results(&answer);
            [
                "0-10s", "10-30s", "30s-1m", "1-3m", "3-10m", "10-30m", "30m+",
            ]
            .iter()
            .map(|b| {
                let v = rows
                    .iter()
                    .find(|r| r["dimensions"][0] == *b)
                    .map(|r| num(&r["metrics"][0]))
                    .unwrap_or(json!(0.0));
                vec![json!(b), v]
            })
            .collect()
        }
        _ => return None,
    })
}

fn same_rows(want: &[Vec<Value>], got: &[Vec<Value>]) -> bool {
    let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9,
        _ => a == b,
    };
    want.len() == got.len()
        && want
            .iter()
            .zip(got)
            .all(|(w, g)| w.len() == g.len() && w.iter().zip(g).all(|(a, b)| same(a, b)))
}

/// Runs `tally` with a subcommand on a config for database `db`.
fn tally(args: &[&str], db: &str, extra: &str) -> String {
    let mut setup = Setup::new("grafana").with(&config()).with(extra);
    setup.db = db.to_string();
    let config = setup.config_path();
    let out =
        crate::support::tally_command(&[args, &["--config", &config.to_string_lossy()]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tally {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Column names of a table, in order.
async fn columns(db: &str, table: &str) -> Vec<String> {
    crate::support::ch_rows(&format!(
        "SELECT name FROM system.columns WHERE database = '{db}' AND table = '{table}'"
    ))
    .await
    .iter()
    .map(|r| r["name"].as_str().unwrap().to_string())
    .collect()
}

const TABLES: [&str; 4] = ["events", "rollup_daily", "rollup_durations", "rollup_days"];
/// Stored visits and their markers (no `day` column: copied whole).
const VISIT_TABLES: [&str; 2] = ["visits", "visit_slices"];

/// Runs every panel of every dashboard on one database state and compares with the stats API.
struct Checker {
    /// The stats API of a tally reading raw events only.
    api: String,
    dashboards: Vec<(String, Value)>,
    compared: usize,
    failures: Vec<String>,
    /// Overview visitors summed over all checks: the comparisons must see real traffic.
    visitors: f64,
    /// (label, panel type, SQL, 18.16 answer) of the state kept for the chDB comparison.
    kept: Vec<(String, String, String, Answer)>,
}

impl Checker {
    async fn state(&mut self, state: &str, db: &str, ranges: &[Range], keep: bool) {
        for (file, d) in &self.dashboards {
            let consts = constants(d);
            for r in ranges {
                for p in panels(d) {
                    let title = p["title"].as_str().unwrap();
                    let sql = interpolate(p["targets"][0]["rawSql"].as_str().unwrap(), r, &consts);
                    let label = format!("{file} / {title} / {} / {state}", r.name);
                    let a = match run(db, &sql).await {
                        Ok(a) => a,
                        Err(e) => {
                            self.failures
                                .push(format!("{label}: ClickHouse 18.16: {e}"));
                            continue;
                        }
                    };
                    if let Err(e) = check_shape(p["type"].as_str().unwrap(), &a) {
                        self.failures.push(format!("{label}: {e}"));
                    }
                    if let Some(want) = expected(&self.api, title, r, &a).await {
                        self.compared += 1;
                        if !same_rows(&want, &a.rows) {
                            self.failures.push(format!(
                                "{label}: differs from the stats API\n  api:     {want:?}\n  grafana: {:?}",
                                a.rows
                            ));
                        }
                    }
                    if title == "Overview" {
                        self.visitors += a.rows[0][a.column("visitors")].as_f64().unwrap();
                    }
                    if keep {
                        self.kept
                            .push((label, p["type"].as_str().unwrap().to_string(), sql, a));
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn dashboard_queries_give_the_stats_api_numbers() {
    // The API answers from raw events (so the comparison does not lean on stored visits or
    // rollups at all).
    let setup = Setup::new("grafana")
        .with(&config())
        .with("[rollups]\nenabled = false\n[visits]\nstore = false\n");
    let t = setup.start().await;
    load_events(&setup.db).await;
    let raw_db = setup.db.clone();
    let mut c = Checker {
        api: t.base.clone(),
        dashboards: dashboards(),
        compared: 0,
        failures: Vec::new(),
        visitors: 0.0,
        kept: Vec::new(),
    };

    c.state("raw events only", &raw_db, &RANGES, false).await;

    // Visits stored, then rolled up from them.
    let out = tally(&["visits"], &raw_db, "");
    assert!(out.contains("hour(s) of visits stored"), "{out}");
    let out = tally(&["rollup"], &raw_db, "");
    assert!(out.contains("site-day(s) rolled up"), "{out}");
    c.state("every day rolled up", &raw_db, &RANGES, false)
        .await;

    // Rollups of the days before the DST day only: the rest is read from raw events. Other
    // databases of the same data get their schema from `tally migrate`.
    let fresh = || {
        let db = crate::support::fresh_db("grafana");
        tally(&["migrate"], &db, "");
        db
    };
    let hybrid_db = fresh();
    ch(&format!(
        "INSERT INTO {hybrid_db}.events SELECT * FROM {raw_db}.events"
    ))
    .await;
    for table in &TABLES[1..] {
        ch(&format!(
            "INSERT INTO {hybrid_db}.{table} SELECT * FROM {raw_db}.{table} \
             WHERE day < toDate('2026-03-29')"
        ))
        .await;
    }
    for table in VISIT_TABLES {
        ch(&format!(
            "INSERT INTO {hybrid_db}.{table} SELECT * FROM {raw_db}.{table}"
        ))
        .await;
    }
    c.state("days before 29 March rolled up", &hybrid_db, &RANGES, true)
        .await;

    // No raw events (past retention), visits stored; every day rolled up twice, and a third
    // computation cut short before its marker: the highest named version is read, once.
    let rollup_db = fresh();
    for (bump, tables) in [(0, &TABLES[1..]), (1, &TABLES[1..]), (2, &TABLES[1..3])] {
        for table in tables {
            let cols: Vec<String> = columns(&raw_db, table)
                .await
                .into_iter()
                .map(|c| {
                    if c == "version" {
                        format!("version + {bump}")
                    } else {
                        c
                    }
                })
                .collect();
            ch(&format!(
                "INSERT INTO {rollup_db}.{table} SELECT {} FROM {raw_db}.{table}",
                cols.join(", ")
            ))
            .await;
        }
    }
    for table in VISIT_TABLES {
        ch(&format!(
            "INSERT INTO {rollup_db}.{table} SELECT * FROM {raw_db}.{table}"
        ))
        .await;
    }
    let whole: Vec<Range> = RANGES.into_iter().filter(|r| r.whole_days).collect();
    c.state("rollups only, computed twice", &rollup_db, &whole, false)
        .await;

    assert!(
        c.failures.is_empty(),
        "{} problem(s):\n{}",
        c.failures.len(),
        c.failures.join("\n\n")
    );
    // Every panel of the overview dashboard was compared in every state and range.
    assert_eq!(
        c.compared,
        9 * (3 * RANGES.len() + whole.len()),
        "comparisons made"
    );
    assert!(c.visitors > 50.0, "fixture visitors seen: {}", c.visitors);
    println!(
        "{} panel answers equal the stats API's (4 data states, {} ranges)",
        c.compared,
        RANGES.len()
    );

    // The site variable lists every site, also from rollups alone.
    let d = &c.dashboards[0].1;
    let site_sql = variables(d)
        .into_iter()
        .find(|v| v["name"] == "site")
        .unwrap()["query"]
        .as_str()
        .unwrap()
        .to_string();
    for db in [&raw_db, &rollup_db] {
        let a = run(db, &site_sql).await.expect("site variable query");
        assert_eq!(
            a.rows,
            vec![vec![json!("a.example")], vec![json!("b.example")]],
            "{db}"
        );
    }

    // Current ClickHouse (chDB): the same data and queries give the same rows.
    let mut tables = serde_json::Map::new();
    for table in TABLES {
        tables.insert(
            table.into(),
            json!(
                ch(&format!(
                    "SELECT * FROM {hybrid_db}.{table} FORMAT JSONEachRow"
                ))
                .await
            ),
        );
    }
    let mut queries: Vec<Value> = c
        .kept
        .iter()
        .map(|(name, _, sql, _)| json!({"name": name, "sql": sql}))
        .collect();
    queries.push(json!({"name": "site variable", "sql": site_sql}));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("grafana_queries.json");
    std::fs::write(
        &input,
        serde_json::to_string(&json!({"tables": tables, "queries": queries})).unwrap(),
    )
    .unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/grafana_chdb_check.py"))
        .arg(format!("{root}/schema"))
        .arg(&input)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "chDB check printed no JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let version = report["clickhouse"].as_str().unwrap_or("?");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), c.kept.len() + 1, "every query ran");
    let mut differ = Vec::new();
    for (res, (name, ptype, _, a)) in results.iter().zip(&c.kept) {
        assert_eq!(res["name"], json!(name));
        if let Some(e) = res["error"].as_str() {
            differ.push(format!("{name}: {e}"));
            continue;
        }
        let strings = |k: &str| -> Vec<String> {
            res[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let b = Answer::new(
            strings("columns"),
            strings("types"),
            res["rows"].as_array().unwrap(),
        );
        if let Err(e) = check_shape(ptype, &b) {
            differ.push(format!("{name}: on {version}: {e}"));
        }
        if b.columns != a.columns || !same_rows(&a.rows, &b.rows) {
            differ.push(format!(
                "{name}:\n  18.16: {:?} {:?}\n  {}: {:?} {:?}",
                a.columns, a.rows, version, b.columns, b.rows
            ));
        }
    }
    let sites = results.last().unwrap();
    assert_eq!(
        sites["rows"],
        json!([["a.example"], ["b.example"]]),
        "site variable on chDB: {sites}"
    );
    assert!(
        differ.is_empty() && out.status.success(),
        "ClickHouse 18.16 and {} differ:\n{}",
        version,
        differ.join("\n")
    );
    println!(
        "{} panel queries give the same rows on ClickHouse 18.16 and {}",
        c.kept.len(),
        version
    );
}

/// The committed dashboard is what `tally grafana-dashboard` prints (its SQL written by the
/// report engine's builders), so neither can change without the other.
#[test]
fn the_committed_dashboard_is_the_generators_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("grafana-dashboard")
        .output()
        .expect("tally runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/tally-overview.json");
    let committed = std::fs::read_to_string(&path).unwrap();
    if let Some((i, (c, g))) = committed
        .lines()
        .zip(generated.lines())
        .enumerate()
        .find(|(_, (c, g))| c != g)
    {
        panic!(
            "{} differs from `tally grafana-dashboard` at line {}:\n  committed: {c}\n  generated: {g}\n\
             regenerate: cargo run -- grafana-dashboard > dashboards/tally-overview.json",
            path.display(),
            i + 1
        );
    }
    assert_eq!(
        committed.lines().count(),
        generated.lines().count(),
        "regenerate: cargo run -- grafana-dashboard > dashboards/tally-overview.json"
    );
    assert_eq!(committed, generated);
}

/// Component vectors for the metric formulas: edge cases (nothing, halves that round half away
/// from zero where ClickHouse's `round` would round to even) and pseudo-random ones.
fn component_cases() -> Vec<[f64; 15]> {
    // pageviews, visitors, visits, bounces, duration sum, visit pageviews, page visits,
    // page ms, scroll count, scroll sum, p50, p75, p90, time-on-page median; total visitors.
    let mut cases = vec![
        [0.0; 15],
        [
            1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ],
        [
            9.0, 7.0, 40.0, 7.0, 100.0, 5.0, 8.0, 20_000.0, 2.0, 45.0, 3.0, 9.0, 30.0, 2.0, 8.0,
        ],
        [
            2.0, 1.0, 2.0, 1.0, 5.0, 3.0, 1.0, 2500.0, 1.0, 1.0, 0.0, 5.0, 5.0, 2.5, 3.0,
        ],
        [
            8.0, 1.0, 8.0, 3.0, 1.0, 1.0, 3.0, 1500.0, 4.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0,
        ],
        [
            3.0, 1.0, 3.0, 1.0, 2.0, 1.0, 6.0, 3000.0, 3.0, 100.0, 0.0, 0.0, 2.0, 1.0, 6.0,
        ],
    ];
    // A fixed linear congruential sequence: the same cases every run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) % n) as f64
    };
    for _ in 0..300 {
        let visits = next(200);
        let page_visits = next(300);
        let scrolls = next(page_visits as u64 + 1);
        let visitors = next(visits as u64 + 1);
        cases.push([
            next(400),
            visitors,
            visits,
            next(visits as u64 + 1),
            next(50_000),
            visits + next(300),
            page_visits,
            next(9_000_000),
            scrolls,
            next(scrolls as u64 * 100 + 1),
            next(2000),
            next(4000),
            next(8000),
            next(600),
            visitors + next(50),
        ]);
    }
    cases
}

/// Every metric's SQL formula (`stats::sql::metrics`) gives what the engine's `answer::metric`
/// gives, for the same components, on ClickHouse 18.16 and on current ClickHouse (chDB).
#[tokio::test]
async fn metric_formulas_in_sql_equal_the_engines() {
    use tally::stats::answer::metric;
    use tally::stats::query::Metric;
    use tally::stats::sql::metrics;

    let cases = component_cases();
    let rows: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let values: Vec<String> = c.iter().map(|v| format!("{v:?}")).collect();
            format!("(toUInt32({i}), [{}])", values.join(", "))
        })
        .collect();
    let c = |i: usize| format!("c[{}]", i + 1);
    let columns: Vec<String> = Metric::ALL
        .iter()
        .map(|m| format!("{} AS {}", metrics::metric(*m, &c, Some("c[15]")), m.name()))
        .collect();
    let sql = format!(
        "SELECT n, {}\nFROM (SELECT tupleElement(r, 1) AS n, \
         arrayMap(x -> toFloat64(x), tupleElement(r, 2)) AS c \
         FROM (SELECT arrayJoin([{}]) AS r))\nORDER BY n",
        columns.join(",\n    "),
        rows.join(", ")
    );
    let check = |server: &str, a: &Answer| {
        assert_eq!(a.rows.len(), cases.len(), "{server}");
        let mut wrong = Vec::new();
        for (row, comps) in a.rows.iter().zip(&cases) {
            for (j, m) in Metric::ALL.iter().enumerate() {
                let want = metric(*m, &comps[..14], Some(comps[14]));
                let got = row[j + 1].as_f64();
                // Exactly equal: the formulas round as Rust does, not merely close to it.
                if want != got {
                    wrong.push(format!(
                        "{} of {comps:?}: engine {want:?}, {server} {got:?}",
                        m.name()
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} formula(s) differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    };
    let a = run("system", &sql)
        .await
        .expect("formulas run on ClickHouse 18.16");
    check("ClickHouse 18.16", &a);

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("formulas.json");
    std::fs::write(
        &input,
        serde_json::to_string(
            &json!({"tables": {}, "queries": [{"name": "formulas", "sql": sql}]}),
        )
        .unwrap(),
    )
    .unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/grafana_chdb_check.py"))
        .arg(format!("{root}/schema"))
        .arg(&input)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "chDB check printed no JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let res = &report["results"][0];
    assert!(res["error"].is_null(), "chDB: {}", res["error"]);
    let strings = |k: &str| -> Vec<String> {
        res[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let b = Answer::new(
        strings("columns"),
        strings("types"),
        res["rows"].as_array().unwrap(),
    );
    check(report["clickhouse"].as_str().unwrap_or("chDB"), &b);
}
