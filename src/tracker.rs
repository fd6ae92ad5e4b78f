//! The tracker script, embedded in the binary and served at `/t.js` (gzip when accepted).
//!
//! The source is `assets/tracker.js`; `assets/tracker.min.js` is what is served. It sets no
//! cookie and no storage but the visitor's own opt-out flag; see the header of `assets/tracker.js`.

use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};

pub const SOURCE: &str = include_str!("../assets/tracker.min.js");

pub struct Tracker {
    plain: Bytes,
    gzip: Bytes,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    pub fn new() -> Self {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(SOURCE.as_bytes());
        let gzip = enc.finish().unwrap_or_default();
        Self {
            plain: Bytes::from_static(SOURCE.as_bytes()),
            gzip: Bytes::from(gzip),
        }
    }

    /// Size in bytes of the gzipped script (for docs/tracker.md and the startup log).
    pub fn gzipped_len(&self) -> usize {
        self.gzip.len()
    }

    pub fn response(&self, request_headers: &HeaderMap) -> Response<Full<Bytes>> {
        let gzip_ok = request_headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let body = if gzip_ok && !self.gzip.is_empty() {
            self.gzip.clone()
        } else {
            self.plain.clone()
        };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = StatusCode::OK;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        );
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        // Any site may load the script; it reads nothing from the page it was not given.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        if gzip_ok && !self.gzip.is_empty() {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    }
}
