//! The stats API's JSON (`POST /api/v2/query`): a request body parsed and validated into a
//! typed [`Query`], and a typed [`Answer`] written back as Plausible-v2-shaped JSON. This is the
//! only place stats JSON is read or written; everything behind it is typed.
//!
//! Parsing is strict, as in Plausible: unknown keys, metrics and dimensions are a 400 with a
//! message that names the offending item, so a script learns what tally does not store (such as
//! `visit:city`) instead of receiving an empty answer.
//!
//! The same answer as CSV ([`answer_csv`], for `Accept: text/csv`; also the dashboard's panel
//! downloads): a header row of the API's names, then the rows with the very values the JSON
//! has. Text that a spreadsheet would run as a formula is defused ([`write_csv`]).

use serde_json::{json, Map, Value};

use super::answer::Answer;
use super::period::Period;
use super::query::{
    Comparison, DateRange, Dimension, Direction, Filter, Metric, Op, OrderKey, Query,
    MAX_DIMENSIONS, MAX_LIMIT,
};
use crate::error::StatsError;

/// A parsed request: the typed query, and its filters as sent (echoed back in the answer).
#[derive(Debug, Clone)]
pub struct Request {
    pub query: Query,
    pub filters_json: Value,
    /// `include.imports` was sent: the answer then says `meta.imports_included: false` (tally
    /// has no imported data), as Plausible's does.
    pub imports: bool,
}

fn bad<T>(msg: impl Into<String>) -> Result<T, StatsError> {
    Err(StatsError::Invalid(msg.into()))
}

impl Request {
    /// Parses and validates a request body.
    pub fn parse(body: &[u8]) -> Result<Request, StatsError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| StatsError::Invalid(format!("#: invalid JSON ({e})")))?;
        let Value::Object(obj) = v else {
            return bad("#: the query must be a JSON object");
        };
        const KEYS: [&str; 8] = [
            "site_id",
            "metrics",
            "date_range",
            "dimensions",
            "filters",
            "order_by",
            "include",
            "pagination",
        ];
        if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return bad(format!("#: unknown property {k:?}"));
        }
        let site_id = match obj.get("site_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return bad(
                "Missing site ID. Please provide the required site_id parameter with your request.",
            ),
        };
        let metrics = parse_metrics(obj.get("metrics"))?;
        let date_range = parse_date_range(obj.get("date_range"))?;
        let mut keys = PropKeys::default();
        let dimensions = parse_dimensions(obj.get("dimensions"), &mut keys)?;
        let filters: Vec<Filter> = match obj.get("filters") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, f)| parse_filter(f, &format!("#/filters/{i}"), 0, &mut keys))
                .collect::<Result<_, _>>()?,
            Some(_) => return bad("#/filters: must be an array"),
        };
        let order_by = parse_order_by(obj.get("order_by"), &metrics, &dimensions, &keys)?;
        check_conversions(&metrics, &dimensions, &filters)?;
        let (time_labels, total_rows, comparison, imports) = parse_include(obj.get("include"))?;
        if time_labels && !dimensions.iter().any(|d| d.is_time_series()) {
            return bad("Invalid include.time_labels: requires a time dimension.");
        }
        let (limit, offset) = parse_pagination(obj.get("pagination"))?;
        let query = Query {
            site_id,
            metrics,
            date_range,
            dimensions,
            filters,
            order_by,
            time_labels,
            total_rows,
            comparison,
            limit,
            offset,
            prop_keys: keys.0,
        };
        Ok(Request {
            query,
            filters_json: obj
                .get("filters")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
            imports,
        })
    }
}

fn parse_metrics(v: Option<&Value>) -> Result<Vec<Metric>, StatsError> {
    let Some(Value::Array(items)) = v else {
        return bad("#/metrics: required, a non-empty array of metric names");
    };
    if items.is_empty() {
        return bad("#/metrics: required, a non-empty array of metric names");
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = item.as_str().unwrap_or_default();
        let Some(m) = Metric::from_name(name) else {
            return bad(format!("#/metrics/{i}: Invalid metric {item}"));
        };
        if out.contains(&m) {
            return bad("#/metrics: Expected items to be unique but they were not.");
        }
        out.push(m);
    }
    Ok(out)
}

/// The custom property keys a request names, in order of first mention (`Dimension::Prop`
/// indexes them).
#[derive(Default)]
struct PropKeys(Vec<String>);

/// Longest custom property key asked for (Plausible's limit on stored keys).
const MAX_PROP_KEY: usize = 300;

