//! `/api/v1/keys`: an admin lists keys (never their secrets) and revokes
//! one, which stops working at once on the node that revoked it.

#[macro_use]
mod common;

use serde_json::Value;
use tribute_core::apikey::Scope;

use common::{insert_key, str_of, TestApp};

on_both_backends!(
    a_key_revoked_through_the_api_stops_working_at_once_on_this_node,
    keys_are_listed_without_their_secrets_and_only_to_admins,
);

async fn key_ids(app: &TestApp) -> Vec<String> {
    let listed = app.get("/keys", &app.admin_key).await;
    listed.ok(200)["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|k| str_of(k, "id").to_owned())
        .collect()
}

async fn a_key_revoked_through_the_api_stops_working_at_once_on_this_node(app: TestApp) {
    let before = key_ids(&app).await;
    let other = insert_key(&app.store, Scope::Admin, None, None).await;
    // Used once, so the node has it in its cache.
    app.get("/programs", &other).await.ok(200);
    let id = key_ids(&app)
        .await
        .into_iter()
        .find(|k| !before.contains(k))
        .expect("the new key is listed");

    let revoked = app
        .post(&format!("/keys/{id}/revoke"), &app.admin_key, &Value::Null)
        .await;
    assert!(
        revoked.ok(200)["revoked_at"].is_string(),
        "{}",
        revoked.text
    );
    app.get("/programs", &other)
        .await
        .assert_error(401, None, "a revoked key, at once");

    // Revoking again answers the same; an unknown key is a 404.
    let again = app
        .post(&format!("/keys/{id}/revoke"), &app.admin_key, &Value::Null)
        .await;
    assert_eq!(again.ok(200)["revoked_at"], revoked.ok(200)["revoked_at"]);
    app.post("/keys/key_unknown/revoke", &app.admin_key, &Value::Null)
        .await
        .assert_error(404, None, "an unknown key");
}

async fn keys_are_listed_without_their_secrets_and_only_to_admins(app: TestApp) {
    let seed = app.seed().await;
    let listed = app.get("/keys", &app.admin_key).await;
    let body = listed.ok(200);
    assert!(
        body["data"].as_array().is_some_and(|d| d.len() >= 3),
        "{body}"
    );
    for secret in [&app.admin_key, &seed.alice.key, &seed.bob.key] {
        assert!(
            !listed.text.contains(secret.as_str()),
            "a token leaked: {}",
            listed.text
        );
    }
    app.get("/keys", &seed.alice.key)
        .await
        .assert_error(403, None, "a partner key listing keys");
    app.post("/keys/key_x/revoke", &seed.alice.key, &Value::Null)
        .await
        .assert_error(403, None, "a partner key revoking");
}
