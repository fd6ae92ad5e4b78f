//! The dashboard's charts: inline SVG (and the heatmap as an HTML table), laid out here and
//! written by the templates in `templates/charts/`. No chart library, no script, nothing to
//! load. Each chart has a text alternative in the page (a table or the numbers themselves), and
//! tooltips (`<title>`) per bucket. The templates escape every label and tooltip: SVG is XML,
//! and these come from the data (page paths, campaign names).
//!
//! Charts scale to their container's width without stretching text: the outer SVG has no
//! `viewBox` and places labels and bars in percentages of its width; only the line plot sits in
//! a nested SVG stretched to the width (`preserveAspectRatio="none"`), whose strokes keep their
//! width (`vector-effect="non-scaling-stroke"`). Colours are classes styled by
//! `assets/dashboard.css` (CSP allows no inline styles); the palette is tested below for
//! contrast (WCAG 2.1: 4.5:1 for text, 3:1 for graphics) and is colour-blind safe (Okabe–Ito
//! blue and vermillion, which also differ in dash pattern; ColorBrewer's sequential blues).

use std::fmt::Write;

use askama::Template;
use jiff::civil::Date;

use super::html::Figure;
use crate::i18n::Tr;

/// A series of a line chart: its values (one per label) and CSS class.
pub struct Series<'a> {
    pub values: Vec<f64>,
    pub class: &'a str,
}

/// Axis maximum and tick step: a "nice" step (1, 2, 2.5 or 5 × 10ⁿ) giving 3–5 gridlines.
pub fn nice_scale(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (4.0, 1.0);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    // Counts have whole ticks.
    let step = step.max(1.0);
    ((max / step).ceil() * step, step)
}

const PLOT_TOP: f64 = 14.0;

/// A line chart, laid out (`templates/charts/line.svg`).
#[derive(Template)]
#[template(path = "charts/line.svg")]
pub struct LineChart<'a> {
    height: f64,
    /// The chart's accessible name.
    name: String,
    grid: Vec<GridLine>,
    plot_top: f64,
    plot_h: f64,
    /// One path per series.
    lines: Vec<Line<'a>>,
    ticks: Vec<XTick>,
    tick_y: f64,
    /// Hover targets: one column per bucket, titled with its numbers.
    hits: Vec<Hit>,
    hit_w: f64,
}

/// A gridline with its value written on top of the line, at the left edge.
struct GridLine {
    y: f64,
    text_y: f64,
    label: String,
}

struct Line<'a> {
    class: &'a str,
    /// The SVG path data, in the plot's 1000-wide coordinates.
    d: String,
}

/// An x-axis label, at `x` percent of the width.
struct XTick {
    x: f64,
    anchor: &'static str,
    /// Every other label is marked, so that narrow screens can hide it (CSS).
    alt: bool,
    label: String,
}

struct Hit {
    x: f64,
    tip: String,
}

