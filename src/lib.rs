//! tally: website analytics that are anonymous by construction.
//!
//! A beacon comes in over HTTP (`http`), is parsed (`beacon`) and reduced at ingest (`ingest`:
//! `client_ip`, `visitor` + `salt`, `geo`, `user_agent`, `page_url`) into an anonymous
//! `event::EventRow`, queued and written to ClickHouse in batches (`writer`, `storage`).
//! `server` owns the lifecycle; `config` is read and validated before anything runs.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod app;
pub mod beacon;
pub mod clickhouse_code;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dashboard;
pub mod error;
pub mod event;
pub mod fast_hash;
pub mod geo;
pub mod http;
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
pub mod stats;
pub mod storage;
pub mod tracker;
pub mod trusted_proxy;
pub mod user_agent;
pub mod visitor;
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
