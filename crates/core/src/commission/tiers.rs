//! Tiers: a commission multiplier per partner level, and the automatic
//! promotion and demotion of partners between levels.
//!
//! A tier has a name, a multiplier (basis points, 10 000 = ×1, applied to
//! the partner's commissions by [`super::compute`]), a rank (higher is
//! better) and optionally a threshold: a minimum of attributed revenue or
//! conversions over a rolling window of days.
//!
//! # The rule ([`evaluate`])
//!
//! * A tier **without** a threshold is manual-only: never chosen
//!   automatically, and a partner the owner placed in it stays there until
//!   the owner moves them. A partner whose tier is not among the program's
//!   tiers at all (a label set by hand, or a deleted tier) is left alone too.
//! * Otherwise (no tier, or an automatic tier) the partner belongs in the
//!   **highest-ranked automatic tier whose threshold is met**, or in no tier
//!   when none is met. A threshold of `min: 0` is always met, which is how
//!   an owner makes a base tier every partner falls back to.
//! * The partner moves only when that target differs from the current tier;
//!   promotion may skip ranks, and so may demotion.
//!
//! There is no hysteresis: the caller decides how often to evaluate (daily,
//! say), and each evaluation depends only on the tiers and the statistics.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{BPS_ONE, MAX_MULTIPLIER_BPS};
use crate::money::{Currency, Money, MAX_MINOR};
use crate::partner::parse_label;
use crate::FieldError;

/// The longest window a threshold may look back over: ten years.
pub const MAX_WINDOW_DAYS: u32 = 3650;

/// The longest tier name, in characters.
pub const MAX_TIER_NAME: usize = 64;

/// What a threshold counts over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMetric {
    /// Attributed revenue, in minor units of the program's currency.
    Revenue,
    /// Attributed conversions, a count.
    Conversions,
}

impl TierMetric {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Revenue => "revenue",
            Self::Conversions => "conversions",
        }
    }

    fn of(self, stats: PartnerStats) -> i64 {
        match self {
            Self::Revenue => stats.revenue,
            Self::Conversions => stats.conversions,
        }
    }
}

/// Reach at least `min` of `metric` over the last `window_days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Threshold {
    pub metric: TierMetric,
    /// Minor units for revenue, a count for conversions: 0 to [`MAX_MINOR`].
    pub min: i64,
    /// 1 to [`MAX_WINDOW_DAYS`].
    pub window_days: u32,
}

const THRESHOLD_FIELDS: &[&str] = &["metric", "min", "window_days"];

impl Threshold {
    /// Refuse a threshold outside its bounds, naming `threshold.<field>`.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(0..=MAX_MINOR).contains(&self.min) {
            return Err(min_error());
        }
        if !(1..=MAX_WINDOW_DAYS).contains(&self.window_days) {
            return Err(window_error());
        }
        Ok(())
    }

    /// Whether the partner's statistics over this threshold's window reach it.
    pub fn is_met(&self, stats: PartnerStats) -> bool {
        self.metric.of(stats) >= self.min
    }

    fn parse(v: &Value) -> Result<Self, FieldError> {
        let obj = v.as_object().ok_or_else(|| {
            FieldError::new(
                "threshold",
                r#"must be {"metric": …, "min": …, "window_days": …} or null (a manual-only tier)"#,
            )
        })?;
        if let Some(k) = obj.keys().find(|k| !THRESHOLD_FIELDS.contains(&k.as_str())) {
            return Err(FieldError::new(
                format!("threshold.{k}"),
                "is not part of a threshold",
            ));
        }
        let metric = match obj.get("metric").and_then(Value::as_str) {
            Some("revenue") => TierMetric::Revenue,
            Some("conversions") => TierMetric::Conversions,
            _ => {
                return Err(FieldError::new(
                    "threshold.metric",
                    "must be revenue or conversions",
                ))
            }
        };
        let min = obj
            .get("min")
            .and_then(Value::as_i64)
            .ok_or_else(min_error)?;
        let window_days = obj
            .get("window_days")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(window_error)?;
        let t = Self {
            metric,
            min,
            window_days,
        };
        t.validate()?;
        Ok(t)
    }

    fn to_json(self) -> Value {
        json!({"metric": self.metric.as_str(), "min": self.min, "window_days": self.window_days})
    }
}

fn min_error() -> FieldError {
    FieldError::new(
        "threshold.min",
        format!(
            "must be a whole number from 0 to {MAX_MINOR} \
             (minor units for revenue, a count for conversions)"
        ),
    )
}

fn window_error() -> FieldError {
    FieldError::new(
        "threshold.window_days",
        format!("must be a whole number of days from 1 to {MAX_WINDOW_DAYS}"),
    )
}

