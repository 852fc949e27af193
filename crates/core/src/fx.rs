//! Exchange rates the owner configures, and converting money with them.
//!
//! A program has one currency; a conversion reported in another is turned
//! into the program's currency with the owner's rate in force at the
//! conversion's time, and the rate used is stored with it ([`Converted`]),
//! so the books can be reproduced whatever rates are entered later.
//!
//! # Exact rates, exact arithmetic
//!
//! A [`Rate`] is an exact decimal (`"1.0842"`), written as a JSON *string*:
//! a JSON number would pass through a double on many clients and arrive as
//! `1.08419999…`. It is kept as an integer mantissa and a decimal scale, and
//! [`convert`] multiplies and divides integers only (in `u128`, see there),
//! then rounds **half up** to the target's minor unit (half away from zero
//! for a negative amount, so a refund mirrors its sale), the same rounding
//! as [`crate::commission::apply_bps`].
//!
//! # Which rate applies
//!
//! [`rate_at`] takes, for a currency pair, the rate with the latest
//! `effective_at` not after the conversion's time. Rates are never inferred:
//! no inverse of the opposite pair (`1 / rate` is not exact), no chain
//! through a third currency. Without a rate on file the conversion is
//! refused ([`convert_at`]) rather than guessed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;

use crate::money::{Currency, Money, MAX_MINOR};
use crate::FieldError;

/// The most digits a [`Rate`] may have before, and after, its decimal point.
/// Twelve before leaves ample room above the largest real rates (a
/// Kuwaiti dinar in Iranian rials is in the millions); twelve after keeps
/// small ones such as `0.000035` (VND→EUR) exact with digits to spare.
pub const RATE_DIGITS: usize = 12;

/// An exact positive decimal such as `1.0842`, read from text.
///
/// Kept normalised (no trailing zeros in the fraction), so two rates are
/// equal exactly when their values are: `"1.50"` and `"1.5"` are one rate.
/// The mantissa is below 10^24 and the scale at most 12 by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rate {
    mantissa: u128,
    scale: u32,
}

impl Rate {
    /// The rate 1: an amount keeps its value (and its minor units, between
    /// currencies with the same exponent).
    pub const ONE: Rate = Rate {
        mantissa: 1,
        scale: 0,
    };

    /// Parse text such as `"1.0842"` or `"0.000123"`: digits, at most one
    /// decimal point with digits on both sides, no sign, exponent or space,
    /// no leading zero other than a lone `0` before the point, at most
    /// [`RATE_DIGITS`] digits on each side, and greater than zero.
    pub fn parse(field: &str, text: &str) -> Result<Rate, FieldError> {
        let shape = || {
            FieldError::new(
                field,
                format!(
                    "must be a positive decimal number written as text, such as \"1.0842\" \
                     (digits and one decimal point, no sign, exponent or spaces; \
                     at most {RATE_DIGITS} digits before and after the point)"
                ),
            )
        };
        let (int, frac) = match text.split_once('.') {
            Some((_, "")) => return Err(shape()),
            Some((int, frac)) => (int, frac),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !(frac.is_empty() || digits(frac)) {
            return Err(shape());
        }
        if int.len() > 1 && int.starts_with('0') {
            return Err(FieldError::new(
                field,
                format!("`{text}` has a leading zero; write it as a plain decimal such as \"0.5\""),
            ));
        }
        if int.len() > RATE_DIGITS || frac.len() > RATE_DIGITS {
            return Err(FieldError::new(
                field,
                format!(
                    "`{text}` has too many digits: at most {RATE_DIGITS} before and \
                     {RATE_DIGITS} after the decimal point"
                ),
            ));
        }
        let frac = frac.trim_end_matches('0');
        // At most 24 digits: below 10^24, far inside u128.
        let mantissa = int
            .bytes()
            .chain(frac.bytes())
            .fold(0u128, |m, b| m * 10 + u128::from(b - b'0'));
        if mantissa == 0 {
            return Err(FieldError::new(field, "must be greater than zero"));
        }
        Ok(Rate {
            mantissa,
            scale: frac.len() as u32,
        })
    }

    /// The value's digits without the decimal point (`1.0842` → 10842).
    pub fn mantissa(&self) -> u128 {
        self.mantissa
    }

    /// The number of digits after the decimal point (`1.0842` → 4).
    pub fn scale(&self) -> u32 {
        self.scale
    }
}

impl fmt::Display for Rate {
    /// The canonical text: no trailing zeros, no point for a whole number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = 10u128.pow(self.scale);
        let (int, frac) = (self.mantissa / unit, self.mantissa % unit);
        if self.scale == 0 {
            write!(f, "{int}")
        } else {
            write!(f, "{int}.{frac:0width$}", width = self.scale as usize)
        }
    }
}

