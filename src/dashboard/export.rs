//! Each dashboard panel's numbers as a CSV download (`BASE/csv/PANEL?VIEW`): the panel's own
//! query, run by the engine, written by the stats API's CSV writer (`stats::api`), so a header
//! row of the API's names and the values its JSON has. What a panel shows, the CSV holds, in the
//! panel's order: breakdown tables with all their rows (the page shows the first ten), the time
//! series with every bucket of the period (0 where the engine has no row, as the chart draws
//! it), all 24 hours, all 7 × 24 weekday-hour cells, the duration buckets in their natural
//! order, and the headline with its comparison.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::panels::{Mode, Queries, Reports, DURATION_BUCKETS};
use super::view::View;
use crate::error::StatsError;
use crate::stats::api::{answer_csv, dimension_value, metric_value, write_csv};
use crate::stats::query::{Query, MAX_LIMIT};

/// A CSV file: its name and content.
pub struct CsvFile {
    pub name: String,
    pub body: String,
}

/// What a panel's rows are.
enum Shape {
    /// The engine's rows as they come.
    Rows,
    /// Every time label of the period.
    Series,
    /// Hours 0–23.
    Hours,
    /// Weekdays 1–7 × hours 0–23.
    WeekHours,
    /// The duration buckets in their natural order.
    Buckets,
}

/// The query of `panel` in this view, and how its rows are laid out; `None` for a panel this
/// page does not have.
fn query_of(
    view: &View,
    mode: Mode,
    (goals, prop): (bool, Option<&str>),
    panel: &str,
) -> Option<(Query, Shape)> {
    let q = Queries::of(view, mode, goals, prop);
    Some(match panel {
        "headline" => (q.headline, Shape::Rows),
        "over-time" => (q.series, Shape::Series),
        "heatmap" => (q.heatmap, Shape::WeekHours),
        "hours" => (q.hours, Shape::Hours),
        "durations" => (q.durations?, Shape::Buckets),
        table => {
            let i = q.breakdowns.iter().position(|b| b.id == table)?;
            let mut query = q.tables.into_iter().nth(i)?;
            // All rows, not only the ten the page shows.
            query.limit = MAX_LIMIT;
            query.total_rows = false;
            (query, Shape::Rows)
        }
    })
}

/// `PANEL` of `view` as CSV; `None` when there is no such panel.
pub async fn panel(
    reports: &Reports,
    view: &View,
    mode: Mode,
    panel: &str,
    now: Timestamp,
) -> Option<Result<CsvFile, StatsError>> {
    let site = (
        reports.has_goals(&view.site),
        view.shown_prop(reports.prop_keys(&view.site)),
    );
    let (query, shape) = query_of(view, mode, site, panel)?;
    let answer = match reports.answer(&query, now).await {
        Ok(a) => a,
        Err(e) => return Some(Err(e)),
    };
    let body = match shape {
        Shape::Rows => answer_csv(&query, &answer),
        shape => {
            let (header, rows) = filled(&query, &answer, shape);
            write_csv(&header, &rows)
        }
    };
    let [from, to] = answer.period.echo();
    Some(Ok(CsvFile {
        name: file_name(&[
            &view.site,
            panel,
            from.get(..10).unwrap_or(""),
            to.get(..10).unwrap_or(""),
        ]),
        body,
    }))
}

/// The rows of a panel that shows every bucket: the engine's value where it has a row, 0 where
/// it has none.
fn filled(q: &Query, a: &crate::stats::Answer, shape: Shape) -> (Vec<String>, Vec<Vec<Value>>) {
    let mut header: Vec<String> = a.dimensions.iter().map(|d| d.name().to_string()).collect();
    header.extend(q.metrics.iter().map(|m| m.name().to_string()));
    let keys: Vec<Vec<String>> = match shape {
        Shape::Series => a
            .time_labels
            .clone()
            .unwrap_or_else(|| {
                a.rows
                    .iter()
                    .filter_map(|r| r.dims.first().cloned())
                    .collect()
            })
            .into_iter()
            .map(|l| vec![l])
            .collect(),
        Shape::Hours => (0..24).map(|h| vec![h.to_string()]).collect(),
        Shape::WeekHours => (1..=7)
            .flat_map(|w| (0..24).map(move |h| vec![w.to_string(), h.to_string()]))
            .collect(),
        Shape::Buckets => DURATION_BUCKETS
            .iter()
            .map(|b| vec![b.to_string()])
            .collect(),
        Shape::Rows => a.rows.iter().map(|r| r.dims.clone()).collect(),
    };
    let rows = keys
        .into_iter()
        .map(|key| {
            let row = a.rows.iter().find(|r| r.dims == key);
            let mut cells: Vec<Value> = a
                .dimensions
                .iter()
                .zip(&key)
                .map(|(d, v)| dimension_value(*d, v))
                .collect();
            cells.extend(q.metrics.iter().enumerate().map(|(i, m)| match row {
                Some(r) => metric_value(*m, r.metrics.get(i).copied().flatten()),
                None => json!(0),
            }));
            cells
        })
        .collect();
    (header, rows)
}

/// A download's file name from its parts: letters, digits, `.` and `-` kept, anything else
/// (from a site name) written as `_`, so the name is safe in a `Content-Disposition` header.
fn file_name(parts: &[&str]) -> String {
    let safe: Vec<String> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .collect();
    format!("{}.csv", safe.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_of_the_page_has_a_query() {
        use crate::stats::query::Dimension;
        let view = View::parse("/d".into(), "a.example".into(), None).unwrap();
        for panel in [
            "headline",
            "over-time",
            "pages",
            "sources",
            "campaigns",
            "countries",
            "devices",
            "browsers",
            "oses",
            "heatmap",
            "hours",
            "durations",
            "goals",
            "props",
        ] {
            assert!(
                query_of(&view, Mode::Visits, (true, Some("author")), panel).is_some(),
                "{panel}"
            );
        }
        let site = (true, Some("author"));
        assert!(query_of(&view, Mode::Visits, site, "nope").is_none());
        assert!(query_of(&view, Mode::Aggregate, site, "durations").is_none());
        assert!(query_of(&view, Mode::Visits, (true, None), "props").is_none());
        let (q, _) = query_of(&view, Mode::Visits, site, "pages").unwrap();
        assert_eq!((q.limit, q.total_rows), (MAX_LIMIT, false));
        // The properties table of the shown property, all its rows.
        let (q, _) = query_of(&view, Mode::Visits, site, "props").unwrap();
        assert_eq!(q.prop_keys, ["author"]);
        assert_eq!(q.dimensions, [Dimension::Prop(0)]);
        assert_eq!(q.limit, MAX_LIMIT);
    }

    #[test]
    fn file_names_are_safe_in_a_header() {
        assert_eq!(
            file_name(&["a.example", "pages", "2026-03-01", "2026-03-31"]),
            "a.example_pages_2026-03-01_2026-03-31.csv"
        );
        assert_eq!(file_name(&["a\"b\r\n;é", "x"]), "a_b_____x.csv");
    }
}
