//! Tests of the path-file reader and report (`tribute attribute`).

use super::paths::*;
use super::ModelKind;

const SAMPLE: &str = "\
path,total_conversions,total_conversion_value,total_null
C1 > C2 > C3,1,100.00,0
C1,0,0,1
C2 > C3,0,0,1
";

fn opts(models: &str, has_ages: bool) -> ReportOptions {
    ReportOptions {
        models: ReportModel::parse_list(models, has_ages).unwrap(),
        half_life_days: 7.0,
        markov_order: 1,
        window_days: None,
    }
}

fn credits(report: &Report, model: &str) -> Vec<(String, String, String)> {
    let (_, list) = report.models.iter().find(|(m, _)| m == model).unwrap();
    list.iter()
        .map(|c| {
            (
                c.channel.clone(),
                format_fixed(c.conversions, CONVERSION_DECIMALS),
                format_fixed(c.value, report.value_decimals),
            )
        })
        .collect()
}

fn row(ch: &str, conv: &str, value: &str) -> (String, String, String) {
    (ch.into(), conv.into(), value.into())
}

#[test]
fn the_worked_markov_example_reads_from_a_path_file() {
    let file = parse_paths(SAMPLE).unwrap();
    assert_eq!(
        (
            file.total_conversions,
            file.total_value,
            file.value_decimals
        ),
        (1, 10_000, 2)
    );
    let report = attribute_paths(&file, &opts("markov,markov_global,linear", false)).unwrap();
    assert_eq!(
        credits(&report, "markov"),
        vec![
            row("C1", "0.200000", "20.00"),
            row("C2", "0.400000", "40.00"),
            row("C3", "0.400000", "40.00")
        ]
    );
    assert_eq!(
        credits(&report, "markov_global"),
        credits(&report, "markov")
    );
    assert_eq!(
        credits(&report, "linear"),
        vec![
            row("C1", "0.333334", "33.34"),
            row("C2", "0.333333", "33.33"),
            row("C3", "0.333333", "33.33")
        ]
    );
}

#[test]
fn semicolons_and_decimal_commas_are_detected() {
    let text = "path;total_conversions;total_conversion_value;total_null\n\"a > b\";3;10,5;2\n";
    let file = parse_paths(text).unwrap();
    assert_eq!(file.separator, ';');
    assert_eq!(file.rows[0].path, vec!["a", "b"]);
    assert_eq!(file.rows[0].value, 1050);
}

#[test]
fn every_model_totals_the_files_conversions_and_value_exactly() {
    let text = "\
total_null,path,total_conversions,total_conversion_value,ages_days
4,a > b > a > c,3,100.001,10 > 5 > 2 > 0
0,b,7,0.07,1
9,c > a,1,33.3,3 > 0.5
2,d,0,0,4
";
    let file = parse_paths(text).unwrap();
    assert_eq!(file.value_decimals, 3);
    assert_eq!(file.total_value, 100_001 + 70 + 33_300);
    let mut o = opts("all", true);
    for window in [None, Some(2.0)] {
        o.window_days = window;
        let report = attribute_paths(&file, &o).unwrap();
        assert_eq!(report.models.len(), 8, "all = 7 models + markov_global");
        for (model, list) in &report.models {
            let conv: i128 = list.iter().map(|c| c.conversions).sum();
            let value: i128 = list.iter().map(|c| c.value).sum();
            assert_eq!(conv, 11 * 1_000_000, "{model} with window {window:?}");
            assert_eq!(value, file.total_value, "{model} with window {window:?}");
        }
    }
    // A 2-day window leaves `a > b > a > c`'s only `c` and `b`'s only `b`
    // (age 1), and `c > a`'s `a` (age 0.5); nothing falls outside entirely.
    let report = attribute_paths(&file, &o).unwrap();
    assert!(credits(&report, "linear")
        .iter()
        .all(|r| r.0 != UNATTRIBUTED));
}

