//! The event catalogue held to `tribute_core::webhook`: every event is
//! documented, and every message core makes is valid under its schema.

use chrono::{TimeZone, Utc};
use tribute_core::ids::{
    CommissionId, ConversionId, MessageId, PartnerId, PayoutId, PersonId, ProgramId, RefundId,
    WebhookEndpointId,
};
use tribute_core::webhook::{
    CommissionData, ConversionData, CreditData, EndpointDisabledData, Envelope, LeadData,
    PartnerData, PayoutData, RefundData, TierChangedData, WebhookSecret,
};

use super::*;

/// A message of `kind` as `tribute_core` makes it: with every optional
/// field set when `full`, else with none (the schema must allow both).
fn sample(kind: EventKind, full: bool) -> Value {
    let opt = |v: String| full.then_some(v);
    let at = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
    let (program, partner) = (
        ProgramId::generate().to_string(),
        PartnerId::generate().to_string(),
    );
    let commission = CommissionData {
        id: CommissionId::generate().to_string(),
        program_id: program.clone(),
        partner_id: partner.clone(),
        conversion_id: opt(ConversionId::generate().to_string()),
        amount: 250,
        currency: "EUR".into(),
    };
    let data = match kind {
        EventKind::LeadCreated => json!(LeadData {
            program_id: program,
            partner_id: partner,
            person_id: PersonId::generate().to_string(),
            occurred_at: at,
        }),
        EventKind::ConversionCreated => json!(ConversionData {
            id: ConversionId::generate().to_string(),
            program_id: program,
            external_id: opt("o-1".into()),
            status: "approved".into(),
            value: 4200,
            currency: "EUR".into(),
            occurred_at: at,
            credits: vec![CreditData {
                partner_id: partner,
                amount: 4200
            }],
        }),
        EventKind::ConversionRefunded => json!(RefundData {
            id: RefundId::generate().to_string(),
            conversion_id: ConversionId::generate().to_string(),
            program_id: program,
            external_id: "re_1".into(),
            kind: "chargeback".into(),
            amount: 100,
            currency: "EUR".into(),
        }),
        EventKind::CommissionCreated
        | EventKind::CommissionApproved
        | EventKind::CommissionReversed => json!(commission),
        EventKind::PayoutPaid => json!(PayoutData {
            id: PayoutId::generate().to_string(),
            program_id: program,
            partner_id: partner,
            amount: 5000,
            currency: "EUR".into(),
        }),
        EventKind::PartnerCreated => json!(PartnerData {
            id: partner,
            program_id: program,
            slug: "alice".into(),
            name: "Alice".into(),
            status: "active".into(),
        }),
        EventKind::PartnerTierChanged => json!(TierChangedData {
            partner_id: partner,
            program_id: program,
            from_tier: opt("Silver".into()),
            to_tier: opt("Gold".into()),
            reason: "revenue 12000 EUR in 90 days".into(),
        }),
        EventKind::EndpointDisabled => json!(EndpointDisabledData {
            endpoint_id: WebhookEndpointId::generate().to_string(),
            url: "https://hooks.example.com/tribute".into(),
            reason: "the receiver answered 410 Gone".into(),
        }),
    };
    json!(Envelope::new(kind, at, &data))
}

