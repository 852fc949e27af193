//! Events, the identity graph and partner touches.
//!
//! Events are appended in batches. Only events that link identifiers or
//! name a partner enter the identity graph; the graph is updated from a plan
//! decided by `tribute_core::identity::stitch`. On PostgreSQL events and
//! stitching share one transaction; on SQLite events are written by the
//! native fast path and stitching follows in a second transaction — which is
//! why stitching is idempotent and applied to repeats too. On PostgreSQL a
//! per-program advisory lock serialises stitching across nodes (two nodes must not mint two persons for one key).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sqlx::{Any, FromRow, Transaction};
use tribute_core::attribution::{Touch, TouchKind};
use tribute_core::identity::{stitch, StitchPlan};
use tribute_core::ids::{PartnerId, PersonId, ProgramId};
use tribute_core::tracking::{Event, TrackingSettings};

use crate::{from_ms, to_ms, Backend, BoxFuture, Context, Result, Store, StoreError};

/// Rows per multi-row INSERT of events (15 parameters each).
const EVENT_ROWS: usize = 20;
/// Parameters per `IN (…)` list.
const IN_CHUNK: usize = 500;
/// Rows per multi-row INSERT through sqlx: its cost per statement grows
/// faster than the statement, and about 20 rows was the fastest.
const INSERT_ROWS: usize = 20;

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Ids of the events stored; the others repeated an external id seen before.
    pub inserted: BTreeSet<String>,
}

/// A touch as stored, with its partner's current status.
#[derive(FromRow)]
struct TouchRow {
    id: String,
    partner_id: String,
    kind: String,
    channel: String,
    at: i64,
    is_bot: i64,
    status: Option<String>,
}

fn kind_str(k: TouchKind) -> &'static str {
    match k {
        TouchKind::Click => "click",
        TouchKind::Via => "via",
        TouchKind::Coupon => "coupon",
        TouchKind::Referral => "referral",
        TouchKind::Manual => "manual",
    }
}

fn parse_kind(s: &str) -> Result<TouchKind> {
    Ok(match s {
        "click" => TouchKind::Click,
        "via" => TouchKind::Via,
        "coupon" => TouchKind::Coupon,
        "referral" => TouchKind::Referral,
        "manual" => TouchKind::Manual,
        other => return Err(StoreError::Corrupt(format!("touch kind {other}"))),
    })
}

/// A new partner touch to attach to a person.
#[derive(Debug, Clone)]
pub struct NewTouch {
    pub id: String,
    pub partner_id: PartnerId,
    pub kind: TouchKind,
    pub at: DateTime<Utc>,
    pub is_bot: bool,
}

fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn advisory_key(program: &ProgramId) -> i64 {
    // FNV-1a: stable across processes and versions, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in program.as_str().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

impl Store {
    /// A program's tracking settings and postback token (made on first use).
    pub async fn program_tracking(
        &self,
        program: &ProgramId,
        new_token: impl FnOnce() -> String,
    ) -> Result<(TrackingSettings, String)> {
        const SELECT: &str =
            "SELECT settings, postback_token FROM program_tracking WHERE program_id = $1";
        // Read first: this runs on ingestion paths, which must not write
        // (and so take SQLite's write lock) just to read settings.
        let mut row: Option<(String, String)> = sqlx::query_as(SELECT)
            .bind(program.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading tracking settings")?;
        if row.is_none() {
            sqlx::query(
                "INSERT INTO program_tracking (program_id, settings, postback_token) VALUES ($1, $2, $3) \
                 ON CONFLICT (program_id) DO NOTHING",
            )
            .bind(program.as_str())
            .bind(serde_json::to_string(&TrackingSettings::default()).expect("settings serialise"))
            .bind(new_token())
            .execute(self.pool())
            .await
            .context("initialising tracking settings")?;
            row = sqlx::query_as(SELECT)
                .bind(program.as_str())
                .fetch_optional(self.pool())
                .await
                .context("loading tracking settings")?;
        }
        let (settings, token) = row.ok_or(StoreError::NotFound("program"))?;
        let settings = serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt(format!("tracking settings: {e}")))?;
        Ok((settings, token))
    }

    /// Save a program's tracking settings (making its postback token if it has none yet).
    pub async fn set_program_tracking(
        &self,
        program: &ProgramId,
        s: &TrackingSettings,
    ) -> Result<()> {
        let json = serde_json::to_string(s).expect("settings serialise");
        sqlx::query(
            "INSERT INTO program_tracking (program_id, settings, postback_token) VALUES ($1, $2, $3) \
             ON CONFLICT (program_id) DO UPDATE SET settings = excluded.settings",
        )
        .bind(program.as_str())
        .bind(json)
        .bind(tribute_core::ids::random_base62(32))
        .execute(self.pool())
        .await
        .context("saving tracking settings")?;
        Ok(())
    }

    /// Store a batch of events and fold what they say into the identity
    /// graph: one transaction. Boxed: see `insert_clicks`.
    pub fn ingest_events<'a>(
        &'a self,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(async move {
            // Every linking event of the batch is stitched, repeats included:
            // stitching is idempotent (keys, touches with stable ids, one
            // lead per partner and person), so a batch retried after a crash
            // between SQLite's two transactions below completes its work.
            let linking: Vec<&Event> = events.iter().filter(|e| e.links_identity()).collect();
            if let Some(fast) = self.fast() {
                // SQLite: events through the native fast path, then the
                // (few) linking events through sqlx in a second transaction.
                let inserted = fast.insert_events(events.to_vec()).await?;
                if !linking.is_empty() {
                    let mut tx = self.begin_write().await.context("starting stitching")?;
                    self.stitch_events(&mut tx, &linking).await?;
                    tx.commit().await.context("committing stitching")?;
                }
                return Ok(IngestOutcome { inserted });
            }
            let mut tx = self.pool().begin().await.context("starting event batch")?;
            let inserted = insert_events(&mut tx, events).await?;
            self.stitch_events(&mut tx, &linking).await?;
            tx.commit().await.context("committing event batch")?;
            Ok(IngestOutcome { inserted })
        })
    }

    /// Fold linking events into the identity graph: persons, click and
    /// partner touches, leads.
    async fn stitch_events(
        &self,
        tx: &mut Transaction<'static, Any>,
        linking: &[&Event],
    ) -> Result<()> {
        let mut by_program: BTreeMap<&ProgramId, Vec<&Event>> = BTreeMap::new();
        for e in linking {
            by_program.entry(&e.program_id).or_default().push(e);
        }
        for (program, events) in by_program {
            self.lock_program(&mut *tx, program).await?;
            let groups: Vec<Vec<String>> = events.iter().map(|e| e.group()).collect();
            let plan = apply_stitch(&mut *tx, program, &groups).await?;
            let mut touches: Vec<(PersonId, NewTouch)> = Vec::new();
            let click_ids: Vec<&str> = events
                .iter()
                .filter_map(|e| e.click_id.as_deref())
                .collect();
            let clicks = load_clicks(&mut *tx, program, &click_ids).await?;
            for (e, person) in events.iter().zip(&plan.persons) {
                if let Some(t) = e.click_id.as_deref().and_then(|c| clicks.get(c)) {
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
            insert_touches(&mut *tx, program, &touches).await?;
            for (e, person) in events.iter().zip(&plan.persons) {
                if e.event_type.is_lead() {
                    record_lead(&mut *tx, program, person, e).await?;
                }
            }
        }
        Ok(())
    }

    /// A transaction that reads and then writes. On SQLite it takes the
    /// write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that
    /// read first cannot upgrade once another connection has written, and
    /// fails with "database is locked" instead of waiting its turn.
    async fn begin_write(&self) -> std::result::Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool().begin().await,
        }
    }

    async fn lock_program(
        &self,
        tx: &mut Transaction<'static, Any>,
        program: &ProgramId,
    ) -> Result<()> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(advisory_key(program))
                .execute(&mut **tx)
                .await
                .context("locking program for stitching")?;
        }
        Ok(())
    }

    /// Find or make the person of identifier keys seen together (a
    /// conversion's), attach `touches` to them, and return the person with
    /// every touch they have, partner status included. One transaction.
    pub fn resolve_journey<'a>(
        &'a self,
        program: &'a ProgramId,
        keys: Vec<String>,
        click_id: Option<&'a str>,
        extra: Vec<NewTouch>,
    ) -> BoxFuture<'a, Result<(PersonId, Vec<Touch>)>> {
        Box::pin(async move {
            let mut tx = self.begin_write().await.context("starting journey")?;
            self.lock_program(&mut tx, program).await?;
            let person = if keys.is_empty() {
                PersonId::generate()
            } else {
                apply_stitch(&mut tx, program, std::slice::from_ref(&keys))
                    .await?
                    .persons
                    .remove(0)
            };
            let mut touches: Vec<(PersonId, NewTouch)> =
                extra.into_iter().map(|t| (person.clone(), t)).collect();
            if let Some(c) = click_id {
                if let Some(t) = load_clicks(&mut tx, program, &[c]).await?.remove(c) {
                    touches.push((person.clone(), t));
                }
            }
            insert_touches(&mut tx, program, &touches).await?;
            attach_late_clicks(&mut tx, program, &person).await?;
            let journey = person_touches(&mut tx, &person).await?;
            tx.commit().await.context("committing journey")?;
            Ok((person, journey))
        })
    }

    /// The person an identifier key belongs to, if known.
    pub async fn person_of(&self, program: &ProgramId, key: &str) -> Result<Option<PersonId>> {
        let row: Option<String> = sqlx::query_scalar(
            "SELECT person_id FROM identities WHERE program_id = $1 AND ident = $2",
        )
        .bind(program.as_str())
        .bind(key)
        .fetch_optional(self.pool())
        .await
        .context("looking up identity")?;
        row.map(|p| PersonId::parse(&p).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Every touch of a person, oldest first.
    pub fn touches_of<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<Vec<Touch>>> {
        Box::pin(async move {
            let mut tx = self.pool().begin().await.context("reading touches")?;
            let t = person_touches(&mut tx, person).await?;
            tx.commit().await.context("reading touches")?;
            Ok(t)
        })
    }

    /// Events stored (for checks and benchmarks).
    pub async fn count_events(&self, program: &ProgramId) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE program_id = $1")
            .bind(program.as_str())
            .fetch_one(self.pool())
            .await
            .context("counting events")
    }

    /// Leads that count for a partner: one per person.
    pub async fn count_leads(&self, program: &ProgramId, partner: &PartnerId) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE program_id = $1 AND partner_id = $2")
            .bind(program.as_str())
            .bind(partner.as_str())
            .fetch_one(self.pool())
            .await
            .context("counting leads")
    }

    /// How many e-mail hashes, anonymous ids… the identity graph holds for a person.
    pub async fn identity_keys_of(&self, person: &PersonId) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT ident FROM identities WHERE person_id = $1 ORDER BY ident")
            .bind(person.as_str())
            .fetch_all(self.pool())
            .await
            .context("listing identities")
    }
}

