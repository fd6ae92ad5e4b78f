//! The dashboard's HTML: the page frame, the login page, error pages and the dashboard itself.
//! The markup lives in compiled askama templates (`src/dashboard/templates/`, the folder named
//! in `askama.toml`), which escape every value they write; this file gathers what each template
//! shows from the view and the panels' answers. Everything reads without JavaScript: pickers are
//! links and a GET form, filters are links, charts are inline SVG with tables. Elements that
//! carry a number also carry it raw in `data-value`, for tests and scripts.
//!
//! Every text for people comes from the page's language (`tr`, an `i18n::Tr`): messages from
//! `locales/*.toml`, numbers and dates as CLDR writes them. Values from the data (page paths,
//! sources, countries, browser names) and the engine's own error messages are shown as they are.
//!
//! Each part of the dashboard page is a template of its own (a struct below and a file under
//! `templates/dashboard/`), written into the page as it is: its own template escaped its values.

use std::fmt;

use askama::Template;

use super::assets::Asset;
use super::auth::Viewer;
use super::charts::{self, Bar, BarChart, Heatmap, LineChart, Meter, Series};
use super::html::Figure;
use super::panels::{self, Answer, Breakdown, Data, Fmt, Mode, Panel, DURATION_BUCKETS};
use super::view::{filter_dim, with_lang_in, Compare, Period, View};
use crate::error::StatsError;
use crate::i18n::{self, Lang, Piece, Tr};

/// Renders a page. Templates fail only when a value's `Display` fails, which none here does; if
/// one ever did, the visitor gets a page that says so rather than half a page.
fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a dashboard page could not be rendered");
        "<!doctype html>\n<title>tally</title>\n<p>-</p>\n".into()
    })
}

/// HTML made here from a message whose slots hold code (`<code>…</code>`): the message's text
/// and the code are escaped, so neither a translation nor a value can add markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markup(String);

impl fmt::Display for Markup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl askama::filters::HtmlSafe for Markup {}

/// `text` escaped for HTML, as the templates escape values.
fn escape(text: &str) -> String {
    match askama::filters::escape(text, askama::filters::Html) {
        Ok(e) => e.to_string(),
        Err(never) => match never {},
    }
}

/// The message `key` with `args` filled in and each slot of `code` written as `<code>`.
fn with_code(tr: &Tr, key: &str, args: &[i18n::Arg<'_>], code: &[(&str, &str)]) -> Markup {
    let slots: Vec<&str> = code.iter().map(|(s, _)| *s).collect();
    let mut html = String::new();
    for piece in tr.pieces(key, args, &slots) {
        match piece {
            Piece::Text(t) => html.push_str(&escape(&t)),
            Piece::Slot(i) => {
                html.push_str("<code>");
                html.push_str(&escape(code[i].1));
                html.push_str("</code>");
            }
        }
    }
    Markup(html)
}

/// The language switch (`templates/languages.html`): the same page in each language.
#[derive(Template)]
#[template(path = "languages.html")]
struct Languages {
    label: String,
    links: Vec<LangLink>,
}

struct LangLink {
    code: &'static str,
    /// The language's name in itself (`Nederlands`).
    name: String,
    href: String,
    current: bool,
}

impl Languages {
    /// `href` gives the page's URL in a language.
    fn new(tr: &Tr, href: impl Fn(Lang) -> String) -> Languages {
        Languages {
            label: tr.t("header.language"),
            links: Lang::ALL
                .into_iter()
                .map(|l| LangLink {
                    code: l.code(),
                    name: i18n::tr(l).t("language.name"),
                    href: href(l),
                    current: l == tr.lang,
                })
                .collect(),
        }
    }
}

/// The login form (`templates/login.html`).
#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    tr: &'a Tr,
    languages: Languages,
    nonce: &'a str,
    next: &'a str,
    name: &'a str,
    message: Option<&'a str>,
    has_users: bool,
    /// What to do when no user is configured (with the command in `<code>`).
    no_users: Markup,
    /// The language chosen with the switch, kept through the form.
    lang: Option<Lang>,
}

/// The login form in `tr`'s language (`lang`: chosen with the switch, else `None`). `nonce` is
/// the CSRF value also set as the `tally_login` cookie. `name` is filled in again after a
/// failed attempt.
pub fn login(
    tr: &Tr,
    lang: Option<Lang>,
    nonce: &str,
    next: &str,
    name: &str,
    message: Option<&str>,
    has_users: bool,
) -> String {
    let languages = Languages::new(tr, |l| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        // Where the login leads goes on in the chosen language too.
        q.append_pair("next", &with_lang_in(next, l));
        q.append_pair("lang", l.code());
        format!("/login?{}", q.finish())
    });
    render(&Login {
        tr,
        languages,
        nonce,
        next,
        name,
        message,
        has_users,
        no_users: with_code(
            tr,
            "login.no_users",
            &[],
            &[("command", "tally hash-password NAME")],
        ),
        lang,
    })
}

/// An error page (`templates/error.html`).
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    tr: &'a Tr,
    title: &'a str,
    message: &'a str,
    /// A link onwards: its href and text.
    back: Option<(&'a str, &'a str)>,
}

