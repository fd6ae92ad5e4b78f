//! Beacons in, rows out: tally's format, Plausible's tracker and Events API, sites, bots, bad input.

use crate::support::*;

fn two_sites() -> &'static str {
    r#"
[[sites]]
domain = "www.example.org"
aliases = ["example.org"]
props_allowlist = ["plan"]

[[sites]]
domain = "gemeente.example.nl"
time_zone = "Europe/Amsterdam"
"#
}

#[tokio::test]
async fn tally_and_plausible_beacons_become_the_expected_rows() {
    let setup = Setup::new("rows").with(two_sites());
    let t = setup.start().await;

    // tally's own tracker: short keys, text/plain (sendBeacon), screen width.
    let s = t
        .browser_beacon(
            r#"{"n":"pageview","u":"https://www.example.org/afval/2026?utm_source=nieuwsbrief&utm_medium=email&sid=99","d":"www.example.org","r":"https://www.google.com/search?q=afval","w":390,"p":{"plan":"basis voor jan.de.vries@example.nl","author":"Jan"}}"#,
            IPHONE,
            "193.0.6.139",
        )
        .await;
    assert_eq!(s, 202);
    let s = t
        .browser_beacon(
            r#"{"n":"engagement","u":"https://www.example.org/afval/2026","d":"www.example.org","e":5300,"sd":80,"p":{"plan":"basis"}}"#,
            IPHONE,
            "193.0.6.139",
        )
        .await;
    assert_eq!(s, 202);

    // Plausible's official tracker (npm @plausible-analytics/tracker 0.4): text/plain via fetch.
    let (s, body) = t
        .beacon(
            r#"{"n":"pageview","u":"https://gemeente.example.nl/parkeren","d":"gemeente.example.nl","r":null,"v":36}"#,
            &[("content-type", "text/plain"), ("user-agent", CHROME), ("x-forwarded-for", "2a00:1450:4001:80b::200e")],
        )
        .await;
    assert_eq!((s, body.as_str()), (202, ""));

    // Plausible Events API from a server-side integration: long keys, JSON, visitor headers.
    let (s, _) = t
        .beacon(
            r#"{"name":"Signup","url":"https://example.org/aanmelden","domain":"www.example.org","referrer":"https://duckduckgo.com/","props":{"plan":"pro voor jan.de.vries@example.nl, 06-12345678","email":"jan@example.nl"},"revenue":{"amount":"10","currency":"EUR"}}"#,
            &[("content-type", "application/json"), ("user-agent", CHROME), ("x-forwarded-for", "8.8.8.8")],
        )
        .await;
    assert_eq!(s, 202);

    // A beacon for two sites at once (Plausible's comma-separated domain): one row per site.
    let (s, _) = t
        .beacon(
            r#"{"n":"pageview","u":"https://www.example.org/gedeeld","d":"www.example.org,gemeente.example.nl"}"#,
            &[("user-agent", CHROME), ("x-forwarded-for", "8.8.8.8")],
        )
        .await;
    assert_eq!(s, 202);

    assert_eq!(t.wait_rows(6).await, 6);
    let rows = ch_rows(&format!(
        "SELECT site, name, host, path, query, utm_source, utm_medium, referrer_host, device, browser, os, screen, engaged_ms, scroll_depth, props_keys, props_values FROM {}.events ORDER BY site, name, path",
        t.db
    ))
    .await;
    let row = |site: &str, name: &str, path: &str| {
        rows.iter()
            .find(|r| r["site"] == site && r["name"] == name && r["path"] == path)
            .unwrap_or_else(|| panic!("no row {site} {name} {path} in {rows:#?}"))
            .clone()
    };
    let pv = row("www.example.org", "pageview", "/afval/2026");
    assert_eq!(pv["query"], "utm_source=nieuwsbrief&utm_medium=email");
    assert_eq!(pv["utm_source"], "nieuwsbrief");
    assert_eq!(pv["referrer_host"], "www.google.com");
    assert_eq!(
        (
            pv["device"].as_str(),
            pv["browser"].as_str(),
            pv["os"].as_str()
        ),
        (Some("mobile"), Some("Safari"), Some("iOS"))
    );
    assert_eq!(pv["screen"], "mobile");
    // A pageview keeps its allow-listed props (Plausible's pageview props), scrubbed as a
    // custom event's are; an engagement keeps none.
    assert_eq!(pv["props_keys"], serde_json::json!(["plan"]));
    assert_eq!(pv["props_values"], serde_json::json!(["basis voor :email"]));
    let eng = row("www.example.org", "engagement", "/afval/2026");
    assert_eq!(
        (eng["engaged_ms"].as_u64(), eng["scroll_depth"].as_u64()),
        (Some(5300), Some(80))
    );
    assert_eq!(eng["props_keys"], serde_json::json!([]));
    let pl = row("gemeente.example.nl", "pageview", "/parkeren");
    assert_eq!(
        (pl["device"].as_str(), pl["browser"].as_str()),
        (Some("desktop"), Some("Chrome"))
    );
    let custom = row("www.example.org", "Signup", "/aanmelden");
    assert_eq!(custom["host"], "example.org");
    assert_eq!(custom["referrer_host"], "duckduckgo.com");
    // Only the allow-listed prop survives; the e-mail address is dropped.
    assert_eq!(custom["props_keys"], serde_json::json!(["plan"]));
    // An allow-listed value is kept with its personal data replaced, as a query value is.
    assert_eq!(
        custom["props_values"],
        serde_json::json!(["pro voor :email, :phone"])
    );
    row("www.example.org", "pageview", "/gedeeld");
    row("gemeente.example.nl", "pageview", "/gedeeld");

    // The same visitor (IP + UA) on one site has one id; different sites never share one.
    let ids = ch_rows(&format!(
        "SELECT site, uniqExact(visitor) AS n FROM {}.events WHERE site = 'www.example.org' AND device = 'mobile' GROUP BY site",
        t.db
    ))
    .await;
    assert_eq!(
        ids[0]["n"], "1",
        "pageview and engagement share the visitor id: {ids:?}"
    );
    let shared = ch_count(&format!(
        "SELECT count() FROM (SELECT visitor FROM {db}.events WHERE path = '/gedeeld' GROUP BY visitor)",
        db = t.db
    ))
    .await;
    assert_eq!(shared, 2, "one visitor on two sites gets two unrelated ids");

    let m = t.metrics().await;
    assert_eq!(metric(&m, "tally_events_accepted_total"), 6.0);
    assert_eq!(metric(&m, "tally_rows_inserted_total"), 6.0);
}

