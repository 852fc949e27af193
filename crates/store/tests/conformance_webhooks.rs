//! Storage conformance for webhooks: the outbox written in the transaction
//! of the change it reports (one row per endpoint that subscribes and may
//! see it), the leases senders claim deliveries with, attempts and their
//! results, endpoint health and secrets; and for inbound integrations: the
//! delivery log that processes a provider's delivery once, and the
//! provider ids that name a conversion.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tribute_core::attribution::ModelKind;
use tribute_core::click::Click;
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::identity::{click_key, Claim};
use tribute_core::ids::{
    ConversionId, IntegrationId, RewardRuleId, WebhookDeliveryId, WebhookEndpointId,
};
use tribute_core::integration::IntegrationKind;
use tribute_core::partner::{Partner, PartnerStatus};
use tribute_core::program::Program;
use tribute_core::tracking::Conversion;
use tribute_core::webhook::{
    CommissionData, ConversionData, CreditData, EndpointDisabledData, Envelope, EventFilter,
    PartnerData, WebhookSecret, DISABLE_AFTER, PAYLOAD_VERSION,
};
use tribute_store::{
    AttemptResult, ClaimedDelivery, EndpointHealth, InboundStart, InboundStatus, Journey,
    NewRefund, Page, Recorded, Recording, RefundKind, Store, StoreError, StoredDelivery,
    StoredEndpoint, StoredInboundDelivery, StoredIntegration,
};

use common::*;

conformance!(
    a_program_without_endpoints_enqueues_nothing,
    an_endpoint_gets_its_events_and_a_disabled_or_other_programs_endpoint_none,
    a_partner_scoped_endpoint_gets_only_its_partners_events_and_credit,
    an_event_has_one_msg_id_per_audience_and_exists_only_if_its_change_commits,
    claimers_never_share_a_delivery_and_a_lease_must_end_before_the_next_attempt,
    an_attempt_moves_its_delivery_on_and_a_replay_resends_it_with_its_msg_id,
    an_endpoint_failing_past_the_period_is_disabled_once_with_a_notice_and_event,
    an_inbound_delivery_is_processed_once_and_a_failed_one_again_under_its_id,
    a_conversion_is_found_by_order_id_or_saved_ref_and_the_first_ref_stays,
    a_rotated_secret_signs_until_its_time_and_a_deleted_endpoint_leaves_no_rows,
);

const BIG: Page = Page {
    limit: 1_000,
    offset: 0,
};

type At = DateTime<Utc>;

async fn acme(db: &Store, name: &str) -> Program {
    let p = program(name);
    db.insert_program(&p).await.unwrap();
    p
}

async fn join(db: &Store, p: &Program, slug: &str) -> Partner {
    let who = partner(p, slug, PartnerStatus::Active);
    db.insert_partner(&who).await.unwrap();
    who
}

