//! The numbers behind each dashboard panel, asked of the report engine in-process with the
//! same typed [`Query`] the stats API (`POST /api/v2/query`) parses its JSON into, so a panel
//! and the API cannot disagree: there is no dashboard SQL. The panel queries run concurrently,
//! at most [`MAX_CONCURRENT_RUNS`] at once over all pages.

use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::error::StatsError;
use crate::stats::prefiltered::Prefiltered;
use crate::stats::query::{Comparison, DateRange, Dimension, Metric, Query};
use crate::stats::Stats;

use super::view::{Compare, Period, View};

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

/// A metric as the dashboard shows it: the API's name, a label (a message key), and its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col {
    pub metric: Metric,
    pub label: &'static str,
    pub fmt: Fmt,
}

const fn col(metric: Metric, label: &'static str, fmt: Fmt) -> Col {
    Col { metric, label, fmt }
}

/// A breakdown table: one dimension, its metrics, and the filter a click on a row adds.
#[derive(Debug, Clone)]
pub struct Breakdown {
    /// `data-panel` and element id.
    pub id: &'static str,
    /// The panel (`<section>`) it sits in, and its heading inside that panel (a message key;
    /// "" for none).
    pub section: &'static str,
    pub title: &'static str,
    pub dimension: Dimension,
    /// The heading of the values' column (a message key).
    pub header: &'static str,
    /// The URL parameter of the filter a click adds (see `view::FILTERS`).
    pub filter: Option<&'static str>,
    pub cols: Vec<Col>,
    /// A row not shown (campaigns: visits without one).
    pub hide: Option<&'static str>,
}

/// Which numbers this tally keeps: visits (the normal case), or only aggregate counts
/// (`privacy.aggregate_only`: no visitors, visits, durations, filters or realtime); and, where
/// visits are kept, whether the view is filtered by a goal (`Conversions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Visits,
    Aggregate,
    /// Visits kept, the view filtered by a goal or a custom property: a conversion report
    /// answers converted visitors, conversions, their pageviews and conversion rates only (see
    /// `docs/http-api.md`), so every panel counts those.
    Conversions,
}

impl Mode {
    /// The mode `view` is shown in: a goal or property filter turns a visits view into
    /// conversions.
    pub fn of_view(self, view: &View) -> Mode {
        match self {
            Mode::Visits if view.by_goal() => Mode::Conversions,
            other => other,
        }
    }
}

/// A goal's or a row's conversions: unique, total, and the rate (`rate`: the conversion rate of
/// all visitors, or of the row's group).
fn conversions(rate: Metric) -> Vec<Col> {
    vec![
        col(Metric::Visitors, "metric.uniques", Fmt::Count),
        col(Metric::Events, "metric.total_conversions", Fmt::Count),
        col(rate, "metric.conversion_rate", Fmt::Percent),
    ]
}

/// The headline metrics, in the order shown.
pub fn headline(mode: Mode) -> Vec<Col> {
    match mode {
        Mode::Visits => vec![
            col(Metric::Visitors, "metric.visitors", Fmt::Count),
            col(Metric::Visits, "metric.visits", Fmt::Count),
            col(Metric::Pageviews, "metric.pageviews", Fmt::Count),
            col(
                Metric::VisitDurationMedian,
                "metric.visit_duration_median",
                Fmt::Duration,
            ),
            col(Metric::BounceRate, "metric.bounce_rate", Fmt::Percent),
        ],
        Mode::Aggregate => vec![col(Metric::Pageviews, "metric.pageviews", Fmt::Count)],
        Mode::Conversions => conversions(Metric::ConversionRate),
    }
}

/// Asked with the headline, shown in the visit-duration panel.
pub const DURATION_SUMMARY: [Metric; 3] = [
    Metric::VisitDurationP75,
    Metric::VisitDurationP90,
    Metric::ViewsPerVisit,
];

/// The metric counted per time bucket, hour and weekday: people where visits are kept.
pub fn people(mode: Mode) -> Col {
    match mode {
        Mode::Visits => col(Metric::Visitors, "metric.visitors", Fmt::Count),
        Mode::Aggregate => col(Metric::Pageviews, "metric.pageviews", Fmt::Count),
        Mode::Conversions => col(Metric::Visitors, "metric.uniques", Fmt::Count),
    }
}

