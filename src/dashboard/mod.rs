//! The built-in dashboard for the web team: server-rendered pages served by tally itself.
//!
//! Each view is one GET whose URL holds its whole state (`view`); its numbers are asked of the
//! stats engine in-process with the stats API's own queries (`panels`), rendered to HTML with
//! inline SVG charts (`page`, `charts`, `html`). `auth` decides who may look: users with argon2
//! password hashes and sessions, a trusted proxy's user header, or a per-site share link.
//! Assets (stylesheet, a small optional script, icon) are embedded in the binary; pages load
//! nothing from anywhere else (`Content-Security-Policy: default-src 'self'`).

mod auth;
mod charts;
mod html;
mod page;
mod panels;
mod view;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::SiteConfig;
use crate::error::{Error, StatsError};
use crate::http::{App, Body};

use auth::{Auth, LoginError, Viewer};
use view::View;

/// The `[dashboard]` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// People who may log in.
    #[serde(default)]
    pub users: Vec<DashboardUser>,
    /// Read-only links to one site's dashboard (none by default).
    #[serde(default)]
    pub share_links: Vec<ShareLink>,
    /// A header naming the user, set by a trusted reverse proxy (SSO); believed only from
    /// `server.trusted_proxies`.
    #[serde(default)]
    pub trusted_user_header: Option<String>,
    /// A session ends after this many seconds without a request.
    #[serde(default = "default_session_idle_secs")]
    pub session_idle_secs: u64,
    /// A session ends this many seconds after the login, however active.
    #[serde(default = "default_session_max_secs")]
    pub session_max_secs: u64,
}

fn default_session_idle_secs() -> u64 {
    3 * 24 * 3600
}
fn default_session_max_secs() -> u64 {
    14 * 24 * 3600
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            share_links: Vec::new(),
            trusted_user_header: None,
            session_idle_secs: default_session_idle_secs(),
            session_max_secs: default_session_max_secs(),
        }
    }
}

/// A dashboard user (`[[dashboard.users]]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardUser {
    pub name: String,
    /// argon2 PHC string (`tally hash-password NAME` prints it). Without it the user can come
    /// in only through `trusted_user_header`.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Sites the user may see; empty means all.
    #[serde(default)]
    pub sites: Vec<String>,
}

// Hand-written so that check-config and logs never print a hash.
impl std::fmt::Debug for DashboardUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardUser")
            .field("name", &self.name)
            .field(
                "password_hash",
                &if self.password_hash.is_some() {
                    "<set>"
                } else {
                    "<none>"
                },
            )
            .field("sites", &self.sites)
            .finish()
    }
}

/// A share link (`[[dashboard.share_links]]`): `/share/<secret>` shows `site` read-only.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareLink {
    pub site: String,
    /// Lower-case hex SHA-256 of the secret in the link.
    pub sha256: String,
    /// Who the link was given to (for people reading the config).
    #[serde(default)]
    pub name: Option<String>,
}

impl std::fmt::Debug for ShareLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareLink")
            .field("site", &self.site)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a user name has 1 to 64 characters".into());
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "user name {name:?} may not start or end with spaces or hold control characters"
        ));
    }
    Ok(())
}

impl DashboardConfig {
    /// Checked with the rest of the config, before anything runs.
    pub fn validate(&self, sites: &[SiteConfig]) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(format!("dashboard: {m}")));
        let known = |s: &str| sites.iter().any(|c| c.domain == s);
        let mut names = std::collections::HashSet::new();
        for u in &self.users {
            if let Err(e) = valid_name(&u.name) {
                return bad(e);
            }
            if !names.insert(u.name.as_str()) {
                return bad(format!("user {:?} is listed twice", u.name));
            }
            if let Some(h) = &u.password_hash {
                if !auth::valid_hash(h) {
                    return bad(format!(
                        "user {:?}: password_hash must be an argon2 PHC string ($argon2id$…); `tally hash-password` prints one",
                        u.name
                    ));
                }
            }
            if let Some(s) = u.sites.iter().find(|s| !known(s)) {
                return bad(format!("user {:?}: site {s:?} is not configured", u.name));
            }
        }
        let mut digests = std::collections::HashSet::new();
        for l in &self.share_links {
            if !known(&l.site) {
                return bad(format!("share link: site {:?} is not configured", l.site));
            }
            if !crate::config::is_sha256_hex(&l.sha256) {
                return bad(format!(
                    "share link for {:?}: sha256 must be 64 lower-case hex digits",
                    l.site
                ));
            }
            if !digests.insert(l.sha256.as_str()) {
                return bad("two share links have the same secret".into());
            }
        }
        if let Some(h) = &self.trusted_user_header {
            if hyper::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return bad(format!("trusted_user_header {h:?} is not a header name"));
            }
        }
        if !(1..=366 * 24 * 3600).contains(&self.session_max_secs) {
            return bad("session_max_secs must be between 1 and 31622400 (a year)".into());
        }
        if !(1..=self.session_max_secs).contains(&self.session_idle_secs) {
            return bad("session_idle_secs must be between 1 and session_max_secs".into());
        }
        Ok(())
    }
}

