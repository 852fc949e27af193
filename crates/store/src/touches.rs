//! Partner touches of persons: clicks, `via`, coupons, referrals and manual
//! credits, read back as a person's journey with each partner's standing.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tribute_core::attribution::{Touch, TouchKind};
use tribute_core::identity::CLICK_KEY_PREFIX;
use tribute_core::ids::{PartnerId, PersonId, ProgramId};
use tribute_core::partner::PartnerStatus;

use crate::db::{Arg, Db, DbContext, Row};
use crate::sql::{multi_row_insert, placeholders, Params, INSERT_ROWS, IN_CHUNK};
use crate::{corrupt, from_ms, to_ms, BoxFuture, Context, Result, Store, StoreError};

/// A new partner touch to attach to a person.
#[derive(Debug, Clone)]
pub struct NewTouch {
    pub id: String,
    pub partner_id: PartnerId,
    pub kind: TouchKind,
    pub at: DateTime<Utc>,
    pub is_bot: bool,
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

pub(crate) fn kind_str(k: TouchKind) -> &'static str {
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

impl Store {
    /// Every touch of a person, oldest first.
    pub fn touches_of<'a>(&'a self, person: &'a PersonId) -> BoxFuture<'a, Result<Vec<Touch>>> {
        Box::pin(async move {
            let mut tx = self.pool().begin().await.context("reading touches")?;
            let t = person_touches(&mut tx, person).await?;
            tx.commit().await.context("reading touches")?;
            Ok(t)
        })
    }
}

/// A click read as `(id, partner_id, at, is_bot)`, as a touch.
fn click_touch(row: &Row) -> Result<NewTouch> {
    Ok(NewTouch {
        id: row.text(0)?.to_owned(),
        partner_id: PartnerId::parse(row.text(1)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kind: TouchKind::Click,
        at: from_ms(row.int(2)?)?,
        is_bot: row.int(3)? != 0,
    })
}

/// Clicks of `program` by id, as touches (bots kept, flagged: attribution
/// explains why they earn nothing). A click id of another program is
/// ignored: its partner must never be credited here.
pub(crate) async fn load_clicks(
    db: &mut dyn Db,
    program: &ProgramId,
    ids: &[&str],
) -> Result<HashMap<String, NewTouch>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT id, partner_id, at, is_bot FROM clicks WHERE program_id = $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut args: Vec<Arg> = vec![program.as_str().into()];
        args.extend(chunk.iter().map(|id| Arg::Text(id)));
        for row in db.fetch(&sql, args).await.context("loading clicks")? {
            let t = click_touch(&row)?;
            out.insert(t.id.clone(), t);
        }
    }
    Ok(out)
}

const TOUCH_COLUMNS: [&str; 8] = [
    "id",
    "program_id",
    "person_id",
    "partner_id",
    "kind",
    "channel",
    "at",
    "is_bot",
];

pub(crate) async fn insert_touches(
    db: &mut dyn Db,
    program: &ProgramId,
    touches: &[(PersonId, NewTouch)],
) -> Result<()> {
    for chunk in touches.chunks(INSERT_ROWS) {
        let sql = multi_row_insert(
            "touches",
            &TOUCH_COLUMNS,
            chunk.len(),
            "ON CONFLICT (id) DO NOTHING",
            Params::Numbered,
        );
        let mut args: Vec<Arg> = Vec::with_capacity(chunk.len() * TOUCH_COLUMNS.len());
        for (person, t) in chunk {
            args.extend([
                t.id.as_str().into(),
                program.as_str().into(),
                person.as_str().into(),
                t.partner_id.as_str().into(),
                kind_str(t.kind).into(),
                // Data-driven models learn over partners: a partner is a channel.
                t.partner_id.as_str().into(),
                to_ms(t.at).into(),
                i64::from(t.is_bot).into(),
            ]);
        }
        db.execute(&sql, args).await.context("inserting touches")?;
    }
    Ok(())
}

pub(crate) async fn person_touches(db: &mut dyn Db, person: &PersonId) -> Result<Vec<Touch>> {
    let rows = db
        .fetch(
            "SELECT t.id, t.partner_id, t.kind, t.channel, t.at, t.is_bot, p.status \
             FROM touches t LEFT JOIN partners p ON p.id = t.partner_id \
             WHERE t.person_id = $1 ORDER BY t.at, t.id",
            vec![person.as_str().into()],
        )
        .await
        .context("loading touches")?;
    rows.iter()
        .map(|r| {
            touch_from_row(TouchRow {
                id: r.text(0)?.to_owned(),
                partner_id: r.text(1)?.to_owned(),
                kind: r.text(2)?.to_owned(),
                channel: r.text(3)?.to_owned(),
                at: r.int(4)?,
                is_bot: r.int(5)?,
                status: r.opt_text(6)?.map(str::to_owned),
            })
        })
        .collect()
}

fn touch_from_row(r: TouchRow) -> Result<Touch> {
    // A touch of a partner since deleted (no status) earns nothing either.
    let credits = match r.status.as_deref() {
        Some(s) => PartnerStatus::parse(s)
            .map_err(corrupt("partner status"))?
            .credits(),
        None => false,
    };
    Ok(Touch {
        partner_id: PartnerId::parse(&r.partner_id)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        kind: parse_kind(&r.kind)?,
        channel: r.channel,
        at: from_ms(r.at)?,
        is_bot: r.is_bot != 0,
        partner_suspended: !credits,
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

/// The clicks a person carries as identity keys (`click_id:clk_…`) that
/// are not touches yet. The click id starts right after core's
/// `CLICK_KEY_PREFIX`, whatever its length.
static LATE_CLICKS_SQL: LazyLock<String> = LazyLock::new(|| {
    let prefix = CLICK_KEY_PREFIX;
    assert!(
        !prefix.contains('\''),
        "the click key prefix is written into SQL as a literal"
    );
    let len = prefix.len();
    let start = len + 1;
    format!(
        "SELECT c.id, c.partner_id, c.at, c.is_bot FROM identities i \
         JOIN clicks c ON c.id = substr(i.ident, {start}) AND c.program_id = i.program_id \
         WHERE i.program_id = $1 AND i.person_id = $2 AND substr(i.ident, 1, {len}) = '{prefix}' \
         AND NOT EXISTS (SELECT 1 FROM touches t WHERE t.id = c.id)"
    )
});

/// Attach clicks whose id the person carries but which were not yet written
/// when that id arrived. The redirect commits clicks in the background, so
/// the snippet's page view can be stored first; the click id is kept as an
/// identity key, and here, before anything reads the person's touches, the
/// clicks that have since landed become touches.
pub(crate) async fn attach_late_clicks(
    db: &mut dyn Db,
    program: &ProgramId,
    person: &PersonId,
) -> Result<()> {
    let late = db
        .fetch(
            &LATE_CLICKS_SQL,
            vec![program.as_str().into(), person.as_str().into()],
        )
        .await
        .context("finding late clicks")?;
    let touches = late
        .iter()
        .map(|row| Ok((person.clone(), click_touch(row)?)))
        .collect::<Result<Vec<_>>>()?;
    insert_touches(db, program, &touches).await
}
