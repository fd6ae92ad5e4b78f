//! The configuration, in two stages: the file as written ([`file`]), then the validated
//! settings everything else reads ([`Config`]), built before anything runs; [`show`] prints the
//! effective settings back as TOML for `tally check-config`.
//!
//! [`Config::from_file`] checks every value and converts it once: time zones are
//! [`TimeZone`]s, rewrite rules are parsed [`Rules`], durations are [`Duration`]s, proxies are
//! [`TrustedProxies`], secrets are digests. Code downstream never parses or falls back. The only
//! environment override is the ClickHouse password ([`PASSWORD_ENV`]).

pub mod file;
pub mod show;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::HeaderName;
use jiff::tz::TimeZone;
use secrecy::{ExposeSecret, SecretString};

use crate::credentials::SecretDigest;
use crate::error::Error;
use crate::exclusions::Exclusions;
use crate::goals::{self, Goal};
use crate::scrub::Rules;
use crate::trusted_proxy::TrustedProxies;

pub use file::{Compression, ConfigFile, LogFormat, RewriteRule, DEFAULT_QUERY_ALLOWLIST};
pub use show::effective_toml;

/// Environment variable that overrides `clickhouse.password`, so the secret need not be in the file.
pub const PASSWORD_ENV: &str = "TALLY_CLICKHOUSE_PASSWORD";

/// The validated settings. Build it with [`Config::load`] or [`Config::parse`].
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub clickhouse: ClickHouseConfig,
    pub ingest: IngestConfig,
    pub privacy: PrivacyConfig,
    pub visits: VisitsConfig,
    pub rollups: RollupsConfig,
    pub retention: RetentionConfig,
    /// In the file's order.
    pub sites: Vec<SiteConfig>,
    pub api_tokens: Vec<ApiToken>,
    pub dashboard: DashboardConfig,
    /// The file as read (secrets redacted in its `Debug`), for `tally check-config`.
    pub file: ConfigFile,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where pages reach this collector, without a trailing `/` (`http://{listen}` unless set).
    pub public_url: String,
    /// `host[:port]` of a configured `server.public_url` (lower case): forms may come from it.
    pub public_host: Option<String>,
    pub max_body_bytes: usize,
    pub trusted_proxies: TrustedProxies,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_url_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    /// The one server's HTTP interface (unused in cluster mode).
    pub url: String,
    /// Letters, digits and `_` only (it is written into SQL).
    pub database: String,
    pub user: String,
    pub password: SecretString,
    /// Cluster mode; `None`: one server at `url`, plain tables.
    pub cluster: Option<ClusterConfig>,
    /// `auto`: LZ4 to every server not on a loopback address.
    pub compression: Compression,
}

/// A sharded, replicated ClickHouse (`clickhouse.cluster`), checked: a name of letters, digits,
/// `_` and `-`; at least one shard of at least one replica; every server once; ZooKeeper path
/// safe to write into SQL.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    /// HTTP interfaces, shard by shard, each without a trailing slash.
    pub shards: Vec<Vec<String>>,
    /// Starts with `/`, no trailing `/`; letters, digits, `_`, `-`, `.` and `/` only.
    pub zookeeper_path: String,
}

