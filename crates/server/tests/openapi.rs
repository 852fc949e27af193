//! The OpenAPI document: served, well-formed, and naming only routes the
//! server really has.

#[allow(unused_macros)]
mod common;

use reqwest::Method;
use serde_json::{json, Value};

use common::spawn_app;

#[tokio::test]
async fn openapi_document_is_served_as_openapi_3_1_with_the_api_paths() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/programs",
        "/api/v1/links/{id}",
        "/api/v1/conversions",
        "/api/v1/attribution/compare",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    app.finish().await;
}

/// Every documented operation, called with placeholder ids, reaches a
/// handler: the answer is never the router's own "route not found" or 405.
#[tokio::test]
async fn openapi_documents_only_routes_that_exist() {
    let app = spawn_app().await;
    let doc = tribute_server::openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    let placeholder = regex::Regex::new(r"\{[a-z_]+\}").expect("a regex");
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = placeholder.replace_all(path, "xyz_0");
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method != Method::GET).then(|| json!({}));
            let reply = match concrete.strip_prefix("/api/v1") {
                Some(under_v1) => {
                    app.api(
                        method.clone(),
                        under_v1,
                        Some(&app.admin_key),
                        body.as_ref(),
                    )
                    .await
                }
                // The hook URL providers call, outside the API and its keys.
                None => {
                    let mut request = app.client.request(method.clone(), app.url(&concrete));
                    if let Some(body) = &body {
                        request = request.json(body);
                    }
                    common::Reply::read(request.send().await.expect("sending a request")).await
                }
            };
            assert_ne!(
                reply.status.as_u16(),
                405,
                "{method} {path}: {}",
                reply.text
            );
            assert_ne!(
                reply.body["error"]["message"], "route not found",
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 25, "checked {checked} operations");
    app.finish().await;
}

/// Resolve a `$ref` of the document (or return the schema itself).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Every request body of the document, with the operation it belongs to.
fn request_bodies(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        // A provider's payload at its hook URL is the provider's, not the API's.
        if !path.starts_with("/api/v1") {
            continue;
        }
        for (method, op) in ops.as_object().expect("operations") {
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            if body.is_null() {
                continue;
            }
            let body = resolve(doc, body);
            let alternatives = match body["oneOf"].as_array() {
                Some(list) => list.iter().map(|s| resolve(doc, s)).collect(),
                None => vec![body],
            };
            for schema in alternatives {
                out.push((format!("{method} {path}"), schema));
            }
        }
    }
    out
}

#[test]
fn request_bodies_refuse_unknown_fields_and_never_take_ids_or_creation_times() {
    let doc = tribute_server::openapi::document();
    let bodies = request_bodies(&doc);
    assert!(bodies.len() >= 13, "only {} request bodies", bodies.len());
    for (op, schema) in bodies {
        assert_eq!(schema["additionalProperties"], false, "{op}");
        let props = schema["properties"].as_object().expect("properties");
        for read_only in ["id", "created_at", "received_at", "short_url"] {
            assert!(!props.contains_key(read_only), "{op} takes `{read_only}`");
        }
    }
    // What the server sets is marked so in what it answers.
    let schemas = &doc["components"]["schemas"];
    for name in ["Program", "Partner", "Link", "Coupon", "Conversion"] {
        assert_eq!(
            schemas[name]["properties"]["id"]["readOnly"], true,
            "{name}.id"
        );
    }
}

