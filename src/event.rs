//! The stored event row: exactly the columns of `events` (`schema/0001_events.sql`, `0003`, `0005`), nothing more.
//!
//! Everything in it is already reduced: there is no field that could hold an IP address, a
//! user agent or an unscrubbed URL, so the type itself is the first privacy check.
//!
//! The columns whose values come from a small set (site, event kind, host, country, device,
//! browser, OS, screen) are shared (`Arc<str>`) or static (`Cow::Borrowed`) text, not a copy
//! per row: a row costs fewer allocations to build and fewer frees (each one wiped) to drop.
//! On the wire (ClickHouse RowBinary, the spool's JSON lines) they are plain strings as before.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Serialize for ClickHouse and the spool, Deserialize for reading the spool back.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct EventRow {
    /// The site's configured domain, shared with the config.
    pub site: Arc<str>,
    /// Unix seconds (ClickHouse `DateTime('UTC')`).
    pub ts: u32,
    /// The microsecond within that second: keeps the order of a visit's events within a second.
    /// Rows spooled before the column existed read back as 0.
    #[serde(default)]
    pub micros: u32,
    pub visitor: u64,
    /// Static for `pageview` and `engagement`; a custom event's own name otherwise.
    pub name: Cow<'static, str>,
    /// Shared with the config when it is one of the configured hosts (nearly always).
    pub host: Arc<str>,
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
    /// ISO 3166-1 alpha-2, or empty (static at ingest, owned when read back from the spool).
    pub country: Cow<'static, str>,
    /// A class name from a fixed set (borrowed at ingest, owned when read back from the spool).
    pub device: Cow<'static, str>,
    /// Browser and OS family, shared with the user-agent verdict cache (rows of one agent share
    /// one text).
    pub browser: Arc<str>,
    pub os: Arc<str>,
    /// Screen-size class from the reported width (`mobile` < 576 ≤ `tablet` < 992 ≤ `laptop`
    /// < 1440 ≤ `desktop`); the width itself is not stored.
    pub screen: Cow<'static, str>,
    pub engaged_ms: u32,
    pub scroll_depth: u8,
    pub interactive: u8,
    pub props_keys: Vec<String>,
    pub props_values: Vec<String>,
    /// Random per event, for de-duplication of replays; identifies no one.
    pub event_id: u64,
}

#[cfg(test)]
impl EventRow {
    /// A plausible pageview of `path` on www.example.org, for the unit tests of the modules that
    /// move rows around (spool, aggregate).
    pub(crate) fn example(path: &str) -> EventRow {
        EventRow {
            site: "www.example.org".into(),
            ts: 1_790_000_000,
            micros: 0,
            visitor: 42,
            name: "pageview".into(),
            host: "www.example.org".into(),
            path: path.into(),
            query: String::new(),
            utm_source: String::new(),
            utm_medium: String::new(),
            utm_campaign: String::new(),
            utm_content: String::new(),
            utm_term: String::new(),
            referrer_host: String::new(),
            source: String::new(),
            country: "NL".into(),
            device: "desktop".into(),
            browser: "Firefox".into(),
            os: "Linux".into(),
            screen: "laptop".into(),
            engaged_ms: 0,
            scroll_depth: 0,
            interactive: 1,
            props_keys: vec![],
            props_values: vec![],
            event_id: 7,
        }
    }
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

/// What each stored column is, where it comes from and how it was reduced: the source of the
/// privacy report's field table (a unit test keeps it equal to the schema's columns).
pub struct FieldDoc {
    pub column: &'static str,
    pub what: &'static str,
    pub from: &'static str,
    pub reduction: &'static str,
}

pub const FIELDS: &[FieldDoc] = &[
    FieldDoc { column: "site", what: "the site's configured domain", from: "beacon `domain` or the page host", reduction: "only configured sites are accepted" },
    FieldDoc { column: "ts", what: "time the beacon was received", from: "the server clock", reduction: "whole seconds" },
    FieldDoc { column: "micros", what: "microsecond within that second", from: "the server clock", reduction: "orders a visit's events within a second; nothing else" },
    FieldDoc { column: "visitor", what: "daily visitor hash", from: "salt, site, IP address, user agent", reduction: "first 64 bits of SHA-256; the IP address and user agent are not kept; the salt is deleted after the day" },
    FieldDoc { column: "name", what: "event name (pageview, engagement, custom)", from: "beacon `n`", reduction: "cut to ingest.max_event_name_chars" },
    FieldDoc { column: "host", what: "page host name", from: "page URL", reduction: "host only" },
    FieldDoc { column: "path", what: "page path", from: "page URL", reduction: "fragment dropped; e-mail addresses, BSNs, IBANs, phone numbers, UUIDs, tokens and long numbers replaced by :email, :bsn, :iban, :phone, :uuid, :token, :number; site rewrite rules; cut to 512 characters" },
    FieldDoc { column: "query", what: "allow-listed query parameters", from: "page URL", reduction: "every parameter not in privacy.query_allowlist dropped; values cut to 100 characters" },
    FieldDoc { column: "utm_source", what: "campaign source", from: "page URL `utm_source`", reduction: "empty unless in the allow-list" },
    FieldDoc { column: "utm_medium", what: "campaign medium", from: "page URL `utm_medium`", reduction: "empty unless in the allow-list" },
    FieldDoc { column: "utm_campaign", what: "campaign name", from: "page URL `utm_campaign`", reduction: "empty unless in the allow-list" },
    FieldDoc { column: "utm_content", what: "campaign content", from: "page URL `utm_content`", reduction: "empty unless in the allow-list" },
    FieldDoc { column: "utm_term", what: "campaign term", from: "page URL `utm_term`", reduction: "empty unless in the allow-list" },
    FieldDoc { column: "referrer_host", what: "referring site", from: "beacon `r`", reduction: "host only; empty when it is the site itself or a label carries personal data" },
    FieldDoc { column: "source", what: "traffic source", from: "page URL `utm_source`, `source` or `ref` (if allow-listed), else referrer host", reduction: "search engines, social networks, e-mail providers and AI assistants grouped by name" },
    FieldDoc { column: "country", what: "country", from: "IP address, via the country database", reduction: "ISO country code only; nothing finer is read" },
    FieldDoc { column: "device", what: "device class", from: "user agent", reduction: "desktop / mobile / tablet only" },
    FieldDoc { column: "browser", what: "browser name", from: "user agent", reduction: "name only, no version" },
    FieldDoc { column: "os", what: "operating system", from: "user agent", reduction: "name only, no version" },
    FieldDoc { column: "screen", what: "screen class", from: "beacon `w` (window width)", reduction: "mobile / tablet / laptop / desktop; the width is not kept" },
    FieldDoc { column: "engaged_ms", what: "visible time on the page", from: "beacon `e`", reduction: "capped at a day" },
    FieldDoc { column: "scroll_depth", what: "deepest scroll, percent", from: "beacon `sd`", reduction: "0 – 100" },
    FieldDoc { column: "interactive", what: "whether the event ends a bounce", from: "beacon `i`", reduction: "0 or 1" },
    FieldDoc { column: "props_keys", what: "custom property names (custom events and pageviews)", from: "beacon `p`", reduction: "only keys in the site's props_allowlist" },
    FieldDoc { column: "props_values", what: "custom property values (custom events and pageviews)", from: "beacon `p`", reduction: "only for allow-listed keys; personal data replaced by placeholders (:email, :phone, …) as in paths; cut to 200 characters" },
    FieldDoc { column: "event_id", what: "random number per event", from: "the server's random generator", reduction: "identifies no one; for de-duplication" },
];
