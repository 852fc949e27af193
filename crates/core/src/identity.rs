//! Identities: the identifiers a person is known by, and stitching them
//! into one person.
//!
//! Identifiers seen together (an identify call, an alias, a conversion that
//! carries several) belong to one person, across devices. Stitching is a
//! union-find over identifier keys: [`stitch`] decides, from the identifiers
//! already known and the groups seen together, which person each key belongs
//! to and which persons merge. Storage applies the plan.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::PersonId;
#[cfg(test)]
use crate::partner::email_hash;
use crate::partner::Email;
use crate::FieldError;

/// The identifiers an event or conversion may carry, normalised.
///
/// E-mail addresses and phone numbers are only ever kept hashed (SHA-256 of
/// the normalised form), so a database leak does not leak contact details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub email_hash: Option<String>,
    pub customer_id: Option<String>,
    pub phone_hash: Option<String>,
}

/// Raw identity fields as clients send them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawIdentifiers {
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub email_hash: Option<String>,
    pub customer_id: Option<String>,
    pub phone: Option<String>,
    pub phone_hash: Option<String>,
}

fn opaque(field: &str, v: Option<&str>) -> Result<Option<String>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 200 => Err(FieldError::new(
            field,
            "must be at most 200 printable characters",
        )),
        Some(s) => {
            crate::text::check_plain_text(field, s)?;
            Ok(Some(s.to_owned()))
        }
    }
}

fn sha256_hex(field: &str, v: Option<&str>) -> Result<Option<String>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(s.to_ascii_lowercase()))
        }
        Some(_) => Err(FieldError::new(
            field,
            "must be a hex SHA-256 digest (64 characters)",
        )),
    }
}

/// Hex SHA-256 of a phone number reduced to `+` and digits (E.164 style).
pub fn phone_hash(phone: &str) -> Result<String, FieldError> {
    let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 6 || digits.len() > 15 {
        return Err(FieldError::new("phone", "must have 6 to 15 digits"));
    }
    let normalised = format!("+{digits}");
    Ok(hex::encode(Sha256::digest(normalised.as_bytes())))
}

impl RawIdentifiers {
    /// Normalise: hash e-mail and phone, check lengths; errors name the field.
    pub fn parse(&self) -> Result<Identifiers, FieldError> {
        let email_hash = match (self.email.as_deref(), self.email_hash.as_deref()) {
            (Some(e), _) if !e.trim().is_empty() => Some(Email::parse(e)?.hash()),
            (_, h) => sha256_hex("email_hash", h)?,
        };
        let phone_hash = match (self.phone.as_deref(), self.phone_hash.as_deref()) {
            (Some(p), _) if !p.trim().is_empty() => Some(phone_hash(p)?),
            (_, h) => sha256_hex("phone_hash", h)?,
        };
        Ok(Identifiers {
            anonymous_id: opaque("anonymous_id", self.anonymous_id.as_deref())?,
            user_id: opaque("user_id", self.user_id.as_deref())?,
            email_hash,
            customer_id: opaque("customer_id", self.customer_id.as_deref())?,
            phone_hash,
        })
    }
}