/// A partner level: its commission multiplier, its rank (higher is better)
/// and, for an automatic tier, the threshold that earns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Tier {
    /// 1 to [`MAX_TIER_NAME`] characters of plain text, trimmed; what a
    /// partner's `tier` holds.
    pub name: String,
    /// 0 to [`MAX_MULTIPLIER_BPS`]; 10 000 is ×1.
    pub multiplier_bps: u32,
    pub rank: u32,
    /// `None`: a manual-only tier (see the module documentation).
    pub threshold: Option<Threshold>,
}

const TIER_FIELDS: &[&str] = &["name", "multiplier_bps", "rank", "threshold"];
const TIER_ENVELOPE: &[&str] = &["id", "program_id"];

impl Tier {
    /// Whether partners move into and out of this tier automatically.
    pub fn is_automatic(&self) -> bool {
        self.threshold.is_some()
    }

    /// Refuse a tier outside its bounds, naming the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if parse_label("name", &self.name, MAX_TIER_NAME)? != self.name {
            return Err(FieldError::new(
                "name",
                "must not start or end with white space",
            ));
        }
        if self.multiplier_bps > MAX_MULTIPLIER_BPS {
            return Err(multiplier_error());
        }
        self.threshold.as_ref().map_or(Ok(()), Threshold::validate)
    }

    /// Parse the API shape `{"name": "gold", "multiplier_bps": 12000,
    /// "rank": 2, "threshold": {"metric": "revenue", "min": 100000,
    /// "window_days": 90}}` (`threshold` absent or null: manual-only).
    /// `id` and `program_id` may be present and are left to the caller; any
    /// other field is refused. Errors name the field.
    pub fn from_json(v: &Value) -> Result<Tier, FieldError> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !TIER_FIELDS.contains(&k.as_str()) && !TIER_ENVELOPE.contains(&k.as_str()))
        {
            return Err(FieldError::new(k.as_str(), "is not a field of a tier"));
        }
        let name = parse_label(
            "name",
            obj.get("name").and_then(Value::as_str).unwrap_or(""),
            MAX_TIER_NAME,
        )?;
        let multiplier_bps = obj
            .get("multiplier_bps")
            .and_then(Value::as_u64)
            .filter(|m| *m <= u64::from(MAX_MULTIPLIER_BPS))
            .ok_or_else(multiplier_error)? as u32;
        let rank = obj
            .get("rank")
            .and_then(Value::as_u64)
            .and_then(|r| u32::try_from(r).ok())
            .ok_or_else(|| {
                FieldError::new(
                    "rank",
                    format!(
                        "must be a whole number from 0 to {} (higher is better)",
                        u32::MAX
                    ),
                )
            })?;
        let threshold = obj
            .get("threshold")
            .filter(|t| !t.is_null())
            .map(Threshold::parse)
            .transpose()?;
        Ok(Tier {
            name,
            multiplier_bps,
            rank,
            threshold,
        })
    }

    /// The API shape [`Tier::from_json`] reads.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), json!(self.name));
        obj.insert("multiplier_bps".into(), json!(self.multiplier_bps));
        obj.insert("rank".into(), json!(self.rank));
        obj.insert(
            "threshold".into(),
            self.threshold.map_or(Value::Null, Threshold::to_json),
        );
        Value::Object(obj)
    }
}

fn multiplier_error() -> FieldError {
    FieldError::new(
        "multiplier_bps",
        format!("must be basis points from 0 to {MAX_MULTIPLIER_BPS} (10000 is ×1)"),
    )
}

impl TryFrom<Value> for Tier {
    type Error = FieldError;
    fn try_from(v: Value) -> Result<Self, FieldError> {
        Self::from_json(&v)
    }
}

impl From<Tier> for Value {
    fn from(t: Tier) -> Value {
        t.to_json()
    }
}

/// Check a program's tiers together: each valid, names unique (ignoring
/// case, so "Gold" and "gold" cannot both exist) and ranks unique, so
/// [`evaluate`] never has to choose between equals. Errors name `name` or
/// `rank` and the tier already holding it, so a server adding one tier to
/// the stored ones can report the error on the new tier's field.
pub fn validate_set(tiers: &[Tier]) -> Result<(), FieldError> {
    for (i, t) in tiers.iter().enumerate() {
        t.validate()?;
        if let Some(other) = tiers[..i]
            .iter()
            .find(|o| o.name.to_lowercase() == t.name.to_lowercase())
        {
            return Err(FieldError::new(
                "name",
                format!(
                    "`{}` is already the name of a tier (`{}`)",
                    t.name, other.name
                ),
            ));
        }
        if let Some(other) = tiers[..i].iter().find(|o| o.rank == t.rank) {
            return Err(FieldError::new(
                "rank",
                format!("{} is already the rank of tier `{}`", t.rank, other.name),
            ));
        }
    }
    Ok(())
}

