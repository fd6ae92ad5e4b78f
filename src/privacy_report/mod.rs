//! The privacy officer's report: what the running configuration collects, drops and keeps, and
//! for how long; built from the effective config and the code's own constants, never from prose
//! that could drift from them. `tally privacy-report` prints it; `GET /privacy` serves it live.
//!
//! Its sentences are messages in `locales/*.toml` (`privacy.*`), so the report is written in
//! English, Dutch or French ([`build`] takes the language); the JSON form is always built in
//! English, so machines read the same values whatever the reader's language.

use serde::Serialize;

use crate::config::{Config, DEFAULT_QUERY_ALLOWLIST};
use crate::event::FIELDS;
use crate::i18n::Tr;
use crate::retention;

mod cluster;
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
    pub never_stored: Vec<String>,
    /// `privacy.aggregate_only`: what is kept instead of events, and which reports are lost.
    pub aggregate_only: Option<AggregateOnly>,
    /// None in aggregate-only mode: no hash is computed and no salt is made.
    pub visitor_hash: Option<HashScheme>,
    pub retention: Vec<TableRetention>,
    pub location: Location,
    pub trusted_proxies: Vec<String>,
    pub do_not_track: DoNotTrack,
    pub bots: String,
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
    /// `include_paths`: when not empty, beacons for every other page are answered 202 and not
    /// stored.
    pub included_paths: Vec<String>,
    /// `[[sites.goals]]` as `name: page PATTERN` or `name: event NAME`: counted from the stored
    /// pageviews and custom events when a report asks; nothing more is collected for them.
    pub goals: Vec<String>,
}

#[derive(Serialize)]
pub struct Field {
    pub column: &'static str,
    pub what: String,
    pub from: String,
    pub reduction: String,
    pub kept: String,
}

#[derive(Serialize)]
pub struct AggregateOnly {
    pub stored_instead: String,
    pub unavailable_metrics: Vec<&'static str>,
    pub unavailable_dimensions: Vec<&'static str>,
    pub unavailable_other: String,
}

#[derive(Serialize)]
pub struct HashScheme {
    pub algorithm: String,
    pub inputs: String,
    pub output_bits: u32,
    pub salt: String,
    pub salt_rotates: String,
    pub previous_salt_deleted: String,
    pub salt_stored_in: String,
    pub current_salt_age_seconds: Option<i64>,
}

#[derive(Serialize)]
pub struct TableRetention {
    pub table: &'static str,
    pub holds: String,
    pub visitor_hash: bool,
    pub kept: String,
}

#[derive(Serialize)]
pub struct Location {
    pub granularity: String,
    pub database: String,
    pub ip_address: String,
    pub rate_limit: String,
}

#[derive(Serialize)]
pub struct DoNotTrack {
    pub dnt: String,
    pub gpc: String,
}

#[derive(Serialize)]
pub struct Storage {
    pub clickhouse_host: String,
    pub database: String,
    /// Shards, replicas and where each table lives, in cluster mode.
    pub cluster: Option<cluster::ClusterReport>,
}

#[derive(Serialize)]
pub struct Access {
    pub api_tokens: Vec<String>,
    pub public_sites: Vec<String>,
}

/// What each of `builtin_events::STORED_PROPS` stores, as message keys (in its order).
const BUILTIN_WHAT: [&str; 3] = [
    "privacy.builtin.what_0",
    "privacy.builtin.what_1",
    "privacy.builtin.what_2",
];

/// Things tally never stores, whatever the configuration: the keys of their sentences
/// (`privacy.never_stored.KEY`).
pub const NEVER_STORED: [&str; 8] = [
    "ip_addresses",
    "user_agents",
    "query_parameters",
    "fragments",
    "referrers",
    "cookies",
    "devices",
    "bots_and_opt_outs",
];

/// What `column` of the events table is (`what`), where it comes from (`from`) or how it is
/// reduced (`reduction`), in `tr`'s language: `privacy.field.COLUMN.PART` (the English file
/// says what `event::FIELDS` says; a test keeps them equal).
fn field_text(tr: &Tr, column: &str, part: &str) -> String {
    tr.t(&format!("privacy.field.{column}.{part}"))
}

