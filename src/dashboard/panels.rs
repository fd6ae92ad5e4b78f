//! The numbers behind each dashboard panel, asked of the stats engine in-process with the same
//! [`Query`] the stats API (`POST /api/v2/query`) parses, so a panel and the API cannot
//! disagree: there is no dashboard SQL. The panel queries run concurrently.

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::error::StatsError;
use crate::http::App;
use crate::stats::query::Query;

use super::view::View;

/// Rows shown in the breakdown tables.
pub const TABLE_ROWS: usize = 10;

/// The headline metrics, in the order shown; the API names them so.
pub const HEADLINE: [&str; 5] = [
    "visitors",
    "visits",
    "pageviews",
    "visit_duration_median",
    "bounce_rate",
];

/// `visit:duration_bucket` values in their natural order (the API orders rows by count).
pub const DURATION_BUCKETS: [&str; 7] = [
    "0-10s", "10-30s", "30s-1m", "1-3m", "3-10m", "10-30m", "30m+",
];

/// A stats answer's row: dimension values as text, metric values (`None` for null).
#[derive(Debug, Clone)]
pub struct Row {
    pub dims: Vec<String>,
    pub metrics: Vec<Option<f64>>,
    /// With a comparison: the earlier period's values and the change.
    pub previous: Option<Vec<Option<f64>>>,
    pub change: Option<Vec<Option<f64>>>,
}

impl Row {
    pub fn metric(&self, i: usize) -> f64 {
        self.metrics.get(i).copied().flatten().unwrap_or(0.0)
    }
}

/// One answer: its rows, and what the engine resolved (the period as local datetimes, the
/// time labels, the row count before paging).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub rows: Vec<Row>,
    pub period: Option<(String, String)>,
    pub time_labels: Vec<String>,
    pub total_rows: Option<u64>,
    /// The resolved time dimension (`time:hour`, `time:day`, …) for a `time` query.
    pub time_dimension: Option<String>,
}

pub type Panel = Result<Answer, StatsError>;

/// Everything one dashboard page shows.
pub struct Data {
    pub headline: Panel,
    pub series: Panel,
    pub pages: Panel,
    pub sources: Panel,
    pub campaigns: Panel,
    pub countries: Panel,
    pub devices: Panel,
    pub browsers: Panel,
    pub oses: Panel,
    pub heatmap: Panel,
    pub hours: Panel,
    pub durations: Panel,
    pub realtime: Panel,
}

/// The query bodies of a view, each as the API would receive it.
pub struct Queries {
    pub headline: Value,
    pub series: Value,
    pub pages: Value,
    pub sources: Value,
    pub campaigns: Value,
    pub countries: Value,
    pub devices: Value,
    pub browsers: Value,
    pub oses: Value,
    pub heatmap: Value,
    pub hours: Value,
    pub durations: Value,
    pub realtime: Value,
}

impl Queries {
    pub fn of(view: &View) -> Queries {
        let base = |metrics: &[&str], dims: &[&str]| -> Value {
            json!({
                "site_id": view.site,
                "metrics": metrics,
                "date_range": view.period.date_range(),
                "dimensions": dims,
                "filters": view.filters_json(),
            })
        };
        let top = |metrics: &[&str], dim: &str, limit: usize| -> Value {
            let mut q = base(metrics, &[dim]);
            q["pagination"] = json!({ "limit": limit });
            q["include"] = json!({ "total_rows": true });
            q
        };
        let mut headline = base(
            &[
                HEADLINE[0],
                HEADLINE[1],
                HEADLINE[2],
                HEADLINE[3],
                HEADLINE[4],
                "visit_duration_p75",
                "visit_duration_p90",
                "views_per_visit",
            ],
            &[],
        );
        if let Some(c) = view.compare.include() {
            headline["include"] = json!({ "comparisons": c });
        }
        let mut series = base(&["visitors", "pageviews"], &["time"]);
        series["include"] = json!({ "time_labels": true });
        let mut heatmap = base(&["visitors"], &["time:weekday", "time:hour_of_day"]);
        heatmap["pagination"] = json!({ "limit": 7 * 24 });
        Queries {
            headline,
            series,
            pages: top(
                &["pageviews", "visitors", "time_on_page", "bounce_rate"],
                "event:page",
                TABLE_ROWS,
            ),
            sources: top(
                &["visitors", "visits", "bounce_rate"],
                "visit:source",
                TABLE_ROWS,
            ),
            // One more than shown: the `(not set)` row of visits without a campaign is dropped.
            campaigns: top(
                &["visitors", "visits"],
                "visit:utm_campaign",
                TABLE_ROWS + 1,
            ),
            countries: top(&["visitors", "percentage"], "visit:country", TABLE_ROWS),
            devices: top(&["visitors", "percentage"], "visit:device", TABLE_ROWS),
            browsers: top(&["visitors", "percentage"], "visit:browser", TABLE_ROWS),
            oses: top(&["visitors", "percentage"], "visit:os", TABLE_ROWS),
            heatmap,
            hours: base(&["visitors", "pageviews"], &["time:hour_of_day"]),
            durations: base(&["visits"], &["visit:duration_bucket"]),
            // Who is on the site now, whatever the period and filters.
            realtime: json!({
                "site_id": view.site,
                "metrics": ["visitors"],
                "date_range": "realtime",
            }),
        }
    }
}

