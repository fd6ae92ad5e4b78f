//! How tally's HTTP answers are built: the body type and the few response shapes every handler
//! uses (the beacon endpoint, the stats API, the tracker and the dashboard alike).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// Every answer's body: complete in memory (beacon answers, reports and pages are small).
pub type Body = Full<Bytes>;

/// A response with a status, a content type and a body.
pub fn with(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A response without a body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = status;
    r
}

/// Plain text.
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    with(status, "text/plain; charset=utf-8", body)
}

/// A response that no cache may keep (stats and reports change and may be private).
pub fn uncached(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = with(status, content_type, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// JSON that no cache may keep.
pub fn json(status: StatusCode, body: String) -> Response<Body> {
    uncached(status, "application/json", body)
}

/// `{"error": message}` with the given status, not cached.
pub fn error_json(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }).to_string())
}
