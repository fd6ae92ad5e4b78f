//! The translations are complete and used, the templates write no text of their own, and
//! numbers and dates come out as each language writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::*;

const CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// `key` without a plural category at its end (`count.visitors.one` → `count.visitors`), and
/// whether it had one.
fn base(key: &str) -> (&str, bool) {
    match key.rsplit_once('.') {
        Some((b, last)) if CATEGORIES.contains(&last) => (b, true),
        _ => (key, false),
    }
}

/// The `{placeholders}` of a message.
fn placeholders(message: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = message;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.insert(after[..close].to_string());
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// Each language's messages by key, plural forms under their base key.
fn messages(lang: Lang) -> BTreeMap<String, BTreeMap<&'static str, String>> {
    let catalog = Catalog::parse(lang.source()).expect("locale file parses");
    let mut out: BTreeMap<String, BTreeMap<&'static str, String>> = BTreeMap::new();
    for (key, message) in catalog.iter() {
        let (b, plural) = base(key);
        let category = if plural {
            CATEGORIES
                .into_iter()
                .find(|c| key.ends_with(&format!(".{c}")))
                .unwrap_or("other")
        } else {
            ""
        };
        out.entry(b.to_string())
            .or_default()
            .insert(category, message.to_string());
    }
    out
}

#[test]
fn every_key_is_in_every_language_with_the_same_placeholders() {
    let en = messages(Lang::En);
    for lang in Lang::ALL {
        let other = messages(lang);
        let missing: Vec<&String> = en.keys().filter(|k| !other.contains_key(*k)).collect();
        let extra: Vec<&String> = other.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "locales/{}.toml: missing {missing:?}, not in en.toml {extra:?}",
            lang.code()
        );
        let rules = &tr(lang).formats;
        for (key, forms) in &other {
            let reference = &en[key];
            let expected = placeholders(
                reference
                    .get("")
                    .or_else(|| reference.get("other"))
                    .expect("a message or an `other` form"),
            );
            for (category, message) in forms {
                // `{n}` may be left out of a form that says the number in words (`one`).
                let mut got = placeholders(message);
                let mut want = expected.clone();
                if !category.is_empty() {
                    got.insert("n".into());
                    want.insert("n".into());
                }
                assert_eq!(
                    got,
                    want,
                    "locales/{}.toml {key} {category}: {message:?}",
                    lang.code()
                );
            }
            // A plural message has each form this language's rules choose, for the counts a
            // page shows.
            if !forms.contains_key("") {
                for n in [0.0, 1.0, 2.0, 5.0, 21.0, 100.0, 1000.0, 1_000_000.0] {
                    let category = rules.plural_category(n);
                    assert!(
                        forms.contains_key(category),
                        "locales/{}.toml {key} has no {category:?} form (for {n})",
                        lang.code()
                    );
                }
            } else {
                assert_eq!(forms.len(), 1, "{key}: a message and plural forms");
            }
        }
    }
}

/// Every file under `dir` whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str], out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, exts, out);
        } else if exts
            .iter()
            .any(|e| path.extension().is_some_and(|x| x == *e))
        {
            out.push(path);
        }
    }
}

