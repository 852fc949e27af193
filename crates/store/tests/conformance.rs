//! The storage conformance suite: every storage behaviour, run against a
//! fresh SQLite file and a fresh PostgreSQL database.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`).

mod common;

use chrono::{DateTime, Duration, Utc};
use tribute_core::apikey::{ApiKey, KeyKind, NewKey, Principal, Scope};
use tribute_core::attribution::ModelKind;
use tribute_core::click::Click;
use tribute_core::coupon::{Coupon, CouponCode};
use tribute_core::ids::{ApiKeyId, ClickId, CouponId, LinkId, PartnerId};
use tribute_core::link::{Link, ShortCode, Utm};
use tribute_core::partner::{Partner, PartnerStatus, Slug};
use tribute_core::program::{AllowedDomain, Program};
use tribute_store::{OwnedFilter, Page, PartnerFilter, Store, StoreError};

use common::{conformance, program_at, t0};

conformance!(
    migrations_apply_once,
    program_round_trips_and_updates,
    programs_list_in_creation_order_by_page,
    partner_slug_is_unique_within_a_program_only,
    partner_updates_status_tier_and_team_lead,
    partner_list_filters_by_program_and_partner,
    link_codes_are_unique_across_programs,
    link_round_trips_with_expiry_and_utm,
    coupon_codes_are_unique_per_program_and_case_insensitive,
    click_batches_larger_than_one_statement_are_stored,
    replaying_a_click_batch_stores_nothing_twice,
    a_clicks_partner_is_found_by_its_id,
    each_click_reads_back_its_own_user_agent,
    metrics_count_unique_clicks_once_per_visitor_link_and_day,
    metrics_respect_the_period_bounds,
    api_keys_resolve_by_token_until_revoked,
);

/// An active `silver` partner of `program`.
fn partner(program: &Program, slug: &str) -> Partner {
    Partner {
        tier: Some("silver".into()),
        ..common::partner(program, slug, PartnerStatus::Active)
    }
}

fn link(partner: &Partner, code: &str, source: Option<&str>) -> Link {
    Link {
        id: LinkId::generate(),
        program_id: partner.program_id.clone(),
        partner_id: partner.id.clone(),
        code: ShortCode::parse(code).unwrap(),
        destination: "https://acme.test/".into(),
        source: source.map(Into::into),
        medium: None,
        campaign: Some("spring".into()),
        content: None,
        utm: Utm::generate(partner.slug.as_str(), source, None, Some("spring"), None),
        expires_at: None,
        created_at: t0(),
    }
}

fn click(link: &Link, at: DateTime<Utc>, visitor: &str, is_bot: bool) -> Click {
    Click {
        id: ClickId::generate(),
        program_id: link.program_id.clone(),
        link_id: link.id.clone(),
        partner_id: link.partner_id.clone(),
        at,
        ip_truncated: "203.0.113.0/24".into(),
        ip_hash: format!("ip-{visitor}"),
        visitor_hash: format!("v-{visitor}"),
        user_agent: Some("Mozilla/5.0".into()),
        referrer: None,
        source: link.source.clone(),
        is_bot,
        reasons: Vec::new(),
    }
}

async fn seeded(store: &Store) -> (Program, Partner) {
    let p = program_at("Acme", t0());
    store.insert_program(&p).await.unwrap();
    let jane = partner(&p, "jane");
    store.insert_partner(&jane).await.unwrap();
    (p, jane)
}

async fn migrations_apply_once(store: Store) {
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "second run applies nothing"
    );
}

async fn program_round_trips_and_updates(store: Store) {
    let mut p = program_at("Acme", t0());
    store.insert_program(&p).await.unwrap();
    assert_eq!(store.program(&p.id).await.unwrap(), Some(p.clone()));
    p.settings.name = "Acme Partners".into();
    p.settings
        .allowed_domains
        .push(AllowedDomain::parse("acme.shop").unwrap());
    p.settings.default_model = ModelKind::Linear;
    store.update_program(&p).await.unwrap();
    assert_eq!(store.program(&p.id).await.unwrap(), Some(p));
    let missing = program_at("Ghost", t0());
    assert!(matches!(
        store.update_program(&missing).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.program(&missing.id).await.unwrap(), None);
}

async fn programs_list_in_creation_order_by_page(store: Store) {
    for i in 0..5 {
        store
            .insert_program(&program_at(&format!("P{i}"), t0() + Duration::minutes(i)))
            .await
            .unwrap();
    }
    let page = store
        .programs(Page {
            limit: 2,
            offset: 2,
        })
        .await
        .unwrap();
    let names: Vec<_> = page.iter().map(|p| p.settings.name.as_str()).collect();
    assert_eq!(names, ["P2", "P3"]);
}

async fn partner_slug_is_unique_within_a_program_only(store: Store) {
    let (p, _jane) = seeded(&store).await;
    match store.insert_partner(&partner(&p, "jane")).await {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "slug"),
        other => panic!("expected a slug conflict, got {other:?}"),
    }
    let other = program_at("Other", t0());
    store.insert_program(&other).await.unwrap();
    store
        .insert_partner(&partner(&other, "jane"))
        .await
        .unwrap();
    let slug = Slug::parse("jane").unwrap();
    assert_eq!(store.partners_by_slug(&slug).await.unwrap().len(), 2);
}

