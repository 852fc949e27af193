//! Property tests: credit and override splits add up exactly, and a
//! commission never exceeds its cap.

use proptest::prelude::*;
use serde_json::json;

use super::tests::{eur, partner, rule, sale};
use super::*;
use crate::ids::{CommissionId, PartnerId};
use crate::money::{Money, MAX_MINOR};

const IDS: [&str; 6] = ["ptn_a", "ptn_b", "ptn_c", "ptn_d", "ptn_e", "ptn_f"];

proptest! {
    #[test]
    fn credit_shares_of_one_rule_add_up_to_its_commission_exactly(
        value in 0i64..=MAX_MINOR,
        rate in 0u32..=10_000,
        weights in prop::collection::vec(0u64..(1 << 42), 1..6),
    ) {
        let r = rule("rwr_p", json!({"event": "sale", "kind": "percentage", "rate_bps": rate}));
        let credited: Vec<Credited> = weights
            .iter()
            .zip(IDS)
            .map(|(&weight, id)| Credited { partner: partner(id), weight })
            .collect();
        let parts = split_by_credit(&[r], &sale(value), &credited).unwrap();
        let gross = apply_bps(i128::from(value), rate);
        let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        if total == 0 {
            prop_assert!(parts.is_empty());
        } else {
            let sum: i128 = parts.iter().map(|c| i128::from(c.amount.minor)).sum();
            prop_assert_eq!(sum, gross);
            for c in &parts {
                let credit = c.explanation.credit.as_ref().unwrap();
                let exact = gross * credit.weight as i128;
                let got = i128::from(c.amount.minor) * total as i128;
                prop_assert!((got - exact).abs() < total as i128, "{} vs {}/{}", got, exact, total);
            }
        }
    }

    #[test]
    fn partners_of_one_pot_share_it_exactly_whatever_the_other_rules(
        value in 0i64..1_000_000_000,
        weights in prop::collection::vec((1u64..1000, any::<bool>()), 1..6),
    ) {
        let vip = rule("rwr_v", json!({"event": "sale", "kind": "percentage", "rate_bps": 3000,
            "scope": {"group": "vip"}}));
        let all = rule("rwr_a", json!({"event": "sale", "kind": "fixed", "amount": 12_345}));
        let credited: Vec<Credited> = weights
            .iter()
            .zip(IDS)
            .map(|(&(weight, is_vip), id)| {
                let mut p = partner(id);
                p.group = is_vip.then(|| "vip".to_owned());
                Credited { partner: p, weight }
            })
            .collect();
        let parts = split_by_credit(&[vip, all], &sale(value), &credited).unwrap();
        prop_assert_eq!(parts.len(), credited.len());
        for rule_id in ["rwr_v", "rwr_a"] {
            let pot: Vec<&Commission> = parts.iter().filter(|c| c.explanation.rule_id.as_str() == rule_id).collect();
            if let Some(first) = pot.first() {
                let expected = first.explanation.credit.as_ref().unwrap().pot;
                let sum: i64 = pot.iter().map(|c| c.amount.minor).sum();
                prop_assert_eq!(sum, expected);
            }
        }
    }

    #[test]
    fn a_commission_never_exceeds_what_its_cap_leaves(
        value in 0i64..=MAX_MINOR / 10,
        rate in 0u32..=10_000,
        multiplier in 0u32..=MAX_MULTIPLIER_BPS,
        cap in 0i64..1_000_000_000,
        earned in 0i64..2_000_000_000,
        period in prop::sample::select(vec!["day", "week", "month", "all_time"]),
    ) {
        let r = rule("rwr_c", json!({"event": "sale", "kind": "percentage", "rate_bps": rate,
            "cap": {"amount": cap, "period": period}}));
        let mut p = partner("ptn_a");
        p.multiplier_bps = multiplier;
        p.earned = Earned { day: earned, week: earned, month: earned, all_time: earned };
        let c = decide(&[r], &sale(value), &p).unwrap().unwrap();
        prop_assert!(c.amount.minor >= 0);
        prop_assert!(c.amount.minor <= (cap - earned).max(0));
        prop_assert!(c.amount.minor <= c.explanation.multiplied);
        prop_assert!(earned + c.amount.minor <= cap.max(earned));
    }

    #[test]
    fn overrides_add_up_to_the_pool_and_stay_within_a_unit_of_their_rate(
        commission in 0i64..=MAX_MINOR,
        levels in prop::collection::vec(0u32..2_000, 1..=5),
        chain_len in 0usize..=6,
    ) {
        let plan = OverridePlan::new(levels.clone()).unwrap();
        let chain: Vec<PartnerId> = IDS[..chain_len].iter().map(|id| PartnerId::parse(id).unwrap()).collect();
        let member = PartnerId::parse("ptn_member").unwrap();
        let com = CommissionId::parse("com_x").unwrap();
        let o = overrides(&com, &member, Money::new(commission, eur()), &chain, &plan);
        let used = &levels[..levels.len().min(chain_len)];
        let pool = apply_bps(i128::from(commission), used.iter().sum());
        prop_assert_eq!(o.iter().map(|o| i128::from(o.amount.minor)).sum::<i128>(), pool);
        for o in &o {
            let exact = i128::from(commission) * i128::from(o.rate_bps);
            let got = i128::from(o.amount.minor) * 10_000;
            prop_assert!((got - exact).abs() * 2 < 3 * 10_000, "level {}", o.level);
            prop_assert_eq!(&o.partner_id, &chain[usize::from(o.level) - 1]);
        }
    }
}
