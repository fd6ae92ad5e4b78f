//! The two requests that change who is logged in: the login form (`GET`/`POST /login`) and
//! logout (`POST /logout`), with their CSRF checks, and where to go after logging in. A language
//! chosen with the switch (`lang`) is kept through the form, the login and the logout.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::auth::{self, Auth, LoginError, Logout};
use super::page;
use super::respond::{error, html, redirect, set_cookie};
use crate::credentials::{random_hex, same};
use crate::i18n::{self, Lang, Tr};
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

/// The login page with a fresh CSRF nonce (in the form and in a cookie scoped to `/login`), in
/// `tr`'s language (`lang`: the one chosen with the switch, if any).
pub fn form(
    auth: &Auth,
    req: &Request<Incoming>,
    peer: Option<SocketAddr>,
    next: &str,
    tr: &Tr,
    lang: Option<Lang>,
) -> Response<Body> {
    let nonce = random_hex(16);
    let secure = auth.is_secure(req.headers(), peer);
    let mut r = html(
        tr,
        StatusCode::OK,
        page::login(tr, lang, &nonce, next, "", None, auth.has_users()),
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

/// The language a posted form asks for: its `lang` field (kept from the switch), else the
/// browser's.
fn form_language(
    fields: &[(String, String)],
    negotiated: &'static Tr,
) -> (Option<Lang>, &'static Tr) {
    match Lang::parse(field(fields, "lang")) {
        Some(l) => (Some(l), i18n::tr(l)),
        None => (None, negotiated),
    }
}

/// `POST /login`: checks the CSRF nonce and origin, then the name and password. `negotiated`
/// is the browser's language, for a form that does not name one.
pub async fn login(
    auth: &Auth,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
    timeout: Duration,
    negotiated: &'static Tr,
) -> Response<Body> {
    let Some((parts, fields)) = read_form(req, timeout).await else {
        let tr = negotiated;
        return error(
            tr,
            StatusCode::BAD_REQUEST,
            &tr.t("error.bad_request"),
            &tr.t("login.incomplete"),
            Some(("/login", &tr.t("login.try_again"))),
        );
    };
    let (lang, tr) = form_language(&fields, negotiated);
    let secure = auth.is_secure(&parts.headers, peer);
    let rebuild = |message: &str, status: StatusCode| {
        let nonce = random_hex(16);
        let mut r = html(
            tr,
            status,
            page::login(
                tr,
                lang,
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
        return rebuild(&tr.t("login.expired"), StatusCode::FORBIDDEN);
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
        Err(LoginError::Wrong) => rebuild(&tr.t("login.wrong"), StatusCode::UNAUTHORIZED),
        Err(LoginError::Unavailable) => {
            rebuild(&tr.t("login.unavailable"), StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(LoginError::Throttled(left)) => {
            let minutes = left.as_secs().div_ceil(60).max(1);
            let mut r = rebuild(
                &tr.plural("login.throttled", minutes as f64, &[]),
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
    negotiated: &'static Tr,
) -> Response<Body> {
    let Some((parts, fields)) = read_form(req, timeout).await else {
        let tr = negotiated;
        return error(
            tr,
            StatusCode::BAD_REQUEST,
            &tr.t("error.bad_request"),
            &tr.t("logout.incomplete"),
            None,
        );
    };
    let (lang, tr) = form_language(&fields, negotiated);
    let outcome = if auth.same_origin(&parts.headers) {
        auth.logout(&parts.headers, field(&fields, "csrf")).await
    } else {
        Logout::Refused
    };
    let secure = auth.is_secure(&parts.headers, peer);
    match outcome {
        Logout::Done => {}
        Logout::Refused => {
            tracing::info!("dashboard logout refused: CSRF check failed or no session");
            return error(
                tr,
                StatusCode::FORBIDDEN,
                &tr.t("logout.refused.title"),
                &tr.t("logout.refused.message"),
                Some(("/dashboard", &tr.t("error.back_to_dashboard"))),
            );
        }
        // The form was this session's own: this browser is logged out (its cookie removed),
        // and the user is told the session itself could not be ended.
        Logout::Unavailable => {
            let mut r = error(
                tr,
                StatusCode::SERVICE_UNAVAILABLE,
                &tr.t("logout.unavailable.title"),
                &tr.t("logout.unavailable.message"),
                None,
            );
            set_cookie(&mut r, &Auth::clear_session_cookie(secure));
            return r;
        }
    }
    // Back to the login page, in the language chosen on the dashboard.
    let mut r = redirect(&match lang {
        Some(l) => format!("/login?lang={}", l.code()),
        None => "/login".to_string(),
    });
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
