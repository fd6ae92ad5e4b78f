//! Unit tests of the classifier: classes, bot verdicts, the verdict cache, and the regression
//! cases of issue 15 (each kind of agent the issue measured, real agents of each).

use super::verdicts::MAX_VERDICTS;
use super::*;

const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";

fn triple(c: &Classifier, ua: &str) -> (&'static str, String, String) {
    let k = c.classify(ua);
    (k.device, k.browser.to_string(), k.os.to_string())
}

fn t(device: &'static str, browser: &str, os: &str) -> (&'static str, String, String) {
    (device, browser.to_string(), os.to_string())
}

#[test]
fn classes() {
    let c = Classifier::new();
    assert_eq!(triple(&c, CHROME_WIN), t("desktop", "Chrome", "Windows"));
    assert_eq!(triple(&c, IPHONE), t("mobile", "Safari", "iOS"));
    assert_eq!(triple(&c, IPAD), t("tablet", "Safari", "iPadOS"));
    assert_eq!(triple(&c, ANDROID_PHONE), t("mobile", "Chrome", "Android"));
    assert_eq!(triple(&c, ANDROID_TABLET), t("tablet", "Chrome", "Android"));
    assert_eq!(
        triple(&c, FIREFOX_LINUX),
        t("desktop", "Firefox", "GNU/Linux")
    );
    assert_eq!(triple(&c, "nonsense"), t("", "", ""));
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
    // Each of the names, among a browser's usual headers, and in a second value of its name.
    for (name, value) in [
        ("Purpose", "prefetch"),
        ("X-Purpose", "preview"),
        ("X-Moz", "prefetch"),
        ("Sec-Purpose", "prefetch"),
    ] {
        let mut h = HeaderMap::new();
        h.insert("accept-language", "nl-NL,nl;q=0.9".parse().unwrap());
        h.insert("sec-fetch-mode", "no-cors".parse().unwrap());
        h.append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            "other".parse().unwrap(),
        );
        assert_eq!(c.bot_reason(CHROME_WIN, &h), None, "{name}: other");
        h.append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        assert_eq!(
            c.bot_reason(CHROME_WIN, &h),
            Some(BotReason::Prefetch),
            "{name}: {value}"
        );
    }
    let mut visible = HeaderMap::new();
    visible.insert("sec-fetch-site", "prefetch".parse().unwrap());
    assert_eq!(
        c.bot_reason(CHROME_WIN, &visible),
        None,
        "another header's value"
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
            _ => format!("Mozilla/5.0 (iPad; CPU OS 16_{i} like Mac OS X) AppleWebKit/605.1.15"),
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

#[test]
fn a_remembered_verdict_shares_its_names_instead_of_copying_them() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let first = c.inspect(CHROME_WIN, &h).unwrap();
    let again = c.inspect(CHROME_WIN, &h).unwrap();
    assert_eq!(&*again.browser, "Chrome");
    assert!(Arc::ptr_eq(&first.browser, &again.browser));
    assert!(Arc::ptr_eq(&first.os, &again.os));
}

/// Asserts every agent gets `reason` (a bot) or `None` (a person).
fn assert_all(reason: Option<BotReason>, agents: &[&str]) {
    let c = Classifier::new();
    let h = HeaderMap::new();
    let wrong: Vec<String> = agents
        .iter()
        .filter(|ua| c.bot_reason(ua, &h) != reason)
        .map(|ua| format!("{:?}: {ua}", c.bot_reason(ua, &h)))
        .collect();
    assert!(
        wrong.is_empty(),
        "expected {reason:?}:\n{}",
        wrong.join("\n")
    );
}

/// Issue 15: browser automation and headless browsers (stored as visitors before).
#[test]
fn issue_15_browser_automation_is_a_bot() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Playwright/1.40.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36; Selenium",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_0) AppleWebKit/537.36 (KHTML, like Gecko) Cypress/3.3.1 Chrome/70.0.3538.124 Electron/4.0.4 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/602.1 (KHTML, like Gecko) splash Version/10.0 Safari/602.1",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36 Puppeteer",
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        ],
    );
}

