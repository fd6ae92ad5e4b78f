//! The two requests that change who is logged in: the login form (`GET`/`POST /login`) and
//! logout (`POST /logout`), with their CSRF checks, and where to go after logging in.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::auth::{self, Auth, LoginError};
use super::page;
use super::respond::{error, html, redirect, set_cookie};
use crate::credentials::{random_hex, same};
use crate::response::Body;

/// Largest login or logout form body.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Where to go after logging in: only a dashboard path on this server.
pub fn safe_next(next: &str) -> String {
    let ok = (next == "/dashboard"
        || next.starts_with("/dashboard/")
        || next.starts_with("/dashboard?"))
        && !next.contains(['\\', '\r', '\n'])
        && !next.starts_with("//");
    if ok {
        next.to_string()
    } else {
        "/dashboard".to_string()
    }
}

/// The login page with a fresh CSRF nonce (in the form and in a cookie scoped to `/login`).
pub fn form(
    auth: &Auth,
    req: &Request<Incoming>,
    peer: Option<SocketAddr>,
    next: &str,
) -> Response<Body> {
    let nonce = random_hex(16);
    let secure = auth.is_secure(req.headers(), peer);
    let mut r = html(
        StatusCode::OK,
        page::login(&nonce, next, "", None, auth.has_users()),
    );
    set_cookie(&mut r, &Auth::login_cookie(&nonce, secure));
    r
}

async fn read_form(
    req: Request<Incoming>,
    timeout: Duration,
) -> Option<(hyper::http::request::Parts, Vec<(String, String)>)> {
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(
        timeout.max(Duration::from_secs(1)),
        Limited::new(body, MAX_FORM_BYTES).collect(),
    )
    .await
    .ok()?
    .ok()?
    .to_bytes();
    let fields = url::form_urlencoded::parse(&collected)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some((parts, fields))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// `POST /login`: checks the CSRF nonce and origin, then the name and password.
pub async fn login(
    auth: &Auth,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
    timeout: Duration,
) -> Response<Body> {
    let Some((parts, fields)) = read_form(req, timeout).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The login form did not arrive whole.",
            Some(("/login", "Try again")),
        );
    };
    let secure = auth.is_secure(&parts.headers, peer);
    let rebuild = |message: &str, status: StatusCode| {
        let nonce = random_hex(16);
        let mut r = html(
            status,
            page::login(
                &nonce,
                &safe_next(field(&fields, "next")),
                field(&fields, "name").trim(),
                Some(message),
                auth.has_users(),
            ),
        );
        set_cookie(&mut r, &Auth::login_cookie(&nonce, secure));
        r
    };
    // CSRF: the form's nonce must equal its cookie, and the post must come from our own page.
    let nonce_ok = auth::cookie(&parts.headers, auth::LOGIN_COOKIE)
        .is_some_and(|c| !c.is_empty() && same(c.as_bytes(), field(&fields, "csrf").as_bytes()));
    if !nonce_ok || !auth.same_origin(&parts.headers) {
        tracing::info!("dashboard login refused: CSRF check failed");
        return rebuild(
            "The form expired or was sent from another site. Please log in again.",
            StatusCode::FORBIDDEN,
        );
    }
    match auth
        .login(field(&fields, "name"), field(&fields, "password"))
        .await
    {
        Ok(token) => {
            let mut r = redirect(&safe_next(field(&fields, "next")));
            set_cookie(&mut r, &auth.session_cookie(&token, secure));
            set_cookie(&mut r, &Auth::clear_login_cookie(secure));
            r
        }
        Err(LoginError::Wrong) => rebuild("Wrong name or password.", StatusCode::UNAUTHORIZED),
        Err(LoginError::Throttled(left)) => {
            let minutes = left.as_secs().div_ceil(60).max(1);
            let mut r = rebuild(
                &format!(
                    "Too many wrong passwords for this name. Try again in {minutes} minute(s)."
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = HeaderValue::from_str(&left.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

/// `POST /logout`: ends the session when the form carries its CSRF token and our origin.
pub async fn logout(
    auth: &Auth,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
    timeout: Duration,
) -> Response<Body> {
    let Some((parts, fields)) = read_form(req, timeout).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form did not arrive whole.",
            None,
        );
    };
    if !auth.same_origin(&parts.headers) || !auth.logout(&parts.headers, field(&fields, "csrf")) {
        tracing::info!("dashboard logout refused: CSRF check failed or no session");
        return error(
            StatusCode::FORBIDDEN,
            "Not logged out",
            "The logout form was not sent from this dashboard, or the session had already ended.",
            Some(("/dashboard", "Back to the dashboard")),
        );
    }
    let secure = auth.is_secure(&parts.headers, peer);
    let mut r = redirect("/login");
    set_cookie(&mut r, &Auth::clear_session_cookie(secure));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next("/dashboard/a.example?period=7d"),
            "/dashboard/a.example?period=7d"
        );
        for evil in [
            "https://evil.example/",
            "//evil.example/dashboard",
            "/dashboard\\@evil",
            "/api/v2/query",
            "",
        ] {
            assert_eq!(safe_next(evil), "/dashboard", "{evil}");
        }
    }
}