/// Lines over time. `labels` are the x positions (already formatted for people); `tips` the
/// tooltip title of each position; `name` the chart's accessible name.
pub fn line_chart<'a>(
    labels: &[String],
    tips: &[String],
    series: &[Series<'a>],
    height: f64,
    name: String,
    tr: &Tr,
) -> LineChart<'a> {
    let n = labels.len();
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let (top, step) = nice_scale(max);
    let plot_h = height - PLOT_TOP - 24.0;
    let mut grid = Vec::new();
    let mut v = 0.0;
    while v <= top + 1e-9 {
        let y = PLOT_TOP + plot_h - v / top * plot_h;
        grid.push(GridLine {
            y,
            text_y: y - 3.0,
            label: tr.short_count(v),
        });
        v += step;
    }
    let lines = series
        .iter()
        .map(|ser| {
            let mut d = String::new();
            let points: Vec<(f64, f64)> = ser
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let x = if n > 1 {
                        i as f64 / (n - 1) as f64 * 1000.0
                    } else {
                        500.0
                    };
                    (x, plot_h - v / top * plot_h)
                })
                .collect();
            if let [(_, y)] = points.as_slice() {
                // One bucket: a level line across the plot.
                let _ = write!(d, "M0 {y:.1}H1000");
            } else {
                for (i, (x, y)) in points.iter().enumerate() {
                    let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
                }
            }
            Line {
                class: ser.class,
                d,
            }
        })
        .collect();
    // x labels: at most 7, evenly spread, the first and last aligned to the edges.
    let every = n.div_ceil(7).max(1);
    let mut ticks = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        if i % every != 0 && i != n - 1 {
            continue;
        }
        if i == n - 1 && n > 1 && i % every != 0 && (i % every) < every / 2 + 1 {
            // Too close to the previous label.
            continue;
        }
        let x = if n > 1 {
            i as f64 / (n - 1) as f64 * 100.0
        } else {
            50.0
        };
        let anchor = if n == 1 {
            "middle"
        } else if i == 0 {
            "start"
        } else if i == n - 1 {
            "end"
        } else {
            "middle"
        };
        let alt = ticks.len() % 2 == 1 && i != n - 1;
        ticks.push(XTick {
            x,
            anchor,
            alt,
            label: label.clone(),
        });
    }
    let hit_w = if n > 0 { 100.0 / n as f64 } else { 0.0 };
    let hits = if n > 0 {
        tips.iter()
            .enumerate()
            .map(|(i, tip)| Hit {
                x: if n > 1 {
                    (i as f64 / (n - 1) as f64 * 100.0 - hit_w / 2.0).clamp(0.0, 100.0 - hit_w)
                } else {
                    0.0
                },
                tip: tip.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    LineChart {
        height,
        name,
        grid,
        plot_top: PLOT_TOP,
        plot_h,
        lines,
        ticks,
        tick_y: height - 6.0,
        hits,
        hit_w,
    }
}

/// A bar of a [`bar_chart`].
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub tip: String,
    /// Write the label under this bar (all bars keep their tooltip).
    pub show_label: bool,
}

/// A bar chart, laid out (`templates/charts/bars.svg`).
#[derive(Template)]
#[template(path = "charts/bars.svg")]
pub struct BarChart<'a> {
    class: &'a str,
    /// The chart's accessible name.
    name: String,
    height: f64,
    /// The baseline: bottom of the plot, under the values written on top.
    base: f64,
    /// Width of each bar's slot and of the bar in it, in percent.
    slot: f64,
    bar_w: f64,
    label_y: f64,
    bars: Vec<PlacedBar>,
}

struct PlacedBar {
    tip: String,
    slot_x: f64,
    x: f64,
    y: f64,
    h: f64,
    /// The bar's centre, where its value and label are written.
    cx: f64,
    /// The value written above the bar: its y and text.
    value: Option<(f64, String)>,
    label: Option<String>,
}

/// Vertical bars (hours of the day, visit durations). `values_on_top` writes each value above
/// its bar (for a few wide bars); `name` is the chart's accessible name.
pub fn bar_chart<'a>(
    bars: Vec<Bar>,
    height: f64,
    class: &'a str,
    values_on_top: bool,
    name: String,
    tr: &Tr,
) -> BarChart<'a> {
    let n = bars.len().max(1);
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let top = if max > 0.0 { max } else { 1.0 };
    let label_h = 20.0;
    let value_h = if values_on_top { 16.0 } else { 4.0 };
    let plot_h = height - label_h - value_h;
    let slot = 100.0 / n as f64;
    let gap = (slot * 0.18).min(2.0);
    let placed = bars
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            let h = (b.value / top * plot_h).max(if b.value > 0.0 { 1.0 } else { 0.0 });
            let y = value_h + plot_h - h;
            PlacedBar {
                tip: b.tip,
                slot_x: i as f64 * slot,
                x: i as f64 * slot + gap / 2.0,
                y,
                h,
                cx: i as f64 * slot + slot / 2.0,
                value: values_on_top.then(|| ((y - 4.0).max(12.0), tr.short_count(b.value))),
                label: b.show_label.then_some(b.label),
            }
        })
        .collect();
    BarChart {
        class,
        name,
        height,
        base: value_h + plot_h,
        slot,
        bar_w: slot - gap,
        label_y: height - 5.0,
        bars: placed,
    }
}