impl ClickHouseConfig {
    /// The servers, shard by shard: one shard of one server when there is no cluster.
    pub fn shards(&self) -> Vec<Vec<String>> {
        match &self.cluster {
            Some(c) => c.shards.clone(),
            None => vec![vec![self.url.clone()]],
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub max_event_name_chars: usize,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// 0 = no limit.
    pub rate_limit_per_minute: u32,
    /// 0 = no cap.
    pub max_new_paths_per_hour: usize,
}

#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    pub salt_time_zone: TimeZone,
    pub query_allowlist: Vec<String>,
    /// An existing file; opened (and so checked) when the collector is prepared.
    pub country_database: Option<PathBuf>,
    pub honor_dnt: bool,
    pub honor_gpc: bool,
    pub aggregate_only: bool,
}

#[derive(Debug, Clone)]
pub struct VisitsConfig {
    /// A gap longer than this ends a visit; whole minutes, 1 minute to 1 day.
    pub timeout: Duration,
    /// A one-page visit with less engaged time than this is a bounce; whole seconds.
    pub bounce_engaged: Duration,
    /// The visit job stores ended visits (and rollups are summed from them).
    pub store: bool,
}

#[derive(Debug, Clone)]
pub struct RollupsConfig {
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub raw_days: u32,
    pub rollup_months: u32,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub domain: String,
    pub aliases: Vec<String>,
    /// The domain and the aliases, lower case: the hosts whose pages count for the site.
    pub hosts: Vec<String>,
    pub time_zone: TimeZone,
    pub props_allowlist: Vec<String>,
    pub public: bool,
    /// The rules as written (for the privacy report).
    pub rewrite: Vec<RewriteRule>,
    /// The same rules, parsed.
    pub rules: Rules,
    /// `exclude_paths`, parsed (and as written, for the privacy report).
    pub exclusions: Exclusions,
    /// `[[sites.goals]]`, validated, default names filled in.
    pub goals: Vec<Goal>,
}

impl AsRef<Exclusions> for SiteConfig {
    fn as_ref(&self) -> &Exclusions {
        &self.exclusions
    }
}

impl SiteConfig {
    /// The site's IANA time zone name (as configured).
    pub fn time_zone_name(&self) -> &str {
        self.time_zone.iana_name().unwrap_or("UTC")
    }
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub name: String,
    pub sha256: SecretDigest,
    /// Empty: every site.
    pub sites: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub users: Vec<DashboardUser>,
    pub share_links: Vec<ShareLink>,
    pub trusted_user_header: Option<HeaderName>,
    pub session_idle: Duration,
    pub session_max: Duration,
}

#[derive(Debug, Clone)]
pub struct DashboardUser {
    pub name: String,
    /// An argon2 PHC string; `None`: only through the trusted user header.
    pub password_hash: Option<SecretString>,
    /// Empty: every site.
    pub sites: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ShareLink {
    pub site: String,
    pub sha256: SecretDigest,
    pub name: Option<String>,
}

impl Config {
    /// Reads, parses and validates a config file, then applies the environment override.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut file = Self::read(&text)?;
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            file.clickhouse.password = SecretString::from(password);
        }
        Self::from_file(file)
    }

    /// Parses and validates config text (no environment override).
    pub fn parse(text: &str) -> Result<Self, Error> {
        Self::from_file(Self::read(text)?)
    }

    fn read(text: &str) -> Result<ConfigFile, Error> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }

    /// Validates the file's values and converts them into settings.
    pub fn from_file(file: ConfigFile) -> Result<Self, Error> {
        let sites = sites(&file.sites)?;
        let known = |s: &str| sites.iter().any(|c| c.domain == s);
        let api_tokens = file
            .api_tokens
            .iter()
            .map(|t| api_token(t, &known))
            .collect::<Result<_, _>>()?;
        Ok(Config {
            server: server(&file.server)?,
            clickhouse: clickhouse(&file.clickhouse)?,
            ingest: ingest(&file.ingest)?,
            privacy: privacy(&file.privacy)?,
            visits: visits(&file.visits)?,
            rollups: RollupsConfig {
                enabled: file.rollups.enabled,
            },
            retention: retention(&file.retention)?,
            dashboard: dashboard(&file.dashboard, &known)?,
            api_tokens,
            sites,
            file,
        })
    }
}

fn bad<T>(message: impl Into<String>) -> Result<T, Error> {
    Err(Error::Config(message.into()))
}

fn time_zone(name: &str, key: &str) -> Result<TimeZone, Error> {
    TimeZone::get(name).map_err(|_| Error::Config(format!("{key}: unknown time zone {name:?}")))
}

fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn server(f: &file::Server) -> Result<ServerConfig, Error> {
    if !(256..=1024 * 1024).contains(&f.max_body_bytes) {
        return bad("server.max_body_bytes must be between 256 and 1048576");
    }
    if f.max_connections == 0 {
        return bad("server.max_connections must be positive");
    }
    if !(1..=3600).contains(&f.header_timeout_secs) || !(1..=3600).contains(&f.request_timeout_secs)
    {
        return bad(
            "server.header_timeout_secs and server.request_timeout_secs must be between 1 and 3600",
        );
    }
    // hyper needs room for one read buffer; below 8 KiB it refuses to start.
    if !(8192..=1024 * 1024).contains(&f.max_header_bytes) {
        return bad("server.max_header_bytes must be between 8192 and 1048576");
    }
    if !(256..=65_536).contains(&f.max_url_bytes) {
        return bad("server.max_url_bytes must be between 256 and 65536");
    }
    let (public_url, public_host) = match &f.public_url {
        Some(u) => {
            let parsed = url::Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https"));
            let Some(host) = parsed.as_ref().and_then(|p| p.host_str()) else {
                return bad(format!(
                    "server.public_url {u:?} must be an absolute http(s) URL"
                ));
            };
            let host = host.to_ascii_lowercase();
            let host_port = match parsed.as_ref().and_then(url::Url::port) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            (u.trim_end_matches('/').to_string(), Some(host_port))
        }
        None => (format!("http://{}", f.listen), None),
    };
    Ok(ServerConfig {
        listen: f.listen,
        public_url,
        public_host,
        max_body_bytes: f.max_body_bytes,
        trusted_proxies: TrustedProxies::new(f.trusted_proxies.clone()),
        log_format: f.log_format,
        shutdown_grace: seconds(f.shutdown_grace_secs),
        max_connections: f.max_connections,
        header_timeout: seconds(f.header_timeout_secs),
        request_timeout: seconds(f.request_timeout_secs),
        max_header_bytes: f.max_header_bytes,
        max_url_bytes: f.max_url_bytes,
    })
}

