//! Black-box tests of two bounds shared with programs: the attribution
//! window and half-life of a what-if or a comparison, and the allowed
//! domains (no public suffix, no IP address, ports listed explicitly) that
//! decide destinations and CORS origins.

// This binary uses no backend matrix.
#[allow(unused_macros)]
mod common;

use serde_json::json;

use common::shop::shop;
use common::snippet::{collect, header, program_id, write_key};
use common::{spawn_app, str_of};

#[tokio::test]
async fn what_if_and_compare_refuse_windows_and_half_lives_outside_the_program_bounds() {
    let app = spawn_app().await;
    let shop = shop(&app).await;
    let program = shop.seed.program_id.clone();
    let tid = app.click_link(&shop.alice_code).await;
    let conversion = app
        .post(
            "/conversions",
            &shop.ingest,
            &json!({"external_id": "o-1", "value": 1000, "currency": "EUR", "click_id": tid}),
        )
        .await;
    let id = str_of(conversion.ok(201), "id").to_owned();
    let what_if = |query: &str| {
        let path = format!("/conversions/{id}/attribution?model=time_decay&{query}");
        let app = &app;
        async move {
            app.api(reqwest::Method::POST, &path, Some(&app.admin_key), None)
                .await
        }
    };
    let compare = |query: &str| {
        let path = format!("/attribution/compare?program_id={program}&models=time_decay&{query}");
        let app = &app;
        async move { app.get(&path, &app.admin_key).await }
    };
    let cases = [
        ("a zero window", "window_days=0", "window_days"),
        (
            "a window of u32::MAX days",
            "window_days=4294967295",
            "window_days",
        ),
        ("a window past ten years", "window_days=3651", "window_days"),
        (
            "a subnormal half-life",
            "half_life_days=1e-320",
            "half_life_days",
        ),
        (
            "a half-life under an hour",
            "half_life_days=0.01",
            "half_life_days",
        ),
        (
            "an infinite half-life",
            "half_life_days=inf",
            "half_life_days",
        ),
        ("a NaN half-life", "half_life_days=NaN", "half_life_days"),
    ];
    for (case, query, field) in cases {
        what_if(query)
            .await
            .assert_error(422, Some(field), &format!("what-if, {case}"));
        compare(query)
            .await
            .assert_error(422, Some(field), &format!("compare, {case}"));
    }
    // The bounds themselves are accepted.
    for query in ["window_days=1", "window_days=3650&half_life_days=0.5"] {
        let reply = what_if(query).await;
        assert_eq!(reply.ok(200)["value"], 1000, "what-if {query}");
        assert_eq!(
            compare(query).await.ok(200)["conversions"],
            1,
            "compare {query}"
        );
    }
}

#[tokio::test]
async fn allowed_domains_refuse_public_suffixes_and_ip_addresses_and_only_listed_ports_pass() {
    let app = spawn_app().await;
    let program = app.create_program("Acme").await;
    let id = str_of(&program, "id").to_owned();
    let cases = [
        ("a bare top-level domain", "com"),
        ("a second-level public suffix", "co.uk"),
        ("a hosting public suffix", "github.io"),
        ("an IPv4 address", "127.0.0.1"),
        ("an IPv4 address with a port", "10.0.0.1:8080"),
        ("an IPv6 address", "[::1]"),
        ("port zero", "acme.test:0"),
    ];
    for (case, entry) in cases {
        app.post(
            "/programs",
            &app.admin_key,
            &json!({"name": "Other", "currency": "EUR", "allowed_domains": ["acme.test", entry]}),
        )
        .await
        .assert_error(422, Some("allowed_domains"), &format!("create, {case}"));
        app.patch(
            &format!("/programs/{id}"),
            &app.admin_key,
            &json!({"allowed_domains": [entry]}),
        )
        .await
        .assert_error(422, Some("allowed_domains"), &format!("update, {case}"));
    }
    assert_eq!(app.count("/programs").await, 1, "no program was created");

    // An owner lists the port a site is served on.
    let updated = app
        .patch(
            &format!("/programs/{id}"),
            &app.admin_key,
            &json!({"allowed_domains": ["acme.test", "shop.acme.test:8443"]}),
        )
        .await;
    assert_eq!(
        updated.ok(200)["allowed_domains"],
        json!(["acme.test", "shop.acme.test:8443"])
    );
    let partner = app.create_partner(&id, "alice").await;
    let partner_id = str_of(&partner, "id");
    let link = |destination: &str| json!({"partner_id": partner_id, "destination": destination});
    for (case, destination) in [
        ("the default port", "https://acme.test/"),
        ("the listed port", "https://shop.acme.test:8443/cart"),
    ] {
        let reply = app.post("/links", &app.admin_key, &link(destination)).await;
        assert_eq!(reply.ok(201)["destination"], destination, "{case}");
    }
    for (case, destination) in [
        ("an unlisted port", "https://acme.test:8443/"),
        ("another unlisted port", "https://shop.acme.test:9000/"),
        ("a port on the default-only entry", "http://acme.test:8080/"),
    ] {
        app.post("/links", &app.admin_key, &link(destination))
            .await
            .assert_error(422, Some("destination"), case);
    }
    assert_eq!(
        app.count("/links").await,
        2,
        "refused links were not written"
    );

    // CORS for the snippet follows the same rule.
    let key = write_key(&app, &program_id(&program)).await;
    let batch = |event: &str| {
        json!({"key": key, "events": [{"type": "page_view", "event_id": event, "anonymous_id": "a1"}]})
            .to_string()
    };
    let origin = "https://shop.acme.test:8443";
    let allowed = collect(&app, Some(origin), &batch("e1")).await;
    assert_eq!(allowed.ok(200)["accepted"], 1);
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some(origin)
    );
    for origin in ["https://shop.acme.test:9000", "https://acme.test:8443"] {
        let refused = collect(&app, Some(origin), &batch("e2")).await;
        refused.assert_error(403, None, origin);
        assert_eq!(
            header(&refused, "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
}
