//! Dashboard passwords: argon2 PHC hashes made, checked and recognised (`argon2` crate).

use argon2::password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};

/// An argon2 PHC string for `password` (default parameters: Argon2id, 19 MiB, 2 passes).
pub fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// A hash of `password` with the same parameters as `template`, so that checking it costs the
/// same (used for unknown names, which must take as long as known ones).
pub fn hash_like(template: Option<&str>, password: &str) -> String {
    let params = template
        .and_then(|t| PasswordHash::new(t).ok())
        .and_then(|h| Params::try_from(&h).ok())
        .unwrap_or_default();
    Argon2::from(params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Whether `hash` is a PHC string of an argon2 variant.
pub fn is_argon2(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2_phc_strings() {
        let cheap = Argon2::from(Params::new(256, 1, 1, None).unwrap())
            .hash_password(b"x")
            .unwrap()
            .to_string();
        let h = hash("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        // The dummy for unknown names costs what the configured hashes cost.
        assert!(hash_like(Some(&cheap), "y").starts_with("$argon2id$v=19$m=256,t=1,p=1$"));
        assert!(hash_like(None, "y").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(is_argon2(&h));
        assert!(verify(&h, "pw") && !verify(&h, "pW"));
        assert!(!is_argon2(
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
        ));
        assert!(!is_argon2("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA"));
    }
}
