//! Reward rules as stored: versions under one id, never rewritten.
//!
//! Creating a rule stores version 1; an edit stores the next version and a
//! delete marks the latest one deleted. Commissions name the version they
//! were computed with, so the versions they name stay readable (rate lock).

use chrono::{DateTime, Utc};
use tribute_core::commission::{RewardRule, RuleTerms};
use tribute_core::ids::{ProgramId, RewardRuleId};

use crate::commissions::current_rules;
use crate::{corrupt, to_ms, Context, Result, Store, StoreError};

impl Store {
    /// Store a new rule (version 1).
    pub async fn insert_reward_rule(&self, rule: &RewardRule, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO reward_rules (id, version, program_id, terms, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rule.id.as_str())
        .bind(i64::from(rule.version))
        .bind(rule.program_id.as_str())
        .bind(rule.terms.to_json().to_string())
        .bind(to_ms(now))
        .execute(self.pool())
        .await
        .context("inserting a reward rule")?;
        Ok(())
    }

    /// Store `terms` as the next version of rule `id`; returns it. Refused
    /// (not found) for a deleted rule.
    pub async fn update_reward_rule(
        &self,
        id: &RewardRuleId,
        terms: &RuleTerms,
        now: DateTime<Utc>,
    ) -> Result<RewardRule> {
        let mut tx = self.begin_write().await.context("starting rule edit")?;
        let current: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT program_id, version, deleted_at FROM reward_rules WHERE id = $1 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("loading a reward rule")?;
        let Some((program, version, None)) = current else {
            return Err(StoreError::NotFound("reward rule"));
        };
        let rule = RewardRule {
            id: id.clone(),
            program_id: ProgramId::parse(&program).map_err(corrupt("rule program"))?,
            version: u32::try_from(version + 1)
                .map_err(|e| StoreError::Corrupt(format!("rule version: {e}")))?,
            terms: terms.clone(),
        };
        sqlx::query(
            "INSERT INTO reward_rules (id, version, program_id, terms, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(rule.id.as_str())
        .bind(i64::from(rule.version))
        .bind(rule.program_id.as_str())
        .bind(rule.terms.to_json().to_string())
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await
        .context("storing a rule version")?;
        tx.commit().await.context("committing rule edit")?;
        Ok(rule)
    }

    /// Retire a rule: no new commission uses it; the ones it made stay.
    pub async fn delete_reward_rule(&self, id: &RewardRuleId, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE reward_rules SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL \
             AND version = (SELECT MAX(version) FROM reward_rules v WHERE v.id = $2)",
        )
        .bind(to_ms(now))
        .bind(id.as_str())
        .execute(self.pool())
        .await
        .context("deleting a reward rule")?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("reward rule"));
        }
        Ok(())
    }

    /// The live rules of a program, current versions, by id.
    pub async fn reward_rules(&self, program: &ProgramId) -> Result<Vec<RewardRule>> {
        let mut conn = self.pool().acquire().await.context("acquiring")?;
        current_rules(&mut *conn, program).await
    }

    /// One version of a rule (`None`: the current one), deleted or not.
    pub async fn reward_rule(
        &self,
        id: &RewardRuleId,
        version: Option<u32>,
    ) -> Result<Option<(RewardRule, bool)>> {
        let row: Option<(String, i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT program_id, version, terms, deleted_at FROM reward_rules WHERE id = $1 \
             AND ($2 IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
        )
        .bind(id.as_str())
        .bind(version.map(i64::from))
        .fetch_optional(self.pool())
        .await
        .context("loading a reward rule")?;
        row.map(|(program, version, terms, deleted)| {
            let terms: serde_json::Value = serde_json::from_str(&terms)
                .map_err(|e| StoreError::Corrupt(format!("rule terms: {e}")))?;
            Ok((
                RewardRule {
                    id: id.clone(),
                    program_id: ProgramId::parse(&program).map_err(corrupt("rule program"))?,
                    version: u32::try_from(version)
                        .map_err(|e| StoreError::Corrupt(format!("rule version: {e}")))?,
                    terms: RuleTerms::from_json(&terms).map_err(corrupt("rule terms"))?,
                },
                deleted.is_some(),
            ))
        })
        .transpose()
    }
}
