//! Browser, OS and device classes: the ua-parser project's regexes (`data/uap-core-regexes.yaml`,
//! run by the `ua-parser` crate), with their names turned into the ones Plausible's reports use.
//!
//! uap-core names what an agent is (`Chrome Mobile WebView`, `Mac OS X`); Plausible, whose
//! Stats API tally mirrors, reports Matomo's device-detector names, grouped (`Chrome` for
//! Chrome on every platform, `Mobile App` for in-app browsers and web views, `Mac`,
//! `GNU/Linux`). A filter written for Plausible (`visit:os is "Mac"`) must match here too, so
//! the names are mapped below; a family not in the tables keeps uap-core's name. uap-core's
//! device rules are not loaded: they name phone models (hundreds of regexes, most of the start-up
//! cost) while tally keeps only desktop / mobile / tablet, which the OS and two tokens decide.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use super::Classes;

const UAP_CORE: &str = include_str!("../../data/uap-core-regexes.yaml");

/// uap-core browser families → the name Plausible reports (a family not listed keeps its name).
const BROWSER_NAMES: &[(&str, &str)] = &[
    ("Chrome", "Chrome"),
    ("Chrome Mobile", "Chrome"),
    ("Chrome Mobile iOS", "Chrome"),
    ("Chromium", "Chromium"),
    ("Safari", "Safari"),
    ("Mobile Safari", "Safari"),
    ("Firefox", "Firefox"),
    ("Firefox Mobile", "Firefox"),
    ("Firefox iOS", "Firefox"),
    ("Firefox Beta", "Firefox"),
    ("Firefox Alpha", "Firefox"),
    ("Edge", "Microsoft Edge"),
    ("Edge Mobile", "Microsoft Edge"),
    ("Samsung Internet", "Samsung Browser"),
    ("Opera", "Opera"),
    ("Opera Mobile", "Opera"),
    ("Opera Mini", "Opera"),
    ("IE", "Internet Explorer"),
    ("IE Mobile", "Internet Explorer"),
    ("IE Large Screen", "Internet Explorer"),
    ("Android", "Android Browser"),
    ("Amazon Silk", "Mobile Silk"),
    ("MiuiBrowser", "MIUI Browser"),
    ("DuckDuckGo Mobile", "DuckDuckGo Privacy Browser"),
    ("Whale", "Whale Browser"),
    ("QQ Browser Mobile", "QQ Browser"),
    ("QQ Browser Mini", "QQ Browser"),
    ("Yandex Browser", "Yandex Browser"),
    ("UC Browser", "UC Browser"),
    ("Vivaldi", "Vivaldi"),
    ("Brave", "Brave"),
    ("Coc Coc", "Coc Coc"),
];

/// Families that are an app's own web view or in-app browser: reported as one `Mobile App`
/// row, as Plausible does (the app's name says where the link was, not which browser ran).
const IN_APP: &[&str] = &[
    "Chrome Mobile WebView",
    "Mobile Safari UI/WKWebView",
    "Facebook",
    "Facebook Messenger",
    "Instagram",
    "Snapchat",
    "Pinterest",
    "LinkedIn",
    "Twitter",
    "LINE",
    "Google",
    "CFNetwork",
];

/// What the parser made of an agent.
pub(super) struct Reading {
    pub classes: Classes,
    /// The parser named a browser (or app) or an operating system.
    pub known: bool,
}

/// The compiled uap-core rules for browsers and operating systems.
pub(super) struct Parser {
    ua: ua_parser::user_agent::Extractor<'static>,
    os: ua_parser::os::Extractor<'static>,
    /// Rules read from the data (a test checks all of them).
    pub(super) rules: usize,
}

/// The parts of `regexes.yaml` tally uses; `device_parsers` is skipped.
#[derive(Deserialize)]
struct Rules {
    user_agent_parsers: Vec<ua_parser::user_agent::Parser<'static>>,
    os_parsers: Vec<ua_parser::os::Parser<'static>>,
}

