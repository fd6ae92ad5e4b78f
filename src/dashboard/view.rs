//! The state of one dashboard view, all of it in the URL (so a view can be bookmarked or shared):
//! site (in the path), `period`, `from`/`to` for a custom period, `compare`, and one query
//! parameter per filter (`page`, `source`, `utm_campaign`, `country`, `device`, `browser`, `os`,
//! `goal`, `props.KEY`), `prop` for the property the properties panel shows,
//! and `lang` when a language was chosen with the switch (without it, the browser's
//! `Accept-Language` decides, so a link sent to a colleague opens in their language).
//!
//! It also turns the state into the stats API's `date_range`, `filters` and comparison, and
//! builds the links that change one part of it.

use jiff::civil::Date;

use crate::i18n::{Lang, Tr};
use crate::stats::query::{DateRange, Dimension, Filter, Op};

/// The periods offered in the picker, and how each is asked of the stats API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Period {
    Today,
    Yesterday,
    Days7,
    Days30,
    Month,
    Custom(Date, Date),
}

impl Period {
    /// The picker's choices other than custom, with their URL value and label (a message key).
    pub const CHOICES: [(Period, &'static str, &'static str); 5] = [
        (Period::Today, "today", "period.today"),
        (Period::Yesterday, "yesterday", "period.yesterday"),
        (Period::Days7, "7d", "period.7d"),
        (Period::Days30, "30d", "period.30d"),
        (Period::Month, "month", "period.month"),
    ];

    pub fn param(&self) -> &'static str {
        match self {
            Period::Custom(..) => "custom",
            p => Period::CHOICES
                .iter()
                .find(|(c, _, _)| c == p)
                .map(|(_, v, _)| *v)
                .unwrap_or("30d"),
        }
    }

    /// The stats API's `date_range`.
    pub fn date_range(&self) -> DateRange {
        match self {
            Period::Today => DateRange::Day,
            Period::Yesterday => DateRange::Yesterday,
            Period::Days7 => DateRange::LastDays(7),
            Period::Days30 => DateRange::LastDays(30),
            Period::Month => DateRange::Month,
            Period::Custom(a, b) => DateRange::Dates(*a, *b),
        }
    }
}

/// Comparison with an earlier period (on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    PreviousPeriod,
    YearOverYear,
    Off,
}

impl Compare {
    pub const CHOICES: [(Compare, &'static str, &'static str); 3] = [
        (
            Compare::PreviousPeriod,
            "previous_period",
            "compare.previous_period",
        ),
        (
            Compare::YearOverYear,
            "year_over_year",
            "compare.year_over_year",
        ),
        (Compare::Off, "off", "compare.off"),
    ];

    pub fn param(self) -> &'static str {
        Compare::CHOICES
            .iter()
            .find(|(c, _, _)| *c == self)
            .map(|(_, v, _)| *v)
            .unwrap_or("previous_period")
    }
}

/// A dimension the dashboard filters by when a row is clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterDim {
    /// The URL parameter.
    pub param: &'static str,
    /// The stats API dimension.
    pub dimension: Dimension,
    /// What people read: a message key (`dimension.page`).
    pub label: &'static str,
}

/// Every filterable dimension, in the order filters are written in URLs and shown.
pub const FILTERS: [FilterDim; 8] = [
    FilterDim {
        param: "page",
        dimension: Dimension::Page,
        label: "dimension.page",
    },
    FilterDim {
        param: "source",
        dimension: Dimension::Source,
        label: "dimension.source",
    },
    FilterDim {
        param: "utm_campaign",
        dimension: Dimension::UtmCampaign,
        label: "dimension.utm_campaign",
    },
    FilterDim {
        param: "country",
        dimension: Dimension::Country,
        label: "dimension.country",
    },
    FilterDim {
        param: "device",
        dimension: Dimension::Device,
        label: "dimension.device",
    },
    FilterDim {
        param: "browser",
        dimension: Dimension::Browser,
        label: "dimension.browser",
    },
    FilterDim {
        param: "os",
        dimension: Dimension::Os,
        label: "dimension.os",
    },
    FilterDim {
        param: "goal",
        dimension: Dimension::Goal,
        label: "dimension.goal",
    },
];

