//! A report question, typed: which site, metrics, period, dimensions, filters, order, page and
//! comparison. The stats API parses JSON into it (`api`); the dashboard and the Grafana
//! generator build it directly. Metric and dimension names are the stats API's.

/// Most rows one request may ask for (Plausible's limit too).
pub const MAX_LIMIT: usize = 10_000;
/// Most dimensions in one request: three covers every report and keeps group-bys small.
pub const MAX_DIMENSIONS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Visitors,
    Visits,
    Pageviews,
    ViewsPerVisit,
    BounceRate,
    VisitDuration,
    TimeOnPage,
    ScrollDepth,
    Percentage,
    VisitDurationMedian,
    VisitDurationP75,
    VisitDurationP90,
    TimeOnPageMedian,
    Bounces,
    Entries,
    /// Pageviews and custom events (engagement beacons are neither); with `event:goal`, the
    /// goal's conversions.
    Events,
    /// Converted visitors of a row, in percent of the visitors of the whole query without its
    /// `event:goal` and `event:props:*` filters.
    ConversionRate,
    /// Converted visitors of a row, in percent of the visitors of the same group (the row's
    /// values of the other dimensions) without the `event:goal` and `event:props:*` filters.
    GroupConversionRate,
}

impl Metric {
    pub const ALL: [Metric; 18] = [
        Metric::Visitors,
        Metric::Visits,
        Metric::Pageviews,
        Metric::ViewsPerVisit,
        Metric::BounceRate,
        Metric::VisitDuration,
        Metric::TimeOnPage,
        Metric::ScrollDepth,
        Metric::Percentage,
        Metric::VisitDurationMedian,
        Metric::VisitDurationP75,
        Metric::VisitDurationP90,
        Metric::TimeOnPageMedian,
        Metric::Bounces,
        Metric::Entries,
        Metric::Events,
        Metric::ConversionRate,
        Metric::GroupConversionRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Visitors => "visitors",
            Metric::Visits => "visits",
            Metric::Pageviews => "pageviews",
            Metric::ViewsPerVisit => "views_per_visit",
            Metric::BounceRate => "bounce_rate",
            Metric::VisitDuration => "visit_duration",
            Metric::TimeOnPage => "time_on_page",
            Metric::ScrollDepth => "scroll_depth",
            Metric::Percentage => "percentage",
            Metric::VisitDurationMedian => "visit_duration_median",
            Metric::VisitDurationP75 => "visit_duration_p75",
            Metric::VisitDurationP90 => "visit_duration_p90",
            Metric::TimeOnPageMedian => "time_on_page_median",
            Metric::Bounces => "bounces",
            Metric::Entries => "entries",
            Metric::Events => "events",
            Metric::ConversionRate => "conversion_rate",
            Metric::GroupConversionRate => "group_conversion_rate",
        }
    }

    /// The metric of an API name.
    pub fn from_name(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// Where a dimension's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Page,
    Hostname,
    EntryPage,
    ExitPage,
    Source,
    Referrer,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmContent,
    UtmTerm,
    Country,
    /// The country's English name (`Netherlands`), from the country code (`country`).
    CountryName,
    /// Plausible's acquisition channel (`Organic Search`), from source and UTM tags (`channel`).
    Channel,
    Device,
    Browser,
    Os,
    /// `time`: resolved to one of the others from the period's length.
    Time,
    Hour,
    Day,
    Week,
    Month,
    HourOfDay,
    Weekday,
    DurationBucket,
    /// `event:goal`: the site's goals a pageview or custom event converts (a row may count for
    /// several goals).
    Goal,
    /// `event:props:KEY`: a custom property's value, `KEY` being the query's
    /// `prop_keys[index]` (so the dimension stays `Copy`); `(none)` where an event lacks it.
    Prop(u8),
}

