//! The tracker's built-in events (outbound link clicks, file downloads, 404 pages, form
//! submissions) and the one property each of the first three carries.
//!
//! The names and property keys are Plausible's, so that a site switching over keeps its goals.
//! Their property is part of the feature, so it is stored even when the site's
//! `props_allowlist` does not list it, but never as sent: `url` is reduced like a page URL
//! (scheme, host, scrubbed path, allow-listed query only, no fragment, no user or port) and
//! `path` like a page path (scrubbed, the site's rewrite rules). A value that cannot be reduced
//! is dropped; the event is still stored.

use url::Url;

use crate::config::SiteConfig;
use crate::page_url::{reduce_page, truncate_chars, MAX_PATH_CHARS};
use crate::scrub::scrub_path;

/// A click on a link to another host (`data-outbound-links`); property `url`.
pub const OUTBOUND_LINK: &str = "Outbound Link: Click";
/// A click on a link to a file of a tracked type (`data-file-downloads`); property `url`.
pub const FILE_DOWNLOAD: &str = "File Download";
/// A page shown as "not found" (`data-404`); property `path`.
pub const NOT_FOUND: &str = "404";
/// A form sent (`data-form-submissions`); no property.
pub const FORM_SUBMISSION: &str = "Form: Submission";

/// Longest stored `url` property, in characters (a host, a path of up to 512 and allow-listed
/// query values of up to 100 each fit).
pub const MAX_URL_CHARS: usize = 1024;

/// Each built-in event's property and what is stored of it, for the privacy report.
pub const STORED_PROPS: [(&str, &str, &str); 3] = [
    (
        OUTBOUND_LINK,
        "url",
        "the link's address reduced like a page URL: scheme, host and path with personal data replaced (and the site's rewrite rules when it is the site's own host), only allow-listed query parameters, no fragment, user or port",
    ),
    (FILE_DOWNLOAD, "url", "the file's address, reduced the same way"),
    (
        NOT_FOUND,
        "path",
        "the page path, with personal data replaced and the site's rewrite rules applied",
    ),
];

/// Puts the built-in property of event `name` (if it has one) into the stored props, reduced,
/// replacing whatever the allow-list let through under that key.
pub fn add_props(
    name: &str,
    props: &[(String, String)],
    site: &SiteConfig,
    query_allowlist: &[String],
    keys: &mut Vec<String>,
    values: &mut Vec<String>,
) {
    let Some(key) = builtin_key(name) else {
        return;
    };
    // An allow-listed copy of the key would be the value as sent.
    if let Some(k) = keys.iter().position(|k| k == key) {
        keys.remove(k);
        values.remove(k);
    }
    let Some((_, raw)) = props.iter().find(|(k, _)| k == key) else {
        return;
    };
    let reduced = match key {
        "url" => reduce_url(raw, site, query_allowlist),
        _ => reduce_path(raw, site),
    };
    if let Some(v) = reduced {
        keys.push(key.to_string());
        values.push(v);
    }
}

/// The property key of a built-in event, or `None` for any other event.
fn builtin_key(name: &str) -> Option<&'static str> {
    match name {
        OUTBOUND_LINK | FILE_DOWNLOAD => Some("url"),
        NOT_FOUND => Some("path"),
        _ => None,
    }
}

/// A link's address as stored: `scheme://host/path?allow-listed`; `None` unless http(s).
pub fn reduce_url(raw: &str, site: &SiteConfig, query_allowlist: &[String]) -> Option<String> {
    let page = reduce_page(raw, query_allowlist, false).ok()?;
    // `reduce_page` accepted only http and https; which one is kept (it is not personal).
    let scheme = if raw.trim_start().get(..6)?.eq_ignore_ascii_case("https:") {
        "https"
    } else {
        "http"
    };
    // The site's rewrite rules describe the site's own paths only.
    let path = if site.hosts.contains(&page.host) {
        site.rules.apply(&page.path).into_owned()
    } else {
        page.path.clone()
    };
    let mut out = format!("{scheme}://{}{path}", page.host);
    let query = page.query_string();
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    truncate_chars(&mut out, MAX_URL_CHARS);
    Some(out)
}