/// An enabled endpoint of `p` for `events` (empty: all), scoped to
/// `partner` when given, stored.
async fn hook(db: &Store, p: &Program, to: Option<&Partner>, ev: &[&str]) -> StoredEndpoint {
    let mut e = webhook_endpoint(p);
    e.url = format!("https://hooks.example.com/{}", e.id);
    e.events = EventFilter::parse("events", &strings(ev)).unwrap();
    e.partner_id = to.map(|p| p.id.clone());
    db.insert_endpoint(&e).await.unwrap();
    e
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

async fn deliveries(db: &Store, e: &StoredEndpoint) -> Vec<StoredDelivery> {
    db.endpoint_deliveries(&e.id, BIG).await.unwrap()
}

/// One delivery of an endpoint, as listed.
async fn delivery(db: &Store, e: &StoredEndpoint, id: &WebhookDeliveryId) -> StoredDelivery {
    let all = deliveries(db, e).await;
    let found = all.into_iter().find(|d| d.id == id.as_str());
    found.expect("listed")
}

/// The event types an endpoint was sent, sorted, space separated.
async fn kinds(db: &Store, e: &StoredEndpoint) -> String {
    let all = deliveries(db, e).await;
    let mut k: Vec<&str> = all.iter().map(|d| d.event_type.as_str()).collect();
    k.sort();
    k.join(" ")
}

/// The (msg_id, envelope) of an endpoint's deliveries of `kind`, oldest first.
async fn envelopes(db: &Store, e: &StoredEndpoint, kind: &str) -> Vec<(String, Envelope)> {
    let mut all = deliveries(db, e).await;
    all.retain(|d| d.event_type == kind);
    all.reverse();
    let read = |d: StoredDelivery| (d.msg_id, serde_json::from_value(d.payload).unwrap());
    all.into_iter().map(read).collect()
}

/// The data of the first envelope of `kind` an endpoint was sent.
async fn first<T: serde::de::DeserializeOwned>(db: &Store, e: &StoredEndpoint, kind: &str) -> T {
    data(&envelopes(db, e, kind).await[0].1)
}

/// (partner, amount) of each credit a `conversion.created` carries, sorted.
fn credits(d: &ConversionData) -> Vec<(String, i64)> {
    let pair = |c: &CreditData| (c.partner_id.clone(), c.amount);
    let mut v: Vec<_> = d.credits.iter().map(pair).collect();
    v.sort();
    v
}

fn data<T: serde::de::DeserializeOwned>(e: &Envelope) -> T {
    serde_json::from_value(e.data.clone()).unwrap()
}

/// Claim up to 100 deliveries due at `now`, leased for a minute.
async fn claim(db: &Store, owner: &str, now: At) -> Vec<ClaimedDelivery> {
    let until = now + Duration::minutes(1);
    db.claim_deliveries(owner, now, until, 100).await.unwrap()
}

/// `o`'s attempt at `d` started at `at`, answered with status `c` in 120
/// ms, to be tried again at `n`: whether `o` still held the lease.
async fn finish(db: &Store, o: &str, d: &ClaimedDelivery, at: At, c: u16, n: Option<At>) -> bool {
    let delivered = (200..300).contains(&c);
    let r = AttemptResult {
        started_at: at,
        duration_ms: 120,
        status_code: Some(c),
        error: (!delivered).then(|| format!("HTTP {c}")),
        response: Some("body".into()),
        next_attempt_at: n,
        delivered,
    };
    db.finish_attempt(o, d, &r).await.unwrap()
}

/// A 10% sale rule on `p`.
async fn ten_percent(db: &Store, p: &Program) {
    let terms = json!({"name": "Ten percent", "event": "sale", "kind": "percentage",
                       "rate_bps": 1000, "duration": "lifetime"});
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: p.id.clone(),
        version: 1,
        terms: RuleTerms::from_json(&terms).unwrap(),
    };
    db.insert_reward_rule(&rule, t0()).await.unwrap();
}

/// A recording of order `order` of `value` at `hours(5)` on the journey
/// `keys` find, credited linearly; refused unless `ok`.
fn recording(p: &Program, keys: Vec<String>, order: &str, v: i64, ok: bool) -> Recording<String> {
    let (program, order) = (p.clone(), order.to_owned());
    let id = ConversionId::generate();
    Recording {
        external_id: Some(order.clone()),
        idempotency_key: None,
        journey: Journey {
            program: p.id.clone(),
            keys,
            claim: Claim::Verified,
            click_id: None,
            extra: vec![],
        },
        supersedes: vec![],
        decide: Box::new(move |person, touches| {
            if !ok {
                return Err("refused".to_owned());
            }
            let a = attributed(&touches, hours(5), ModelKind::Linear);
            let mut c = conversion(&program, Some(person), v, hours(5), a);
            c.id = id.clone();
            c.external_id = Some(order.clone());
            Ok(c)
        }),
        screening: Default::default(),
    }
}

/// Record order `order` of `v` for a person (of that name) touched by `by`.
async fn sale(db: &Store, p: &Program, by: &[&Partner], order: &str, v: i64) -> Conversion {
    touched_person(db, p, order, by).await;
    let r = recording(p, vec![key_of("anonymous_id", order)], order, v, true);
    match db.record_conversion(r).await.unwrap() {
        Recorded::Written { conversion, .. } => conversion,
        other => panic!("expected the sale written, got {other:?}"),
    }
}

async fn refund(db: &Store, c: &Conversion, amount: i64) {
    let r = NewRefund {
        conversion_id: c.id.clone(),
        external_id: "re_1".into(),
        kind: RefundKind::Refund,
        amount,
        reason: "returned".into(),
    };
    db.refund_conversion(&r, hours(6)).await.unwrap();
}

