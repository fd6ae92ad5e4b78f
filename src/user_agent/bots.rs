//! Bot patterns: the npm `isbot` list (`data/isbot-patterns.json`) and tally's own additions
//! (`data/bots-extra.txt`), compiled once for Rust.
//!
//! isbot's patterns are JavaScript regular expressions, matched ignoring case. Two things in
//! them are not Rust `regex` syntax, and are handled here rather than by editing the data (so
//! a refresh of `data/` needs no hand work):
//! - a `-` inside a class next to a class escape (`[\w\d-.]`) is a literal in JavaScript and
//!   an error in Rust: it is escaped;
//! - look-around (`(?<!cam)scan`), which `regex` does not have: such patterns (6 of ~200) go
//!   to `fancy-regex`, a backtracking engine, behind a prefilter that is the same pattern with
//!   the look-arounds taken out. A look-around only narrows a match, so the prefilter matches
//!   whenever the pattern does, and the slow engine runs only for the rare agents it lets by.
//!
//! Everything else is compiled by `regex` into two alternations: the patterns anchored at the
//! start (`^python`, ~80) and the rest. Kept apart, each lazy automaton stays small; as one,
//! the anchored patterns' states multiply with the others', the automaton's cache kept
//! overflowing and `regex` fell back to its slow engine (measured: ~100 µs per new agent,
//! against a few µs, and most of what ingest spent on bot checks; see docs/user-agents.md).

use regex::bytes::{Regex, RegexBuilder};

const ISBOT: &str = include_str!("../../data/isbot-patterns.json");
const EXTRA: &str = include_str!("../../data/bots-extra.txt");

pub(super) struct BotPatterns {
    /// The patterns without look-around that are anchored at the start, as one alternation.
    anchored: Option<Regex>,
    /// The other patterns without look-around, as one alternation.
    plain: Option<Regex>,
    /// Any guarded pattern's prefilter; when it does not match, no guarded pattern can.
    any_guarded: Option<Regex>,
    /// Patterns with look-around.
    guarded: Vec<Guarded>,
    /// Patterns read from the data (isbot's and ours).
    pub(super) count: usize,
    /// Patterns that could not be compiled and are left out (none with the shipped data).
    pub(super) skipped: Vec<String>,
}

struct Guarded {
    prefilter: Option<Regex>,
    full: fancy_regex::Regex,
}

impl BotPatterns {
    pub(super) fn new() -> Self {
        let mut patterns: Vec<String> = serde_json::from_str(ISBOT).unwrap_or_else(|e| {
            tracing::error!(error = %e, "data/isbot-patterns.json is not valid: only tally's own bot patterns are used");
            Vec::new()
        });
        patterns.extend(
            EXTRA
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
        Self::compile(&patterns)
    }

    fn compile(patterns: &[String]) -> Self {
        let mut skipped = Vec::new();
        let mut anchored = Vec::new();
        let mut plain = Vec::new();
        let mut guarded = Vec::new();
        let mut prefilters = Vec::new();
        for pattern in patterns {
            let rust = from_javascript(pattern);
            if has_lookaround(&rust) {
                match fancy_regex::Regex::new(&format!("(?i){rust}")) {
                    Ok(full) => {
                        let stripped = without_lookaround(&rust);
                        let prefilter = build(&stripped).ok();
                        if prefilter.is_some() {
                            prefilters.push(stripped);
                        }
                        guarded.push(Guarded { prefilter, full });
                    }
                    Err(_) => skipped.push(pattern.clone()),
                }
            } else if build(&rust).is_ok() {
                if rust.starts_with('^') {
                    anchored.push(rust);
                } else {
                    plain.push(rust);
                }
            } else {
                skipped.push(pattern.clone());
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(
                count = skipped.len(),
                "bot patterns left out: they do not compile (see tests)"
            );
        }
        let union = |parts: &[String]| {
            (!parts.is_empty())
                .then(|| build(&format!("(?:{})", parts.join(")|(?:"))).ok())
                .flatten()
        };
        // A guarded pattern without a usable prefilter must always be tried.
        let any_guarded = if guarded.iter().all(|g| g.prefilter.is_some()) {
            union(&prefilters)
        } else {
            None
        };
        Self {
            anchored: union(&anchored),
            plain: union(&plain),
            any_guarded,
            guarded,
            count: patterns.len(),
            skipped,
        }
    }

    pub(super) fn is_bot(&self, user_agent: &str) -> bool {
        let bytes = user_agent.as_bytes();
        let matches = |r: &Option<Regex>| r.as_ref().is_some_and(|r| r.is_match(bytes));
        if matches(&self.anchored) || matches(&self.plain) {
            return true;
        }
        if self
            .any_guarded
            .as_ref()
            .is_some_and(|r| !r.is_match(bytes))
        {
            return false;
        }
        self.guarded.iter().any(|g| {
            g.prefilter.as_ref().is_none_or(|p| p.is_match(bytes))
                // An error is the backtracking limit: not a match, rather than a guess.
                && g.full.is_match(user_agent).unwrap_or(false)
        })
    }
}

/// Case-insensitive, and ASCII classes as in JavaScript (`\w`, `\d`, `\b` are ASCII there;
/// user agents are ASCII anyway, as HTTP header values read as text are). The lazy automaton
/// may keep up to 8 MiB of states (2 by default); it used a few hundred KiB on the corpora.
fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(false)
        .size_limit(32 << 20)
        .dfa_size_limit(8 << 20)
        .build()
}

/// The JavaScript spellings Rust's `regex` reads differently: a `-` in a class that touches a
/// class escape (`[\w\d-.]`) is a literal in JavaScript; in Rust it must be escaped.
fn from_javascript(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let is_class_escape = |i: usize| {
        chars.get(i) == Some(&'\\')
            && matches!(chars.get(i + 1), Some('w' | 'W' | 'd' | 'D' | 's' | 'S'))
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut in_class = false;
    let mut after_class_escape = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            after_class_escape = in_class && is_class_escape(i);
            out.push(c);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            } else if c == '-' && (after_class_escape || is_class_escape(i + 1)) {
                out.push('\\');
            }
        } else if c == '[' {
            in_class = true;
            out.push(c);
            // A `]` or `^]` right at the start is part of the class, not its end.
            if chars.get(i + 1) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            i += 1;
            after_class_escape = false;
            continue;
        }
        after_class_escape = false;
        out.push(c);
        i += 1;
    }
    out
}

