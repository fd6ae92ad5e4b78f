//! The dashboard's charts, drawn here as inline SVG (and the heatmap as an HTML table): no chart
//! library, no script, nothing to load. Each chart has a text alternative in the page (a table
//! or the numbers themselves), and tooltips (`<title>`) per bucket.
//!
//! Charts scale to their container's width without stretching text: the outer SVG has no
//! `viewBox` and places labels and bars in percentages of its width; only the line plot sits in
//! a nested SVG stretched to the width (`preserveAspectRatio="none"`), whose strokes keep their
//! width (`vector-effect="non-scaling-stroke"`). Colours are classes styled by
//! `assets/dashboard.css` (CSP allows no inline styles); the palette is tested below for
//! contrast (WCAG 2.1: 4.5:1 for text, 3:1 for graphics) and is colour-blind safe (Okabe–Ito
//! blue and vermillion, which also differ in dash pattern; ColorBrewer's sequential blues).

use std::fmt::Write;

use super::html::{esc, short_count};

/// A series of a line chart: its legend name, values (one per label) and CSS class.
pub struct Series<'a> {
    pub name: &'a str,
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

/// Lines over time. `labels` are the x positions (already formatted for people); `tips` the
/// tooltip title of each position.
pub fn line_chart(
    labels: &[String],
    tips: &[String],
    series: &[Series<'_>],
    height: f64,
) -> String {
    let n = labels.len();
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let (top, step) = nice_scale(max);
    let plot_h = height - PLOT_TOP - 24.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart line" width="100%" height="{height}" role="img" aria-label="{}">"#,
        esc(&series
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(" and "))
    );
    // Gridlines with their value written on top of the line, at the left edge.
    let mut v = 0.0;
    while v <= top + 1e-9 {
        let y = PLOT_TOP + plot_h - v / top * plot_h;
        let _ = write!(
            s,
            r#"<line class="grid" x1="0" x2="100%" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="0" y="{:.1}">{}</text>"#,
            y - 3.0,
            short_count(v)
        );
        v += step;
    }
    let _ = write!(
        s,
        r#"<svg x="0" y="{PLOT_TOP}" width="100%" height="{plot_h:.1}" viewBox="0 0 1000 {plot_h:.1}" preserveAspectRatio="none">"#
    );
    for ser in series {
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
        if points.len() == 1 {
            // One bucket: a level line across the plot.
            let y = points[0].1;
            let _ = write!(d, "M0 {y:.1}H1000");
        } else {
            for (i, (x, y)) in points.iter().enumerate() {
                let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
            }
        }
        let _ = write!(
            s,
            r#"<path class="{}" d="{d}" vector-effect="non-scaling-stroke"/>"#,
            ser.class
        );
    }
    s.push_str("</svg>");
    // x labels: at most 7, evenly spread, the first and last aligned to the edges.
    let every = n.div_ceil(7).max(1);
    let mut shown = 0;
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
        // Every other label is marked, so that narrow screens can hide it (CSS).
        let alt = if shown % 2 == 1 && i != n - 1 {
            " alt"
        } else {
            ""
        };
        shown += 1;
        let _ = write!(
            s,
            r#"<text class="tick{alt}" x="{x:.2}%" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            height - 6.0,
            esc(label)
        );
    }
    // Hover targets: one column per bucket, titled with its numbers.
    if n > 0 {
        let w = 100.0 / n as f64;
        for (i, tip) in tips.iter().enumerate() {
            let x = if n > 1 {
                (i as f64 / (n - 1) as f64 * 100.0 - w / 2.0).clamp(0.0, 100.0 - w)
            } else {
                0.0
            };
            let _ = write!(
                s,
                r#"<rect class="hit" x="{x:.2}%" y="0" width="{w:.2}%" height="{height}"><title>{}</title></rect>"#,
                esc(tip)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A bar of a [`bar_chart`].
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub tip: String,
    /// Write the label under this bar (all bars keep their tooltip).
    pub show_label: bool,
}

/// Vertical bars (hours of the day, visit durations). `values_on_top` writes each value above
/// its bar (for a few wide bars).
pub fn bar_chart(bars: &[Bar], height: f64, class: &str, values_on_top: bool) -> String {
    let n = bars.len().max(1);
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let top = if max > 0.0 { max } else { 1.0 };
    let label_h = 20.0;
    let value_h = if values_on_top { 16.0 } else { 4.0 };
    let plot_h = height - label_h - value_h;
    let slot = 100.0 / n as f64;
    let gap = (slot * 0.18).min(2.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart bars {class}" width="100%" height="{height}" role="img" aria-label="bar chart">"#
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="0" x2="100%" y1="{0:.1}" y2="{0:.1}"/>"#,
        value_h + plot_h
    );
    for (i, b) in bars.iter().enumerate() {
        let h = (b.value / top * plot_h).max(if b.value > 0.0 { 1.0 } else { 0.0 });
        let x = i as f64 * slot + gap / 2.0;
        let y = value_h + plot_h - h;
        let cx = i as f64 * slot + slot / 2.0;
        let _ = write!(
            s,
            r#"<g><title>{}</title><rect class="hit" x="{:.2}%" y="0" width="{slot:.2}%" height="{}"/><rect class="bar" x="{x:.2}%" y="{y:.1}" width="{:.2}%" height="{h:.1}"/></g>"#,
            esc(&b.tip),
            i as f64 * slot,
            value_h + plot_h,
            slot - gap
        );
        if values_on_top {
            let _ = write!(
                s,
                r#"<text class="value" x="{cx:.2}%" y="{:.1}" text-anchor="middle">{}</text>"#,
                (y - 4.0).max(12.0),
                short_count(b.value)
            );
        }
        if b.show_label {
            let _ = write!(
                s,
                r#"<text class="tick" x="{cx:.2}%" y="{:.1}" text-anchor="middle">{}</text>"#,
                height - 5.0,
                esc(&b.label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A thin horizontal bar for a table row: `fraction` of the width (0 … 1).
pub fn meter(fraction: f64) -> String {
    let pct = (fraction.clamp(0.0, 1.0) * 100.0).max(if fraction > 0.0 { 0.5 } else { 0.0 });
    format!(
        r#"<svg class="meter" width="100%" height="6" aria-hidden="true" focusable="false"><rect class="track" width="100%" height="6" rx="2"/><rect class="fill" width="{pct:.1}%" height="6" rx="2"/></svg>"#
    )
}

/// Colour level (0 = none, 1 … 5) of a heatmap cell.
pub fn heat_level(v: f64, max: f64) -> u8 {
    if v <= 0.0 || max <= 0.0 {
        0
    } else {
        (1.0 + (v / max * 5.0 - 1e-9).floor()).clamp(1.0, 5.0) as u8
    }
}

/// Weekday × hour heatmap as a table: a row per weekday (Monday first), a cell per local hour;
/// each cell's number is in its text (visually hidden) and its tooltip.
pub fn heatmap(cells: &[[f64; 24]; 7], metric: &str) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const LONG: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let max = cells.iter().flatten().copied().fold(0.0, f64::max);
    let mut s = String::from(r#"<div class="scroll"><table class="heat"><caption class="sr">"#);
    let _ = write!(
        s,
        "{} by weekday and hour of the day</caption>",
        esc(metric)
    );
    s.push_str(r#"<thead><tr><td></td>"#);
    for h in 0..24 {
        if h % 3 == 0 {
            let _ = write!(s, r#"<th scope="col">{h:02}</th>"#);
        } else {
            let _ = write!(s, r#"<th scope="col"><span class="sr">{h:02}</span></th>"#);
        }
    }
    s.push_str("</tr></thead><tbody>");
    for (d, row) in cells.iter().enumerate() {
        let _ = write!(
            s,
            r#"<tr><th scope="row"><abbr title="{}">{}</abbr></th>"#,
            LONG[d], DAYS[d]
        );
        for (h, v) in row.iter().enumerate() {
            let _ = write!(
                s,
                r#"<td class="h{}" data-weekday="{}" data-hour="{h}" data-value="{v}" title="{} {h:02}:00–{h:02}:59: {} {}"><span class="sr">{}</span></td>"#,
                heat_level(*v, max),
                d + 1,
                LONG[d],
                super::html::count(*v),
                esc(metric),
                super::html::count(*v)
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s.push_str(r#"<p class="legend" aria-hidden="true">fewer"#);
    for l in 0..=5 {
        let _ = write!(s, r#"<span class="key h{l}"></span>"#);
    }
    s.push_str(" more</p>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn charts_escape_labels_and_draw_every_bucket() {
        let labels: Vec<String> = vec!["<a>".into(), "b".into(), "c".into()];
        let svg = line_chart(
            &labels,
            &labels,
            &[Series {
                name: "visitors",
                values: vec![1.0, 5.0, 2.0],
                class: "s1",
            }],
            200.0,
        );
        assert!(svg.contains("&lt;a&gt;") && !svg.contains("<a>"));
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains("M0.0 ") && svg.contains("L500.0 "));
        let bars = bar_chart(
            &[Bar {
                label: "0".into(),
                value: 2.0,
                tip: "00:00 2 visitors".into(),
                show_label: true,
            }],
            100.0,
            "hours",
            true,
        );
        assert!(bars.contains(r#"class="bar""#) && bars.contains("00:00 2 visitors"));
    }
}
