//! The read side over HTTP: the stats API (`POST /api/v2/query`), Plausible's v1 realtime
//! number, and the privacy report (`GET /privacy`). A stats error becomes a response in one
//! place, [`stats_error`]: its status and `{"error": message}`. The stats API sends no CORS
//! headers (it is for servers, and the dashboard served from this origin asks in-process).

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::app::App;
use crate::error::StatsError;
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

/// `POST /api/v2/query`: the JSON query in, the JSON answer out.
pub async fn query(app: &App, req: Request<Incoming>) -> Response<Body> {
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
        Ok::<_, StatsError>(request.answer_json(&answer))
    }
    .await;
    match result {
        Ok(answer) => response::json(StatusCode::OK, answer.to_string()),
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

/// The privacy report, live: Markdown, or JSON when the client accepts `application/json`.
pub fn privacy(app: &App, req: &Request<Incoming>) -> Response<Body> {
    if let Err(e) = app.stats.access.check_any(authorization(req)) {
        return stats_error(e);
    }
    let report = crate::privacy_report::build(&app.config, &app.privacy_live(), app.clock.now());
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        let body = serde_json::to_string_pretty(&report).unwrap_or_default();
        return response::json(StatusCode::OK, body);
    }
    response::uncached(
        StatusCode::OK,
        "text/markdown; charset=utf-8",
        crate::privacy_report::markdown(&report),
    )
}
