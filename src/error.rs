//! The library's one error type, and the one place where a rejected request becomes an HTTP status.
//!
//! Error messages never carry request data: a rejection names a reason code, not the
//! offending value, so an IP address, user agent or URL cannot leak through an error.

use hyper::StatusCode;

/// Errors of the library; the binary wraps them in `anyhow` at its edge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("migration {name}: {message}")]
    Migration {
        name: String,
        message: String,
        /// The server did not answer (rather than refusing the statement).
        unreachable: bool,
    },
    #[error("country database: {0}")]
    CountryDatabase(String),
    #[error("salt store: {0}")]
    Salt(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("spool: {0}")]
    Spool(String),
    #[error("spool full: {bytes} of {max} bytes used")]
    SpoolFull { bytes: u64, max: u64 },
}

/// Why a beacon was refused. Each has a short machine-readable reason sent as `{"error": reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Body is not valid JSON, not an object, or not UTF-8.
    MalformedJson,
    /// Body larger than `server.max_body_bytes`.
    BodyTooLarge,
    /// A required field (event name, URL) is absent or empty.
    MissingField,
    /// A field has the wrong type or an impossible value.
    InvalidField,
    /// A key the wire format does not know.
    UnknownField,
    /// The page URL is not an absolute http(s) URL.
    InvalidUrl,
    /// Neither the `domain` field nor the page's host is a configured site.
    UnknownSite,
    /// Content type other than JSON or text/plain.
    UnsupportedMediaType,
    /// Path not served.
    NotFound,
    /// Method not allowed on this path.
    MethodNotAllowed,
    /// The writer queue is full: the beacon was not accepted (counted).
    Overloaded,
    /// The request target is longer than `server.max_url_bytes`.
    UriTooLong,
    /// The body did not arrive within `server.request_timeout_secs`.
    RequestTimeout,
    /// This client sent more beacons than `ingest.rate_limit_per_minute`.
    RateLimited,
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::MalformedJson
            | Rejection::MissingField
            | Rejection::InvalidField
            | Rejection::UnknownField
            | Rejection::InvalidUrl
            | Rejection::UnknownSite => StatusCode::BAD_REQUEST,
            Rejection::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::NotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::UriTooLong => StatusCode::URI_TOO_LONG,
            Rejection::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The reason code: stable, short, and free of request data.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::MalformedJson => "malformed_json",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::MissingField => "missing_field",
            Rejection::InvalidField => "invalid_field",
            Rejection::UnknownField => "unknown_field",
            Rejection::InvalidUrl => "invalid_url",
            Rejection::UnknownSite => "unknown_site",
            Rejection::UnsupportedMediaType => "unsupported_media_type",
            Rejection::NotFound => "not_found",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::Overloaded => "overloaded",
            Rejection::UriTooLong => "uri_too_long",
            Rejection::RequestTimeout => "request_timeout",
            Rejection::RateLimited => "rate_limited",
        }
    }

    /// Seconds a client should wait before sending again, for the refusals that are about load.
    pub fn retry_after(self) -> Option<&'static str> {
        match self {
            Rejection::Overloaded => Some("5"),
            Rejection::RateLimited => Some("60"),
            _ => None,
        }
    }

    pub const ALL: [Rejection; 14] = [
        Rejection::MalformedJson,
        Rejection::BodyTooLarge,
        Rejection::MissingField,
        Rejection::InvalidField,
        Rejection::UnknownField,
        Rejection::InvalidUrl,
        Rejection::UnknownSite,
        Rejection::UnsupportedMediaType,
        Rejection::NotFound,
        Rejection::MethodNotAllowed,
        Rejection::Overloaded,
        Rejection::UriTooLong,
        Rejection::RequestTimeout,
        Rejection::RateLimited,
    ];
}

/// Why a stats request failed. Converted to a response in `http::stats_error`, by [`StatsError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// The query is not valid; the message says what to change (it may quote the query).
    #[error("{0}")]
    Invalid(String),
    /// No token, a wrong token, a token without this site, or an unknown site: one answer for
    /// all, so a caller cannot probe which sites exist.
    #[error("Invalid API key or site ID. Please make sure you're using a valid API key with access to the site you've requested.")]
    Unauthorized,
    /// ClickHouse failed; details are logged, not sent.
    #[error("the statistics store is unavailable; try again later")]
    Unavailable,
    /// The query needed more time or memory than a report may take.
    #[error("this query needs more time or memory than a report may use; ask for a shorter period or fewer filters")]
    TooLarge,
}

impl StatsError {
    pub fn status(&self) -> StatusCode {
        match self {
            StatsError::Invalid(_) => StatusCode::BAD_REQUEST,
            StatsError::Unauthorized => StatusCode::UNAUTHORIZED,
            StatsError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            StatsError::TooLarge => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}
