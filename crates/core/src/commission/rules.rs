//! Reward rules: what an owner promises partners, parsed from the API shape.
//!
//! ```json
//! {"program_id": "prg_…", "name": "Pro plan, first year",
//!  "event": "sale", "kind": "percentage", "rate_bps": 3000,
//!  "duration": {"months": 12},
//!  "conditions": {"field": "sale.sku", "op": "eq", "value": "pro"},
//!  "scope": {"group": "agencies"},
//!  "cap": {"amount": 100000, "period": "month"}}
//! ```
//!
//! [`RuleTerms`] is what the owner writes; [`RewardRule`] adds the id,
//! program and version the store gives it. A rule is edited by storing a
//! new version under the same id: commissions record the version they were
//! computed with (rate lock), so an edit never changes them.
//!
//! Both parse from JSON with [`RuleTerms::from_json`] / [`RewardRule::from_json`]
//! (every error a [`FieldError`] naming the field, unknown fields refused)
//! and serialise back to the same shape, so they also (de)serialise with
//! serde through `serde_json::Value`.
//!
//! Defaults: `duration` is `once` for sale rules (an owner who says
//! nothing pays the first payment only, the cheaper reading); lead and
//! click rules have no payments to count, so their duration is `lifetime`
//! and no other is accepted. No `scope` is the program; no `cap` is none.

use chrono::{DateTime, Datelike, Months, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::conditions::Condition;
use crate::ids::{LinkId, PartnerId, ProgramId, RewardRuleId};
use crate::money::MAX_MINOR;
use crate::partner::parse_label;
use crate::FieldError;

/// What a rule pays on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleEvent {
    Sale,
    Lead,
    Click,
}

impl RuleEvent {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "sale" => Ok(Self::Sale),
            "lead" => Ok(Self::Lead),
            "click" => Ok(Self::Click),
            _ => Err(FieldError::new("event", "must be one of sale, lead, click")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sale => "sale",
            Self::Lead => "lead",
            Self::Click => "click",
        }
    }
}

/// How much a rule pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reward {
    /// Basis points of the value (or of each matching line), 0 to 10 000.
    /// Zero is allowed: a more specific rule paying nothing excludes a link,
    /// a partner or a group from a broader rule.
    Percentage { rate_bps: u32 },
    /// A fixed amount in minor units (per matching unit when line by line).
    Fixed { amount: i64 },
}

/// Which of a customer's payments a sale rule pays on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    /// The customer's first payment only.
    Once,
    /// Payments made less than N months after the customer's first
    /// (`months: 12` pays twelve monthly payments, not the thirteenth).
    Months(u32),
    /// Every payment.
    Lifetime,
}

impl Duration {
    fn parse(v: &Value) -> Result<Self, FieldError> {
        let err = || FieldError::new("duration", r#"must be "once", {"months": N} or "lifetime""#);
        match v {
            Value::String(s) if s == "once" => Ok(Self::Once),
            Value::String(s) if s == "lifetime" => Ok(Self::Lifetime),
            Value::Object(o) if o.len() == 1 => {
                let n = o.get("months").ok_or_else(err)?;
                match n.as_u64() {
                    Some(n @ 1..=1200) => Ok(Self::Months(n as u32)),
                    _ => Err(FieldError::new(
                        "duration.months",
                        "must be a whole number of months from 1 to 1200",
                    )),
                }
            }
            _ => Err(err()),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Self::Once => json!("once"),
            Self::Months(n) => json!({"months": n}),
            Self::Lifetime => json!("lifetime"),
        }
    }

    /// Whether a payment at `paid_at` by a customer who first paid at
    /// `first` (none: this is the first) is covered.
    pub fn covers(self, first: Option<DateTime<Utc>>, paid_at: DateTime<Utc>) -> bool {
        let Some(first) = first.filter(|f| paid_at > *f) else {
            return true; // the first payment is covered by every duration
        };
        match self {
            Self::Once => false,
            Self::Months(n) => first
                .checked_add_months(Months::new(n))
                .is_none_or(|end| paid_at < end),
            Self::Lifetime => true,
        }
    }
}

/// How specific a scope is; more specific wins (`Link` > … > `Program`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeLevel {
    Program,
    Group,
    Partner,
    Link,
}

/// Whom a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Program,
    Group(String),
    Partner(PartnerId),
    Link(LinkId),
}