/// A page that says what went wrong and where to go (texts already in `tr`'s language).
pub fn error(tr: &Tr, title: &str, message: &str, back: Option<(&str, &str)>) -> String {
    render(&ErrorPage {
        tr,
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
    /// The page's language.
    pub tr: &'a Tr,
}

/// The civil date at the start of `date` (`2026-11-22`, `2026-11-22T00:00:00+01:00`, …).
fn civil_date(date: &str) -> Option<jiff::civil::Date> {
    date.get(..10).unwrap_or(date).parse().ok()
}

/// `2026-11-22` → `Nov 22, 2026` (`with_year`) or `Nov 22`, in `tr`'s language; what is not a
/// date is shown as it came.
fn day_label(tr: &Tr, date: &str, with_year: bool) -> String {
    match civil_date(date) {
        Some(d) if with_year => tr.date(d),
        Some(d) => tr.day_month(d),
        None => date.to_string(),
    }
}

/// `2026-11-22` → `Sun, Nov 22, 2026`.
fn weekday_label(tr: &Tr, date: &str) -> String {
    match civil_date(date) {
        Some(d) => tr.weekday_date(d),
        None => date.to_string(),
    }
}

/// The period as people read it: `Oct 24 – Nov 22, 2026`, or one day.
fn period_label(tr: &Tr, period: &(String, String)) -> String {
    let (a, b) = (&period.0, &period.1);
    let (da, db) = (a.get(..10).unwrap_or(a), b.get(..10).unwrap_or(b));
    if da == db {
        return weekday_label(tr, da);
    }
    let same_year = da.get(..4) == db.get(..4);
    tr.f(
        "format.range",
        &[
            ("from", &day_label(tr, da, !same_year)),
            ("to", &day_label(tr, db, true)),
        ],
    )
}

/// A time bucket label on the x axis, and in the tooltip and table.
fn bucket_label(tr: &Tr, label: &str, dim: &str) -> (String, String) {
    match dim {
        "time:hour" => {
            let hour = label.get(11..16).unwrap_or(label).to_string();
            let day = day_label(tr, label, false);
            let long = tr.f("format.day_hour", &[("date", &day), ("time", &hour)]);
            (hour, long)
        }
        "time:month" => {
            let m = civil_date(label)
                .map(|d| tr.month_year(d))
                .unwrap_or_else(|| label.to_string());
            (m.clone(), m)
        }
        "time:week" => (
            day_label(tr, label, false),
            tr.f("chart.week_of", &[("date", &day_label(tr, label, true))]),
        ),
        _ => (day_label(tr, label, false), weekday_label(tr, label)),
    }
}

/// A number in a table: its metric (`data-metric`) and the number.
struct Cell {
    metric: &'static str,
    figure: Figure,
}

/// The link that downloads one panel's numbers as CSV: the panel's view at
/// `BASE/csv/PANEL?…` (see `routes`).
struct CsvLink {
    panel: &'static str,
    href: String,
    title: String,
    text: String,
}

impl CsvLink {
    fn new(tr: &Tr, view: &View, panel: &'static str, what: &str) -> CsvLink {
        CsvLink {
            panel,
            href: format!("{}/csv/{panel}?{}", view.base, view.query_string()),
            title: tr.f("csv.title", &[("panel", &what)]),
            text: tr.t("csv.link"),
        }
    }
}

/// The dashboard page of one view (`templates/dashboard.html`).
#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    tr: &'a Tr,
    view: &'a View,
    ctx: &'a Context<'a>,
    /// The period as people read it; empty when the headline answer did not come.
    period: String,
    /// For the title: the period, or the picker's name for it.
    title_period: String,
    header: Header<'a>,
    controls: Controls<'a>,
    filters: Filters<'a>,
    headline: Headline<'a>,
    over_time: OverTime<'a>,
    sections: Vec<Section<'a>>,
    peak_hours: PeakHours<'a>,
    durations: Option<Durations<'a>>,
    footer: Markup,
}

/// The top bar (`templates/dashboard/header.html`): site or site picker, the language switch,
/// and who is looking.
#[derive(Template)]
#[template(path = "dashboard/header.html")]
struct Header<'a> {
    tr: &'a Tr,
    view: &'a View,
    ctx: &'a Context<'a>,
    languages: Languages,
}

/// The period and comparison pickers (`templates/dashboard/controls.html`).
#[derive(Template)]
#[template(path = "dashboard/controls.html")]
struct Controls<'a> {
    tr: &'a Tr,
    view: &'a View,
    /// A custom period is shown (its form starts open), from and to (`YYYY-MM-DD`, else empty).
    custom: bool,
    from: String,
    to: String,
}

impl<'a> Controls<'a> {
    fn of(view: &'a View, tr: &'a Tr) -> Controls<'a> {
        let (custom, from, to) = match &view.period {
            Period::Custom(a, b) => (true, a.to_string(), b.to_string()),
            _ => (false, String::new(), String::new()),
        };
        Controls {
            tr,
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
    tr: &'a Tr,
    filters: Vec<ActiveFilter<'a>>,
    /// The same view without any filter.
    clear_all: String,
}

/// A filter of the view: its URL parameter, its value (written between the text before and
/// after it: "Country is NL"), the view without it, and that link's accessible name.
struct ActiveFilter<'a> {
    param: String,
    before: String,
    value: &'a str,
    after: String,
    remove: String,
    remove_label: String,
}

