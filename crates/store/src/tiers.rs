//! Tiers as stored, partners' results over a window, and the automatic
//! promotion and demotion of a program's partners
//! ([`Store::evaluate_tiers`]), each move recorded with its reason.
//!
//! A partner's `tier` is the tier's name (what `commissions.rs` joins on
//! for the multiplier), so renaming a tier renames it on its partners in the
//! same transaction. Deleting a tier leaves the name on its partners: core
//! treats a name that is no tier of the program as set by hand, and leaves
//! it alone (their multiplier is ×1 until the owner moves them).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sqlx::FromRow;
use tribute_core::commission::{evaluate, stat_windows, PartnerStats, Threshold, Tier, TierChange};
use tribute_core::ids::{random_base62, PartnerId, ProgramId, TierId};
use tribute_core::money::Currency;

use crate::outbox::{emit, Pending};
use crate::{corrupt, from_ms, on_unique, to_ms, Context, Result, Store, StoreError};
use tribute_core::webhook::{EventKind, TierChangedData};

/// A tier of a program, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTier {
    pub id: TierId,
    pub program_id: ProgramId,
    pub tier: Tier,
    pub created_at: DateTime<Utc>,
}

/// A partner's move between tiers, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTierChange {
    /// `tch_` and random characters (not one of core's typed ids: a
    /// change is only ever listed, never addressed).
    pub id: String,
    pub program_id: ProgramId,
    pub partner_id: PartnerId,
    pub change: TierChange,
    pub at: DateTime<Utc>,
}

const COLUMNS: &str = "id, program_id, name, multiplier_bps, rank, threshold, created_at";

impl StoredTierChange {
    /// A change made at `at`, with a fresh id.
    pub(crate) fn new(
        program_id: ProgramId,
        partner_id: PartnerId,
        change: TierChange,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: format!("tch_{}", random_base62(20)),
            program_id,
            partner_id,
            change,
            at,
        }
    }
}

