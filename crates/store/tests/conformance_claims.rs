//! Storage conformance for verified and unverified identifiers: what the
//! browser claims (unverified) never merges a person the owner's backend
//! named (verified), a verified claim upgrades a key, a protected person's
//! own browser still brings it new clicks, and keys stored before claims
//! existed are verified.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use tribute_core::attribution::TouchKind;
use tribute_core::identity::{click_key, Claim};
use tribute_core::partner::email_hash;
use tribute_core::tracking::EventType;
use tribute_store::{Backend, Store};

use common::*;

conformance!(
    a_browser_identify_with_a_verified_email_merges_nothing,
    a_browser_cannot_attach_a_click_to_a_verified_person_by_its_email,
    a_browser_conversion_claiming_a_verified_email_finds_its_own_person,
    a_verified_claim_upgrades_a_browser_email_and_then_protects_its_person,
    a_protected_persons_own_browser_still_brings_it_a_new_click,
    browser_claims_still_stitch_persons_nobody_verified,
);

fn email_key(email: &str) -> String {
    key_of("email_hash", &email_hash(email))
}

/// The owner's backend names the victim: a verified lead with the e-mail.
async fn verified_victim(store: &Store, s: &Seed) -> tribute_core::ids::PersonId {
    let p = &s.program;
    let lead = event(
        p,
        EventType::Lead,
        tribute_core::identity::Identifiers {
            email_hash: Some(email_hash("victim@example.com")),
            ..Default::default()
        },
        t0(),
    );
    store.ingest_events(&[lead]).await.unwrap();
    person(store, p, &email_key("victim@example.com")).await
}

/// The attacker's browser, brought by a click of `s.sam`.
async fn attackers_browser(store: &Store, s: &Seed) -> tribute_core::ids::PersonId {
    let p = &s.program;
    let click = clicked(store, &s.sam, hours(1), false).await;
    let view = with_click(
        unverified(event(p, EventType::PageView, anon("attacker"), hours(1))),
        &click,
    );
    store.ingest_events(&[view]).await.unwrap();
    person(store, p, &key_of("anonymous_id", "attacker")).await
}

async fn a_browser_identify_with_a_verified_email_merges_nothing(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let victim = verified_victim(&store, &s).await;
    let attacker = attackers_browser(&store, &s).await;
    let identify = unverified(event(
        p,
        EventType::Identify,
        anon_and_email("attacker", "victim@example.com"),
        hours(2),
    ));
    store.ingest_events(&[identify]).await.unwrap();
    assert_eq!(
        person(&store, p, &email_key("victim@example.com")).await,
        victim
    );
    assert_eq!(
        person(&store, p, &key_of("anonymous_id", "attacker")).await,
        attacker
    );
    assert!(
        touch_summary(&store, &victim).await.is_empty(),
        "the attacker's click must not reach the victim"
    );
}

async fn a_browser_cannot_attach_a_click_to_a_verified_person_by_its_email(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let victim = verified_victim(&store, &s).await;
    let click = clicked(&store, &s.sam, hours(1), false).await;
    let claim = with_click(
        unverified(event(
            p,
            EventType::Lead,
            tribute_core::identity::Identifiers {
                email_hash: Some(email_hash("victim@example.com")),
                ..Default::default()
            },
            hours(1),
        )),
        &click,
    );
    store.ingest_events(&[claim]).await.unwrap();
    assert!(touch_summary(&store, &victim).await.is_empty());
    assert_ne!(
        person(&store, p, &click_key(click.id.as_str())).await,
        victim
    );
}

async fn a_browser_conversion_claiming_a_verified_email_finds_its_own_person(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let victim = verified_victim(&store, &s).await;
    let attacker = attackers_browser(&store, &s).await;
    let keys = vec![
        key_of("anonymous_id", "attacker"),
        email_key("victim@example.com"),
    ];
    let (who, touches) = store
        .resolve_journey(&p.id, keys, Claim::Unverified, None, Vec::new())
        .await
        .unwrap();
    assert_eq!(who, attacker);
    assert_eq!(touches.len(), 1);
    assert!(touch_summary(&store, &victim).await.is_empty());
}

async fn a_verified_claim_upgrades_a_browser_email_and_then_protects_its_person(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    // The customer's browser: a click of jane, then an identify with the e-mail.
    let click = clicked(&store, &s.jane, t0(), false).await;
    let browser = vec![
        with_click(
            unverified(event(p, EventType::PageView, anon("customer"), t0())),
            &click,
        ),
        unverified(event(
            p,
            EventType::Identify,
            anon_and_email("customer", "buyer@example.com"),
            hours(1),
        )),
    ];
    store.ingest_events(&browser).await.unwrap();
    // The owner's backend converts by e-mail alone: jane is the journey.
    let (customer, touches) = store
        .resolve_journey(
            &p.id,
            vec![email_key("buyer@example.com")],
            Claim::Verified,
            None,
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        touches.iter().map(|t| &t.partner_id).collect::<Vec<_>>(),
        vec![&s.jane.id]
    );
    // The e-mail is verified now: the attacker's claim on it merges nothing.
    let attacker = attackers_browser(&store, &s).await;
    let identify = unverified(event(
        p,
        EventType::Identify,
        anon_and_email("attacker", "buyer@example.com"),
        hours(2),
    ));
    store.ingest_events(&[identify]).await.unwrap();
    assert_eq!(
        person(&store, p, &email_key("buyer@example.com")).await,
        customer
    );
    assert_eq!(
        touch_summary(&store, &customer).await,
        vec![(TouchKind::Click, s.jane.id.clone())]
    );
    assert_ne!(customer, attacker);
}

