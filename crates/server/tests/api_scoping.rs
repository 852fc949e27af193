//! Black-box tests of API keys and what each may see: a request without a
//! valid key is a 401, a partner key sees and creates only its own records
//! (another partner's answer 404), admin-only endpoints answer 403 to a
//! partner key, and an ingest key may not read the API.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use reqwest::Method;
use serde_json::{json, Value};
use tribute_core::apikey::Scope;
use tribute_core::ids::ProgramId;

use common::{ids, insert_key, sorted, spawn_app, str_of};

// --- keys --------------------------------------------------------------

#[tokio::test]
async fn requests_without_a_key_or_with_a_wrong_key_get_a_401_json_error() {
    let app = spawn_app().await;
    app.seed().await;

    let none = app.api(Method::GET, "/partners", None, None).await;
    none.assert_error(401, None, "no key");
    assert_eq!(none.body["error"]["code"], "unauthorized");

    let wrong = app
        .api(Method::GET, "/partners", Some("trb_admin_notakey"), None)
        .await;
    wrong.assert_error(401, None, "wrong key");

    let basic = app
        .client
        .get(app.url("/api/v1/partners"))
        .header("authorization", format!("Basic {}", app.admin_key))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 401, "a key must come as a bearer");

    let write = app
        .api(
            Method::POST,
            "/programs",
            None,
            Some(&json!({"name": "X", "currency": "EUR"})),
        )
        .await;
    write.assert_error(401, None, "create without a key");
    assert_eq!(app.count("/programs").await, 1, "nothing was written");
    app.finish().await;
}

#[tokio::test]
async fn a_partner_key_lists_only_its_own_partner() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let own = app.get("/partners", &seed.alice.key).await;
    assert_eq!(ids(own.ok(200)), vec![seed.alice.id.as_str()]);

    let filtered = app
        .get(
            &format!("/partners?program_id={}", seed.program_id),
            &seed.alice.key,
        )
        .await;
    assert_eq!(ids(filtered.ok(200)), vec![seed.alice.id.as_str()]);

    let shown = app
        .get(&format!("/partners/{}", seed.alice.id), &seed.alice.key)
        .await;
    assert_eq!(shown.ok(200)["slug"], "alice");
    app.finish().await;
}

#[tokio::test]
async fn a_partner_key_gets_404_for_another_partners_record_link_and_metrics() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let bobs = app.create_link(&seed.bob.id, json!({})).await;
    let bobs_link = str_of(&bobs, "id");
    let alice = &seed.alice.key;

    for path in [
        format!("/partners/{}", seed.bob.id),
        format!("/partners/{}/metrics", seed.bob.id),
        format!("/links/{bobs_link}"),
        format!("/links?partner_id={}", seed.bob.id),
    ] {
        let reply = app.get(&path, alice).await;
        reply.assert_error(404, None, &path);
        assert!(
            !reply.text.contains(&seed.bob.id) && !reply.text.contains("bob"),
            "{path}: the 404 leaks Bob's data: {}",
            reply.text
        );
    }

    // Another partner's record answers exactly like one that does not exist.
    let missing = app.get("/partners/ptn_doesnotexist", alice).await;
    let bobs_record = app.get(&format!("/partners/{}", seed.bob.id), alice).await;
    assert_eq!(missing.body, bobs_record.body);

    // Nor may Alice change Bob's link.
    let patch = app
        .patch(
            &format!("/links/{bobs_link}"),
            alice,
            &json!({"destination": "https://acme.test/alice"}),
        )
        .await;
    patch.assert_error(404, None, "PATCH Bob's link");
    let unchanged = app
        .get(&format!("/links/{bobs_link}"), &app.admin_key)
        .await;
    assert_eq!(unchanged.ok(200)["destination"], "https://acme.test/");

    // Alice's own listing never includes Bob's link.
    let listed = app.get("/links", alice).await;
    assert!(ids(listed.ok(200)).is_empty());
    app.finish().await;
}

