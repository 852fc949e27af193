//! The document's tiers, their evaluation and a partner's tier changes
//! (`api::tiers`), and the program's exchange rates (`api::fx_rates`):
//! what a commission is multiplied by, and converted with.

use serde_json::{json, Value};
use tribute_core::commission::tiers::{MAX_TIER_NAME, MAX_WINDOW_DAYS};
use tribute_core::commission::MAX_MULTIPLIER_BPS;
use tribute_core::money::MAX_MINOR;

use super::schema::{
    array, currency, described, id, int, integer, label, list_of, nullable, object, one_of_strings,
    op, paging, param, path_id, query, read_only, schema_ref, string, time, In,
};

/// A promotion threshold (`tribute_core::commission::Threshold`).
fn threshold() -> Value {
    object(
        &[
            ("metric", one_of_strings(["revenue", "conversions"])),
            (
                "min",
                described(
                    integer(0, MAX_MINOR),
                    "minor units of the program's currency for revenue, a count for conversions",
                ),
            ),
            ("window_days", integer(1, i64::from(MAX_WINDOW_DAYS))),
        ],
        &["metric", "min", "window_days"],
    )
}

/// The fields of a tier as written, for a create (`program_id` first) or
/// an update (`threshold: null` makes the tier manual-only).
fn tier_fields(create: bool) -> Vec<(&'static str, Value)> {
    let mut props = Vec::new();
    if create {
        props.push(("program_id", id("prg")));
    }
    props.extend([
        (
            "name",
            described(label(MAX_TIER_NAME), "what a partner's `tier` holds"),
        ),
        (
            "multiplier_bps",
            described(
                integer(0, i64::from(MAX_MULTIPLIER_BPS)),
                "applied to the partner's commissions; 10000 is ×1",
            ),
        ),
        (
            "rank",
            described(
                integer(0, i64::from(u32::MAX)),
                "higher is better; unique in the program",
            ),
        ),
        (
            "threshold",
            described(
                nullable(threshold()),
                "reach it over the window to be promoted (and keep it, or be demoted); \
                 null: a manual-only tier",
            ),
        ),
    ]);
    props
}

