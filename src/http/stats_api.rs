//! The read side over HTTP: the stats API (`POST /api/v2/query`, JSON, or CSV for
//! `Accept: text/csv`), Plausible's v1 realtime number, and the privacy report (`GET /privacy`,
//! in the language of `Accept-Language`). A stats error becomes a response in one place,
//! [`stats_error`]: its status and `{"error": message}` (JSON whatever was asked). The stats API
//! sends no CORS headers (it is for servers, and the dashboard served from this origin asks
//! in-process).

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::app::App;
use crate::error::StatsError;
use crate::i18n::{self, Lang};
use crate::response::{self, Body};
use crate::stats::api;

/// Largest stats query body: a query is a few hundred bytes; this leaves room for long filters.
const MAX_QUERY_BYTES: usize = 64 * 1024;

/// The one place a stats error becomes a response: its status and `{"error": message}`.
pub fn stats_error(e: StatsError) -> Response<Body> {
    response::error_json(e.status(), &e.to_string())
}

/// The raw `Authorization` header, if it is text.
fn authorization(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Whether the client asks for CSV: its `Accept` names `text/csv` with a weight above 0 and
/// above any it gives JSON. Plausible's API knows only JSON, so its clients never ask.
fn wants_csv(req: &Request<Incoming>) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let weight = |media: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let m = parts.next()?.trim();
                m.eq_ignore_ascii_case(media).then(|| {
                    parts
                        .filter_map(|p| p.trim().strip_prefix("q="))
                        .find_map(|q| q.trim().parse::<f32>().ok())
                        .unwrap_or(1.0)
                })
            })
            .fold(0.0, f32::max)
    };
    let csv = weight("text/csv");
    csv > 0.0 && csv > weight("application/json")
}

/// `POST /api/v2/query`: the JSON query in, the JSON answer out (or CSV, see [`wants_csv`]).
pub async fn query(app: &App, req: Request<Incoming>) -> Response<Body> {
    let csv = wants_csv(&req);
    let authorization = authorization(&req).map(str::to_string);
    let body = match tokio::time::timeout(
        app.config.server.request_timeout,
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
        let request = api::Request::parse(&body)?;
        app.stats
            .authorize(&request.query.site_id, authorization.as_deref())?;
        let answer = app.stats.run(&request.query, app.clock.now()).await?;
        Ok::<_, StatsError>(if csv {
            api::answer_csv(&request.query, &answer)
        } else {
            request.answer_json(&answer).to_string()
        })
    }
    .await;
    match result {
        Ok(body) if csv => response::uncached(StatusCode::OK, "text/csv; charset=utf-8", body),
        Ok(body) => response::json(StatusCode::OK, body),
        Err(e) => stats_error(e),
    }
}

/// Plausible's v1 realtime endpoint: the number of visitors in the last 5 minutes, bare.
pub async fn realtime(app: &App, req: &Request<Incoming>) -> Response<Body> {
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
        Ok(()) => app.stats.realtime_visitors(&site, app.clock.now()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => response::json(StatusCode::OK, n.to_string()),
        Err(e) => stats_error(e),
    }
}

/// The privacy report, live: Markdown in the language of `Accept-Language` (English, Dutch or
/// French), or JSON (always English: field names and values for machines) when the client
/// accepts `application/json`.
pub fn privacy(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if let Err(e) = app.stats.access.check_any(authorization(req)) {
        return stats_error(e);
    }
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let wants_json = header(header::ACCEPT).is_some_and(|a| a.contains("application/json"));
    let lang = if wants_json {
        Lang::En
    } else {
        Lang::negotiate(header(header::ACCEPT_LANGUAGE))
    };
    let tr = i18n::tr(lang);
    let report =
        crate::privacy_report::build(&app.config, &app.privacy_live(), app.clock.now(), tr);
    if wants_json {
        let body = serde_json::to_string_pretty(&report).unwrap_or_default();
        return response::json(StatusCode::OK, body);
    }
    let mut r = response::uncached(
        StatusCode::OK,
        "text/markdown; charset=utf-8",
        crate::privacy_report::markdown(&report, tr),
    );
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_LANGUAGE,
        header::HeaderValue::from_static(lang.code()),
    );
    h.insert(
        header::VARY,
        header::HeaderValue::from_static("Accept, Accept-Language"),
    );
    r
}