impl<'a> Filters<'a> {
    fn of(view: &'a View, tr: &'a Tr) -> Filters<'a> {
        let mut none = view.clone();
        none.filters.clear();
        none.prop_filters.clear();
        // A property filter is named by its key, as the site's config names it.
        let dims = view.filters.iter().map(|(dim, value)| {
            (
                dim.param.to_string(),
                tr.t(dim.label),
                value,
                view.without_filter(*dim),
            )
        });
        let props = view.prop_filters.iter().map(|(key, value)| {
            (
                format!("props.{key}"),
                key.clone(),
                value,
                view.without_prop_filter(key),
            )
        });
        Filters {
            tr,
            filters: dims
                .chain(props)
                .map(|(param, label, value, without)| {
                    // The value goes in its slot: "Country is NL", "Pays : NL".
                    let (mut before, mut after, mut seen) = (String::new(), String::new(), false);
                    for piece in tr.pieces("filters.is", &[("dimension", &label)], &["value"]) {
                        match piece {
                            Piece::Text(t) if seen => after.push_str(&t),
                            Piece::Text(t) => before.push_str(&t),
                            Piece::Slot(_) => seen = true,
                        }
                    }
                    ActiveFilter {
                        param,
                        before,
                        value,
                        after,
                        remove: without.href(),
                        remove_label: tr.f("filters.remove", &[("dimension", &label)]),
                    }
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
    tr: &'a Tr,
    stats: Result<Vec<Stat>, &'a StatsError>,
    /// Visitors in the last minutes; `None` in aggregate-only mode, which keeps no visitors.
    realtime: Option<Figure>,
    realtime_url: &'a str,
    /// What aggregate-only mode keeps and does not (with its setting in `<code>`).
    aggregate_note: Markup,
    csv: CsvLink,
}

/// A headline number.
struct Stat {
    metric: &'static str,
    label: String,
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
    /// the raw change, `text` the change for people (see [`Tr::change`]), `was` the earlier
    /// number in words ("(was 2)").
    Changed {
        class: &'static str,
        value: f64,
        text: String,
        was: String,
    },
}

impl<'a> Headline<'a> {
    fn of(view: &View, data: &'a Data, ctx: &'a Context<'_>) -> Headline<'a> {
        let tr = ctx.tr;
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
                            let was = Figure::new(previous, c.fmt, tr);
                            Change::Changed {
                                class: if v == 0.0 {
                                    "same"
                                } else if good {
                                    "good"
                                } else {
                                    "bad"
                                },
                                value: v,
                                text: tr.change(v, points),
                                was: tr.f("headline.was", &[("value", &was.text())]),
                            }
                        }
                        None if row.is_some_and(|r| r.change.is_some()) => Change::NoEarlierData,
                        None => Change::Off,
                    };
                    Stat {
                        metric: c.metric.name(),
                        label: tr.t(c.label),
                        figure: Figure::new(value, c.fmt, tr),
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
            Figure::count(now, tr)
        });
        Headline {
            tr,
            stats,
            realtime,
            realtime_url: &ctx.realtime_url,
            aggregate_note: with_code(
                tr,
                "headline.aggregate_note",
                &[],
                &[
                    ("setting", "privacy.aggregate_only"),
                    ("report", "GET /privacy"),
                ],
            ),
            csv: CsvLink::new(tr, view, "headline", &tr.t("headline.label")),
        }
    }
}

/// Visitors and pageviews over time (`templates/dashboard/over_time.html`).
#[derive(Template)]
#[template(path = "dashboard/over_time.html")]
struct OverTime<'a> {
    tr: &'a Tr,
    title: String,
    chart: Result<TimeSeries, &'a StatsError>,
    csv: CsvLink,
}

/// A time series' metric, label and count (message keys) and line style (a CSS class).
type SeriesName = (&'static str, &'static str, &'static str, &'static str);

/// The series of the over-time panel, in the order asked (see `panels::Queries`).
fn series_names(mode: Mode) -> &'static [SeriesName] {
    match mode {
        Mode::Visits => &[
            ("visitors", "metric.visitors", "count.visitors", "s1"),
            ("pageviews", "metric.pageviews", "count.pageviews", "s2"),
        ],
        Mode::Aggregate => &[("pageviews", "metric.pageviews", "count.pageviews", "s1")],
        Mode::Conversions => &[
            ("visitors", "metric.uniques", "count.visitors", "s1"),
            (
                "events",
                "metric.total_conversions",
                "count.conversions",
                "s2",
            ),
        ],
    }
}

struct TimeSeries {
    /// Each series' label and line style.
    series: Vec<(String, &'static str)>,
    lines: LineChart<'static>,
    rows: Vec<TimeRow>,
}

/// A time bucket in the table: the engine's label, the label for people, and its numbers.
struct TimeRow {
    label: String,
    long: String,
    cells: Vec<Cell>,
}

/// Every time label of a series answer (the engine's full list when it gave one, else the
/// labels of its rows), and each series' value per label (0 where the answer has no row).
pub fn time_grid(a: &Answer, series: usize) -> (Vec<String>, Vec<Vec<f64>>) {
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
    let values = (0..series)
        .map(|i| labels.iter().map(|l| value(l, i)).collect())
        .collect();
    (labels, values)
}

impl<'a> OverTime<'a> {
    fn of(view: &View, data: &'a Data, tr: &'a Tr) -> OverTime<'a> {
        let title = tr.t(match data.mode {
            Mode::Conversions => "over_time.title_conversions",
            Mode::Visits | Mode::Aggregate => "over_time.title",
        });
        OverTime {
            tr,
            chart: data
                .series
                .as_ref()
                .map(|a| OverTime::series(a, data.mode, tr, &title)),
            csv: CsvLink::new(tr, view, "over-time", &title),
            title,
        }
    }

