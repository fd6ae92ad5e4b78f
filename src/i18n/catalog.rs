//! A language's messages, as written in `locales/LANG.toml`: nested TOML tables of strings,
//! read into one map from dotted keys (`[dashboard.headline] visitors = "…"` is
//! `dashboard.headline.visitors`). TOML because translators can read and edit it without
//! tooling, and tally already reads its configuration with the same crate.

use std::collections::BTreeMap;

/// The messages of one language, by dotted key.
#[derive(Debug, Clone)]
pub struct Catalog {
    messages: BTreeMap<String, String>,
}

impl Catalog {
    /// Reads a locale file. Every value must be a string (or a table of them).
    pub fn parse(source: &str) -> Result<Catalog, String> {
        let table: toml::Table = source.parse().map_err(|e| format!("{e}"))?;
        let mut messages = BTreeMap::new();
        flatten("", &table, &mut messages)?;
        Ok(Catalog { messages })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.messages.get(key).map(String::as_str)
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }

    /// Every key with its message.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.messages.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            other => return Err(format!("{key}: a message must be a string, not {other}")),
        }
    }
    Ok(())
}
