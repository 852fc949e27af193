//! Recomputing a conversion's commissions under today's rules: a preview
//! per partner, and, when applied, only the correcting entries (rate lock:
//! the commissions already made keep the rule version they were made with).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tribute_core::ids::{CommissionId, PartnerId};
use tribute_core::tracking::Conversion;

use crate::commissions::{
    plan_sale, positions_of, program_rules, write_planned, ProgramRules, Source,
};
use crate::ledger::{append, save_position, EntryLinks};
use crate::{corrupt, Context, Result, Store, StoreError};

/// One partner's part of a conversion, current or proposed by today's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecomputeLine {
    pub partner_id: String,
    /// `commission` or `override`.
    pub kind: String,
    /// Net of what refunds reversed (current), or of what they would
    /// (proposed).
    pub amount: i64,
}

/// What recomputing a conversion under today's rules gives.
#[derive(Debug, Clone, Serialize)]
pub struct Recompute {
    pub current: Vec<RecomputeLine>,
    pub proposed: Vec<RecomputeLine>,
    /// proposed − current per partner and kind: what applying posts.
    pub corrections: Vec<RecomputeLine>,
    pub applied: bool,
}

impl Store {
    /// Recompute a conversion's commissions under today's rules, tiers and
    /// team; with `apply`, post only the correcting entries (a new accrual
    /// for what is owed more, a void of what is owed less). Commissions
    /// already made keep their rule version either way.
    pub async fn recompute_conversion(
        &self,
        conversion: &Conversion,
        apply: bool,
        now: DateTime<Utc>,
    ) -> Result<Recompute> {
        use std::collections::BTreeMap;
        let mut tx = self.begin_write().await.context("starting recompute")?;
        self.lock(&mut tx, conversion.id.as_str()).await?;
        let (refunded,): (i64,) =
            sqlx::query_as("SELECT refunded_minor FROM conversions WHERE id = $1")
                .bind(conversion.id.as_str())
                .fetch_one(&mut *tx)
                .await
                .context("loading the refunded total")?;
        let credits: Vec<(String, String)> = sqlx::query_as(
            "SELECT partner_id, weight FROM conversion_credits WHERE conversion_id = $1 \
             ORDER BY partner_id",
        )
        .bind(conversion.id.as_str())
        .fetch_all(&mut *tx)
        .await
        .context("loading credits")?;
        // The attribution's order (who touched first wins a tie), then any
        // partner assigned by hand.
        let mut credited: Vec<(PartnerId, u64)> = Vec::new();
        for p in &conversion.attribution.partners {
            if p.weight > 0 {
                credited.push((p.partner_id.clone(), p.weight));
            }
        }
        let manual = credited.is_empty();
        for (partner, weight) in &credits {
            let id = PartnerId::parse(partner).map_err(corrupt("credit partner"))?;
            if !credited.iter().any(|(p, _)| *p == id) {
                let w = weight
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("weight: {e}")))?;
                credited.push((id, w));
            }
        }
        let ProgramRules { rules, terms } = program_rules(&mut tx, &conversion.program_id).await?;
        let planned = plan_sale(
            &mut tx,
            self.backend(),
            conversion,
            &credited,
            &rules,
            &terms,
            manual,
        )
        .await?;
        let value = conversion.value.minor;
        let key = |p: &str, k: &str| (p.to_owned(), k.to_owned());
        let mut proposed: BTreeMap<(String, String), i64> = BTreeMap::new();
        for p in &planned {
            let net = p.amount.minor
                - tribute_core::ledger::reversal_target(p.amount.minor, value, refunded);
            *proposed
                .entry(key(p.partner_id.as_str(), p.kind.as_str()))
                .or_default() += net;
        }
        let positions = positions_of(&mut tx, conversion.id.as_str()).await?;
        let kinds: Vec<(String,)> = sqlx::query_as(
            // The order of `positions_of`, so the two zip.
            "SELECT kind FROM commissions c WHERE conversion_id = $1 ORDER BY \
                 (SELECT MIN(e.id) FROM ledger_entries e WHERE e.commission_id = c.id), id",
        )
        .bind(conversion.id.as_str())
        .fetch_all(&mut *tx)
        .await
        .context("loading commission kinds")?;
        let mut current: BTreeMap<(String, String), i64> = BTreeMap::new();
        for ((p, _), (k,)) in positions.iter().zip(&kinds) {
            *current.entry(key(p.partner_id.as_str(), k)).or_default() += p.accrued - p.voided;
        }
        let lines = |m: &BTreeMap<(String, String), i64>| -> Vec<RecomputeLine> {
            m.iter()
                .map(|((p, k), a)| RecomputeLine {
                    partner_id: p.clone(),
                    kind: k.clone(),
                    amount: *a,
                })
                .collect()
        };
        let mut corrections = BTreeMap::new();
        for k in current.keys().chain(proposed.keys()) {
            let d = proposed.get(k).copied().unwrap_or(0) - current.get(k).copied().unwrap_or(0);
            if d != 0 {
                corrections.insert(k.clone(), d);
            }
        }
        let out = Recompute {
            current: lines(&current),
            proposed: lines(&proposed),
            corrections: lines(&corrections),
            applied: apply,
        };
        if !apply || corrections.is_empty() {
            return Ok(out);
        }
        let links = EntryLinks {
            conversion_id: Some(&conversion.id),
            payout_id: None,
        };
        let mut increases = Vec::new();
        for ((partner, kind), d) in &corrections {
            if *d > 0 {
                // Owed more: a new accrual of the difference, explained by
                // today's computation (the planned commission it comes from).
                let source = planned
                    .iter()
                    .find(|p| p.partner_id.as_str() == partner && p.kind.as_str() == kind)
                    .ok_or_else(|| StoreError::Corrupt("a correction without a plan".into()))?;
                let id = CommissionId::generate();
                let (position, entry) = tribute_core::ledger::Position::accrue(
                    id.clone(),
                    conversion.program_id.clone(),
                    source.partner_id.clone(),
                    source.derives_from.clone(),
                    *d,
                )
                .map_err(|e| StoreError::Corrupt(format!("correction: {e}")))?;
                let mut planned_one = source.clone();
                planned_one.id = id;
                planned_one.amount = tribute_core::money::Money::new(*d, source.amount.currency);
                planned_one.explanation = serde_json::json!({
                    "kind": "correction",
                    "recomputed": source.explanation,
                    "difference": d,
                });
                planned_one.position = position;
                planned_one.entry = entry;
                increases.push(planned_one);
            } else {
                // Owed less: void the difference from this partner's open
                // positions of that kind, the newest first.
                let mut left = -d;
                for ((p, row), (k,)) in positions.iter().zip(&kinds).rev() {
                    if left == 0 || p.partner_id.as_str() != partner || k != kind {
                        continue;
                    }
                    let mut p = p.clone();
                    let take = left.min(p.open());
                    if let Some(entry) = p
                        .void(take, "recomputed under today's rules")
                        .map_err(|e| StoreError::Corrupt(format!("correction: {e}")))?
                    {
                        append(&mut tx, &conversion.program_id, &entry, links, now).await?;
                        save_position(&mut tx, &p, row.held != 0, row.payout_id.is_some()).await?;
                    }
                    left -= take;
                }
            }
        }
        let held = conversion.status == tribute_core::tracking::ConversionStatus::Pending;
        write_planned(
            &mut tx,
            &Source::sale(conversion),
            &increases,
            held,
            terms.hold_days,
            now,
        )
        .await?;
        tx.commit().await.context("committing recompute")?;
        Ok(out)
    }
}