    fn series(a: &Answer, mode: Mode, tr: &Tr, title: &str) -> TimeSeries {
        let dim = a.time_dimension.as_deref().unwrap_or("time:day");
        let names = series_names(mode);
        let (labels, values) = time_grid(a, names.len());
        let buckets: Vec<(String, String)> =
            labels.iter().map(|l| bucket_label(tr, l, dim)).collect();
        let (axis, tips): (Vec<String>, Vec<String>) = buckets
            .iter()
            .enumerate()
            .map(|(i, (short, long))| {
                let parts: Vec<String> = names
                    .iter()
                    .enumerate()
                    .map(|(k, (_, _, counted, _))| tr.plural(counted, values[k][i], &[]))
                    .collect();
                let tip = tr.f(
                    "chart.tip",
                    &[("label", long), ("values", &parts.join(", "))],
                );
                (short.clone(), tip)
            })
            .unzip();
        let labels_for_people: Vec<String> = names.iter().map(|(_, l, _, _)| tr.t(l)).collect();
        let series: Vec<Series<'static>> = names
            .iter()
            .zip(&values)
            .map(|((_, _, _, class), v)| Series {
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
                    .map(|(k, (metric, _, _, _))| Cell {
                        metric,
                        figure: Figure::count(values[k][i], tr),
                    })
                    .collect(),
            })
            .collect();
        TimeSeries {
            series: labels_for_people
                .into_iter()
                .zip(names.iter().map(|n| n.3))
                .collect(),
            lines: charts::line_chart(&axis, &tips, &series, 240.0, title.to_string(), tr),
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
    title: String,
    tables: Vec<BreakdownTable<'a>>,
    /// How to read the tables ("" for none).
    note: String,
    /// Links to the same panel on each of its choices (the properties panel's keys), or none.
    tabs: Vec<Tab>,
    /// The tabs' accessible name.
    tabs_label: String,
}

/// A choice of what a panel shows: its name, the view showing it, and whether it is shown.
struct Tab {
    name: String,
    href: String,
    current: bool,
}

impl<'a> Section<'a> {
    /// The breakdown tables grouped into their panels, in page order.
    fn all(view: &'a View, data: &'a Data, tr: &'a Tr) -> Vec<Section<'a>> {
        // Rows are links only where the engine can filter (not in aggregate-only mode).
        let links = data.mode != Mode::Aggregate;
        let sections: [(&str, &str, &str); 6] = [
            ("goals", "section.goals", "section.goals_note"),
            (
                "props",
                "section.props",
                match data.mode {
                    Mode::Conversions => "section.conversions_note",
                    Mode::Visits | Mode::Aggregate => "section.props_note",
                },
            ),
            (
                "pages",
                "section.pages",
                match data.mode {
                    Mode::Visits => "section.pages_note",
                    Mode::Aggregate => "section.pages_note_aggregate",
                    Mode::Conversions => "section.conversions_note",
                },
            ),
            (
                "sources",
                "section.sources",
                match data.mode {
                    Mode::Visits | Mode::Conversions => "",
                    Mode::Aggregate => "section.sources_note_aggregate",
                },
            ),
            ("countries", "section.countries", ""),
            ("devices", "section.devices", ""),
        ];
        sections
            .into_iter()
            .map(|(id, title, note)| {
                let title = tr.t(title);
                // The properties panel: one link per allow-listed key, to this view showing it
                // (without JavaScript, as every control of the page).
                let shown = view.shown_prop(&data.props);
                let tabs = match id {
                    "props" if data.props.len() > 1 => data
                        .props
                        .iter()
                        .map(|k| Tab {
                            name: k.clone(),
                            href: format!("{}#props-panel", view.with_prop(k).href()),
                            current: Some(k.as_str()) == shown,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                // The table is headed by the property's name.
                let title = match (id, shown) {
                    ("props", Some(key)) => tr.f("section.props_of", &[("key", &key)]),
                    _ => title,
                };
                Section {
                    id,
                    tabs,
                    tabs_label: tr.t("section.props_choice"),
                    tables: data
                        .breakdowns
                        .iter()
                        .zip(&data.tables)
                        .filter(|(spec, _)| spec.section == id)
                        .map(|(spec, panel)| {
                            // The table's own heading names it, else its panel's.
                            let what = if spec.title.is_empty() {
                                title.clone()
                            } else {
                                tr.t(spec.title)
                            };
                            BreakdownTable::of(spec, panel, view, (links, shown), tr, &what)
                        })
                        .collect(),
                    title,
                    note: if note.is_empty() {
                        String::new()
                    } else {
                        tr.t(note)
                    },
                }
            })
            // The goals panel only where the site has goals (it has no table otherwise).
            .filter(|s| !s.tables.is_empty())
            .collect()
    }
}

/// Where a row links: back to the view `without` its filter when the view is `active`ly
/// filtered by the row, else to the view `with` it, titled with the filter's `dimension`
/// (a label, or a property's key) and `value`. A property's `(none)` row filters too: the
/// engine's `is "(none)"` keeps the events without the property, as its breakdown counts them.
fn row_link(
    active: bool,
    without: impl FnOnce() -> View,
    with: impl FnOnce() -> View,
    dimension: &str,
    value: &str,
    tr: &Tr,
) -> RowLink {
    if active {
        RowLink::Remove(without().href())
    } else {
        RowLink::Add(
            with().href(),
            tr.f(
                "table.add_filter",
                &[("dimension", &dimension), ("value", &value)],
            ),
        )
    }
}

/// A breakdown table (`templates/dashboard/breakdown.html`).
#[derive(Template)]
#[template(path = "dashboard/breakdown.html")]
struct BreakdownTable<'a> {
    tr: &'a Tr,
    spec: &'a Breakdown,
    rows: Result<Vec<TableRow>, &'a StatsError>,
    /// When the engine has more rows than shown: how many are shown, and of how many.
    more: Option<Markup>,
    csv: CsvLink,
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
    /// The link (its href) filters the view by this row; its title says so.
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
    /// it (or, when already filtered by it, back to the unfiltered view). `links`: whether
    /// rows may link, and the property the properties table shows (its rows filter by it).
    /// `what` names the table (for its CSV link).
    fn of(
        spec: &'a Breakdown,
        panel: &'a Panel,
        view: &View,
        (links, prop): (bool, Option<&str>),
        tr: &'a Tr,
        what: &str,
    ) -> BreakdownTable<'a> {
        let filter = spec.filter.and_then(filter_dim).filter(|_| links);
        let prop =
            prop.filter(|_| links && matches!(spec.dimension, crate::stats::Dimension::Prop(_)));
        let csv = CsvLink::new(tr, view, spec.id, what);
        let answer = match panel {
            Ok(a) => a,
            Err(e) => {
                return BreakdownTable {
                    tr,
                    spec,
                    rows: Err(e),
                    more: None,
                    csv,
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
                let link = match (filter, prop) {
                    (Some(f), _) => row_link(
                        view.filter_value(f) == Some(value.as_str()),
                        || view.without_filter(f),
                        || view.with_filter(f, &value),
                        &tr.t(f.label),
                        &value,
                        tr,
                    ),
                    (None, Some(key)) => row_link(
                        view.prop_filter_value(key) == Some(value.as_str()),
                        || view.without_prop_filter(key),
                        || view.with_prop_filter(key, &value),
                        key,
                        &value,
                        tr,
                    ),
                    (None, None) => RowLink::None,
                };
                TableRow {
                    meter: charts::meter(if max > 0.0 { r.metric(0) / max } else { 0.0 }),
                    cells: spec
                        .cols
                        .iter()
                        .enumerate()
                        .map(|(i, c)| Cell {
                            metric: c.metric.name(),
                            figure: Figure::new(r.metrics.get(i).copied().flatten(), c.fmt, tr),
                        })
                        .collect(),
                    value,
                    link,
                }
            })
            .collect();
        let more = answer.total_rows.and_then(|total| {
            let shown = answer.rows.len().min(panels::TABLE_ROWS) as u64;
            (total > shown).then(|| {
                with_code(
                    tr,
                    "table.more",
                    &[
                        ("shown", &tr.count(shown as f64)),
                        ("total", &tr.count(total as f64)),
                    ],
                    &[("pagination", "pagination")],
                )
            })
        });
        BreakdownTable {
            tr,
            spec,
            rows: Ok(rows),
            more,
            csv,
        }
    }
}

/// When people come: weekday × hour and hour of the day
/// (`templates/dashboard/peak_hours.html`).
#[derive(Template)]
#[template(path = "dashboard/peak_hours.html")]
struct PeakHours<'a> {
    tr: &'a Tr,
    /// What is counted, by local time in which zone.
    note: String,
    heatmap: Result<Heatmap, &'a StatsError>,
    hours: Result<Hours, &'a StatsError>,
    heatmap_csv: CsvLink,
    hours_csv: CsvLink,
}

/// The hours of the day: bars of the first metric, and all of them in a table.
struct Hours {
    /// The metrics asked for hours (see `panels::Queries`), and their labels.
    names: Vec<(&'static str, String)>,
    bars: BarChart<'static>,
    rows: Vec<HourRow>,
}

struct HourRow {
    hour: usize,
    cells: Vec<Cell>,
}

impl<'a> PeakHours<'a> {
    fn of(view: &View, data: &'a Data, ctx: &'a Context<'_>) -> PeakHours<'a> {
        let tr = ctx.tr;
        let people = panels::people(data.mode);
        let counted = match data.mode {
            Mode::Visits | Mode::Conversions => "count.visitors",
            Mode::Aggregate => "count.pageviews",
        };
        let heatmap = data.heatmap.as_ref().map(|a| {
            let mut cells = [[0.0f64; 24]; 7];
            for r in &a.rows {
                let w = r.dims.first().and_then(|d| d.parse::<usize>().ok());
                let h = r.dims.get(1).and_then(|d| d.parse::<usize>().ok());
                if let (Some(w @ 1..=7), Some(h @ 0..=23)) = (w, h) {
                    cells[w - 1][h] = r.metric(0);
                }
            }
            charts::heatmap(&cells, people.label, counted, tr)
        });
        // The hours' series are the over-time panel's (see `panels::Queries`).
        let names = series_names(data.mode);
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
                        .map(|(k, (_, _, counted, _))| tr.plural(counted, v[k], &[]))
                        .collect();
                    let label = format!("{h:02}:00–{h:02}:59");
                    Bar {
                        label: format!("{h:02}"),
                        value: v[0],
                        tip: tr.f(
                            "chart.tip",
                            &[("label", &label), ("values", &parts.join(", "))],
                        ),
                        show_label: h % 3 == 0,
                    }
                })
                .collect();
            Hours {
                names: names.iter().map(|(m, l, _, _)| (*m, tr.t(l))).collect(),
                bars: charts::bar_chart(bars, 150.0, "hours", false, tr.t("peak.hours"), tr),
                rows: hours
                    .iter()
                    .enumerate()
                    .map(|(hour, v)| HourRow {
                        hour,
                        cells: names
                            .iter()
                            .zip(v)
                            .map(|((metric, _, _, _), v)| Cell {
                                metric,
                                figure: Figure::count(*v, tr),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        });
        PeakHours {
            tr,
            note: tr.f(
                "peak.note",
                &[("metric", &tr.t(people.label)), ("zone", &ctx.time_zone)],
            ),
            heatmap,
            hours,
            heatmap_csv: CsvLink::new(tr, view, "heatmap", &tr.t("peak.heatmap")),
            hours_csv: CsvLink::new(tr, view, "hours", &tr.t("peak.hours")),
        }
    }
}

/// How long visits last (`templates/dashboard/durations.html`).
#[derive(Template)]
#[template(path = "dashboard/durations.html")]
struct Durations<'a> {
    tr: &'a Tr,
    quantiles: Option<Quantiles>,
    buckets: Result<DurationBuckets, &'a StatsError>,
    csv: CsvLink,
}

/// From the headline answer (see `panels::DURATION_SUMMARY`).
struct Quantiles {
    median: Figure,
    p75: Figure,
    p90: Figure,
    /// "1.50 pageviews per visit" (two decimals), or with `–`.
    views_per_visit: String,
}

struct DurationBuckets {
    bars: BarChart<'static>,
    /// Each bucket in its natural order, with its visits.
    rows: Vec<(&'static str, Cell)>,
}

impl<'a> Durations<'a> {
    /// `None` where visits are not kept (aggregate-only mode).
    fn of(view: &View, data: &'a Data, tr: &'a Tr) -> Option<Durations<'a>> {
        let durations = data.durations.as_ref()?;
        let quantiles = data
            .headline
            .as_ref()
            .ok()
            .and_then(|a| a.rows.first())
            .map(|r| {
                let m = |i: usize| r.metrics.get(i).copied().flatten();
                let per_visit = m(7).map(|v| tr.fixed(v, 2)).unwrap_or_else(|| "–".into());
                Quantiles {
                    median: Figure::new(m(3), Fmt::Duration, tr),
                    p75: Figure::new(m(5), Fmt::Duration, tr),
                    p90: Figure::new(m(6), Fmt::Duration, tr),
                    views_per_visit: tr.f("durations.views_per_visit", &[("n", &per_visit)]),
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
                        tip: tr.f(
                            "durations.tip",
                            &[
                                ("bucket", b),
                                ("count", &tr.plural("count.visits", v, &[])),
                                ("share", &tr.percent(share)),
                            ],
                        ),
                        show_label: true,
                    }
                })
                .collect();
            DurationBuckets {
                bars: charts::bar_chart(
                    bars,
                    170.0,
                    "durations",
                    true,
                    tr.t("durations.title"),
                    tr,
                ),
                rows: DURATION_BUCKETS
                    .iter()
                    .map(|b| {
                        let cell = Cell {
                            metric: "visits",
                            figure: Figure::count(visits(b), tr),
                        };
                        (*b, cell)
                    })
                    .collect(),
            }
        });
        Some(Durations {
            tr,
            quantiles,
            buckets,
            csv: CsvLink::new(tr, view, "durations", &tr.t("durations.title")),
        })
    }
}

// Each part is a template that escapes what it writes, so the page writes it as it is.
impl askama::filters::HtmlSafe for Languages {}
impl askama::filters::HtmlSafe for Header<'_> {}
impl askama::filters::HtmlSafe for Controls<'_> {}
impl askama::filters::HtmlSafe for Filters<'_> {}
impl askama::filters::HtmlSafe for Headline<'_> {}
impl askama::filters::HtmlSafe for OverTime<'_> {}
impl askama::filters::HtmlSafe for Section<'_> {}
impl askama::filters::HtmlSafe for BreakdownTable<'_> {}
impl askama::filters::HtmlSafe for PeakHours<'_> {}
impl askama::filters::HtmlSafe for Durations<'_> {}

/// The dashboard page of one view, in `ctx.tr`'s language.
pub fn dashboard(view: &View, data: &Data, ctx: &Context<'_>) -> String {
    let tr = ctx.tr;
    let period = data
        .headline
        .as_ref()
        .ok()
        .and_then(|a: &Answer| a.period.as_ref())
        .map(|p| period_label(tr, p))
        .unwrap_or_default();
    let title_period = if period.is_empty() {
        Period::CHOICES
            .iter()
            .find(|(p, _, _)| *p == view.period)
            .map(|(_, _, label)| tr.t(label))
            .unwrap_or_else(|| tr.t("controls.custom"))
    } else {
        period.clone()
    };
    render(&DashboardPage {
        tr,
        view,
        ctx,
        period,
        title_period,
        header: Header {
            tr,
            view,
            ctx,
            languages: Languages::new(tr, |l| view.with_lang(l).href()),
        },
        controls: Controls::of(view, tr),
        filters: Filters::of(view, tr),
        headline: Headline::of(view, data, ctx),
        over_time: OverTime::of(view, data, tr),
        sections: Section::all(view, data, tr),
        peak_hours: PeakHours::of(view, data, ctx),
        durations: Durations::of(view, data, tr),
        footer: with_code(
            tr,
            "footer",
            &[("zone", &ctx.time_zone)],
            &[("api", "POST /api/v2/query")],
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::tr;

    #[test]
    fn labels_for_people() {
        let en = tr(Lang::En);
        assert_eq!(
            period_label(
                en,
                &(
                    "2026-10-24T00:00:00+02:00".into(),
                    "2026-11-22T23:59:59+01:00".into()
                )
            ),
            "Oct 24 – Nov 22, 2026"
        );
        assert_eq!(
            period_label(
                en,
                &(
                    "2025-12-24T00:00:00+01:00".into(),
                    "2026-01-22T23:59:59+01:00".into()
                )
            ),
            "Dec 24, 2025 – Jan 22, 2026"
        );
        assert_eq!(
            period_label(
                en,
                &(
                    "2026-11-23T00:00:00+01:00".into(),
                    "2026-11-23T23:59:59+01:00".into()
                )
            ),
            "Mon, Nov 23, 2026"
        );
        assert_eq!(
            bucket_label(en, "2026-11-23 14:00:00", "time:hour"),
            ("14:00".to_string(), "Nov 23, 14:00".to_string())
        );
        assert_eq!(bucket_label(en, "2026-11-01", "time:month").0, "Nov 2026");
        assert_eq!(
            bucket_label(en, "2026-11-22", "time:day").1,
            "Sun, Nov 22, 2026"
        );
        assert_eq!(
            bucket_label(en, "2026-01-05", "time:week").1,
            "week of Jan 5, 2026"
        );
        // The same in Dutch and French.
        let (nl, fr) = (tr(Lang::Nl), tr(Lang::Fr));
        let march = (
            "2026-03-01T00:00:00+01:00".to_string(),
            "2026-03-31T23:59:59+02:00".to_string(),
        );
        assert_eq!(period_label(nl, &march), "1 mrt – 31 mrt 2026");
        assert_eq!(period_label(fr, &march), "1 mars – 31 mars 2026");
        assert_eq!(
            bucket_label(nl, "2026-11-23 14:00:00", "time:hour").1,
            "23 nov 14:00"
        );
        assert_eq!(
            bucket_label(fr, "2026-11-23 14:00:00", "time:hour").1,
            "23 nov. à 14:00"
        );
        assert_eq!(
            bucket_label(fr, "2026-01-05", "time:week").1,
            "semaine du 5 janv. 2026"
        );
        // Every month name.
        let months: Vec<String> = (1..=12)
            .map(|m| bucket_label(en, &format!("2026-{m:02}-01"), "time:month").0)
            .collect();
        assert_eq!(
            months.join(","),
            "Jan 2026,Feb 2026,Mar 2026,Apr 2026,May 2026,Jun 2026,Jul 2026,Aug 2026,Sep 2026,\
             Oct 2026,Nov 2026,Dec 2026"
        );
        // What is not a date is shown as it came.
        assert_eq!(day_label(en, "soon", true), "soon");
        assert_eq!(weekday_label(en, "soon"), "soon");
        assert_eq!(bucket_label(en, "2026-13-01", "time:month").0, "2026-13-01");
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

    /// Every panel answered, with `value` wherever the data puts text on the page, or every
    /// panel refused with `value` as the engine's message.
    fn data(view: &View, mode: Mode, refused: bool, value: &str) -> Data {
        let breakdowns = panels::breakdowns(mode, view.is_filtered(), false, true);
        let panel = |a: Answer| -> Panel {
            if refused {
                Err(StatsError::Invalid(value.into()))
            } else {
                Ok(a)
            }
        };
        let mut headline = row(&[], &[1234.0; 8]);
        headline.change = Some(vec![Some(10.0); 8]);
        headline.previous = Some(vec![Some(2.0); 8]);
        Data {
            mode,
            // The properties panel's tabs name the site's keys.
            props: vec!["author".into(), value.into()],
            tables: breakdowns
                .iter()
                .map(|_| {
                    panel(Answer {
                        total_rows: Some(40),
                        ..answer(vec![row(&[value], &[3.0; 4])])
                    })
                })
                .collect(),
            breakdowns,
            headline: panel(Answer {
                rows: vec![headline],
                period: Some(("2026-03-01".into(), "2026-03-31".into())),
                ..Answer::default()
            }),
            series: panel(Answer {
                rows: vec![row(&[value], &[5.0, 7.0])],
                time_labels: vec![value.into(), "2026-03-02".into()],
                time_dimension: Some("time:day".into()),
                ..Answer::default()
            }),
            heatmap: panel(answer(vec![row(&["1", "9"], &[4.0])])),
            hours: panel(answer(vec![row(&["9"], &[4.0, 6.0])])),
            durations: (mode == Mode::Visits).then(|| panel(answer(vec![row(&["1-3m"], &[2.0])]))),
            realtime: (mode == Mode::Visits).then(|| panel(answer(vec![row(&[], &[1.0])]))),
        }
    }

    /// A dashboard page in `tr`'s language where the site, the share path, the filters, the
    /// user, the CSRF token, the time zone and the data all hold `value`.
    fn page_with(tr: &Tr, value: &str, mode: Mode, refused: bool, lang: Option<Lang>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("page", value)
            .append_pair("source", value)
            .append_pair("props.author", value);
        if let Some(l) = lang {
            query.append_pair("lang", l.code());
        }
        let base = format!("/share/{value}");
        let view = View::parse(base.clone(), value.into(), Some(&query.finish())).unwrap();
        let viewer = Viewer {
            user: value.into(),
            sites: Vec::new(),
            csrf: Some(value.into()),
        };
        let ctx = Context {
            sites: vec![
                (value.into(), base.clone()),
                ("b.example".into(), "/dashboard/b.example".into()),
            ],
            viewer: Some(&viewer),
            time_zone: value,
            realtime_url: format!("{base}/realtime"),
            shared: false,
            tr,
        };
        dashboard(&view, &data(&view, mode, refused, value), &ctx)
    }

    fn hostile_page(mode: Mode, refused: bool) -> String {
        page_with(tr(Lang::En), HOSTILE, mode, refused, None)
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
                "<title>{} · Mar 1 – Mar 31, 2026 · tally</title>",
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
                // A property filter: named by its key, kept by the custom-period form.
                "author is <strong>{}</strong>",
                r#"<input type="hidden" name="props.author" value="{}">"#,
                // The realtime number's URL, and the CSV downloads under the view's path.
                &format!(r#"data-realtime-url="{escaped_path}/realtime""#),
                &format!(r#"<a class="csv" href="{escaped_path}/csv/pages?"#),
                // The time series: chart labels and tooltips, the table.
                r#"text-anchor="start">{}</text>"#,
                "<title>{}: 5 visitors, 7 pageviews</title>",
                r#"<tr data-dimension="{}"><td>{}</td>"#,
                // Breakdown rows: the active filter, the rows that add one.
                r#"<tr data-dimension="{}" class="active"><td class="label"><a href="#,
                r#"aria-current="true" title="Remove this filter">{}</a>"#,
                r#"title="Show only Country: {}">{}</a>"#,
                // The properties panel: a tab per allow-listed key, keeping the view.
                r#"<li><a href="/share/{}?period=30d&#38;page="#,
                r#"&#38;prop=author#props-panel" aria-current="page">author</a></li>"#,
                r##"#props-panel">{}</a></li>"##,
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
        // Eight tables (the properties one too), headline, series, heatmap, hours, durations
        // (realtime shows 0).
        assert_eq!(page.matches("Could not load this panel").count(), 13);
    }

    #[test]
    fn login_and_error_pages_escape_what_they_are_given() {
        let en = tr(Lang::En);
        let page = login(en, None, HOSTILE, HOSTILE, HOSTILE, Some(HOSTILE), true);
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
        let first = login(en, None, "n", "/dashboard", "", None, false);
        assert!(first.contains(r#"autocomplete="username" required autofocus>"#));
        assert!(first.contains(
            "No dashboard users are configured yet. Run <code>tally hash-password NAME</code> and"
        ));
        assert!(!first.contains(r#"role="alert""#));

        let page = error(en, HOSTILE, HOSTILE, Some((HOSTILE, HOSTILE)));
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
        let mut d = data(&view, Mode::Visits, false, "x");
        let Ok(a) = &mut d.headline else {
            unreachable!()
        };
        a.rows[0].metrics = vec![Some(1.0); 8];
        // Visitors up, visits without an earlier number, bounce rate up (which is bad).
        a.rows[0].change = Some(vec![Some(12.0), None, Some(0.0), None, Some(4.0)]);
        let viewer = None;
        let ctx = Context {
            sites: Vec::new(),
            viewer,
            time_zone: "UTC",
            realtime_url: "/d/realtime".into(),
            shared: true,
            tr: tr(Lang::En),
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

    /// Marks put around every text the page's `Tr` makes (messages, dates, names).
    const OPEN: &str = "⟦";
    const CLOSE: &str = "⟧";

    /// The words a page shows people that did not come from its `Tr`: the text between tags
    /// and the attributes people read, with the marked texts, code (`<code>`), the brand, the
    /// languages' own names in the switch and `data` values taken out. `data` must be values
    /// without letters, except those listed.
    fn untranslated(page: &str, data: &[&str]) -> Vec<String> {
        let mut page = page.to_string();
        // Innermost marks first: a message may hold another (a count in a tooltip).
        let marked = regex::Regex::new(r"⟦[^⟦⟧]*⟧").unwrap();
        while marked.is_match(&page) {
            page = marked.replace_all(&page, "").into_owned();
        }
        let removed = regex::Regex::new(
            r#"(?s)<code>.*?</code>|<a [^>]*\blang="[a-z]+"[^>]*>[^<]*</a>|<span class="brand">tally</span>|· tally</title>|<script[^>]*></script>"#,
        )
        .unwrap();
        let page = removed.replace_all(&page, "");
        let read = regex::Regex::new(r#"(?:title|aria-label|alt|placeholder)="([^"]*)""#).unwrap();
        let tag = regex::Regex::new(r"(?s)<[^>]*>").unwrap();
        let mut texts: Vec<String> = read
            .captures_iter(&page)
            .map(|c| c[1].to_string())
            .collect();
        texts.extend(tag.split(&page).map(str::to_string));
        texts
            .into_iter()
            .map(|t| data.iter().fold(t, |t, d| t.replace(d, "")))
            .filter(|t| t.chars().any(char::is_alphabetic))
            .collect()
    }

    /// What the issue asks: no text on a page outside the translations. Every text a page's
    /// `Tr` makes is marked; whatever has a letter and no mark was written by the code or a
    /// template in English.
    #[test]
    fn every_word_on_every_page_comes_from_the_translations() {
        // Values from the data and the URL, without letters, so that any letter left is ours.
        let value = "/1-2";
        let mut buckets: Vec<&str> = DURATION_BUCKETS.to_vec();
        // The second site of the picker and the first allow-listed property (`page_with`).
        buckets.push("b.example");
        buckets.push("author");
        for lang in Lang::ALL {
            let tr = Tr::marked(lang, OPEN, CLOSE);
            for (mode, refused) in [
                (Mode::Visits, false),
                (Mode::Visits, true),
                (Mode::Aggregate, false),
            ] {
                let page = page_with(tr, value, mode, refused, Some(lang));
                let left = untranslated(&page, &buckets);
                assert!(left.is_empty(), "{lang:?} {mode:?} {refused}: {left:?}");
            }
            for page in [
                login(tr, Some(lang), "1", "/dashboard", "", Some("2"), false),
                error(tr, "1", "2", Some(("/dashboard", "3"))),
            ] {
                let left = untranslated(&page, &[]);
                assert!(left.is_empty(), "{lang:?}: {left:?}");
            }
        }
        // The check finds English written outside the translations.
        let english = page_with(tr(Lang::En), value, Mode::Visits, false, None);
        assert!(!untranslated(&english, &buckets).is_empty());
    }

    #[test]
    fn the_page_in_dutch_and_french() {
        let nl = page_with(
            tr(Lang::Nl),
            "x.example",
            Mode::Visits,
            false,
            Some(Lang::Nl),
        );
        assert!(
            nl.starts_with("<!doctype html>\n<html lang=\"nl\">"),
            "{nl}"
        );
        for text in [
            "<h2>Bezoekers</h2><p class=\"value\" data-value=\"1234\">1.234</p>",
            "1 mrt – 31 mrt 2026",
            "Meest bezochte pagina&#39;s",
            "Gefilterd op",
            "Pagina is <strong>x.example</strong>",
            "5 bezoekers, 7 paginaweergaven",
            "<summary>Als tabel</summary>",
        ] {
            assert!(nl.contains(text), "{text} not in:\n{nl}");
        }
        // Every link keeps the chosen language; the switch offers the others by their names.
        assert!(nl.contains("href=\"/share/x.example?period=today&#38;page=x.example&#38;source=x.example&#38;props.author=x.example&#38;lang=nl\""));
        assert!(nl.contains(r#"hreflang="fr" lang="fr">Français</a>"#));
        assert!(nl.contains(r#"hreflang="nl" lang="nl" aria-current="true">Nederlands</a>"#));
        assert!(nl.contains(r#"<input type="hidden" name="lang" value="nl">"#));
        let fr = page_with(tr(Lang::Fr), "x.example", Mode::Visits, false, None);
        assert!(fr.starts_with("<!doctype html>\n<html lang=\"fr\">"));
        for text in [
            "<h2>Visiteurs</h2><p class=\"value\" data-value=\"1234\">1\u{202f}234</p>",
            "1 mars – 31 mars 2026",
            "Pages les plus visitées",
            "Page\u{a0}: <strong>x.example</strong>",
            "▲ +10\u{202f}%",
        ] {
            assert!(fr.contains(text), "{text} not in:\n{fr}");
        }
        // Without a chosen language, links carry none (the browser's decides); only the
        // switch's links name one.
        assert!(fr.contains(
            "href=\"/share/x.example?period=today&#38;page=x.example&#38;source=x.example&#38;props.author=x.example\""
        ));
        assert_eq!(fr.matches("lang=fr\"").count(), 1, "{fr}");
        assert!(!fr.contains("name=\"lang\""));
    }
}