impl PropKeys {
    /// The dimension of an API name, `event:props:KEY` included.
    fn dimension(&mut self, name: &str, at: &str) -> Result<Option<Dimension>, StatsError> {
        let Some(key) = name.strip_prefix("event:props:") else {
            return Ok(Dimension::from_name(name));
        };
        if key.is_empty() || key.len() > MAX_PROP_KEY {
            return bad(format!(
                "{at}: a custom property key is 1 to {MAX_PROP_KEY} bytes"
            ));
        }
        let i = match self.0.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.0.push(key.to_string());
                self.0.len() - 1
            }
        };
        match u8::try_from(i) {
            Ok(i) => Ok(Some(Dimension::Prop(i))),
            Err(_) => bad(format!("{at}: too many custom property keys")),
        }
    }

    /// The dimension of a name without adding a key (for `order_by`).
    fn known(&self, name: &str) -> Option<Dimension> {
        match name.strip_prefix("event:props:") {
            Some(key) => self
                .0
                .iter()
                .position(|k| k == key)
                .and_then(|i| u8::try_from(i).ok())
                .map(Dimension::Prop),
            None => Dimension::from_name(name),
        }
    }
}

/// Metrics that count conversions: they need an `event:goal` or `event:props:*` filter or
/// dimension (Plausible asks for a goal; a custom property is the other kind of conversion).
const CONVERSION_METRICS: [Metric; 2] = [Metric::ConversionRate, Metric::GroupConversionRate];

/// What a report of conversions can count: converted visitors, conversions, the pageviews
/// among them (a page goal's, or those carrying a pageview prop), and the rates.
const METRICS_OF_CONVERSIONS: [Metric; 5] = [
    Metric::Visitors,
    Metric::Pageviews,
    Metric::Events,
    Metric::ConversionRate,
    Metric::GroupConversionRate,
];

/// Checks the combinations of goals, custom properties and metrics tally answers.
fn check_conversions(
    metrics: &[Metric],
    dimensions: &[Dimension],
    filters: &[Filter],
) -> Result<(), StatsError> {
    let conversions =
        dimensions.iter().any(|d| d.is_conversion()) || filters.iter().any(Filter::has_conversion);
    if let Some(m) = metrics.iter().find(|m| CONVERSION_METRICS.contains(m)) {
        if !conversions {
            return bad(format!(
                "Metric `{}` can only be queried with event:goal or event:props filters or dimensions.",
                m.name()
            ));
        }
    }
    if conversions {
        if let Some(m) = metrics.iter().find(|m| !METRICS_OF_CONVERSIONS.contains(m)) {
            return bad(format!(
                "#/metrics: {} cannot be queried with event:goal or event:props filters or \
                 dimensions in tally; such a report counts conversions (visitors, pageviews, \
                 events, conversion_rate, group_conversion_rate)",
                m.name()
            ));
        }
    }
    Ok(())
}

fn parse_dimensions(v: Option<&Value>, keys: &mut PropKeys) -> Result<Vec<Dimension>, StatsError> {
    let items = match v {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return bad("#/dimensions: must be an array"),
    };
    if items.len() > MAX_DIMENSIONS {
        return bad(format!("#/dimensions: at most {MAX_DIMENSIONS} dimensions"));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = item.as_str().unwrap_or_default();
        let Some(d) = keys.dimension(name, &format!("#/dimensions/{i}"))? else {
            return bad(format!(
                "#/dimensions/{i}: Invalid dimension {item}{}",
                not_stored_hint(name)
            ));
        };
        if out.contains(&d) {
            return bad("#/dimensions: Expected items to be unique but they were not.");
        }
        out.push(d);
    }
    if out.iter().filter(|d| d.is_time_series()).count() > 1 {
        return bad(
            "#/dimensions: at most one of time, time:hour, time:day, time:week, time:month",
        );
    }
    Ok(out)
}

/// Says why a Plausible dimension is refused when tally deliberately does not store it.
fn not_stored_hint(name: &str) -> &'static str {
    match name {
        "visit:city" | "visit:city_name" | "visit:region" | "visit:region_name" => {
            ": tally stores the country only (location no finer than the country, by design)"
        }
        "visit:browser_version" | "visit:os_version" | "visit:screen" => {
            ": tally stores browser, OS and device classes only"
        }
        "event:name" | "visit:entry_page_hostname" | "visit:exit_page_hostname" => {
            ": not supported by tally"
        }
        "segment" => ": tally has no saved segments; write the segment's filters into the query",
        _ => "",
    }
}

