//! The dashboard's answers: HTML pages, JSON, redirects and cookies, each with the security
//! headers every dashboard answer carries.

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::page;
use crate::response::{self, Body};

/// Headers every dashboard answer carries: nothing from elsewhere, no framing, no sniffing,
/// referrers only to this origin (share secrets are in paths), and no caching of pages.
pub fn secure_headers(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

pub fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = response::with(status, "text/html; charset=utf-8", body);
    secure_headers(&mut r);
    r
}

pub fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = response::with(status, "application/json", body);
    secure_headers(&mut r);
    r
}

pub fn redirect(to: &str) -> Response<Body> {
    let mut r = response::empty(StatusCode::SEE_OTHER);
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(&mut r);
    r
}

pub fn set_cookie(r: &mut Response<Body>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn not_found() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        page::error(
            "Not found",
            "There is no such page or site here, or you may not see it.",
            Some(("/dashboard", "To the dashboard")),
        ),
    )
}

/// An HTML error page with `status`.
pub fn error(
    status: StatusCode,
    title: &str,
    message: &str,
    back: Option<(&str, &str)>,
) -> Response<Body> {
    html(status, page::error(title, message, back))
}
