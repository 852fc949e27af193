//! Which model to attribute with, and its parameters (window, half-life, order).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::FieldError;

/// An attribution model, named in the API and CLI by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// All credit to the earliest touch.
    FirstTouch,
    /// All credit to the latest touch (the default model).
    LastTouch,
    /// Equal credit per touch.
    Linear,
    /// Weight `0.5^(age / half_life)` per touch, normalised.
    TimeDecay,
    /// 40 % first, 40 % last, 20 % over the middle touches.
    PositionBased,
    /// Data-driven: removal effects of a fitted Markov chain.
    Markov,
    /// Data-driven: Shapley values of channel coalitions.
    Shapley,
}

impl ModelKind {
    /// Every model, in the order reports list them.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::FirstTouch,
        ModelKind::LastTouch,
        ModelKind::Linear,
        ModelKind::TimeDecay,
        ModelKind::PositionBased,
        ModelKind::Markov,
        ModelKind::Shapley,
    ];

    /// Parse a model name such as `"time_decay"`.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                FieldError::new(
                    "model",
                    format!("`{s}` is not a model; expected one of {}", names.join(", ")),
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::FirstTouch => "first_touch",
            ModelKind::LastTouch => "last_touch",
            ModelKind::Linear => "linear",
            ModelKind::TimeDecay => "time_decay",
            ModelKind::PositionBased => "position_based",
            ModelKind::Markov => "markov",
            ModelKind::Shapley => "shapley",
        }
    }

    /// Whether the model needs a fit over a period's journeys.
    pub fn is_data_driven(self) -> bool {
        matches!(self, ModelKind::Markov | ModelKind::Shapley)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default half-life of `time_decay`, in days.
pub const DEFAULT_HALF_LIFE_DAYS: f64 = 7.0;

/// Longest attribution window, in days (ten years): a program's
/// `window_days` and a what-if's or comparison's `window_days` alike.
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// Shortest `time_decay` half-life: one hour. Below it every touch older
/// than a few days weighs exactly zero in `f64`, and the "decay" silently
/// becomes an equal split.
pub const MIN_HALF_LIFE_DAYS: f64 = 1.0 / 24.0;

/// Longest `time_decay` half-life: as long as the longest window.
pub const MAX_HALF_LIFE_DAYS: f64 = MAX_WINDOW_DAYS as f64;

/// Check an attribution window: 1 to [`MAX_WINDOW_DAYS`] whole days.
///
/// The one rule for every window: a program's setting, and the override of
/// a what-if or a comparison. Zero would exclude every touch.
pub fn check_window_days(field: &str, days: i64) -> Result<u32, FieldError> {
    match u32::try_from(days) {
        Ok(d) if (1..=MAX_WINDOW_DAYS).contains(&d) => Ok(d),
        _ => Err(FieldError::new(
            field,
            format!("must be between 1 and {MAX_WINDOW_DAYS} days"),
        )),
    }
}

/// Check a `time_decay` half-life: [`MIN_HALF_LIFE_DAYS`] (one hour) to
/// [`MAX_HALF_LIFE_DAYS`] days; NaN and infinities are refused.
pub fn check_half_life_days(field: &str, days: f64) -> Result<f64, FieldError> {
    if (MIN_HALF_LIFE_DAYS..=MAX_HALF_LIFE_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(FieldError::new(
            field,
            format!("must be between one hour ({MIN_HALF_LIFE_DAYS:.4} days) and {MAX_HALF_LIFE_DAYS} days"),
        ))
    }
}

/// A model with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub model: ModelKind,
    /// Only touches at most this many days before the conversion count;
    /// `None` means no bound. Touches after the conversion never count.
    pub window_days: Option<u32>,
    /// Half-life of `time_decay` in days (positive, finite); ignored by other models.
    pub half_life_days: f64,
    /// Order (1, 2 or 3) of the Markov chain to fit. Attribution uses the
    /// order of the fit it is given; this is what the server fits with.
    pub markov_order: u8,
}

impl ModelConfig {
    /// `model` with no window, a 7-day half-life and a first-order chain.
    pub fn new(model: ModelKind) -> Self {
        Self {
            model,
            window_days: None,
            half_life_days: DEFAULT_HALF_LIFE_DAYS,
            markov_order: 1,
        }
    }

