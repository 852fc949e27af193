//! Black-box tests of API validation: a refused body is a 400, 409 or 422
//! naming the field (or no field, for malformed JSON), always as a JSON
//! error, and writes nothing.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use reqwest::Method;
use serde_json::json;

use common::{spawn_app, str_of};

// --- validation -------------------------------------------------------

#[tokio::test]
async fn a_destination_off_the_allowed_domains_is_refused_with_422_and_nothing_written() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    app.create_link(&seed.alice.id, json!({})).await;

    for destination in [
        "https://evil.test/",
        "https://acme.test.evil.test/",
        "https://notacme.test/",
        "javascript:alert(1)",
        "ftp://acme.test/file",
        "//acme.test/",
        "https://user:secret@acme.test/",
        "acme.test",
    ] {
        let reply = app
            .post(
                "/links",
                &app.admin_key,
                &json!({"partner_id": seed.alice.id, "destination": destination}),
            )
            .await;
        reply.assert_error(422, Some("destination"), destination);
        assert_eq!(app.count("/links").await, 1, "case {destination}: written");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_body_missing_a_required_field_is_a_400_naming_it_and_writes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let cases = [
        ("/programs", json!({"name": "No currency"}), "currency"),
        ("/programs", json!({"currency": "EUR"}), "name"),
        (
            "/partners",
            json!({"program_id": seed.program_id, "name": "Carol"}),
            "slug",
        ),
        (
            "/partners",
            json!({"slug": "carol", "name": "Carol"}),
            "program_id",
        ),
        (
            "/links",
            json!({"partner_id": seed.alice.id}),
            "destination",
        ),
    ];
    for (path, body, field) in cases {
        let before = app.count(path).await;
        let reply = app.post(path, &app.admin_key, &body).await;
        reply.assert_error(400, Some(field), &format!("{path} without {field}"));
        assert_eq!(app.count(path).await, before, "{path}: written");
    }
    app.finish().await;
}

/// An unknown field is named once, by its own name.
#[tokio::test]
async fn a_body_with_an_unknown_field_is_a_400_naming_it_and_writes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let cases = [
        (
            "/programs",
            json!({"name": "Acme 2", "currency": "EUR", "colour": "red"}),
            "colour",
        ),
        (
            "/partners",
            json!({"program_id": seed.program_id, "slug": "carol", "name": "Carol", "nickname": "C"}),
            "nickname",
        ),
        (
            "/links",
            json!({"partner_id": seed.alice.id, "destination": "https://acme.test/", "url": "x"}),
            "url",
        ),
    ];
    for (path, body, field) in cases {
        let before = app.count(path).await;
        let reply = app.post(path, &app.admin_key, &body).await;
        reply.assert_error(400, Some(field), &format!("{path} with {field}"));
        assert_eq!(app.count(path).await, before, "{path}: written");
    }

    let partner = format!("/partners/{}", seed.alice.id);
    app.patch(
        &partner,
        &app.admin_key,
        &json!({"name": "Eve", "nmae": "Eve"}),
    )
    .await
    .assert_error(400, Some("nmae"), "PATCH with nmae");
    let stored = app.get(&partner, &app.admin_key).await;
    assert_eq!(
        stored.ok(200)["name"],
        "ALICE",
        "the refused patch changed nothing"
    );

    // Query parameters are named the same way.
    app.get(
        &format!("{partner}/metrics?form=2026-01-01"),
        &app.admin_key,
    )
    .await
    .assert_error(400, Some("form"), "metrics?form=");
    app.finish().await;
}

#[tokio::test]
async fn a_wrongly_typed_field_is_a_400_naming_it() {
    let app = spawn_app().await;

    let typed = app
        .post(
            "/programs",
            &app.admin_key,
            &json!({"name": "Acme", "currency": "EUR", "window_days": "thirty"}),
        )
        .await;
    typed.assert_error(400, Some("window_days"), "window_days as a string");

    assert_eq!(app.count("/programs").await, 0);
    app.finish().await;
}

