//! Prometheus metrics: every accepted, rejected, dropped and inserted event is counted here.
//!
//! Labels are reason codes and table names only; no metric carries request data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Beacons answered 202 and queued (one per stored event).
    pub events_accepted: Counter,
    /// Beacons refused with a 4xx/5xx, by reason code.
    pub beacons_rejected: Family<Reason, Counter>,
    /// Beacons from bots: answered 202, not stored.
    pub bots: Family<Reason, Counter>,
    /// Beacons with DNT / GPC set (when honoured): answered 202, not read, not stored. No labels.
    pub not_tracked: Counter,
    /// Events accepted but then lost, by reason (`insert_failed`).
    pub events_dropped: Family<Reason, Counter>,
    pub rows_inserted: Counter,
    pub insert_failures: Counter,
    pub insert_seconds: Histogram,
    pub queue_depth: Gauge,
    /// Slices of visits stored (a UTC hour of one site), and slices computed again because
    /// events arrived late; failed runs of the visit job; when one last succeeded; slices due
    /// and not yet stored after the last run.
    pub visit_slices_stored: Counter,
    pub visit_slices_recomputed: Counter,
    pub visit_job_failures: Counter,
    pub visit_job_last_success: Gauge,
    pub visit_slices_pending: Gauge,
    /// Stored hours of visits not yet copied by page (stored before migration 0009).
    pub visit_slices_uncopied: Gauge,
    /// Local days rolled up (per site and day).
    pub rollup_days: Counter,
    pub rollup_failures: Counter,
    /// Unix time of the last rollup run that finished without error.
    pub rollup_last_success: Gauge,
    /// Stats queries answered, by where the numbers came from (`rollup`, `raw`: unit rows,
    /// `prefiltered`: a dashboard page's unit rows selected once for its panels; `by_page`:
    /// unit rows read by page, counted besides `raw` or `prefiltered`).
    pub stats_queries: Family<Source, Counter>,
    /// Partitions (and their rows) deleted by retention, by table.
    pub retention_partitions: Family<Table, Counter>,
    pub retention_rows: Family<Table, Counter>,
    /// Events the insert-time views had missed, put back by the visit job (`visits::repair`),
    /// by table (`events_minutes`: counted; `events_by_hour`: copied).
    pub view_events_repaired: Family<Table, Counter>,
    /// Unix time of the last retention run that finished without error.
    pub retention_last_run: Gauge,
    pub retention_failures: Counter,
    /// Connections open now, and connections closed at once because `server.max_connections`
    /// were open.
    pub connections_open: Gauge,
    pub connections_refused: Counter,
    /// The spool: bytes and batches on disk now; rows written to it and replayed from it.
    pub spool_bytes: Gauge,
    pub spool_batches: Gauge,
    pub rows_spooled: Counter,
    /// Of those, rows moved from a nearly full queue while an insert was slow to answer.
    pub rows_spilled: Counter,
    pub rows_replayed: Counter,
    /// Rows of a replayed batch that ClickHouse already had (an insert whose answer was lost).
    pub replay_duplicates_skipped: Counter,
    pub replay_insert_waits: Counter,
    /// Rows ClickHouse refused for good (bad data, schema mismatch), kept aside, by error code.
    pub rows_set_aside: Family<Code, Counter>,
    /// Whether the last insert or replay reached ClickHouse (1) or not (0).
    pub clickhouse_up: Gauge,
    /// Page paths replaced by `/(other)` because the site had too many new paths this hour.
    pub paths_capped: Counter,
    /// Beacons for a page in its site's `exclude_paths` or outside its non-empty `include_paths`:
    /// answered 202, not stored (one per site that excludes it). No labels, so no path can reach
    /// the metrics.
    pub beacons_excluded: Counter,
}