/// The report of `config`, written in `tr`'s language.
pub fn build(config: &Config, live: &Live, now: jiff::Timestamp, tr: &Tr) -> Report {
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
        weaker.push(tr.f(
            "privacy.weaker.query_allowlist",
            &[("params", &join(&extra_params))],
        ));
    }
    for site in &config.sites {
        if !site.props_allowlist.is_empty() {
            weaker.push(tr.f(
                "privacy.weaker.props",
                &[
                    ("site", &site.domain),
                    ("props", &site.props_allowlist.join(", ")),
                ],
            ));
        }
    }
    if !config.privacy.honor_dnt {
        weaker.push(tr.t("privacy.weaker.dnt"));
    }
    if !config.privacy.honor_gpc {
        weaker.push(tr.t("privacy.weaker.gpc"));
    }
    let default_raw_days = crate::config::file::Retention::default().raw_days;
    if raw_days > default_raw_days {
        weaker.push(tr.f(
            "privacy.weaker.raw_days",
            &[("days", &raw_days), ("default", &default_raw_days)],
        ));
    }
    if months > 25 {
        weaker.push(tr.f("privacy.weaker.rollup_months", &[("months", &months)]));
    }
    if timeout > 30 {
        weaker.push(tr.f("privacy.weaker.timeout", &[("minutes", &timeout)]));
    }
    for net in config.server.trusted_proxies.nets() {
        if net.prefix_len() == 0 {
            weaker.push(tr.f("privacy.weaker.proxies", &[("net", &net)]));
        }
    }
    let host = clickhouse_host(&config.clickhouse.url);
    let bare_host = url::Url::parse(&config.clickhouse.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let loopback = ["127.0.0.1", "localhost", "[::1]", "::1"].contains(&bare_host.as_str());
    if !config.clickhouse.url.starts_with("https://") && !loopback {
        weaker.push(tr.f("privacy.weaker.plain_http", &[("host", &host)]));
    }

    let stored_fields = FIELDS
        .iter()
        .map(|f| Field {
            column: f.column,
            what: field_text(tr, f.column, "what"),
            from: field_text(tr, f.column, "from"),
            reduction: match f.column {
                "query" => tr.f(
                    "privacy.reduction.query",
                    &[("params", &join(&config.privacy.query_allowlist))],
                ),
                "name" => tr.f(
                    "privacy.reduction.name",
                    &[("n", &config.ingest.max_event_name_chars)],
                ),
                "props_keys" => tr.f(
                    "privacy.reduction.props_keys_builtin",
                    &[("base", &field_text(tr, f.column, "reduction"))],
                ),
                "props_values" => tr.f(
                    "privacy.reduction.props_values_builtin",
                    &[("base", &field_text(tr, f.column, "reduction"))],
                ),
                "country" if config.privacy.country_database.is_none() => {
                    tr.t("privacy.reduction.country_none")
                }
                _ => field_text(tr, f.column, "reduction"),
            },
            kept: tr.f("privacy.kept_raw", &[("days", &raw_days)]),
        })
        .collect();
    let kept_months = tr.f("privacy.retention.kept_months", &[("months", &months)]);

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
                excluded_paths: s.exclusions.excluded().to_vec(),
                included_paths: s.exclusions.included().to_vec(),
                goals: s
                    .goals
                    .iter()
                    .map(|g| match &g.kind {
                        crate::goals::GoalKind::Page(p) => format!("{}: page {p}", g.name),
                        crate::goals::GoalKind::Event(e) => format!("{}: event {e}", g.name),
                    })
                    .collect(),
            })
            .collect(),
        stored_fields: if aggregate { Vec::new() } else { stored_fields },
        builtin_event_properties: if aggregate {
            Vec::new()
        } else {
            crate::builtin_events::STORED_PROPS
                .iter()
                .enumerate()
                .map(|(i, (event, key, _))| {
                    tr.f(
                        "privacy.builtin.line",
                        &[
                            ("event", event),
                            ("key", key),
                            ("what", &tr.t(BUILTIN_WHAT[i])),
                        ],
                    )
                })
                .collect()
        },
        never_stored: NEVER_STORED
            .iter()
            .map(|k| tr.t(&format!("privacy.never_stored.{k}")))
            .collect(),
        aggregate_only: aggregate.then(|| AggregateOnly {
            stored_instead: tr.t("privacy.aggregate.stored_instead"),
            unavailable_metrics: crate::stats::aggregate_mode::UNAVAILABLE_METRICS
                .iter()
                .map(|m| m.name())
                .collect(),
            unavailable_dimensions: crate::stats::aggregate_mode::UNAVAILABLE_DIMENSIONS
                .iter()
                .map(|d| d.name())
                .collect(),
            unavailable_other: tr.t("privacy.aggregate.unavailable_other"),
        }),
        visitor_hash: (!aggregate).then(|| HashScheme {
            algorithm: tr.t("privacy.hash.algorithm"),
            inputs: tr.t("privacy.hash.inputs"),
            output_bits: 64,
            salt: tr.t("privacy.hash.salt"),
            salt_rotates: tr.f(
                "privacy.hash.salt_rotates",
                &[(
                    "zone",
                    &config.privacy.salt_time_zone.iana_name().unwrap_or("UTC"),
                )],
            ),
            previous_salt_deleted: tr.f(
                "privacy.hash.previous_salt_deleted",
                &[("minutes", &timeout)],
            ),
            salt_stored_in: tr.t("privacy.hash.salt_stored_in"),
            current_salt_age_seconds: live.salt_age_seconds,
        }),
        retention: vec![
            TableRetention {
                table: "events",
                holds: if aggregate {
                    tr.t("privacy.retention.events.holds_aggregate")
                } else {
                    tr.t("privacy.retention.events.holds")
                },
                visitor_hash: !aggregate,
                kept: tr.f(
                    "privacy.retention.events.kept",
                    &[("days", &raw_days), ("last_run", &last_run(live, tr))],
                ),
            },
            TableRetention {
                table: "events_minutes",
                holds: tr.t("privacy.retention.event_minutes.holds"),
                visitor_hash: false,
                kept: tr.f(
                    "privacy.retention.event_minutes.kept",
                    &[("days", &raw_days)],
                ),
            },
            TableRetention {
                table: "events_by_hour",
                holds: if aggregate {
                    tr.t("privacy.retention.events.holds_aggregate")
                } else {
                    tr.t("privacy.retention.events_by_hour.holds")
                },
                visitor_hash: !aggregate,
                kept: tr.f(
                    "privacy.retention.event_minutes.kept",
                    &[("days", &raw_days)],
                ),
            },
            TableRetention {
                table: "visit_carry",
                holds: if aggregate || !config.visits.store {
                    tr.t("privacy.retention.visit_carry.holds_none")
                } else {
                    tr.t("privacy.retention.visit_carry.holds")
                },
                visitor_hash: !aggregate && config.visits.store,
                kept: tr.f(
                    "privacy.retention.event_minutes.kept",
                    &[("days", &raw_days)],
                ),
            },
            TableRetention {
                table: "visits, visit_pages, visit_page_days, visit_slices",
                holds: if aggregate || !config.visits.store {
                    tr.t("privacy.retention.visits.holds_none")
                } else {
                    tr.t("privacy.retention.visits.holds")
                },
                visitor_hash: false,
                kept: kept_months.clone(),
            },
            TableRetention {
                table:
                    "rollup_daily, rollup_durations, rollup_pairs, rollup_page_seconds, rollup_days",
                holds: tr.t("privacy.retention.rollups.holds"),
                visitor_hash: false,
                kept: kept_months,
            },
            TableRetention {
                table: "spool (local disk)",
                holds: tr.t("privacy.retention.spool.holds"),
                visitor_hash: !aggregate,
                kept: tr.f(
                    "privacy.retention.spool.kept",
                    &[
                        ("mib", &(config.ingest.spool_max_bytes / (1024 * 1024))),
                        ("dir", &config.ingest.spool_dir.display()),
                    ],
                ),
            },
            TableRetention {
                table: retention::REJECTED_FILES,
                holds: tr.t("privacy.retention.rejected.holds"),
                visitor_hash: !aggregate,
                kept: tr.f("privacy.retention.rejected.kept", &[("days", &raw_days)]),
            },
            TableRetention {
                table: "salts",
                holds: tr.t("privacy.retention.salts.holds"),
                visitor_hash: false,
                kept: tr.f("privacy.retention.salts.kept", &[("minutes", &timeout)]),
            },
            TableRetention {
                table: "dashboard_sessions",
                holds: tr.t("privacy.retention.sessions.holds"),
                visitor_hash: false,
                kept: tr.plural(
                    "privacy.retention.sessions.kept",
                    config.dashboard.session_max.as_secs().div_ceil(86_400) as f64,
                    &[],
                ),
            },
        ],
        location: Location {
            granularity: tr.t("privacy.location.granularity"),
            database: match (
                &config.privacy.country_database,
                &live.country_database_type,
            ) {
                (None, _) => tr.t("privacy.location.database_none"),
                (Some(p), Some(t)) => format!("{} ({t})", p.display()),
                (Some(p), None) => p.display().to_string(),
            },
            ip_address: tr.t("privacy.location.ip_address"),
            rate_limit: match config.ingest.rate_limit_per_minute {
                0 => tr.t("privacy.location.rate_limit_off"),
                n => tr.f("privacy.location.rate_limit", &[("n", &n)]),
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
            dnt: honoured(config.privacy.honor_dnt, tr),
            gpc: honoured(config.privacy.honor_gpc, tr),
        },
        bots: tr.t("privacy.bots"),
        storage: Storage {
            clickhouse_host: host,
            database: config.clickhouse.database.clone(),
            cluster: cluster::report(&config.clickhouse),
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

fn honoured(on: bool, tr: &Tr) -> String {
    if on {
        tr.t("privacy.honoured")
    } else {
        tr.t("privacy.ignored")
    }
}

fn last_run(live: &Live, tr: &Tr) -> String {
    match live
        .last_retention_run
        .and_then(|t| jiff::Timestamp::from_second(t).ok())
    {
        Some(t) => tr.f("privacy.retention.last_run", &[("time", &t)]),
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

    use crate::i18n::{tr, Lang};

    const WEAK: &str = "[server]\ntrusted_proxies = [\"0.0.0.0/0\"]\n[clickhouse]\nurl = \"http://db.example.net:8123\"\n\
         [privacy]\nquery_allowlist = [\"utm_source\", \"q\"]\nhonor_dnt = false\n\
         [retention]\nraw_days = 90\nrollup_months = 36\n[visits]\ntimeout_minutes = 60\n";

    #[test]
    fn defaults_flag_nothing_and_weaker_settings_are_flagged_first() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let en = tr(Lang::En);
        let r = build(&config(""), &Live::default(), now, en);
        assert!(
            r.weaker_than_defaults.is_empty(),
            "{:?}",
            r.weaker_than_defaults
        );
        let weak = config(WEAK);
        let r = build(&weak, &Live::default(), now, en);
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
        let md = markdown(&r, en);
        let flags = md.find("more than the defaults").unwrap();
        assert!(flags < md.find("What is stored").unwrap());
        assert!(md.contains("db.example.net:8123") && !md.contains("http://db"));
    }

    #[test]
    fn excluded_paths_and_builtin_event_props_are_reported() {
        let c = Config::parse(
            "[[sites]]\ndomain = \"www.example.org\"\nexclude_paths = [\"/admin/**\", \"/account/*\"]\n\
             include_paths = [\"/afval/**\", \"/\"]\n\
             [[sites.goals]]\npage = \"/afval*\"\n[[sites.goals]]\nevent = \"Download\"\n\
             [[sites]]\ndomain = \"shop.example.org\"\n",
        )
        .unwrap();
        let r = build(
            &c,
            &Live::default(),
            jiff::Timestamp::UNIX_EPOCH,
            tr(Lang::En),
        );
        assert_eq!(r.sites[0].excluded_paths, ["/admin/**", "/account/*"]);
        assert!(r.sites[1].excluded_paths.is_empty());
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""excluded_paths":["/admin/**","/account/*"]"#),
            "{json}"
        );
        let md = markdown(&r, tr(Lang::En));
        assert!(
            md.contains(
                "- www.example.org: nothing is stored for pages matching /admin/**, /account/*"
            ),
            "{md}"
        );
        assert!(!md.contains("- shop.example.org: nothing"), "{md}");
        assert_eq!(r.sites[0].included_paths, ["/afval/**", "/"]);
        assert!(r.sites[1].included_paths.is_empty());
        assert!(
            json.contains(r#""included_paths":["/afval/**","/"]"#),
            "{json}"
        );
        assert!(
            md.contains("- www.example.org: only pages matching /afval/**, / are counted; nothing is stored for the others"),
            "{md}"
        );
        assert!(!md.contains("- shop.example.org: only"), "{md}");
        assert_eq!(
            r.sites[0].goals,
            ["Visit /afval*: page /afval*", "Download: event Download"]
        );
        assert!(
            md.contains("- www.example.org: goals Visit /afval*: page /afval*; Download: event Download (counted from the stored"),
            "{md}"
        );
        assert!(!md.contains("- shop.example.org: goals"), "{md}");
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
        assert!(build(
            &agg,
            &Live::default(),
            jiff::Timestamp::UNIX_EPOCH,
            tr(Lang::En)
        )
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
                if let Some(rest) = stmt.strip_prefix("ALTER TABLE {db}.events ADD COLUMN ") {
                    columns.push(rest.split_whitespace().next().unwrap().to_string());
                } else {
                    assert!(
                        !stmt.contains(".events ADD"),
                        "{stmt}: an events column added another way"
                    );
                }
            }
        }
        let mut documented: Vec<String> = FIELDS.iter().map(|f| f.column.to_string()).collect();
        columns.sort();
        documented.sort();
        assert_eq!(columns, documented);
    }

    /// The report in Dutch and French says everything the English one does, in those
    /// languages: built with a `Tr` that marks every text it makes, what is left unmarked in
    /// the Markdown is only names from the configuration and the code (sites, settings in
    /// backticks, tables, hosts, numbers).
    #[test]
    fn the_report_is_written_in_each_language_with_no_english_left() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let configs = [
            config(""),
            config(WEAK),
            config("[privacy]\naggregate_only = true\n"),
            config("[visits]\nstore = false\n[ingest]\nrate_limit_per_minute = 0\n"),
        ];
        let live = [
            Live::default(),
            Live {
                salt_age_seconds: Some(3 * 3600 + 120),
                last_retention_run: Some(1_700_000_000),
                country_database_type: Some("DBIP-Country".into()),
            },
        ];
        let marked = regex::Regex::new(r"⟦[^⟦⟧]*⟧").unwrap();
        // Names from the config and the code: code spans, table names in the retention table,
        // time zones (`Europe/Amsterdam`).
        let names = regex::Regex::new(
            r"`[^`]*`|www\.example\.org|db\.example\.net|localhost|DBIP-Country|UTC|tally|\bMiB\b|\b[A-Z][a-z]+/[A-Za-z_]+\b",
        )
        .unwrap();
        for lang in Lang::ALL {
            let tr = crate::i18n::Tr::marked(lang, "⟦", "⟧");
            for c in &configs {
                for l in &live {
                    let mut md = markdown(&build(c, l, now, tr), tr);
                    while marked.is_match(&md) {
                        md = marked.replace_all(&md, "").into_owned();
                    }
                    let left = names.replace_all(&md, "");
                    let words: Vec<&str> = left
                        .split(|c: char| !c.is_alphabetic())
                        .filter(|w| !w.is_empty())
                        .collect();
                    assert!(words.is_empty(), "{lang:?}: {words:?} in\n{md}");
                }
            }
        }
        // And the real texts: the Dutch and French reports name the same settings.
        let weak = config(WEAK);
        for (lang, needles) in [
            (
                Lang::Nl,
                [
                    "# Privacyrapport",
                    "beacons met Do Not Track worden opgeslagen",
                    "| `visitor` | dagelijkse bezoekershash |",
                ],
            ),
            (
                Lang::Fr,
                [
                    "# Rapport de confidentialité",
                    "balises avec Do Not Track sont enregistrées",
                    "| `visitor` | empreinte quotidienne du visiteur |",
                ],
            ),
        ] {
            let md = markdown(&build(&weak, &Live::default(), now, tr(lang)), tr(lang));
            for n in needles {
                assert!(md.contains(n), "{n} not in:\n{md}");
            }
            assert!(md.contains("90") && md.contains("0.0.0.0/0"));
        }
    }
}