/// Issue 15: synthetic monitoring and page-speed testers.
#[test]
fn issue_15_synthetic_monitors_are_bots() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3 like Mac OS X) AppleWebKit/602.1.50 (KHTML, like Gecko) CriOS/56.0.2924.75 Mobile/14E5239e Safari/602.1 RuxitSynthetic/1.0",
            "Chrome/80.0.3987.87 Safari/537.36 RuxitSynthetic/1.0 v6191106029376332690 t7889551165227354132",
            "Mozilla/5.0 (compatible; Splunk/1.0.0; https://splunk.com)",
            "Mozilla/5.0 (X11; Linux x86_64; Rigor) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.106 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64; rv:45.0; Rigor) Gecko/20100101 Firefox/45.0",
            "Mozilla/5.0 (compatible; YottaaMonitor; +http://www.yottaa.com)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/117.0.0.0 Safari/537.36 GTmetrix",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_6) AppleWebKit/537.36 (KHTML, like Gecko) YLT Chrome/85.0.4183.121 Safari/537.36",
            "Mozilla/5.0 (Windows NT 6.2; WOW64) AppleWebKit/537.4 (KHTML, like Gecko) Chrome/98 Safari/537.4 (StatusCake)",
            "Mozilla/5.0 (Linux; Android 7.0; Moto G (4)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/84.0.4143.7 Mobile Safari/537.36 Chrome-Lighthouse",
            "Mozilla/5.0 (Linux; Android 6.0.1; Moto G (4) Build/MPJ24.139-64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/65.0.3325.146 Mobile Safari/537.36 PTST/180829.190838",
        ],
    );
}

/// Issue 15: AI agents that fetch pages for a person, AI crawlers, and AI coding tools.
#[test]
fn issue_15_ai_agents_and_coding_tools_are_bots() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; MistralAI-User/1.0; +https://docs.mistral.ai/robots)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/137.0.0.0 Safari/537.36; Devin/1.0; +https://devin.ai",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36; Manus-User/1.0",
            "claude-code/1.0.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Cursor/0.45.11 Chrome/128.0.6613.186 Electron/32.2.6 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Trae/1.107.1 Chrome/142.0.7444.235 Electron/39.2.7 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Code/1.115.0 Chrome/142.0.7444.265 Electron/39.8.5 Safari/537.36",
        ],
    );
}

/// Issue 15: SEO tools and security scanners.
#[test]
fn issue_15_seo_and_security_scanners_are_bots() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Screaming Frog SEO Spider/5.1",
            "Mozilla/5.0 (compatible; Nessus; http://www.nessus.org)",
            "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
            "Mozilla/5.0 zgrab/0.x",
            "Mozilla/5.0 (compatible; Qualys; +https://www.qualys.com/)",
            "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
            "sqlmap/1.1.8.2#dev (http://sqlmap.org)",
        ],
    );
}

/// Issue 15: feed readers.
#[test]
fn issue_15_feed_readers_are_bots() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 16 subscribers; like FeedFetcher-Google)",
            "Mozilla/5.0 (compatible; inoreader.com; 1 subscribers)",
            "NetNewsWire/4.0.0 (Mac OS X; http://netnewswireapp.com/mac/; gzip-happy)",
            "NewsBlur Page Fetcher - 7 subscribers - http://www.newsblur.com/site/3966817/analytics-piwik (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_1) AppleWebKit/534.48.3 (KHTML, like Gecko) Version/5.1 Safari/534.48.3)",
            "Reeder/3.2 CFNetwork/672.1.12 Darwin/14.0.0",
            "Tiny Tiny RSS/1.11.4c63934 (http://tt-rss.org/)",
        ],
    );
}

/// Issue 15: link and page previews (chat apps, social networks, embeds).
#[test]
fn issue_15_link_previews_are_bots() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "WhatsApp/2.21.12.21 A",
            "TelegramBot (like TwitterBot)",
            "Twitterbot/1.0",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Iframely/1.3.1 (+https://iframely.com/docs/about) Atlassian",
            "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
            "Mozilla/5.0 (X11; Linux x86_64)  AppleWebKit/537.36 (KHTML, like Gecko; Google Web Preview)  Chrome/84.0.4147.108 Safari/537.36",
        ],
    );
}