/// Insert events, skipping repeats of an external id; returns the ids inserted.
async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[Event],
) -> Result<BTreeSet<String>> {
    let mut inserted = BTreeSet::new();
    for chunk in events.chunks(EVENT_ROWS) {
        let mut sql = String::from(
            "INSERT INTO events (id, program_id, external_id, type, name, anonymous_id, user_id, \
             email_hash, customer_id, phone_hash, click_id, partner_id, occurred_at, received_at, \
             properties) VALUES ",
        );
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&placeholders(r * 15 + 1, 15));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (program_id, external_id) DO NOTHING RETURNING id");
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for e in chunk {
            q = q
                .bind(e.id.as_str())
                .bind(e.program_id.as_str())
                .bind(e.external_id.as_deref())
                .bind(e.event_type.as_str())
                .bind(e.name.as_deref())
                .bind(e.ids.anonymous_id.as_deref())
                .bind(e.ids.user_id.as_deref())
                .bind(e.ids.email_hash.as_deref())
                .bind(e.ids.customer_id.as_deref())
                .bind(e.ids.phone_hash.as_deref())
                .bind(e.click_id.as_deref())
                .bind(e.partner.as_ref().map(|(p, _)| p.as_str()))
                .bind(to_ms(e.occurred_at))
                .bind(to_ms(e.received_at))
                .bind(e.properties.to_string());
        }
        inserted.extend(q.fetch_all(&mut **tx).await.context("inserting events")?);
    }
    Ok(inserted)
}

