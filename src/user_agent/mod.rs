//! User-agent reduction and bot detection: the full user agent is read here and never kept.
//!
//! Classification is woothee's (a maintained, table-driven parser shared across languages);
//! bot detection is the `isbot` pattern list, plus woothee's crawler category, an empty user
//! agent, and browser prefetch/preview headers. The only outputs are coarse classes.
//!
//! Both are regular-expression and substring work over the whole agent, the largest part of
//! ingest's own cost (about a fifth of a beacon's instructions, see BENCHMARKS.md "Ingest"),
//! while traffic repeats a few hundred agents. So the verdict for an agent is remembered in
//! [`Verdicts`], under a keyed 64-bit hash of it: the agent itself is not stored, the key is
//! random and lives only in this process, and the whole table is dropped (and its memory wiped
//! by the allocator) after an hour or 4,096 agents, whichever comes first.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::HeaderName;
use hyper::HeaderMap;

/// Most agents remembered at once; the table starts over when it is full.
const MAX_VERDICTS: usize = 4096;
/// Longest a table (and its hash key) is kept before it starts over.
const MAX_VERDICT_AGE: Duration = Duration::from_secs(3600);

/// What tally keeps of a user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    /// `desktop`, `mobile`, `tablet`, `other` or empty when unknown.
    pub device: &'static str,
    /// Browser family, e.g. `Chrome`, `Firefox`, `Safari`; empty when unknown.
    pub browser: String,
    /// Operating-system family, e.g. `Windows`, `Android`, `iOS`; empty when unknown.
    pub os: String,
}

/// Why a request was judged to come from a bot (the label of a metric, never the user agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotReason {
    EmptyUserAgent,
    KnownPattern,
    /// Not recognised as any browser: link previewers, HTTP libraries, monitors.
    NotABrowser,
    Prefetch,
}

impl BotReason {
    pub fn label(self) -> &'static str {
        match self {
            BotReason::EmptyUserAgent => "empty_user_agent",
            BotReason::KnownPattern => "known_pattern",
            BotReason::NotABrowser => "not_a_browser",
            BotReason::Prefetch => "prefetch",
        }
    }
}

/// The classifier: built once (the bot list compiles to one regular expression).
pub struct Classifier {
    bots: isbot::Bots,
    parser: woothee::parser::Parser,
    verdicts: Verdicts,
}

/// What [`Classifier::inspect`] answers for an agent, whatever the request's other headers.
type Verdict = Result<Classes, BotReason>;

/// Recent verdicts by keyed hash of the user agent (see the module docs).
struct Verdicts {
    table: Mutex<VerdictTable>,
}

struct VerdictTable {
    /// SipHash with random keys (std's `RandomState`); new keys with every new table.
    key: RandomState,
    by_hash: HashMap<u64, Verdict>,
    born: Instant,
}

impl VerdictTable {
    fn new() -> Self {
        Self {
            key: RandomState::new(),
            by_hash: HashMap::new(),
            born: Instant::now(),
        }
    }
}

impl Verdicts {
    fn new() -> Self {
        Self {
            table: Mutex::new(VerdictTable::new()),
        }
    }

    /// The remembered verdict for `user_agent`, or `decide`'s, remembered.
    fn get_or_insert(&self, user_agent: &str, decide: impl FnOnce() -> Verdict) -> Verdict {
        {
            let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = table.by_hash.get(&table.key.hash_one(user_agent)) {
                return v.clone();
            }
        }
        // Decided outside the lock: other beacons do not wait for the regular expressions.
        let verdict = decide();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.by_hash.len() >= MAX_VERDICTS || table.born.elapsed() > MAX_VERDICT_AGE {
            *table = VerdictTable::new();
        }
        // Hashed again: the table (and its key) may have been replaced meanwhile.
        let hash = table.key.hash_one(user_agent);
        table.by_hash.insert(hash, verdict.clone());
        verdict
    }
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    pub fn new() -> Self {
        let mut bots = isbot::Bots::default();
        // Automation and preview agents that are not in every list.
        bots.append(&[r"headlesschrome", r"phantomjs", r"lighthouse", r"pagespeed"]);
        Self {
            bots,
            parser: woothee::parser::Parser::new(),
            verdicts: Verdicts::new(),
        }
    }

    /// The one call ingest makes: the classes of a person's browser, or why this is a bot.
    /// The user agent is parsed once for both answers.
    pub fn inspect(&self, user_agent: &str, headers: &HeaderMap) -> Result<Classes, BotReason> {
        if is_prefetch(headers) {
            return Err(BotReason::Prefetch);
        }
        if user_agent.trim().is_empty() {
            return Err(BotReason::EmptyUserAgent);
        }
        self.verdicts
            .get_or_insert(user_agent, || self.decide(user_agent))
    }

    /// The verdict from the agent alone: bot lists first, then what the parser makes of it.
    fn decide(&self, user_agent: &str) -> Verdict {
        if self.bots.is_bot(user_agent) {
            return Err(BotReason::KnownPattern);
        }
        let parsed = self.parser.parse(user_agent);
        match &parsed {
            Some(r) if r.category == "crawler" => Err(BotReason::KnownPattern),
            // The tracker runs in a browser, and every browser names itself in a way the parser
            // knows (webviews included: they carry their engine's tokens). A user agent that
            // names no browser and no browser engine is a program, not a person.
            Some(r) if r.name != woothee::woothee::VALUE_UNKNOWN => {
                Ok(classes_of(parsed, user_agent))
            }
            _ if names_an_engine(user_agent) => Ok(classes_of(parsed, user_agent)),
            _ => Err(BotReason::NotABrowser),
        }
    }

