//! Fraud and quality: rules that flag a click or a conversion, statistical
//! signals measured against the program's own behaviour, and a risk score
//! from 0 to 100 that explains itself (each reason names its rule, the
//! evidence, and what it added to the score).
//!
//! Pure: the server gathers the facts (the click's headers, the partner's
//! own identifiers, the program's distributions) and passes them in with
//! the program's [`FraudConfig`] and `now`; the store keeps the verdicts.
//!
//! - [`clicks`]: bots and implausible browsers, velocity per IP, partner
//!   and link, duplicate clicks, paid-search click ids, banned referrers.
//! - [`conversions`]: self-referral, disposable e-mails, duplicates, above
//!   an amount, shared accounts, and the statistical signals
//!   ([`stats`]: click-to-conversion time, conversion- and refund-rate
//!   outliers by robust z-score, click-volume jumps); the score.

use serde::{Deserialize, Serialize};

pub mod clicks;
pub mod config;
pub mod conversions;
pub mod disposable;
pub mod stats;

pub use config::FraudConfig;

/// Why a click or conversion looks wrong: the rule, what it saw, and how
/// much it added to the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule's name, e.g. `self_referral` (stable: configuration and
    /// reports name rules by it).
    pub rule: String,
    /// What the rule saw, for the owner (never shown to the partner).
    pub evidence: String,
    /// The points this reason added to the score (its weight).
    pub contribution: u8,
}

/// A verdict: the score (0 to 100) and its reasons, strongest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Risk {
    pub score: u8,
    pub reasons: Vec<Reason>,
}

impl Risk {
    /// Combine reasons into a score: each is an independent chance of
    /// fraud (its weight in percent), so the score is `1 - Π(1 - wᵢ)`,
    /// rounded, never above 100; reasons are sorted strongest first.
    pub fn from_reasons(mut reasons: Vec<Reason>) -> Self {
        reasons.sort_by(|a, b| {
            b.contribution
                .cmp(&a.contribution)
                .then(a.rule.cmp(&b.rule))
        });
        let score = score_of(&reasons);
        Self { score, reasons }
    }

    /// Whether a click with these reasons is suspicious in this program:
    /// left out of unique clicks and attribution (bots always are).
    pub fn flags_click(reasons: &[Reason], config: &FraudConfig) -> bool {
        reasons.iter().any(|r| r.rule == "bot_user_agent")
            || score_of(reasons) >= config.click_threshold
    }

    /// Whether the score holds the conversion's commissions for review.
    pub fn holds(&self, config: &FraudConfig) -> bool {
        config.enabled && self.score >= config.review_threshold
    }
}

/// The noisy-or of the reasons' weights, in points (0 to 100).
pub fn score_of(reasons: &[Reason]) -> u8 {
    let clean: f64 = reasons
        .iter()
        .map(|r| 1.0 - f64::from(r.contribution.min(100)) / 100.0)
        .product();
    ((1.0 - clean) * 100.0).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(rule: &str, w: u8) -> Reason {
        Reason {
            rule: rule.into(),
            evidence: String::new(),
            contribution: w,
        }
    }

    #[test]
    fn no_reason_scores_zero_and_one_reason_scores_its_weight() {
        assert_eq!(Risk::from_reasons(vec![]).score, 0);
        assert_eq!(Risk::from_reasons(vec![reason("a", 40)]).score, 40);
    }

    #[test]
    fn a_click_is_flagged_at_the_threshold_and_a_bot_always() {
        let config = FraudConfig::default();
        assert!(!Risk::flags_click(
            &[reason("duplicate_click", 30)],
            &config
        ));
        assert!(Risk::flags_click(
            &[reason("duplicate_click", 30), reason("link_velocity", 40)],
            &config
        ));
        assert!(Risk::flags_click(&[reason("bot_user_agent", 1)], &config));
        assert!(!Risk::flags_click(&[], &config));
    }

    #[test]
    fn reasons_combine_like_independent_chances_and_never_pass_100() {
        let r = Risk::from_reasons(vec![reason("a", 50), reason("b", 50)]);
        assert_eq!(r.score, 75);
        let r = Risk::from_reasons(vec![reason("a", 100), reason("b", 30)]);
        assert_eq!(r.score, 100);
        assert_eq!(r.reasons[0].rule, "a", "strongest first");
    }
}