#[tokio::test]
async fn country_comes_from_either_database_layout() {
    for file in ["dbip-country.mmdb", "GeoLite2-Country.mmdb"] {
        let db_path = testdata(file);
        let setup = Setup::new("geo").with(&format!(
            "[privacy]\ncountry_database = {:?}\n",
            db_path.display().to_string()
        ));
        let t = setup.start().await;
        for (ip, path) in [
            ("193.0.6.139", "/nl"),
            ("2a00:1450:4001:80b::200e", "/de"),
            ("10.1.2.3", "/private"),
        ] {
            let body = format!(r#"{{"n":"pageview","u":"https://www.example.org{path}"}}"#);
            assert_eq!(t.browser_beacon(&body, CHROME, ip).await, 202);
        }
        assert_eq!(t.wait_rows(3).await, 3);
        let rows = ch_rows(&format!(
            "SELECT path, country FROM {}.events ORDER BY path",
            t.db
        ))
        .await;
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap().into(),
                    r["country"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/de".into(), "DE".into()),
                ("/nl".into(), "NL".into()),
                ("/private".into(), "".into())
            ],
            "{file}"
        );
    }
}

#[tokio::test]
async fn bots_are_answered_202_counted_and_not_stored() {
    let t = Setup::new("bots").start().await;
    let body = r#"{"n":"pageview","u":"https://www.example.org/"}"#;
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        headless,
        "curl/8.5.0",
        "",
    ] {
        let (s, _) = t.beacon(body, &[("user-agent", ua)]).await;
        assert_eq!(s, 202, "{ua}");
    }
    let (s, _) = t
        .beacon(body, &[("user-agent", CHROME), ("sec-purpose", "prefetch")])
        .await;
    assert_eq!(s, 202);
    // One real visitor, so we can tell "stored nothing" from "did not flush yet".
    assert_eq!(t.browser_beacon(body, CHROME, "8.8.8.8").await, 202);
    assert_eq!(t.wait_rows(1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", t.db)).await,
        1
    );
    let m = t.metrics().await;
    assert_eq!(
        metric(&m, "tally_bot_beacons_total{reason=\"known_pattern\"}"),
        3.0
    );
    assert_eq!(
        metric(&m, "tally_bot_beacons_total{reason=\"empty_user_agent\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "tally_bot_beacons_total{reason=\"prefetch\"}"),
        1.0
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_loses_nothing_else() {
    let t = Setup::new("bad").start().await;
    let good = r#"{"n":"pageview","u":"https://www.example.org/ok"}"#;
    assert_eq!(t.browser_beacon(good, CHROME, "8.8.8.8").await, 202);

    let huge = format!(
        r#"{{"n":"pageview","u":"https://www.example.org/","p":{{"x":"{}"}}}}"#,
        "a".repeat(20_000)
    );
    // (body, extra headers, expected status, expected reason)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("{not json".into(), vec![], 400, "malformed_json"),
        ("".into(), vec![], 400, "malformed_json"),
        (
            r#"{"u":"https://www.example.org/"}"#.into(),
            vec![],
            400,
            "missing_field",
        ),
        (r#"{"n":"pageview"}"#.into(), vec![], 400, "missing_field"),
        (
            r#"{"n":"pageview","u":"https://unknown.example.com/"}"#.into(),
            vec![],
            400,
            "unknown_site",
        ),
        (
            r#"{"n":"pageview","u":"https://www.example.org/","d":"other.example.com"}"#.into(),
            vec![],
            400,
            "unknown_site",
        ),
        (
            r#"{"n":"pageview","u":"ftp://www.example.org/"}"#.into(),
            vec![],
            400,
            "invalid_url",
        ),
        (
            r#"{"n":"pageview","u":"https://www.example.org/","zz":1}"#.into(),
            vec![],
            400,
            "unknown_field",
        ),
        (
            r#"{"n":"engagement","u":"https://www.example.org/","e":-5}"#.into(),
            vec![],
            400,
            "invalid_field",
        ),
        (
            r#"{"n":"pageview","u":"https://www.example.org/","w":"wide"}"#.into(),
            vec![],
            400,
            "invalid_field",
        ),
        (huge, vec![], 413, "body_too_large"),
        (
            good.into(),
            vec![("content-type", "application/x-www-form-urlencoded")],
            415,
            "unsupported_media_type",
        ),
    ];
    for (body, extra, status, reason) in &cases {
        let mut headers = vec![("user-agent", CHROME)];
        headers.extend(extra.iter().copied());
        let (s, text) = t.beacon(body, &headers).await;
        assert_eq!(s, *status, "body {:.80}", body);
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
        assert_eq!(json["error"], *reason, "body {:.80}", body);
    }
    // Invalid UTF-8 in the body.
    let r = reqwest::Client::new()
        .post(format!("{}/api/event", t.base))
        .header("user-agent", CHROME)
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Another visitor after all that is stored as usual.
    assert_eq!(t.browser_beacon(good, IPHONE, "193.0.6.139").await, 202);
    assert_eq!(t.wait_rows(2).await, 2);
    let m = t.metrics().await;
    assert_eq!(
        metric(
            &m,
            "tally_beacons_rejected_total{reason=\"malformed_json\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "tally_beacons_rejected_total{reason=\"body_too_large\"}"
        ),
        1.0
    );
    // Still alive and healthy.
    assert_eq!(
        reqwest::get(format!("{}/healthz", t.base))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn cors_answers_configured_sites_only_and_tracker_is_served_small() {
    let t = Setup::new("cors").start().await;
    let client = reqwest::Client::new();
    let pre = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/api/event", t.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = pre("https://www.example.org").await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://www.example.org"
    );
    let other = pre("https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let js = client
        .get(format!("{}/t.js", t.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(js.headers()["content-encoding"], "gzip");
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    assert!(js.headers().get("set-cookie").is_none());
    let gz = js.bytes().await.unwrap();
    // docs/tracker.md states the size; the budget leaves room for small fixes but not for a
    // feature: with the built-in events (issue 18) it was about 1.76 KB, with tagged elements,
    // window.plausible and data-manual (t.js in the place of Plausible's script) 2.25 KB.
    assert!(gz.len() < 2400, "tracker is {} bytes gzipped", gz.len());
}

/// Issue 16: `clickhouse.compression` (`auto` sends a server on loopback no LZ4, as this test
/// server is). Each setting must insert the same rows and read the same report back, so the
/// LZ4 path that a remote ClickHouse gets stays tested on this machine too.
#[tokio::test]
async fn issue_16_every_compression_setting_stores_and_reads_the_same() {
    let paths = ["/afval", "/parkeren", "/afval", "/paspoort"];
    for setting in ["lz4", "none", "auto"] {
        let mut setup = Setup::new("compression").with(&crate::reports::config());
        setup.clickhouse_extra = format!("compression = \"{setting}\"\n");
        let t = setup.start().await;
        for (i, path) in paths.iter().enumerate() {
            let body =
                format!(r#"{{"n":"pageview","u":"https://a.example{path}","d":"a.example"}}"#);
            let ip = format!("193.0.6.{}", 10 + i);
            assert_eq!(t.browser_beacon(&body, CHROME, &ip).await, 202, "{setting}");
        }
        assert_eq!(t.wait_rows(paths.len() as u64).await, 4, "{setting}");
        let stored = ch_rows(&format!(
            "SELECT path, browser FROM {}.events ORDER BY path",
            t.db
        ))
        .await;
        let stored: Vec<(&str, &str)> = stored
            .iter()
            .map(|r| (r["path"].as_str().unwrap(), r["browser"].as_str().unwrap()))
            .collect();
        assert_eq!(
            stored,
            [
                ("/afval", "Chrome"),
                ("/afval", "Chrome"),
                ("/parkeren", "Chrome"),
                ("/paspoort", "Chrome")
            ],
            "{setting}"
        );
        let (status, body) = crate::reports::post_query(
            &t.base,
            Some(crate::reports::FIXTURE_TOKEN),
            &serde_json::json!({
                "site_id": "a.example",
                "metrics": ["visitors", "pageviews"],
                "date_range": "all",
                "dimensions": ["event:page"],
            }),
        )
        .await;
        assert_eq!(status, 200, "{setting}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            answer["results"],
            serde_json::json!([
                {"dimensions": ["/afval"], "metrics": [2, 2]},
                {"dimensions": ["/parkeren"], "metrics": [1, 1]},
                {"dimensions": ["/paspoort"], "metrics": [1, 1]},
            ]),
            "{setting}"
        );
        t.terminate();
    }
}
