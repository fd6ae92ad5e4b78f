//! Who may read a site's stats: bearer tokens from the config (compared by SHA-256, in constant
//! time), or anyone for a site marked `public`.

use crate::config::Config;
use crate::credentials::SecretDigest;
use crate::error::StatsError;

struct Token {
    sha256: SecretDigest,
    /// Empty: every site.
    sites: Vec<String>,
}

pub struct Access {
    tokens: Vec<Token>,
    public_sites: Vec<String>,
}

impl Access {
    pub fn from_config(config: &Config) -> Access {
        let tokens = config
            .api_tokens
            .iter()
            .map(|t| Token {
                sha256: t.sha256.clone(),
                sites: t.sites.clone(),
            })
            .collect();
        let public_sites = config
            .sites
            .iter()
            .filter(|s| s.public)
            .map(|s| s.domain.clone())
            .collect();
        Access {
            tokens,
            public_sites,
        }
    }

    /// Ok when `authorization` (the raw header) may read `site`. The site must exist (checked by
    /// the caller) for the answer to mean anything; an unknown site gets the same error.
    pub fn check(&self, site: &str, authorization: Option<&str>) -> Result<(), StatsError> {
        if self.public_sites.iter().any(|s| s == site) {
            return Ok(());
        }
        let digest = bearer_digest(authorization)?;
        let ok = self.tokens.iter().any(|t| {
            t.sha256.same(&digest) && (t.sites.is_empty() || t.sites.iter().any(|s| s == site))
        });
        if ok {
            Ok(())
        } else {
            Err(StatsError::Unauthorized)
        }
    }
}

impl Access {
    /// Ok when `authorization` holds any configured token (for site-independent pages such as
    /// the privacy report).
    pub fn check_any(&self, authorization: Option<&str>) -> Result<(), StatsError> {
        let digest = bearer_digest(authorization)?;
        if self.tokens.iter().any(|t| t.sha256.same(&digest)) {
            Ok(())
        } else {
            Err(StatsError::Unauthorized)
        }
    }
}

/// SHA-256 of the bearer token in an `Authorization` header. Digests, not tokens, are compared,
/// so timing reveals nothing about a token's bytes.
fn bearer_digest(authorization: Option<&str>) -> Result<SecretDigest, StatsError> {
    let token = authorization
        .and_then(|h| h.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(StatsError::Unauthorized)?;
    Ok(SecretDigest::of(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn tokens_are_checked_by_hash_and_site() {
        let (token, toml) = crate::credentials::new_api_token("web team");
        let config = Config::parse(&format!(
            "{toml}\n[[api_tokens]]\nname = \"b only\"\nsha256 = \"{}\"\nsites = [\"b.example\"]\n\
             [[sites]]\ndomain = \"a.example\"\n[[sites]]\ndomain = \"b.example\"\n\
             [[sites]]\ndomain = \"c.example\"\npublic = true\n",
            hex::encode(Sha256::digest(b"b-secret"))
        ))
        .unwrap();
        let access = Access::from_config(&config);
        let bearer = format!("Bearer {token}");
        assert_eq!(access.check("a.example", Some(&bearer)), Ok(()));
        assert_eq!(
            access.check("a.example", None),
            Err(StatsError::Unauthorized)
        );
        assert_eq!(
            access.check("a.example", Some("Bearer wrong")),
            Err(StatsError::Unauthorized)
        );
        assert_eq!(
            access.check("a.example", Some("Bearer b-secret")),
            Err(StatsError::Unauthorized)
        );
        assert_eq!(access.check("b.example", Some("Bearer b-secret")), Ok(()));
        assert_eq!(access.check("c.example", None), Ok(()));
        assert_eq!(
            access.check("a.example", Some(&token)),
            Err(StatsError::Unauthorized)
        );
    }
}
