//! Storage conformance for API keys: publishable and secret kinds, listing,
//! revocation, and what the key-kind migration makes of older keys.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use chrono::Duration;
use tribute_core::apikey::{hash_token, ApiKey, KeyKind, NewKey, Principal, Scope};
use tribute_core::ids::{ApiKeyId, ProgramId};
use tribute_store::{Backend, Store, StoreError};

use common::{conformance, program, t0};

conformance!(
    a_publishable_key_resolves_to_a_publishable_ingest_principal,
    a_secret_ingest_key_resolves_to_a_secret_ingest_principal,
    the_database_refuses_a_publishable_key_that_is_not_an_ingest_key,
    keys_list_oldest_first_with_their_kind_and_revocation,
    a_revoked_key_no_longer_resolves,
    revoking_a_revoked_key_changes_nothing,
    revoking_an_unknown_key_is_not_found,
);

fn key(scope: Scope, kind: KeyKind, program: Option<&ProgramId>, name: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId::generate(),
        scope,
        kind,
        partner_id: None,
        program_id: program.cloned(),
        name: Some(name.into()),
        created_at: t0(),
        revoked_at: None,
    }
}

/// Store a new key of `scope` and `kind`; returns it with its token.
async fn insert(
    store: &Store,
    scope: Scope,
    kind: KeyKind,
    program: Option<&ProgramId>,
    name: &str,
) -> (ApiKey, String) {
    let k = key(scope, kind, program, name);
    let new = NewKey::of(scope, kind);
    store.insert_api_key(&k, &new.hash).await.unwrap();
    (k, new.token)
}

async fn seeded_program(store: &Store) -> ProgramId {
    let p = program("Acme");
    store.insert_program(&p).await.unwrap();
    p.id
}

async fn a_publishable_key_resolves_to_a_publishable_ingest_principal(store: Store) {
    let p = seeded_program(&store).await;
    let (k, token) = insert(
        &store,
        Scope::Ingest,
        KeyKind::Publishable,
        Some(&p),
        "site",
    )
    .await;
    let found = store.api_key_by_token(&token).await.unwrap().unwrap();
    assert_eq!(found, k);
    let principal = found.principal().unwrap();
    assert_eq!(
        principal,
        Principal::Ingest {
            program_id: Some(p),
            kind: KeyKind::Publishable
        }
    );
    assert!(principal.is_publishable());
}

async fn a_secret_ingest_key_resolves_to_a_secret_ingest_principal(store: Store) {
    let p = seeded_program(&store).await;
    let (_, token) = insert(&store, Scope::Ingest, KeyKind::Secret, Some(&p), "backend").await;
    let principal = store
        .api_key_by_token(&token)
        .await
        .unwrap()
        .unwrap()
        .principal()
        .unwrap();
    assert!(!principal.is_publishable());
    assert!(matches!(
        principal,
        Principal::Ingest {
            kind: KeyKind::Secret,
            ..
        }
    ));
}

async fn the_database_refuses_a_publishable_key_that_is_not_an_ingest_key(store: Store) {
    let k = key(Scope::Admin, KeyKind::Publishable, None, "oops");
    let new = NewKey::publishable();
    assert!(store.insert_api_key(&k, &new.hash).await.is_err());
    assert_eq!(store.api_key_by_token(&new.token).await.unwrap(), None);
    assert!(store.api_keys().await.unwrap().is_empty());
}

