//! Tests of [`super::verify`]: each provider's scheme, signed in the test
//! the way the provider documents it (and once with a vector computed
//! independently), then tampered with, aged, and stripped of headers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{verify, InboundRequest, IntegrationKind, Verified, VerifyError};

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap()
}

fn hmac(secret: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn check(
    kind: IntegrationKind,
    secret: &str,
    settings: &Value,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Verified, VerifyError> {
    let req = InboundRequest {
        method: "POST",
        url,
        headers,
        body,
    };
    verify(kind, secret, settings, &req, now())
}

// ---------------------------------------------------------------- Stripe

const STRIPE_SECRET: &str = "whsec_test_secret";
const STRIPE_BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;

fn stripe_sig(secret: &str, t: i64, body: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    hex::encode(hmac(secret, &signed))
}

fn stripe(header: &str, body: &[u8]) -> Result<Verified, VerifyError> {
    let h = headers(&[("stripe-signature", header)]);
    check(
        IntegrationKind::Stripe,
        STRIPE_SECRET,
        &Value::Null,
        "https://t/h",
        &h,
        body,
    )
}

#[test]
fn stripe_signature_matching_an_independently_computed_vector_verifies_and_names_the_event() {
    let header = "t=1700000000,v1=0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd";
    assert_eq!(
        stripe(header, STRIPE_BODY),
        Ok(Verified {
            delivery_id: "evt_1".into()
        })
    );
}

#[test]
fn stripe_signature_uses_the_whole_whsec_secret_as_the_key() {
    let t = now().timestamp();
    let without_prefix = stripe_sig("test_secret", t, STRIPE_BODY);
    assert_eq!(
        stripe(&format!("t={t},v1={without_prefix}"), STRIPE_BODY),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn stripe_signature_with_several_v1_values_passes_when_the_second_matches() {
    let t = now().timestamp() - 10;
    let good = stripe_sig(STRIPE_SECRET, t, STRIPE_BODY);
    let old = stripe_sig("whsec_rolled_secret", t, STRIPE_BODY);
    let header = format!("t={t},v1={old},v1={good},v0=deadbeef");
    assert!(stripe(&header, STRIPE_BODY).is_ok());
}

#[test]
fn stripe_tampered_body_is_a_mismatch() {
    let t = now().timestamp();
    let sig = stripe_sig(STRIPE_SECRET, t, STRIPE_BODY);
    let tampered = br#"{"id":"evt_1","object":"event","x":1}"#;
    assert_eq!(
        stripe(&format!("t={t},v1={sig}"), tampered),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn stripe_signature_with_a_changed_timestamp_is_a_mismatch() {
    let t = now().timestamp();
    let sig = stripe_sig(STRIPE_SECRET, t, STRIPE_BODY);
    let header = format!("t={},v1={sig}", t - 1);
    assert_eq!(stripe(&header, STRIPE_BODY), Err(VerifyError::Mismatch));
}

#[test]
fn stripe_signature_outside_tolerance_is_stale() {
    for (case, t) in [
        ("301 s old", now().timestamp() - 301),
        ("301 s ahead", now().timestamp() + 301),
    ] {
        let header = format!("t={t},v1={}", stripe_sig(STRIPE_SECRET, t, STRIPE_BODY));
        assert!(
            matches!(stripe(&header, STRIPE_BODY), Err(VerifyError::Stale(_))),
            "case {case}"
        );
    }
}

#[test]
fn stripe_signature_at_the_edge_of_tolerance_passes() {
    for t in [now().timestamp() - 300, now().timestamp() + 300] {
        let header = format!("t={t},v1={}", stripe_sig(STRIPE_SECRET, t, STRIPE_BODY));
        assert!(stripe(&header, STRIPE_BODY).is_ok(), "t={t}");
    }
}

#[test]
fn stripe_delivery_without_its_header_is_missing() {
    let r = check(
        IntegrationKind::Stripe,
        STRIPE_SECRET,
        &Value::Null,
        "https://t/h",
        &[],
        STRIPE_BODY,
    );
    assert_eq!(r, Err(VerifyError::Missing("stripe-signature")));
}

#[test]
fn stripe_header_without_a_timestamp_or_a_v1_signature_is_malformed() {
    let sig = stripe_sig(STRIPE_SECRET, now().timestamp(), STRIPE_BODY);
    for (case, header) in [
        ("no t", format!("v1={sig}")),
        ("only v0", format!("t={},v0={sig}", now().timestamp())),
        ("t not a number", format!("t=yesterday,v1={sig}")),
        ("empty", String::new()),
    ] {
        assert!(
            matches!(stripe(&header, STRIPE_BODY), Err(VerifyError::Malformed(_))),
            "case {case}"
        );
    }
}

#[test]
fn stripe_signed_body_without_an_event_id_is_malformed() {
    let body = br#"{"object":"event"}"#;
    let t = now().timestamp();
    let header = format!("t={t},v1={}", stripe_sig(STRIPE_SECRET, t, body));
    assert!(matches!(
        stripe(&header, body),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn an_empty_secret_never_verifies() {
    let t = now().timestamp();
    let header = format!("t={t},v1={}", stripe_sig("", t, STRIPE_BODY));
    let h = headers(&[("stripe-signature", &header)]);
    let r = check(
        IntegrationKind::Stripe,
        "",
        &Value::Null,
        "https://t/h",
        &h,
        STRIPE_BODY,
    );
    assert_eq!(r, Err(VerifyError::Mismatch));
}

// --------------------------------------------------------------- Shopify

const SHOPIFY_SECRET: &str = "shpss_secret";
const SHOPIFY_BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

fn shopify_headers(signature: &str, triggered_at: DateTime<Utc>) -> Vec<(String, String)> {
    headers(&[
        ("x-shopify-topic", "orders/paid"),
        ("x-shopify-hmac-sha256", signature),
        ("x-shopify-shop-domain", "example.myshopify.com"),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
        (
            "x-shopify-triggered-at",
            &triggered_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
    ])
}

fn shopify_sig(body: &[u8]) -> String {
    STANDARD.encode(hmac(SHOPIFY_SECRET, body))
}

fn shopify(h: &[(String, String)], settings: &Value, body: &[u8]) -> Result<Verified, VerifyError> {
    check(
        IntegrationKind::Shopify,
        SHOPIFY_SECRET,
        settings,
        "https://t/h",
        h,
        body,
    )
}

#[test]
fn shopify_signature_matching_an_independently_computed_vector_verifies_with_the_webhook_id() {
    let h = shopify_headers("vo+n5h/cLxNKGlgJ0Fd1aDzU0aOaajK8Hs9m0hPqWiQ=", now());
    assert_eq!(
        shopify(&h, &Value::Null, SHOPIFY_BODY),
        Ok(Verified {
            delivery_id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into()
        })
    );
}

#[test]
fn shopify_tampered_body_is_a_mismatch() {
    let h = shopify_headers(&shopify_sig(SHOPIFY_BODY), now());
    let tampered = br#"{"id":820982911946154508,"email":"eve@example.com"}"#;
    assert_eq!(
        shopify(&h, &Value::Null, tampered),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn shopify_retry_within_48_hours_passes_and_after_is_stale() {
    let sig = shopify_sig(SHOPIFY_BODY);
    let ok = shopify_headers(&sig, now() - Duration::hours(47));
    assert!(shopify(&ok, &Value::Null, SHOPIFY_BODY).is_ok());
    let stale = shopify_headers(&sig, now() - Duration::hours(49));
    assert!(matches!(
        shopify(&stale, &Value::Null, SHOPIFY_BODY),
        Err(VerifyError::Stale(_))
    ));
}

#[test]
fn shopify_tolerance_setting_narrows_the_window() {
    let h = shopify_headers(&shopify_sig(SHOPIFY_BODY), now() - Duration::hours(2));
    let r = shopify(&h, &json!({"tolerance_seconds": 3600}), SHOPIFY_BODY);
    assert!(matches!(r, Err(VerifyError::Stale(_))), "{r:?}");
}

#[test]
fn shopify_delivery_triggered_well_in_the_future_is_stale() {
    let h = shopify_headers(&shopify_sig(SHOPIFY_BODY), now() + Duration::minutes(10));
    assert!(matches!(
        shopify(&h, &Value::Null, SHOPIFY_BODY),
        Err(VerifyError::Stale(_))
    ));
}

#[test]
fn shopify_delivery_without_each_required_header_is_missing_that_header() {
    let full = shopify_headers(&shopify_sig(SHOPIFY_BODY), now());
    for name in [
        "x-shopify-hmac-sha256",
        "x-shopify-triggered-at",
        "x-shopify-webhook-id",
    ] {
        let h: Vec<_> = full.iter().filter(|(n, _)| n != name).cloned().collect();
        assert_eq!(
            shopify(&h, &Value::Null, SHOPIFY_BODY),
            Err(VerifyError::Missing(name)),
            "without {name}"
        );
    }
}

#[test]
fn shopify_signature_that_is_not_base64_is_malformed() {
    let h = shopify_headers("not base64!", now());
    assert!(matches!(
        shopify(&h, &Value::Null, SHOPIFY_BODY),
        Err(VerifyError::Malformed(_))
    ));
}

// --------------------------------------------------------------- HubSpot

const HUBSPOT_SECRET: &str = "hs-secret";
const HUBSPOT_URL: &str = "https://t.example.com/hooks/hubspot/int_x?a=b";
const HUBSPOT_BODY: &[u8] = br#"[{"objectId":1}]"#;

fn hubspot_sig(method: &str, url: &str, body: &[u8], ts: &str) -> String {
    let mut m = Vec::new();
    m.extend_from_slice(method.as_bytes());
    m.extend_from_slice(url.as_bytes());
    m.extend_from_slice(body);
    m.extend_from_slice(ts.as_bytes());
    STANDARD.encode(hmac(HUBSPOT_SECRET, &m))
}

fn hubspot(url: &str, sig: &str, ts: &str, body: &[u8]) -> Result<Verified, VerifyError> {
    let h = headers(&[
        ("x-hubspot-signature-v3", sig),
        ("x-hubspot-request-timestamp", ts),
    ]);
    check(
        IntegrationKind::Hubspot,
        HUBSPOT_SECRET,
        &Value::Null,
        url,
        &h,
        body,
    )
}

#[test]
fn hubspot_v3_signature_matching_an_independently_computed_vector_verifies() {
    let r = hubspot(
        HUBSPOT_URL,
        "+JIvZXxKx/a78n+yfVmym4RC/GxlRbOnWL5Qiorm9ac=",
        "1700000000000",
        HUBSPOT_BODY,
    );
    assert_eq!(
        r,
        Ok(Verified {
            delivery_id: "hubspot:a2f7f6ba1d5e709d531d2af59bb484e3258eb605e38a37848d3fb4ed63607f16"
                .into()
        })
    );
}

#[test]
fn hubspot_tampered_body_url_or_method_is_a_mismatch() {
    let ts = "1700000000000";
    let sig = hubspot_sig("POST", HUBSPOT_URL, HUBSPOT_BODY, ts);
    assert_eq!(
        hubspot(HUBSPOT_URL, &sig, ts, br#"[{"objectId":2}]"#),
        Err(VerifyError::Mismatch),
        "body"
    );
    assert_eq!(
        hubspot(
            "https://t.example.com/hooks/hubspot/int_y?a=b",
            &sig,
            ts,
            HUBSPOT_BODY
        ),
        Err(VerifyError::Mismatch),
        "url"
    );
    let get = hubspot_sig("GET", HUBSPOT_URL, HUBSPOT_BODY, ts);
    assert_eq!(
        hubspot(HUBSPOT_URL, &get, ts, HUBSPOT_BODY),
        Err(VerifyError::Mismatch),
        "method"
    );
}

#[test]
fn hubspot_url_signed_with_decoded_characters_verifies_against_the_encoded_url() {
    let ts = "1700000000000";
    let sig = hubspot_sig(
        "POST",
        "https://t.example.com/h?email=a@b.c",
        HUBSPOT_BODY,
        ts,
    );
    assert!(hubspot(
        "https://t.example.com/h?email=a%40b.c",
        &sig,
        ts,
        HUBSPOT_BODY
    )
    .is_ok());
}

#[test]
fn hubspot_timestamp_more_than_five_minutes_away_is_stale() {
    for (case, ms) in [
        ("old", 1_700_000_000_000i64 - 300_001),
        ("ahead", 1_700_000_000_000 + 300_001),
    ] {
        let ts = ms.to_string();
        let sig = hubspot_sig("POST", HUBSPOT_URL, HUBSPOT_BODY, &ts);
        assert!(
            matches!(
                hubspot(HUBSPOT_URL, &sig, &ts, HUBSPOT_BODY),
                Err(VerifyError::Stale(_))
            ),
            "case {case}"
        );
    }
    let ts = (1_700_000_000_000i64 - 299_000).to_string();
    let sig = hubspot_sig("POST", HUBSPOT_URL, HUBSPOT_BODY, &ts);
    assert!(hubspot(HUBSPOT_URL, &sig, &ts, HUBSPOT_BODY).is_ok());
}

#[test]
fn hubspot_delivery_without_its_headers_is_missing_and_a_bad_timestamp_is_malformed() {
    let ts = "1700000000000";
    let sig = hubspot_sig("POST", HUBSPOT_URL, HUBSPOT_BODY, ts);
    let only_sig = headers(&[("x-hubspot-signature-v3", &sig)]);
    let only_ts = headers(&[("x-hubspot-request-timestamp", ts)]);
    let r = |h: &[(String, String)]| {
        check(
            IntegrationKind::Hubspot,
            HUBSPOT_SECRET,
            &Value::Null,
            HUBSPOT_URL,
            h,
            HUBSPOT_BODY,
        )
    };
    assert_eq!(
        r(&only_ts),
        Err(VerifyError::Missing("x-hubspot-signature-v3"))
    );
    assert_eq!(
        r(&only_sig),
        Err(VerifyError::Missing("x-hubspot-request-timestamp"))
    );
    assert!(matches!(
        hubspot(HUBSPOT_URL, &sig, "soon", HUBSPOT_BODY),
        Err(VerifyError::Malformed(_))
    ));
}

// --------------------------------------------------------------- generic

const GENERIC_SECRET: &str = "gen-secret";
const GENERIC_BODY: &[u8] = br#"{"id":"o-1","amount":"12.50"}"#;

fn generic(settings: &Value, pairs: &[(&str, &str)], body: &[u8]) -> Result<Verified, VerifyError> {
    let h = headers(pairs);
    check(
        IntegrationKind::Generic,
        GENERIC_SECRET,
        settings,
        "https://t/h",
        &h,
        body,
    )
}

#[test]
fn generic_hex_signature_matching_an_independently_computed_vector_verifies() {
    let sig = "d2d8755630a5e3b0744d623664a6cfb854ad3cf4a71cf63c59568b2719fe4785";
    assert_eq!(
        generic(&json!({}), &[("x-signature", sig)], GENERIC_BODY),
        Ok(Verified {
            delivery_id: "generic:9801f04ad66c4dddf5e72331ba92b65d4b9fd07cf9cdc26f7f6a3f10d04ad7e0"
                .into()
        })
    );
}

#[test]
fn generic_signature_may_be_hex_or_base64_with_or_without_a_sha256_prefix() {
    let raw = hmac(GENERIC_SECRET, GENERIC_BODY);
    for (case, sig) in [
        ("hex", hex::encode(&raw)),
        ("upper-case hex", hex::encode_upper(&raw)),
        ("prefixed hex", format!("sha256={}", hex::encode(&raw))),
        ("base64", STANDARD.encode(&raw)),
        (
            "prefixed base64",
            format!("sha256={}", STANDARD.encode(&raw)),
        ),
    ] {
        assert!(
            generic(&json!({}), &[("x-signature", &sig)], GENERIC_BODY).is_ok(),
            "case {case}"
        );
    }
}

#[test]
fn generic_tampered_body_is_a_mismatch() {
    let sig = hex::encode(hmac(GENERIC_SECRET, GENERIC_BODY));
    let r = generic(
        &json!({}),
        &[("x-signature", &sig)],
        br#"{"id":"o-1","amount":"99.00"}"#,
    );
    assert_eq!(r, Err(VerifyError::Mismatch));
}

#[test]
fn generic_configured_header_names_are_compared_case_insensitively() {
    let settings = json!({"signature_header": "X-Hook-Signature", "id_header": "X-Delivery"});
    let sig = hex::encode(hmac(GENERIC_SECRET, GENERIC_BODY));
    let r = generic(
        &settings,
        &[("x-hook-signature", &sig), ("x-delivery", "d-42")],
        GENERIC_BODY,
    );
    assert_eq!(
        r,
        Ok(Verified {
            delivery_id: "d-42".into()
        })
    );
}

#[test]
fn generic_delivery_without_its_signature_header_is_missing() {
    assert_eq!(
        generic(&json!({}), &[], GENERIC_BODY),
        Err(VerifyError::Missing("x-signature"))
    );
    assert_eq!(
        generic(
            &json!({"signature_header": "x-hook-signature"}),
            &[],
            GENERIC_BODY
        ),
        Err(VerifyError::Missing("signature_header"))
    );
}

#[test]
fn generic_timestamped_signature_covers_the_timestamp_and_expires() {
    let settings = json!({"timestamp_header": "x-timestamp", "tolerance_seconds": 600});
    let sign = |t: i64| {
        let mut m = format!("{t}.").into_bytes();
        m.extend_from_slice(GENERIC_BODY);
        hex::encode(hmac(GENERIC_SECRET, &m))
    };
    let t = now().timestamp() - 500;
    let ok = generic(
        &settings,
        &[("x-signature", &sign(t)), ("x-timestamp", &t.to_string())],
        GENERIC_BODY,
    );
    assert!(ok.unwrap().delivery_id.starts_with("generic:"));

    let old = now().timestamp() - 601;
    let stale = generic(
        &settings,
        &[
            ("x-signature", &sign(old)),
            ("x-timestamp", &old.to_string()),
        ],
        GENERIC_BODY,
    );
    assert!(matches!(stale, Err(VerifyError::Stale(_))), "{stale:?}");

    let moved = generic(
        &settings,
        &[
            ("x-signature", &sign(t)),
            ("x-timestamp", &(t + 1).to_string()),
        ],
        GENERIC_BODY,
    );
    assert_eq!(moved, Err(VerifyError::Mismatch));

    let missing = generic(&settings, &[("x-signature", &sign(t))], GENERIC_BODY);
    assert_eq!(missing, Err(VerifyError::Missing("timestamp_header")));
}

#[test]
fn generic_signature_that_is_neither_hex_nor_base64_is_malformed() {
    let r = generic(
        &json!({}),
        &[("x-signature", "not a signature!")],
        GENERIC_BODY,
    );
    assert!(matches!(r, Err(VerifyError::Malformed(_))));
}
