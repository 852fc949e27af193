//! The catalogue of what Tribute sends to webhook endpoints: the OpenAPI
//! 3.1 top-level `webhooks` object, one `POST` per event, with each
//! payload (`tribute_core::webhook`) and the Standard Webhooks signature
//! headers (`workers::webhooks` signs and sends).
//!
//! Made from [`EventKind::ALL`]: [`data_of`] matches every kind without a
//! wildcard, so a new event does not compile until its payload is
//! documented here, and the tests below hold each payload struct to its
//! schema.

use serde_json::{json, Map, Value};
use tribute_core::webhook::{
    EventKind, DISABLE_AFTER, MAX_RETRY_AFTER, PAYLOAD_VERSION, RETRY_SCHEDULE,
};

use super::schema::{
    array, described, id, int, nullable, object, one_of_strings, param, pattern, schema_ref,
    string, time, In,
};

/// What a message's `data` is for `kind`, and when it is sent: the name of
/// its payload schema and a sentence.
fn data_of(kind: EventKind) -> (&'static str, &'static str) {
    match kind {
        EventKind::LeadCreated => (
            "LeadData",
            "A partner's first lead-like event for a person (a lead, a sign-up, a demo request)",
        ),
        EventKind::ConversionCreated => (
            "ConversionData",
            "A conversion recorded and attributed. An endpoint scoped to a partner sees only \
             that partner's credit",
        ),
        EventKind::ConversionRefunded => (
            "RefundData",
            "Money returned on a conversion: a refund or a chargeback (program endpoints only)",
        ),
        EventKind::CommissionCreated => (
            "CommissionData",
            "A commission accrued, pending its hold; `amount` is what accrued",
        ),
        EventKind::CommissionApproved => (
            "CommissionData",
            "A commission became payable (its hold ended, or the owner approved it); `amount` \
             is what became payable",
        ),
        EventKind::CommissionReversed => (
            "CommissionData",
            "A commission reversed in part or in whole (a refund, a rejection); `amount` is what \
             was taken back",
        ),
        EventKind::PayoutPaid => (
            "PayoutData",
            "A payout batch paid a partner: one message per partner paid",
        ),
        EventKind::PartnerCreated => ("PartnerData", "A partner joined the program"),
        EventKind::PartnerTierChanged => (
            "TierChangedData",
            "A partner moved to another tier (or out of every tier), by the evaluation or by hand",
        ),
        EventKind::EndpointDisabled => (
            "EndpointDisabledData",
            "One of the program's endpoints was disabled: it kept failing, or answered 410 Gone. \
             Sent to the program's other endpoints (program endpoints only)",
        ),
    }
}