impl Scope {
    fn parse(v: &Value) -> Result<Self, FieldError> {
        let err = || {
            FieldError::new(
                "scope",
                r#"must be "program", {"group": …}, {"partner_id": …} or {"link_id": …}"#,
            )
        };
        let obj = match v {
            Value::Null => return Ok(Self::Program),
            Value::String(s) if s == "program" => return Ok(Self::Program),
            Value::Object(o) if o.len() == 1 => o,
            _ => return Err(err()),
        };
        let (key, v) = obj.iter().next().ok_or_else(err)?;
        let text = v
            .as_str()
            .ok_or_else(|| FieldError::new(format!("scope.{key}"), "must be a string"))?;
        let at = |e: FieldError| e.at(format!("scope.{key}"));
        match key.as_str() {
            "group" => Ok(Self::Group(parse_label("scope.group", text, 100)?)),
            "partner_id" => Ok(Self::Partner(PartnerId::parse(text).map_err(at)?)),
            "link_id" => Ok(Self::Link(LinkId::parse(text).map_err(at)?)),
            _ => Err(err()),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Program => json!("program"),
            Self::Group(g) => json!({"group": g}),
            Self::Partner(p) => json!({"partner_id": p}),
            Self::Link(l) => json!({"link_id": l}),
        }
    }

    pub fn level(&self) -> ScopeLevel {
        match self {
            Self::Program => ScopeLevel::Program,
            Self::Group(_) => ScopeLevel::Group,
            Self::Partner(_) => ScopeLevel::Partner,
            Self::Link(_) => ScopeLevel::Link,
        }
    }
}

/// The period a cap counts over, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
    AllTime,
}

impl CapPeriod {
    fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "all_time" => Ok(Self::AllTime),
            _ => Err(FieldError::new(
                "cap.period",
                "must be one of day, week, month, all_time",
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::AllTime => "all_time",
        }
    }

    /// When the period holding `at` began (none for all time): what the
    /// store sums a partner's commissions from to fill [`super::Earned`].
    pub fn start(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let day = at.date_naive();
        let date = match self {
            Self::Day => day,
            Self::Week => day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday())),
            Self::Month => day.with_day(1)?,
            Self::AllTime => return None,
        };
        Some(date.and_time(NaiveTime::MIN).and_utc())
    }

    /// When the period holding `at` ends (none for all time): commissions
    /// of later periods never count against it, so a conversion recorded
    /// late, or planned again, sees its own period only.
    pub fn end(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.start(at)?;
        match self {
            Self::Day => start.checked_add_signed(TimeDelta::days(1)),
            Self::Week => start.checked_add_signed(TimeDelta::days(7)),
            Self::Month => start.checked_add_months(Months::new(1)),
            Self::AllTime => None,
        }
    }
}

/// At most `amount` minor units per partner per period: the partner's
/// commissions in the program over the period (whatever rule made them)
/// never exceed it once this rule has paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub amount: i64,
    pub period: CapPeriod,
}

impl Cap {
    fn parse(v: &Value) -> Result<Self, FieldError> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldError::new("cap", r#"must be {"amount": …, "period": …}"#))?;
        if let Some(k) = obj.keys().find(|k| *k != "amount" && *k != "period") {
            return Err(FieldError::new(format!("cap.{k}"), "is not part of a cap"));
        }
        let amount = obj
            .get("amount")
            .and_then(Value::as_i64)
            .filter(|a| (0..=MAX_MINOR).contains(a))
            .ok_or_else(|| {
                FieldError::new(
                    "cap.amount",
                    format!("must be a whole number of minor units from 0 to {MAX_MINOR}"),
                )
            })?;
        let period = CapPeriod::parse(
            obj.get("period")
                .and_then(Value::as_str)
                .ok_or_else(|| FieldError::new("cap.period", "is required"))?,
        )?;
        Ok(Self { amount, period })
    }
}

/// A rule as the owner writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTerms {
    pub name: String,
    pub event: RuleEvent,
    pub reward: Reward,
    pub duration: Duration,
    /// None: the rule applies whenever its event and scope do.
    pub conditions: Option<Condition>,
    pub scope: Scope,
    pub cap: Option<Cap>,
}

/// The fields of [`RuleTerms`], and the envelope [`RewardRule`] adds.
const TERMS: &[&str] = &[
    "name",
    "event",
    "kind",
    "rate_bps",
    "amount",
    "duration",
    "conditions",
    "scope",
    "cap",
];
const ENVELOPE: &[&str] = &["id", "program_id", "version"];

fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