/// A syntax error names no field.
#[tokio::test]
async fn malformed_json_is_a_400_naming_no_field() {
    let app = spawn_app().await;

    for body in ["{\"name\": \"Acme\",", "{not json", ""] {
        app.post_raw("/programs", &app.admin_key, body)
            .await
            .assert_error(400, None, body);
    }

    assert_eq!(app.count("/programs").await, 0);
    app.finish().await;
}

/// Errors raised outside the handlers (unknown route, wrong method, a query
/// parameter given twice) are the documented JSON error too.
#[tokio::test]
async fn errors_outside_the_handlers_are_json_errors_too() {
    let app = spawn_app().await;
    let admin = Some(app.admin_key.as_str());

    let cases = [
        (Method::GET, "/nothing-here", 404, None),
        (Method::DELETE, "/programs", 405, None),
        (
            Method::GET,
            "/links?partner_id=ptn_a&partner_id=ptn_b",
            400,
            Some("partner_id"),
        ),
    ];
    for (method, path, status, field) in cases {
        let reply = app.api(method.clone(), path, admin, None).await;
        reply.assert_error(status, field, &format!("{method} {path}"));
    }
    app.finish().await;
}

#[tokio::test]
async fn an_unknown_currency_is_a_422_naming_currency_and_writes_nothing() {
    let app = spawn_app().await;

    for currency in ["XYZ", "EURO", "", "€"] {
        let reply = app
            .post(
                "/programs",
                &app.admin_key,
                &json!({"name": "Acme", "currency": currency}),
            )
            .await;
        reply.assert_error(422, Some("currency"), currency);
    }

    assert_eq!(app.count("/programs").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn an_invalid_slug_is_a_422_naming_slug_and_writes_nothing() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;

    for slug in [
        "Alice", "a", "-alice", "alice-", "al--ice", "al ice", "al/ice",
    ] {
        let reply = app
            .post(
                "/partners",
                &app.admin_key,
                &json!({"program_id": program["id"], "slug": slug, "name": "Alice"}),
            )
            .await;
        reply.assert_error(422, Some("slug"), slug);
    }

    assert_eq!(app.count("/partners").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn a_duplicate_slug_in_a_program_is_a_409_naming_slug_and_writes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let reply = app
        .post(
            "/partners",
            &app.admin_key,
            &json!({"program_id": seed.program_id, "slug": "alice", "name": "Another Alice"}),
        )
        .await;

    reply.assert_error(409, Some("slug"), "duplicate slug");
    assert_eq!(reply.body["error"]["code"], "conflict");
    assert_eq!(app.count("/partners").await, 2);

    // The same slug in another program is fine.
    let other = app.create_program("Other").await;
    app.create_partner(str_of(&other, "id"), "alice").await;
    app.finish().await;
}

#[tokio::test]
async fn a_custom_link_code_already_taken_is_a_409_naming_code_and_writes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    app.create_link(&seed.alice.id, json!({"code": "spring-sale"}))
        .await;

    let reply = app
        .post(
            "/links",
            &app.admin_key,
            &json!({"partner_id": seed.bob.id, "destination": "https://acme.test/", "code": "spring-sale"}),
        )
        .await;

    reply.assert_error(409, Some("code"), "duplicate code");
    assert_eq!(app.count("/links").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn an_invalid_custom_code_or_past_expiry_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let cases = [
        (json!({"code": "a/b"}), "code"),
        (json!({"code": "ab"}), "code"),
        (json!({"expires_at": "2001-01-01T00:00:00Z"}), "expires_at"),
        (json!({"expires_at": "soon"}), "expires_at"),
    ];
    for (fields, field) in cases {
        let mut body = json!({"partner_id": seed.alice.id, "destination": "https://acme.test/"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = app.post("/links", &app.admin_key, &body).await;
        reply.assert_error(422, Some(field), &fields.to_string());
    }

    assert_eq!(app.count("/links").await, 0);
    app.finish().await;
}
