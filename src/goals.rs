//! A site's goals (`[[sites.goals]]`): a page-view goal (a path pattern) or a custom-event goal
//! (an event name), each with the name reports show. Goals are counted from the stored unit
//! rows when a report asks (`event:goal`); nothing extra is collected for them.
//!
//! Page patterns follow Plausible's page-view goals: the pattern must match the whole path, and
//! `*` (or `**`) stands for any characters, `/` included (`/afval*` matches `/afval`,
//! `/afvalkalender` and `/afval/2026`); without a `*` the path must be equal. A goal's default
//! name is Plausible's too: `Visit /afval*` for a page goal, the event name for an event goal.

/// What a goal counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalKind {
    /// Pageviews whose path matches the pattern.
    Page(String),
    /// Custom events of this name.
    Event(String),
}

/// One goal of a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    /// The name reports show and `event:goal` filters match.
    pub name: String,
    pub kind: GoalKind,
}

/// Longest goal name, event name or page pattern: names show in tables, and a pattern longer
/// than a stored path could never match one.
const MAX_LEN: usize = 300;

/// Event names a goal cannot count: the tracker's own records, which are not custom events
/// (a page-view goal counts pageviews; engagement beacons count for nothing, as in Plausible).
const RESERVED_EVENTS: [&str; 2] = ["pageview", "engagement"];

impl Goal {
    /// A goal from its config entry: exactly one of `page` and `event`, an optional `name`.
    pub fn new(
        name: Option<&str>,
        page: Option<&str>,
        event: Option<&str>,
    ) -> Result<Goal, String> {
        let kind = match (page, event) {
            (Some(_), Some(_)) => return Err("set either page or event, not both".into()),
            (None, None) => return Err("set page (a path pattern) or event (a name)".into()),
            (Some(p), None) => GoalKind::Page(check_pattern(p)?),
            (None, Some(e)) => GoalKind::Event(check_event(e)?),
        };
        let name = match name {
            Some(n) => {
                let n = n.trim();
                if n.is_empty() || n.len() > MAX_LEN || n.chars().any(char::is_control) {
                    return Err(format!(
                        "name {n:?} must be 1 to {MAX_LEN} bytes without control characters"
                    ));
                }
                n.to_string()
            }
            None => match &kind {
                GoalKind::Page(p) => format!("Visit {p}"),
                GoalKind::Event(e) => e.clone(),
            },
        };
        Ok(Goal { name, kind })
    }

    /// The page pattern as an RE2 regular expression matching whole paths (ClickHouse's
    /// `match`), or `None` for an event goal or a pattern without `*` (compared for equality).
    pub fn page_regex(&self) -> Option<String> {
        let GoalKind::Page(p) = &self.kind else {
            return None;
        };
        if !p.contains('*') {
            return None;
        }
        let mut out = String::from("^");
        for (i, part) in p.split('*').enumerate() {
            // Consecutive stars (`**`) give empty parts: one `.*` is the same language.
            if i > 0 && !out.ends_with(".*") {
                out.push_str(".*");
            }
            out.push_str(&regex_syntax::escape(part));
        }
        out.push('$');
        Some(out)
    }

    /// Whether a pageview of `path` converts (for tests and callers without SQL).
    pub fn matches_page(&self, path: &str) -> bool {
        let GoalKind::Page(p) = &self.kind else {
            return false;
        };
        wildcard_match(p.as_bytes(), path.as_bytes())
    }
}

/// Parses a site's goals, in order; the error names the entry (1-based) and what is wrong. Two
/// goals may not share a name: `event:goal` filters and rows are by name.
pub fn parse<'a>(
    entries: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>, Option<&'a str>)>,
) -> Result<Vec<Goal>, String> {
    let mut goals: Vec<Goal> = Vec::new();
    for (k, (name, page, event)) in entries.into_iter().enumerate() {
        let goal =
            Goal::new(name, page, event).map_err(|e| format!("goals entry {}: {e}", k + 1))?;
        if let Some(j) = goals.iter().position(|g| g.name == goal.name) {
            return Err(format!(
                "goals entry {}: the name {:?} is already goal {}'s",
                k + 1,
                goal.name,
                j + 1
            ));
        }
        goals.push(goal);
    }
    Ok(goals)
}

