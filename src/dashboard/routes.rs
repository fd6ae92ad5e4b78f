//! The dashboard's requests: which page answers which path, who may see it, and the
//! dashboard page, its panels as CSV and its realtime number. Each page is in the language of
//! the request ([`language`]). The dashboard's state ([`Dashboard`]) is built once with the rest
//! of the app and passed to every request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use jiff::tz::TimeZone;

use super::assets::Asset;
use super::auth::{Auth, Viewer};
use super::export;
use super::login;
use super::page;
use super::panels::{self, Reports};
use super::respond::{self, error, html, json, not_found, redirect};
use super::sessions::SessionStore;
use super::view::View;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::StatsError;
use crate::i18n::{self, Lang, Tr};
use crate::response::Body;
use crate::stats::Stats;

/// What the dashboard keeps between requests.
pub struct Dashboard {
    auth: Auth,
    /// Configured sites in config order, with their time zones.
    sites: Vec<(String, TimeZone)>,
    reports: Reports,
    clock: Arc<dyn Clock>,
    /// `privacy.aggregate_only`: only the panels of counts are shown.
    aggregate_only: bool,
    /// Time a form has to arrive (`server.request_timeout_secs`).
    request_timeout: Duration,
}

/// Whether `path` belongs to the dashboard (and so is handed to [`Dashboard::handle`]).
pub fn owns(path: &str) -> bool {
    matches!(path, "/" | "/login" | "/logout" | "/dashboard")
        || path.starts_with("/dashboard/")
        || path.starts_with("/share/")
        || path.starts_with("/assets/")
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The language of a request: the `lang` parameter when it names a language tally speaks (it
/// was chosen with the switch, and links keep it), else the browser's `Accept-Language`, else
/// English. The dashboard page itself refuses a `lang` it does not know (see `View::parse`).
fn language(req: &Request<Incoming>) -> (Option<Lang>, &'static Tr) {
    let chosen = query_param(req, "lang").and_then(|l| Lang::parse(&l));
    let lang = chosen.unwrap_or_else(|| {
        Lang::negotiate(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    });
    (chosen, i18n::tr(lang))
}

/// `path` with the chosen language, if any, as its (only) query parameter.
fn keep_lang(path: &str, lang: Option<Lang>) -> String {
    match lang {
        Some(l) => format!("{path}?lang={}", l.code()),
        None => path.to_string(),
    }
}

impl Dashboard {
    /// `sessions`: where logins are kept (see `sessions`).
    pub fn new(
        config: &Config,
        stats: Arc<Stats>,
        sessions: Arc<SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Dashboard {
        Dashboard {
            auth: Auth::new(config, sessions, clock.clone()),
            sites: config
                .sites
                .iter()
                .map(|s| (s.domain.clone(), s.time_zone.clone()))
                .collect(),
            reports: Reports::new(stats),
            clock,
            aggregate_only: config.privacy.aggregate_only,
            request_timeout: config.server.request_timeout,
        }
    }

    /// Answers a dashboard request. `peer` is the connection's peer: a proxy's headers (user
    /// header, `X-Forwarded-Proto`) are believed only when it is a trusted proxy.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let peer = Some(peer);
        let path = req.uri().path().to_string();
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        let post = *req.method() == Method::POST;
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let auth = &self.auth;
        let (lang, tr) = language(&req);
        match segments.as_slice() {
            [""] if get => redirect(&keep_lang("/dashboard", lang)),
            ["login"] if get => {
                if auth.viewer(req.headers(), peer).await.is_some() {
                    return redirect(&keep_lang("/dashboard", lang));
                }
                let next = query_param(&req, "next").unwrap_or_default();
                login::form(auth, &req, peer, &login::safe_next(&next), tr, lang)
            }
            ["login"] if post => login::login(auth, req, peer, self.request_timeout, tr).await,
            ["logout"] if post => login::logout(auth, req, peer, self.request_timeout, tr).await,
            ["dashboard"] | ["dashboard", ""] if get => {
                match auth.viewer(req.headers(), peer).await {
                    Some(v) => match self.sites.iter().find(|(s, _)| v.may_see(s)) {
                        Some((site, _)) => {
                            redirect(&keep_lang(&format!("/dashboard/{site}"), lang))
                        }
                        None => error(
                            tr,
                            StatusCode::FORBIDDEN,
                            &tr.t("error.no_sites.title"),
                            &tr.t("error.no_sites.message"),
                            None,
                        ),
                    },
                    None => redirect(&keep_lang("/login", lang)),
                }
            }
            ["dashboard", site, rest @ ..] if get && matches!(rest, [] | ["csv", _]) => {
                let Some(viewer) = auth.viewer(req.headers(), peer).await else {
                    let here = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default();
                    let mut q = url::form_urlencoded::Serializer::new(String::new());
                    q.append_pair("next", &here);
                    // The login page speaks the language chosen on the dashboard.
                    if let Some(l) = lang {
                        q.append_pair("lang", l.code());
                    }
                    return redirect(&format!("/login?{}", q.finish()));
                };
                if !viewer.may_see(site) || !self.sites.iter().any(|(s, _)| s == site) {
                    return not_found(tr);
                }
                let base = format!("/dashboard/{site}");
                if let ["csv", panel] = rest {
                    return self.csv(&req, base, site, panel, tr).await;
                }
                let sites = self
                    .sites
                    .iter()
                    .filter(|(s, _)| viewer.may_see(s))
                    .map(|(s, _)| (s.clone(), format!("/dashboard/{s}")))
                    .collect();
                self.page(&req, base, site, sites, Some(&viewer), false, tr)
                    .await
            }
            ["dashboard", site, "realtime"] if get => {
                match auth.viewer(req.headers(), peer).await {
                    Some(v) if v.may_see(site) => self.realtime(site).await,
                    _ => json(
                        StatusCode::UNAUTHORIZED,
                        r#"{"error":"log in first"}"#.into(),
                    ),
                }
            }
            ["share", secret, rest @ ..] if get && matches!(rest, [] | ["csv", _]) => {
                match auth.share_site(secret) {
                    Some(site) => {
                        let site = site.to_string();
                        let base = format!("/share/{secret}");
                        if let ["csv", panel] = rest {
                            return self.csv(&req, base, &site, panel, tr).await;
                        }
                        self.page(&req, base, &site, Vec::new(), None, true, tr)
                            .await
                    }
                    None => not_found(tr),
                }
            }
            ["share", secret, "realtime"] if get => match auth.share_site(secret) {
                Some(site) => self.realtime(site).await,
                None => json(StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#.into()),
            },
            ["assets", name] if get => match Asset::named(name) {
                Some(a) => a.response(&req),
                None => not_found(tr),
            },
            ["" | "login" | "logout" | "dashboard"]
            | ["dashboard", _]
            | ["dashboard", _, "realtime"]
            | ["dashboard", _, "csv", _]
            | ["share", _]
            | ["share", _, "realtime"]
            | ["share", _, "csv", _]
            | ["assets", _] => {
                let mut r = error(
                    tr,
                    StatusCode::METHOD_NOT_ALLOWED,
                    &tr.t("error.method.title"),
                    &tr.t("error.method.message"),
                    None,
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
            _ => not_found(tr),
        }
    }

    /// The view of a request, or the page that says why its query string is not one.
    fn view(
        &self,
        req: &Request<Incoming>,
        base: &str,
        site: &str,
        tr: &Tr,
    ) -> Result<View, Box<Response<Body>>> {
        View::parse(base.to_string(), site.to_string(), req.uri().query())
            .and_then(|v| v.check_prop(self.reports.prop_keys(site)).map(|()| v))
            .map_err(|e| {
                Box::new(error(
                    tr,
                    StatusCode::BAD_REQUEST,
                    &tr.t("error.view.title"),
                    &e.message(tr),
                    Some((base, &tr.t("error.view.back"))),
                ))
            })
    }

    fn mode(&self) -> panels::Mode {
        if self.aggregate_only {
            panels::Mode::Aggregate
        } else {
            panels::Mode::Visits
        }
    }

    /// One panel of the view in the request's query string, as a CSV download.
    async fn csv(
        &self,
        req: &Request<Incoming>,
        base: String,
        site: &str,
        panel: &str,
        tr: &Tr,
    ) -> Response<Body> {
        let view = match self.view(req, &base, site, tr) {
            Ok(v) => v,
            Err(page) => return *page,
        };
        match export::panel(&self.reports, &view, self.mode(), panel, self.clock.now()).await {
            None => not_found(tr),
            Some(Ok(file)) => respond::csv(file.body, &file.name),
            Some(Err(e)) => error(
                tr,
                e.status(),
                &tr.t("error.csv.title"),
                &e.to_string(),
                Some((&view.href(), &tr.t("error.csv.back"))),
            ),
        }
    }

    /// The dashboard page of `site` for the view in the request's query string.
    #[allow(clippy::too_many_arguments)]
    async fn page(
        &self,
        req: &Request<Incoming>,
        base: String,
        site: &str,
        sites: Vec<(String, String)>,
        viewer: Option<&Viewer>,
        shared: bool,
        tr: &Tr,
    ) -> Response<Body> {
        let started = std::time::Instant::now();
        let view = match self.view(req, &base, site, tr) {
            Ok(v) => v,
            Err(page) => return *page,
        };
        let given = View::period_given(req.uri().query());
        let (view, data) = self
            .reports
            .load_opening(view, given, self.mode(), self.clock.now())
            .await;
        // The period is what the engine refuses for every panel (filters in aggregate-only mode
        // are refused per panel, and say why there).
        if let (Err(StatsError::Invalid(message)), true) = (&data.headline, !view.is_filtered()) {
            return error(
                tr,
                StatusCode::BAD_REQUEST,
                &tr.t("error.view.title"),
                message,
                Some((&base, &tr.t("error.view.back"))),
            );
        }
        let time_zone = self
            .sites
            .iter()
            .find(|(s, _)| s == site)
            .and_then(|(_, tz)| tz.iana_name())
            .unwrap_or("UTC");
        let ctx = page::Context {
            sites,
            viewer,
            time_zone,
            realtime_url: format!("{base}/realtime"),
            shared,
            tr,
        };
        let body = page::dashboard(&view, &data, &ctx);
        tracing::debug!(
            site,
            ms = started.elapsed().as_millis() as u64,
            "dashboard page"
        );
        let mut r = html(tr, StatusCode::OK, body);
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
    async fn realtime(&self, site: &str) -> Response<Body> {
        if self.aggregate_only {
            return json(
                StatusCode::NOT_FOUND,
                r#"{"error":"no realtime numbers in aggregate-only mode"}"#.into(),
            );
        }
        let query = crate::stats::Query::new(
            site,
            &[crate::stats::Metric::Visitors],
            crate::stats::DateRange::Realtime,
        );
        match self.reports.run(&query, self.clock.now()).await {
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
            "/dashboard/a.example/csv/pages",
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
}
