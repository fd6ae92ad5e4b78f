//! The dashboard's HTML: the page frame, the login page, error pages and the dashboard itself,
//! rendered on the server from the panels' answers. Everything reads without JavaScript:
//! pickers are links and a GET form, filters are links, charts are inline SVG with tables.
//! Elements that carry a number also carry it raw in `data-value`, for tests and scripts.

use std::fmt::Write;

use super::assets::Asset;
use super::auth::Viewer;
use super::charts::{self, Bar, Series};
use super::html::{count, duration, esc, percent};
use super::panels::{self, Answer, Breakdown, Data, Fmt, Mode, Panel, DURATION_BUCKETS};
use super::view::{filter_dim, Compare, Period, View};
use crate::error::StatsError;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The frame every page shares: head with the embedded stylesheet, script and icon.
pub fn layout(title: &str, body_class: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
<link rel="icon" href="{icon}" type="image/svg+xml">
<script src="{js}" defer></script>
</head>
<body class="{body_class}">
{body}
</body>
</html>
"#,
        title = esc(title),
        css = Asset::Css.href(),
        icon = Asset::Icon.href(),
        js = Asset::Js.href(),
    )
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
    let mut b = String::from(
        r#"<main class="login" id="main"><h1><span class="brand">tally</span> dashboard</h1>"#,
    );
    if let Some(m) = message {
        let _ = write!(b, r#"<p class="error" role="alert">{}</p>"#, esc(m));
    }
    if !has_users {
        b.push_str(
            r#"<p class="note">No dashboard users are configured yet. Run <code>tally hash-password NAME</code> and add the lines it prints to the config, then restart tally.</p>"#,
        );
    }
    let _ = write!(
        b,
        r#"<form method="post" action="/login" class="card">
<input type="hidden" name="csrf" value="{nonce}">
<input type="hidden" name="next" value="{next}">
<label for="name">Name</label>
<input id="name" name="name" value="{name}" autocomplete="username" required{focus_name}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required{focus_password}>
<button type="submit">Log in</button>
</form></main>"#,
        nonce = esc(nonce),
        next = esc(next),
        name = esc(name),
        focus_name = if name.is_empty() { " autofocus" } else { "" },
        focus_password = if name.is_empty() { "" } else { " autofocus" },
    );
    layout("Log in · tally", "login-page", &b)
}

