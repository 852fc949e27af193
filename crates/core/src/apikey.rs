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
    /// Send-only: events and conversions. What an ingest key may send
    /// depends on its [`KeyKind`].
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

/// Whether a key may be seen by anyone (like Stripe's `pk_…` keys) or is
/// kept on the owner's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Kept on servers: the server API and postbacks. Admin and partner
    /// keys are always secret, and so is every ingest key made before key
    /// kinds existed.
    Secret,
    /// Readable by anyone (the browser snippet, a Segment write key): an
    /// ingest key that may send only events, leads and pending conversions,
    /// through `/collect` and `/v1/*`.
    Publishable,
}

impl KeyKind {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "secret" => Ok(Self::Secret),
            "publishable" => Ok(Self::Publishable),
            _ => Err(FieldError::new(
                "kind",
                "must be one of secret, publishable",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Publishable => "publishable",
        }
    }
}

/// A stored key (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub scope: Scope,
    /// Only ingest keys may be publishable.
    pub kind: KeyKind,
    /// For partner keys: the one partner the key may see.
    pub partner_id: Option<PartnerId>,
    /// For partner and ingest keys: the program the key belongs to.
    pub program_id: Option<ProgramId>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the key stopped working; a revoked key authenticates nobody.
    pub revoked_at: Option<DateTime<Utc>>,
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
        /// A publishable key may send only events, leads and pending
        /// conversions, through `/collect` and `/v1/*`.
        kind: KeyKind,
    },
}

impl Principal {
    /// Whether the request comes with a key anyone may have read (the
    /// snippet's, a Segment write key): it may only send events, leads and
    /// pending conversions, through `/collect` and `/v1/*`.
    pub fn is_publishable(&self) -> bool {
        matches!(
            self,
            Self::Ingest {
                kind: KeyKind::Publishable,
                ..
            }
        )
    }
}

impl ApiKey {
    /// Who the key acts as; `None` for a key that authenticates nobody: a
    /// revoked key, a partner key that lost its partner or program, or a
    /// publishable key of another scope than ingest.
    pub fn principal(&self) -> Option<Principal> {
        if self.revoked_at.is_some() {
            return None;
        }
        Some(match (self.scope, self.kind) {
            (Scope::Admin, KeyKind::Secret) => Principal::Admin,
            (Scope::Partner, KeyKind::Secret) => Principal::Partner {
                partner_id: self.partner_id.clone()?,
                program_id: self.program_id.clone()?,
            },
            (Scope::Ingest, kind) => Principal::Ingest {
                program_id: self.program_id.clone(),
                kind,
            },
            (Scope::Admin | Scope::Partner, KeyKind::Publishable) => return None,
        })
    }
}

/// A newly made key: the secret token (shown once) and the hash to store.
pub struct NewKey {
    pub token: String,
    pub hash: String,
}

/// What starts every publishable key (and no secret one).
pub const PUBLISHABLE_PREFIX: &str = "trb_pk_";

impl NewKey {
    /// A random secret key: `trb_<scope>_<40 base62>` (≈238 bits of
    /// entropy). The scope in the prefix helps people and secret scanners
    /// tell keys apart.
    pub fn generate(scope: Scope) -> Self {
        Self::from_token(format!("trb_{}_{}", scope.as_str(), random_base62(40)))
    }

    /// A random publishable ingest key: `trb_pk_<40 base62>`, so a key
    /// found in a page is recognisably one that may be there (secret
    /// scanners can skip it), as with Stripe's `pk_`.
    pub fn publishable() -> Self {
        Self::from_token(format!("{PUBLISHABLE_PREFIX}{}", random_base62(40)))
    }

    /// A random key of `scope` and `kind` (publishable: ingest keys only).
    pub fn of(scope: Scope, kind: KeyKind) -> Self {
        match kind {
            KeyKind::Secret => Self::generate(scope),
            KeyKind::Publishable => Self::publishable(),
        }
    }

    fn from_token(token: String) -> Self {
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

    #[test]
    fn a_publishable_key_says_so_and_no_secret_key_looks_like_one() {
        let pk = NewKey::of(Scope::Ingest, KeyKind::Publishable);
        assert!(pk.token.starts_with(PUBLISHABLE_PREFIX), "{}", pk.token);
        assert_eq!(hash_token(&pk.token), pk.hash);
        for scope in [Scope::Admin, Scope::Partner, Scope::Ingest] {
            let sk = NewKey::of(scope, KeyKind::Secret);
            assert!(!sk.token.starts_with(PUBLISHABLE_PREFIX), "{}", sk.token);
        }
    }

    fn key(scope: Scope, kind: KeyKind) -> ApiKey {
        ApiKey {
            id: ApiKeyId::generate(),
            scope,
            kind,
            partner_id: None,
            program_id: Some(ProgramId::generate()),
            name: None,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            revoked_at: None,
        }
    }

    #[test]
    fn only_a_publishable_ingest_key_is_a_publishable_principal() {
        let pk = key(Scope::Ingest, KeyKind::Publishable)
            .principal()
            .unwrap();
        assert!(pk.is_publishable());
        let sk = key(Scope::Ingest, KeyKind::Secret).principal().unwrap();
        assert!(!sk.is_publishable());
        assert_eq!(
            key(Scope::Admin, KeyKind::Secret).principal(),
            Some(Principal::Admin)
        );
        // A publishable admin key would be an admin key in every page.
        assert_eq!(key(Scope::Admin, KeyKind::Publishable).principal(), None);
    }

    #[test]
    fn a_revoked_key_authenticates_nobody() {
        let mut k = key(Scope::Ingest, KeyKind::Secret);
        k.revoked_at = Some(k.created_at);
        assert_eq!(k.principal(), None);
    }
}