/// Runs one query body through the stats engine as the API would.
pub async fn run(app: &App, body: &Value, now: Timestamp) -> Panel {
    let query = Query::parse(body.to_string().as_bytes())?;
    let answer = app.stats.run(&query, now).await?;
    Ok(parse_answer(&answer))
}

/// All panels of a view, concurrently.
pub async fn load(app: &App, view: &View, now: Timestamp) -> Data {
    let q = Queries::of(view);
    let (
        headline,
        series,
        pages,
        sources,
        campaigns,
        countries,
        devices,
        browsers,
        oses,
        heatmap,
        hours,
        durations,
        realtime,
    ) = tokio::join!(
        run(app, &q.headline, now),
        run(app, &q.series, now),
        run(app, &q.pages, now),
        run(app, &q.sources, now),
        run(app, &q.campaigns, now),
        run(app, &q.countries, now),
        run(app, &q.devices, now),
        run(app, &q.browsers, now),
        run(app, &q.oses, now),
        run(app, &q.heatmap, now),
        run(app, &q.hours, now),
        run(app, &q.durations, now),
        run(app, &q.realtime, now),
    );
    Data {
        headline,
        series,
        pages,
        sources,
        campaigns,
        countries,
        devices,
        browsers,
        oses,
        heatmap,
        hours,
        durations,
        realtime,
    }
}

fn numbers(v: &Value) -> Vec<Option<f64>> {
    v.as_array()
        .map(|a| a.iter().map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The API's JSON answer as rows (the same JSON a client of `/api/v2/query` receives).
pub fn parse_answer(answer: &Value) -> Answer {
    let rows = answer["results"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| Row {
                    dims: r["dimensions"]
                        .as_array()
                        .map(|d| d.iter().map(text).collect())
                        .unwrap_or_default(),
                    metrics: numbers(&r["metrics"]),
                    previous: r.get("comparison").map(|c| numbers(&c["metrics"])),
                    change: r.get("comparison").map(|c| numbers(&c["change"])),
                })
                .collect()
        })
        .unwrap_or_default();
    let period = answer["query"]["date_range"].as_array().and_then(|a| {
        Some((
            a.first()?.as_str()?.to_string(),
            a.get(1)?.as_str()?.to_string(),
        ))
    });
    let time_dimension = answer["query"]["dimensions"]
        .as_array()
        .and_then(|d| {
            d.iter()
                .filter_map(Value::as_str)
                .find(|d| d.starts_with("time"))
        })
        .map(str::to_string);
    Answer {
        rows,
        period,
        time_labels: answer["meta"]["time_labels"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default(),
        total_rows: answer["meta"]["total_rows"].as_u64(),
        time_dimension,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::view::View;

    #[test]
    fn every_panel_query_is_a_valid_stats_api_query() {
        for q in [
            "",
            "period=today&compare=off&page=/x",
            "period=custom&from=2026-01-01&to=2026-03-31&compare=year_over_year&country=NL&device=Mobile&os=iOS&browser=Safari&source=Google&utm_campaign=spring",
        ] {
            let view = View::parse("/d".into(), "a.example".into(), Some(q)).unwrap();
            let qs = Queries::of(&view);
            for body in [
                &qs.headline,
                &qs.series,
                &qs.pages,
                &qs.sources,
                &qs.campaigns,
                &qs.countries,
                &qs.devices,
                &qs.browsers,
                &qs.oses,
                &qs.heatmap,
                &qs.hours,
                &qs.durations,
                &qs.realtime,
            ] {
                let parsed = Query::parse(body.to_string().as_bytes());
                assert!(parsed.is_ok(), "{body}: {parsed:?}");
            }
        }
    }

    #[test]
    fn answers_become_rows() {
        let a = parse_answer(&json!({
            "results": [
                {"metrics": [3, null], "dimensions": ["/a", 7],
                 "comparison": {"dimensions": ["/a", 7], "metrics": [2, 1.5], "change": [50, null]}}
            ],
            "meta": {"time_labels": ["2026-03-01"], "total_rows": 12},
            "query": {"date_range": ["2026-03-01T00:00:00+01:00", "2026-03-01T23:59:59+01:00"],
                      "dimensions": ["time:day"]}
        }));
        assert_eq!(a.rows[0].dims, vec!["/a", "7"]);
        assert_eq!(a.rows[0].metrics, vec![Some(3.0), None]);
        assert_eq!(a.rows[0].change.as_ref().unwrap()[0], Some(50.0));
        assert_eq!(a.total_rows, Some(12));
        assert_eq!(a.time_labels, vec!["2026-03-01"]);
        assert_eq!(a.time_dimension.as_deref(), Some("time:day"));
        assert_eq!(a.period.unwrap().0, "2026-03-01T00:00:00+01:00");
    }
}
