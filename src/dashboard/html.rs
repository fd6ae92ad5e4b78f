//! [`Figure`]: a number as the dashboard shows it, raw (for `data-value`, tests and scripts)
//! and written for people in the page's language (counts, durations, percentages; the
//! formatting itself is `i18n::Tr`'s). Escaping is not done here: the templates (`templates/`,
//! rendered by `page` and `charts`) escape every value they write.

use super::panels::Fmt;
use crate::i18n::Tr;

/// A number as the page shows it: raw in a `data-value` attribute (`null` when the API gave
/// none) and written for people in its format (`–` when missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub value: Option<f64>,
    text: String,
}

impl Figure {
    pub fn new(value: Option<f64>, fmt: Fmt, tr: &Tr) -> Figure {
        let text = match (value, fmt) {
            (None, _) => "–".into(),
            (Some(v), Fmt::Count) => tr.count(v),
            (Some(v), Fmt::Duration) => tr.duration(v),
            (Some(v), Fmt::Percent) => tr.percent(v),
        };
        Figure { value, text }
    }

    /// A count that is always there (buckets, hours, cells).
    pub fn count(value: f64, tr: &Tr) -> Figure {
        Figure::new(Some(value), Fmt::Count, tr)
    }

    /// For `data-value`: the number as Rust writes an `f64` (`12`, `12.5`), or `null`.
    pub fn raw(&self) -> String {
        self.value
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into())
    }

    /// For people: `12,345`, `3m 02s`, `38%` (in the page's language), or `–`.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{tr, Lang};

    #[test]
    fn figures_raw_and_for_people() {
        let en = tr(Lang::En);
        let f = Figure::new(Some(182.0), Fmt::Duration, en);
        assert_eq!((f.raw(), f.text()), ("182".into(), "3m 02s"));
        let f = Figure::new(Some(12.5), Fmt::Percent, en);
        assert_eq!((f.raw(), f.text()), ("12.5".into(), "12.5%"));
        let f = Figure::new(None, Fmt::Count, en);
        assert_eq!((f.raw(), f.text()), ("null".into(), "–"));
        assert_eq!(Figure::count(1234.0, en).text(), "1,234");
        // The raw value is the same in every language; the text is not.
        let nl = Figure::new(Some(1234.5), Fmt::Percent, tr(Lang::Nl));
        assert_eq!((nl.raw(), nl.text()), ("1234.5".into(), "1.234,5%"));
        let fr = Figure::new(Some(1234.5), Fmt::Percent, tr(Lang::Fr));
        assert_eq!(
            (fr.raw(), fr.text()),
            ("1234.5".into(), "1\u{202f}234,5\u{202f}%")
        );
    }
}