    pub fn with_window_days(mut self, days: u32) -> Self {
        self.window_days = Some(days);
        self
    }

    pub fn with_half_life_days(mut self, days: f64) -> Self {
        self.half_life_days = days;
        self
    }

    pub fn with_markov_order(mut self, order: u8) -> Self {
        self.markov_order = order;
        self
    }

    /// Check the parameters; [`super::attribute`] calls this first.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(w) = self.window_days {
            check_window_days("window_days", i64::from(w))?;
        }
        check_half_life_days("half_life_days", self.half_life_days)?;
        validate_order(self.markov_order)
    }
}

/// Markov orders supported: states are windows of 1 to 3 consecutive touches.
pub(crate) fn validate_order(order: u8) -> Result<(), FieldError> {
    if (1..=3).contains(&order) {
        Ok(())
    } else {
        Err(FieldError::new("markov_order", "must be 1, 2 or 3"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_name_parses_back_to_its_model() {
        for m in ModelKind::ALL {
            assert_eq!(ModelKind::parse(m.as_str()), Ok(m), "{m}");
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<ModelKind>(&json).unwrap(), m);
        }
    }

    #[test]
    fn an_unknown_model_name_is_refused_naming_the_field() {
        let err = ModelKind::parse("u_shaped").unwrap_err();
        assert_eq!(err.field, "model");
        assert!(err.message.contains("u_shaped"));
    }

    #[test]
    fn windows_and_half_lives_outside_their_bounds_are_refused_naming_the_field() {
        let base = ModelConfig::new(ModelKind::TimeDecay);
        assert!(base.clone().with_window_days(1).validate().is_ok());
        assert!(base
            .clone()
            .with_window_days(MAX_WINDOW_DAYS)
            .validate()
            .is_ok());
        assert!(base
            .clone()
            .with_half_life_days(MIN_HALF_LIFE_DAYS)
            .validate()
            .is_ok());
        assert!(base
            .clone()
            .with_half_life_days(MAX_HALF_LIFE_DAYS)
            .validate()
            .is_ok());
        let cases = [
            (
                "zero window",
                base.clone().with_window_days(0),
                "window_days",
            ),
            (
                "window past ten years",
                base.clone().with_window_days(MAX_WINDOW_DAYS + 1),
                "window_days",
            ),
            (
                "u32::MAX window",
                base.clone().with_window_days(u32::MAX),
                "window_days",
            ),
            (
                "subnormal half-life",
                base.clone().with_half_life_days(1e-320),
                "half_life_days",
            ),
            (
                "half-life under an hour",
                base.clone().with_half_life_days(0.04),
                "half_life_days",
            ),
            (
                "negative half-life",
                base.clone().with_half_life_days(-7.0),
                "half_life_days",
            ),
            (
                "NaN half-life",
                base.clone().with_half_life_days(f64::NAN),
                "half_life_days",
            ),
            (
                "infinite half-life",
                base.clone().with_half_life_days(f64::INFINITY),
                "half_life_days",
            ),
            (
                "half-life past ten years",
                base.clone().with_half_life_days(3650.5),
                "half_life_days",
            ),
        ];
        for (case, cfg, field) in cases {
            assert_eq!(cfg.validate().unwrap_err().field, field, "case {case}");
        }
    }

    #[test]
    fn the_window_rule_takes_any_integer_and_names_the_field_it_is_given() {
        assert_eq!(check_window_days("window_days", 30), Ok(30));
        for (case, v) in [
            ("zero", 0),
            ("negative", -1),
            ("past u32", i64::from(u32::MAX) + 1),
        ] {
            assert_eq!(
                check_window_days("window_days", v).unwrap_err().field,
                "window_days",
                "case {case}"
            );
        }
    }

    #[test]
    fn a_zero_half_life_or_order_four_is_refused() {
        let cfg = ModelConfig::new(ModelKind::TimeDecay).with_half_life_days(0.0);
        assert_eq!(cfg.validate().unwrap_err().field, "half_life_days");
        let cfg = ModelConfig::new(ModelKind::Markov).with_markov_order(4);
        assert_eq!(cfg.validate().unwrap_err().field, "markov_order");
        assert!(ModelConfig::new(ModelKind::Markov).validate().is_ok());
    }
}
