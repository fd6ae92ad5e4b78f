//! The dashboard's HTML: the page frame, the login page, error pages and the dashboard itself.
//! The markup lives in compiled askama templates (`src/dashboard/templates/`, the folder named
//! in `askama.toml`), which escape every value they write; this file gathers what each template
//! shows from the view and the panels' answers. Everything reads without JavaScript: pickers are
//! links and a GET form, filters are links, charts are inline SVG with tables. Elements that
//! carry a number also carry it raw in `data-value`, for tests and scripts.
//!
//! Each part of the dashboard page is a template of its own (a struct below and a file under
//! `templates/dashboard/`), written into the page as it is: its own template escaped its values.

use askama::Template;

use super::assets::Asset;
use super::auth::Viewer;
use super::charts::{self, Bar, BarChart, Heatmap, LineChart, Meter, Series};
use super::html::{self, count, percent, Figure};
use super::panels::{self, Answer, Breakdown, Data, Fmt, Mode, Panel, DURATION_BUCKETS};
use super::view::{filter_dim, Compare, FilterDim, Period, View};
use crate::error::StatsError;

/// Renders a page. Templates fail only when a value's `Display` fails, which none here does; if
/// one ever did, the visitor gets a page that says so rather than half a page.
fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a dashboard page could not be rendered");
        "<!doctype html>\n<title>tally</title>\n<p>This page could not be shown.</p>\n".into()
    })
}

/// The login form (`templates/login.html`).
#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    nonce: &'a str,
    next: &'a str,
    name: &'a str,
    message: Option<&'a str>,
    has_users: bool,
}

/// The login form. `nonce` is the CSRF value also set as the `tally_login` cookie.
/// `name` is filled in again after a failed attempt.
pub fn login(
    nonce: &str,
    next: &str,
    name: &str,
    message: Option<&str>,
    has_users: bool,
) -> String {
    render(&Login {
        nonce,
        next,
        name,
        message,
        has_users,
    })
}

/// An error page (`templates/error.html`).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    /// A link onwards: its href and text.
    back: Option<(&'a str, &'a str)>,
}

/// A page that says what went wrong and where to go.
pub fn error(title: &str, message: &str, back: Option<(&str, &str)>) -> String {
    render(&ErrorPage {
        title,
        message,
        back,
    })
}

/// What the dashboard page needs besides the view and its numbers.
pub struct Context<'a> {
    /// Sites for the picker, with the base path of each; empty on a share link.
    pub sites: Vec<(String, String)>,
    pub viewer: Option<&'a Viewer>,
    pub time_zone: &'a str,
    /// Where the script fetches the realtime number.
    pub realtime_url: String,
    /// A read-only view through a share link.
    pub shared: bool,
}

/// The civil date at the start of `date` (`2026-11-22`, `2026-11-22T00:00:00+01:00`, …).
fn civil_date(date: &str) -> Option<jiff::civil::Date> {
    date.get(..10).unwrap_or(date).parse().ok()
}

/// `2026-11-22` → `22 Nov 2026`; `with_year` false → `22 Nov`.
fn day_label(date: &str, with_year: bool) -> String {
    let Some(d) = civil_date(date) else {
        return date.to_string();
    };
    let day = d.strftime("%-d %b");
    if with_year {
        // The year as a number, as the engine writes it (no zero padding).
        format!("{day} {}", d.year())
    } else {
        day.to_string()
    }
}

/// `2026-11-22` → `Sun`; empty when it is not a date.
fn weekday(date: &str) -> String {
    civil_date(date)
        .map(|d| d.strftime("%a").to_string())
        .unwrap_or_default()
}

/// The period as people read it: `24 Oct – 22 Nov 2026`, or one day.
fn period_label(period: &(String, String)) -> String {
    let (a, b) = (&period.0, &period.1);
    let (da, db) = (a.get(..10).unwrap_or(a), b.get(..10).unwrap_or(b));
    if da == db {
        return format!("{} {}", weekday(da), day_label(da, true));
    }
    let same_year = da.get(..4) == db.get(..4);
    format!("{} – {}", day_label(da, !same_year), day_label(db, true))
}

/// A time bucket label on the x axis, and in the tooltip.
fn bucket_label(label: &str, dim: &str) -> (String, String) {
    match dim {
        "time:hour" => {
            let hour = label.get(11..16).unwrap_or(label).to_string();
            (hour.clone(), format!("{} {hour}", day_label(label, false)))
        }
        "time:month" => {
            let m = label
                .get(5..7)
                .and_then(|m| m.parse::<i8>().ok())
                .and_then(|m| jiff::civil::Date::new(2000, m, 1).ok())
                .map(|d| d.strftime("%b").to_string())
                .unwrap_or_default();
            let y = label.get(..4).unwrap_or("");
            (format!("{m} {y}"), format!("{m} {y}"))
        }
        "time:week" => (
            day_label(label, false),
            format!("week of {}", day_label(label, true)),
        ),
        _ => (
            day_label(label, false),
            format!("{} {}", weekday(label), day_label(label, true)),
        ),
    }
}

