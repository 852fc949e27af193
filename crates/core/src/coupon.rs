//! Coupons: a code tied to a partner; a conversion carrying it is a touch of
//! that partner.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// A coupon code, compared case-insensitively (stored upper-case), as shops do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CouponCode(String);

impl CouponCode {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        if s.len() < 2 || s.len() > 64 {
            return Err(FieldError::new("code", "must be 2 to 64 characters long"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(FieldError::new(
                "code",
                "may contain only letters, digits, `_` and `-`",
            ));
        }
        Ok(Self(s.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CouponCode {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<CouponCode> for String {
    fn from(c: CouponCode) -> String {
        c.0
    }
}

/// A stored coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coupon {
    pub id: crate::ids::CouponId,
    pub program_id: crate::ids::ProgramId,
    pub partner_id: crate::ids::PartnerId,
    pub code: CouponCode,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupon_codes_compare_case_insensitively() {
        assert_eq!(
            CouponCode::parse("jane10").unwrap(),
            CouponCode::parse("JANE10").unwrap()
        );
    }

    #[test]
    fn coupon_codes_refuse_spaces_and_symbols() {
        for bad in ["a", "JANE 10", "50%OFF"] {
            assert_eq!(
                CouponCode::parse(bad).unwrap_err().field,
                "code",
                "case {bad:?}"
            );
        }
    }
}
