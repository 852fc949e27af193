//! Stitching: which person each identifier key belongs to and which persons
//! merge, decided from what storage knows and the groups of keys a batch saw
//! together.
//!
//! Who claims a group matters. Anyone can read a publishable key out of a
//! web page, so through the snippet or a publishable Segment write key
//! anyone can claim any e-mail address. Without a rule,
//! `identify {anonymousId: <attacker's browser>, email: <victim's>}` would
//! merge the attacker's browser, with its partner clicks, into the victim's
//! person, and the attacker's partner would be credited for the victim's
//! later purchases. So:
//!
//! - Every key records whether it is **verified**: claimed by a trusted
//!   source (an admin or secret key, a postback, the owner's server
//!   conversions). The browser's claims are **unverified**. A verified claim
//!   of a key known unverified upgrades it.
//! - A person with at least one verified key is **protected**.
//! - A verified group stitches as it always did: every person it touches
//!   merges, and its new keys join them.
//! - An unverified group never merges a protected person. Its unprotected
//!   persons merge as before and its new keys go to them, or to a fresh
//!   person when there is none; a protected person it touches keeps its keys
//!   and gets none of the group's.
//! - One exception, for the protected person the group's own anonymous id
//!   already belongs to (its *home*): the group's new keys (a later click, a
//!   second e-mail) join that person, and still nothing merges. The
//!   anonymous id is a random first-party cookie only the person's own
//!   browser holds, unlike an e-mail address, a user id or a phone number,
//!   which an attacker can know. Without the exception a returning
//!   customer's new clicks would never reach them once the owner's backend
//!   had named them.
//!
//! What the rule cannot stop: an identifier nobody has verified yet is first
//! come, first served, as before. An attacker who claims the victim's e-mail
//! before the victim's first verified claim holds it; the victim's person is
//! protected from that first verified claim on.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ANONYMOUS_KEY_PREFIX;
use crate::apikey::Principal;
use crate::ids::PersonId;

/// Who vouches for identifiers seen together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// The owner's own systems: an admin or secret key, a postback carrying
    /// the program's token, the server conversion API.
    Verified,
    /// A sender anyone could be: the snippet, a publishable Segment write key.
    Unverified,
}

impl Claim {
    /// The claim of identifiers sent with `principal`'s key: unverified when
    /// the key is publishable, since anyone may have read it.
    pub fn of(principal: &Principal) -> Self {
        if principal.is_publishable() {
            Self::Unverified
        } else {
            Self::Verified
        }
    }

    pub fn is_verified(self) -> bool {
        matches!(self, Self::Verified)
    }
}

/// Identifier keys seen together, and who claims they belong together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub keys: Vec<String>,
    pub claim: Claim,
}

impl Group {
    pub fn new(claim: Claim, keys: Vec<String>) -> Self {
        Self { keys, claim }
    }
}

/// What storage knows of a batch's keys: each known key's person, which
/// known keys are verified, and which of their persons are protected (have
/// a verified key, among these keys or not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    persons: BTreeMap<String, PersonId>,
    verified: BTreeSet<String>,
    protected: BTreeSet<PersonId>,
}

impl Known {
    /// Record a known key. `person_protected`: whether any key of `person`
    /// is verified (a verified key protects its person by itself).
    pub fn insert(
        &mut self,
        key: String,
        person: PersonId,
        verified: bool,
        person_protected: bool,
    ) {
        if verified {
            self.verified.insert(key.clone());
        }
        if verified || person_protected {
            self.protected.insert(person.clone());
        }
        self.persons.insert(key, person);
    }

    /// Known keys, none verified: the identity graph as it was before claims.
    pub fn unverified(persons: BTreeMap<String, PersonId>) -> Self {
        Self {
            persons,
            ..Self::default()
        }
    }

    pub fn person(&self, key: &str) -> Option<&PersonId> {
        self.persons.get(key)
    }

    pub fn is_protected(&self, person: &PersonId) -> bool {
        self.protected.contains(person)
    }
}

