//! Black-box tests of the JSON API under `/api/v1`: pagination, PATCH
//! semantics, links and their codes, the documented fields of created
//! objects, and the key behaviours once more on each backend.
//!
//! Keys and scoping are in `api_scoping.rs`, validation in `api_validation.rs`.

#[macro_use]
mod common;

use serde_json::{json, Value};

use common::{ids, sorted, spawn_app, str_of, TestApp, PUBLIC_URL};

// --- pagination --------------------------------------------------------

#[tokio::test]
async fn list_pages_say_whether_there_is_more() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for name in ["One", "Two", "Three"] {
        created.push(str_of(&app.create_program(name).await, "id").to_owned());
    }
    let admin = &app.admin_key;

    let first = app.get("/programs?limit=2", admin).await;
    let first = first.ok(200);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["limit"], 2);

    let second = app.get("/programs?limit=2&offset=2", admin).await;
    let second = second.ok(200);
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["has_more"], false);

    // The pages neither overlap nor miss a row.
    let mut paged = ids(first);
    paged.extend(ids(second));
    assert_eq!(
        sorted(paged),
        sorted(created.iter().map(String::as_str).collect())
    );

    let all = app.get("/programs", admin).await;
    assert_eq!(all.ok(200)["has_more"], false);
    app.finish().await;
}

#[tokio::test]
async fn a_limit_or_offset_out_of_range_is_a_400_naming_it() {
    let app = spawn_app().await;
    app.seed().await;

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
    ] {
        for list in ["/programs", "/partners", "/links"] {
            let path = format!("{list}?{query}");
            app.get(&path, &app.admin_key)
                .await
                .assert_error(400, Some(field), &path);
        }
    }
    app.finish().await;
}

// --- PATCH -------------------------------------------------------------

#[tokio::test]
async fn patching_a_partners_tier_to_null_clears_it_and_absent_fields_stay() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let created = app
        .post(
            "/partners",
            &app.admin_key,
            &json!({"program_id": program["id"], "slug": "alice", "name": "Alice", "tier": "gold", "email": "alice@example.com"}),
        )
        .await;
    let path = format!("/partners/{}", str_of(created.ok(201), "id"));

    let renamed = app
        .patch(&path, &app.admin_key, &json!({"name": "Alice A."}))
        .await;
    let renamed = renamed.ok(200);
    assert_eq!(renamed["tier"], "gold", "an absent field is left alone");
    assert_eq!(renamed["name"], "Alice A.");

    let cleared = app
        .patch(&path, &app.admin_key, &json!({"tier": null}))
        .await;
    let cleared = cleared.ok(200);
    assert_eq!(cleared["tier"], Value::Null);
    assert_eq!(cleared["email"], "alice@example.com");

    let stored = app.get(&path, &app.admin_key).await;
    let stored = stored.ok(200);
    assert_eq!(stored["tier"], Value::Null);
    assert_eq!(stored["name"], "Alice A.");
    app.finish().await;
}

#[tokio::test]
async fn an_invalid_partner_patch_changes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let path = format!("/partners/{}", seed.alice.id);

    for (body, status, field) in [
        (json!({"status": "banned"}), 422, "status"),
        (json!({"slug": "Not A Slug"}), 422, "slug"),
        (json!({"slug": "bob"}), 409, "slug"),
        (json!({"team_lead_id": seed.alice.id}), 422, "team_lead_id"),
    ] {
        app.patch(&path, &app.admin_key, &body).await.assert_error(
            status,
            Some(field),
            &body.to_string(),
        );
    }

    let stored = app.get(&path, &app.admin_key).await;
    let stored = stored.ok(200);
    assert_eq!(stored["slug"], "alice");
    assert_eq!(stored["name"], "ALICE");
    assert_eq!(stored["status"], "active");
    assert_eq!(stored["team_lead_id"], Value::Null);
    app.finish().await;
}

