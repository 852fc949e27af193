//! Partners: slugs, statuses and e-mail addresses.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

use crate::FieldError;

/// A partner's slug: unique per program, used as `utm_source` and in `?via=`.
///
/// Lower-case ASCII letters, digits and single hyphens, 2 to 64 characters,
/// not starting or ending with a hyphen, so it is safe in URLs unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let err = |m: &str| Err(FieldError::new("slug", m));
        if s.len() < 2 || s.len() > 64 {
            return err("must be 2 to 64 characters long");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return err("may contain only lower-case letters, digits and hyphens");
        }
        if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
            return err("may not start or end with a hyphen or contain two in a row");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Slug {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

/// Where a partner stands in the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerStatus {
    /// Applied, not yet approved: links work and touches are recorded, so
    /// their credit is there once the partner is approved.
    Pending,
    Active,
    /// Links still redirect, but nothing is recorded or credited.
    Suspended,
}

impl PartnerStatus {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            _ => Err(FieldError::new(
                "status",
                "must be one of pending, active, suspended",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    /// Whether touches of a partner in this status earn credit.
    pub fn credits(&self) -> bool {
        !matches!(self, Self::Suspended)
    }
}

/// An e-mail address, trimmed; the local part keeps its case, the domain is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let err = || FieldError::new("email", format!("`{s}` is not an e-mail address"));
        let (local, domain) = s.rsplit_once('@').ok_or_else(err)?;
        if local.is_empty()
            || local.len() > 64
            || domain.len() < 3
            || domain.len() > 253
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err());
        }
        crate::text::check_plain_text("email", s)?;
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pseudonymous key Tribute stores instead of the address:
    /// hex SHA-256 of the trimmed, lower-cased address (the convention ad
    /// platforms use for hashed e-mail matching, so client-side hashes match).
    pub fn hash(&self) -> String {
        email_hash(&self.0)
    }
}

/// Hex SHA-256 of a trimmed, lower-cased e-mail address.
pub fn email_hash(address: &str) -> String {
    hex::encode(Sha256::digest(address.trim().to_lowercase().as_bytes()))
}

impl TryFrom<String> for Email {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_accepts_lowercase_words_joined_by_hyphens() {
        assert!(Slug::parse("jane-doe").is_ok());
        assert!(Slug::parse("acme42").is_ok());
    }

    #[test]
    fn slug_refuses_unsafe_or_ambiguous_forms() {
        for bad in [
            "", "a", "Jane", "jane doe", "-jane", "jane-", "ja--ne", "jané",
        ] {
            let err = Slug::parse(bad).expect_err(bad);
            assert_eq!(err.field, "slug", "case {bad:?}");
        }
    }

    #[test]
    fn email_hash_ignores_case_and_surrounding_space() {
        let a = Email::parse(" Jane@Example.COM ").unwrap();
        assert_eq!(a.hash(), email_hash("jane@example.com"));
    }

    #[test]
    fn email_refuses_addresses_without_a_domain() {
        for bad in [
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "ja ne@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "case {bad:?}");
        }
    }

    #[test]
    fn labels_and_email_addresses_refuse_control_and_bidi_characters() {
        for (case, v) in [
            ("nul", "Jane\u{0}Doe"),
            ("tab", "Jane\tDoe"),
            ("right-to-left override", "Jane\u{202e}eoD"),
            ("left-to-right isolate", "\u{2066}Jane"),
        ] {
            assert_eq!(
                parse_label("name", v, 200).unwrap_err().field,
                "name",
                "case {case}"
            );
            let email = format!("{v}@example.com");
            assert_eq!(
                Email::parse(&email).unwrap_err().field,
                "email",
                "case {case}"
            );
        }
        assert_eq!(parse_label("tier", " Gold ", 200).unwrap(), "Gold");
    }

    #[test]
    fn suspended_partners_earn_no_credit() {
        assert!(!PartnerStatus::Suspended.credits());
        assert!(PartnerStatus::Active.credits());
    }
}

/// A stored partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partner {
    pub id: crate::ids::PartnerId,
    pub program_id: crate::ids::ProgramId,
    pub slug: Slug,
    pub name: String,
    pub email: Option<Email>,
    /// Where the partner is paid (PayPal, Wise); `email` when unset.
    pub payout_email: Option<Email>,
    pub status: PartnerStatus,
    pub tier: Option<String>,
    /// A partner group (e.g. "agencies"); groups share UTM and rule settings.
    pub group: Option<String>,
    /// The partner whose team this partner is in; the lead earns an override.
    pub team_lead_id: Option<crate::ids::PartnerId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl Partner {
    /// The address payouts go to: the payout e-mail, else the partner's e-mail.
    pub fn payout_address(&self) -> Option<&Email> {
        self.payout_email.as_ref().or(self.email.as_ref())
    }
}

/// Check a free-text label (name, tier, group, UTM value): trimmed, 1 to
/// `max` characters of plain text (see [`crate::text`]).
pub fn parse_label(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    crate::text::PlainText::parse(field, value, max).map(crate::text::PlainText::into_string)
}