/// `lead.created` → `LeadCreatedEvent`: the envelope schema's name.
fn envelope_name(kind: EventKind) -> String {
    let mut out = String::new();
    for word in kind.as_str().split(['.', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out + "Event"
}

/// One of the event names, as endpoints subscribe by them.
pub(super) fn event_names() -> Value {
    one_of_strings(EventKind::ALL.iter().map(|k| k.as_str()))
}

/// A closed object whose every property is required.
pub(super) fn all_required(props: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    object(props, &required)
}

/// Base64 of 32 bytes (an HMAC-SHA256, a secret's key) as a strict decoder
/// reads it: 43 characters and `=`, the last character's two spare bits zero.
pub(super) const BASE64_32: &str = "[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=";

/// A currency as messages write it: the program's ISO 4217 code.
fn code() -> Value {
    pattern("^[A-Z]{3}$", 3)
}

/// Each payload struct of `tribute_core::webhook`, field for field.
fn payloads() -> Vec<(&'static str, Value)> {
    let credit = all_required(&[("partner_id", id("ptn")), ("amount", int())]);
    vec![
        (
            "ConversionData",
            all_required(&[
                ("id", id("cnv")),
                ("program_id", id("prg")),
                ("external_id", nullable(string())),
                (
                    "status",
                    one_of_strings(["pending", "approved", "rejected", "superseded"]),
                ),
                (
                    "value",
                    described(int(), "minor units of `currency`, the program's"),
                ),
                ("currency", code()),
                ("occurred_at", time()),
                (
                    "credits",
                    described(
                        array(credit),
                        "the partners credited and their share of the value",
                    ),
                ),
            ]),
        ),
        (
            "RefundData",
            all_required(&[
                ("id", id("rfd")),
                ("conversion_id", id("cnv")),
                ("program_id", id("prg")),
                ("external_id", string()),
                ("kind", one_of_strings(["refund", "chargeback"])),
                ("amount", int()),
                ("currency", code()),
            ]),
        ),
        (
            "CommissionData",
            all_required(&[
                ("id", id("com")),
                ("program_id", id("prg")),
                ("partner_id", id("ptn")),
                (
                    "conversion_id",
                    described(
                        nullable(id("cnv")),
                        "the conversion it was earned on, when the change names it",
                    ),
                ),
                (
                    "amount",
                    described(int(), "what this change moved, minor units"),
                ),
                ("currency", code()),
            ]),
        ),
        (
            "LeadData",
            all_required(&[
                ("program_id", id("prg")),
                ("partner_id", id("ptn")),
                (
                    "person_id",
                    described(id("per"), "the person, as identities stitch them"),
                ),
                ("occurred_at", time()),
            ]),
        ),
        (
            "PayoutData",
            all_required(&[
                ("id", id("pay")),
                ("program_id", id("prg")),
                ("partner_id", id("ptn")),
                ("amount", int()),
                ("currency", code()),
            ]),
        ),
        (
            "PartnerData",
            all_required(&[
                ("id", id("ptn")),
                ("program_id", id("prg")),
                ("slug", string()),
                ("name", string()),
                ("status", one_of_strings(["pending", "active", "suspended"])),
            ]),
        ),
        (
            "TierChangedData",
            all_required(&[
                ("partner_id", id("ptn")),
                ("program_id", id("prg")),
                ("from_tier", described(nullable(string()), "none: no tier")),
                ("to_tier", described(nullable(string()), "none: no tier")),
                ("reason", string()),
            ]),
        ),
        (
            "EndpointDisabledData",
            all_required(&[
                ("endpoint_id", id("ep")),
                ("url", string()),
                ("reason", string()),
            ]),
        ),
    ]
}

/// The body of every message (`tribute_core::webhook::Envelope`) for `kind`.
fn envelope(kind: EventKind) -> Value {
    let (data, about) = data_of(kind);
    described(
        all_required(&[
            ("type", json!({"type": "string", "const": kind.as_str()})),
            (
                "version",
                described(
                    json!({"type": "integer", "const": PAYLOAD_VERSION}),
                    "the payload version: a field removed or renamed makes a new one; \
                     fields may be added within a version",
                ),
            ),
            ("timestamp", described(time(), "when it happened")),
            ("data", schema_ref(data)),
        ]),
        about,
    )
}

/// The Standard Webhooks headers every message carries.
fn signature_headers() -> Vec<Value> {
    let header = |name: &str, schema: Value, about: &str| {
        let mut p = param(name, In::Header, schema, true);
        p["description"] = json!(about);
        p
    };
    vec![
        header(
            "webhook-id",
            id("msg"),
            "the message's id: the same on every endpoint and every retry, so a receiver can \
             drop what it has seen",
        ),
        header(
            "webhook-timestamp",
            pattern("^[0-9]{1,12}$", 12),
            "Unix seconds when this attempt was signed: refuse one far from your clock",
        ),
        header(
            "webhook-signature",
            pattern(&format!("^v1,{BASE64_32}( v1,{BASE64_32})*$"), 4096),
            "space-separated `v1,<base64>` signatures: HMAC-SHA256 over \
             `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of \
             the endpoint's secret after `whsec_`. Accept the message when any one matches (for \
             24 hours after a rotation the old secret signs too)",
        ),
    ]
}

/// `300` → `5 min`: a duration of the retry schedule, for people.
fn humanize(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86400 && s % 86400 == 0 => format!("{} days", s / 86400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What happens to a message that is not received, from the sender's
/// settings (`tribute_core::webhook::RetryPolicy`).
fn retries() -> String {
    let delays: Vec<String> = RETRY_SCHEDULE.iter().map(|s| humanize(*s)).collect();
    format!(
        "anything else, or no answer within {}, is tried again after {} (each ±20 %, never \
         sooner than a `Retry-After` of up to {}); an endpoint failing for {} is disabled",
        humanize(crate::WebhookSettings::default().timeout.as_secs()),
        delays.join(", "),
        humanize(MAX_RETRY_AFTER.as_secs()),
        humanize(DISABLE_AFTER.as_secs()),
    )
}

/// The top-level `webhooks` object: one `POST` per event Tribute sends.
pub fn catalogue() -> Value {
    let mut out = Map::new();
    for &kind in EventKind::ALL {
        let (_, about) = data_of(kind);
        out.insert(
            kind.as_str().to_owned(),
            json!({"post": {
                "summary": about,
                "operationId": format!("webhook.{}", kind.as_str()),
                // Signed, not authenticated: Tribute sends no key.
                "security": [],
                "parameters": signature_headers(),
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": schema_ref(&envelope_name(kind)),
                }}},
                "responses": {
                    "2XX": {"description": "received: the delivery is done"},
                    "410": {"description": "gone: the endpoint is disabled at once, and no \
                        more is sent"},
                    "default": {"description": retries()},
                },
            }}),
        );
    }
    Value::Object(out)
}

/// The payloads, one envelope per event, and `WebhookMessage`: any of them.
pub fn schemas() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = payloads()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    out.extend(
        EventKind::ALL
            .iter()
            .map(|&k| (envelope_name(k), envelope(k))),
    );
    let messages: Vec<Value> = EventKind::ALL
        .iter()
        .map(|&k| schema_ref(&envelope_name(k)))
        .collect();
    out.push((
        "WebhookMessage".to_owned(),
        json!({"oneOf": messages, "description": "any message Tribute sends"}),
    ));
    out
}

#[cfg(test)]
#[path = "webhook_events_tests.rs"]
mod tests;
