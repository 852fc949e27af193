//! Property tests of stitching's claim rule: an unverified batch never
//! merges a protected person nor attaches a key to one except through its
//! own anonymous id, and protection changes nothing for verified groups.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{stitch, Claim, Group, Known, ANONYMOUS_KEY_PREFIX};
use crate::ids::PersonId;

const PERSONS: [&str; 5] = ["p0", "p1", "p2", "p3", "p4"];
/// Few keys of each kind, so groups often meet known keys and each other.
const OTHER_KEYS: [&str; 10] = [
    "email_hash:e0",
    "email_hash:e1",
    "email_hash:e2",
    "user_id:u0",
    "user_id:u1",
    "customer_id:c0",
    "click_id:clk_0",
    "click_id:clk_1",
    "click_id:clk_2",
    "phone_hash:h0",
];
const ANONYMOUS: [&str; 4] = [
    "anonymous_id:a0",
    "anonymous_id:a1",
    "anonymous_id:a2",
    "anonymous_id:a3",
];

fn pid(s: &str) -> PersonId {
    PersonId::parse(&format!("per_{s}")).unwrap()
}

fn counter() -> impl FnMut() -> PersonId {
    let mut n = 0;
    move || {
        n += 1;
        pid(&format!("new{n}"))
    }
}

/// What storage knows: each key's person and whether it is verified, and
/// persons protected by a verified key outside the batch.
#[derive(Debug, Clone)]
struct Graph {
    keys: BTreeMap<String, (PersonId, bool)>,
    protected_elsewhere: BTreeSet<PersonId>,
}

impl Graph {
    fn known(&self) -> Known {
        let mut known = Known::default();
        for (k, (p, verified)) in &self.keys {
            known.insert(k.clone(), p.clone(), *verified, self.is_protected(p));
        }
        known
    }

    fn persons(&self) -> BTreeMap<String, PersonId> {
        self.keys
            .iter()
            .map(|(k, (p, _))| (k.clone(), p.clone()))
            .collect()
    }

    fn is_protected(&self, p: &PersonId) -> bool {
        self.protected_elsewhere.contains(p)
            || self.keys.values().any(|(q, verified)| q == p && *verified)
    }
}

fn arb_graph() -> impl Strategy<Value = Graph> {
    let all: Vec<&'static str> = OTHER_KEYS.iter().chain(&ANONYMOUS).copied().collect();
    (
        prop::collection::btree_map(prop::sample::select(all), (0..PERSONS.len(), 0u8..3), 0..10),
        prop::collection::btree_set(0..PERSONS.len(), 0..2),
    )
        .prop_map(|(keys, elsewhere)| Graph {
            keys: keys
                .into_iter()
                .map(|(k, (p, v))| (k.to_owned(), (pid(PERSONS[p]), v == 0)))
                .collect(),
            protected_elsewhere: elsewhere.into_iter().map(|p| pid(PERSONS[p])).collect(),
        })
}

/// Groups as events make them: at most one anonymous id, a few other keys.
fn arb_groups(claim: impl Strategy<Value = Claim>) -> impl Strategy<Value = Vec<Group>> {
    prop::collection::vec(
        (
            prop::option::of(prop::sample::select(ANONYMOUS.to_vec())),
            prop::sample::subsequence(OTHER_KEYS.to_vec(), 0..4),
            claim,
        ),
        1..6,
    )
    .prop_map(|groups| {
        groups
            .into_iter()
            .filter_map(|(anonymous, others, claim)| {
                let keys: Vec<String> = anonymous
                    .into_iter()
                    .chain(others)
                    .map(str::to_owned)
                    .collect();
                (!keys.is_empty()).then(|| Group::new(claim, keys))
            })
            .collect()
    })
}

fn any_claim() -> impl Strategy<Value = Claim> {
    prop_oneof![Just(Claim::Verified), Just(Claim::Unverified)]
}

proptest! {
    #[test]
    fn an_unverified_batch_never_merges_a_protected_person(
        graph in arb_graph(),
        groups in arb_groups(Just(Claim::Unverified)),
    ) {
        let plan = stitch(&graph.known(), &groups, counter());
        for (from, into) in &plan.merges {
            prop_assert!(
                !graph.is_protected(from) && !graph.is_protected(into),
                "merged {from} into {into}, one of them protected: {graph:?} {groups:?}"
            );
        }
        prop_assert!(plan.verified.is_empty());
    }

    #[test]
    fn an_unverified_batch_attaches_keys_to_a_protected_person_only_through_its_anonymous_id(
        graph in arb_graph(),
        groups in arb_groups(Just(Claim::Unverified)),
    ) {
        let plan = stitch(&graph.known(), &groups, counter());
        for (key, person) in &plan.new_keys {
            if !graph.is_protected(person) {
                continue;
            }
            let first = groups.iter().find(|g| g.keys.contains(key)).unwrap();
            let through_own_browser = first.keys.iter().any(|k| {
                k.starts_with(ANONYMOUS_KEY_PREFIX)
                    && graph.keys.get(k).map(|(p, _)| p) == Some(person)
            });
            prop_assert!(
                through_own_browser,
                "{key} joined protected {person} without its anonymous id: {graph:?} {groups:?}"
            );
        }
    }

    #[test]
    fn protection_changes_nothing_for_verified_groups(
        graph in arb_graph(),
        groups in arb_groups(Just(Claim::Verified)),
    ) {
        let with = stitch(&graph.known(), &groups, counter());
        let without = stitch(&Known::unverified(graph.persons()), &groups, counter());
        prop_assert_eq!(&with.new_keys, &without.new_keys);
        prop_assert_eq!(&with.merges, &without.merges);
        prop_assert_eq!(&with.persons, &without.persons);
    }

    #[test]
    fn every_key_a_verified_group_claims_ends_up_verified(
        graph in arb_graph(),
        groups in arb_groups(any_claim()),
    ) {
        let plan = stitch(&graph.known(), &groups, counter());
        let claimed: BTreeSet<&String> = groups
            .iter()
            .filter(|g| g.claim.is_verified())
            .flat_map(|g| &g.keys)
            .filter(|k| !graph.keys.get(*k).is_some_and(|(_, verified)| *verified))
            .collect();
        let upgraded: BTreeSet<&String> = plan.verified.iter().collect();
        prop_assert_eq!(claimed, upgraded);
    }

    #[test]
    fn every_group_ends_with_every_new_key_on_a_person_of_the_plan(
        graph in arb_graph(),
        groups in arb_groups(any_claim()),
    ) {
        let plan = stitch(&graph.known(), &groups, counter());
        prop_assert_eq!(plan.persons.len(), groups.len());
        let merged: BTreeSet<&PersonId> = plan.merges.iter().map(|(from, _)| from).collect();
        for (key, person) in &plan.new_keys {
            prop_assert!(!merged.contains(person), "{key} left on merged {person}");
        }
        for person in &plan.persons {
            prop_assert!(!merged.contains(person), "a group ended on merged {person}");
        }
    }
}
