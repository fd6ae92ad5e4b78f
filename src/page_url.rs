//! Page URL and referrer reduction: what of an address may be stored.
//!
//! A page URL becomes host + path (+ the allow-listed query parameters); the fragment and every
//! other query parameter are dropped here, before the event is queued, and personal data in the
//! path or the kept values is replaced by placeholders (`scrub`). A referrer becomes its
//! host only, and none at all when it is the site itself. Parsing is the `url` crate's (WHATWG).

use url::Url;

use crate::error::Rejection;
use crate::scrub;

/// Longest page URL accepted, in bytes; longer ones are refused (a path that long is an attack
/// or a bug, and would bloat the pages table).
pub const MAX_URL_BYTES: usize = 2048;
/// Longest allow-listed query value kept, in characters.
pub const MAX_QUERY_VALUE_CHARS: usize = 100;
/// Longest stored path, in characters.
pub const MAX_PATH_CHARS: usize = 512;

/// A page address reduced to what tally stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub host: String,
    pub path: String,
    /// Allow-listed parameters only, as `(key, value)` in their original order.
    pub query: Vec<(String, String)>,
}

impl Page {
    /// The kept query re-encoded as `k=v&k2=v2` (empty when none were kept).
    pub fn query_string(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.query {
            out.append_pair(k, v);
        }
        out.finish()
    }

    pub fn param(&self, key: &str) -> &str {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// [`Page::param`] as an owned value: a copy, or with `take` the value itself (left empty
    /// in the page, for the last row made from it).
    pub fn param_owned(&mut self, key: &str, take: bool) -> String {
        match self.query.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) if take => std::mem::take(v),
            Some((_, v)) => v.clone(),
            None => String::new(),
        }
    }
}

/// Reduces a page URL. `hash_mode` keeps the fragment's route part, for hash-routed apps.
pub fn reduce_page(raw: &str, allowlist: &[String], hash_mode: bool) -> Result<Page, Rejection> {
    if raw.len() > MAX_URL_BYTES {
        return Err(Rejection::InvalidUrl);
    }
    let url = Url::parse(raw).map_err(|_| Rejection::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Rejection::InvalidUrl);
    }
    let host = url
        .host_str()
        .ok_or(Rejection::InvalidUrl)?
        .to_ascii_lowercase();
    let mut path = url.path().to_string();
    if hash_mode {
        if let Some(fragment) = url.fragment() {
            // Only the route: a fragment's own query (`#/x?token=...`) is as private as a query.
            let route = fragment.split(['?', '&']).next().unwrap_or("");
            if !route.is_empty() {
                path.push('#');
                path.push_str(route);
            }
        }
    }
    // Personal data in the path or a kept value becomes a placeholder before anything is cut,
    // so truncation cannot hide part of an e-mail address or token from the scrubber.
    let mut path = scrub::scrub_path(&path).into_owned();
    truncate_chars(&mut path, MAX_PATH_CHARS);
    let query = url
        .query_pairs()
        .filter(|(k, _)| allowlist.iter().any(|a| a == k.as_ref()))
        .map(|(k, v)| {
            let mut v = scrub::scrub_value(&v).into_owned();
            truncate_chars(&mut v, MAX_QUERY_VALUE_CHARS);
            (k.into_owned(), v)
        })
        .collect();
    Ok(Page { host, path, query })
}

/// Reduces a referrer to its host; `None` for same-site, empty or unparsable referrers.
pub fn reduce_referrer(raw: Option<&str>, site_hosts: &[String]) -> Option<String> {
    let raw = raw?.trim();
    if raw.is_empty() || raw.len() > MAX_URL_BYTES {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    if host.is_empty() || site_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return None;
    }
    // A host label that carries personal data (none expected) drops the whole referrer.
    if scrub::host_is_personal(host) {
        return None;
    }
    Some(host.to_string())
}

/// Whether the referrer is one of the site's own pages (an internal navigation).
pub fn referrer_is_internal(raw: Option<&str>, site_hosts: &[String]) -> bool {
    raw.and_then(|r| Url::parse(r.trim()).ok())
        .and_then(|u| {
            u.host_str()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        })
        .is_some_and(|h| site_hosts.iter().any(|s| s.eq_ignore_ascii_case(&h)))
}

/// Cuts a string to at most `max` characters, at a character boundary.
pub fn truncate_chars(s: &mut String, max: usize) {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Vec<String> {
        crate::config::DEFAULT_QUERY_ALLOWLIST
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn drops_query_except_allowlist_and_fragment() {
        let p = reduce_page(
            "https://WWW.Example.org/afval/2026?email=jan%40example.nl&utm_source=nieuwsbrief&sid=abc#section",
            &allow(),
            false,
        )
        .unwrap();
        assert_eq!(p.host, "www.example.org");
        assert_eq!(p.path, "/afval/2026");
        assert_eq!(p.query_string(), "utm_source=nieuwsbrief");
        assert_eq!(p.param("utm_source"), "nieuwsbrief");
    }

    #[test]
    fn hash_mode_keeps_route_not_fragment_query() {
        let p = reduce_page("https://a.nl/app#/orders?token=s3cr3t", &allow(), true).unwrap();
        assert_eq!(p.path, "/app#/orders");
        let p = reduce_page("https://a.nl/app#/orders?token=s3cr3t", &allow(), false).unwrap();
        assert_eq!(p.path, "/app");
    }

    #[test]
    fn refuses_non_http_and_oversized() {
        assert_eq!(
            reduce_page("javascript:alert(1)", &allow(), false),
            Err(Rejection::InvalidUrl)
        );
        assert_eq!(
            reduce_page("/relative", &allow(), false),
            Err(Rejection::InvalidUrl)
        );
        let long = format!("https://a.nl/{}", "x".repeat(MAX_URL_BYTES));
        assert_eq!(
            reduce_page(&long, &allow(), false),
            Err(Rejection::InvalidUrl)
        );
    }

    #[test]
    fn long_query_values_are_cut_on_char_boundary() {
        let raw = format!("https://a.nl/?utm_campaign={}", "é".repeat(300));
        let p = reduce_page(&raw, &allow(), false).unwrap();
        assert_eq!(
            p.param("utm_campaign").chars().count(),
            MAX_QUERY_VALUE_CHARS
        );
    }

    #[test]
    fn referrer_is_host_only_and_not_self() {
        let site = vec!["www.example.org".to_string(), "example.org".to_string()];
        assert_eq!(
            reduce_referrer(Some("https://www.Google.com/search?q=my+name"), &site).as_deref(),
            Some("www.google.com")
        );
        assert_eq!(
            reduce_referrer(Some("https://example.org/x?y=1"), &site),
            None
        );
        assert_eq!(reduce_referrer(Some("not a url"), &site), None);
        assert_eq!(reduce_referrer(Some(""), &site), None);
        assert_eq!(reduce_referrer(None, &site), None);
        assert_eq!(
            reduce_referrer(Some("android-app://com.google.android.gm/"), &site).as_deref(),
            Some("com.google.android.gm")
        );
    }

    #[test]
    fn userinfo_never_survives() {
        let p = reduce_page("https://jan:geheim@a.nl/p", &allow(), false).unwrap();
        assert_eq!((p.host.as_str(), p.path.as_str()), ("a.nl", "/p"));
        let site = vec!["a.nl".to_string()];
        assert_eq!(
            reduce_referrer(Some("https://jan:geheim@b.nl/"), &site).as_deref(),
            Some("b.nl")
        );
    }
}
