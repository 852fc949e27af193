//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the HTTP API.
//!
//! Written out here rather than derived, so it reads as the contract, and
//! kept as tight as the server: a request the document allows is one the
//! server accepts (unless it names something that does not exist, or a
//! time that has passed), and a request it forbids is refused. The
//! schemathesis run in `tests/schemathesis.rs` holds both halves to that;
//! `tests/openapi.rs` walks every documented operation against the router.
//!
//! One file per resource; [`schema`] holds the building blocks.

mod attribution;
mod commission_rules;
mod commissions;
mod fraud;
mod hooks;
mod ingest;
mod integrations;
mod keys;
mod links;
mod partners;
mod payouts;
mod programs;
pub mod schema;
mod tiers;
mod webhook_events;
mod webhooks;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use self::schema::{object, string};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}

/// The error every failure answers with (`crate::error::ApiError`).
fn error() -> Value {
    object(
        &[(
            "error",
            object(
                &[
                    ("code", string()),
                    ("message", string()),
                    ("field", schema::nullable(string())),
                ],
                &["code", "message", "field"],
            ),
        )],
        &["error"],
    )
}

pub fn document() -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    schemas.insert("Error".into(), error());
    let parts = [
        (programs::schemas(), programs::paths()),
        (partners::schemas(), partners::paths()),
        (links::schemas(), links::paths()),
        (ingest::schemas(), ingest::paths()),
        (attribution::schemas(), attribution::paths()),
        (keys::schemas(), keys::paths()),
        (commissions::schemas(), commissions::paths()),
        (commission_rules::schemas(), commission_rules::paths()),
        (tiers::schemas(), tiers::paths()),
        (payouts::schemas(), payouts::paths()),
        (webhooks::schemas(), webhooks::paths()),
        (integrations::schemas(), integrations::paths()),
        (fraud::schemas(), fraud::paths()),
        (Vec::new(), hooks::paths()),
    ];
    for (s, p) in parts {
        schemas.extend(s.into_iter().map(|(k, v)| (k.to_owned(), v)));
        paths.extend(p.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    schemas.extend(webhook_events::schemas());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tribute API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Partner tracking, attribution and commissions. Authenticate with \
                `Authorization: Bearer <key>`: admin keys see everything, partner keys only their \
                own partner's records (anything else is 404), ingest keys only send events and \
                conversions. Money is integer minor units. Request bodies refuse fields they do \
                not list; `null` means \"not given\" (in an update: \"clear it\")."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "webhooks": webhook_events::catalogue(),
    })
}
