//! Black-box tests of the JSON API under `/api/v1`: keys and what each may
//! see, validation that names the field and writes nothing, pagination and
//! PATCH semantics.

#[macro_use]
mod common;

use reqwest::Method;
use serde_json::{json, Value};
use tribute_core::apikey::Scope;
use tribute_core::ids::ProgramId;

use common::{insert_key, spawn_app, TestApp, PUBLIC_URL};

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` missing in {v}"))
}

/// The ids of a list page, sorted: rows made in the same millisecond are
/// listed in id order, not creation order, so tests compare sets.
fn ids(list: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = list["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|x| str_of(x, "id"))
        .collect();
    ids.sort_unstable();
    ids
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

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