/// Decide and apply the stitching of `groups` within a program.
async fn apply_stitch(
    tx: &mut Transaction<'static, Any>,
    program: &ProgramId,
    groups: &[Vec<String>],
) -> Result<StitchPlan> {
    let all: BTreeSet<&String> = groups.iter().flatten().collect();
    let all: Vec<&String> = all.into_iter().collect();
    let mut known = BTreeMap::new();
    for chunk in all.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT ident, person_id FROM identities WHERE program_id = $1 AND ident IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, String)>(&sql).bind(program.as_str());
        for k in chunk {
            q = q.bind(k.as_str());
        }
        for (ident, person) in q
            .fetch_all(&mut **tx)
            .await
            .context("resolving identities")?
        {
            let person =
                PersonId::parse(&person).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            known.insert(ident, person);
        }
    }
    let plan = stitch(&known, groups, PersonId::generate);
    let now = to_ms(Utc::now());
    for chunk in plan.new_keys.chunks(INSERT_ROWS) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", placeholders(r * 4 + 1, 4)))
            .collect();
        let sql = format!(
            "INSERT INTO identities (program_id, ident, person_id, created_at) VALUES {} \
             ON CONFLICT (program_id, ident) DO NOTHING",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (k, p) in chunk {
            q = q
                .bind(program.as_str())
                .bind(k.as_str())
                .bind(p.as_str())
                .bind(now);
        }
        q.execute(&mut **tx).await.context("inserting identities")?;
    }
    for (from, into) in &plan.merges {
        for table in ["identities", "touches", "conversions"] {
            sqlx::query(&format!(
                "UPDATE {table} SET person_id = $1 WHERE person_id = $2"
            ))
            .bind(into.as_str())
            .bind(from.as_str())
            .execute(&mut **tx)
            .await
            .context("merging persons")?;
        }
        // One lead per partner and person: when both halves had a lead for
        // the same partner, the surviving person's lead is kept.
        sqlx::query(
            "DELETE FROM leads WHERE person_id = $2 AND EXISTS (SELECT 1 FROM leads l \
             WHERE l.person_id = $1 AND l.partner_id = leads.partner_id AND l.program_id = leads.program_id)",
        )
        .bind(into.as_str())
        .bind(from.as_str())
        .execute(&mut **tx)
        .await
        .context("merging leads")?;
        sqlx::query("UPDATE leads SET person_id = $1 WHERE person_id = $2")
            .bind(into.as_str())
            .bind(from.as_str())
            .execute(&mut **tx)
            .await
            .context("merging leads")?;
    }
    Ok(plan)
}

/// Clicks of `program` by id, as touches (bots kept, flagged: attribution
/// explains why they earn nothing). A click id of another program is
/// ignored: its partner must never be credited here.
async fn load_clicks(
    tx: &mut Transaction<'static, Any>,
    program: &ProgramId,
    ids: &[&str],
) -> Result<HashMap<String, NewTouch>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT id, partner_id, at, is_bot FROM clicks WHERE program_id = $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, String, i64, i64)>(&sql).bind(program.as_str());
        for id in chunk {
            q = q.bind(*id);
        }
        for (id, partner, at, is_bot) in q.fetch_all(&mut **tx).await.context("loading clicks")? {
            out.insert(
                id.clone(),
                NewTouch {
                    id,
                    partner_id: PartnerId::parse(&partner)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    kind: TouchKind::Click,
                    at: from_ms(at)?,
                    is_bot: is_bot != 0,
                },
            );
        }
    }
    Ok(out)
}

async fn insert_touches(
    tx: &mut Transaction<'static, Any>,
    program: &ProgramId,
    touches: &[(PersonId, NewTouch)],
) -> Result<()> {
    for chunk in touches.chunks(INSERT_ROWS) {
        if chunk.is_empty() {
            continue;
        }
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| format!("({})", placeholders(r * 8 + 1, 8)))
            .collect();
        let sql = format!(
            "INSERT INTO touches (id, program_id, person_id, partner_id, kind, channel, at, is_bot) \
             VALUES {} ON CONFLICT (id) DO NOTHING",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (person, t) in chunk {
            q = q
                .bind(t.id.as_str())
                .bind(program.as_str())
                .bind(person.as_str())
                .bind(t.partner_id.as_str())
                .bind(kind_str(t.kind))
                // Data-driven models learn over partners: a partner is a channel.
                .bind(t.partner_id.as_str())
                .bind(to_ms(t.at))
                .bind(i64::from(t.is_bot));
        }
        q.execute(&mut **tx).await.context("inserting touches")?;
    }
    Ok(())
}

