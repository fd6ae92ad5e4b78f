//! The configuration file: parsed, defaulted and validated before anything runs.
//!
//! Every key is documented in the README's configuration table with its default; the
//! defaults live here, in one place, as the `default_*` functions. Unknown keys are
//! rejected so that a typo in a privacy setting cannot silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::error::Error;

/// Whether `s` is a SHA-256 digest as the config holds secrets: 64 lower-case hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Environment variable that overrides `clickhouse.password`, so the secret need not be in the file.
pub const PASSWORD_ENV: &str = "TALLY_CLICKHOUSE_PASSWORD";

/// Query parameters kept on page URLs when the config does not say otherwise. `ref` and
/// `source` name a traffic source as `utm_source` does (Plausible reads all three).
pub const DEFAULT_QUERY_ALLOWLIST: [&str; 5] =
    ["utm_source", "utm_medium", "utm_campaign", "ref", "source"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub visits: VisitsConfig,
    #[serde(default)]
    pub rollups: RollupsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default, rename = "sites")]
    pub sites: Vec<SiteConfig>,
    /// Bearer tokens for the stats API.
    #[serde(default)]
    pub api_tokens: Vec<ApiToken>,
    /// The built-in dashboard: users, sessions, share links.
    #[serde(default)]
    pub dashboard: crate::dashboard::DashboardConfig,
}

/// A stats API token. Only its SHA-256 is in the config, so the file does not hold the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it (for people reading the config and the privacy report).
    pub name: String,
    /// Lower-case hex SHA-256 of the token (`tally token` prints a token and this line).
    pub sha256: String,
    /// Sites it may read; empty means all sites.
    #[serde(default)]
    pub sites: Vec<String>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("sites", &self.sites)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP endpoint binds to.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest beacon body accepted, in bytes; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed (CIDR blocks).
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// `human` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Seconds in-flight requests get to finish after a shutdown signal.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// The address pages load the tracker from (for the printed snippet); default `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Open connections at most; more are closed at once (counted).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and the longest idle keep-alive.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers are in; then 408.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Longest request target (path and query), in bytes; longer gets 414.
    #[serde(default = "default_max_url_bytes")]
    pub max_url_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    #[serde(default = "default_clickhouse_url")]
    pub url: String,
    #[serde(default = "default_database")]
    pub database: String,
    #[serde(default = "default_user")]
    pub user: String,
    /// Prefer the `TALLY_CLICKHOUSE_PASSWORD` environment variable.
    #[serde(default)]
    pub password: String,
}

// Hand-written so that the password can never reach a log line through `{:?}`.
impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Events waiting for the writer; when full, beacons get 503 and the drop is counted.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Rows per ClickHouse insert.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Longest time an accepted event waits before it is inserted, in milliseconds.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Longest custom event name stored; longer names are cut at a character boundary.
    #[serde(default = "default_max_event_name_chars")]
    pub max_event_name_chars: usize,
    /// Where batches wait while ClickHouse cannot take them (created, mode 0700).
    #[serde(default = "default_spool_dir")]
    pub spool_dir: PathBuf,
    /// Beacons per client (IP and user agent, hashed, in memory for a minute) per minute;
    /// more get 429. 0 = no limit.
    #[serde(default = "default_rate_limit_per_minute")]
    pub rate_limit_per_minute: u32,
    /// Paths not seen before admitted per site and hour; more are stored as `/(other)`.
    /// 0 = no cap.
    #[serde(default = "default_max_new_paths_per_hour")]
    pub max_new_paths_per_hour: usize,
    /// Most bytes the spool may hold; when full (and ClickHouse down), beacons get 503.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The daily salt rotates at 00:00 in this IANA time zone.
    #[serde(default = "default_time_zone")]
    pub salt_time_zone: String,
    /// Query parameters kept on page URLs (all others are dropped).
    #[serde(default = "default_query_allowlist")]
    pub query_allowlist: Vec<String>,
    /// MaxMind-format country database; none means an empty country.
    #[serde(default)]
    pub country_database: Option<PathBuf>,
    /// Beacons sent with `DNT: 1` are not stored (only counted, without any attribute).
    #[serde(default = "default_true")]
    pub honor_dnt: bool,
    /// Beacons sent with `Sec-GPC: 1` (Global Privacy Control) are not stored either.
    #[serde(default = "default_true")]
    pub honor_gpc: bool,
    /// Store no per-event rows and compute no visitor hash: only counts per day, page, source,
    /// country, device and hour (reports that need visits are then unavailable).
    #[serde(default)]
    pub aggregate_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Raw events (with the daily visitor hash) are deleted once they are this many days old.
    #[serde(default = "default_raw_days")]
    pub raw_days: u32,
    /// Rollups (no hash) are deleted once they are this many months old.
    #[serde(default = "default_rollup_months")]
    pub rollup_months: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            raw_days: default_raw_days(),
            rollup_months: default_rollup_months(),
        }
    }
}

