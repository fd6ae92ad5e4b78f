//! The privacy audit: known IPs, user agents and query strings go in through HTTP; then every
//! column of every table, and every log line at trace level, is searched for them.

use crate::support::*;

const IPS: [&str; 4] = [
    "193.0.6.139",
    "2a00:1450:4001:80b::200e",
    "203.0.113.77",
    "8.8.4.4",
];
/// User agents carrying a marker that could only come from the raw header.
const UAS: [&str; 2] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 UAMARKER-Zq81",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UAMARKER-Kx22) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
];
/// Values that appear only in query strings, fragments, referrer paths and unlisted props.
const SECRETS: [&str; 7] = [
    "jan.jansen@example.nl",
    "token-7f3a9c2e51",
    "SESSIONabc123",
    "fragsecret",
    "refpathsecret",
    "zoekterm-privé",
    "propsecret",
];

#[tokio::test]
async fn no_ip_user_agent_salt_or_query_string_in_any_table_or_log() {
    let country_db = testdata("dbip-country.mmdb");
    let setup = Setup::new("privacy").with(&format!(
        "[privacy]\ncountry_database = {:?}\n",
        country_db.display().to_string()
    ));
    let t = setup.start().await;
    let mut sent = 0;
    for (i, ip) in IPS.iter().enumerate() {
        let ua = UAS[i % UAS.len()];
        let pv = r#"{"n":"pageview","u":"https://www.example.org/zoeken?email=jan.jansen%40example.nl&token=token-7f3a9c2e51&utm_source=nieuwsbrief#fragsecret","r":"https://www.google.com/refpathsecret?q=zoekterm-priv%C3%A9","w":1280}"#;
        assert_eq!(t.browser_beacon(pv, ua, ip).await, 202);
        let custom = r#"{"name":"Download","url":"https://www.example.org/doc?sid=SESSIONabc123","domain":"www.example.org","props":{"who":"propsecret"}}"#;
        let (s, _) = t
            .beacon(
                custom,
                &[
                    ("content-type", "application/json"),
                    ("user-agent", ua),
                    ("x-forwarded-for", ip),
                ],
            )
            .await;
        assert_eq!(s, 202);
        // Personal data in the path itself, and in an allow-listed query value.
        let pii = r#"{"n":"pageview","u":"https://www.example.org/burger/123456782/iban/NL91ABNA0417164300/bel/0612345678/mail/piet.pietersen%40example.nl?utm_campaign=piet.pietersen%40example.nl","d":"www.example.org"}"#;
        assert_eq!(t.browser_beacon(pii, ua, ip).await, 202);
        sent += 1;
        // Socket peer path too (no proxy header): the loopback address must not appear either.
        assert_eq!(t.beacon(pv, &[("user-agent", ua)]).await.0, 202);
        sent += 3;
        // And a rejected one carrying the same data: errors must not echo it.
        let (s, body) = t
            .beacon(
                r#"{"n":"pageview","u":"https://unknown.example.com/?email=jan.jansen@example.nl"}"#,
                &[("user-agent", ua), ("x-forwarded-for", ip)],
            )
            .await;
        assert_eq!(s, 400);
        assert!(!body.contains("jan.jansen"), "{body}");
    }
    assert_eq!(t.wait_rows(sent).await, sent);

    // The salts, as stored, so we can look for them everywhere else.
    let salts: Vec<String> = ch(&format!("SELECT salt FROM {}.salts FORMAT TSV", t.db))
        .await
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!salts.is_empty());

    let (status, logs) = t.terminate();
    assert!(status.success());
    assert!(logs.lines().count() > 5, "trace logs were captured: {logs}");

    let mut needles: Vec<String> = IPS.iter().map(|s| s.to_string()).collect();
    needles.push("UAMARKER".into());
    needles.extend(SECRETS.iter().map(|s| s.to_string()));
    needles.push("jan.jansen%40example.nl".into());
    for pii in [
        "123456782",
        "NL91ABNA0417164300",
        "0612345678",
        "piet.pietersen",
    ] {
        needles.push(pii.into());
    }

    let tables = ch(&format!(
        "SELECT name FROM system.tables WHERE database = '{}'",
        setup.db
    ))
    .await;
    let mut searched = 0;
    for table in tables.lines() {
        let dump = ch(&format!(
            "SELECT * FROM {}.{table} FORMAT TabSeparated",
            setup.db
        ))
        .await;
        searched += 1;
        // Loopback was the socket peer of some beacons; the log may name it as tally's own
        // listen address, so it is looked for in tables only.
        for needle in needles.iter().map(String::as_str).chain(["127.0.0.1"]) {
            assert!(!dump.contains(needle), "{needle:?} found in table {table}");
        }
        if table != "salts" {
            for salt in &salts {
                assert!(
                    !dump.contains(salt.as_str()),
                    "a salt found in table {table}"
                );
            }
        }
    }
    assert_eq!(
        searched, 18,
        "events, events_minutes and events_by_hour (and their views), salts, schema_migrations, \
         rollup_daily, rollup_durations, rollup_pairs, rollup_page_seconds, rollup_days, visits, \
         visit_pages, visit_page_days, visit_slices, visit_carry, dashboard_sessions"
    );
    for needle in needles.iter().chain(salts.iter()) {
        assert!(
            !logs.contains(needle.as_str()),
            "{needle:?} found in the log"
        );
    }

    // What was kept: the allow-listed UTM source, the referrer host, the country.
    let kept = ch_rows(&format!(
        "SELECT DISTINCT path, query, referrer_host, country FROM {}.events WHERE name = 'pageview' AND path = '/zoeken' ORDER BY country",
        setup.db
    ))
    .await;
    assert!(
        kept.iter()
            .all(|r| r["query"] == "utm_source=nieuwsbrief" && r["path"] == "/zoeken"),
        "{kept:?}"
    );
    assert!(kept.iter().all(|r| r["referrer_host"] == "www.google.com"));
    let scrubbed = ch(&format!(
        "SELECT DISTINCT path, utm_campaign FROM {}.events WHERE path LIKE '/burger/%' FORMAT TSV",
        setup.db
    ))
    .await;
    assert_eq!(
        scrubbed.trim(),
        "/burger/:bsn/iban/:iban/bel/:phone/mail/:email\t:email"
    );
    let countries: Vec<&str> = kept
        .iter()
        .map(|r| r["country"].as_str().unwrap())
        .collect();
    assert!(
        countries.contains(&"NL") && countries.contains(&"DE"),
        "{countries:?}"
    );
}

