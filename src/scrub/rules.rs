//! Per-site path rewrite rules (`[[sites]] rewrite`): parsed once when the config is loaded,
//! tried in order before the built-in scrubbing, which always runs on their result.

use std::borrow::Cow;

use super::detectors::scrub_path;

/// One segment of a rewrite pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Matches this exact (still percent-encoded) segment.
    Literal(String),
    /// `*`: any one non-empty segment.
    One,
    /// `**`: one or more segments, the rest of the path.
    Rest,
}

/// A path pattern alone, as `[[sites]] exclude_paths` lists them: the same segments and the same
/// matching as a rewrite rule's pattern (see [`Rule`]), so one syntax serves both settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<Part>,
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        parse_pattern(pattern).map(|parts| Pattern { parts })
    }

    /// Whether `path` (percent-encoded, as in the page URL) matches.
    pub fn matches(&self, path: &str) -> bool {
        match_parts(&self.parts, path).is_some()
    }
}

/// Matches `path` against pattern segments: `None` when it does not match, else what a final
/// `**` matched (with a trailing slash of the path kept), if the pattern has one.
fn match_parts<'a>(pattern: &[Part], path: &'a str) -> Option<Option<&'a str>> {
    let body = path.strip_prefix('/')?;
    let trimmed = body.strip_suffix('/').unwrap_or(body);
    let mut remaining = (!trimmed.is_empty()).then_some(trimmed);
    let mut rest = None;
    for part in pattern {
        let r = remaining?;
        if *part == Part::Rest {
            if r.is_empty() {
                return None;
            }
            // From `body`, so a trailing slash of the path is kept with the rest.
            rest = Some(&body[trimmed.len() - r.len()..]);
            remaining = None;
            break;
        }
        let (head, tail) = match r.find('/') {
            Some(k) => (&r[..k], Some(&r[k + 1..])),
            None => (r, None),
        };
        let ok = match part {
            Part::Literal(l) => head == l,
            _ => !head.is_empty(),
        };
        if !ok {
            return None;
        }
        remaining = tail;
    }
    if remaining.is_some() {
        return None;
    }
    Some(rest)
}

/// A per-site rewrite rule, e.g. `/zaken/*` → `/zaken/:id`.
///
/// Pattern: starts with `/`; `*` matches exactly one non-empty segment, `**` (only as the last
/// segment) one or more; other segments match literally, byte for byte against the
/// percent-encoded path (write `%C3%A9`, not `é`). One trailing `/` of the path is ignored when
/// matching, so `/zaken/*` matches `/zaken/123/` too.
///
/// Replacement: starts with `/`; segments are literal or placeholders `:[a-z_]+` (`:id`). It may
/// end in `/**` when the pattern does: the segments `**` matched are then kept
/// (`/users/*/**` → `/users/:id/**` turns `/users/jan/settings` into `/users/:id/settings`);
/// they still go through the built-in scrubbing like everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pattern: Vec<Part>,
    /// The replacement, without a trailing `/**`.
    replacement: String,
    keep_rest: bool,
}

impl Rule {
    /// Parses one `pattern` → `replacement` pair; the error says what is wrong.
    pub fn parse(pattern: &str, replacement: &str) -> Result<Rule, String> {
        let parts = parse_pattern(pattern)?;
        let (replacement, keep_rest) =
            parse_replacement(replacement, parts.last() == Some(&Part::Rest))?;
        Ok(Rule {
            pattern: parts,
            replacement,
            keep_rest,
        })
    }

    /// The rewritten path when this rule matches `path`.
    pub fn rewrite(&self, path: &str) -> Option<String> {
        let rest = match_parts(&self.pattern, path)?;
        let mut out = self.replacement.clone();
        if let (true, Some(rest)) = (self.keep_rest, rest) {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(rest);
        }
        Some(out)
    }
}

