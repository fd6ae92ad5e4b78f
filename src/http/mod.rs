//! HTTP routing: the beacon endpoint, the tracker script, the stats API, health, readiness and
//! metrics.
//!
//! Every refusal goes through [`reject`] (beacons) or [`stats_error`] (stats API), the places
//! where an error becomes a status and a `{"error": …}` body. CORS is answered for the
//! configured sites' origins only; the stats API sends no CORS headers (it is for servers and
//! the dashboard served from this origin).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::error::{Rejection, StatsError};
use crate::ingest::{Ingest, Outcome, RequestMeta};
use crate::stats::query::Query;
use crate::stats::Stats;
use crate::tracker::Tracker;

/// Largest stats query body: a query is a few hundred bytes; this leaves room for long filters.
const MAX_QUERY_BYTES: usize = 64 * 1024;

pub type Body = Full<Bytes>;

/// What the handlers share.
pub struct App {
    pub ingest: Ingest,
    pub tracker: Tracker,
    pub max_body_bytes: usize,
    /// Longest request target accepted (`server.max_url_bytes`).
    pub max_url_bytes: usize,
    /// Time a body has to arrive once the headers are in (`server.request_timeout_secs`).
    pub request_timeout: std::time::Duration,
    pub stats: Stats,
    /// The effective configuration, for the privacy report.
    pub config: crate::config::Config,
    /// False once shutdown has begun. `/readyz` also needs the writer to be taking batches.
    pub ready: AtomicBool,
}

