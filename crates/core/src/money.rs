//! Money: an integer count of minor units with an ISO 4217 currency.
//!
//! No floating point touches money. Splitting an amount into parts that add
//! up exactly lives in [`crate::split`] (see the attribution engine).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::FieldError;

/// Active ISO 4217 codes with their number of minor-unit digits.
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The largest amount, in minor units, that Tribute accepts anywhere money
/// is computed or received (a conversion's value, an order line, a postback
/// amount; 10^15: ten trillion units of a two-digit currency), checked at
/// every way in by [`check_amount`]. Every product of an amount with a rate
/// in basis points or a multiplier then fits comfortably in `i128`; 9,223
/// amounts at the maximum still add up inside `i64`, and sums over more rows
/// are taken in `i128` ([`sum_minor`]); and every amount up to it is exact
/// as an IEEE double (2^53 ≈ 9·10^15), so a JavaScript client reading the
/// JSON sees the number that was stored.
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency code, validated against the list of active codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parse a code such as `"EUR"` (case-insensitive on input, stored upper-case).
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let upper = s.trim().to_ascii_uppercase();
        if ISO_4217.iter().any(|(code, _)| *code == upper) {
            let b = upper.as_bytes();
            Ok(Self([b[0], b[1], b[2]]))
        } else {
            Err(FieldError::new(
                "currency",
                format!("`{s}` is not an ISO 4217 currency code"),
            ))
        }
    }

    /// Every code [`Currency::parse`] accepts, upper case (the API document lists them).
    pub fn codes() -> impl Iterator<Item = &'static str> {
        ISO_4217.iter().map(|(code, _)| *code)
    }

    pub fn as_str(&self) -> &str {
        // The bytes come from the ASCII table above.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY, 3 for KWD).
    pub fn exponent(&self) -> u8 {
        ISO_4217
            .iter()
            .find(|(code, _)| code.as_bytes() == self.0)
            .map(|(_, e)| *e)
            .unwrap_or(2)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Currency {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

/// Check an amount in minor units: 0 to [`MAX_MINOR`], naming `field`.
pub fn check_amount(field: &str, minor: i64) -> Result<i64, FieldError> {
    if minor < 0 {
        return Err(FieldError::new(
            field,
            "must not be negative (refunds reverse a conversion)",
        ));
    }
    if minor > MAX_MINOR {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_MINOR} minor units"),
        ));
    }
    Ok(minor)
}

/// The exact sum of amounts, in `i128`: never wraps, whatever the number
/// of rows (each is an `i64`, so 2^64 of them still fit).
pub fn sum_minor<I: IntoIterator<Item = i64>>(amounts: I) -> i128 {
    amounts.into_iter().map(i128::from).sum()
}

/// An amount of money: integer minor units (cents) in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }
}

impl fmt::Display for Money {
    /// `12.34 EUR`, `1200 JPY`: exact, from the integer, never via floats.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = self.currency.exponent() as u32;
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let unit = 10u64.pow(exp);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / unit,
            abs % unit,
            self.currency,
            width = exp as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn amounts_from_zero_to_the_maximum_pass_and_others_name_the_field() {
        assert_eq!(check_amount("value", 0), Ok(0));
        assert_eq!(check_amount("value", MAX_MINOR), Ok(MAX_MINOR));
        for (case, v) in [
            ("one above the maximum", MAX_MINOR + 1),
            ("i64::MAX", i64::MAX),
            ("negative", -1),
            ("i64::MIN", i64::MIN),
        ] {
            assert_eq!(
                check_amount("value", v).unwrap_err().field,
                "value",
                "case {case}"
            );
        }
    }

    #[test]
    fn the_maximum_is_exact_as_a_double() {
        assert_eq!(MAX_MINOR as f64 as i64, MAX_MINOR);
    }

    #[test]
    fn a_sum_of_maximal_amounts_past_i64_does_not_wrap() {
        let n = (i64::MAX / MAX_MINOR) as usize + 1;
        let total = sum_minor(std::iter::repeat_n(MAX_MINOR, n));
        assert_eq!(total, i128::from(MAX_MINOR) * n as i128);
        assert!(total > i128::from(i64::MAX));
    }

    proptest! {
        /// Any amount up to the maximum splits by any weights into parts
        /// that add up to it exactly, each within the amount.
        #[test]
        fn splits_up_to_the_maximum_add_up_exactly(
            total in 0..=MAX_MINOR,
            weights in prop::collection::vec(any::<u64>(), 1..12),
        ) {
            let parts = crate::split::split(total, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(sum_minor(parts.iter().copied()), i128::from(total));
            prop_assert!(parts.iter().all(|&p| (0..=total).contains(&p)));
        }

        /// Sums of amounts up to the maximum are exact, however many.
        #[test]
        fn sums_up_to_the_maximum_never_overflow(
            amounts in prop::collection::vec(0..=MAX_MINOR, 0..64),
            repeat in 1usize..2_000,
        ) {
            let once = sum_minor(amounts.iter().copied());
            let many = sum_minor(amounts.iter().copied().cycle().take(amounts.len() * repeat));
            prop_assert_eq!(many, once * repeat as i128);
            let checked = amounts.iter().try_fold(0i64, |s, &a| s.checked_add(a));
            if let Some(s) = checked {
                prop_assert_eq!(i128::from(s), once);
            }
        }

        /// Decimal amounts up to the maximum parse exactly; above, they are refused.
        #[test]
        fn decimal_amounts_parse_exactly_up_to_the_maximum(minor in 0..=MAX_MINOR, over in 1..=i64::MAX - MAX_MINOR) {
            let text = Money::new(minor, Currency::parse("EUR").unwrap()).to_string();
            let number = text.trim_end_matches(" EUR");
            prop_assert_eq!(crate::tracking::parse_decimal_minor("revenue", number, 2), Ok(minor));
            let above = Money::new(MAX_MINOR + over, Currency::parse("EUR").unwrap()).to_string();
            let err = crate::tracking::parse_decimal_minor("revenue", above.trim_end_matches(" EUR"), 2);
            prop_assert_eq!(err.unwrap_err().field, "revenue");
        }
    }

    #[test]
    fn currency_accepts_iso_codes_in_any_case() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
    }

    #[test]
    fn currency_refuses_unknown_codes_naming_the_field() {
        let err = Currency::parse("EURO").unwrap_err();
        assert_eq!(err.field, "currency");
        assert!(Currency::parse("ABC").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn money_displays_exactly_with_the_currency_exponent() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(1234, eur).to_string(), "12.34 EUR");
        assert_eq!(Money::new(-5, eur).to_string(), "-0.05 EUR");
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(1200, jpy).to_string(), "1200 JPY");
    }
}
