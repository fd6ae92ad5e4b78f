//! The languages tally speaks to people (the dashboard, the login page, the privacy report):
//! English, Dutch and French. Which one a request gets ([`Lang::negotiate`]: the `lang` URL
//! parameter where a page has one, else the browser's `Accept-Language`, else English), and
//! [`Tr`], everything a page needs to write in one language: its messages, kept as data in
//! `locales/*.toml` (`catalog`), and numbers, dates, weekday and month names and plural forms
//! as CLDR has them for that language (`format`, ICU4X).
//!
//! Messages are plain text with `{name}` placeholders; a template escapes them like any other
//! value, so a translation can never put markup into a page. Values from the data (page paths,
//! countries, browser names) are not translated.

use std::fmt::Display;
use std::sync::LazyLock;

mod catalog;
mod format;

pub use catalog::Catalog;
use format::Formats;

/// A language tally speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Nl,
    Fr,
}

impl Lang {
    /// Every language, in the order the switch offers them.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Nl, Lang::Fr];

    /// The BCP 47 code: `lang` URL parameter, `<html lang>`, `Content-Language`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
            Lang::Fr => "fr",
        }
    }

    /// The language with this code (`nl`; also `nl-BE` or `NL`), if tally speaks it.
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next().unwrap_or("").trim();
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The language for an `Accept-Language` header (RFC 9110 §12.5.4): the spoken language
    /// with the highest weight, the first listed among equals; `*` or nothing spoken means
    /// English. `nl-BE` counts as Dutch and `fr-CA` as French (their numbers and dates are
    /// then written as in `nl` and `fr`).
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if q <= 0.0 || !q.is_finite() {
                continue;
            }
            let lang = if tag == "*" {
                Some(Lang::En)
            } else {
                Lang::parse(tag)
            };
            if let Some(lang) = lang {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::En)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../../locales/en.toml"),
            Lang::Nl => include_str!("../../locales/nl.toml"),
            Lang::Fr => include_str!("../../locales/fr.toml"),
        }
    }
}

/// Everything needed to write for people in one language. One per language, made once
/// ([`tr`]); a page holds a `&'static Tr`.
pub struct Tr {
    pub lang: Lang,
    catalog: Catalog,
    formats: Formats,
    /// Tests only: every text made here is wrapped in these marks, so that a test can find
    /// text on a page that did not come from here (see `tests::marked`).
    marks: Option<(&'static str, &'static str)>,
}

static TRS: LazyLock<[Tr; 3]> = LazyLock::new(|| Lang::ALL.map(|l| Tr::new(l, None)));

/// The writer for `lang`.
pub fn tr(lang: Lang) -> &'static Tr {
    &TRS[lang as usize]
}

/// A value for a `{name}` placeholder.
pub type Arg<'a> = (&'a str, &'a dyn Display);

/// A part of a message cut at its slots ([`Tr::pieces`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text, filled in.
    Text(String),
    /// The slot with this index.
    Slot(usize),
}

impl Tr {
    fn new(lang: Lang, marks: Option<(&'static str, &'static str)>) -> Tr {
        Tr {
            lang,
            // The files are part of the binary and checked by the tests; one that does not
            // parse is a build that must not ship, so this is a panic at first use.
            catalog: Catalog::parse(lang.source())
                .unwrap_or_else(|e| panic!("locales/{}.toml: {e}", lang.code())),
            formats: Formats::new(lang),
            marks,
        }
    }

