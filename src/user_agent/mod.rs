//! User-agent reduction and bot detection: the full user agent is read here and never kept.
//!
//! The verdict for an agent is a person's browser with its coarse classes, or the reason it is
//! a program. Both come from maintained data shipped in `data/` (`docs/user-agents.md` says
//! which, why, and how they are refreshed and measured):
//! - bots: the npm `isbot` pattern list plus a few of tally's own (`bots`);
//! - browser, OS and device: the ua-parser project's regexes, named as Plausible names them
//!   (`classes`);
//! - what neither recognises and that names no browser engine, and the text browsers that
//!   cannot run the tracker, are "not a browser" (see [`Classifier::decide`]).
//!
//! The rules are compiled once per process (about a tenth of a second, logged at start) and
//! shared; the verdicts of recently seen agents are remembered under a keyed hash
//! (`verdicts`), so an agent's regular-expression work is done once per hour at most.

mod bots;
mod classes;
mod verdicts;

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use hyper::header::HeaderName;
use hyper::HeaderMap;

use bots::BotPatterns;
use classes::{Parser, Reading};
use verdicts::Verdicts;

/// What tally keeps of a user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    /// `desktop`, `mobile`, `tablet`, `other` or empty when unknown.
    pub device: &'static str,
    /// Browser name as Plausible reports it, e.g. `Chrome`, `Safari`, `Microsoft Edge`,
    /// `Samsung Browser`, `Mobile App` (in-app browsers); empty when unknown. Shared: the
    /// verdict cache and every row of the agent hold the one text, a hit copies no string.
    pub browser: Arc<str>,
    /// Operating system as Plausible reports it, e.g. `Windows`, `Mac`, `iOS`, `Android`,
    /// `GNU/Linux`; empty when unknown. Shared like `browser`.
    pub os: Arc<str>,
}

/// Why a request was judged to come from a bot (the label of a metric, never the user agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotReason {
    EmptyUserAgent,
    /// On the bot list (isbot's patterns and tally's additions).
    KnownPattern,
    /// No browser: an agent nothing recognises and that names no browser engine, or a text
    /// browser (which cannot run the tracker).
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

/// The compiled data, shared by every classifier in the process.
struct Rules {
    bots: BotPatterns,
    /// `None` only if the shipped regexes could not be read (tests prevent that): then agents
    /// are judged by the bot list and engine tokens alone, with empty classes.
    parser: Option<Parser>,
}

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    let started = Instant::now();
    let rules = Rules::compile();
    tracing::info!(
        bot_patterns = rules.bots.count,
        bot_patterns_left_out = rules.bots.skipped.len(),
        class_rules = rules.parser.as_ref().map_or(0, |p| p.rules),
        ms = started.elapsed().as_millis() as u64,
        "user-agent rules compiled"
    );
    rules
});

impl Rules {
    fn compile() -> Self {
        let bots = BotPatterns::new();
        let parser = Parser::new()
            .inspect_err(|e| tracing::error!(error = %e, "data/uap-core-regexes.yaml could not be read: no browser, OS or device classes"))
            .ok();
        Rules { bots, parser }
    }
}

/// How long compiling the rules takes (a fresh compilation, for the tests' report; the
/// collector does it once, at start).
pub fn rules_compile_time() -> std::time::Duration {
    let started = Instant::now();
    let rules = Rules::compile();
    let elapsed = started.elapsed();
    drop(rules);
    elapsed
}

/// The classifier: the shared rules and this collector's remembered verdicts.
pub struct Classifier {
    rules: &'static Rules,
    verdicts: Verdicts,
}

/// What [`Classifier::inspect`] answers for an agent, whatever the request's other headers.
type Verdict = Result<Classes, BotReason>;

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    /// Compiles the rules if this process has not yet (at start, not at the first beacon).
    pub fn new() -> Self {
        Self {
            rules: &RULES,
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

    /// The verdict from the agent alone. The bot list first; then what the parser makes of it:
    /// the tracker runs in a browser, and every browser, in-app browser and web view names
    /// itself or its engine in a way the parser or [`names_an_engine`] knows. An agent that
    /// does neither, and is not a mobile app's own HTTP stack (apps send events through the
    /// Events API), is a program. Text browsers are known, but cannot run the tracker.
    fn decide(&self, user_agent: &str) -> Verdict {
        if self.rules.bots.is_bot(user_agent) {
            return Err(BotReason::KnownPattern);
        }
        if is_text_browser(user_agent) {
            return Err(BotReason::NotABrowser);
        }
        let reading = self.read(user_agent);
        if reading.known || names_an_engine(user_agent) || is_app_http_stack(user_agent) {
            Ok(reading.classes)
        } else {
            Err(BotReason::NotABrowser)
        }
    }

    /// Returns why this request is a bot, or `None` for what looks like a person's browser.
    pub fn bot_reason(&self, user_agent: &str, headers: &HeaderMap) -> Option<BotReason> {
        self.inspect(user_agent, headers).err()
    }

    /// The classes of an agent, whether or not it is a bot.
    pub fn classify(&self, user_agent: &str) -> Classes {
        self.read(user_agent).classes
    }

    fn read(&self, user_agent: &str) -> Reading {
        match &self.rules.parser {
            Some(parser) => parser.read(user_agent),
            None => Reading {
                classes: Classes {
                    device: "",
                    browser: Arc::from(""),
                    os: Arc::from(""),
                },
                known: false,
            },
        }
    }
}

/// Browser engine tokens every real browser and web view carries, even ones the parser
/// cannot name.
fn names_an_engine(user_agent: &str) -> bool {
    [
        "Mozilla/",
        "AppleWebKit/",
        "Gecko/",
        "Trident/",
        "Presto/",
        "Goanna/",
        "Chrome/",
        "Firefox/",
        "Safari/",
        "Opera/",
    ]
    .iter()
    .any(|t| user_agent.contains(t))
}

/// A mobile app's own HTTP stack (`MyApp/3 CFNetwork/1220.1 Darwin/20.3.0`, `Dalvik/2.1.0
/// (Linux; U; Android 11; …)`): an app that reports its screens through the Events API.
fn is_app_http_stack(user_agent: &str) -> bool {
    let lower = user_agent.to_ascii_lowercase();
    lower.contains("cfnetwork/") || lower.contains("dalvik/")
}

/// Text-mode browsers: real people, but without JavaScript, so a beacon naming one did not
/// come from the tracker (docs/user-agents.md, "Excluded on purpose").
fn is_text_browser(user_agent: &str) -> bool {
    let first = user_agent
        .split(['/', ' ', '('])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "lynx" | "links" | "elinks" | "w3m" | "dillo" | "edbrowse"
    )
}

/// Chromium's `Sec-Purpose`/`Purpose` and Firefox's `X-Moz` mark speculative loads that no one saw.
/// (Names as constants: looking a header up by `&str` parses the name on every request.)
const PREFETCH_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("sec-purpose"),
    HeaderName::from_static("purpose"),
    HeaderName::from_static("x-purpose"),
    HeaderName::from_static("x-moz"),
];

/// One pass over the request's dozen headers rather than four lookups of names that are
/// almost never there (each lookup hashes its name and probes the map). Every value of a
/// repeated header counts, not only the first.
fn is_prefetch(headers: &HeaderMap) -> bool {
    headers.iter().any(|(name, value)| {
        PREFETCH_HEADERS.contains(name)
            && value.to_str().is_ok_and(|v| {
                v.contains("prefetch") || v.contains("preview") || v.contains("prerender")
            })
    })
}

#[cfg(test)]
mod tests;