async fn a_program_without_endpoints_enqueues_nothing(db: Store) {
    let s = seeded(&db).await;
    let elsewhere = hook(&db, &acme(&db, "Other").await, None, &[]).await;
    ten_percent(&db, &s.program).await;
    let c = sale(&db, &s.program, &[&s.jane], "o-1", 1000).await;
    refund(&db, &c, 400).await;
    // No row at all, and none for the other program's endpoint.
    assert_eq!(db.count_deliveries(None).await.unwrap(), 0);
    assert!(deliveries(&db, &elsewhere).await.is_empty());
    // An endpoint added later gets what happens from then on only.
    let late = hook(&db, &s.program, None, &[]).await;
    assert!(deliveries(&db, &late).await.is_empty(), "no backfill");
    join(&db, &s.program, "olga").await;
    assert_eq!(kinds(&db, &late).await, "partner.created");
}

async fn an_endpoint_gets_its_events_and_a_disabled_or_other_programs_endpoint_none(db: Store) {
    let p = acme(&db, "Acme").await;
    let all = hook(&db, &p, None, &[]).await;
    let some = ["conversion.created", "commission.created"];
    let picky = hook(&db, &p, None, &some).await;
    let mut disabled = hook(&db, &p, None, &[]).await;
    disabled.enabled = false;
    disabled.disabled_reason = Some("by hand".into());
    db.update_endpoint(&disabled).await.unwrap();
    let elsewhere = hook(&db, &acme(&db, "Other").await, None, &[]).await;
    let jane = join(&db, &p, "jane").await;
    ten_percent(&db, &p).await;
    let c = sale(&db, &p, &[&jane], "o-1", 2500).await;
    let every = "commission.created conversion.created partner.created";
    assert_eq!(kinds(&db, &all).await, every);
    assert_eq!(kinds(&db, &picky).await, every[..37]);
    assert_eq!(kinds(&db, &disabled).await, "");
    assert_eq!(kinds(&db, &elsewhere).await, "");
    for d in deliveries(&db, &all).await {
        assert_eq!((d.status.as_str(), d.attempts), ("pending", 0));
        assert_eq!(d.next_attempt_at, Some(d.created_at), "due at once");
    }
    let (_, created) = &envelopes(&db, &all, "partner.created").await[0];
    let head = (created.kind.as_str(), created.version, created.timestamp);
    assert_eq!(head, ("partner.created", PAYLOAD_VERSION, t0()));
    let pd: PartnerData = data(created);
    assert_eq!((pd.id, pd.slug), (jane.id.to_string(), "jane".into()));
    let (_, conv) = &envelopes(&db, &all, "conversion.created").await[0];
    let head = (conv.kind.as_str(), conv.version, conv.timestamp);
    assert_eq!(head, ("conversion.created", PAYLOAD_VERSION, c.received_at));
    let cd: ConversionData = data(conv);
    assert_eq!(cd.id, c.id.to_string());
    assert_eq!(cd.external_id.as_deref(), Some("o-1"));
    assert_eq!((cd.value, cd.currency.as_str()), (2500, "EUR"));
    assert_eq!(credits(&cd), [(jane.id.to_string(), 2500)]);
    let cm: CommissionData = first(&db, &picky, "commission.created").await;
    assert_eq!(cm.partner_id, jane.id.to_string());
    assert_eq!(cm.conversion_id, Some(c.id.to_string()));
    assert_eq!((cm.amount, cm.currency.as_str()), (250, "EUR"));
}

async fn a_partner_scoped_endpoint_gets_only_its_partners_events_and_credit(db: Store) {
    let s = seeded(&db).await;
    let owner = hook(&db, &s.program, None, &[]).await;
    let janes = hook(&db, &s.program, Some(&s.jane), &[]).await;
    join(&db, &s.program, "olga").await;
    assert_eq!(kinds(&db, &owner).await, "partner.created");
    assert_eq!(kinds(&db, &janes).await, "", "another's signup");
    ten_percent(&db, &s.program).await;
    let c = sale(&db, &s.program, &[&s.jane, &s.sam], "o-1", 1000).await;
    refund(&db, &c, 1000).await;
    let (jane, sam) = ((s.jane.id.to_string(), 500), (s.sam.id.to_string(), 500));
    let (owner_msg, env) = &envelopes(&db, &owner, "conversion.created").await[0];
    let mut want = vec![jane.clone(), sam];
    want.sort();
    assert_eq!(credits(&data(env)), want, "the owner sees every credit");
    let (jane_msg, env) = &envelopes(&db, &janes, "conversion.created").await[0];
    let cd: ConversionData = data(env);
    assert_eq!(credits(&cd), [jane], "her own only");
    assert_eq!((cd.id, cd.value), (c.id.to_string(), 1000));
    assert_ne!(owner_msg, jane_msg, "another body, another message");
    // No refund (the owner's only), no one else's commission.
    let mine = "commission.created commission.reversed conversion.created";
    assert_eq!(kinds(&db, &janes).await, mine);
    for kind in ["commission.created", "commission.reversed"] {
        assert_eq!(envelopes(&db, &owner, kind).await.len(), 2, "{kind}");
        for (_, e) in envelopes(&db, &janes, kind).await {
            let cm: CommissionData = data(&e);
            assert_eq!(cm.partner_id, s.jane.id.to_string(), "{kind}");
        }
    }
    assert_eq!(kinds(&db, &owner).await.matches("refunded").count(), 1);
}

