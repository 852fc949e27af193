//! Black-box tests of `tribute attribute` on the sample path files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn tribute(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tribute"))
        .arg("attribute")
        .args(args)
        .output()
        .expect("running tribute")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "tribute failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Parse a decimal like `1234.56` into an integer of units of 10^-`decimals`.
fn fixed(s: &str, decimals: u32) -> i128 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let neg = int.starts_with('-');
    let int: i128 = int.trim_start_matches('-').parse().unwrap();
    let mut frac = frac.to_owned();
    assert!(
        frac.len() <= decimals as usize,
        "{s} has more than {decimals} decimals"
    );
    while frac.len() < decimals as usize {
        frac.push('0');
    }
    let v = int * 10i128.pow(decimals) + frac.parse::<i128>().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

/// Per model: (total conversions in millionths, total value in cents).
fn totals_from_csv(csv: &str) -> BTreeMap<String, (i128, i128)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("model,channel,conversions,value"));
    let mut totals = BTreeMap::new();
    for line in lines {
        // The channel may be quoted and contain commas: read from both ends.
        let model = line.split(',').next().unwrap().to_owned();
        let mut back = line.rsplitn(3, ',');
        let value = fixed(back.next().unwrap(), 2);
        let conv = fixed(back.next().unwrap(), 6);
        let e = totals.entry(model).or_insert((0, 0));
        e.0 += conv;
        e.1 += value;
    }
    totals
}

// The sample files hold 69 conversions worth 5,991.90.
const CONVERSIONS: i128 = 69 * 1_000_000;
const VALUE: i128 = 599_190;

#[test]
fn every_model_adds_up_to_the_files_conversions_and_value_exactly() {
    let out = stdout(&tribute(&["--input", data("paths.csv").to_str().unwrap()]));
    let totals = totals_from_csv(&out);
    let models: Vec<&str> = totals.keys().map(String::as_str).collect();
    assert_eq!(
        models,
        vec![
            "first_touch",
            "last_touch",
            "linear",
            "markov",
            "markov_global",
            "position_based",
            "shapley"
        ],
        "all without ages_days skips time_decay"
    );
    for (model, (conv, value)) in &totals {
        assert_eq!((*conv, *value), (CONVERSIONS, VALUE), "{model}");
    }
    assert!(
        out.contains("\"partner, inc\""),
        "a channel with a comma is quoted:\n{out}"
    );
}

#[test]
fn a_semicolon_file_with_ages_gives_time_decay_and_honours_the_window() {
    let input = data("paths_semicolon.csv");
    let out = stdout(&tribute(&[
        "--input",
        input.to_str().unwrap(),
        "--models",
        "time_decay,linear",
        "--window",
        "10",
        "--half-life",
        "3",
    ]));
    let totals = totals_from_csv(&out);
    assert_eq!(totals.len(), 2);
    for (model, t) in &totals {
        assert_eq!(*t, (CONVERSIONS, VALUE), "{model}");
    }
    // Every converting touch of `social` is older than 10 days (20 and 12).
    assert!(
        out.lines().any(|l| l == "linear,social,0.000000,0.00"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l == "time_decay,social,0.000000,0.00"),
        "{out}"
    );
}

#[test]
fn json_output_has_model_channel_conversions_and_value() {
    let out = stdout(&tribute(&[
        "--input",
        data("paths.csv").to_str().unwrap(),
        "--models",
        "first_touch,markov",
        "--format",
        "json",
        "--order",
        "2",
    ]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = &json["first_touch"];
    // seo alone (30) + seo > email (9) convert with seo first.
    assert_eq!(first["seo"]["conversions"], serde_json::json!(39.0));
    assert_eq!(first["seo"]["value"], serde_json::json!(3391.09));
    assert!(json["markov"]["ads"]["value"].is_number());
}

#[test]
fn malformed_lines_are_reported_with_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        "path,total_conversions,total_conversion_value,total_null\na,1,1.00,0\nb,one,1.00,0\nc,1,1.00\n",
    )
    .unwrap();
    let out = tribute(&["--input", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

#[test]
fn a_file_without_conversions_fails_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.csv");
    std::fs::write(
        &path,
        "path,total_conversions,total_conversion_value,total_null\na,0,0,5\n",
    )
    .unwrap();
    let out = tribute(&["--input", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no conversions"));
}

#[test]
fn an_unknown_model_is_refused_naming_every_model_including_markov_global() {
    let out = tribute(&[
        "--input",
        data("paths.csv").to_str().unwrap(),
        "--models",
        "linear,nope",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for model in [
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position_based",
        "markov",
        "markov_global",
        "shapley",
    ] {
        assert!(err.contains(model), "{model} is not named: {err}");
    }
    assert!(err.contains("`nope`"), "{err}");
    let help = tribute(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("markov, markov_global, shapley"), "{help}");
}
