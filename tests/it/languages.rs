//! The dashboard, the login page and the privacy report in the language the browser asks for
//! (`Accept-Language`), or the one chosen with the switch (`lang`), against the real binary over
//! real HTTP. What the pages look like in each language, with screenshots:
//! `tests/browser/dashboard.test.js`.

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_LANGUAGE};
use reqwest::redirect::Policy;

use crate::dashboard::{dashboard_config, login, ALICE_PASSWORD};
use crate::reports::{load_events, FIXTURE_TOKEN};
use crate::support::*;

/// Every message key in `locales/en.toml` (dotted), to look for on pages: a key written as
/// itself is a message missing from a language.
fn message_keys() -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                _ => out.push(key),
            }
        }
    }
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/locales/en.toml")).unwrap();
    let mut out = Vec::new();
    walk("", &text.parse().unwrap(), &mut out);
    assert!(out.len() > 100, "{} keys", out.len());
    out
}

struct Page {
    status: u16,
    lang: Option<String>,
    location: Option<String>,
    body: String,
}

async fn get(url: &str, cookie: Option<&str>, accept_language: Option<&str>) -> Page {
    let mut req = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(a) = accept_language {
        req = req.header(ACCEPT_LANGUAGE, a);
    }
    let r = req.send().await.unwrap();
    let header = |name| {
        r.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    Page {
        status: r.status().as_u16(),
        lang: header(CONTENT_LANGUAGE),
        location: header(reqwest::header::LOCATION),
        body: r.text().await.unwrap(),
    }
}

#[tokio::test]
async fn pages_speak_the_language_asked_for() {
    let setup = Setup::new("languages").with(&dashboard_config(""));
    let t = setup.start().await;
    load_events(&t.db).await;
    crate::export::settle(&setup);
    let base = &t.base;
    let keys = message_keys();
    let no_key = |p: &Page, what: &str| {
        for k in &keys {
            // Keys of one word (`footer`) are ordinary words; dotted ones are not.
            if k.contains('.') {
                assert!(
                    !p.body.contains(&format!(">{k}<")) && !p.body.contains(&format!("\"{k}\"")),
                    "{what}: the key {k} is written as itself"
                );
            }
        }
    };

    // The login page: from Accept-Language, Belgian Dutch counting as Dutch.
    for (accept, lang, words) in [
        (None, "en", ["Password", "Log in"]),
        (
            Some("nl-BE,nl;q=0.9,en;q=0.8"),
            "nl",
            ["Wachtwoord", "Inloggen"],
        ),
        (
            Some("de-DE,fr;q=0.8,en;q=0.5"),
            "fr",
            ["Mot de passe", "Se connecter"],
        ),
    ] {
        let p = get(&format!("{base}/login"), None, accept).await;
        assert_eq!(p.status, 200);
        assert_eq!(p.lang.as_deref(), Some(lang), "{accept:?}");
        assert!(
            p.body.contains(&format!("<html lang=\"{lang}\">")),
            "{accept:?}"
        );
        for w in words {
            assert!(p.body.contains(w), "{accept:?}: no {w:?}");
        }
        no_key(&p, &format!("login {lang}"));
    }

    let (session, _) = login(base, "alice", ALICE_PASSWORD).await;
    let view = "period=custom&from=2026-03-26&to=2026-03-31";
    let dash = |q: String, accept: Option<&'static str>| {
        let session = session.clone();
        async move {
            get(
                &format!("{base}/dashboard/a.example?{q}"),
                Some(&session),
                accept,
            )
            .await
        }
    };
    let mut bodies = Vec::new();
    for (accept, lang, words) in [
        (Some("en-GB"), "en", ["Visitors", "Pageviews", "Log out"]),
        (
            Some("nl"),
            "nl",
            ["Bezoekers", "Paginaweergaven", "Uitloggen"],
        ),
        (
            Some("fr-CA,fr;q=0.9"),
            "fr",
            ["Visiteurs", "Pages vues", "Se déconnecter"],
        ),
    ] {
        let p = dash(view.to_string(), accept).await;
        assert_eq!(p.status, 200, "{lang}");
        assert_eq!(p.lang.as_deref(), Some(lang));
        for w in words {
            assert!(p.body.contains(w), "{lang}: no {w:?}");
        }
        no_key(&p, &format!("dashboard {lang}"));
        // Dates as the language writes them (the custom period's end).
        let date = match lang {
            "en" => "Mar 31, 2026",
            "nl" => "31 mrt 2026",
            _ => "31 mars 2026",
        };
        assert!(p.body.contains(date), "{lang}: no {date:?}");
        // Without the switch, links carry no language: the browser's decides.
        assert!(
            !p.body.contains("&#38;lang=en\" aria-current")
                && !p.body.contains("period=7d&#38;lang="),
            "{lang}: a link fixes the language"
        );
        bodies.push(p.body);
    }
    // The same numbers in each language (the data attributes scripts and tests read).
    let values = |b: &str| -> Vec<String> {
        b.split("data-value=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].to_string())
            .collect()
    };
    assert!(!values(&bodies[0]).is_empty());
    assert_eq!(values(&bodies[0]), values(&bodies[1]));
    assert_eq!(values(&bodies[0]), values(&bodies[2]));

    // The switch: `lang` wins over the browser, and every link of the page keeps it.
    let p = dash(format!("{view}&lang=nl"), Some("fr")).await;
    assert_eq!(p.lang.as_deref(), Some("nl"));
    assert!(p.body.contains("Bezoekers"));
    assert!(
        p.body.contains("period=7d&#38;lang=nl"),
        "the period links keep the language"
    );
    for l in ["en", "nl", "fr"] {
        assert!(
            p.body.contains(&format!("hreflang=\"{l}\"")),
            "the switch offers {l}"
        );
    }
    // A language tally does not speak is a 400 that says which it does, in the browser's language.
    let p = dash(format!("{view}&lang=de"), Some("fr")).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("en, nl ou fr"), "{}", p.body);
    // The chosen language follows the login redirect.
    let p = get(&format!("{base}/dashboard/a.example?lang=fr"), None, None).await;
    assert_eq!(p.status, 303);
    let login_url = p.location.unwrap();
    assert!(login_url.ends_with("&lang=fr"), "{login_url}");
    let p = get(&format!("{base}{login_url}"), None, Some("en")).await;
    assert!(p.body.contains("Mot de passe"));

    // The privacy report: Markdown in the language asked for; JSON stays English.
    for (accept, lang, title) in [
        ("en", "en", "# Privacy report"),
        ("nl-NL", "nl", "# Privacyrapport"),
        ("fr", "fr", "# Rapport de confidentialité"),
    ] {
        let r = reqwest::Client::new()
            .get(format!("{base}/privacy"))
            .bearer_auth(FIXTURE_TOKEN)
            .header(ACCEPT_LANGUAGE, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[CONTENT_LANGUAGE], lang);
        let text = r.text().await.unwrap();
        assert!(
            text.contains(title),
            "{lang}: {}",
            &text[..200.min(text.len())]
        );
        for k in keys.iter().filter(|k| k.starts_with("privacy.")) {
            assert!(
                !text.contains(k.as_str()),
                "{lang}: the key {k} is written as itself"
            );
        }
    }
}
