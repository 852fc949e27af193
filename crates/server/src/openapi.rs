//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP API.
//!
//! Written out here rather than derived, so it reads as the contract; the
//! test `openapi_documents_only_routes_that_exist` walks every documented
//! operation against the running router, so the document cannot name a
//! route that does not exist.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}

fn obj(props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

fn s() -> Value {
    json!({"type": "string"})
}
fn s_opt() -> Value {
    json!({"type": ["string", "null"]})
}
fn int() -> Value {
    json!({"type": "integer", "format": "int64"})
}
fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn list_of(name: &str) -> Value {
    obj(
        &[
            ("data", json!({"type": "array", "items": schema(name)})),
            ("limit", int()),
            ("offset", int()),
            ("has_more", json!({"type": "boolean"})),
        ],
        &["data", "limit", "offset", "has_more"],
    )
}

/// One operation: summary, path/query parameters, body schema, success status and schema.
fn op(
    summary: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
    status: &str,
    out: Value,
) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, place)| json!({"name": name, "in": place, "required": *place == "path", "schema": {"type": "string"}}))
        .collect();
    let mut o = json!({
        "summary": summary,
        "parameters": parameters,
        "responses": {
            status: {"description": "success", "content": {"application/json": {"schema": out}}},
            "4XX": {"description": "bad input, missing key, or not found; names the field",
                    "content": {"application/json": {"schema": schema("Error")}}}
        }
    });
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    o
}

const PAGE: [(&str, &str); 2] = [("limit", "query"), ("offset", "query")];

