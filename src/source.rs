//! Traffic source of a page view: a source tag in the page URL, or the referrer host grouped
//! by who runs it, from a maintained referrer list.
//!
//! A report of referrer hosts lists `www.google.com`, `www.google.nl`, `google.de`, … as
//! separate rows; the web team wants one "Google" row. The names come from Ghost's referrer
//! list (`data/referrers.json`: search engines, social networks, e-mail providers; derived
//! from Snowplow's list, which Plausible also uses, so the names agree), plus tally's own
//! `data/sources-extra.tsv` (AI assistants and hosts the list lacks, and Plausible's names
//! where the list's differ). `docs/user-agents.md` says why these lists and how to refresh them.
//! Any other host is its own source.
//!
//! Both files are compiled in and read once, into one hash map from host to name; a referrer
//! host is then looked up with its subdomains taken off one at a time (`l.facebook.com`,
//! `facebook.com`), a few map look-ups per page view.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// Stored when a page view has neither a source tag nor a referrer.
pub const DIRECT: &str = "";

/// The maintained list: `host → {source, medium}` (`medium` is search, social, email, …).
const REFERRERS: &str = include_str!("../data/referrers.json");
/// tally's additions and renames (see the file's header).
const EXTRA: &str = include_str!("../data/sources-extra.tsv");

/// The query parameters that name a source, in the order Plausible reads them.
pub const TAG_PARAMS: [&str; 3] = ["utm_source", "source", "ref"];

/// The source of a page view: its source tag (the first non-empty of [`TAG_PARAMS`], see
/// [`tag`]) if set, spelled as a known source when it names one (`google` → `Google`), else
/// its referrer host's group name, else the referrer host itself, else [`DIRECT`].
pub fn source(tag: &str, referrer_host: &str) -> String {
    if !tag.is_empty() {
        return canonical(tag).map_or_else(|| tag.to_string(), str::to_string);
    }
    if referrer_host.is_empty() {
        return DIRECT.to_string();
    }
    match group(referrer_host) {
        Some(name) => name.to_string(),
        None => referrer_host.to_string(),
    }
}

/// The source tag among a page's `utm_source`, `source` and `ref` values (in that order,
/// as [`TAG_PARAMS`]): the first that is not empty.
pub fn tag(values: [&str; 3]) -> &str {
    values.into_iter().find(|v| !v.is_empty()).unwrap_or("")
}

/// The group name of a referrer host, if it is one we know: the host or its nearest parent
/// domain in the table (`nl.search.yahoo.com` → `search.yahoo.com` → "Yahoo!").
pub fn group(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.');
    // Referrer hosts arrive lower-cased (`page_url`); only others pay for a lower-case copy.
    let lower;
    let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = host.to_ascii_lowercase();
        lower.as_str()
    } else {
        host
    };
    let table = &*TABLE;
    let mut rest = host;
    loop {
        if let Some(&i) = table.hosts.get(rest) {
            return Some(table.names[i].as_str());
        }
        // The parent domain, but never a bare top-level domain (`com`).
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return None,
        }
    }
}

/// The known source a tag names, ignoring case (`google`, `GOOGLE` → `Google`); also the
/// list's old names of renamed sources (`twitter` → `X (Twitter)`).
fn canonical(tag: &str) -> Option<&'static str> {
    let table = &*TABLE;
    let i = if tag.bytes().any(|b| b.is_ascii_uppercase()) {
        table.by_name.get(tag.to_ascii_lowercase().as_str())
    } else {
        table.by_name.get(tag)
    };
    i.map(|&i| table.names[i].as_str())
}

static TABLE: LazyLock<Table> = LazyLock::new(Table::load);

struct Table {
    /// Host (lower case, no path) → index into `names`.
    hosts: HashMap<String, usize>,
    /// Lower-cased name (and old names of renamed ones) → index into `names`.
    by_name: HashMap<String, usize>,
    names: Vec<String>,
}

#[derive(Deserialize)]
struct Referrer {
    source: String,
}