    /// Tests only: a writer whose every text is wrapped in `open` … `close`.
    #[cfg(test)]
    pub fn marked(lang: Lang, open: &'static str, close: &'static str) -> &'static Tr {
        Box::leak(Box::new(Tr::new(lang, Some((open, close)))))
    }

    fn mark(&self, s: String) -> String {
        match self.marks {
            Some((open, close)) => format!("{open}{s}{close}"),
            None => s,
        }
    }

    /// The message `key`. A key missing from this language's file is written as itself (the
    /// tests make sure none is), so a page still says something.
    pub fn t(&self, key: &str) -> String {
        self.mark(self.catalog.get(key).unwrap_or(key).to_string())
    }

    /// The message `key` with its `{name}` placeholders filled in.
    pub fn f(&self, key: &str, args: &[Arg<'_>]) -> String {
        self.mark(fill(self.catalog.get(key).unwrap_or(key), args))
    }

    /// The plural form of `key` (`key.one`, `key.other`, …) that this language uses for the
    /// count `n`, filled in; `{n}` is the count as this language writes it.
    pub fn plural(&self, key: &str, n: f64, args: &[Arg<'_>]) -> String {
        let category = self.formats.plural_category(n);
        let message = self
            .catalog
            .get(&format!("{key}.{category}"))
            .or_else(|| self.catalog.get(&format!("{key}.other")))
            .unwrap_or(key);
        let count = self.formats.count(n);
        let mut all: Vec<Arg<'_>> = vec![("n", &count)];
        all.extend_from_slice(args);
        self.mark(fill(message, &all))
    }

    /// The message `key` cut at its placeholders named in `slots`, for a template that writes
    /// markup there (a `<code>`, a `<strong>`): the text pieces, filled in from `args`, and the
    /// slots by their index in `slots`.
    pub fn pieces(&self, key: &str, args: &[Arg<'_>], slots: &[&str]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut rest = self.catalog.get(key).unwrap_or(key);
        loop {
            let next = slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| rest.find(&format!("{{{s}}}")).map(|at| (at, i, s.len())))
                .min();
            let Some((at, i, len)) = next else { break };
            if at > 0 {
                out.push(Piece::Text(self.mark(fill(&rest[..at], args))));
            }
            out.push(Piece::Slot(i));
            rest = &rest[at + len + 2..];
        }
        if !rest.is_empty() {
            out.push(Piece::Text(self.mark(fill(rest, args))));
        }
        out
    }

    /// A whole number with this language's digit grouping: `1,234`, `1.234`, `1 234`.
    pub fn count(&self, v: f64) -> String {
        self.formats.count(v)
    }

    /// A number with at most `digits` decimals, trailing zeros dropped: `12.5`, `12,5`.
    pub fn decimal(&self, v: f64, digits: i16) -> String {
        self.formats.decimal(v, digits, false)
    }

    /// A number with exactly `digits` decimals: `1.50`, `1,50`.
    pub fn fixed(&self, v: f64, digits: i16) -> String {
        self.formats.decimal(v, digits, true)
    }

    /// A percentage as the API gives it (already × 100): `38%`, `12,5%`, `38 %`.
    pub fn percent(&self, v: f64) -> String {
        self.f("format.percent", &[("n", &self.decimal(v, 1))])
    }

    /// Seconds as people read them: `45s`, `3m 02s`, `1h 05m` (or `3 min 02 s`, …).
    pub fn duration(&self, secs: f64) -> String {
        let s = secs.round().max(0.0) as u64;
        let (key, a, b) = if s < 60 {
            ("format.duration.s", s, 0)
        } else if s < 3600 {
            ("format.duration.ms", s / 60, s % 60)
        } else {
            ("format.duration.hm", s / 3600, (s % 3600) / 60)
        };
        let b = format!("{b:02}");
        self.f(key, &[("a", &a), ("b", &b)])
    }

    /// A compact count for chart axes: `950`, `1.2k`, `34k`, `1.5M` (in this language).
    pub fn short_count(&self, v: f64) -> String {
        let a = v.abs();
        if a >= 1e6 {
            self.f("format.millions", &[("n", &self.decimal(v / 1e6, 1))])
        } else if a >= 1e4 {
            self.f("format.thousands", &[("n", &self.decimal(v / 1e3, 0))])
        } else if a >= 1e3 {
            self.f("format.thousands", &[("n", &self.decimal(v / 1e3, 1))])
        } else {
            self.count(v)
        }
    }

    /// A change against the previous period, with the sign in words and an arrow, so that it
    /// reads without colour. `points` for rates, whose change is a difference in points.
    pub fn change(&self, v: f64, points: bool) -> String {
        let n = v.round();
        let amount = if points {
            self.f("format.points", &[("n", &self.count(n.abs()))])
        } else {
            self.f("format.percent", &[("n", &self.count(n.abs()))])
        };
        let key = match n.partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => "format.change.up",
            Some(std::cmp::Ordering::Less) => "format.change.down",
            _ => "format.change.same",
        };
        self.f(key, &[("n", &amount)])
    }

    /// `Mar 3`, `3 mrt`, `3 mars`.
    pub fn day_month(&self, d: jiff::civil::Date) -> String {
        self.mark(self.formats.date(format::DateStyle::DayMonth, d))
    }

    /// `Mar 3, 2026`, `3 mrt 2026`, `3 mars 2026`.
    pub fn date(&self, d: jiff::civil::Date) -> String {
        self.mark(self.formats.date(format::DateStyle::Full, d))
    }

    /// `Tue, Mar 3, 2026`, `di 3 mrt 2026`, `mar. 3 mars 2026`.
    pub fn weekday_date(&self, d: jiff::civil::Date) -> String {
        self.mark(self.formats.date(format::DateStyle::WithWeekday, d))
    }

    /// `Mar 2026`, `mrt 2026`, `mars 2026`.
    pub fn month_year(&self, d: jiff::civil::Date) -> String {
        self.mark(self.formats.date(format::DateStyle::MonthYear, d))
    }

    /// `Tuesday`, `dinsdag`, `mardi`.
    pub fn weekday(&self, d: jiff::civil::Date) -> String {
        self.mark(self.formats.date(format::DateStyle::Weekday, d))
    }

    /// `Tue`, `di`, `mar.`.
    pub fn weekday_short(&self, d: jiff::civil::Date) -> String {
        self.mark(self.formats.date(format::DateStyle::WeekdayShort, d))
    }
}

/// `message` with each `{name}` replaced by its argument; unknown placeholders stay as written.
fn fill(message: &str, args: &[Arg<'_>]) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    let mut rest = message;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(&v.to_string()),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