/// The time series' and the hours' metrics (the over-time and peak-hours panels).
pub fn series_metrics(mode: Mode) -> &'static [Metric] {
    match mode {
        Mode::Visits => &[Metric::Visitors, Metric::Pageviews],
        Mode::Aggregate => &[Metric::Pageviews],
        Mode::Conversions => &[Metric::Visitors, Metric::Events],
    }
}

/// Every breakdown table of the page, in order. A filtered view has no share column: its
/// `percentage` costs the engine a second pass over raw events per table (filtered reports
/// are not rolled up), and a filtered page already makes a dozen. The goals table is there
/// when the site has goals and visits are kept; filtered by a goal, every table counts its
/// conversions, with each row's own conversion rate. The properties table (`props`: the site
/// has allow-listed custom properties) breaks down the pageviews and custom events by one of
/// them, the shown one, whose place in the query's `prop_keys` [`Queries::of`] sets.
pub fn breakdowns(mode: Mode, filtered: bool, goals: bool, props: bool) -> Vec<Breakdown> {
    let mut tables = tables(mode, filtered);
    if mode == Mode::Conversions {
        for t in &mut tables {
            t.cols = conversions(Metric::GroupConversionRate);
        }
    }
    if goals && mode != Mode::Aggregate {
        tables.insert(
            0,
            Breakdown {
                id: "goals",
                section: "goals",
                title: "",
                dimension: Dimension::Goal,
                header: "dimension.goal",
                filter: Some("goal"),
                cols: conversions(Metric::ConversionRate),
                hide: None,
            },
        );
    }
    if props && mode != Mode::Aggregate {
        let at = usize::from(goals);
        tables.insert(
            at,
            Breakdown {
                id: "props",
                section: "props",
                title: "",
                dimension: Dimension::Prop(0),
                header: "dimension.prop_value",
                // Its rows filter by the shown property (`props.KEY`), which the page knows.
                filter: None,
                // Filtered by a goal, its rows are that goal's conversions, as the goals
                // table's are.
                cols: match mode {
                    Mode::Conversions => conversions(Metric::ConversionRate),
                    _ => vec![
                        col(Metric::Visitors, "metric.visitors", Fmt::Count),
                        col(Metric::Pageviews, "metric.pageviews", Fmt::Count),
                        col(Metric::Events, "metric.events", Fmt::Count),
                    ],
                },
                hide: None,
            },
        );
    }
    tables
}

/// The breakdown tables other than goals.
fn tables(mode: Mode, filtered: bool) -> Vec<Breakdown> {
    let (people, share) = match mode {
        Mode::Visits | Mode::Conversions if filtered => (
            vec![col(Metric::Visitors, "metric.visitors", Fmt::Count)],
            vec![col(Metric::Visitors, "metric.visitors", Fmt::Count)],
        ),
        Mode::Visits | Mode::Conversions => (
            vec![col(Metric::Visitors, "metric.visitors", Fmt::Count)],
            vec![
                col(Metric::Visitors, "metric.visitors", Fmt::Count),
                col(Metric::Percentage, "metric.percentage", Fmt::Percent),
            ],
        ),
        Mode::Aggregate => (
            vec![col(Metric::Pageviews, "metric.pageviews", Fmt::Count)],
            vec![col(Metric::Pageviews, "metric.pageviews", Fmt::Count)],
        ),
    };
    let pages = match mode {
        Mode::Visits | Mode::Conversions => vec![
            col(Metric::Pageviews, "metric.views", Fmt::Count),
            col(Metric::Visitors, "metric.visitors", Fmt::Count),
            col(Metric::TimeOnPage, "metric.time_on_page", Fmt::Duration),
            col(Metric::BounceRate, "metric.bounce_rate", Fmt::Percent),
        ],
        Mode::Aggregate => vec![
            col(Metric::Pageviews, "metric.views", Fmt::Count),
            col(Metric::TimeOnPage, "metric.time_on_page", Fmt::Duration),
        ],
    };
    let sources = match mode {
        Mode::Visits | Mode::Conversions => vec![
            col(Metric::Visitors, "metric.visitors", Fmt::Count),
            col(Metric::Visits, "metric.visits", Fmt::Count),
            col(Metric::BounceRate, "metric.bounce_rate", Fmt::Percent),
        ],
        Mode::Aggregate => people.clone(),
    };
    let campaigns = match mode {
        Mode::Visits | Mode::Conversions => vec![
            col(Metric::Visitors, "metric.visitors", Fmt::Count),
            col(Metric::Visits, "metric.visits", Fmt::Count),
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
            Dimension::Page,
            "dimension.page",
            Some("page"),
            pages,
            None,
        ),
        b(
            "sources",
            "sources",
            "table.sources",
            Dimension::Source,
            "dimension.source",
            Some("source"),
            sources,
            None,
        ),
        b(
            "campaigns",
            "sources",
            "table.campaigns",
            Dimension::UtmCampaign,
            "dimension.utm_campaign",
            Some("utm_campaign"),
            campaigns,
            Some("(not set)"),
        ),
        b(
            "countries",
            "countries",
            "",
            Dimension::Country,
            "dimension.country",
            Some("country"),
            share.clone(),
            None,
        ),
        b(
            "devices",
            "devices",
            "table.devices",
            Dimension::Device,
            "dimension.device",
            Some("device"),
            share.clone(),
            None,
        ),
        b(
            "browsers",
            "devices",
            "table.browsers",
            Dimension::Browser,
            "dimension.browser",
            Some("browser"),
            share.clone(),
            None,
        ),
        b(
            "oses",
            "devices",
            "table.oses",
            Dimension::Os,
            "dimension.os_short",
            Some("os"),
            share,
            None,
        ),
    ]
}

