//! The privacy officer's report: what the running configuration collects, drops and keeps, and
//! for how long; built from the effective config and the code's own constants, never from prose
//! that could drift from them. `tally privacy-report` prints it; `GET /privacy` serves it live.

use serde::Serialize;

use crate::config::{Config, DEFAULT_QUERY_ALLOWLIST};
use crate::event::FIELDS;
use crate::retention;

mod markdown;

pub use markdown::markdown;

/// Values known only to a running collector (or read from storage by the CLI).
#[derive(Default)]
pub struct Live {
    /// Seconds since today's salt was created (never the salt itself).
    pub salt_age_seconds: Option<i64>,
    /// Unix time of the last retention run of this process.
    pub last_retention_run: Option<i64>,
    /// `database_type` of the loaded country database.
    pub country_database_type: Option<String>,
}

#[derive(Serialize)]
pub struct Report {
    pub generated_at: String,
    /// Settings that collect or keep more than the defaults; shown first.
    pub weaker_than_defaults: Vec<String>,
    pub sites: Vec<SiteReport>,
    pub stored_fields: Vec<Field>,
    /// The tracker's built-in events and the property each stores whatever `props_allowlist`
    /// says: `event: key: what is stored of it`.
    pub builtin_event_properties: Vec<String>,
    pub never_stored: Vec<&'static str>,
    /// `privacy.aggregate_only`: what is kept instead of events, and which reports are lost.
    pub aggregate_only: Option<AggregateOnly>,
    /// None in aggregate-only mode: no hash is computed and no salt is made.
    pub visitor_hash: Option<HashScheme>,
    pub retention: Vec<TableRetention>,
    pub location: Location,
    pub trusted_proxies: Vec<String>,
    pub do_not_track: DoNotTrack,
    pub bots: &'static str,
    pub storage: Storage,
    pub access: Access,
}

#[derive(Serialize)]
pub struct SiteReport {
    pub domain: String,
    pub aliases: Vec<String>,
    pub time_zone: String,
    pub stored_custom_properties: Vec<String>,
    pub stats_public: bool,
    /// `pattern -> replacement`, applied to paths before the built-in scrubbing.
    pub rewrite_rules: Vec<String>,
    /// `exclude_paths`: beacons for these pages are answered 202 and not stored.
    pub excluded_paths: Vec<String>,
}

#[derive(Serialize)]
pub struct Field {
    pub column: &'static str,
    pub what: &'static str,
    pub from: &'static str,
    pub reduction: String,
    pub kept: String,
}

#[derive(Serialize)]
pub struct AggregateOnly {
    pub stored_instead: &'static str,
    pub unavailable_metrics: Vec<&'static str>,
    pub unavailable_dimensions: Vec<&'static str>,
    pub unavailable_other: &'static str,
}

#[derive(Serialize)]
pub struct HashScheme {
    pub algorithm: &'static str,
    pub inputs: &'static str,
    pub output_bits: u32,
    pub salt: &'static str,
    pub salt_rotates: String,
    pub previous_salt_deleted: String,
    pub salt_stored_in: &'static str,
    pub current_salt_age_seconds: Option<i64>,
}

#[derive(Serialize)]
pub struct TableRetention {
    pub table: &'static str,
    pub holds: &'static str,
    pub visitor_hash: bool,
    pub kept: String,
}

#[derive(Serialize)]
pub struct Location {
    pub granularity: &'static str,
    pub database: String,
    pub ip_address: &'static str,
    pub rate_limit: String,
}

#[derive(Serialize)]
pub struct DoNotTrack {
    pub dnt: &'static str,
    pub gpc: &'static str,
}

#[derive(Serialize)]
pub struct Storage {
    pub clickhouse_host: String,
    pub database: String,
}

#[derive(Serialize)]
pub struct Access {
    pub api_tokens: Vec<String>,
    pub public_sites: Vec<String>,
}