#[tokio::test]
async fn an_admin_key_reads_every_partner_link_and_metrics() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let alices = app.create_link(&seed.alice.id, json!({})).await;
    let bobs = app.create_link(&seed.bob.id, json!({})).await;
    let admin = &app.admin_key;

    let partners = app.get("/partners", admin).await;
    assert_eq!(
        ids(partners.ok(200)),
        sorted(vec![seed.alice.id.as_str(), seed.bob.id.as_str()])
    );
    let links = app.get("/links", admin).await;
    assert_eq!(
        ids(links.ok(200)),
        sorted(vec![str_of(&alices, "id"), str_of(&bobs, "id")])
    );
    let bobs_only = app
        .get(&format!("/links?partner_id={}", seed.bob.id), admin)
        .await;
    assert_eq!(ids(bobs_only.ok(200)), vec![str_of(&bobs, "id")]);
    for partner in [&seed.alice.id, &seed.bob.id] {
        app.get(&format!("/partners/{partner}"), admin)
            .await
            .ok(200);
        let m = app.metrics(partner, admin).await;
        assert_eq!(m.ok(200)["partner_id"], partner.as_str());
    }
    app.get(&format!("/links/{}", str_of(&bobs, "id")), admin)
        .await
        .ok(200);
    app.get(&format!("/programs/{}", seed.program_id), admin)
        .await
        .ok(200);
    app.finish().await;
}

#[tokio::test]
async fn a_partner_key_creates_links_for_itself_when_no_partner_is_given() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let created = app
        .post(
            "/links",
            &seed.alice.key,
            &json!({"destination": "https://acme.test/mine", "campaign": "spring"}),
        )
        .await;

    let link = created.ok(201);
    assert_eq!(link["partner_id"], seed.alice.id.as_str());
    assert_eq!(link["program_id"], seed.program_id.as_str());
    assert_eq!(link["utm"]["source"], "alice");
    let listed = app.get("/links", &seed.alice.key).await;
    assert_eq!(ids(listed.ok(200)), vec![str_of(link, "id")]);
    app.finish().await;
}

#[tokio::test]
async fn a_partner_key_cannot_create_a_link_for_another_partner() {
    let app = spawn_app().await;
    let seed = app.seed().await;

    let reply = app
        .post(
            "/links",
            &seed.alice.key,
            &json!({"partner_id": seed.bob.id, "destination": "https://acme.test/"}),
        )
        .await;

    assert!(
        reply.status.is_client_error(),
        "expected a 4xx, got {}: {}",
        reply.status,
        reply.text
    );
    assert!(
        !reply.text.contains("bob"),
        "the refusal leaks Bob: {}",
        reply.text
    );
    assert_eq!(app.count("/links").await, 0, "nothing was written");
    app.finish().await;
}

#[tokio::test]
async fn admin_only_endpoints_answer_403_to_a_partner_key_and_write_nothing() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let key = &seed.alice.key;

    let cases = [
        (
            Method::POST,
            "/programs".to_owned(),
            Some(json!({"name": "Mine", "currency": "EUR"})),
        ),
        (
            Method::POST,
            "/partners".to_owned(),
            Some(json!({"program_id": seed.program_id, "slug": "carol", "name": "Carol"})),
        ),
        (Method::GET, "/programs".to_owned(), None),
        (Method::GET, format!("/programs/{}", seed.program_id), None),
        (
            Method::PATCH,
            format!("/programs/{}", seed.program_id),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::PATCH,
            format!("/partners/{}", seed.alice.id),
            Some(json!({"tier": "platinum"})),
        ),
        (
            Method::POST,
            "/coupons".to_owned(),
            Some(json!({"partner_id": seed.alice.id, "code": "ALICE10"})),
        ),
    ];
    for (method, path, body) in &cases {
        let reply = app
            .api(method.clone(), path, Some(key), body.as_ref())
            .await;
        reply.assert_error(403, None, &format!("{method} {path}"));
        assert_eq!(reply.body["error"]["code"], "forbidden");
    }

    assert_eq!(app.count("/programs").await, 1);
    assert_eq!(app.count("/partners").await, 2);
    assert_eq!(app.count("/coupons").await, 0);
    let program = app
        .get(&format!("/programs/{}", seed.program_id), &app.admin_key)
        .await;
    assert_eq!(program.ok(200)["name"], "Acme");
    let alice = app
        .get(&format!("/partners/{}", seed.alice.id), &app.admin_key)
        .await;
    assert_eq!(alice.ok(200)["tier"], Value::Null);
    app.finish().await;
}

#[tokio::test]
async fn an_ingest_key_may_not_read_the_api() {
    let app = spawn_app().await;
    let seed = app.seed().await;
    let ingest = insert_key(
        &app.store,
        Scope::Ingest,
        None,
        Some(ProgramId::parse(&seed.program_id).unwrap()),
    )
    .await;

    for path in [
        "/partners".to_owned(),
        "/links".to_owned(),
        format!("/partners/{}/metrics", seed.alice.id),
    ] {
        app.get(&path, &ingest).await.assert_error(403, None, &path);
    }
    app.finish().await;
}
