//! Conditions: when a reward rule applies, as AND/OR groups of tests.
//!
//! ```json
//! {"all": [
//!   {"field": "sale.sku", "op": "in", "value": ["pro", "team"]},
//!   {"any": [
//!     {"field": "customer.country", "op": "eq", "value": "DE"},
//!     {"field": "partner.tier", "op": "eq", "value": "gold"}
//!   ]}
//! ]}
//! ```
//!
//! Fields: `sale.sku`, `sale.value` (minor units), `sale.currency`,
//! `sale.payment` (`new` or `recurring`), `sale.metadata.<key>`,
//! `customer.country`, `customer.source`, `partner.tier`, `partner.group`,
//! `partner.revenue` (minor units to date), `partner.conversions` (to date).
//! Text fields take `eq`, `ne`, `in`, `not_in`; numbers take `eq`, `ne`,
//! `gt`, `gte`, `lt`, `lte`; metadata takes both (compared as text, or as
//! integers with the ordering operators).
//!
//! Two choices worth knowing:
//! * **A test on a fact that is not known is false**, whatever the
//!   operator (`customer.country ne "US"` does not hold when the country is
//!   unknown): a rule never pays on a guess.
//! * **`sale.sku` is tested line by line.** A rule that mentions it is
//!   computed per product line: it pays on the lines for which the whole
//!   condition holds with `sale.sku` read as that line's SKU. A conversion
//!   without lines has no SKU.
//!
//! Groups may nest [`MAX_DEPTH`] deep with at most [`MAX_TESTS`] tests, so
//! evaluating a rule stays cheap whatever an owner writes.

use serde_json::{json, Map, Value};

use super::facts::{ConversionFacts, PartnerFacts};
use crate::money::Currency;
use crate::tracking::Product;
use crate::FieldError;

/// How deep groups may nest.
pub const MAX_DEPTH: usize = 5;
/// How many tests a rule's conditions may hold in all.
pub const MAX_TESTS: usize = 50;
/// How many values an `in` list may hold.
pub const MAX_LIST: usize = 100;

/// A condition tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
    Test(Predicate),
}

/// A fact a test reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Sku,
    Value,
    Currency,
    Payment,
    Metadata(String),
    CustomerCountry,
    CustomerSource,
    PartnerTier,
    PartnerGroup,
    PartnerRevenue,
    PartnerConversions,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// What a test compares with, already checked against its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
}

/// One test: `field op value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    pub field: Field,
    pub op: Op,
    pub value: Operand,
}

impl Field {
    fn parse(s: &str, at: &str) -> Result<Self, FieldError> {
        Ok(match s {
            "sale.sku" => Self::Sku,
            "sale.value" => Self::Value,
            "sale.currency" => Self::Currency,
            "sale.payment" => Self::Payment,
            "customer.country" => Self::CustomerCountry,
            "customer.source" => Self::CustomerSource,
            "partner.tier" => Self::PartnerTier,
            "partner.group" => Self::PartnerGroup,
            "partner.revenue" => Self::PartnerRevenue,
            "partner.conversions" => Self::PartnerConversions,
            _ => match s.strip_prefix("sale.metadata.") {
                Some(key) if !key.is_empty() && key.chars().count() <= 100 => {
                    Self::Metadata(key.to_owned())
                }
                _ => {
                    return Err(FieldError::new(
                        at,
                        format!(
                            "`{s}` is not a condition field (sale.sku, sale.value, sale.currency, \
                             sale.payment, sale.metadata.<key>, customer.country, customer.source, \
                             partner.tier, partner.group, partner.revenue, partner.conversions)"
                        ),
                    ))
                }
            },
        })
    }

    fn name(&self) -> String {
        match self {
            Self::Sku => "sale.sku".into(),
            Self::Value => "sale.value".into(),
            Self::Currency => "sale.currency".into(),
            Self::Payment => "sale.payment".into(),
            Self::Metadata(k) => format!("sale.metadata.{k}"),
            Self::CustomerCountry => "customer.country".into(),
            Self::CustomerSource => "customer.source".into(),
            Self::PartnerTier => "partner.tier".into(),
            Self::PartnerGroup => "partner.group".into(),
            Self::PartnerRevenue => "partner.revenue".into(),
            Self::PartnerConversions => "partner.conversions".into(),
        }
    }

    fn is_number(&self) -> bool {
        matches!(
            self,
            Self::Value | Self::PartnerRevenue | Self::PartnerConversions
        )
    }
}

impl Op {
    fn parse(s: &str, at: &str) -> Result<Self, FieldError> {
        Ok(match s {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "in" => Self::In,
            "not_in" => Self::NotIn,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            _ => {
                return Err(FieldError::new(
                    at,
                    "must be one of eq, ne, in, not_in, gt, gte, lt, lte",
                ))
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::In => "in",
            Self::NotIn => "not_in",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Gte | Self::Lt | Self::Lte)
    }

    fn is_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn)
    }
}