/// A stats answer's row as the page shows it: dimension values as text, metric values (`None`
/// for null), and with a comparison the earlier period's values and the change.
#[derive(Debug, Clone)]
pub struct Row {
    pub dims: Vec<String>,
    pub metrics: Vec<Option<f64>>,
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

impl Answer {
    fn of(query: &Query, a: crate::stats::Answer) -> Answer {
        let [from, to] = a.period.echo();
        Answer {
            time_dimension: a.time_dimension().map(|d| d.name().to_string()),
            total_rows: query.total_rows.then_some(a.total_rows as u64),
            time_labels: a.time_labels.unwrap_or_default(),
            period: Some((from, to)),
            rows: a
                .rows
                .into_iter()
                .map(|r| Row {
                    previous: r.compared.as_ref().map(|c| c.metrics.clone()),
                    change: r
                        .compared
                        .map(|c| c.change.into_iter().map(|x| x.map(|v| v as f64)).collect()),
                    dims: r.dims,
                    metrics: r.metrics,
                })
                .collect(),
        }
    }
}

pub type Panel = Result<Answer, StatsError>;

/// The queries of a view. `None`: the panel is not shown in this mode.
pub struct Queries {
    /// The breakdown tables of this view, in the order of `tables`.
    pub breakdowns: Vec<Breakdown>,
    pub headline: Query,
    pub series: Query,
    pub tables: Vec<Query>,
    pub heatmap: Query,
    pub hours: Query,
    pub durations: Option<Query>,
    pub realtime: Option<Query>,
}

/// Everything one dashboard page shows (the same shape as [`Queries`]).
pub struct Data {
    pub mode: Mode,
    /// The site's allow-listed custom properties (the properties panel's choices).
    pub props: Vec<String>,
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

impl Data {
    /// The headline answered, and every number in it is 0 (or none): nothing in the period.
    pub fn is_empty(&self) -> bool {
        self.headline.as_ref().is_ok_and(|a| {
            a.rows
                .iter()
                .all(|r| r.metrics.iter().all(|m| m.unwrap_or(0.0) == 0.0))
        })
    }
}

impl Queries {
    /// The queries of `view` in `mode` (a goal filter turns visits into conversions, see
    /// [`Mode::of_view`]); `goals`: the site has goals (the goals table is shown); `prop`: the
    /// custom property the properties table breaks down (`None`: the site has none).
    pub fn of(view: &View, mode: Mode, goals: bool, prop: Option<&str>) -> Queries {
        let mode = mode.of_view(view);
        let base = |metrics: &[Metric], dims: &[Dimension]| -> Query {
            let mut q = Query::new(&view.site, metrics, view.period.date_range())
                .by(dims)
                .filtered(view.filters());
            // The keys the property filters' dimensions index.
            q.prop_keys = view.prop_keys();
            q
        };
        let names = |cols: &[Col]| -> Vec<Metric> { cols.iter().map(|c| c.metric).collect() };
        let mut head = names(&headline(mode));
        if mode == Mode::Visits {
            head.extend(DURATION_SUMMARY);
        }
        let mut headline = base(&head, &[]);
        headline.comparison = match view.compare {
            Compare::Off => None,
            Compare::PreviousPeriod => Some(Comparison::PreviousPeriod),
            Compare::YearOverYear => Some(Comparison::YearOverYear),
        };
        let people = people(mode).metric;
        let mut series = base(series_metrics(mode), &[Dimension::Time]);
        series.time_labels = true;
        let breakdowns = breakdowns(mode, view.is_filtered(), goals, prop.is_some());
        let tables = breakdowns
            .iter()
            .map(|b| {
                let mut q = base(&names(&b.cols), &[b.dimension]);
                if let (Dimension::Prop(_), Some(key)) = (b.dimension, prop) {
                    // The shown key, where the filters already name it or after them.
                    let i = match q.prop_keys.iter().position(|k| k == key) {
                        Some(i) => i,
                        None => {
                            q.prop_keys.push(key.to_string());
                            q.prop_keys.len() - 1
                        }
                    };
                    q.dimensions = vec![Dimension::Prop(i as u8)];
                }
                // One more than shown when a row is hidden.
                q.limit = TABLE_ROWS + usize::from(b.hide.is_some());
                q.total_rows = true;
                q
            })
            .collect();
        let mut heatmap = base(&[people], &[Dimension::Weekday, Dimension::HourOfDay]);
        heatmap.limit = 7 * 24;
        let hours = base(series_metrics(mode), &[Dimension::HourOfDay]);
        Queries {
            breakdowns,
            headline,
            series,
            tables,
            heatmap,
            hours,
            durations: (mode == Mode::Visits)
                .then(|| base(&[Metric::Visits], &[Dimension::DurationBucket])),
            // Who is on the site now, whatever the period and filters.
            realtime: (mode != Mode::Aggregate)
                .then(|| Query::new(&view.site, &[Metric::Visitors], DateRange::Realtime)),
        }
    }
}

/// Engine runs of all dashboard pages together, at most. A page asks about a dozen questions
/// at once; unbounded, a few people clicking filters (raw-event reports) would start dozens of
/// scans that slow each other past the 30 s limit. Measured on the reports benchmark's data
/// (10M events, 2 cores, servers with 6 and unbounded taking turns): 30-day page 0.48–0.67 s
/// vs 0.50–0.62 s, today's (raw events) 4.1–7.5 s vs 4.3–7.9 s: no slower.
pub const MAX_CONCURRENT_RUNS: usize = 6;

/// Pages whose filtered rows are held in a temporary table at once (each at most
/// `stats::prefiltered::MAX_ROWS` rows in ClickHouse's memory, up to about 160 MB); a page loaded while
/// all are taken has each panel read the visits itself.
pub const MAX_PREFILTERED_PAGES: usize = 2;

/// The dashboard's share of the report engine: the engine, and the permits that bound how many
/// of its runs the dashboard starts at once.
pub struct Reports {
    stats: Arc<Stats>,
    runs: Semaphore,
    tables: Semaphore,
}

impl Reports {
    pub fn new(stats: Arc<Stats>) -> Reports {
        Reports {
            stats,
            runs: Semaphore::new(MAX_CONCURRENT_RUNS),
            tables: Semaphore::new(MAX_PREFILTERED_PAGES),
        }
    }

