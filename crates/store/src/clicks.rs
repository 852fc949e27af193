//! Clicks: batched writes from the redirect's writer, and click metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use tribute_core::click::{epoch_day, Click, ClickCounts};
use tribute_core::ids::{ClickId, PartnerId};

use crate::sql::{multi_row_insert, Params, INSERT_ROWS};
use crate::{to_ms, BoxFuture, Context, Result, Store};

/// The columns a click is written with, in the order both writers (this
/// one and SQLite's batch writer) bind them.
pub(crate) const CLICK_COLUMNS: [&str; 14] = [
    "id",
    "program_id",
    "link_id",
    "partner_id",
    "at",
    "ip_truncated",
    "ip_hash",
    "visitor_hash",
    "ua_id",
    "referrer",
    "source",
    "is_bot",
    "day",
    "reasons",
];

/// A click's fraud reasons as stored: JSON, or NULL when it has none.
pub(crate) fn reasons_json(c: &Click) -> Option<String> {
    (!c.reasons.is_empty()).then(|| serde_json::to_string(&c.reasons).expect("reasons serialize"))
}

/// A row whose id exists is skipped: a click id is random, so a replayed
/// batch after a crash must not fail whole; a user agent is keyed by its hash.
pub(crate) const SKIP_EXISTING_ID: &str = "ON CONFLICT (id) DO NOTHING";

/// Each distinct user agent once, keyed by [`ua_id`].
pub(crate) const USER_AGENT_COLUMNS: [&str; 2] = ["id", "user_agent"];

/// A partner's click metrics over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartnerMetrics {
    #[serde(flatten)]
    pub totals: ClickCounts,
    /// Per link source (`website`, `social`, …; `""` when the link has none).
    pub by_source: Vec<MetricsBySource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricsBySource {
    pub source: String,
    #[serde(flatten)]
    pub counts: ClickCounts,
}

#[derive(FromRow)]
struct SourceRow {
    source: String,
    clicks: i64,
    bot_clicks: i64,
    unique_clicks: i64,
}

impl Store {
    /// The partner whose link a click was made on (`None`: no such click).
    pub async fn click_partner(&self, id: &ClickId) -> Result<Option<PartnerId>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT partner_id FROM clicks WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("loading a click's partner")?;
        row.map(|(p,)| PartnerId::parse(&p))
            .transpose()
            .map_err(|e| crate::StoreError::Corrupt(format!("click partner: {e}")))
    }

    /// Write clicks in one transaction, as few statements as possible.
    ///
    /// Boxed so the future is checked `Send` here, with concrete lifetimes:
    /// rustc cannot prove it through a transaction's `&mut` executor at the
    /// caller (rust-lang/rust#102211).
    pub fn insert_clicks<'a>(&'a self, clicks: &'a [Click]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.write_clicks(clicks.to_vec()).await.1 })
    }

    /// [`Store::insert_clicks`] taking the batch by value (no copy on the
    /// SQLite batch writer); the batch is handed back for reuse or retry.
    pub fn write_clicks(&self, clicks: Vec<Click>) -> BoxFuture<'_, (Vec<Click>, Result<()>)> {
        Box::pin(async move {
            match self.sqlite_batch() {
                Some(batch) if !clicks.is_empty() => batch.insert_clicks(clicks).await,
                _ => {
                    let r = self.insert_clicks_inner(&clicks).await;
                    (clicks, r)
                }
            }
        })
    }

    #[tracing::instrument(skip(self, clicks), fields(n = clicks.len()))]
    async fn insert_clicks_inner(&self, clicks: &[Click]) -> Result<()> {
        if clicks.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await.context("starting click batch")?;
        let agents: std::collections::BTreeMap<i64, &str> = clicks
            .iter()
            .filter_map(|c| c.user_agent.as_deref())
            .map(|ua| (ua_id(ua), ua))
            .collect();
        let insert_agent = multi_row_insert(
            "user_agents",
            &USER_AGENT_COLUMNS,
            1,
            SKIP_EXISTING_ID,
            Params::Numbered,
        );
        for (id, ua) in agents {
            sqlx::query(&insert_agent)
                .bind(id)
                .bind(ua)
                .execute(&mut *tx)
                .await
                .context("inserting user agent")?;
        }
        for chunk in clicks.chunks(INSERT_ROWS) {
            let sql = multi_row_insert(
                "clicks",
                &CLICK_COLUMNS,
                chunk.len(),
                SKIP_EXISTING_ID,
                Params::Numbered,
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(c.id.as_str())
                    .bind(c.program_id.as_str())
                    .bind(c.link_id.as_str())
                    .bind(c.partner_id.as_str())
                    .bind(to_ms(c.at))
                    .bind(c.ip_truncated.as_str())
                    .bind(c.ip_hash.as_str())
                    .bind(c.visitor_hash.as_str())
                    .bind(c.user_agent.as_deref().map(ua_id))
                    .bind(c.referrer.as_deref())
                    .bind(c.source.as_deref())
                    .bind(i64::from(c.is_bot))
                    .bind(epoch_day(c.at))
                    .bind(reasons_json(c));
            }
            q.execute(&mut *tx).await.context("inserting clicks")?;
        }
        tx.commit().await.context("committing click batch")?;
        Ok(())
    }

    /// Click metrics of a partner in `[from, to)`, by link source.
    #[tracing::instrument(skip(self))]
    pub async fn partner_metrics(
        &self,
        partner: &PartnerId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<PartnerMetrics> {
        let rows = sqlx::query_as::<_, SourceRow>(
            "SELECT COALESCE(source, '') AS source, \
               CAST(SUM(1 - is_bot) AS BIGINT) AS clicks, \
               CAST(SUM(is_bot) AS BIGINT) AS bot_clicks, \
               COUNT(DISTINCT CASE WHEN is_bot = 0 \
                 THEN link_id || ':' || visitor_hash || ':' || CAST(day AS TEXT) END) AS unique_clicks \
             FROM clicks WHERE partner_id = $1 AND at >= $2 AND at < $3 \
             GROUP BY COALESCE(source, '') ORDER BY 1",
        )
        .bind(partner.as_str())
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(self.pool())
        .await
        .context("computing partner metrics")?;
        let mut metrics = PartnerMetrics::default();
        for r in rows {
            let counts = ClickCounts {
                clicks: r.clicks,
                unique_clicks: r.unique_clicks,
                bot_clicks: r.bot_clicks,
            };
            // A visitor-link-day belongs to exactly one link, hence one source,
            // so per-source unique counts add up to the total.
            metrics.totals.clicks += counts.clicks;
            metrics.totals.unique_clicks += counts.unique_clicks;
            metrics.totals.bot_clicks += counts.bot_clicks;
            metrics.by_source.push(MetricsBySource {
                source: r.source,
                counts,
            });
        }
        Ok(metrics)
    }
}

/// The key of a user agent in `user_agents`: a fixed-key SipHash, the same
/// on every node and in every version.
pub(crate) fn ua_id(user_agent: &str) -> i64 {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x7472_6962, 0x7561);
    h.write(user_agent.as_bytes());
    h.finish() as i64
}
