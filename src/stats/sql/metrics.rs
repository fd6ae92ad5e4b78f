//! The metric formulas in SQL, for report SQL that computes its metrics itself (the Grafana
//! dashboards): [`metric`] is `answer::metric` written over SQL expressions of the components,
//! operation for operation, so that both give the same `f64`. A test evaluates every formula on
//! ClickHouse 18.16 and current ClickHouse for a set of component values and compares it with
//! `answer::metric` (`tests/it/grafana.rs`); change the two together.

use crate::stats::query::Metric;

/// `answer::metric` in SQL. `c(i)` is the SQL of component `i` (in `COMPONENTS` order, the
/// median of time on page at 13), `total_visitors` that of the visitors of the whole period
/// (for `percentage`). The formula is NULL where `answer::metric` has no value.
pub fn metric(m: Metric, c: &dyn Fn(usize) -> String, total_visitors: Option<&str>) -> String {
    let (visits, page_visits) = (c(2), c(6));
    let per_visit = |x: String| format!("if({visits} = 0, 0, {x} / {visits})");
    let when = |cond: String, value: String| format!("if({cond}, {value}, NULL)");
    match m {
        Metric::Pageviews => c(0),
        Metric::Visitors => c(1),
        Metric::Visits | Metric::Entries => visits.clone(),
        Metric::Bounces => c(3),
        Metric::BounceRate => round(&format!("{} * 100", per_visit(c(3))), 0),
        Metric::VisitDuration => round(&per_visit(c(4)), 0),
        Metric::ViewsPerVisit => round(&per_visit(c(5)), 2),
        Metric::TimeOnPage => when(
            format!("{page_visits} > 0"),
            round(&format!("{} / {page_visits} / 1000", c(7)), 0),
        ),
        Metric::ScrollDepth => when(
            format!("{} > 0", c(8)),
            round(&format!("{} / {}", c(9), c(8)), 0),
        ),
        Metric::Percentage => match total_visitors {
            Some(t) => when(
                format!("{t} > 0"),
                round(&format!("{} / {t} * 100", c(1)), 1),
            ),
            None => "NULL".into(),
        },
        Metric::VisitDurationMedian => when(format!("{visits} > 0"), c(10)),
        Metric::VisitDurationP75 => when(format!("{visits} > 0"), c(11)),
        Metric::VisitDurationP90 => when(format!("{visits} > 0"), c(12)),
        Metric::TimeOnPageMedian => when(format!("{page_visits} > 0"), c(13)),
        // Not among the components report SQL computes (as `answer::metric` has none there).
        Metric::Events | Metric::ConversionRate | Metric::GroupConversionRate => "NULL".into(),
    }
}

/// `answer::round` in SQL: `x` (not negative) to `decimals` places, half away from zero.
///
/// ClickHouse's `round` rounds floats half to even, and `floor(y + 0.5)` is off where the
/// addition itself rounds (`y` just under one half); the fractional part `y - floor(y)` is
/// exact, so comparing it with 0.5 rounds as Rust's `f64::round` does.
fn round(x: &str, decimals: i32) -> String {
    // The same scale as `10f64.powi(decimals)`: 1, 10, 100 are exact in both.
    let scale = 10i64.pow(decimals.unsigned_abs());
    let y = if decimals == 0 {
        format!("({x})")
    } else {
        format!("({x}) * {scale}")
    };
    let rounded = format!("(floor({y}) + ({y} - floor({y}) >= 0.5))");
    if decimals == 0 {
        rounded
    } else {
        format!("{rounded} / {scale}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_a_formula_over_the_components_it_reads() {
        let c = |i: usize| format!("c[{}]", i + 1);
        for m in Metric::ALL {
            let sql = metric(m, &c, Some("t"));
            assert!(!sql.is_empty(), "{m:?}");
        }
        assert_eq!(metric(Metric::Visitors, &c, None), "c[2]");
        assert_eq!(
            metric(Metric::BounceRate, &c, None),
            "(floor((if(c[3] = 0, 0, c[4] / c[3]) * 100)) + ((if(c[3] = 0, 0, c[4] / c[3]) * 100) \
             - floor((if(c[3] = 0, 0, c[4] / c[3]) * 100)) >= 0.5))"
        );
        assert_eq!(metric(Metric::Percentage, &c, None), "NULL");
    }
}