async fn partner_updates_status_tier_and_team_lead(store: Store) {
    let (p, lead) = seeded(&store).await;
    let mut member = partner(&p, "sam");
    store.insert_partner(&member).await.unwrap();
    member.status = PartnerStatus::Suspended;
    member.tier = Some("gold".into());
    member.team_lead_id = Some(lead.id.clone());
    member.email = None;
    store.update_partner(&member).await.unwrap();
    assert_eq!(
        store.partner(&member.id).await.unwrap(),
        Some(member.clone())
    );
    let found = store.partner_by_slug(&p.id, &member.slug).await.unwrap();
    assert_eq!(found.map(|m| m.id), Some(member.id));
}

async fn partner_list_filters_by_program_and_partner(store: Store) {
    let (p, jane) = seeded(&store).await;
    store.insert_partner(&partner(&p, "sam")).await.unwrap();
    let other = program_at("Other", t0());
    store.insert_program(&other).await.unwrap();
    store.insert_partner(&partner(&other, "kim")).await.unwrap();
    let in_p = PartnerFilter {
        program_id: Some(p.id.clone()),
        only: None,
    };
    assert_eq!(
        store.partners(&in_p, Page::default()).await.unwrap().len(),
        2
    );
    let all = store
        .partners(&PartnerFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let only = PartnerFilter {
        program_id: None,
        only: Some(jane.id.clone()),
    };
    let listed = store.partners(&only, Page::default()).await.unwrap();
    assert_eq!(listed, vec![jane]);
}

async fn link_codes_are_unique_across_programs(store: Store) {
    let (p, jane) = seeded(&store).await;
    store
        .insert_link(&link(&jane, "spring-sale", None))
        .await
        .unwrap();
    let other = program_at("Other", t0());
    store.insert_program(&other).await.unwrap();
    let kim = partner(&other, "kim");
    store.insert_partner(&kim).await.unwrap();
    match store.insert_link(&link(&kim, "spring-sale", None)).await {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "code"),
        other => panic!("expected a code conflict, got {other:?}"),
    }
    let filter = OwnedFilter {
        program_id: Some(p.id.clone()),
        partner_id: None,
    };
    assert_eq!(
        store.links(&filter, Page::default()).await.unwrap().len(),
        1
    );
}

async fn link_round_trips_with_expiry_and_utm(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let mut l = link(&jane, "jane-social", Some("social"));
    l.expires_at = Some(t0() + Duration::days(7));
    store.insert_link(&l).await.unwrap();
    assert_eq!(
        store.link_by_code("jane-social").await.unwrap(),
        Some(l.clone())
    );
    assert_eq!(
        store.link_by_code("JANE-SOCIAL").await.unwrap(),
        None,
        "codes are case-sensitive"
    );
    l.destination = "https://acme.test/pricing".into();
    l.expires_at = None;
    store.update_link(&l).await.unwrap();
    assert_eq!(store.link(&l.id).await.unwrap(), Some(l));
}

async fn coupon_codes_are_unique_per_program_and_case_insensitive(store: Store) {
    let (p, jane) = seeded(&store).await;
    let c = Coupon {
        id: CouponId::generate(),
        program_id: p.id.clone(),
        partner_id: jane.id.clone(),
        code: CouponCode::parse("jane10").unwrap(),
        created_at: t0(),
    };
    store.insert_coupon(&c).await.unwrap();
    let again = Coupon {
        id: CouponId::generate(),
        code: CouponCode::parse("JANE10").unwrap(),
        ..c.clone()
    };
    assert!(matches!(
        store.insert_coupon(&again).await,
        Err(StoreError::Conflict { field: "code", .. })
    ));
    let found = store
        .coupon_by_code(&p.id, &CouponCode::parse("Jane10").unwrap())
        .await
        .unwrap();
    assert_eq!(found, Some(c.clone()));
    assert_eq!(store.coupon(&c.id).await.unwrap(), Some(c));
}

async fn click_batches_larger_than_one_statement_are_stored(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let l = link(&jane, "jane-web", Some("website"));
    store.insert_link(&l).await.unwrap();
    let clicks: Vec<Click> = (0..1203)
        .map(|i| {
            click(
                &l,
                t0() + Duration::seconds(i),
                &format!("{i}"),
                i % 10 == 0,
            )
        })
        .collect();
    store.insert_clicks(&clicks).await.unwrap();
    assert_eq!(store.count_clicks().await.unwrap(), 1203);
    assert_eq!(
        store.click(&clicks[7].id).await.unwrap(),
        Some(clicks[7].clone())
    );
    let recent = store
        .partner_clicks(&jane.id, t0(), t0() + Duration::days(1), 5)
        .await
        .unwrap();
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0].id, clicks[1202].id, "newest first");
}

