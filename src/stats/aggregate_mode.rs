//! What the stats engine can answer in aggregate-only mode (`privacy.aggregate_only`): no
//! visitor hash is kept, so no visits; the metrics and dimensions that need them are refused
//! with a message saying what is available. The privacy report lists the same constants.

use super::query::{DateRange, Dimension, Metric, Query};
use crate::error::StatsError;

/// Metrics that need visits (a visitor hash) and so are refused in this mode.
pub const UNAVAILABLE_METRICS: [Metric; 12] = [
    Metric::Visitors,
    Metric::Visits,
    Metric::ViewsPerVisit,
    Metric::BounceRate,
    Metric::VisitDuration,
    Metric::Percentage,
    Metric::VisitDurationMedian,
    Metric::VisitDurationP75,
    Metric::VisitDurationP90,
    Metric::Bounces,
    Metric::Entries,
    Metric::TimeOnPageMedian,
];

/// Dimensions that need visits, refused in this mode.
pub const UNAVAILABLE_DIMENSIONS: [Dimension; 3] = [
    Dimension::EntryPage,
    Dimension::ExitPage,
    Dimension::DurationBucket,
];

pub const HINT: &str =
    " (available: pageviews, time_on_page, scroll_depth by page, host, source, referrer, UTM, \
     country, device, browser, OS, time, hour of day and weekday; see GET /privacy)";

/// Aggregate-only mode keeps no visits: refuse what needs them, saying what is available.
pub fn supports(q: &Query) -> Result<(), StatsError> {
    let refuse = |what: String| {
        Err(StatsError::Invalid(format!(
            "{what} needs individual events, which this tally does not store: it runs in \
             aggregate-only mode (privacy.aggregate_only){HINT}"
        )))
    };
    if let Some(m) = q.metrics.iter().find(|m| UNAVAILABLE_METRICS.contains(m)) {
        return refuse(format!("#/metrics: {}", m.name()));
    }
    if let Some(d) = q
        .dimensions
        .iter()
        .find(|d| UNAVAILABLE_DIMENSIONS.contains(d))
    {
        return refuse(format!("#/dimensions: {}", d.name()));
    }
    if !q.filters.is_empty() {
        return refuse("#/filters: filtering".into());
    }
    if matches!(
        q.date_range,
        DateRange::All | DateRange::Realtime | DateRange::Last24Hours
    ) {
        return refuse("#/date_range: this date range".into());
    }
    Ok(())
}
