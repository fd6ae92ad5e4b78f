//! What the stats engine can answer in aggregate-only mode (`privacy.aggregate_only`): no
//! visitor hash is kept, so no visits; the metrics and dimensions that need them are refused
//! with a message saying what is available. The privacy report lists the same constants.

use super::query::{DateRange, Dimension, Metric, Query};
use crate::error::StatsError;

/// Metrics that need visits (a visitor hash) and so are refused in this mode.
pub const UNAVAILABLE_METRICS: [Metric; 15] = [
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
    // Custom events, goals and their properties are not folded into the daily counts.
    Metric::Events,
    Metric::ConversionRate,
    Metric::GroupConversionRate,
];

/// Dimensions that need visits or custom events, refused in this mode (`Prop(0)` stands for
/// every `event:props:KEY`).
pub const UNAVAILABLE_DIMENSIONS: [Dimension; 5] = [
    Dimension::EntryPage,
    Dimension::ExitPage,
    Dimension::DurationBucket,
    Dimension::Goal,
    Dimension::Prop(0),
];

/// Whether `d` is one of [`UNAVAILABLE_DIMENSIONS`] (any custom property key).
fn unavailable(d: Dimension) -> bool {
    UNAVAILABLE_DIMENSIONS
        .iter()
        .any(|u| std::mem::discriminant(u) == std::mem::discriminant(&d))
}

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
    if let Some(d) = q.dimensions.iter().find(|d| unavailable(**d)) {
        return refuse(format!("#/dimensions: {}", q.dimension_name(*d)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_events_and_props_are_refused_without_events() {
        let day = || Query::new("a", &[Metric::Pageviews], DateRange::Day);
        assert!(supports(&day()).is_ok());
        let refused = |q: Query| match supports(&q) {
            Err(StatsError::Invalid(m)) => m,
            other => panic!("{q:?}: {other:?}"),
        };
        let m = refused(Query::new("a", &[Metric::Events], DateRange::Day));
        assert!(
            m.contains("#/metrics: events") && m.contains("aggregate-only"),
            "{m}"
        );
        let m = refused(day().by(&[Dimension::Goal]));
        assert!(m.contains("#/dimensions: event:goal"), "{m}");
        let mut q = day().by(&[Dimension::Prop(0)]);
        q.prop_keys = vec!["format".into()];
        let m = refused(q);
        assert!(m.contains("#/dimensions: event:props:format"), "{m}");
    }
}