/// Things tally never stores, whatever the configuration.
pub const NEVER_STORED: [&str; 8] = [
    "IP addresses (used in memory for the visitor hash and the country lookup, then dropped)",
    "user agents (used in memory for the hash and the device/browser/OS classes, then dropped; to classify repeat agents faster, a keyed hash of each recently seen agent, never the agent, is kept in memory for at most an hour)",
    "query parameters outside privacy.query_allowlist",
    "URL fragments (#...)",
    "full referrer URLs (only the host)",
    "cookies or any client-side identifier (the tracker sets and reads none)",
    "device identifiers, screen sizes, fingerprints",
    "beacons from bots and, when honoured, with Do Not Track / Global Privacy Control",
];

pub fn build(config: &Config, live: &Live, now: jiff::Timestamp) -> Report {
    let raw_days = config.retention.raw_days;
    let months = config.retention.rollup_months;
    let timeout = config.visits.timeout.as_secs() / 60;
    let aggregate = config.privacy.aggregate_only;
    let mut weaker = Vec::new();
    let extra_params: Vec<&String> = config
        .privacy
        .query_allowlist
        .iter()
        .filter(|p| !DEFAULT_QUERY_ALLOWLIST.contains(&p.as_str()))
        .collect();
    if !extra_params.is_empty() {
        weaker.push(format!(
            "privacy.query_allowlist keeps query parameters beyond the defaults: {}",
            join(&extra_params)
        ));
    }
    for site in &config.sites {
        if !site.props_allowlist.is_empty() {
            weaker.push(format!(
                "site {} stores custom properties: {}",
                site.domain,
                site.props_allowlist.join(", ")
            ));
        }
    }
    if !config.privacy.honor_dnt {
        weaker.push("privacy.honor_dnt = false: beacons with Do Not Track are stored".into());
    }
    if !config.privacy.honor_gpc {
        weaker.push(
            "privacy.honor_gpc = false: beacons with Global Privacy Control are stored".into(),
        );
    }
    let default_raw_days = crate::config::file::Retention::default().raw_days;
    if raw_days > default_raw_days {
        weaker.push(format!(
            "retention.raw_days = {raw_days}: raw events (with the daily visitor hash) are kept longer than the default {default_raw_days} days"
        ));
    }
    if months > 25 {
        weaker.push(format!(
            "retention.rollup_months = {months}: rollups are kept longer than 25 months (the CNIL exemption's limit)"
        ));
    }
    if timeout > 30 {
        weaker.push(format!(
            "visits.timeout_minutes = {timeout}: yesterday's salt lives {timeout} minutes after midnight (default 30)"
        ));
    }
    for net in config.server.trusted_proxies.nets() {
        if net.prefix_len() == 0 {
            weaker.push(format!(
                "server.trusted_proxies contains {net}: any client can choose the address that is hashed and located"
            ));
        }
    }
    let host = clickhouse_host(&config.clickhouse.url);
    let bare_host = url::Url::parse(&config.clickhouse.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let loopback = ["127.0.0.1", "localhost", "[::1]", "::1"].contains(&bare_host.as_str());
    if !config.clickhouse.url.starts_with("https://") && !loopback {
        weaker.push(format!(
            "clickhouse.url is plain HTTP to {host}: events travel unencrypted to the database"
        ));
    }

    let stored_fields = FIELDS
        .iter()
        .map(|f| Field {
            column: f.column,
            what: f.what,
            from: f.from,
            reduction: match f.column {
                "query" => format!(
                    "only {}; values cut to 100 characters",
                    join(&config.privacy.query_allowlist)
                ),
                "name" => format!("cut to {} characters", config.ingest.max_event_name_chars),
                "props_keys" => format!(
                    "{}; and the tracker's built-in events' own property (below)",
                    f.reduction
                ),
                "props_values" => format!(
                    "{}; the built-in events' property reduced (below)",
                    f.reduction
                ),
                "country" if config.privacy.country_database.is_none() => {
                    "always empty: no country database is configured".into()
                }
                _ => f.reduction.to_string(),
            },
            kept: format!("{raw_days} days (raw events)"),
        })
        .collect();

    Report {
        generated_at: now.to_string(),
        weaker_than_defaults: weaker,
        sites: config
            .sites
            .iter()
            .map(|s| SiteReport {
                domain: s.domain.clone(),
                aliases: s.aliases.clone(),
                time_zone: s.time_zone_name().to_string(),
                stored_custom_properties: s.props_allowlist.clone(),
                stats_public: s.public,
                rewrite_rules: s
                    .rewrite
                    .iter()
                    .map(|r| format!("{} -> {}", r.pattern, r.replacement))
                    .collect(),
                excluded_paths: s.exclusions.written().to_vec(),
            })
            .collect(),
        stored_fields: if aggregate { Vec::new() } else { stored_fields },
        builtin_event_properties: if aggregate {
            Vec::new()
        } else {
            crate::builtin_events::STORED_PROPS
                .iter()
                .map(|(event, key, what)| {
                    format!("`{event}`: `{key}`, stored even when props_allowlist does not list it: {what}")
                })
                .collect()
        },
        never_stored: NEVER_STORED.to_vec(),
        aggregate_only: aggregate.then(|| AggregateOnly {
            stored_instead: "no row per event: each batch is added to counts per site, local day and one of page, host, local hour, country, device class, browser, OS, and (for pageviews arriving from outside the site) source, referrer host and UTM values; the counts are pageviews, engaged milliseconds, scroll reports and their sum",
            unavailable_metrics: crate::stats::aggregate_mode::UNAVAILABLE_METRICS
                .iter()
                .map(|m| m.name())
                .collect(),
            unavailable_dimensions: crate::stats::aggregate_mode::UNAVAILABLE_DIMENSIONS
                .iter()
                .map(|d| d.name())
                .collect(),
            unavailable_other: "filters, combinations of dimensions (except weekday with hour of day), realtime visitors, the `all` date range, custom events (counted as dropped)",
        }),
        visitor_hash: (!aggregate).then(|| HashScheme {
            algorithm: "SHA-256, first 64 bits",
            inputs: "daily salt ‖ site ‖ 0x00 ‖ IP address (16 bytes) ‖ user agent",
            output_bits: 64,
            salt: "32 random bytes from the operating system's CSPRNG, one per day",
            salt_rotates: format!(
                "at 00:00 in {} (tomorrow's salt is agreed a day ahead)",
                config.privacy.salt_time_zone.iana_name().unwrap_or("UTC")
            ),
            previous_salt_deleted: format!(
                "{timeout} minutes after midnight (visits.timeout_minutes): wiped from memory and its partition dropped from the salts table"
            ),
            salt_stored_in: "ClickHouse table `salts` only (shared by all collectors)",
            current_salt_age_seconds: live.salt_age_seconds,
        }),
        retention: vec![
            TableRetention {
                table: "events",
                holds: if aggregate {
                    "nothing: aggregate-only mode writes no row per event"
                } else {
                    "one row per pageview, engagement or custom event (fields above)"
                },
                visitor_hash: !aggregate,
                kept: format!("{raw_days} days; deleted a UTC day at a time once the day's start is {raw_days} days old{}", last_run(live)),
            },
            TableRetention {
                table: "visits, visit_slices",
                holds: if aggregate || !config.visits.store {
                    "nothing: visits are not stored in this configuration"
                } else {
                    "visits that have ended, without the visitor hash: one record per visit (start, duration, pageviews, bounce, entry and exit page, the pages viewed, source, referrer, UTM values, country, device, browser, OS), one per pageview (page, engaged time, scroll depth) and one per custom event (name, allow-listed properties), each with its visit's attributes; `day_visitor`, a one-way hash of the visitor hash and the site's local date, counts distinct visitors per day and is never the same for one person on two days; no record links two visits on different days. visit_slices: which hours of visits are stored and when"
                },
                visitor_hash: false,
                kept: format!("{months} months; deleted a month at a time once the month's start is {months} months old"),
            },
            TableRetention {
                table: "rollup_daily, rollup_durations, rollup_days",
                holds: "counts per site, local day and page / source / country / device / browser / OS / hour, and visits per second of duration",
                visitor_hash: false,
                kept: format!("{months} months; deleted a month at a time once the month's start is {months} months old"),
            },
            TableRetention {
                table: "spool (local disk)",
                holds: "batches of event rows (fields above; no hash in aggregate-only mode) while ClickHouse cannot take them",
                visitor_hash: !aggregate,
                kept: format!(
                    "until ClickHouse has them (replayed, then deleted); at most {} MiB in {}",
                    config.ingest.spool_max_bytes / (1024 * 1024),
                    config.ingest.spool_dir.display()
                ),
            },
            TableRetention {
                table: retention::REJECTED_FILES,
                holds: "rows ClickHouse refused for good (schema or data errors), for an operator to inspect",
                visitor_hash: !aggregate,
                kept: format!("{raw_days} days, like raw events; deleted by the retention job"),
            },
            TableRetention {
                table: "salts",
                holds: "today's and tomorrow's salt",
                visitor_hash: false,
                kept: format!("until {timeout} minutes after the end of their day"),
            },
        ],
        location: Location {
            granularity: "country (ISO 3166-1 alpha-2); no region, city or coordinates are read",
            database: match (&config.privacy.country_database, &live.country_database_type) {
                (None, _) => "none configured: country is always empty".into(),
                (Some(p), Some(t)) => format!("{} ({t})", p.display()),
                (Some(p), None) => p.display().to_string(),
            },
            ip_address: "looked up in memory, never stored or logged; freed memory is wiped",
            rate_limit: match config.ingest.rate_limit_per_minute {
                0 => "off".into(),
                n => format!(
                    "{n} beacons per client per minute; the client is a keyed hash of IP address and user agent, held in memory only and forgotten when its minute ends"
                ),
            },
        },
        trusted_proxies: config
            .server
            .trusted_proxies
            .nets()
            .iter()
            .map(|n| n.to_string())
            .collect(),
        do_not_track: DoNotTrack {
            dnt: honoured(config.privacy.honor_dnt),
            gpc: honoured(config.privacy.honor_gpc),
        },
        bots: "recognised bots are answered like browsers and not stored; only counted by reason",
        storage: Storage {
            clickhouse_host: host,
            database: config.clickhouse.database.clone(),
        },
        access: Access {
            api_tokens: config.api_tokens.iter().map(|t| t.name.clone()).collect(),
            public_sites: config
                .sites
                .iter()
                .filter(|s| s.public)
                .map(|s| s.domain.clone())
                .collect(),
        },
    }
}

fn honoured(on: bool) -> &'static str {
    if on {
        "honoured: such beacons are not read or stored, only counted (no labels)"
    } else {
        "ignored: such beacons are stored like others"
    }
}

