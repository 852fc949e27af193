//! The document's outbound webhook endpoints (`api::webhooks`): where an
//! owner has Tribute send its events, each endpoint's signing secret, its
//! deliveries with their attempts, replay by hand, and the owner's
//! notices. What is sent is in [`super::webhook_events`].

use serde_json::{json, Value};

use super::schema::{
    array, boolean, described, id, int, list_of, nullable, object, one_of_strings, op,
    optional_label, paging, path_id, pattern, query, read_only, schema_ref, string, time,
};
use super::webhook_events::{all_required, event_names, BASE64_32};

fn endpoint_props() -> Vec<(&'static str, Value)> {
    vec![
        ("id", read_only(id("ep"))),
        ("program_id", id("prg")),
        ("url", string()),
        ("description", string()),
        (
            "events",
            described(array(event_names()), "the events sent; empty: all of them"),
        ),
        (
            "partner_id",
            described(
                nullable(id("ptn")),
                "when set, only this partner's own events, with only its own data",
            ),
        ),
        ("enabled", boolean()),
        ("disabled_reason", nullable(string())),
        (
            "failing_since",
            described(nullable(time()), "every attempt has failed since"),
        ),
        ("created_at", read_only(time())),
        ("updated_at", read_only(time())),
    ]
}

/// A secret as made: `whsec_` and base64 of 32 random bytes.
fn secret() -> Value {
    pattern(&format!("^whsec_{BASE64_32}$"), 50)
}

