//! Storage conformance for commissions and the ledger: a conversion accrues
//! its partners' commissions split by credit and its team leads' overrides
//! in its own transaction; release, refunds (partial, repeated, before and
//! after release), adjustments and manual assignment move them; and the
//! ledger's invariants hold over random sequences of all of these, on both
//! backends:
//! * every stored entry balances (read back through core's check);
//! * each account's balance equals the sum of its entries, as core's
//!   in-memory books replaying the same entries say;
//! * credit and override splits add up exactly;
//! * refunding again and again never reverses more than was accrued.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::json;
use tribute_core::attribution::ModelKind;
use tribute_core::commission::{OverridePlan, RewardRule, RuleTerms};
use tribute_core::ids::{PartnerId, RewardRuleId};
use tribute_core::ledger::{Account, Books, PartnerAccount, PartnerBalance, ProgramAccount};
use tribute_core::partner::{Partner, PartnerStatus};
use tribute_core::program::Program;
use tribute_core::tracking::Conversion;
use tribute_store::{
    CommissionFilter, LedgerFilter, NewRefund, Page, RefundKind, Store, StoreError,
};

use common::*;

conformance!(
    a_conversion_accrues_commissions_split_exactly_by_credit_with_two_levels_of_overrides,
    a_partial_refund_reverses_commissions_and_overrides_pro_rata_and_is_idempotent,
    a_refund_after_release_voids_from_payable_and_repeated_refunds_stop_at_the_accrual,
    release_posts_only_commissions_whose_hold_is_over_and_approval_posts_at_once,
    an_adjustment_needs_a_reason_and_moves_payable,
    manual_assignment_credits_an_unattributed_conversion_and_backfills_its_commission,
    ledger_invariants_hold_over_random_conversions_refunds_and_releases,
);

const BIG: Page = Page {
    limit: 10_000,
    offset: 0,
};

fn rule(p: &Program, terms: serde_json::Value) -> RewardRule {
    RewardRule {
        id: RewardRuleId::generate(),
        program_id: p.id.clone(),
        version: 1,
        terms: RuleTerms::from_json(&terms).unwrap(),
    }
}

async fn partner_under(store: &Store, p: &Program, slug: &str, lead: Option<&Partner>) -> Partner {
    let mut x = partner(p, slug, PartnerStatus::Active);
    x.team_lead_id = lead.map(|l| l.id.clone());
    store.insert_partner(&x).await.unwrap();
    x
}

/// A conversion of `value` by a person touched by `partners` (linear).
async fn sale(
    store: &Store,
    p: &Program,
    anon: &str,
    partners: &[&Partner],
    value: i64,
    at: DateTime<Utc>,
) -> Conversion {
    let (who, touches) = touched_person(store, p, anon, partners).await;
    let c = conversion(
        p,
        Some(who),
        value,
        at,
        attributed(&touches, at, ModelKind::Linear),
    );
    store.insert_conversion(&c).await.unwrap();
    c
}

fn by_partner(cs: &[tribute_store::StoredCommission]) -> BTreeMap<(String, String), i64> {
    cs.iter()
        .map(|c| ((c.partner_id.clone(), c.kind.clone()), c.amount))
        .collect()
}

/// Every entry of the program read back through core's balance check,
/// replayed into core's books, compared with the stored sums.
async fn assert_books_reconcile(store: &Store, p: &Program) -> Books {
    let filter = LedgerFilter {
        program_id: Some(p.id.clone()),
        ..Default::default()
    };
    let entries = store.ledger(&filter, BIG).await.unwrap();
    let mut books = Books::default();
    for e in &entries {
        books
            .record(e.journal_entry().expect("every stored entry balances"))
            .unwrap();
    }
    let stored = store.account_balances(&p.id).await.unwrap();
    let kept: BTreeMap<Account, i64> = books
        .kept_balances()
        .iter()
        .filter(|(_, b)| **b != 0)
        .map(|(a, b)| (a.clone(), *b))
        .collect();
    let stored: BTreeMap<Account, i64> = stored.into_iter().filter(|(_, b)| *b != 0).collect();
    assert_eq!(stored, kept, "stored balances are the sums of the entries");
    let total: i64 = stored.values().sum();
    assert_eq!(total, 0, "the program's accounts sum to zero");
    books
}