fn default_raw_days() -> u32 {
    30
}
fn default_rollup_months() -> u32 {
    25
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupsConfig {
    /// Roll complete days up into hash-free tables and answer reports from them.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for RollupsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitsConfig {
    /// A gap longer than this ends a visit; also how long yesterday's salt lives after midnight.
    #[serde(default = "default_visit_timeout_minutes")]
    pub timeout_minutes: u32,
    /// A one-page visit with less engaged time than this is a bounce.
    #[serde(default = "default_bounce_engaged_seconds")]
    pub bounce_engaged_seconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's id and main host name, as sent in Plausible's `domain` field.
    pub domain: String,
    /// Other host names whose pages count for this site.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The site's own time zone, for reports.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Custom-event property keys that may be stored (default: none).
    #[serde(default)]
    pub props_allowlist: Vec<String>,
    /// Anyone may read this site's stats without a token.
    #[serde(default)]
    pub public: bool,
    /// Path rewrite rules, tried in order before the built-in scrubbing (`/zaken/*` → `/zaken/:id`).
    #[serde(default)]
    pub rewrite: Vec<RewriteRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteRule {
    /// `*` is one path segment, a final `**` the rest.
    pub pattern: String,
    pub replacement: String,
}

impl SiteConfig {
    /// The site's rewrite rules, parsed (validated when the config is loaded).
    pub fn rewrite_rules(&self) -> Result<crate::scrub::Rules, String> {
        let pairs: Vec<(String, String)> = self
            .rewrite
            .iter()
            .map(|r| (r.pattern.clone(), r.replacement.clone()))
            .collect();
        crate::scrub::Rules::parse(&pairs)
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_body_bytes() -> usize {
    8 * 1024
}
fn default_shutdown_grace_secs() -> u64 {
    10
}
fn default_max_connections() -> usize {
    4096
}
fn default_header_timeout_secs() -> u64 {
    10
}
fn default_request_timeout_secs() -> u64 {
    10
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_url_bytes() -> usize {
    4096
}
fn default_clickhouse_url() -> String {
    "http://127.0.0.1:8123".into()
}
fn default_database() -> String {
    "tally".into()
}
fn default_user() -> String {
    "default".into()
}
fn default_queue_capacity() -> usize {
    50_000
}
fn default_batch_size() -> usize {
    5_000
}
fn default_rate_limit_per_minute() -> u32 {
    600
}
fn default_max_new_paths_per_hour() -> usize {
    1000
}
fn default_spool_dir() -> PathBuf {
    PathBuf::from("/var/lib/tally/spool")
}
fn default_spool_max_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_flush_interval_ms() -> u64 {
    1_000
}
fn default_max_event_name_chars() -> usize {
    120
}
fn default_time_zone() -> String {
    "Europe/Amsterdam".into()
}
fn default_query_allowlist() -> Vec<String> {
    DEFAULT_QUERY_ALLOWLIST
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_visit_timeout_minutes() -> u32 {
    30
}
fn default_bounce_engaged_seconds() -> u32 {
    10
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            trusted_proxies: Vec::new(),
            log_format: LogFormat::default(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
            public_url: None,
            max_connections: default_max_connections(),
            header_timeout_secs: default_header_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            max_header_bytes: default_max_header_bytes(),
            max_url_bytes: default_max_url_bytes(),
        }
    }
}
impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: default_clickhouse_url(),
            database: default_database(),
            user: default_user(),
            password: String::new(),
        }
    }
}
impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            queue_capacity: default_queue_capacity(),
            batch_size: default_batch_size(),
            flush_interval_ms: default_flush_interval_ms(),
            max_event_name_chars: default_max_event_name_chars(),
            rate_limit_per_minute: default_rate_limit_per_minute(),
            max_new_paths_per_hour: default_max_new_paths_per_hour(),
            spool_dir: default_spool_dir(),
            spool_max_bytes: default_spool_max_bytes(),
        }
    }
}
impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            salt_time_zone: default_time_zone(),
            query_allowlist: default_query_allowlist(),
            country_database: None,
            honor_dnt: true,
            honor_gpc: true,
            aggregate_only: false,
        }
    }
}
impl Default for VisitsConfig {
    fn default() -> Self {
        Self {
            timeout_minutes: default_visit_timeout_minutes(),
            bounce_engaged_seconds: default_bounce_engaged_seconds(),
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file, then applies environment overrides.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config = Self::parse(&text)?;
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            config.clickhouse.password = password;
        }
        Ok(config)
    }