fn last_run(live: &Live) -> String {
    match live
        .last_retention_run
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
    {
        Some(t) => format!("; last run {t}"),
        None => String::new(),
    }
}

fn join(items: &[impl AsRef<str>]) -> String {
    items
        .iter()
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Host (and port) of the ClickHouse URL, without scheme, credentials or path.
fn clickhouse_host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            }
        }
        Err(_) => "(invalid URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(&format!(
            "{extra}\n[[sites]]\ndomain = \"www.example.org\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_flag_nothing_and_weaker_settings_are_flagged_first() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let r = build(&config(""), &Live::default(), now);
        assert!(
            r.weaker_than_defaults.is_empty(),
            "{:?}",
            r.weaker_than_defaults
        );
        let weak = config(
            "[server]\ntrusted_proxies = [\"0.0.0.0/0\"]\n[clickhouse]\nurl = \"http://db.example.net:8123\"\n\
             [privacy]\nquery_allowlist = [\"utm_source\", \"q\"]\nhonor_dnt = false\n\
             [retention]\nraw_days = 90\nrollup_months = 36\n[visits]\ntimeout_minutes = 60\n",
        );
        let r = build(&weak, &Live::default(), now);
        let text = r.weaker_than_defaults.join("\n");
        for needle in [
            "q",
            "Do Not Track",
            "90",
            "36",
            "60 minutes",
            "0.0.0.0/0",
            "unencrypted",
        ] {
            assert!(text.contains(needle), "{needle} not flagged in:\n{text}");
        }
        let md = markdown(&r);
        let flags = md.find("more than the defaults").unwrap();
        assert!(flags < md.find("What is stored").unwrap());
        assert!(md.contains("db.example.net:8123") && !md.contains("http://db"));
    }

    #[test]
    fn excluded_paths_and_builtin_event_props_are_reported() {
        let c = Config::parse(
            "[[sites]]\ndomain = \"www.example.org\"\nexclude_paths = [\"/admin/**\", \"/account/*\"]\n\
             [[sites]]\ndomain = \"shop.example.org\"\n",
        )
        .unwrap();
        let r = build(&c, &Live::default(), jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(r.sites[0].excluded_paths, ["/admin/**", "/account/*"]);
        assert!(r.sites[1].excluded_paths.is_empty());
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""excluded_paths":["/admin/**","/account/*"]"#),
            "{json}"
        );
        let md = markdown(&r);
        assert!(
            md.contains(
                "- www.example.org: nothing is stored for pages matching /admin/**, /account/*"
            ),
            "{md}"
        );
        assert!(!md.contains("- shop.example.org: nothing"), "{md}");
        // The built-in events' props are stored without the allow-list, and the report says so.
        for event in ["Outbound Link: Click", "File Download", "404"] {
            assert!(
                md.contains(&format!("- Built-in event `{event}`: `")),
                "{event} missing:\n{md}"
            );
        }
        assert!(md.contains("stored even when props_allowlist does not list it"));
        let props = r
            .stored_fields
            .iter()
            .find(|f| f.column == "props_keys")
            .unwrap();
        assert!(
            props.reduction.contains("built-in events"),
            "{}",
            props.reduction
        );
        // Aggregate-only mode keeps no custom events, so no built-in props either.
        let agg = Config::parse(
            "[privacy]\naggregate_only = true\n[[sites]]\ndomain = \"www.example.org\"\n",
        )
        .unwrap();
        assert!(build(&agg, &Live::default(), jiff::Timestamp::UNIX_EPOCH)
            .builtin_event_properties
            .is_empty());
    }

    #[test]
    fn the_field_table_lists_exactly_the_events_columns() {
        // Columns from the schema files, so the report cannot drift from what is stored.
        let mut columns = Vec::new();
        let create = include_str!("../../schema/0001_events.sql");
        let table = &create[create.find("CREATE TABLE").unwrap()..];
        let body = &table[table.find("(\n").unwrap() + 1..table.find("\n)").unwrap()];
        for line in body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
        {
            columns.push(line.split_whitespace().next().unwrap().to_string());
        }
        for m in crate::storage::MIGRATIONS {
            for stmt in crate::storage::statements(m.sql) {
                if let Some(rest) = stmt.split("ADD COLUMN ").nth(1) {
                    columns.push(rest.split_whitespace().next().unwrap().to_string());
                }
            }
        }
        let mut documented: Vec<String> = FIELDS.iter().map(|f| f.column.to_string()).collect();
        columns.sort();
        documented.sort();
        assert_eq!(columns, documented);
    }
}
