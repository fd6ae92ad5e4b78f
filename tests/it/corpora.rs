//! Real user-agent corpora from the npm registry (fetched at test time by scripts/testdata.sh,
//! not in the repository): bot verdicts and device classes measured on lists tally's data did
//! not come from. The rates are printed (docs/user-agents.md quotes them) and held to the
//! floors of issue 15.

use std::collections::{BTreeMap, HashSet};

use hyper::HeaderMap;
use tally::user_agent::{rules_compile_time, Classifier};

use crate::support::testdata;

fn json(file: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(testdata(file)).unwrap()).unwrap()
}

fn pct(part: usize, whole: usize) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// `crawler-user-agents`: the example agents of every crawler, monitor, scanner, previewer and
/// HTTP library it lists. At least 99 % must be rejected.
#[test]
fn crawler_corpus_is_rejected() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let (mut total, mut caught) = (0, 0);
    let mut by_reason = BTreeMap::new();
    let mut missed = Vec::new();
    for entry in json("crawler-user-agents.json").as_array().unwrap() {
        for ua in entry["instances"].as_array().into_iter().flatten() {
            let ua = ua.as_str().unwrap();
            total += 1;
            match c.bot_reason(ua, &h) {
                Some(reason) => {
                    caught += 1;
                    *by_reason.entry(reason.label()).or_insert(0) += 1;
                }
                None => missed.push(format!("{}: {ua}", entry["pattern"])),
            }
        }
    }
    println!(
        "crawler-user-agents: {caught} of {total} rejected ({:.2} %), by reason {by_reason:?}",
        pct(caught, total)
    );
    for ua in &missed {
        println!("  kept: {ua}");
    }
    assert!(total > 1000, "corpus too small: {total}");
    assert!(
        caught * 100 >= total * 99,
        "only {:.2} % of the crawler corpus rejected",
        pct(caught, total)
    );
}

/// `top-user-agents`: the most common browsers. None may be rejected.
#[test]
fn top_browsers_are_all_kept() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let top: Vec<String> = serde_json::from_value(json("top-user-agents.json")).unwrap();
    let rejected: Vec<&String> = top
        .iter()
        .filter(|ua| c.bot_reason(ua, &h).is_some())
        .collect();
    let mut browsers = BTreeMap::new();
    for ua in &top {
        *browsers.entry(c.classify(ua).browser).or_insert(0) += 1;
    }
    println!(
        "top-user-agents: {} of {} rejected; browsers {browsers:?}",
        rejected.len(),
        top.len()
    );
    assert!(top.len() >= 50, "corpus too small: {}", top.len());
    assert!(rejected.is_empty(), "top browsers rejected: {rejected:#?}");
    // Nearly all are named (one of the list is a bare `Mozilla/5.0 (…) AppleWebKit/537.36`).
    let unnamed = browsers.get("").copied().unwrap_or(0);
    assert!(unnamed * 20 <= top.len(), "unnamed: {browsers:?}");
}

/// `user-agents`: real browsers' agents with the device category the browser itself reported.
/// At least 99 % kept, and the device class agrees with the corpus for at least 98 % of them.
#[test]
fn real_browsers_are_kept_and_device_classes_agree() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let mut seen = HashSet::new();
    let (mut total, mut rejected, mut agree) = (0, 0, 0);
    let mut disagreements = Vec::new();
    let mut browsers = BTreeMap::new();
    let mut oses = BTreeMap::new();
    for row in json("user-agents.json").as_array().unwrap() {
        let ua = row["userAgent"].as_str().unwrap();
        if !seen.insert(ua.to_string()) {
            continue;
        }
        total += 1;
        let classes = match c.inspect(ua, &h) {
            Ok(classes) => classes,
            Err(reason) => {
                rejected += 1;
                println!("  rejected ({}): {ua}", reason.label());
                continue;
            }
        };
        let expected = row["deviceCategory"].as_str().unwrap();
        if classes.device == expected {
            agree += 1;
        } else {
            disagreements.push(format!("{expected} → {:?}: {ua}", classes.device));
        }
        *browsers.entry(classes.browser).or_insert(0) += 1;
        *oses.entry(classes.os).or_insert(0) += 1;
    }
    let kept = total - rejected;
    println!(
        "user-agents: {total} distinct agents, {kept} kept ({:.2} %), device class agrees for {agree} of {kept} ({:.2} %)",
        pct(kept, total),
        pct(agree, kept)
    );
    println!("  browsers {browsers:?}");
    println!("  operating systems {oses:?}");
    for d in disagreements.iter().take(20) {
        println!("  device {d}");
    }
    assert!(total > 500, "corpus too small: {total}");
    assert!(
        kept * 100 >= total * 99,
        "only {:.2} % of real browsers kept",
        pct(kept, total)
    );
    assert!(
        agree * 100 >= kept * 98,
        "device class agrees for only {:.2} %",
        pct(agree, kept)
    );
    // Phones' in-app browsers are one "Mobile App" row, and no row is a raw engine name.
    assert!(
        !browsers.contains_key("Chrome Mobile WebView"),
        "{browsers:?}"
    );
    assert!(
        !oses.contains_key("Mac OS X") && !oses.contains_key("Linux"),
        "{oses:?}"
    );
}

/// Start-up cost: compiling the bot patterns and the browser/OS rules (done once per process).
/// Printed as wall time and as this thread's CPU time, which a busy machine does not inflate.
#[test]
fn rules_compile_time_is_reported() {
    // Once to warm the allocator and page in the data, then the figure.
    rules_compile_time();
    let cpu_before = thread_cpu_ms();
    let took = rules_compile_time();
    let cpu = thread_cpu_ms().zip(cpu_before).map(|(a, b)| a - b);
    println!(
        "user-agent rules compiled in {} ms ({} ms of CPU; this build's own code is unoptimised, release is faster)",
        took.as_millis(),
        cpu.map_or("?".to_string(), |c| c.to_string())
    );
    assert!(took.as_secs() < 30, "compiling the rules took {took:?}");
}

/// This thread's user + system CPU time in ms, from /proc (Linux counts it in 1/100 s).
fn thread_cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}
