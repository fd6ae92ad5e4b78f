//! Acquisition channels (`visit:channel`): Plausible's grouping of a visit's source and UTM tags
//! into Direct, Organic Search, Paid Social, Email, Referral, … computed at query time from what
//! every stored visit already has (`source`, `utm_source`, `utm_medium`, `utm_campaign`), so it
//! holds for all stored history and needs no new column.
//!
//! The rules are Plausible's (`lib/plausible/ingestion/acquisition.ex`, `get_channel`), checked
//! in its order; docs/http-api.md lists them. Sources are put in categories (search, social,
//! video, shopping, email) by the maintained referrer list's medium (`data/referrers.json`,
//! which tally already uses to name sources) and by `data/source-categories.tsv` (Plausible's own
//! additions and GA4's video and shopping sources). One known difference: Plausible also calls a
//! visit from Google with a `gclid` (or Bing with `msclkid`) Paid Search; tally does not keep
//! click ids (they identify a person's ad click), so such a visit is Organic Search here.
//!
//! [`channel`] is the rules in Rust (the reference the table tests check); [`sql`] the same rules
//! as one ClickHouse expression, which the integration tests check against [`channel`].

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use crate::sql_text::lit;

/// The maintained referrer list (see `source`): its `medium` gives search, social and email.
const REFERRERS: &str = include_str!("../data/referrers.json");
/// tally's category lines, which win over the list.
const CATEGORIES: &str = include_str!("../data/source-categories.tsv");

/// A paid `utm_medium` (Plausible's `paid_medium?`).
pub const PAID_MEDIUM: &str = "^(.*cp.*|ppc|retargeting|paid.*)$";
/// A shopping `utm_campaign` (Plausible's `shopping_campaign?`).
pub const SHOPPING_CAMPAIGN: &str = "^(.*(([^a-df-z]|^)shop|shopping).*)$";
/// `utm_medium` values of Display.
const DISPLAY_MEDIA: [&str; 5] = ["display", "banner", "expandable", "interstitial", "cpm"];
/// `utm_medium` values of Organic Social besides social sources.
const SOCIAL_MEDIA: [&str; 6] = [
    "social",
    "social-network",
    "social-media",
    "sm",
    "social network",
    "social media",
];
/// `utm_medium` values of Referral besides any source at all.
const REFERRAL_MEDIA: [&str; 3] = ["referral", "app", "link"];
/// Parts of `utm_source` or `utm_medium` (ignoring case) that make a visit Email.
const EMAIL_TAGS: [&str; 5] = ["email", "e-mail", "e_mail", "e mail", "newsletter"];

/// The group a source is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Search,
    Social,
    Video,
    Shopping,
    Email,
}

impl Category {
    const ALL: [Category; 5] = [
        Category::Search,
        Category::Social,
        Category::Video,
        Category::Shopping,
        Category::Email,
    ];

    fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "search" => Category::Search,
            "social" => Category::Social,
            "video" => Category::Video,
            "shopping" => Category::Shopping,
            "email" => Category::Email,
            _ => return None,
        })
    }
}

/// What a visit's channel is computed from, as stored (empty: not set).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tags<'a> {
    /// The visit's source (`Google`, `example.com`; empty: direct).
    pub source: &'a str,
    pub utm_source: &'a str,
    pub utm_medium: &'a str,
    pub utm_campaign: &'a str,
}

/// The category of a source, ignoring case.
pub fn category(source: &str) -> Option<Category> {
    TABLE.get(source.to_lowercase().as_str()).copied()
}

/// The channel of a visit, by Plausible's rules in Plausible's order.
pub fn channel(t: &Tags) -> &'static str {
    let cat = category(t.source);
    let is = |c: Category| cat == Some(c);
    let medium = t.utm_medium;
    let paid = PAID.is_match(medium);
    let shopping = is(Category::Shopping) || SHOPPING.is_match(t.utm_campaign);
    let email_tag = |v: &str| {
        let v = v.to_lowercase();
        EMAIL_TAGS.iter().any(|tag| v.contains(tag))
    };
    if t.utm_campaign.contains("cross-network") {
        "Cross-network"
    } else if shopping && paid {
        "Paid Shopping"
    } else if is(Category::Search) && paid {
        "Paid Search"
    } else if is(Category::Social) && paid {
        "Paid Social"
    } else if is(Category::Video) && paid {
        "Paid Video"
    } else if DISPLAY_MEDIA.contains(&medium) {
        "Display"
    } else if paid {
        "Paid Other"
    } else if shopping {
        "Organic Shopping"
    } else if is(Category::Social) || SOCIAL_MEDIA.contains(&medium) {
        "Organic Social"
    } else if is(Category::Video) || medium.contains("video") {
        "Organic Video"
    } else if is(Category::Search) {
        "Organic Search"
    } else if is(Category::Email) || email_tag(t.utm_source) || email_tag(medium) {
        "Email"
    } else if medium == "affiliate" {
        "Affiliates"
    } else if medium == "audio" {
        "Audio"
    } else if t.utm_source == "sms" || medium == "sms" {
        "SMS"
    } else if medium.ends_with("push")
        || medium.contains("mobile")
        || medium.contains("notification")
        || t.source == "firebase"
    {
        "Mobile Push Notifications"
    } else if REFERRAL_MEDIA.contains(&medium) || !t.source.is_empty() {
        "Referral"
    } else {
        "Direct"
    }
}

