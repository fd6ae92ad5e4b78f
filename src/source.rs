//! Traffic source of a page view: the UTM source, or the referrer host grouped by who runs it.
//!
//! A report of referrer hosts lists `www.google.com`, `www.google.nl`, `google.de`, … as
//! separate rows; the web team wants one "Google" row. This module names the search engines and
//! social networks that send most traffic to public-sector sites. Any other host is its own
//! source. The table is ours rather than a crate's: the referer-parser crates load a file at run
//! time and have not been updated in years, while this list is small, reviewed and tested here.

/// Stored when a page view has neither a UTM source nor a referrer.
pub const DIRECT: &str = "";

/// `(source name, host patterns)`. A pattern matches the host or any subdomain of it; a trailing
/// `.*` stands for any top-level domain, also two-level ones (`google.*` matches `google.co.uk`).
const SOURCES: &[(&str, &[&str])] = &[
    // Search engines and answer engines.
    ("Google", &["google.*", "googleusercontent.com"]),
    ("Bing", &["bing.com", "cn.bing.com"]),
    ("DuckDuckGo", &["duckduckgo.com"]),
    ("Yahoo!", &["yahoo.com", "yahoo.co.jp", "search.yahoo.*"]),
    ("Ecosia", &["ecosia.org"]),
    ("Yandex", &["yandex.*", "ya.ru"]),
    ("Baidu", &["baidu.com"]),
    ("Qwant", &["qwant.com"]),
    ("Startpage", &["startpage.com", "startpage.nl"]),
    ("Brave Search", &["search.brave.com"]),
    ("Kagi", &["kagi.com"]),
    ("Seznam", &["seznam.cz"]),
    ("Naver", &["naver.com"]),
    ("Perplexity", &["perplexity.ai"]),
    ("ChatGPT", &["chatgpt.com", "chat.openai.com"]),
    // Social networks and messengers.
    ("Facebook", &["facebook.com", "fb.com", "fb.me"]),
    ("Instagram", &["instagram.com"]),
    ("X", &["twitter.com", "x.com", "t.co"]),
    ("LinkedIn", &["linkedin.com", "lnkd.in"]),
    ("Reddit", &["reddit.com"]),
    ("YouTube", &["youtube.com", "youtu.be"]),
    ("Pinterest", &["pinterest.*"]),
    ("TikTok", &["tiktok.com"]),
    ("Threads", &["threads.net", "threads.com"]),
    ("Bluesky", &["bsky.app"]),
    ("WhatsApp", &["whatsapp.com", "wa.me"]),
    ("Telegram", &["t.me", "telegram.org"]),
    ("Hacker News", &["news.ycombinator.com"]),
    ("Wikipedia", &["wikipedia.org"]),
];

/// Second-level labels under which country domains register names (`google.co.uk`).
const SECOND_LEVEL: &[&str] = &["co", "com", "net", "org", "ac", "gov", "ne", "or"];

/// The source of a page view: its `utm_source` if set, else its referrer host's group name,
/// else the referrer host itself, else [`DIRECT`].
pub fn source(utm_source: &str, referrer_host: &str) -> String {
    if !utm_source.is_empty() {
        return utm_source.to_string();
    }
    if referrer_host.is_empty() {
        return DIRECT.to_string();
    }
    match group(referrer_host) {
        Some(name) => name.to_string(),
        None => referrer_host.to_string(),
    }
}

/// The group name of a referrer host, if it is one we know.
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
    SOURCES
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| matches(host, p)))
        .map(|(name, _)| *name)
}

fn matches(host: &str, pattern: &str) -> bool {
    match pattern.strip_suffix(".*") {
        // The host, or a subdomain of it: `….pattern` (compared in place, no copy per pattern).
        None => host
            .strip_suffix(pattern)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.')),
        Some(base) => {
            // Find `base.` at the start or after a dot, followed only by a TLD (or two labels).
            let mut start = 0;
            while let Some(i) = host[start..].find(base) {
                let at = start + i;
                let before_ok = at == 0 || host.as_bytes()[at - 1] == b'.';
                let rest = &host[at + base.len()..];
                if before_ok {
                    if let Some(tld) = rest.strip_prefix('.') {
                        let ok = match tld.split_once('.') {
                            None => is_label(tld),
                            Some((second, tld)) => {
                                !tld.contains('.')
                                    && SECOND_LEVEL.contains(&second)
                                    && is_label(tld)
                            }
                        };
                        if ok {
                            return true;
                        }
                    }
                }
                start = at + 1;
            }
            false
        }
    }
}

fn is_label(s: &str) -> bool {
    (2..=24).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
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
            "news.google.com",
        ] {
            assert_eq!(group(host), Some("Google"), "{host}");
        }
        assert_eq!(group("www.bing.com"), Some("Bing"));
        assert_eq!(group("duckduckgo.com"), Some("DuckDuckGo"));
        assert_eq!(group("l.facebook.com"), Some("Facebook"));
        assert_eq!(group("lm.facebook.com"), Some("Facebook"));
        assert_eq!(group("t.co"), Some("X"));
        assert_eq!(group("out.reddit.com"), Some("Reddit"));
        assert_eq!(group("nl.m.wikipedia.org"), Some("Wikipedia"));
        assert_eq!(group("WWW.Google.NL."), Some("Google"));
        assert_eq!(group("bing.com"), Some("Bing"));
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
            "google.a.b",
            "amsterdam.nl",
            "www.rijksoverheid.nl",
        ] {
            assert_eq!(group(host), None, "{host}");
        }
    }

    #[test]
    fn utm_source_wins_then_group_then_host_then_direct() {
        assert_eq!(source("newsletter", "www.google.com"), "newsletter");
        assert_eq!(source("", "www.google.com"), "Google");
        assert_eq!(source("", "www.amsterdam.nl"), "www.amsterdam.nl");
        assert_eq!(source("", ""), DIRECT);
    }
}
