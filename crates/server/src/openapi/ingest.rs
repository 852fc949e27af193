//! The document's ingestion: events and conversions (`ingest::events`,
//! `ingest::conversions`).

use serde_json::{json, Value};

use super::links::coupon_code;
use super::schema::{
    amount, any_object, array, described, id, int, integer, list_of, nullable, number, object,
    one_of_strings, op, optional_label, paging, param, path_id, pattern, query, read_only,
    schema_ref, sha256_hex, string, time, time_or_date, trimmed, In, EMAIL,
};
use crate::ingest::events::MAX_BATCH;

/// The identifiers an event or a conversion may carry
/// (`tribute_core::identity::RawIdentifiers`); a blank one means "none".
fn identifiers() -> Vec<(&'static str, Value)> {
    vec![
        ("anonymous_id", nullable(optional_label(200))),
        ("user_id", nullable(optional_label(200))),
        (
            "email",
            nullable(described(
                pattern(&format!(r"^(\s*|{EMAIL})$"), 254),
                "hashed on arrival; wins over `email_hash`",
            )),
        ),
        ("email_hash", nullable(sha256_hex())),
        ("customer_id", nullable(optional_label(200))),
        (
            "phone",
            nullable(described(
                pattern(r"^(\s*|[^0-9]*([0-9][^0-9]*){6,15})$", 64),
                "6 to 15 digits, anything else ignored; hashed on arrival",
            )),
        ),
        ("phone_hash", nullable(sha256_hex())),
    ]
}

/// A click id as handed on by the redirect (`tid`); blank means "none".
fn click_id() -> Value {
    nullable(pattern(r"^(clk_[A-Za-z0-9]{1,64})?$", 68))
}

/// When something happened: RFC 3339, not in the future, not before 2000.
fn occurred_at() -> Value {
    nullable(described(
        time(),
        "not in the future (5 minutes of clock skew allowed), not before 2000; default now",
    ))
}

fn conversion_status() -> Value {
    one_of_strings(["pending", "approved", "rejected"])
}

/// A line of a conversion (`tribute_core::tracking::Product`).
fn product() -> Value {
    object(
        &[
            ("sku", trimmed(200)),
            ("quantity", integer(1, i64::MAX)),
            ("amount", described(amount(), "minor units")),
        ],
        &["sku", "amount"],
    )
}

fn event() -> Value {
    let mut props = vec![
        (
            "type",
            one_of_strings([
                "page_view",
                "lead",
                "demo_request",
                "signup",
                "identify",
                "custom",
            ]),
        ),
        (
            "program_id",
            described(
                id("prg"),
                "required with an admin key; an ingest key writes to its own program",
            ),
        ),
        (
            "event_id",
            nullable(described(
                optional_label(200),
                "the same id twice is one event",
            )),
        ),
        ("name", nullable(optional_label(200))),
    ];
    props.extend(identifiers());
    props.extend([
        ("click_id", click_id()),
        (
            "via",
            nullable(described(
                pattern(r"^[A-Za-z0-9_-]{0,64}$", 64),
                "a partner slug or link code of the program, as seen in `?via=`",
            )),
        ),
        (
            "partner_id",
            nullable(described(
                id("ptn"),
                "a partner of the program (a referral)",
            )),
        ),
        ("occurred_at", occurred_at()),
        ("properties", any_object("anything else about the event")),
    ]);
    object(&props, &["type", "program_id"])
}

fn conversion_input() -> Value {
    let mut props = vec![
        (
            "program_id",
            described(
                id("prg"),
                "required with an admin key; an ingest key writes to its own program",
            ),
        ),
        (
            "external_id",
            nullable(described(
                optional_label(200),
                "the order or deal id: the same id twice is one conversion",
            )),
        ),
        ("value", described(amount(), "minor units (cents)")),
        (
            "currency",
            described(
                super::schema::currency(),
                "the program's currency, or another with an exchange rate on file at \
                 `occurred_at` (`/api/v1/fx-rates`): the value is converted into the \
                 program's, and without a rate the conversion is refused (422) and nothing is written",
            ),
        ),
        ("status", nullable(conversion_status())),
        ("products", array(product())),
    ];
    props.extend(identifiers());
    props.extend([
        ("click_id", click_id()),
        (
            "coupon",
            nullable(json!({"anyOf": [coupon_code(), pattern(r"^\s*$", 64)]})),
        ),
        ("occurred_at", occurred_at()),
        ("metadata", metadata()),
    ]);
    object(&props, &["program_id", "value", "currency"])
}