/// A number in a table: its metric (`data-metric`) and the number.
struct Cell {
    metric: &'static str,
    figure: Figure,
}

/// The dashboard page of one view (`templates/dashboard.html`).
#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    view: &'a View,
    ctx: &'a Context<'a>,
    /// The period as people read it; empty when the headline answer did not come.
    period: String,
    header: Header<'a>,
    controls: Controls<'a>,
    filters: Filters<'a>,
    headline: Headline<'a>,
    over_time: OverTime<'a>,
    sections: Vec<Section<'a>>,
    peak_hours: PeakHours<'a>,
    durations: Option<Durations<'a>>,
}

/// The top bar (`templates/dashboard/header.html`): site or site picker, and who is looking.
#[derive(Template)]
#[template(path = "dashboard/header.html")]
struct Header<'a> {
    view: &'a View,
    ctx: &'a Context<'a>,
}

/// The period and comparison pickers (`templates/dashboard/controls.html`).
#[derive(Template)]
#[template(path = "dashboard/controls.html")]
struct Controls<'a> {
    view: &'a View,
    /// A custom period is shown (its form starts open), from and to (`YYYY-MM-DD`, else empty).
    custom: bool,
    from: String,
    to: String,
}

impl<'a> Controls<'a> {
    fn of(view: &'a View) -> Controls<'a> {
        let (custom, from, to) = match &view.period {
            Period::Custom(a, b) => (true, a.to_string(), b.to_string()),
            _ => (false, String::new(), String::new()),
        };
        Controls {
            view,
            custom,
            from,
            to,
        }
    }
}

/// The view's filters, if any (`templates/dashboard/filters.html`).
#[derive(Template)]
#[template(path = "dashboard/filters.html")]
struct Filters<'a> {
    filters: Vec<ActiveFilter<'a>>,
    /// The same view without any filter.
    clear_all: String,
}

/// A filter of the view: its dimension, its value, and the view without it.
struct ActiveFilter<'a> {
    dim: FilterDim,
    value: &'a str,
    remove: String,
}

impl<'a> Filters<'a> {
    fn of(view: &'a View) -> Filters<'a> {
        let mut none = view.clone();
        none.filters.clear();
        Filters {
            filters: view
                .filters
                .iter()
                .map(|(dim, value)| ActiveFilter {
                    dim: *dim,
                    value,
                    remove: view.without_filter(*dim).href(),
                })
                .collect(),
            clear_all: none.href(),
        }
    }
}

/// The headline numbers and who is here now (`templates/dashboard/headline.html`).
#[derive(Template)]
#[template(path = "dashboard/headline.html")]
struct Headline<'a> {
    stats: Result<Vec<Stat>, &'a StatsError>,
    /// Visitors in the last minutes; `None` in aggregate-only mode, which keeps no visitors.
    realtime: Option<Figure>,
    realtime_url: &'a str,
}

/// A headline number.
struct Stat {
    metric: &'static str,
    label: &'static str,
    figure: Figure,
    change: Change,
}

/// A headline number against the earlier period.
enum Change {
    /// No comparison was asked for.
    Off,
    /// Compared, but the earlier period has no number.
    NoEarlierData,
    /// `class` says whether the change is good, bad or none (`good`, `bad`, `same`); `value` is
    /// the raw change, `text` the change for people (see [`html::change`]), `was` the earlier
    /// number.
    Changed {
        class: &'static str,
        value: f64,
        text: String,
        was: Figure,
    },
}

