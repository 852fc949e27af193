//! The document's fraud operations (`api::fraud`): a program's settings,
//! the review queue, the decision on a held conversion and its log, and a
//! partner's identifiers.

use serde_json::{json, Value};
use tribute_core::fraud::config::RULES;

use super::schema::{
    amount, array, boolean, described, id, integer, label, list_of, nullable, object,
    one_of_strings, op, optional_label, paging, path_id, query, schema_ref, string, time,
};

/// A rule weight: 0 (off) to 100.
fn weight() -> Value {
    integer(0, 100)
}

/// The settings a PATCH may change (`tribute_core::fraud::FraudConfig`).
fn settings(update: bool) -> Vec<(&'static str, Value)> {
    let names: Vec<&str> = RULES.iter().map(|(n, _, _)| *n).collect();
    let u32_max = i64::from(u32::MAX);
    let mut props = vec![
        (
            "enabled",
            described(
                boolean(),
                "off: nothing is scored or held; bots are still flagged",
            ),
        ),
        (
            "review_threshold",
            described(integer(0, 100), "a conversion scoring this or more is held"),
        ),
        (
            "click_threshold",
            described(
                integer(1, 100),
                "a click whose reasons score this or more is left out of unique clicks and \
                 attribution",
            ),
        ),
        (
            "weights",
            described(
                json!({"type": "object", "propertyNames": {"enum": names},
                       "additionalProperties": weight()}),
                "per rule name, replacing the defaults; 0 turns a rule off (a PATCH replaces \
                 the whole map)",
            ),
        ),
        (
            "review_above_amount",
            described(
                nullable(amount()),
                "conversions above it (minor units) go to review",
            ),
        ),
        ("forbid_brand_bidding", boolean()),
        ("allowed_campaigns", array(label(200))),
        (
            "banned_referrers",
            array(
                json!({"type": "string", "pattern": r"^[a-z0-9-]*\.[a-z0-9.-]*$",
                         "maxLength": 253}),
            ),
        ),
        (
            "velocity",
            object(
                &[
                    ("per_ip_per_minute", integer(1, u32_max)),
                    ("per_ip_per_hour", integer(1, u32_max)),
                    ("per_partner_per_minute", integer(1, u32_max)),
                    ("per_link_per_minute", integer(1, u32_max)),
                ],
                &[],
            ),
        ),
        ("duplicate_click_seconds", integer(0, 3_600)),
        ("duplicate_conversion_hours", integer(0, 8_760)),
        (
            "outlier_z",
            json!({"type": "number", "minimum": 1, "maximum": 20}),
        ),
    ];
    if !update {
        props.insert(0, ("program_id", id("prg")));
        props.push((
            "rules",
            array(object(
                &[
                    ("name", string()),
                    ("description", string()),
                    ("weight", weight()),
                    ("default_weight", weight()),
                ],
                &["name", "description", "weight", "default_weight"],
            )),
        ));
    }
    props
}

fn reason() -> Value {
    object(
        &[
            ("rule", string()),
            ("evidence", string()),
            ("contribution", weight()),
        ],
        &["rule", "evidence", "contribution"],
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let shown = settings(false);
    let required: Vec<&str> = shown.iter().map(|(k, _)| *k).collect();
    let item = [
        ("conversion_id", id("cnv")),
        ("program_id", id("prg")),
        ("partner_id", nullable(id("ptn"))),
        ("score", integer(0, 100)),
        ("reasons", array(reason())),
        ("held_at", time()),
    ];
    let item_required: Vec<&str> = item.iter().map(|(k, _)| *k).collect();
    let decision = [
        ("id", string()),
        ("conversion_id", id("cnv")),
        ("decision", one_of_strings(["held", "approved", "rejected"])),
        ("note", nullable(string())),
        (
            "actor",
            described(
                string(),
                "`system`, or `key:` and the deciding admin key's id",
            ),
        ),
        ("at", time()),
    ];
    let decision_required: Vec<&str> = decision.iter().map(|(k, _)| *k).collect();
    vec![
        ("FraudSettings", object(&shown, &required)),
        ("FraudSettingsUpdate", object(&settings(true), &[])),
        ("RiskReason", reason()),
        ("ReviewItem", object(&item, &item_required)),
        ("FraudDecision", object(&decision, &decision_required)),
        (
            "ReviewCreate",
            object(
                &[
                    ("decision", one_of_strings(["approve", "reject"])),
                    ("note", nullable(optional_label(1000))),
                ],
                &["decision"],
            ),
        ),
        (
            "Review",
            object(
                &[
                    ("conversion_id", id("cnv")),
                    ("score", integer(0, 100)),
                    (
                        "review",
                        one_of_strings(["none", "held", "approved", "rejected"]),
                    ),
                    ("decisions", array(schema_ref("FraudDecision"))),
                ],
                &["conversion_id", "score", "review", "decisions"],
            ),
        ),
        (
            "PartnerIdentifiersUpdate",
            object(
                &[
                    ("user_id", nullable(optional_label(200))),
                    ("payment_fingerprint", nullable(optional_label(200))),
                    (
                        "signup_ip",
                        described(
                            nullable(json!({"anyOf": [
                                {"type": "string", "format": "ipv4"},
                                {"type": "string", "format": "ipv6"},
                                {"type": "string", "maxLength": 0},
                            ]})),
                            "only its keyed hash is kept",
                        ),
                    ),
                ],
                &[],
            ),
        ),
        (
            "PartnerIdentifiers",
            object(
                &[
                    ("partner_id", id("ptn")),
                    ("user_id", nullable(string())),
                    ("payment_fingerprint", nullable(string())),
                    ("signup_ip_set", boolean()),
                ],
                &[
                    "partner_id",
                    "user_id",
                    "payment_fingerprint",
                    "signup_ip_set",
                ],
            ),
        ),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let mut queue = paging().to_vec();
    queue.push(query("program_id", id("prg")));
    vec![
        (
            "/api/v1/programs/{id}/fraud",
            json!({
                "get": op("A program's fraud rules, weights and thresholds (admin)",
                    &[path_id("prg")], None, "200", schema_ref("FraudSettings")),
                "patch": op("Change the fields given; errors name the field and change nothing \
                    (admin)", &[path_id("prg")], Some(schema_ref("FraudSettingsUpdate")), "200",
                    schema_ref("FraudSettings")),
            }),
        ),
        (
            "/api/v1/review-queue",
            json!({
                "get": op("Held conversions waiting for a decision, oldest first, with their \
                    score and reasons (admin)", &queue, None, "200", list_of("ReviewItem")),
            }),
        ),
        (
            "/api/v1/conversions/{id}/review",
            json!({
                "get": op("Where a conversion's review stands, with every hold and decision \
                    (admin)", &[path_id("cnv")], None, "200", schema_ref("Review")),
                "post": op("Approve (its commissions follow the normal hold) or reject (they \
                    are voided) a held conversion; one not held is a 409 (admin)",
                    &[path_id("cnv")], Some(schema_ref("ReviewCreate")), "200",
                    schema_ref("Review")),
            }),
        ),
        (
            "/api/v1/partners/{id}/identifiers",
            json!({
                "put": op("Set the identifiers of a partner the self-referral and \
                    shared-account rules compare; fields left out are cleared (admin)",
                    &[path_id("ptn")], Some(schema_ref("PartnerIdentifiersUpdate")), "200",
                    schema_ref("PartnerIdentifiers")),
            }),
        ),
    ]
}