async fn person_touches(
    tx: &mut Transaction<'static, Any>,
    person: &PersonId,
) -> Result<Vec<Touch>> {
    let rows = sqlx::query_as::<_, TouchRow>(
        "SELECT t.id, t.partner_id, t.kind, t.channel, t.at, t.is_bot, p.status \
         FROM touches t LEFT JOIN partners p ON p.id = t.partner_id \
         WHERE t.person_id = $1 ORDER BY t.at, t.id",
    )
    .bind(person.as_str())
    .fetch_all(&mut **tx)
    .await
    .context("loading touches")?;
    rows.into_iter().map(touch_from_row).collect()
}

fn touch_from_row(r: TouchRow) -> Result<Touch> {
    Ok(Touch {
        partner_id: PartnerId::parse(&r.partner_id)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kind: parse_kind(&r.kind)?,
        channel: r.channel,
        at: from_ms(r.at)?,
        is_bot: r.is_bot != 0,
        partner_suspended: r.status.as_deref() != Some("active")
            && r.status.as_deref() != Some("pending"),
        id: r.id,
    })
}

/// Every touch of every person who converted in `[from, to)`, with the person.
pub(crate) async fn touches_of_converted(
    store: &Store,
    program: &ProgramId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(PersonId, Touch)>> {
    #[derive(FromRow)]
    struct Row {
        person_id: String,
        #[sqlx(flatten)]
        touch: TouchRow,
    }
    let rows = sqlx::query_as::<_, Row>(
        "SELECT t.person_id, t.id, t.partner_id, t.kind, t.channel, t.at, t.is_bot, p.status \
         FROM touches t LEFT JOIN partners p ON p.id = t.partner_id \
         WHERE t.program_id = $1 AND t.person_id IN (SELECT person_id FROM conversions \
           WHERE program_id = $1 AND occurred_at >= $2 AND occurred_at < $3) \
         ORDER BY t.person_id, t.at, t.id",
    )
    .bind(program.as_str())
    .bind(to_ms(from))
    .bind(to_ms(to))
    .fetch_all(store.pool())
    .await
    .context("loading touches of converted persons")?;
    rows.into_iter()
        .map(|r| {
            let person =
                PersonId::parse(&r.person_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((person, touch_from_row(r.touch)?))
        })
        .collect()
}

/// Attach clicks whose id the person carries but which were not yet written
/// when that id arrived. The redirect commits clicks in the background, so
/// the snippet's page view can be stored first; the click id is kept as an
/// identity key, and here, before anything reads the person's touches, the
/// clicks that have since landed become touches.
async fn attach_late_clicks(
    tx: &mut Transaction<'static, Any>,
    program: &ProgramId,
    person: &PersonId,
) -> Result<()> {
    let late: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT c.id, c.partner_id, c.at, c.is_bot FROM identities i \
         JOIN clicks c ON c.id = substr(i.ident, 10) AND c.program_id = i.program_id \
         WHERE i.program_id = $1 AND i.person_id = $2 AND i.ident LIKE 'click_id:%' \
         AND NOT EXISTS (SELECT 1 FROM touches t WHERE t.id = c.id)",
    )
    .bind(program.as_str())
    .bind(person.as_str())
    .fetch_all(&mut **tx)
    .await
    .context("finding late clicks")?;
    let mut touches = Vec::with_capacity(late.len());
    for (id, partner, at, is_bot) in late {
        touches.push((
            person.clone(),
            NewTouch {
                id,
                partner_id: PartnerId::parse(&partner)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                kind: TouchKind::Click,
                at: from_ms(at)?,
                is_bot: is_bot != 0,
            },
        ));
    }
    insert_touches(tx, program, &touches).await
}

/// A lead counts once per partner and person: the partner of the person's
/// latest creditable touch at the time of the lead event.
async fn record_lead(
    tx: &mut Transaction<'static, Any>,
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
    sqlx::query(
        "INSERT INTO leads (program_id, partner_id, person_id, event_id, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (program_id, partner_id, person_id) DO NOTHING",
    )
    .bind(program.as_str())
    .bind(last.partner_id.as_str())
    .bind(person.as_str())
    .bind(e.id.as_str())
    .bind(to_ms(e.occurred_at))
    .execute(&mut **tx)
    .await
    .context("recording lead")?;
    Ok(())
}