/// A page that says what went wrong and where to go.
pub fn error(title: &str, message: &str, back: Option<(&str, &str)>) -> String {
    let mut b = format!(
        r#"<main class="login" id="main"><h1>{}</h1><p>{}</p>"#,
        esc(title),
        esc(message)
    );
    if let Some((href, label)) = back {
        let _ = write!(b, r#"<p><a href="{}">{}</a></p>"#, esc(href), esc(label));
    }
    b.push_str("</main>");
    layout(&format!("{title} · tally"), "login-page", &b)
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

/// `2026-11-22` → `22 Nov 2026`; `with_year` false → `22 Nov`.
fn day_label(date: &str, with_year: bool) -> String {
    let Ok(d) = date.get(..10).unwrap_or(date).parse::<jiff::civil::Date>() else {
        return date.to_string();
    };
    let m = MONTHS[(d.month() - 1) as usize];
    if with_year {
        format!("{} {m} {}", d.day(), d.year())
    } else {
        format!("{} {m}", d.day())
    }
}

fn weekday(date: &str) -> &'static str {
    date.get(..10)
        .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        .map(|d| WEEKDAYS[(d.weekday().to_monday_one_offset() - 1) as usize])
        .unwrap_or("")
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
                .and_then(|m| m.parse::<usize>().ok())
                .filter(|m| (1..=12).contains(m))
                .map(|m| MONTHS[m - 1])
                .unwrap_or("");
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

fn panel_error(e: &StatsError) -> String {
    format!(
        r#"<p class="error" role="alert">Could not load this panel: {}</p>"#,
        esc(&e.to_string())
    )
}

fn fmt(v: Option<f64>, f: Fmt) -> String {
    match (v, f) {
        (None, _) => "–".into(),
        (Some(v), Fmt::Count) => count(v),
        (Some(v), Fmt::Duration) => duration(v),
        (Some(v), Fmt::Percent) => percent(v),
    }
}

fn raw(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

/// A breakdown table: one row per dimension value with its metrics; the value links to the
/// view filtered by it (or, when already filtered by it, back to the unfiltered view).
/// Rows are links only where the engine can filter (not in aggregate-only mode).
fn breakdown(out: &mut String, b: &Breakdown, panel: &Panel, view: &View, links: bool) {
    let panel_id = b.id;
    let filter = b.filter.and_then(filter_dim).filter(|_| links);
    let hide = b.hide;
    let _ = write!(out, r#"<div class="breakdown" id="{panel_id}">"#);
    if !b.title.is_empty() {
        let _ = write!(out, "<h3>{}</h3>", esc(b.title));
    }
    let answer = match panel {
        Ok(a) => a,
        Err(e) => {
            out.push_str(&panel_error(e));
            out.push_str("</div>");
            return;
        }
    };
    let rows: Vec<_> = answer
        .rows
        .iter()
        .filter(|r| hide.is_none_or(|h| r.dims.first().map(String::as_str) != Some(h)))
        .take(super::panels::TABLE_ROWS)
        .collect();
    if rows.is_empty() {
        out.push_str(r#"<p class="empty">No data for this period.</p></div>"#);
        return;
    }
    let max = rows.iter().map(|r| r.metric(0)).fold(0.0, f64::max);
    let _ = write!(
        out,
        r#"<div class="scroll"><table class="data" data-panel="{panel_id}"><thead><tr><th scope="col">{}</th>"#,
        esc(b.header)
    );
    for c in &b.cols {
        let _ = write!(out, r#"<th scope="col" class="num">{}</th>"#, esc(c.label));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        let value = r.dims.first().cloned().unwrap_or_default();
        let active = filter.is_some_and(|f| view.filter_value(f) == Some(value.as_str()));
        let _ = write!(
            out,
            r#"<tr data-dimension="{}"{}><td class="label">"#,
            esc(&value),
            if active { r#" class="active""# } else { "" }
        );
        match filter {
            Some(f) if active => {
                let _ = write!(
                    out,
                    r#"<a href="{}" aria-current="true" title="Remove this filter">{}</a>"#,
                    esc(&view.without_filter(f).href()),
                    esc(&value)
                );
            }
            Some(f) => {
                let _ = write!(
                    out,
                    r#"<a href="{}" title="Show only {}: {}">{}</a>"#,
                    esc(&view.with_filter(f, &value).href()),
                    esc(&f.label.to_lowercase()),
                    esc(&value),
                    esc(&value)
                );
            }
            None => out.push_str(&esc(&value)),
        }
        out.push_str(&charts::meter(if max > 0.0 { r.metric(0) / max } else { 0.0 }).to_string());
        out.push_str("</td>");
        for (i, c) in b.cols.iter().enumerate() {
            let v = r.metrics.get(i).copied().flatten();
            let _ = write!(
                out,
                r#"<td class="num" data-metric="{}" data-value="{}">{}</td>"#,
                c.metric.name(),
                raw(v),
                fmt(v, c.fmt)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    if let Some(total) = answer.total_rows {
        let shown = answer.rows.len().min(super::panels::TABLE_ROWS) as u64;
        if total > shown {
            let _ = write!(
                out,
                r#"<p class="more">Top {shown} of {} (the API gives all: <code>pagination</code>).</p>"#,
                count(total as f64)
            );
        }
    }
    out.push_str("</div>");
}

fn header(out: &mut String, view: &View, ctx: &Context<'_>) {
    out.push_str(r##"<a class="skip" href="#main">Skip to the numbers</a><header class="top"><span class="brand">tally</span>"##);
    if ctx.shared || ctx.sites.len() <= 1 {
        let _ = write!(out, r#"<span class="site-name">{}</span>"#, esc(&view.site));
    } else {
        let _ = write!(
            out,
            r#"<details class="menu site-picker"><summary><span class="sr">Site: </span>{}</summary><ul role="list">"#,
            esc(&view.site)
        );
        for (site, base) in &ctx.sites {
            let v = view.for_site(base.clone(), site);
            let _ = write!(
                out,
                r#"<li><a href="{}"{}>{}</a></li>"#,
                esc(&v.href()),
                if *site == view.site {
                    r#" aria-current="page""#
                } else {
                    ""
                },
                esc(site)
            );
        }
        out.push_str("</ul></details>");
    }
    if ctx.shared {
        out.push_str(r#"<span class="account">Shared, read-only view</span>"#);
    } else if let Some(v) = ctx.viewer {
        let _ = write!(
            out,
            r#"<span class="account"><span class="user">{}</span>"#,
            esc(&v.user)
        );
        if let Some(csrf) = &v.csrf {
            let _ = write!(
                out,
                r#"<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="{}"><button type="submit">Log out</button></form>"#,
                esc(csrf)
            );
        }
        out.push_str("</span>");
    }
    out.push_str("</header>");
}

fn controls(out: &mut String, view: &View) {
    out.push_str(r#"<nav class="periods" aria-label="Period"><ul role="list">"#);
    for (p, _, label) in Period::CHOICES {
        let current = view.period == p;
        let _ = write!(
            out,
            r#"<li><a href="{}"{}>{label}</a></li>"#,
            esc(&view.with_period(p.clone()).href()),
            if current {
                r#" aria-current="page""#
            } else {
                ""
            }
        );
    }
    let custom = matches!(view.period, Period::Custom(..));
    let (from, to) = match &view.period {
        Period::Custom(a, b) => (a.to_string(), b.to_string()),
        _ => (String::new(), String::new()),
    };
    let _ = write!(
        out,
        r#"<li><details class="menu custom"{open}><summary{cur}>Custom</summary><form method="get" action="{base}" class="card">
<input type="hidden" name="period" value="custom">
<label for="from">From</label><input type="date" id="from" name="from" value="{from}" required>
<label for="to">To</label><input type="date" id="to" name="to" value="{to}" required>"#,
        open = if custom { " open" } else { "" },
        cur = if custom {
            r#" aria-current="page""#
        } else {
            ""
        },
        base = esc(&view.base),
    );
    if view.compare != Compare::PreviousPeriod {
        let _ = write!(
            out,
            r#"<input type="hidden" name="compare" value="{}">"#,
            view.compare.param()
        );
    }
    for (d, v) in &view.filters {
        let _ = write!(
            out,
            r#"<input type="hidden" name="{}" value="{}">"#,
            d.param,
            esc(v)
        );
    }
    out.push_str(r#"<button type="submit">Show</button></form></details></li></ul></nav>"#);

    out.push_str(
        r#"<nav class="compare" aria-label="Comparison"><span>Compare with</span><ul role="list">"#,
    );
    for (c, _, label) in Compare::CHOICES {
        let _ = write!(
            out,
            r#"<li><a href="{}"{}>{label}</a></li>"#,
            esc(&view.with_compare(c).href()),
            if view.compare == c {
                r#" aria-current="page""#
            } else {
                ""
            }
        );
    }
    out.push_str("</ul></nav>");
}

fn filters_bar(out: &mut String, view: &View) {
    if view.filters.is_empty() {
        return;
    }
    out.push_str(
        r#"<section class="filters" aria-label="Filters"><span>Filtered by</span><ul role="list">"#,
    );
    for (d, v) in &view.filters {
        let _ = write!(
            out,
            r#"<li data-filter="{}">{} is <strong>{}</strong> <a href="{}" class="remove" aria-label="Remove the {} filter">✕</a></li>"#,
            d.param,
            esc(d.label),
            esc(v),
            esc(&view.without_filter(*d).href()),
            esc(&d.label.to_lowercase())
        );
    }
    let mut none = view.clone();
    none.filters.clear();
    let _ = write!(
        out,
        r#"</ul><a href="{}" class="clear">Clear all</a></section>"#,
        esc(&none.href())
    );
}

fn headline(out: &mut String, data: &Data, ctx: &Context<'_>) {
    out.push_str(r#"<section class="headline" aria-label="Headline numbers">"#);
    let cols = panels::headline(data.mode);
    match &data.headline {
        Ok(a) => {
            let row = a.rows.first();
            for (i, c) in cols.iter().enumerate() {
                // Rates change in points, and less is better for the bounce rate.
                let (points, lower_better) = (
                    c.fmt == Fmt::Percent,
                    c.metric == crate::stats::Metric::BounceRate,
                );
                let v = row.and_then(|r| r.metrics.get(i).copied().flatten());
                let _ = write!(
                    out,
                    r#"<div class="stat" data-metric="{}"><h2>{}</h2><p class="value" data-value="{}">{}</p>"#,
                    c.metric.name(),
                    esc(c.label),
                    raw(v),
                    fmt(v, c.fmt)
                );
                let change = row
                    .and_then(|r| r.change.as_ref())
                    .and_then(|c| c.get(i).copied().flatten());
                let prev = row
                    .and_then(|r| r.previous.as_ref())
                    .and_then(|c| c.get(i).copied().flatten());
                if change.is_none() && row.is_some_and(|r| r.change.is_some()) {
                    out.push_str(r#"<p class="change same">no earlier data</p>"#);
                }
                if let Some(c) = change {
                    let good = if lower_better { c < 0.0 } else { c > 0.0 };
                    let class = if c == 0.0 {
                        "same"
                    } else if good {
                        "good"
                    } else {
                        "bad"
                    };
                    let _ = write!(
                        out,
                        r#"<p class="change {class}" data-change="{c}">{}<span class="was"> (was {})</span></p>"#,
                        super::html::change(c, points),
                        fmt(prev, cols[i].fmt)
                    );
                }
                out.push_str("</div>");
            }
        }
        Err(e) => out.push_str(&panel_error(e)),
    }
    match &data.realtime {
        // Who is here now: the script refreshes this every 30 s; without it, reload the page.
        Some(realtime) => {
            let now = match realtime {
                Ok(a) => a.rows.first().map(|r| r.metric(0)).unwrap_or(0.0),
                Err(_) => 0.0,
            };
            let _ = write!(
                out,
                r#"<div class="stat realtime" data-metric="realtime"><h2><span class="dot" aria-hidden="true"></span>Now</h2><p class="value" data-value="{now}" data-realtime-url="{}">{}</p><p class="change same">visitors in the last 5 minutes</p></div>"#,
                esc(&ctx.realtime_url),
                count(now)
            );
        }
        None => out.push_str(
            r#"<div class="stat wide-note"><h2>Aggregate-only mode</h2><p class="note">This tally keeps daily counts only (<code>privacy.aggregate_only</code>): no visitors, visits, durations, bounce rates, filters or realtime. See <code>GET /privacy</code>.</p></div>"#,
        ),
    }
    out.push_str("</section>");
}

fn over_time(out: &mut String, data: &Data) {
    out.push_str(r#"<section class="panel wide" id="over-time" aria-labelledby="over-time-h"><h2 id="over-time-h">Visitors and pageviews over time</h2>"#);
    let a = match &data.series {
        Ok(a) => a,
        Err(e) => {
            out.push_str(&panel_error(e));
            out.push_str("</section>");
            return;
        }
    };
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
    let names: &[(&str, &str, &str)] = match data.mode {
        Mode::Visits => &[
            ("visitors", "Visitors", "s1"),
            ("pageviews", "Pageviews", "s2"),
        ],
        Mode::Aggregate => &[("pageviews", "Pageviews", "s1")],
    };
    let values: Vec<Vec<f64>> = (0..names.len())
        .map(|i| labels.iter().map(|l| value(l, i)).collect())
        .collect();
    let (axis, tips): (Vec<String>, Vec<String>) = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (short, long) = bucket_label(l, dim);
            let parts: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(k, (_, label, _))| {
                    format!("{} {}", count(values[k][i]), label.to_lowercase())
                })
                .collect();
            (short, format!("{long}: {}", parts.join(", ")))
        })
        .unzip();
    out.push_str(r#"<p class="legend">"#);
    for (_, label, class) in names {
        let _ = write!(
            out,
            r#"<span class="key-line {class}" aria-hidden="true"></span>{label} "#
        );
    }
    out.push_str("</p>");
    let series: Vec<Series<'_>> = names
        .iter()
        .zip(&values)
        .map(|((_, label, class), v)| Series {
            name: label,
            values: v.clone(),
            class,
        })
        .collect();
    out.push_str(&charts::line_chart(&axis, &tips, &series, 240.0).to_string());
    out.push_str(r#"<details class="as-table"><summary>As a table</summary><div class="scroll"><table class="data" data-panel="over-time"><thead><tr><th scope="col">Time</th>"#);
    for (_, label, _) in names {
        let _ = write!(out, r#"<th scope="col" class="num">{label}</th>"#);
    }
    out.push_str("</tr></thead><tbody>");
    for (i, l) in labels.iter().enumerate() {
        let _ = write!(
            out,
            r#"<tr data-dimension="{}"><td>{}</td>"#,
            esc(l),
            esc(&bucket_label(l, dim).1)
        );
        for (k, (metric, _, _)) in names.iter().enumerate() {
            let _ = write!(
                out,
                r#"<td class="num" data-metric="{metric}" data-value="{}">{}</td>"#,
                values[k][i],
                count(values[k][i])
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></details></section>");
}

fn peak_hours(out: &mut String, data: &Data, ctx: &Context<'_>) {
    let people = panels::people(data.mode);
    let _ = write!(
        out,
        r#"<section class="panel" id="peak-hours" aria-labelledby="peak-h"><h2 id="peak-h">Peak hours</h2><p class="note">{} by local time ({}).</p>"#,
        people.label,
        esc(ctx.time_zone)
    );
    match &data.heatmap {
        Ok(a) => {
            let mut cells = [[0.0f64; 24]; 7];
            for r in &a.rows {
                let w = r.dims.first().and_then(|d| d.parse::<usize>().ok());
                let h = r.dims.get(1).and_then(|d| d.parse::<usize>().ok());
                if let (Some(w @ 1..=7), Some(h @ 0..=23)) = (w, h) {
                    cells[w - 1][h] = r.metric(0);
                }
            }
            out.push_str(r#"<h3>Weekday × hour</h3>"#);
            out.push_str(&charts::heatmap(&cells, people.label.to_lowercase()).to_string());
        }
        Err(e) => out.push_str(&panel_error(e)),
    }
    out.push_str("<h3>Hour of the day</h3>");
    // The metrics asked for hours (see `panels::Queries`); bars show the first.
    let names: &[(&str, &str)] = match data.mode {
        Mode::Visits => &[("visitors", "Visitors"), ("pageviews", "Pageviews")],
        Mode::Aggregate => &[("pageviews", "Pageviews")],
    };
    match &data.hours {
        Ok(a) => {
            let mut hours = [[0.0f64; 2]; 24];
            for r in &a.rows {
                if let Some(h @ 0..=23) = r.dims.first().and_then(|d| d.parse::<usize>().ok()) {
                    hours[h] = [r.metric(0), r.metric(1)];
                }
            }
            let bars: Vec<Bar> = hours
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
            out.push_str(&charts::bar_chart(bars, 150.0, "hours", false).to_string());
            out.push_str(r#"<details class="as-table"><summary>As a table</summary><div class="scroll"><table class="data" data-panel="hours"><thead><tr><th scope="col">Hour</th>"#);
            for (_, label) in names {
                let _ = write!(out, r#"<th scope="col" class="num">{label}</th>"#);
            }
            out.push_str("</tr></thead><tbody>");
            for (h, v) in hours.iter().enumerate() {
                let _ = write!(out, r#"<tr data-dimension="{h}"><td>{h:02}:00</td>"#);
                for (k, (metric, _)) in names.iter().enumerate() {
                    let _ = write!(
                        out,
                        r#"<td class="num" data-metric="{metric}" data-value="{}">{}</td>"#,
                        v[k],
                        count(v[k])
                    );
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table></div></details>");
        }
        Err(e) => out.push_str(&panel_error(e)),
    }
    out.push_str("</section>");
}

fn durations(out: &mut String, data: &Data) {
    let Some(durations) = &data.durations else {
        return;
    };
    out.push_str(r#"<section class="panel" id="durations" aria-labelledby="durations-h"><h2 id="durations-h">Visit duration</h2>"#);
    if let Ok(a) = &data.headline {
        if let Some(r) = a.rows.first() {
            let m = |i: usize| r.metrics.get(i).copied().flatten();
            let _ = write!(
                out,
                r#"<p class="quantiles">Median <strong data-value="{}">{}</strong> · 75th percentile <strong data-value="{}">{}</strong> · 90th percentile <strong data-value="{}">{}</strong> · {} pageviews per visit</p>"#,
                raw(m(3)),
                fmt(m(3), Fmt::Duration),
                raw(m(5)),
                fmt(m(5), Fmt::Duration),
                raw(m(6)),
                fmt(m(6), Fmt::Duration),
                m(7).map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "–".into())
            );
        }
    }
    match durations {
        Ok(a) => {
            let visits = |b: &str| {
                a.rows
                    .iter()
                    .find(|r| r.dims.first().map(String::as_str) == Some(b))
                    .map(|r| r.metric(0))
                    .unwrap_or(0.0)
            };
            let total: f64 = DURATION_BUCKETS.iter().map(|b| visits(b)).sum();
            let bars: Vec<Bar> = DURATION_BUCKETS
                .iter()
                .map(|b| {
                    let v = visits(b);
                    Bar {
                        label: (*b).to_string(),
                        value: v,
                        tip: format!(
                            "{b}: {} visits ({})",
                            count(v),
                            percent(if total > 0.0 {
                                (v / total * 1000.0).round() / 10.0
                            } else {
                                0.0
                            })
                        ),
                        show_label: true,
                    }
                })
                .collect();
            out.push_str(&charts::bar_chart(bars, 170.0, "durations", true).to_string());
            out.push_str(r#"<details class="as-table"><summary>As a table</summary><table class="data" data-panel="durations"><thead><tr><th scope="col">Duration</th><th scope="col" class="num">Visits</th></tr></thead><tbody>"#);
            for b in DURATION_BUCKETS {
                let v = visits(b);
                let _ = write!(
                    out,
                    r#"<tr data-dimension="{b}"><td>{b}</td><td class="num" data-metric="visits" data-value="{v}">{}</td></tr>"#,
                    count(v)
                );
            }
            out.push_str("</tbody></table></details>");
        }
        Err(e) => out.push_str(&panel_error(e)),
    }
    out.push_str("</section>");
}

/// The dashboard page of one view.
pub fn dashboard(view: &View, data: &Data, ctx: &Context<'_>) -> String {
    let mut b = String::with_capacity(64 * 1024);
    header(&mut b, view, ctx);
    b.push_str(r#"<div class="bar">"#);
    controls(&mut b, view);
    b.push_str("</div>");
    let period = data
        .headline
        .as_ref()
        .ok()
        .and_then(|a: &Answer| a.period.as_ref())
        .map(period_label)
        .unwrap_or_default();
    let _ = write!(
        b,
        r#"<main id="main"><h1 class="period"><span class="sr">{} · </span><span data-period>{}</span> <small>{}</small></h1>"#,
        esc(&view.site),
        esc(&period),
        esc(ctx.time_zone)
    );
    filters_bar(&mut b, view);
    headline(&mut b, data, ctx);
    over_time(&mut b, data);
    b.push_str(r#"<div class="grid">"#);

    // Breakdown tables, grouped into their panels.
    let links = data.mode == Mode::Visits;
    let tables = &data.breakdowns;
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
    for (section, title, note) in sections {
        let _ = write!(
            b,
            r#"<section class="panel" id="{section}-panel" aria-labelledby="{section}-h"><h2 id="{section}-h">{title}</h2>"#
        );
        for (spec, panel) in tables.iter().zip(&data.tables) {
            if spec.section == section {
                breakdown(&mut b, spec, panel, view, links);
            }
        }
        if !note.is_empty() {
            let _ = write!(b, r#"<p class="note">{note}</p>"#);
        }
        b.push_str("</section>");
    }
    peak_hours(&mut b, data, ctx);
    durations(&mut b, data);
    b.push_str("</div>");
    let _ = write!(
        b,
        r#"<footer><p>Every number here comes from tally's stats API (<code>POST /api/v2/query</code>), the same answers scripts get. Visitors are counted per day: someone who came on three days counts three times (no tracking across days, by design). Times in {}.</p></footer></main>"#,
        esc(ctx.time_zone)
    );
    let title = format!(
        "{} · {} · tally",
        view.site,
        if period.is_empty() {
            view.period.param().to_string()
        } else {
            period
        }
    );
    layout(&title, "dashboard", &b)
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
    }
}