/// Record a tier change, in the transaction that made it.
pub(crate) async fn insert_tier_change(
    conn: &mut sqlx::AnyConnection,
    c: &StoredTierChange,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tier_changes (id, program_id, partner_id, from_tier, to_tier, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(c.program_id.as_str())
    .bind(c.partner_id.as_str())
    .bind(c.change.from.as_deref())
    .bind(c.change.to.as_deref())
    .bind(&c.change.reason)
    .bind(to_ms(c.at))
    .execute(&mut *conn)
    .await
    .context("recording a tier change")?;
    let data = TierChangedData {
        partner_id: c.partner_id.to_string(),
        program_id: c.program_id.to_string(),
        from_tier: c.change.from.clone(),
        to_tier: c.change.to.clone(),
        reason: c.change.reason.clone(),
    };
    emit(conn, &c.program_id, c.at, |_| {
        vec![Pending::shared(
            EventKind::PartnerTierChanged,
            &data.partner_id,
            &data,
        )]
    })
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct TierRow {
    id: String,
    program_id: String,
    name: String,
    multiplier_bps: i64,
    rank: i64,
    threshold: Option<String>,
    created_at: i64,
}

impl TryFrom<TierRow> for StoredTier {
    type Error = StoreError;
    fn try_from(r: TierRow) -> Result<Self> {
        let bad = |what: &str, e: String| StoreError::Corrupt(format!("tier {what}: {e}"));
        let threshold = r
            .threshold
            .as_deref()
            .map(serde_json::from_str::<Threshold>)
            .transpose()
            .map_err(|e| bad("threshold", e.to_string()))?;
        let tier = Tier {
            name: r.name,
            multiplier_bps: u32::try_from(r.multiplier_bps)
                .map_err(|e| bad("multiplier", e.to_string()))?,
            rank: u32::try_from(r.rank).map_err(|e| bad("rank", e.to_string()))?,
            threshold,
        };
        tier.validate().map_err(corrupt("tier"))?;
        Ok(Self {
            id: TierId::parse(&r.id).map_err(corrupt("tier id"))?,
            program_id: ProgramId::parse(&r.program_id).map_err(corrupt("tier program"))?,
            tier,
            created_at: from_ms(r.created_at)?,
        })
    }
}

fn threshold_json(t: &Tier) -> Option<String> {
    t.threshold
        .map(|th| serde_json::to_string(&th).expect("a threshold serialises"))
}

/// What a unique violation on `tiers` was about: the name or the rank.
const TIER_CONFLICT: &str = "another tier of the program has this name or rank";

impl Store {
    /// Store a tier. The caller checks the program's set first
    /// (`tribute_core::commission::validate_set`); a name or rank taken in
    /// the meantime is still refused here, as a conflict.
    #[tracing::instrument(skip(self, t), fields(id = %t.id))]
    pub async fn insert_tier(&self, t: &StoredTier) -> Result<()> {
        on_unique(
            sqlx::query(&format!(
                "INSERT INTO tiers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(t.id.as_str())
            .bind(t.program_id.as_str())
            .bind(&t.tier.name)
            .bind(i64::from(t.tier.multiplier_bps))
            .bind(i64::from(t.tier.rank))
            .bind(threshold_json(&t.tier))
            .bind(to_ms(t.created_at))
            .execute(self.pool())
            .await,
            "name",
            TIER_CONFLICT,
            "inserting a tier",
        )?;
        Ok(())
    }

    /// Overwrite a tier. A new name is carried to the partners holding the
    /// old one, in the same transaction, so nobody drops out of the tier.
    #[tracing::instrument(skip(self, t), fields(id = %t.id))]
    pub async fn update_tier(&self, t: &StoredTier) -> Result<()> {
        let mut tx = self.begin_write().await.context("starting tier update")?;
        let old: Option<(String,)> = sqlx::query_as("SELECT name FROM tiers WHERE id = $1")
            .bind(t.id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .context("loading a tier")?;
        let Some((old,)) = old else {
            return Err(StoreError::NotFound("tier"));
        };
        on_unique(
            sqlx::query(
                "UPDATE tiers SET name = $2, multiplier_bps = $3, rank = $4, threshold = $5 \
                 WHERE id = $1",
            )
            .bind(t.id.as_str())
            .bind(&t.tier.name)
            .bind(i64::from(t.tier.multiplier_bps))
            .bind(i64::from(t.tier.rank))
            .bind(threshold_json(&t.tier))
            .execute(&mut *tx)
            .await,
            "name",
            TIER_CONFLICT,
            "updating a tier",
        )?;
        if old != t.tier.name {
            sqlx::query("UPDATE partners SET tier = $1 WHERE program_id = $2 AND tier = $3")
                .bind(&t.tier.name)
                .bind(t.program_id.as_str())
                .bind(&old)
                .execute(&mut *tx)
                .await
                .context("renaming a tier on its partners")?;
        }
        tx.commit().await.context("committing tier update")?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_tier(&self, id: &TierId) -> Result<()> {
        let done = sqlx::query("DELETE FROM tiers WHERE id = $1")
            .bind(id.as_str())
            .execute(self.pool())
            .await
            .context("deleting a tier")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("tier"));
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub async fn tier(&self, id: &TierId) -> Result<Option<StoredTier>> {
        sqlx::query_as::<_, TierRow>(&format!("SELECT {COLUMNS} FROM tiers WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading a tier")?
            .map(StoredTier::try_from)
            .transpose()
    }

    /// A program's tiers, highest rank first.
    #[tracing::instrument(skip(self))]
    pub async fn tiers(&self, program: &ProgramId) -> Result<Vec<StoredTier>> {
        sqlx::query_as::<_, TierRow>(&format!(
            "SELECT {COLUMNS} FROM tiers WHERE program_id = $1 ORDER BY rank DESC"
        ))
        .bind(program.as_str())
        .fetch_all(self.pool())
        .await
        .context("listing tiers")?
        .into_iter()
        .map(StoredTier::try_from)
        .collect()
    }

    /// Every partner's attributed results in `program` over the `days`
    /// days up to `now`: the credited part of each approved conversion,
    /// net of its refunds (pro rata, half up), and how many of them were
    /// not refunded in full. Pending conversions (a browser's report
    /// awaiting the owner) and rejected or superseded ones do not count:
    /// nobody reaches a tier on sales that may not stand. Partners without
    /// results are absent (their results are zero).
    #[tracing::instrument(skip(self))]
    pub async fn partner_stats(
        &self,
        program: &ProgramId,
        days: u32,
        now: DateTime<Utc>,
    ) -> Result<HashMap<PartnerId, PartnerStats>> {
        // Per credit, not summed in SQL: the refund's share is a product of
        // two amounts that may pass 64 bits, computed here in i128.
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT cc.partner_id, cc.amount_minor, c.value_minor, c.refunded_minor \
             FROM conversion_credits cc JOIN conversions c ON c.id = cc.conversion_id \
             WHERE cc.program_id = $1 AND cc.occurred_at > $2 AND cc.occurred_at <= $3 \
             AND c.status = 'approved'",
        )
        .bind(program.as_str())
        .bind(to_ms(now - Duration::days(i64::from(days))))
        .bind(to_ms(now))
        .fetch_all(self.pool())
        .await
        .context("summing partners' results")?;
        let mut out: HashMap<PartnerId, PartnerStats> = HashMap::new();
        for (partner, amount, value, refunded) in rows {
            let partner = PartnerId::parse(&partner).map_err(corrupt("credit partner"))?;
            let s = out.entry(partner).or_default();
            let refunded = refunded.clamp(0, value.max(0));
            let reversed = if value > 0 {
                let (a, r, v) = (i128::from(amount), i128::from(refunded), i128::from(value));
                i64::try_from((2 * a * r + v) / (2 * v))
                    .map_err(|e| StoreError::Corrupt(format!("refund share: {e}")))?
            } else {
                0
            };
            s.revenue = s.revenue.saturating_add(amount - reversed);
            if value == 0 || refunded < value {
                s.conversions += 1;
            }
        }
        Ok(out)
    }

    /// Move every partner of `program` to the tier its results earn
    /// (`tribute_core::commission::evaluate`), as of `now`; returns the
    /// changes made. Each change sets the partner's tier and records it
    /// with its reason, in one transaction, and only if the partner is
    /// still in the tier it was evaluated in: an owner's edit or another
    /// node's evaluation in the meantime wins, and nothing is recorded twice.
    #[tracing::instrument(skip(self))]
    pub async fn evaluate_tiers(
        &self,
        program: &ProgramId,
        currency: Currency,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredTierChange>> {
        let tiers: Vec<Tier> = self
            .tiers(program)
            .await?
            .into_iter()
            .map(|t| t.tier)
            .collect();
        if !tiers.iter().any(Tier::is_automatic) {
            // Nobody moves automatically: skip reading results.
            return Ok(Vec::new());
        }
        let mut windows = HashMap::new();
        for w in stat_windows(&tiers) {
            windows.insert(w, self.partner_stats(program, w, now).await?);
        }
        let partners: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT id, tier FROM partners WHERE program_id = $1 ORDER BY id")
                .bind(program.as_str())
                .fetch_all(self.pool())
                .await
                .context("listing partners to evaluate")?;
        let mut changes = Vec::new();
        for (id, current) in partners {
            let partner = PartnerId::parse(&id).map_err(corrupt("partner id"))?;
            let stats = |w: u32| {
                windows
                    .get(&w)
                    .and_then(|m| m.get(&partner))
                    .copied()
                    .unwrap_or_default()
            };
            let Some(change) = evaluate(&tiers, current.as_deref(), currency, stats) else {
                continue;
            };
            let recorded = StoredTierChange::new(program.clone(), partner, change, now);
            if self.record_tier_change(&recorded).await? {
                changes.push(recorded);
            }
        }
        Ok(changes)
    }

    /// Set the partner's tier to `c.change.to` if it is still
    /// `c.change.from`, and record the change; whether it was made.
    async fn record_tier_change(&self, c: &StoredTierChange) -> Result<bool> {
        let mut tx = self.begin_write().await.context("starting tier change")?;
        let from = c.change.from.as_deref();
        let done = sqlx::query(
            "UPDATE partners SET tier = $1 WHERE id = $2 AND program_id = $3 \
             AND (tier = $4 OR (tier IS NULL AND $5))",
        )
        .bind(c.change.to.as_deref())
        .bind(c.partner_id.as_str())
        .bind(c.program_id.as_str())
        .bind(from)
        .bind(from.is_none())
        .execute(&mut *tx)
        .await
        .context("moving a partner to a tier")?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_tier_change(&mut tx, c).await?;
        tx.commit().await.context("committing tier change")?;
        Ok(true)
    }

    /// A partner's tier changes, newest first (one a day at most when
    /// evaluated daily: a short list, read whole).
    #[tracing::instrument(skip(self))]
    pub async fn tier_changes(&self, partner: &PartnerId) -> Result<Vec<StoredTierChange>> {
        type Row = (String, String, Option<String>, Option<String>, String, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, program_id, from_tier, to_tier, reason, at FROM tier_changes \
             WHERE partner_id = $1 ORDER BY at DESC, id DESC",
        )
        .bind(partner.as_str())
        .fetch_all(self.pool())
        .await
        .context("listing tier changes")?;
        rows.into_iter()
            .map(|(id, program, from, to, reason, at)| {
                Ok(StoredTierChange {
                    id,
                    program_id: ProgramId::parse(&program).map_err(corrupt("change program"))?,
                    partner_id: partner.clone(),
                    change: TierChange { from, to, reason },
                    at: from_ms(at)?,
                })
            })
            .collect()
    }
}
