//! The configuration file as written: TOML sections with their defaults, stated once here.
//!
//! Nothing here is checked beyond TOML types and unknown keys (rejected, so a typo in a privacy
//! setting cannot silently fall back to a default). [`super::Config::from_file`] validates these
//! values and converts them into the settings the rest of tally reads. Each section's `Default`
//! is the one place its defaults are written; `docs/configuration.md` lists the same values and a
//! test compares the two.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Query parameters kept on page URLs when the config does not say otherwise. `ref` and
/// `source` name a traffic source as `utm_source` does (Plausible reads all three).
pub const DEFAULT_QUERY_ALLOWLIST: [&str; 5] =
    ["utm_source", "utm_medium", "utm_campaign", "ref", "source"];

/// The whole file. Secrets are [`SecretString`]s: `Debug` prints them redacted and they are
/// never serialized.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub server: Server,
    pub clickhouse: ClickHouse,
    pub ingest: Ingest,
    pub privacy: Privacy,
    pub visits: Visits,
    pub rollups: Rollups,
    pub retention: Retention,
    pub sites: Vec<Site>,
    /// Bearer tokens for the stats API.
    pub api_tokens: Vec<ApiToken>,
    /// The built-in dashboard: users, sessions, share links.
    pub dashboard: Dashboard,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address the HTTP endpoint binds to.
    pub listen: SocketAddr,
    /// Largest beacon body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed (CIDR blocks).
    pub trusted_proxies: Vec<IpNet>,
    pub log_format: LogFormat,
    /// Seconds in-flight requests get to finish after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// The address pages load the tracker from; default `http://{listen}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Open connections at most; more are closed at once (counted).
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and the longest idle keep-alive.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once its headers are in; then 408.
    pub request_timeout_secs: u64,
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Longest request target (path and query), in bytes; longer gets 414.
    pub max_url_bytes: usize,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 8 * 1024,
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Human,
            shutdown_grace_secs: 10,
            public_url: None,
            max_connections: 4096,
            header_timeout_secs: 10,
            request_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            max_url_bytes: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// How inserts and answers travel to and from ClickHouse (`clickhouse.compression`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// LZ4, except to a server on a loopback address (where compressing costs CPU and saves
    /// nothing).
    #[default]
    Auto,
    Lz4,
    None,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouse {
    /// The server's HTTP interface (single-server mode; unused when `cluster` is set).
    pub url: String,
    pub database: String,
    pub user: String,
    /// Prefer the `TALLY_CLICKHOUSE_PASSWORD` environment variable.
    #[serde(skip_serializing)]
    pub password: SecretString,
    /// The cluster's name in the servers' `remote_servers`; empty: one server, plain tables.
    pub cluster: String,
    /// Cluster mode: every server's HTTP interface, shard by shard (the replicas of a shard in
    /// one list), in the order of the cluster's shards in `remote_servers`.
    pub shards: Vec<Vec<String>>,
    /// Cluster mode: where replicated tables keep their state in ZooKeeper (or Keeper).
    pub zookeeper_path: String,
    pub compression: Compression,
}

impl Default for ClickHouse {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "tally".into(),
            user: "default".into(),
            password: SecretString::from(""),
            cluster: String::new(),
            shards: Vec::new(),
            zookeeper_path: "/clickhouse/tables".into(),
            compression: Compression::Auto,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// Events waiting for the writer; when full, beacons get 503 and the drop is counted.
    pub queue_capacity: usize,
    /// Rows per ClickHouse insert, at most (a partial batch goes at each flush interval).
    /// 20,000: ClickHouse makes a part per insert and merges them afterwards, so fewer, larger
    /// inserts cost it less; with 5,000 it spent about a third more CPU at 60,000 rows/s.
    pub batch_size: usize,
    /// Longest time an accepted event waits before it is inserted, in milliseconds.
    pub flush_interval_ms: u64,
    /// Longest custom event name stored; longer names are cut at a character boundary.
    pub max_event_name_chars: usize,
    /// Where batches wait while ClickHouse cannot take them (created, mode 0700).
    pub spool_dir: PathBuf,
    /// Most bytes the spool may hold; when full (and ClickHouse down), beacons get 503.
    pub spool_max_bytes: u64,
    /// Beacons per client (IP and user agent, hashed, in memory for a minute) per minute;
    /// more get 429. 0 = no limit.
    pub rate_limit_per_minute: u32,
    /// Paths not seen before admitted per site and hour; more are stored as `/(other)`.
    /// 0 = no cap.
    pub max_new_paths_per_hour: usize,
}

impl Default for Ingest {
    fn default() -> Self {
        Self {
            queue_capacity: 50_000,
            batch_size: 20_000,
            flush_interval_ms: 1_000,
            max_event_name_chars: 120,
            spool_dir: PathBuf::from("/var/lib/tally/spool"),
            spool_max_bytes: 1024 * 1024 * 1024,
            rate_limit_per_minute: 600,
            max_new_paths_per_hour: 1000,
        }
    }
}

