//! Commissions, the ledger, balances, refunds, assignment and adjustments
//! (`api::commissions`, `api::refunds`).

use serde_json::{json, Value};

use super::schema::{
    any_object, array, described, id, int, integer, label, list_of, nullable, object,
    one_of_strings, op, paging, path_id, query, read_only, schema_ref, string, time, time_or_date,
};

const STATUSES: [&str; 5] = ["pending", "held", "payable", "paid", "voided"];
const ENTRY_KINDS: [&str; 6] = [
    "accrual",
    "override",
    "post",
    "void",
    "payout",
    "adjustment",
];

fn commission() -> Value {
    let props = [
        ("id", read_only(id("com"))),
        ("program_id", id("prg")),
        ("partner_id", id("ptn")),
        ("kind", one_of_strings(["commission", "override"])),
        ("event", one_of_strings(["sale", "lead", "click"])),
        (
            "level",
            described(integer(0, 10), "0, or the override's level"),
        ),
        ("conversion_id", nullable(id("cnv"))),
        (
            "derives_from",
            nullable(described(id("com"), "an override's commission")),
        ),
        ("currency", string()),
        ("amount", described(int(), "accrued, minor units")),
        ("pending", int()),
        (
            "posted",
            described(int(), "reached payable (paid out or not)"),
        ),
        ("voided", int()),
        ("status", one_of_strings(STATUSES)),
        ("payable_at", time()),
        ("rule_id", nullable(id("rwr"))),
        (
            "rule_version",
            nullable(described(
                int(),
                "rate lock: the version it was computed with",
            )),
        ),
        ("payout_id", nullable(id("pay"))),
        (
            "explanation",
            any_object(
                "why: the conversion, touches and credit share, model, rule and version, tier \
                 multiplier, cap, override chain",
            ),
        ),
        ("created_at", read_only(time())),
    ];
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(&props, &required)
}

fn account() -> Value {
    any_object("`{\"partner\": [partner_id, pending|payable|paid]}` or `{\"program\": [program_id, expense|payouts]}`")
}

fn entry() -> Value {
    let line = object(
        &[("account", account()), ("amount", int())],
        &["account", "amount"],
    );
    let props = [
        ("id", read_only(id("jen"))),
        ("kind", one_of_strings(ENTRY_KINDS)),
        ("commission_id", nullable(id("com"))),
        ("conversion_id", nullable(id("cnv"))),
        ("payout_id", nullable(id("pay"))),
        ("memo", string()),
        ("at", time()),
        (
            "lines",
            described(
                array(line),
                "amounts flowing into each account; they sum to zero",
            ),
        ),
        ("explanation", any_object("the commission's explanation")),
    ];
    let required: Vec<&str> = props
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != "explanation")
        .collect();
    object(&props, &required)
}

fn refund() -> Value {
    let props = [
        ("id", read_only(id("rfd"))),
        ("program_id", id("prg")),
        ("conversion_id", id("cnv")),
        ("external_id", string()),
        ("kind", one_of_strings(["refund", "chargeback"])),
        ("amount", int()),
        (
            "applied",
            described(int(), "the part that counted: never beyond the value"),
        ),
        (
            "reversed",
            described(int(), "commissions and overrides voided by it"),
        ),
        ("reason", string()),
    ];
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(&props, &required)
}

