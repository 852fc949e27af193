//! The document's attribution operations (`crate::attribution`): what-if
//! previews, model comparison and fits.

use serde_json::{json, Value};
use tribute_core::attribution::ModelKind;

use super::schema::{
    any_object, array, described, id, int, integer, nullable, number, object, one_of_strings, op,
    param, path_id, pattern, query, read_only, schema_ref, string, time, time_or_date, In,
};

fn model() -> Value {
    one_of_strings(ModelKind::ALL.iter().map(|m| m.as_str()))
}

fn data_driven() -> Value {
    one_of_strings(
        ModelKind::ALL
            .iter()
            .filter(|m| m.is_data_driven())
            .map(|m| m.as_str()),
    )
}

/// `models=a,b` of a comparison: model names separated by commas, or `all`.
fn model_list() -> Value {
    let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.as_str()).collect();
    let one = format!("({})", names.join("|"));
    described(
        pattern(&format!("^(all|{one}(,{one})*)$"), 200),
        "model names separated by commas, or `all` (the default)",
    )
}

/// The options a preview or comparison may change.
fn model_options() -> [Value; 2] {
    [
        query(
            "window_days",
            described(integer(1, 3650), "default: the program's window"),
        ),
        query(
            "half_life_days",
            described(
                json!({
                    "type": "number",
                    "minimum": tribute_core::attribution::MIN_HALF_LIFE_DAYS,
                    "maximum": tribute_core::attribution::MAX_HALF_LIFE_DAYS,
                }),
                "time_decay only",
            ),
        ),
    ]
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let credit = object(
        &[("conversions", number()), ("value", int())],
        &["conversions", "value"],
    );
    vec![
        (
            "WhatIf",
            object(
                &[
                    ("conversion_id", id("cnv")),
                    ("value", int()),
                    ("currency", string()),
                    ("summary", string()),
                    (
                        "partners",
                        array(object(
                            &[("partner_id", id("ptn")), ("amount", int())],
                            &["partner_id", "amount"],
                        )),
                    ),
                    (
                        "attribution",
                        any_object("touches counted and excluded, with reasons"),
                    ),
                ],
                &[
                    "conversion_id",
                    "value",
                    "currency",
                    "summary",
                    "partners",
                    "attribution",
                ],
            ),
        ),
        (
            "Comparison",
            object(
                &[
                    ("program_id", id("prg")),
                    ("from", time()),
                    ("to", time()),
                    ("conversions", int()),
                    ("total_value", int()),
                    (
                        "models",
                        described(
                            json!({"type": "object", "additionalProperties":
                                {"type": "object", "additionalProperties": credit}}),
                            "model → partner id → credit",
                        ),
                    ),
                ],
                &[
                    "program_id",
                    "from",
                    "to",
                    "conversions",
                    "total_value",
                    "models",
                ],
            ),
        ),
        (
            "FitCreate",
            object(
                &[
                    ("program_id", id("prg")),
                    ("model", data_driven()),
                    ("from", nullable(time_or_date())),
                    ("to", nullable(time_or_date())),
                    ("markov_order", nullable(integer(1, 3))),
                ],
                &["program_id", "model"],
            ),
        ),
        (
            "Fit",
            object(
                &[
                    ("id", read_only(pattern(r"^fit_[A-Za-z0-9]+$", 100))),
                    ("model", data_driven()),
                    ("period_from", time()),
                    ("period_to", time()),
                    ("journeys", int()),
                    ("created_at", read_only(time())),
                    ("fit", any_object("the fitted model")),
                ],
                &[
                    "id",
                    "model",
                    "period_from",
                    "period_to",
                    "journeys",
                    "created_at",
                    "fit",
                ],
            ),
        ),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let program = param("program_id", In::Query, id("prg"), true);
    let mut what_if = vec![path_id("cnv"), param("model", In::Query, model(), true)];
    what_if.extend(model_options());
    let mut compare = vec![
        program.clone(),
        query("from", time_or_date()),
        query("to", time_or_date()),
        query("models", model_list()),
    ];
    compare.extend(model_options());
    vec![
        (
            "/api/v1/conversions/{id}/attribution",
            json!({
                "post": op("What-if: attribute under another model, changing nothing",
                    &what_if, None, "200", schema_ref("WhatIf")),
            }),
        ),
        (
            "/api/v1/attribution/compare",
            json!({
                "get": op("Credit per partner under each model over [from, to) (default the last 30 days)",
                    &compare, None, "200", schema_ref("Comparison")),
            }),
        ),
        (
            "/api/v1/attribution/fits",
            json!({
                "get": op("The latest fit of a data-driven model",
                    &[program, param("model", In::Query, data_driven(), true)], None, "200", schema_ref("Fit")),
                "post": op("Fit markov or shapley over a period (default the last 30 days)", &[],
                    Some(schema_ref("FitCreate")), "201", schema_ref("Fit")),
            }),
        ),
    ]
}
