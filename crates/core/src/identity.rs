//! Identities: the identifiers a person is known by, and stitching them
//! into one person.
//!
//! Identifiers seen together (an identify call, an alias, a conversion that
//! carries several) belong to one person, across devices. Stitching is a
//! union-find over identifier keys: [`stitch`] decides, from the identifiers
//! already known and the groups seen together, which person each key belongs
//! to and which persons merge. Storage applies the plan.
//!
//! Who claims a group matters ([`Claim`]): anyone can read a publishable key
//! out of a web page, so the browser's claims are recorded as unverified and
//! never merge a person that has a verified identifier (see [`stitch`]'s
//! module for the rule and why).

mod stitch;
#[cfg(test)]
mod stitch_proptests;

pub use stitch::{stitch, Claim, Group, Known, StitchPlan};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
use crate::partner::email_hash;
use crate::partner::Email;
use crate::FieldError;

/// The identifiers an event or conversion may carry, normalised.
///
/// E-mail addresses and phone numbers are only ever kept hashed (SHA-256 of
/// the normalised form), so a database leak does not leak contact details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub email_hash: Option<String>,
    pub customer_id: Option<String>,
    pub phone_hash: Option<String>,
}

/// Raw identity fields as clients send them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawIdentifiers {
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub email_hash: Option<String>,
    pub customer_id: Option<String>,
    pub phone: Option<String>,
    pub phone_hash: Option<String>,
}

/// An opaque identifier as clients send it: trimmed, blank means none, at
/// most 200 printable characters; errors name `field`.
pub fn opaque(field: &str, v: Option<&str>) -> Result<Option<String>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 200 => Err(FieldError::new(
            field,
            "must be at most 200 printable characters",
        )),
        Some(s) => {
            crate::text::check_plain_text(field, s)?;
            Ok(Some(s.to_owned()))
        }
    }
}

fn sha256_hex(field: &str, v: Option<&str>) -> Result<Option<String>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(s.to_ascii_lowercase()))
        }
        Some(_) => Err(FieldError::new(
            field,
            "must be a hex SHA-256 digest (64 characters)",
        )),
    }
}

/// Hex SHA-256 of a phone number reduced to `+` and digits (E.164 style).
pub fn phone_hash(phone: &str) -> Result<String, FieldError> {
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 6 || digits.len() > 15 {
        return Err(FieldError::new("phone", "must have 6 to 15 digits"));
    }
    let normalised = format!("+{digits}");
    Ok(hex::encode(Sha256::digest(normalised.as_bytes())))
}

/// The domain of a raw e-mail address, lower-cased (`None` without an
/// `@` and something after it): what the disposable-address rule needs,
/// without keeping the address.
pub fn email_domain(email: Option<&str>) -> Option<String> {
    let (_, domain) = email?.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.');
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

impl RawIdentifiers {
    /// Normalise: hash e-mail and phone, check lengths; errors name the field.
    pub fn parse(&self) -> Result<Identifiers, FieldError> {
        let email_hash = match (self.email.as_deref(), self.email_hash.as_deref()) {
            (Some(e), _) if !e.trim().is_empty() => Some(Email::parse(e)?.hash()),
            (_, h) => sha256_hex("email_hash", h)?,
        };
        let phone_hash = match (self.phone.as_deref(), self.phone_hash.as_deref()) {
            (Some(p), _) if !p.trim().is_empty() => Some(phone_hash(p)?),
            (_, h) => sha256_hex("phone_hash", h)?,
        };
        Ok(Identifiers {
            anonymous_id: opaque("anonymous_id", self.anonymous_id.as_deref())?,
            user_id: opaque("user_id", self.user_id.as_deref())?,
            email_hash,
            customer_id: opaque("customer_id", self.customer_id.as_deref())?,
            phone_hash,
        })
    }
}

impl Identifiers {
    /// The identifier keys (`kind:value`), in the order a conversion looks
    /// for its person: anonymous id, user id, e-mail hash, customer id, phone.
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(5);
        for (kind, v) in [
            ("anonymous_id", &self.anonymous_id),
            ("user_id", &self.user_id),
            ("email_hash", &self.email_hash),
            ("customer_id", &self.customer_id),
            ("phone_hash", &self.phone_hash),
        ] {
            if let Some(v) = v {
                out.push(format!("{kind}:{v}"));
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }
}

/// What starts the identity key of an anonymous id: `anonymous_id:…`, the
/// one key only the person's own browser holds (see [`stitch`]).
pub const ANONYMOUS_KEY_PREFIX: &str = "anonymous_id:";

/// What starts the identity key of a click id: `click_id:clk_…`. Storage
/// reads click ids back out of these keys, so it derives their offset from
/// this prefix rather than hard-coding its length.
pub const CLICK_KEY_PREFIX: &str = "click_id:";

/// The key under which a click id joins a person's identifiers.
pub fn click_key(click_id: &str) -> String {
    format!("{CLICK_KEY_PREFIX}{click_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_identifiers_refuse_control_and_bidi_characters_naming_the_field() {
        for (case, raw, field) in [
            (
                "nul in an anonymous id",
                RawIdentifiers {
                    anonymous_id: Some("a\u{0}b".into()),
                    ..Default::default()
                },
                "anonymous_id",
            ),
            (
                "escape in a user id",
                RawIdentifiers {
                    user_id: Some("u\u{1b}[2J".into()),
                    ..Default::default()
                },
                "user_id",
            ),
            (
                "bidi override in a customer id",
                RawIdentifiers {
                    customer_id: Some("c\u{202e}1".into()),
                    ..Default::default()
                },
                "customer_id",
            ),
        ] {
            assert_eq!(raw.parse().unwrap_err().field, field, "case {case}");
        }
    }

    #[test]
    fn email_is_hashed_and_never_kept_in_clear() {
        let raw = RawIdentifiers {
            email: Some("Jane@Example.com".into()),
            ..Default::default()
        };
        let ids = raw.parse().unwrap();
        assert_eq!(
            ids.email_hash.as_deref(),
            Some(email_hash("jane@example.com").as_str())
        );
        assert!(!format!("{ids:?}").contains("Example"));
    }

    #[test]
    fn malformed_identifiers_name_their_field() {
        let bad_email = RawIdentifiers {
            email: Some("not-an-email".into()),
            ..Default::default()
        };
        assert_eq!(bad_email.parse().unwrap_err().field, "email");
        let bad_hash = RawIdentifiers {
            email_hash: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(bad_hash.parse().unwrap_err().field, "email_hash");
        let bad_phone = RawIdentifiers {
            phone: Some("12".into()),
            ..Default::default()
        };
        assert_eq!(bad_phone.parse().unwrap_err().field, "phone");
    }

    #[test]
    fn the_anonymous_id_key_starts_with_the_prefix_stitching_looks_for() {
        let ids = Identifiers {
            anonymous_id: Some("a1".into()),
            user_id: Some("u1".into()),
            ..Default::default()
        };
        let anonymous: Vec<String> = ids
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(ANONYMOUS_KEY_PREFIX))
            .collect();
        assert_eq!(anonymous, vec![format!("{ANONYMOUS_KEY_PREFIX}a1")]);
    }

    #[test]
    fn phone_numbers_hash_the_same_however_formatted() {
        assert_eq!(
            phone_hash("+1 (555) 010-9999").unwrap(),
            phone_hash("15550109999").unwrap()
        );
    }
}