/// A JSON scalar as text: metadata compares `5`, `"5"` and `true` by what
/// they read as.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Normalise a text operand for its field (currency and country codes
/// upper-case, payment kinds checked).
fn text_for(field: &Field, v: &Value, at: &str) -> Result<String, FieldError> {
    let s = match (field, v) {
        (Field::Metadata(_), v) => scalar_text(v),
        (_, Value::String(s)) => Some(s.trim().to_owned()),
        _ => None,
    }
    .ok_or_else(|| FieldError::new(at, "must be a string"))?;
    match field {
        Field::Currency => Ok(Currency::parse(&s).map_err(|e| e.at(at))?.to_string()),
        Field::CustomerCountry => {
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(s.to_ascii_uppercase())
            } else {
                Err(FieldError::new(
                    at,
                    "must be a two-letter country code (ISO 3166-1 alpha-2)",
                ))
            }
        }
        Field::Payment if s == "new" || s == "recurring" => Ok(s),
        Field::Payment => Err(FieldError::new(at, "must be new or recurring")),
        _ if s.is_empty() || s.chars().count() > 200 => {
            Err(FieldError::new(at, "must be 1 to 200 characters"))
        }
        _ => Ok(s),
    }
}

impl Predicate {
    fn parse(obj: &Map<String, Value>, at: &str) -> Result<Self, FieldError> {
        for key in obj.keys() {
            if !["field", "op", "value"].contains(&key.as_str()) {
                return Err(FieldError::new(
                    format!("{at}.{key}"),
                    "is not part of a condition (field, op, value; or a group: all, any)",
                ));
            }
        }
        let name = obj
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::new(format!("{at}.field"), "is required"))?;
        let field = Field::parse(name, &format!("{at}.field"))?;
        let op_at = format!("{at}.op");
        let op = Op::parse(
            obj.get("op")
                .and_then(Value::as_str)
                .ok_or_else(|| FieldError::new(&op_at, "is required"))?,
            &op_at,
        )?;
        let v_at = format!("{at}.value");
        let v = obj
            .get("value")
            .ok_or_else(|| FieldError::new(&v_at, "is required"))?;
        let number = field.is_number() || (matches!(field, Field::Metadata(_)) && op.is_ordering());
        let value = if number {
            if op.is_list() {
                return Err(FieldError::new(
                    &op_at,
                    format!("{} takes eq, ne, gt, gte, lt, lte", field.name()),
                ));
            }
            Operand::Int(
                v.as_i64()
                    .ok_or_else(|| FieldError::new(&v_at, "must be an integer"))?,
            )
        } else if op.is_ordering() {
            return Err(FieldError::new(
                &op_at,
                format!("{} takes eq, ne, in, not_in", field.name()),
            ));
        } else if op.is_list() {
            let items = v
                .as_array()
                .filter(|a| !a.is_empty() && a.len() <= MAX_LIST)
                .ok_or_else(|| {
                    FieldError::new(&v_at, format!("must be a list of 1 to {MAX_LIST} values"))
                })?;
            let texts = items
                .iter()
                .enumerate()
                .map(|(i, item)| text_for(&field, item, &format!("{v_at}[{i}]")))
                .collect::<Result<_, _>>()?;
            Operand::Texts(texts)
        } else {
            Operand::Text(text_for(&field, v, &v_at)?)
        };
        Ok(Self { field, op, value })
    }

    fn to_json(&self) -> Value {
        let value = match &self.value {
            Operand::Text(s) => json!(s),
            Operand::Texts(v) => json!(v),
            Operand::Int(n) => json!(n),
        };
        json!({"field": self.field.name(), "op": self.op.as_str(), "value": value})
    }

    /// Whether the test holds; `line` is the product line under test when
    /// the rule is computed line by line.
    fn holds(
        &self,
        conv: &ConversionFacts,
        partner: &PartnerFacts,
        line: Option<&Product>,
    ) -> bool {
        let text = |s: Option<&str>| s.map(|s| self.text_holds(s)).unwrap_or(false);
        let int = |n: i64| self.int_holds(n);
        match &self.field {
            Field::Sku => text(line.map(|l| l.sku.as_str())),
            Field::Value => int(conv.value.minor),
            Field::Currency => text(Some(conv.reported_currency.as_str())),
            Field::Payment => text(Some(if conv.is_first_payment() {
                "new"
            } else {
                "recurring"
            })),
            Field::Metadata(key) => match conv.metadata.get(key) {
                Some(v) if self.op.is_ordering() => v.as_i64().map(int).unwrap_or(false),
                Some(v) => scalar_text(v).is_some_and(|s| self.text_holds(&s)),
                None => false,
            },
            Field::CustomerCountry => conv
                .customer_country
                .as_deref()
                .is_some_and(|c| self.text_holds(&c.to_ascii_uppercase())),
            Field::CustomerSource => text(conv.customer_source.as_deref()),
            Field::PartnerTier => text(partner.tier.as_deref()),
            Field::PartnerGroup => text(partner.group.as_deref()),
            Field::PartnerRevenue => int(partner.revenue_to_date),
            Field::PartnerConversions => int(partner.conversions_to_date),
        }
    }

    fn text_holds(&self, s: &str) -> bool {
        match (&self.value, self.op) {
            (Operand::Text(v), Op::Eq) => s == v,
            (Operand::Text(v), Op::Ne) => s != v,
            (Operand::Texts(vs), Op::In) => vs.iter().any(|v| v == s),
            (Operand::Texts(vs), Op::NotIn) => !vs.iter().any(|v| v == s),
            _ => false,
        }
    }

    fn int_holds(&self, n: i64) -> bool {
        let Operand::Int(v) = self.value else {
            return false;
        };
        match self.op {
            Op::Eq => n == v,
            Op::Ne => n != v,
            Op::Gt => n > v,
            Op::Gte => n >= v,
            Op::Lt => n < v,
            Op::Lte => n <= v,
            Op::In | Op::NotIn => false,
        }
    }
}

