//! Storage conformance for payouts: batch amounts as of `until`, minimum
//! amounts, a negative balance carried, open batches never counted twice,
//! marking paid idempotent and balanced, payout requests, export rows and
//! statements.
//!
//! Each test is an `async fn(Store)`; `conformance!` instantiates it once per
//! backend (`sqlite::name`, `postgres::name`); the fixtures are in `common`.

mod common;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tribute_core::attribution::ModelKind;
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::ids::{PayoutId, RewardRuleId};
use tribute_core::ledger::{Account, EntryKind, PartnerAccount, PartnerBalance};
use tribute_core::partner::{Email, Partner};
use tribute_core::program::{CommissionTerms, Program};
use tribute_store::{
    CommissionFilter, LedgerFilter, NewRefund, Page, PayoutFilter, PayoutRequestFilter, RefundKind,
    Store, StoreError, StoredPayout,
};

use common::*;

conformance!(
    a_batch_pays_each_partner_what_became_payable_up_to_until,
    partners_owed_less_than_the_minimum_wait_and_an_empty_batch_says_why,
    open_batches_are_never_counted_twice,
    a_refund_after_payout_leaves_a_negative_balance_that_is_carried_not_paid,
    marking_a_batch_paid_twice_pays_once_and_the_books_balance,
    payout_requests_ask_for_at_most_what_is_free_and_close_with_the_batch,
    a_partner_sees_only_batches_paying_it_and_only_its_item,
    export_rows_use_the_payout_email_else_the_email,
    a_statement_adds_up_from_its_opening_to_its_closing_balances,
    concurrent_batches_and_payments_never_pay_the_same_money_twice,
);

const PAGE: Page = Page {
    limit: 100,
    offset: 0,
};

/// Credit (or debit) `partner`'s payable balance by hand at `at`.
async fn adjust(store: &Store, partner: &Partner, amount: i64, at: DateTime<Utc>) {
    store
        .adjust_partner(&partner.program_id, &partner.id, amount, "by hand", at)
        .await
        .unwrap();
}

/// The (partner, amount) items of a batch.
fn items(p: &StoredPayout) -> Vec<(String, i64)> {
    p.items
        .iter()
        .map(|i| (i.partner_id.clone(), i.amount))
        .collect()
}

fn pair(partner: &Partner, amount: i64) -> (String, i64) {
    (partner.id.to_string(), amount)
}

/// Every item of `expected`, in partner id order (as batches list them).
fn sorted(mut v: Vec<(String, i64)>) -> Vec<(String, i64)> {
    v.sort();
    v
}

fn conflict_field(e: StoreError) -> &'static str {
    match e {
        StoreError::Conflict { field, .. } => field,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A 10% sale rule on `program`.
async fn ten_percent(store: &Store, program: &Program) {
    let terms = RuleTerms::from_json(&json!({
        "name": "Ten percent", "event": "sale", "kind": "percentage", "rate_bps": 1000,
        "duration": "lifetime"
    }))
    .unwrap();
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id: program.id.clone(),
        version: 1,
        terms,
    };
    store.insert_reward_rule(&rule, t0()).await.unwrap();
}

/// A sale of `value` credited to `partner` at `at` (a 10% rule must exist);
/// returns the conversion's id.
async fn sale(
    store: &Store,
    program: &Program,
    partner: &Partner,
    anon_id: &str,
    value: i64,
    at: DateTime<Utc>,
) -> tribute_core::ids::ConversionId {
    let (who, touches) = touched_person(store, program, anon_id, &[partner]).await;
    let c = conversion(
        program,
        Some(who),
        value,
        at,
        attributed(&touches, at, ModelKind::LastTouch),
    );
    store.insert_conversion(&c).await.unwrap();
    c.id
}

async fn balance(store: &Store, partner: &Partner) -> PartnerBalance {
    store.partner_balance(&partner.id).await.unwrap()
}

async fn ledger_sum(store: &Store, program: &Program) -> i64 {
    store
        .account_balances(&program.id)
        .await
        .unwrap()
        .values()
        .sum()
}