/// conversion id → msg_id of an endpoint's `conversion.created` messages.
async fn conversion_msgs(db: &Store, e: &StoredEndpoint) -> BTreeMap<String, String> {
    let list = envelopes(db, e, "conversion.created").await;
    let n = list.len();
    let by_id = |(msg, env): (String, Envelope)| (data::<ConversionData>(&env).id, msg);
    let map: BTreeMap<String, String> = list.into_iter().map(by_id).collect();
    assert_eq!(map.len(), n, "one message per conversion");
    map
}

fn by_click(s: &Seed, click: &Click, order: &str, ok: bool) -> Recording<String> {
    let keys = vec![click_key(click.id.as_str())];
    let mut r = recording(&s.program, keys, order, 300, ok);
    r.journey.click_id = Some(click.id.to_string());
    r
}

async fn an_event_has_one_msg_id_per_audience_and_exists_only_if_its_change_commits(db: Store) {
    let s = seeded(&db).await;
    let owner1 = hook(&db, &s.program, None, &[]).await;
    let owner2 = hook(&db, &s.program, None, &["conversion.created"]).await;
    let jane1 = hook(&db, &s.program, Some(&s.jane), &[]).await;
    let jane2 = hook(&db, &s.program, Some(&s.jane), &[]).await;
    // Recorded at once (on SQLite in one group): a refused one and a
    // duplicate order among them must leave no message behind.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let partner = if i % 2 == 0 { &s.jane } else { &s.sam };
        let click = clicked(&db, partner, hours(1), false).await;
        let order = format!("order-{}", if i == 11 { 1 } else { i });
        let (db, r) = (db.clone(), by_click(&s, &click, &order, i != 5));
        tasks.push(tokio::spawn(async move { db.record_conversion(r).await }));
    }
    let mut written = BTreeSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(Recorded::Written { conversion, .. }) => {
                written.insert(conversion.id.to_string());
            }
            Ok(Recorded::Exists(_) | Recorded::Refused(_)) => {}
            Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "external_id"),
            Err(e) => panic!("recording failed: {e:?}"),
        }
    }
    // Twelve, less the refused one and the duplicate.
    assert_eq!(written.len(), 10);
    let owners = conversion_msgs(&db, &owner1).await;
    assert_eq!(owners.keys().cloned().collect::<BTreeSet<_>>(), written);
    // The same msg_id on every endpoint of an audience.
    assert_eq!(conversion_msgs(&db, &owner2).await, owners);
    let janes = conversion_msgs(&db, &jane1).await;
    assert_eq!(janes.len(), 6, "jane's conversions only");
    assert_eq!(conversion_msgs(&db, &jane2).await, janes);
    for (conv, msg) in &janes {
        assert_ne!(&owners[conv], msg, "her audience has its own message");
    }
    // The same order again is answered with the first and adds nothing.
    let before = deliveries(&db, &owner1).await.len();
    let click = clicked(&db, &s.jane, hours(1), false).await;
    let r = by_click(&s, &click, "order-3", true);
    let again = db.record_conversion(r).await;
    assert!(matches!(again, Ok(Recorded::Exists(_))), "{again:?}");
    assert_eq!(deliveries(&db, &owner1).await.len(), before);
    // A partner refused for its slug writes no partner.created.
    let twin = partner(&s.program, "jane", PartnerStatus::Active);
    assert!(db.insert_partner(&twin).await.is_err());
    assert_eq!(deliveries(&db, &owner1).await.len(), before);
}

