//! API keys: scopes, the keys themselves and who they authenticate,
//! generation, and the hash that is stored instead of the key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{random_base62, ApiKeyId, PartnerId, ProgramId};
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

/// A stored key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub scope: Scope,
    /// For partner keys: the one partner the key may see.
    pub partner_id: Option<PartnerId>,
    /// For partner and ingest keys: the program the key belongs to.
    pub program_id: Option<ProgramId>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Who a request acts as, resolved from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Partner {
        partner_id: PartnerId,
        program_id: ProgramId,
    },
    Ingest {
        program_id: Option<ProgramId>,
    },
}

impl ApiKey {
    /// Who the key acts as; `None` for a partner key that lost its partner
    /// or program (such a key authenticates nobody).
    pub fn principal(&self) -> Option<Principal> {
        Some(match self.scope {
            Scope::Admin => Principal::Admin,
            Scope::Partner => Principal::Partner {
                partner_id: self.partner_id.clone()?,
                program_id: self.program_id.clone()?,
            },
            Scope::Ingest => Principal::Ingest {
                program_id: self.program_id.clone(),
            },
        })
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