fn parse_date_range(v: Option<&Value>) -> Result<DateRange, StatsError> {
    let invalid = |v: &Value| StatsError::Invalid(format!("#/date_range: Invalid date range {v}"));
    match v {
        None => bad("#/date_range: required"),
        Some(Value::String(s)) => {
            let r = match s.as_str() {
                "day" | "today" => DateRange::Day,
                "yesterday" => DateRange::Yesterday,
                "month" => DateRange::Month,
                "year" => DateRange::Year,
                "all" => DateRange::All,
                "realtime" => DateRange::Realtime,
                "24h" => DateRange::Last24Hours,
                other => {
                    let n = |suffix: &str, max: u32| {
                        other
                            .strip_suffix(suffix)
                            .and_then(|n| n.parse::<u32>().ok())
                            .filter(|n| (1..=max).contains(n))
                    };
                    if let Some(n) = n("mo", 100) {
                        DateRange::LastMonths(n)
                    } else if let Some(n) = n("d", 5000) {
                        DateRange::LastDays(n)
                    } else {
                        return Err(invalid(v.unwrap()));
                    }
                }
            };
            Ok(r)
        }
        Some(Value::Array(items)) if items.len() == 2 => {
            let a = items[0].as_str().ok_or_else(|| invalid(v.unwrap()))?;
            let b = items[1].as_str().ok_or_else(|| invalid(v.unwrap()))?;
            // jiff would read the date out of a datetime too, so only bare dates count as dates.
            let date = |s: &str| {
                (s.len() == 10)
                    .then(|| s.parse::<jiff::civil::Date>().ok())
                    .flatten()
            };
            if let (Some(a), Some(b)) = (date(a), date(b)) {
                if a > b {
                    return bad("#/date_range: the first date is after the last");
                }
                return Ok(DateRange::Dates(a, b));
            }
            match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
                (Ok(a), Ok(b)) if a <= b => Ok(DateRange::Instants(a, b)),
                (Ok(_), Ok(_)) => bad("#/date_range: the first datetime is after the last"),
                _ => Err(invalid(v.unwrap())),
            }
        }
        Some(other) => Err(invalid(other)),
    }
}

/// Filters nest at most this deep, so a hostile query cannot build a huge SQL expression.
const MAX_FILTER_DEPTH: usize = 5;
/// Values per filter leaf.
const MAX_FILTER_VALUES: usize = 100;

fn parse_filter(
    v: &Value,
    at: &str,
    depth: usize,
    keys: &mut PropKeys,
) -> Result<Filter, StatsError> {
    if depth > MAX_FILTER_DEPTH {
        return bad(format!(
            "{at}: filters nest at most {MAX_FILTER_DEPTH} deep"
        ));
    }
    let invalid = || StatsError::Invalid(format!("{at}: Invalid filter {v}"));
    let Value::Array(items) = v else {
        return Err(invalid());
    };
    let op = items.first().and_then(Value::as_str).ok_or_else(invalid)?;
    match op {
        "and" | "or" => {
            let Some(Value::Array(children)) = items.get(1) else {
                return Err(invalid());
            };
            if items.len() != 2 || children.is_empty() {
                return Err(invalid());
            }
            let children = children
                .iter()
                .enumerate()
                .map(|(i, c)| parse_filter(c, &format!("{at}/1/{i}"), depth + 1, keys))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Filter::And(children)
            } else {
                Filter::Or(children)
            })
        }
        "not" => {
            if items.len() != 2 {
                return Err(invalid());
            }
            Ok(Filter::Not(Box::new(parse_filter(
                &items[1],
                &format!("{at}/1"),
                depth + 1,
                keys,
            )?)))
        }
        "is" | "is_not" | "contains" | "contains_not" | "matches" | "matches_not" => {
            let op = match op {
                "is" => Op::Is,
                "is_not" => Op::IsNot,
                "contains" => Op::Contains,
                "contains_not" => Op::ContainsNot,
                "matches" => Op::Matches,
                _ => Op::MatchesNot,
            };
            if !(3..=4).contains(&items.len()) {
                return Err(invalid());
            }
            let name = items[1].as_str().ok_or_else(invalid)?;
            let Some(dimension) = keys.dimension(name, at)? else {
                return bad(format!(
                    "{at}: Invalid filter dimension {name:?}{}",
                    not_stored_hint(name)
                ));
            };
            if dimension.is_time() {
                return bad(format!("{at}: time dimensions cannot be filtered"));
            }
            // Goals are matched by name among the configured ones (Plausible's rule too).
            if dimension == Dimension::Goal && !matches!(op, Op::Is | Op::Contains) {
                return bad(format!(
                    "{at}: only is and contains are valid for event:goal"
                ));
            }
            let Value::Array(raw) = &items[2] else {
                return Err(invalid());
            };
            if raw.is_empty() || raw.len() > MAX_FILTER_VALUES {
                return bad(format!(
                    "{at}: a filter takes 1 to {MAX_FILTER_VALUES} values"
                ));
            }
            let values = raw
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or_else(invalid))
                .collect::<Result<Vec<_>, _>>()?;
            let mut case_sensitive = true;
            if let Some(m) = items.get(3) {
                if matches!(op, Op::Matches | Op::MatchesNot) {
                    return bad(format!("{at}: matches filters take no modifiers"));
                }
                let Value::Object(m) = m else {
                    return Err(invalid());
                };
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("case_sensitive", Value::Bool(b)) => case_sensitive = *b,
                        _ => return bad(format!("{at}: unknown filter modifier {k:?}")),
                    }
                }
            }
            if matches!(op, Op::Matches | Op::MatchesNot) {
                for value in &values {
                    regex_syntax::Parser::new().parse(value).map_err(|_| {
                        StatsError::Invalid(format!("{at}: invalid regex {value:?}"))
                    })?;
                }
            }
            Ok(Filter::Leaf {
                op,
                dimension,
                values,
                case_sensitive,
            })
        }
        _ => Err(invalid()),
    }
}