async fn a_conversion_accrues_commissions_split_exactly_by_credit_with_two_levels_of_overrides(
    store: Store,
) {
    let s = seeded(&store).await;
    let p = &s.program;
    let top = partner_under(&store, p, "top", None).await;
    let lead = partner_under(&store, p, "lead", Some(&top)).await;
    let ann = partner_under(&store, p, "ann", Some(&lead)).await;
    store
        .insert_reward_rule(
            &rule(
                p,
                json!({"name": "10%", "event": "sale", "kind": "percentage", "rate_bps": 1000}),
            ),
            t0(),
        )
        .await
        .unwrap();
    let plan = OverridePlan::new(vec![1000, 500]).unwrap();
    overrides(&store, p, plan).await;

    let c = sale(&store, p, "a1", &[&ann, &s.jane, &s.sam], 10_001, hours(4)).await;
    let f = CommissionFilter {
        conversion_id: Some(c.id.clone()),
        ..Default::default()
    };
    let cs = store.commissions(&f, BIG).await.unwrap();
    // 10 % of 100.01 is 10.00 (half up), split in thirds: 334 + 333 + 333.
    let got = by_partner(&cs);
    assert_eq!(got[&(ann.id.to_string(), "commission".into())], 334);
    assert_eq!(got[&(s.jane.id.to_string(), "commission".into())], 333);
    assert_eq!(got[&(s.sam.id.to_string(), "commission".into())], 333);
    // Ann's lead earns 10 % of 334 and the lead's lead 5 %: a pool of 15 %
    // (50.1 → 50) split 2:1 between them, exactly.
    assert_eq!(got[&(lead.id.to_string(), "override".into())], 33);
    assert_eq!(got[&(top.id.to_string(), "override".into())], 17);
    let ov = cs.iter().find(|c| c.partner_id == top.id.as_str()).unwrap();
    let ann_commission = cs.iter().find(|c| c.partner_id == ann.id.as_str()).unwrap();
    assert_eq!(ov.derives_from.as_deref(), Some(ann_commission.id.as_str()));
    assert_eq!(ov.explanation["chain"], json!([ann.id, lead.id, top.id]));
    assert_eq!(ov.level, 2);
    assert_eq!(ann_commission.explanation["computation"]["rule_version"], 1);
    assert_eq!(
        ann_commission.explanation["attribution"]["model"],
        json!("linear")
    );
    assert!(cs.iter().all(|c| c.status == "pending"));
    let books = assert_books_reconcile(&store, p).await;
    assert_eq!(
        books.partner_balance(&ann.id),
        PartnerBalance {
            pending: 334,
            payable: 0,
            paid: 0
        }
    );
    assert_eq!(
        store.partner_balance(&lead.id).await.unwrap(),
        PartnerBalance {
            pending: 33,
            payable: 0,
            paid: 0
        }
    );
    assert_eq!(
        books.balance(&Account::Program(p.id.clone(), ProgramAccount::Expense)),
        -(1000 + 50)
    );
}

async fn setup_one_partner(store: &Store) -> (Seed, Partner) {
    let s = seeded(store).await;
    let p = &s.program;
    let lead = partner_under(store, p, "lead", None).await;
    let mut jane = s.jane.clone();
    jane.team_lead_id = Some(lead.id.clone());
    store.update_partner(&jane).await.unwrap();
    store
        .insert_reward_rule(
            &rule(
                p,
                json!({"name": "20%", "event": "sale", "kind": "percentage", "rate_bps": 2000}),
            ),
            t0(),
        )
        .await
        .unwrap();
    let plan = OverridePlan::one_level(1000).unwrap();
    overrides(store, p, plan).await;
    (s, lead)
}

fn refund(c: &Conversion, external: &str, amount: i64) -> NewRefund {
    NewRefund {
        conversion_id: c.id.clone(),
        external_id: external.into(),
        kind: RefundKind::Refund,
        amount,
        reason: "customer returned part of the order".into(),
    }
}

async fn open_of(store: &Store, c: &Conversion) -> BTreeMap<(String, String), (i64, i64)> {
    let f = CommissionFilter {
        conversion_id: Some(c.id.clone()),
        ..Default::default()
    };
    store
        .commissions(&f, BIG)
        .await
        .unwrap()
        .iter()
        .map(|x| ((x.partner_id.clone(), x.kind.clone()), (x.amount, x.voided)))
        .collect()
}

async fn a_partial_refund_reverses_commissions_and_overrides_pro_rata_and_is_idempotent(
    store: Store,
) {
    let (s, lead) = setup_one_partner(&store).await;
    let p = &s.program;
    let c = sale(&store, p, "b1", &[&s.jane], 10_000, hours(3)).await;
    let (first, replayed) = store
        .refund_conversion(&refund(&c, "re_1", 3_000), hours(5))
        .await
        .unwrap();
    assert!(!replayed);
    assert_eq!(first.applied, 3_000);
    let open = open_of(&store, &c).await;
    // 20 % of 100.00 = 20.00; 30 % of it back: 6.00. The lead's 2.00: 0.60.
    assert_eq!(
        open[&(s.jane.id.to_string(), "commission".into())],
        (2_000, 600)
    );
    assert_eq!(open[&(lead.id.to_string(), "override".into())], (200, 60));
    assert_eq!(first.reversed, 660);
    let (again, replayed) = store
        .refund_conversion(&refund(&c, "re_1", 3_000), hours(6))
        .await
        .unwrap();
    assert!(replayed, "the same refund id is the same refund");
    assert_eq!(again, first);
    assert_eq!(open_of(&store, &c).await, open);
    assert_books_reconcile(&store, p).await;
    assert_eq!(store.refunds_of(&c.id).await.unwrap().len(), 1);
}

