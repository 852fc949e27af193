//! Storage conformance for a program's tracking settings and secrets: the
//! defaults, the first token kept, and secrets initialised once.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use tribute_core::tracking::{ConsentMode, TrackingSettings};
use tribute_store::Store;

use common::*;

conformance!(
    program_tracking_starts_with_defaults_and_keeps_its_first_token,
    secret_or_init_keeps_the_first_value,
);

// --- settings and secrets ---------------------------------------------------------

async fn program_tracking_starts_with_defaults_and_keeps_its_first_token(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (settings, token) = store
        .program_tracking(&p.id, || "first-token".into())
        .await
        .unwrap();
    assert_eq!(settings, TrackingSettings::default());
    assert_eq!(token, "first-token");
    let (_, again) = store
        .program_tracking(&p.id, || "second-token".into())
        .await
        .unwrap();
    assert_eq!(again, "first-token", "the token is made once");

    let changed = TrackingSettings {
        consent: ConsentMode::OptIn,
        honor_dnt: false,
        cookie_domain: Some(".acme.test".into()),
        lead_events: vec!["Trial Started".into()],
        ..TrackingSettings::default()
    };
    store.set_program_tracking(&p.id, &changed).await.unwrap();
    let (settings, token) = store
        .program_tracking(&p.id, || "third-token".into())
        .await
        .unwrap();
    assert_eq!(settings, changed);
    assert_eq!(token, "first-token", "changing settings keeps the token");

    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let (settings, token) = store
        .program_tracking(&other.id, || "other-token".into())
        .await
        .unwrap();
    assert_eq!(
        (settings, token.as_str()),
        (TrackingSettings::default(), "other-token")
    );
}

async fn secret_or_init_keeps_the_first_value(store: Store) {
    let first = store
        .secret_or_init("test_secret", || "one".into())
        .await
        .unwrap();
    let second = store
        .secret_or_init("test_secret", || "two".into())
        .await
        .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    let other = store
        .secret_or_init("other_secret", || "three".into())
        .await
        .unwrap();
    assert_eq!(other, "three");
}
