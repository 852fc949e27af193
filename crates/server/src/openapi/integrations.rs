//! The document's inbound integrations (`api::integrations`): connections
//! to Stripe, Shopify, HubSpot or any system that signs its webhooks, each
//! `mapping` as its provider's `check_settings` reads it
//! (`tribute_core::integration::{stripe, shopify, hubspot, generic}`), the
//! delivery log, and the hook URL providers call (`ingest::hooks`).

use serde_json::{json, Value};

use super::schema::{
    any_object, array, boolean, currency, described, id, int, integer, list_of, nullable, object,
    one_of_strings, op, paging, param, path_id, pattern, query, read_only, schema_ref, string,
    time, In,
};
use super::webhook_events::all_required;

pub(super) const KINDS: [&str; 4] = ["stripe", "shopify", "hubspot", "generic"];

/// What Rust's `str::trim` removes (as `schema::SPACE`).
const SPACE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// What `char::is_control` refuses (Unicode `Cc`).
const CC: &str = r"\u0000-\u001F\u007F-\u009F";

/// The provider's signing secret (`api::integrations::parse_secret`):
/// trimmed, 8 to 500 characters, none of them a control character.
fn provider_secret() -> Value {
    described(
        json!({
            "type": "string",
            "writeOnly": true,
            "pattern": format!(
                r"^[{SPACE}]*[^{SPACE}{CC}][^{CC}]{{6,498}}[^{SPACE}{CC}][{SPACE}]*$"
            ),
        }),
        "the provider's signing secret (Stripe's `whsec_…`, the Shopify app's secret, the \
         HubSpot app's client secret, or the generic sender's); write-only",
    )
}

/// Text with something besides white space in it.
fn not_blank() -> Value {
    json!({"type": "string", "pattern": format!("[^{SPACE}]")})
}

/// A JSON Pointer into the body (RFC 6901): empty (the whole body) or `/…`.
fn pointer() -> Value {
    json!({"anyOf": [
        {"type": "string", "const": ""},
        {"type": "string", "pattern": "^/"},
    ]})
}

/// `tolerance_seconds`: how old a signed delivery may be.
fn tolerance(default: &str) -> Value {
    nullable(described(
        integer(60, 30 * 24 * 3600),
        &format!("how old (by its signed time) a delivery may be; default {default}"),
    ))
}

/// The generic mapping's JSON Pointers (`tribute_core::integration::generic`)
/// besides `external_id`, and what each points at.
const POINTERS: [(&str, &str); 12] = [
    (
        "kind",
        "the kind: looked up in `kind_values`, or taken as is",
    ),
    (
        "value",
        "the amount; required unless every delivery is a lead",
    ),
    ("currency", "the ISO 4217 currency"),
    ("email", "the buyer's e-mail"),
    ("user_id", "the user id"),
    ("customer_id", "the customer id"),
    ("anonymous_id", "the visitor's anonymous id"),
    ("click_id", "a Tribute click id (`tid`)"),
    ("coupon", "a coupon code"),
    ("occurred_at", "the time: RFC 3339 or Unix seconds"),
    (
        "refund_of",
        "the sale a refund is of (default: `external_id`)",
    ),
    ("metadata", "an object of facts for reward rule conditions"),
];