/// A ClickHouse error code, as text (`"53"`), or `"client"` for errors before ClickHouse answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Code {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Table {
    pub table: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    pub source: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("tally"),
            events_accepted: Counter::default(),
            beacons_rejected: Family::default(),
            bots: Family::default(),
            not_tracked: Counter::default(),
            events_dropped: Family::default(),
            rows_inserted: Counter::default(),
            insert_failures: Counter::default(),
            insert_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            queue_depth: Gauge::default(),
            visit_slices_stored: Counter::default(),
            visit_slices_recomputed: Counter::default(),
            visit_job_failures: Counter::default(),
            visit_job_last_success: Gauge::default(),
            visit_slices_pending: Gauge::default(),
            visit_slices_uncopied: Gauge::default(),
            rollup_days: Counter::default(),
            rollup_failures: Counter::default(),
            rollup_last_success: Gauge::default(),
            stats_queries: Family::default(),
            retention_partitions: Family::default(),
            retention_rows: Family::default(),
            view_events_repaired: Family::default(),
            retention_last_run: Gauge::default(),
            retention_failures: Counter::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            spool_bytes: Gauge::default(),
            spool_batches: Gauge::default(),
            rows_spooled: Counter::default(),
            rows_spilled: Counter::default(),
            rows_replayed: Counter::default(),
            replay_duplicates_skipped: Counter::default(),
            replay_insert_waits: Counter::default(),
            rows_set_aside: Family::default(),
            clickhouse_up: Gauge::default(),
            paths_capped: Counter::default(),
            beacons_excluded: Counter::default(),
        };
        let r = &mut m.registry;
        r.register(
            "events_accepted",
            "Events accepted (202) and queued",
            m.events_accepted.clone(),
        );
        r.register(
            "beacons_rejected",
            "Beacons refused, by reason",
            m.beacons_rejected.clone(),
        );
        r.register(
            "bot_beacons",
            "Beacons from bots, answered 202 and not stored",
            m.bots.clone(),
        );
        r.register(
            "beacons_not_tracked",
            "Beacons with Do Not Track or Global Privacy Control set: not read, not stored",
            m.not_tracked.clone(),
        );
        r.register(
            "events_dropped",
            "Accepted events lost, by reason",
            m.events_dropped.clone(),
        );
        r.register(
            "rows_inserted",
            "Rows written to ClickHouse",
            m.rows_inserted.clone(),
        );
        r.register(
            "insert_failures",
            "Failed ClickHouse insert attempts",
            m.insert_failures.clone(),
        );
        r.register(
            "insert_duration_seconds",
            "ClickHouse insert latency",
            m.insert_seconds.clone(),
        );
        r.register(
            "queue_depth",
            "Events waiting for the writer",
            m.queue_depth.clone(),
        );
        r.register(
            "visit_slices_stored",
            "Hours of a site's visits stored without the visitor hash",
            m.visit_slices_stored.clone(),
        );
        r.register(
            "visit_slices_recomputed",
            "Stored hours of visits computed again because events arrived late",
            m.visit_slices_recomputed.clone(),
        );
        r.register(
            "visit_job_failures",
            "Visit job runs that failed (retried next run)",
            m.visit_job_failures.clone(),
        );
        r.register(
            "visit_job_last_success_timestamp_seconds",
            "When the last visit job run finished without error",
            m.visit_job_last_success.clone(),
        );
        r.register(
            "visit_slices_pending",
            "Hours of visits due to be stored and not yet stored after the last run",
            m.visit_slices_pending.clone(),
        );
        r.register(
            "visit_slices_uncopied",
            "Stored hours of visits not yet copied by page (stored before migration 0009) after the last run",
            m.visit_slices_uncopied.clone(),
        );
        r.register("rollup_days", "Site-days rolled up", m.rollup_days.clone());
        r.register(
            "rollup_failures",
            "Rollup runs that failed",
            m.rollup_failures.clone(),
        );
        r.register(
            "rollup_last_success_timestamp_seconds",
            "When the last rollup run finished without error",
            m.rollup_last_success.clone(),
        );
        r.register(
            "stats_queries",
            "Stats API queries, by where the numbers came from",
            m.stats_queries.clone(),
        );
        r.register(
            "retention_partitions_dropped",
            "Partitions deleted because they reached their retention age, by table",
            m.retention_partitions.clone(),
        );
        r.register(
            "view_events_repaired",
            "Raw events an insert's views had not counted or copied (the server stopped between \
             them), put back by the visit job, by table",
            m.view_events_repaired.clone(),
        );
        r.register(
            "retention_rows_dropped",
            "Rows in those partitions, by table",
            m.retention_rows.clone(),
        );
        r.register(
            "retention_last_run_timestamp_seconds",
            "When the last retention run finished without error",
            m.retention_last_run.clone(),
        );
        r.register(
            "retention_failures",
            "Retention runs that failed",
            m.retention_failures.clone(),
        );
        r.register(
            "connections_open",
            "HTTP connections open",
            m.connections_open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at once because server.max_connections were open",
            m.connections_refused.clone(),
        );
        r.register(
            "spool_bytes",
            "Bytes of batches waiting in the spool",
            m.spool_bytes.clone(),
        );
        r.register(
            "spool_batches",
            "Batches waiting in the spool",
            m.spool_batches.clone(),
        );
        r.register(
            "rows_spooled",
            "Rows written to the spool because ClickHouse could not take them",
            m.rows_spooled.clone(),
        );
        r.register(
            "rows_spilled",
            "Rows moved from a nearly full queue to the spool while ClickHouse was slow to take an insert (also in rows_spooled)",
            m.rows_spilled.clone(),
        );
        r.register(
            "rows_replayed",
            "Rows inserted into ClickHouse from the spool",
            m.rows_replayed.clone(),
        );
        r.register(
            "replay_duplicates_skipped",
            "Spooled rows ClickHouse already had, not inserted again",
            m.replay_duplicates_skipped.clone(),
        );
        r.register(
            "replay_insert_waits",
            "Replays that first waited for an earlier insert of unknown outcome to end in ClickHouse",
            m.replay_insert_waits.clone(),
        );
        r.register(
            "rows_set_aside",
            "Rows ClickHouse refused for good, kept in the spool's rejected folder, by error code",
            m.rows_set_aside.clone(),
        );
        r.register(
            "clickhouse_up",
            "1 when the last insert reached ClickHouse, 0 when it did not",
            m.clickhouse_up.clone(),
        );
        r.register(
            "paths_capped",
            "Page paths stored as /(other) because their site had too many new paths this hour",
            m.paths_capped.clone(),
        );
        r.register(
            "beacons_excluded",
            "Beacons for a page in its site's exclude_paths or outside its include_paths: answered 202, not stored",
            m.beacons_excluded.clone(),
        );
        m
    }

    pub fn reject(&self, reason: &'static str) {
        self.beacons_rejected
            .get_or_create(&Reason { reason })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