    /// Returns why this request is a bot, or `None` for what looks like a person's browser.
    pub fn bot_reason(&self, user_agent: &str, headers: &HeaderMap) -> Option<BotReason> {
        self.inspect(user_agent, headers).err()
    }

    pub fn classify(&self, user_agent: &str) -> Classes {
        classes_of(self.parser.parse(user_agent), user_agent)
    }
}

fn classes_of(parsed: Option<woothee::parser::WootheeResult<'_>>, user_agent: &str) -> Classes {
    let Some(r) = parsed else {
        return Classes {
            device: "",
            browser: String::new(),
            os: String::new(),
        };
    };
    let device = match r.category {
        "pc" => "desktop",
        "smartphone" if is_tablet(r.os, user_agent) => "tablet",
        "smartphone" | "mobilephone" => "mobile",
        "appliance" => "other",
        _ => "",
    };
    Classes {
        device,
        browser: known(r.name),
        os: os_family(r.os),
    }
}

/// Browser or engine tokens every real browser and webview carries, even ones the parser cannot name.
fn names_an_engine(user_agent: &str) -> bool {
    [
        "AppleWebKit/",
        "Gecko/",
        "Trident/",
        "Presto/",
        "Goanna/",
        "Chrome/",
        "Firefox/",
        "Safari/",
    ]
    .iter()
    .any(|t| user_agent.contains(t))
}

/// iPads say `iPad`; Android tablets leave out the `Mobile` token that Android phones carry.
fn is_tablet(os: &str, user_agent: &str) -> bool {
    os == "iPad" || (os == "Android" && !user_agent.contains("Mobile"))
}

fn known(name: &str) -> String {
    if name == woothee::woothee::VALUE_UNKNOWN {
        String::new()
    } else {
        name.to_string()
    }
}

/// Folds woothee's OS names (which carry versions such as `Windows 10`) into families.
fn os_family(os: &str) -> String {
    let family = match os {
        _ if os.starts_with("Windows") => "Windows",
        "iPhone" | "iPad" | "iPod" => "iOS",
        "Mac OSX" => "macOS",
        "ChromeOS" => "ChromeOS",
        _ => return known(os),
    };
    family.to_string()
}

/// Chromium's `Sec-Purpose`/`Purpose` and Firefox's `X-Moz` mark speculative loads that no one saw.
/// (Names as constants: looking a header up by `&str` parses the name on every request.)
const PREFETCH_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("sec-purpose"),
    HeaderName::from_static("purpose"),
    HeaderName::from_static("x-purpose"),
    HeaderName::from_static("x-moz"),
];

fn is_prefetch(headers: &HeaderMap) -> bool {
    PREFETCH_HEADERS.iter().any(|name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.contains("prefetch") || v.contains("preview") || v.contains("prerender")
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
    const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";

    #[test]
    fn classes() {
        let c = Classifier::new();
        let w = c.classify(CHROME_WIN);
        assert_eq!(
            (w.device, w.browser.as_str(), w.os.as_str()),
            ("desktop", "Chrome", "Windows")
        );
        let i = c.classify(IPHONE);
        assert_eq!(
            (i.device, i.browser.as_str(), i.os.as_str()),
            ("mobile", "Safari", "iOS")
        );
        assert_eq!(c.classify(IPAD).device, "tablet");
        assert_eq!(c.classify(ANDROID_PHONE).device, "mobile");
        assert_eq!(c.classify(ANDROID_TABLET).device, "tablet");
        let f = c.classify(FIREFOX_LINUX);
        assert_eq!(
            (f.device, f.browser.as_str(), f.os.as_str()),
            ("desktop", "Firefox", "Linux")
        );
        assert_eq!(c.classify("nonsense").device, "");
    }

    #[test]
    fn bots() {
        let c = Classifier::new();
        let h = HeaderMap::new();
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "curl/8.5.0",
            "python-requests/2.32.3",
            HEADLESS,
        ] {
            assert_eq!(c.bot_reason(ua, &h), Some(BotReason::KnownPattern), "{ua}");
        }
        assert_eq!(c.bot_reason("", &h), Some(BotReason::EmptyUserAgent));
        for ua in [
            CHROME_WIN,
            IPHONE,
            IPAD,
            ANDROID_PHONE,
            ANDROID_TABLET,
            FIREFOX_LINUX,
        ] {
            assert_eq!(c.bot_reason(ua, &h), None, "{ua}");
        }
        // Asked again, from the remembered verdicts: the same answers.
        assert_eq!(c.bot_reason(HEADLESS, &h), Some(BotReason::KnownPattern));
        assert_eq!(c.bot_reason(IPHONE, &h), None);
        let mut prefetch = HeaderMap::new();
        prefetch.insert("sec-purpose", "prefetch;prerender".parse().unwrap());
        assert_eq!(
            c.bot_reason(CHROME_WIN, &prefetch),
            Some(BotReason::Prefetch)
        );
    }

    #[test]
    fn remembered_verdicts_equal_fresh_ones_and_the_table_is_bounded() {
        let c = Classifier::new();
        let h = HeaderMap::new();
        let agents: Vec<String> = (0..MAX_VERDICTS + 10)
            .map(|i| match i % 3 {
                0 => format!("{CHROME_WIN} x{i}"),
                1 => format!("curl/8.{i}.0"),
                _ => {
                    format!("Mozilla/5.0 (iPad; CPU OS 16_{i} like Mac OS X) AppleWebKit/605.1.15")
                }
            })
            .collect();
        for round in 0..2 {
            for ua in &agents {
                assert_eq!(c.inspect(ua, &h), c.decide(ua), "round {round}: {ua}");
            }
        }
        let table = c.verdicts.table.lock().unwrap();
        assert!(table.by_hash.len() <= MAX_VERDICTS);
        assert!(!table.by_hash.is_empty());
    }
}
