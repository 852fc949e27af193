//! Payout files: exact bytes per format, parts, refusals, formula escaping,
//! and a property test that the parts add up to the batch.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::money::MAX_MINOR;
use crate::tracking::parse_decimal_minor;

fn cur(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn item(id: &str, name: &str, email: Option<&str>, minor: i64, code: &str) -> PayoutItem {
    PayoutItem {
        partner_id: PartnerId::parse(id).unwrap(),
        name: name.to_owned(),
        email: email.map(str::to_owned),
        amount: Money::new(minor, cur(code)),
        reference: format!("pay_7Hq2 {}", name.to_lowercase().replace(' ', "-")),
        note: "June".to_owned(),
    }
}

fn alice() -> PayoutItem {
    PayoutItem {
        reference: "pay_7Hq2 jane-doe".to_owned(),
        note: r#"June, "thanks""#.to_owned(),
        ..item(
            "ptn_alice1",
            r#"Doe, Jane "JD""#,
            Some("alice@example.com"),
            1234,
            "EUR",
        )
    }
}

fn bob_jpy() -> PayoutItem {
    item(
        "ptn_bob2",
        "Bob Tanaka",
        Some("bob@example.jp"),
        1234,
        "JPY",
    )
}

/// `n` items numbered from 0, each paying `i + 1` minor units of `code`.
fn numbered(n: usize, code: &str) -> Vec<PayoutItem> {
    (0..n)
        .map(|i| {
            let id = format!("ptn_p{i}");
            let email = format!("p{i}@example.com");
            item(&id, &format!("P {i}"), Some(&email), i as i64 + 1, code)
        })
        .collect()
}

fn records(file: &str, has_header: bool) -> Vec<csv::StringRecord> {
    csv::ReaderBuilder::new()
        .has_headers(has_header)
        .from_reader(file.as_bytes())
        .records()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn paypal_file_has_no_header_one_line_per_payout_and_quotes_the_note() {
    let bob = item("ptn_bob2", "Bob", Some("bob@example.com"), 5, "EUR");
    let files = export(ExportFormat::Paypal, &[alice(), bob], cur("USD")).unwrap();
    assert_eq!(
        files,
        vec![concat!(
            "alice@example.com,12.34,EUR,ptn_alice1,\"June, \"\"thanks\"\"\",PAYPAL\r\n",
            "bob@example.com,0.05,EUR,ptn_bob2,June,PAYPAL\r\n",
        )]
    );
}

#[test]
fn paypal_yen_amounts_have_no_decimals() {
    let files = export(ExportFormat::Paypal, &[bob_jpy()], cur("USD")).unwrap();
    assert_eq!(
        files,
        vec!["bob@example.jp,1234,JPY,ptn_bob2,June,PAYPAL\r\n"]
    );
}

#[test]
fn paypal_forints_are_whole_units_and_a_fraction_is_refused() {
    let whole = item("ptn_h1", "H", Some("h@example.hu"), 12_300, "HUF");
    let files = export(ExportFormat::Paypal, &[whole], cur("EUR")).unwrap();
    assert_eq!(files, vec!["h@example.hu,123,HUF,ptn_h1,June,PAYPAL\r\n"]);

    let fraction = item("ptn_h2", "H", Some("h@example.hu"), 12_345, "HUF");
    let err = export(ExportFormat::Paypal, &[fraction], cur("EUR")).unwrap_err();
    assert_eq!(err.field, "items[0].amount");
}

#[test]
fn wise_file_has_the_template_header_and_pays_target_amounts() {
    let files = export(ExportFormat::Wise, &[alice(), bob_jpy()], cur("USD")).unwrap();
    assert_eq!(
        files,
        vec![concat!(
            "name,recipientEmail,paymentReference,receiverType,amountCurrency,amount,",
            "sourceCurrency,targetCurrency\r\n",
            "\"Doe, Jane \"\"JD\"\"\",alice@example.com,pay-7Hq2 jane-doe,PERSON,target,",
            "12.34,USD,EUR\r\n",
            "Bob Tanaka,bob@example.jp,pay-7Hq2 b,PERSON,target,1234,USD,JPY\r\n",
        )]
    );
}

#[test]
fn generic_file_keeps_every_column_and_partners_without_email() {
    let carol = item("ptn_carol3", "Carol", None, 1234, "KWD");
    let files = export(ExportFormat::Csv, &[alice(), bob_jpy(), carol], cur("USD")).unwrap();
    assert_eq!(
        files,
        vec![concat!(
            "partner_id,name,email,amount,currency,amount_minor,reference,note\r\n",
            "ptn_alice1,\"Doe, Jane \"\"JD\"\"\",alice@example.com,12.34,EUR,1234,",
            "pay_7Hq2 jane-doe,\"June, \"\"thanks\"\"\"\r\n",
            "ptn_bob2,Bob Tanaka,bob@example.jp,1234,JPY,1234,pay_7Hq2 bob-tanaka,June\r\n",
            "ptn_carol3,Carol,,1.234,KWD,1234,pay_7Hq2 carol,June\r\n",
        )]
    );
}

#[test]
fn a_batch_of_exactly_max_rows_is_one_file_and_one_more_starts_a_second() {
    for (format, max, has_header) in [
        (ExportFormat::Paypal, PAYPAL_MAX_ROWS, false),
        (ExportFormat::Wise, WISE_MAX_ROWS, true),
    ] {
        assert_eq!(format.max_rows(), Some(max));
        let full = export(format, &numbered(max, "EUR"), cur("EUR")).unwrap();
        assert_eq!(full.len(), 1, "{format:?} at {max}");
        assert_eq!(records(&full[0], has_header).len(), max, "{format:?}");

        let over = export(format, &numbered(max + 1, "EUR"), cur("EUR")).unwrap();
        assert_eq!(over.len(), 2, "{format:?} at {max} + 1");
        let (first, second) = (records(&over[0], has_header), records(&over[1], has_header));
        assert_eq!(first.len(), max, "{format:?}");
        assert_eq!(second.len(), 1, "{format:?}");
        // The items keep their order: the last one alone in the second file.
        let email = |r: &csv::StringRecord| r[usize::from(has_header)].to_owned();
        assert_eq!(email(&first[0]), "p0@example.com", "{format:?}");
        assert_eq!(
            email(&second[0]),
            format!("p{max}@example.com"),
            "{format:?}"
        );
        if has_header {
            assert!(over[1].starts_with("name,recipientEmail,"), "{format:?}");
        }
    }
}

#[test]
fn the_generic_file_is_never_split() {
    assert_eq!(ExportFormat::Csv.max_rows(), None);
    let files = export(ExportFormat::Csv, &numbered(12_001, "EUR"), cur("EUR")).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(records(&files[0], true).len(), 12_001);
}

#[test]
fn paypal_refuses_a_batch_in_several_currencies_and_wise_takes_it() {
    let items = [alice(), bob_jpy()];
    let err = export(ExportFormat::Paypal, &items, cur("USD")).unwrap_err();
    assert_eq!(err.field, "currency");
    assert!(err.message.contains("items[1] in JPY"), "{}", err.message);
    assert!(export(ExportFormat::Wise, &items, cur("USD")).is_ok());
}

#[test]
fn a_partner_without_payout_email_is_refused_by_name_for_paypal_and_wise() {
    for email in [None, Some(""), Some("   ")] {
        let items = [alice(), item("ptn_dan4", "Dan", email, 100, "EUR")];
        for format in [ExportFormat::Paypal, ExportFormat::Wise] {
            let err = export(format, &items, cur("EUR")).unwrap_err();
            assert_eq!(err.field, "items[1].email", "{format:?} {email:?}");
            assert!(
                err.message.contains("ptn_dan4") && err.message.contains("Dan"),
                "{format:?}: {}",
                err.message
            );
        }
        assert!(export(ExportFormat::Csv, &items, cur("EUR")).is_ok());
    }
}

#[test]
fn zero_negative_and_oversized_amounts_are_refused() {
    for (case, minor) in [
        ("zero", 0),
        ("negative", -1),
        ("above the maximum", MAX_MINOR + 1),
    ] {
        let items = [alice(), item("ptn_e5", "E", Some("e@x.com"), minor, "EUR")];
        for format in [ExportFormat::Paypal, ExportFormat::Wise, ExportFormat::Csv] {
            let err = export(format, &items, cur("EUR")).unwrap_err();
            assert_eq!(err.field, "items[1].amount", "{case} {format:?}");
        }
    }
}

#[test]
fn an_empty_batch_is_refused() {
    let err = export(ExportFormat::Csv, &[], cur("EUR")).unwrap_err();
    assert_eq!(err.field, "items");
}

#[test]
fn cells_starting_like_a_formula_get_a_leading_quote() {
    for (input, expected) in [
        ("=1+1", "'=1+1"),
        ("+31 6 1234", "'+31 6 1234"),
        ("-2", "'-2"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\0x", "'\0x"),
        ("Jane", "Jane"),
        ("a=b", "a=b"),
        ("'quoted", "'quoted"),
        ("", ""),
    ] {
        assert_eq!(escape_formula(input), expected, "input {input:?}");
    }
}

#[test]
fn formula_cells_are_escaped_in_every_file() {
    let evil = PayoutItem {
        name: r#"=HYPERLINK("http://evil.example","x")"#.to_owned(),
        note: "+cmd|' /C calc'!A0".to_owned(),
        reference: "@SUM(1)".to_owned(),
        email: Some("-mallory@example.com".to_owned()),
        ..item("ptn_m6", "M", None, 100, "EUR")
    };
    let generic = export(ExportFormat::Csv, std::slice::from_ref(&evil), cur("EUR")).unwrap();
    let row = &records(&generic[0], true)[0];
    assert_eq!(&row[1], r#"'=HYPERLINK("http://evil.example","x")"#);
    assert_eq!(&row[2], "'-mallory@example.com");
    assert_eq!(&row[6], "'@SUM(1)");
    assert_eq!(&row[7], "'+cmd|' /C calc'!A0");

    // A provider pays the e-mail as written: one that would need the quote
    // is refused rather than altered.
    for format in [ExportFormat::Paypal, ExportFormat::Wise] {
        let err = export(format, std::slice::from_ref(&evil), cur("EUR")).unwrap_err();
        assert_eq!(err.field, "items[0].email", "{format:?}");
    }
    let payable = PayoutItem {
        email: Some("m@example.com".to_owned()),
        ..evil
    };
    let paypal = export(
        ExportFormat::Paypal,
        std::slice::from_ref(&payable),
        cur("EUR"),
    )
    .unwrap();
    assert_eq!(&records(&paypal[0], false)[0][4], "'+cmd|' /C calc'!A0");
    let wise = export(ExportFormat::Wise, &[payable], cur("EUR")).unwrap();
    let row = &records(&wise[0], true)[0];
    assert_eq!(&row[0], r#"'=HYPERLINK("http://evil.example","x")"#);
    // The reference is cleaned to letters and digits first: nothing to escape.
    assert_eq!(&row[2], "SUM-1");
}

#[test]
fn wise_references_keep_safe_characters_within_the_currency_limit() {
    for (reference, code, expected) in [
        ("pay_7Hq2 jane-doe", "EUR", "pay-7Hq2 jane-doe"),
        ("pay_7Hq2 jane-doe", "USD", "pay-7Hq2 j"),
        ("abcdefghi-klm", "USD", "abcdefghi"),
        ("  --Zoë's payout!! ", "EUR", "Zo-s payout"),
        ("0123456789abcdefghij", "GBP", "0123456789abcdef"),
        ("0123456789abcdefghij", "CLP", "0123456789"),
        ("pay 7", "COP", ""),
        ("!!!", "EUR", ""),
    ] {
        assert_eq!(
            wise_reference(reference, cur(code)),
            expected,
            "{reference:?} in {code}"
        );
    }
}

#[test]
fn a_wise_reference_with_nothing_usable_falls_back_to_the_partner_id() {
    let bare = PayoutItem {
        reference: "«»".to_owned(),
        ..item("ptn_f7", "F", Some("f@example.com"), 100, "EUR")
    };
    let files = export(ExportFormat::Wise, &[bare], cur("EUR")).unwrap();
    assert_eq!(&records(&files[0], true)[0][2], "ptn-f7");
}

#[test]
fn paypal_notes_are_cut_to_400_characters_and_long_partner_ids_refused() {
    let chatty = PayoutItem {
        note: "é".repeat(PAYPAL_NOTE_MAX_CHARS + 50),
        ..item("ptn_g8", "G", Some("g@example.com"), 100, "EUR")
    };
    let files = export(ExportFormat::Paypal, &[chatty], cur("EUR")).unwrap();
    let note = records(&files[0], false)[0][4].to_owned();
    assert_eq!(note.chars().count(), PAYPAL_NOTE_MAX_CHARS);

    let long_id = format!("ptn_{}", "a".repeat(PAYPAL_CUSTOMER_ID_MAX_CHARS));
    let long = item(&long_id, "L", Some("l@example.com"), 100, "EUR");
    let err = export(ExportFormat::Paypal, &[long], cur("EUR")).unwrap_err();
    assert_eq!(err.field, "items[0].partner_id");
}

#[test]
fn export_formats_parse_by_name_and_others_name_the_field() {
    assert_eq!(
        ExportFormat::parse("format", "paypal"),
        Ok(ExportFormat::Paypal)
    );
    assert_eq!(
        ExportFormat::parse("format", "WISE"),
        Ok(ExportFormat::Wise)
    );
    assert_eq!(
        ExportFormat::parse("format", " csv "),
        Ok(ExportFormat::Csv)
    );
    for f in [ExportFormat::Paypal, ExportFormat::Wise, ExportFormat::Csv] {
        assert_eq!(ExportFormat::parse("format", f.as_str()), Ok(f));
    }
    assert_eq!(
        ExportFormat::parse("format", "xlsx").unwrap_err().field,
        "format"
    );
    assert_eq!(
        ExportFormat::parse("format", "").unwrap_err().field,
        "format"
    );
}

#[test]
fn decimals_follow_the_currency_exponent_exactly() {
    assert_eq!(format_decimal(Money::new(1234, cur("EUR"))), "12.34");
    assert_eq!(format_decimal(Money::new(5, cur("EUR"))), "0.05");
    assert_eq!(format_decimal(Money::new(-5, cur("EUR"))), "-0.05");
    assert_eq!(format_decimal(Money::new(1234, cur("JPY"))), "1234");
    assert_eq!(format_decimal(Money::new(1, cur("KWD"))), "0.001");
    assert_eq!(
        format_decimal(Money::new(MAX_MINOR, cur("EUR"))),
        "10000000000000.00"
    );
}

/// Per currency, the amounts of every file of an export, parsed back.
fn totals_in_files(format: ExportFormat, files: &[String]) -> (usize, BTreeMap<Currency, i128>) {
    let (has_header, amount, currency) = match format {
        ExportFormat::Paypal => (false, 1, 2),
        ExportFormat::Wise => (true, 5, 7),
        ExportFormat::Csv => (true, 3, 4),
    };
    let mut rows = 0;
    let mut totals = BTreeMap::new();
    for file in files {
        for r in records(file, has_header) {
            let c = cur(&r[currency]);
            let minor = parse_decimal_minor("amount", &r[amount], c.exponent()).unwrap();
            if format == ExportFormat::Csv {
                assert_eq!(r[5].parse::<i64>().unwrap(), minor);
            }
            *totals.entry(c).or_insert(0) += i128::from(minor);
            rows += 1;
        }
    }
    (rows, totals)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Split into parts or not, the files pay exactly the batch: each part
    /// within the row limit, and the amounts parsed back add up, per
    /// currency, to the batch total.
    #[test]
    fn every_part_adds_up_to_the_batch_total(
        amounts in prop::collection::vec((1..=MAX_MINOR, 0usize..3), 1..11_000),
    ) {
        let codes = ["EUR", "JPY", "KWD"];
        for format in [ExportFormat::Paypal, ExportFormat::Wise, ExportFormat::Csv] {
            // PayPal takes one currency: the first item's.
            let code_of = |c: usize| if format == ExportFormat::Paypal { codes[amounts[0].1] } else { codes[c] };
            let items: Vec<PayoutItem> = amounts
                .iter()
                .enumerate()
                .map(|(i, &(minor, c))| {
                    item(&format!("ptn_q{i}"), "Q", Some("q@example.com"), minor, code_of(c))
                })
                .collect();
            let mut expected = BTreeMap::new();
            for it in &items {
                *expected.entry(it.amount.currency).or_insert(0i128) += i128::from(it.amount.minor);
            }
            let files = export(format, &items, cur("USD")).unwrap();
            let max = format.max_rows().unwrap_or(usize::MAX);
            prop_assert_eq!(files.len(), items.len().div_ceil(max.min(items.len())));
            for file in &files {
                let (rows, _) = totals_in_files(format, std::slice::from_ref(file));
                prop_assert!(rows <= max, "{:?}: {} rows", format, rows);
            }
            let (rows, totals) = totals_in_files(format, &files);
            prop_assert_eq!(rows, items.len());
            prop_assert_eq!(totals, expected);
        }
    }
}