/// A thin horizontal bar for a table row (`templates/charts/meter.svg`).
#[derive(Template)]
#[template(path = "charts/meter.svg")]
pub struct Meter {
    /// The filled width, in percent.
    pct: f64,
}

/// A meter filled to `fraction` of the width (0 … 1); anything above 0 stays visible.
pub fn meter(fraction: f64) -> Meter {
    Meter {
        pct: (fraction.clamp(0.0, 1.0) * 100.0).max(if fraction > 0.0 { 0.5 } else { 0.0 }),
    }
}

/// Colour level (0 = none, 1 … 5) of a heatmap cell.
pub fn heat_level(v: f64, max: f64) -> u8 {
    if v <= 0.0 || max <= 0.0 {
        0
    } else {
        (1.0 + (v / max * 5.0 - 1e-9).floor()).clamp(1.0, 5.0) as u8
    }
}

/// The weekday × hour heatmap, laid out (`templates/charts/heatmap.html`).
#[derive(Template)]
#[template(path = "charts/heatmap.html")]
pub struct Heatmap {
    /// The table's caption: what is counted, by weekday and hour.
    caption: String,
    days: Vec<HeatRow>,
    /// The legend's two ends (`fewer`, `more`).
    fewer: String,
    more: String,
}

struct HeatRow {
    /// ISO weekday number: 1 = Monday.
    weekday: usize,
    /// `Mon`, and `Monday` for its tooltip.
    short: String,
    long: String,
    cells: Vec<HeatCell>,
}

struct HeatCell {
    hour: usize,
    level: u8,
    figure: Figure,
    /// The tooltip: weekday, hour and the count.
    tip: String,
}

/// A Monday, from which the rows' weekday names are written.
const A_MONDAY: Date = jiff::civil::date(2024, 1, 1);

/// Weekday × hour heatmap as a table: a row per weekday (Monday first), a cell per local hour;
/// each cell's number is in its text (visually hidden) and its tooltip. `label` and `counted`
/// are message keys: the metric's name (`metric.visitors`) and its count (`count.visitors`).
pub fn heatmap(cells: &[[f64; 24]; 7], label: &str, counted: &str, tr: &Tr) -> Heatmap {
    let max = cells.iter().flatten().copied().fold(0.0, f64::max);
    let days = cells
        .iter()
        .enumerate()
        .map(|(d, row)| {
            let day = A_MONDAY
                .checked_add(jiff::Span::new().days(d as i64))
                .unwrap_or(A_MONDAY);
            let long = tr.weekday(day);
            HeatRow {
                weekday: d + 1,
                short: tr.weekday_short(day),
                cells: row
                    .iter()
                    .enumerate()
                    .map(|(hour, v)| HeatCell {
                        hour,
                        level: heat_level(*v, max),
                        figure: Figure::count(*v, tr),
                        tip: tr.f(
                            "heatmap.cell",
                            &[
                                ("day", &long),
                                ("from", &format!("{hour:02}:00")),
                                ("to", &format!("{hour:02}:59")),
                                ("count", &tr.plural(counted, *v, &[])),
                            ],
                        ),
                    })
                    .collect(),
                long,
            }
        })
        .collect();
    Heatmap {
        caption: tr.f("heatmap.caption", &[("metric", &tr.t(label))]),
        days,
        fewer: tr.t("heatmap.fewer"),
        more: tr.t("heatmap.more"),
    }
}

// Each chart is a template that escapes what it writes, so a page template writes it as is.
impl askama::filters::HtmlSafe for LineChart<'_> {}
impl askama::filters::HtmlSafe for BarChart<'_> {}
impl askama::filters::HtmlSafe for Meter {}
impl askama::filters::HtmlSafe for Heatmap {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{tr, Lang};
    use std::collections::HashMap;

