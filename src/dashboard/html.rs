//! How the dashboard writes numbers for people: counts, compact axis counts, durations,
//! percentages and changes, and [`Figure`], a number as a page shows it (raw and written).
//! Escaping is not done here: the templates (`templates/`, rendered by `page` and `charts`)
//! escape every value they write.

use std::fmt::Write;

use super::panels::Fmt;

/// A number as the page shows it: raw in a `data-value` attribute (for tests and scripts;
/// `null` when the API gave none) and written for people in its format (`–` when missing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub value: Option<f64>,
    pub fmt: Fmt,
}

impl Figure {
    pub fn new(value: Option<f64>, fmt: Fmt) -> Figure {
        Figure { value, fmt }
    }

    /// A count that is always there (buckets, hours, cells).
    pub fn count(value: f64) -> Figure {
        Figure::new(Some(value), Fmt::Count)
    }

    /// For `data-value`: the number as Rust writes an `f64` (`12`, `12.5`), or `null`.
    pub fn raw(&self) -> String {
        self.value
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into())
    }

    /// For people: `12,345`, `3m 02s`, `38%`, or `–` when there is no number.
    pub fn text(&self) -> String {
        match (self.value, self.fmt) {
            (None, _) => "–".into(),
            (Some(v), Fmt::Count) => count(v),
            (Some(v), Fmt::Duration) => duration(v),
            (Some(v), Fmt::Percent) => percent(v),
        }
    }
}

/// A count with thousands separators: `12,345`.
pub fn count(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('−');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A compact count for chart axes: `950`, `1.2k`, `34k`, `1.5M`.
pub fn short_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        trim_zero(format!("{:.1}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        trim_zero(format!("{:.1}", v / 1e3)) + "k"
    } else {
        format!("{}", v.round() as i64)
    }
}

fn trim_zero(s: String) -> String {
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Seconds as people read them: `0s`, `45s`, `3m 02s`, `1h 05m`.
pub fn duration(secs: f64) -> String {
    let s = secs.round().max(0.0) as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A percentage value as the API gives it (already × 100): `38%`, `12.5%`.
pub fn percent(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}%", v.round() as i64)
    } else {
        format!("{v:.1}%")
    }
}

/// How a change against the previous period is written: the sign in words and an arrow, so
/// that it reads without colour. `points` for rates, whose change is a difference in points.
pub fn change(v: f64, points: bool) -> String {
    let unit = if points { " pts" } else { "%" };
    let n = v.round() as i64;
    let mut s = String::new();
    match n.signum() {
        1 => {
            let _ = write!(s, "▲ +{n}{unit}");
        }
        -1 => {
            let _ = write!(s, "▼ −{}{unit}", n.unsigned_abs());
        }
        _ => {
            let _ = write!(s, "± 0{unit}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_raw_and_for_people() {
        let f = Figure::new(Some(182.0), Fmt::Duration);
        assert_eq!((f.raw(), f.text()), ("182".into(), "3m 02s".into()));
        let f = Figure::new(Some(12.5), Fmt::Percent);
        assert_eq!((f.raw(), f.text()), ("12.5".into(), "12.5%".into()));
        let f = Figure::new(None, Fmt::Count);
        assert_eq!((f.raw(), f.text()), ("null".into(), "–".into()));
        assert_eq!(Figure::count(1234.0).text(), "1,234");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(short_count(950.0), "950");
        assert_eq!(short_count(1200.0), "1.2k");
        assert_eq!(short_count(2000.0), "2k");
        assert_eq!(short_count(34_000.0), "34k");
        assert_eq!(short_count(1_500_000.0), "1.5M");
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(182.0), "3m 02s");
        assert_eq!(duration(3900.0), "1h 05m");
        assert_eq!(percent(38.0), "38%");
        assert_eq!(percent(12.5), "12.5%");
        assert_eq!(change(12.0, false), "▲ +12%");
        assert_eq!(change(-5.0, true), "▼ −5 pts");
        assert_eq!(change(0.0, false), "± 0%");
    }
}