#[tokio::test]
async fn changing_a_programs_currency_is_refused_with_422() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let path = format!("/programs/{}", str_of(&program, "id"));

    let reply = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"currency": "USD", "name": "Renamed"}),
        )
        .await;
    reply.assert_error(422, Some("currency"), "EUR to USD");

    // Restating the same currency is not a change.
    let same = app
        .patch(
            &path,
            &app.admin_key,
            &json!({"currency": "eur", "hold_days": 14}),
        )
        .await;
    assert_eq!(same.ok(200)["hold_days"], 14);

    let stored = app.get(&path, &app.admin_key).await;
    let stored = stored.ok(200);
    assert_eq!(stored["currency"], "EUR");
    assert_eq!(stored["name"], "Acme", "the refused patch changed nothing");
    app.finish().await;
}

#[tokio::test]
async fn patching_a_link_to_a_disallowed_destination_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let link = app
        .create_link(
            &seed.alice.id,
            json!({"destination": "https://acme.test/ok"}),
        )
        .await;
    let path = format!("/links/{}", str_of(&link, "id"));

    let reply = app
        .patch(
            &path,
            &seed.alice.key,
            &json!({"destination": "https://evil.test/", "campaign": "x"}),
        )
        .await;
    reply.assert_error(422, Some("destination"), "evil destination");

    let stored = app.get(&path, &app.admin_key).await;
    let stored = stored.ok(200);
    assert_eq!(stored["destination"], "https://acme.test/ok");
    assert_eq!(stored["campaign"], Value::Null);
    app.finish().await;
}

// --- links and their codes ----------------------------------------------

#[tokio::test]
async fn a_link_with_a_custom_code_has_its_short_url_on_the_public_url() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let link = app
        .create_link(&seed.alice.id, json!({"code": "Spring_Sale-2026"}))
        .await;

    assert_eq!(link["code"], "Spring_Sale-2026");
    assert_eq!(
        link["short_url"],
        format!("{PUBLIC_URL}/r/Spring_Sale-2026")
    );
    let shown = app
        .get(&format!("/links/{}", str_of(&link, "id")), &seed.alice.key)
        .await;
    assert_eq!(shown.ok(200)["short_url"], link["short_url"]);
    app.finish().await;
}

#[tokio::test]
async fn generated_link_codes_are_at_least_seven_base62_characters_and_distinct() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let mut codes = std::collections::HashSet::new();
    for _ in 0..5 {
        let link = app.create_link(&seed.alice.id, json!({})).await;
        let code = str_of(&link, "code").to_owned();
        assert!(code.len() >= 7, "{code} is too short to be unguessable");
        assert!(
            code.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{code} is not base62"
        );
        assert_eq!(link["short_url"], format!("{PUBLIC_URL}/r/{code}"));
        codes.insert(code);
    }
    assert_eq!(codes.len(), 5);
    app.finish().await;
}

#[tokio::test]
async fn utm_parameters_are_generated_from_the_partner_and_link_unless_given() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let generated = app
        .create_link(
            &seed.alice.id,
            json!({"source": "social", "campaign": "spring", "content": "banner"}),
        )
        .await;
    assert_eq!(
        generated["utm"],
        json!({"source": "alice", "medium": "social", "campaign": "spring", "content": "banner"})
    );

    let overridden = app
        .create_link(
            &seed.alice.id,
            json!({"source": "social", "utm_source": "partners", "utm_medium": "referral"}),
        )
        .await;
    assert_eq!(overridden["utm"]["source"], "partners");
    assert_eq!(overridden["utm"]["medium"], "referral");
    app.finish().await;
}