    /// WCAG 2.1 relative luminance of `#rrggbb`.
    pub fn luminance(hex: &str) -> Option<f64> {
        let hex = hex.strip_prefix('#')?;
        if hex.len() != 6 {
            return None;
        }
        let ch = |i: usize| -> Option<f64> {
            let c = f64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?) / 255.0;
            Some(if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            })
        };
        Some(0.2126 * ch(0)? + 0.7152 * ch(2)? + 0.0722 * ch(4)?)
    }

    /// WCAG contrast ratio of two colours (1 … 21).
    pub fn contrast(a: &str, b: &str) -> Option<f64> {
        let (la, lb) = (luminance(a)?, luminance(b)?);
        let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
        Some((hi + 0.05) / (lo + 0.05))
    }

    /// The custom properties of the stylesheet's `:root` rule.
    fn css_colours() -> HashMap<String, String> {
        let css = include_str!("assets/dashboard.css");
        let root = css
            .split(":root")
            .nth(1)
            .and_then(|r| r.split('}').next())
            .and_then(|r| r.split_once('{'))
            .map(|(_, body)| body)
            .expect(":root rule");
        root.split(';')
            .filter_map(|decl| {
                let (k, v) = decl.split_once(':')?;
                let k = k.trim().strip_prefix("--")?;
                let v = v.trim();
                v.starts_with('#').then(|| (k.to_string(), v.to_string()))
            })
            .collect()
    }

    #[test]
    fn palette_meets_wcag_aa_contrast() {
        let c = css_colours();
        let get = |k: &str| c.get(k).unwrap_or_else(|| panic!("--{k} in :root")).clone();
        let bg = get("bg");
        let panel = get("panel");
        // Text: 4.5:1 on the page and on panels.
        for k in ["fg", "muted", "link", "good", "bad", "accent"] {
            for back in [&bg, &panel] {
                let r = contrast(&get(k), back).unwrap();
                assert!(r >= 4.5, "--{k} {} on {back}: {r:.2}:1 < 4.5:1", get(k));
            }
        }
        // Graphics (chart lines, bars, the strongest heat level): 3:1 against the panel.
        for k in ["s1", "s2", "bar", "h5", "meter"] {
            let r = contrast(&get(k), &panel).unwrap();
            assert!(r >= 3.0, "--{k} {}: {r:.2}:1 < 3:1", get(k));
        }
        // The two series are told apart by more than hue: their lightness differs too.
        let l1 = luminance(&get("s1")).unwrap();
        let l2 = luminance(&get("s2")).unwrap();
        assert!(
            (l1 - l2).abs() > 0.02,
            "series lightness {l1:.3} vs {l2:.3}"
        );
        // Heat levels get darker step by step.
        let levels: Vec<f64> = (0..=5)
            .map(|l| luminance(&get(&format!("h{l}"))).unwrap())
            .collect();
        assert!(
            levels.windows(2).all(|w| w[0] > w[1]),
            "heat levels must darken: {levels:?}"
        );
        // Known values, to prove the formula.
        assert!((contrast("#000000", "#ffffff").unwrap() - 21.0).abs() < 1e-9);
        assert!((contrast("#777777", "#ffffff").unwrap() - 4.48).abs() < 0.01);
    }

    #[test]
    fn scales_are_nice() {
        assert_eq!(nice_scale(0.0), (4.0, 1.0));
        assert_eq!(nice_scale(3.0), (3.0, 1.0));
        assert_eq!(nice_scale(9.0), (10.0, 2.5));
        assert_eq!(nice_scale(97.0), (100.0, 25.0));
        assert_eq!(nice_scale(1234.0), (1500.0, 500.0));
    }

    #[test]
    fn heat_levels() {
        assert_eq!(heat_level(0.0, 10.0), 0);
        assert_eq!(heat_level(0.1, 10.0), 1);
        assert_eq!(heat_level(10.0, 10.0), 5);
        assert_eq!(heat_level(6.0, 10.0), 3);
    }

    #[test]
    fn charts_draw_every_bucket() {
        let labels: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let svg = line_chart(
            &labels,
            &labels,
            &[Series {
                values: vec![1.0, 5.0, 2.0],
                class: "s1",
            }],
            200.0,
            "Visitors".into(),
            tr(Lang::En),
        )
        .to_string();
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains("M0.0 ") && svg.contains("L500.0 "));
        // One bucket: a level line across the plot.
        let one = line_chart(
            &labels[..1],
            &labels[..1],
            &[Series {
                values: vec![3.0],
                class: "s1",
            }],
            200.0,
            "Visitors".into(),
            tr(Lang::En),
        )
        .to_string();
        assert!(one.contains(r#"d="M0 "#) && one.contains("H1000"), "{one}");
        let bars = bar_chart(
            vec![Bar {
                label: "0".into(),
                value: 2.0,
                tip: "00:00 2 visitors".into(),
                show_label: true,
            }],
            100.0,
            "hours",
            true,
            "Hours".into(),
            tr(Lang::En),
        )
        .to_string();
        assert!(bars.contains(r#"class="bar""#) && bars.contains("00:00 2 visitors"));
        assert!(bars.contains(r#"<text class="value""#) && bars.contains(">2</text>"));
        assert!(meter(0.001)
            .to_string()
            .contains(r#"class="fill" width="0.5%""#));
    }

    /// Markup, quotes and an ampersand, as a page path or campaign name may hold them.
    const HOSTILE: &str = r#"<script>alert("x&'y")</script>"#;
    /// `HOSTILE` as the templates write it.
    const ESCAPED: &str = "&#60;script&#62;alert(&#34;x&#38;&#39;y&#34;)&#60;/script&#62;";

    /// SVG is XML: labels and tooltips from the data are escaped there too.
    #[test]
    fn charts_escape_labels_and_tooltips() {
        let labels = vec![HOSTILE.to_string(), "b".into()];
        let svg = line_chart(
            &labels,
            &labels,
            &[Series {
                values: vec![1.0, 2.0],
                class: "s1",
            }],
            200.0,
            HOSTILE.into(),
            tr(Lang::En),
        )
        .to_string();
        assert!(!svg.contains("<script") && !svg.contains("x&'y"), "{svg}");
        assert!(svg.contains(&format!(r#"aria-label="{ESCAPED}""#)), "{svg}");
        assert!(svg.contains(&format!(r#"text-anchor="start">{ESCAPED}</text>"#)));
        assert!(svg.contains(&format!("<title>{ESCAPED}</title>")));

        let bars = bar_chart(
            vec![Bar {
                label: HOSTILE.into(),
                value: 2.0,
                tip: HOSTILE.into(),
                show_label: true,
            }],
            100.0,
            "hours",
            false,
            HOSTILE.into(),
            tr(Lang::En),
        )
        .to_string();
        assert!(
            !bars.contains("<script") && !bars.contains("x&'y"),
            "{bars}"
        );
        assert!(bars.contains(&format!("<g><title>{ESCAPED}</title>")));
        assert!(bars.contains(&format!(r#"text-anchor="middle">{ESCAPED}</text>"#)));

        let heat = heatmap(&[[1.0; 24]; 7], HOSTILE, HOSTILE, tr(Lang::En)).to_string();
        assert!(!heat.contains("<script") && !heat.contains("x&'y"));
        assert!(heat.contains(&format!(
            "<caption class=\"sr\">{ESCAPED} by weekday and hour of the day</caption>"
        )));
        assert!(heat.contains(&format!(r#"title="Monday 00:00–00:59: {ESCAPED}""#)));
    }

    #[test]
    fn heatmap_rows_are_weekdays_from_monday() {
        let mut cells = [[0.0; 24]; 7];
        cells[6][23] = 4.0;
        let heat = heatmap(&cells, "metric.visitors", "count.visitors", tr(Lang::En)).to_string();
        let days: Vec<&str> = heat
            .split(r#"<abbr title=""#)
            .skip(1)
            .filter_map(|s| s.split_once("</abbr>"))
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            days,
            [
                r#"Monday">Mon"#,
                r#"Tuesday">Tue"#,
                r#"Wednesday">Wed"#,
                r#"Thursday">Thu"#,
                r#"Friday">Fri"#,
                r#"Saturday">Sat"#,
                r#"Sunday">Sun"#
            ]
        );
        assert!(heat.contains(r#"<td class="h5" data-weekday="7" data-hour="23" data-value="4""#));
        assert_eq!(heat.matches("<td class=").count(), 7 * 24);
    }
}