/// The code that writes for people: the dashboard, the privacy report, this module.
fn source_files() -> Vec<(std::path::PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["src/dashboard", "src/privacy_report", "src/i18n"] {
        files(&root.join(dir), &["rs", "html", "svg"], &mut paths);
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// The message keys written as string literals in the code and templates: literals of dotted
/// lower-case words whose first word is a section of the messages.
fn keys_in_code() -> BTreeMap<String, String> {
    let en = messages(Lang::En);
    let sections: BTreeSet<&str> = en
        .keys()
        .map(|k| k.split('.').next().unwrap_or(""))
        .collect();
    let literal = regex::Regex::new(r#""([a-z0-9_]+(?:\.[a-z0-9_]+)+)""#).unwrap();
    // Setting names written as code on the page, not messages.
    let settings = ["privacy.aggregate_only"];
    let mut out = BTreeMap::new();
    for (path, text) in source_files() {
        if path.ends_with("i18n/tests.rs") {
            continue;
        }
        for c in literal.captures_iter(&text) {
            let key = &c[1];
            // Template file names (`error.html`) are not messages either.
            let file = [".html", ".svg"].iter().any(|e| key.ends_with(e));
            if sections.contains(key.split('.').next().unwrap_or(""))
                && !settings.contains(&key)
                && !file
            {
                out.insert(key.to_string(), path.display().to_string());
            }
        }
    }
    out
}

#[test]
fn every_key_the_code_names_exists_and_every_message_is_used() {
    let en = messages(Lang::En);
    let used = keys_in_code();
    for (key, file) in &used {
        assert!(
            en.contains_key(key),
            "{file} names {key:?}, which locales/en.toml does not have"
        );
    }
    // Keys the code builds: `privacy.field.COLUMN.PART`, `privacy.never_stored.KEY`,
    // `privacy.md.column.NAME` (checked by their own tests in privacy_report).
    let built = [
        "privacy.field.",
        "privacy.never_stored.",
        "privacy.md.column.",
    ];
    let all_text: String = source_files().into_iter().map(|(_, t)| t).collect();
    for key in en.keys() {
        if built.iter().any(|p| key.starts_with(p)) {
            let last = key.rsplit('.').next().unwrap_or("");
            assert!(
                all_text.contains(&format!("\"{last}\"")) || key.starts_with("privacy.field."),
                "{key}: its last part {last:?} is named nowhere in src/"
            );
            continue;
        }
        // A key of one word (`footer`) is not found by the dotted pattern above.
        let single = !key.contains('.') && all_text.contains(&format!("\"{key}\""));
        assert!(
            used.contains_key(key) || single,
            "{key} is in locales/en.toml but no code or template uses it"
        );
    }
}

/// What a template writes for people outside `{{ … }}`: the text between tags, and the values
/// of the attributes people read (title, aria-label, alt, placeholder). None of it may hold a
/// letter: every word comes from the messages. The brand `tally` and `CSV`-free markup are the
/// only words allowed.
#[test]
fn templates_write_no_text_of_their_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/dashboard/templates");
    let mut paths = Vec::new();
    files(&root, &["html", "svg"], &mut paths);
    assert!(paths.len() >= 15, "templates found: {paths:?}");
    let comment = regex::Regex::new(r"(?s)\{#.*?#\}").unwrap();
    let code = regex::Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").unwrap();
    let tag = regex::Regex::new(r"(?s)<[^>]*>").unwrap();
    let read = regex::Regex::new(r#"(?:title|aria-label|alt|placeholder)="([^"]*)""#).unwrap();
    let brand = regex::Regex::new(r#"<span class="brand">tally</span>|· tally"#).unwrap();
    // A page's `<body class>` (`{% block body_class %}dashboard{% endblock %}`) is no text.
    let body_class =
        regex::Regex::new(r"\{%-? *block body_class *-?%\}[a-z -]*\{%-? *endblock *-?%\}").unwrap();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let text = comment.replace_all(&text, "");
        let text = body_class.replace_all(&text, "");
        let text = brand.replace_all(&text, "");
        let text = code.replace_all(&text, "");
        let mut seen: Vec<String> = read
            .captures_iter(&text)
            .map(|c| c[1].to_string())
            .collect();
        seen.extend(tag.split(&text).map(str::to_string));
        for piece in seen {
            assert!(
                !piece.chars().any(char::is_alphabetic),
                "{}: {piece:?} is text outside the translations",
                path.display()
            );
        }
    }
}

#[test]
fn the_english_field_texts_are_the_events_table_documentation() {
    let en = tr(Lang::En);
    for f in crate::event::FIELDS {
        for (part, text) in [
            ("what", f.what),
            ("from", f.from),
            ("reduction", f.reduction),
        ] {
            assert_eq!(
                en.t(&format!("privacy.field.{}.{part}", f.column)),
                text,
                "{} {part}",
                f.column
            );
        }
    }
    // Every column has its three texts in every language, and no column is described that
    // the table does not have.
    for lang in Lang::ALL {
        let m = messages(lang);
        let described: BTreeSet<&str> = m
            .keys()
            .filter_map(|k| k.strip_prefix("privacy.field."))
            .filter_map(|k| k.split('.').next())
            .collect();
        let columns: BTreeSet<&str> = crate::event::FIELDS.iter().map(|f| f.column).collect();
        assert_eq!(described, columns, "{}", lang.code());
        for c in &columns {
            for part in ["what", "from", "reduction"] {
                assert!(m.contains_key(&format!("privacy.field.{c}.{part}")));
            }
        }
    }
}

#[test]
fn accept_language_picks_the_language() {
    let n = |h: &str| Lang::negotiate(Some(h));
    assert_eq!(Lang::negotiate(None), Lang::En);
    assert_eq!(n(""), Lang::En);
    assert_eq!(n("nl"), Lang::Nl);
    assert_eq!(n("nl-BE,nl;q=0.9,en;q=0.8"), Lang::Nl);
    assert_eq!(n("fr-CA"), Lang::Fr);
    assert_eq!(n("de-DE,de;q=0.9,fr;q=0.8,en;q=0.7"), Lang::Fr);
    assert_eq!(n("de,en;q=0.5,nl;q=0.6"), Lang::Nl);
    assert_eq!(n("en-GB,en;q=0.9,nl;q=0.8"), Lang::En);
    // Weight 0 means "not this one"; unknown languages and garbage fall back to English.
    assert_eq!(n("nl;q=0,fr;q=0.1"), Lang::Fr);
    assert_eq!(n("de, es"), Lang::En);
    assert_eq!(n("*"), Lang::En);
    assert_eq!(n("fr;q=abc"), Lang::Fr);
    assert_eq!(n(";;,,q=1"), Lang::En);
    assert_eq!(Lang::parse("NL"), Some(Lang::Nl));
    assert_eq!(Lang::parse("de"), None);
    for l in Lang::ALL {
        assert_eq!(Lang::parse(l.code()), Some(l));
        assert_eq!(tr(l).lang, l);
    }
}

#[test]
fn numbers_and_dates_as_each_language_writes_them() {
    let (en, nl, fr) = (tr(Lang::En), tr(Lang::Nl), tr(Lang::Fr));
    let march3: jiff::civil::Date = "2026-03-03".parse().unwrap();
    // CLDR's digit grouping: a comma, a dot, a narrow no-break space.
    assert_eq!(en.count(1234.0), "1,234");
    assert_eq!(nl.count(1234.0), "1.234");
    assert_eq!(fr.count(1234.0), "1\u{202f}234");
    assert_eq!(en.count(1_234_567.4), "1,234,567");
    assert_eq!(en.decimal(12.5, 1), "12.5");
    assert_eq!(nl.decimal(12.5, 1), "12,5");
    assert_eq!(fr.decimal(12.0, 1), "12");
    assert_eq!(nl.fixed(1.5, 2), "1,50");
    assert_eq!(en.percent(38.0), "38%");
    assert_eq!(nl.percent(12.5), "12,5%");
    assert_eq!(fr.percent(12.5), "12,5\u{202f}%");
    assert_eq!(en.short_count(1200.0), "1.2k");
    assert_eq!(nl.short_count(1_500_000.0), "1,5 mln.");
    assert_eq!(fr.short_count(34_000.0), "34 k");
    assert_eq!(en.short_count(950.0), "950");
    assert_eq!(en.duration(182.0), "3m 02s");
    assert_eq!(nl.duration(182.0), "3 min 02 s");
    assert_eq!(fr.duration(3900.0), "1 h 05 min");
    assert_eq!(en.duration(45.0), "45s");
    assert_eq!(en.change(12.0, false), "▲ +12%");
    assert_eq!(en.change(-5.0, true), "▼ −5 pts");
    assert_eq!(en.change(0.0, false), "± 0%");
    assert_eq!(fr.change(-5.0, false), "▼ −5\u{202f}%");
    // Day and month: `Mar 3`, `3 mrt`, `3 mars` (CLDR's Dutch abbreviation has no dot).
    assert_eq!(en.day_month(march3), "Mar 3");
    assert_eq!(nl.day_month(march3), "3 mrt");
    assert_eq!(fr.day_month(march3), "3 mars");
    assert_eq!(en.date(march3), "Mar 3, 2026");
    assert_eq!(nl.weekday_date(march3), "di 3 mrt 2026");
    assert_eq!(fr.weekday_date(march3), "mar. 3 mars 2026");
    assert_eq!(fr.month_year(march3), "mars 2026");
    assert_eq!(nl.weekday(march3), "dinsdag");
    assert_eq!(en.weekday_short(march3), "Tue");
    // Plural forms: French counts 0 and 1 as one, English and Dutch only 1.
    assert_eq!(en.plural("count.visitors", 1.0, &[]), "1 visitor");
    assert_eq!(en.plural("count.visitors", 0.0, &[]), "0 visitors");
    assert_eq!(fr.plural("count.visitors", 0.0, &[]), "0 visiteur");
    assert_eq!(fr.plural("count.visitors", 2.0, &[]), "2 visiteurs");
    assert_eq!(nl.plural("count.visits", 1234.0, &[]), "1.234 bezoeken");
    assert_eq!(
        nl.plural("login.throttled", 1.0, &[]),
        "Te veel verkeerde wachtwoorden voor deze naam. Probeer het over 1 minuut opnieuw."
    );
}

#[test]
fn messages_are_filled_in_and_cut_at_their_slots() {
    let en = tr(Lang::En);
    assert_eq!(
        en.f("filters.remove", &[("dimension", &"Country")]),
        "Remove the Country filter"
    );
    assert_eq!(fill("{a} and {b} {c", &[("a", &1)]), "1 and {b} {c");
    assert_eq!(
        en.pieces("filters.is", &[("dimension", &"Country")], &["value"]),
        vec![Piece::Text("Country is ".into()), Piece::Slot(0)]
    );
    // A key that is missing is written as itself, not as nothing.
    assert_eq!(en.t("no.such.key"), "no.such.key");
    let marked = Tr::marked(Lang::Nl, "⟦", "⟧");
    assert_eq!(marked.t("header.logout"), "⟦Uitloggen⟧");
    assert_eq!(marked.count(1234.0), "1.234");
}