fn check_pattern(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!("page {p:?} must start with '/'"));
    }
    if p.len() > MAX_LEN {
        return Err(format!("page {p:?} is longer than {MAX_LEN} bytes"));
    }
    // Stored paths have no query, fragment or white space: a pattern with them never matches.
    if let Some(c) = p
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        return Err(format!(
            "page {p:?} has {c:?}; a pattern is a path (no query, fragment or spaces)"
        ));
    }
    Ok(p.to_string())
}

fn check_event(e: &str) -> Result<String, String> {
    if e.is_empty() || e.len() > MAX_LEN || e.chars().any(char::is_control) {
        return Err(format!(
            "event {e:?} must be 1 to {MAX_LEN} bytes without control characters"
        ));
    }
    if RESERVED_EVENTS.contains(&e) {
        return Err(format!(
            "event {e:?} is not a custom event; use page = \"/…\" for a page-view goal"
        ));
    }
    Ok(e.to_string())
}

/// `*` any run of bytes, everything else literally, the whole of `text`.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| wildcard_match(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && wildcard_match(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex_matches(goal: &Goal, path: &str) -> bool {
        match goal.page_regex() {
            Some(r) => regex::Regex::new(&r).unwrap().is_match(path),
            None => matches!(&goal.kind, GoalKind::Page(p) if p == path),
        }
    }

    #[test]
    fn page_patterns_match_whole_paths_with_stars_for_anything() {
        let g = Goal::new(None, Some("/afval*"), None).unwrap();
        assert_eq!(g.name, "Visit /afval*");
        for (path, hit) in [
            ("/afval", true),
            ("/afvalkalender", true),
            ("/afval/2026/pdf", true),
            ("/x/afval", false),
            ("/afva", false),
        ] {
            assert_eq!(g.matches_page(path), hit, "{path}");
            assert_eq!(regex_matches(&g, path), hit, "regex {path}");
        }
        let g = Goal::new(Some("Contact"), Some("/contact"), None).unwrap();
        assert_eq!(g.page_regex(), None);
        assert!(g.matches_page("/contact") && !g.matches_page("/contact/form"));
        // Regex characters in a path are literal; `**` is the same as `*`.
        let g = Goal::new(None, Some("/a.b/**/c+(1)"), None).unwrap();
        assert_eq!(g.page_regex().unwrap(), r"^/a\.b/.*/c\+\(1\)$");
        assert!(regex_matches(&g, "/a.b/x/y/c+(1)") && !regex_matches(&g, "/axb/x/c+(1)"));
    }

    #[test]
    fn event_goals_are_named_after_their_event() {
        let g = Goal::new(None, None, Some("Download")).unwrap();
        assert_eq!(g.name, "Download");
        assert_eq!(g.kind, GoalKind::Event("Download".into()));
        assert!(!g.matches_page("/Download"));
        assert_eq!(g.page_regex(), None);
    }

    #[test]
    fn bad_goals_are_refused_with_a_reason() {
        for (entry, needle) in [
            ((None, Some("/a"), Some("b")), "not both"),
            ((None, None, None), "set page"),
            ((None, Some("afval"), None), "must start with '/'"),
            ((None, Some("/a?b=1"), None), "no query"),
            ((None, Some("/a b"), None), "no query"),
            ((None, None, Some("")), "1 to 300"),
            ((None, None, Some("pageview")), "not a custom event"),
            ((Some(" "), None, Some("x")), "name"),
        ] {
            let e = Goal::new(entry.0, entry.1, entry.2).unwrap_err();
            assert!(e.contains(needle), "{entry:?}: {e}");
        }
        let e = parse([
            (None, None, Some("Download")),
            (Some("Download"), Some("/download"), None),
        ])
        .unwrap_err();
        assert!(
            e.contains("goals entry 2") && e.contains("already goal 1"),
            "{e}"
        );
        let e = parse([(None, Some("x"), None)]).unwrap_err();
        assert!(e.starts_with("goals entry 1: page"), "{e}");
    }
}
