//! Property tests over random movements: every entry balances, balances
//! are the sums of their lines, and repeated refunds never reverse more
//! than was accrued.

use proptest::prelude::*;

use super::*;

const PARTNERS: [&str; 3] = ["ptn_a", "ptn_b", "ptn_c"];

#[derive(Debug, Clone)]
enum Op {
    /// A commission for a partner; its team lead (the next partner) earns 10 %.
    Accrue {
        partner: usize,
        amount: i64,
    },
    Post {
        index: usize,
    },
    Void {
        index: usize,
        bps: i64,
    },
    Pay {
        partner: usize,
        min: i64,
    },
    Adjust {
        partner: usize,
        amount: i64,
    },
    Refund {
        index: usize,
        value: i64,
        amount: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3, 1i64..1_000_000_000)
            .prop_map(|(partner, amount)| Op::Accrue { partner, amount }),
        (0usize..16).prop_map(|index| Op::Post { index }),
        (0usize..16, 0i64..=10_000).prop_map(|(index, bps)| Op::Void { index, bps }),
        (0usize..3, 0i64..1_000_000).prop_map(|(partner, min)| Op::Pay { partner, min }),
        (0usize..3, -1_000_000i64..1_000_000)
            .prop_filter("non-zero", |(_, a)| *a != 0)
            .prop_map(|(partner, amount)| Op::Adjust { partner, amount }),
        (0usize..16, 1i64..2_000_000_000, 1i64..2_000_000_000).prop_map(
            |(index, value, amount)| Op::Refund {
                index,
                value,
                amount
            }
        ),
    ]
}

fn pid(i: usize) -> PartnerId {
    PartnerId::parse(PARTNERS[i % 3]).unwrap()
}

proptest! {
    #[test]
    fn random_movements_keep_entries_balanced_and_balances_the_sums_of_their_lines(
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let program = ProgramId::parse("prg_p").unwrap();
        let mut books = Books::default();
        let mut positions: Vec<Position> = Vec::new();
        let mut n = 0;
        for op in ops {
            let mut entries = Vec::new();
            match op {
                Op::Accrue { partner, amount } => {
                    n += 1;
                    let id = CommissionId::parse(&format!("com_{n}")).unwrap();
                    let (c, e) = Position::accrue(id.clone(), program.clone(), pid(partner), None, amount).unwrap();
                    positions.push(c);
                    entries.push(e);
                    let cut = amount / 10;
                    if cut > 0 {
                        let oid = CommissionId::parse(&format!("com_{n}o")).unwrap();
                        let (o, e) = Position::accrue(oid, program.clone(), pid(partner + 1), Some(id), cut).unwrap();
                        positions.push(o);
                        entries.push(e);
                    }
                }
                Op::Post { index } if index < positions.len() => {
                    entries.extend(positions[index].post());
                }
                Op::Void { index, bps } if index < positions.len() => {
                    let p = &mut positions[index];
                    let amount = p.open() * bps / 10_000;
                    entries.extend(p.void(amount, "void").unwrap());
                }
                Op::Pay { partner, min } => {
                    if let Some(due) = payout_due(books.partner_balance(&pid(partner)).payable, min) {
                        entries.push(pay(&program, &pid(partner), due).unwrap());
                    }
                }
                Op::Adjust { partner, amount } => {
                    entries.push(adjust(&program, &pid(partner), amount, "by hand").unwrap());
                }
                Op::Refund { index, value, amount } if index < positions.len() => {
                    // The position and its override (if any) as one conversion.
                    let end = (index + 2).min(positions.len());
                    let r = refund(value, 0, amount, "refund", &mut positions[index..end]).unwrap();
                    entries.extend(r.entries);
                }
                _ => {}
            }
            for e in entries {
                let sum: i128 = e.lines().iter().map(|l| i128::from(l.amount)).sum();
                prop_assert_eq!(sum, 0);
                let back: JournalEntry = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
                prop_assert_eq!(&back, &e);
                books.record(e).unwrap();
            }
        }
        let recomputed = balances(books.entries());
        prop_assert_eq!(recomputed.len(), books.kept_balances().len());
        for (account, kept) in books.kept_balances() {
            prop_assert_eq!(recomputed[account], i128::from(*kept));
        }
        let mut owed = 0i64;
        let mut paid = 0i64;
        for i in 0..3 {
            let b = books.partner_balance(&pid(i));
            let pending: i64 = positions.iter().filter(|p| p.partner_id == pid(i)).map(|p| p.pending).sum();
            prop_assert_eq!(b.pending, pending);
            owed += b.pending + b.payable;
            paid += b.paid;
        }
        prop_assert_eq!(books.balance(&Account::Program(program.clone(), ProgramAccount::Expense)), -owed);
        prop_assert_eq!(books.balance(&Account::Program(program, ProgramAccount::Payouts)), -paid);
        for p in &positions {
            prop_assert_eq!(p.pending + p.posted + p.voided, p.accrued);
            prop_assert!(p.pending >= 0 && p.posted >= 0 && p.voided >= 0);
        }
    }

    #[test]
    fn repeated_partial_refunds_never_reverse_more_than_was_accrued(
        value in 0i64..=MAX_MINOR,
        amounts in prop::collection::vec(1i64..=MAX_MINOR, 1..4),
        post_first in prop::collection::vec(any::<bool>(), 4),
        refunds in prop::collection::vec(1i64..=MAX_MINOR, 1..12),
        divisor in 1i64..1_000_000,
    ) {
        let program = ProgramId::parse("prg_r").unwrap();
        let mut positions: Vec<Position> = amounts
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let id = CommissionId::parse(&format!("com_{i}")).unwrap();
                let (mut p, _) = Position::accrue(id, program.clone(), pid(i), None, a).unwrap();
                if post_first[i] {
                    p.post();
                }
                p
            })
            .collect();
        let mut refunded = 0;
        let mut applied = 0;
        for r in refunds {
            // Small refunds are the interesting ones: scale them down.
            let before: Vec<i64> = positions.iter().map(|p| p.voided).collect();
            let out = refund(value, refunded, (r / divisor).max(1), "refund", &mut positions).unwrap();
            applied += out.applied;
            refunded = out.refunded_total;
            prop_assert!(refunded <= value);
            for (p, b) in positions.iter().zip(before) {
                prop_assert!(p.voided >= b, "reversals only grow");
                prop_assert!(p.voided <= p.accrued);
                prop_assert_eq!(p.voided, reversal_target(p.accrued, value, refunded));
            }
        }
        prop_assert_eq!(applied, refunded);
        if refunded == value {
            for p in &positions {
                prop_assert_eq!(p.voided, p.accrued, "a full refund reverses everything");
            }
        }
    }
}
