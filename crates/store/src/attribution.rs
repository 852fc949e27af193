//! What attribution reads in bulk: the journeys of a period (to fit the
//! data-driven models), the stored fits, and conversions with their touches
//! (to compare models).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tribute_core::attribution::{Fit, Journey, ModelKind, Touch};
use tribute_core::ids::{ConversionId, PersonId, ProgramId};

use crate::{corrupt, from_ms, to_ms, Context, Result, Store, StoreError};

/// A stored fit and the period it was made over.
#[derive(Debug, Clone)]
pub struct StoredFit {
    pub id: String,
    pub model: ModelKind,
    pub period_from: DateTime<Utc>,
    pub period_to: DateTime<Utc>,
    pub journeys: i64,
    pub fit: Fit,
    pub created_at: DateTime<Utc>,
}

/// A conversion reduced to what a model comparison needs.
#[derive(Debug, Clone)]
pub struct ConversionJourney {
    pub id: ConversionId,
    pub value_minor: i64,
    pub occurred_at: DateTime<Utc>,
    pub touches: Vec<Touch>,
}

impl Store {
    /// One journey per person with a (non-bot) touch in `[from, to)`: their
    /// partner channels in time order, converted if they converted in the period.
    pub async fn journeys(
        &self,
        program: &ProgramId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Journey>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT person_id, channel FROM touches WHERE program_id = $1 AND at >= $2 AND at < $3 \
             AND is_bot = 0 ORDER BY person_id, at, id",
        )
        .bind(program.as_str())
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(self.pool())
        .await
        .context("loading journeys")?;
        let converted: std::collections::HashSet<String> = sqlx::query_scalar(
            "SELECT DISTINCT person_id FROM conversions WHERE program_id = $1 AND occurred_at >= $2 \
             AND occurred_at < $3 AND person_id IS NOT NULL",
        )
        .bind(program.as_str())
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(self.pool())
        .await
        .context("loading converted persons")?
        .into_iter()
        .collect();
        let mut paths: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (person, channel) in rows {
            paths.entry(person).or_default().push(channel);
        }
        Ok(paths
            .into_iter()
            .map(|(person, path)| {
                if converted.contains(&person) {
                    Journey::converted(path)
                } else {
                    Journey::not_converted(path)
                }
            })
            .collect())
    }

    pub async fn insert_fit(&self, program: &ProgramId, f: &StoredFit) -> Result<()> {
        sqlx::query(
            "INSERT INTO attribution_fits (id, program_id, model, period_from, period_to, journeys, fit, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&f.id)
        .bind(program.as_str())
        .bind(f.model.as_str())
        .bind(to_ms(f.period_from))
        .bind(to_ms(f.period_to))
        .bind(f.journeys)
        .bind(serde_json::to_string(&f.fit).expect("fits serialise"))
        .bind(to_ms(f.created_at))
        .execute(self.pool())
        .await
        .context("storing fit")?;
        Ok(())
    }

    /// The most recent fit of `model` for a program.
    pub async fn latest_fit(
        &self,
        program: &ProgramId,
        model: ModelKind,
    ) -> Result<Option<StoredFit>> {
        let row: Option<(String, String, i64, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT id, model, period_from, period_to, journeys, fit, created_at FROM attribution_fits \
             WHERE program_id = $1 AND model = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(program.as_str())
        .bind(model.as_str())
        .fetch_optional(self.pool())
        .await
        .context("loading fit")?;
        row.map(|(id, model, from, to, journeys, fit, created)| {
            Ok(StoredFit {
                id,
                model: ModelKind::parse(&model).map_err(corrupt("fit model"))?,
                period_from: from_ms(from)?,
                period_to: from_ms(to)?,
                journeys,
                fit: serde_json::from_str(&fit)
                    .map_err(|e| StoreError::Corrupt(format!("fit: {e}")))?,
                created_at: from_ms(created)?,
            })
        })
        .transpose()
    }

    /// Conversions of `[from, to)` with every touch of their person, for
    /// re-attributing them under other models. Two queries, whatever the count.
    pub async fn conversion_journeys(
        &self,
        program: &ProgramId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ConversionJourney>> {
        let conversions: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT id, person_id, value_minor, occurred_at FROM conversions WHERE program_id = $1 \
             AND occurred_at >= $2 AND occurred_at < $3 AND status <> 'rejected' ORDER BY occurred_at, id",
        )
        .bind(program.as_str())
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(self.pool())
        .await
        .context("loading conversions to compare")?;
        let touches = crate::touches::touches_of_converted(self, program, from, to).await?;
        let mut by_person: BTreeMap<PersonId, Vec<Touch>> = BTreeMap::new();
        for (person, touch) in touches {
            by_person.entry(person).or_default().push(touch);
        }
        conversions
            .into_iter()
            .map(|(id, person, value, at)| {
                let touches = person
                    .and_then(|p| PersonId::parse(&p).ok())
                    .and_then(|p| by_person.get(&p).cloned())
                    .unwrap_or_default();
                Ok(ConversionJourney {
                    id: ConversionId::parse(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    value_minor: value,
                    occurred_at: from_ms(at)?,
                    touches,
                })
            })
            .collect()
    }
}
