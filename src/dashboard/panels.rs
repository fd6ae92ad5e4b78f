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

/// `visit:duration_bucket` values in their natural order (the API orders rows by count).
pub const DURATION_BUCKETS: [&str; 7] = [
    "0-10s", "10-30s", "30s-1m", "1-3m", "3-10m", "10-30m", "30m+",
];

/// How a number is written for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Count,
    Duration,
    Percent,
}

/// A metric as the dashboard shows it: the API's name, a label, and its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col {
    pub metric: &'static str,
    pub label: &'static str,
    pub fmt: Fmt,
}

const fn col(metric: &'static str, label: &'static str, fmt: Fmt) -> Col {
    Col { metric, label, fmt }
}

/// A breakdown table: one dimension, its metrics, and the filter a click on a row adds.
#[derive(Debug, Clone)]
pub struct Breakdown {
    /// `data-panel` and element id.
    pub id: &'static str,
    /// The panel (`<section>`) it sits in, and its heading inside that panel ("" for none).
    pub section: &'static str,
    pub title: &'static str,
    pub dimension: &'static str,
    pub header: &'static str,
    /// The URL parameter of the filter a click adds (see `view::FILTERS`).
    pub filter: Option<&'static str>,
    pub cols: Vec<Col>,
    /// A row not shown (campaigns: visits without one).
    pub hide: Option<&'static str>,
}

/// Which numbers this tally keeps: visits (the normal case), or only aggregate counts
/// (`privacy.aggregate_only`: no visitors, visits, durations, filters or realtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Visits,
    Aggregate,
}

/// The headline metrics, in the order shown.
pub fn headline(mode: Mode) -> Vec<Col> {
    match mode {
        Mode::Visits => vec![
            col("visitors", "Visitors", Fmt::Count),
            col("visits", "Visits", Fmt::Count),
            col("pageviews", "Pageviews", Fmt::Count),
            col("visit_duration_median", "Median visit", Fmt::Duration),
            col("bounce_rate", "Bounce rate", Fmt::Percent),
        ],
        Mode::Aggregate => vec![col("pageviews", "Pageviews", Fmt::Count)],
    }
}

/// Asked with the headline, shown in the visit-duration panel.
pub const DURATION_SUMMARY: [&str; 3] = [
    "visit_duration_p75",
    "visit_duration_p90",
    "views_per_visit",
];

/// The metric counted per time bucket, hour and weekday: people where visits are kept.
pub fn people(mode: Mode) -> Col {
    match mode {
        Mode::Visits => col("visitors", "Visitors", Fmt::Count),
        Mode::Aggregate => col("pageviews", "Pageviews", Fmt::Count),
    }
}

/// Every breakdown table of the page, in order. A filtered view has no share column: its
/// `percentage` costs the engine a second pass over raw events per table (filtered reports
/// are not rolled up), and a filtered page already makes a dozen.
pub fn breakdowns(mode: Mode, filtered: bool) -> Vec<Breakdown> {
    let (people, share) = match mode {
        Mode::Visits if filtered => (
            vec![col("visitors", "Visitors", Fmt::Count)],
            vec![col("visitors", "Visitors", Fmt::Count)],
        ),
        Mode::Visits => (
            vec![col("visitors", "Visitors", Fmt::Count)],
            vec![
                col("visitors", "Visitors", Fmt::Count),
                col("percentage", "Share", Fmt::Percent),
            ],
        ),
        Mode::Aggregate => (
            vec![col("pageviews", "Pageviews", Fmt::Count)],
            vec![col("pageviews", "Pageviews", Fmt::Count)],
        ),
    };
    let pages = match mode {
        Mode::Visits => vec![
            col("pageviews", "Views", Fmt::Count),
            col("visitors", "Visitors", Fmt::Count),
            col("time_on_page", "Time on page", Fmt::Duration),
            col("bounce_rate", "Bounce rate", Fmt::Percent),
        ],
        Mode::Aggregate => vec![
            col("pageviews", "Views", Fmt::Count),
            col("time_on_page", "Time on page", Fmt::Duration),
        ],
    };
    let sources = match mode {
        Mode::Visits => vec![
            col("visitors", "Visitors", Fmt::Count),
            col("visits", "Visits", Fmt::Count),
            col("bounce_rate", "Bounce rate", Fmt::Percent),
        ],
        Mode::Aggregate => people.clone(),
    };
    let campaigns = match mode {
        Mode::Visits => vec![
            col("visitors", "Visitors", Fmt::Count),
            col("visits", "Visits", Fmt::Count),
        ],
        Mode::Aggregate => people.clone(),
    };
    let b = |id, section, title, dimension, header, filter, cols, hide| Breakdown {
        id,
        section,
        title,
        dimension,
        header,
        filter,
        cols,
        hide,
    };
    vec![
        b(
            "pages",
            "pages",
            "",
            "event:page",
            "Page",
            Some("page"),
            pages,
            None,
        ),
        b(
            "sources",
            "sources",
            "Sources",
            "visit:source",
            "Source",
            Some("source"),
            sources,
            None,
        ),
        b(
            "campaigns",
            "sources",
            "Campaigns (utm_campaign)",
            "visit:utm_campaign",
            "Campaign",
            Some("utm_campaign"),
            campaigns,
            Some("(not set)"),
        ),
        b(
            "countries",
            "countries",
            "",
            "visit:country",
            "Country",
            Some("country"),
            share.clone(),
            None,
        ),
        b(
            "devices",
            "devices",
            "Devices",
            "visit:device",
            "Device",
            Some("device"),
            share.clone(),
            None,
        ),
        b(
            "browsers",
            "devices",
            "Browsers",
            "visit:browser",
            "Browser",
            Some("browser"),
            share.clone(),
            None,
        ),
        b(
            "oses",
            "devices",
            "Operating systems",
            "visit:os",
            "OS",
            Some("os"),
            share,
            None,
        ),
    ]
}

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