/// A rate as text (`tribute_core::fx::Rate::parse`): a positive decimal,
/// at most 12 digits before and after the point, no leading zero.
fn rate() -> Value {
    described(
        json!({"anyOf": [
            {"type": "string", "pattern": r"^[1-9][0-9]{0,11}(\.[0-9]{1,12})?$"},
            {"type": "string", "pattern": r"^0\.[0-9]*[1-9][0-9]*$", "maxLength": 14},
        ]}),
        "one unit of from_currency in units of to_currency, exact, e.g. \"1.0842\"",
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let tier = [
        ("id", read_only(id("tir"))),
        ("program_id", id("prg")),
        ("name", string()),
        ("multiplier_bps", int()),
        ("rank", int()),
        (
            "threshold",
            nullable(object(
                &[
                    ("metric", one_of_strings(["revenue", "conversions"])),
                    ("min", int()),
                    ("window_days", int()),
                ],
                &["metric", "min", "window_days"],
            )),
        ),
        ("created_at", read_only(time())),
    ];
    let tier_required: Vec<&str> = tier.iter().map(|(k, _)| *k).collect();
    let change = [
        ("id", read_only(string())),
        ("program_id", id("prg")),
        ("partner_id", id("ptn")),
        ("from", described(nullable(string()), "null: had no tier")),
        (
            "to",
            described(nullable(string()), "null: no tier any more"),
        ),
        ("reason", string()),
        ("at", time()),
    ];
    let change_required: Vec<&str> = change.iter().map(|(k, _)| *k).collect();
    let fx = [
        ("id", read_only(id("fxr"))),
        ("program_id", id("prg")),
        ("from_currency", string()),
        ("to_currency", string()),
        ("rate", string()),
        ("effective_at", time()),
        ("created_at", read_only(time())),
    ];
    let fx_required: Vec<&str> = fx.iter().map(|(k, _)| *k).collect();
    vec![
        ("Tier", object(&tier, &tier_required)),
        (
            "TierCreate",
            object(
                &tier_fields(true),
                &["program_id", "name", "multiplier_bps", "rank"],
            ),
        ),
        ("TierUpdate", object(&tier_fields(false), &[])),
        ("TierChange", object(&change, &change_required)),
        (
            "TierEvaluate",
            object(&[("program_id", id("prg"))], &["program_id"]),
        ),
        (
            "TierEvaluation",
            object(
                &[
                    ("program_id", id("prg")),
                    ("changes", array(schema_ref("TierChange"))),
                ],
                &["program_id", "changes"],
            ),
        ),
        ("FxRate", object(&fx, &fx_required)),
        (
            "FxRateCreate",
            object(
                &[
                    ("program_id", id("prg")),
                    ("from_currency", currency()),
                    (
                        "to_currency",
                        described(currency(), "the program's currency"),
                    ),
                    ("rate", rate()),
                    (
                        "effective_at",
                        described(time(), "in force from then until a later rate of the pair"),
                    ),
                ],
                &[
                    "program_id",
                    "from_currency",
                    "to_currency",
                    "rate",
                    "effective_at",
                ],
            ),
        ),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let data = |name: &str| object(&[("data", array(schema_ref(name)))], &["data"]);
    let program = param("program_id", In::Query, id("prg"), true);
    let mut rates = paging().to_vec();
    rates.extend([
        query("program_id", id("prg")),
        query("from_currency", currency()),
    ]);
    vec![
        (
            "/api/v1/tiers",
            json!({
                "get": op("A program's tiers, highest rank first (admin)", &[program], None, "200",
                    data("Tier")),
                "post": op("Create a tier; a name or rank the program already has is a 409 (admin)",
                    &[], Some(schema_ref("TierCreate")), "201", schema_ref("Tier")),
            }),
        ),
        (
            "/api/v1/tiers/evaluate",
            json!({
                "post": op("Move the program's partners to the tiers their results earn now, \
                    recording each change with its reason (admin; also done daily)", &[],
                    Some(schema_ref("TierEvaluate")), "200", schema_ref("TierEvaluation")),
            }),
        ),
        (
            "/api/v1/tiers/{id}",
            json!({
                "get": op("Get a tier (admin)", &[path_id("tir")], None, "200", schema_ref("Tier")),
                "patch": op("Update a tier; a new name moves with its partners (admin)",
                    &[path_id("tir")], Some(schema_ref("TierUpdate")), "200", schema_ref("Tier")),
                "delete": op("Delete a tier; its partners keep the name, set by hand (admin)",
                    &[path_id("tir")], None, "200", schema_ref("Tier")),
            }),
        ),
        (
            "/api/v1/partners/{id}/tier-changes",
            json!({
                "get": op("A partner's tier changes with their reasons, newest first \
                    (a partner key: its own only)", &[path_id("ptn")], None, "200",
                    data("TierChange")),
            }),
        ),
        (
            "/api/v1/fx-rates",
            json!({
                "get": op("Exchange rates, by program and pair, latest first (admin)", &rates, None,
                    "200", list_of("FxRate")),
                "post": op("Add an exchange rate into the program's currency (admin)", &[],
                    Some(schema_ref("FxRateCreate")), "201", schema_ref("FxRate")),
            }),
        ),
        (
            "/api/v1/fx-rates/{id}",
            json!({
                "get": op("Get an exchange rate (admin)", &[path_id("fxr")], None, "200",
                    schema_ref("FxRate")),
                "delete": op("Delete an exchange rate; conversions keep the rate they used (admin)",
                    &[path_id("fxr")], None, "200", schema_ref("FxRate")),
            }),
        ),
    ]
}