/// Where messages go (`tribute_core::webhook::parse_endpoint_url`): an http
/// or https URL without credentials. The pattern keeps to names of dotted
/// lower-case labels that start with a letter, so no address it allows is
/// an IP literal or `localhost`, which the server refuses unless
/// configured to allow private targets; the server takes any other URL too.
fn url() -> Value {
    described(
        pattern(
            concat!(
                r"^https?://[a-z][a-z0-9]{0,20}(\.[a-z][a-z0-9]{0,20}){1,4}",
                r"(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]{0,100})?$",
            ),
            2000,
        ),
        "an http(s) URL without credentials; an address that is private, loopback or \
         link-local is refused, and a name is resolved and checked again on every delivery",
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let mut with_secret = endpoint_props();
    with_secret.push((
        "secret",
        described(
            secret(),
            "the signing secret: shown here, at creation and rotation",
        ),
    ));
    let attempt = all_required(&[
        ("attempt", int()),
        ("started_at", time()),
        ("duration_ms", int()),
        ("status_code", described(nullable(int()), "none: no answer")),
        (
            "error",
            described(
                nullable(string()),
                "why there was no answer (refused, timed out, a blocked address)",
            ),
        ),
        (
            "response",
            described(nullable(string()), "the start of the answer's body"),
        ),
        ("next_attempt_at", nullable(time())),
    ]);
    let delivery = all_required(&[
        ("id", read_only(id("whd"))),
        ("msg_id", described(id("msg"), "the `webhook-id` sent")),
        ("endpoint_id", id("ep")),
        ("event_type", event_names()),
        ("status", one_of_strings(["pending", "delivered", "failed"])),
        ("attempts", int()),
        (
            "next_attempt_at",
            described(nullable(time()), "while pending"),
        ),
        ("created_at", read_only(time())),
        ("delivered_at", nullable(time())),
        (
            "payload",
            described(schema_ref("WebhookMessage"), "the body sent"),
        ),
        (
            "attempt_log",
            described(array(schema_ref("WebhookAttempt")), "oldest first"),
        ),
    ]);
    vec![
        ("WebhookEndpoint", all_required(&endpoint_props())),
        ("WebhookEndpointWithSecret", all_required(&with_secret)),
        (
            "WebhookEndpointCreate",
            object(
                &[
                    ("program_id", id("prg")),
                    ("url", url()),
                    (
                        "events",
                        described(array(event_names()), "default: all events"),
                    ),
                    (
                        "partner_id",
                        described(
                            nullable(id("ptn")),
                            "a partner of the program: send only its own events",
                        ),
                    ),
                    ("description", nullable(optional_label(500))),
                ],
                &["program_id", "url"],
            ),
        ),
        (
            "WebhookEndpointUpdate",
            object(
                &[
                    ("url", nullable(url())),
                    (
                        "events",
                        nullable(described(array(event_names()), "empty: all events")),
                    ),
                    (
                        "partner_id",
                        described(
                            nullable(id("ptn")),
                            "a partner of the endpoint's program; null: the whole program",
                        ),
                    ),
                    (
                        "description",
                        nullable(described(optional_label(500), "blank clears it")),
                    ),
                    (
                        "enabled",
                        nullable(described(
                            boolean(),
                            "true re-enables a disabled endpoint (what waits goes out); \
                             false pauses it",
                        )),
                    ),
                ],
                &[],
            ),
        ),
        (
            "WebhookSecret",
            all_required(&[
                ("secret", secret()),
                (
                    "previous_secret",
                    described(
                        nullable(secret()),
                        "the secret before the last rotation, while it still signs",
                    ),
                ),
                ("previous_until", nullable(time())),
            ]),
        ),
        ("WebhookAttempt", attempt),
        ("WebhookDelivery", delivery),
        (
            "WebhookReplay",
            all_required(&[("id", id("whd")), ("status", one_of_strings(["pending"]))]),
        ),
        (
            "Notice",
            all_required(&[
                ("id", read_only(id("ntc"))),
                ("program_id", id("prg")),
                (
                    "kind",
                    described(string(), "what happened, e.g. `endpoint.disabled`"),
                ),
                (
                    "subject_id",
                    described(nullable(string()), "what it is about, e.g. the endpoint"),
                ),
                ("message", string()),
                ("created_at", read_only(time())),
            ]),
        ),
    ]
}

pub fn paths() -> Vec<(&'static str, Value)> {
    let ep = [path_id("ep")];
    let mut list = paging().to_vec();
    list.push(query("program_id", id("prg")));
    let mut deleted = op(
        "Delete an endpoint with its deliveries (admin)",
        &ep,
        None,
        "204",
        json!({}),
    );
    deleted["responses"]["204"] = json!({"description": "deleted"});
    let mut deliveries = paging().to_vec();
    deliveries.insert(0, path_id("ep"));
    vec![
        (
            "/api/v1/webhook-endpoints",
            json!({
                "get": op("List webhook endpoints, oldest first, without their secrets (admin)",
                    &list, None, "200", list_of("WebhookEndpoint")),
                "post": op("Add an endpoint to send a program's events to (admin); the answer \
                    holds its signing secret",
                    &[], Some(schema_ref("WebhookEndpointCreate")), "201",
                    schema_ref("WebhookEndpointWithSecret")),
            }),
        ),
        (
            "/api/v1/webhook-endpoints/{id}",
            json!({
                "get": op("Get an endpoint (admin)", &ep, None, "200",
                    schema_ref("WebhookEndpoint")),
                "patch": op("Change an endpoint, pause it or enable it again (admin); 409 when \
                    it changed meanwhile (disabled by the sender, a failing streak began or \
                    ended): read it again and retry", &ep,
                    Some(schema_ref("WebhookEndpointUpdate")), "200",
                    schema_ref("WebhookEndpoint")),
                "delete": deleted,
            }),
        ),
        (
            "/api/v1/webhook-endpoints/{id}/secret",
            json!({
                "get": op("An endpoint's signing secret, and the one before while it still \
                    signs (admin)", &ep, None, "200", schema_ref("WebhookSecret")),
            }),
        ),
        (
            "/api/v1/webhook-endpoints/{id}/rotate-secret",
            json!({
                "post": op("Make a new signing secret; the old one keeps signing beside it for \
                    24 hours (admin); 409 when the endpoint changed meanwhile (two rotations at \
                    once: the first wins)", &ep, None, "200",
                    schema_ref("WebhookEndpointWithSecret")),
            }),
        ),
        (
            "/api/v1/webhook-endpoints/{id}/deliveries",
            json!({
                "get": op("An endpoint's deliveries, newest first, each with its attempts (admin)",
                    &deliveries, None, "200", list_of("WebhookDelivery")),
            }),
        ),
        (
            "/api/v1/webhook-deliveries/{id}/replay",
            json!({
                "post": op("Send a delivery again now, with the same `webhook-id` (admin)",
                    &[path_id("whd")], None, "202", schema_ref("WebhookReplay")),
            }),
        ),
        (
            "/api/v1/notices",
            json!({
                "get": op("The owner's notices, newest first: an endpoint disabled, … (admin)",
                    &list, None, "200", list_of("Notice")),
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use tribute_core::ids::{
        InboundDeliveryId, IntegrationId, MessageId, NoticeId, PersonId, WebhookDeliveryId,
        WebhookEndpointId,
    };
    use tribute_core::webhook::{parse_endpoint_url, WebhookSecret};

    use super::*;

    fn re(schema: &Value) -> regex::Regex {
        regex::Regex::new(schema["pattern"].as_str().expect("a pattern")).expect("a valid pattern")
    }

    #[test]
    fn documented_secret_pattern_matches_the_secrets_core_makes() {
        let made = WebhookSecret::generate();
        assert!(re(&secret()).is_match(made.as_str()));
    }

    /// The URL pattern is narrower than the server: what it allows, the
    /// server accepts (a fuzzer keeping to it is never refused), and it
    /// allows no address the server refuses by default.
    #[test]
    fn urls_the_pattern_allows_are_accepted_and_private_ones_are_not_allowed() {
        let pattern = re(&url());
        for ok in [
            "http://a.b",
            "https://a0123456789.bc.de.fg.hi:9999/~._-/x",
            "http://localhost.test/",
            "https://hooks.example.com:1/../a",
        ] {
            assert!(pattern.is_match(ok), "{ok} is allowed");
            assert!(
                parse_endpoint_url("url", ok, false).is_ok(),
                "{ok} is accepted"
            );
        }
        for refused in [
            "http://localhost",
            "http://127.0.0.1",
            "http://10.0.0.1/x",
            "http://[::1]/",
            "http://0x7f.1",
            "ftp://a.b",
            "http://user:pw@a.b",
        ] {
            assert!(!pattern.is_match(refused), "{refused} is not allowed");
        }
    }

    /// The ids these resources document, as core makes them (the prefixes
    /// `tests/openapi.rs` does not know yet).
    #[test]
    fn documented_id_patterns_match_the_ids_core_makes() {
        let made = [
            ("ep", WebhookEndpointId::generate().to_string()),
            ("whd", WebhookDeliveryId::generate_ordered(0).to_string()),
            ("msg", MessageId::generate_ordered(0).to_string()),
            ("ntc", NoticeId::generate_ordered(0).to_string()),
            ("int", IntegrationId::generate().to_string()),
            ("ind", InboundDeliveryId::generate_ordered(0).to_string()),
            ("per", PersonId::generate().to_string()),
        ];
        for (prefix, made_id) in &made {
            assert!(re(&id(prefix)).is_match(made_id), "{prefix}: {made_id}");
            for (other, other_id) in made.iter().filter(|(p, _)| p != prefix) {
                assert!(
                    !re(&id(prefix)).is_match(other_id),
                    "{prefix} matches {other}"
                );
            }
        }
    }
}