pub fn filter_dim(param: &str) -> Option<FilterDim> {
    FILTERS.iter().copied().find(|f| f.param == param)
}

/// Longest filter value taken from a URL (paths are at most 2048 bytes at ingest).
const MAX_FILTER_VALUE: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Where this view lives: `/dashboard/<site>` or `/share/<secret>`.
    pub base: String,
    pub site: String,
    pub period: Period,
    pub compare: Compare,
    /// At most one value per dimension, in [`FILTERS`] order.
    pub filters: Vec<(FilterDim, String)>,
    /// The language chosen with the switch (`lang`); `None`: the browser's.
    pub lang: Option<Lang>,
    /// The custom property the properties panel breaks down (`prop`); `None`: the site's
    /// first allow-listed one. Checked against the site's keys by [`View::check_prop`].
    pub prop: Option<String>,
    /// Filters on custom properties (`props.KEY=VALUE`, an `is` each), at most one per key, in
    /// key order; their keys are checked by [`View::check_prop`].
    pub prop_filters: Vec<(String, String)>,
}

/// Why a query string is not a view; [`ViewError::message`] says it in a language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    Period(String),
    Compare(String),
    /// The parameter (`from`, `to`) and what it held.
    Date(&'static str, String),
    /// The end and start of a period that ends before it starts.
    Backwards(Date, Date),
    FilterTooLong(String),
    Lang(String),
    /// A `prop` the site does not store, and the keys it does.
    Prop(String, Vec<String>),
    /// A `props.KEY` filter on a key the site does not store, and the keys it does.
    PropFilter(String, Vec<String>),
}

impl ViewError {
    pub fn message(&self, tr: &Tr) -> String {
        match self {
            ViewError::Period(v) => tr.f("error.period", &[("value", &format!("{v:?}"))]),
            ViewError::Compare(v) => tr.f("error.compare", &[("value", &format!("{v:?}"))]),
            ViewError::Date(name, v) => tr.f(
                "error.date",
                &[("name", name), ("value", &format!("{v:?}"))],
            ),
            ViewError::Backwards(end, start) => {
                tr.f("error.backwards", &[("end", end), ("start", start)])
            }
            ViewError::FilterTooLong(name) => tr.f("error.filter_too_long", &[("name", name)]),
            ViewError::Lang(v) => tr.f("error.lang", &[("value", &format!("{v:?}"))]),
            ViewError::Prop(v, keys) if keys.is_empty() => {
                tr.f("error.prop_none", &[("value", &format!("{v:?}"))])
            }
            ViewError::Prop(v, keys) => tr.f(
                "error.prop",
                &[("value", &format!("{v:?}")), ("keys", &keys.join(", "))],
            ),
            ViewError::PropFilter(key, keys) if keys.is_empty() => {
                tr.f("error.prop_filter_none", &[("key", key)])
            }
            ViewError::PropFilter(key, keys) => tr.f(
                "error.prop_filter",
                &[("key", key), ("keys", &keys.join(", "))],
            ),
        }
    }
}