pub fn document() -> Value {
    let id = [("id", "path")];
    let with_page = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        PAGE.iter().chain(extra).copied().collect()
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tribute API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Partner tracking, attribution and commissions. Authenticate with `Authorization: Bearer <key>`: admin keys see everything, partner keys only their own partner's records (anything else is 404), ingest keys only send events and conversions. Money is integer minor units."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": obj(&[("error", obj(&[("code", s()), ("message", s()), ("field", s_opt())], &["code", "message"]))], &["error"]),
                "Program": obj(&[("id", s()), ("name", s()), ("currency", s()), ("allowed_domains", json!({"type": "array", "items": s()})),
                    ("default_model", s()), ("window_days", int()), ("cookie_days", int()), ("hold_days", int()), ("created_at", time())], &["id", "name", "currency"]),
                "Partner": obj(&[("id", s()), ("program_id", s()), ("slug", s()), ("name", s()), ("email", s_opt()),
                    ("status", json!({"enum": ["pending", "active", "suspended"]})), ("tier", s_opt()), ("group", s_opt()),
                    ("team_lead_id", s_opt()), ("created_at", time())], &["id", "program_id", "slug", "name", "status"]),
                "Link": obj(&[("id", s()), ("program_id", s()), ("partner_id", s()), ("code", s()), ("short_url", s()), ("destination", s()),
                    ("source", s_opt()), ("medium", s_opt()), ("campaign", s_opt()), ("content", s_opt()),
                    ("utm", json!({"type": "object"})), ("expires_at", json!({"type": ["string", "null"], "format": "date-time"})), ("created_at", time())],
                    &["id", "partner_id", "code", "short_url", "destination"]),
                "Coupon": obj(&[("id", s()), ("program_id", s()), ("partner_id", s()), ("code", s()), ("created_at", time())], &["id", "partner_id", "code"]),
                "Metrics": obj(&[("partner_id", s()), ("from", time()), ("to", time()), ("clicks", int()), ("unique_clicks", int()), ("bot_clicks", int()),
                    ("by_source", json!({"type": "array", "items": obj(&[("source", s()), ("clicks", int()), ("unique_clicks", int()), ("bot_clicks", int())], &[])}))],
                    &["clicks", "unique_clicks", "bot_clicks", "by_source"]),
                "Event": obj(&[("type", json!({"enum": ["page_view", "lead", "demo_request", "signup", "identify", "custom"]})), ("event_id", s()), ("name", s()),
                    ("anonymous_id", s()), ("user_id", s()), ("email", s()), ("email_hash", s()), ("customer_id", s()), ("phone", s()), ("phone_hash", s()),
                    ("click_id", s()), ("via", s()), ("partner_id", s()), ("occurred_at", time()), ("properties", json!({"type": "object"})), ("program_id", s())], &["type"]),
                "ConversionInput": obj(&[("program_id", s()), ("external_id", s()), ("value", int()), ("currency", s()),
                    ("status", json!({"enum": ["pending", "approved", "rejected"]})),
                    ("products", json!({"type": "array", "items": obj(&[("sku", s()), ("quantity", int()), ("amount", int())], &["sku", "amount"])})),
                    ("anonymous_id", s()), ("user_id", s()), ("email", s()), ("email_hash", s()), ("customer_id", s()), ("phone", s()), ("phone_hash", s()),
                    ("click_id", s()), ("coupon", s()), ("occurred_at", time())], &["value", "currency"]),
                "Conversion": obj(&[("id", s()), ("program_id", s()), ("external_id", s_opt()), ("status", s()), ("value", int()), ("currency", s()),
                    ("occurred_at", time()), ("received_at", time()),
                    ("partners", json!({"type": "array", "items": obj(&[("partner_id", s()), ("slug", s()), ("share", s()), ("share_ratio", json!({"type": "number"})), ("amount", int())], &[])})),
                    ("attribution", json!({"type": "object", "description": "model, window, touches counted and excluded with reasons (admins only)"})),
                    ("summary", s())], &["id", "value", "currency", "partners"]),
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/programs": {
                "get": op("List programs", &PAGE, None, "200", list_of("Program")),
                "post": op("Create a program", &[], Some(obj(&[("name", s()), ("currency", s()), ("allowed_domains", json!({"type": "array", "items": s()})),
                    ("default_model", s()), ("window_days", int()), ("cookie_days", int()), ("hold_days", int())], &["name", "currency"])), "201", schema("Program")),
            },
            "/api/v1/programs/{id}": {
                "get": op("Get a program", &id, None, "200", schema("Program")),
                "patch": op("Update a program (currency cannot change)", &id, Some(schema("Program")), "200", schema("Program")),
            },
            "/api/v1/programs/{id}/tracking": {
                "get": op("Tracking settings and postback URL", &id, None, "200", json!({"type": "object"})),
                "patch": op("Replace tracking settings", &id, Some(json!({"type": "object"})), "200", json!({"type": "object"})),
            },
            "/api/v1/partners": {
                "get": op("List partners (a partner key sees itself)", &with_page(&[("program_id", "query")]), None, "200", list_of("Partner")),
                "post": op("Create a partner", &[], Some(schema("Partner")), "201", schema("Partner")),
            },
            "/api/v1/partners/{id}": {
                "get": op("Get a partner", &id, None, "200", schema("Partner")),
                "patch": op("Update a partner (null clears a field)", &id, Some(schema("Partner")), "200", schema("Partner")),
            },
            "/api/v1/partners/{id}/metrics": {
                "get": op("Click metrics over [from, to)", &[("id", "path"), ("from", "query"), ("to", "query")], None, "200", schema("Metrics")),
            },
            "/api/v1/links": {
                "get": op("List links", &with_page(&[("program_id", "query"), ("partner_id", "query")]), None, "200", list_of("Link")),
                "post": op("Create a tracked link", &[], Some(schema("Link")), "201", schema("Link")),
            },
            "/api/v1/links/{id}": {
                "get": op("Get a link", &id, None, "200", schema("Link")),
                "patch": op("Update a link", &id, Some(schema("Link")), "200", schema("Link")),
            },
            "/api/v1/coupons": {
                "get": op("List coupons", &with_page(&[("program_id", "query"), ("partner_id", "query")]), None, "200", list_of("Coupon")),
                "post": op("Create a coupon", &[], Some(schema("Coupon")), "201", schema("Coupon")),
            },
            "/api/v1/coupons/{id}": {
                "get": op("Get a coupon", &id, None, "200", schema("Coupon")),
                "patch": op("Update a coupon", &id, Some(schema("Coupon")), "200", schema("Coupon")),
            },
            "/api/v1/events": {
                "post": op("Send one event or {\"batch\": [...]} (idempotent by event_id)", &[], Some(json!({"oneOf": [schema("Event"),
                    obj(&[("batch", json!({"type": "array", "items": schema("Event")}))], &["batch"])]})), "202",
                    obj(&[("accepted", int()), ("duplicates", int()), ("ids", json!({"type": "array", "items": s()}))], &[])),
            },
            "/api/v1/conversions": {
                "get": op("List conversions", &with_page(&[("program_id", "query"), ("partner_id", "query"), ("status", "query"), ("from", "query"), ("to", "query")]),
                    None, "200", list_of("Conversion")),
                "post": op("Record a conversion (idempotent by external_id or Idempotency-Key)", &[("Idempotency-Key", "header")],
                    Some(schema("ConversionInput")), "201", schema("Conversion")),
            },
            "/api/v1/conversions/{id}": {
                "get": op("Get a conversion", &id, None, "200", schema("Conversion")),
            },
            "/api/v1/conversions/{id}/attribution": {
                "post": op("What-if: attribute under another model, changing nothing",
                    &[("id", "path"), ("model", "query"), ("window_days", "query"), ("half_life_days", "query")], None, "200", json!({"type": "object"})),
            },
            "/api/v1/attribution/compare": {
                "get": op("Credit per partner under each model over a period",
                    &[("program_id", "query"), ("from", "query"), ("to", "query"), ("models", "query"), ("window_days", "query"), ("half_life_days", "query")],
                    None, "200", json!({"type": "object"})),
            },
            "/api/v1/attribution/fits": {
                "get": op("The latest fit of a data-driven model", &[("program_id", "query"), ("model", "query")], None, "200", json!({"type": "object"})),
                "post": op("Fit markov or shapley over a chosen period", &[], Some(obj(&[("program_id", s()), ("model", s()), ("from", time()), ("to", time()),
                    ("markov_order", int())], &["program_id", "model"])), "201", json!({"type": "object"})),
            },
        }
    })
}