/// Every id pattern of the document is one of core's prefixes and matches
/// the ids core makes with it, and only those.
#[test]
fn documented_id_patterns_match_the_ids_the_server_makes() {
    use tribute_core::ids::{
        ApiKeyId, CommissionId, ConversionId, CouponId, EntryId, EventId, FxRateId,
        InboundDeliveryId, IntegrationId, LinkId, MessageId, NoticeId, PartnerId, PayoutId,
        PayoutRequestId, PersonId, ProgramId, RefundId, RewardRuleId, TierId, WebhookDeliveryId,
        WebhookEndpointId,
    };
    let made = [
        (ApiKeyId::PREFIX, ApiKeyId::generate().to_string()),
        (ProgramId::PREFIX, ProgramId::generate().to_string()),
        (PartnerId::PREFIX, PartnerId::generate().to_string()),
        (LinkId::PREFIX, LinkId::generate().to_string()),
        (CouponId::PREFIX, CouponId::generate().to_string()),
        (ConversionId::PREFIX, ConversionId::generate().to_string()),
        (EventId::PREFIX, EventId::generate_ordered(0).to_string()),
        (RewardRuleId::PREFIX, RewardRuleId::generate().to_string()),
        (TierId::PREFIX, TierId::generate().to_string()),
        (FxRateId::PREFIX, FxRateId::generate().to_string()),
        (PayoutId::PREFIX, PayoutId::generate().to_string()),
        (
            PayoutRequestId::PREFIX,
            PayoutRequestId::generate().to_string(),
        ),
        (CommissionId::PREFIX, CommissionId::generate().to_string()),
        (RefundId::PREFIX, RefundId::generate().to_string()),
        (EntryId::PREFIX, EntryId::generate_ordered(0).to_string()),
        (PersonId::PREFIX, PersonId::generate().to_string()),
        (IntegrationId::PREFIX, IntegrationId::generate().to_string()),
        (
            InboundDeliveryId::PREFIX,
            InboundDeliveryId::generate_ordered(0).to_string(),
        ),
        (
            WebhookEndpointId::PREFIX,
            WebhookEndpointId::generate().to_string(),
        ),
        (
            MessageId::PREFIX,
            MessageId::generate_ordered(0).to_string(),
        ),
        (
            WebhookDeliveryId::PREFIX,
            WebhookDeliveryId::generate_ordered(0).to_string(),
        ),
        (NoticeId::PREFIX, NoticeId::generate_ordered(0).to_string()),
    ];
    let doc = tribute_server::openapi::document().to_string();
    let id_pattern =
        regex::Regex::new(r#""pattern":"\^([a-z]+)_\[A-Za-z0-9\]\{1,64\}\$""#).expect("a regex");
    let mut seen = 0;
    for found in id_pattern.captures_iter(&doc) {
        let prefix = &found[1];
        let pattern =
            regex::Regex::new(&format!("^{prefix}_[A-Za-z0-9]{{1,64}}$")).expect("a regex");
        let (_, id) = made
            .iter()
            .find(|(p, _)| *p == prefix)
            .unwrap_or_else(|| panic!("`{prefix}_` is not a prefix core makes"));
        assert!(pattern.is_match(id), "{prefix}: {id}");
        for (other, id) in made.iter().filter(|(p, _)| *p != prefix) {
            assert!(
                !pattern.is_match(id),
                "{prefix} pattern matches a {other} id"
            );
        }
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} id patterns");
}

/// The documented paging bounds are the server's: the largest documented
/// `limit` is served, one more is a 400 naming `limit`; the same for `offset` below 0.
#[tokio::test]
async fn documented_paging_bounds_are_the_servers() {
    let app = spawn_app().await;
    let doc = tribute_server::openapi::document();
    // The records whose lists are paged (`/…/{id}/deliveries`).
    let seed = app.seed().await;
    let endpoint = app
        .post(
            "/webhook-endpoints",
            &app.admin_key,
            &json!({"program_id": seed.program_id, "url": "https://hooks.example.com/t"}),
        )
        .await
        .ok(201)["id"]
        .clone();
    let integration = app
        .post(
            "/integrations",
            &app.admin_key,
            &json!({"program_id": seed.program_id, "kind": "stripe", "secret": "whsec_paging"}),
        )
        .await
        .ok(201)["id"]
        .clone();
    let records = [
        (
            "/webhook-endpoints/{id}/",
            endpoint.as_str().expect("an id"),
        ),
        ("/integrations/{id}/", integration.as_str().expect("an id")),
    ];
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(params) = ops["get"]["parameters"].as_array() else {
            continue;
        };
        let Some(limit) = params.iter().find(|p| p["name"] == "limit") else {
            continue;
        };
        let offset = params
            .iter()
            .find(|p| p["name"] == "offset")
            .expect("offset");
        let max = limit["schema"]["maximum"]
            .as_i64()
            .expect("a maximum limit");
        let min = limit["schema"]["minimum"]
            .as_i64()
            .expect("a minimum limit");
        let least_offset = offset["schema"]["minimum"]
            .as_i64()
            .expect("a minimum offset");
        let mut under_v1 = path.strip_prefix("/api/v1").unwrap().to_owned();
        for (template, id) in records {
            under_v1 = under_v1.replace(template, &template.replace("{id}", id));
        }
        assert!(!under_v1.contains('{'), "{path}: no record to list");
        app.get(&format!("{under_v1}?limit={max}"), &app.admin_key)
            .await
            .ok(200);
        app.get(&format!("{under_v1}?limit={min}"), &app.admin_key)
            .await
            .ok(200);
        for (query, field) in [
            (format!("limit={}", max + 1), "limit"),
            (format!("limit={}", min - 1), "limit"),
            (format!("offset={}", least_offset - 1), "offset"),
        ] {
            app.get(&format!("{under_v1}?{query}"), &app.admin_key)
                .await
                .assert_error(400, Some(field), &format!("{path}?{query}"));
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} lists");
    app.finish().await;
}

/// The what-if's `model` is required in the document, as in the server.
#[tokio::test]
async fn what_if_requires_a_model_in_the_document_and_the_server() {
    let app = spawn_app().await;
    let doc = tribute_server::openapi::document();
    let params = doc["paths"]["/api/v1/conversions/{id}/attribution"]["post"]["parameters"]
        .as_array()
        .expect("parameters");
    let model = params.iter().find(|p| p["name"] == "model").expect("model");
    assert_eq!(model["required"], true);
    let seed = app.seed().await;
    let conversion = app
        .post(
            "/conversions",
            &app.admin_key,
            &json!({"program_id": seed.program_id, "value": 100, "currency": "EUR"}),
        )
        .await
        .ok(201)
        .clone();
    let id = conversion["id"].as_str().expect("an id");
    app.api(
        Method::POST,
        &format!("/conversions/{id}/attribution"),
        Some(&app.admin_key),
        None,
    )
    .await
    .assert_error(422, Some("model"), "what-if without a model");
    app.finish().await;
}

// --- where the server, not the document, was wrong --------------------------

/// serde fills a struct from a JSON array too: `[null, null]` was a PATCH
/// that changed nothing and answered 200.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_a_400_and_changes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let coupon = app
        .post(
            "/coupons",
            &app.admin_key,
            &json!({"partner_id": seed.alice.id, "code": "ALICE10"}),
        )
        .await
        .ok(201)
        .clone();
    let id = coupon["id"].as_str().expect("an id");
    for body in [json!([null, null]), json!(["BOB10"]), json!(3), json!("x")] {
        app.patch(&format!("/coupons/{id}"), &app.admin_key, &body)
            .await
            .assert_error(400, None, &format!("PATCH with {body}"));
        app.post("/programs", &app.admin_key, &body)
            .await
            .assert_error(400, None, &format!("POST with {body}"));
    }
    let after = app.get(&format!("/coupons/{id}"), &app.admin_key).await;
    for field in ["code", "partner_id"] {
        assert_eq!(after.ok(200)[field], coupon[field], "{field} changed");
    }
    app.finish().await;
}