    /// Whether the site has goals (its page shows the goals table).
    pub fn has_goals(&self, site: &str) -> bool {
        self.stats.has_goals(site)
    }

    /// The site's allow-listed custom properties (its page shows the properties panel).
    pub fn prop_keys(&self, site: &str) -> &[String] {
        self.stats.prop_keys(site)
    }

    /// Runs one query through the engine as the API would.
    pub async fn run(&self, query: &Query, now: Timestamp) -> Panel {
        self.run_with(query, now, None).await
    }

    /// Runs one query of a page, reading the page's prefiltered rows where `pre` holds them.
    async fn run_with(&self, query: &Query, now: Timestamp, pre: Option<&Prefiltered>) -> Panel {
        let answer = self.answer_with(query, now, pre).await?;
        Ok(Answer::of(query, answer))
    }

    /// The engine's own answer to one query (for the CSV downloads, which the API's writer
    /// writes).
    pub async fn answer(
        &self,
        query: &Query,
        now: Timestamp,
    ) -> Result<crate::stats::Answer, StatsError> {
        self.answer_with(query, now, None).await
    }

    /// The engine's answer, within the dashboard's bound on runs at once.
    async fn answer_with(
        &self,
        query: &Query,
        now: Timestamp,
        pre: Option<&Prefiltered>,
    ) -> Result<crate::stats::Answer, StatsError> {
        // The semaphore is never closed, so acquiring cannot fail; run unbounded if it did.
        let _permit = self.runs.acquire().await;
        self.stats.run_with(query, now, pre).await
    }

