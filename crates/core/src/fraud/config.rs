//! A program's fraud settings: which rules count and how much, the review
//! threshold, and each rule's parameters. Stored as JSON with the program;
//! read and changed through `GET/PATCH /api/v1/programs/{id}/fraud`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// Every rule: its name, default weight (0 to 100: what it adds to a
/// score, as a chance of fraud in percent), and what it checks.
pub const RULES: &[(&str, u8, &str)] = &[
    // Clicks: a click with any reason is flagged, kept, and left out of
    // unique clicks and attribution.
    (
        "bot_user_agent",
        100,
        "the user agent is a known bot or crawler",
    ),
    (
        "implausible_browser",
        60,
        "no Accept-Language, or a headless browser's markers",
    ),
    (
        "ip_velocity",
        70,
        "too many clicks from one IP within a minute or an hour",
    ),
    (
        "partner_velocity",
        40,
        "too many clicks for one partner within a minute",
    ),
    (
        "link_velocity",
        40,
        "too many clicks on one link within a minute",
    ),
    (
        "duplicate_click",
        30,
        "the same visitor clicked the same link moments ago",
    ),
    (
        "paid_search_click",
        80,
        "a paid-search click id through a partner link where brand bidding is forbidden",
    ),
    (
        "banned_referrer",
        90,
        "the referrer's domain is on the program's banned list",
    ),
    // Conversions: the score decides whether commissions are held.
    (
        "self_referral",
        90,
        "the buyer's e-mail, user id, IP or payment fingerprint is the partner's own",
    ),
    (
        "disposable_email",
        40,
        "the buyer's e-mail is at a disposable-address service",
    ),
    (
        "duplicate_order",
        70,
        "the same order id came in from another source",
    ),
    (
        "duplicate_customer_amount",
        40,
        "the same customer paid the same amount within the window",
    ),
    (
        "above_amount",
        100,
        "the value is above the program's review amount",
    ),
    (
        "shared_account",
        50,
        "the partner shares a payout account, e-mail or sign-up IP with another partner",
    ),
    ("suspicious_click", 30, "the credited click was flagged"),
    (
        "fast_conversion",
        40,
        "click to conversion far faster than the program's own (below its 1st percentile)",
    ),
    (
        "conversion_rate_outlier",
        30,
        "the partner's conversion rate is an outlier in the program (robust z-score)",
    ),
    (
        "refund_rate_outlier",
        30,
        "the partner's refund rate is an outlier in the program (robust z-score)",
    ),
    (
        "click_volume_jump",
        20,
        "the partner's clicks jumped against their own history",
    ),
];

/// Click velocity limits (clicks within the window; above is suspicious).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VelocityLimits {
    pub per_ip_per_minute: u32,
    pub per_ip_per_hour: u32,
    pub per_partner_per_minute: u32,
    pub per_link_per_minute: u32,
}

impl Default for VelocityLimits {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 10,
            per_ip_per_hour: 60,
            per_partner_per_minute: 600,
            per_link_per_minute: 300,
        }
    }
}

/// A program's fraud settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    /// Off: nothing is scored or held (clicks from bots are still flagged).
    pub enabled: bool,
    /// A conversion scoring this or more is held for review (0 to 100).
    pub review_threshold: u8,
    /// A click whose reasons score this or more (1 to 100) is suspicious:
    /// kept, but left out of unique clicks and attribution. Below it the
    /// reasons are kept as evidence only (a double click alone, say).
    pub click_threshold: u8,
    /// Weights by rule name, overriding [`RULES`]' defaults; 0 turns a
    /// rule off.
    pub weights: BTreeMap<String, u8>,
    /// Conversions above this value (minor units of the program's
    /// currency) go to review (`above_amount`); none: no limit.
    pub review_above_amount: Option<i64>,
    /// Paid-search click ids through partner links are suspicious.
    pub forbid_brand_bidding: bool,
    /// `utm_campaign` values allowed to carry paid-search click ids anyway.
    pub allowed_campaigns: Vec<String>,
    /// Referrer domains whose clicks are refused credit (a domain matches
    /// itself and its subdomains).
    pub banned_referrers: Vec<String>,
    pub velocity: VelocityLimits,
    /// A second click by the same visitor on the same link within this
    /// many seconds is a duplicate.
    pub duplicate_click_seconds: u32,
    /// The same customer paying the same amount within this many hours is
    /// a duplicate.
    pub duplicate_conversion_hours: u32,
    /// A robust z-score at least this far from the program's median makes
    /// a partner's rate an outlier.
    pub outlier_z: f64,
}

impl Default for FraudConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            review_threshold: 60,
            click_threshold: 50,
            weights: BTreeMap::new(),
            review_above_amount: None,
            forbid_brand_bidding: false,
            allowed_campaigns: Vec::new(),
            banned_referrers: Vec::new(),
            velocity: VelocityLimits::default(),
            duplicate_click_seconds: 30,
            duplicate_conversion_hours: 24,
            outlier_z: 3.5,
        }
    }
}

