//! The Grafana dashboard `dashboards/tally-overview.json`, for the official ClickHouse data
//! source plugin: its variables, layout and panels. Each panel is a typed stats [`Query`] whose
//! SQL the report engine's builders write (`stats::sql::report`) over a scope of Grafana's
//! variables and macros, so the dashboard cannot drift from the engine. `tally
//! grafana-dashboard` prints it; a test keeps the committed file equal to its output.
//!
//! [`Query`]: crate::stats::Query

mod panels;

use serde_json::{json, Value};

use crate::config::file::Visits;
use crate::stats::sql::report::Unsupported;
use crate::stats::sql::{Scope, Sql};

/// The plugin's data source type.
pub const PLUGIN: &str = "grafana-clickhouse-datasource";

/// The dashboard's default time zone, in the `tz` variable and the dashboard's own setting.
const DEFAULT_TIME_ZONE: &str = "Europe/Amsterdam";

/// The scope of every panel: the `site` and `tz` variables, the time picker's range and the
/// visit settings as hidden constants. Grafana's range includes its last second (the plugin's
/// `$__timeFilter` writes `<= $__toTime`); tally's periods are `[from, to)`, so the period ends
/// the second after `$__toTime`. Tables are unqualified: the data source's default database is
/// read.
pub fn scope() -> Scope<'static> {
    Scope::expressions(
        "",
        Sql::fixed("${site:singlequote}"),
        Sql::fixed("${tz:singlequote}"),
        Sql::fixed("$__fromTime"),
        Sql::fixed("($__toTime + 1)"),
        Sql::fixed("${visit_timeout_s}"),
        Sql::fixed("${bounce_ms}"),
    )
}

/// The overview dashboard as JSON text (what `tally grafana-dashboard` prints).
pub fn overview_json() -> Result<String, Unsupported> {
    // `{:#}` is serde_json's pretty printing (two-space indent), which cannot fail for a Value.
    Ok(format!("{:#}\n", overview()?))
}

/// The overview dashboard.
pub fn overview() -> Result<Value, Unsupported> {
    let panels = panels::all(&scope())?;
    let datasource = json!({"type": PLUGIN, "uid": "${datasource}"});
    let site_sql = "SELECT site FROM (SELECT DISTINCT site FROM events UNION ALL \
                    SELECT DISTINCT site FROM rollup_days) GROUP BY site ORDER BY site";
    let visits = Visits::default();
    let constant = |name: &str, value: u64, description: &str| {
        let value = value.to_string();
        json!({
            "name": name, "type": "constant", "query": value, "hide": 2,
            "current": {"text": value, "value": value},
            "options": [{"selected": true, "text": value, "value": value}],
            "description": description,
        })
    };
    let templating = vec![
        json!({
            "name": "datasource", "label": "ClickHouse", "type": "datasource", "query": PLUGIN,
            "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [],
        }),
        json!({
            "name": "site", "label": "Site", "type": "query", "datasource": datasource,
            "query": site_sql, "definition": site_sql, "refresh": 1, "sort": 1,
            "multi": false, "includeAll": false, "current": {}, "hide": 0, "options": [],
            "regex": "",
            "description": "A site's domain, as in tally's [[sites]] domain.",
        }),
        json!({
            "name": "tz", "label": "Time zone", "type": "textbox", "query": DEFAULT_TIME_ZONE,
            "current": {"text": DEFAULT_TIME_ZONE, "value": DEFAULT_TIME_ZONE}, "hide": 0,
            "options": [{"selected": true, "text": DEFAULT_TIME_ZONE, "value": DEFAULT_TIME_ZONE}],
            "description": "The site's time_zone from tally's config (IANA name): days and \
                            hours are counted in it, and rolled-up days were computed in it.",
        }),
        // tally's defaults; a changed config needs the same change here (README).
        constant(
            "visit_timeout_s",
            u64::from(visits.timeout_minutes) * 60,
            "tally's visits.timeout_minutes x 60.",
        ),
        constant(
            "bounce_ms",
            u64::from(visits.bounce_engaged_seconds) * 1000,
            "tally's visits.bounce_engaged_seconds x 1000.",
        ),
    ];
    let panel_type =
        |id: &str, name: &str| json!({"type": "panel", "id": id, "name": name, "version": ""});
    Ok(json!({
        "__inputs": [],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
            {"type": "datasource", "id": PLUGIN, "name": "ClickHouse", "version": "4.0.0"},
            panel_type("stat", "Stat"),
            panel_type("timeseries", "Time series"),
            panel_type("table", "Table"),
            panel_type("piechart", "Pie chart"),
            panel_type("barchart", "Bar chart"),
        ],
        "uid": "tally-overview",
        "title": "tally: site overview",
        "description": "tally's reports for one site (visitors, pages, sources, countries, \
                        devices, peak hours, visit durations), the same numbers as its stats API.",
        "tags": ["tally", "web analytics"],
        "timezone": DEFAULT_TIME_ZONE,
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "",
        "time": {"from": "now-7d/d", "to": "now-1d/d"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": templating},
        "panels": panels,
    }))
}
