//! tally: website analytics that are anonymous by construction.
//!
//! # Module map
//!
//! The beacon's path, downhill: `http` → `ingest` → `writer` → `sink` → ClickHouse or `spool`.
//!
//! | module | owns |
//! | --- | --- |
//! | `server` | the lifecycle: `prepare` (before any port is bound), `run(listener, prepared, shutdown)`, the shutdown order, the background tasks |
//! | `app` | the shared state one value holds: config, clock, metrics, ingest, report engine, dashboard |
//! | `config` | the file as written (`config::file`, defaults stated once) and the validated settings |
//! | `error` | the one error enum; beacon rejections and stats errors with their statuses |
//! | `http` | routing; the beacon endpoint (`http::events`), the stats API and privacy report (`http::stats_api`) |
//! | `response` | the response shapes every handler builds |
//! | `beacon` | the wire format (tally's and Plausible's keys) |
//! | `ingest` | a beacon and its request in, anonymous `event::EventRow`s out: where identifiers die |
//! | `trusted_proxy` | what a trusted reverse proxy may tell: the client address, TLS |
//! | `visitor`, `salt`, `clock` | the daily visitor hash, the salts it is made with, the time of day |
//! | `geo`, `user_agent`, `page_url`, `scrub`, `source` | country, device and bot classes, page and referrer reduction, personal data out of paths, traffic sources |
//! | `channel`, `country_names` | acquisition channels (`visit:channel`) and English country names (`visit:country_name`), as lookups and as report SQL |
//! | `fast_hash` | unkeyed hashers for ingest's maps whose keys are already keyed hashes or configured names |
//! | `rate_limit`, `path_budget` | per-client beacon budget, new paths per site and hour |
//! | `event` | the stored row and what each column is |
//! | `exclusions`, `goals`, `builtin_events` | excluded paths per site; goals per site (page patterns, event names); the tracker's built-in events (outbound links, downloads, 404) and their reduced props |
//! | `writer`, `sink`, `retry`, `spool`, `replay` | the bounded queue and batches, inserts, ClickHouse error handling, the disk spool and its replay |
//! | `clickhouse_code` | ClickHouse error codes, read in one place |
//! | `aggregate` | aggregate-only mode: batches folded into daily counts |
//! | `cluster` | the ClickHouse servers: one, or a cluster's shards and replicas, with failover |
//! | `storage` | migrations applied per server (`ddl`: their cluster form, `layout`: checks), versions of derived rows |
//! | `sql_text` | literals and timestamps written into SQL |
//! | `event_counts` | raw events per site and minute, as the visit and rollup jobs read them |
//! | `visits` | the visit job: ended visits stored without the hash (`visits::units` builds them) |
//! | `rollup` | the rollup job: complete days summed from stored visits |
//! | `retention` | the retention job: partitions past their age dropped |
//! | `stats` | reports: typed queries (`stats::query`) answered by the engine (`stats::engine`), the JSON API (`stats::api`), the SQL (`stats::sql`) |
//! | `dashboard` | the built-in dashboard: routes, login, sessions, panels, pages, CSV downloads, assets |
//! | `i18n` | the languages people are written to in (English, Dutch, French): messages from `locales/`, numbers and dates (ICU4X) |
//! | `grafana` | the Grafana dashboard, its SQL written by the report engine |
//! | `privacy_report` | what the configuration collects, drops and keeps, and for how long |
//! | `credentials`, `password` | secrets people hold and what the config keeps of them |
//! | `metrics`, `tracker` | Prometheus metrics; the embedded tracker script |
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod app;
pub mod beacon;
pub mod builtin_events;
pub mod channel;
pub mod clickhouse_code;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod country_names;
pub mod credentials;
pub mod dashboard;
pub mod error;
pub mod event;
pub mod event_counts;
pub mod exclusions;
pub mod fast_hash;
pub mod geo;
pub mod goals;
pub mod grafana;
pub mod http;
pub mod i18n;
pub mod ingest;
pub mod metrics;
pub mod page_url;
pub mod password;
pub mod path_budget;
pub mod privacy_report;
pub mod rate_limit;
pub mod replay;
pub mod response;
pub mod retention;
pub mod retry;
pub mod rollup;
pub mod salt;
pub mod scrub;
pub mod server;
pub mod sink;
pub mod source;
pub mod spool;
pub mod sql_text;
pub mod stats;
pub mod storage;
pub mod tracker;
pub mod trusted_proxy;
pub mod user_agent;
pub mod visitor;
pub mod visits;
pub mod writer;

pub use config::Config;
pub use error::Error;
pub use server::{prepare, run};

/// Every heap allocation is wiped when it is freed, so that IP addresses, user agents and salts
/// that passed through a buffer (ours or a dependency's: HTTP, ClickHouse client) do not linger
/// in freed memory. The wrapper is 1Password's `zeroizing-alloc`; it keeps this crate free of
/// `unsafe`. Any binary linking the library (the server, the tests) uses it. The `plain-alloc`
/// feature turns it off, only so that the ingest benchmark can measure what it costs.
#[cfg(not(feature = "plain-alloc"))]
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);