/// A page path as stored (`/missing/:email`); a full URL is read for its path. `None` when it
/// is neither.
pub fn reduce_path(raw: &str, site: &SiteConfig) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > crate::page_url::MAX_URL_BYTES {
        return None;
    }
    let url = if raw.starts_with('/') {
        // Relative to any origin: only the path is read (no query, no fragment).
        Url::parse("http://path.invalid/").ok()?.join(raw).ok()?
    } else {
        Url::parse(raw).ok()?
    };
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    // Scrubbed before it is cut, then the site's rules, as for page paths.
    let mut path = scrub_path(url.path()).into_owned();
    truncate_chars(&mut path, MAX_PATH_CHARS);
    Some(site.rules.apply(&path).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteConfig {
        crate::config::Config::parse(
            "[[sites]]\ndomain = \"www.example.org\"\naliases = [\"example.org\"]\n\
             rewrite = [{ pattern = \"/zaken/*/**\", replacement = \"/zaken/:id/**\" }]\n",
        )
        .unwrap()
        .sites
        .remove(0)
    }

    fn allow() -> Vec<String> {
        crate::config::DEFAULT_QUERY_ALLOWLIST
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn stored(name: &str, props: &[(&str, &str)], allowed: &[&str]) -> Vec<(String, String)> {
        let props: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // What ingest's allow-list filter lets through, as is.
        let (mut keys, mut values): (Vec<String>, Vec<String>) = props
            .iter()
            .filter(|(k, _)| allowed.contains(&k.as_str()))
            .cloned()
            .unzip();
        add_props(name, &props, &site(), &allow(), &mut keys, &mut values);
        keys.into_iter().zip(values).collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn urls_are_reduced_like_page_urls() {
        let s = site();
        let cases = [
            (
                "https://Partner.Example.NET:8443/offer/jan.jansen@example.nl?utm_source=tally&email=jan%40example.nl&sid=abc#top",
                Some("https://partner.example.net/offer/:email?utm_source=tally"),
            ),
            (
                "http://jan:geheim@files.example.net/r/0612345678/report.pdf?token=s3cr3t",
                Some("http://files.example.net/r/:phone/report.pdf"),
            ),
            // The site's own host: its rewrite rules run too.
            (
                "https://example.org/zaken/Z-2026-001/bijlage.pdf?download=1",
                Some("https://example.org/zaken/:id/bijlage.pdf"),
            ),
            // Not the site's host: its rules do not apply.
            (
                "https://other.example/zaken/Z-2026-001/bijlage.pdf",
                Some("https://other.example/zaken/Z-2026-001/bijlage.pdf"),
            ),
            (" HTTPS://a.example/ ", Some("https://a.example/")),
            ("mailto:jan@example.nl", None),
            ("javascript:alert(1)", None),
            ("/relative.pdf", None),
            ("", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                reduce_url(raw, &s, &allow()).as_deref(),
                expected,
                "{raw:?}"
            );
        }
        let long = format!("https://a.example/{}", "x/".repeat(2000));
        assert!(reduce_url(&long, &s, &allow()).is_none(), "over 2048 bytes");
        let long = format!(
            "https://a.example/{}?utm_source={}",
            "x".repeat(600),
            "y".repeat(300)
        );
        let r = reduce_url(&long, &s, &allow()).unwrap();
        assert!(r.chars().count() <= MAX_URL_CHARS);
        assert!(
            r.ends_with(&format!("?utm_source={}", "y".repeat(100))),
            "{r}"
        );
    }

    #[test]
    fn paths_are_reduced_like_page_paths() {
        let s = site();
        for (raw, expected) in [
            ("/missing/jan.jansen@example.nl", Some("/missing/:email")),
            ("/zaken/Z-1/a/b?x=1#f", Some("/zaken/:id/a/b")),
            (
                "https://www.example.org/gone/123456789",
                Some("/gone/:number"),
            ),
            ("/", Some("/")),
            ("missing", None),
            ("ftp://a.example/x", None),
        ] {
            assert_eq!(reduce_path(raw, &s).as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn builtin_props_are_stored_reduced_whatever_the_allow_list_says() {
        let url = "https://partner.example.net/p?email=jan%40example.nl#x";
        let reduced = "https://partner.example.net/p";
        // Not allow-listed: stored anyway, reduced; other props still need the allow-list.
        assert_eq!(
            stored(OUTBOUND_LINK, &[("url", url), ("who", "jan")], &[]),
            vec![pair("url", reduced)]
        );
        // Allow-listed: still reduced, and once.
        assert_eq!(
            stored(
                FILE_DOWNLOAD,
                &[("who", "jan"), ("url", url)],
                &["url", "who"]
            ),
            vec![pair("who", "jan"), pair("url", reduced)]
        );
        assert_eq!(
            stored(NOT_FOUND, &[("path", "/oud/0612345678")], &[]),
            vec![pair("path", "/oud/:phone")]
        );
        // A value that is not a web address: the property is dropped, not stored as sent.
        assert_eq!(
            stored(OUTBOUND_LINK, &[("url", "mailto:jan@example.nl")], &["url"]),
            vec![]
        );
        // Other events: the allow-list alone decides, as before.
        assert_eq!(
            stored("Signup", &[("url", url)], &["url"]),
            vec![pair("url", url)]
        );
        assert_eq!(stored("Signup", &[("url", url)], &[]), vec![]);
        assert_eq!(stored(FORM_SUBMISSION, &[("url", url)], &[]), vec![]);
        assert_eq!(stored(OUTBOUND_LINK, &[], &[]), vec![]);
    }
}