/// The config lines for a dashboard user `name` with this password (hashed; used by
/// `tally hash-password`).
pub fn user_config(name: &str, password: &str) -> Result<String, Error> {
    valid_name(name).map_err(Error::Config)?;
    if password.chars().count() < 8 {
        return Err(Error::Config(
            "the password needs at least 8 characters".into(),
        ));
    }
    let hash = auth::hash_password(password).map_err(Error::Config)?;
    Ok(format!(
        "[[dashboard.users]]\nname = {}\npassword_hash = \"{hash}\"\n# sites = [\"www.example.org\"]  # default: all sites\n",
        toml_string(name)
    ))
}

/// A new share-link secret for `site`, and the config lines that accept it (for a CLI command;
/// the secret goes in the link, only its SHA-256 in the config).
pub fn share_link_config(site: &str) -> (String, String) {
    let secret = auth::random_hex(24);
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    let toml = format!(
        "[[dashboard.share_links]]\nsite = {}\nsha256 = \"{digest}\"\n",
        toml_string(site)
    );
    (secret, toml)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Whether `path` belongs to the dashboard (and so is handed to [`handle`]).
pub fn owns(path: &str) -> bool {
    matches!(path, "/" | "/login" | "/logout" | "/dashboard")
        || path.starts_with("/dashboard/")
        || path.starts_with("/share/")
        || path.starts_with("/assets/")
}

/// What the dashboard keeps between requests.
struct State {
    auth: Auth,
    /// Configured sites in config order, with their time zones.
    sites: Vec<(String, String)>,
}

// One per process: the hook in `http` hands us the shared `App`, which has no field for us.
static STATE: OnceLock<State> = OnceLock::new();

fn state(app: &App) -> &'static State {
    STATE.get_or_init(|| State {
        auth: Auth::new(&app.config),
        sites: app
            .config
            .sites
            .iter()
            .map(|s| (s.domain.clone(), s.time_zone.clone()))
            .collect(),
    })
}

/// The embedded files under `/assets/`.
#[derive(Clone, Copy)]
pub(crate) enum Asset {
    Css,
    Js,
    Icon,
}

impl Asset {
    fn name(self) -> &'static str {
        match self {
            Asset::Css => "dashboard.css",
            Asset::Js => "dashboard.js",
            Asset::Icon => "icon.svg",
        }
    }
    fn bytes(self) -> &'static [u8] {
        match self {
            Asset::Css => include_bytes!("assets/dashboard.css"),
            Asset::Js => include_bytes!("assets/dashboard.js"),
            Asset::Icon => include_bytes!("assets/icon.svg"),
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            Asset::Css => "text/css; charset=utf-8",
            Asset::Js => "text/javascript; charset=utf-8",
            Asset::Icon => "image/svg+xml",
        }
    }
    const ALL: [Asset; 3] = [Asset::Css, Asset::Js, Asset::Icon];

    /// First 12 hex digits of the content's SHA-256: the `?v=` that lets browsers keep it.
    fn version(self) -> &'static str {
        static V: OnceLock<[String; 3]> = OnceLock::new();
        let v = V.get_or_init(|| {
            Asset::ALL.map(|a| hex::encode(Sha256::digest(a.bytes()))[..12].to_string())
        });
        &v[self as usize]
    }
}

pub(crate) fn asset_href(a: Asset) -> String {
    format!("/assets/{}?v={}", a.name(), a.version())
}

/// Headers every dashboard answer carries: nothing from elsewhere, no framing, no sniffing,
/// referrers only to this origin (share secrets are in paths), and no caching of pages.
fn secure_headers(r: &mut Response<Body>) {
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

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(&mut r);
    r
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    secure_headers(&mut r);
    r
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure_headers(&mut r);
    r
}

