//! The identity graph: identifiers seen together become one person, and the
//! persons' leads.
//!
//! Only events that link identifiers or name a partner enter the graph; it
//! is updated from a plan decided by `tribute_core::identity::stitch`. On
//! PostgreSQL, stitching locks what it touches with advisory locks, held to
//! the end of its transaction: each identifier key (two nodes must not mint
//! two persons for one key), then each person those keys belong to (a merge
//! moves a person's rows, so whoever writes to that person waits for it).
//! Stitchings of unrelated visitors do not wait on each other.
//!
//! Each key records whether it is verified (claimed by the owner's backend)
//! or not (claimed by the browser, whose key anyone can read). A person with
//! a verified key is protected: unverified claims never merge it. One query
//! loads, with each known key's person, whether the key is verified and
//! whether its person is protected; the core decides, and this module
//! writes new keys with their flag and upgrades keys a verified claim named.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use tribute_core::attribution::Touch;
use tribute_core::identity::{stitch, Claim, Group, Known, StitchPlan};
use tribute_core::ids::{PersonId, ProgramId};
use tribute_core::tracking::Event;

use crate::db::{Arg, Db, DbContext};
use crate::outbox::{emit, Pending};
use crate::sql::{multi_row_insert, placeholders, Params, INSERT_ROWS, IN_CHUNK};
use crate::touches::{
    attach_late_clicks, insert_touches, kind_str, load_clicks, person_touches, NewTouch,
};
use crate::{to_ms, Backend, BoxFuture, Context, Result, Store, StoreError};
use tribute_core::webhook::{EventKind, LeadData};