async fn a_batch_pays_each_partner_what_became_payable_up_to_until(store: Store) {
    let s = seeded(&store).await;
    adjust(&store, &s.jane, 1000, hours(1)).await;
    adjust(&store, &s.sam, 500, hours(2)).await;
    // After `until`: waits for the next batch.
    adjust(&store, &s.jane, 300, hours(10)).await;

    let p = store
        .create_payout(&s.program.id, hours(5), 0, hours(20))
        .await
        .unwrap();
    assert_eq!(
        items(&p),
        sorted(vec![pair(&s.jane, 1000), pair(&s.sam, 500)])
    );
    assert_eq!((p.total, p.status.as_str()), (1500, "created"));
    assert_eq!((p.currency.as_str(), p.until), ("EUR", hours(5)));
    let stored = store
        .payout(&PayoutId::parse(&p.id).unwrap(), None)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored, p);

    let next = store
        .create_payout(&s.program.id, hours(30), 0, hours(30))
        .await
        .unwrap();
    assert_eq!(items(&next), vec![pair(&s.jane, 300)]);
}

async fn partners_owed_less_than_the_minimum_wait_and_an_empty_batch_says_why(store: Store) {
    let s = seeded(&store).await;
    let empty = store
        .create_payout(&s.program.id, hours(5), 0, hours(5))
        .await
        .unwrap_err();
    assert_eq!(conflict_field(empty), "until", "nothing payable at all");

    adjust(&store, &s.jane, 1000, hours(1)).await;
    adjust(&store, &s.sam, 500, hours(1)).await;
    // Both are owed less than 2000.
    let too_high = store
        .create_payout(&s.program.id, hours(5), 2000, hours(5))
        .await
        .unwrap_err();
    assert_eq!(conflict_field(too_high), "min_amount");

    // The program's minimum applies when it is the larger.
    let terms = CommissionTerms {
        override_levels_bps: vec![],
        payout_min_amount: 600,
    };
    store
        .set_commission_terms(&s.program.id, &terms)
        .await
        .unwrap();
    let p = store
        .create_payout(&s.program.id, hours(5), 100, hours(5))
        .await
        .unwrap();
    assert_eq!(items(&p), vec![pair(&s.jane, 1000)]);
    assert_eq!(p.min_amount, 600);
    let rest = store
        .create_payout(&s.program.id, hours(5), 0, hours(5))
        .await
        .unwrap_err();
    assert_eq!(conflict_field(rest), "min_amount", "sam's 500 is below 600");
}

async fn open_batches_are_never_counted_twice(store: Store) {
    let s = seeded(&store).await;
    adjust(&store, &s.jane, 1000, hours(1)).await;
    let a = store
        .create_payout(&s.program.id, hours(2), 0, hours(2))
        .await
        .unwrap();
    adjust(&store, &s.jane, 400, hours(3)).await;
    let b = store
        .create_payout(&s.program.id, hours(4), 0, hours(4))
        .await
        .unwrap();
    assert_eq!(
        items(&b),
        vec![pair(&s.jane, 400)],
        "A holds the first 1000"
    );

    let a_id = PayoutId::parse(&a.id).unwrap();
    store.mark_payout_paid(&a_id, hours(5)).await.unwrap();
    // Paid at hours(5), after B's and C's `until`: the payment still counts.
    let none = store
        .create_payout(&s.program.id, hours(4), 0, hours(6))
        .await
        .unwrap_err();
    assert_eq!(conflict_field(none), "until", "B still holds the 400");

    let b_id = PayoutId::parse(&b.id).unwrap();
    store.mark_payout_paid(&b_id, hours(7)).await.unwrap();
    adjust(&store, &s.jane, 100, hours(8)).await;
    let c = store
        .create_payout(&s.program.id, hours(9), 0, hours(9))
        .await
        .unwrap();
    assert_eq!(items(&c), vec![pair(&s.jane, 100)]);
    assert_eq!(balance(&store, &s.jane).await.paid, 1400);
}