fn parse_order_by(
    v: Option<&Value>,
    metrics: &[Metric],
    dimensions: &[Dimension],
    keys: &PropKeys,
) -> Result<Vec<(OrderKey, Direction)>, StatsError> {
    let items = match v {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return bad("#/order_by: must be an array"),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let pair = item.as_array().filter(|p| p.len() == 2);
        let (Some(name), Some(dir)) = (
            pair.and_then(|p| p[0].as_str()),
            pair.and_then(|p| p[1].as_str()),
        ) else {
            return bad(format!("#/order_by/{i}: Invalid value in order_by {item}"));
        };
        let dir = match dir {
            "asc" => Direction::Asc,
            "desc" => Direction::Desc,
            _ => return bad(format!("#/order_by/{i}: Invalid value in order_by {item}")),
        };
        let key = if let Some(m) = Metric::from_name(name).filter(|m| metrics.contains(m)) {
            OrderKey::Metric(m)
        } else if let Some(d) = keys.known(name).filter(|d| dimensions.contains(d)) {
            OrderKey::Dimension(d)
        } else {
            return bad(format!(
                "Invalid order_by entry {item}. Entry is not a queried metric or dimension."
            ));
        };
        out.push((key, dir));
    }
    Ok(out)
}

/// `(time_labels, total_rows, comparison, imports)`.
type Include = (bool, bool, Option<Comparison>, bool);

fn parse_include(v: Option<&Value>) -> Result<Include, StatsError> {
    let obj = match v {
        None => return Ok((false, false, None, false)),
        Some(Value::Object(o)) => o,
        Some(_) => return bad("#/include: must be an object"),
    };
    let (mut labels, mut total, mut cmp, mut imports) = (false, false, None, false);
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("time_labels", Value::Bool(b)) => labels = *b,
            ("total_rows", Value::Bool(b)) => total = *b,
            // Imported data does not exist in tally; accepted so Plausible scripts run unchanged,
            // and answered with `meta.imports_included: false`.
            ("imports", Value::Bool(_)) => imports = true,
            ("comparisons", Value::Null) => {}
            ("comparisons", Value::Object(c)) => {
                cmp =
                    match c.get("mode").and_then(Value::as_str) {
                        Some("previous_period") => Some(Comparison::PreviousPeriod),
                        Some("year_over_year") => Some(Comparison::YearOverYear),
                        _ => return bad(
                            "#/include/comparisons: mode must be previous_period or year_over_year",
                        ),
                    };
            }
            _ => return bad(format!("#/include: invalid property {k:?}")),
        }
    }
    Ok((labels, total, cmp, imports))
}

fn parse_pagination(v: Option<&Value>) -> Result<(usize, usize), StatsError> {
    let obj = match v {
        None => return Ok((MAX_LIMIT, 0)),
        Some(Value::Object(o)) => o,
        Some(_) => return bad("#/pagination: must be an object"),
    };
    let mut limit = MAX_LIMIT;
    let mut offset = 0;
    for (k, v) in obj {
        let n = v.as_u64();
        match (k.as_str(), n) {
            ("limit", Some(n)) if (1..=MAX_LIMIT as u64).contains(&n) => limit = n as usize,
            ("offset", Some(n)) if n <= 1_000_000 => offset = n as usize,
            _ => {
                return bad(format!(
                    "#/pagination: {k:?} must be a number (limit 1 to {MAX_LIMIT}, offset 0 to 1000000)"
                ))
            }
        }
    }
    Ok((limit, offset))
}

