//! The collector's lifecycle: prepare (before any port is bound), run, and shut down in order.
//!
//! `prepare` opens the country database, migrates the schema and agrees on today's salt; only
//! then does the binary bind its port. `run` serves until the shutdown future resolves, then:
//! stop accepting, let in-flight requests finish (up to `server.shutdown_grace_secs`), close and
//! drain the writer queue into ClickHouse, stop the background tasks, return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::dashboard::{Dashboard, SessionStore};
use crate::error::Error;
use crate::geo::CountryDb;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::retention::Retention;
use crate::rollup::RollupJob;
use crate::salt::{SaltBook, SaltStore};
use crate::sink::Sink;
use crate::spool::Spool;
use crate::storage;
use crate::tracker::Tracker;
use crate::visitor::Visitors;
use crate::visits::VisitJob;
use crate::writer::{self, Writer, WriterConfig};

/// Days of events whose paths the new-path budget treats as known at start.
const KNOWN_PATH_DAYS: u32 = 7;
const KNOWN_PATHS_PER_SITE: u32 = 100_000;
/// How often the salt book is refreshed outside the grace after midnight.
const SALT_REFRESH: Duration = Duration::from_secs(60);
/// How often the cross-midnight carry set is refreshed inside the grace.
const CARRY_REFRESH: Duration = Duration::from_secs(5);

/// Everything built from the config, before the port is bound.
pub struct Prepared {
    app: Arc<App>,
    cluster: Arc<Cluster>,
    /// Servers that did not answer when the schema was migrated (cluster mode).
    unmigrated: Vec<String>,
    writer: Writer,
    sink: Arc<Sink>,
    spooled: Arc<tokio::sync::Notify>,
    salts: SaltStore,
    /// The dashboard's login sessions, whose expired days are dropped in the background.
    sessions: Arc<SessionStore>,
    session_max: Duration,
    visits: Option<VisitJob>,
    rollup: Option<RollupJob>,
    retention: Retention,
    grace: Duration,
    limits: ConnectionLimits,
    aggregate_only: bool,
}

/// What one connection may use (from `[server]`).
#[derive(Clone, Copy)]
struct ConnectionLimits {
    max_connections: usize,
    header_timeout: Duration,
    max_header_bytes: usize,
}

impl Prepared {
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }
}

/// Builds the collector: country database, schema, salts, writer. Fails before any port is bound.
pub async fn prepare(config: &Config, clock: Arc<dyn Clock>) -> Result<Prepared, Error> {
    let countries = match &config.privacy.country_database {
        Some(path) => CountryDb::open(path)?,
        None => CountryDb::none(),
    };
    let cluster = Arc::new(Cluster::new(&config.clickhouse));
    let migrated = storage::migrate(&cluster).await?;
    let salts = SaltStore::ClickHouse(cluster.clone());
    let book = SaltBook::new(config.privacy.salt_time_zone.clone(), config.visits.timeout);
    // Aggregate-only mode hashes nothing, so it makes and keeps no salt at all.
    if !config.privacy.aggregate_only {
        book.refresh(&salts, clock.now()).await?;
    }

    let metrics = Arc::new(Metrics::new());
    let spool = Arc::new(Spool::open(
        &config.ingest.spool_dir,
        config.ingest.spool_max_bytes,
        metrics.clone(),
    )?);
    let (bytes, batches) = spool.usage();
    if batches > 0 {
        tracing::info!(
            batches,
            bytes,
            "spool holds batches from before; replaying them"
        );
    }
    let sink = Arc::new(Sink {
        cluster: cluster.clone(),
        spool,
        metrics: metrics.clone(),
        aggregate: config
            .privacy
            .aggregate_only
            .then(|| crate::aggregate::Folder::new(config)),
        unsettled: Default::default(),
    });
    let spooled = Arc::new(tokio::sync::Notify::new());
    let (queue, writer) = writer::spawn(
        sink.clone(),
        WriterConfig {
            capacity: config.ingest.queue_capacity,
            batch_size: config.ingest.batch_size,
            flush_interval: config.ingest.flush_interval,
            shutdown_patience: config.server.shutdown_grace,
        },
        spooled.clone(),
    );
    // Aggregate-only mode writes counts directly; there are no raw events to build visits from
    // or roll up.
    let build_visits = config.visits.store && !config.privacy.aggregate_only;
    let visits = build_visits.then(|| VisitJob::new(config, &cluster, metrics.clone()));
    // Rollups are summed from stored visits.
    let rollup = (config.rollups.enabled && build_visits)
        .then(|| RollupJob::new(config, &cluster, metrics.clone()));
    let stats = Arc::new(crate::stats::Stats::new(
        config,
        cluster.clone(),
        metrics.clone(),
    ));
    let retention = Retention::new(config, cluster.clone(), metrics.clone());
    let ingest = Ingest::new(
        config,
        countries,
        Visitors::new(book),
        clock.clone(),
        metrics.clone(),
        queue,
        cluster.clone(),
    );
    // The budget for new paths must know the paths sites already have, or a restart would
    // count a big site's every page as new.
    let known = storage::recent_paths(&cluster, KNOWN_PATH_DAYS, KNOWN_PATHS_PER_SITE).await?;
    for (site, path) in &known {
        ingest.paths.learn(site, [path.as_str()]);
    }
    let sessions = Arc::new(SessionStore::ClickHouse(cluster.clone()));
    let app = Arc::new(App {
        config: Arc::new(config.clone()),
        dashboard: Dashboard::new(config, stats.clone(), sessions.clone(), clock.clone()),
        clock,
        metrics,
        ingest,
        stats,
        tracker: Tracker::new(),
        ready: true.into(),
    });
    Ok(Prepared {
        app,
        cluster,
        unmigrated: migrated.unreachable,
        writer,
        sink,
        spooled,
        salts,
        sessions,
        session_max: config.dashboard.session_max,
        visits,
        rollup,
        retention,
        grace: config.server.shutdown_grace,
        aggregate_only: config.privacy.aggregate_only,
        limits: ConnectionLimits {
            max_connections: config.server.max_connections,
            header_timeout: config.server.header_timeout,
            max_header_bytes: config.server.max_header_bytes,
        },
    })
}

