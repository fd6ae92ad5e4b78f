//! HTTP routing: which handler answers which method and path. The handlers live beside it:
//! `events` (the beacon endpoint), `stats_api` (reports and the privacy report), the dashboard
//! (its own module), the tracker script, health, readiness and metrics.

mod events;
mod stats_api;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::app::App;
use crate::error::Rejection;
use crate::response::{self, Body};

pub use events::reject;

/// Answers one request.
pub async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // Checked before routing: nothing of an over-long target is looked at.
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > app.config.server.max_url_bytes {
        return Ok(reject(&app, Rejection::UriTooLong));
    }
    // The report and dashboard handlers are boxed: their futures are many kilobytes, and an
    // unboxed arm would make every request's future that large, to be moved (copied) several
    // times by hyper per beacon. A beacon's future stays small and allocates nothing here.
    let response = match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/event") => events::event(&app, peer, req).await,
        (&Method::OPTIONS, "/api/event") => events::preflight(&app, &req),
        (&Method::GET | &Method::HEAD, "/t.js") => app.tracker.response(req.headers()),
        (&Method::POST, "/api/v2/query") => Box::pin(stats_api::query(&app, req)).await,
        (&Method::GET, "/api/v1/stats/realtime/visitors") => {
            Box::pin(stats_api::realtime(&app, &req)).await
        }
        (&Method::GET, "/privacy") => stats_api::privacy(&app, &req),
        (&Method::GET, "/healthz") => response::text(StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") => {
            if app.ready.load(Ordering::Relaxed) && app.ingest.accepting() {
                response::text(StatusCode::OK, "ready")
            } else {
                response::text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }
        }
        (&Method::GET, "/metrics") => response::with(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics.encode(),
        ),
        (_, path) if crate::dashboard::owns(path) => {
            Box::pin(app.dashboard.handle(req, peer)).await
        }
        (
            _,
            "/api/event"
            | "/t.js"
            | "/healthz"
            | "/readyz"
            | "/metrics"
            | "/api/v2/query"
            | "/api/v1/stats/realtime/visitors"
            | "/privacy",
        ) => reject(&app, Rejection::MethodNotAllowed),
        _ => reject(&app, Rejection::NotFound),
    };
    Ok(response)
}
