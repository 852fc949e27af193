//! API keys: scopes, generation and the hash that is stored instead of the key.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::random_base62;
use crate::FieldError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything.
    Admin,
    /// Only one partner's own records, links, clicks and metrics.
    Partner,
    /// Send-only: events and conversions (the public-safe write key).
    Ingest,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "admin" => Ok(Self::Admin),
            "partner" => Ok(Self::Partner),
            "ingest" => Ok(Self::Ingest),
            _ => Err(FieldError::new(
                "scope",
                "must be one of admin, partner, ingest",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Partner => "partner",
            Self::Ingest => "ingest",
        }
    }
}

/// A newly made key: the secret token (shown once) and the hash to store.
pub struct NewKey {
    pub token: String,
    pub hash: String,
}

impl NewKey {
    /// A random key: `trb_<scope>_<40 base62>` (≈238 bits of entropy). The
    /// scope in the prefix helps people and secret scanners tell keys apart.
    pub fn generate(scope: Scope) -> Self {
        let token = format!("trb_{}_{}", scope.as_str(), random_base62(40));
        let hash = hash_token(&token);
        Self { token, hash }
    }
}

/// The stored form of a key. A fast hash is right here: the token is 238
/// random bits, so there is nothing to brute-force that a slow hash would
/// protect (unlike passwords, which get argon2).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_hash_to_what_is_stored() {
        let a = NewKey::generate(Scope::Admin);
        let b = NewKey::generate(Scope::Admin);
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("trb_admin_"));
        assert_eq!(hash_token(&a.token), a.hash);
        assert_ne!(a.hash, a.token);
    }
}
