//! Personal data in URLs (issue 6): real-format samples made by Faker at test time (not in the
//! repository) must be replaced by placeholders, real-looking paths must survive, and the
//! whole chain (HTTP beacon → stored row) applies the built-in scrubbing and site rewrite rules.

use serde_json::Value;

use crate::support::*;

/// The stored path of `https://www.example.org/x/<sample>` after ingest's URL reduction.
fn reduced(sample: &str) -> String {
    let url = format!("https://www.example.org/x/{sample}");
    tally::page_url::reduce_page(&url, &[], false)
        .map(|p| p.path)
        .unwrap_or_else(|_| panic!("{url} is a valid URL"))
}

#[test]
fn faker_personal_data_is_scrubbed_and_ordinary_paths_survive() {
    let samples: Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("pii-samples.json")).unwrap())
            .unwrap();
    let mut report = Vec::new();
    let mut missed = Vec::new();
    for (class, list) in samples.as_object().unwrap() {
        let list = list.as_array().unwrap();
        let mut ok = 0;
        for s in list {
            let s = s.as_str().unwrap();
            let path = reduced(s);
            // A placeholder anywhere: `Pmg-:token` keeps a short piece before a separator.
            let scrubbed = [
                ":email", ":bsn", ":iban", ":phone", ":uuid", ":token", ":number",
            ]
            .iter()
            .any(|p| path.contains(p));
            let leaked = path.to_lowercase().contains(&s.to_lowercase());
            if class == "keep" {
                if scrubbed {
                    missed.push(format!("keep {s:?} became {path:?}"));
                } else {
                    ok += 1;
                }
            } else if scrubbed && !leaked {
                ok += 1;
            } else {
                missed.push(format!("{class} {s:?} stayed {path:?}"));
            }
        }
        report.push(format!("{class}: {ok}/{}", list.len()));
    }
    println!("{}", report.join(", "));
    assert!(
        missed.is_empty(),
        "{} misses:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

#[tokio::test]
async fn urls_are_scrubbed_and_rewritten_before_they_are_stored() {
    let setup = Setup::new("scrub").with(
        "[[sites]]\ndomain = \"www.example.org\"\n\
         rewrite = [{ pattern = \"/zaken/*\", replacement = \"/zaken/:id\" }]\n",
    );
    let t = setup.start().await;
    let pages = [
        ("/burger/123456782", "/burger/:bsn"),
        ("/contact/jan.jansen%40gmail.com", "/contact/:email"),
        ("/iban/NL91ABNA0417164300", "/iban/:iban"),
        ("/bel/0612345678", "/bel/:phone"),
        ("/zaken/Z-2026-0042", "/zaken/:id"),
        ("/afval/2026", "/afval/2026"),
    ];
    for (path, _) in pages {
        let body = format!(
            r#"{{"n":"pageview","u":"https://www.example.org{path}?utm_campaign=jan%40example.nl","d":"www.example.org","r":"https://jan-123456782.example.net/"}}"#
        );
        assert_eq!(t.browser_beacon(&body, CHROME, "193.0.6.139").await, 202);
    }
    assert_eq!(t.wait_rows(pages.len() as u64).await, pages.len() as u64);
    let rows = ch_rows(&format!(
        "SELECT path, query, utm_campaign, referrer_host FROM {}.events ORDER BY path",
        t.db
    ))
    .await;
    let mut stored: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
    stored.sort();
    let mut expected: Vec<&str> = pages.iter().map(|(_, p)| *p).collect();
    expected.sort();
    assert_eq!(stored, expected);
    for r in &rows {
        assert_eq!(r["utm_campaign"], ":email", "{r}");
        assert_eq!(
            r["referrer_host"], "",
            "a personal referrer host is dropped: {r}"
        );
    }
}
