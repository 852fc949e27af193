//! The document's payouts, payout requests and partner statements
//! (`api::payouts`, `api::statement`).

use serde_json::{json, Value};
use tribute_core::money::MAX_MINOR;

use super::schema::{
    amount, any_object, array, described, id, int, integer, list_of, nullable, object,
    one_of_strings, op, paging, param, path_id, query, read_only, schema_ref, string, time,
    time_or_date, In,
};
use crate::api::payouts::MAX_PART;

fn payout_status() -> Value {
    one_of_strings(["created", "paid"])
}

fn request_status() -> Value {
    one_of_strings(["open", "batched", "paid"])
}

/// A partner's balances (`tribute_core::ledger::PartnerBalance`).
fn balance() -> Value {
    object(
        &[("pending", int()), ("payable", int()), ("paid", int())],
        &["pending", "payable", "paid"],
    )
}

fn closed(props: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(props, &required)
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let item = closed(&[("partner_id", id("ptn")), ("amount", int())]);
    let payout = closed(&[
        ("id", read_only(id("pay"))),
        ("program_id", id("prg")),
        ("currency", string()),
        ("status", payout_status()),
        (
            "until",
            described(
                time(),
                "money that became payable up to this time is in the batch",
            ),
        ),
        (
            "min_amount",
            described(int(), "the smallest amount paid to a partner"),
        ),
        (
            "total",
            described(
                int(),
                "the sum of the items (for a partner key: its own item's amount)",
            ),
        ),
        ("created_at", read_only(time())),
        ("paid_at", nullable(time())),
        (
            "items",
            described(
                array(schema_ref("PayoutItem")),
                "one per partner paid (a partner key sees only its own)",
            ),
        ),
    ]);
    let create = object(
        &[
            ("program_id", id("prg")),
            (
                "until",
                nullable(described(
                    time_or_date(),
                    "pay what became payable up to this time (default: now)",
                )),
            ),
            (
                "min_amount",
                nullable(described(
                    amount(),
                    "leave out partners owed less (the program's minimum payout applies too)",
                )),
            ),
        ],
        &["program_id"],
    );
    let request = closed(&[
        ("id", read_only(id("prq"))),
        ("program_id", id("prg")),
        ("partner_id", id("ptn")),
        ("amount", int()),
        ("status", request_status()),
        ("payout_id", nullable(id("pay"))),
        ("created_at", read_only(time())),
    ]);
    let request_create = object(
        &[
            (
                "partner_id",
                nullable(described(
                    id("ptn"),
                    "required with an admin key; a partner key asks for itself",
                )),
            ),
            (
                "amount",
                nullable(described(
                    integer(1, MAX_MINOR),
                    "default: all the partner may ask for",
                )),
            ),
        ],
        &[],
    );
    let line = closed(&[
        ("entry_id", id("jen")),
        ("at", time()),
        (
            "kind",
            one_of_strings([
                "accrual",
                "override",
                "post",
                "void",
                "payout",
                "adjustment",
            ]),
        ),
        ("account", one_of_strings(["pending", "payable", "paid"])),
        (
            "amount",
            described(int(), "into the account (negative: out of it)"),
        ),
        ("memo", string()),
        ("commission_id", nullable(id("com"))),
        ("conversion_id", nullable(id("cnv"))),
        ("payout_id", nullable(id("pay"))),
        (
            "explanation",
            nullable(any_object(
                "the commission's explanation: touches, credit, rule and version, tier, overrides",
            )),
        ),
    ]);
    let statement = closed(&[
        ("partner_id", id("ptn")),
        ("program_id", id("prg")),
        ("currency", string()),
        ("from", time()),
        ("to", time()),
        ("opening", balance()),
        ("closing", balance()),
        ("lines", array(schema_ref("StatementLine"))),
    ]);
    vec![
        ("PayoutItem", item),
        ("Payout", payout),
        ("PayoutCreate", create),
        ("PayoutRequest", request),
        ("PayoutRequestCreate", request_create),
        ("StatementLine", line),
        ("Statement", statement),
    ]
}

