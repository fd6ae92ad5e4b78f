//! The beacon wire format: tally's own keys and Plausible's Events API, short and long.
//!
//! One JSON object per request. Plausible's tracker sends short keys (`n`, `u`, `d`, `r`, `p`,
//! `e`, `sd`, `h`, `i`, `v`, `$`), its Events API documents long ones (`name`, `url`, `domain`,
//! `referrer`, `props`, `revenue`, `interactive`); tally's tracker uses the short keys plus `w`
//! (screen width). Each field accepts both spellings. A key outside this set is refused, so a
//! misspelt integration fails loudly instead of losing data quietly.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::Rejection;

/// Most properties kept from one event before the allow-list is even consulted.
pub const MAX_PROPS: usize = 30;

/// A parsed beacon. Nothing here is stored as is: `ingest` reduces every field first.
///
/// The text fields borrow from the request body when they hold no JSON escapes (nearly
/// always): parsing a beacon copies none of them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beacon<'a> {
    #[serde(alias = "n", borrow, default, deserialize_with = "borrowed_text")]
    pub name: Option<Cow<'a, str>>,
    #[serde(alias = "u", borrow, default, deserialize_with = "borrowed_text")]
    pub url: Option<Cow<'a, str>>,
    #[serde(alias = "d", borrow, default, deserialize_with = "borrowed_text")]
    pub domain: Option<Cow<'a, str>>,
    #[serde(alias = "r", borrow, default, deserialize_with = "borrowed_text")]
    pub referrer: Option<Cow<'a, str>>,
    #[serde(alias = "w")]
    pub screen_width: Option<f64>,
    #[serde(alias = "e", alias = "engagement_time")]
    pub engaged_ms: Option<f64>,
    #[serde(alias = "sd")]
    pub scroll_depth: Option<f64>,
    #[serde(alias = "p", alias = "m", alias = "meta")]
    pub props: Option<Props>,
    /// Plausible's hash-based routing flag: the fragment is part of the page path.
    #[serde(alias = "h", alias = "hash")]
    pub hash_mode: Option<serde_json::Value>,
    /// `false` for events that should not end a bounce.
    #[serde(alias = "i")]
    pub interactive: Option<bool>,
    /// Tracker version; accepted and ignored (skipped over, nothing of it is built).
    #[serde(alias = "v", alias = "version")]
    pub tracker_version: Option<serde::de::IgnoredAny>,
    /// Revenue; accepted and not stored (skipped over, nothing of it is built).
    #[serde(alias = "$")]
    pub revenue: Option<serde::de::IgnoredAny>,
}

/// Custom properties: an object of scalar values, or (Plausible's old `m`/`meta`) a JSON string of one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Props {
    Map(serde_json::Map<String, serde_json::Value>),
    Encoded(String),
}

/// The event kinds tally knows by name; anything else is a custom event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pageview,
    Engagement,
    Custom,
}

impl<'a> Beacon<'a> {
    /// Parses a body. The caller has already enforced the size limit.
    pub fn parse(body: &'a [u8]) -> Result<Beacon<'a>, Rejection> {
        let text = std::str::from_utf8(body).map_err(|_| Rejection::MalformedJson)?;
        serde_json::from_str::<Beacon>(text).map_err(|e| {
            // serde_json reports the category; we map it to a reason without echoing input.
            let msg = e.to_string();
            if msg.starts_with("unknown field") {
                Rejection::UnknownField
            } else if e.is_data() {
                Rejection::InvalidField
            } else {
                Rejection::MalformedJson
            }
        })
    }

    /// The kind of the event, by its name as stored (trimmed): `"engagement "` is an engagement.
    pub fn kind(&self) -> Kind {
        match self.name.as_deref().map(str::trim) {
            Some("pageview") => Kind::Pageview,
            Some("engagement") => Kind::Engagement,
            _ => Kind::Custom,
        }
    }

    pub fn hash_mode(&self) -> bool {
        matches!(&self.hash_mode, Some(serde_json::Value::Bool(true)))
            || matches!(&self.hash_mode, Some(serde_json::Value::Number(n)) if n.as_u64() == Some(1))
    }

    /// Returns the props as (key, scalar value as text) pairs, at most [`MAX_PROPS`].
    pub fn props_pairs(&self) -> Result<Vec<(String, String)>, Rejection> {
        let map = match &self.props {
            None => return Ok(Vec::new()),
            Some(Props::Map(m)) => std::borrow::Cow::Borrowed(m),
            Some(Props::Encoded(s)) if s.is_empty() => return Ok(Vec::new()),
            Some(Props::Encoded(s)) => std::borrow::Cow::Owned(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s)
                    .map_err(|_| Rejection::InvalidField)?,
            ),
        };
        let mut out = Vec::with_capacity(map.len().min(MAX_PROPS));
        for (k, v) in map.iter().take(MAX_PROPS) {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => return Err(Rejection::InvalidField),
            };
            out.push((k.clone(), value));
        }
        Ok(out)
    }
}

