//! Pages a site does not count (`[[sites]] exclude_paths`, and every page outside a non-empty
//! `include_paths`): their beacons are answered 202 and not stored, only counted
//! (`tally_beacons_excluded_total`, no labels, so no path leaks into metrics). The patterns are
//! the rewrite rules' (`*` one segment, a final `**` the rest), parsed when the config loads; the
//! tracker honours the same lists given as `data-exclude` and `data-include`, so a browser sends
//! nothing there in the first place.

use url::Url;

use crate::metrics::Metrics;
use crate::scrub::Pattern;

/// A site's excluded and included paths: the patterns as written (for the privacy report) and
/// parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusions {
    excluded: Vec<String>,
    exclude: Vec<Pattern>,
    /// Empty: every page not excluded is counted.
    included: Vec<String>,
    include: Vec<Pattern>,
}

impl Exclusions {
    /// Parses the two lists as the config gives them (`exclude_paths`, `include_paths`); the
    /// error names the list, the pattern (1-based) and what is wrong with it.
    pub fn parse(exclude: &[String], include: &[String]) -> Result<Exclusions, String> {
        Ok(Exclusions {
            excluded: exclude.to_vec(),
            exclude: patterns("exclude_paths", exclude)?,
            included: include.to_vec(),
            include: patterns("include_paths", include)?,
        })
    }

    /// Every page is counted.
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty() && self.include.is_empty()
    }

    /// `exclude_paths` as written.
    pub fn excluded(&self) -> &[String] {
        &self.excluded
    }

    /// `include_paths` as written (empty: every page not excluded).
    pub fn included(&self) -> &[String] {
        &self.included
    }

    /// Whether a (percent-encoded) path is not counted: it matches an excluded pattern, or
    /// there are included patterns and it matches none of them.
    pub fn excludes_path(&self, path: &str) -> bool {
        let outside = !self.include.is_empty() && !self.include.iter().any(|p| p.matches(path));
        outside || self.exclude.iter().any(|p| p.matches(path))
    }

    /// Whether the page at `url` (as the beacon sent it) is excluded. The path is read from the
    /// URL as the browser has it, before scrubbing and rewrite rules, so a pattern matches what
    /// the tracker's `data-exclude` and `data-include` match (`location.pathname`); a fragment
    /// route (hash-based routing) is not part of it. An unparsable URL is never excluded here
    /// (ingest refuses it).
    pub fn excludes_url(&self, url: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        Url::parse(url).is_ok_and(|u| self.excludes_path(u.path()))
    }
}

/// One list's patterns, parsed.
fn patterns(key: &str, list: &[String]) -> Result<Vec<Pattern>, String> {
    list.iter()
        .enumerate()
        .map(|(k, p)| Pattern::parse(p).map_err(|e| format!("{key} entry {} ({p:?}): {e}", k + 1)))
        .collect()
}

