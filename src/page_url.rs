//! Page URL and referrer reduction: what of an address may be stored.
//!
//! A page URL becomes host + path (+ the allow-listed query parameters); the fragment and every
//! other query parameter are dropped here, before the event is queued, and personal data in the
//! path or the kept values is replaced by placeholders (`scrub`). A referrer becomes its
//! host only, and none at all when it is the site itself. Parsing is the `url` crate's (WHATWG).

use std::borrow::Cow;

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
///
/// URLs of the common shape (see [`Simple`]) are split here directly; any other goes through
/// the WHATWG parser. Both give the same result for every input: `tests` (a property test) and
/// the `beacon` fuzz target hold this function to [`reduce_page_full`].
pub fn reduce_page(raw: &str, allowlist: &[String], hash_mode: bool) -> Result<Page, Rejection> {
    if raw.len() > MAX_URL_BYTES {
        return Err(Rejection::InvalidUrl);
    }
    match Simple::split(raw, hash_mode) {
        Some(url) => Ok(reduce_parts(
            url.host,
            url.path,
            url.query,
            url.fragment,
            allowlist,
            hash_mode,
        )),
        None => reduce_parsed(raw, allowlist, hash_mode),
    }
}

/// [`reduce_page`] with the WHATWG parser for every URL: the reference the fast path is held to.
pub fn reduce_page_full(
    raw: &str,
    allowlist: &[String],
    hash_mode: bool,
) -> Result<Page, Rejection> {
    if raw.len() > MAX_URL_BYTES {
        return Err(Rejection::InvalidUrl);
    }
    reduce_parsed(raw, allowlist, hash_mode)
}

fn reduce_parsed(raw: &str, allowlist: &[String], hash_mode: bool) -> Result<Page, Rejection> {
    let url = Url::parse(raw).map_err(|_| Rejection::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Rejection::InvalidUrl);
    }
    let host = url.host_str().ok_or(Rejection::InvalidUrl)?;
    Ok(reduce_parts(
        host,
        url.path(),
        url.query(),
        url.fragment(),
        allowlist,
        hash_mode,
    ))
}

/// The reduction proper, from the parts of a parsed URL (as `Url` gives them).
fn reduce_parts(
    host: &str,
    path: &str,
    query: Option<&str>,
    fragment: Option<&str>,
    allowlist: &[String],
    hash_mode: bool,
) -> Page {
    let host = host.to_ascii_lowercase();
    let mut path = Cow::Borrowed(path);
    if hash_mode {
        if let Some(fragment) = fragment {
            // Only the route: a fragment's own query (`#/x?token=...`) is as private as a query.
            let route = fragment.split(['?', '&']).next().unwrap_or("");
            if !route.is_empty() {
                let path = path.to_mut();
                path.push('#');
                path.push_str(route);
            }
        }
    }
    // Personal data in the path or a kept value becomes a placeholder before anything is cut,
    // so truncation cannot hide part of an e-mail address or token from the scrubber.
    let mut path = scrub::scrub_path(&path).into_owned();
    truncate_chars(&mut path, MAX_PATH_CHARS);
    let query = match query {
        // Nothing to look at: most page URLs (and `parse("")` yields nothing either).
        None | Some("") => Vec::new(),
        Some(query) => url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| allowlist.iter().any(|a| a == k.as_ref()))
            .map(|(k, v)| {
                let mut v = scrub::scrub_value(&v).into_owned();
                truncate_chars(&mut v, MAX_QUERY_VALUE_CHARS);
                (k.into_owned(), v)
            })
            .collect(),
    };
    Page { host, path, query }
}

/// Reduces a referrer to its host; `None` for same-site, empty or unparsable referrers.
pub fn reduce_referrer(raw: Option<&str>, site_hosts: &[String]) -> Option<String> {
    let raw = raw?.trim();
    if raw.is_empty() || raw.len() > MAX_URL_BYTES {
        return None;
    }
    match Simple::host_of(raw) {
        Some(host) => referrer_host(host, site_hosts),
        None => referrer_host(Url::parse(raw).ok()?.host_str()?, site_hosts),
    }
}

/// [`reduce_referrer`] with the WHATWG parser for every URL: the fast path's reference.
pub fn reduce_referrer_full(raw: Option<&str>, site_hosts: &[String]) -> Option<String> {
    let raw = raw?.trim();
    if raw.is_empty() || raw.len() > MAX_URL_BYTES {
        return None;
    }
    referrer_host(Url::parse(raw).ok()?.host_str()?, site_hosts)
}