async fn a_clicks_partner_is_found_by_its_id(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let l = link(&jane, "jane-partner", None);
    store.insert_link(&l).await.unwrap();
    let c = click(&l, t0(), "1", false);
    store.insert_clicks(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(
        store.click_partner(&c.id).await.unwrap(),
        Some(jane.id.clone())
    );
    let unknown = tribute_core::ids::ClickId::generate();
    assert_eq!(store.click_partner(&unknown).await.unwrap(), None);
}

async fn replaying_a_click_batch_stores_nothing_twice(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let l = link(&jane, "jane-web", None);
    store.insert_link(&l).await.unwrap();
    let clicks: Vec<Click> = (0..3)
        .map(|i| click(&l, t0(), &format!("{i}"), false))
        .collect();
    store.insert_clicks(&clicks).await.unwrap();
    store.insert_clicks(&clicks).await.unwrap();
    assert_eq!(store.count_clicks().await.unwrap(), 3);
}

async fn metrics_count_unique_clicks_once_per_visitor_link_and_day(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let web = link(&jane, "jane-web", Some("website"));
    let social = link(&jane, "jane-social", Some("social"));
    store.insert_link(&web).await.unwrap();
    store.insert_link(&social).await.unwrap();
    let day2 = t0() + Duration::days(1);
    let clicks = vec![
        click(&web, t0(), "a", false),
        click(&web, t0() + Duration::hours(1), "a", false), // same visitor, link, day
        click(&web, day2, "a", false),                      // next day: unique again
        click(&web, t0(), "b", false),
        click(&social, t0(), "a", false), // other link: unique again
        click(&web, t0(), "bot", true),
        click(&social, t0(), "bot", true),
    ];
    store.insert_clicks(&clicks).await.unwrap();
    let m = store
        .partner_metrics(&jane.id, t0() - Duration::days(1), t0() + Duration::days(3))
        .await
        .unwrap();
    assert_eq!(
        (m.totals.clicks, m.totals.unique_clicks, m.totals.bot_clicks),
        (5, 4, 2)
    );
    let by: Vec<_> = m
        .by_source
        .iter()
        .map(|s| {
            (
                s.source.as_str(),
                s.counts.clicks,
                s.counts.unique_clicks,
                s.counts.bot_clicks,
            )
        })
        .collect();
    assert_eq!(by, [("social", 1, 1, 1), ("website", 4, 3, 1)]);
}

async fn metrics_respect_the_period_bounds(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let web = link(&jane, "jane-web", None);
    store.insert_link(&web).await.unwrap();
    let clicks = vec![
        click(&web, t0() - Duration::milliseconds(1), "early", false),
        click(&web, t0(), "start", false),
        click(&web, t0() + Duration::days(1), "end", false),
    ];
    store.insert_clicks(&clicks).await.unwrap();
    let m = store
        .partner_metrics(&jane.id, t0(), t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(m.totals.clicks, 1, "from is inclusive, to is exclusive");
    let none = store
        .partner_metrics(&PartnerId::generate(), t0(), t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(none.totals.clicks, 0);
    assert!(none.by_source.is_empty());
}

async fn api_keys_resolve_by_token_until_revoked(store: Store) {
    let (p, jane) = seeded(&store).await;
    let new = NewKey::generate(Scope::Partner);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope: Scope::Partner,
        kind: KeyKind::Secret,
        partner_id: Some(jane.id.clone()),
        program_id: Some(p.id.clone()),
        name: Some("jane's key".into()),
        created_at: t0(),
        revoked_at: None,
    };
    store.insert_api_key(&key, &new.hash).await.unwrap();
    let found = store.api_key_by_token(&new.token).await.unwrap().unwrap();
    assert_eq!(found, key);
    assert_eq!(
        found.principal(),
        Some(Principal::Partner {
            partner_id: jane.id.clone(),
            program_id: p.id.clone()
        })
    );
    assert_eq!(
        store.api_key_by_token("trb_partner_wrong").await.unwrap(),
        None
    );
    assert!(store.revoke_api_key(&key.id, t0()).await.unwrap());
    assert_eq!(store.api_key_by_token(&new.token).await.unwrap(), None);
}

async fn each_click_reads_back_its_own_user_agent(store: Store) {
    let (_p, jane) = seeded(&store).await;
    let l = link(&jane, "jane-web", None);
    store.insert_link(&l).await.unwrap();
    let mut clicks: Vec<Click> = (0..6)
        .map(|i| click(&l, t0(), &format!("{i}"), false))
        .collect();
    clicks[1].user_agent = Some("curl/8.5.0".into());
    clicks[2].user_agent = None;
    clicks[3].user_agent = Some("Mozilla/5.0 (iPhone)".into());
    store.insert_clicks(&clicks[..3]).await.unwrap();
    // A later batch repeats a user agent already stored.
    store.insert_clicks(&clicks[3..]).await.unwrap();
    for c in &clicks {
        assert_eq!(store.click(&c.id).await.unwrap().as_ref(), Some(c));
    }
}