impl FraudConfig {
    /// A rule's weight in this program (0 if the rule is unknown or off).
    pub fn weight(&self, rule: &str) -> u8 {
        if let Some(w) = self.weights.get(rule) {
            return *w;
        }
        RULES
            .iter()
            .find(|(name, _, _)| *name == rule)
            .map_or(0, |(_, w, _)| *w)
    }

    /// Apply a JSON patch (the fields given replace the stored ones) and
    /// check the result; errors name the field.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Self, FieldError> {
        let Some(fields) = patch.as_object() else {
            return Err(FieldError::new("body", "must be a JSON object"));
        };
        let mut merged = serde_json::to_value(self).expect("a config serializes");
        for (k, v) in fields {
            merged[k] = v.clone();
        }
        let next: Self = serde_json::from_value(merged).map_err(|e| {
            let text = e.to_string();
            let field = fields
                .keys()
                .find(|k| text.contains(&format!("`{k}`")))
                .cloned()
                .or_else(|| fields.keys().next().cloned())
                .unwrap_or_else(|| "body".into());
            FieldError::new(field, text)
        })?;
        next.check()?;
        Ok(next)
    }

    /// The rules a stored config may hold.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.review_threshold > 100 {
            return Err(FieldError::new("review_threshold", "must be 0 to 100"));
        }
        if !(1..=100).contains(&self.click_threshold) {
            return Err(FieldError::new("click_threshold", "must be 1 to 100"));
        }
        for (rule, w) in &self.weights {
            if !RULES.iter().any(|(name, _, _)| name == rule) {
                return Err(FieldError::new(
                    format!("weights.{rule}"),
                    "is not a rule; see GET /api/v1/programs/{id}/fraud for the list",
                ));
            }
            if *w > 100 {
                return Err(FieldError::new(
                    format!("weights.{rule}"),
                    "must be 0 to 100",
                ));
            }
        }
        if let Some(a) = self.review_above_amount {
            crate::money::check_amount("review_above_amount", a)?;
        }
        for (i, d) in self.banned_referrers.iter().enumerate() {
            let ok = !d.is_empty()
                && d.len() <= 253
                && d.contains('.')
                && d.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !ok {
                return Err(FieldError::new(
                    format!("banned_referrers[{i}]"),
                    "must be a lower-case domain such as spam.example",
                ));
            }
        }
        for (i, c) in self.allowed_campaigns.iter().enumerate() {
            crate::partner::parse_label(&format!("allowed_campaigns[{i}]"), c, 200)?;
        }
        let v = &self.velocity;
        if [
            v.per_ip_per_minute,
            v.per_ip_per_hour,
            v.per_partner_per_minute,
            v.per_link_per_minute,
        ]
        .contains(&0)
        {
            return Err(FieldError::new("velocity", "limits must be at least 1"));
        }
        if !(self.outlier_z.is_finite() && (1.0..=20.0).contains(&self.outlier_z)) {
            return Err(FieldError::new("outlier_z", "must be between 1 and 20"));
        }
        if self.duplicate_conversion_hours > 24 * 365 {
            return Err(FieldError::new(
                "duplicate_conversion_hours",
                "must be at most a year (8760 hours)",
            ));
        }
        // The click counters remember a visitor's last click on a link for
        // an hour (`clicks::Velocity`).
        if self.duplicate_click_seconds > 3_600 {
            return Err(FieldError::new(
                "duplicate_click_seconds",
                "must be at most an hour (3600 seconds)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_come_from_the_rule_table_and_weights_override_them() {
        let mut c = FraudConfig::default();
        assert_eq!(c.weight("self_referral"), 90);
        assert_eq!(c.weight("no_such_rule"), 0);
        c.weights.insert("self_referral".into(), 0);
        assert_eq!(c.weight("self_referral"), 0);
    }

    #[test]
    fn a_patch_replaces_only_the_fields_given_and_is_checked() {
        let c = FraudConfig::default();
        let p = c
            .patched(&json!({"review_threshold": 80, "weights": {"disposable_email": 10}}))
            .unwrap();
        assert_eq!(p.review_threshold, 80);
        assert_eq!(p.weight("disposable_email"), 10);
        assert_eq!(p.duplicate_click_seconds, 30);
        let e = c.patched(&json!({"weights": {"made_up": 10}})).unwrap_err();
        assert_eq!(e.field, "weights.made_up");
        let e = c.patched(&json!({"review_threshold": 101})).unwrap_err();
        assert_eq!(e.field, "review_threshold");
        let e = c.patched(&json!({"colour": "red"})).unwrap_err();
        assert_eq!(e.field, "colour");
        let e = c
            .patched(&json!({"banned_referrers": ["Spam.example"]}))
            .unwrap_err();
        assert_eq!(e.field, "banned_referrers[0]");
        let e = c
            .patched(&json!({"review_above_amount": i64::MAX}))
            .unwrap_err();
        assert_eq!(e.field, "review_above_amount");
    }

    #[test]
    fn every_rule_has_a_unique_name_and_a_weight_within_100() {
        let mut names: Vec<&str> = RULES.iter().map(|(n, _, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
        assert!(RULES.iter().all(|(_, w, _)| *w <= 100));
    }
}