/// An optional string that borrows from the body unless it holds escapes. (serde's own `Cow`
/// always copies when it is wrapped in an `Option`.) `null` is `None`, as for `Option<String>`.
fn borrowed_text<'de, D>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }

        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }

        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
    }
    deserializer.deserialize_option(Text)
}

/// Clamps an optional JSON number into `0..=max`, refusing NaN-like and negative absurdities.
pub fn bounded(value: Option<f64>, max: f64) -> Result<Option<f64>, Rejection> {
    match value {
        None => Ok(None),
        Some(v) if !v.is_finite() || v < 0.0 => Err(Rejection::InvalidField),
        Some(v) => Ok(Some(v.min(max))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_tracker_short_keys() {
        let b = Beacon::parse(
            br#"{"n":"engagement","sd":40,"d":"example.org","u":"https://example.org/a","p":{},"e":5300,"v":36,"h":1}"#,
        )
        .unwrap();
        assert_eq!(b.kind(), Kind::Engagement);
        assert_eq!(b.engaged_ms, Some(5300.0));
        assert_eq!(b.scroll_depth, Some(40.0));
        assert!(b.hash_mode());
        // The kind goes by the name as stored, trimmed: " engagement " keeps no props either.
        let b = Beacon::parse(br#"{"n":" engagement ","u":"https://example.org/a"}"#).unwrap();
        assert_eq!(b.kind(), Kind::Engagement);
    }

    #[test]
    fn plausible_events_api_long_keys() {
        let b = Beacon::parse(
            br#"{"name":"Signup","url":"https://example.org/x","domain":"example.org","referrer":"https://news.example.com/","props":{"plan":"pro","n":3},"revenue":{"amount":1,"currency":"EUR"},"interactive":false}"#,
        )
        .unwrap();
        assert_eq!(b.kind(), Kind::Custom);
        assert_eq!(b.domain.as_deref(), Some("example.org"));
        assert_eq!(b.interactive, Some(false));
        let props = b.props_pairs().unwrap();
        assert!(props.contains(&("plan".into(), "pro".into())));
        assert!(props.contains(&("n".into(), "3".into())));
    }

    #[test]
    fn rejections_name_the_reason() {
        assert_eq!(Beacon::parse(b"{").unwrap_err(), Rejection::MalformedJson);
        assert_eq!(Beacon::parse(b"[1]").unwrap_err(), Rejection::InvalidField);
        assert_eq!(
            Beacon::parse(&[0xff, 0xfe]).unwrap_err(),
            Rejection::MalformedJson
        );
        assert_eq!(
            Beacon::parse(br#"{"zzz":1}"#).unwrap_err(),
            Rejection::UnknownField
        );
        assert_eq!(
            Beacon::parse(br#"{"n":5}"#).unwrap_err(),
            Rejection::InvalidField
        );
        assert_eq!(
            Beacon::parse(br#"{"n":"x","p":{"a":{"deep":1}}}"#)
                .unwrap()
                .props_pairs(),
            Err(Rejection::InvalidField)
        );
    }

    #[test]
    fn text_borrows_from_the_body_unless_escaped_and_null_is_absent() {
        let b = Beacon::parse(
            br#"{"n":"pageview","u":"https:\/\/a.nl\/x","d":null,"r":"https://b.nl/"}"#,
        )
        .unwrap();
        assert!(matches!(b.name, Some(Cow::Borrowed("pageview"))));
        assert!(matches!(&b.url, Some(Cow::Owned(u)) if u == "https://a.nl/x"));
        assert_eq!(b.domain, None);
        assert!(matches!(b.referrer, Some(Cow::Borrowed("https://b.nl/"))));
        let b = Beacon::parse(br#"{"name":"x"}"#).unwrap();
        assert_eq!((b.url, b.domain, b.referrer), (None, None, None));
        assert_eq!(
            Beacon::parse(br#"{"u":["x"]}"#).unwrap_err(),
            Rejection::InvalidField
        );
        assert_eq!(
            Beacon::parse(br#"{"r":{"a":1}}"#).unwrap_err(),
            Rejection::InvalidField
        );
    }

    #[test]
    fn old_meta_props_as_encoded_string() {
        let b = Beacon::parse(br#"{"n":"x","u":"https://a.b/","m":"{\"k\":\"v\"}"}"#).unwrap();
        assert_eq!(b.props_pairs().unwrap(), vec![("k".into(), "v".into())]);
    }

    #[test]
    fn bounded_numbers() {
        assert_eq!(bounded(Some(5.0), 100.0), Ok(Some(5.0)));
        assert_eq!(bounded(Some(1e300), 100.0), Ok(Some(100.0)));
        assert_eq!(bounded(Some(-1.0), 100.0), Err(Rejection::InvalidField));
        assert_eq!(bounded(None, 100.0), Ok(None));
    }
}
