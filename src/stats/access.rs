//! Who may read a site's stats: bearer tokens from the config (compared by SHA-256), or anyone
//! for a site marked `public`.

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::StatsError;

struct Token {
    sha256: [u8; 32],
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
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                Some(Token {
                    sha256: bytes.try_into().ok()?,
                    sites: t.sites.clone(),
                })
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
            t.sha256 == digest && (t.sites.is_empty() || t.sites.iter().any(|s| s == site))
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
        if self.tokens.iter().any(|t| t.sha256 == digest) {
            Ok(())
        } else {
            Err(StatsError::Unauthorized)
        }
    }
}

/// SHA-256 of the bearer token in an `Authorization` header. Digests, not tokens, are compared,
/// so timing reveals nothing about a token's bytes.
fn bearer_digest(authorization: Option<&str>) -> Result<[u8; 32], StatsError> {
    let token = authorization
        .and_then(|h| h.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(StatsError::Unauthorized)?;
    Ok(Sha256::digest(token.as_bytes()).into())
}

/// A new random token and the config lines that accept it.
pub fn new_token(name: &str) -> (String, String) {
    use rand::TryRngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random number generator works");
    let token = format!("tly_{}", hex::encode(bytes));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let toml = format!("[[api_tokens]]\nname = {name:?}\nsha256 = \"{hash}\"\n# sites = [\"www.example.org\"]  # default: all sites\n");
    (token, toml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash_and_site() {
        let (token, toml) = new_token("web team");
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