/// The generic mapping (`tribute_core::integration::generic`).
fn generic_mapping() -> Value {
    let kinds = || one_of_strings(["conversion", "refund", "chargeback", "lead"]);
    let header = |about| {
        let token = pattern(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$", 100);
        nullable(described(token, about))
    };
    let mut props = vec![("external_id", described(pointer(), "the order or event id"))];
    props.extend(POINTERS.map(|(key, about)| (key, nullable(described(pointer(), about)))));
    props.extend([
        (
            "kind_values",
            nullable(described(
                json!({"type": "object", "additionalProperties": kinds()}),
                "what each kind value of the body is; an unlisted one is ignored",
            )),
        ),
        (
            "default_kind",
            nullable(described(
                kinds(),
                "without `kind`, every delivery's (conversion)",
            )),
        ),
        ("value_unit", nullable(one_of_strings(["minor", "major"]))),
        ("default_currency", nullable(currency())),
        (
            "signature_header",
            header("the HMAC-SHA256, hex or base64, maybe `sha256=…` (`x-signature`)"),
        ),
        (
            "timestamp_header",
            header("Unix seconds, signed as `{timestamp}.{body}` (none: the body alone)"),
        ),
        (
            "id_header",
            header("the delivery's id (none: a digest of what was signed)"),
        ),
        (
            "tolerance_seconds",
            tolerance("300 s, with a timestamp header"),
        ),
    ]);
    let mut m = object(&props, &["external_id"]);
    m["anyOf"] = json!([
        {"required": ["value"], "properties": {"value": pointer()}},
        {"required": ["default_kind"],
         "properties": {"default_kind": {"const": "lead"}, "kind": {"type": "null"}}},
    ]);
    described(
        m,
        "JSON Pointers into the body, and how to verify it; `value` may be left out when every \
         delivery is a lead (no `kind`, `default_kind: lead`)",
    )
}

fn mappings() -> Vec<(&'static str, Value)> {
    let name = |default: &str| nullable(described(not_blank(), &format!("default `{default}`")));
    let mut stages = array(not_blank());
    stages["minItems"] = json!(1);
    vec![
        (
            "StripeMapping",
            described(object(&[], &[]), "Stripe takes no settings"),
        ),
        (
            "ShopifyMapping",
            object(
                &[(
                    "tolerance_seconds",
                    tolerance("48 hours, Shopify's retry period"),
                )],
                &[],
            ),
        ),
        (
            "HubspotMapping",
            object(
                &[
                    (
                        "won_stage",
                        nullable(described(
                            json!({"anyOf": [not_blank(), stages]}),
                            "the deal stage (or one per pipeline) meaning won; default `closedwon`",
                        )),
                    ),
                    ("amount_property", name("amount")),
                    ("currency_property", name("deal_currency_code")),
                    ("email_property", name("email")),
                    ("click_id_property", name("tribute_click_id")),
                    (
                        "default_currency",
                        nullable(described(currency(), "when the deal has none")),
                    ),
                ],
                &[],
            ),
        ),
        ("GenericMapping", generic_mapping()),
    ]
}

/// How one provider's integration is made: its `kind`, and its mapping.
fn create(kind: &str, mapping: Value, mapping_required: bool) -> Value {
    let required: &[&str] = if mapping_required {
        &["program_id", "kind", "secret", "mapping"]
    } else {
        &["program_id", "kind", "secret"]
    };
    object(
        &[
            ("program_id", id("prg")),
            ("kind", one_of_strings([kind])),
            ("secret", provider_secret()),
            ("mapping", mapping),
        ],
        required,
    )
}

fn inbound_status() -> Value {
    one_of_strings(["rejected", "processing", "processed", "ignored", "failed"])
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let action = json!({
        "type": "object",
        "required": ["action"],
        "properties": {"action": one_of_strings(
            ["conversion", "refund", "chargeback", "lead", "identify", "ignored"])},
        "description": "one action: a conversion (`conversion_id`, `external_id`, `replayed`), \
            a refund or chargeback (`refund_id`, `conversion_id`, `amount`, `replayed`), a lead \
            or identify event (`event_id`, `replayed`), or ignored (`reason`)",
    });
    let mut out = vec![
        (
            "Integration",
            all_required(&[
                ("id", read_only(id("int"))),
                ("program_id", id("prg")),
                ("kind", one_of_strings(KINDS)),
                (
                    "hook_url",
                    described(string(), "where the provider must send its webhooks"),
                ),
                (
                    "secret_hint",
                    described(string(), "the secret's last four characters"),
                ),
                ("mapping", any_object("the settings, as saved")),
                ("created_at", read_only(time())),
                ("updated_at", read_only(time())),
            ]),
        ),
        (
            "IntegrationCreate",
            json!({"oneOf": [
                create("stripe", nullable(schema_ref("StripeMapping")), false),
                create("shopify", nullable(schema_ref("ShopifyMapping")), false),
                create("hubspot", nullable(schema_ref("HubspotMapping")), false),
                create("generic", schema_ref("GenericMapping"), true),
            ]}),
        ),
        (
            "IntegrationUpdate",
            object(
                &[
                    ("secret", nullable(provider_secret())),
                    (
                        "mapping",
                        nullable(described(
                            json!({"anyOf": [
                                schema_ref("StripeMapping"), schema_ref("ShopifyMapping"),
                                schema_ref("HubspotMapping"), schema_ref("GenericMapping"),
                            ]}),
                            "replaces the mapping; it must suit the integration's kind",
                        )),
                    ),
                ],
                &[],
            ),
        ),
        (
            "InboundDelivery",
            all_required(&[
                ("id", read_only(id("ind"))),
                ("integration_id", id("int")),
                (
                    "delivery_key",
                    described(
                        nullable(string()),
                        "the provider's id for it (verified deliveries only)",
                    ),
                ),
                ("topic", nullable(string())),
                ("received_at", read_only(time())),
                ("verified", boolean()),
                ("status", inbound_status()),
                (
                    "result",
                    described(nullable(array(action.clone())), "what was done"),
                ),
                ("error", nullable(string())),
                ("attempts", int()),
                ("processed_at", nullable(time())),
            ]),
        ),
        (
            "InboundResult",
            all_required(&[
                ("status", one_of_strings(["processed", "ignored"])),
                ("delivery_id", id("ind")),
                ("result", array(action)),
            ]),
        ),
        (
            "InboundDuplicate",
            all_required(&[
                ("status", one_of_strings(["duplicate"])),
                (
                    "delivery_id",
                    described(id("ind"), "the delivery first received"),
                ),
                ("first_status", inbound_status()),
            ]),
        ),
    ];
    out.extend(mappings());
    out
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let int = [path_id("int")];
    let mut list = paging().to_vec();
    list.push(query("program_id", id("prg")));
    let mut deliveries = paging().to_vec();
    deliveries.insert(0, path_id("int"));
    let mut deleted = op(
        "Delete an integration with its delivery log (admin); its hook URL answers 404",
        &int,
        None,
        "204",
        json!({}),
    );
    deleted["responses"]["204"] = json!({"description": "deleted"});
    let retry = [
        path_id("int"),
        param("delivery_id", In::Path, id("ind"), true),
    ];
    vec![
        (
            "/api/v1/integrations",
            json!({
                "get": op("List integrations, never their secrets (admin)", &list, None, "200",
                    list_of("Integration")),
                "post": op("Connect a provider to a program (admin); the mapping is checked for \
                    its kind (422 naming `mapping.<key>`)", &[],
                    Some(schema_ref("IntegrationCreate")), "201", schema_ref("Integration")),
            }),
        ),
        (
            "/api/v1/integrations/{id}",
            json!({
                "get": op("Get an integration (admin)", &int, None, "200",
                    schema_ref("Integration")),
                "patch": op("Change an integration's secret or mapping (admin)", &int,
                    Some(schema_ref("IntegrationUpdate")), "200", schema_ref("Integration")),
                "delete": deleted,
            }),
        ),
        (
            "/api/v1/integrations/{id}/deliveries",
            json!({
                "get": op("The deliveries an integration received, newest first, with what each \
                    did (admin)", &deliveries, None, "200", list_of("InboundDelivery")),
            }),
        ),
        (
            "/api/v1/integrations/{id}/deliveries/{delivery_id}/retry",
            json!({
                "post": op("Process a verified delivery again, after fixing a mapping or adding \
                    a rate (admin); what succeeded before is not repeated. An unverified \
                    delivery, or one being processed, is a 409 naming `delivery_id`",
                    &retry, None, "200", schema_ref("InboundResult")),
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use tribute_core::integration::{check_settings, IntegrationKind};

    use super::*;

    /// The keys each mapping documents are the keys its provider reads:
    /// each alone (beside what a generic mapping requires) is accepted as
    /// null, and a key no schema lists is refused.
    #[test]
    fn documented_mapping_keys_are_the_keys_core_reads() {
        let schemas: serde_json::Map<String, Value> = mappings()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (kind, name) in [
            (IntegrationKind::Stripe, "StripeMapping"),
            (IntegrationKind::Shopify, "ShopifyMapping"),
            (IntegrationKind::Hubspot, "HubspotMapping"),
            (IntegrationKind::Generic, "GenericMapping"),
        ] {
            let base = match kind {
                IntegrationKind::Generic => json!({"external_id": "/id", "value": "/amount"}),
                _ => json!({}),
            };
            let keys = schemas[name]["properties"].as_object().expect("properties");
            for key in keys.keys() {
                let mut m = base.clone();
                if m.get(key).is_none() {
                    m[key] = Value::Null;
                }
                assert!(check_settings(kind, &m).is_ok(), "{name}.{key}");
            }
            let mut unknown = base.clone();
            unknown["surprise"] = json!(1);
            assert!(
                check_settings(kind, &unknown).is_err(),
                "{name} takes any key"
            );
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
    }

    #[test]
    fn a_lead_only_generic_mapping_needs_no_value_in_core_as_in_the_document() {
        let leads = json!({"external_id": "/id", "default_kind": "lead"});
        assert!(check_settings(IntegrationKind::Generic, &leads).is_ok());
        let sales = json!({"external_id": "/id"});
        assert!(check_settings(IntegrationKind::Generic, &sales).is_err());
        let branches = generic_mapping()["anyOf"].clone();
        assert_eq!(branches[1]["properties"]["default_kind"]["const"], "lead");
    }

    #[test]
    fn the_provider_secret_pattern_is_the_servers_rule() {
        let pattern = provider_secret();
        let re = regex::Regex::new(pattern["pattern"].as_str().expect("a pattern")).expect("valid");
        for ok in ["whsec_12345", " 12345678\t", "a b c de", &"é".repeat(500)] {
            assert!(re.is_match(ok), "{ok:?} is allowed");
        }
        for refused in [
            "1234567",
            "  1234567  ",
            "1234\u{7}5678",
            &"é".repeat(501),
            "",
        ] {
            assert!(!re.is_match(refused), "{refused:?} is not allowed");
        }
    }
}