impl Request {
    /// The answer as the stats API writes it: `results` (metrics and dimensions in the order
    /// asked, a `comparison` per row when asked), `meta` (time labels and row count when asked)
    /// and `query`, the request as run.
    pub fn answer_json(&self, a: &Answer) -> Value {
        let q = &self.query;
        let results: Vec<Value> = a
            .rows
            .iter()
            .map(|row| {
                let mut r = Map::new();
                r.insert("metrics".into(), metric_values(&q.metrics, &row.metrics));
                r.insert(
                    "dimensions".into(),
                    dimension_values(&a.dimensions, &row.dims),
                );
                if let Some(c) = &row.compared {
                    r.insert(
                        "comparison".into(),
                        json!({
                            "dimensions": dimension_values(&a.dimensions, &c.dims),
                            "metrics": metric_values(&q.metrics, &c.metrics),
                            "change": c.change,
                        }),
                    );
                }
                Value::Object(r)
            })
            .collect();
        let mut meta = Map::new();
        if let Some(labels) = &a.time_labels {
            meta.insert("time_labels".into(), json!(labels));
        }
        if q.total_rows {
            meta.insert("total_rows".into(), json!(a.total_rows));
        }
        if self.imports {
            meta.insert("imports_included".into(), json!(false));
        }
        json!({
            "results": results,
            "meta": meta,
            "query": echo(self, &a.period, &a.dimensions, &a.order),
        })
    }
}

/// The answer as a table: a header of the API's names (dimensions as run, then metrics; with a
/// comparison `comparison:NAME` for the earlier row's dimensions and metrics, and
/// `change:METRIC`), and a row per result with the values the JSON answer has (`null` as an
/// empty cell).
pub fn answer_table(q: &Query, a: &Answer) -> (Vec<String>, Vec<Vec<Value>>) {
    let compared = q.comparison.is_some();
    let mut header: Vec<String> = a.dimensions.iter().map(|d| q.dimension_name(*d)).collect();
    header.extend(q.metrics.iter().map(|m| m.name().to_string()));
    if compared {
        header.extend(
            a.dimensions
                .iter()
                .map(|d| format!("comparison:{}", q.dimension_name(*d))),
        );
        header.extend(q.metrics.iter().map(|m| format!("comparison:{}", m.name())));
        header.extend(q.metrics.iter().map(|m| format!("change:{}", m.name())));
    }
    let array = |v: Value| match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    let rows = a
        .rows
        .iter()
        .map(|row| {
            let mut cells = array(dimension_values(&a.dimensions, &row.dims));
            cells.extend(array(metric_values(&q.metrics, &row.metrics)));
            if compared {
                match &row.compared {
                    Some(c) => {
                        cells.extend(array(dimension_values(&a.dimensions, &c.dims)));
                        cells.extend(array(metric_values(&q.metrics, &c.metrics)));
                        cells.extend(c.change.iter().map(|x| json!(x)));
                    }
                    None => cells.extend(std::iter::repeat_n(
                        Value::Null,
                        a.dimensions.len() + 2 * q.metrics.len(),
                    )),
                }
            }
            cells
        })
        .collect();
    (header, rows)
}

/// The answer as CSV (see [`answer_table`] and [`write_csv`]).
pub fn answer_csv(q: &Query, a: &Answer) -> String {
    let (header, rows) = answer_table(q, a);
    write_csv(&header, &rows)
}

