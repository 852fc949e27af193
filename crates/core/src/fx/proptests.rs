//! Property tests of conversion: the identity at rate 1, monotonicity,
//! agreement with a reference computed on decimal digit strings, never a
//! panic, and rate text that round-trips.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::tests::{cur, fx};
use super::*;

/// Currencies of exponents 0, 2 and 3.
const CODES: [&str; 6] = ["JPY", "KRW", "EUR", "USD", "KWD", "BHD"];

/// Rate text as an owner may write it: 1–12 digits before the point
/// (no leading zero but a lone 0), 0–12 after, positive.
fn rate_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just(0u64), 1u64..=999_999_999_999, 1u64..=20],
        0usize..=RATE_DIGITS,
        any::<u64>(),
    )
        .prop_map(|(int, len, frac)| {
            let frac = format!("{:012}", frac % 1_000_000_000_000);
            if len == 0 {
                format!("{}", int.max(1))
            } else if int == 0 && frac[..len].bytes().all(|b| b == b'0') {
                format!("0.{}1", &frac[..len - 1])
            } else {
                format!("{int}.{}", &frac[..len])
            }
        })
}

/// Schoolbook product of two decimal digit strings.
fn mul_digits(a: &str, b: &str) -> String {
    let (a, b): (Vec<u32>, Vec<u32>) = (
        a.bytes().rev().map(|c| u32::from(c - b'0')).collect(),
        b.bytes().rev().map(|c| u32::from(c - b'0')).collect(),
    );
    let mut acc = vec![0u32; a.len() + b.len()];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            acc[i + j] += x * y;
        }
    }
    let mut carry = 0;
    for d in acc.iter_mut() {
        let v = *d + carry;
        *d = v % 10;
        carry = v / 10;
    }
    let s: String = acc
        .iter()
        .rev()
        .map(|d| char::from(b'0' + *d as u8))
        .collect();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

/// The reference: |amount| · rate, written out in decimal from the rate's
/// own text (not its mantissa), the point moved by the exponents, then cut
/// to whole minor units and rounded half up by the first digit dropped.
/// `None` when the result has more digits than any amount up to MAX_MINOR.
fn reference(minor: i64, text: &str, e_from: u8, e_to: u8) -> Option<i64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let product = mul_digits(&minor.unsigned_abs().to_string(), &format!("{int}{frac}"));
    // The product holds frac.len() + e_from decimals of a to-unit; keep e_to.
    let mut digits = format!("{product}{}", "0".repeat(usize::from(e_to)));
    let drop = frac.len() + usize::from(e_from);
    digits.insert_str(0, &"0".repeat(drop + 1));
    let (kept, dropped) = digits.split_at(digits.len() - drop);
    let kept = kept.trim_start_matches('0');
    if kept.len() > 18 {
        return None;
    }
    let mut q: i64 = if kept.is_empty() {
        0
    } else {
        kept.parse().unwrap()
    };
    if dropped.as_bytes().first().is_some_and(|d| *d >= b'5') {
        q += 1;
    }
    Some(if minor < 0 { -q } else { q })
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

proptest! {
    #[test]
    fn rate_one_between_currencies_of_one_exponent_is_the_identity(
        minor in -MAX_MINOR..=MAX_MINOR,
        pair in prop::sample::select(vec![("JPY", "KRW"), ("EUR", "USD"), ("KWD", "BHD"), ("GBP", "CHF")]),
    ) {
        let r = fx(pair.0, pair.1, "1", at());
        prop_assert_eq!(convert(Money::new(minor, cur(pair.0)), &r), Ok(Money::new(minor, cur(pair.1))));
    }

    #[test]
    fn exact_halves_round_away_from_zero(half in -MAX_MINOR / 2..MAX_MINOR / 2) {
        let odd = 2 * half + 1;
        let r = fx("EUR", "USD", "0.5", at());
        let expected = if odd < 0 { half } else { half + 1 };
        prop_assert_eq!(convert(Money::new(odd, cur("EUR")), &r), Ok(Money::new(expected, cur("USD"))));
    }

    #[test]
    fn conversion_is_monotone_in_the_amount(
        a in -MAX_MINOR..=MAX_MINOR,
        b in -MAX_MINOR..=MAX_MINOR,
        text in rate_text(),
        from in prop::sample::select(CODES.to_vec()),
        to in prop::sample::select(CODES.to_vec()),
    ) {
        prop_assume!(from != to);
        let (lo, hi) = (a.min(b), a.max(b));
        let r = fx(from, to, &text, at());
        if let (Ok(x), Ok(y)) = (convert(Money::new(lo, cur(from)), &r), convert(Money::new(hi, cur(from)), &r)) {
            prop_assert!(x.minor <= y.minor, "{} → {}, {} → {}", lo, x.minor, hi, y.minor);
        }
    }

    #[test]
    fn conversion_matches_a_decimal_string_reference(
        minor in prop_oneof![-MAX_MINOR..=MAX_MINOR, -1000i64..=1000],
        text in rate_text(),
        from in prop::sample::select(CODES.to_vec()),
        to in prop::sample::select(CODES.to_vec()),
    ) {
        prop_assume!(from != to);
        let (f, t) = (cur(from), cur(to));
        let got = convert(Money::new(minor, f), &fx(from, to, &text, at()));
        match reference(minor, &text, f.exponent(), t.exponent()) {
            Some(q) if q.abs() <= MAX_MINOR => prop_assert_eq!(got, Ok(Money::new(q, t))),
            _ => prop_assert_eq!(got.map_err(|e| e.field), Err("value".to_owned())),
        }
    }

    #[test]
    fn conversion_never_panics_for_any_amount_and_rate(
        minor in prop_oneof![0..=MAX_MINOR, any::<i64>()],
        text in rate_text(),
        from in prop::sample::select(Currency::codes().collect::<Vec<_>>()),
        to in prop::sample::select(Currency::codes().collect::<Vec<_>>()),
    ) {
        let rate = Rate::parse("rate", &text).unwrap();
        let r = FxRate { from: cur(from), to: cur(to), rate, effective_at: at() };
        if let Ok(m) = convert(Money::new(minor, cur(from)), &r) {
            prop_assert!(m.minor.abs() <= MAX_MINOR);
            prop_assert_eq!(m.currency, cur(to));
        }
    }

    #[test]
    fn rate_text_round_trips_through_its_canonical_form(text in rate_text()) {
        let r = Rate::parse("rate", &text).unwrap();
        let shown = r.to_string();
        prop_assert_eq!(Rate::parse("rate", &shown), Ok(r));
        prop_assert!(!shown.contains('.') || !shown.ends_with('0'), "{}", shown);
        let json = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<Rate>(&json).unwrap(), r);
    }

    #[test]
    fn parsing_any_text_never_panics_and_accepts_only_digits(text in "[0-9.eE+ -]{0,30}|\\PC{0,30}") {
        if let Ok(r) = Rate::parse("rate", &text) {
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            prop_assert!(r.mantissa() > 0 && r.scale() <= RATE_DIGITS as u32);
        }
    }
}
