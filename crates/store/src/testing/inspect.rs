//! Reads only tests make: counts and look-ups no production path needs, so
//! they stay out of the production API (feature `test-support`).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tribute_core::click::Click;
use tribute_core::ids::{ClickId, LinkId, PartnerId, PersonId, ProgramId};

use crate::{corrupt, from_ms, to_ms, Context, Result, Store, StoreError};

/// Columns of a click as read, its user agent joined from `user_agents`.
const CLICK_COLUMNS: &str = "c.id, c.program_id, c.link_id, c.partner_id, c.at, \
     c.ip_truncated, c.ip_hash, c.visitor_hash, u.user_agent, c.referrer, c.source, c.is_bot, c.reasons";

/// The table expression `CLICK_COLUMNS` reads from.
const CLICK_FROM: &str = "clicks c LEFT JOIN user_agents u ON u.id = c.ua_id";

#[derive(FromRow)]
struct ClickRow {
    id: String,
    program_id: String,
    link_id: String,
    partner_id: String,
    at: i64,
    ip_truncated: String,
    ip_hash: String,
    visitor_hash: String,
    user_agent: Option<String>,
    referrer: Option<String>,
    source: Option<String>,
    is_bot: i64,
    reasons: Option<String>,
}

impl TryFrom<ClickRow> for Click {
    type Error = StoreError;
    fn try_from(r: ClickRow) -> Result<Self> {
        Ok(Click {
            id: ClickId::parse(&r.id).map_err(corrupt("click id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("click program"))?,
            link_id: LinkId::parse(&r.link_id).map_err(corrupt("click link"))?,
            partner_id: PartnerId::parse(&r.partner_id).map_err(corrupt("click partner"))?,
            at: from_ms(r.at)?,
            ip_truncated: r.ip_truncated,
            ip_hash: r.ip_hash,
            visitor_hash: r.visitor_hash,
            user_agent: r.user_agent,
            referrer: r.referrer,
            source: r.source,
            is_bot: r.is_bot != 0,
            reasons: match r.reasons {
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("click reasons: {e}")))?,
                None => Vec::new(),
            },
        })
    }
}

impl Store {
    /// A click as stored, its user agent joined back.
    pub async fn click(&self, id: &ClickId) -> Result<Option<Click>> {
        sqlx::query_as::<_, ClickRow>(&format!(
            "SELECT {CLICK_COLUMNS} FROM {CLICK_FROM} WHERE c.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading click")?
        .map(Click::try_from)
        .transpose()
    }

    /// A partner's clicks in `[from, to)`, newest first, at most `limit`.
    pub async fn partner_clicks(
        &self,
        partner: &PartnerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Click>> {
        sqlx::query_as::<_, ClickRow>(&format!(
            "SELECT {CLICK_COLUMNS} FROM {CLICK_FROM} WHERE c.partner_id = $1 AND c.at >= $2 AND c.at < $3 \
             ORDER BY c.at DESC, c.id LIMIT $4"
        ))
        .bind(partner.as_str())
        .bind(to_ms(from))
        .bind(to_ms(to))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .context("listing clicks")?
        .into_iter()
        .map(Click::try_from)
        .collect()
    }

    /// Every click recorded, bots included.
    pub async fn count_clicks(&self) -> Result<i64> {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM clicks")
            .fetch_one(self.pool())
            .await
            .context("counting clicks")
    }

    /// Events stored in a program.
    pub async fn count_events(&self, program: &ProgramId) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE program_id = $1")
            .bind(program.as_str())
            .fetch_one(self.pool())
            .await
            .context("counting events")
    }

    /// Outbound webhook deliveries, all or those in `status`.
    pub async fn count_deliveries(&self, status: Option<&str>) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE ($1 IS NULL OR status = $1)",
        )
        .bind(status)
        .fetch_one(self.pool())
        .await
        .context("counting webhook deliveries")
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

    /// The identifier keys (e-mail hashes, anonymous ids, …) the identity graph holds for a person.
    pub async fn identity_keys_of(&self, person: &PersonId) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT ident FROM identities WHERE person_id = $1 ORDER BY ident")
            .bind(person.as_str())
            .fetch_all(self.pool())
            .await
            .context("listing identities")
    }
}