impl View {
    /// Reads the state from the query string. Missing parts take their defaults (last 30 days,
    /// compared with the previous period, no filter); a value that is present but wrong is an
    /// error that says what to change, rather than a silently different view.
    pub fn parse(base: String, site: String, query: Option<&str>) -> Result<View, ViewError> {
        let mut period = None;
        let mut lang = None;
        let mut prop = None;
        let mut prop_filters: Vec<(String, String)> = Vec::new();
        let (mut from, mut to) = (None, None);
        let mut compare = Compare::PreviousPeriod;
        let mut filters: Vec<(FilterDim, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "period" => period = Some(v.into_owned()),
                "from" => from = Some(v.into_owned()),
                "to" => to = Some(v.into_owned()),
                "compare" => {
                    compare = Compare::CHOICES
                        .iter()
                        .find(|(_, p, _)| *p == v)
                        .map(|(c, _, _)| *c)
                        .ok_or_else(|| ViewError::Compare(v.to_string()))?
                }
                "prop" if v.is_empty() => {}
                "prop" => prop = Some(v.into_owned()),
                "lang" if v.is_empty() => {}
                "lang" => {
                    lang = Some(Lang::parse(&v).ok_or_else(|| ViewError::Lang(v.to_string()))?)
                }
                k => {
                    if let Some(key) = k.strip_prefix("props.").filter(|k| !k.is_empty()) {
                        if v.is_empty() {
                            continue;
                        }
                        if v.len() > MAX_FILTER_VALUE {
                            return Err(ViewError::FilterTooLong(k.to_string()));
                        }
                        prop_filters.retain(|(x, _)| x != key);
                        prop_filters.push((key.to_string(), v.into_owned()));
                    } else if let Some(dim) = filter_dim(k) {
                        if v.is_empty() {
                            continue;
                        }
                        if v.len() > MAX_FILTER_VALUE {
                            return Err(ViewError::FilterTooLong(k.to_string()));
                        }
                        filters.retain(|(d, _)| *d != dim);
                        filters.push((dim, v.into_owned()));
                    }
                    // Other parameters are ignored, so that links with tracking or cache-busting
                    // parameters still open.
                }
            }
        }
        filters.sort_by_key(|(d, _)| FILTERS.iter().position(|f| f == d));
        prop_filters.sort();
        let date = |s: Option<String>, name: &'static str| -> Result<Date, ViewError> {
            let s = s.unwrap_or_default();
            s.parse::<Date>().map_err(|_| ViewError::Date(name, s))
        };
        let period = match period.as_deref() {
            None | Some("") => Period::Days30,
            Some("custom") => {
                let a = date(from, "from")?;
                let b = date(to, "to")?;
                if b < a {
                    return Err(ViewError::Backwards(b, a));
                }
                Period::Custom(a, b)
            }
            Some(p) => Period::CHOICES
                .iter()
                .find(|(_, v, _)| *v == p)
                .map(|(c, _, _)| c.clone())
                .ok_or_else(|| ViewError::Period(p.to_string()))?,
        };
        Ok(View {
            base,
            site,
            period,
            compare,
            filters,
            lang,
            prop,
            prop_filters,
        })
    }

    /// Refuses a `prop` that is not one of the site's allow-listed `keys` (a value that is
    /// present but wrong is an error, as in [`View::parse`]).
    pub fn check_prop(&self, keys: &[String]) -> Result<(), ViewError> {
        if let Some(p) = self.prop.as_ref().filter(|p| !keys.contains(p)) {
            return Err(ViewError::Prop(p.clone(), keys.to_vec()));
        }
        match self.prop_filters.iter().find(|(k, _)| !keys.contains(k)) {
            Some((k, _)) => Err(ViewError::PropFilter(k.clone(), keys.to_vec())),
            None => Ok(()),
        }
    }

    /// The keys of the property filters, in order: the report's `prop_keys`, which
    /// `Dimension::Prop` indexes (see [`View::filters`]).
    pub fn prop_keys(&self) -> Vec<String> {
        self.prop_filters.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The value the view's filter on property `key` keeps, if it has one.
    pub fn prop_filter_value(&self, key: &str) -> Option<&str> {
        self.prop_filters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// This view filtered to `value` of property `key` (replacing a filter on the same key).
    pub fn with_prop_filter(&self, key: &str, value: &str) -> View {
        let mut v = self.without_prop_filter(key);
        v.prop_filters.push((key.to_string(), value.to_string()));
        v.prop_filters.sort();
        v
    }

    pub fn without_prop_filter(&self, key: &str) -> View {
        let mut v = self.clone();
        v.prop_filters.retain(|(k, _)| k != key);
        v
    }

    /// Whether the view has any filter.
    pub fn is_filtered(&self) -> bool {
        !self.filters.is_empty() || !self.prop_filters.is_empty()
    }

    /// The property the properties panel shows: the one chosen, else the site's first.
    pub fn shown_prop<'k>(&'k self, keys: &'k [String]) -> Option<&'k str> {
        self.prop
            .as_deref()
            .filter(|p| keys.iter().any(|k| k == p))
            .or(keys.first().map(String::as_str))
    }

    /// The same view with the properties panel on `key`.
    pub fn with_prop(&self, key: &str) -> View {
        View {
            prop: Some(key.to_string()),
            ..self.clone()
        }
    }

    /// Whether the view is filtered by a goal or a custom property (the name is the older of
    /// the two): the stats API answers such a report as conversions, so its panels count those.
    pub fn by_goal(&self) -> bool {
        !self.prop_filters.is_empty()
            || self
                .filters
                .iter()
                .any(|(d, _)| d.dimension == Dimension::Goal)
    }

    /// The stats API's `filters`: each dimension `is` its value; a property filter's
    /// dimension is its key's place in [`View::prop_keys`].
    pub fn filters(&self) -> Vec<Filter> {
        let leaf = |dimension, v: &String| Filter::Leaf {
            op: Op::Is,
            dimension,
            values: vec![v.clone()],
            case_sensitive: true,
        };
        self.filters
            .iter()
            .map(|(d, v)| leaf(d.dimension, v))
            .chain(
                self.prop_filters
                    .iter()
                    .enumerate()
                    .map(|(i, (_, v))| leaf(Dimension::Prop(i as u8), v)),
            )
            .collect()
    }

    /// The query string of this state (defaults left out), without `?`.
    pub fn query_string(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("period", self.period.param());
        if let Period::Custom(a, b) = &self.period {
            q.append_pair("from", &a.to_string());
            q.append_pair("to", &b.to_string());
        }
        if self.compare != Compare::PreviousPeriod {
            q.append_pair("compare", self.compare.param());
        }
        for (d, v) in &self.filters {
            q.append_pair(d.param, v);
        }
        for (k, v) in &self.prop_filters {
            q.append_pair(&format!("props.{k}"), v);
        }
        if let Some(prop) = &self.prop {
            q.append_pair("prop", prop);
        }
        if let Some(lang) = self.lang {
            q.append_pair("lang", lang.code());
        }
        q.finish()
    }

    /// The same view in `lang`, chosen (the language switch).
    pub fn with_lang(&self, lang: Lang) -> View {
        View {
            lang: Some(lang),
            ..self.clone()
        }
    }

    /// The URL of this state.
    pub fn href(&self) -> String {
        format!("{}?{}", self.base, self.query_string())
    }

    /// Does the query string name a period? Without one the view shows the default, and the
    /// page may open on today instead (a new site: see `routes`).
    pub fn period_given(query: Option<&str>) -> bool {
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == "period")
    }

    pub fn with_period(&self, period: Period) -> View {
        View {
            period,
            ..self.clone()
        }
    }

    pub fn with_compare(&self, compare: Compare) -> View {
        View {
            compare,
            ..self.clone()
        }
    }

    /// This view filtered to `value` of `dim` (replacing a filter on the same dimension).
    pub fn with_filter(&self, dim: FilterDim, value: &str) -> View {
        let mut v = self.clone();
        v.filters.retain(|(d, _)| *d != dim);
        v.filters.push((dim, value.to_string()));
        v.filters
            .sort_by_key(|(d, _)| FILTERS.iter().position(|f| *f == *d));
        v
    }

    pub fn without_filter(&self, dim: FilterDim) -> View {
        let mut v = self.clone();
        v.filters.retain(|(d, _)| *d != dim);
        v
    }

    /// The same period and comparison on another site; filters name one site's pages and
    /// campaigns, and the chosen property one site's keys, so they are dropped.
    pub fn for_site(&self, base: String, site: &str) -> View {
        View {
            base,
            site: site.to_string(),
            filters: Vec::new(),
            prop: None,
            prop_filters: Vec::new(),
            ..self.clone()
        }
    }

    pub fn filter_value(&self, dim: FilterDim) -> Option<&str> {
        self.filters
            .iter()
            .find(|(d, _)| *d == dim)
            .map(|(_, v)| v.as_str())
    }
}

