//! Secrets people hold (stats API tokens, share-link secrets, dashboard passwords) and what the
//! config keeps of them: a SHA-256 digest or an argon2 hash, never the secret itself.
//!
//! New secrets come from the operating system's generator; digests are compared in constant time
//! (`subtle`), so timing tells nothing about where two differ. The `tally token`, `tally
//! share-link` and `tally hash-password` commands print a new secret once, with the config lines
//! that accept it.

use rand::TryRng;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::error::Error;

/// The SHA-256 of a secret, as the config holds it (64 lower-case hex digits in the file).
/// Its `Debug` shows nothing of the bytes.
#[derive(Debug)]
pub struct SecretDigest(SecretBox<[u8; 32]>);

impl Clone for SecretDigest {
    fn clone(&self) -> Self {
        Self(SecretBox::new(Box::new(*self.0.expose_secret())))
    }
}

impl SecretDigest {
    /// The digest of `secret`.
    pub fn of(secret: &str) -> Self {
        Self(SecretBox::new(Box::new(
            Sha256::digest(secret.as_bytes()).into(),
        )))
    }

    /// Parses 64 lower-case hex digits (the only spelling the config accepts, so that one
    /// digest cannot be written two ways).
    pub fn from_hex(hex_digits: &str) -> Option<Self> {
        let lower_hex = hex_digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex_digits.len() != 64 || !lower_hex {
            return None;
        }
        let bytes: [u8; 32] = hex::decode(hex_digits).ok()?.try_into().ok()?;
        Some(Self(SecretBox::new(Box::new(bytes))))
    }

    /// Whether `secret` hashes to this digest, in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        self.same(&Self::of(secret))
    }

    /// Whether two digests are equal, in constant time.
    pub fn same(&self, other: &SecretDigest) -> bool {
        self.0.expose_secret().ct_eq(other.0.expose_secret()).into()
    }
}

/// Whether two byte strings are equal, without an early exit.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `n` random bytes from the operating system, as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random number generator works");
    hex::encode(bytes)
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A new stats API token and the config lines that accept it (`tally token NAME`).
pub fn new_api_token(name: &str) -> (String, String) {
    let token = format!("tly_{}", random_hex(24));
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let toml = format!(
        "[[api_tokens]]\nname = {}\nsha256 = \"{hash}\"\n# sites = [\"www.example.org\"]  # default: all sites\n",
        toml_string(name)
    );
    (token, toml)
}

/// A new share-link secret for `site`, and the config lines that accept it (`tally share-link`;
/// the secret goes in the link, only its SHA-256 in the config).
pub fn new_share_link(site: &str) -> (String, String) {
    let secret = random_hex(24);
    let digest = hex::encode(Sha256::digest(secret.as_bytes()));
    let toml = format!(
        "[[dashboard.share_links]]\nsite = {}\nsha256 = \"{digest}\"\n",
        toml_string(site)
    );
    (secret, toml)
}

/// Whether `name` may be a dashboard user name.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a user name has 1 to 64 characters".into());
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "user name {name:?} may not start or end with spaces or hold control characters"
        ));
    }
    Ok(())
}

/// The config lines for a dashboard user `name` with this password, hashed (`tally
/// hash-password NAME`).
pub fn user_lines(name: &str, password: &str) -> Result<String, Error> {
    check_user_name(name).map_err(Error::Config)?;
    if password.chars().count() < 8 {
        return Err(Error::Config(
            "the password needs at least 8 characters".into(),
        ));
    }
    let hash = crate::password::hash(password).map_err(Error::Config)?;
    Ok(format!(
        "[[dashboard.users]]\nname = {}\npassword_hash = \"{hash}\"\n# sites = [\"www.example.org\"]  # default: all sites\n",
        toml_string(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lower_case_hex_only() {
        let d = "ab".repeat(32);
        assert!(SecretDigest::from_hex(&d).is_some());
        assert!(SecretDigest::from_hex(&d.to_uppercase()).is_none());
        assert!(SecretDigest::from_hex(&d[2..]).is_none());
        assert!(SecretDigest::from_hex(&format!("{}zz", &d[2..])).is_none());
        assert!(SecretDigest::of("x").same(&SecretDigest::of("x")));
        assert!(!SecretDigest::of("x").same(&SecretDigest::of("y")));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