impl Condition {
    /// Parse conditions from their JSON form; errors name the path, e.g.
    /// `conditions.all[1].any[0].value`.
    pub fn parse(v: &Value, at: &str) -> Result<Self, FieldError> {
        let mut tests = 0;
        Self::parse_at(v, at, 1, &mut tests)
    }

    fn parse_at(v: &Value, at: &str, depth: usize, tests: &mut usize) -> Result<Self, FieldError> {
        let obj = v.as_object().ok_or_else(|| {
            FieldError::new(at, "must be an object: a group (all, any) or a test")
        })?;
        let group = match (obj.get("all"), obj.get("any")) {
            (Some(items), None) => Some(("all", items)),
            (None, Some(items)) => Some(("any", items)),
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    at,
                    "a group is either all or any; nest one in the other",
                ))
            }
            (None, None) => None,
        };
        let Some((kind, items)) = group else {
            *tests += 1;
            if *tests > MAX_TESTS {
                return Err(FieldError::new(
                    at,
                    format!("conditions may hold at most {MAX_TESTS} tests"),
                ));
            }
            return Ok(Self::Test(Predicate::parse(obj, at)?));
        };
        if obj.len() != 1 {
            return Err(FieldError::new(
                at,
                format!("a group holds only `{kind}`, a list of conditions"),
            ));
        }
        if depth > MAX_DEPTH {
            return Err(FieldError::new(
                at,
                format!("groups may nest at most {MAX_DEPTH} deep"),
            ));
        }
        let at = format!("{at}.{kind}");
        let items = items
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| FieldError::new(&at, "must be a list of at least one condition"))?;
        let parts = items
            .iter()
            .enumerate()
            .map(|(i, c)| Self::parse_at(c, &format!("{at}[{i}]"), depth + 1, tests))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if kind == "all" {
            Self::All(parts)
        } else {
            Self::Any(parts)
        })
    }

    /// The JSON form [`Condition::parse`] reads.
    pub fn to_json(&self) -> Value {
        match self {
            Self::All(v) => json!({"all": v.iter().map(Self::to_json).collect::<Vec<_>>()}),
            Self::Any(v) => json!({"any": v.iter().map(Self::to_json).collect::<Vec<_>>()}),
            Self::Test(p) => p.to_json(),
        }
    }

    /// Whether any test reads `sale.sku` (then the rule pays line by line).
    /// Whether any test reads a field `pred` accepts (the store gathers
    /// costly facts, such as a partner's totals, only when a rule reads them).
    pub fn mentions(&self, pred: &impl Fn(&Field) -> bool) -> bool {
        match self {
            Self::All(v) | Self::Any(v) => v.iter().any(|c| c.mentions(pred)),
            Self::Test(p) => pred(&p.field),
        }
    }

    pub fn mentions_sku(&self) -> bool {
        match self {
            Self::All(v) | Self::Any(v) => v.iter().any(Self::mentions_sku),
            Self::Test(p) => p.field == Field::Sku,
        }
    }

    /// Whether the condition holds for the conversion, the partner and,
    /// when the rule pays line by line, the product line under test.
    pub fn holds(
        &self,
        conv: &ConversionFacts,
        partner: &PartnerFacts,
        line: Option<&Product>,
    ) -> bool {
        match self {
            Self::All(v) => v.iter().all(|c| c.holds(conv, partner, line)),
            Self::Any(v) => v.iter().any(|c| c.holds(conv, partner, line)),
            Self::Test(p) => p.holds(conv, partner, line),
        }
    }
}
