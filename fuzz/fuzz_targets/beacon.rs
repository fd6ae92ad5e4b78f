//! Fuzz target: a beacon body as it arrives (arbitrary bytes) through every reduction ingest
//! applies before a row is queued, without a server.
//!
//! Invariants asserted (each is a promise of `beacon`, `page_url`, `scrub` or `ingest`):
//! - nothing panics, whatever the bytes;
//! - `bounded` numbers are finite and inside `0..=max`;
//! - at most `MAX_PROPS` properties come out, each a scalar rendered as text;
//! - a reduced page has a non-empty lower-case host, a path of at most `MAX_PATH_CHARS`
//!   characters, and only allow-listed query keys with values of at most
//!   `MAX_QUERY_VALUE_CHARS` characters;
//! - the path that would be stored (site rewrite rules, then the built-in scrubbing) holds
//!   nothing the scrubber would still replace: scrubbing it again changes nothing;
//! - a kept referrer is a non-empty lower-case host that is not the site's own and not
//!   personal (`scrub::host_is_personal`);
//! - the fast path for common URL shapes changes nothing: `reduce_page` and `reduce_referrer`
//!   give exactly what `reduce_page_full` and `reduce_referrer_full` (the WHATWG parser for
//!   every URL) give, for the page URL and the referrer, and for the referrer read as a page.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tally::beacon::{bounded, Beacon, MAX_PROPS};
use tally::config::DEFAULT_QUERY_ALLOWLIST;
use tally::ingest::{MAX_ENGAGED_MS, MAX_PROP_VALUE_CHARS};
use tally::page_url::{
    reduce_page, reduce_page_full, reduce_referrer, reduce_referrer_full, truncate_chars,
    MAX_PATH_CHARS, MAX_QUERY_VALUE_CHARS,
};
use tally::scrub::{self, Rules};

struct Fixture {
    allowlist: Vec<String>,
    site_hosts: Vec<String>,
    rules: Rules,
}

/// The defaults ingest runs with, plus rewrite rules of the shapes docs/configuration.md documents.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        allowlist: DEFAULT_QUERY_ALLOWLIST
            .iter()
            .map(|s| s.to_string())
            .collect(),
        site_hosts: vec!["www.example.org".into(), "example.org".into()],
        rules: Rules::parse(&[
            ("/users/*/**".into(), "/users/:id/**".into()),
            ("/blog/*".into(), "/blog/:slug".into()),
            ("/a/*/b/*".into(), "/a/:x/b/:y/".into()),
        ])
        .expect("the fixture's rules are valid"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(beacon) = Beacon::parse(data) else {
        return;
    };
    let f = fixture();
    let _ = beacon.kind();

    for (value, max) in [
        (beacon.engaged_ms, MAX_ENGAGED_MS),
        (beacon.scroll_depth, 100.0),
        (beacon.screen_width, 100_000.0),
    ] {
        if let Ok(Some(v)) = bounded(value, max) {
            assert!(
                v.is_finite() && (0.0..=max).contains(&v),
                "{v} outside 0..={max}"
            );
        }
    }

    if let Ok(props) = beacon.props_pairs() {
        assert!(props.len() <= MAX_PROPS);
        for (_, mut value) in props {
            truncate_chars(&mut value, MAX_PROP_VALUE_CHARS);
            assert!(value.chars().count() <= MAX_PROP_VALUE_CHARS);
        }
    }

    // Both strings as pages and as referrers: the more URLs each path sees, the better.
    for raw in [beacon.url.as_deref(), beacon.referrer.as_deref()]
        .into_iter()
        .flatten()
    {
        for hash_mode in [false, true] {
            assert_eq!(
                reduce_page(raw.trim(), &f.allowlist, hash_mode),
                reduce_page_full(raw.trim(), &f.allowlist, hash_mode),
                "fast path differs for {raw:?} (hash mode {hash_mode})"
            );
        }
        assert_eq!(
            reduce_referrer(Some(raw), &f.site_hosts),
            reduce_referrer_full(Some(raw), &f.site_hosts),
            "fast path differs for referrer {raw:?}"
        );
    }

    if let Some(url) = beacon.url.as_deref() {
        if let Ok(page) = reduce_page(url.trim(), &f.allowlist, beacon.hash_mode()) {
            assert!(!page.host.is_empty());
            assert_eq!(page.host, page.host.to_ascii_lowercase());
            assert!(
                page.path.chars().count() <= MAX_PATH_CHARS,
                "{:?}",
                page.path
            );
            for (k, v) in &page.query {
                assert!(f.allowlist.contains(k), "{k:?} kept");
                assert!(v.chars().count() <= MAX_QUERY_VALUE_CHARS);
            }
            let _ = page.query_string();
            let stored = f.rules.apply(&page.path);
            let again = scrub::scrub_path(&stored);
            assert_eq!(again, stored, "stored path {stored:?} is not scrub-clean");
        }
    }

    if let Some(host) = reduce_referrer(beacon.referrer.as_deref(), &f.site_hosts) {
        assert!(!host.is_empty());
        assert_eq!(host, host.to_ascii_lowercase());
        assert!(
            !f.site_hosts.contains(&host),
            "own host {host:?} kept as referrer"
        );
        assert!(
            !scrub::host_is_personal(&host),
            "personal host {host:?} kept"
        );
    }
});