/// [`channel`] as a ClickHouse expression over the named columns (runs on 18.16: `multiIf`,
/// `match`, `position`, `IN` with constant sets).
pub fn sql(source: &str, utm_source: &str, utm_medium: &str, utm_campaign: &str) -> String {
    let in_category = |c: Category| {
        let names: Vec<String> = TABLE
            .iter()
            .filter(|(_, v)| **v == c)
            .map(|(k, _)| lit(k))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if names.is_empty() {
            "0".to_string()
        } else {
            format!("lowerUTF8({source}) IN ({})", names.join(", "))
        }
    };
    let one_of = |col: &str, values: &[&str]| {
        let v: Vec<String> = values.iter().map(|x| lit(x)).collect();
        format!("{col} IN ({})", v.join(", "))
    };
    let email_tag = |col: &str| {
        let parts: Vec<String> = EMAIL_TAGS
            .iter()
            .map(|t| format!("position(lowerUTF8({col}), {}) > 0", lit(t)))
            .collect();
        format!("({})", parts.join(" OR "))
    };
    let paid = format!("match({utm_medium}, {})", lit(PAID_MEDIUM));
    let shopping = format!(
        "({} OR match({utm_campaign}, {}))",
        in_category(Category::Shopping),
        lit(SHOPPING_CAMPAIGN)
    );
    let arms = [
        (
            format!("position({utm_campaign}, 'cross-network') > 0"),
            "Cross-network",
        ),
        (format!("{shopping} AND {paid}"), "Paid Shopping"),
        (
            format!("{} AND {paid}", in_category(Category::Search)),
            "Paid Search",
        ),
        (
            format!("{} AND {paid}", in_category(Category::Social)),
            "Paid Social",
        ),
        (
            format!("{} AND {paid}", in_category(Category::Video)),
            "Paid Video",
        ),
        (one_of(utm_medium, &DISPLAY_MEDIA), "Display"),
        (paid.clone(), "Paid Other"),
        (shopping.clone(), "Organic Shopping"),
        (
            format!(
                "{} OR {}",
                in_category(Category::Social),
                one_of(utm_medium, &SOCIAL_MEDIA)
            ),
            "Organic Social",
        ),
        (
            format!(
                "{} OR position({utm_medium}, 'video') > 0",
                in_category(Category::Video)
            ),
            "Organic Video",
        ),
        (in_category(Category::Search), "Organic Search"),
        (
            format!(
                "{} OR {} OR {}",
                in_category(Category::Email),
                email_tag(utm_source),
                email_tag(utm_medium)
            ),
            "Email",
        ),
        (format!("{utm_medium} = 'affiliate'"), "Affiliates"),
        (format!("{utm_medium} = 'audio'"), "Audio"),
        (
            format!("{utm_source} = 'sms' OR {utm_medium} = 'sms'"),
            "SMS",
        ),
        (
            format!(
                "match({utm_medium}, 'push$') OR position({utm_medium}, 'mobile') > 0 \
                 OR position({utm_medium}, 'notification') > 0 OR {source} = 'firebase'"
            ),
            "Mobile Push Notifications",
        ),
        (
            format!("{} OR {source} != ''", one_of(utm_medium, &REFERRAL_MEDIA)),
            "Referral",
        ),
    ];
    let mut out = String::from("multiIf(");
    for (cond, name) in arms {
        out.push_str(&format!("({cond}), {}, ", lit(name)));
    }
    out.push_str("'Direct')");
    out
}

/// Every channel name [`channel`] gives, in Plausible's order.
pub const CHANNELS: [&str; 18] = [
    "Cross-network",
    "Paid Shopping",
    "Paid Search",
    "Paid Social",
    "Paid Video",
    "Display",
    "Paid Other",
    "Organic Shopping",
    "Organic Social",
    "Organic Video",
    "Organic Search",
    "Email",
    "Affiliates",
    "Audio",
    "SMS",
    "Mobile Push Notifications",
    "Referral",
    "Direct",
];