impl Ord for Rate {
    /// By value. Cross-multiplied: each side is below 10^24 · 10^12 = 10^36,
    /// inside `u128`.
    fn cmp(&self, other: &Self) -> Ordering {
        let a = self.mantissa * 10u128.pow(other.scale);
        let b = other.mantissa * 10u128.pow(self.scale);
        a.cmp(&b)
    }
}

impl PartialOrd for Rate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl TryFrom<String> for Rate {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse("rate", &s)
    }
}

impl From<Rate> for String {
    fn from(r: Rate) -> String {
        r.to_string()
    }
}

/// One owner-configured rate: from `effective_at` on, one unit (major: one
/// dollar, not one cent) of `from` is worth `rate` units of `to`.
///
/// In JSON the currencies are `from_currency` and `to_currency`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FxRateWire")]
pub struct FxRate {
    #[serde(rename = "from_currency")]
    pub from: Currency,
    #[serde(rename = "to_currency")]
    pub to: Currency,
    pub rate: Rate,
    pub effective_at: DateTime<Utc>,
}

/// The stored shape, checked on the way back in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FxRateWire {
    from_currency: Currency,
    to_currency: Currency,
    rate: Rate,
    effective_at: DateTime<Utc>,
}

impl TryFrom<FxRateWire> for FxRate {
    type Error = FieldError;
    fn try_from(w: FxRateWire) -> Result<Self, FieldError> {
        FxRate::new(w.from_currency, w.to_currency, w.rate, w.effective_at)
    }
}

/// The fields of the API shape, and what [`FxRate::from_json`] leaves to the caller.
const FX_FIELDS: &[&str] = &["from_currency", "to_currency", "rate", "effective_at"];
const FX_ENVELOPE: &[&str] = &["id", "program_id"];

impl FxRate {
    /// A rate between two different currencies (a rate from a currency to
    /// itself is 1 by definition and is refused, on `to_currency`).
    pub fn new(
        from: Currency,
        to: Currency,
        rate: Rate,
        effective_at: DateTime<Utc>,
    ) -> Result<FxRate, FieldError> {
        if from == to {
            return Err(FieldError::new(
                "to_currency",
                format!("must differ from from_currency ({from})"),
            ));
        }
        Ok(FxRate {
            from,
            to,
            rate,
            effective_at,
        })
    }

    /// Parse the API shape `{"from_currency": "USD", "to_currency": "EUR",
    /// "rate": "0.92", "effective_at": "2024-05-01T00:00:00Z"}`. `id` and
    /// `program_id` may be present and are left to the caller; any other
    /// field is refused. Errors name the field.
    pub fn from_json(v: &Value) -> Result<FxRate, FieldError> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldError::new("body", "must be a JSON object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !FX_FIELDS.contains(&k.as_str()) && !FX_ENVELOPE.contains(&k.as_str()))
        {
            return Err(FieldError::new(
                k.as_str(),
                "is not a field of an exchange rate",
            ));
        }
        let text = |k: &str, what: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| FieldError::new(k, format!("is required: {what}")))
        };
        let currency = |k: &str| {
            Currency::parse(text(k, "an ISO 4217 currency code such as \"EUR\"")?)
                .map_err(|e| e.at(k))
        };
        let from = currency("from_currency")?;
        let to = currency("to_currency")?;
        let rate = Rate::parse(
            "rate",
            text(
                "rate",
                "a decimal number written as text, such as \"1.0842\"",
            )?,
        )?;
        let at = text("effective_at", "an RFC 3339 time")?;
        let effective_at = DateTime::parse_from_rfc3339(at)
            .map_err(|_| {
                FieldError::new(
                    "effective_at",
                    format!("`{at}` is not an RFC 3339 time such as \"2024-05-01T00:00:00Z\""),
                )
            })?
            .with_timezone(&Utc);
        FxRate::new(from, to, rate, effective_at)
    }

    /// The API shape [`FxRate::from_json`] reads.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "from_currency": self.from,
            "to_currency": self.to,
            "rate": self.rate,
            "effective_at": rfc3339(self.effective_at),
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `amount` in `rate.to`: `minor · mantissa · 10^e_to / (10^scale · 10^e_from)`,
/// rounded half up (half away from zero for a negative amount).
///
/// Refused, on `currency`, when the amount is not in `rate.from`; on
/// `value`, when the amount or the result is beyond [`MAX_MINOR`].
///
/// The numerator can reach 10^15 · 10^24 · 10^3, past `u128`; but the
/// denominator is at most 10^15, so a numerator past `u128::MAX` (≈ 3.4·10^38)
/// means a result of at least 10^23 minor units, far beyond [`MAX_MINOR`]:
/// an overflow of the checked product is exactly a too-large result.
pub fn convert(amount: Money, rate: &FxRate) -> Result<Money, FieldError> {
    if amount.currency != rate.from {
        return Err(FieldError::new(
            "currency",
            format!(
                "is {}, but the rate converts from {} to {}",
                amount.currency, rate.from, rate.to
            ),
        ));
    }
    let too_large = || {
        FieldError::new(
            "value",
            format!(
                "{amount} at {} {}/{} is more than the largest amount accepted \
                 ({MAX_MINOR} minor units)",
                rate.rate, rate.to, rate.from
            ),
        )
    };
    let abs = u128::from(amount.minor.unsigned_abs());
    if abs > MAX_MINOR as u128 {
        return Err(FieldError::new(
            "value",
            format!("must be at most {MAX_MINOR} minor units either way"),
        ));
    }
    let (e_from, e_to) = (
        u32::from(rate.from.exponent()),
        u32::from(rate.to.exponent()),
    );
    let up = 10u128.pow(e_to.saturating_sub(e_from));
    let den = 10u128.pow(rate.rate.scale + e_from.saturating_sub(e_to));
    let num = abs
        .checked_mul(rate.rate.mantissa)
        .and_then(|n| n.checked_mul(up))
        .ok_or_else(too_large)?;
    let (q, r) = (num / den, num % den);
    // r < den ≤ 10^15: doubling it cannot overflow.
    let q = if 2 * r >= den { q + 1 } else { q };
    if q > MAX_MINOR as u128 {
        return Err(too_large());
    }
    let minor = q as i64;
    Ok(Money::new(
        if amount.minor < 0 { -minor } else { minor },
        rate.to,
    ))
}

