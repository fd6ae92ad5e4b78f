//! A report period's unit rows: the visits stored once they ended (`visits` table, each slice at
//! its current version), and the still-open tail built from raw events: the visits whose
//! slice (the hour of their last event) is not stored yet, because they may still go on or the
//! visit job has not got to them. Every visit is in exactly one of the two.

use std::fmt::Write as _;

use super::visits::dimension;
use super::{datetime, lit, Scope};
use crate::stats::query::{Dimension, Filter, Op};
use crate::visits::units::{raw_units, stored_units, RawUnits, MAX_VISIT_SECONDS, UNIT_COLUMNS};

/// The unit rows of the visits in the period: stored, then the tail (or all built from raw
/// events when visits are not stored). `filters` only narrow the raw events read (the caller
/// still applies them to the rows).
pub fn units(s: &Scope, filters: &[Filter]) -> String {
    if !s.stored_visits {
        return raw_period_units(s, &narrow(filters, s));
    }
    let site = lit(s.site);
    let (from, to) = (datetime(s.from), datetime(s.to));
    format!(
        "{stored}\nUNION ALL\n{tail}",
        stored = stored_units(s.database, &site, &from, &to, s.timeout_seconds),
        tail = tail_units(s, &narrow(filters, s)),
    )
}

/// The first UTC hour with raw events whose slice is not stored: the tail starts there (now, in
/// effect, when every hour is stored).
fn tail_from(s: &Scope) -> String {
    let site = lit(s.site);
    format!(
        "(SELECT if(count() = 0, toDateTime(4294967295, 'UTC'), min(h)) FROM (
            SELECT DISTINCT toStartOfHour(ts) AS h FROM {db}.events WHERE site = {site}
        ) WHERE h NOT IN (SELECT slice FROM {db}.visit_slices WHERE site = {site} AND done = 1))",
        db = s.database,
    )
}

/// The tail: visits of visitors active since [`tail_from`], built from their raw events as far
/// back as such a visit can start, kept when their slice is not stored.
fn tail_units(s: &Scope, narrow: &str) -> String {
    let site = lit(s.site);
    let from = tail_from(s);
    let events = format!("{}.events", s.database);
    let reach = MAX_VISIT_SECONDS + i64::from(s.timeout_seconds);
    let narrow = format!(
        "\n                AND visitor IN (SELECT visitor FROM {events} WHERE site = {site} \
         AND ts >= {from}){narrow}"
    );
    let raw = raw_units(&RawUnits {
        events: &events,
        site: &site,
        tz: &lit(s.tz),
        timeout_seconds: s.timeout_seconds,
        bounce_ms: s.bounce_ms,
        lo: &format!("{from} - {reach}"),
        hi: "toDateTime(4294967295, 'UTC')",
        narrow: &narrow,
    });
    format!(
        "SELECT {columns}, pages
FROM
(
{raw}
)
WHERE ts >= {lo} AND ts < {hi} AND slice >= {from}
    AND slice NOT IN (SELECT slice FROM {db}.visit_slices WHERE site = {site} AND done = 1)",
        columns = UNIT_COLUMNS.join(", "),
        lo = datetime(s.from),
        hi = datetime(s.to),
        db = s.database,
    )
}

/// Every visit with a record in the period, built from raw events: those from as far before
/// the period as a visit can start, to as far after it as one can last.
fn raw_period_units(s: &Scope, narrow: &str) -> String {
    let reach = jiff::SignedDuration::from_secs(MAX_VISIT_SECONDS + i64::from(s.timeout_seconds));
    let site = lit(s.site);
    let events = format!("{}.events", s.database);
    let raw = raw_units(&RawUnits {
        events: &events,
        site: &site,
        tz: &lit(s.tz),
        timeout_seconds: s.timeout_seconds,
        bounce_ms: s.bounce_ms,
        lo: &datetime(s.from - reach),
        hi: &datetime(s.to + reach),
        narrow,
    });
    format!(
        "SELECT {columns}, pages
FROM
(
{raw}
)
WHERE ts >= {lo} AND ts < {hi}",
        columns = UNIT_COLUMNS.join(", "),
        lo = datetime(s.from),
        hi = datetime(s.to),
    )
}

/// A dimension's value computed from `events` columns, for the filters [`narrow`] can use.
fn event_dimension(d: Dimension, s: &Scope) -> Option<String> {
    Some(match d {
        Dimension::Page | Dimension::EntryPage | Dimension::ExitPage => "path".into(),
        Dimension::Referrer => dimension(d, s).replace("referrer", "referrer_host"),
        Dimension::Device => dimension(d, s).replace("device", "if(screen != '', screen, device)"),
        Dimension::Hostname
        | Dimension::Source
        | Dimension::UtmSource
        | Dimension::UtmMedium
        | Dimension::UtmCampaign
        | Dimension::UtmContent
        | Dimension::UtmTerm
        | Dimension::Country
        | Dimension::Browser
        | Dimension::Os => dimension(d, s),
        _ => return None,
    })
}

/// Narrows the raw events the tail reads to visitors that have at least one event matching each
/// positive top-level filter (`is`, `contains`, `matches`): a visit, or a pageview, can only
/// match if one of its visitor's events does. Exact filtering happens on the unit rows; this
/// only skips building visits that cannot match.
fn narrow(filters: &[Filter], s: &Scope) -> String {
    let mut out = String::new();
    for f in filters {
        let Filter::Leaf {
            op,
            dimension: d,
            values,
            case_sensitive,
        } = f
        else {
            continue;
        };
        if !matches!(op, Op::Is | Op::Contains | Op::Matches) {
            continue;
        }
        let Some(expr) = event_dimension(*d, s) else {
            continue;
        };
        let _ = write!(
            out,
            "\n                AND visitor IN (SELECT visitor FROM {db}.events WHERE site = {site} \
             AND {cond})",
            db = s.database,
            site = lit(s.site),
            cond = super::visits::leaf(*op, &expr, values, *case_sensitive),
        );
    }
    out
}

/// Pageviews (component 0) and visitors (component 1) of the period straight from raw events,
/// in the shape of the grouped query: what "realtime" asks for, without building visits (each
/// pageview belongs to a visit, and `day_visitor` is derived from the hash the same way).
pub fn recent_pageviews(s: &Scope) -> String {
    format!(
        "SELECT CAST([] AS Array(String)) AS dims, [toFloat64(countIf(name = 'pageview')),
    toFloat64(uniqExactIf(sipHash64(visitor, toDate(ts, {tz})), name = 'pageview'))] AS comps
FROM {db}.events
WHERE site = {site} AND ts >= {from} AND ts < {to}",
        tz = lit(s.tz),
        db = s.database,
        site = lit(s.site),
        from = datetime(s.from),
        to = datetime(s.to),
    )
}