/// The query bodies of a view, each as the API would receive it. `None`: the panel is not
/// shown in this mode.
pub struct Queries {
    /// The breakdown tables of this view, in the order of `tables`.
    pub breakdowns: Vec<Breakdown>,
    pub headline: Value,
    pub series: Value,
    pub tables: Vec<Value>,
    pub heatmap: Value,
    pub hours: Value,
    pub durations: Option<Value>,
    pub realtime: Option<Value>,
}

/// Everything one dashboard page shows (the same shape as [`Queries`]).
pub struct Data {
    pub mode: Mode,
    pub breakdowns: Vec<Breakdown>,
    pub headline: Panel,
    pub series: Panel,
    /// In the order of `breakdowns`.
    pub tables: Vec<Panel>,
    pub heatmap: Panel,
    pub hours: Panel,
    pub durations: Option<Panel>,
    pub realtime: Option<Panel>,
}

impl Queries {
    pub fn of(view: &View, mode: Mode) -> Queries {
        let base = |metrics: &[&str], dims: &[&str]| -> Value {
            json!({
                "site_id": view.site,
                "metrics": metrics,
                "date_range": view.period.date_range(),
                "dimensions": dims,
                "filters": view.filters_json(),
            })
        };
        let names = |cols: &[Col]| -> Vec<&'static str> { cols.iter().map(|c| c.metric).collect() };
        let mut head = names(&headline(mode));
        if mode == Mode::Visits {
            head.extend(DURATION_SUMMARY);
        }
        let mut headline = base(&head, &[]);
        if let Some(c) = view.compare.include() {
            headline["include"] = json!({ "comparisons": c });
        }
        let people = people(mode).metric;
        let mut series = match mode {
            Mode::Visits => base(&["visitors", "pageviews"], &["time"]),
            Mode::Aggregate => base(&["pageviews"], &["time"]),
        };
        series["include"] = json!({ "time_labels": true });
        let breakdowns = breakdowns(mode, !view.filters.is_empty());
        let tables = breakdowns
            .iter()
            .map(|b| {
                let mut q = base(&names(&b.cols), &[b.dimension]);
                // One more than shown when a row is hidden.
                let limit = TABLE_ROWS + usize::from(b.hide.is_some());
                q["pagination"] = json!({ "limit": limit });
                q["include"] = json!({ "total_rows": true });
                q
            })
            .collect();
        let mut heatmap = base(&[people], &["time:weekday", "time:hour_of_day"]);
        heatmap["pagination"] = json!({ "limit": 7 * 24 });
        let hours = match mode {
            Mode::Visits => base(&["visitors", "pageviews"], &["time:hour_of_day"]),
            Mode::Aggregate => base(&["pageviews"], &["time:hour_of_day"]),
        };
        Queries {
            breakdowns,
            headline,
            series,
            tables,
            heatmap,
            hours,
            durations: (mode == Mode::Visits)
                .then(|| base(&["visits"], &["visit:duration_bucket"])),
            // Who is on the site now, whatever the period and filters.
            realtime: (mode == Mode::Visits).then(|| {
                json!({
                    "site_id": view.site,
                    "metrics": ["visitors"],
                    "date_range": "realtime",
                })
            }),
        }
    }
}