#[tokio::test]
async fn created_objects_come_back_with_their_id_and_documented_fields() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let program = &seed.program;
    assert!(str_of(program, "id").starts_with("prg_"));
    assert_eq!(program["name"], "Acme");
    assert_eq!(program["currency"], "EUR");
    assert_eq!(program["allowed_domains"], json!(["acme.test"]));

    let lead = app
        .get(&format!("/partners/{}", seed.alice.id), &app.admin_key)
        .await;
    let partner = app
        .post(
            "/partners",
            &app.admin_key,
            &json!({
                "program_id": seed.program_id,
                "slug": "carol",
                "name": "Carol",
                "email": "carol@example.com",
                "tier": "silver",
                "team_lead_id": lead.ok(200)["id"],
            }),
        )
        .await;
    let partner = partner.ok(201);
    assert!(str_of(partner, "id").starts_with("ptn_"));
    for (field, value) in [
        ("program_id", json!(seed.program_id)),
        ("slug", json!("carol")),
        ("name", json!("Carol")),
        ("email", json!("carol@example.com")),
        ("tier", json!("silver")),
        ("team_lead_id", json!(seed.alice.id)),
        ("status", json!("active")),
    ] {
        assert_eq!(partner[field], value, "partner field {field}: {partner}");
    }

    let link = app
        .create_link(
            str_of(partner, "id"),
            json!({"source": "email", "medium": "newsletter", "campaign": "c", "content": "x"}),
        )
        .await;
    assert!(str_of(&link, "id").starts_with("lnk_"));
    for field in [
        "program_id",
        "partner_id",
        "destination",
        "source",
        "medium",
        "campaign",
        "content",
        "code",
        "short_url",
        "expires_at",
    ] {
        assert!(
            link.get(field).is_some(),
            "link field {field} missing: {link}"
        );
    }
    app.finish().await;
}

// The key behaviours once more, on each backend (PostgreSQL too).
on_both_backends!(
    programs_partners_and_links_are_created_listed_and_guarded,
    invalid_input_writes_nothing
);

async fn programs_partners_and_links_are_created_listed_and_guarded(app: TestApp) {
    let seed = app.seed().await;
    let alices = app
        .post(
            "/links",
            &seed.alice.key,
            &json!({"destination": "https://acme.test/", "code": "alice-link"}),
        )
        .await;
    let alices = alices.ok(201).clone();
    assert_eq!(alices["short_url"], format!("{PUBLIC_URL}/r/alice-link"));
    let bobs = app.create_link(&seed.bob.id, json!({})).await;

    assert_eq!(
        ids(app.get("/partners", &seed.alice.key).await.ok(200)),
        vec![seed.alice.id.as_str()]
    );
    app.get(&format!("/links/{}", str_of(&bobs, "id")), &seed.alice.key)
        .await
        .assert_error(404, None, "Bob's link");
    app.get(
        &format!("/partners/{}/metrics", seed.bob.id),
        &seed.alice.key,
    )
    .await
    .assert_error(404, None, "Bob's metrics");
    app.get(&format!("/links/{}", str_of(&bobs, "id")), &app.admin_key)
        .await
        .ok(200);
    assert_eq!(app.count("/links").await, 2);
    let page = app.get("/links?limit=1", &app.admin_key).await;
    assert_eq!(page.ok(200)["has_more"], true);

    let cleared = app
        .patch(
            &format!("/partners/{}", seed.bob.id),
            &app.admin_key,
            &json!({"tier": null, "group": "agencies"}),
        )
        .await;
    assert_eq!(cleared.ok(200)["group"], "agencies");
    app.finish().await;
}

async fn invalid_input_writes_nothing(app: TestApp) {
    let seed = app.seed().await;
    app.create_link(&seed.alice.id, json!({"code": "taken"}))
        .await;

    app.post(
        "/links",
        &app.admin_key,
        &json!({"partner_id": seed.alice.id, "destination": "https://evil.test/"}),
    )
    .await
    .assert_error(422, Some("destination"), "disallowed destination");
    app.post(
        "/links",
        &app.admin_key,
        &json!({"partner_id": seed.bob.id, "destination": "https://acme.test/", "code": "taken"}),
    )
    .await
    .assert_error(409, Some("code"), "duplicate code");
    app.post(
        "/partners",
        &app.admin_key,
        &json!({"program_id": seed.program_id, "slug": "bob", "name": "Bob 2"}),
    )
    .await
    .assert_error(409, Some("slug"), "duplicate slug");
    app.post(
        "/programs",
        &app.admin_key,
        &json!({"name": "Acme", "currency": "ZZZ"}),
    )
    .await
    .assert_error(422, Some("currency"), "bad currency");

    assert_eq!(app.count("/links").await, 1);
    assert_eq!(app.count("/partners").await, 2);
    assert_eq!(app.count("/programs").await, 1);
    app.finish().await;
}