/// What storage must do to make the groups one person each.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StitchPlan {
    /// Keys not yet known, with the person they now belong to.
    pub new_keys: Vec<(String, PersonId)>,
    /// Persons absorbed into another: every row of `from` moves to `into`.
    pub merges: Vec<(PersonId, PersonId)>,
    /// The person of each group, in input order.
    pub persons: Vec<PersonId>,
    /// Keys a verified group claimed that are not stored as verified: new
    /// keys to insert as verified, known ones to upgrade. Sorted.
    pub verified: Vec<String>,
}

/// Union-find over persons, with which roots are protected.
#[derive(Default)]
struct Forest {
    parent: BTreeMap<PersonId, PersonId>,
    /// Protected persons, always kept as roots.
    protected: BTreeSet<PersonId>,
}

impl Forest {
    fn root(&mut self, p: &PersonId) -> PersonId {
        let mut root = p.clone();
        while let Some(up) = self.parent.get(&root) {
            if up == &root {
                break;
            }
            root = up.clone();
        }
        self.parent.insert(p.clone(), root.clone());
        root
    }

    /// Merge root `from` into root `into`; the merged person is protected
    /// if either was.
    fn union(&mut self, from: &PersonId, into: &PersonId) {
        self.parent.insert(from.clone(), into.clone());
        if self.protected.remove(from) {
            self.protected.insert(into.clone());
        }
    }

    /// Merge `roots` (sorted) into the first, or make a fresh person when
    /// there are none; the person they now are.
    fn merge(&mut self, roots: &[PersonId], fresh: &mut impl FnMut() -> PersonId) -> PersonId {
        let Some(person) = roots.first().cloned() else {
            let p = fresh();
            self.parent.insert(p.clone(), p.clone());
            return p;
        };
        for other in &roots[1..] {
            self.union(other, &person);
        }
        person
    }

    fn is_protected(&self, root: &PersonId) -> bool {
        self.protected.contains(root)
    }
}

/// Decide the persons of `groups` (keys seen together), given what is
/// known of their keys.
///
/// When a group touches several persons they merge into the smallest id
/// (any fixed rule would do; this one is deterministic and needs no clock).
/// A group of keys none of which is known gets a fresh person from `fresh`.
/// An unverified group never merges a protected person (see the module's
/// header for the rule and its one exception).
pub fn stitch(known: &Known, groups: &[Group], mut fresh: impl FnMut() -> PersonId) -> StitchPlan {
    let mut forest = Forest {
        parent: BTreeMap::new(),
        protected: known.protected.clone(),
    };
    let mut assigned: BTreeMap<String, PersonId> = known.persons.clone();
    let mut group_person = Vec::with_capacity(groups.len());
    let mut new_keys: BTreeSet<String> = BTreeSet::new();
    let mut verified: BTreeSet<String> = BTreeSet::new();
    for group in groups {
        let mut roots: Vec<PersonId> = group
            .keys
            .iter()
            .filter_map(|k| assigned.get(k).cloned())
            .map(|p| forest.root(&p))
            .collect();
        roots.sort();
        roots.dedup();
        let person = if group.claim.is_verified() {
            forest.merge(&roots, &mut fresh)
        } else if let Some(home) = home(&group.keys, &assigned, &mut forest) {
            // The person's own browser: it may add keys, never merge.
            home
        } else {
            roots.retain(|r| !forest.is_protected(r));
            forest.merge(&roots, &mut fresh)
        };
        if group.claim.is_verified() {
            forest.protected.insert(person.clone());
        }
        for k in &group.keys {
            if !assigned.contains_key(k) {
                assigned.insert(k.clone(), person.clone());
                new_keys.insert(k.clone());
            }
            if group.claim.is_verified() && !known.verified.contains(k) {
                verified.insert(k.clone());
            }
        }
        group_person.push(person);
    }
    let persons: Vec<PersonId> = group_person.iter().map(|p| forest.root(p)).collect();
    let mut merges: Vec<(PersonId, PersonId)> = forest
        .parent
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|p| {
            let root = forest.root(&p);
            (root != p).then_some((p, root))
        })
        .collect();
    merges.sort();
    let new_keys = new_keys
        .into_iter()
        .map(|k| {
            let p = assigned[&k].clone();
            let root = forest.root(&p);
            (k, root)
        })
        .collect();
    StitchPlan {
        new_keys,
        merges,
        persons,
        verified: verified.into_iter().collect(),
    }
}

