//! A dashboard page's filtered unit rows, read from the visits once and kept for its panels.
//!
//! A filtered page asks a dozen reports of one site, period and filters. Filters that no
//! rollup keeps send each of them to the unit rows, and each scanned the whole period to keep
//! the few rows the filters select: thirteen scans of 2.8 M rows for a 30-day page with three
//! filters on the reports benchmark. Instead the engine selects those rows once into a
//! temporary table of a ClickHouse session on each shard (`sql::units::prefilter`) and the
//! panels' reports read that table ([`crate::stats::Stats::run_with`]). A temporary table
//! belongs to its session alone, is dropped when the page is done ([`Prefiltered::release`])
//! and, should tally stop before that, by the server when the session expires
//! ([`SESSION_TIMEOUT_SECONDS`]): nothing of it outlives the page. A session takes one query
//! at a time, so the panels' reports over it take turns (each reads a few thousand rows).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clickhouse::Client;
use jiff::Timestamp;
use tokio::sync::Mutex;

use super::query::{Filter, Query};
use crate::clickhouse_code::{self, SESSION_IS_LOCKED};

/// Most unit rows a page's prefiltered table may hold; filters that keep more (a broad
/// `contains` over a long period, the most visited page of a busy site) are read by each
/// report as before, so that a table in ClickHouse's memory stays under about 160 MB (its
/// columns take about 300–400 bytes a row uncompressed: an estimate from the `visits` columns'
/// sizes, 18.16 does not report a temporary table's memory). The most
/// visited page of the reports benchmark's site (10 M events in 90 days) keeps 331,000 rows
/// over 30 days.
pub const MAX_ROWS: u64 = 400_000;

/// Seconds of inactivity after which ClickHouse drops a session and its temporary tables.
pub const SESSION_TIMEOUT_SECONDS: u32 = 60;

/// The table's name in its session.
pub const TABLE: &str = "tally_prefiltered";

/// How often a query is asked again while ClickHouse still holds the session for the previous
/// one, waiting 2, 4, … ms in between (a few ms in all: the server lets go of the session right
/// after sending the previous answer).
const LOCKED_RETRIES: u64 = 8;

/// One shard's session: a client bound to it, and the turn its queries take.
pub struct Session {
    client: Client,
    turn: Mutex<()>,
}

impl Session {
    /// A new session on `client`'s server, under a random id.
    pub fn open(client: &Client) -> Session {
        let id = format!("tally-{:032x}", rand::random::<u128>());
        Session {
            client: client
                .clone()
                .with_setting("session_id", id)
                .with_setting("session_timeout", SESSION_TIMEOUT_SECONDS.to_string()),
            turn: Mutex::new(()),
        }
    }

    /// Runs one query in the session, in its turn. ClickHouse answers a query of a session it
    /// still holds for the previous one with `SESSION_IS_LOCKED`, which the previous one's
    /// answer can overtake; such a query is asked again.
    pub async fn run<T, F, Fut>(&self, mut query: F) -> Result<T, clickhouse::error::Error>
    where
        F: FnMut(&Client) -> Fut,
        Fut: Future<Output = Result<T, clickhouse::error::Error>>,
    {
        let _turn = self.turn.lock().await;
        let mut attempt = 0;
        loop {
            match query(&self.client).await {
                Err(e)
                    if clickhouse_code::of(&e) == Some(SESSION_IS_LOCKED)
                        && attempt < LOCKED_RETRIES =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(2 * attempt)).await;
                }
                answer => return answer,
            }
        }
    }
}

/// The prefiltered unit rows of one site's filters over one period, in a table of one session
/// per shard. Only the page's own period: a comparison's earlier period is read by the
/// headline alone, whose aggregate reads a few columns where the table would copy them all.
pub struct Prefiltered {
    site: String,
    filters: Vec<Filter>,
    /// The period `[from, to)`.
    period: (Timestamp, Timestamp),
    /// One per shard, in the cluster's order.
    sessions: Vec<Session>,
    /// Reads answered from the tables (one per shard and report computation).
    reads: AtomicU64,
}

impl Prefiltered {
    /// The rows of `q`'s site and filters over `[from, to)`, with a new session on each of
    /// `clients` (one per shard, in the cluster's order) for their tables to be filled in.
    pub fn new<'a>(
        q: &Query,
        (from, to): (Timestamp, Timestamp),
        clients: impl Iterator<Item = &'a Client>,
    ) -> Prefiltered {
        Prefiltered {
            site: q.site_id.clone(),
            filters: q.filters.clone(),
            period: (from, to),
            sessions: clients.map(Session::open).collect(),
            reads: AtomicU64::new(0),
        }
    }

    /// The shards' sessions, in the cluster's order.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// The session whose table holds the rows of `q` over `[from, to)` on shard `shard`: only
    /// for the same site, filters and period, and not for conversion reports (their rows
    /// include custom events whatever a goal filter says).
    pub fn lookup(
        &self,
        shard: usize,
        q: &Query,
        from: Timestamp,
        to: Timestamp,
    ) -> Option<&Session> {
        if q.site_id != self.site
            || q.filters != self.filters
            || q.counts_conversions()
            || self.period != (from, to)
        {
            return None;
        }
        self.sessions.get(shard)
    }

    /// Counts one read answered from a table.
    pub fn count_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads answered from the tables so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Drops the tables now (the session's expiry would, a minute later).
    pub async fn release(self) {
        let drop = format!("DROP TEMPORARY TABLE IF EXISTS {TABLE}");
        for session in &self.sessions {
            let dropped = session
                .run(|client| client.query_raw(&drop).execute())
                .await;
            if let Err(e) = dropped {
                tracing::debug!(error = %clickhouse_code::describe(&e), "dropping a prefiltered table");
            }
        }
    }
}
