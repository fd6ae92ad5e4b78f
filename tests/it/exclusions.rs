//! `[[sites]] exclude_paths` and `include_paths` through the real collector, with a plain HTTP
//! client: beacons for excluded pages (or pages outside the included ones) are answered 202, not
//! stored, and counted in a metric without labels; other pages and other sites are stored as
//! before. And the tracker's built-in events (outbound link,
//! file download, 404) sent the same way: their `url` / `path` property is stored reduced, without
//! the site's `props_allowlist`. Nothing of an excluded path or an unreduced URL is left in any
//! column, the log or the metrics.

use crate::support::*;

const SITES: &str = "[[sites]]\ndomain = \"www.example.org\"\n\
                     exclude_paths = [\"/admin/**\", \"/account/*\"]\n\n\
                     [[sites]]\ndomain = \"shop.example.org\"\n";

/// Everything stored, as one text per row (every column).
async fn all_rows(db: &str) -> Vec<String> {
    ch(&format!("SELECT * FROM {db}.events FORMAT TSV"))
        .await
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sends each beacon as a browser from `ip` would; each must be answered 202 with no body.
async fn answered_202_empty(t: &Tally, ip: &str, bodies: &[&str]) {
    for body in bodies {
        let (status, answer) = t
            .beacon(
                body,
                &[
                    ("content-type", "text/plain"),
                    ("user-agent", CHROME),
                    ("x-forwarded-for", ip),
                ],
            )
            .await;
        assert_eq!((status, answer.as_str()), (202, ""), "{body}");
    }
}

#[tokio::test]
async fn excluded_pages_are_answered_202_not_stored_and_counted() {
    let setup = Setup::new("exclusions").with(SITES);
    let t = setup.start().await;
    let ip = "198.51.100.7";
    let excluded = [
        r#"{"n":"pageview","u":"https://www.example.org/admin/users/exclmarker0/edit?token=EXCLTOKEN1"}"#,
        r#"{"n":"pageview","u":"https://www.example.org/account/exclmarker.jansen@example.nl/"}"#,
        r#"{"n":"Signup","u":"https://www.example.org/account/exclmarker2","p":{"plan":"a"}}"#,
        r#"{"n":"engagement","u":"https://www.example.org/admin/exclmarker3","e":5000}"#,
        r#"{"n":"Outbound Link: Click","u":"https://www.example.org/admin/exclmarker4","p":{"url":"https://partner.example.net/"}}"#,
    ];
    answered_202_empty(&t, ip, &excluded).await;
    let stored = [
        // Not matched: `*` is one segment, `**` needs one, the hash route is no path.
        r#"{"n":"pageview","u":"https://www.example.org/account/jan/settings"}"#,
        r#"{"n":"pageview","u":"https://www.example.org/admin"}"#,
        r#"{"n":"pageview","u":"https://www.example.org/#/admin/x","h":1}"#,
        // Another site without exclusions stores its own copy of a multi-site beacon.
        r#"{"n":"pageview","u":"https://www.example.org/admin/both","d":"www.example.org,shop.example.org"}"#,
    ];
    for body in stored {
        assert_eq!(t.browser_beacon(body, CHROME, ip).await, 202, "{body}");
    }
    // Bad input is still refused first: an excluded path does not hide a wrong field.
    let (status, answer) = t
        .beacon(
            r#"{"n":"pageview","u":"https://www.example.org/admin/x","zzz":1}"#,
            &[("user-agent", CHROME)],
        )
        .await;
    assert_eq!(
        (status, answer.as_str()),
        (400, r#"{"error":"unknown_field"}"#)
    );

    assert_eq!(t.wait_rows(4).await, 4);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rows = ch_rows(&format!(
        "SELECT site, path FROM {}.events ORDER BY site, path",
        t.db
    ))
    .await;
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["site"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pair = |s: &str, p: &str| (s.to_string(), p.to_string());
    assert_eq!(
        got,
        vec![
            pair("shop.example.org", "/admin/both"),
            pair("www.example.org", "/#/admin/x"),
            pair("www.example.org", "/account/jan/settings"),
            pair("www.example.org", "/admin"),
        ]
    );

    // Counted once per excluded beacon (and per site that excluded it), without labels.
    let metrics = t.metrics().await;
    let lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("tally_beacons_excluded"))
        .collect();
    assert_eq!(lines, ["tally_beacons_excluded_total 6"], "{metrics}");
    assert_eq!(metric(&metrics, "tally_events_accepted_total"), 4.0);

    // Looked for everywhere: no trace of the excluded pages.
    let stored = all_rows(&t.db).await.join("\n");
    let logs = t.logs();
    for marker in ["exclmarker", "EXCLTOKEN1", "partner.example.net"] {
        assert!(!stored.contains(marker), "{marker} stored:\n{stored}");
        assert!(!logs.contains(marker), "{marker} logged");
        assert!(!metrics.contains(marker), "{marker} in metrics");
    }
}

#[tokio::test]
async fn with_include_paths_only_those_pages_are_stored() {
    let setup = Setup::new("inclusions").with(
        "[[sites]]\ndomain = \"www.example.org\"\n\
         include_paths = [\"/blog/**\", \"/\"]\nexclude_paths = [\"/blog/drafts/**\"]\n\n\
         [[sites]]\ndomain = \"shop.example.org\"\n",
    );
    let t = setup.start().await;
    let ip = "198.51.100.9";
    answered_202_empty(
        &t,
        ip,
        &[
            r#"{"n":"pageview","u":"https://www.example.org/contact/inclmarker0?email=jan%40example.nl"}"#,
            r#"{"n":"pageview","u":"https://www.example.org/blog"}"#,
            r#"{"n":"pageview","u":"https://www.example.org/blog/drafts/inclmarker1"}"#,
            r#"{"n":"Signup","u":"https://www.example.org/account/inclmarker2","p":{"plan":"a"}}"#,
            r#"{"n":"engagement","u":"https://www.example.org/contact/inclmarker3","e":5000}"#,
        ],
    )
    .await;
    for body in [
        r#"{"n":"pageview","u":"https://www.example.org/"}"#,
        r#"{"n":"pageview","u":"https://www.example.org/blog/first-post?utm_source=news"}"#,
        r#"{"n":"engagement","u":"https://www.example.org/blog/first-post","e":4000}"#,
        // The site without the lists stores its copy of a beacon the other site leaves out.
        r#"{"n":"pageview","u":"https://www.example.org/contact/both","d":"www.example.org,shop.example.org"}"#,
    ] {
        assert_eq!(t.browser_beacon(body, CHROME, ip).await, 202, "{body}");
    }
    assert_eq!(t.wait_rows(4).await, 4);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let got = ch(&format!(
        "SELECT site, name, path FROM {}.events ORDER BY site, path, name FORMAT TSV",
        t.db
    ))
    .await;
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "shop.example.org\tpageview\t/contact/both",
            "www.example.org\tpageview\t/",
            "www.example.org\tengagement\t/blog/first-post",
            "www.example.org\tpageview\t/blog/first-post",
        ]
    );
    let metrics = t.metrics().await;
    assert_eq!(metric(&metrics, "tally_beacons_excluded_total"), 6.0);
    assert_eq!(metric(&metrics, "tally_events_accepted_total"), 4.0);
    let stored = all_rows(&t.db).await.join("\n");
    let logs = t.logs();
    for marker in ["inclmarker", "/contact/inclmarker", "jan%40"] {
        assert!(!stored.contains(marker), "{marker} stored:\n{stored}");
        assert!(!logs.contains(marker), "{marker} logged");
        assert!(!metrics.contains(marker), "{marker} in metrics");
    }
}