async fn claimers_never_share_a_delivery_and_a_lease_must_end_before_the_next_attempt(db: Store) {
    let p = acme(&db, "Acme").await;
    let e = hook(&db, &p, None, &[]).await;
    for i in 0..12 {
        join(&db, &p, &format!("p{i}")).await;
    }
    let (now, lease) = (hours(1), hours(1) + Duration::seconds(30));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (db, owner) = (db.clone(), format!("node-{i}"));
        tasks.push(tokio::spawn(async move {
            let got = db.claim_deliveries(&owner, now, lease, 5).await;
            (got.unwrap(), owner)
        }));
    }
    let mut holder: BTreeMap<String, (String, ClaimedDelivery)> = BTreeMap::new();
    for t in tasks {
        let (got, owner) = t.await.unwrap();
        for d in got {
            assert_eq!((d.attempt, &d.endpoint_id), (1, &e.id));
            let twice = holder.insert(d.id.to_string(), (owner.clone(), d));
            assert!(twice.is_none(), "two claimers got one delivery");
        }
    }
    assert_eq!(holder.len(), 12, "every delivery claimed once");
    assert!(claim(&db, "node-x", now).await.is_empty(), "all leased");
    assert!(claim(&db, "node-x", lease).await.is_empty(), "to the end");
    let after = lease + Duration::milliseconds(1);
    let again = claim(&db, "node-z", after).await;
    assert_eq!(again.len(), 12, "leases that ran out free their deliveries");
    let retaken = &again[0];
    let (stale, first) = &holder[retaken.id.as_str()];
    assert_eq!(retaken.attempt, 2, "the next attempt");
    assert_eq!(retaken.msg_id, first.msg_id);
    let held = finish(&db, stale, first, after, 500, Some(hours(9))).await;
    assert!(!held, "the stale owner no longer holds it");
    let d = delivery(&db, &e, &retaken.id).await;
    assert_eq!((d.status.as_str(), d.attempts), ("pending", 2));
    assert_eq!(d.next_attempt_at, Some(t0()), "not moved to hours(9)");
    // The stale attempt is logged, without a next attempt.
    let a = &d.attempt_log;
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].attempt, a[0].status_code), (1, Some(500)));
    assert_eq!(a[0].next_attempt_at, None);
    assert!(claim(&db, "node-y", after).await.is_empty(), "still leased");
    assert!(finish(&db, "node-z", retaken, after, 200, None).await);
}

async fn an_attempt_moves_its_delivery_on_and_a_replay_resends_it_with_its_msg_id(db: Store) {
    let p = acme(&db, "Acme").await;
    let e = hook(&db, &p, None, &[]).await;
    for slug in ["retried", "delivered", "failed"] {
        join(&db, &p, slug).await;
    }
    let now = hours(1);
    let mut by = BTreeMap::new();
    for d in claim(&db, "node", now).await {
        let env: Envelope = serde_json::from_str(&d.payload).unwrap();
        by.insert(data::<PartnerData>(&env).slug, d);
    }
    assert_eq!(by.len(), 3);
    let (retried, delivered, failed) = (&by["retried"], &by["delivered"], &by["failed"]);
    let next = hours(2);
    assert!(finish(&db, "node", retried, now, 500, Some(next)).await);
    assert!(finish(&db, "node", delivered, now, 200, None).await);
    assert!(finish(&db, "node", failed, now, 400, None).await);
    let r = delivery(&db, &e, &retried.id).await;
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 1));
    assert_eq!(r.next_attempt_at, Some(next));
    let d = delivery(&db, &e, &delivered.id).await;
    let done_at = Some(now + Duration::milliseconds(120));
    assert_eq!((d.status.as_str(), d.delivered_at), ("delivered", done_at));
    assert_eq!(delivery(&db, &e, &failed.id).await.status, "failed");
    let early = claim(&db, "node", next - Duration::seconds(1)).await;
    assert!(early.is_empty(), "not due before its next attempt");
    let second = claim(&db, "node", next).await;
    assert_eq!(second.len(), 1);
    assert_eq!((&second[0].id, second[0].attempt), (&retried.id, 2));
    assert!(finish(&db, "node", &second[0], next, 204, None).await);
    // Delivered and failed are not claimed again.
    assert!(claim(&db, "node", hours(1000)).await.is_empty());
    db.replay_delivery(&failed.id, hours(3)).await.unwrap();
    let replayed = claim(&db, "node", hours(3)).await;
    assert_eq!(replayed.len(), 1);
    let r = &replayed[0];
    assert_eq!((&r.id, r.attempt), (&failed.id, 2));
    assert_eq!(r.msg_id, failed.msg_id, "the same webhook-id");
    // A replay mid-attempt takes it from its holder, whose result is dropped.
    db.replay_delivery(&failed.id, hours(3)).await.unwrap();
    assert!(!finish(&db, "node", r, hours(3), 200, None).await);
    assert_eq!(delivery(&db, &e, &failed.id).await.status, "pending");
    let unknown = WebhookDeliveryId::generate();
    let missing = db.replay_delivery(&unknown, hours(3)).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    let log = delivery(&db, &e, &retried.id).await.attempt_log;
    let seen: Vec<_> = log.iter().map(|a| (a.attempt, a.status_code)).collect();
    assert_eq!(seen, [(1, Some(500)), (2, Some(204))]);
    assert_eq!(log[0].next_attempt_at, Some(next));
    assert_eq!(log[1].next_attempt_at, None);
    assert_eq!((log[0].started_at, log[1].started_at), (now, next));
    assert_eq!(log[0].error.as_deref(), Some("HTTP 500"));
    assert_eq!(log[1].response.as_deref(), Some("body"));
}