fn referrer_host(host: &str, site_hosts: &[String]) -> Option<String> {
    let host = host.to_ascii_lowercase();
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
    let Some(raw) = raw.map(str::trim) else {
        return false;
    };
    let own = |h: &str| {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        site_hosts.iter().any(|s| s.eq_ignore_ascii_case(&h))
    };
    match Simple::host_of(raw) {
        Some(host) => own(host),
        None => Url::parse(raw)
            .ok()
            .and_then(|u| u.host_str().map(own))
            .unwrap_or(false),
    }
}

/// An `http(s)` URL of the shape nearly every beacon carries, split without the WHATWG parser:
/// a lower-case scheme, a host name of ASCII letters, digits and hyphens in non-empty labels,
/// an optional port, and a path, query and fragment made of characters the parser keeps as
/// they are. For such a URL the parts are exactly what `Url` would give; every other URL
/// (upper-case scheme, user info, IP addresses, punycode or non-ASCII hosts, trailing dots,
/// dot segments, backslashes, characters the parser would percent-encode, tabs or line breaks
/// anywhere it looks) is left to the parser.
struct Simple<'a> {
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> Simple<'a> {
    /// The parts of `raw`, or `None` when it is not of the simple shape. The fragment is only
    /// looked at with `hash_mode` (otherwise it is dropped, whatever it holds).
    fn split(raw: &'a str, hash_mode: bool) -> Option<Simple<'a>> {
        let (host, rest) = Self::authority(raw)?;
        let (before_fragment, fragment) = match rest.split_once('#') {
            Some((before, fragment)) => (before, Some(fragment)),
            None => (rest, None),
        };
        let (path, query) = match before_fragment.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (before_fragment, None),
        };
        if !path_is_plain(path)
            || !query.is_none_or(|q| plain(q, &QUERY_KEPT))
            || (hash_mode && !fragment.is_none_or(|f| plain(f, &FRAGMENT_KEPT)))
        {
            return None;
        }
        Some(Simple {
            host,
            path: if path.is_empty() { "/" } else { path },
            query,
            fragment,
        })
    }

    /// The host of `raw` when its scheme and authority are of the simple shape (what follows
    /// them does not matter for the host).
    fn host_of(raw: &'a str) -> Option<&'a str> {
        Self::authority(raw).map(|(host, _)| host)
    }

    /// `(host, everything after the authority)`.
    fn authority(raw: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))?;
        let end = rest
            .bytes()
            .position(|b| !HOST_KEPT[usize::from(b)])
            .unwrap_or(rest.len());
        let (host, mut rest) = rest.split_at(end);
        if !host_is_plain(host) {
            return None;
        }
        if let Some(port) = rest.strip_prefix(':') {
            let digits = port.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=5).contains(&digits) || port[..digits].parse::<u32>().ok()? > 65_535 {
                return None;
            }
            rest = &port[digits..];
        }
        matches!(rest.bytes().next(), None | Some(b'/' | b'?' | b'#')).then_some((host, rest))
    }
}

/// Labels of ASCII letters, digits and hyphens, none empty, none punycode (`xn--`, which the
/// parser validates), and a last label that does not start with a digit (the parser reads
/// such a host as an IPv4 address, in any of its spellings). `host` holds only letters,
/// digits, hyphens and dots (see [`Simple::authority`]).
fn host_is_plain(host: &str) -> bool {
    let b = host.as_bytes();
    let mut label_start = 0;
    for i in 0..=b.len() {
        if i == b.len() || b[i] == b'.' {
            let label = &b[label_start..i];
            if label.is_empty() || (label.len() >= 4 && label[..4].eq_ignore_ascii_case(b"xn--")) {
                return false;
            }
            if i == b.len() && label[0].is_ascii_digit() {
                return false;
            }
            label_start = i + 1;
        }
    }
    true
}