/// The segments of a rule's pattern.
fn parse_pattern(pattern: &str) -> Result<Vec<Part>, String> {
    let body = pattern
        .strip_prefix('/')
        .ok_or_else(|| format!("pattern {pattern:?} must start with '/'"))?;
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let count = body.split('/').count();
    body.split('/')
        .enumerate()
        .map(|(k, seg)| match seg {
            "**" if k + 1 == count => Ok(Part::Rest),
            "**" => Err(format!(
                "pattern {pattern:?}: '**' may only be the last segment (and appear once)"
            )),
            "*" => Ok(Part::One),
            _ if seg.starts_with(':') => Err(format!(
                "pattern {pattern:?}: segment {seg:?} starts with ':'; placeholders belong in \
                 the replacement, use '*' to match any segment"
            )),
            _ => check_literal(seg, "pattern", pattern).map(|()| Part::Literal(seg.to_string())),
        })
        .collect()
}

/// A rule's replacement without its trailing `/**`, and whether it had one.
fn parse_replacement(replacement: &str, pattern_has_rest: bool) -> Result<(String, bool), String> {
    let body = replacement
        .strip_prefix('/')
        .ok_or_else(|| format!("replacement {replacement:?} must start with '/'"))?;
    let (body, keep_rest) = match body.strip_suffix("**") {
        Some(head) if head.is_empty() || head.ends_with('/') => {
            if !pattern_has_rest {
                return Err(format!(
                    "replacement {replacement:?} may only end in '**' when the pattern does"
                ));
            }
            (head.strip_suffix('/').unwrap_or(head), true)
        }
        _ => (body, false),
    };
    // One trailing slash is kept as written; anything else must be a proper segment.
    let segments = body.strip_suffix('/').unwrap_or(body);
    if body == "/" {
        return Err(format!(
            "replacement {replacement:?} has an empty segment ('//')"
        ));
    }
    if !segments.is_empty() {
        for seg in segments.split('/') {
            match seg.strip_prefix(':') {
                Some(name) => {
                    let ok = !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                    if !ok {
                        return Err(format!(
                            "replacement {replacement:?}: placeholder {seg:?} must look like \
                             ':name' (a-z and '_' only)"
                        ));
                    }
                }
                None => {
                    check_literal(seg, "replacement", replacement)?;
                    if seg.contains(':') {
                        return Err(format!(
                            "replacement {replacement:?}: ':' is only allowed at the start of a \
                             placeholder segment, not in {seg:?}"
                        ));
                    }
                }
            }
        }
    }
    Ok((format!("/{body}"), keep_rest))
}

/// Literal pattern and replacement segments: not empty, ASCII, no whitespace, `*`, `?`.
fn check_literal(seg: &str, what: &str, whole: &str) -> Result<(), String> {
    if seg.is_empty() {
        return Err(format!("{what} {whole:?} has an empty segment ('//')"));
    }
    if seg.contains('*') {
        return Err(format!(
            "{what} {whole:?}: '*' and '**' must be whole segments, not part of {seg:?}{}",
            if what == "replacement" {
                " (a replacement has no '*'; use a placeholder like ':id')"
            } else {
                ""
            }
        ));
    }
    if !seg.is_ascii() {
        return Err(format!(
            "{what} {whole:?}: write non-ASCII characters percent-encoded, as in the page URL \
             (%C3%A9 for é), not in {seg:?}"
        ));
    }
    if seg
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?')
    {
        return Err(format!(
            "{what} {whole:?}: segment {seg:?} contains whitespace, a control character or '?'"
        ));
    }
    Ok(())
}