/// A partner's attributed results over one window of days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerStats {
    /// Minor units of the program's currency (net of refunds; may be negative).
    pub revenue: i64,
    pub conversions: i64,
}

/// A move between tiers, with the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChange {
    /// The tier the partner leaves (`None`: had none).
    pub from: Option<String>,
    /// The tier the partner joins (`None`: no tier any more).
    pub to: Option<String>,
    /// E.g. "revenue over the last 90 days is 1234.56 EUR ≥ 1000.00 EUR for gold".
    pub reason: String,
}

/// The distinct windows (days) the automatic tiers look at, ascending: the
/// statistics [`evaluate`] may ask for.
pub fn stat_windows(tiers: &[Tier]) -> Vec<u32> {
    let mut w: Vec<u32> = tiers
        .iter()
        .filter_map(|t| t.threshold.map(|th| th.window_days))
        .collect();
    w.sort_unstable();
    w.dedup();
    w
}

/// Where a partner currently in `current` belongs, by the rule in the
/// module documentation; `None` when they stay. `stats(window_days)` gives
/// the partner's results over the last `window_days` days (asked at most
/// once per window, and not at all when the partner's tier is manual);
/// `currency` is the program's, to write revenue in the reason.
///
/// `tiers` should pass [`validate_set`]; should two automatic tiers share a
/// rank anyway, the one with the smaller name wins, whatever their order.
pub fn evaluate(
    tiers: &[Tier],
    current: Option<&str>,
    currency: Currency,
    stats: impl Fn(u32) -> PartnerStats,
) -> Option<TierChange> {
    let current_tier = match current {
        None => None,
        Some(name) => match tiers.iter().find(|t| t.name == name) {
            Some(t) if t.is_automatic() => Some(t),
            // Manual-only, or not a tier of the program: set by hand, left alone.
            _ => return None,
        },
    };
    let windows: Vec<(u32, PartnerStats)> = stat_windows(tiers)
        .into_iter()
        .map(|w| (w, stats(w)))
        .collect();
    let stats_for = |th: &Threshold| {
        windows
            .iter()
            .find(|(w, _)| *w == th.window_days)
            .map_or_else(PartnerStats::default, |(_, s)| *s)
    };
    let target = tiers
        .iter()
        .filter(|t| t.threshold.is_some_and(|th| th.is_met(stats_for(&th))))
        .max_by(|a, b| a.rank.cmp(&b.rank).then_with(|| b.name.cmp(&a.name)));
    if target.map(|t| t.name.as_str()) == current {
        return None;
    }
    let mut reasons = Vec::new();
    if let Some((t, th)) = current_tier.and_then(|t| t.threshold.map(|th| (t, th))) {
        if !th.is_met(stats_for(&th)) {
            reasons.push(sentence(t, &th, stats_for(&th), currency));
        }
    }
    if let Some((t, th)) = target.and_then(|t| t.threshold.map(|th| (t, th))) {
        reasons.push(sentence(t, &th, stats_for(&th), currency));
    }
    Some(TierChange {
        from: current.map(str::to_owned),
        to: target.map(|t| t.name.clone()),
        reason: reasons.join("; "),
    })
}

/// "revenue over the last 90 days is 1234.56 EUR ≥ 1000.00 EUR for gold",
/// or "…is 3, below 5 for silver" when the threshold is not met.
fn sentence(tier: &Tier, th: &Threshold, stats: PartnerStats, currency: Currency) -> String {
    let show = |v: i64| match th.metric {
        TierMetric::Revenue => Money::new(v, currency).to_string(),
        TierMetric::Conversions => v.to_string(),
    };
    let window = match th.window_days {
        1 => "the last day".to_owned(),
        n => format!("the last {n} days"),
    };
    let value = th.metric.of(stats);
    let comparison = if value >= th.min {
        format!("{} ≥ {}", show(value), show(th.min))
    } else {
        format!("{}, below {}", show(value), show(th.min))
    };
    format!(
        "{} over {window} is {comparison} for {}",
        th.metric.as_str(),
        tier.name
    )
}

/// The multiplier of the tier named `tier`: [`BPS_ONE`] (×1) for no tier
/// or a name that is not one of `tiers`.
pub fn multiplier_for(tiers: &[Tier], tier: Option<&str>) -> u32 {
    tier.and_then(|name| tiers.iter().find(|t| t.name == name))
        .map_or(BPS_ONE, |t| t.multiplier_bps)
}
