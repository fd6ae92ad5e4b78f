//! The beacon endpoint (`POST /api/event`) and its CORS preflight: size, time and content-type
//! limits, then `Ingest::accept`. Every refusal goes through [`reject`], the one place where a
//! rejection becomes a status, a `{"error": reason}` body and a count. CORS is answered for the
//! configured sites' origins only.

use std::future::Future;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use tokio::time::error::Elapsed;

use crate::app::App;
use crate::error::Rejection;
use crate::ingest::{Outcome, RequestMeta};
use crate::response::{self, Body};

pub async fn event(app: &App, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let cors = allowed_origin(app, &parts.headers);
    let outcome = read_and_ingest(app, peer, &parts.headers, body).await;
    let mut response = match outcome {
        Ok(Outcome::Stored(_) | Outcome::Bot | Outcome::NotTracked | Outcome::Excluded) => {
            response::empty(StatusCode::ACCEPTED)
        }
        Err(rejection) => reject(app, rejection),
    };
    // The request's header map, emptied, carries the response's headers. hyper keeps a
    // response's map to parse the connection's next request into: one sized for a request
    // needs no growing then, and no new map is allocated here. Emptying it also lets go of
    // the request's header values (slices of hyper's read buffer) before the response is sent.
    let mut headers = parts.headers;
    headers.clear();
    std::mem::swap(response.headers_mut(), &mut headers);
    response.headers_mut().extend(headers);
    if let Some(origin) = cors {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        // The tracker reads it to back off after a 503 or 429.
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
    response
}

async fn read_and_ingest(
    app: &App,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Outcome, Rejection> {
    check_content_type(headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > app.config.server.max_body_bytes) {
        return Err(Rejection::BodyTooLarge);
    }
    let body = within(
        app.config.server.request_timeout,
        Limited::new(body, app.config.server.max_body_bytes).collect(),
    )
    .await
    .map_err(|_| Rejection::RequestTimeout)?
    .map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            Rejection::BodyTooLarge
        } else {
            Rejection::MalformedJson
        }
    })?
    .to_bytes();
    app.ingest
        .accept(
            &body,
            RequestMeta {
                peer: peer.ip(),
                headers,
            },
        )
        .await
}

/// `tokio::time::timeout(limit, fut)`, without a timer for what is done by its second poll.
///
/// hyper reads a request's body only once the handler asks for it, so the first poll of the
/// body is always pending and the second (right after hyper has read it) almost always done.
/// Arming a timer for that costs a timer-wheel insertion and removal per beacon; so the first
/// pending poll only asks to be polled again, and the timer starts only if the second finds
/// the body still incomplete: due `limit` after that second poll, which comes right after the
/// first (the clock is not even read for a body that is already there).
async fn within<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let mut polls = 0;
    let early = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending if polls == 0 => {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    match early {
        Some(out) => Ok(out),
        None => tokio::time::timeout(limit, fut).await,
    }
}

/// Beacons come as JSON or as `text/plain` (what `sendBeacon` sends a string as); no type at all
/// is taken too. Anything else is refused.
fn check_content_type(headers: &hyper::HeaderMap) -> Result<(), Rejection> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().map_err(|_| Rejection::UnsupportedMediaType)?;
    let mime = ct.split(';').next().unwrap_or("").trim();
    // Compared without a lower-case copy.
    if mime.is_empty()
        || mime.eq_ignore_ascii_case("application/json")
        || mime.eq_ignore_ascii_case("text/plain")
    {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType)
    }
}

/// The `Origin` header echoed back when its host is one of the configured sites.
fn allowed_origin(app: &App, headers: &hyper::HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    app.ingest
        .site_for_host(origin_host(origin.to_str().ok()?)?)?;
    Some(origin.clone())
}

/// The host of an `Origin` header, which is only ever `scheme://host[:port]` (RFC 6454), read
/// without a full URL parse (that was a twentieth of a beacon's cost). Anything else, `null`
/// and IPv6 literals included (no site can be one), has no host here.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let host = match rest.split_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => rest,
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    (!host.is_empty() && host.bytes().all(plain)).then_some(host)
}

pub fn preflight(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let mut r = response::empty(StatusCode::NO_CONTENT);
    if let Some(origin) = allowed_origin(app, req.headers()) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// The one place a rejection becomes a response: its status, `{"error": reason}`, and a count.
pub fn reject(app: &App, rejection: Rejection) -> Response<Body> {
    app.metrics.reject(rejection.reason());
    tracing::debug!(reason = rejection.reason(), "beacon rejected");
    let body = format!("{{\"error\":\"{}\"}}", rejection.reason());
    let mut r = response::with(rejection.status(), "application/json", body);
    if let Some(secs) = rejection.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hosts_are_read_without_a_url_parser() {
        assert_eq!(
            origin_host("https://www.example.org"),
            Some("www.example.org")
        );
        assert_eq!(origin_host("http://example.org:8080"), Some("example.org"));
        for bad in [
            "null",
            "ftp://example.org",
            "https://",
            "https://example.org/path",
            "https://example.org:",
            "https://example.org:80x",
            "https://[::1]:8080",
            "https://user@example.org",
        ] {
            assert_eq!(origin_host(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn within_answers_what_is_ready_and_times_out_what_never_is() {
        assert_eq!(
            within(Duration::from_secs(5), async { 7 }).await.ok(),
            Some(7)
        );
        // Ready on the second poll: the case of every beacon body.
        let mut polled = false;
        let second = std::future::poll_fn(|cx| {
            if polled {
                Poll::Ready(8)
            } else {
                polled = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        });
        assert_eq!(within(Duration::from_secs(5), second).await.ok(), Some(8));
        // Ready later than the second poll, within the limit.
        let later = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            9
        };
        assert_eq!(within(Duration::from_secs(5), later).await.ok(), Some(9));
        let started = std::time::Instant::now();
        assert!(
            within(Duration::from_millis(50), std::future::pending::<()>())
                .await
                .is_err()
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn content_types() {
        let mut h = hyper::HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "text/plain;charset=UTF-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            " Application/JSON ; x".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "application/jsonx".parse().unwrap());
        assert_eq!(check_content_type(&h), Err(Rejection::UnsupportedMediaType));
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=x".parse().unwrap(),
        );
        assert_eq!(check_content_type(&h), Err(Rejection::UnsupportedMediaType));
    }

    #[test]
    fn every_rejection_has_a_client_or_overload_status_and_a_plain_reason() {
        for r in Rejection::ALL {
            let s = r.status().as_u16();
            assert!((400..500).contains(&s) || s == 503, "{r:?}");
            assert!(r
                .reason()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }
}