/// The time zone sites and the salt use unless they say otherwise.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Amsterdam";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Privacy {
    /// The daily salt rotates at 00:00 in this IANA time zone.
    pub salt_time_zone: String,
    /// Query parameters kept on page URLs (all others are dropped).
    pub query_allowlist: Vec<String>,
    /// MaxMind-format country database; none means an empty country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_database: Option<PathBuf>,
    /// Beacons sent with `DNT: 1` are not stored (only counted, without any attribute).
    pub honor_dnt: bool,
    /// Beacons sent with `Sec-GPC: 1` (Global Privacy Control) are not stored either.
    pub honor_gpc: bool,
    /// Store no per-event rows and compute no visitor hash: only counts per day, page, source,
    /// country, device and hour (reports that need visits are then unavailable).
    pub aggregate_only: bool,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            salt_time_zone: DEFAULT_TIME_ZONE.into(),
            query_allowlist: DEFAULT_QUERY_ALLOWLIST.map(String::from).to_vec(),
            country_database: None,
            honor_dnt: true,
            honor_gpc: true,
            aggregate_only: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Visits {
    /// A gap longer than this ends a visit; also how long yesterday's salt lives after midnight.
    pub timeout_minutes: u32,
    /// A one-page visit with less engaged time than this is a bounce.
    pub bounce_engaged_seconds: u32,
    /// Store visits without the hash once they have ended (reports read them). Off: every
    /// report builds its visits from raw events, as far back as they are kept (for checking).
    pub store: bool,
}

impl Default for Visits {
    fn default() -> Self {
        Self {
            timeout_minutes: 30,
            bounce_engaged_seconds: 10,
            store: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rollups {
    /// Roll complete days up into hash-free tables and answer reports from them.
    pub enabled: bool,
}

impl Default for Rollups {
    fn default() -> Self {
        Self { enabled: true }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Raw events (with the daily visitor hash) are deleted once they are this many days old.
    pub raw_days: u32,
    /// Rollups (no hash) are deleted once they are this many months old.
    pub rollup_months: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_days: 3,
            rollup_months: 25,
        }
    }
}

/// A `[[sites]]` entry. `domain` is required; everything else has a default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
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
    /// Pages whose beacons are answered 202 and not stored (`/admin/**`, `/account/*`); the
    /// same patterns as `rewrite`'s. The tracker takes the same list as `data-exclude`.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    /// When not empty, only pages matching one of these patterns are counted (`/blog/**`); the
    /// others are treated as excluded. Same patterns; the tracker takes it as `data-include`.
    #[serde(default)]
    pub include_paths: Vec<String>,
    /// Goals reports count (`event:goal`): a page-view goal (`page`, `*` any characters) or a
    /// custom-event goal (`event`), with an optional `name`.
    #[serde(default)]
    pub goals: Vec<Goal>,
}

/// A `[[sites.goals]]` entry: exactly one of `page` and `event` (checked in `goals`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// The name reports show (default `Visit PAGE`, or the event name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pageviews of paths matching this pattern convert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Custom events of this name convert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteRule {
    /// `*` is one path segment, a final `**` the rest.
    pub pattern: String,
    pub replacement: String,
}

/// A stats API token. Only its SHA-256 is in the config, so the file does not hold the secret.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it (for people reading the config and the privacy report).
    pub name: String,
    /// Lower-case hex SHA-256 of the token (`tally token` prints a token and this line).
    #[serde(skip_serializing)]
    pub sha256: SecretString,
    /// Sites it may read; empty means all sites.
    #[serde(default)]
    pub sites: Vec<String>,
}

/// The `[dashboard]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dashboard {
    /// People who may log in.
    pub users: Vec<DashboardUser>,
    /// Read-only links to one site's dashboard (none by default).
    pub share_links: Vec<ShareLink>,
    /// A header naming the user, set by a trusted reverse proxy (SSO); believed only from
    /// `server.trusted_proxies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_user_header: Option<String>,
    /// A session ends after this many seconds without a request.
    pub session_idle_secs: u64,
    /// A session ends this many seconds after the login, however active.
    pub session_max_secs: u64,
}

impl Default for Dashboard {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            share_links: Vec::new(),
            trusted_user_header: None,
            session_idle_secs: 3 * 24 * 3600,
            session_max_secs: 14 * 24 * 3600,
        }
    }
}

/// A dashboard user (`[[dashboard.users]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardUser {
    pub name: String,
    /// argon2 PHC string (`tally hash-password NAME` prints it). Without it the user can come
    /// in only through `trusted_user_header`.
    #[serde(default, skip_serializing)]
    pub password_hash: Option<SecretString>,
    /// Sites the user may see; empty means all.
    #[serde(default)]
    pub sites: Vec<String>,
}

/// A share link (`[[dashboard.share_links]]`): `/share/<secret>` shows `site` read-only.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShareLink {
    pub site: String,
    /// Lower-case hex SHA-256 of the secret in the link.
    #[serde(skip_serializing)]
    pub sha256: SecretString,
    /// Who the link was given to (for people reading the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ConfigFile {
    /// The defaults of the entries of each array of tables (`[[sites]]`, …), without their
    /// required keys: what an entry holds when only those are written.
    pub fn default_entries() -> Vec<(&'static str, toml::Value)> {
        fn entry<T: serde::de::DeserializeOwned + Serialize>(
            required: &str,
            drop: &[&str],
        ) -> toml::Value {
            let parsed: T = toml::from_str(required).expect("the required keys suffice");
            let mut value = toml::Value::try_from(parsed).expect("entries serialize");
            if let Some(table) = value.as_table_mut() {
                for key in drop {
                    table.remove(*key);
                }
            }
            value
        }
        vec![
            ("sites", entry::<Site>("domain = \"a\"", &["domain"])),
            (
                "api_tokens",
                entry::<ApiToken>("name = \"a\"\nsha256 = \"b\"", &["name"]),
            ),
            (
                "dashboard.users",
                entry::<DashboardUser>("name = \"a\"", &["name"]),
            ),
            (
                "dashboard.share_links",
                entry::<ShareLink>("site = \"a\"\nsha256 = \"b\"", &["site"]),
            ),
        ]
    }
}
