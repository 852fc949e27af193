//! Table-driven tests of rate parsing, conversion across exponents and
//! rounding, the choice of the rate in force, and the stored record.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;

pub(super) fn cur(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

pub(super) fn rate(text: &str) -> Rate {
    Rate::parse("rate", text).unwrap()
}

pub(super) fn fx(from: &str, to: &str, r: &str, at: DateTime<Utc>) -> FxRate {
    FxRate::new(cur(from), cur(to), rate(r), at).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

fn money(minor: i64, code: &str) -> Money {
    Money::new(minor, cur(code))
}

#[test]
fn rates_parse_exactly_and_display_canonically() {
    for (text, mantissa, scale, shown) in [
        ("1.0842", 10842, 4, "1.0842"),
        ("0.000123", 123, 6, "0.000123"),
        ("1.50", 15, 1, "1.5"),
        ("2.000", 2, 0, "2"),
        ("7", 7, 0, "7"),
        ("0.000000000001", 1, 12, "0.000000000001"),
        (
            "999999999999.999999999999",
            999_999_999_999_999_999_999_999,
            12,
            "999999999999.999999999999",
        ),
        ("100", 100, 0, "100"),
    ] {
        let r = Rate::parse("rate", text).unwrap_or_else(|e| panic!("case {text}: {e}"));
        assert_eq!((r.mantissa(), r.scale()), (mantissa, scale), "case {text}");
        assert_eq!(r.to_string(), shown, "case {text}");
    }
}

#[test]
fn malformed_or_non_positive_rates_are_refused_naming_the_field() {
    for text in [
        "",
        "0",
        "0.0",
        "0.000000000000",
        "-1",
        "+1",
        "1e3",
        "1E-2",
        " 1.5",
        "1.5 ",
        "1,5",
        "1.5\0",
        ".5",
        "5.",
        "1..5",
        "1.2.3",
        "01.5",
        "00",
        "NaN",
        "inf",
        "0x10",
        "١",
        "1_000",
        "1234567890123",
        "0.0000000000001",
        "1.0000000000000",
    ] {
        let err = Rate::parse("fx.rate", text).expect_err(text);
        assert_eq!(err.field, "fx.rate", "case {text:?}");
    }
}

#[test]
fn equal_values_are_one_rate_and_order_is_by_value() {
    assert_eq!(rate("1.50"), rate("1.5"));
    assert!(rate("0.9") < rate("1"));
    assert!(rate("10") > rate("9.999999999999"));
    assert!(rate("0.000000000001") < rate("0.00000000001"));
    assert_eq!(rate("3").cmp(&rate("3.000")), Ordering::Equal);
}

#[test]
fn a_rate_is_a_json_string_and_deserializing_checks_it() {
    assert_eq!(
        serde_json::to_value(rate("1.0842")).unwrap(),
        json!("1.0842")
    );
    let back: Rate = serde_json::from_value(json!("1.50")).unwrap();
    assert_eq!(back, rate("1.5"));
    for bad in [
        json!("0"),
        json!("-2"),
        json!(1.5),
        json!("1e2"),
        json!(null),
    ] {
        assert!(
            serde_json::from_value::<Rate>(bad.clone()).is_err(),
            "case {bad}"
        );
    }
}

#[test]
fn a_rate_from_a_currency_to_itself_is_refused_on_to_currency() {
    let err = FxRate::new(cur("EUR"), cur("EUR"), Rate::ONE, day(2024, 1, 1)).unwrap_err();
    assert_eq!(err.field, "to_currency");
}

#[test]
fn the_api_shape_parses_and_round_trips() {
    let v = json!({"program_id": "prg_x", "from_currency": "usd", "to_currency": "EUR",
                   "rate": "0.9200", "effective_at": "2024-05-01T00:00:00+02:00"});
    let r = FxRate::from_json(&v).unwrap();
    assert_eq!(
        (r.from, r.to, r.rate),
        (cur("USD"), cur("EUR"), rate("0.92"))
    );
    assert_eq!(
        r.effective_at,
        Utc.with_ymd_and_hms(2024, 4, 30, 22, 0, 0).unwrap()
    );
    let out = r.to_json();
    assert_eq!(out["rate"], "0.92");
    assert_eq!(out["effective_at"], "2024-04-30T22:00:00Z");
    assert_eq!(FxRate::from_json(&out).unwrap(), r);
    let stored: FxRate = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(stored, r);
}

#[test]
fn api_shape_errors_name_the_field() {
    let ok = json!({"from_currency": "USD", "to_currency": "EUR", "rate": "0.92",
                    "effective_at": "2024-05-01T00:00:00Z"});
    let with = |k: &str, v: Value| {
        let mut o = ok.clone();
        o[k] = v;
        o
    };
    let without = |k: &str| {
        let mut o = ok.clone();
        o.as_object_mut().unwrap().remove(k);
        o
    };
    for (case, v, field) in [
        ("not an object", json!([1]), "body"),
        ("unknown field", with("margin", json!(1)), "margin"),
        (
            "bad from",
            with("from_currency", json!("EURO")),
            "from_currency",
        ),
        ("missing from", without("from_currency"), "from_currency"),
        ("bad to", with("to_currency", json!(978)), "to_currency"),
        (
            "same pair",
            with("to_currency", json!("usd")),
            "to_currency",
        ),
        ("rate as a number", with("rate", json!(0.92)), "rate"),
        ("zero rate", with("rate", json!("0.00")), "rate"),
        ("missing rate", without("rate"), "rate"),
        (
            "bad time",
            with("effective_at", json!("2024-05-01")),
            "effective_at",
        ),
        ("missing time", without("effective_at"), "effective_at"),
    ] {
        let err = FxRate::from_json(&v).expect_err(case);
        assert_eq!(err.field, field, "case {case}: {err}");
    }
    let same = json!({"from_currency": "USD", "to_currency": "USD", "rate": "1",
                      "effective_at": "2024-05-01T00:00:00Z"});
    assert!(serde_json::from_value::<FxRate>(same).is_err());
}

#[test]
fn conversion_accounts_for_both_exponents() {
    let t = day(2024, 1, 1);
    for (case, amount, r, expected) in [
        (
            "EUR→USD",
            money(10_000, "EUR"),
            fx("EUR", "USD", "1.0842", t),
            money(10_842, "USD"),
        ),
        (
            "JPY→EUR",
            money(1_000, "JPY"),
            fx("JPY", "EUR", "0.0062", t),
            money(620, "EUR"),
        ),
        (
            "EUR→JPY",
            money(1_234, "EUR"),
            fx("EUR", "JPY", "161.5", t),
            money(1_993, "JPY"),
        ),
        (
            "KWD→EUR",
            money(1_000, "KWD"),
            fx("KWD", "EUR", "2.9876", t),
            money(299, "EUR"),
        ),
        (
            "EUR→KWD",
            money(100, "EUR"),
            fx("EUR", "KWD", "0.3347", t),
            money(335, "KWD"),
        ),
        (
            "JPY→KWD",
            money(1, "JPY"),
            fx("JPY", "KWD", "0.002", t),
            money(2, "KWD"),
        ),
        (
            "KWD→JPY",
            money(1, "KWD"),
            fx("KWD", "JPY", "500", t),
            money(1, "JPY"),
        ),
        (
            "zero",
            money(0, "USD"),
            fx("USD", "EUR", "0.92", t),
            money(0, "EUR"),
        ),
        (
            "tiny",
            money(1, "EUR"),
            fx("EUR", "USD", "0.000001", t),
            money(0, "USD"),
        ),
    ] {
        assert_eq!(convert(amount, &r), Ok(expected), "case {case}");
    }
}

#[test]
fn halves_round_up_and_negative_halves_round_away_from_zero() {
    let r = fx("EUR", "USD", "0.5", day(2024, 1, 1));
    assert_eq!(convert(money(1, "EUR"), &r), Ok(money(1, "USD")), "0.5 → 1");
    assert_eq!(
        convert(money(-1, "EUR"), &r),
        Ok(money(-1, "USD")),
        "-0.5 → -1"
    );
    assert_eq!(convert(money(3, "EUR"), &r), Ok(money(2, "USD")), "1.5 → 2");
    let third = fx("EUR", "USD", "0.333333333333", day(2024, 1, 1));
    assert_eq!(convert(money(1, "EUR"), &third), Ok(money(0, "USD")));
    assert_eq!(convert(money(-2, "EUR"), &third), Ok(money(-1, "USD")));
    let just_under = fx("EUR", "USD", "0.499999999999", day(2024, 1, 1));
    assert_eq!(convert(money(1, "EUR"), &just_under), Ok(money(0, "USD")));
}

#[test]
fn results_past_the_maximum_are_refused_on_value_even_past_u128() {
    let t = day(2024, 1, 1);
    let at_max = fx("EUR", "USD", "1", t);
    assert_eq!(
        convert(money(MAX_MINOR, "EUR"), &at_max),
        Ok(money(MAX_MINOR, "USD"))
    );
    let double = fx("EUR", "USD", "2", t);
    assert_eq!(
        convert(money(MAX_MINOR / 2, "EUR"), &double),
        Ok(money(MAX_MINOR, "USD"))
    );
    let hair = fx("EUR", "USD", "1.000000000001", t);
    assert_eq!(
        convert(money(MAX_MINOR - 1000, "EUR"), &hair),
        Ok(money(MAX_MINOR, "USD")),
        "999999999999999.999999999 rounds to the maximum"
    );
    for (case, amount, r) in [
        ("rounds to one past", money(MAX_MINOR - 999, "EUR"), hair),
        ("one past", money(MAX_MINOR / 2 + 1, "EUR"), double.clone()),
        ("negative past", money(-MAX_MINOR, "EUR"), double),
        (
            "u128 overflow",
            money(MAX_MINOR, "JPY"),
            fx("JPY", "KWD", "999999999999.999999999999", t),
        ),
        (
            "amount past maximum",
            money(MAX_MINOR + 1, "EUR"),
            fx("EUR", "USD", "0.000001", t),
        ),
        (
            "i64::MIN",
            money(i64::MIN, "EUR"),
            fx("EUR", "USD", "0.000001", t),
        ),
    ] {
        let err = convert(amount, &r).expect_err(case);
        assert_eq!(err.field, "value", "case {case}");
    }
}

#[test]
fn an_amount_in_another_currency_than_the_rates_is_refused_on_currency() {
    let r = fx("USD", "EUR", "0.92", day(2024, 1, 1));
    let err = convert(money(100, "GBP"), &r).unwrap_err();
    assert_eq!(err.field, "currency");
    assert_eq!(err.message, "is GBP, but the rate converts from USD to EUR");
}

#[test]
fn the_rate_in_force_is_the_latest_not_after_the_time() {
    let rates = [
        fx("USD", "EUR", "0.90", day(2024, 1, 1)),
        fx("USD", "EUR", "0.95", day(2024, 3, 1)),
        fx("USD", "EUR", "0.92", day(2024, 2, 1)),
        fx("EUR", "USD", "1.2", day(2024, 2, 15)),
        fx("USD", "GBP", "0.8", day(2024, 2, 15)),
    ];
    let (usd, eur) = (cur("USD"), cur("EUR"));
    let pick = |at| rate_at(&rates, usd, eur, at).map(|r| r.rate.to_string());
    assert_eq!(pick(day(2023, 12, 31)), None, "before any rate");
    assert_eq!(
        pick(day(2024, 1, 1)).as_deref(),
        Some("0.9"),
        "at the instant it takes effect"
    );
    assert_eq!(
        pick(day(2024, 2, 20)).as_deref(),
        Some("0.92"),
        "not the other pair's later rate"
    );
    assert_eq!(pick(day(2030, 1, 1)).as_deref(), Some("0.95"));
    assert_eq!(
        rate_at(&rates, cur("GBP"), usd, day(2030, 1, 1)),
        None,
        "no inverse inferred"
    );
}

#[test]
fn rates_tied_in_time_resolve_to_the_larger_whatever_the_order() {
    let t = day(2024, 1, 1);
    let a = fx("USD", "EUR", "0.91", t);
    let b = fx("USD", "EUR", "0.93", t);
    for rates in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        assert_eq!(rate_at(&rates, cur("USD"), cur("EUR"), t), Some(&b));
    }
}

#[test]
fn convert_at_stores_the_rate_used_and_reproduces() {
    let rates = [
        fx("USD", "EUR", "0.90", day(2024, 1, 1)),
        fx("USD", "EUR", "0.95", day(2024, 3, 1)),
    ];
    let c = convert_at(&rates, money(10_000, "USD"), cur("EUR"), day(2024, 2, 10)).unwrap();
    assert_eq!(c.rate, rate("0.9"));
    assert_eq!(c.rate_effective_at, day(2024, 1, 1));
    assert_eq!(c.converted, money(9_000, "EUR"));
    assert_eq!(c.reproduce(), Ok(c.converted));
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["rate"], "0.9");
    assert_eq!(serde_json::from_value::<Converted>(json).unwrap(), c);
}

#[test]
fn convert_at_in_the_same_currency_is_the_identity() {
    let c = convert_at(&[], money(1234, "EUR"), cur("EUR"), day(2024, 2, 10)).unwrap();
    assert_eq!((c.converted, c.rate), (money(1234, "EUR"), Rate::ONE));
    assert_eq!(c.reproduce(), Ok(c.converted));
}

#[test]
fn convert_at_without_a_rate_on_file_says_which_pair_and_when() {
    let rates = [fx("USD", "EUR", "0.90", day(2024, 3, 1))];
    let err = convert_at(&rates, money(100, "USD"), cur("EUR"), day(2024, 2, 10)).unwrap_err();
    assert_eq!(err.field, "currency");
    assert_eq!(
        err.message,
        "no exchange rate from USD to EUR on file for 2024-02-10T00:00:00Z"
    );
}