/// Whether `v` is valid under `schema`, for the keywords this document
/// uses; the error names where it is not.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    let passes = |list: &Value| {
        list.as_array()
            .map(|l| l.iter().filter(|s| check(doc, s, v, at).is_ok()).count())
    };
    if passes(&schema["anyOf"]) == Some(0) {
        return Err(format!("{at}: matches no `anyOf`"));
    }
    if let Some(n) = passes(&schema["oneOf"]).filter(|n| *n != 1) {
        return Err(format!("{at}: matches {n} of `oneOf`"));
    }
    let fits = |t: &Value| match t.as_str().unwrap_or_default() {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    };
    let fitting = match &schema["type"] {
        Value::Null => true,
        Value::Array(ts) => ts.iter().any(fits),
        t => fits(t),
    };
    if !fitting {
        return Err(format!("{at}: {v} is not of type {}", schema["type"]));
    }
    if schema.get("const").is_some_and(|c| c != v) {
        return Err(format!("{at}: {v} is not {}", schema["const"]));
    }
    if schema["enum"].as_array().is_some_and(|e| !e.contains(v)) {
        return Err(format!("{at}: {v} is not one of {}", schema["enum"]));
    }
    if let (Some(p), Some(s)) = (schema["pattern"].as_str(), v.as_str()) {
        if !regex::Regex::new(p).expect("a valid pattern").is_match(s) {
            return Err(format!("{at}: {s:?} does not match {p}"));
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    let Some(fields) = v.as_object() else {
        return Ok(());
    };
    for r in schema["required"].as_array().into_iter().flatten() {
        if !fields.contains_key(r.as_str().unwrap_or_default()) {
            return Err(format!("{at}: `{r}` is missing"));
        }
    }
    for (k, field) in fields {
        match schema["properties"].get(k) {
            Some(s) => check(doc, s, field, &format!("{at}.{k}"))?,
            None if schema["additionalProperties"] == false => {
                return Err(format!("{at}: `{k}` is not documented"))
            }
            None => {}
        }
    }
    Ok(())
}

#[test]
fn every_event_kind_is_documented_with_an_envelope_and_a_payload_schema() {
    let doc = super::super::document();
    let hooks = doc["webhooks"].as_object().expect("a webhooks section");
    assert_eq!(hooks.len(), EventKind::ALL.len(), "one entry per event");
    for &kind in EventKind::ALL {
        let name = kind.as_str();
        let body = &hooks[name]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let envelope = &doc["components"]["schemas"][envelope_name(kind)];
        assert_eq!(body, &schema_ref(&envelope_name(kind)), "{name}: body");
        assert_eq!(
            envelope["properties"]["type"]["const"], name,
            "{name}: type"
        );
        let data = envelope["properties"]["data"]["$ref"]
            .as_str()
            .expect("a reference");
        let data = &doc["components"]["schemas"][data.trim_start_matches("#/components/schemas/")];
        assert!(data["properties"].is_object(), "{name}: no payload schema");
    }
}

#[test]
fn every_message_core_makes_is_valid_under_its_documented_envelope() {
    let doc = super::super::document();
    for (&kind, full) in EventKind::ALL.iter().flat_map(|k| [(k, true), (k, false)]) {
        let message = sample(kind, full);
        let at = format!("{} (optional fields set: {full})", kind.as_str());
        for schema in [
            schema_ref(&envelope_name(kind)),
            schema_ref("WebhookMessage"),
        ] {
            check(&doc, &schema, &message, &at).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn a_message_of_another_event_is_refused_by_an_envelope() {
    let doc = super::super::document();
    let created = sample(EventKind::CommissionCreated, true);
    let approved = schema_ref(&envelope_name(EventKind::CommissionApproved));
    assert!(check(&doc, &approved, &created, "commission").is_err());
    let mut extra = sample(EventKind::PayoutPaid, true);
    extra["data"]["surprise"] = json!(1);
    assert!(check(&doc, &schema_ref("WebhookMessage"), &extra, "payout").is_err());
}

#[test]
fn documented_signature_headers_match_what_the_sender_writes() {
    let headers = signature_headers();
    let pattern_of = |name: &str| {
        let h = headers
            .iter()
            .find(|h| h["name"] == name)
            .expect("documented");
        regex::Regex::new(h["schema"]["pattern"].as_str().expect("a pattern")).expect("valid")
    };
    let msg = MessageId::generate_ordered(1_769_860_800_000).to_string();
    let (old, new) = (WebhookSecret::generate(), WebhookSecret::generate());
    let signatures = [
        old.sign(&msg, 1_769_860_800, b"{}"),
        new.sign(&msg, 1_769_860_800, b"{}"),
    ];
    assert!(pattern_of("webhook-id").is_match(&msg), "{msg}");
    assert!(pattern_of("webhook-timestamp").is_match("1769860800"));
    assert!(pattern_of("webhook-signature").is_match(&signatures[0]));
    assert!(pattern_of("webhook-signature").is_match(&signatures.join(" ")));
}

#[test]
fn envelope_names_are_pascal_case_of_the_event_names() {
    assert_eq!(envelope_name(EventKind::LeadCreated), "LeadCreatedEvent");
    assert_eq!(
        envelope_name(EventKind::PartnerTierChanged),
        "PartnerTierChangedEvent"
    );
}

#[test]
fn the_documented_retry_schedule_is_the_senders() {
    let text = retries();
    assert!(text.contains("within 15 s"), "{text}");
    assert!(
        text.contains("after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h"),
        "{text}"
    );
    assert!(text.contains("failing for 5 days"), "{text}");
}