impl Dimension {
    /// The named dimensions (`event:props:KEY` is parsed by its prefix).
    pub const ALL: [Dimension; 26] = [
        Dimension::Page,
        Dimension::Hostname,
        Dimension::EntryPage,
        Dimension::ExitPage,
        Dimension::Source,
        Dimension::Referrer,
        Dimension::UtmSource,
        Dimension::UtmMedium,
        Dimension::UtmCampaign,
        Dimension::UtmContent,
        Dimension::UtmTerm,
        Dimension::Country,
        Dimension::CountryName,
        Dimension::Channel,
        Dimension::Device,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Time,
        Dimension::Hour,
        Dimension::Day,
        Dimension::Week,
        Dimension::Month,
        Dimension::HourOfDay,
        Dimension::Weekday,
        Dimension::DurationBucket,
        Dimension::Goal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Page => "event:page",
            Dimension::Hostname => "event:hostname",
            Dimension::EntryPage => "visit:entry_page",
            Dimension::ExitPage => "visit:exit_page",
            Dimension::Source => "visit:source",
            Dimension::Referrer => "visit:referrer",
            Dimension::UtmSource => "visit:utm_source",
            Dimension::UtmMedium => "visit:utm_medium",
            Dimension::UtmCampaign => "visit:utm_campaign",
            Dimension::UtmContent => "visit:utm_content",
            Dimension::UtmTerm => "visit:utm_term",
            Dimension::Country => "visit:country",
            Dimension::CountryName => "visit:country_name",
            Dimension::Channel => "visit:channel",
            Dimension::Device => "visit:device",
            Dimension::Browser => "visit:browser",
            Dimension::Os => "visit:os",
            Dimension::Time => "time",
            Dimension::Hour => "time:hour",
            Dimension::Day => "time:day",
            Dimension::Week => "time:week",
            Dimension::Month => "time:month",
            Dimension::HourOfDay => "time:hour_of_day",
            Dimension::Weekday => "time:weekday",
            Dimension::DurationBucket => "visit:duration_bucket",
            Dimension::Goal => "event:goal",
            Dimension::Prop(_) => "event:props:*",
        }
    }

    /// The dimension of an API name.
    pub fn from_name(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == s)
    }

    pub fn is_time(self) -> bool {
        matches!(
            self,
            Dimension::Time
                | Dimension::Hour
                | Dimension::Day
                | Dimension::Week
                | Dimension::Month
                | Dimension::HourOfDay
                | Dimension::Weekday
        )
    }

    /// A time bucket along the period (as opposed to a cycle such as hour of day).
    pub fn is_time_series(self) -> bool {
        matches!(
            self,
            Dimension::Time | Dimension::Hour | Dimension::Day | Dimension::Week | Dimension::Month
        )
    }

    /// A page path, whose `is` / `is_not` filter values may hold `*` wildcards (Plausible's
    /// page grouping, `/blog*`).
    pub fn is_page(self) -> bool {
        matches!(
            self,
            Dimension::Page | Dimension::EntryPage | Dimension::ExitPage
        )
    }

    /// Derived from the address and the user agent the visitor hash is made of, so the same
    /// on every event of a visitor: a raw event's value is its visit's. Not the device, which
    /// is the screen class of the visit's first pageview when the beacon sends a width.
    pub fn is_visitor_constant(self) -> bool {
        matches!(
            self,
            Dimension::Country | Dimension::CountryName | Dimension::Browser | Dimension::Os
        )
    }

    /// Goals and custom properties: a report with them counts conversions (pageviews and custom
    /// events that match) rather than visits.
    pub fn is_conversion(self) -> bool {
        matches!(self, Dimension::Goal | Dimension::Prop(_))
    }

    /// Values that are numbers in the answer (and sort as numbers).
    pub fn is_numeric(self) -> bool {
        matches!(self, Dimension::HourOfDay | Dimension::Weekday)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Is,
    IsNot,
    Contains,
    ContainsNot,
    Matches,
    MatchesNot,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Leaf {
        op: Op,
        dimension: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    /// Whether an `event:goal` or `event:props:*` leaf is in it.
    pub fn has_conversion(&self) -> bool {
        match self {
            Filter::Leaf { dimension, .. } => dimension.is_conversion(),
            Filter::And(v) | Filter::Or(v) => v.iter().any(Filter::has_conversion),
            Filter::Not(f) => f.has_conversion(),
        }
    }

    /// Whether every leaf is on a visitor-constant dimension ([`Dimension::is_visitor_constant`]):
    /// then it holds for a raw event exactly when it holds for the event's visit.
    pub fn is_visitor_constant(&self) -> bool {
        match self {
            Filter::Leaf { dimension, .. } => dimension.is_visitor_constant(),
            Filter::And(v) | Filter::Or(v) => v.iter().all(Filter::is_visitor_constant),
            Filter::Not(f) => f.is_visitor_constant(),
        }
    }
}

/// The `date_range` as asked; resolved against the site's time zone and today in `period`.
#[derive(Debug, Clone, PartialEq)]
pub enum DateRange {
    Day,
    Yesterday,
    LastDays(u32),
    LastMonths(u32),
    Month,
    Year,
    All,
    Realtime,
    /// `24h`: the 24 hours up to now.
    Last24Hours,
    Dates(jiff::civil::Date, jiff::civil::Date),
    Instants(jiff::Timestamp, jiff::Timestamp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKey {
    Metric(Metric),
    Dimension(Dimension),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    PreviousPeriod,
    YearOverYear,
}

#[derive(Debug, Clone)]
pub struct Query {
    pub site_id: String,
    pub metrics: Vec<Metric>,
    pub date_range: DateRange,
    pub dimensions: Vec<Dimension>,
    pub filters: Vec<Filter>,
    /// Empty means the default order.
    pub order_by: Vec<(OrderKey, Direction)>,
    pub time_labels: bool,
    pub total_rows: bool,
    pub comparison: Option<Comparison>,
    pub limit: usize,
    pub offset: usize,
    /// The custom property keys `Dimension::Prop` indexes (each key once).
    pub prop_keys: Vec<String>,
}

impl Query {
    /// A query for `metrics` of `site_id` over `date_range`: no dimension, filter or
    /// comparison, the default order, the first [`MAX_LIMIT`] rows.
    pub fn new(site_id: &str, metrics: &[Metric], date_range: DateRange) -> Query {
        Query {
            site_id: site_id.to_string(),
            metrics: metrics.to_vec(),
            date_range,
            dimensions: Vec::new(),
            filters: Vec::new(),
            order_by: Vec::new(),
            time_labels: false,
            total_rows: false,
            comparison: None,
            limit: MAX_LIMIT,
            offset: 0,
            prop_keys: Vec::new(),
        }
    }

    /// A dimension's API name (`event:props:KEY` with its key).
    pub fn dimension_name(&self, d: Dimension) -> String {
        match d {
            Dimension::Prop(i) => format!(
                "event:props:{}",
                self.prop_keys
                    .get(usize::from(i))
                    .map(String::as_str)
                    .unwrap_or("")
            ),
            other => other.name().to_string(),
        }
    }

    /// Whether the query counts conversions: an `event:goal` or `event:props:*` dimension or
    /// filter anywhere.
    pub fn counts_conversions(&self) -> bool {
        self.dimensions.iter().any(|d| d.is_conversion())
            || self.filters.iter().any(Filter::has_conversion)
    }

    /// The same query grouped by `dimensions`.
    pub fn by(mut self, dimensions: &[Dimension]) -> Query {
        self.dimensions = dimensions.to_vec();
        self
    }

    /// The same query with these filters (all must match).
    pub fn filtered(mut self, filters: Vec<Filter>) -> Query {
        self.filters = filters;
        self
    }
}