impl Identifiers {
    /// The identifier keys (`kind:value`), in the order a conversion looks
    /// for its person: anonymous id, user id, e-mail hash, customer id, phone.
    pub fn keys(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(5);
        for (kind, v) in [
            ("anonymous_id", &self.anonymous_id),
            ("user_id", &self.user_id),
            ("email_hash", &self.email_hash),
            ("customer_id", &self.customer_id),
            ("phone_hash", &self.phone_hash),
        ] {
            if let Some(v) = v {
                out.push(format!("{kind}:{v}"));
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }
}

/// What starts the identity key of a click id: `click_id:clk_…`. Storage
/// reads click ids back out of these keys, so it derives their offset from
/// this prefix rather than hard-coding its length.
pub const CLICK_KEY_PREFIX: &str = "click_id:";

/// The key under which a click id joins a person's identifiers.
pub fn click_key(click_id: &str) -> String {
    format!("{CLICK_KEY_PREFIX}{click_id}")
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
}

/// Decide the persons of `groups` (keys seen together), given the person
/// each already-known key belongs to.
///
/// When a group touches several persons they merge into the smallest id
/// (any fixed rule would do; this one is deterministic and needs no clock).
/// A group of keys none of which is known gets a fresh person from `fresh`.
pub fn stitch(
    known: &BTreeMap<String, PersonId>,
    groups: &[Vec<String>],
    mut fresh: impl FnMut() -> PersonId,
) -> StitchPlan {
    // Union-find over persons, seeded with the persons already known.
    let mut parent: BTreeMap<PersonId, PersonId> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<PersonId, PersonId>, p: &PersonId) -> PersonId {
        let mut root = p.clone();
        while let Some(up) = parent.get(&root) {
            if up == &root {
                break;
            }
            root = up.clone();
        }
        parent.insert(p.clone(), root.clone());
        root
    }
    let mut assigned: BTreeMap<String, PersonId> = known.clone();
    let mut group_person = Vec::with_capacity(groups.len());
    let mut new_keys: BTreeSet<String> = BTreeSet::new();
    for group in groups {
        let mut roots: Vec<PersonId> = group
            .iter()
            .filter_map(|k| assigned.get(k).cloned())
            .map(|p| {
                parent.entry(p.clone()).or_insert_with(|| p.clone());
                find(&mut parent, &p)
            })
            .collect();
        roots.sort();
        roots.dedup();
        let person = match roots.first() {
            Some(p) => p.clone(),
            None => {
                let p = fresh();
                parent.insert(p.clone(), p.clone());
                p
            }
        };
        for other in roots.iter().skip(1) {
            parent.insert(other.clone(), person.clone());
        }
        for k in group {
            if !assigned.contains_key(k) {
                assigned.insert(k.clone(), person.clone());
                new_keys.insert(k.clone());
            }
        }
        group_person.push(person);
    }
    let persons: Vec<PersonId> = group_person.iter().map(|p| find(&mut parent, p)).collect();
    let mut merges: Vec<(PersonId, PersonId)> = parent
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|p| {
            let root = find(&mut parent, &p);
            (root != p).then_some((p, root))
        })
        .collect();
    merges.sort();
    let new_keys = new_keys
        .into_iter()
        .map(|k| {
            let p = assigned[&k].clone();
            let root = find(&mut parent, &p);
            (k, root)
        })
        .collect();
    StitchPlan {
        new_keys,
        merges,
        persons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_identifiers_refuse_control_and_bidi_characters_naming_the_field() {
        for (case, raw, field) in [
            (
                "nul in an anonymous id",
                RawIdentifiers {
                    anonymous_id: Some("a\u{0}b".into()),
                    ..Default::default()
                },
                "anonymous_id",
            ),
            (
                "escape in a user id",
                RawIdentifiers {
                    user_id: Some("u\u{1b}[2J".into()),
                    ..Default::default()
                },
                "user_id",
            ),
            (
                "bidi override in a customer id",
                RawIdentifiers {
                    customer_id: Some("c\u{202e}1".into()),
                    ..Default::default()
                },
                "customer_id",
            ),
        ] {
            assert_eq!(raw.parse().unwrap_err().field, field, "case {case}");
        }
    }

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

    #[test]
    fn email_is_hashed_and_never_kept_in_clear() {
        let raw = RawIdentifiers {
            email: Some("Jane@Example.com".into()),
            ..Default::default()
        };
        let ids = raw.parse().unwrap();
        assert_eq!(
            ids.email_hash.as_deref(),
            Some(email_hash("jane@example.com").as_str())
        );
        assert!(!format!("{ids:?}").contains("Example"));
    }

    #[test]
    fn malformed_identifiers_name_their_field() {
        let bad_email = RawIdentifiers {
            email: Some("not-an-email".into()),
            ..Default::default()
        };
        assert_eq!(bad_email.parse().unwrap_err().field, "email");
        let bad_hash = RawIdentifiers {
            email_hash: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(bad_hash.parse().unwrap_err().field, "email_hash");
        let bad_phone = RawIdentifiers {
            phone: Some("12".into()),
            ..Default::default()
        };
        assert_eq!(bad_phone.parse().unwrap_err().field, "phone");
    }

    #[test]
    fn phone_numbers_hash_the_same_however_formatted() {
        assert_eq!(
            phone_hash("+1 (555) 010-9999").unwrap(),
            phone_hash("15550109999").unwrap()
        );
    }

    #[test]
    fn unknown_keys_seen_together_become_one_new_person() {
        let plan = stitch(
            &BTreeMap::new(),
            &[vec!["anonymous_id:a".into(), "email_hash:e".into()]],
            counter(),
        );
        assert_eq!(plan.persons, vec![pid("new1")]);
        assert_eq!(plan.new_keys.len(), 2);
        assert!(plan.merges.is_empty());
    }

    #[test]
    fn a_key_seen_on_two_devices_joins_both_into_one_person() {
        // Device A: anonymous id a with the e-mail; device B: anonymous id b, same e-mail.
        let known = BTreeMap::from([
            ("anonymous_id:a".to_owned(), pid("a")),
            ("email_hash:e".to_owned(), pid("a")),
            ("anonymous_id:b".to_owned(), pid("b")),
        ]);
        let plan = stitch(
            &known,
            &[vec!["anonymous_id:b".into(), "email_hash:e".into()]],
            counter(),
        );
        assert_eq!(plan.persons, vec![pid("a")]);
        assert_eq!(plan.merges, vec![(pid("b"), pid("a"))]);
        assert!(plan.new_keys.is_empty());
    }

    #[test]
    fn merges_chain_through_several_groups_to_one_root() {
        let known = BTreeMap::from([
            ("user_id:1".to_owned(), pid("c")),
            ("user_id:2".to_owned(), pid("b")),
            ("user_id:3".to_owned(), pid("a")),
        ]);
        let groups = vec![
            vec!["user_id:1".into(), "user_id:2".into()],
            vec![
                "user_id:2".into(),
                "user_id:3".into(),
                "customer_id:x".into(),
            ],
        ];
        let plan = stitch(&known, &groups, counter());
        assert_eq!(plan.persons, vec![pid("a"), pid("a")]);
        assert_eq!(
            plan.merges,
            vec![(pid("b"), pid("a")), (pid("c"), pid("a"))]
        );
        assert_eq!(plan.new_keys, vec![("customer_id:x".to_owned(), pid("a"))]);
    }
}