    /// Parses and validates config text (no environment overrides).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.sites.is_empty() {
            return bad("at least one [[sites]] entry is required".into());
        }
        parse_time_zone(&self.privacy.salt_time_zone, "privacy.salt_time_zone")?;
        let mut hosts = std::collections::HashSet::new();
        for site in &self.sites {
            if let Err(e) = site.rewrite_rules() {
                return bad(format!("site {}: {e}", site.domain));
            }
            parse_time_zone(
                &site.time_zone,
                &format!("time_zone of site {}", site.domain),
            )?;
            for host in std::iter::once(&site.domain).chain(&site.aliases) {
                if host.is_empty() || host.contains(['/', ' ', ':']) {
                    return bad(format!("site host {host:?} must be a bare host name"));
                }
                if !hosts.insert(host.to_ascii_lowercase()) {
                    return bad(format!(
                        "host {host:?} is configured for more than one site"
                    ));
                }
            }
        }
        if !(256..=1024 * 1024).contains(&self.server.max_body_bytes) {
            return bad("server.max_body_bytes must be between 256 and 1048576".into());
        }
        let server = &self.server;
        if server.max_connections == 0 {
            return bad("server.max_connections must be positive".into());
        }
        if !(1..=3600).contains(&server.header_timeout_secs)
            || !(1..=3600).contains(&server.request_timeout_secs)
        {
            return bad(
                "server.header_timeout_secs and server.request_timeout_secs must be between 1 and 3600"
                    .into(),
            );
        }
        // hyper needs room for one read buffer; below 8 KiB it refuses to start.
        if !(8192..=1024 * 1024).contains(&server.max_header_bytes) {
            return bad("server.max_header_bytes must be between 8192 and 1048576".into());
        }
        if !(256..=65_536).contains(&server.max_url_bytes) {
            return bad("server.max_url_bytes must be between 256 and 65536".into());
        }
        if self.ingest.batch_size == 0 || self.ingest.queue_capacity == 0 {
            return bad("ingest.batch_size and ingest.queue_capacity must be positive".into());
        }
        if self.ingest.spool_max_bytes < 1024 * 1024 {
            return bad("ingest.spool_max_bytes must be at least 1048576 (1 MiB)".into());
        }
        if self.ingest.flush_interval_ms == 0 {
            return bad("ingest.flush_interval_ms must be positive".into());
        }
        if !(1..=24 * 60).contains(&self.visits.timeout_minutes) {
            return bad("visits.timeout_minutes must be between 1 and 1440".into());
        }
        // A local day is rolled up up to a day and a half after its UTC start (time zones, visit
        // lookahead, settling); its raw events must still be there then.
        if !(3..=3650).contains(&self.retention.raw_days) {
            return bad("retention.raw_days must be between 3 and 3650".into());
        }
        if !(1..=1200).contains(&self.retention.rollup_months) {
            return bad("retention.rollup_months must be between 1 and 1200".into());
        }
        if self.visits.bounce_engaged_seconds > 24 * 3600 {
            return bad("visits.bounce_engaged_seconds must be at most 86400".into());
        }
        self.dashboard.validate(&self.sites)?;
        for token in &self.api_tokens {
            if !is_sha256_hex(&token.sha256) {
                return bad(format!(
                    "api_tokens {:?}: sha256 must be 64 lower-case hex digits",
                    token.name
                ));
            }
            for site in &token.sites {
                if !self.sites.iter().any(|s| &s.domain == site) {
                    return bad(format!(
                        "api_tokens {:?}: site {site:?} is not configured",
                        token.name
                    ));
                }
            }
        }
        if self.ingest.max_event_name_chars == 0 {
            return bad("ingest.max_event_name_chars must be positive".into());
        }
        if let Some(db) = &self.privacy.country_database {
            if !db.is_file() {
                return bad(format!(
                    "privacy.country_database {} is not a file",
                    db.display()
                ));
            }
        }
        let db = &self.clickhouse.database;
        if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return bad("clickhouse.database may hold only letters, digits and _".into());
        }
        Ok(())
    }

    /// Where pages reach this collector.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.server.listen),
        }
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.ingest.flush_interval_ms)
    }

    pub fn visit_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.visits.timeout_minutes) * 60)
    }

    pub fn salt_time_zone(&self) -> TimeZone {
        // Validated in `validate`, so this cannot fail for a loaded config.
        parse_time_zone(&self.privacy.salt_time_zone, "privacy.salt_time_zone")
            .unwrap_or(TimeZone::UTC)
    }
}

fn parse_time_zone(name: &str, key: &str) -> Result<TimeZone, Error> {
    TimeZone::get(name).map_err(|_| Error::Config(format!("{key}: unknown time zone {name:?}")))
}