impl<'a> Headline<'a> {
    fn of(data: &'a Data, ctx: &'a Context<'_>) -> Headline<'a> {
        let cols = panels::headline(data.mode);
        let stats = data.headline.as_ref().map(|a| {
            let row = a.rows.first();
            cols.iter()
                .enumerate()
                .map(|(i, c)| {
                    // Rates change in points, and less is better for the bounce rate.
                    let (points, lower_better) = (
                        c.fmt == Fmt::Percent,
                        c.metric == crate::stats::Metric::BounceRate,
                    );
                    let value = row.and_then(|r| r.metrics.get(i).copied().flatten());
                    let change = row
                        .and_then(|r| r.change.as_ref())
                        .and_then(|c| c.get(i).copied().flatten());
                    let previous = row
                        .and_then(|r| r.previous.as_ref())
                        .and_then(|c| c.get(i).copied().flatten());
                    let change = match change {
                        Some(v) => {
                            let good = if lower_better { v < 0.0 } else { v > 0.0 };
                            Change::Changed {
                                class: if v == 0.0 {
                                    "same"
                                } else if good {
                                    "good"
                                } else {
                                    "bad"
                                },
                                value: v,
                                text: html::change(v, points),
                                was: Figure::new(previous, c.fmt),
                            }
                        }
                        None if row.is_some_and(|r| r.change.is_some()) => Change::NoEarlierData,
                        None => Change::Off,
                    };
                    Stat {
                        metric: c.metric.name(),
                        label: c.label,
                        figure: Figure::new(value, c.fmt),
                        change,
                    }
                })
                .collect()
        });
        // A realtime answer that failed shows 0 until the script's next refresh.
        let realtime = data.realtime.as_ref().map(|r| {
            let now = match r {
                Ok(a) => a.rows.first().map(|r| r.metric(0)).unwrap_or(0.0),
                Err(_) => 0.0,
            };
            Figure::count(now)
        });
        Headline {
            stats,
            realtime,
            realtime_url: &ctx.realtime_url,
        }
    }
}

/// Visitors and pageviews over time (`templates/dashboard/over_time.html`).
#[derive(Template)]
#[template(path = "dashboard/over_time.html")]
struct OverTime<'a> {
    chart: Result<TimeSeries, &'a StatsError>,
}

/// A time series' metric, label and line style (a CSS class).
type SeriesName = (&'static str, &'static str, &'static str);

struct TimeSeries {
    series: &'static [SeriesName],
    lines: LineChart<'static>,
    rows: Vec<TimeRow>,
}

/// A time bucket in the table: the engine's label, the label for people, and its numbers.
struct TimeRow {
    label: String,
    long: String,
    cells: Vec<Cell>,
}

impl<'a> OverTime<'a> {
    fn of(data: &'a Data) -> OverTime<'a> {
        OverTime {
            chart: data.series.as_ref().map(|a| OverTime::series(a, data.mode)),
        }
    }

    fn series(a: &Answer, mode: Mode) -> TimeSeries {
        let dim = a.time_dimension.as_deref().unwrap_or("time:day");
        let labels: Vec<String> = if a.time_labels.is_empty() {
            a.rows
                .iter()
                .filter_map(|r| r.dims.first().cloned())
                .collect()
        } else {
            a.time_labels.clone()
        };
        let value = |label: &str, i: usize| -> f64 {
            a.rows
                .iter()
                .find(|r| r.dims.first().map(String::as_str) == Some(label))
                .map(|r| r.metric(i))
                .unwrap_or(0.0)
        };
        // The series in the order asked (see `panels::Queries`), with their line styles.
        let names: &'static [SeriesName] = match mode {
            Mode::Visits => &[
                ("visitors", "Visitors", "s1"),
                ("pageviews", "Pageviews", "s2"),
            ],
            Mode::Aggregate => &[("pageviews", "Pageviews", "s1")],
        };
        let values: Vec<Vec<f64>> = (0..names.len())
            .map(|i| labels.iter().map(|l| value(l, i)).collect())
            .collect();
        let buckets: Vec<(String, String)> = labels.iter().map(|l| bucket_label(l, dim)).collect();
        let (axis, tips): (Vec<String>, Vec<String>) = buckets
            .iter()
            .enumerate()
            .map(|(i, (short, long))| {
                let parts: Vec<String> = names
                    .iter()
                    .enumerate()
                    .map(|(k, (_, label, _))| {
                        format!("{} {}", count(values[k][i]), label.to_lowercase())
                    })
                    .collect();
                (short.clone(), format!("{long}: {}", parts.join(", ")))
            })
            .unzip();
        let series: Vec<Series<'static>> = names
            .iter()
            .zip(&values)
            .map(|((_, label, class), v)| Series {
                name: label,
                values: v.clone(),
                class,
            })
            .collect();
        let rows = labels
            .into_iter()
            .zip(buckets)
            .enumerate()
            .map(|(i, (label, (_, long)))| TimeRow {
                label,
                long,
                cells: names
                    .iter()
                    .enumerate()
                    .map(|(k, (metric, _, _))| Cell {
                        metric,
                        figure: Figure::count(values[k][i]),
                    })
                    .collect(),
            })
            .collect();
        TimeSeries {
            series: names,
            lines: charts::line_chart(&axis, &tips, &series, 240.0),
            rows,
        }
    }
}

/// A panel of breakdown tables (`templates/dashboard/section.html`).
#[derive(Template)]
#[template(path = "dashboard/section.html")]
struct Section<'a> {
    /// The panel's id prefix (`pages` → `pages-panel`, `pages-h`).
    id: &'static str,
    title: &'static str,
    tables: Vec<BreakdownTable<'a>>,
    /// How to read the tables ("" for none).
    note: &'static str,
}