async fn a_refund_after_payout_leaves_a_negative_balance_that_is_carried_not_paid(store: Store) {
    let s = seeded(&store).await;
    ten_percent(&store, &s.program).await;
    let order = sale(&store, &s.program, &s.jane, "refund-1", 10_000, hours(1)).await;
    let released = t0() + Duration::days(20);
    assert_eq!(store.release_due(released).await.unwrap(), 1);
    let p = store
        .create_payout(&s.program.id, released, 0, released)
        .await
        .unwrap();
    assert_eq!(items(&p), vec![pair(&s.jane, 1000)]);
    let id = PayoutId::parse(&p.id).unwrap();
    store.mark_payout_paid(&id, released).await.unwrap();

    let refund = NewRefund {
        conversion_id: order,
        external_id: "r-1".into(),
        kind: RefundKind::Refund,
        amount: 3000,
        reason: "returned".into(),
    };
    let later = released + Duration::days(1);
    store.refund_conversion(&refund, later).await.unwrap();
    assert_eq!(
        balance(&store, &s.jane).await,
        PartnerBalance {
            pending: 0,
            payable: -300,
            paid: 1000
        }
    );
    let carried = store
        .create_payout(&s.program.id, later, 0, later)
        .await
        .unwrap_err();
    assert_eq!(conflict_field(carried), "until", "-300 is never paid");

    adjust(&store, &s.jane, 200, later).await;
    assert!(store
        .create_payout(&s.program.id, later, 0, later)
        .await
        .is_err());
    adjust(&store, &s.jane, 500, later).await;
    let next = store
        .create_payout(&s.program.id, later, 0, later)
        .await
        .unwrap();
    assert_eq!(items(&next), vec![pair(&s.jane, 400)], "-300 + 200 + 500");
    assert_eq!(ledger_sum(&store, &s.program).await, 0);
}

async fn marking_a_batch_paid_twice_pays_once_and_the_books_balance(store: Store) {
    let s = seeded(&store).await;
    ten_percent(&store, &s.program).await;
    sale(&store, &s.program, &s.jane, "paid-1", 10_000, hours(1)).await;
    sale(&store, &s.program, &s.sam, "paid-2", 5_000, hours(2)).await;
    let released = t0() + Duration::days(20);
    assert_eq!(store.release_due(released).await.unwrap(), 2);
    adjust(&store, &s.sam, 250, released).await;
    // Made after `until`: stays payable for the next batch.
    let late = sale(&store, &s.program, &s.jane, "paid-3", 2_000, released).await;
    let until = released + Duration::hours(1);
    let p = store
        .create_payout(&s.program.id, until, 0, until)
        .await
        .unwrap();
    assert_eq!(
        items(&p),
        sorted(vec![pair(&s.jane, 1000), pair(&s.sam, 750)])
    );
    store
        .release_due(released + Duration::days(20))
        .await
        .unwrap();

    let id = PayoutId::parse(&p.id).unwrap();
    let (paid, again) = store.mark_payout_paid(&id, until).await.unwrap();
    assert!(!again);
    assert_eq!((paid.status.as_str(), paid.paid_at), ("paid", Some(until)));
    let (same, again) = store
        .mark_payout_paid(&id, until + Duration::days(1))
        .await
        .unwrap();
    assert!(again, "the second call reports the first");
    assert_eq!(same, paid);

    let payouts = store
        .ledger(
            &LedgerFilter {
                program_id: Some(s.program.id.clone()),
                ..Default::default()
            },
            PAGE,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Payout)
        .collect::<Vec<_>>();
    assert_eq!(payouts.len(), 2, "one entry per partner, once");
    assert!(payouts
        .iter()
        .all(|e| e.payout_id.as_deref() == Some(&*p.id)));
    assert_eq!(ledger_sum(&store, &s.program).await, 0);
    let balances = store.account_balances(&s.program.id).await.unwrap();
    let paid_of = |who: &Partner| {
        balances
            .get(&Account::Partner(who.id.clone(), PartnerAccount::Paid))
            .copied()
    };
    assert_eq!((paid_of(&s.jane), paid_of(&s.sam)), (Some(1000), Some(750)));
    assert_eq!(balance(&store, &s.jane).await.payable, 200, "the late sale");
    assert_eq!(balance(&store, &s.sam).await.payable, 0);

    let jane = store
        .commissions(
            &CommissionFilter {
                partner_id: Some(s.jane.id.clone()),
                ..Default::default()
            },
            PAGE,
        )
        .await
        .unwrap();
    for c in &jane {
        let late_one = c.conversion_id.as_deref() == Some(late.as_str());
        let expected = if late_one {
            ("payable", None)
        } else {
            ("paid", Some(p.id.as_str()))
        };
        assert_eq!(
            (c.status.as_str(), c.payout_id.as_deref()),
            expected,
            "commission {}",
            c.id
        );
    }
}