impl Parser {
    pub(super) fn new() -> Result<Self, String> {
        let rules: Rules = serde_saphyr::from_str(UAP_CORE).map_err(|e| e.to_string())?;
        let count = rules.user_agent_parsers.len() + rules.os_parsers.len();
        let ua = ua_parser::user_agent::Builder::new()
            .push_all(rules.user_agent_parsers)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        let os = ua_parser::os::Builder::new()
            .push_all(rules.os_parsers)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            ua,
            os,
            rules: count,
        })
    }

    pub(super) fn read(&self, user_agent: &str) -> Reading {
        let family = self
            .ua
            .extract(user_agent)
            .map(|v| v.family)
            .filter(|f| f != "Other");
        let os = self.os.extract(user_agent).filter(|o| o.os != "Other");
        let os_family = os.as_ref().map(|o| o.os.as_ref()).unwrap_or("");
        let os_major = os
            .as_ref()
            .and_then(|o| o.major.as_deref())
            .and_then(|m| m.parse::<u32>().ok());
        Reading {
            known: family.is_some() || os.is_some(),
            classes: Classes {
                device: device_class(os_family, user_agent),
                browser: Arc::from(browser_name(family.as_deref(), os_family, user_agent)),
                os: Arc::from(os_name(os_family, os_major, user_agent)),
            },
        }
    }
}

fn browser_name(family: Option<&str>, os_family: &str, user_agent: &str) -> String {
    let Some(family) = family else {
        return String::new();
    };
    if let Some((_, name)) = BROWSER_NAMES.iter().find(|(f, _)| *f == family) {
        return (*name).to_string();
    }
    if IN_APP.contains(&family) || is_web_view(os_family, user_agent) {
        return "Mobile App".to_string();
    }
    family.to_string()
}

/// An app's web view that the parser names by the app: Android marks web views with `; wv)`;
/// on iOS every browser says `Safari/`, so an agent without it is an app's web view.
fn is_web_view(os_family: &str, user_agent: &str) -> bool {
    match os_family {
        "Android" => user_agent.contains("; wv)"),
        "iOS" => !user_agent.contains("Safari/"),
        _ => false,
    }
}

/// uap-core's OS families as Plausible names them (Matomo's names).
fn os_name(family: &str, major: Option<u32>, user_agent: &str) -> Cow<'static, str> {
    Cow::Borrowed(match family {
        "Mac OS X" | "Mac OS" => "Mac",
        "Linux" => "GNU/Linux",
        // Apple has called the iPad's system iPadOS since version 13.
        "iOS" if user_agent.contains("iPad") && major.is_some_and(|m| m >= 13) => "iPadOS",
        "" => "",
        other => return Cow::Owned(other.to_string()),
    })
}

/// desktop / mobile / tablet / other from the OS and the agent's own device tokens.
fn device_class(os_family: &str, user_agent: &str) -> &'static str {
    let tv = [
        "SMART-TV",
        "SmartTV",
        "Android TV",
        "CrKey",
        "BRAVIA",
        "AFT",
        "HbbTV",
    ]
    .iter()
    .any(|t| user_agent.contains(t));
    match os_family {
        "iOS" if user_agent.contains("iPad") => "tablet",
        "iOS"
        | "Windows Phone"
        | "Windows Mobile"
        | "BlackBerry OS"
        | "KaiOS"
        | "Firefox OS"
        | "Symbian OS"
        | "Symbian^3"
        | "Nokia Series 40"
        | "Nokia Series 30 Plus"
        | "Sailfish" => "mobile",
        "BlackBerry Tablet OS" => "tablet",
        "tvOS" | "ATV OS X" | "Chromecast" | "webOS" | "Tizen" | "FireHbbTV" | "Roku" => "other",
        _ if tv || user_agent.contains("PlayStation") || user_agent.contains("Xbox") => "other",
        // Android phones carry `Mobile`; Android tablets leave it out.
        "Android" if user_agent.contains("Mobile") => "mobile",
        "Android" => "tablet",
        "Windows" | "Mac OS X" | "Mac OS" | "Linux" | "Chrome OS" | "Ubuntu" | "Debian"
        | "Fedora" | "Red Hat" | "Gentoo" | "FreeBSD" | "OpenBSD" | "NetBSD" | "Solaris"
        | "Mint" | "Kubuntu" | "SUSE" | "openSUSE" | "Arch Linux" | "CentOS" => "desktop",
        _ if user_agent.contains("Tablet") || user_agent.contains("iPad") => "tablet",
        _ if user_agent.contains("Mobile") || user_agent.contains("iPhone") => "mobile",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_load() {
        let p = Parser::new().unwrap();
        assert!(p.rules > 500, "{} rules", p.rules);
    }

    #[test]
    fn every_mapped_family_exists_in_uap_core() {
        // A family renamed upstream would silently stop being mapped: each must still be named
        // in regexes.yaml (as a replacement, or as text a capture group returns).
        for (family, _) in BROWSER_NAMES {
            assert!(UAP_CORE.contains(family), "{family}");
        }
        for family in IN_APP {
            assert!(UAP_CORE.contains(family), "{family}");
        }
    }
}
