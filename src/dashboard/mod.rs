//! The built-in dashboard for the web team: pages served by tally itself (placeholder until the
//! dashboards issue lands; the hooks in `http` and `config` are in place).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use crate::config::SiteConfig;
use crate::error::Error;
use crate::http::{App, Body};

/// The `[dashboard]` section of the config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {}

impl DashboardConfig {
    /// Checked with the rest of the config, before anything runs.
    pub fn validate(&self, _sites: &[SiteConfig]) -> Result<(), Error> {
        Ok(())
    }
}

/// The config lines for a dashboard user `name` with this password (hashed; used by
/// `tally hash-password`).
pub fn user_config(_name: &str, _password: &str) -> Result<String, Error> {
    Err(Error::Config("dashboard users are not built yet".into()))
}

/// Whether `path` belongs to the dashboard (and so is handed to [`handle`]).
pub fn owns(_path: &str) -> bool {
    false
}

/// Answers a dashboard request.
pub async fn handle(_app: &App, _req: Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
