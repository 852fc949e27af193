//! Ledger flows: accrue, post, pay, void, adjust; refunds before and after
//! payout, with overrides.

use super::*;

fn ids() -> (ProgramId, PartnerId, PartnerId) {
    (
        ProgramId::parse("prg_l").unwrap(),
        PartnerId::parse("ptn_member").unwrap(),
        PartnerId::parse("ptn_lead").unwrap(),
    )
}

fn com(s: &str) -> CommissionId {
    CommissionId::parse(s).unwrap()
}

fn expense(p: &ProgramId) -> Account {
    Account::Program(p.clone(), ProgramAccount::Expense)
}

fn payouts(p: &ProgramId) -> Account {
    Account::Program(p.clone(), ProgramAccount::Payouts)
}

/// The program-wide identities the module documentation promises.
fn assert_identities(books: &Books, program: &ProgramId, partners: &[&PartnerId], case: &str) {
    let owed: i64 = partners
        .iter()
        .map(|p| books.partner_balance(p))
        .map(|b| b.pending + b.payable)
        .sum();
    let paid: i64 = partners.iter().map(|p| books.partner_balance(p).paid).sum();
    assert_eq!(
        books.balance(&expense(program)) + owed,
        0,
        "{case}: expense mirrors what is owed"
    );
    assert_eq!(
        books.balance(&payouts(program)) + paid,
        0,
        "{case}: payouts mirror what is paid"
    );
    let recomputed = balances(books.entries());
    for (account, kept) in books.kept_balances() {
        assert_eq!(
            recomputed.get(account).copied().unwrap_or(0),
            i128::from(*kept),
            "{case}: {account:?}"
        );
    }
}

#[test]
fn an_unbalanced_or_empty_entry_is_refused() {
    let (prg, member, _) = ids();
    let line = |account: Account, amount| Line { account, amount };
    let pending = Account::Partner(member.clone(), PartnerAccount::Pending);
    let cases: Vec<(&str, Vec<Line>, LedgerError)> = vec![
        (
            "unbalanced",
            vec![line(expense(&prg), -100), line(pending.clone(), 99)],
            LedgerError::Unbalanced(-1),
        ),
        (
            "one line",
            vec![line(expense(&prg), 0)],
            LedgerError::TooFewLines,
        ),
        (
            "a zero line",
            vec![line(expense(&prg), 0), line(pending.clone(), 0)],
            LedgerError::ZeroLine(0),
        ),
        (
            "too large",
            vec![
                line(expense(&prg), -MAX_MINOR - 1),
                line(pending.clone(), MAX_MINOR + 1),
            ],
            LedgerError::TooLarge(0),
        ),
    ];
    for (case, lines, err) in cases {
        assert_eq!(
            JournalEntry::new(EntryKind::Accrual, None, "", lines).unwrap_err(),
            err,
            "case {case}"
        );
    }
    let stored = serde_json::json!({"kind": "accrual", "commission_id": null, "memo": "",
        "lines": [{"account": {"program": ["prg_l", "expense"]}, "amount": -5},
                  {"account": {"partner": ["ptn_member", "pending"]}, "amount": 4}]});
    assert!(
        serde_json::from_value::<JournalEntry>(stored).is_err(),
        "an unbalanced stored entry"
    );
}

#[test]
fn a_commission_accrues_posts_and_is_paid_through_the_accounts() {
    let (prg, member, _) = ids();
    let mut books = Books::default();
    let (mut pos, e) =
        Position::accrue(com("com_1"), prg.clone(), member.clone(), None, 1_000).unwrap();
    assert_eq!(e.kind(), EntryKind::Accrual);
    books.record(e).unwrap();
    assert_eq!(
        books.partner_balance(&member),
        PartnerBalance {
            pending: 1_000,
            payable: 0,
            paid: 0
        }
    );
    books.record(pos.post().unwrap()).unwrap();
    assert!(pos.post().is_none(), "nothing left to post");
    assert_eq!(
        books.partner_balance(&member),
        PartnerBalance {
            pending: 0,
            payable: 1_000,
            paid: 0
        }
    );
    let due = payout_due(books.partner_balance(&member).payable, 500).unwrap();
    books.record(pay(&prg, &member, due).unwrap()).unwrap();
    assert_eq!(
        books.partner_balance(&member),
        PartnerBalance {
            pending: 0,
            payable: 0,
            paid: 1_000
        }
    );
    assert_eq!(books.balance(&payouts(&prg)), -1_000);
    assert_identities(&books, &prg, &[&member], "paid");
    assert_eq!(payout_due(0, 0), None);
    assert_eq!(payout_due(400, 500), None, "below the minimum");
}

#[test]
fn a_void_takes_pending_first_and_refuses_more_than_is_open() {
    let (prg, member, _) = ids();
    let (mut pos, _) = Position::accrue(com("com_1"), prg, member, None, 1_000).unwrap();
    pos.post();
    let (mut second, _) = Position::accrue(
        com("com_2"),
        pos.program_id.clone(),
        pos.partner_id.clone(),
        None,
        500,
    )
    .unwrap();
    let e = second.void(200, "rejected").unwrap().unwrap();
    assert_eq!(e.lines().len(), 2, "pending and expense only");
    assert_eq!((second.pending, second.voided), (300, 200));
    assert_eq!(
        pos.void(1_001, "").unwrap_err(),
        LedgerError::Exceeds {
            requested: 1_001,
            available: 1_000
        }
    );
    assert!(pos.void(0, "").unwrap().is_none());
}