/// The rate for `from` → `to` in force at `at`: the one with the latest
/// `effective_at` not after `at`, or `None`.
///
/// The store keys rates on (program, from, to, effective_at), so two rates
/// of a pair never share a time; should a caller's slice hold such a tie
/// anyway, the larger rate wins, so the choice depends on the values only,
/// never on the order of the slice (rates equal in time and value are
/// equal in every field, so which of them is returned does not matter).
pub fn rate_at(
    rates: &[FxRate],
    from: Currency,
    to: Currency,
    at: DateTime<Utc>,
) -> Option<&FxRate> {
    rates
        .iter()
        .filter(|r| r.from == from && r.to == to && r.effective_at <= at)
        .max_by(|a, b| {
            a.effective_at
                .cmp(&b.effective_at)
                .then_with(|| a.rate.cmp(&b.rate))
        })
}

/// A converted amount with the rate that made it: stored with the
/// conversion, so the commission's base can be recomputed and explained
/// whatever rates are entered later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Converted {
    /// The amount as reported, in its own currency.
    pub original: Money,
    pub rate: Rate,
    /// When the rate used took effect (identifies it among the pair's rates).
    pub rate_effective_at: DateTime<Utc>,
    /// The amount in the target currency.
    pub converted: Money,
}

impl Converted {
    /// Recompute the converted amount from the stored original and rate,
    /// to check a stored record (it must equal `converted`).
    pub fn reproduce(&self) -> Result<Money, FieldError> {
        if self.original.currency == self.converted.currency {
            return Ok(self.original);
        }
        let rate = FxRate::new(
            self.original.currency,
            self.converted.currency,
            self.rate,
            self.rate_effective_at,
        )?;
        convert(self.original, &rate)
    }
}

/// Convert `amount` into `to` with the rate in force at `at` ([`rate_at`]).
///
/// An amount already in `to` is returned as is, with rate 1 and `at` as the
/// rate's time (no rate on file is consulted or needed). Without a rate on
/// file for the pair at `at`, the error names `currency` and says so.
pub fn convert_at(
    rates: &[FxRate],
    amount: Money,
    to: Currency,
    at: DateTime<Utc>,
) -> Result<Converted, FieldError> {
    if amount.currency == to {
        return Ok(Converted {
            original: amount,
            rate: Rate::ONE,
            rate_effective_at: at,
            converted: amount,
        });
    }
    let rate = rate_at(rates, amount.currency, to, at).ok_or_else(|| {
        FieldError::new(
            "currency",
            format!(
                "no exchange rate from {} to {to} on file for {}",
                amount.currency,
                rfc3339(at)
            ),
        )
    })?;
    Ok(Converted {
        original: amount,
        rate: rate.rate,
        rate_effective_at: rate.effective_at,
        converted: convert(amount, rate)?,
    })
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