fn set_cookie(r: &mut Response<Body>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn not_found() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        page::error(
            "Not found",
            "There is no such page or site here, or you may not see it.",
            Some(("/dashboard", "To the dashboard")),
        ),
    )
}

fn asset(req: &Request<Incoming>, a: Asset) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(a.bytes())));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type()),
    );
    let versioned = req
        .uri()
        .query()
        .is_some_and(|q| q == format!("v={}", a.version()));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    secure_headers(&mut r);
    r
}

/// Where to go after logging in: only a dashboard path on this server.
fn safe_next(next: &str) -> String {
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

/// Answers a dashboard request.
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    let st = state(app);
    // The connection's peer, if the HTTP layer attached it: needed to believe a proxy's headers
    // (user header, X-Forwarded-Proto). Without it, they are never believed.
    let peer = req.extensions().get::<SocketAddr>().copied();
    let path = req.uri().path().to_string();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let post = *req.method() == Method::POST;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] if get => redirect("/dashboard"),
        ["login"] if get => {
            let viewer = st.auth.viewer(req.headers(), peer);
            if viewer.is_some() {
                return redirect("/dashboard");
            }
            let next = query_param(&req, "next").unwrap_or_default();
            login_form(st, &req, peer, &safe_next(&next), None, StatusCode::OK)
        }
        ["login"] if post => login(app, st, req, peer).await,
        ["logout"] if post => logout(app, st, req, peer).await,
        ["dashboard"] | ["dashboard", ""] if get => match st.auth.viewer(req.headers(), peer) {
            Some(v) => match st.sites.iter().find(|(s, _)| v.may_see(s)) {
                Some((site, _)) => redirect(&format!("/dashboard/{site}")),
                None => html(
                    StatusCode::FORBIDDEN,
                    page::error("No sites", "Your user may see no configured site.", None),
                ),
            },
            None => redirect("/login"),
        },
        ["dashboard", site] if get => {
            let Some(viewer) = st.auth.viewer(req.headers(), peer) else {
                let here = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("next", &here);
                return redirect(&format!("/login?{}", q.finish()));
            };
            if !viewer.may_see(site) || !st.sites.iter().any(|(s, _)| s == site) {
                return not_found();
            }
            let base = format!("/dashboard/{site}");
            let sites = st
                .sites
                .iter()
                .filter(|(s, _)| viewer.may_see(s))
                .map(|(s, _)| (s.clone(), format!("/dashboard/{s}")))
                .collect();
            dashboard(app, st, &req, base, site, sites, Some(&viewer), false).await
        }
        ["dashboard", site, "realtime"] if get => match st.auth.viewer(req.headers(), peer) {
            Some(v) if v.may_see(site) => realtime(app, site).await,
            _ => json(
                StatusCode::UNAUTHORIZED,
                r#"{"error":"log in first"}"#.into(),
            ),
        },
        ["share", secret] if get => match st.auth.share_site(secret) {
            Some(site) => {
                let site = site.to_string();
                dashboard(
                    app,
                    st,
                    &req,
                    format!("/share/{secret}"),
                    &site,
                    Vec::new(),
                    None,
                    true,
                )
                .await
            }
            None => not_found(),
        },
        ["share", secret, "realtime"] if get => match st.auth.share_site(secret) {
            Some(site) => realtime(app, site).await,
            None => json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#.into()),
        },
        ["assets", name] if get => match Asset::ALL.iter().find(|a| a.name() == *name) {
            Some(a) => asset(&req, *a),
            None => not_found(),
        },
        ["" | "login" | "logout" | "dashboard"]
        | ["dashboard", _]
        | ["dashboard", _, "realtime"]
        | ["share", _]
        | ["share", _, "realtime"]
        | ["assets", _] => {
            let mut r = html(
                StatusCode::METHOD_NOT_ALLOWED,
                page::error(
                    "Method not allowed",
                    "This page does not take that request.",
                    None,
                ),
            );
            let allow = if matches!(segments.as_slice(), ["login"]) {
                "GET, POST"
            } else if matches!(segments.as_slice(), ["logout"]) {
                "POST"
            } else {
                "GET"
            };
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        _ => not_found(),
    }
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The login page with a fresh CSRF nonce (in the form and in a cookie scoped to `/login`).
fn login_form(
    st: &State,
    req: &Request<Incoming>,
    peer: Option<SocketAddr>,
    next: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let nonce = auth::random_hex(16);
    let secure = st.auth.is_secure(req.headers(), peer);
    let mut r = html(
        status,
        page::login(&nonce, next, "", message, st.auth.has_users()),
    );
    set_cookie(&mut r, &Auth::login_cookie(&nonce, secure));
    r
}

