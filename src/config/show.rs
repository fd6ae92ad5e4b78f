//! The effective settings as TOML, for `tally check-config`: the file with every default filled
//! in, readable as a config file again, and without a secret.
//!
//! Secrets are `SecretString`s that serde never serializes; each one that is set is shown as
//! `"(hidden)"` instead, so a reader sees that it is set and the output still parses as the
//! file's TOML (it does not validate: `"(hidden)"` is no digest).

use secrecy::ExposeSecret;
use toml::Value;

use super::Config;
use crate::error::Error;

/// What a set secret is shown as.
pub const HIDDEN: &str = "(hidden)";

/// The effective settings of a validated config as a TOML document.
pub fn effective_toml(config: &Config) -> Result<String, Error> {
    let file = &config.file;
    let unwritable = |e: toml::ser::Error| Error::Config(format!("cannot show the config: {e}"));
    let mut value = Value::try_from(file).map_err(unwritable)?;
    let hidden = || Value::String(HIDDEN.into());
    let Some(root) = value.as_table_mut() else {
        return Err(Error::Config("cannot show the config".into()));
    };
    if let Some(server) = root.get_mut("server").and_then(Value::as_table_mut) {
        // The derived default (`http://{listen}`) is what the printed snippet uses.
        server.insert(
            "public_url".into(),
            Value::String(config.server.public_url.clone()),
        );
    }
    if !file.clickhouse.password.expose_secret().is_empty() {
        if let Some(ch) = root.get_mut("clickhouse").and_then(Value::as_table_mut) {
            ch.insert("password".into(), hidden());
        }
    }
    // Entries of arrays of tables, in the file's order: which of their secrets are set.
    let mut mark = |path: &[&str], key: &str, set: Vec<bool>| {
        let mut node: Option<&mut Value> = None;
        for (k, part) in path.iter().enumerate() {
            node = if k == 0 {
                root.get_mut(*part)
            } else {
                node.and_then(|n| n.get_mut(*part))
            };
        }
        let Some(entries) = node.and_then(Value::as_array_mut) else {
            return;
        };
        for (entry, set) in entries.iter_mut().zip(set) {
            if let (Some(t), true) = (entry.as_table_mut(), set) {
                t.insert(key.into(), hidden());
            }
        }
    };
    mark(&["api_tokens"], "sha256", vec![true; file.api_tokens.len()]);
    mark(
        &["dashboard", "share_links"],
        "sha256",
        vec![true; file.dashboard.share_links.len()],
    );
    mark(
        &["dashboard", "users"],
        "password_hash",
        file.dashboard
            .users
            .iter()
            .map(|u| u.password_hash.is_some())
            .collect(),
    );
    // Goals with their effective names (the default `Visit /page` or the event name filled in).
    if let Some(sites) = root.get_mut("sites").and_then(Value::as_array_mut) {
        for (site, validated) in sites.iter_mut().zip(&config.sites) {
            let goals = site.get_mut("goals").and_then(Value::as_array_mut);
            for (goal, g) in goals.into_iter().flatten().zip(&validated.goals) {
                if let Some(t) = goal.as_table_mut() {
                    t.insert("name".into(), Value::String(g.name.clone()));
                }
            }
        }
    }
    toml::to_string_pretty(&value).map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    #[test]
    fn shows_every_setting_and_no_secret() {
        let digest = "ab".repeat(32);
        let hash = "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        let text = format!(
            "[clickhouse]\npassword = \"hunter2\"\n\
             [[api_tokens]]\nname = \"web\"\nsha256 = \"{digest}\"\n\
             [[dashboard.share_links]]\nsite = \"a.example\"\nsha256 = \"{digest}\"\n\
             [[dashboard.users]]\nname = \"sso-only\"\n\
             [[dashboard.users]]\nname = \"u\"\npassword_hash = \"{hash}\"\n\
             [[sites]]\ndomain = \"a.example\"\nexclude_paths = [\"/admin/**\"]\n\
             [[sites.goals]]\npage = \"/afval*\"\n"
        );
        let config = Config::parse(&text).unwrap();
        let shown = effective_toml(&config).unwrap();
        for secret in ["hunter2", "abab", "$argon2", "aGFzaGhh"] {
            assert!(!shown.contains(secret), "{secret} in:\n{shown}");
        }
        // It parses back as the file's TOML, with the defaults filled in and the secrets marked.
        let back: ConfigFile = toml::from_str(&shown).unwrap();
        assert_eq!(back.ingest.queue_capacity, 50_000);
        assert_eq!(
            back.server.public_url.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(back.sites[0].exclude_paths, ["/admin/**"]);
        // Goals as configured, with the name reports show filled in.
        assert_eq!(back.sites[0].goals[0].page.as_deref(), Some("/afval*"));
        assert_eq!(
            back.sites[0].goals[0].name.as_deref(),
            Some("Visit /afval*")
        );
        assert_eq!(back.sites[0].time_zone, "Europe/Amsterdam");
        assert_eq!(back.clickhouse.password.expose_secret(), HIDDEN);
        assert_eq!(back.api_tokens[0].sha256.expose_secret(), HIDDEN);
        assert_eq!(back.dashboard.share_links[0].sha256.expose_secret(), HIDDEN);
        assert!(back.dashboard.users[0].password_hash.is_none());
        assert_eq!(
            back.dashboard.users[1]
                .password_hash
                .as_ref()
                .map(|h| h.expose_secret().to_string()),
            Some(HIDDEN.to_string())
        );
        // Apart from the secrets and the derived public_url, the same settings as read.
        let mut again = Value::try_from(&back).unwrap();
        again["server"].as_table_mut().unwrap().remove("public_url");
        again["sites"][0]["goals"][0]
            .as_table_mut()
            .unwrap()
            .remove("name");
        assert_eq!(again, Value::try_from(&config.file).unwrap());

        // No password set: nothing is marked hidden.
        let plain =
            effective_toml(&Config::parse("[[sites]]\ndomain = \"a.example\"\n").unwrap()).unwrap();
        assert!(!plain.contains(HIDDEN), "{plain}");
    }
}