async fn a_refund_after_release_voids_from_payable_and_repeated_refunds_stop_at_the_accrual(
    store: Store,
) {
    let (s, lead) = setup_one_partner(&store).await;
    let p = &s.program;
    let c = sale(&store, p, "c1", &[&s.jane], 999, hours(3)).await;
    let released = store
        .release_due(hours(3) + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(released, 2, "the commission and its override");
    assert_eq!(
        store.partner_balance(&s.jane.id).await.unwrap(),
        PartnerBalance {
            pending: 0,
            payable: 200,
            paid: 0
        }
    );
    for i in 0..5 {
        store
            .refund_conversion(&refund(&c, &format!("re_{i}"), 333), hours(100 + i))
            .await
            .unwrap();
    }
    let open = open_of(&store, &c).await;
    assert_eq!(
        open[&(s.jane.id.to_string(), "commission".into())],
        (200, 200)
    );
    assert_eq!(open[&(lead.id.to_string(), "override".into())], (20, 20));
    let last = store.refunds_of(&c.id).await.unwrap();
    assert_eq!(
        last.iter().map(|r| r.applied).sum::<i64>(),
        999,
        "never more than the value"
    );
    assert_eq!(last[4].applied, 0);
    assert_eq!(
        store.partner_balance(&s.jane.id).await.unwrap(),
        PartnerBalance::default()
    );
    let cs = store
        .commissions(
            &CommissionFilter {
                conversion_id: Some(c.id.clone()),
                ..Default::default()
            },
            BIG,
        )
        .await
        .unwrap();
    assert!(cs.iter().all(|x| x.status == "voided"));
    assert_books_reconcile(&store, p).await;
}

async fn release_posts_only_commissions_whose_hold_is_over_and_approval_posts_at_once(
    store: Store,
) {
    let (s, _lead) = setup_one_partner(&store).await;
    let p = &s.program;
    let old = sale(&store, p, "d1", &[&s.jane], 1_000, hours(1)).await;
    let new = sale(
        &store,
        p,
        "d2",
        &[&s.sam],
        1_000,
        hours(1) + Duration::days(10),
    )
    .await;
    // Hold is 14 days: at day 15 only the first is due.
    let n = store
        .release_due(hours(1) + Duration::days(15))
        .await
        .unwrap();
    assert_eq!(n, 2, "jane's commission and her lead's override");
    let sam = store
        .commissions(
            &CommissionFilter {
                conversion_id: Some(new.id.clone()),
                ..Default::default()
            },
            BIG,
        )
        .await
        .unwrap();
    assert_eq!(sam[0].status, "pending");
    let id = tribute_core::ids::CommissionId::parse(&sam[0].id).unwrap();
    assert!(store.approve_commission(&id, hours(2)).await.unwrap());
    assert!(
        !store.approve_commission(&id, hours(2)).await.unwrap(),
        "nothing left to post"
    );
    assert_eq!(
        store.commission(&id).await.unwrap().unwrap().status,
        "payable"
    );
    assert_eq!(
        store
            .release_due(hours(1) + Duration::days(15))
            .await
            .unwrap(),
        0
    );
    let _ = old;
    assert_books_reconcile(&store, p).await;
}

async fn an_adjustment_needs_a_reason_and_moves_payable(store: Store) {
    let s = seeded(&store).await;
    let p = &s.program;
    let err = store
        .adjust_partner(&p.id, &s.jane.id, 500, "  ", hours(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                field: "reason",
                ..
            }
        ),
        "{err:?}"
    );
    store
        .adjust_partner(&p.id, &s.jane.id, 500, "bonus for the launch", hours(1))
        .await
        .unwrap();
    store
        .adjust_partner(&p.id, &s.jane.id, -120, "duplicate bonus", hours(2))
        .await
        .unwrap();
    assert_eq!(
        store.partner_balance(&s.jane.id).await.unwrap().payable,
        380
    );
    let entries = store
        .ledger(
            &LedgerFilter {
                partner_id: Some(s.jane.id.clone()),
                ..Default::default()
            },
            BIG,
        )
        .await
        .unwrap();
    assert_eq!(
        entries.iter().map(|e| e.memo.as_str()).collect::<Vec<_>>(),
        vec!["bonus for the launch", "duplicate bonus"]
    );
    assert_books_reconcile(&store, p).await;
}