/// A member's 1 000 commission with its lead's 100 override, accrued.
fn commission_and_override(books: &mut Books) -> Vec<Position> {
    let (prg, member, lead) = ids();
    let (c, e1) = Position::accrue(com("com_m"), prg.clone(), member, None, 1_000).unwrap();
    let (o, e2) = Position::accrue(com("com_o"), prg, lead, Some(com("com_m")), 100).unwrap();
    assert_eq!(e2.kind(), EntryKind::Override);
    books.record(e1).unwrap();
    books.record(e2).unwrap();
    vec![c, o]
}

#[test]
fn a_partial_refund_before_payout_reverses_commission_and_override_pro_rata() {
    let (prg, member, lead) = ids();
    let mut books = Books::default();
    let mut positions = commission_and_override(&mut books);
    // 30 % of a 5 000 sale.
    let r = refund(5_000, 0, 1_500, "refund re_1", &mut positions).unwrap();
    assert_eq!(
        (r.applied, r.refunded_total, r.entries.len()),
        (1_500, 1_500, 2)
    );
    for e in r.entries {
        assert_eq!(e.memo(), "refund re_1");
        books.record(e).unwrap();
    }
    assert_eq!(books.partner_balance(&member).pending, 700);
    assert_eq!(books.partner_balance(&lead).pending, 70);
    assert_identities(&books, &prg, &[&member, &lead], "after refund");
}

#[test]
fn a_refund_after_payout_leaves_a_negative_payable_that_the_next_payout_nets() {
    let (prg, member, lead) = ids();
    let mut books = Books::default();
    let mut positions = commission_and_override(&mut books);
    for p in positions.iter_mut() {
        books.record(p.post().unwrap()).unwrap();
    }
    for who in [&member, &lead] {
        let due = payout_due(books.partner_balance(who).payable, 1).unwrap();
        books.record(pay(&prg, who, due).unwrap()).unwrap();
    }
    let r = refund(5_000, 0, 1_500, "refund", &mut positions).unwrap();
    for e in r.entries {
        books.record(e).unwrap();
    }
    assert_eq!(
        books.partner_balance(&member),
        PartnerBalance {
            pending: 0,
            payable: -300,
            paid: 1_000
        }
    );
    assert_eq!(books.partner_balance(&lead).payable, -30);
    assert_eq!(payout_due(-300, 0), None, "nothing to pay while negative");
    // The next commission of 800 is posted: the payout pays 500.
    let (mut next, e) =
        Position::accrue(com("com_n"), prg.clone(), member.clone(), None, 800).unwrap();
    books.record(e).unwrap();
    books.record(next.post().unwrap()).unwrap();
    assert_eq!(
        payout_due(books.partner_balance(&member).payable, 0),
        Some(500)
    );
    assert_identities(&books, &prg, &[&member, &lead], "after carry");
}

#[test]
fn refunds_beyond_the_value_stop_at_it_and_reverse_exactly_everything() {
    let mut books = Books::default();
    let mut positions = commission_and_override(&mut books);
    let mut refunded = 0;
    for (amount, applied) in [(1_667, 1_667), (1_667, 1_667), (9_999, 1_666), (10, 0)] {
        let r = refund(5_000, refunded, amount, "", &mut positions).unwrap();
        assert_eq!(r.applied, applied);
        refunded = r.refunded_total;
    }
    assert_eq!(refunded, 5_000);
    assert_eq!((positions[0].voided, positions[1].voided), (1_000, 100));
    assert_eq!(
        refund(5_000, 5_001, 1, "", &mut positions).unwrap_err(),
        LedgerError::Field(FieldError::new(
            "refunded",
            "must be between 0 and the conversion's value"
        ))
    );
}

#[test]
fn a_hand_void_is_not_reversed_twice_by_a_later_refund() {
    let mut books = Books::default();
    let mut positions = commission_and_override(&mut books);
    positions[0].void(500, "half rejected").unwrap();
    let r = refund(5_000, 0, 1_500, "", &mut positions).unwrap();
    assert_eq!(
        r.entries.len(),
        1,
        "only the override: 30 % < the 50 % already voided"
    );
    refund(5_000, 1_500, 2_500, "", &mut positions).unwrap();
    assert_eq!(positions[0].voided, 800, "80 % refunded in all");
}

#[test]
fn a_refund_of_a_zero_value_lead_reverses_it_whole() {
    let (prg, member, _) = ids();
    let (pos, _) = Position::accrue(com("com_lead"), prg, member, None, 300).unwrap();
    let mut positions = vec![pos];
    let r = refund(0, 0, 1, "chargeback", &mut positions).unwrap();
    assert_eq!((r.applied, positions[0].voided), (0, 300));
}

#[test]
fn an_adjustment_needs_a_reason_and_moves_payable_either_way() {
    let (prg, member, _) = ids();
    let mut books = Books::default();
    books
        .record(adjust(&prg, &member, 250, "bonus for the launch").unwrap())
        .unwrap();
    books
        .record(adjust(&prg, &member, -50, "duplicate order").unwrap())
        .unwrap();
    assert_eq!(books.partner_balance(&member).payable, 200);
    assert_eq!(books.entries()[1].memo(), "duplicate order");
    let field = |r: Result<JournalEntry, LedgerError>| match r {
        Err(LedgerError::Field(f)) => f.field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(adjust(&prg, &member, 10, "  ")), "reason");
    assert_eq!(field(adjust(&prg, &member, 0, "why")), "amount");
    assert_identities(&books, &prg, &[&member], "adjusted");
}