/// Characters that make a spreadsheet read a cell as a formula when they start it (OWASP's
/// list): `=`, `+`, `-`, `@`, tab and carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV document (RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds a
/// comma, quote or line break, quotes doubled; written by the `csv` crate): `header`, then
/// `rows`. Numbers are written as the JSON answer writes them, `null` as an empty cell. Text
/// cells come from visitors (page paths, campaign names, sources), so one that starts like a
/// formula (`=HYPERLINK(…)`) gets a leading `'`, which spreadsheets show as text; the JSON
/// answer has the value exactly.
pub fn write_csv(header: &[String], rows: &[Vec<Value>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let text = |s: &str| -> String {
        if s.starts_with(FORMULA_STARTS) {
            format!("'{s}")
        } else {
            s.to_string()
        }
    };
    // Writing to a Vec cannot fail; the records are all of one length.
    let _ = w.write_record(header.iter().map(|h| text(h)));
    for row in rows {
        let cells = row.iter().map(|v| match v {
            Value::Null => String::new(),
            Value::String(s) => text(s),
            other => other.to_string(),
        });
        let _ = w.write_record(cells);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// A metric's value as the answer writes it (whole numbers without a fraction, `null`).
pub fn metric_value(m: Metric, v: Option<f64>) -> Value {
    number(Some(m), v)
}

/// A dimension's value as the answer writes it (hour of day and weekday as numbers).
pub fn dimension_value(d: Dimension, v: &str) -> Value {
    match (d.is_numeric(), v.parse::<i64>()) {
        (true, Ok(n)) => json!(n),
        _ => json!(v),
    }
}

/// A typed query as the stats API would receive it (the inverse of [`Request::parse`]): for
/// clients that keep queries as JSON, and for checking that typed callers ask valid questions.
pub fn query_json(q: &Query) -> Value {
    let date_range = match &q.date_range {
        DateRange::Day => json!("day"),
        DateRange::Yesterday => json!("yesterday"),
        DateRange::LastDays(n) => json!(format!("{n}d")),
        DateRange::LastMonths(n) => json!(format!("{n}mo")),
        DateRange::Month => json!("month"),
        DateRange::Year => json!("year"),
        DateRange::All => json!("all"),
        DateRange::Realtime => json!("realtime"),
        DateRange::Last24Hours => json!("24h"),
        DateRange::Dates(a, b) => json!([a.to_string(), b.to_string()]),
        DateRange::Instants(a, b) => json!([a.to_string(), b.to_string()]),
    };
    let mut body = json!({
        "site_id": q.site_id,
        "metrics": q.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "date_range": date_range,
    });
    if !q.dimensions.is_empty() {
        body["dimensions"] = json!(q
            .dimensions
            .iter()
            .map(|d| q.dimension_name(*d))
            .collect::<Vec<_>>());
    }
    if !q.filters.is_empty() {
        body["filters"] = Value::Array(q.filters.iter().map(|f| filter_json(q, f)).collect());
    }
    if !q.order_by.is_empty() {
        body["order_by"] = q
            .order_by
            .iter()
            .map(|(k, d)| {
                let name = match k {
                    OrderKey::Metric(m) => m.name().to_string(),
                    OrderKey::Dimension(d) => q.dimension_name(*d),
                };
                json!([name, if *d == Direction::Asc { "asc" } else { "desc" }])
            })
            .collect();
    }
    let mut include = Map::new();
    if q.time_labels {
        include.insert("time_labels".into(), json!(true));
    }
    if q.total_rows {
        include.insert("total_rows".into(), json!(true));
    }
    if let Some(c) = q.comparison {
        let mode = match c {
            Comparison::PreviousPeriod => "previous_period",
            Comparison::YearOverYear => "year_over_year",
        };
        include.insert("comparisons".into(), json!({ "mode": mode }));
    }
    if !include.is_empty() {
        body["include"] = Value::Object(include);
    }
    if (q.limit, q.offset) != (MAX_LIMIT, 0) {
        body["pagination"] = json!({"limit": q.limit, "offset": q.offset});
    }
    body
}

fn filter_json(q: &Query, f: &Filter) -> Value {
    match f {
        Filter::Leaf {
            op,
            dimension,
            values,
            case_sensitive,
        } => {
            let op = match op {
                Op::Is => "is",
                Op::IsNot => "is_not",
                Op::Contains => "contains",
                Op::ContainsNot => "contains_not",
                Op::Matches => "matches",
                Op::MatchesNot => "matches_not",
            };
            let mut leaf = vec![
                json!(op),
                json!(q.dimension_name(*dimension)),
                json!(values),
            ];
            if !case_sensitive {
                leaf.push(json!({"case_sensitive": false}));
            }
            Value::Array(leaf)
        }
        Filter::And(children) => {
            json!([
                "and",
                children
                    .iter()
                    .map(|f| filter_json(q, f))
                    .collect::<Vec<_>>()
            ])
        }
        Filter::Or(children) => json!([
            "or",
            children
                .iter()
                .map(|f| filter_json(q, f))
                .collect::<Vec<_>>()
        ]),
        Filter::Not(child) => json!(["not", filter_json(q, child)]),
    }
}

fn number(m: Option<Metric>, v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(x)
            if x.fract() == 0.0
                && m != Some(Metric::ViewsPerVisit)
                && m != Some(Metric::Percentage)
                && m != Some(Metric::ConversionRate)
                && m != Some(Metric::GroupConversionRate) =>
        {
            json!(x as i64)
        }
        Some(x) => json!(x),
    }
}

fn metric_values(metrics: &[Metric], values: &[Option<f64>]) -> Value {
    Value::Array(
        metrics
            .iter()
            .zip(values)
            .map(|(m, v)| number(Some(*m), *v))
            .collect(),
    )
}

fn dimension_values(dims: &[Dimension], values: &[String]) -> Value {
    Value::Array(
        dims.iter()
            .zip(values)
            .map(|(d, v)| dimension_value(*d, v))
            .collect(),
    )
}

fn echo(
    request: &Request,
    period: &Period,
    dims: &[Dimension],
    order: &[(OrderKey, Direction)],
) -> Value {
    let (q, filters_json) = (&request.query, &request.filters_json);
    let mut include = Map::new();
    if request.imports {
        include.insert("imports".into(), json!(true));
    }
    if q.time_labels {
        include.insert("time_labels".into(), json!(true));
    }
    if q.total_rows {
        include.insert("total_rows".into(), json!(true));
    }
    if let Some(c) = q.comparison {
        let mode = match c {
            Comparison::PreviousPeriod => "previous_period",
            Comparison::YearOverYear => "year_over_year",
        };
        include.insert("comparisons".into(), json!({ "mode": mode }));
    }
    let order: Vec<Value> = order
        .iter()
        .map(|(k, d)| {
            let name = match k {
                OrderKey::Metric(m) => m.name().to_string(),
                OrderKey::Dimension(d) => q.dimension_name(*d),
            };
            json!([name, if *d == Direction::Asc { "asc" } else { "desc" }])
        })
        .collect();
    json!({
        "site_id": q.site_id,
        "metrics": q.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "date_range": period.echo(),
        "filters": filters_json,
        "dimensions": dims.iter().map(|d| q.dimension_name(*d)).collect::<Vec<_>>(),
        "order_by": order,
        "include": include,
        "pagination": {"offset": q.offset, "limit": q.limit},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match Request::parse(body.as_bytes()) {
            Err(StatsError::Invalid(m)) => m,
            other => panic!("expected an error for {body}, got {other:?}"),
        }
    }

    #[test]
    fn a_plausible_query_parses() {
        let q = Request::parse(
            br#"{"site_id":"a.example","metrics":["visitors","bounce_rate"],"date_range":"7d",
                "dimensions":["event:page"],"filters":[["is","visit:country",["NL","BE"]],
                ["not",["contains","event:page",["/admin"],{"case_sensitive":false}]]],
                "order_by":[["visitors","desc"]],"include":{"total_rows":true},
                "pagination":{"limit":10,"offset":20}}"#,
        )
        .unwrap()
        .query;
        assert_eq!(q.metrics, vec![Metric::Visitors, Metric::BounceRate]);
        assert_eq!(q.date_range, DateRange::LastDays(7));
        assert_eq!(q.dimensions, vec![Dimension::Page]);
        assert_eq!(q.filters.len(), 2);
        assert!(q.total_rows);
        assert_eq!((q.limit, q.offset), (10, 20));
    }

    #[test]
    fn what_tally_does_not_store_is_a_clear_error() {
        let m = err(
            r#"{"site_id":"a","metrics":["visitors"],"date_range":"day","dimensions":["visit:city"]}"#,
        );
        assert!(
            m.contains("visit:city") && m.contains("country only"),
            "{m}"
        );
        let m = err(r#"{"site_id":"a","metrics":["events_per_cat"],"date_range":"day"}"#);
        assert!(m.contains("Invalid metric"), "{m}");
        let m = err(r#"{"site_id":"a","metrics":["visitors"],"date_range":"fortnight"}"#);
        assert!(m.contains("date_range"), "{m}");
        let m = err(r#"{"site_id":"a","metrics":["visitors"],"date_range":"day","colour":1}"#);
        assert!(m.contains("colour"), "{m}");
        let m = err(
            r#"{"site_id":"a","metrics":["visitors"],"date_range":"day","filters":[["matches","event:page",["("]]]}"#,
        );
        assert!(m.contains("regex"), "{m}");
        let m = err(
            r#"{"site_id":"a","metrics":["visitors"],"date_range":"day","order_by":[["pageviews","desc"]]}"#,
        );
        assert!(m.contains("not a queried metric"), "{m}");
    }

    #[test]
    fn date_ranges() {
        let p = |s: &str| {
            Request::parse(
                format!(r#"{{"site_id":"a","metrics":["visitors"],"date_range":{s}}}"#).as_bytes(),
            )
            .map(|r| r.query.date_range)
        };
        assert_eq!(p(r#""30d""#).unwrap(), DateRange::LastDays(30));
        assert_eq!(p(r#""6mo""#).unwrap(), DateRange::LastMonths(6));
        assert_eq!(p(r#""today""#).unwrap(), DateRange::Day);
        assert_eq!(p(r#""24h""#).unwrap(), DateRange::Last24Hours);
        assert_eq!(p(r#""28d""#).unwrap(), DateRange::LastDays(28));
        assert_eq!(p(r#""91d""#).unwrap(), DateRange::LastDays(91));
        assert_eq!(p(r#""12mo""#).unwrap(), DateRange::LastMonths(12));
        assert!(matches!(
            p(r#"["2026-03-01","2026-03-31"]"#).unwrap(),
            DateRange::Dates(..)
        ));
        assert!(matches!(
            p(r#"["2026-03-01T10:00:00+01:00","2026-03-01T12:00:00+01:00"]"#).unwrap(),
            DateRange::Instants(..)
        ));
        assert!(p(r#"["2026-03-31","2026-03-01"]"#).is_err());
        assert!(p(r#""0d""#).is_err());
    }

    #[test]
    fn csv_quotes_and_defuses_what_visitors_wrote() {
        let header = vec!["event:page".to_string(), "visitors".to_string()];
        let rows = vec![
            vec![json!("/a,b"), json!(3)],
            vec![json!("say \"hi\"\nthere"), json!(1.5)],
            vec![json!("=cmd|' /C calc'!A0"), Value::Null],
            vec![json!("+1"), json!(0)],
            vec![json!("-2"), json!(-4)],
            vec![json!("@SUM(A1)"), json!(2)],
            vec![json!("\tx"), json!(2)],
            vec![json!("\r=x"), json!(2)],
            vec![json!("a=b"), json!(2)],
        ];
        assert_eq!(
            write_csv(&header, &rows),
            "event:page,visitors\r\n\
             \"/a,b\",3\r\n\
             \"say \"\"hi\"\"\nthere\",1.5\r\n\
             '=cmd|' /C calc'!A0,\r\n\
             '+1,0\r\n\
             '-2,-4\r\n\
             '@SUM(A1),2\r\n\
             '\tx,2\r\n\
             \"'\r=x\",2\r\n\
             a=b,2\r\n"
        );
    }

    #[test]
    fn goals_and_props_parse_and_refuse_what_tally_cannot_count() {
        let q = Request::parse(
            br#"{"site_id":"a","metrics":["visitors","events","conversion_rate"],"date_range":"day",
                "dimensions":["event:goal","event:props:lang"],
                "filters":[["contains","event:goal",["Visit"]],["is","event:props:format",["pdf"]]],
                "order_by":[["event:props:lang","asc"]]}"#,
        )
        .unwrap()
        .query;
        assert_eq!(q.dimensions, vec![Dimension::Goal, Dimension::Prop(0)]);
        assert_eq!(q.prop_keys, ["lang", "format"]);
        assert_eq!(q.dimension_name(Dimension::Prop(1)), "event:props:format");
        assert_eq!(
            q.order_by,
            vec![(OrderKey::Dimension(Dimension::Prop(0)), Direction::Asc)]
        );
        assert!(q.counts_conversions());
        // The query as JSON names the keys again.
        let back = query_json(&q);
        assert_eq!(
            back["dimensions"],
            json!(["event:goal", "event:props:lang"])
        );
        assert_eq!(
            back["filters"][1],
            json!(["is", "event:props:format", ["pdf"]])
        );

        let m = err(r#"{"site_id":"a","metrics":["conversion_rate"],"date_range":"day"}"#);
        assert!(
            m.contains("conversion_rate") && m.contains("event:goal"),
            "{m}"
        );
        let m = err(
            r#"{"site_id":"a","metrics":["group_conversion_rate"],"date_range":"day","dimensions":["visit:source"]}"#,
        );
        assert!(m.contains("group_conversion_rate"), "{m}");
        let m = err(
            r#"{"site_id":"a","metrics":["bounce_rate"],"date_range":"day","dimensions":["event:goal"]}"#,
        );
        assert!(
            m.contains("bounce_rate cannot be queried with event:goal"),
            "{m}"
        );
        let m = err(
            r#"{"site_id":"a","metrics":["visitors"],"date_range":"day","filters":[["is_not","event:goal",["x"]]]}"#,
        );
        assert!(m.contains("only is and contains"), "{m}");
        let m = err(
            r#"{"site_id":"a","metrics":["visitors"],"date_range":"day","dimensions":["event:props:"]}"#,
        );
        assert!(m.contains("custom property key"), "{m}");
        // Plain `events` needs no goal.
        let q = Request::parse(br#"{"site_id":"a","metrics":["events"],"date_range":"day"}"#)
            .unwrap()
            .query;
        assert_eq!(q.metrics, vec![Metric::Events]);
        assert!(!q.counts_conversions());
    }

    #[test]
    fn deep_filters_are_refused() {
        let mut f = r#"["is","visit:country",["NL"]]"#.to_string();
        for _ in 0..10 {
            f = format!(r#"["not",{f}]"#);
        }
        let m = err(&format!(
            r#"{{"site_id":"a","metrics":["visitors"],"date_range":"day","filters":[{f}]}}"#
        ));
        assert!(m.contains("nest"), "{m}");
    }
}