impl<'a> Section<'a> {
    /// The breakdown tables grouped into their panels, in page order.
    fn all(view: &'a View, data: &'a Data) -> Vec<Section<'a>> {
        // Rows are links only where the engine can filter (not in aggregate-only mode).
        let links = data.mode == Mode::Visits;
        let sections: [(&str, &str, &str); 4] = [
            ("pages", "Most visited pages", match data.mode {
                Mode::Visits => "Bounce rate of visits that entered on the page; time on page is the mean visible time.",
                Mode::Aggregate => "Time on page is the mean visible time.",
            }),
            ("sources", "Sources and campaigns", match data.mode {
                Mode::Visits => "",
                Mode::Aggregate => "Pageviews that arrived from outside the site.",
            }),
            ("countries", "Countries", ""),
            ("devices", "Devices, browsers, operating systems", ""),
        ];
        sections
            .into_iter()
            .map(|(id, title, note)| Section {
                id,
                title,
                tables: data
                    .breakdowns
                    .iter()
                    .zip(&data.tables)
                    .filter(|(spec, _)| spec.section == id)
                    .map(|(spec, panel)| BreakdownTable::of(spec, panel, view, links))
                    .collect(),
                note,
            })
            .collect()
    }
}

/// A breakdown table (`templates/dashboard/breakdown.html`).
#[derive(Template)]
#[template(path = "dashboard/breakdown.html")]
struct BreakdownTable<'a> {
    spec: &'a Breakdown,
    rows: Result<Vec<TableRow>, &'a StatsError>,
    /// When the engine has more rows than shown: how many are shown, and of how many.
    more: Option<(u64, Figure)>,
}

struct TableRow {
    /// The dimension value (a page path, a source, a country code, …).
    value: String,
    link: RowLink,
    /// The first metric against the table's largest.
    meter: Meter,
    cells: Vec<Cell>,
}

/// Where a row's value links to.
enum RowLink {
    /// Nowhere: this table cannot filter (aggregate-only mode, or no filter for it).
    None,
    /// The view is filtered by this row: the link (its href) removes the filter.
    Remove(String),
    /// The link (its href) filters the view by this row; the dimension named in lower case.
    Add(String, String),
}

impl TableRow {
    /// The view is filtered by this row.
    fn active(&self) -> bool {
        matches!(self.link, RowLink::Remove(_))
    }
}

impl<'a> BreakdownTable<'a> {
    /// One row per dimension value with its metrics; the value links to the view filtered by
    /// it (or, when already filtered by it, back to the unfiltered view).
    fn of(spec: &'a Breakdown, panel: &'a Panel, view: &View, links: bool) -> BreakdownTable<'a> {
        let filter = spec.filter.and_then(filter_dim).filter(|_| links);
        let answer = match panel {
            Ok(a) => a,
            Err(e) => {
                return BreakdownTable {
                    spec,
                    rows: Err(e),
                    more: None,
                }
            }
        };
        let shown: Vec<_> = answer
            .rows
            .iter()
            .filter(|r| {
                spec.hide
                    .is_none_or(|h| r.dims.first().map(String::as_str) != Some(h))
            })
            .take(panels::TABLE_ROWS)
            .collect();
        let max = shown.iter().map(|r| r.metric(0)).fold(0.0, f64::max);
        let rows = shown
            .iter()
            .map(|r| {
                let value = r.dims.first().cloned().unwrap_or_default();
                let link = match filter {
                    Some(f) if view.filter_value(f) == Some(value.as_str()) => {
                        RowLink::Remove(view.without_filter(f).href())
                    }
                    Some(f) => {
                        RowLink::Add(view.with_filter(f, &value).href(), f.label.to_lowercase())
                    }
                    None => RowLink::None,
                };
                TableRow {
                    meter: charts::meter(if max > 0.0 { r.metric(0) / max } else { 0.0 }),
                    cells: spec
                        .cols
                        .iter()
                        .enumerate()
                        .map(|(i, c)| Cell {
                            metric: c.metric.name(),
                            figure: Figure::new(r.metrics.get(i).copied().flatten(), c.fmt),
                        })
                        .collect(),
                    value,
                    link,
                }
            })
            .collect();
        let more = answer.total_rows.and_then(|total| {
            let shown = answer.rows.len().min(panels::TABLE_ROWS) as u64;
            (total > shown).then(|| (shown, Figure::count(total as f64)))
        });
        BreakdownTable {
            spec,
            rows: Ok(rows),
            more,
        }
    }
}