async fn payout_requests_ask_for_at_most_what_is_free_and_close_with_the_batch(store: Store) {
    let s = seeded(&store).await;
    let terms = CommissionTerms {
        override_levels_bps: vec![],
        payout_min_amount: 300,
    };
    store
        .set_commission_terms(&s.program.id, &terms)
        .await
        .unwrap();
    adjust(&store, &s.jane, 1000, hours(1)).await;
    adjust(&store, &s.sam, 100, hours(1)).await;

    for (case, partner, amount) in [
        ("more than payable", &s.jane, Some(1001)),
        ("below the minimum", &s.jane, Some(299)),
        ("a balance below the minimum", &s.sam, None),
    ] {
        let err = store
            .create_payout_request(&partner.id, amount, hours(2))
            .await
            .unwrap_err();
        assert_eq!(conflict_field(err), "amount", "case {case}");
    }
    let first = store
        .create_payout_request(&s.jane.id, Some(400), hours(2))
        .await
        .unwrap();
    let second = store
        .create_payout_request(&s.jane.id, None, hours(3))
        .await
        .unwrap();
    assert_eq!((first.amount, second.amount), (400, 600), "the rest");
    let none_left = store
        .create_payout_request(&s.jane.id, None, hours(3))
        .await
        .unwrap_err();
    assert_eq!(conflict_field(none_left), "amount");

    let p = store
        .create_payout(&s.program.id, hours(4), 0, hours(4))
        .await
        .unwrap();
    let of_jane = PayoutRequestFilter {
        partner_id: Some(s.jane.id.clone()),
        ..Default::default()
    };
    let listed = store.payout_requests(&of_jane, PAGE).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|r| r.status == "batched" && r.payout_id.as_deref() == Some(&*p.id)));
    store
        .mark_payout_paid(&PayoutId::parse(&p.id).unwrap(), hours(5))
        .await
        .unwrap();
    let paid = PayoutRequestFilter {
        status: Some("paid".into()),
        ..Default::default()
    };
    assert_eq!(store.payout_requests(&paid, PAGE).await.unwrap().len(), 2);
}

async fn a_partner_sees_only_batches_paying_it_and_only_its_item(store: Store) {
    let s = seeded(&store).await;
    adjust(&store, &s.jane, 1000, hours(1)).await;
    adjust(&store, &s.sam, 500, hours(1)).await;
    let both = store
        .create_payout(&s.program.id, hours(2), 0, hours(2))
        .await
        .unwrap();
    adjust(&store, &s.jane, 70, hours(3)).await;
    let jane_only = store
        .create_payout(&s.program.id, hours(4), 0, hours(4))
        .await
        .unwrap();

    let all = store.payouts(&PayoutFilter::default(), PAGE).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec![&*jane_only.id, &*both.id], "newest first");
    let sams = PayoutFilter {
        partner_id: Some(s.sam.id.clone()),
        ..Default::default()
    };
    let seen = store.payouts(&sams, PAGE).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (items(&seen[0]), seen[0].total),
        (vec![pair(&s.sam, 500)], 500)
    );
    let hidden = store
        .payout(&PayoutId::parse(&jane_only.id).unwrap(), Some(&s.sam.id))
        .await
        .unwrap();
    assert_eq!(hidden, None);
    let created = PayoutFilter {
        status: Some("paid".into()),
        ..Default::default()
    };
    assert!(store.payouts(&created, PAGE).await.unwrap().is_empty());
}

