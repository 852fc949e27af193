//! The document's hook URL (`ingest::hooks`): `POST /hooks/{kind}/{id}`,
//! where Stripe, Shopify, HubSpot or a generic sender delivers its
//! webhooks for an integration, signed with the provider's own scheme
//! rather than an API key.

use serde_json::{json, Value};

use super::integrations::KINDS;
use super::schema::{one_of_strings, op, param, path_id, schema_ref, In};
use super::webhook_events::BASE64_32;

/// A header a provider signs with, described. Its pattern alone bounds its
/// length: a `maxLength` beside it had schemathesis's coverage phase send
/// a string of that length that breaks the pattern as a valid header.
fn header(name: &str, schema: Value, about: &str) -> Value {
    let mut p = param(name, In::Header, schema, false);
    p["description"] = json!(about);
    p
}

/// `POST /hooks/{kind}/{id}`: what providers call, without an API key.
pub fn paths() -> Vec<(&'static str, Value)> {
    let pattern = |p: &str| json!({"type": "string", "pattern": p});
    let base64_mac = || pattern(&format!("^{BASE64_32}$"));
    let params = [
        param("kind", In::Path, one_of_strings(KINDS), true),
        path_id("int"),
        header(
            "Stripe-Signature",
            pattern(r"^t=[0-9]{1,12},v1=[0-9a-f]{64}(,v[01]=[0-9a-f]{64})*$"),
            "Stripe: `t=<unix seconds>,v1=<hex HMAC-SHA256 of {t}.{body}>`; within 5 minutes",
        ),
        header(
            "X-Shopify-Hmac-Sha256",
            base64_mac(),
            "Shopify: base64 HMAC-SHA256 of the body",
        ),
        header(
            "X-Shopify-Webhook-Id",
            pattern(r"^[!-~]([ -~]{0,198}[!-~])?$"),
            "Shopify: the delivery's id (a resend is a duplicate)",
        ),
        header(
            "X-Shopify-Triggered-At",
            json!({"type": "string", "format": "date-time"}),
            "Shopify: when the delivery was first sent, within `tolerance_seconds`",
        ),
        header(
            "X-Shopify-Topic",
            pattern(r"^[a-z_]{1,50}/[a-z_]{1,50}$"),
            "Shopify: what happened (`orders/paid`, `refunds/create`; others are ignored)",
        ),
        header(
            "X-HubSpot-Signature-v3",
            base64_mac(),
            "HubSpot: base64 HMAC-SHA256 of method, URL, body and timestamp",
        ),
        header(
            "X-HubSpot-Request-Timestamp",
            pattern("^[0-9]{1,15}$"),
            "HubSpot: Unix milliseconds, within 5 minutes",
        ),
        header(
            "X-Signature",
            pattern(&format!("^(sha256=)?([0-9a-fA-F]{{64}}|{BASE64_32})$")),
            "generic: HMAC-SHA256 of the body (or of `{timestamp}.{body}`), hex or base64; the \
             mapping may name another header (`signature_header`), a timestamp header and an \
             id header",
        ),
    ];
    let mut o = op(
        "Receive a provider's webhook (no API key: the provider's signature is checked)",
        &params,
        Some(
            json!({"description": "the provider's payload as it sends it; its signature is \
            checked over these exact bytes"}),
        ),
        "200",
        json!({"oneOf": [schema_ref("InboundResult"), schema_ref("InboundDuplicate")]}),
    );
    o["description"] = json!(
        "Each kind is checked by its provider's own scheme before anything is read. A missing \
         header or a wrong signature is a 401; an unreadable header or a delivery signed too \
         long ago a 400; an unknown integration, or one of another kind, a 404; a payload that \
         cannot be read (naming the field) a 422. A verified delivery is logged \
         (`/api/v1/integrations/{id}/deliveries`); the same delivery again answers `duplicate` \
         and does nothing, unless it failed before."
    );
    o["security"] = json!([]);
    vec![("/hooks/{kind}/{id}", json!({"post": o}))]
}