impl RuleTerms {
    /// Parse the API shape. `program_id` (and `id`, `version`) may be
    /// present and are left to the caller; any other unknown field is refused.
    pub fn from_json(v: &Value) -> Result<Self, FieldError> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !TERMS.contains(&k.as_str()) && !ENVELOPE.contains(&k.as_str()))
        {
            return Err(FieldError::new(
                k.as_str(),
                "is not a field of a reward rule",
            ));
        }
        let name = parse_label(
            "name",
            present(obj, "name").and_then(Value::as_str).unwrap_or(""),
            200,
        )?;
        let event = RuleEvent::parse(
            present(obj, "event")
                .and_then(Value::as_str)
                .ok_or_else(|| FieldError::new("event", "is required: sale, lead or click"))?,
        )?;
        let reward = match present(obj, "kind").and_then(Value::as_str) {
            Some("percentage") => {
                if present(obj, "amount").is_some() {
                    return Err(FieldError::new(
                        "amount",
                        "is for fixed rules; a percentage takes rate_bps",
                    ));
                }
                let rate = present(obj, "rate_bps")
                    .and_then(Value::as_u64)
                    .filter(|r| *r <= 10_000)
                    .ok_or_else(|| {
                        FieldError::new("rate_bps", "must be basis points from 0 to 10000")
                    })?;
                Reward::Percentage {
                    rate_bps: rate as u32,
                }
            }
            Some("fixed") => {
                if present(obj, "rate_bps").is_some() {
                    return Err(FieldError::new(
                        "rate_bps",
                        "is for percentage rules; a fixed rule takes amount",
                    ));
                }
                let amount = present(obj, "amount")
                    .and_then(Value::as_i64)
                    .filter(|a| (0..=MAX_MINOR).contains(a))
                    .ok_or_else(|| {
                        FieldError::new(
                            "amount",
                            format!("must be a whole number of minor units from 0 to {MAX_MINOR}"),
                        )
                    })?;
                Reward::Fixed { amount }
            }
            _ => return Err(FieldError::new("kind", "must be percentage or fixed")),
        };
        let duration = match (event, present(obj, "duration")) {
            (RuleEvent::Sale, None) => Duration::Once,
            (RuleEvent::Sale, Some(v)) => Duration::parse(v)?,
            (_, None) => Duration::Lifetime,
            (_, Some(v)) if Duration::parse(v) == Ok(Duration::Lifetime) => Duration::Lifetime,
            (_, Some(_)) => {
                return Err(FieldError::new(
                    "duration",
                    "applies to sale rules only (leads and clicks have no payments to count)",
                ))
            }
        };
        let conditions = present(obj, "conditions")
            .map(|c| Condition::parse(c, "conditions"))
            .transpose()?;
        let scope = Scope::parse(obj.get("scope").unwrap_or(&Value::Null))?;
        let cap = present(obj, "cap").map(Cap::parse).transpose()?;
        Ok(Self {
            name,
            event,
            reward,
            duration,
            conditions,
            scope,
            cap,
        })
    }

    /// The API shape [`RuleTerms::from_json`] reads.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), json!(self.name));
        obj.insert("event".into(), json!(self.event.as_str()));
        match self.reward {
            Reward::Percentage { rate_bps } => {
                obj.insert("kind".into(), json!("percentage"));
                obj.insert("rate_bps".into(), json!(rate_bps));
            }
            Reward::Fixed { amount } => {
                obj.insert("kind".into(), json!("fixed"));
                obj.insert("amount".into(), json!(amount));
            }
        }
        obj.insert("duration".into(), self.duration.to_json());
        obj.insert(
            "conditions".into(),
            self.conditions
                .as_ref()
                .map_or(Value::Null, Condition::to_json),
        );
        obj.insert("scope".into(), self.scope.to_json());
        obj.insert(
            "cap".into(),
            self.cap.map_or(
                Value::Null,
                |c| json!({"amount": c.amount, "period": c.period.as_str()}),
            ),
        );
        Value::Object(obj)
    }
}

/// A stored rule: the terms under an id, a program and a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct RewardRule {
    pub id: RewardRuleId,
    pub program_id: ProgramId,
    /// 1 for a new rule, one more with each edit.
    pub version: u32,
    pub terms: RuleTerms,
}

impl RewardRule {
    /// Parse a stored rule (the API shape with `id`, `program_id`, `version`).
    pub fn from_json(v: &Value) -> Result<Self, FieldError> {
        let terms = RuleTerms::from_json(v)?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| FieldError::new(k, "is required"))
        };
        let id = RewardRuleId::parse(text("id")?).map_err(|e| e.at("id"))?;
        let program_id = ProgramId::parse(text("program_id")?).map_err(|e| e.at("program_id"))?;
        let version = v
            .get("version")
            .and_then(Value::as_u64)
            .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
            .ok_or_else(|| FieldError::new("version", "must be a whole number from 1"))?
            as u32;
        Ok(Self {
            id,
            program_id,
            version,
            terms,
        })
    }

    /// The API shape [`RewardRule::from_json`] reads.
    pub fn to_json(&self) -> Value {
        let mut v = self.terms.to_json();
        if let Value::Object(obj) = &mut v {
            obj.insert("id".into(), json!(self.id));
            obj.insert("program_id".into(), json!(self.program_id));
            obj.insert("version".into(), json!(self.version));
        }
        v
    }
}

impl TryFrom<Value> for RewardRule {
    type Error = FieldError;
    fn try_from(v: Value) -> Result<Self, FieldError> {
        Self::from_json(&v)
    }
}

impl From<RewardRule> for Value {
    fn from(r: RewardRule) -> Value {
        r.to_json()
    }
}