/// A path the parser keeps as it is: plain characters (see [`plain`]), and no `.` or `..`
/// segment in any spelling (those are resolved); a `%2e` anywhere is left to the parser.
fn path_is_plain(path: &str) -> bool {
    if !(path.is_empty() || path.starts_with('/')) || !plain(path, &PATH_KEPT) {
        return false;
    }
    let b = path.as_bytes();
    let mut segment_start = 0;
    for i in 0..=b.len() {
        if i == b.len() || b[i] == b'/' {
            if matches!(&b[segment_start..i], b"." | b"..") {
                return false;
            }
            segment_start = i + 1;
        } else if b[i] == b'%' && b[i + 1] == b'2' && b[i + 2] | 0x20 == b'e' {
            // (`plain` made sure two hex digits follow every `%`.)
            return false;
        }
    }
    true
}

/// The bytes a [`plain`] text may hold: ASCII letters and digits, and `extra`.
const fn kept(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// Characters of a plain host name.
const HOST_KEPT: [bool; 256] = kept(b"-.");
/// Characters the parser copies unchanged into a path: RFC 3986's unreserved and sub-delims,
/// `:`, `@`, `/`, and `%` (only as the start of a percent-escape, see [`plain`]).
const PATH_KEPT: [bool; 256] = kept(b"-._~!$&'()*+,;=:@/%");
/// In a query: the same and `?`, without `'` (special schemes escape it there).
const QUERY_KEPT: [bool; 256] = kept(b"-._~!$&()*+,;=:@/%?");
/// In a fragment: the same as a query, and `'`.
const FRAGMENT_KEPT: [bool; 256] = kept(b"-._~!$&'()*+,;=:@/%?");

/// Whether every byte is one `kept` marks, and every `%` starts a percent-escape (two hex
/// digits).
fn plain(s: &str, kept: &[bool; 256]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !kept[usize::from(c)] {
            return false;
        }
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
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

    /// The shapes the fast path is for: they must not fall through to the parser.
    #[test]
    fn common_page_urls_take_the_fast_path() {
        for url in [
            "https://www.gemeente-noord.example/",
            "https://www.gemeente-noord.example",
            "https://werkenbij.example/vacatures/zaken/1234567",
            "https://docs.dienst-zuid.example/api/handleiding-installatie?q=fiets+sport&page=3",
            "http://localhost:8080/nieuws/2026/03/raad-verkiezingen?utm_source=nieuwsbrief&utm_medium=email&utm_campaign=afval-2026",
            "https://a.nl/p?utm_source=linkedin&fbclid=IwAR123#top",
            "https://a.nl/~user/caf%C3%A9;v=1/x:y@z!$&'()*+,=",
        ] {
            assert!(Simple::split(url, true).is_some(), "{url}");
            assert!(Simple::host_of(url).is_some(), "{url}");
        }
        for url in [
            "HTTPS://a.nl/",
            "https://A.nl./",
            "https://192.0.2.1/",
            "https://a.0x1f/",
            "https://xn--bcher-kva.example/",
            "https://jan:geheim@a.nl/",
            "https://a.nl/a/../b",
            "https://a.nl/a/%2e%2E/b",
            "https://a.nl/a b",
            "https://a.nl/a\\b",
            "https://a.nl:99999/",
            "https://bücher.example/",
        ] {
            assert!(Simple::split(url, false).is_none(), "{url}");
        }
    }

    mod fast_path_equals_the_parser {
        use super::*;
        use proptest::prelude::*;

        /// Pieces of hosts: plain labels and every kind the fast path must leave to the parser.
        fn label() -> impl Strategy<Value = String> {
            prop_oneof![
                40 => "[a-z][a-z0-9-]{0,9}",
                4 => "[a-zA-Z0-9-]{0,10}",
                1 => prop::sample::select(vec![
                    "xn--bcher-kva", "XN--ab", "xn--", "0x1f", "0X", "123", "1", "09", "0",
                    "bücher", "例え", "a%41", "ex ample", "a_b", "a\tb", "a\nb", "[::1]", "@", "-",
                    "--", "a-", "-a", "ab--cd", "ß", "ﬁ", "\u{ad}x", "\u{200b}",
                ])
                .prop_map(String::from),
            ]
        }

        fn host() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(label(), 1..5),
                prop_oneof![
                    30 => Just(""),
                    1 => prop::sample::select(vec![".", "..", "user@", "jan:geheim@"]),
                ],
            )
                .prop_map(|(labels, extra)| {
                    let host = labels.join(".");
                    match extra {
                        "user@" | "jan:geheim@" => format!("{extra}{host}"),
                        _ => format!("{host}{extra}"),
                    }
                })
        }

        /// Characters the parser keeps as they are in a path (and mostly in a query).
        const PLAIN: &str = "-._~!$&'()*+,;=:@/";
        /// Characters that the parser keeps, encodes, strips or treats specially.
        const TRICKY: &str = "-._~!$&'()*+,;=:@/%?#[]{}|^`\"<> \\\t\n\réñ€\u{1}";

        fn text(max: usize) -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    60 => "[a-zA-Z0-9]{1,6}",
                    6 => prop::sample::select(PLAIN.chars().collect::<Vec<_>>()).prop_map(String::from),
                    2 => prop::sample::select(TRICKY.chars().collect::<Vec<_>>()).prop_map(String::from),
                    1 => prop::sample::select(vec![
                        ".", "..", "%2e", "%2E", ".%2e", "%2e%2E", "%zz", "%41", "%", "%4", "%C3%A9",
                        "+", "%20", "%2B", "a=b", "&", "=",
                    ])
                    .prop_map(String::from),
                ],
                0..max,
            )
            .prop_map(|parts| parts.concat())
        }

        fn path() -> impl Strategy<Value = String> {
            prop::collection::vec(text(4), 0..5)
                .prop_map(|segments| segments.iter().map(|s| format!("/{s}")).collect::<String>())
        }

        fn query() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                3 => prop::sample::select(vec![
                    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "ref",
                    "q", "page", "utm_source%5F", "utm+source",
                ])
                .prop_map(String::from),
                1 => text(3),
            ];
            prop::collection::vec((key, text(6)), 0..4).prop_map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            })
        }

        fn url() -> impl Strategy<Value = String> {
            (
                prop_oneof![
                    20 => prop::sample::select(vec!["https://", "http://"]),
                    1 => prop::sample::select(vec![
                        "HTTPS://", "Http://", "https:/", "https:///", "https:", "ftp://",
                        "android-app://", "", " https://", "https:\\\\",
                    ]),
                ],
                host(),
                prop_oneof![
                    12 => Just(""),
                    1 => prop::sample::select(vec![
                        ":", ":80", ":443", ":0", ":8080", ":65535", ":65536", ":99999", ":000080",
                        ":8a", ": 80",
                    ]),
                ],
                path(),
                prop::option::of(query()),
                prop::option::of(text(6)),
                prop_oneof![
                    20 => Just(""),
                    1 => prop::sample::select(vec![" ", "\t", "\u{1}", "\n"]),
                ],
            )
                .prop_map(|(scheme, host, port, path, query, fragment, tail)| {
                    let mut url = format!("{scheme}{host}{port}{path}");
                    if let Some(q) = query {
                        url.push('?');
                        url.push_str(&q);
                    }
                    if let Some(f) = fragment {
                        url.push('#');
                        url.push_str(&f);
                    }
                    url.push_str(tail);
                    url
                })
        }

        fn internal_full(raw: &str, site_hosts: &[String]) -> bool {
            Url::parse(raw.trim())
                .ok()
                .and_then(|u| {
                    u.host_str()
                        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                })
                .is_some_and(|h| site_hosts.iter().any(|s| s.eq_ignore_ascii_case(&h)))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(20_000))]

            #[test]
            fn for_every_url(url in url()) {
                let allow = allow();
                for hash_mode in [false, true] {
                    prop_assert_eq!(
                        reduce_page(&url, &allow, hash_mode),
                        reduce_page_full(&url, &allow, hash_mode),
                        "hash_mode {}", hash_mode
                    );
                }
                let site = vec!["www.example.org".to_string(), "a.nl".to_string()];
                prop_assert_eq!(
                    reduce_referrer(Some(&url), &site),
                    reduce_referrer_full(Some(&url), &site)
                );
                prop_assert_eq!(referrer_is_internal(Some(&url), &site), internal_full(&url, &site));
                // And with the URL's own host as the site's (the same-site case).
                if let Ok(u) = Url::parse(url.trim()) {
                    if let Some(h) = u.host_str() {
                        let own = vec![h.trim_end_matches('.').to_ascii_lowercase()];
                        prop_assert_eq!(
                            reduce_referrer(Some(&url), &own),
                            reduce_referrer_full(Some(&url), &own)
                        );
                        prop_assert_eq!(
                            referrer_is_internal(Some(&url), &own),
                            internal_full(&url, &own)
                        );
                    }
                }
            }
        }
    }
}