pub async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // Checked before routing: nothing of an over-long target is looked at.
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > app.max_url_bytes {
        return Ok(reject(&app, Rejection::UriTooLong));
    }
    let response = match (req.method(), req.uri().path()) {
        (&Method::POST, "/api/event") => event(&app, peer, req).await,
        (&Method::OPTIONS, "/api/event") => preflight(&app, &req),
        (&Method::GET | &Method::HEAD, "/t.js") => app.tracker.response(req.headers()),
        (&Method::POST, "/api/v2/query") => stats_query(&app, req).await,
        (&Method::GET, "/api/v1/stats/realtime/visitors") => realtime(&app, &req).await,
        (&Method::GET, "/privacy") => privacy(&app, &req),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") => {
            if app.ready.load(Ordering::Relaxed) && app.ingest.accepting() {
                text(StatusCode::OK, "ready")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }
        }
        (&Method::GET, "/metrics") => {
            let mut r = Response::new(Full::new(Bytes::from(app.ingest.metrics.encode())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        (_, path) if crate::dashboard::owns(path) => {
            // The dashboard believes a proxy's user header only from a trusted peer.
            let mut req = req;
            req.extensions_mut().insert(peer);
            crate::dashboard::handle(&app, req).await
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

async fn event(app: &App, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let cors = allowed_origin(app, req.headers());
    let mut response = match read_and_ingest(app, peer, req).await {
        Ok(Outcome::Stored(_)) | Ok(Outcome::Bot) | Ok(Outcome::NotTracked) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        Err(rejection) => reject(app, rejection),
    };
    if let Some(origin) = cors {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        // The tracker reads it to back off after a 503 or 429.
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
    response
}

async fn read_and_ingest(
    app: &App,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Outcome, Rejection> {
    check_content_type(req.headers())?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes) {
        return Err(Rejection::BodyTooLarge);
    }
    let (parts, body) = req.into_parts();
    let body = tokio::time::timeout(
        app.request_timeout,
        Limited::new(body, app.max_body_bytes).collect(),
    )
    .await
    .map_err(|_| Rejection::RequestTimeout)?
    .map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            Rejection::BodyTooLarge
        } else {
            Rejection::MalformedJson
        }
    })?
    .to_bytes();
    app.ingest
        .accept(
            &body,
            RequestMeta {
                peer: peer.ip(),
                headers: &parts.headers,
            },
        )
        .await
}

/// The raw `Authorization` header, if it is text.
fn authorization(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn stats_query(app: &App, req: Request<Incoming>) -> Response<Body> {
    let authorization = authorization(&req).map(str::to_string);
    let body = match tokio::time::timeout(
        app.request_timeout,
        Limited::new(req.into_body(), MAX_QUERY_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Err(_) => {
            return stats_error(StatsError::Invalid(
                "#: the query did not arrive in time".into(),
            ))
        }
        Ok(Err(_)) => {
            return stats_error(StatsError::Invalid(format!(
                "#: the query is larger than {MAX_QUERY_BYTES} bytes"
            )))
        }
    };
    let result = async {
        let query = Query::parse(&body)?;
        app.stats
            .authorize(&query.site_id, authorization.as_deref())?;
        app.stats.run(&query, app.ingest.clock.now()).await
    }
    .await;
    match result {
        Ok(answer) => json_response(StatusCode::OK, answer.to_string()),
        Err(e) => stats_error(e),
    }
}

/// Plausible's v1 realtime endpoint: the number of visitors in the last 5 minutes, bare.
async fn realtime(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let site = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "site_id")
            .map(|(_, v)| v.into_owned())
    });
    let Some(site) = site else {
        return stats_error(StatsError::Invalid(
            "Missing site ID. Please provide the required site_id parameter with your request."
                .into(),
        ));
    };
    let result = match app.stats.authorize(&site, authorization(req)) {
        Ok(()) => {
            app.stats
                .realtime_visitors(&site, app.ingest.clock.now())
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => json_response(StatusCode::OK, n.to_string()),
        Err(e) => stats_error(e),
    }
}

/// The privacy report, live: Markdown, or JSON when the client accepts `application/json`.
fn privacy(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if let Err(e) = app.stats.access.check_any(authorization(req)) {
        return stats_error(e);
    }
    let report = crate::privacy_report::build(
        &app.config,
        &app.ingest.privacy_live(),
        app.ingest.clock.now(),
    );
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let body = serde_json::to_string_pretty(&report).unwrap_or_default();
        return json_response(StatusCode::OK, body);
    }
    uncached(
        StatusCode::OK,
        "text/markdown; charset=utf-8",
        crate::privacy_report::markdown(&report),
    )
}

/// The one place a stats error becomes a response: its status and `{"error": message}`.
pub fn stats_error(e: StatsError) -> Response<Body> {
    json_response(
        e.status(),
        serde_json::json!({ "error": e.to_string() }).to_string(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    uncached(status, "application/json", body)
}

/// A response that no cache may keep (stats and reports change and may be private).
fn uncached(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `navigator.sendBeacon` sends `text/plain`, Plausible's tracker too; API clients send JSON.
fn check_content_type(headers: &hyper::HeaderMap) -> Result<(), Rejection> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().map_err(|_| Rejection::UnsupportedMediaType)?;
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "text/plain" | "" => Ok(()),
        _ => Err(Rejection::UnsupportedMediaType),
    }
}

/// The `Origin` header echoed back when its host is one of the configured sites.
fn allowed_origin(app: &App, headers: &hyper::HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    app.ingest
        .site_for_host(origin_host(origin.to_str().ok()?)?)?;
    Some(origin.clone())
}

/// The host of an `Origin` header, which is only ever `scheme://host[:port]` (RFC 6454), read
/// without a full URL parse (that was a twentieth of a beacon's cost). Anything else, `null`
/// and IPv6 literals included (no site can be one), has no host here.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let host = match rest.split_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => rest,
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    (!host.is_empty() && host.bytes().all(plain)).then_some(host)
}

fn preflight(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    if let Some(origin) = allowed_origin(app, req.headers()) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The one place a rejection becomes a response: its status, `{"error": reason}`, and a count.
pub fn reject(app: &App, rejection: Rejection) -> Response<Body> {
    app.ingest.metrics.reject(rejection.reason());
    tracing::debug!(reason = rejection.reason(), "beacon rejected");
    let body = format!("{{\"error\":\"{}\"}}", rejection.reason());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = rejection.status();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = rejection.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
    }
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hosts_are_read_without_a_url_parser() {
        assert_eq!(
            origin_host("https://www.example.org"),
            Some("www.example.org")
        );
        assert_eq!(origin_host("http://example.org:8080"), Some("example.org"));
        for bad in [
            "null",
            "ftp://example.org",
            "https://",
            "https://example.org/path",
            "https://example.org:",
            "https://example.org:80x",
            "https://[::1]:8080",
            "https://user@example.org",
        ] {
            assert_eq!(origin_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types() {
        let mut h = hyper::HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "text/plain;charset=UTF-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=x".parse().unwrap(),
        );
        assert_eq!(check_content_type(&h), Err(Rejection::UnsupportedMediaType));
    }

    #[test]
    fn every_rejection_has_a_client_or_overload_status_and_a_plain_reason() {
        for r in Rejection::ALL {
            let s = r.status().as_u16();
            assert!((400..500).contains(&s) || s == 503, "{r:?}");
            assert!(r
                .reason()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