#[test]
fn conversions_whose_touches_are_all_outside_the_window_are_unattributed() {
    let text = "path,total_conversions,total_conversion_value,total_null,ages_days\na,2,5.00,0,30\nb,1,1.00,0,1\n";
    let file = parse_paths(text).unwrap();
    let mut o = opts("last_touch", true);
    o.window_days = Some(7.0);
    let report = attribute_paths(&file, &o).unwrap();
    assert_eq!(
        credits(&report, "last_touch"),
        vec![
            row(UNATTRIBUTED, "2.000000", "5.00"),
            row("a", "0.000000", "0.00"),
            row("b", "1.000000", "1.00")
        ]
    );
}

#[test]
fn time_decay_needs_ages_and_all_skips_it_without_them() {
    let file = parse_paths(SAMPLE).unwrap();
    let err = attribute_paths(&file, &opts("time_decay", false)).unwrap_err();
    assert!(err.message.contains("ages_days"));
    let all = ReportModel::parse_list("all", false).unwrap();
    assert!(!all.contains(&ReportModel::Model(ModelKind::TimeDecay)));
    assert!(ReportModel::parse_list("linear,bogus", false).is_err());
}

#[test]
fn an_unknown_model_is_refused_naming_every_model_a_report_can_list() {
    let err = ReportModel::parse_list("linear,bogus", false).unwrap_err();
    assert_eq!(err.field, "models");
    assert!(err.message.contains("`bogus`"), "{}", err.message);
    for m in ReportModel::all() {
        assert!(
            err.message.contains(m.name()),
            "{} is missing from: {}",
            m.name(),
            err.message
        );
    }
    assert!(err.message.contains("markov_global"), "{}", err.message);
    let every: Vec<&str> = ReportModel::all().iter().map(|m| m.name()).collect();
    let parsed = ReportModel::parse_list(&every.join(","), true).unwrap();
    assert_eq!(parsed, ReportModel::all(), "every listed name parses");
}

#[test]
fn malformed_lines_are_reported_by_line_number() {
    let text = "path,total_conversions,total_conversion_value,total_null\n\
                a > b,1,2.00,0\n\
                a,x,1,0\n\
                \n\
                a >  > b,1,1,0\n\
                b,1,1\n\
                c,0,5,1\n";
    let err = parse_paths(text).unwrap_err();
    let lines: Vec<usize> = err.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 5, 6, 7]);
    let shown = err.to_string();
    assert!(shown.contains("line 3: total_conversions `x`"), "{shown}");
    assert!(shown.contains("line 5: path"), "{shown}");
    assert!(shown.contains("line 6: expected 4 fields"), "{shown}");
}

#[test]
fn a_missing_column_is_named() {
    let err = parse_paths("path,total_conversions,total_null\na,1,0\n").unwrap_err();
    assert!(err.to_string().contains("total_conversion_value"), "{err}");
}

#[test]
fn a_file_without_conversions_is_an_error_that_says_so() {
    let err = parse_paths("path,total_conversions,total_conversion_value,total_null\na,0,0,4\n")
        .unwrap_err();
    assert!(err.to_string().contains("no conversions"), "{err}");
    assert!(parse_paths("").unwrap_err().to_string().contains("empty"));
}

#[test]
fn json_and_csv_print_exact_decimals() {
    let file = parse_paths(SAMPLE).unwrap();
    let report = attribute_paths(&file, &opts("first_touch", false)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["first_touch"]["C1"]["value"], serde_json::json!(100.0));
    assert_eq!(
        json["first_touch"]["C2"]["conversions"],
        serde_json::json!(0.0)
    );
    assert_eq!(
        report.to_csv(),
        "model,channel,conversions,value\n\
         first_touch,C1,1.000000,100.00\n\
         first_touch,C2,0.000000,0.00\n\
         first_touch,C3,0.000000,0.00\n"
    );
    assert_eq!(format_fixed(-1_050, 2), "-10.50");
}
