//! The files under `/assets/` (stylesheet, the small optional script, icon), embedded in the
//! binary. Each is linked with `?v=` and a hash of its content, computed at compile time, so
//! browsers may keep it for a year and still never see a stale one.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::headers::secure_headers;
use crate::response::{self, Body};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    Css,
    Js,
    Icon,
}

const CSS: &[u8] = include_bytes!("assets/dashboard.css");
const JS: &[u8] = include_bytes!("assets/dashboard.js");
const ICON: &[u8] = include_bytes!("assets/icon.svg");

/// FNV-1a, 64 bits: enough to tell two versions of a file apart, and computable in a `const`.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const VERSIONS: [u64; 3] = [fnv1a(CSS), fnv1a(JS), fnv1a(ICON)];

impl Asset {
    pub const ALL: [Asset; 3] = [Asset::Css, Asset::Js, Asset::Icon];

    pub fn name(self) -> &'static str {
        match self {
            Asset::Css => "dashboard.css",
            Asset::Js => "dashboard.js",
            Asset::Icon => "icon.svg",
        }
    }

    fn bytes(self) -> &'static [u8] {
        match self {
            Asset::Css => CSS,
            Asset::Js => JS,
            Asset::Icon => ICON,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Asset::Css => "text/css; charset=utf-8",
            Asset::Js => "text/javascript; charset=utf-8",
            Asset::Icon => "image/svg+xml",
        }
    }

    /// The `?v=` value: the content hash as 16 hex digits.
    fn version(self) -> String {
        format!("{:016x}", VERSIONS[self as usize])
    }

    /// Where pages link it.
    pub fn href(self) -> String {
        format!("/assets/{}?v={}", self.name(), self.version())
    }

    /// The asset named `name`, if any.
    pub fn named(name: &str) -> Option<Asset> {
        Asset::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The file: cached for a year when asked with its current version, else revalidated.
    pub fn response(self, req: &Request<Incoming>) -> Response<Body> {
        let mut r = response::with(StatusCode::OK, self.content_type(), self.bytes());
        let versioned = req
            .uri()
            .query()
            .is_some_and(|q| q.strip_prefix("v=") == Some(self.version().as_str()));
        r.headers_mut().insert(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_content() {
        assert_ne!(Asset::Css.version(), Asset::Js.version());
        assert_eq!(Asset::Css.version().len(), 16);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"a{}"), fnv1a(b"a{ }"));
        assert!(Asset::Icon.href().starts_with("/assets/icon.svg?v="));
    }
}