fn recompute_line() -> Value {
    object(
        &[
            ("partner_id", id("ptn")),
            ("kind", one_of_strings(["commission", "override"])),
            ("amount", int()),
        ],
        &["partner_id", "kind", "amount"],
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let max = tribute_core::money::MAX_MINOR;
    vec![
        ("Commission", commission()),
        ("LedgerEntry", entry()),
        ("Refund", refund()),
        (
            "RefundInput",
            object(
                &[
                    ("amount", described(integer(1, max), "minor units")),
                    ("reason", label(500)),
                    (
                        "external_id",
                        described(label(200), "idempotency: the same id is the same refund"),
                    ),
                    ("kind", nullable(one_of_strings(["refund", "chargeback"]))),
                ],
                &["amount", "reason", "external_id"],
            ),
        ),
        (
            "AdjustmentInput",
            object(
                &[
                    (
                        "amount",
                        described(
                            json!({"type": "integer", "minimum": -max, "maximum": max, "not": {"const": 0}}),
                            "positive credits the partner, negative debits it",
                        ),
                    ),
                    ("reason", label(500)),
                ],
                &["amount", "reason"],
            ),
        ),
        (
            "Recompute",
            object(
                &[
                    ("current", array(recompute_line())),
                    ("proposed", array(recompute_line())),
                    ("corrections", array(recompute_line())),
                    ("applied", json!({"type": "boolean"})),
                ],
                &["current", "proposed", "corrections", "applied"],
            ),
        ),
        (
            "Balance",
            object(
                &[
                    ("partner_id", id("ptn")),
                    ("currency", string()),
                    ("pending", int()),
                    (
                        "payable",
                        described(int(), "negative after a refund of paid money"),
                    ),
                    ("paid", int()),
                ],
                &["partner_id", "currency", "pending", "payable", "paid"],
            ),
        ),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let mut list = paging().to_vec();
    list.extend([
        query("program_id", id("prg")),
        query("partner_id", id("ptn")),
        query("conversion_id", id("cnv")),
        query("status", one_of_strings(STATUSES)),
    ]);
    let mut ledger = paging().to_vec();
    ledger.extend([
        query("program_id", id("prg")),
        query("partner_id", id("ptn")),
        query("from", time_or_date()),
        query("to", time_or_date()),
    ]);
    let commission = [path_id("com")];
    let data = |name: &str| object(&[("data", array(schema_ref(name)))], &["data"]);
    let mut refund = op(
        "Refund or charge back part or all of a conversion: its commissions and overrides are \
         reversed pro rata (admin; idempotent by external_id)",
        &[path_id("cnv")],
        Some(schema_ref("RefundInput")),
        "201",
        schema_ref("Refund"),
    );
    refund["responses"]["200"] = json!({"description": "the same external_id again: the first refund",
        "content": {"application/json": {"schema": schema_ref("Refund")}}});
    let recompute_params = [
        json!({"name": "conversion_id", "in": "query", "required": true,
        "schema": id("cnv")}),
    ];
    let mut recompute = op(
        "Preview a conversion's commissions under today's rules; with {\"apply\": true} post \
         only the correcting entries (admin)",
        &recompute_params,
        Some(object(&[("apply", json!({"type": "boolean"}))], &[])),
        "200",
        schema_ref("Recompute"),
    );
    recompute["requestBody"]["required"] = json!(false);
    vec![
        (
            "/api/v1/commissions",
            json!({"get": op("List commissions with their explanations (a partner key: its own)",
                &list, None, "200", list_of("Commission"))}),
        ),
        (
            "/api/v1/commissions/{id}",
            json!({"get": op("Get a commission", &commission, None, "200", schema_ref("Commission"))}),
        ),
        (
            "/api/v1/commissions/release",
            json!({"post": op("Post every commission whose hold period is over (admin)", &[], None,
                "200", object(&[("released", integer(0, i64::MAX))], &["released"]))}),
        ),
        ("/api/v1/commissions/recompute", json!({"post": recompute})),
        (
            "/api/v1/commissions/{id}/approve",
            json!({"post": op("Approve: post what is pending now (admin)", &commission, None,
                "200", schema_ref("Commission"))}),
        ),
        (
            "/api/v1/commissions/{id}/reject",
            json!({"post": op("Reject: void what is still open (admin)", &commission,
                Some(object(&[("reason", label(500))], &["reason"])), "200",
                schema_ref("Commission"))}),
        ),
        (
            "/api/v1/ledger",
            json!({"get": op("Journal entries in the order made, with lines and explanations \
                (a partner key: entries on its own accounts, its own lines)", &ledger, None, "200",
                list_of("LedgerEntry"))}),
        ),
        (
            "/api/v1/partners/{id}/balance",
            json!({"get": op("A partner's pending, payable and paid balances", &[path_id("ptn")],
                None, "200", schema_ref("Balance"))}),
        ),
        (
            "/api/v1/conversions/{id}/refunds",
            json!({
                "post": refund,
                "get": op("A conversion's refunds (admin)", &[path_id("cnv")], None, "200",
                    data("Refund")),
            }),
        ),
        (
            "/api/v1/conversions/{id}/assign",
            json!({"post": op("Credit a conversion no partner earned to a partner, and back-fill \
                its commissions (admin)", &[path_id("cnv")],
                Some(object(&[("partner_id", id("ptn"))], &["partner_id"])), "201",
                data("Commission"))}),
        ),
        (
            "/api/v1/partners/{id}/adjustments",
            json!({"post": op("Credit or debit a partner's payable balance by hand (admin)",
                &[path_id("ptn")], Some(schema_ref("AdjustmentInput")), "201",
                object(&[("entry_id", id("jen")), ("partner_id", id("ptn")), ("amount", int()),
                    ("reason", string())], &["entry_id", "partner_id", "amount", "reason"]))}),
        ),
    ]
}