async fn health(db: &Store, e: &StoredEndpoint, ok: bool, gone: bool, at: At) -> EndpointHealth {
    let h = db.endpoint_result(&e.id, ok, gone, at, DISABLE_AFTER);
    h.await.unwrap()
}

async fn load(db: &Store, e: &StoredEndpoint) -> StoredEndpoint {
    db.endpoint(&e.id).await.unwrap().expect("the endpoint")
}

async fn an_endpoint_failing_past_the_period_is_disabled_once_with_a_notice_and_event(db: Store) {
    use EndpointHealth::{Disabled, Failing, Healthy};
    let p = acme(&db, "Acme").await;
    let flaky = hook(&db, &p, None, &[]).await;
    let watcher = hook(&db, &p, None, &[]).await;
    let gone = hook(&db, &p, None, &[]).await;
    let jane = join(&db, &p, "jane").await;
    let jane_only = hook(&db, &p, Some(&jane), &[]).await;
    let notices = || async { db.notices(Some(&p.id), BIG).await.unwrap() };
    let start = hours(1);
    let (later, end) = (start + Duration::days(4), start + Duration::days(5));
    assert_eq!(health(&db, &flaky, false, false, start).await, Failing);
    assert_eq!(load(&db, &flaky).await.failing_since, Some(start));
    assert_eq!(health(&db, &flaky, false, false, later).await, Failing);
    // Within the period: the streak goes on, the endpoint stays.
    let f = load(&db, &flaky).await;
    assert_eq!((f.failing_since, f.enabled), (Some(start), true));
    assert!(notices().await.is_empty());
    assert_eq!(health(&db, &flaky, false, false, end).await, Disabled);
    let after = end + Duration::days(1);
    assert_eq!(health(&db, &flaky, false, false, after).await, Failing);
    let f = load(&db, &flaky).await;
    assert!(!f.enabled);
    let reason = f.disabled_reason.expect("a reason");
    let n = notices().await;
    assert_eq!(n.len(), 1, "disabled once: {n:?}");
    assert_eq!(n[0].kind, "endpoint.disabled");
    assert_eq!(n[0].created_at, end);
    assert_eq!(n[0].subject_id.as_deref(), Some(flaky.id.as_str()));
    let told = envelopes(&db, &watcher, "endpoint.disabled").await;
    assert_eq!((told.len(), told[0].1.timestamp), (1, end));
    let ed: EndpointDisabledData = data(&told[0].1);
    assert_eq!((ed.endpoint_id, ed.reason), (flaky.id.to_string(), reason));
    assert_eq!(ed.url, flaky.url);
    // Not to itself, nor to a partner's endpoint.
    assert_eq!(kinds(&db, &flaky).await, "partner.created");
    assert_eq!(kinds(&db, &jane_only).await, "");
    assert_eq!(health(&db, &gone, false, true, start).await, Disabled);
    assert!(!load(&db, &gone).await.enabled, "410 disables at once");
    assert_eq!(notices().await.len(), 2);
    assert_eq!(envelopes(&db, &watcher, "endpoint.disabled").await.len(), 2);
    assert_eq!(health(&db, &watcher, false, false, start).await, Failing);
    assert_eq!(health(&db, &watcher, true, false, later).await, Healthy);
    assert_eq!(load(&db, &watcher).await.failing_since, None);
    // Deliveries of disabled endpoints wait; re-enabled, they are sent.
    let due = claim(&db, "node", hours(1000)).await;
    assert!(due.iter().all(|d| d.endpoint_id == watcher.id), "{due:?}");
    let mut back = load(&db, &flaky).await;
    (back.enabled, back.disabled_reason, back.failing_since) = (true, None, None);
    db.update_endpoint(&back).await.unwrap();
    let resumed = claim(&db, "node", hours(1000)).await;
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].endpoint_id, flaky.id);
    assert_eq!(resumed[0].event_type, "partner.created");
}

