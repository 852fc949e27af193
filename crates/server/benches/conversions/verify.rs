//! The checks after a run, from the store: what was acknowledged is what
//! was stored, each conversion has its commission and overrides, and the
//! ledger balances.

use std::collections::{BTreeMap, HashMap};

use tribute_core::ledger::{Account, Books};
use tribute_store::{CommissionFilter, ConversionFilter, LedgerFilter, Page, Store};

use crate::seed::Seed;
use crate::Driven;

/// Everything in one page: the checks read the whole program.
const ALL: Page = Page {
    limit: i64::MAX,
    offset: 0,
};

/// What the checks counted.
pub struct Checked {
    pub commissions: usize,
    pub overrides: usize,
    pub entries: usize,
}

/// Check the store against what was acknowledged; panics naming the first
/// thing that does not hold.
pub async fn verify(store: &Store, seed: &Seed, driven: &Driven) -> Checked {
    let program = &seed.program.id;
    let conversions = store
        .conversions(
            &ConversionFilter {
                program_id: Some(program.clone()),
                ..Default::default()
            },
            ALL,
        )
        .await
        .expect("listing conversions");
    assert_eq!(
        conversions.len(),
        driven.acknowledged.len(),
        "one stored conversion per acknowledged one"
    );
    for c in &conversions {
        assert!(
            driven.acknowledged.contains_key(c.id.as_str()),
            "conversion {} stored but never acknowledged",
            c.id
        );
    }
    let commissions = store
        .commissions(
            &CommissionFilter {
                program_id: Some(program.clone()),
                ..Default::default()
            },
            ALL,
        )
        .await
        .expect("listing commissions");
    let mut per_conversion: HashMap<&str, (Vec<&str>, usize)> = HashMap::new();
    for c in &commissions {
        let id = c.conversion_id.as_deref().expect("a sale's commission");
        let slot = per_conversion.entry(id).or_default();
        match c.kind.as_str() {
            "commission" => slot.0.push(c.partner_id.as_str()),
            "override" => slot.1 += 1,
            other => panic!("unexpected commission kind {other}"),
        }
    }
    for (id, partner) in &driven.acknowledged {
        let expected = seed.partners[*partner].id.as_str();
        let (earned, overrides) = per_conversion
            .get(id.as_str())
            .unwrap_or_else(|| panic!("conversion {id} has no commission"));
        assert_eq!(earned, &[expected], "conversion {id} pays its partner once");
        assert_eq!(
            *overrides, seed.chain[*partner],
            "conversion {id}: one override per team level above partner {partner}"
        );
    }
    let entries = store
        .ledger(
            &LedgerFilter {
                program_id: Some(program.clone()),
                ..Default::default()
            },
            ALL,
        )
        .await
        .expect("reading the ledger");
    assert_eq!(
        entries.len(),
        commissions.len(),
        "one accrual or override entry per commission"
    );
    let mut books = Books::default();
    for e in &entries {
        let entry = e.journal_entry().expect("every stored entry balances");
        books.record(entry).expect("the books accept every entry");
    }
    let stored: BTreeMap<Account, i64> = store
        .account_balances(program)
        .await
        .expect("balances")
        .into_iter()
        .filter(|(_, b)| *b != 0)
        .collect();
    let kept: BTreeMap<Account, i64> = books
        .kept_balances()
        .iter()
        .filter(|(_, b)| **b != 0)
        .map(|(a, b)| (a.clone(), *b))
        .collect();
    assert_eq!(stored, kept, "stored balances are the sums of the entries");
    assert_eq!(stored.values().sum::<i64>(), 0, "the accounts sum to zero");
    let overrides = commissions.iter().filter(|c| c.kind == "override").count();
    Checked {
        commissions: commissions.len() - overrides,
        overrides,
        entries: entries.len(),
    }
}