/// JSON has one kind of number, and JSON Schema counts `30.0` as an
/// integer: a client that writes it gets what it meant, not a 400.
#[tokio::test]
async fn whole_numbers_written_with_a_fraction_are_read_as_integers() {
    let app = spawn_app().await;
    let program = app
        .post(
            "/programs",
            &app.admin_key,
            &json!({"name": "Floats", "currency": "EUR", "window_days": 45.0, "hold_days": 0.0}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(
        (
            program["window_days"].as_i64(),
            program["hold_days"].as_i64()
        ),
        (Some(45), Some(0))
    );
    let before = app.count("/programs").await;
    app.post(
        "/programs",
        &app.admin_key,
        &json!({"name": "Half", "currency": "EUR", "window_days": 45.5}),
    )
    .await
    .assert_error(400, Some("window_days"), "a fraction");
    assert_eq!(app.count("/programs").await, before, "written");
    app.finish().await;
}

/// Limits said in characters count characters: 200 `é` (400 bytes) were
/// refused as longer than 200 characters.
#[tokio::test]
async fn text_limits_count_characters_not_bytes() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let at_limit = "é".repeat(200);
    let over = "é".repeat(201);
    for field in ["external_id", "user_id", "customer_id"] {
        let mut body = json!({"program_id": seed.program_id, "value": 100, "currency": "EUR"});
        body[field] = json!(at_limit);
        app.post("/conversions", &app.admin_key, &body)
            .await
            .ok(201);
        body[field] = json!(over);
        app.post("/conversions", &app.admin_key, &body)
            .await
            .assert_error(422, Some(field), &format!("{field} of 201 characters"));
    }
    app.finish().await;
}

/// A field beside `batch` was silently dropped.
#[tokio::test]
async fn a_field_beside_an_event_batch_is_a_400_naming_it_and_stores_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let event = json!({"type": "page_view", "anonymous_id": "a1", "program_id": seed.program_id});
    app.post(
        "/events",
        &app.admin_key,
        &json!({"batch": [event], "type": "lead"}),
    )
    .await
    .assert_error(400, Some("type"), "a field beside batch");
    assert_eq!(app.event_count(&seed.program_id).await, 0);
    app.post("/events", &app.admin_key, &json!({"batch": [event]}))
        .await
        .ok(202);
    app.finish().await;
}