/// A CSV answer: `text/csv` with the headers listed (`(name, schema,
/// required)`), errors as JSON.
fn csv_content() -> Value {
    json!({"text/csv": {"schema": {"type": "string"}}})
}

fn headers(list: &[(&str, Value, bool)]) -> Value {
    let map: serde_json::Map<String, Value> = list
        .iter()
        .map(|(name, schema, required)| {
            (
                (*name).to_owned(),
                json!({"required": required, "schema": schema}),
            )
        })
        .collect();
    Value::Object(map)
}

fn export_op() -> Value {
    let params = [
        path_id("pay"),
        param(
            "format",
            In::Query,
            one_of_strings(["paypal", "wise", "csv"]),
            true,
        ),
        query(
            "part",
            described(integer(1, MAX_PART), "which file (default: 1)"),
        ),
    ];
    let mut o = op(
        "Export a batch as a PayPal Payouts, Wise batch or generic CSV file (admin). PayPal \
         takes 5,000 rows and one currency a file, Wise 1,000 rows: `part` picks a file. A \
         partner without a payout e-mail (PayPal, Wise) or a part past the last is a 409 \
         naming the field",
        &params,
        None,
        "200",
        string(),
    );
    o["responses"]["200"] = json!({
        "description": "one file of the batch",
        "content": csv_content(),
        "headers": headers(&[
            ("Tribute-Export-Parts", described(integer(1, MAX_PART), "how many files the export is"), true),
            ("Content-Disposition", string(), true),
        ]),
    });
    o
}

fn statement_op() -> Value {
    let params = [
        path_id("ptn"),
        query("from", time_or_date()),
        query("to", time_or_date()),
        query(
            "format",
            described(one_of_strings(["json", "csv"]), "default: json"),
        ),
    ];
    let mut o = op(
        "A partner's statement over [from, to) (default: the last 30 days): every ledger line \
         on its accounts with its explanation, between the opening and closing balances; as \
         CSV, the lines with a header row. A partner key reads only its own",
        &params,
        None,
        "200",
        schema_ref("Statement"),
    );
    o["responses"]["200"]["content"]["text/csv"] = json!({"schema": {"type": "string"}});
    o["responses"]["200"]["headers"] = headers(&[("Content-Disposition", string(), false)]);
    o
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let id_param = [path_id("pay")];
    let mut list_params = paging().to_vec();
    list_params.push(query("program_id", id("prg")));
    list_params.push(query("status", payout_status()));
    let mut request_params = paging().to_vec();
    request_params.push(query("program_id", id("prg")));
    request_params.push(query("partner_id", id("ptn")));
    request_params.push(query("status", request_status()));
    vec![
        (
            "/api/v1/payouts",
            json!({
                "get": op("List payout batches, newest first (a partner key: those paying it, with only its item)",
                    &list_params, None, "200", list_of("Payout")),
                "post": op("Make a batch of the program's payable balances (admin); nothing to pay is a 409 naming `until` or `min_amount`",
                    &[], Some(schema_ref("PayoutCreate")), "201", schema_ref("Payout")),
            }),
        ),
        (
            "/api/v1/payouts/{id}",
            json!({
                "get": op("Get a payout batch (a partner key: one paying it, with only its item)",
                    &id_param, None, "200", schema_ref("Payout")),
            }),
        ),
        ("/api/v1/payouts/{id}/export", json!({"get": export_op()})),
        (
            "/api/v1/payouts/{id}/paid",
            json!({
                "post": op("Record the batch as paid (admin): one payout entry per partner; again, nothing changes",
                    &id_param, None, "200", schema_ref("Payout")),
            }),
        ),
        (
            "/api/v1/payout-requests",
            json!({
                "get": op("List payout requests, newest first (a partner key: its own)",
                    &request_params, None, "200", list_of("PayoutRequest")),
                "post": op("Ask for a payout of the partner's payable balance (less what open batches and requests hold); more than that, or less than the program's minimum payout, is a 409 naming `amount`",
                    &[], Some(schema_ref("PayoutRequestCreate")), "201", schema_ref("PayoutRequest")),
            }),
        ),
        (
            "/api/v1/partners/{id}/statement",
            json!({"get": statement_op()}),
        ),
    ]
}
