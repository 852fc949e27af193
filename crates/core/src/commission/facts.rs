//! What the commission decision knows: the conversion and one credited
//! partner, as plain values the store gathers (nothing here reads a clock
//! or a database, so a decision can be replayed from its facts).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::rules::{CapPeriod, RuleEvent};
use crate::ids::{LinkId, PartnerId, ProgramId};
use crate::money::{Currency, Money, MAX_MINOR};
use crate::tracking::Product;
use crate::FieldError;

/// The largest tier multiplier: ×10. A multiplier is a bonus on top of a
/// rule, not a rule of its own; the bound keeps every product in range.
pub const MAX_MULTIPLIER_BPS: u32 = 100_000;

/// A conversion (or lead, or click) as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionFacts {
    pub program_id: ProgramId,
    /// Which kind of rule may pay on it.
    pub event: RuleEvent,
    /// The value in the program's currency (converted before, if needed);
    /// zero for leads and clicks.
    pub value: Money,
    /// The currency the sale was reported in (what `sale.currency`
    /// conditions read): the program's, or the one it was converted from.
    pub reported_currency: Currency,
    /// The order's lines, when the conversion carries them.
    pub products: Vec<Product>,
    /// When the customer first paid; `None` when this payment is the first
    /// (or the customer is unknown, which counts as a first payment).
    pub first_payment_at: Option<DateTime<Utc>>,
    /// When this payment was made (the conversion's time).
    pub paid_at: DateTime<Utc>,
    /// The conversion's metadata (its stored properties).
    pub metadata: Map<String, Value>,
    /// The customer's country, ISO 3166-1 alpha-2, if known.
    pub customer_country: Option<String>,
    /// Where the customer came from (a source or channel name), if known.
    pub customer_source: Option<String>,
    /// How many of the event a fixed reward pays for: 1 for a sale or a
    /// lead; the number of clicks when a run of clicks is paid at once (so
    /// the multiplier, the cap and the overrides apply to the run's total).
    pub units: i64,
}

impl ConversionFacts {
    /// Whether this is the customer's first payment (a new sale) rather
    /// than a later payment of the same customer (a recurring one).
    pub fn is_first_payment(&self) -> bool {
        self.first_payment_at.is_none_or(|f| self.paid_at <= f)
    }

    /// Refuse facts outside the bounds the arithmetic relies on.
    pub fn check(&self) -> Result<(), FieldError> {
        if !(0..=MAX_MINOR).contains(&self.value.minor) {
            return Err(FieldError::new(
                "value",
                format!("must be between 0 and {MAX_MINOR} minor units"),
            ));
        }
        if !(1..=MAX_MINOR).contains(&self.units) {
            return Err(FieldError::new(
                "units",
                format!("must be between 1 and {MAX_MINOR}"),
            ));
        }
        for (i, p) in self.products.iter().enumerate() {
            p.validate(i)?;
            if p.amount > MAX_MINOR {
                return Err(FieldError::new(
                    format!("products[{i}].amount"),
                    format!("must be at most {MAX_MINOR} minor units"),
                ));
            }
            if p.quantity > MAX_MINOR {
                return Err(FieldError::new(
                    format!("products[{i}].quantity"),
                    format!("must be at most {MAX_MINOR}"),
                ));
            }
        }
        Ok(())
    }
}

/// Commission a partner has already earned in the program, per cap period
/// (each the period holding the conversion, from [`CapPeriod::start`] to
/// [`CapPeriod::end`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Earned {
    pub day: i64,
    pub week: i64,
    pub month: i64,
    pub all_time: i64,
}

impl Earned {
    pub fn in_period(&self, period: CapPeriod) -> i64 {
        match period {
            CapPeriod::Day => self.day,
            CapPeriod::Week => self.week,
            CapPeriod::Month => self.month,
            CapPeriod::AllTime => self.all_time,
        }
    }
}

/// One credited partner as the rules see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerFacts {
    pub partner_id: PartnerId,
    pub group: Option<String>,
    pub tier: Option<String>,
    /// The tier's multiplier in basis points (10 000 = ×1).
    pub multiplier_bps: u32,
    /// The links of the partner's credited touches on this conversion
    /// (a link-scoped rule applies when any of them is its link).
    pub links: Vec<LinkId>,
    /// The partner's attributed revenue in the program so far, minor units.
    pub revenue_to_date: i64,
    /// The partner's attributed conversions in the program so far.
    pub conversions_to_date: i64,
    /// Commission (not overrides) already earned, for caps.
    pub earned: Earned,
    /// The partner already has a lead commission for this person: lead
    /// rules pay at most once per partner and person.
    pub lead_already_paid: bool,
}

impl PartnerFacts {
    /// A partner with no tier, group, links or history: the common case,
    /// which tests and callers adjust field by field.
    pub fn new(partner_id: PartnerId) -> Self {
        Self {
            partner_id,
            group: None,
            tier: None,
            multiplier_bps: super::BPS_ONE,
            links: Vec::new(),
            revenue_to_date: 0,
            conversions_to_date: 0,
            earned: Earned::default(),
            lead_already_paid: false,
        }
    }

    /// Refuse facts outside the bounds the arithmetic relies on.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.multiplier_bps > MAX_MULTIPLIER_BPS {
            return Err(FieldError::new(
                "multiplier_bps",
                format!("must be at most {MAX_MULTIPLIER_BPS} (×10)"),
            ));
        }
        Ok(())
    }
}
