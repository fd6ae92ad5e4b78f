//! Fuzz target: personal-data scrubbing and per-site rewrite rules on arbitrary strings.
//!
//! Input: `path`, or `path\0pattern\0replacement` (bytes read as UTF-8, invalid sequences
//! replaced), so that seeds can be written by hand. The path is scrubbed as a path, as a query
//! value and as a referrer host; the pattern and replacement are parsed as a rewrite rule and, if
//! valid, applied to the path, together with fixed rules of the documented shapes.
//!
//! Invariants asserted (the promises in `scrub`'s module documentation):
//! - nothing panics, whatever the string (a replaced span is mapped back onto the original,
//!   possibly percent-encoded bytes: a wrong offset would split a character and panic);
//! - scrubbing is idempotent: scrubbing a scrubbed path or value changes nothing;
//! - the result is borrowed exactly when nothing changed (no allocation for clean input, and a
//!   replacement always changes the text);
//! - a path keeps its segments: as many `/` come out as went in;
//! - the output is never much longer than the input: the shortest piece ever replaced is a
//!   6-digit number and the longest placeholder `:number` has 7 bytes, so
//!   `len(out) <= len(in) * 7 / 6`;
//! - a rule can coarsen a path but never bring personal data back: what `Rules::apply` returns
//!   is scrub-clean, and with no matching rule it is exactly `scrub_path`;
//! - a rule's own rewrite starts with `/`.
#![no_main]

use std::borrow::Cow;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tally::scrub::{host_is_personal, scrub_path, scrub_value, Rule, Rules};

fn fixed_rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(|| {
        Rules::parse(&[
            ("/users/*/**".into(), "/users/:id/**".into()),
            ("/blog/*".into(), "/blog/:slug".into()),
            ("/a/*/b/*".into(), "/a/:x/b/:y/".into()),
            ("/**".into(), "/**".into()),
        ])
        .expect("the fixed rules are valid")
    })
}

/// Runs `scrub` on `input` and on its own output, checks the invariants every scrubbing
/// function keeps, and returns the output; `what` names the function in a failure.
fn check_scrubbed(what: &str, scrub: fn(&str) -> Cow<'_, str>, input: &str) -> String {
    let out = scrub(input);
    assert_eq!(
        matches!(out, Cow::Borrowed(_)),
        out.as_ref() == input,
        "{what}({input:?}) = {out:?}: borrowed must mean unchanged"
    );
    let again = scrub(&out);
    assert_eq!(again, out, "{what} is not idempotent on {input:?}");
    assert!(
        matches!(again, Cow::Borrowed(_)),
        "{what}({out:?}) allocated for clean input"
    );
    assert!(
        out.len() * 6 <= input.len() * 7,
        "{what}({input:?}) = {out:?} grew more than 7/6"
    );
    out.into_owned()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let path = parts.next().unwrap_or("");
    let rule = match (parts.next(), parts.next()) {
        (Some(p), Some(r)) => Some((p, r)),
        _ => None,
    };

    let out = check_scrubbed("scrub_path", scrub_path, path);
    assert_eq!(
        out.matches('/').count(),
        path.matches('/').count(),
        "scrub_path({path:?}) = {out:?} changed the segments"
    );

    check_scrubbed("scrub_value", scrub_value, path);

    // A host: only that it answers, for any label.
    let _ = host_is_personal(path);

    let fixed = fixed_rules();
    let applied = fixed.apply(path);
    assert_eq!(scrub_path(&applied), applied, "rules brought data back");

    if let Some((pattern, replacement)) = rule {
        let Ok(rule) = Rule::parse(pattern, replacement) else {
            return;
        };
        if let Some(rewritten) = rule.rewrite(path) {
            assert!(rewritten.starts_with('/'), "{rewritten:?}");
        }
        let rules = Rules::parse(&[(pattern.to_string(), replacement.to_string())])
            .expect("a rule that parses alone parses in a list");
        let applied = rules.apply(path);
        assert_eq!(scrub_path(&applied), applied, "rule brought data back");
        if rule.rewrite(path).is_none() {
            assert_eq!(applied, scrub_path(path));
        }
    }
});
