//! A program's commission terms, kept beside its settings: the team
//! override levels and the smallest payout a partner is sent.

use serde::{Deserialize, Serialize};

use crate::commission::OverridePlan;
use crate::FieldError;

/// A program's commission settings, kept beside [`super::ProgramSettings`]: the
/// team override levels and the smallest payout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionTerms {
    /// Basis points a team lead earns per level of its team (level 1
    /// first); empty: no overrides.
    pub override_levels_bps: Vec<u32>,
    /// The smallest amount (minor units) a payout sends a partner; smaller
    /// balances wait for the next batch.
    pub payout_min_amount: i64,
}

impl CommissionTerms {
    /// Check both fields, naming the one that is wrong: the levels as
    /// [`OverridePlan::new`] takes them (or none), the minimum from 0 to
    /// [`crate::money::MAX_MINOR`].
    pub fn validate(&self) -> Result<(), FieldError> {
        self.overrides()?;
        crate::money::check_amount("payout_min_amount", self.payout_min_amount)?;
        Ok(())
    }

    /// The override plan, `None` when the program pays no overrides.
    pub fn overrides(&self) -> Result<Option<OverridePlan>, FieldError> {
        if self.override_levels_bps.is_empty() {
            return Ok(None);
        }
        OverridePlan::new(self.override_levels_bps.clone()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commission_terms_take_no_overrides_or_a_valid_plan_and_a_minimum_in_range() {
        let terms = |levels: Vec<u32>, min: i64| CommissionTerms {
            override_levels_bps: levels,
            payout_min_amount: min,
        };
        assert_eq!(CommissionTerms::default().overrides(), Ok(None));
        assert_eq!(
            terms(vec![1000, 500], 0)
                .overrides()
                .unwrap()
                .unwrap()
                .depth(),
            2
        );
        for (case, t, field) in [
            (
                "levels above 100%",
                terms(vec![6000, 5000], 0),
                "override_levels_bps",
            ),
            (
                "eleven levels",
                terms(vec![10; 11], 0),
                "override_levels_bps",
            ),
            ("a negative minimum", terms(vec![], -1), "payout_min_amount"),
            (
                "a minimum past the largest amount",
                terms(vec![], crate::money::MAX_MINOR + 1),
                "payout_min_amount",
            ),
        ] {
            assert_eq!(t.validate().unwrap_err().field, field, "case {case}");
        }
        assert!(terms(vec![10_000], crate::money::MAX_MINOR)
            .validate()
            .is_ok());
    }
}