async fn export_rows_use_the_payout_email_else_the_email(store: Store) {
    let s = seeded(&store).await;
    let jane = Partner {
        payout_email: Some(Email::parse("jane.pays@example.org").unwrap()),
        ..s.jane.clone()
    };
    store.update_partner(&jane).await.unwrap();
    assert_eq!(
        store.partner(&jane.id).await.unwrap().unwrap().payout_email,
        jane.payout_email
    );
    adjust(&store, &s.jane, 1234, hours(1)).await;
    adjust(&store, &s.sam, 500, hours(1)).await;
    let p = store
        .create_payout(&s.program.id, hours(2), 0, hours(2))
        .await
        .unwrap();
    let (payout, rows) = store
        .payout_export_items(&PayoutId::parse(&p.id).unwrap())
        .await
        .unwrap()
        .expect("found");
    assert_eq!(payout, p);
    let shown: Vec<(&str, Option<&str>, i64)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.email.as_deref(), r.amount.minor))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("JANE", Some("jane.pays@example.org"), 1234),
            ("SAM", Some("sam@example.com"), 500),
        ]
    );
    assert_eq!(rows[0].reference, format!("{} jane", p.id));
    assert_eq!(rows[0].amount.currency, s.program.settings.currency);
}

async fn a_statement_adds_up_from_its_opening_to_its_closing_balances(store: Store) {
    let s = seeded(&store).await;
    ten_percent(&store, &s.program).await;
    adjust(&store, &s.jane, 50, hours(-10)).await;
    sale(&store, &s.program, &s.jane, "stmt-1", 10_000, hours(1)).await;
    let released = t0() + Duration::days(20);
    store.release_due(released).await.unwrap();
    let p = store
        .create_payout(&s.program.id, released, 0, released)
        .await
        .unwrap();
    store
        .mark_payout_paid(&PayoutId::parse(&p.id).unwrap(), released)
        .await
        .unwrap();

    let to = released + Duration::days(1);
    let st = store
        .statement(&s.jane.id, hours(0), to)
        .await
        .unwrap()
        .expect("jane exists");
    assert_eq!(
        st.opening,
        PartnerBalance {
            pending: 0,
            payable: 50,
            paid: 0
        }
    );
    assert_eq!(
        st.closing,
        PartnerBalance {
            pending: 0,
            payable: 0,
            paid: 1050
        }
    );
    assert_eq!(st.closing, balance(&store, &s.jane).await);
    let kinds: Vec<(EntryKind, PartnerAccount, i64)> = st
        .lines
        .iter()
        .map(|l| (l.kind, l.account, l.amount))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EntryKind::Accrual, PartnerAccount::Pending, 1000),
            (EntryKind::Post, PartnerAccount::Pending, -1000),
            (EntryKind::Post, PartnerAccount::Payable, 1000),
            (EntryKind::Payout, PartnerAccount::Payable, -1050),
            (EntryKind::Payout, PartnerAccount::Paid, 1050),
        ]
    );
    assert!(
        st.lines[0].explanation.is_some(),
        "the accrual explains itself"
    );
    assert_eq!(st.lines[4].payout_id.as_deref(), Some(&*p.id));
    assert_eq!(st.currency, "EUR");
    let empty = store
        .statement(&s.sam.id, hours(0), to)
        .await
        .unwrap()
        .expect("sam exists");
    assert!(empty.lines.is_empty());
}

async fn concurrent_batches_and_payments_never_pay_the_same_money_twice(store: Store) {
    let s = seeded(&store).await;
    adjust(&store, &s.jane, 1000, hours(1)).await;
    let batches: Vec<_> = (0..4)
        .map(|_| {
            let (store, program) = (store.clone(), s.program.id.clone());
            tokio::spawn(async move { store.create_payout(&program, hours(2), 0, hours(2)).await })
        })
        .collect();
    let mut made = Vec::new();
    for b in batches {
        match b.await.unwrap() {
            Ok(p) => made.push(p),
            Err(e) => assert_eq!(conflict_field(e), "until", "the others find nothing left"),
        }
    }
    assert_eq!(made.len(), 1, "one batch holds the 1000");
    let id = PayoutId::parse(&made[0].id).unwrap();
    let payments: Vec<_> = (0..4)
        .map(|_| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.mark_payout_paid(&id, hours(3)).await })
        })
        .collect();
    let mut first = 0;
    for p in payments {
        if !p.await.unwrap().unwrap().1 {
            first += 1;
        }
    }
    assert_eq!(first, 1, "one call pays, the others find it paid");
    assert_eq!(balance(&store, &s.jane).await.paid, 1000);
    assert_eq!(ledger_sum(&store, &s.program).await, 0);
}