/// `url` (a path with a query string, such as a login's `next`) with its `lang` parameter set
/// to `lang`, the other parameters kept in their order.
pub fn with_lang_in(url: &str, lang: Lang) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k != "lang" {
            q.append_pair(&k, &v);
        }
    }
    q.append_pair("lang", lang.code());
    format!("{path}?{}", q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<View, ViewError> {
        View::parse("/dashboard/a.example".into(), "a.example".into(), Some(q))
    }

    #[test]
    fn defaults_and_round_trip() {
        let v = parse("").unwrap();
        assert_eq!(v.period, Period::Days30);
        assert_eq!(v.compare, Compare::PreviousPeriod);
        assert!(v.filters.is_empty());
        assert_eq!(v.href(), "/dashboard/a.example?period=30d");

        let q =
            "period=custom&from=2026-03-26&to=2026-03-31&compare=off&country=NL&page=%2Fblog%2Fa+b";
        let v = parse(q).unwrap();
        assert_eq!(
            v.period,
            Period::Custom("2026-03-26".parse().unwrap(), "2026-03-31".parse().unwrap())
        );
        assert_eq!(v.compare, Compare::Off);
        // Filters come out in the fixed order (page before country), values encoded.
        assert_eq!(
            v.query_string(),
            "period=custom&from=2026-03-26&to=2026-03-31&compare=off&page=%2Fblog%2Fa+b&country=NL"
        );
        assert_eq!(parse(&v.query_string()).unwrap(), v);
        let is = |dimension, value: &str| Filter::Leaf {
            op: Op::Is,
            dimension,
            values: vec![value.to_string()],
            case_sensitive: true,
        };
        assert_eq!(
            v.filters(),
            vec![
                is(Dimension::Page, "/blog/a b"),
                is(Dimension::Country, "NL")
            ]
        );
        assert_eq!(
            v.period.date_range(),
            DateRange::Dates("2026-03-26".parse().unwrap(), "2026-03-31".parse().unwrap())
        );
    }

    #[test]
    fn links_change_one_thing() {
        let v = parse("period=7d&country=NL").unwrap();
        let country = filter_dim("country").unwrap();
        let device = filter_dim("device").unwrap();
        assert_eq!(
            v.with_filter(device, "Mobile").query_string(),
            "period=7d&country=NL&device=Mobile"
        );
        assert_eq!(
            v.with_filter(country, "DE").query_string(),
            "period=7d&country=DE"
        );
        assert_eq!(v.without_filter(country).query_string(), "period=7d");
        assert_eq!(
            v.with_period(Period::Today).query_string(),
            "period=today&country=NL"
        );
        assert_eq!(
            v.for_site("/dashboard/b.example".into(), "b.example")
                .href(),
            "/dashboard/b.example?period=7d"
        );
        // A chosen language is part of the view, and every link keeps it.
        let fr = v.with_lang(Lang::Fr);
        assert_eq!(fr.query_string(), "period=7d&country=NL&lang=fr");
        assert_eq!(parse(&fr.query_string()).unwrap(), fr);
        assert_eq!(
            fr.with_filter(device, "Mobile").query_string(),
            "period=7d&country=NL&device=Mobile&lang=fr"
        );
        assert_eq!(
            fr.without_filter(country).query_string(),
            "period=7d&lang=fr"
        );
        assert_eq!(
            fr.with_compare(Compare::Off).query_string(),
            "period=7d&compare=off&country=NL&lang=fr"
        );
        assert_eq!(
            fr.for_site("/dashboard/b.example".into(), "b.example")
                .href(),
            "/dashboard/b.example?period=7d&lang=fr"
        );
        // Without the switch, no language is in the URL: the browser's decides.
        assert_eq!(parse("lang=").unwrap().lang, None);
        assert_eq!(
            with_lang_in("/dashboard/a.example?period=7d&lang=en&page=%2Fa", Lang::Nl),
            "/dashboard/a.example?period=7d&page=%2Fa&lang=nl"
        );
        assert_eq!(with_lang_in("/dashboard", Lang::Fr), "/dashboard?lang=fr");
    }

    #[test]
    fn wrong_values_are_errors_not_other_views() {
        let en = crate::i18n::tr(Lang::En);
        let message = |q: &str| parse(q).unwrap_err().message(en);
        assert!(message("period=week").contains("period must be"));
        assert!(message("period=custom&from=2026-03-31&to=2026-03-01").contains("before it starts"));
        assert!(
            message("period=custom&from=yesterday&to=2026-03-01").contains("from must be a date")
        );
        assert_eq!(parse("compare=yes"), Err(ViewError::Compare("yes".into())));
        assert_eq!(parse("lang=de"), Err(ViewError::Lang("de".into())));
        assert!(message("lang=de").contains("en, nl or fr"));
        // Unknown parameters and empty filters are ignored.
        assert_eq!(parse("utm_source=mail&country=").unwrap().filters, vec![]);
    }

    /// `prop` picks the properties panel's key: kept by every link, dropped on another site,
    /// and refused (not silently replaced) when the site does not store it.
    #[test]
    fn the_shown_property_is_part_of_the_view() {
        let keys = ["author".to_string(), "lang".to_string()];
        let v = parse("period=7d&prop=lang").unwrap();
        assert_eq!(v.shown_prop(&keys), Some("lang"));
        assert_eq!(parse("").unwrap().shown_prop(&keys), Some("author"));
        assert_eq!(parse("prop=").unwrap().prop, None);
        assert_eq!(v.check_prop(&keys), Ok(()));
        let country = filter_dim("country").unwrap();
        assert_eq!(
            v.with_filter(country, "NL").query_string(),
            "period=7d&country=NL&prop=lang"
        );
        assert_eq!(
            parse("period=7d")
                .unwrap()
                .with_prop("author")
                .query_string(),
            "period=7d&prop=author"
        );
        assert_eq!(parse(&v.query_string()).unwrap(), v);
        assert_eq!(
            v.for_site("/dashboard/b.example".into(), "b.example")
                .href(),
            "/dashboard/b.example?period=7d"
        );
        let en = crate::i18n::tr(Lang::En);
        let wrong = parse("prop=email").unwrap().check_prop(&keys).unwrap_err();
        assert_eq!(wrong, ViewError::Prop("email".into(), keys.to_vec()));
        assert!(
            wrong.message(en).contains("(author, lang)"),
            "{}",
            wrong.message(en)
        );
        let none = parse("prop=email").unwrap().check_prop(&[]).unwrap_err();
        assert!(none.message(en).contains("props_allowlist is empty"));
    }

    /// `props.KEY=VALUE` filters by a custom property: one per key, in key order, kept by every
    /// link, each a `Dimension::Prop` leaf indexing the report's `prop_keys`, and the view
    /// becomes a conversion report; an unknown key is refused.
    #[test]
    fn property_filters_are_part_of_the_view() {
        let keys = ["author".to_string(), "lang".to_string()];
        let v =
            parse("period=7d&props.lang=nl&country=NL&props.author=Jan&props.author=Piet&props.x=")
                .unwrap();
        assert_eq!(
            v.prop_filters,
            [
                ("author".to_string(), "Piet".to_string()),
                ("lang".into(), "nl".into())
            ]
        );
        assert_eq!(
            v.query_string(),
            "period=7d&country=NL&props.author=Piet&props.lang=nl"
        );
        assert_eq!(parse(&v.query_string()).unwrap(), v);
        assert!(v.by_goal() && v.is_filtered());
        assert_eq!(v.prop_keys(), ["author", "lang"]);
        let f = v.filters();
        assert_eq!(f.len(), 3);
        let prop = |i, value: &str| Filter::Leaf {
            op: Op::Is,
            dimension: Dimension::Prop(i),
            values: vec![value.into()],
            case_sensitive: true,
        };
        assert_eq!(f[1..], [prop(0, "Piet"), prop(1, "nl")]);
        assert_eq!(v.prop_filter_value("lang"), Some("nl"));
        assert_eq!(
            v.without_prop_filter("author").query_string(),
            "period=7d&country=NL&props.lang=nl"
        );
        assert_eq!(
            v.without_prop_filter("lang")
                .with_prop_filter("author", "Jan")
                .query_string(),
            "period=7d&country=NL&props.author=Jan"
        );
        assert_eq!(
            v.for_site("/dashboard/b.example".into(), "b.example")
                .href(),
            "/dashboard/b.example?period=7d"
        );
        assert_eq!(v.check_prop(&keys), Ok(()));
        let en = crate::i18n::tr(Lang::En);
        let wrong = parse("props.email=x")
            .unwrap()
            .check_prop(&keys)
            .unwrap_err();
        assert_eq!(wrong, ViewError::PropFilter("email".into(), keys.to_vec()));
        assert_eq!(
            wrong.message(en),
            "props.email must name one of this site's allow-listed properties (author, lang)"
        );
        let none = parse("props.email=x").unwrap().check_prop(&[]).unwrap_err();
        assert!(none.message(en).contains("there is no props.email filter"));
        assert!(!parse("period=7d").unwrap().is_filtered());
    }
}