/// When people come: weekday × hour and hour of the day
/// (`templates/dashboard/peak_hours.html`).
#[derive(Template)]
#[template(path = "dashboard/peak_hours.html")]
struct PeakHours<'a> {
    /// What is counted (`Visitors`, or `Pageviews` in aggregate-only mode).
    people: &'static str,
    time_zone: &'a str,
    heatmap: Result<Heatmap, &'a StatsError>,
    hours: Result<Hours, &'a StatsError>,
}

/// The hours of the day: bars of the first metric, and all of them in a table.
struct Hours {
    /// The metrics asked for hours (see `panels::Queries`), and their labels.
    names: &'static [(&'static str, &'static str)],
    bars: BarChart<'static>,
    rows: Vec<HourRow>,
}

struct HourRow {
    hour: usize,
    cells: Vec<Cell>,
}

impl<'a> PeakHours<'a> {
    fn of(data: &'a Data, ctx: &'a Context<'_>) -> PeakHours<'a> {
        let people = panels::people(data.mode);
        let heatmap = data.heatmap.as_ref().map(|a| {
            let mut cells = [[0.0f64; 24]; 7];
            for r in &a.rows {
                let w = r.dims.first().and_then(|d| d.parse::<usize>().ok());
                let h = r.dims.get(1).and_then(|d| d.parse::<usize>().ok());
                if let (Some(w @ 1..=7), Some(h @ 0..=23)) = (w, h) {
                    cells[w - 1][h] = r.metric(0);
                }
            }
            charts::heatmap(&cells, people.label.to_lowercase())
        });
        let names: &'static [(&'static str, &'static str)] = match data.mode {
            Mode::Visits => &[("visitors", "Visitors"), ("pageviews", "Pageviews")],
            Mode::Aggregate => &[("pageviews", "Pageviews")],
        };
        let hours = data.hours.as_ref().map(|a| {
            let mut hours = [[0.0f64; 2]; 24];
            for r in &a.rows {
                if let Some(h @ 0..=23) = r.dims.first().and_then(|d| d.parse::<usize>().ok()) {
                    hours[h] = [r.metric(0), r.metric(1)];
                }
            }
            // Bars show the first metric; the tooltip and the table all of them.
            let bars = hours
                .iter()
                .enumerate()
                .map(|(h, v)| {
                    let parts: Vec<String> = names
                        .iter()
                        .enumerate()
                        .map(|(k, (_, label))| format!("{} {}", count(v[k]), label.to_lowercase()))
                        .collect();
                    Bar {
                        label: format!("{h:02}"),
                        value: v[0],
                        tip: format!("{h:02}:00–{h:02}:59: {}", parts.join(", ")),
                        show_label: h % 3 == 0,
                    }
                })
                .collect();
            Hours {
                names,
                bars: charts::bar_chart(bars, 150.0, "hours", false),
                rows: hours
                    .iter()
                    .enumerate()
                    .map(|(hour, v)| HourRow {
                        hour,
                        cells: names
                            .iter()
                            .zip(v)
                            .map(|((metric, _), v)| Cell {
                                metric,
                                figure: Figure::count(*v),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        });
        PeakHours {
            people: people.label,
            time_zone: ctx.time_zone,
            heatmap,
            hours,
        }
    }
}

/// How long visits last (`templates/dashboard/durations.html`).
#[derive(Template)]
#[template(path = "dashboard/durations.html")]
struct Durations<'a> {
    quantiles: Option<Quantiles>,
    buckets: Result<DurationBuckets, &'a StatsError>,
}

/// From the headline answer (see `panels::DURATION_SUMMARY`).
struct Quantiles {
    median: Figure,
    p75: Figure,
    p90: Figure,
    /// Two decimals, or `–`.
    views_per_visit: String,
}

struct DurationBuckets {
    bars: BarChart<'static>,
    /// Each bucket in its natural order, with its visits.
    rows: Vec<(&'static str, Cell)>,
}

impl<'a> Durations<'a> {
    /// `None` where visits are not kept (aggregate-only mode).
    fn of(data: &'a Data) -> Option<Durations<'a>> {
        let durations = data.durations.as_ref()?;
        let quantiles = data
            .headline
            .as_ref()
            .ok()
            .and_then(|a| a.rows.first())
            .map(|r| {
                let m = |i: usize| r.metrics.get(i).copied().flatten();
                Quantiles {
                    median: Figure::new(m(3), Fmt::Duration),
                    p75: Figure::new(m(5), Fmt::Duration),
                    p90: Figure::new(m(6), Fmt::Duration),
                    views_per_visit: m(7)
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_else(|| "–".into()),
                }
            });
        let buckets = durations.as_ref().map(|a| {
            let visits = |b: &str| {
                a.rows
                    .iter()
                    .find(|r| r.dims.first().map(String::as_str) == Some(b))
                    .map(|r| r.metric(0))
                    .unwrap_or(0.0)
            };
            let total: f64 = DURATION_BUCKETS.iter().map(|b| visits(b)).sum();
            let bars = DURATION_BUCKETS
                .iter()
                .map(|b| {
                    let v = visits(b);
                    let share = if total > 0.0 {
                        (v / total * 1000.0).round() / 10.0
                    } else {
                        0.0
                    };
                    Bar {
                        label: (*b).to_string(),
                        value: v,
                        tip: format!("{b}: {} visits ({})", count(v), percent(share)),
                        show_label: true,
                    }
                })
                .collect();
            DurationBuckets {
                bars: charts::bar_chart(bars, 170.0, "durations", true),
                rows: DURATION_BUCKETS
                    .iter()
                    .map(|b| {
                        let cell = Cell {
                            metric: "visits",
                            figure: Figure::count(visits(b)),
                        };
                        (*b, cell)
                    })
                    .collect(),
            }
        });
        Some(Durations { quantiles, buckets })
    }
}

// Each part is a template that escapes what it writes, so the page writes it as it is.
impl askama::filters::HtmlSafe for Header<'_> {}
impl askama::filters::HtmlSafe for Controls<'_> {}
impl askama::filters::HtmlSafe for Filters<'_> {}
impl askama::filters::HtmlSafe for Headline<'_> {}
impl askama::filters::HtmlSafe for OverTime<'_> {}
impl askama::filters::HtmlSafe for Section<'_> {}
impl askama::filters::HtmlSafe for BreakdownTable<'_> {}
impl askama::filters::HtmlSafe for PeakHours<'_> {}
impl askama::filters::HtmlSafe for Durations<'_> {}

/// The dashboard page of one view.
pub fn dashboard(view: &View, data: &Data, ctx: &Context<'_>) -> String {
    let period = data
        .headline
        .as_ref()
        .ok()
        .and_then(|a: &Answer| a.period.as_ref())
        .map(period_label)
        .unwrap_or_default();
    render(&DashboardPage {
        view,
        ctx,
        period,
        header: Header { view, ctx },
        controls: Controls::of(view),
        filters: Filters::of(view),
        headline: Headline::of(data, ctx),
        over_time: OverTime::of(data),
        sections: Section::all(view, data),
        peak_hours: PeakHours::of(data, ctx),
        durations: Durations::of(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_for_people() {
        assert_eq!(
            period_label(&(
                "2026-10-24T00:00:00+02:00".into(),
                "2026-11-22T23:59:59+01:00".into()
            )),
            "24 Oct – 22 Nov 2026"
        );
        assert_eq!(
            period_label(&(
                "2025-12-24T00:00:00+01:00".into(),
                "2026-01-22T23:59:59+01:00".into()
            )),
            "24 Dec 2025 – 22 Jan 2026"
        );
        assert_eq!(
            period_label(&(
                "2026-11-23T00:00:00+01:00".into(),
                "2026-11-23T23:59:59+01:00".into()
            )),
            "Mon 23 Nov 2026"
        );
        assert_eq!(
            bucket_label("2026-11-23 14:00:00", "time:hour"),
            ("14:00".to_string(), "23 Nov 14:00".to_string())
        );
        assert_eq!(bucket_label("2026-11-01", "time:month").0, "Nov 2026");
        assert_eq!(bucket_label("2026-11-22", "time:day").1, "Sun 22 Nov 2026");
        assert_eq!(
            bucket_label("2026-01-05", "time:week").1,
            "week of 5 Jan 2026"
        );
        // Every month and weekday name, as the hand-written tables had them.
        let months: Vec<String> = (1..=12)
            .map(|m| bucket_label(&format!("2026-{m:02}-01"), "time:month").0)
            .collect();
        assert_eq!(
            months.join(","),
            "Jan 2026,Feb 2026,Mar 2026,Apr 2026,May 2026,Jun 2026,Jul 2026,Aug 2026,Sep 2026,\
             Oct 2026,Nov 2026,Dec 2026"
        );
        let days: Vec<String> = (23..=29)
            .map(|d| weekday(&format!("2026-11-{d}")))
            .collect();
        assert_eq!(days.join(","), "Mon,Tue,Wed,Thu,Fri,Sat,Sun");
        // What is not a date is shown as it came.
        assert_eq!(day_label("soon", true), "soon");
        assert_eq!(weekday("soon"), "");
        assert_eq!(bucket_label("2026-13-01", "time:month").0, " 2026");
    }

    use crate::dashboard::panels::Row;

    /// Markup, quotes and an ampersand: what a page path, campaign, filter value in the URL or
    /// an engine message quoting the query may hold.
    const HOSTILE: &str = r#"<script>alert("x&'y")</script>"#;
    /// `HOSTILE` as the templates write it (askama writes numeric character references).
    const ESCAPED: &str = "&#60;script&#62;alert(&#34;x&#38;&#39;y&#34;)&#60;/script&#62;";

    fn row(dims: &[&str], metrics: &[f64]) -> Row {
        Row {
            dims: dims.iter().map(|d| d.to_string()).collect(),
            metrics: metrics.iter().map(|m| Some(*m)).collect(),
            previous: None,
            change: None,
        }
    }

    fn answer(rows: Vec<Row>) -> Answer {
        Answer {
            rows,
            ..Answer::default()
        }
    }

    /// Every panel answered, with `HOSTILE` wherever the data puts text on the page, or every
    /// panel refused with `HOSTILE` as the engine's message.
    fn data(view: &View, mode: Mode, refused: bool) -> Data {
        let breakdowns = panels::breakdowns(mode, !view.filters.is_empty());
        let panel = |a: Answer| -> Panel {
            if refused {
                Err(StatsError::Invalid(HOSTILE.into()))
            } else {
                Ok(a)
            }
        };
        let mut headline = row(&[], &[1.0; 8]);
        headline.change = Some(vec![Some(10.0); 8]);
        headline.previous = Some(vec![Some(2.0); 8]);
        Data {
            mode,
            tables: breakdowns
                .iter()
                .map(|_| panel(answer(vec![row(&[HOSTILE], &[3.0; 4])])))
                .collect(),
            breakdowns,
            headline: panel(Answer {
                rows: vec![headline],
                period: Some(("2026-03-01".into(), "2026-03-31".into())),
                ..Answer::default()
            }),
            series: panel(Answer {
                rows: vec![row(&[HOSTILE], &[5.0, 7.0])],
                time_labels: vec![HOSTILE.into(), "2026-03-02".into()],
                time_dimension: Some("time:day".into()),
                ..Answer::default()
            }),
            heatmap: panel(answer(vec![row(&["1", "9"], &[4.0])])),
            hours: panel(answer(vec![row(&["9"], &[4.0, 6.0])])),
            durations: (mode == Mode::Visits).then(|| panel(answer(vec![row(&["1-3m"], &[2.0])]))),
            realtime: (mode == Mode::Visits).then(|| panel(answer(vec![row(&[], &[1.0])]))),
        }
    }

    /// A dashboard page where the site, the share path, the filter, the user, the CSRF token,
    /// the time zone and the data all hold `HOSTILE`.
    fn hostile_page(mode: Mode, refused: bool) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("page", HOSTILE)
            .append_pair("source", HOSTILE)
            .finish();
        let base = format!("/share/{HOSTILE}");
        let view = View::parse(base.clone(), HOSTILE.into(), Some(&query)).unwrap();
        let viewer = Viewer {
            user: HOSTILE.into(),
            sites: Vec::new(),
            csrf: Some(HOSTILE.into()),
        };
        let ctx = Context {
            sites: vec![
                (HOSTILE.into(), base.clone()),
                ("b.example".into(), "/dashboard/b.example".into()),
            ],
            viewer: Some(&viewer),
            time_zone: HOSTILE,
            realtime_url: format!("{base}/realtime"),
            shared: false,
        };
        dashboard(&view, &data(&view, mode, refused), &ctx)
    }

    /// `page` holds `HOSTILE` only escaped, and in each of `places` (a `{}` stands for it).
    fn assert_escaped(page: &str, places: &[&str]) {
        // The layout's own script tag is the only one.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert!(!page.contains("x&'y"), "{page}");
        for place in places {
            let place = place.replace("{}", ESCAPED);
            assert!(page.contains(&place), "{place} not in:\n{page}");
        }
    }

    #[test]
    fn the_dashboard_escapes_every_value_from_the_data_and_the_url() {
        let escaped_path = format!("/share/{ESCAPED}");
        assert_escaped(
            &hostile_page(Mode::Visits, false),
            &[
                // Title, header, site picker, account and logout form.
                "<title>{} · 1 Mar – 31 Mar 2026 · tally</title>",
                r#"<span class="sr">Site: </span>{}</summary>"#,
                r#"aria-current="page">{}</a></li>"#,
                r#"<span class="user">{}</span>"#,
                r#"<input type="hidden" name="csrf" value="{}">"#,
                // The custom period form keeps the filters, and is sent to the view's path.
                &format!(r#"<form method="get" action="{escaped_path}" class="card">"#),
                r#"<input type="hidden" name="page" value="{}">"#,
                // The period heading, the filters bar.
                r#"<span class="sr">{} · </span>"#,
                "<small>{}</small>",
                "Page is <strong>{}</strong>",
                // The realtime number's URL.
                &format!(r#"data-realtime-url="{escaped_path}/realtime""#),
                // The time series: chart labels and tooltips, the table.
                r#"text-anchor="start">{}</text>"#,
                // Not a date: the label is shown as it came, after an empty weekday.
                "<title> {}: 5 visitors, 7 pageviews</title>",
                r#"<tr data-dimension="{}"><td> {}</td>"#,
                // Breakdown rows: the active filter, the rows that add one.
                r#"<tr data-dimension="{}" class="active"><td class="label"><a href="#,
                r#"aria-current="true" title="Remove this filter">{}</a>"#,
                r#"title="Show only country: {}">{}</a>"#,
                // Peak hours and the footer name the time zone.
                "by local time ({}).",
                "Times in {}.",
            ],
        );
    }

    #[test]
    fn rows_without_links_and_refused_panels_are_escaped_too() {
        // Aggregate-only mode: rows are plain text.
        assert_escaped(
            &hostile_page(Mode::Aggregate, false),
            &[r#"<tr data-dimension="{}"><td class="label">{}<svg class="meter""#],
        );
        // The engine's message says why a panel is missing, and may quote what was asked.
        let page = hostile_page(Mode::Visits, true);
        assert_escaped(&page, &["Could not load this panel: {}</p>"]);
        // Seven tables, headline, series, heatmap, hours, durations (realtime shows 0).
        assert_eq!(page.matches("Could not load this panel").count(), 12);
    }

    #[test]
    fn login_and_error_pages_escape_what_they_are_given() {
        let page = login(HOSTILE, HOSTILE, HOSTILE, Some(HOSTILE), true);
        assert_escaped(
            &page,
            &[
                r#"<p class="error" role="alert">{}</p>"#,
                r#"name="csrf" value="{}">"#,
                r#"name="next" value="{}">"#,
                r#"name="name" value="{}" autocomplete="username" required>"#,
            ],
        );
        // A name filled in again moves the focus to the password.
        assert!(page.contains(r#"autocomplete="current-password" required autofocus>"#));
        let first = login("n", "/dashboard", "", None, false);
        assert!(first.contains(r#"autocomplete="username" required autofocus>"#));
        assert!(first.contains("No dashboard users are configured yet."));
        assert!(!first.contains(r#"role="alert""#));

        let page = error(HOSTILE, HOSTILE, Some((HOSTILE, HOSTILE)));
        assert_escaped(
            &page,
            &[
                "<title>{} · tally</title>",
                "<h1>{}</h1><p>{}</p>",
                r#"<p><a href="{}">{}</a></p>"#,
            ],
        );
    }

    #[test]
    fn the_headline_says_how_each_number_changed() {
        let view = View::parse("/d".into(), "a.example".into(), None).unwrap();
        let mut d = data(&view, Mode::Visits, false);
        let Ok(a) = &mut d.headline else {
            unreachable!()
        };
        // Visitors up, visits without an earlier number, bounce rate up (which is bad).
        a.rows[0].change = Some(vec![Some(12.0), None, Some(0.0), None, Some(4.0)]);
        let viewer = None;
        let ctx = Context {
            sites: Vec::new(),
            viewer,
            time_zone: "UTC",
            realtime_url: "/d/realtime".into(),
            shared: true,
        };
        let page = dashboard(&view, &d, &ctx);
        assert!(page.contains(r#"<p class="change good" data-change="12">▲ +12%<span class="was"> (was 2)</span></p>"#), "{page}");
        assert!(page.contains(r#"<h2>Visits</h2><p class="value" data-value="1">1</p><p class="change same">no earlier data</p>"#));
        assert!(page.contains(r#"<p class="change same" data-change="0">± 0%"#));
        assert!(page.contains(
            r#"<p class="change bad" data-change="4">▲ +4 pts<span class="was"> (was 2%)</span>"#
        ));
        assert!(page.contains(r#"<span class="account">Shared, read-only view</span>"#));
        assert!(!page.contains("/logout"));
    }
}