/// The chosen sites (indexes into `all`, each a site's config, which gives its exclusions) that
/// do not exclude the beacon's page, counting each that does; `None` when none does (the common
/// case, no allocation). An empty list means the beacon is answered 202 and nothing else of it
/// is read.
pub fn not_excluded<S: AsRef<Exclusions>>(
    all: &[S],
    chosen: &[usize],
    url: &str,
    metrics: &Metrics,
) -> Option<Vec<usize>> {
    let excludes = |i: &usize| all[*i].as_ref().excludes_url(url);
    if !chosen.iter().any(excludes) {
        return None;
    }
    let rest: Vec<usize> = chosen.iter().copied().filter(|i| !excludes(i)).collect();
    metrics
        .beacons_excluded
        .inc_by((chosen.len() - rest.len()) as u64);
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn patterns_match_like_rewrite_rules() {
        let ex =
            Exclusions::parse(&list(&["/admin/**", "/account/*", "/preview", "/"]), &[]).unwrap();
        for path in [
            "/admin/users",
            "/admin/users/42/edit",
            "/admin/x/",
            "/account/jan",
            "/account/jan/",
            "/preview",
            "/preview/",
            "/",
        ] {
            assert!(ex.excludes_path(path), "{path} should be excluded");
        }
        for path in [
            "/admin",
            "/admin/",
            "/account",
            "/account/jan/settings",
            "/preview/x",
            "/previews",
            "/Admin/users",
            "/blog",
            "",
        ] {
            assert!(!ex.excludes_path(path), "{path} should not be excluded");
        }
        assert_eq!(ex.excluded(), ["/admin/**", "/account/*", "/preview", "/"]);
        assert!(ex.included().is_empty());
        assert!(Exclusions::default().is_empty());
        assert!(!Exclusions::default().excludes_url("https://a.example/admin/x"));
    }

    #[test]
    fn urls_are_matched_on_their_path_only() {
        let ex = Exclusions::parse(&list(&["/private/**", "/caf%C3%A9/*"]), &[]).unwrap();
        assert!(ex.excludes_url("https://www.example.org/private/a?utm_source=x#top"));
        assert!(ex.excludes_url("https://www.example.org/caf%C3%A9/menu"));
        // The browser's encoding is the URL parser's: a raw é is matched encoded.
        assert!(ex.excludes_url("https://www.example.org/café/menu"));
        // Dot segments are resolved as the browser resolves them.
        assert!(ex.excludes_url("https://www.example.org/public/../private/x"));
        assert!(!ex.excludes_url("https://www.example.org/?p=/private/x"));
        assert!(!ex.excludes_url("https://www.example.org/#/private/x"));
        assert!(!ex.excludes_url("not a url"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_entry_named() {
        for (pattern, needle) in [
            ("private/**", "must start with '/'"),
            ("/a/**/b", "'**' may only be the last segment"),
            ("/how-to-*", "must be whole segments"),
            ("/a//b", "empty segment"),
            ("/café", "percent-encoded"),
            ("/a/:id", "use '*' to match any segment"),
        ] {
            let err = Exclusions::parse(&list(&["/ok/*", pattern]), &[]).unwrap_err();
            assert!(
                err.starts_with(&format!("exclude_paths entry 2 ({pattern:?})")),
                "{err}"
            );
            assert!(err.contains(needle), "{pattern}: {err}");
            let err = Exclusions::parse(&[], &list(&["/ok/*", pattern])).unwrap_err();
            assert!(
                err.starts_with(&format!("include_paths entry 2 ({pattern:?})")),
                "{err}"
            );
        }
    }

    #[test]
    fn only_included_pages_are_counted_and_exclusions_still_apply() {
        let ex = Exclusions::parse(
            &list(&["/blog/drafts/**"]),
            &list(&["/blog/**", "/news/*", "/"]),
        )
        .unwrap();
        assert!(!ex.is_empty());
        for path in ["/", "/blog/a", "/blog/a/b/", "/news/today", "/news/today/"] {
            assert!(!ex.excludes_path(path), "{path} should be counted");
        }
        for path in [
            "/blog",
            "/blog/drafts/x",
            "/news",
            "/news/a/b",
            "/contact",
            "/admin/x",
            "/Blog/a",
            "",
        ] {
            assert!(ex.excludes_path(path), "{path} should not be counted");
        }
        assert!(ex.excludes_url("https://www.example.org/contact?p=/blog/a"));
        assert!(!ex.excludes_url("https://www.example.org/blog/a?utm_source=x#/contact"));
        // Unparsable: left to ingest, which refuses it with its own reason.
        assert!(!ex.excludes_url("not a url"));
        assert_eq!(ex.included(), ["/blog/**", "/news/*", "/"]);
        assert_eq!(ex.excluded(), ["/blog/drafts/**"]);
        let only = Exclusions::parse(&[], &list(&["/blog/**"])).unwrap();
        assert!(only.excludes_path("/") && !only.excludes_path("/blog/x"));
    }
}