fn clickhouse(f: &file::ClickHouse) -> Result<ClickHouseConfig, Error> {
    let db = &f.database;
    if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return bad("clickhouse.database may hold only letters, digits and _");
    }
    Ok(ClickHouseConfig {
        url: server_url(&f.url, "clickhouse.url")?,
        database: f.database.clone(),
        user: f.user.clone(),
        password: f.password.clone(),
        cluster: cluster(f)?,
        compression: f.compression,
    })
}

/// A ClickHouse HTTP interface: `http(s)://host[:port]`, without credentials or a path (the
/// user and password have their own keys, and the privacy report prints these addresses).
fn server_url(u: &str, key: &str) -> Result<String, Error> {
    let parsed = url::Url::parse(u).map_err(|e| Error::Config(format!("{key}: {u:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return bad(format!(
            "{key}: {u:?} is not an http:// or https:// address"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad(format!(
            "{key}: no user or password in the address; use clickhouse.user and clickhouse.password"
        ));
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return bad(format!("{key}: {u:?} must be scheme, host and port only"));
    }
    Ok(u.trim_end_matches('/').to_string())
}

fn cluster(f: &file::ClickHouse) -> Result<Option<ClusterConfig>, Error> {
    if f.cluster.is_empty() {
        if !f.shards.is_empty() {
            return bad(
                "clickhouse.shards is set but clickhouse.cluster (the cluster's name) is not",
            );
        }
        return Ok(None);
    }
    let name = &f.cluster;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return bad("clickhouse.cluster may hold only letters, digits, _ and -");
    }
    if f.shards.is_empty() || f.shards.iter().any(Vec::is_empty) {
        return bad(
            "clickhouse.shards must list the servers of every shard, e.g. \
             [[\"http://ch1:8123\", \"http://ch2:8123\"], [\"http://ch3:8123\", \"http://ch4:8123\"]]",
        );
    }
    let mut shards = Vec::with_capacity(f.shards.len());
    let mut seen = std::collections::HashSet::new();
    for (i, replicas) in f.shards.iter().enumerate() {
        let mut out = Vec::with_capacity(replicas.len());
        for u in replicas {
            let u = server_url(u, &format!("clickhouse.shards[{i}]"))?;
            if !seen.insert(u.clone()) {
                return bad(format!("clickhouse.shards lists {u} twice"));
            }
            out.push(u);
        }
        shards.push(out);
    }
    let path = &f.zookeeper_path;
    if !path.starts_with('/')
        || path.ends_with('/')
        || !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
    {
        return bad(
            "clickhouse.zookeeper_path must start with /, not end with /, and hold only \
             letters, digits, _, -, . and /",
        );
    }
    Ok(Some(ClusterConfig {
        name: name.clone(),
        shards,
        zookeeper_path: path.clone(),
    }))
}

fn ingest(f: &file::Ingest) -> Result<IngestConfig, Error> {
    if f.batch_size == 0 || f.queue_capacity == 0 {
        return bad("ingest.batch_size and ingest.queue_capacity must be positive");
    }
    if f.spool_max_bytes < 1024 * 1024 {
        return bad("ingest.spool_max_bytes must be at least 1048576 (1 MiB)");
    }
    if f.flush_interval_ms == 0 {
        return bad("ingest.flush_interval_ms must be positive");
    }
    if f.max_event_name_chars == 0 {
        return bad("ingest.max_event_name_chars must be positive");
    }
    Ok(IngestConfig {
        queue_capacity: f.queue_capacity,
        batch_size: f.batch_size,
        flush_interval: Duration::from_millis(f.flush_interval_ms),
        max_event_name_chars: f.max_event_name_chars,
        spool_dir: f.spool_dir.clone(),
        spool_max_bytes: f.spool_max_bytes,
        rate_limit_per_minute: f.rate_limit_per_minute,
        max_new_paths_per_hour: f.max_new_paths_per_hour,
    })
}

fn privacy(f: &file::Privacy) -> Result<PrivacyConfig, Error> {
    if let Some(db) = &f.country_database {
        if !db.is_file() {
            return bad(format!(
                "privacy.country_database {} is not a file",
                db.display()
            ));
        }
    }
    Ok(PrivacyConfig {
        salt_time_zone: time_zone(&f.salt_time_zone, "privacy.salt_time_zone")?,
        query_allowlist: f.query_allowlist.clone(),
        country_database: f.country_database.clone(),
        honor_dnt: f.honor_dnt,
        honor_gpc: f.honor_gpc,
        aggregate_only: f.aggregate_only,
    })
}

fn visits(f: &file::Visits) -> Result<VisitsConfig, Error> {
    if !(1..=24 * 60).contains(&f.timeout_minutes) {
        return bad("visits.timeout_minutes must be between 1 and 1440");
    }
    if f.bounce_engaged_seconds > 24 * 3600 {
        return bad("visits.bounce_engaged_seconds must be at most 86400");
    }
    Ok(VisitsConfig {
        timeout: seconds(u64::from(f.timeout_minutes) * 60),
        bounce_engaged: seconds(u64::from(f.bounce_engaged_seconds)),
        store: f.store,
    })
}

fn retention(f: &file::Retention) -> Result<RetentionConfig, Error> {
    // Raw events are dropped a whole UTC day at a time; a visit is built from events up to a
    // salt day and its grace back, and becomes final up to an hour and a half after that salt
    // day ends (its last hour, the timeout, settling). Three days keep every event at least a
    // day past the moment its visit is stored, for late events to land in.
    if !(3..=3650).contains(&f.raw_days) {
        return bad("retention.raw_days must be between 3 and 3650");
    }
    if !(1..=1200).contains(&f.rollup_months) {
        return bad("retention.rollup_months must be between 1 and 1200");
    }
    Ok(RetentionConfig {
        raw_days: f.raw_days,
        rollup_months: f.rollup_months,
    })
}

fn sites(list: &[file::Site]) -> Result<Vec<SiteConfig>, Error> {
    if list.is_empty() {
        return bad("at least one [[sites]] entry is required");
    }
    let mut seen = std::collections::HashSet::new();
    let mut sites = Vec::with_capacity(list.len());
    for f in list {
        let pairs: Vec<(String, String)> = f
            .rewrite
            .iter()
            .map(|r| (r.pattern.clone(), r.replacement.clone()))
            .collect();
        let rules = match Rules::parse(&pairs) {
            Ok(rules) => rules,
            Err(e) => return bad(format!("site {}: {e}", f.domain)),
        };
        let exclusions = match Exclusions::parse(&f.exclude_paths, &f.include_paths) {
            Ok(e) => e,
            Err(e) => return bad(format!("site {}: {e}", f.domain)),
        };
        let goals = goals::parse(
            f.goals
                .iter()
                .map(|g| (g.name.as_deref(), g.page.as_deref(), g.event.as_deref())),
        )
        .or_else(|e| bad(format!("site {}: {e}", f.domain)))?;
        let time_zone = time_zone(&f.time_zone, &format!("time_zone of site {}", f.domain))?;
        // Each key once and not empty: the dashboard shows a tab per key, picked by name.
        let mut keys = std::collections::HashSet::new();
        for key in &f.props_allowlist {
            if key.trim().is_empty() {
                return bad(format!(
                    "site {}: props_allowlist has an empty key",
                    f.domain
                ));
            }
            if !keys.insert(key.as_str()) {
                return bad(format!(
                    "site {}: props_allowlist lists {key:?} more than once",
                    f.domain
                ));
            }
        }
        let mut hosts = Vec::new();
        for host in std::iter::once(&f.domain).chain(&f.aliases) {
            if host.is_empty() || host.contains(['/', ' ', ':']) {
                return bad(format!("site host {host:?} must be a bare host name"));
            }
            let lower = host.to_ascii_lowercase();
            if !seen.insert(lower.clone()) {
                return bad(format!(
                    "host {host:?} is configured for more than one site"
                ));
            }
            hosts.push(lower);
        }
        sites.push(SiteConfig {
            domain: f.domain.clone(),
            aliases: f.aliases.clone(),
            hosts,
            time_zone,
            props_allowlist: f.props_allowlist.clone(),
            public: f.public,
            rewrite: f.rewrite.clone(),
            rules,
            exclusions,
            goals,
        });
    }
    Ok(sites)
}

fn api_token(f: &file::ApiToken, known: &impl Fn(&str) -> bool) -> Result<ApiToken, Error> {
    let Some(sha256) = SecretDigest::from_hex(f.sha256.expose_secret()) else {
        return bad(format!(
            "api_tokens {:?}: sha256 must be 64 lower-case hex digits",
            f.name
        ));
    };
    if let Some(site) = f.sites.iter().find(|s| !known(s)) {
        return bad(format!(
            "api_tokens {:?}: site {site:?} is not configured",
            f.name
        ));
    }
    Ok(ApiToken {
        name: f.name.clone(),
        sha256,
        sites: f.sites.clone(),
    })
}

fn dashboard(f: &file::Dashboard, known: &impl Fn(&str) -> bool) -> Result<DashboardConfig, Error> {
    let bad = |m: String| Err(Error::Config(format!("dashboard: {m}")));
    let mut names = std::collections::HashSet::new();
    let mut users = Vec::with_capacity(f.users.len());
    for u in &f.users {
        if let Err(e) = crate::credentials::check_user_name(&u.name) {
            return bad(e);
        }
        if !names.insert(u.name.as_str()) {
            return bad(format!("user {:?} is listed twice", u.name));
        }
        if let Some(h) = &u.password_hash {
            if !crate::password::is_argon2(h.expose_secret()) {
                return bad(format!(
                    "user {:?}: password_hash must be an argon2 PHC string ($argon2id$…); `tally hash-password` prints one",
                    u.name
                ));
            }
        }
        if let Some(s) = u.sites.iter().find(|s| !known(s)) {
            return bad(format!("user {:?}: site {s:?} is not configured", u.name));
        }
        users.push(DashboardUser {
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            sites: u.sites.clone(),
        });
    }
    let mut share_links: Vec<ShareLink> = Vec::with_capacity(f.share_links.len());
    for l in &f.share_links {
        if !known(&l.site) {
            return bad(format!("share link: site {:?} is not configured", l.site));
        }
        let Some(sha256) = SecretDigest::from_hex(l.sha256.expose_secret()) else {
            return bad(format!(
                "share link for {:?}: sha256 must be 64 lower-case hex digits",
                l.site
            ));
        };
        if share_links.iter().any(|o| o.sha256.same(&sha256)) {
            return bad("two share links have the same secret".into());
        }
        share_links.push(ShareLink {
            site: l.site.clone(),
            sha256,
            name: l.name.clone(),
        });
    }
    let trusted_user_header = match &f.trusted_user_header {
        Some(h) => match HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => Some(name),
            Err(_) => return bad(format!("trusted_user_header {h:?} is not a header name")),
        },
        None => None,
    };
    if !(1..=366 * 24 * 3600).contains(&f.session_max_secs) {
        return bad("session_max_secs must be between 1 and 31622400 (a year)".into());
    }
    if !(1..=f.session_max_secs).contains(&f.session_idle_secs) {
        return bad("session_idle_secs must be between 1 and session_max_secs".into());
    }
    Ok(DashboardConfig {
        users,
        share_links,
        trusted_user_header,
        session_idle: seconds(f.session_idle_secs),
        session_max: seconds(f.session_max_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Config, Error> {
        Config::parse(&format!("{extra}\n[[sites]]\ndomain = \"a.example\"\n"))
    }

    fn message(extra: &str) -> String {
        match parse(extra) {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error for {extra:?}, got {other:?}"),
        }
    }

    #[test]
    fn values_are_converted_once() {
        let c = Config::parse(
            "[server]\npublic_url = \"https://Stats.Example.org:8443/\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
             header_timeout_secs = 7\n[visits]\ntimeout_minutes = 45\nbounce_engaged_seconds = 12\n\
             [privacy]\nsalt_time_zone = \"Asia/Tokyo\"\n\
             [[sites]]\ndomain = \"A.example\"\naliases = [\"WWW.a.example\"]\ntime_zone = \"America/New_York\"\n\
             rewrite = [{ pattern = \"/zaken/*\", replacement = \"/zaken/:id\" }]\n",
        )
        .unwrap();
        assert_eq!(c.server.public_url, "https://Stats.Example.org:8443");
        assert_eq!(
            c.server.public_host.as_deref(),
            Some("stats.example.org:8443")
        );
        assert!(c.server.trusted_proxies.trusts("10.1.2.3".parse().unwrap()));
        assert_eq!(c.server.header_timeout, Duration::from_secs(7));
        assert_eq!(c.visits.timeout, Duration::from_secs(45 * 60));
        assert_eq!(c.visits.bounce_engaged, Duration::from_secs(12));
        assert_eq!(c.privacy.salt_time_zone.iana_name(), Some("Asia/Tokyo"));
        let site = &c.sites[0];
        assert_eq!(site.time_zone_name(), "America/New_York");
        assert_eq!(site.hosts, vec!["a.example", "www.a.example"]);
        assert_eq!(site.rules.apply("/zaken/123abc"), "/zaken/:id");
        // Without a public URL, pages reach the listen address.
        let c = parse("").unwrap();
        assert_eq!(c.server.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.server.public_host, None);
    }

    #[test]
    fn bad_values_are_errors_that_name_the_key() {
        for (extra, expected) in [
            ("[server]\nmax_body_bytes = 10", "server.max_body_bytes"),
            ("[server]\npublic_url = \"stats.example.org\"", "server.public_url"),
            ("[server]\nmax_header_bytes = 100", "server.max_header_bytes"),
            ("[ingest]\nbatch_size = 0", "ingest.batch_size"),
            ("[ingest]\nspool_max_bytes = 5", "ingest.spool_max_bytes"),
            ("[visits]\ntimeout_minutes = 0", "visits.timeout_minutes"),
            ("[retention]\nraw_days = 2", "retention.raw_days"),
            ("[privacy]\nsalt_time_zone = \"Mars/Olympus\"", "unknown time zone"),
            ("[privacy]\ncountry_database = \"/nonexistent.mmdb\"", "privacy.country_database"),
            ("[clickhouse]\ndatabase = \"a;b\"", "clickhouse.database"),
            ("[clickhouse]\nurl = \"ftp://ch:21\"", "clickhouse.url"),
            ("[clickhouse]\nurl = \"http://u:pw@ch:8123\"", "clickhouse.user"),
            ("[clickhouse]\nshards = [[\"http://a:8123\"]]", "clickhouse.cluster"),
            ("[clickhouse]\ncluster = \"t'x\"\nshards = [[\"http://a:8123\"]]", "clickhouse.cluster"),
            ("[clickhouse]\ncluster = \"t\"", "clickhouse.shards"),
            ("[clickhouse]\ncluster = \"t\"\nshards = [[\"http://a:8123\"], []]", "clickhouse.shards"),
            ("[clickhouse]\ncluster = \"t\"\nshards = [[\"http://a:8123\", \"http://a:8123/\"]]", "twice"),
            ("[clickhouse]\ncluster = \"t\"\nshards = [[\"http://a:8123/x\"]]", "clickhouse.shards[0]"),
            ("[clickhouse]\ncluster = \"t\"\nshards = [[\"http://a:8123\"]]\nzookeeper_path = \"/a'b\"", "clickhouse.zookeeper_path"),
            ("[[api_tokens]]\nname = \"x\"\nsha256 = \"abc\"", "sha256"),
            ("[[api_tokens]]\nname = \"x\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nsites = [\"b.example\"]", "not configured"),
            ("[server]\nlisten_port = 1", "unknown field"),
        ] {
            let m = message(extra);
            assert!(m.contains(expected), "{extra:?}: {m}");
        }
        let m = match Config::parse(
            "[[sites]]\ndomain = \"a.example\"\n[[sites]]\ndomain = \"A.EXAMPLE\"\n",
        ) {
            Err(Error::Config(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.contains("more than one site"), "{m}");
        let m = match Config::parse("[[sites]]\ndomain = \"a.example\"\nrewrite = [{ pattern = \"zaken\", replacement = \"x\" }]\n") {
            Err(Error::Config(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(m.contains("site a.example"), "{m}");
    }

    #[test]
    fn include_paths_are_parsed_when_the_config_loads() {
        let c = Config::parse(
            "[[sites]]\ndomain = \"a.example\"\ninclude_paths = [\"/blog/**\"]\n\
             exclude_paths = [\"/blog/drafts/**\"]\n",
        )
        .unwrap();
        let ex = &c.sites[0].exclusions;
        assert!(!ex.excludes_path("/blog/a") && ex.excludes_path("/blog/drafts/a"));
        assert!(ex.excludes_path("/") && ex.excludes_path("/about"));
        let m = match Config::parse(
            "[[sites]]\ndomain = \"a.example\"\ninclude_paths = [\"/blog**\"]\n",
        ) {
            Err(Error::Config(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(
            m.starts_with("site a.example: include_paths entry 1 (\"/blog**\")"),
            "{m}"
        );
    }

    #[test]
    fn props_allowlist_keys_are_named_once_and_not_empty() {
        let message = |list: &str| match Config::parse(&format!(
            "[[sites]]\ndomain = \"a.example\"\nprops_allowlist = {list}\n"
        )) {
            Err(Error::Config(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            message(r#"["author", "lang", "author"]"#),
            "site a.example: props_allowlist lists \"author\" more than once"
        );
        assert_eq!(
            message(r#"["author", " "]"#),
            "site a.example: props_allowlist has an empty key"
        );
        assert!(Config::parse(
            "[[sites]]\ndomain = \"a.example\"\nprops_allowlist = [\"author\", \"lang\"]\n"
        )
        .is_ok());
    }

    #[test]
    fn exclude_paths_are_parsed_when_the_config_loads() {
        let c = Config::parse(
            "[[sites]]\ndomain = \"a.example\"\nexclude_paths = [\"/admin/**\", \"/account/*\"]\n\
             [[sites]]\ndomain = \"b.example\"\n",
        )
        .unwrap();
        let ex = &c.sites[0].exclusions;
        assert!(ex.excludes_path("/admin/users/1") && ex.excludes_path("/account/jan"));
        assert!(!ex.excludes_path("/account/jan/settings") && !ex.excludes_path("/"));
        assert!(c.sites[1].exclusions.is_empty());
        for (list, needle) in [
            ("[\"admin/**\"]", "must start with '/'"),
            ("[\"/ok\", \"/a/**/b\"]", "entry 2 (\"/a/**/b\")"),
            ("[\"/how-to-*\"]", "whole segments"),
            ("\"/admin\"", "invalid type"),
        ] {
            let m = match Config::parse(&format!(
                "[[sites]]\ndomain = \"a.example\"\nexclude_paths = {list}\n"
            )) {
                Err(Error::Config(m)) => m,
                other => panic!("{list}: {other:?}"),
            };
            assert!(m.contains(needle), "{list}: {m}");
            if needle != "invalid type" {
                assert!(m.starts_with("site a.example: exclude_paths"), "{m}");
            }
        }
    }

    #[test]
    fn goals_are_validated_and_named_when_the_config_loads() {
        let c = Config::parse(
            "[[sites]]\ndomain = \"a.example\"\n\
             [[sites.goals]]\npage = \"/afval*\"\n\
             [[sites.goals]]\nevent = \"Download\"\n\
             [[sites.goals]]\nname = \"Form sent\"\nevent = \"Form: Submission\"\n\
             [[sites]]\ndomain = \"b.example\"\n",
        )
        .unwrap();
        let names: Vec<&str> = c.sites[0].goals.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["Visit /afval*", "Download", "Form sent"]);
        assert!(c.sites[0].goals[0].matches_page("/afvalkalender"));
        assert!(c.sites[1].goals.is_empty());
        for (goals, needle) in [
            (
                "page = \"/a\"\nevent = \"b\"",
                "goals entry 1: set either page or event",
            ),
            ("name = \"x\"", "goals entry 1: set page"),
            ("page = \"afval\"", "must start with '/'"),
            (
                "event = \"Download\"\n[[sites.goals]]\nevent = \"Download\"",
                "goals entry 2",
            ),
            ("page = \"/a\"\ncolour = 1", "unknown field"),
        ] {
            let m = match Config::parse(&format!(
                "[[sites]]\ndomain = \"a.example\"\n[[sites.goals]]\n{goals}\n"
            )) {
                Err(Error::Config(m)) => m,
                other => panic!("{goals}: {other:?}"),
            };
            assert!(m.contains(needle), "{goals}: {m}");
            if needle != "unknown field" {
                assert!(m.starts_with("site a.example: goals entry"), "{m}");
            }
        }
    }

    #[test]
    fn user_lines_parse_back_into_a_valid_config() {
        let lines = crate::credentials::user_lines("web \"team\"", "long enough secret").unwrap();
        let config =
            Config::parse(&format!("{lines}\n[[sites]]\ndomain = \"a.example\"\n")).unwrap();
        let u = &config.dashboard.users[0];
        assert_eq!(u.name, "web \"team\"");
        assert!(u
            .password_hash
            .as_ref()
            .unwrap()
            .expose_secret()
            .starts_with("$argon2id$"));
        assert!(crate::credentials::user_lines("alice", "short").is_err());
        assert!(crate::credentials::user_lines(" alice", "long enough secret").is_err());
        // Debug output (check-config) shows no hash.
        assert!(!format!("{config:?}").contains("$argon2"));

        let (secret, toml) = crate::credentials::new_share_link("a.example");
        let config =
            Config::parse(&format!("{toml}\n[[sites]]\ndomain = \"a.example\"\n")).unwrap();
        assert!(config.dashboard.share_links[0].sha256.matches(&secret));
        assert!(!config.dashboard.share_links[0]
            .sha256
            .matches("another secret"));

        let (token, toml) = crate::credentials::new_api_token("web \"team\"");
        let config =
            Config::parse(&format!("{toml}\n[[sites]]\ndomain = \"a.example\"\n")).unwrap();
        assert_eq!(config.api_tokens[0].name, "web \"team\"");
        assert!(config.api_tokens[0].sha256.matches(&token));
    }

    #[test]
    fn config_is_checked() {
        assert!(parse("").is_ok());
        let d = parse("").unwrap().dashboard;
        assert_eq!(
            (d.session_idle.as_secs(), d.session_max.as_secs()),
            (259_200, 1_209_600)
        );
        assert!(parse("[[dashboard.users]]\nname = \"a\"\npassword_hash = \"plain\"").is_err());
        assert!(parse("[[dashboard.users]]\nname = \"a\"\nsites = [\"nope.example\"]").is_err());
        assert!(
            parse("[[dashboard.users]]\nname = \"a\"\n[[dashboard.users]]\nname = \"a\"").is_err()
        );
        assert!(parse(&format!(
            "[[dashboard.share_links]]\nsite = \"a.example\"\nsha256 = \"{}\"",
            "A".repeat(64)
        ))
        .is_err());
        assert!(parse("[dashboard]\nsession_idle_secs = 10\nsession_max_secs = 5").is_err());
        assert!(parse("[dashboard]\ntrusted_user_header = \"bad header\"").is_err());
        assert!(parse("[dashboard]\nsessions = 1").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Config::parse(&format!(
            "[clickhouse]\npassword = \"hunter2\"\n\
             [[api_tokens]]\nname = \"t\"\nsha256 = \"{d}\"\n\
             [[dashboard.share_links]]\nsite = \"a.example\"\nsha256 = \"{d}\"\n\
             [[dashboard.users]]\nname = \"u\"\npassword_hash = \"$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\n\
             [[sites]]\ndomain = \"a.example\"\n",
            d = "ab".repeat(32)
        ))
        .unwrap();
        let shown = format!("{c:?}");
        for secret in ["hunter2", "abab", "$argon2", "aGFzaGhh"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("a.example"));
    }

    /// The defaults in `docs/configuration.md` are the code's: every key of the file has a row,
    /// and every row's default is what the code fills in.
    #[test]
    fn documented_defaults_equal_the_code() {
        let doc = include_str!("../../docs/configuration.md");
        let mut rows = std::collections::BTreeMap::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split(" | ").collect();
            let key = cells[0].trim_start_matches("| ").trim_matches('`');
            rows.insert(key.to_string(), cells[1].to_string());
        }
        // The code's defaults, flattened to `section.key` (and `[[array]] key` for entries).
        let mut code = std::collections::BTreeMap::new();
        let defaults = toml::Value::try_from(ConfigFile::default()).unwrap();
        for (section, table) in defaults.as_table().unwrap() {
            let Some(table) = table.as_table() else {
                continue;
            };
            for (key, value) in table {
                // `[dashboard]`'s arrays of tables are listed by their entries' keys below.
                if !(section == "dashboard" && ["users", "share_links"].contains(&key.as_str())) {
                    code.insert(format!("{section}.{key}"), Some(value.clone()));
                }
            }
        }
        // Entries of the arrays of tables: their required keys and the defaults of the rest.
        let entries = ConfigFile::default_entries();
        for (array, entry) in &entries {
            for (key, value) in entry.as_table().unwrap() {
                code.insert(format!("[[{array}]] {key}"), Some(value.clone()));
            }
        }
        // Keys without a value by default (not serialized): documented as "none" or "required".
        for key in [
            "[[sites]] domain",
            "[[api_tokens]] name",
            "[[dashboard.users]] name",
            "[[dashboard.share_links]] site",
            "server.public_url",
            "clickhouse.password",
            "privacy.country_database",
            "dashboard.trusted_user_header",
            "[[api_tokens]] sha256",
            "[[dashboard.users]] password_hash",
            "[[dashboard.share_links]] sha256",
            "[[dashboard.share_links]] name",
            "[[sites.goals]] page",
            "[[sites.goals]] event",
            "[[sites.goals]] name",
        ] {
            code.entry(key.to_string()).or_insert(None);
        }
        let documented: Vec<&String> = rows.keys().collect();
        let known: Vec<&String> = code.keys().collect();
        assert_eq!(
            documented, known,
            "keys in docs/configuration.md vs the code"
        );
        for (key, default) in &rows {
            let shown = default
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_default();
            match code[key].as_ref() {
                Some(toml::Value::String(s)) if s.is_empty() => {
                    assert!(default.contains("empty"), "{key}: {default}")
                }
                Some(toml::Value::String(s)) => assert_eq!(&shown, s, "{key}"),
                Some(toml::Value::Array(a)) => {
                    let list: Vec<String> = a.iter().map(|v| v.to_string()).collect();
                    assert_eq!(shown, format!("[{}]", list.join(", ")), "{key}");
                }
                Some(v) => assert_eq!(shown, v.to_string(), "{key}"),
                None if key == "server.public_url" => assert_eq!(shown, "http://{listen}"),
                None => assert!(
                    ["none", "required", "empty"]
                        .iter()
                        .any(|w| default.starts_with(w)),
                    "{key}: {default}"
                ),
            }
        }
    }
}