async fn start(db: &Store, i: &StoredIntegration, key: &str, at: At) -> InboundStart {
    let body = "{\"id\":1}";
    let started = db.start_inbound_delivery(&i.id, key, None, body, at).await;
    started.unwrap()
}

fn duplicate(s: InboundStart) -> StoredInboundDelivery {
    match s {
        InboundStart::Duplicate(d) => d,
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

async fn an_inbound_delivery_is_processed_once_and_a_failed_one_again_under_its_id(db: Store) {
    use InboundStatus::{Failed, Processed, Processing, Rejected};
    let p = acme(&db, "Acme").await;
    let integration = |kind| StoredIntegration {
        id: IntegrationId::generate(),
        program_id: p.id.clone(),
        kind,
        secret: "whsec_provider".into(),
        mapping: json!({}),
        created_at: t0(),
        updated_at: t0(),
    };
    let stripe = integration(IntegrationKind::Stripe);
    let shopify = integration(IntegrationKind::Shopify);
    db.insert_integration(&stripe).await.unwrap();
    db.insert_integration(&shopify).await.unwrap();
    let InboundStart::Process(one) = start(&db, &stripe, "evt_1", hours(1)).await else {
        panic!("a new key is processed");
    };
    let soon = Duration::minutes(1);
    let d = duplicate(start(&db, &stripe, "evt_1", hours(1) + soon).await);
    assert_eq!((&d.id, d.status), (&one.to_string(), Processing));
    let done = json!({"conversions": ["cnv_1"]});
    let ended = db.finish_inbound_delivery(&one, Processed, &done, None, hours(1));
    ended.await.unwrap();
    let d = duplicate(start(&db, &stripe, "evt_1", hours(3)).await);
    assert_eq!((d.status, d.attempts, d.result), (Processed, 1, Some(done)));
    let other = start(&db, &shopify, "evt_1", hours(3)).await;
    assert!(matches!(other, InboundStart::Process(_)), "per integration");
    let InboundStart::Process(two) = start(&db, &stripe, "evt_2", hours(4)).await else {
        panic!("a new key is processed");
    };
    let (none, boom) = (json!({}), Some("boom"));
    let ended = db.finish_inbound_delivery(&two, Failed, &none, boom, hours(4));
    ended.await.unwrap();
    let retry = start(&db, &stripe, "evt_2", hours(5)).await;
    assert_eq!(retry, InboundStart::Process(two.clone()), "under its id");
    let d = db.inbound_delivery(&two).await.unwrap().unwrap();
    assert_eq!((d.status, d.attempts, d.error), (Processing, 2, None));
    assert_eq!(d.received_at, hours(4), "still the first delivery");
    let topic = Some("charge.refunded");
    let logged = db.log_rejected_delivery(&stripe.id, topic, "bad", hours(6));
    let bad = logged.await.unwrap();
    let r = db.inbound_delivery(&bad).await.unwrap().unwrap();
    assert_eq!((r.verified, r.status), (false, Rejected));
    assert_eq!(r.error.as_deref(), Some("bad"));
    assert_eq!(r.topic.as_deref(), topic);
    assert_eq!((r.body, r.delivery_key), (None, None), "no body, no key");
    let restart = |id| db.restart_inbound_delivery(id, hours(5) + soon);
    assert_eq!(restart(&bad).await.unwrap(), None, "unverified");
    assert_eq!(restart(&two).await.unwrap(), None, "in progress");
    let again = restart(&one).await.unwrap().unwrap();
    assert_eq!((again.status, again.attempts), (Processing, 2));
    assert_eq!(again.body.as_deref(), Some("{\"id\":1}"), "kept to re-run");
    let listed = db.inbound_deliveries(&stripe.id, BIG).await.unwrap();
    let ids: Vec<String> = listed.into_iter().map(|d| d.id).collect();
    let want = [&bad, &two, &one].map(|i| i.to_string());
    assert_eq!(ids, want, "newest first");
}

async fn a_conversion_is_found_by_order_id_or_saved_ref_and_the_first_ref_stays(db: Store) {
    let s = seeded(&db).await;
    let p = &s.program.id;
    let invoice = sale(&db, &s.program, &[&s.jane], "in_1", 900).await.id;
    let other = sale(&db, &s.program, &[&s.sam], "in_2", 500).await.id;
    let find = |refs: &'static [&'static str]| {
        let (db, p) = (db.clone(), p.clone());
        async move { db.conversion_by_ref(&p, &strings(refs)).await.unwrap() }
    };
    assert_eq!(find(&["in_1"]).await, Some(invoice.clone()), "by order id");
    assert_eq!(find(&["pi_1"]).await, None);
    let refs = strings(&["pi_1", "ch_1"]);
    db.save_conversion_refs(p, &invoice, &refs).await.unwrap();
    assert_eq!(find(&["ch_1"]).await, Some(invoice.clone()), "by a ref");
    let refs = strings(&["ch_1", "pi_2"]);
    db.save_conversion_refs(p, &other, &refs).await.unwrap();
    assert_eq!(find(&["ch_1"]).await, Some(invoice.clone()), "the first");
    assert_eq!(find(&["nope", "pi_2"]).await, Some(other.clone()));
    assert_eq!(find(&["nope", "in_9"]).await, None);
    // Another program's refs and orders are not this one's.
    let elsewhere = acme(&db, "Other").await;
    let mine = strings(&["pi_1", "in_1"]);
    let found = db.conversion_by_ref(&elsewhere.id, &mine).await.unwrap();
    assert_eq!(found, None);
}

async fn a_rotated_secret_signs_until_its_time_and_a_deleted_endpoint_leaves_no_rows(db: Store) {
    let p = acme(&db, "Acme").await;
    let e = hook(&db, &p, None, &[]).await;
    let kept = hook(&db, &p, None, &[]).await;
    assert_eq!(load(&db, &e).await, e);
    let old = e.secret.clone();
    let mut rotated = e.clone();
    rotated.secret = WebhookSecret::generate();
    rotated.previous_secret = Some((old.clone(), hours(24)));
    rotated.url = "https://hooks.example.com/new".into();
    rotated.description = "CRM".into();
    rotated.events = EventFilter::parse("events", &strings(&["partner.created"])).unwrap();
    db.update_endpoint(&rotated).await.unwrap();
    let loaded = load(&db, &e).await;
    assert_eq!(loaded, rotated);
    let new = &rotated.secret;
    assert_eq!(loaded.signing_secrets(hours(1)), [new, &old]);
    assert_eq!(loaded.signing_secrets(hours(24)), [new], "not at its end");
    let listed = db.endpoints(Some(&p.id), BIG).await.unwrap();
    assert!(listed.len() == 2 && listed.contains(&rotated) && listed.contains(&kept));
    let mut unknown = rotated.clone();
    unknown.id = WebhookEndpointId::generate();
    let missing = db.update_endpoint(&unknown).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    join(&db, &p, "jane").await;
    let claimed = claim(&db, "node", hours(1)).await;
    assert_eq!(claimed.len(), 2, "one per endpoint");
    for d in &claimed {
        assert!(finish(&db, "node", d, hours(1), 503, Some(hours(2))).await);
    }
    let mine = claimed.iter().find(|d| d.endpoint_id == e.id).unwrap();
    let to = db.delivery_endpoint(&mine.id).await.unwrap();
    assert_eq!(to, Some(e.id.clone()));
    db.delete_endpoint(&e.id).await.unwrap();
    assert_eq!(db.endpoint(&e.id).await.unwrap(), None);
    assert!(deliveries(&db, &e).await.is_empty());
    assert_eq!(db.delivery_endpoint(&mine.id).await.unwrap(), None);
    let twice = db.delete_endpoint(&e.id).await;
    assert!(matches!(twice, Err(StoreError::NotFound(_))), "{twice:?}");
    // Another endpoint's deliveries and attempts stay.
    let left = deliveries(&db, &kept).await;
    assert_eq!((left.len(), left[0].attempt_log.len()), (1, 1));
    let due = claim(&db, "node", hours(2)).await;
    assert!(due.iter().all(|d| d.endpoint_id == kept.id) && due.len() == 1);
}
