//! The stored event row: exactly the columns of `events` (`schema/0001_events.sql` + `0003`), nothing more.
//!
//! Everything in it is already reduced: there is no field that could hold an IP address, a
//! user agent or an unscrubbed URL, so the type itself is the first privacy check.

use serde::Serialize;

#[derive(Debug, Clone, clickhouse::Row, Serialize)]
pub struct EventRow {
    pub site: String,
    /// Unix seconds (ClickHouse `DateTime('UTC')`).
    pub ts: u32,
    pub visitor: u64,
    pub name: String,
    pub host: String,
    pub path: String,
    /// Allow-listed query parameters only, `k=v&…`.
    pub query: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub referrer_host: String,
    /// `utm_source`, else the referrer grouped (`Google`), else the referrer host; empty = direct.
    pub source: String,
    /// ISO 3166-1 alpha-2, or empty.
    pub country: String,
    pub device: &'static str,
    pub browser: String,
    pub os: String,
    /// Screen-size class from the reported width (`mobile` < 576 ≤ `tablet` < 992 ≤ `laptop`
    /// < 1440 ≤ `desktop`); the width itself is not stored.
    pub screen: &'static str,
    pub engaged_ms: u32,
    pub scroll_depth: u8,
    pub interactive: u8,
    pub props_keys: Vec<String>,
    pub props_values: Vec<String>,
    /// Random per event, for de-duplication of replays; identifies no one.
    pub event_id: u64,
}

/// Screen-size class of a CSS pixel width (Plausible's buckets, so numbers compare).
pub fn screen_class(width: Option<f64>) -> &'static str {
    match width {
        None => "",
        Some(w) if w < 576.0 => "mobile",
        Some(w) if w < 992.0 => "tablet",
        Some(w) if w < 1440.0 => "laptop",
        Some(_) => "desktop",
    }
}