impl Table {
    /// Both files are part of the binary and tested, so a failure here is a bad refresh of
    /// `data/`; it is logged and the affected list left out rather than stopping ingest.
    fn load() -> Table {
        let referrers: HashMap<String, Referrer> =
            serde_json::from_str(REFERRERS).unwrap_or_else(|e| {
                tracing::error!(error = %e, "data/referrers.json is not valid: referrers are not grouped");
                HashMap::new()
            });
        Self::build(referrers, EXTRA)
    }

    fn build(referrers: HashMap<String, Referrer>, extra: &str) -> Table {
        let mut renames = HashMap::new();
        let mut own = Vec::new();
        for line in extra.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["host", host, name] => own.push((host.to_ascii_lowercase(), *name)),
                ["rename", old, new] => {
                    renames.insert(*old, *new);
                }
                _ if line.trim().is_empty() || line.starts_with('#') => {}
                _ => tracing::error!(line, "data/sources-extra.tsv: line not understood"),
            }
        }
        let mut table = Table {
            hosts: HashMap::new(),
            by_name: HashMap::new(),
            names: Vec::new(),
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut intern = |name: &str, table: &mut Table| -> usize {
            *index.entry(name.to_string()).or_insert_with(|| {
                table.names.push(name.to_string());
                table.names.len() - 1
            })
        };
        for (key, r) in &referrers {
            // Entries with a path (`google.com/imgres`) need the referrer's path, which tally
            // never keeps; the host's own entry names the source.
            if key.contains('/') {
                continue;
            }
            let name = renames.get(r.source.as_str()).copied().unwrap_or(&r.source);
            let i = intern(name, &mut table);
            table.hosts.insert(key.to_ascii_lowercase(), i);
        }
        for (host, name) in own {
            let i = intern(name, &mut table);
            table.hosts.insert(host, i);
        }
        for (i, name) in table.names.iter().enumerate() {
            table.by_name.insert(name.to_lowercase(), i);
        }
        for (old, new) in renames {
            if let Some(&i) = index.get(new) {
                table.by_name.entry(old.to_lowercase()).or_insert(i);
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_engines_are_grouped_across_country_domains() {
        for host in [
            "www.google.com",
            "www.google.nl",
            "google.de",
            "www.google.co.uk",
            "www.google.com.br",
            "WWW.Google.NL.",
        ] {
            assert_eq!(group(host), Some("Google"), "{host}");
        }
        assert_eq!(group("www.bing.com"), Some("Bing"));
        assert_eq!(group("bing.com"), Some("Bing"));
        assert_eq!(group("duckduckgo.com"), Some("DuckDuckGo"));
        assert_eq!(group("www.ecosia.org"), Some("Ecosia"));
        assert_eq!(group("nl.search.yahoo.com"), Some("Yahoo!"));
        assert_eq!(group("yandex.ru"), Some("Yandex"));
    }

    #[test]
    fn social_networks_and_messengers_are_grouped() {
        assert_eq!(group("l.facebook.com"), Some("Facebook"));
        assert_eq!(group("lm.facebook.com"), Some("Facebook"));
        assert_eq!(group("l.instagram.com"), Some("Instagram"));
        assert_eq!(group("out.reddit.com"), Some("Reddit"));
        assert_eq!(group("www.linkedin.com"), Some("LinkedIn"));
        assert_eq!(group("lnkd.in"), Some("LinkedIn"));
        assert_eq!(group("bsky.app"), Some("Bluesky"));
        assert_eq!(group("news.ycombinator.com"), Some("Hacker News"));
        assert_eq!(group("nl.m.wikipedia.org"), Some("Wikipedia"));
        assert_eq!(group("wa.me"), Some("WhatsApp"));
        assert_eq!(group("www.tiktok.com"), Some("TikTok"));
    }

    /// Issue 15: the list's names where Plausible reports another, so a filter written for
    /// Plausible (`visit:source is "X (Twitter)"`) matches here too.
    #[test]
    fn issue_15_plausible_names() {
        assert_eq!(group("t.co"), Some("X (Twitter)"));
        assert_eq!(group("twitter.com"), Some("X (Twitter)"));
        assert_eq!(group("x.com"), Some("X (Twitter)"));
        assert_eq!(group("search.brave.com"), Some("Brave"));
        assert_eq!(source("twitter", ""), "X (Twitter)");
    }

    /// Issue 15: e-mail on the web is a source of its own, not the provider's search engine.
    #[test]
    fn issue_15_email_providers() {
        assert_eq!(group("mail.google.com"), Some("Gmail"));
        assert_eq!(group("com.google.android.gm"), Some("Gmail"));
        assert_eq!(group("outlook.live.com"), Some("Outlook.com"));
        assert_eq!(group("mail.yahoo.com"), Some("Yahoo! Mail"));
        assert_eq!(group("outlook.office.com"), Some("Outlook.com"));
        assert_eq!(group("mail.proton.me"), Some("Proton Mail"));
    }

    /// Issue 15: AI assistants, which the maintained list does not have yet.
    #[test]
    fn issue_15_ai_assistants() {
        assert_eq!(group("chatgpt.com"), Some("ChatGPT"));
        assert_eq!(group("chat.openai.com"), Some("ChatGPT"));
        assert_eq!(group("www.perplexity.ai"), Some("Perplexity"));
        assert_eq!(group("claude.ai"), Some("Claude"));
        assert_eq!(group("gemini.google.com"), Some("Google Gemini"));
        assert_eq!(group("copilot.microsoft.com"), Some("Microsoft Copilot"));
        // The more specific host wins over its parent's group.
        assert_eq!(group("www.google.com"), Some("Google"));
    }

    #[test]
    fn look_alikes_are_not_grouped() {
        for host in [
            "notgoogle.com",
            "google.example.org",
            "mygoogle.nl",
            "facebook.com.evil.net",
            "tt.co",
            "xbing.com",
            "google.co.uk.example",
            "amsterdam.nl",
            "www.rijksoverheid.nl",
            "com",
            "",
        ] {
            assert_eq!(group(host), None, "{host}");
        }
    }

    #[test]
    fn tag_wins_then_group_then_host_then_direct() {
        assert_eq!(source("newsletter", "www.google.com"), "newsletter");
        assert_eq!(source("", "www.google.com"), "Google");
        assert_eq!(source("", "www.amsterdam.nl"), "www.amsterdam.nl");
        assert_eq!(source("", ""), DIRECT);
        // A tag naming a known source is spelled as that source.
        assert_eq!(source("google", ""), "Google");
        assert_eq!(source("FACEBOOK", "t.co"), "Facebook");
    }

    /// Issue 15: `?ref=` and `?source=` count as a source, after `utm_source` (Plausible's
    /// order); `?ref=nieuwsbrief` was Direct / None before.
    #[test]
    fn issue_15_ref_and_source_parameters() {
        assert_eq!(tag(["", "", "nieuwsbrief"]), "nieuwsbrief");
        assert_eq!(source(tag(["", "", "nieuwsbrief"]), ""), "nieuwsbrief");
        assert_eq!(tag(["", "partner", "nieuwsbrief"]), "partner");
        assert_eq!(tag(["mail", "partner", "nieuwsbrief"]), "mail");
        assert_eq!(tag(["", "", ""]), "");
    }

    #[test]
    fn the_shipped_lists_load_completely() {
        let referrers: HashMap<String, Referrer> = serde_json::from_str(REFERRERS).unwrap();
        let with_host_only = referrers.keys().filter(|k| !k.contains('/')).count();
        let table = &*TABLE;
        // Every host entry of the list is in the table (own entries may replace a few).
        assert!(table.hosts.len() >= with_host_only, "{}", table.hosts.len());
        assert!(with_host_only > 1500, "{with_host_only}");
        // Every line of the own file was understood.
        for line in EXTRA.lines() {
            let understood = line.starts_with('#')
                || line.trim().is_empty()
                || matches!(line.split('\t').next(), Some("host" | "rename"))
                    && line.split('\t').count() == 3;
            assert!(understood, "{line}");
        }
    }
}