/// Engine runs of all dashboard pages together, at most. A page asks about a dozen questions
/// at once; unbounded, a few people clicking filters (raw-event reports) would start dozens of
/// scans that slow each other past the 30 s limit. Measured on the reports benchmark's data
/// (10M events, 2 cores, servers with 6 and unbounded taking turns): 30-day page 0.48–0.67 s
/// vs 0.50–0.62 s, today's (raw events) 4.1–7.5 s vs 4.3–7.9 s: no slower.
const MAX_CONCURRENT_RUNS: usize = 6;

/// Runs one query body through the stats engine as the API would.
pub async fn run(app: &App, body: &Value, now: Timestamp) -> Panel {
    let query = Query::parse(body.to_string().as_bytes())?;
    static RUNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    // The semaphore is never closed, so acquiring cannot fail; run unbounded if it did.
    let _permit = RUNS
        .get_or_init(|| tokio::sync::Semaphore::new(MAX_CONCURRENT_RUNS))
        .acquire()
        .await;
    let answer = app.stats.run(&query, now).await?;
    Ok(parse_answer(&answer))
}

async fn maybe(app: &App, body: &Option<Value>, now: Timestamp) -> Option<Panel> {
    match body {
        Some(b) => Some(run(app, b, now).await),
        None => None,
    }
}

/// All panels of a view, concurrently.
pub async fn load(app: &App, view: &View, mode: Mode, now: Timestamp) -> Data {
    let q = Queries::of(view, mode);
    let tables = futures_join(app, &q.tables, now);
    let (headline, series, tables, heatmap, hours, durations, realtime) = tokio::join!(
        run(app, &q.headline, now),
        run(app, &q.series, now),
        tables,
        run(app, &q.heatmap, now),
        run(app, &q.hours, now),
        maybe(app, &q.durations, now),
        maybe(app, &q.realtime, now),
    );
    Data {
        mode,
        breakdowns: q.breakdowns,
        headline,
        series,
        tables,
        heatmap,
        hours,
        durations,
        realtime,
    }
}

/// The breakdown queries, concurrently, answers in order.
async fn futures_join(app: &App, bodies: &[Value], now: Timestamp) -> Vec<Panel> {
    let mut set = Vec::with_capacity(bodies.len());
    for b in bodies {
        set.push(run(app, b, now));
    }
    join_all(set).await
}

/// Polls the futures together (a small `join_all`: no dependency for one loop).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futures.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
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
            for mode in [Mode::Visits, Mode::Aggregate] {
                let qs = Queries::of(&view, mode);
                assert_eq!(qs.tables.len(), qs.breakdowns.len());
                let bodies = [&qs.headline, &qs.series, &qs.heatmap, &qs.hours]
                    .into_iter()
                    .chain(&qs.tables)
                    .chain(qs.durations.iter())
                    .chain(qs.realtime.iter());
                for body in bodies {
                    let parsed = Query::parse(body.to_string().as_bytes());
                    assert!(parsed.is_ok(), "{body}: {parsed:?}");
                }
            }
        }
    }

    /// Aggregate-only mode asks only for what it keeps (the engine refuses the rest).
    #[test]
    fn aggregate_mode_asks_for_no_visit_metric() {
        let view = View::parse("/d".into(), "a.example".into(), None).unwrap();
        let qs = Queries::of(&view, Mode::Aggregate);
        let mut all = vec![&qs.headline, &qs.series, &qs.heatmap, &qs.hours];
        all.extend(&qs.tables);
        for body in all {
            let q = Query::parse(body.to_string().as_bytes()).unwrap();
            for m in &q.metrics {
                assert!(
                    !crate::aggregate::UNAVAILABLE_METRICS.contains(m),
                    "{} in {body}",
                    m.name()
                );
            }
            for d in &q.dimensions {
                assert!(!crate::aggregate::UNAVAILABLE_DIMENSIONS.contains(d));
            }
        }
        assert!(qs.durations.is_none() && qs.realtime.is_none());
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
