//! The dashboard's answers: HTML pages (saying their language), CSV downloads, JSON, redirects
//! and cookies, each with the security headers every dashboard answer carries.

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::headers::secure_headers;
use super::page;
use crate::i18n::Tr;
use crate::response::{self, Body};

/// A page in `tr`'s language. Its language may come from `Accept-Language`, so caches are told
/// (pages are not cached anyway).
pub fn html(tr: &Tr, status: StatusCode, body: String) -> Response<Body> {
    let mut r = response::with(status, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(tr.lang.code()),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    secure_headers(&mut r);
    r
}

/// A CSV download named `filename` (made of safe characters by the caller).
pub fn csv(body: String, filename: &str) -> Response<Body> {
    let mut r = response::with(StatusCode::OK, "text/csv; charset=utf-8", body);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
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

pub fn not_found(tr: &Tr) -> Response<Body> {
    html(
        tr,
        StatusCode::NOT_FOUND,
        page::error(
            tr,
            &tr.t("error.not_found.title"),
            &tr.t("error.not_found.message"),
            Some(("/dashboard", &tr.t("error.to_dashboard"))),
        ),
    )
}

/// An HTML error page with `status`; its texts in `tr`'s language.
pub fn error(
    tr: &Tr,
    status: StatusCode,
    title: &str,
    message: &str,
    back: Option<(&str, &str)>,
) -> Response<Body> {
    html(tr, status, page::error(tr, title, message, back))
}