/// A PostgreSQL advisory lock key for an id.
pub(crate) fn advisory_key_of(id: &str) -> i64 {
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// Fold linking events into the identity graph: persons, click and
/// partner touches, leads.
pub(crate) async fn stitch_events(
    tx: &mut dyn Db,
    backend: Backend,
    linking: &[&Event],
) -> Result<()> {
    {
        let mut by_program: BTreeMap<&ProgramId, Vec<&Event>> = BTreeMap::new();
        for e in linking {
            by_program.entry(&e.program_id).or_default().push(e);
        }
        for (program, events) in by_program {
            let groups: Vec<Group> = events
                .iter()
                .map(|e| Group::new(e.claim, e.group()))
                .collect();
            let plan = apply_stitch(tx, backend, program, &groups).await?;
            let mut touches: Vec<(PersonId, NewTouch)> = Vec::new();
            let click_ids: Vec<&str> = events
                .iter()
                .filter_map(|e| e.click_id.as_ref().map(|c| c.as_str()))
                .collect();
            let clicks = load_clicks(tx, program, &click_ids).await?;
            for (e, person) in events.iter().zip(&plan.persons) {
                if let Some(t) = e.click_id.as_ref().and_then(|c| clicks.get(c.as_str())) {
                    touches.push((person.clone(), t.clone()));
                }
                if let Some((partner, kind)) = &e.partner {
                    // Stable across retries: the sender's id when there is one.
                    let id = match &e.external_id {
                        Some(x) => format!("{}:{}:{x}", kind_str(*kind), e.program_id),
                        None => format!("{}:{}", kind_str(*kind), e.id),
                    };
                    touches.push((
                        person.clone(),
                        NewTouch {
                            id,
                            partner_id: partner.clone(),
                            kind: *kind,
                            at: e.occurred_at,
                            is_bot: false,
                        },
                    ));
                }
            }
            insert_touches(tx, program, &touches).await?;
            for (e, person) in events.iter().zip(&plan.persons) {
                if e.event_type.is_lead() {
                    record_lead(tx, program, person, e).await?;
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Find or make the person of identifier keys seen together (a
    /// conversion's, claimed as `claim` says), attach `touches` to them, and
    /// return the person with every touch they have, partner status
    /// included. One transaction.
    pub fn resolve_journey<'a>(
        &'a self,
        program: &'a ProgramId,
        keys: Vec<String>,
        claim: Claim,
        click_id: Option<&'a str>,
        extra: Vec<NewTouch>,
    ) -> BoxFuture<'a, Result<(PersonId, Vec<Touch>)>> {
        Box::pin(async move {
            let mut tx = self.begin_write().await.context("starting journey")?;
            let journey = Journey {
                program: program.clone(),
                keys,
                claim,
                click_id: click_id.map(str::to_owned),
                extra,
            };
            let found = resolve_journey_in(&mut tx, self.backend(), &journey).await?;
            tx.commit().await.context("committing journey")?;
            Ok(found)
        })
    }
}

/// What finds a conversion's person and journey: its identifier keys, how
/// they are claimed, its click and the touches it brings (a coupon's).
#[derive(Debug, Clone)]
pub struct Journey {
    pub program: ProgramId,
    pub keys: Vec<String>,
    pub claim: Claim,
    pub click_id: Option<String>,
    pub extra: Vec<NewTouch>,
}

/// [`Store::resolve_journey`] inside the caller's write transaction.
pub(crate) async fn resolve_journey_in(
    tx: &mut dyn Db,
    backend: Backend,
    j: &Journey,
) -> Result<(PersonId, Vec<Touch>)> {
    let program = &j.program;
    let person = if j.keys.is_empty() {
        PersonId::generate()
    } else {
        apply_stitch(tx, backend, program, &[Group::new(j.claim, j.keys.clone())])
            .await?
            .persons
            .remove(0)
    };
    let mut touches: Vec<(PersonId, NewTouch)> = j
        .extra
        .iter()
        .map(|t| (person.clone(), t.clone()))
        .collect();
    if let Some(c) = j.click_id.as_deref() {
        if let Some(t) = load_clicks(tx, program, &[c]).await?.remove(c) {
            touches.push((person.clone(), t));
        }
    }
    insert_touches(tx, program, &touches).await?;
    attach_late_clicks(tx, program, &person).await?;
    let journey = person_touches(tx, &person).await?;
    Ok((person, journey))
}

/// What is known of the groups' keys, with (on PostgreSQL) the keys and
/// their persons locked for the rest of the transaction: the keys first,
/// then the persons found, read again until no new person appears (one
/// stitching may have merged a person while another waited for it). Each
/// set is locked in order, so stitchings of the same keys queue rather
/// than deadlock; PostgreSQL breaks the rare circle two concurrent merges
/// can still make (one of them fails and may be retried). SQLite's write
/// transaction already excludes every other writer.
async fn known_locked(
    tx: &mut dyn Db,
    backend: Backend,
    program: &ProgramId,
    groups: &[Group],
) -> Result<Known> {
    if backend != Backend::Postgres {
        return load_known(tx, program, groups).await;
    }
    let keys: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.keys.iter().map(String::as_str))
        .collect();
    advisory_locks(tx, keys.iter().map(|k| format!("key:{program}:{k}"))).await?;
    let mut locked: BTreeSet<PersonId> = BTreeSet::new();
    loop {
        let known = load_known(tx, program, groups).await?;
        let persons: BTreeSet<PersonId> = keys
            .iter()
            .filter_map(|k| known.person(k))
            .filter(|p| !locked.contains(*p))
            .cloned()
            .collect();
        if persons.is_empty() {
            return Ok(known);
        }
        advisory_locks(tx, persons.iter().map(|p| format!("person:{p}"))).await?;
        locked.extend(persons);
    }
}

/// Take PostgreSQL transaction-level advisory locks on `names`, in the
/// order of their lock ids.
async fn advisory_locks(tx: &mut dyn Db, names: impl Iterator<Item = String>) -> Result<()> {
    let mut ids: Vec<i64> = names.map(|n| advisory_key_of(&n)).collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(IN_CHUNK) {
        let values = (1..=chunk.len())
            .map(|i| format!("(${i}::bigint)"))
            .collect::<Vec<_>>()
            .join(", ");
        // Volatile functions in the select list run after ORDER BY.
        let sql =
            format!("SELECT pg_advisory_xact_lock(k) FROM (VALUES {values}) AS v(k) ORDER BY k");
        tx.execute(&sql, chunk.iter().map(|&k| Arg::Int(k)).collect())
            .await
            .context("locking identities for stitching")?;
    }
    Ok(())
}

/// Decide and apply the stitching of `groups` within a program.
async fn apply_stitch(
    tx: &mut dyn Db,
    backend: Backend,
    program: &ProgramId,
    groups: &[Group],
) -> Result<StitchPlan> {
    let known = known_locked(tx, backend, program, groups).await?;
    let plan = stitch(&known, groups, PersonId::generate);
    let verified: BTreeSet<&str> = plan.verified.iter().map(String::as_str).collect();
    let now = to_ms(Utc::now());
    for chunk in plan.new_keys.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "identities",
            &["program_id", "ident", "person_id", "created_at", "verified"],
            chunk.len(),
            "ON CONFLICT (program_id, ident) DO NOTHING",
            Params::Numbered,
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * 5);
        for (k, p) in chunk {
            args.extend([
                program.as_str().into(),
                k.as_str().into(),
                p.as_str().into(),
                now.into(),
                i64::from(verified.contains(k.as_str())).into(),
            ]);
        }
        tx.execute(&sql, args)
            .await
            .context("inserting identities")?;
    }
    // Known keys a verified claim named: upgraded (new ones were inserted so).
    let new: BTreeSet<&str> = plan.new_keys.iter().map(|(k, _)| k.as_str()).collect();
    let upgrades: Vec<&str> = verified.difference(&new).copied().collect();
    for chunk in upgrades.chunks(IN_CHUNK) {
        let sql = format!(
            "UPDATE identities SET verified = 1 WHERE program_id = $1 AND ident IN ({})",
            placeholders(2, chunk.len())
        );
        let mut args: Vec<Arg> = vec![program.as_str().into()];
        args.extend(chunk.iter().map(|k| Arg::Text(k)));
        tx.execute(&sql, args)
            .await
            .context("verifying identities")?;
    }
    for (from, into) in &plan.merges {
        let pair = || vec![Arg::Text(into.as_str()), Arg::Text(from.as_str())];
        for sql in [
            "UPDATE identities SET person_id = $1 WHERE person_id = $2",
            "UPDATE touches SET person_id = $1 WHERE person_id = $2",
            "UPDATE conversions SET person_id = $1 WHERE person_id = $2",
            // One lead per partner and person: when both halves had a lead
            // for the same partner, the surviving person's lead is kept.
            "DELETE FROM leads WHERE person_id = $2 AND EXISTS (SELECT 1 FROM leads l \
             WHERE l.person_id = $1 AND l.partner_id = leads.partner_id AND l.program_id = leads.program_id)",
            "UPDATE leads SET person_id = $1 WHERE person_id = $2",
        ] {
            tx.execute(sql, pair()).await.context("merging persons")?;
        }
    }
    Ok(plan)
}

/// What is known of the groups' keys: each one's person, whether it is
/// verified, and whether its person is protected (has any verified key).
async fn load_known(tx: &mut dyn Db, program: &ProgramId, groups: &[Group]) -> Result<Known> {
    let all: BTreeSet<&String> = groups.iter().flat_map(|g| &g.keys).collect();
    let all: Vec<&String> = all.into_iter().collect();
    let mut known = Known::default();
    for chunk in all.chunks(IN_CHUNK) {
        // A person's keys are few, and found through `identities_person`.
        let sql = format!(
            "SELECT i.ident, i.person_id, i.verified, \
             (SELECT MAX(v.verified) FROM identities v WHERE v.person_id = i.person_id) \
             FROM identities i WHERE i.program_id = $1 AND i.ident IN ({})",
            placeholders(2, chunk.len())
        );
        let mut args: Vec<Arg> = vec![program.as_str().into()];
        args.extend(chunk.iter().map(|k| Arg::Text(k)));
        for row in tx.fetch(&sql, args).await.context("resolving identities")? {
            let person =
                PersonId::parse(row.text(1)?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            known.insert(
                row.text(0)?.to_owned(),
                person,
                row.int(2)? != 0,
                row.int(3)? != 0,
            );
        }
    }
    Ok(known)
}

/// A lead counts once per partner and person: the partner of the person's
/// latest creditable touch at the time of the lead event.
async fn record_lead(
    tx: &mut dyn Db,
    program: &ProgramId,
    person: &PersonId,
    e: &Event,
) -> Result<()> {
    attach_late_clicks(tx, program, person).await?;
    let touches = person_touches(tx, person).await?;
    let Some(last) = touches
        .iter()
        .rev()
        .find(|t| t.at <= e.occurred_at && !t.is_bot && !t.partner_suspended)
    else {
        return Ok(());
    };
    let written = tx
        .execute(
            "INSERT INTO leads (program_id, partner_id, person_id, event_id, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (program_id, partner_id, person_id) DO NOTHING",
            vec![
                program.as_str().into(),
                last.partner_id.as_str().into(),
                person.as_str().into(),
                e.id.as_str().into(),
                to_ms(e.occurred_at).into(),
            ],
        )
        .await
        .context("recording lead")?;
    if written == 1 {
        let data = LeadData {
            program_id: program.to_string(),
            partner_id: last.partner_id.to_string(),
            person_id: person.to_string(),
            occurred_at: e.occurred_at,
        };
        emit(tx, program, e.received_at, |_| {
            vec![Pending::shared(
                EventKind::LeadCreated,
                data.partner_id.as_str(),
                &data,
            )]
        })
        .await?;
    }
    Ok(())
}
