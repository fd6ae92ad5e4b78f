//! Issue 15 end to end: the real `tally serve` and ClickHouse store sources and classes under
//! the names Plausible reports (maintained referrer list, `ref`/`source` tags, uap-core
//! classes), and drop the kinds of programs the issue found counted as visitors.

use crate::support::*;

const MAC_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";
const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
const FACEBOOK_APP: &str = "Mozilla/5.0 (Linux; Android 9; SM-G950U Build/PPR1.180610.011; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/80.0.3987.149 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/263.0.0.46.121;]";

#[tokio::test]
async fn issue_15_sources_and_classes_are_stored_by_plausible_names() {
    let t = Setup::new("sources").start().await;
    // (path, query, referrer, user agent, expected source)
    let cases = [
        ("/ref", "?ref=nieuwsbrief", None, CHROME, "nieuwsbrief"),
        ("/source", "?source=partner", None, CHROME, "partner"),
        (
            "/utm-first",
            "?utm_source=mail&ref=site",
            None,
            CHROME,
            "mail",
        ),
        ("/known-tag", "?utm_source=google", None, CHROME, "Google"),
        (
            "/chatgpt",
            "",
            Some("https://chatgpt.com/"),
            MAC_SAFARI,
            "ChatGPT",
        ),
        ("/x", "", Some("https://t.co/abc123"), EDGE, "X (Twitter)"),
        (
            "/gmail",
            "",
            Some("android-app://com.google.android.gm/"),
            FACEBOOK_APP,
            "Gmail",
        ),
        (
            "/google",
            "",
            Some("https://www.google.nl/"),
            CHROME,
            "Google",
        ),
        (
            "/other",
            "",
            Some("https://nieuws.regio.example/artikel"),
            CHROME,
            "nieuws.regio.example",
        ),
        ("/direct", "", None, CHROME, ""),
    ];
    for (i, (path, query, referrer, ua, _)) in cases.iter().enumerate() {
        let r = referrer.map_or("null".to_string(), |r| format!("{r:?}"));
        let body = format!(
            r#"{{"n":"pageview","u":"https://www.example.org{path}{query}","r":{r},"w":1280}}"#
        );
        assert_eq!(
            t.browser_beacon(&body, ua, &format!("8.8.8.{i}")).await,
            202
        );
    }
    // Programs the issue found stored as visitors: answered 202, counted, not stored.
    for ua in [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Playwright/1.40.0",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
        "Mozilla/5.0 (X11; Linux x86_64; Rigor) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.106 Safari/537.36",
        "Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.6.13",
    ] {
        let body = r#"{"n":"pageview","u":"https://www.example.org/bot"}"#;
        assert_eq!(t.browser_beacon(body, ua, "9.9.9.9").await, 202, "{ua}");
    }

    assert_eq!(t.wait_rows(cases.len() as u64).await, cases.len() as u64);
    let rows = ch_rows(&format!(
        "SELECT path, source, browser, os FROM {}.events",
        t.db
    ))
    .await;
    for (path, _, _, _, expected) in &cases {
        let row = rows
            .iter()
            .find(|r| r["path"] == *path)
            .unwrap_or_else(|| panic!("no row {path}: {rows:#?}"));
        assert_eq!(row["source"], *expected, "{path}");
    }
    let classes = |path: &str| {
        let r = rows.iter().find(|r| r["path"] == path).unwrap();
        (
            r["browser"].as_str().unwrap().to_string(),
            r["os"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(classes("/chatgpt"), ("Safari".into(), "Mac".into()));
    assert_eq!(classes("/x"), ("Microsoft Edge".into(), "Windows".into()));
    assert_eq!(classes("/gmail"), ("Mobile App".into(), "Android".into()));
    assert!(rows.iter().all(|r| r["path"] != "/bot"), "{rows:#?}");

    let m = t.metrics().await;
    assert_eq!(
        metric(&m, r#"tally_bot_beacons_total{reason="known_pattern"}"#),
        3.0
    );
    assert_eq!(
        metric(&m, r#"tally_bot_beacons_total{reason="not_a_browser"}"#),
        1.0
    );
}
