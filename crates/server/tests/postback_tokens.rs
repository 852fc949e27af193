//! Postback tokens: made and rotated by an admin, shown once, stored as a
//! hash; the tracking settings show only a hint; a rotated token stops
//! working at once.

#[macro_use]
mod common;

use serde_json::json;

use common::shop::shop;
use common::{str_of, TestApp};

on_both_backends!(
    a_program_refuses_postbacks_until_an_admin_makes_a_token,
    a_postback_token_is_shown_once_and_the_settings_show_only_its_hint,
    rotating_the_postback_token_stops_the_old_one_at_once,
    only_an_admin_can_make_a_postback_token,
);

fn postback(program: &str, token: &str, order: &str) -> String {
    format!(
        "/postback?program_id={program}&token={token}&amount=12.50&currency=EUR&order_id={order}"
    )
}

async fn a_program_refuses_postbacks_until_an_admin_makes_a_token(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let tracking = app
        .get(&format!("/programs/{program}/tracking"), &app.admin_key)
        .await;
    assert_eq!(tracking.ok(200)["postback_token_hint"], json!(null));
    // Whatever the URL's placeholder says, it is not a token.
    for (case, token) in [
        ("the placeholder", "{postback_token}"),
        ("an empty token", ""),
        ("a guess", "trb_pb_0000000000000000000000000000000000000000"),
    ] {
        app.visit(&postback(program, token, "o-1"))
            .await
            .assert_error(401, None, case);
    }
    assert_eq!(app.conversion_count(program).await, 0);
}

async fn a_postback_token_is_shown_once_and_the_settings_show_only_its_hint(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let made = app
        .post(
            &format!("/programs/{program}/postback-token"),
            &app.admin_key,
            &json!({}),
        )
        .await;
    let made = made.ok(201).clone();
    let token = str_of(&made, "postback_token");
    let hint = str_of(&made, "postback_token_hint");
    assert!(
        str_of(&made, "postback_url").contains(&format!("token={token}&")),
        "{made}"
    );
    assert!(
        hint.len() < token.len() && token.ends_with(hint.rsplit('…').next().unwrap()),
        "the hint is a short part of the token: {hint} / {token}"
    );

    let tracking = app
        .get(&format!("/programs/{program}/tracking"), &app.admin_key)
        .await;
    assert!(
        !tracking.text.contains(token),
        "the settings never show the token again: {}",
        tracking.text
    );
    let tracking = tracking.ok(200);
    assert_eq!(tracking["postback_token_hint"], json!(hint));
    assert!(
        str_of(tracking, "postback_url").contains("token={postback_token}"),
        "{tracking}"
    );

    let recorded = app.visit(&postback(program, token, "o-1")).await;
    assert_eq!(recorded.ok(200)["value"], 1250);
    assert_eq!(app.conversion_count(program).await, 1);
}

async fn rotating_the_postback_token_stops_the_old_one_at_once(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let old = app.postback_token(program).await;
    app.visit(&postback(program, &old, "o-1")).await.ok(200);

    let new = app.postback_token(program).await;
    assert_ne!(new, old);
    app.visit(&postback(program, &old, "o-2"))
        .await
        .assert_error(401, None, "the rotated-out token");
    app.visit(&postback(program, &new, "o-3")).await.ok(200);
    assert_eq!(
        app.conversion_count(program).await,
        2,
        "nothing written by the old token"
    );
    let tracking = app
        .get(&format!("/programs/{program}/tracking"), &app.admin_key)
        .await;
    let hint = str_of(tracking.ok(200), "postback_token_hint");
    assert!(new.ends_with(hint.rsplit('…').next().unwrap()), "{hint}");
}

async fn only_an_admin_can_make_a_postback_token(app: TestApp) {
    let shop = shop(&app).await;
    let program = &shop.seed.program_id;
    let path = format!("/programs/{program}/postback-token");
    app.post(&path, &shop.ingest, &json!({}))
        .await
        .assert_error(403, None, "an ingest key");
    app.post(&path, &shop.seed.alice.key, &json!({}))
        .await
        .assert_error(403, None, "a partner key");
    app.post(
        "/programs/prg_nosuchprogram/postback-token",
        &app.admin_key,
        &json!({}),
    )
    .await
    .assert_error(404, None, "an unknown program");
    let tracking = app
        .get(&format!("/programs/{program}/tracking"), &app.admin_key)
        .await;
    assert_eq!(
        tracking.ok(200)["postback_token_hint"],
        json!(null),
        "refused requests made no token"
    );
}
