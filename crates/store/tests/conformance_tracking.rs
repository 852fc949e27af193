//! Storage conformance for a program's tracking settings, its postback
//! token (stored as a hash, clear-text tokens hashed by migration) and
//! server secrets.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use tribute_core::apikey::hash_token;
use tribute_core::postback::{token_matches, NewPostbackToken};
use tribute_core::tracking::{ConsentMode, TrackingSettings};
use tribute_store::testing::run_on_unmigrated;
use tribute_store::{Backend, PostbackTokenHash, Store};

use common::*;

conformance!(
    program_tracking_starts_with_defaults_and_no_postback_token,
    a_postback_token_is_stored_as_its_hash_and_kept_when_settings_change,
    rotating_the_postback_token_replaces_the_stored_hash,
    secret_or_init_keeps_the_first_value,
    a_secret_can_be_read_and_replaced,
);

/// The last schema with postback tokens in clear: migration tests start there.
const BEFORE_HASHED_TOKENS: i64 = 4;

mod migrating_hashes_postback_tokens_stored_in_clear {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        run_on_unmigrated(
            Backend::Sqlite,
            super::migrating_hashes_postback_tokens_stored_in_clear,
        )
        .await;
    }

    #[tokio::test]
    async fn postgres() {
        run_on_unmigrated(
            Backend::Postgres,
            super::migrating_hashes_postback_tokens_stored_in_clear,
        )
        .await;
    }
}

fn custom_settings() -> TrackingSettings {
    TrackingSettings {
        consent: ConsentMode::OptIn,
        honor_dnt: false,
        cookie_domain: Some(".acme.test".into()),
        lead_events: vec!["Trial Started".into()],
        ..TrackingSettings::default()
    }
}

// --- settings and the postback token ------------------------------------------------

async fn program_tracking_starts_with_defaults_and_no_postback_token(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let t = store.program_tracking(&p.id).await.unwrap();
    assert_eq!(t.settings, TrackingSettings::default());
    assert_eq!(t.postback, None, "no token until an admin makes one");

    store
        .set_program_tracking(&p.id, &custom_settings())
        .await
        .unwrap();
    let t = store.program_tracking(&p.id).await.unwrap();
    assert_eq!(t.settings, custom_settings());
    assert_eq!(t.postback, None, "saving settings makes no token");

    let other = program("Other");
    store.insert_program(&other).await.unwrap();
    let t = store.program_tracking(&other.id).await.unwrap();
    assert_eq!(
        (t.settings, t.postback),
        (TrackingSettings::default(), None),
        "settings are per program"
    );
}

async fn a_postback_token_is_stored_as_its_hash_and_kept_when_settings_change(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let new = NewPostbackToken::generate();
    store
        .set_postback_token(&p.id, &new.hash, &new.hint)
        .await
        .unwrap();
    let stored = store
        .program_tracking(&p.id)
        .await
        .unwrap()
        .postback
        .unwrap();
    assert_eq!(stored.hash, hash_token(&new.token), "SHA-256 of the token");
    assert!(
        !stored.hash.contains(&new.token) && !stored.hint.contains(&new.token),
        "the token itself is not stored: {stored:?}"
    );
    assert!(token_matches(&new.token, &stored.hash));
    assert_eq!(stored.hint, new.hint);
    assert_eq!(
        store.program_tracking(&p.id).await.unwrap().settings,
        TrackingSettings::default(),
        "making a token keeps the default settings"
    );

    store
        .set_program_tracking(&p.id, &custom_settings())
        .await
        .unwrap();
    let t = store.program_tracking(&p.id).await.unwrap();
    assert_eq!(t.settings, custom_settings());
    assert_eq!(
        t.postback,
        Some(stored),
        "changing settings keeps the token"
    );
}

async fn rotating_the_postback_token_replaces_the_stored_hash(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    store
        .set_program_tracking(&p.id, &custom_settings())
        .await
        .unwrap();
    let first = NewPostbackToken::generate();
    store
        .set_postback_token(&p.id, &first.hash, &first.hint)
        .await
        .unwrap();
    let second = NewPostbackToken::generate();
    store
        .set_postback_token(&p.id, &second.hash, &second.hint)
        .await
        .unwrap();
    let t = store.program_tracking(&p.id).await.unwrap();
    let stored = t.postback.unwrap();
    assert!(token_matches(&second.token, &stored.hash));
    assert!(
        !token_matches(&first.token, &stored.hash),
        "the old token stops working"
    );
    assert_eq!(stored.hint, second.hint);
    assert_eq!(t.settings, custom_settings(), "rotating keeps the settings");
}

async fn migrating_hashes_postback_tokens_stored_in_clear(store: Store) {
    store.migrate_until(BEFORE_HASHED_TOKENS).await.unwrap();
    let with_token = program("Has a postback URL");
    let without = program("Never asked for one");
    store.insert_program(&with_token).await.unwrap();
    store.insert_program(&without).await.unwrap();
    // A token as the server made them before: 32 base62 characters, in clear.
    let legacy = tribute_core::ids::random_base62(32);
    store
        .execute_sql(&format!(
            "INSERT INTO program_tracking (program_id, settings, postback_token) \
             VALUES ('{}', '{{\"consent\":\"opt_in\"}}', '{legacy}')",
            with_token.id
        ))
        .await
        .unwrap();

    let applied = store.migrate().await.unwrap();
    assert!(
        applied.iter().any(|m| m.contains("postback_token_hash")),
        "{applied:?}"
    );

    let t = store.program_tracking(&with_token.id).await.unwrap();
    assert_eq!(
        t.postback,
        Some(PostbackTokenHash {
            hash: hash_token(&legacy),
            hint: format!("…{}", &legacy[legacy.len() - 4..]),
        }),
        "the token a network already has still matches"
    );
    assert_eq!(t.settings.consent, ConsentMode::OptIn, "settings are kept");
    assert_eq!(
        store.program_tracking(&without.id).await.unwrap().postback,
        None
    );
    assert!(
        store
            .execute_sql("SELECT postback_token FROM program_tracking")
            .await
            .is_err(),
        "the clear-text column is gone"
    );
}

// --- secrets ------------------------------------------------------------------------

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

async fn a_secret_can_be_read_and_replaced(store: Store) {
    assert_eq!(store.secret("demo_admin_key").await.unwrap(), None);
    store.set_secret("demo_admin_key", "one").await.unwrap();
    assert_eq!(
        store.secret("demo_admin_key").await.unwrap().as_deref(),
        Some("one")
    );
    store.set_secret("demo_admin_key", "two").await.unwrap();
    assert_eq!(
        store.secret("demo_admin_key").await.unwrap().as_deref(),
        Some("two"),
        "setting replaces"
    );
    assert_eq!(
        store
            .secret_or_init("demo_admin_key", || "three".into())
            .await
            .unwrap(),
        "two"
    );
}