    async fn maybe(
        &self,
        query: &Option<Query>,
        now: Timestamp,
        pre: Option<&Prefiltered>,
    ) -> Option<Panel> {
        match query {
            Some(q) => Some(self.run_with(q, now, pre).await),
            None => None,
        }
    }

    /// All panels of a view, concurrently; a view without a period in its URL, whose default
    /// period has no data while today has, opens on today: a new site's first page views are on
    /// the opening screen (the default, the 30 days before today, ends yesterday as in the API).
    pub async fn load_opening(
        &self,
        view: View,
        period_given: bool,
        mode: Mode,
        now: Timestamp,
    ) -> (View, Data) {
        let data = self.load(&view, mode, now).await;
        if period_given || view.period == Period::Today || !data.is_empty() {
            return (view, data);
        }
        let today = view.with_period(Period::Today);
        let data_today = self.load(&today, mode, now).await;
        if data_today.is_empty() {
            (view, data)
        } else {
            (today, data_today)
        }
    }

    /// All panels of a view, concurrently.
    pub async fn load(&self, view: &View, mode: Mode, now: Timestamp) -> Data {
        let prop = view.shown_prop(self.prop_keys(&view.site));
        let q = Queries::of(view, mode, self.has_goals(&view.site), prop);
        let mode = mode.of_view(view);
        // Filters that no rollup keeps: the rows they select are read once for all panels
        // (every panel asks with the headline's site, period and filters).
        let table = self.tables.try_acquire().ok();
        let prefiltered = match table {
            Some(_) => {
                let _permit = self.runs.acquire().await;
                self.stats.prefilter(&q.headline, now).await
            }
            None => None,
        };
        let pre = prefiltered.as_ref();
        let tables =
            futures_util::future::join_all(q.tables.iter().map(|t| self.run_with(t, now, pre)));
        let (headline, series, tables, heatmap, hours, durations, realtime) = tokio::join!(
            self.run_with(&q.headline, now, pre),
            self.run_with(&q.series, now, pre),
            tables,
            self.run_with(&q.heatmap, now, pre),
            self.run_with(&q.hours, now, pre),
            self.maybe(&q.durations, now, pre),
            self.maybe(&q.realtime, now, None),
        );
        if let Some(p) = prefiltered {
            p.release().await;
        }
        drop(table);
        Data {
            mode,
            props: self.prop_keys(&view.site).to_vec(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::view::View;
    use crate::stats::aggregate_mode::{UNAVAILABLE_DIMENSIONS, UNAVAILABLE_METRICS};
    use crate::stats::api::{query_json, Request};

    #[test]
    fn every_panel_query_is_a_valid_stats_api_query() {
        for q in [
            "",
            "period=today&compare=off&page=/x",
            "period=custom&from=2026-01-01&to=2026-03-31&compare=year_over_year&country=NL&device=Mobile&os=iOS&browser=Safari&source=Google&utm_campaign=spring",
            "period=7d&goal=Download&country=NL",
            "period=7d&props.author=Jan&props.lang=nl&country=NL",
        ] {
            let view = View::parse("/d".into(), "a.example".into(), Some(q)).unwrap();
            for (mode, goals, prop) in [
                (Mode::Visits, false, None),
                (Mode::Visits, true, Some("author")),
                (Mode::Aggregate, false, None),
            ] {
                // Aggregate-only mode refuses every filter; a goal filter already in parsing.
                if mode == Mode::Aggregate && view.by_goal() {
                    continue;
                }
                let qs = Queries::of(&view, mode, goals, prop);
                assert_eq!(qs.tables.len(), qs.breakdowns.len());
                let queries = [&qs.headline, &qs.series, &qs.heatmap, &qs.hours]
                    .into_iter()
                    .chain(&qs.tables)
                    .chain(qs.durations.iter())
                    .chain(qs.realtime.iter());
                for query in queries {
                    // Written as the API's JSON and parsed back: valid, and the same question.
                    let body = query_json(query);
                    let parsed = Request::parse(body.to_string().as_bytes());
                    assert!(parsed.is_ok(), "{body}: {parsed:?}");
                    assert_eq!(query_json(&parsed.unwrap().query), body);
                }
            }
        }
    }

    /// The goals table is there when the site has goals; a goal filter turns every panel into
    /// that goal's conversions (what a conversion report answers).
    #[test]
    fn goals_table_and_goal_filtered_views() {
        let plain = View::parse("/d".into(), "a.example".into(), None).unwrap();
        let ids = |qs: &Queries| qs.breakdowns.iter().map(|b| b.id).collect::<Vec<_>>();
        assert!(!ids(&Queries::of(&plain, Mode::Visits, false, None)).contains(&"goals"));
        let qs = Queries::of(&plain, Mode::Visits, true, None);
        assert_eq!(ids(&qs)[0], "goals");
        assert_eq!(qs.tables[0].dimensions, vec![Dimension::Goal]);
        assert_eq!(
            qs.tables[0].metrics,
            vec![Metric::Visitors, Metric::Events, Metric::ConversionRate]
        );
        assert!(!ids(&Queries::of(&plain, Mode::Aggregate, true, None)).contains(&"goals"));

        let by_goal = View::parse("/d".into(), "a.example".into(), Some("goal=Download")).unwrap();
        assert_eq!(Mode::Visits.of_view(&by_goal), Mode::Conversions);
        let qs = Queries::of(&by_goal, Mode::Visits, true, None);
        assert!(qs.durations.is_none());
        assert_eq!(
            qs.headline.metrics,
            vec![Metric::Visitors, Metric::Events, Metric::ConversionRate]
        );
        for t in &qs.tables[1..] {
            assert_eq!(
                t.metrics,
                vec![
                    Metric::Visitors,
                    Metric::Events,
                    Metric::GroupConversionRate
                ]
            );
        }
        assert_eq!(qs.series.metrics, vec![Metric::Visitors, Metric::Events]);
    }

    /// The properties table follows the goals table where the site has allow-listed props, and
    /// breaks down the shown one; none in aggregate-only mode (no events kept).
    #[test]
    fn properties_table_breaks_down_the_shown_property() {
        let plain = View::parse("/d".into(), "a.example".into(), None).unwrap();
        let ids = |qs: &Queries| qs.breakdowns.iter().map(|b| b.id).collect::<Vec<_>>();
        assert!(!ids(&Queries::of(&plain, Mode::Visits, true, None)).contains(&"props"));
        let qs = Queries::of(&plain, Mode::Visits, true, Some("lang"));
        assert_eq!(ids(&qs)[..2], ["goals", "props"]);
        assert_eq!(qs.tables[1].dimensions, vec![Dimension::Prop(0)]);
        assert_eq!(qs.tables[1].prop_keys, ["lang"]);
        assert_eq!(
            qs.tables[1].metrics,
            vec![Metric::Visitors, Metric::Pageviews, Metric::Events]
        );
        // Only the properties table names a property.
        assert!(qs.tables[2..].iter().all(|t| t.prop_keys.is_empty()));
        assert_eq!(
            ids(&Queries::of(&plain, Mode::Visits, false, Some("lang")))[0],
            "props"
        );
        assert!(
            !ids(&Queries::of(&plain, Mode::Aggregate, false, Some("lang"))).contains(&"props")
        );
        // Filtered by a goal, it counts that goal's conversions carrying the property.
        let by_goal = View::parse("/d".into(), "a.example".into(), Some("goal=Download")).unwrap();
        let qs = Queries::of(&by_goal, Mode::Visits, true, Some("lang"));
        assert_eq!(qs.tables[1].prop_keys, ["lang"]);
        assert_eq!(qs.tables[1].filters.len(), 1);
        // Property filters come first in every query's keys; the table's key is found among
        // them, or follows them.
        let by_lang = View::parse("/d".into(), "a.example".into(), Some("props.lang=nl")).unwrap();
        let qs = Queries::of(&by_lang, Mode::Visits, true, Some("author"));
        assert_eq!(qs.headline.prop_keys, ["lang"]);
        assert_eq!(qs.tables[1].prop_keys, ["lang", "author"]);
        assert_eq!(qs.tables[1].dimensions, vec![Dimension::Prop(1)]);
        let qs = Queries::of(&by_lang, Mode::Visits, true, Some("lang"));
        assert_eq!(qs.tables[1].prop_keys, ["lang"]);
        assert_eq!(qs.tables[1].dimensions, vec![Dimension::Prop(0)]);
        assert!(qs.tables.iter().all(|t| t.prop_keys[0] == "lang"));
        assert_eq!(
            qs.tables[1].metrics,
            vec![Metric::Visitors, Metric::Events, Metric::ConversionRate]
        );
    }

    /// Aggregate-only mode asks only for what it keeps (the engine refuses the rest).
    #[test]
    fn aggregate_mode_asks_for_no_visit_metric() {
        let view = View::parse("/d".into(), "a.example".into(), None).unwrap();
        let qs = Queries::of(&view, Mode::Aggregate, true, Some("lang"));
        let mut all = vec![&qs.headline, &qs.series, &qs.heatmap, &qs.hours];
        all.extend(&qs.tables);
        for q in all {
            for m in &q.metrics {
                assert!(!UNAVAILABLE_METRICS.contains(m), "{} in {:?}", m.name(), q);
            }
            for d in &q.dimensions {
                assert!(!UNAVAILABLE_DIMENSIONS.contains(d));
            }
        }
        assert!(qs.durations.is_none() && qs.realtime.is_none());
    }

    #[test]
    fn answers_become_rows() {
        use crate::stats::{answer, Compared};
        let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").unwrap();
        let day: jiff::civil::Date = "2026-03-01".parse().unwrap();
        let period = crate::stats::period::Period::days(day, day, &tz).unwrap();
        let mut q = Query::new(
            "a.example",
            &[Metric::Visitors, Metric::TimeOnPage],
            DateRange::Dates(day, day),
        )
        .by(&[Dimension::Page, Dimension::HourOfDay]);
        q.total_rows = true;
        let a = Answer::of(
            &q,
            crate::stats::Answer {
                rows: vec![answer::Row {
                    dims: vec!["/a".into(), "7".into()],
                    metrics: vec![Some(3.0), None],
                    compared: Some(Compared {
                        dims: vec!["/a".into(), "7".into()],
                        metrics: vec![Some(2.0), Some(1.5)],
                        change: vec![Some(50), None],
                    }),
                }],
                total_rows: 12,
                time_labels: Some(vec!["2026-03-01".into()]),
                period,
                dimensions: vec![Dimension::Day],
                order: Vec::new(),
            },
        );
        assert_eq!(a.rows[0].dims, vec!["/a", "7"]);
        assert_eq!(a.rows[0].metrics, vec![Some(3.0), None]);
        assert_eq!(a.rows[0].change.as_ref().unwrap()[0], Some(50.0));
        assert_eq!(a.rows[0].previous.as_ref().unwrap()[1], Some(1.5));
        assert_eq!(a.total_rows, Some(12));
        assert_eq!(a.time_labels, vec!["2026-03-01"]);
        assert_eq!(a.time_dimension.as_deref(), Some("time:day"));
        assert_eq!(a.period.unwrap().0, "2026-03-01T00:00:00+01:00");
    }
}