async fn keys_list_oldest_first_with_their_kind_and_revocation(store: Store) {
    let p = seeded_program(&store).await;
    let mut admin = key(Scope::Admin, KeyKind::Secret, None, "ops");
    admin.created_at = t0() - Duration::hours(1);
    store
        .insert_api_key(&admin, &NewKey::generate(Scope::Admin).hash)
        .await
        .unwrap();
    let (site, _) = insert(
        &store,
        Scope::Ingest,
        KeyKind::Publishable,
        Some(&p),
        "site",
    )
    .await;
    assert!(store.revoke_api_key(&admin.id, t0()).await.unwrap());
    let listed = store.api_keys().await.unwrap();
    assert_eq!(
        listed,
        vec![
            ApiKey {
                revoked_at: Some(t0()),
                ..admin.clone()
            },
            site.clone()
        ]
    );
    assert_eq!(
        store.api_key(&admin.id).await.unwrap().unwrap().revoked_at,
        Some(t0())
    );
    assert_eq!(store.api_key(&ApiKeyId::generate()).await.unwrap(), None);
}

async fn a_revoked_key_no_longer_resolves(store: Store) {
    let p = seeded_program(&store).await;
    let (k, token) = insert(&store, Scope::Ingest, KeyKind::Secret, Some(&p), "backend").await;
    let (other, other_token) = insert(
        &store,
        Scope::Ingest,
        KeyKind::Publishable,
        Some(&p),
        "site",
    )
    .await;
    assert!(store.revoke_api_key(&k.id, t0()).await.unwrap());
    assert_eq!(store.api_key_by_token(&token).await.unwrap(), None);
    // Only that key.
    assert_eq!(
        store.api_key_by_token(&other_token).await.unwrap(),
        Some(other)
    );
}

async fn revoking_a_revoked_key_changes_nothing(store: Store) {
    let (k, token) = insert(&store, Scope::Admin, KeyKind::Secret, None, "ops").await;
    assert!(store.revoke_api_key(&k.id, t0()).await.unwrap());
    assert!(
        !store
            .revoke_api_key(&k.id, t0() + Duration::hours(1))
            .await
            .unwrap(),
        "the second revocation reports that the key already was revoked"
    );
    assert_eq!(
        store.api_key(&k.id).await.unwrap().unwrap().revoked_at,
        Some(t0()),
        "the first revocation time stays"
    );
    assert_eq!(store.api_key_by_token(&token).await.unwrap(), None);
}

async fn revoking_an_unknown_key_is_not_found(store: Store) {
    insert(&store, Scope::Admin, KeyKind::Secret, None, "ops").await;
    assert!(matches!(
        store.revoke_api_key(&ApiKeyId::generate(), t0()).await,
        Err(StoreError::NotFound(_))
    ));
}

/// An ingest key written before key kinds existed (schema version 3)
/// resolves, after the migration, to a secret ingest key: existing
/// server-side integrations keep working.
async fn ingest_keys_made_before_key_kinds_are_secret(store: Store) {
    store.migrate_until(3).await.unwrap();
    let p = seeded_program(&store).await;
    let token = NewKey::generate(Scope::Ingest).token;
    store
        .execute_sql(&format!(
            "INSERT INTO api_keys (id, token_hash, scope, partner_id, program_id, name, created_at) \
             VALUES ('{}', '{}', 'ingest', NULL, '{p}', 'legacy', 0)",
            ApiKeyId::generate(),
            hash_token(&token)
        ))
        .await
        .unwrap();
    let applied = store.migrate().await.unwrap();
    assert!(
        applied.iter().any(|m| m.contains("key_kinds")),
        "{applied:?}"
    );
    let key = store.api_key_by_token(&token).await.unwrap().unwrap();
    assert_eq!(key.kind, KeyKind::Secret);
    assert_eq!(
        key.principal(),
        Some(Principal::Ingest {
            program_id: Some(p),
            kind: KeyKind::Secret
        })
    );
}

mod ingest_keys_made_before_key_kinds_are_secret {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        tribute_store::testing::run_on_unmigrated(
            Backend::Sqlite,
            super::ingest_keys_made_before_key_kinds_are_secret,
        )
        .await;
    }

    #[tokio::test]
    async fn postgres() {
        tribute_store::testing::run_on_unmigrated(
            Backend::Postgres,
            super::ingest_keys_made_before_key_kinds_are_secret,
        )
        .await;
    }
}