async fn manual_assignment_credits_an_unattributed_conversion_and_backfills_its_commission(
    store: Store,
) {
    let (s, lead) = setup_one_partner(&store).await;
    let p = &s.program;
    let nobody = conversion(
        p,
        None,
        5_000,
        hours(2),
        attributed(&[], hours(2), ModelKind::LastTouch),
    );
    store.insert_conversion(&nobody).await.unwrap();
    assert!(
        open_of(&store, &nobody).await.is_empty(),
        "no partner, no commission"
    );
    let made = store
        .assign_conversion(&nobody, &s.jane.id, hours(3))
        .await
        .unwrap();
    assert_eq!(made.len(), 2, "the commission and the team lead's override");
    let open = open_of(&store, &nobody).await;
    assert_eq!(
        open[&(s.jane.id.to_string(), "commission".into())],
        (1_000, 0)
    );
    assert_eq!(open[&(lead.id.to_string(), "override".into())], (100, 0));
    let credits = store.conversion_credits(&nobody.id).await.unwrap();
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0].amount_minor, 5_000);
    let again = store
        .assign_conversion(&nobody, &s.sam.id, hours(4))
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        StoreError::Conflict {
            field: "partner_id",
            ..
        }
    ));
    assert_books_reconcile(&store, p).await;
}

/// One step of a random ledger history.
#[derive(Debug, Clone)]
enum Op {
    Sale { value: i64, partners: u8 },
    Refund { which: usize, amount: i64 },
    Release { days: i64 },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        prop_oneof![
            (0..=2_000_000i64, 1..=3u8).prop_map(|(value, partners)| Op::Sale { value, partners }),
            (0..8usize, 1..=2_500_000i64).prop_map(|(which, amount)| Op::Refund { which, amount }),
            (0..40i64).prop_map(|days| Op::Release { days }),
        ],
        1..14,
    )
}

async fn ledger_invariants_hold_over_random_conversions_refunds_and_releases(store: Store) {
    let mut runner = TestRunner::deterministic();
    for case in 0..6 {
        let history = ops().new_tree(&mut runner).unwrap().current();
        let (s, lead) = setup_one_partner(&store).await;
        let p = &s.program;
        let extra = partner_under(&store, p, &format!("x{case}"), Some(&lead)).await;
        let team = [&s.jane, &s.sam, &extra];
        let mut sales: Vec<Conversion> = Vec::new();
        for (i, op) in history.iter().enumerate() {
            let at = hours(10 * i as i64 + 5);
            match op {
                Op::Sale { value, partners } => {
                    let who = &team[..usize::from(*partners)];
                    let c = sale(&store, p, &format!("r{case}-{i}"), who, *value, at).await;
                    sales.push(c);
                }
                Op::Refund { which, amount } if !sales.is_empty() => {
                    let c = &sales[which % sales.len()];
                    store
                        .refund_conversion(&refund(c, &format!("re{i}"), *amount), at)
                        .await
                        .unwrap();
                }
                Op::Refund { .. } => {}
                Op::Release { days } => {
                    store.release_due(at + Duration::days(*days)).await.unwrap();
                }
            }
        }
        assert_books_reconcile(&store, p).await;
        for c in &sales {
            let cs = store
                .commissions(
                    &CommissionFilter {
                        conversion_id: Some(c.id.clone()),
                        ..Default::default()
                    },
                    BIG,
                )
                .await
                .unwrap();
            for x in &cs {
                assert!(
                    x.voided <= x.amount,
                    "{history:?}: never more reversed than accrued"
                );
                assert_eq!(x.pending + x.posted + x.voided, x.amount, "{history:?}");
            }
            // The partners' commissions are the 20 % pot split exactly.
            let pot = (c.value.minor * 2_000 + 5_000) / 10_000;
            let paid: i64 = cs
                .iter()
                .filter(|x| x.kind == "commission")
                .map(|x| x.amount)
                .sum();
            assert_eq!(
                paid, pot,
                "{history:?}: the credit split adds up to the commission"
            );
            let refunded: i64 = store
                .refunds_of(&c.id)
                .await
                .unwrap()
                .iter()
                .map(|r| r.applied)
                .sum();
            assert!(refunded <= c.value.minor);
        }
        let ids: Vec<PartnerId> = team.iter().map(|x| x.id.clone()).collect();
        for id in ids.iter().chain([&lead.id]) {
            let b = store.partner_balance(id).await.unwrap();
            let acc = |a| Account::Partner(id.clone(), a);
            let all = store.account_balances(&p.id).await.unwrap();
            assert_eq!(
                b.pending,
                all.get(&acc(PartnerAccount::Pending)).copied().unwrap_or(0)
            );
            assert_eq!(
                b.payable,
                all.get(&acc(PartnerAccount::Payable)).copied().unwrap_or(0)
            );
        }
    }
}