/// Issue 15: proxies that fetch pages or images for someone else (mail image proxies,
/// transcoders, aggregators).
#[test]
fn issue_15_proxies_are_bots() {
    assert_all(
        Some(BotReason::KnownPattern),
        &[
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/55.0.2883.87 Safari/537.36 (via secureurl.fwdcdn.com - mail.ukr.net proxy)",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:28.0) Gecko/20100101 Firefox/28.0 (FlipboardProxy/1.6; +http://flipboard.com/browserproxy)",
            "Mozilla/5.0 (Linux; Android 4.2.1; en-us; Nexus 5 Build/JOP40D) AppleWebKit/535.19 (KHTML, like Gecko; googleweblight) Chrome/38.0.1025.166 Mobile Safari/535.19",
            "Mozilla/5.0 (compatible; YandexUserproxy; robot; +http://yandex.com/bots)",
        ],
    );
}

/// Issue 15: real browsers that were dropped as bots before: Konqueror, UC Browser, Microsoft
/// Office, in-app browsers and web views, mobile apps' own HTTP stacks, old and niche browsers.
#[test]
fn issue_15_browsers_and_apps_are_people() {
    assert_all(
        None,
        &[
            "Mozilla/5.0 (compatible; Konqueror/4.4; Linux) KHTML/4.4.5 (like Gecko) Kubuntu",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.21 (KHTML, like Gecko) konqueror/4.14.16 Safari/537.21",
            "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX1911 Build/QKQ1.200209.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
            "UCWEB/2.0 (Java; U; MIDP-2.0; Nokia203/20.37) U2/1.0.0 UCBrowser/8.7.0.218 U2/1.0.0 Mobile",
            "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
            "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
            // In-app browsers and web views (they run the tracker).
            "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone11,8;FBMD/iPhone;FBSN/iOS;FBSV/13.3.1;FBSS/2;FBID/phone;FBLC/en_US;FBOP/5;FBCR/]",
            "Mozilla/5.0 (Linux; Android 9; SM-G950U Build/PPR1.180610.011; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/80.0.3987.149 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/263.0.0.46.121;]",
            "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36 Instagram 406.0.0.58.159 Android (35/15; 480dpi; 1080x2400; OPPO; CPH2557; OP573DL1; mt6833; en_MY; 822918295; IABMV/1) NV/1",
            "Mozilla/5.0 (Linux; Android 16; Pixel 10 Pro XL Build/CP1A.260305.018; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile Safari/537.36 MetaIAB Facebook",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/102.0.304944559 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
            "Mozilla/5.0 (Linux; Android 10; SM-G973F Build/QQ3A.200805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/85.0.4183.101 Mobile Safari/537.36 trill_2021806060 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/18.6.6 ByteLocale/fr ByteFullLocale/fr Region/FR",
            "Mozilla/5.0 (Linux; Android 12; SM-G975N Build/SP1A.210812.016; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/90.0.4430.232 Whale/1.0.0.0 Crosswalk/26.90.3.21 Mobile Safari/537.36 NAVER(inapp; search; 1010; 11.11.3)",
            // Mobile apps' own HTTP stacks (an app posting its screens to the Events API).
            "ExampleApp/1 Dalvik/2.1.0 (Linux; U; Android 6.0.1; vivo 1610 Build/MMB29M)",
            "Dalvik/2.1.0 (Linux; U; Android 9; SM-G965U Build/PPR1.180610.011)",
            "ExampleApp/1 iPhone5,2 iOS/10_1 CFNetwork/808.3 Darwin/16.3.0",
            "AppName/1 CFNetwork/758.1.2 Darwin/15.0.0",
            // Old and niche browsers.
            "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1; .NET CLR 1.1.4322)",
            "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
            "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
            "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/127.3.1 like Chrome/127.0.6533.103 Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0 Waterfox/6.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/534.26+ (KHTML, like Gecko) Version/5.0 Safari/534.26+ Ubuntu/10.10 (2.30.6-1ubuntu5) Epiphany/2.30.6",
            "Mozilla/5.0 (Mobile; rv:48.0; Microsoft; Lumia 950) Gecko/48.0 Firefox/48.0 KAIOS/2.5",
            "Mozilla/5.0 (Linux; Android 12; HarmonyOS; TET-AN00; HMSCore 6.12.4.312) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.5.301 Mobile Safari/537.36",
            "Mozilla/5.0 (PlayStation 4 3.11) AppleWebKit/537.73 (KHTML, like Gecko)",
            "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
            "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_5_6; en-us) AppleWebKit/528.16 (KHTML, like Gecko) Fluid/0.9.6 Safari/528.16",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) discord/0.0.306 Chrome/78.0.3904.130 Electron/7.1.11 Safari/537.36",
            "Mozilla/5.0 (Amiga; PowerPC AmigaOS 4.1; Odyssey Web Browser; rv:1.23) AppleWebKit/538.1 (KHTML, like Gecko) OWB/1.23 Safari/538.1",
        ],
    );
}

