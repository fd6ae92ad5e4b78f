//! Real user-agent corpora from the registries (not in the repository): bot detection and
//! device classes measured on lists we did not write. Rates are printed and held to a floor.

use std::collections::HashSet;

use hyper::HeaderMap;
use tally::user_agent::Classifier;

use crate::support::testdata;

fn json(file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(testdata(file)).unwrap()).unwrap()
}

#[test]
fn crawler_corpus_is_recognised_as_bots() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let mut total = 0;
    let mut caught = 0;
    let mut missed = Vec::new();
    for entry in json("crawler-user-agents.json").as_array().unwrap() {
        for ua in entry["instances"].as_array().into_iter().flatten() {
            let ua = ua.as_str().unwrap();
            total += 1;
            if c.bot_reason(ua, &h).is_some() {
                caught += 1;
            } else {
                missed.push(ua.to_string());
            }
        }
    }
    let rate = caught as f64 / total as f64;
    println!(
        "crawler-user-agents: {caught}/{total} recognised as bots ({:.1}%)",
        rate * 100.0
    );
    for ua in missed.iter().take(10) {
        println!("  missed: {ua}");
    }
    assert!(total > 1000, "corpus too small: {total}");
    assert!(
        rate >= 0.95,
        "only {:.1}% of real crawler user agents recognised",
        rate * 100.0
    );
}

#[test]
fn real_browser_corpus_is_not_bots_and_device_classes_agree() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let mut seen = HashSet::new();
    let (mut total, mut flagged, mut agree, mut classified) = (0, 0, 0, 0);
    let mut disagreements = Vec::new();
    for row in json("user-agents.json").as_array().unwrap() {
        let ua = row["userAgent"].as_str().unwrap();
        if !seen.insert(ua.to_string()) {
            continue;
        }
        total += 1;
        if c.bot_reason(ua, &h).is_some() {
            flagged += 1;
            continue;
        }
        let expected = row["deviceCategory"].as_str().unwrap();
        let got = c.classify(ua).device;
        if !got.is_empty() {
            classified += 1;
            if got == expected {
                agree += 1;
            } else {
                disagreements.push(format!("{expected} → {got}: {ua}"));
            }
        }
    }
    let top: Vec<String> = serde_json::from_value(json("top-user-agents.json")).unwrap();
    let top_flagged = top
        .iter()
        .filter(|ua| c.bot_reason(ua, &h).is_some())
        .count();
    println!(
        "user-agents: {total} distinct, {flagged} flagged as bots, {classified} classified, {agree} agree on device ({:.1}%)",
        agree as f64 * 100.0 / classified.max(1) as f64
    );
    println!(
        "top-user-agents: {top_flagged}/{} flagged as bots",
        top.len()
    );
    for d in disagreements.iter().take(10) {
        println!("  {d}");
    }
    assert!(total > 500);
    assert!(
        flagged * 200 <= total,
        "more than 0.5% of real browsers flagged as bots: {flagged}/{total}"
    );
    assert_eq!(
        top_flagged, 0,
        "a top browser user agent was flagged as a bot"
    );
    assert!(
        classified * 100 >= total * 95,
        "fewer than 95% classified: {classified}/{total}"
    );
    assert!(
        agree * 100 >= classified * 95,
        "device class agreement below 95%: {agree}/{classified}"
    );
}