const LOOKAROUNDS: [&str; 4] = ["(?=", "(?!", "(?<=", "(?<!"];

fn has_lookaround(pattern: &str) -> bool {
    LOOKAROUNDS.iter().any(|l| pattern.contains(l))
}

/// The pattern with every look-around group removed (escapes and classes respected).
fn without_lookaround(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    let mut in_class = false;
    while i < bytes.len() {
        let rest = &pattern[i..];
        if !in_class && LOOKAROUNDS.iter().any(|l| rest.starts_with(l)) {
            i += group_len(rest);
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        match c {
            '\\' => {
                let escaped: String = rest.chars().take(2).collect();
                out.push_str(&escaped);
                i += escaped.len();
                continue;
            }
            '[' => in_class = true,
            ']' => in_class = false,
            _ => {}
        }
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

/// Length in bytes of the group that starts `s` (at its `(`), up to its matching `)`.
fn group_len(s: &str) -> usize {
    let mut depth = 0;
    let mut in_class = false;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_pattern_compiles() {
        let bots = BotPatterns::new();
        assert!(bots.count > 200, "{} patterns", bots.count);
        assert!(bots.skipped.is_empty(), "not compiled: {:?}", bots.skipped);
        assert!(bots.anchored.is_some() && bots.plain.is_some() && bots.any_guarded.is_some());
    }

    #[test]
    fn javascript_classes_become_rust_classes() {
        assert_eq!(from_javascript(r"[\w\d-.]+"), r"[\w\d\-.]+");
        assert_eq!(from_javascript(r"[a-z\-]"), r"[a-z\-]");
        assert_eq!(from_javascript(r"[-\w]"), r"[\-\w]");
        assert_eq!(from_javascript(r"^[\w\-]+/[\w]+$"), r"^[\w\-]+/[\w]+$");
        assert_eq!(from_javascript(r"a-b[^-\d]"), r"a-b[^\-\d]");
    }

    #[test]
    fn lookarounds_are_stripped_for_the_prefilter() {
        assert_eq!(without_lookaround("(?<!cam)scan"), "scan");
        assert_eq!(
            without_lookaround("(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))"),
            "google"
        );
        assert_eq!(without_lookaround(r"java(?!;)"), "java");
        assert_eq!(without_lookaround(r"a[(?!]b"), r"a[(?!]b");
        assert_eq!(without_lookaround(r"a\(?!b"), r"a\(?!b");
    }

    #[test]
    fn lookarounds_keep_their_meaning() {
        let bots = BotPatterns::compile(&["(?<!cam)scan".to_string(), "java(?!;)".to_string()]);
        assert!(bots.skipped.is_empty());
        assert!(bots.is_bot("Mozilla/5.0 (compatible; SecurityScan/1.0)"));
        assert!(!bots.is_bot("Mozilla/5.0 Camscanner/6.0"));
        assert!(bots.is_bot("Java/1.8.0_121"));
        assert!(!bots.is_bot("Mozilla/4.0 (compatible; MSIE 6.0; Java;)"));
    }
}
