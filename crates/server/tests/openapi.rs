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
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "xyz_0");
        let under_v1 = concrete
            .strip_prefix("/api/v1")
            .expect("documented under /api/v1");
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method != Method::GET).then(|| json!({}));
            let reply = app
                .api(
                    method.clone(),
                    under_v1,
                    Some(&app.admin_key),
                    body.as_ref(),
                )
                .await;
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