/// A conversion's metadata (`tribute_core::conversion::parse_metadata`):
/// what reward rule conditions read (`sale.metadata.<key>`; `country` and
/// `source` are the customer's).
fn metadata() -> Value {
    let mut key = optional_label(64);
    key["minLength"] = json!(1);
    json!({
        "type": "object",
        "maxProperties": tribute_core::conversion::MAX_METADATA_KEYS,
        "propertyNames": key,
        "additionalProperties": {"anyOf": [
            optional_label(500), integer(i64::MIN, i64::MAX), {"type": "boolean"},
        ]},
        "description": "facts about the sale for reward rule conditions: `sale.metadata.<key>`; \
            `country` (ISO 3166-1 alpha-2) and `source` are the customer's",
    })
}

fn conversion() -> Value {
    let share = object(
        &[
            ("partner_id", id("ptn")),
            ("slug", string()),
            (
                "share",
                described(pattern(r"^[0-9]+/[0-9]+$", 64), "exact share, weight/total"),
            ),
            ("share_ratio", number()),
            ("amount", int()),
        ],
        &["partner_id", "slug", "share", "share_ratio", "amount"],
    );
    let props = [
        ("id", read_only(id("cnv"))),
        ("program_id", id("prg")),
        ("external_id", nullable(string())),
        ("status", conversion_status()),
        ("value", int()),
        ("currency", string()),
        ("products", array(product())),
        ("click_id", nullable(string())),
        ("coupon", nullable(string())),
        ("occurred_at", time()),
        ("received_at", read_only(time())),
        ("partners", array(share)),
        (
            "fx",
            described(
                object(
                    &[
                        ("original_value", int()),
                        ("original_currency", string()),
                        ("rate", string()),
                        ("rate_effective_at", time()),
                    ],
                    &[
                        "original_value",
                        "original_currency",
                        "rate",
                        "rate_effective_at",
                    ],
                ),
                "only when reported in another currency: the amount as reported and the \
                 owner's rate used (`value` and `currency` are the program's)",
            ),
        ),
        (
            "attribution",
            any_object("model, window, touches counted and excluded with reasons (admins only)"),
        ),
        ("summary", described(string(), "admins only")),
        (
            "risk",
            described(
                object(
                    &[
                        ("score", integer(0, 100)),
                        ("reasons", array(schema_ref("RiskReason"))),
                        (
                            "review",
                            one_of_strings(["none", "held", "approved", "rejected"]),
                        ),
                    ],
                    &["score", "reasons", "review"],
                ),
                "the fraud score and its reasons, strongest first: admins only",
            ),
        ),
        (
            "review",
            described(
                one_of_strings(["under_review"]),
                "partners only, while the conversion is held for the owner's review",
            ),
        ),
    ];
    let required: Vec<&str> = props
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !matches!(*k, "attribution" | "summary" | "fx" | "risk" | "review"))
        .collect();
    object(&props, &required)
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let mut batch = array(schema_ref("Event"));
    batch["minItems"] = json!(1);
    batch["maxItems"] = json!(MAX_BATCH);
    vec![
        ("Event", event()),
        ("EventBatch", object(&[("batch", batch)], &["batch"])),
        (
            "EventsAccepted",
            object(
                &[
                    ("accepted", integer(0, MAX_BATCH as i64)),
                    ("duplicates", integer(0, MAX_BATCH as i64)),
                    ("ids", array(id("evt"))),
                ],
                &["accepted", "duplicates", "ids"],
            ),
        ),
        ("ConversionInput", conversion_input()),
        ("Conversion", conversion()),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let mut list = paging().to_vec();
    list.extend([
        query("program_id", id("prg")),
        query("partner_id", id("ptn")),
        query("status", conversion_status()),
        query("from", time_or_date()),
        query("to", time_or_date()),
    ]);
    let idempotency = param(
        "Idempotency-Key",
        In::Header,
        pattern(r"^[!-~]([ -~]{0,198}[!-~])?$", 200),
        false,
    );
    let mut record = op(
        "Record a conversion (idempotent by external_id or Idempotency-Key)",
        &[idempotency],
        Some(schema_ref("ConversionInput")),
        "201",
        schema_ref("Conversion"),
    );
    record["responses"]["201"]["headers"] = json!({"Idempotent-Replayed": {
        "description": "`true` when this answers an earlier request with the same key",
        "schema": {"type": "string", "enum": ["true"]},
    }});
    vec![
        (
            "/api/v1/events",
            json!({
                "post": op("Send one event or {\"batch\": [...]} (idempotent by event_id)", &[],
                    Some(json!({"oneOf": [schema_ref("Event"), schema_ref("EventBatch")]})), "202",
                    schema_ref("EventsAccepted")),
            }),
        ),
        (
            "/api/v1/conversions",
            json!({
                "get": op("List conversions (a partner key sees those credited to it)", &list, None, "200",
                    list_of("Conversion")),
                "post": record,
            }),
        ),
        (
            "/api/v1/conversions/{id}",
            json!({
                "get": op("Get a conversion", &[path_id("cnv")], None, "200", schema_ref("Conversion")),
            }),
        ),
    ]
}