/// A site's rewrite rules, tried in order before the built-in scrubbing; the first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parses `(pattern, replacement)` pairs as the config gives them; the error names the rule
    /// (1-based) and what is wrong with it.
    pub fn parse(pairs: &[(String, String)]) -> Result<Rules, String> {
        let rules = pairs
            .iter()
            .enumerate()
            .map(|(k, (p, r))| {
                Rule::parse(p, r)
                    .map_err(|e| format!("rewrite rule {} ({p:?} -> {r:?}): {e}", k + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The first matching rule's rewrite of `path` (or `path` itself), then [`scrub_path`].
    /// Borrowed when no rule matched and nothing was scrubbed.
    pub fn apply<'a>(&self, path: &'a str) -> Cow<'a, str> {
        let Some(rewritten) = self.rules.iter().find_map(|r| r.rewrite(path)) else {
            return scrub_path(path);
        };
        if let Cow::Owned(scrubbed) = scrub_path(&rewritten) {
            return Cow::Owned(scrubbed);
        }
        Cow::Owned(rewritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(rules: &[(&str, &str)]) -> Vec<(String, String)> {
        rules
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn rewrite_rules() {
        let rules = Rules::parse(&pairs(&[
            ("/zaken/*", "/zaken/:id"),
            ("/users/*/**", "/users/:id/**"),
            ("/zaken/*/documenten/*", "/zaken/:id/documenten/:doc"),
            ("/x/**", "/y/**"),
            ("/lek/*", "/lek/0612345678"),
            ("/", "/home"),
        ]))
        .unwrap();
        assert_eq!(rules.len(), 6);
        let cases = [
            ("/zaken/Z-2026-001", "/zaken/:id"),
            ("/zaken/Z-2026-001/", "/zaken/:id"),
            (
                "/zaken/Z-2026-001/documenten/brief",
                "/zaken/:id/documenten/:doc",
            ),
            ("/users/jan/settings/privacy", "/users/:id/settings/privacy"),
            ("/users/jan/settings/", "/users/:id/settings/"),
            // No rule: built-in scrubbing only.
            ("/users/jan", "/users/jan"),
            ("/zaken", "/zaken"),
            ("/zaken//", "/zaken//"),
            ("/zaken/abc/def", "/zaken/abc/def"),
            ("/klant/12345678", "/klant/:number"),
            // Built-in scrubbing still runs on a rewritten path …
            ("/x/0612345678/a", "/y/:phone/a"),
            // … also on what a replacement says itself: a rule cannot bring data back.
            ("/lek/a", "/lek/:phone"),
            ("/", "/home"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(rules.apply(input), expected, "apply({input:?})");
        }
        assert!(matches!(rules.apply("/users/jan"), Cow::Borrowed(_)));
        assert!(matches!(
            Rules::default().apply("/afval/2026"),
            Cow::Borrowed(_)
        ));
        assert!(Rules::default().is_empty());
        // First match wins.
        let rules = Rules::parse(&pairs(&[("/a/*", "/first"), ("/a/b", "/second")])).unwrap();
        assert_eq!(rules.apply("/a/b"), "/first");
        // Literal segments match the encoded path exactly.
        let rules = Rules::parse(&pairs(&[("/caf%C3%A9/*", "/cafe/:item")])).unwrap();
        assert_eq!(rules.apply("/caf%C3%A9/koffie"), "/cafe/:item");
        assert_eq!(rules.apply("/Caf%C3%A9/koffie"), "/Caf%C3%A9/koffie");
    }

    #[test]
    fn bad_rules_are_refused_clearly() {
        let cases = [
            (("zaken/*", "/zaken/:id"), "must start with '/'"),
            (("/zaken/*", "zaken/:id"), "must start with '/'"),
            (("/a/**/b", "/a"), "'**' may only be the last segment"),
            (("/a/**/**", "/a"), "'**' may only be the last segment"),
            (("/a/b*", "/a"), "must be whole segments"),
            (("/a/:id", "/a/:id"), "use '*' to match any segment"),
            (("/a//b", "/a"), "empty segment"),
            (("/café/*", "/cafe/:x"), "percent-encoded"),
            (("/a b/*", "/a"), "whitespace"),
            (("/a/*", "/a/:ID"), "must look like ':name'"),
            (("/a/*", "/a/:"), "must look like ':name'"),
            (("/a/*", "/a/*"), "use a placeholder like ':id'"),
            (("/a/*", "/a/**"), "only end in '**' when the pattern does"),
            (("/a/*", "/a/x:y"), "':' is only allowed at the start"),
            (("/a/*", "/a/?q"), "'?'"),
            (("/a/*", "//"), "empty segment"),
        ];
        for ((p, r), needle) in cases {
            let err = Rules::parse(&pairs(&[("/ok/*", "/ok/:id"), (p, r)])).unwrap_err();
            assert!(err.starts_with("rewrite rule 2 ("), "{err}");
            assert!(err.contains(needle), "{p:?} -> {r:?}: {err}");
        }
        assert!(Rules::parse(&pairs(&[("/**", "/**"), ("/", "/")])).is_ok());
    }
}