/// Largest login or logout form body.
const MAX_FORM_BYTES: usize = 16 * 1024;

async fn read_form(
    app: &App,
    req: Request<Incoming>,
) -> Option<(hyper::http::request::Parts, Vec<(String, String)>)> {
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(
        app.request_timeout.max(Duration::from_secs(1)),
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

async fn login(
    app: &App,
    st: &State,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    let Some((parts, fields)) = read_form(app, req).await else {
        return html(
            StatusCode::BAD_REQUEST,
            page::error(
                "Bad request",
                "The login form did not arrive whole.",
                Some(("/login", "Try again")),
            ),
        );
    };
    let rebuild = |message: &str, status: StatusCode| {
        let nonce = auth::random_hex(16);
        let secure = st.auth.is_secure(&parts.headers, peer);
        let mut r = html(
            status,
            page::login(
                &nonce,
                &safe_next(field(&fields, "next")),
                field(&fields, "name").trim(),
                Some(message),
                st.auth.has_users(),
            ),
        );
        set_cookie(&mut r, &Auth::login_cookie(&nonce, secure));
        r
    };
    // CSRF: the form's nonce must equal its cookie, and the post must come from our own page.
    let nonce_ok = auth::cookie(&parts.headers, auth::LOGIN_COOKIE).is_some_and(|c| {
        !c.is_empty() && auth::same(c.as_bytes(), field(&fields, "csrf").as_bytes())
    });
    if !nonce_ok || !st.auth.same_origin(&parts.headers) {
        tracing::info!("dashboard login refused: CSRF check failed");
        return rebuild(
            "The form expired or was sent from another site. Please log in again.",
            StatusCode::FORBIDDEN,
        );
    }
    match st
        .auth
        .login(field(&fields, "name"), field(&fields, "password"))
        .await
    {
        Ok(token) => {
            let secure = st.auth.is_secure(&parts.headers, peer);
            let mut r = redirect(&safe_next(field(&fields, "next")));
            set_cookie(&mut r, &st.auth.session_cookie(&token, secure));
            set_cookie(
                &mut r,
                &format!(
                    "{}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0{}",
                    auth::LOGIN_COOKIE,
                    if secure { "; Secure" } else { "" }
                ),
            );
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

async fn logout(
    app: &App,
    st: &State,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    let Some((parts, fields)) = read_form(app, req).await else {
        return html(
            StatusCode::BAD_REQUEST,
            page::error("Bad request", "The form did not arrive whole.", None),
        );
    };
    if !st.auth.same_origin(&parts.headers)
        || !st.auth.logout(&parts.headers, field(&fields, "csrf"))
    {
        tracing::info!("dashboard logout refused: CSRF check failed or no session");
        return html(
            StatusCode::FORBIDDEN,
            page::error(
                "Not logged out",
                "The logout form was not sent from this dashboard, or the session had already ended.",
                Some(("/dashboard", "Back to the dashboard")),
            ),
        );
    }
    let secure = st.auth.is_secure(&parts.headers, peer);
    let mut r = redirect("/login");
    set_cookie(&mut r, &Auth::clear_session_cookie(secure));
    r
}

#[allow(clippy::too_many_arguments)]
async fn dashboard(
    app: &App,
    st: &State,
    req: &Request<Incoming>,
    base: String,
    site: &str,
    sites: Vec<(String, String)>,
    viewer: Option<&Viewer>,
    shared: bool,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let view = match View::parse(base.clone(), site.to_string(), req.uri().query()) {
        Ok(v) => v,
        Err(message) => {
            return html(
                StatusCode::BAD_REQUEST,
                page::error(
                    "This view cannot be shown",
                    &message,
                    Some((&base, "Show the last 30 days")),
                ),
            )
        }
    };
    let mode = if app.config.privacy.aggregate_only {
        panels::Mode::Aggregate
    } else {
        panels::Mode::Visits
    };
    let data = panels::load(app, &view, mode, app.ingest.clock.now()).await;
    // The period is what the engine refuses for every panel (filters in aggregate-only mode
    // are refused per panel, and say why there).
    if let (Err(StatsError::Invalid(message)), true) = (&data.headline, view.filters.is_empty()) {
        return html(
            StatusCode::BAD_REQUEST,
            page::error(
                "This view cannot be shown",
                message,
                Some((&base, "Show the last 30 days")),
            ),
        );
    }
    let time_zone = st
        .sites
        .iter()
        .find(|(s, _)| s == site)
        .map(|(_, tz)| tz.as_str())
        .unwrap_or("UTC");
    let ctx = page::Context {
        sites,
        viewer,
        time_zone,
        realtime_url: format!("{base}/realtime"),
        shared,
    };
    let body = page::dashboard(&view, &data, &ctx);
    tracing::debug!(
        site,
        ms = started.elapsed().as_millis() as u64,
        "dashboard page"
    );
    let mut r = html(StatusCode::OK, body);
    // How long the numbers took, for people measuring (Server-Timing shows in browser tools).
    if let Ok(v) = HeaderValue::from_str(&format!(
        "render;dur={:.1}",
        started.elapsed().as_secs_f64() * 1000.0
    )) {
        r.headers_mut().insert("server-timing", v);
    }
    r
}

/// `{"visitors": n}`: the realtime number, for the page's script.
async fn realtime(app: &App, site: &str) -> Response<Body> {
    if app.config.privacy.aggregate_only {
        return json(
            StatusCode::NOT_FOUND,
            r#"{"error":"no realtime numbers in aggregate-only mode"}"#.into(),
        );
    }
    let body = serde_json::json!({
        "site_id": site,
        "metrics": ["visitors"],
        "date_range": "realtime",
    });
    match panels::run(app, &body, app.ingest.clock.now()).await {
        Ok(a) => json(
            StatusCode::OK,
            serde_json::json!({ "visitors": a.rows.first().map(|r| r.metric(0)).unwrap_or(0.0) })
                .to_string(),
        ),
        Err(e) => json(
            e.status(),
            serde_json::json!({ "error": e.to_string() }).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owns_the_dashboard_paths_only() {
        for p in [
            "/",
            "/login",
            "/logout",
            "/dashboard",
            "/dashboard/a.example",
            "/share/x",
            "/assets/dashboard.css",
        ] {
            assert!(owns(p), "{p}");
        }
        for p in [
            "/api/event",
            "/api/v2/query",
            "/t.js",
            "/privacy",
            "/healthz",
            "/readyz",
            "/metrics",
            "/dashboards",
            "/favicon.ico",
        ] {
            assert!(!owns(p), "{p}");
        }
    }

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

    #[test]
    fn user_lines_parse_back_into_a_valid_config() {
        let lines = user_config("web \"team\"", "long enough secret").unwrap();
        let config =
            crate::config::Config::parse(&format!("{lines}\n[[sites]]\ndomain = \"a.example\"\n"))
                .unwrap();
        let u = &config.dashboard.users[0];
        assert_eq!(u.name, "web \"team\"");
        assert!(u
            .password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$"));
        assert!(user_config("alice", "short").is_err());
        assert!(user_config(" alice", "long enough secret").is_err());
        // Debug output (check-config) shows no hash.
        assert!(!format!("{config:?}").contains("$argon2"));

        let (secret, toml) = share_link_config("a.example");
        let config =
            crate::config::Config::parse(&format!("{toml}\n[[sites]]\ndomain = \"a.example\"\n"))
                .unwrap();
        assert_eq!(
            config.dashboard.share_links[0].sha256,
            hex::encode(Sha256::digest(secret.as_bytes()))
        );
    }

    #[test]
    fn config_is_checked() {
        let parse = |d: &str| {
            crate::config::Config::parse(&format!("{d}\n[[sites]]\ndomain = \"a.example\"\n"))
        };
        assert!(parse("").is_ok());
        let d = parse("").unwrap().dashboard;
        assert_eq!(
            (d.session_idle_secs, d.session_max_secs),
            (259_200, 1_209_600)
        );
        assert!(parse("[[dashboard.users]]\nname = \"a\"\npassword_hash = \"plain\"").is_err());
        assert!(parse("[[dashboard.users]]\nname = \"a\"\nsites = [\"nope.example\"]").is_err());
        assert!(
            parse("[[dashboard.users]]\nname = \"a\"\n[[dashboard.users]]\nname = \"a\"").is_err()
        );
        assert!(parse(&format!(
            "[[dashboard.share_links]]\nsite = \"a.example\"\nsha256 = \"{}\"",
            "A".repeat(64)
        ))
        .is_err());
        assert!(parse("[dashboard]\nsession_idle_secs = 10\nsession_max_secs = 5").is_err());
        assert!(parse("[dashboard]\ntrusted_user_header = \"bad header\"").is_err());
        assert!(parse("[dashboard]\nsessions = 1").is_err());
    }
}