/// Cases `(source, utm_source, utm_medium, utm_campaign, channel)`, one or more per channel,
/// following the definitions in Plausible's documentation ("Top Sources", "Channels") and the
/// order of its rules: the table the unit tests check [`channel`] with, and the integration tests
/// check [`sql`] against, on a real ClickHouse.
pub const CASES: [(&str, &str, &str, &str, &str); 34] = [
    ("", "", "", "", "Direct"),
    ("Google", "", "", "", "Organic Search"),
    ("Bing", "", "", "", "Organic Search"),
    ("DuckDuckGo", "", "", "", "Organic Search"),
    ("Google", "google", "cpc", "", "Paid Search"),
    ("Google", "google", "ppc", "spring", "Paid Search"),
    ("Facebook", "facebook", "paid_social", "", "Paid Social"),
    ("Facebook", "", "", "", "Organic Social"),
    ("example.com", "", "social", "", "Organic Social"),
    ("Hacker News", "", "", "", "Organic Social"),
    ("YouTube", "", "", "", "Organic Video"),
    ("YouTube", "youtube", "cpv", "", "Paid Video"),
    ("newsletter-tool", "", "video", "", "Organic Video"),
    ("Amazon", "", "", "", "Organic Shopping"),
    ("Amazon", "amazon", "paid", "", "Paid Shopping"),
    ("example.com", "", "", "shop-sale", "Organic Shopping"),
    ("example.com", "", "cpc", "summer-shopping", "Paid Shopping"),
    ("example.com", "", "", "workshop", "Referral"),
    ("Gmail", "", "", "", "Email"),
    ("Newsletter", "Newsletter", "", "", "Email"),
    ("mailchimp", "mailchimp", "email", "", "Email"),
    ("partner", "partner", "affiliate", "", "Affiliates"),
    ("radio", "radio", "audio", "", "Audio"),
    ("sms", "sms", "", "", "SMS"),
    ("", "", "sms", "", "SMS"),
    ("app", "app", "push", "", "Mobile Push Notifications"),
    ("firebase", "firebase", "", "", "Mobile Push Notifications"),
    ("example.com", "", "", "", "Referral"),
    ("", "", "referral", "", "Referral"),
    ("partner", "partner", "display", "", "Display"),
    ("partner", "partner", "retargeting", "", "Paid Other"),
    (
        "Facebook",
        "facebook",
        "cpc",
        "cross-network-q3",
        "Cross-network",
    ),
    ("Wikipedia", "", "", "", "Referral"),
    ("Yandex", "", "", "", "Organic Search"),
];

static PAID: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(PAID_MEDIUM).expect("a valid constant pattern"));
static SHOPPING: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(SHOPPING_CAMPAIGN).expect("a valid constant pattern"));

/// Lower-cased source name → category.
static TABLE: LazyLock<HashMap<String, Category>> = LazyLock::new(|| build(REFERRERS, CATEGORIES));

#[derive(Deserialize)]
struct Referrer {
    source: String,
    medium: String,
}

/// The category table: the list's media (a name the list gives several media keeps the first of
/// search, social, email, so `Yandex` is a search engine although it also runs mail), then
/// tally's lines over them. Both files are compiled in and tested, so a failure is a bad refresh
/// of `data/`: it is logged and that file left out.
fn build(referrers: &str, categories: &str) -> HashMap<String, Category> {
    let list: HashMap<String, Referrer> = serde_json::from_str(referrers).unwrap_or_else(|e| {
        tracing::error!(error = %e, "data/referrers.json is not valid: no source categories");
        HashMap::new()
    });
    let mut media: HashMap<String, Vec<Category>> = HashMap::new();
    for r in list.values() {
        if let Some(c) = Category::parse(&r.medium) {
            media.entry(r.source.to_lowercase()).or_default().push(c);
        }
    }
    let mut table: HashMap<String, Category> = media
        .into_iter()
        .filter_map(|(name, cats)| {
            Category::ALL
                .into_iter()
                .find(|c| cats.contains(c))
                .map(|c| (name, c))
        })
        .collect();
    for line in categories.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('\t') {
            Some((name, cat)) if Category::parse(cat).is_some() => {
                table.insert(
                    name.to_lowercase(),
                    Category::parse(cat).unwrap_or(Category::Search),
                );
            }
            _ => tracing::error!(line, "data/source-categories.tsv: line not understood"),
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausibles_documented_channels() {
        for (source, utm_source, utm_medium, utm_campaign, want) in CASES {
            let tags = Tags {
                source,
                utm_source,
                utm_medium,
                utm_campaign,
            };
            assert_eq!(channel(&tags), want, "{tags:?}");
        }
        let seen: std::collections::HashSet<&str> = CASES.iter().map(|c| c.4).collect();
        let missing: Vec<&str> = CHANNELS.into_iter().filter(|c| !seen.contains(c)).collect();
        assert!(missing.is_empty(), "no case for {missing:?}");
    }

    #[test]
    fn categories_come_from_both_files() {
        // From the referrer list's media.
        assert_eq!(category("google"), Some(Category::Search));
        assert_eq!(category("Outlook.com"), Some(Category::Email));
        assert_eq!(category("LinkedIn"), Some(Category::Social));
        // tally's lines win: the list calls Amazon a search engine and Vimeo a social network.
        assert_eq!(category("Amazon"), Some(Category::Shopping));
        assert_eq!(category("vimeo"), Some(Category::Video));
        assert_eq!(category("example.com"), None);
        let table = build("{}", "x\tnonsense\nYouTube\tvideo\n");
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn the_sql_has_every_channel_and_no_unescaped_name() {
        let sql = sql("source", "utm_source", "utm_medium", "utm_campaign");
        for c in CHANNELS {
            assert!(sql.contains(&format!("'{c}'")), "{c}");
        }
        // Names with a quote (none today, but the list may bring one) stay literals.
        assert_eq!(sql.matches("multiIf(").count(), 1);
    }
}
