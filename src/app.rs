//! The collector's shared state: built once, before the port is bound (`server::prepare`), and
//! handed to every request and background task. Nothing lives in process globals.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::dashboard::Dashboard;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::privacy_report::Live;
use crate::stats::Stats;
use crate::tracker::Tracker;

pub struct App {
    /// The validated configuration this collector runs with.
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Beacons in, anonymous rows out.
    pub ingest: Ingest,
    /// The report engine (the stats API and the dashboard ask it).
    pub stats: Arc<Stats>,
    /// The built-in dashboard: its sessions and its share of the report engine.
    pub dashboard: Dashboard,
    pub tracker: Tracker,
    /// False once shutdown has begun. `/readyz` also needs the writer to be taking batches.
    pub ready: AtomicBool,
}

impl App {
    /// What the privacy report shows about this collector right now.
    pub fn privacy_live(&self) -> Live {
        let now = self.clock.now();
        Live {
            salt_age_seconds: self.ingest.salt_age(now).map(|a| a.as_secs()),
            last_retention_run: Some(self.metrics.retention_last_run.get()).filter(|t| *t > 0),
            country_database_type: self.ingest.country_database_type(),
        }
    }
}