async fn a_protected_persons_own_browser_still_brings_it_a_new_click(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    // Named by the owner's backend together with the browser's anonymous id.
    let identify = event(
        p,
        EventType::Identify,
        anon_and_email("customer", "buyer@example.com"),
        t0(),
    );
    store.ingest_events(&[identify]).await.unwrap();
    let customer = person(&store, p, &email_key("buyer@example.com")).await;
    // Weeks later the same browser comes back through sam's link.
    let click = clicked(&store, &s.sam, hours(300), false).await;
    let view = with_click(
        unverified(event(p, EventType::PageView, anon("customer"), hours(300))),
        &click,
    );
    store.ingest_events(&[view]).await.unwrap();
    assert_eq!(
        touch_summary(&store, &customer).await,
        vec![(TouchKind::Click, s.sam.id.clone())]
    );
}

async fn browser_claims_still_stitch_persons_nobody_verified(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let (phone, _) = touched_unverified(&store, &s, "phone", &s.jane).await;
    let (laptop, _) = touched_unverified(&store, &s, "laptop", &s.sam).await;
    assert_ne!(phone, laptop);
    let identifies = vec![
        unverified(event(
            p,
            EventType::Identify,
            anon_and_email("phone", "jo@example.com"),
            hours(2),
        )),
        unverified(event(
            p,
            EventType::Identify,
            anon_and_email("laptop", "jo@example.com"),
            hours(3),
        )),
    ];
    store.ingest_events(&identifies).await.unwrap();
    let jo = person(&store, p, &email_key("jo@example.com")).await;
    assert_eq!(
        person(&store, p, &key_of("anonymous_id", "phone")).await,
        jo
    );
    assert_eq!(
        person(&store, p, &key_of("anonymous_id", "laptop")).await,
        jo
    );
    assert_eq!(touch_summary(&store, &jo).await.len(), 2);
}

/// A browser (`anon_id`) brought by a `via` visit of `partner`, unverified.
async fn touched_unverified(
    store: &Store,
    s: &Seed,
    anon_id: &str,
    partner: &tribute_core::partner::Partner,
) -> (tribute_core::ids::PersonId, usize) {
    let p = &s.program;
    let view = with_partner(
        unverified(event(p, EventType::PageView, anon(anon_id), t0())),
        partner,
        TouchKind::Via,
    );
    store.ingest_events(&[view]).await.unwrap();
    let who = person(store, p, &key_of("anonymous_id", anon_id)).await;
    let n = store.touches_of(&who).await.unwrap().len();
    (who, n)
}

/// Keys stored before claims existed (schema version 6) are verified after
/// the migration: the persons they make are protected at once, and a
/// browser still reaches its own person through its anonymous id.
async fn identities_stored_before_claims_are_verified(store: Store) {
    store.migrate_until(6).await.unwrap();
    let p = program("Acme");
    for (key, person) in [
        (email_key("victim@example.com"), "per_victim"),
        (key_of("anonymous_id", "attacker"), "per_attacker"),
        (key_of("anonymous_id", "visitor"), "per_visitor"),
    ] {
        store
            .execute_sql(&format!(
                "INSERT INTO identities (program_id, ident, person_id, created_at) \
                 VALUES ('{}', '{key}', '{person}', 0)",
                p.id
            ))
            .await
            .unwrap();
    }
    let applied = store.migrate().await.unwrap();
    assert!(
        applied.iter().any(|m| m.contains("identity_claims")),
        "{applied:?}"
    );
    store.insert_program(&p).await.unwrap();
    let claims = vec![
        unverified(event(
            &p,
            EventType::Identify,
            anon_and_email("attacker", "victim@example.com"),
            t0(),
        )),
        unverified(event(
            &p,
            EventType::Identify,
            anon_and_email("visitor", "visitor@example.com"),
            t0(),
        )),
    ];
    store.ingest_events(&claims).await.unwrap();
    let victim = person(&store, &p, &email_key("victim@example.com")).await;
    assert_eq!(
        victim.as_str(),
        "per_victim",
        "the old person was not merged"
    );
    let attacker = person(&store, &p, &key_of("anonymous_id", "attacker")).await;
    assert_eq!(attacker.as_str(), "per_attacker");
    let visitor = person(&store, &p, &email_key("visitor@example.com")).await;
    assert_eq!(
        visitor.as_str(),
        "per_visitor",
        "its own browser's e-mail joined it"
    );
}

mod identities_stored_before_claims_are_verified {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        tribute_store::testing::run_on_unmigrated(
            Backend::Sqlite,
            super::identities_stored_before_claims_are_verified,
        )
        .await;
    }

    #[tokio::test]
    async fn postgres() {
        tribute_store::testing::run_on_unmigrated(
            Backend::Postgres,
            super::identities_stored_before_claims_are_verified,
        )
        .await;
    }
}