/// Issue 15: text browsers are left out on purpose: they cannot run the tracker, so a beacon
/// that names one was sent by something else.
#[test]
fn issue_15_text_browsers_are_not_counted() {
    assert_all(
        Some(BotReason::NotABrowser),
        &[
            "Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.6.13",
            "w3m/0.5.3+git20230121",
            "Links (2.1pre23; Linux 3.5.0 i686; 237x63)",
            "ELinks/0.12~pre6-1ubuntu1 (textmode; Ubuntu; Linux 3.11.0-13-generic i686; 100x25-2)",
        ],
    );
}

/// Issue 15: an agent that nothing recognises and that names no browser engine is a program.
#[test]
fn issue_15_unknown_programs_are_not_a_browser() {
    let c = Classifier::new();
    let h = HeaderMap::new();
    for ua in [
        "GOGGalaxyClient/2.0.62.26 (GOG Galaxy) 83b6745cff679691b69876bc7ee33e05e5d90bda (win10 x64)",
        "Valve/Steam HTTP Client 1.0",
    ] {
        assert!(c.bot_reason(ua, &h).is_some(), "{ua}");
    }
}

/// Issue 15: the names Plausible's API reports, so its filters match (`Mac`, not `macOS`).
#[test]
fn issue_15_plausible_names() {
    let c = Classifier::new();
    let cases = [
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
         t("desktop", "Safari", "Mac")),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
         t("desktop", "Microsoft Edge", "Windows")),
        ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
         t("mobile", "Samsung Browser", "Android")),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
         t("desktop", "Opera", "Windows")),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
         t("mobile", "Opera", "Android")),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
         t("mobile", "Chrome", "iOS")),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
         t("mobile", "Firefox", "iOS")),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
         t("desktop", "Chrome", "Chrome OS")),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
         t("desktop", "Firefox", "Ubuntu")),
        ("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
         t("desktop", "Internet Explorer", "Windows")),
        // In-app browsers and web views are one row, "Mobile App", whatever the app.
        ("Mozilla/5.0 (Linux; Android 9; SM-G950U Build/PPR1.180610.011; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/80.0.3987.149 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/263.0.0.46.121;]",
         t("mobile", "Mobile App", "Android")),
        ("Mozilla/5.0 (Linux; Android 16; Pixel 10 Pro XL Build/CP1A.260305.018; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile Safari/537.36",
         t("mobile", "Mobile App", "Android")),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
         t("mobile", "Mobile App", "iOS")),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/102.0.304944559 Mobile/15E148 Safari/604.1",
         t("mobile", "Mobile App", "iOS")),
        ("Mozilla/5.0 (iPad; CPU OS 12_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
         t("tablet", "Safari", "iOS")),
        ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
         t("other", "Samsung Browser", "Tizen")),
    ];
    for (ua, expected) in cases {
        assert_eq!(triple(&c, ua), expected, "{ua}");
    }
}