/// Do Not Track and Global Privacy Control: honoured by default, so such beacons are answered
/// like any other (the page cannot tell) and nothing of them is stored; only a label-less count.
#[tokio::test]
async fn dnt_and_gpc_beacons_are_not_stored_unless_configured_otherwise() {
    let body = r#"{"n":"pageview","u":"https://www.example.org/dnt","d":"www.example.org"}"#;
    let send = |t: &Tally, header: &'static str| {
        let base_body = body.to_string();
        let t_base = t.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{t_base}/api/event"))
                .header("content-type", "text/plain")
                .header("user-agent", CHROME)
                .header("x-forwarded-for", "193.0.6.139")
                .header(header, "1")
                .body(base_body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    let setup = Setup::new("dnt");
    let t = setup.start().await;
    assert_eq!(send(&t, "dnt").await, 202);
    assert_eq!(send(&t, "sec-gpc").await, 202);
    // A normal beacon after them: once it is stored, the earlier two would have been too.
    assert_eq!(t.browser_beacon(body, CHROME, "8.8.8.8").await, 202);
    assert_eq!(t.wait_rows(1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", t.db)).await,
        1
    );
    let metrics = t.metrics().await;
    assert_eq!(metric(&metrics, "tally_beacons_not_tracked_total"), 2.0);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tally_beacons_not_tracked_total ")),
        "the count has no labels:\n{metrics}"
    );

    let setup = Setup::new("dnt_off").with("[privacy]\nhonor_dnt = false\n");
    let t = setup.start().await;
    assert_eq!(send(&t, "dnt").await, 202);
    assert_eq!(send(&t, "sec-gpc").await, 202);
    assert_eq!(
        t.wait_rows(1).await,
        1,
        "DNT not honoured: stored; GPC still honoured"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        ch_count(&format!("SELECT count() FROM {}.events", t.db)).await,
        1
    );
}

/// The privacy report at `GET /privacy`: token required; built from the live config; shows the
/// salt's age and never the salt.
#[tokio::test]
async fn privacy_report_is_live_authenticated_and_never_shows_a_salt() {
    use sha2::Digest;
    let token = "officer-token";
    let setup = Setup::new("report").with(&format!(
        "[[api_tokens]]\nname = \"privacy officer\"\nsha256 = \"{}\"\n\
         [privacy]\nquery_allowlist = [\"utm_source\", \"page\"]\n\
         [[sites]]\ndomain = \"www.example.org\"\nprops_allowlist = [\"theme\"]\n",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    ));
    let t = setup.start().await;
    let get = |auth: Option<&'static str>, accept: &'static str| {
        let url = format!("{}/privacy", t.base);
        async move {
            let mut req = reqwest::Client::new().get(url).header("accept", accept);
            if let Some(a) = auth {
                req = req.bearer_auth(a);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get(None, "text/markdown").await.0, 401);
    assert_eq!(get(Some("wrong"), "text/markdown").await.0, 401);

    let (status, md) = get(Some(token), "text/markdown").await;
    assert_eq!(status, 200, "{md}");
    let flags = md.find("more than the defaults").expect("flags section");
    assert!(
        flags < md.find("What is stored per event").unwrap(),
        "flags first"
    );
    assert!(
        md.contains("keeps query parameters beyond the defaults: page"),
        "{md}"
    );
    assert!(md.contains("stores custom properties: theme"), "{md}");
    assert!(
        md.contains("| `visitor` |") && md.contains("3 days"),
        "{md}"
    );
    assert!(md.contains("Today's salt was created"), "{md}");

    let (status, json) = get(Some(token), "application/json").await;
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        report["visitor_hash"]["current_salt_age_seconds"]
            .as_i64()
            .unwrap()
            >= 0
    );
    assert_eq!(report["storage"]["database"], t.db.as_str());

    // No salt, in any form the store holds it, appears in either answer.
    let salts = ch_rows(&format!("SELECT salt FROM {}.salts", t.db)).await;
    assert!(!salts.is_empty());
    for s in salts {
        let hex = s["salt"].as_str().unwrap();
        assert!(
            !md.contains(hex) && !json.contains(hex),
            "a salt leaked into the report"
        );
    }
}

/// The report follows the behaviour: with a weaker setting the report says so and the stored
/// data changes accordingly; with the defaults, neither.
#[tokio::test]
async fn the_report_and_the_stored_data_follow_the_settings() {
    use sha2::Digest;
    let token = "report-token";
    let tokens = format!(
        "[[api_tokens]]\nname = \"officer\"\nsha256 = \"{}\"\n",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    );
    let weaker = "[privacy]\nquery_allowlist = [\"utm_source\", \"page\"]\nhonor_gpc = false\n\
                  [retention]\nraw_days = 40\n";
    let beacon = r#"{"n":"pageview","u":"https://www.example.org/lijst?page=2&utm_source=x","d":"www.example.org"}"#;
    for (name, extra, weak) in [
        ("report_default", "", false),
        ("report_weaker", weaker, true),
    ] {
        let setup = Setup::new(name).with(&tokens).with(extra);
        let t = setup.start().await;
        let report = reqwest::Client::new()
            .get(format!("{}/privacy", t.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let flagged = [
            "keeps query parameters beyond the defaults: page",
            "Global Privacy Control are stored",
            "retention.raw_days = 40",
        ];
        for f in flagged {
            assert_eq!(
                report.contains(f),
                weak,
                "{name}: {f:?} in report:\n{report}"
            );
        }
        assert_eq!(report.contains("| 40 days (raw events) |"), weak, "{name}");
        // A plain beacon and one with GPC set.
        assert_eq!(t.browser_beacon(beacon, CHROME, "193.0.6.139").await, 202);
        let r = reqwest::Client::new()
            .post(format!("{}/api/event", t.base))
            .header("user-agent", CHROME)
            .header("x-forwarded-for", "8.8.8.8")
            .header("sec-gpc", "1")
            .body(beacon)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let expected_rows = if weak { 2 } else { 1 };
        assert_eq!(t.wait_rows(expected_rows).await, expected_rows, "{name}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let queries = ch(&format!(
            "SELECT DISTINCT query FROM {}.events FORMAT TSV",
            t.db
        ))
        .await;
        let want = if weak {
            "page=2&utm_source=x"
        } else {
            "utm_source=x"
        };
        assert_eq!(queries.trim(), want, "{name}");
        assert_eq!(
            ch_count(&format!("SELECT count() FROM {}.events", t.db)).await,
            expected_rows,
            "{name}: GPC beacon stored only when not honoured"
        );
    }
}
