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
                FieldError::new(
                    "model",
                    format!(
                        "`{s}` is not a model; expected one of first_touch, last_touch, linear, \
                         time_decay, position_based, markov, shapley"
                    ),
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
        if !(self.half_life_days.is_finite() && self.half_life_days > 0.0) {
            return Err(FieldError::new(
                "half_life_days",
                "must be a positive number of days",
            ));
        }
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
    fn a_zero_half_life_or_order_four_is_refused() {
        let cfg = ModelConfig::new(ModelKind::TimeDecay).with_half_life_days(0.0);
        assert_eq!(cfg.validate().unwrap_err().field, "half_life_days");
        let cfg = ModelConfig::new(ModelKind::Markov).with_markov_order(4);
        assert_eq!(cfg.validate().unwrap_err().field, "markov_order");
        assert!(ModelConfig::new(ModelKind::Markov).validate().is_ok());
    }
}