/// Serves on `listener` until `shutdown` resolves, then shuts down in order (see module docs).
pub async fn run(listener: TcpListener, prepared: Prepared, shutdown: impl Future<Output = ()>) {
    let Prepared {
        app,
        cluster,
        unmigrated,
        writer,
        sink,
        spooled,
        salts,
        sessions,
        session_max,
        visits,
        rollup,
        retention,
        grace,
        limits,
        aggregate_only,
    } = prepared;
    // Replays the spool (a previous run's too) beside new traffic.
    let mut background = vec![
        tokio::spawn(crate::replay::run(sink, spooled)),
        tokio::spawn(cluster.clone().watch()),
    ];
    if !unmigrated.is_empty() {
        background.push(tokio::spawn(migrate_when_back(cluster.clone(), unmigrated)));
    }
    if !aggregate_only {
        background.push(tokio::spawn(salt_maintenance(app.clone(), salts)));
    }
    background.push(tokio::spawn(crate::dashboard::maintain_sessions(
        sessions,
        session_max,
        app.clock.clone(),
    )));
    // Retention waits until the visit job has stored what raw events it needs (after an upgrade
    // to a shorter raw_days, the backfill first).
    let (caught_up, visits_caught_up) = tokio::sync::oneshot::channel();
    match visits {
        Some(job) => {
            // Aborting it mid-slice at shutdown is safe: the slice is not marked done and is redone.
            background.push(tokio::spawn(crate::visits::maintain(
                job,
                app.clock.clone(),
                caught_up,
            )));
        }
        None => drop(caught_up),
    }
    background.push(tokio::spawn(crate::retention::maintain(
        retention,
        app.clock.clone(),
        async move {
            // A dropped sender (no visit job) resolves at once.
            let _ = visits_caught_up.await;
        },
    )));

    if let Some(job) = rollup {
        // Aborting it mid-day at shutdown is safe: the day is not marked done and is redone.
        background.push(tokio::spawn(crate::rollup::maintain(
            job,
            app.clock.clone(),
        )));
    }

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header timeout also bounds an idle keep-alive connection: hyper starts it when it
    // waits for the next request (slow-loris guard).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes)
        .half_close(true);
    // half_close: while a request is being answered, hyper does not probe the socket for the
    // client's end-of-stream. The probe cost a read per request and, worse, needed room in the
    // read buffer while the request's bytes (head and body are slices of it) were still in
    // use, so hyper allocated a fresh 8 KiB buffer for every request and the old one was
    // wiped and freed. Now the buffer is reused as soon as the handler has let go of the
    // request, which it does before answering. A client that leaves mid-request is noticed
    // when its answer is written; its beacon, completely received, is still taken.
    //
    // At most 100 headers per request: hyper's default, left implicit on purpose. Setting
    // `max_headers` (even to 100) makes hyper fill its two header arrays element by element for
    // every request, where the default leaves them uninitialised.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Past the limit the connection is closed at once: cheaper than letting it wait,
                // and the client sees a reset rather than a hang.
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    app.metrics.connections_refused.inc();
                    drop(stream);
                    continue;
                };
                serve_connection(&builder, &graceful, app.clone(), stream, peer, permit, limits.header_timeout);
            }
            _ = &mut shutdown => break,
        }
    }

    // 1. Stop accepting.
    drop(listener);
    tracing::info!("shutting down: no new connections");
    // 2. Let in-flight requests finish.
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!("grace period over with connections still open"),
    }
    // 3. Flush what was accepted: to ClickHouse, or to the spool for the next start.
    app.ready.store(false, Ordering::Relaxed);
    writer.drain().await;
    // 4. Stop background work. The replayer may be mid-batch: that batch stays on disk and
    //    its rows are checked for duplicates when the next start replays it.
    for task in background {
        task.abort();
    }
    tracing::info!("shutdown complete");
}

fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    app: Arc<App>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    idle_limit: Duration,
) {
    let open = app.metrics.connections_open.clone();
    let activity = Arc::new(Activity::new());
    let seen = activity.clone();
    let service = service_fn(move |req| {
        let busy = seen.begin();
        let response = crate::http::handle(app.clone(), peer, req);
        async move {
            let r = response.await;
            drop(busy);
            r
        }
    });
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned();
    let conn = graceful.watch(conn);
    open.inc();
    tokio::spawn(async move {
        tokio::pin!(conn);
        // hyper's header timeout starts only once HTTP/1 is chosen, and HTTP/2 has no idle
        // timeout at all: a connection with no request in flight for `idle_limit` (seen at two
        // looks `idle_limit` apart) is dropped here (silent, stuck in protocol detection, or idle
        // HTTP/2). Nothing is in flight, so nothing is lost.
        let mut last = activity.state();
        let result = loop {
            tokio::select! {
                r = conn.as_mut() => break r,
                _ = tokio::time::sleep(idle_limit) => {
                    let now = activity.state();
                    if Activity::idle_since(last, now) {
                        break Ok(());
                    }
                    last = now;
                }
            }
        };
        if let Err(e) = result {
            // The peer address is deliberately not logged.
            tracing::debug!(error = %e, "connection ended with an error");
        }
        open.dec();
        drop(permit);
    });
}

/// Requests in flight on one connection, and how many began or ended so far: one atomic word
/// (in flight in the low 32 bits, the count of changes above), so that a request costs one
/// atomic add as it begins and one as it ends, and no clock read. The connection's task looks
/// at it once per `idle_limit`: unchanged and nothing in flight means no request for at least
/// that long (at most twice that since the last one ended).
struct Activity(AtomicU64);

/// Added as a request begins: one more change, one more in flight.
const BEGIN: u64 = (1 << 32) + 1;
/// Added as a request ends: one more change, one fewer in flight (never below zero: every end
/// follows its begin, so the low word has no borrow to give).
const END: u64 = (1 << 32) - 1;

impl Activity {
    fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    fn state(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.0.fetch_add(BEGIN, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// No request in flight now, and none began or ended since `before` was read.
    fn idle_since(before: u64, now: u64) -> bool {
        now == before && now as u32 == 0
    }
}

/// One request in flight; ends when dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0 .0.fetch_add(END, Ordering::Relaxed);
    }
}

/// Migrates the servers that did not answer at start as soon as they do (cluster mode): until
/// then their shard's other replicas serve, and replication brings them the data.
async fn migrate_when_back(cluster: Arc<Cluster>, mut pending: Vec<String>) {
    while !pending.is_empty() {
        tokio::time::sleep(crate::cluster::PROBE_INTERVAL * 5).await;
        let mut still = Vec::new();
        for url in pending {
            let found = cluster.shards.iter().find_map(|shard| {
                shard
                    .replicas
                    .iter()
                    .find(|s| s.url == url)
                    .map(|server| (shard, server))
            });
            let Some((shard, server)) = found else {
                continue;
            };
            match storage::migrate_server(&cluster, shard, server).await {
                Ok(applied) => {
                    tracing::info!(server = %url, migrations = applied.len(), "server back and migrated");
                }
                Err(_) => still.push(url),
            }
        }
        pending = still;
    }
}

/// Keeps the salt book current: refresh every minute and at each midnight and end of grace;
/// inside the grace, refresh the cross-midnight carry set every few seconds.
async fn salt_maintenance(app: Arc<App>, store: SaltStore) {
    let ingest = &app.ingest;
    loop {
        let now = app.clock.now();
        let book = &ingest.visitors.book;
        let step = if book.in_grace(now).is_some() {
            CARRY_REFRESH
        } else {
            SALT_REFRESH
        };
        let until_boundary = book.next_boundary(now).duration_since(now).unsigned_abs();
        // Wake just after a boundary so the new day's salt state is in place.
        let sleep = step.min(until_boundary + Duration::from_millis(10));
        tokio::time::sleep(sleep).await;

        let now = app.clock.now();
        if let Err(e) = book.refresh(&store, now).await {
            tracing::warn!(error = %e, "salt refresh failed");
            book.forget_expired(now);
            if let Err(e) = book.ensure_local_salt(now) {
                tracing::error!(error = %e, "no salt available");
            }
        }
        if let Some(midnight) = book.in_grace(now) {
            ingest.refresh_carry(midnight).await;
        } else {
            ingest.visitors.clear_carry_after_grace(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_idle_only_when_nothing_is_in_flight_and_nothing_changed() {
        let a = Arc::new(Activity::new());
        let start = a.state();
        assert!(Activity::idle_since(start, a.state()), "never used");
        let busy = a.begin();
        assert!(!Activity::idle_since(start, a.state()), "one in flight");
        let during = a.state();
        assert!(!Activity::idle_since(during, a.state()), "still in flight");
        let second = a.begin();
        drop(busy);
        drop(second);
        let after = a.state();
        assert!(
            !Activity::idle_since(during, after),
            "requests ended since the last look"
        );
        assert!(Activity::idle_since(after, a.state()), "quiet since");
        // A request that began and ended between two looks is activity too.
        drop(a.begin());
        assert!(!Activity::idle_since(after, a.state()));
    }
}