/// The protected person an unverified group's anonymous id already belongs
/// to, if there is exactly one.
fn home(
    keys: &[String],
    assigned: &BTreeMap<String, PersonId>,
    forest: &mut Forest,
) -> Option<PersonId> {
    let mut homes = BTreeSet::new();
    for p in keys
        .iter()
        .filter(|k| k.starts_with(ANONYMOUS_KEY_PREFIX))
        .filter_map(|k| assigned.get(k))
    {
        let root = forest.root(p);
        if forest.is_protected(&root) {
            homes.insert(root);
        }
    }
    match homes.len() {
        1 => homes.into_iter().next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn pid(s: &str) -> PersonId {
        PersonId::parse(&format!("per_{s}")).unwrap()
    }

    pub(crate) fn counter() -> impl FnMut() -> PersonId {
        let mut n = 0;
        move || {
            n += 1;
            pid(&format!("new{n}"))
        }
    }

    fn verified(groups: Vec<Vec<String>>) -> Vec<Group> {
        groups
            .into_iter()
            .map(|keys| Group::new(Claim::Verified, keys))
            .collect()
    }

    /// Known keys; those listed in `verified_keys` are verified.
    fn known_with(keys: &[(&str, &str)], verified_keys: &[&str]) -> Known {
        let mut known = Known::default();
        for (k, p) in keys {
            let protected = keys
                .iter()
                .any(|(other, q)| q == p && verified_keys.contains(other));
            known.insert(
                (*k).to_owned(),
                pid(p),
                verified_keys.contains(k),
                protected,
            );
        }
        known
    }

    #[test]
    fn unknown_keys_seen_together_become_one_new_person() {
        let plan = stitch(
            &Known::default(),
            &verified(vec![vec!["anonymous_id:a".into(), "email_hash:e".into()]]),
            counter(),
        );
        assert_eq!(plan.persons, vec![pid("new1")]);
        assert_eq!(plan.new_keys.len(), 2);
        assert!(plan.merges.is_empty());
    }

    #[test]
    fn a_key_seen_on_two_devices_joins_both_into_one_person() {
        // Device A: anonymous id a with the e-mail; device B: anonymous id b, same e-mail.
        let known = Known::unverified(BTreeMap::from([
            ("anonymous_id:a".to_owned(), pid("a")),
            ("email_hash:e".to_owned(), pid("a")),
            ("anonymous_id:b".to_owned(), pid("b")),
        ]));
        let plan = stitch(
            &known,
            &verified(vec![vec!["anonymous_id:b".into(), "email_hash:e".into()]]),
            counter(),
        );
        assert_eq!(plan.persons, vec![pid("a")]);
        assert_eq!(plan.merges, vec![(pid("b"), pid("a"))]);
        assert!(plan.new_keys.is_empty());
    }

    #[test]
    fn merges_chain_through_several_groups_to_one_root() {
        let known = Known::unverified(BTreeMap::from([
            ("user_id:1".to_owned(), pid("c")),
            ("user_id:2".to_owned(), pid("b")),
            ("user_id:3".to_owned(), pid("a")),
        ]));
        let groups = verified(vec![
            vec!["user_id:1".into(), "user_id:2".into()],
            vec![
                "user_id:2".into(),
                "user_id:3".into(),
                "customer_id:x".into(),
            ],
        ]);
        let plan = stitch(&known, &groups, counter());
        assert_eq!(plan.persons, vec![pid("a"), pid("a")]);
        assert_eq!(
            plan.merges,
            vec![(pid("b"), pid("a")), (pid("c"), pid("a"))]
        );
        assert_eq!(plan.new_keys, vec![("customer_id:x".to_owned(), pid("a"))]);
    }

    #[test]
    fn a_browser_claiming_a_verified_email_keeps_its_own_person() {
        // The victim's e-mail is verified; the attacker's browser has a click.
        let known = known_with(
            &[
                ("email_hash:victim", "victim"),
                ("anonymous_id:attacker", "attacker"),
                ("click_id:clk_bob", "attacker"),
            ],
            &["email_hash:victim"],
        );
        let plan = stitch(
            &known,
            &[Group::new(
                Claim::Unverified,
                vec!["anonymous_id:attacker".into(), "email_hash:victim".into()],
            )],
            counter(),
        );
        assert!(plan.merges.is_empty(), "{:?}", plan.merges);
        assert_eq!(plan.persons, vec![pid("attacker")]);
        assert!(plan.new_keys.is_empty());
        assert!(plan.verified.is_empty());
    }

    #[test]
    fn a_browser_cannot_attach_a_click_to_a_protected_person_by_email() {
        let known = known_with(&[("email_hash:victim", "victim")], &["email_hash:victim"]);
        let plan = stitch(
            &known,
            &[Group::new(
                Claim::Unverified,
                vec!["email_hash:victim".into(), "click_id:clk_bob".into()],
            )],
            counter(),
        );
        assert_eq!(plan.persons, vec![pid("new1")]);
        assert_eq!(
            plan.new_keys,
            vec![("click_id:clk_bob".to_owned(), pid("new1"))]
        );
        assert!(plan.merges.is_empty());
    }

    #[test]
    fn a_browser_claim_still_merges_persons_nobody_verified() {
        let known = known_with(&[("anonymous_id:a", "a"), ("email_hash:e", "b")], &[]);
        let plan = stitch(
            &known,
            &[Group::new(
                Claim::Unverified,
                vec!["anonymous_id:a".into(), "email_hash:e".into()],
            )],
            counter(),
        );
        assert_eq!(plan.merges, vec![(pid("b"), pid("a"))]);
        assert_eq!(plan.persons, vec![pid("a")]);
        assert!(plan.verified.is_empty());
    }

    #[test]
    fn a_protected_persons_own_browser_brings_new_keys_but_merges_nothing() {
        // The customer's browser (anonymous id a) was named by the owner's
        // backend; it comes back through a new click, claiming an e-mail
        // that an unprotected person already holds.
        let known = known_with(
            &[
                ("anonymous_id:a", "customer"),
                ("email_hash:e", "customer"),
                ("email_hash:other", "other"),
            ],
            &["email_hash:e"],
        );
        let plan = stitch(
            &known,
            &[Group::new(
                Claim::Unverified,
                vec![
                    "anonymous_id:a".into(),
                    "email_hash:other".into(),
                    "click_id:clk_new".into(),
                ],
            )],
            counter(),
        );
        assert_eq!(plan.persons, vec![pid("customer")]);
        assert_eq!(
            plan.new_keys,
            vec![("click_id:clk_new".to_owned(), pid("customer"))]
        );
        assert!(plan.merges.is_empty(), "{:?}", plan.merges);
    }

    #[test]
    fn a_verified_claim_upgrades_known_keys_and_records_new_ones_as_verified() {
        let known = known_with(
            &[("anonymous_id:a", "a"), ("email_hash:e", "a")],
            &["anonymous_id:a"],
        );
        let plan = stitch(
            &known,
            &verified(vec![vec![
                "anonymous_id:a".into(),
                "email_hash:e".into(),
                "customer_id:c".into(),
            ]]),
            counter(),
        );
        assert_eq!(
            plan.verified,
            vec!["customer_id:c".to_owned(), "email_hash:e".to_owned()]
        );
    }

    #[test]
    fn a_person_verified_earlier_in_the_batch_is_protected_later_in_it() {
        let known = known_with(
            &[
                ("email_hash:victim", "victim"),
                ("anonymous_id:attacker", "attacker"),
            ],
            &[],
        );
        let groups = vec![
            Group::new(Claim::Verified, vec!["email_hash:victim".into()]),
            Group::new(
                Claim::Unverified,
                vec!["anonymous_id:attacker".into(), "email_hash:victim".into()],
            ),
        ];
        let plan = stitch(&known, &groups, counter());
        assert!(plan.merges.is_empty(), "{:?}", plan.merges);
        assert_eq!(plan.persons, vec![pid("victim"), pid("attacker")]);
    }

    #[test]
    fn claims_follow_the_kind_of_key() {
        use crate::apikey::KeyKind;
        let ingest = |kind| Principal::Ingest {
            program_id: None,
            kind,
        };
        assert_eq!(Claim::of(&ingest(KeyKind::Publishable)), Claim::Unverified);
        assert_eq!(Claim::of(&ingest(KeyKind::Secret)), Claim::Verified);
        assert_eq!(Claim::of(&Principal::Admin), Claim::Verified);
    }
}