#[tokio::test]
async fn builtin_event_props_are_stored_reduced_without_the_allow_list() {
    // The site allow-lists nothing: the built-in props are part of the feature.
    let setup = Setup::new("builtin_props");
    let t = setup.start().await;
    let page = "https://www.example.org/downloads";
    let beacons = [
        format!(
            r#"{{"n":"Outbound Link: Click","u":"{page}","p":{{"url":"https://Partner.Example.net:8443/offer/builtinmark.jansen@example.nl?utm_source=tally&email=jan%40example.nl&sid=BUILTINSID#BUILTINFRAG","who":"builtinwho"}}}}"#
        ),
        format!(
            r#"{{"n":"File Download","u":"{page}","p":{{"url":"https://www.example.org/files/98765432/report.pdf?session=BUILTINSESSION"}}}}"#
        ),
        r#"{"n":"404","u":"https://www.example.org/missing/0612345678","p":{"path":"/missing/0612345678"}}"#
            .to_string(),
        format!(r#"{{"n":"Form: Submission","u":"{page}?email=jan%40example.nl"}}"#),
        // Not a web address: the property is dropped, the click is still counted.
        format!(
            r#"{{"n":"Outbound Link: Click","u":"{page}","p":{{"url":"mailto:builtinmail@example.nl"}}}}"#
        ),
    ];
    for body in &beacons {
        assert_eq!(
            t.browser_beacon(body, CHROME, "198.51.100.8").await,
            202,
            "{body}"
        );
    }
    assert_eq!(t.wait_rows(5).await, 5);
    let rows = ch_rows(&format!(
        "SELECT name, path, query, props_keys, props_values FROM {}.events ORDER BY ts, micros",
        t.db
    ))
    .await;
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {}?{} {} {}",
                r["name"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["query"].as_str().unwrap(),
                r["props_keys"],
                r["props_values"]
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            r#"Outbound Link: Click /downloads? ["url"] ["https://partner.example.net/offer/:email?utm_source=tally"]"#,
            r#"File Download /downloads? ["url"] ["https://www.example.org/files/:number/report.pdf"]"#,
            r#"404 /missing/:phone? ["path"] ["/missing/:phone"]"#,
            r#"Form: Submission /downloads? [] []"#,
            r#"Outbound Link: Click /downloads? [] []"#,
        ]
    );
    let stored = all_rows(&t.db).await.join("\n");
    let logs = t.logs();
    for marker in [
        "builtinmark",
        "builtinwho",
        "BUILTINSID",
        "BUILTINSESSION",
        "98765432",
        "0612345678",
        "BUILTINFRAG",
        "builtinmail",
        "jan%40",
    ] {
        assert!(!stored.contains(marker), "{marker} stored:\n{stored}");
        assert!(!logs.contains(marker), "{marker} logged");
    }
}
