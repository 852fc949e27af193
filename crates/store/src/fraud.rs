//! Fraud: each program's settings, the risk of each conversion scored in
//! the transaction that records it, and the review queue with its
//! decisions. The rules themselves are `tribute_core::fraud`'s; this module
//! gathers their facts and keeps their verdicts. The program statistics the
//! signals compare against are `fraud_stats.rs`'s.
//!
//! A conversion scoring at or above its program's review threshold has its
//! commissions written `held`: the release job never posts them. Approving
//! takes the hold off (they follow the normal hold period from there);
//! rejecting voids them through the ledger and marks the conversion
//! rejected. Each hold and each decision is a row of `fraud_decisions`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tribute_core::attribution::TouchKind;
use tribute_core::fraud::conversions::{
    assess_conversion, ConversionFacts, Duplicates, PartnerFacts, ProgramFacts,
};
use tribute_core::fraud::{FraudConfig, Reason, Risk};
use tribute_core::ids::{ConversionId, PartnerId, ProgramId};
use tribute_core::partner::email_hash;
use tribute_core::tracking::{Conversion, ConversionStatus};

use crate::db::{fetch_optional, Arg, Db, DbContext};
use crate::fraud_stats::ProgramStats;
use crate::{from_ms, to_ms, Context, Result, Store, StoreError};

/// What the edge knows of the buyer beyond the conversion itself, and the
/// program's statistics as last computed (`None`: the statistical signals
/// stay silent).
#[derive(Debug, Clone, Default)]
pub struct Screening {
    /// The domain of the buyer's e-mail (the address itself is only kept
    /// hashed), for the disposable-address rule.
    pub email_domain: Option<String>,
    /// The keyed hash of the buyer's IP, when the request came from them.
    pub ip_hash: Option<u64>,
    pub payment_fingerprint: Option<String>,
    pub stats: Option<Arc<ProgramStats>>,
}

/// A conversion's risk as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRisk {
    pub conversion_id: String,
    pub program_id: String,
    /// The credited partner whose facts gave the score.
    pub partner_id: Option<String>,
    pub score: u8,
    pub reasons: Vec<Reason>,
    /// `none` (never held), `held`, `approved` or `rejected`.
    pub review: String,
    pub at: DateTime<Utc>,
}

/// One hold or decision, with who made it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredDecision {
    pub id: String,
    pub conversion_id: String,
    /// `held` (by the score), `approved` or `rejected`.
    pub decision: String,
    pub note: Option<String>,
    /// `system`, or the API key (or user) that decided.
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// The owner's decision on a held conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    Approve,
    Reject,
}

impl ReviewDecision {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Self::Approve),
            "reject" => Some(Self::Reject),
            _ => None,
        }
    }

    fn recorded(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
        }
    }
}

/// A partner's own identifiers beside their e-mails, which the
/// self-referral and shared-account rules compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerIdentifiers {
    pub user_id: Option<String>,
    pub payment_fingerprint: Option<String>,
    /// The keyed hash of the IP they signed up from (16 hex digits).
    pub signup_ip_hash: Option<String>,
}

const RISK_COLUMNS: &str = "conversion_id, program_id, partner_id, score, reasons, review, at";

fn risk_of(r: &crate::db::Row) -> Result<StoredRisk> {
    Ok(StoredRisk {
        conversion_id: r.text(0)?.to_owned(),
        program_id: r.text(1)?.to_owned(),
        partner_id: r.opt_text(2)?.map(str::to_owned),
        score: u8::try_from(r.int(3)?).map_err(|_| StoreError::Corrupt("risk score".into()))?,
        reasons: serde_json::from_str(r.text(4)?)
            .map_err(|e| StoreError::Corrupt(format!("risk reasons: {e}")))?,
        review: r.text(5)?.to_owned(),
        at: from_ms(r.int(6)?)?,
    })
}

/// A conversion's risk on the caller's connection.
async fn risk_in(conn: &mut dyn Db, id: &ConversionId) -> Result<Option<StoredRisk>> {
    fetch_optional(
        conn,
        &format!("SELECT {RISK_COLUMNS} FROM conversion_risk WHERE conversion_id = $1"),
        vec![id.as_str().into()],
    )
    .await
    .context("loading a conversion's risk")?
    .map(|r| risk_of(&r))
    .transpose()
}

/// A program's settings on the caller's connection (memoised for a write
/// group on SQLite's native writer); the defaults without a row.
async fn config_in(conn: &mut dyn Db, program: &ProgramId) -> Result<Arc<FraudConfig>> {
    if let Some(hit) = conn.memo().and_then(|m| m.fraud.get(program.as_str())) {
        return Ok(hit.clone());
    }
    let row = fetch_optional(
        conn,
        "SELECT config FROM program_fraud WHERE program_id = $1",
        vec![program.as_str().into()],
    )
    .await
    .context("loading fraud settings")?;
    let config = Arc::new(match row {
        Some(r) => serde_json::from_str(r.text(0)?)
            .map_err(|e| StoreError::Corrupt(format!("fraud settings: {e}")))?,
        None => FraudConfig::default(),
    });
    if let Some(m) = conn.memo() {
        m.fraud.insert(program.to_string(), config.clone());
    }
    Ok(config)
}

/// What a conversion is known by across sources: the owner's `order_id`
/// in its metadata, else its external id without a reporter's namespace.
fn order_key(c: &Conversion) -> Option<String> {
    if let Some(o) = c.metadata.get("order_id").and_then(|v| v.as_str()) {
        return Some(o.to_owned());
    }
    let id = c.external_id.as_deref()?;
    Some(
        tribute_core::conversion::Reporter::browser_namespaces()
            .iter()
            .find_map(|ns| id.strip_prefix(ns))
            .unwrap_or(id)
            .to_owned(),
    )
}

/// The verdict on a conversion about to be written, and what its risk row
/// keeps.
pub(crate) struct Verdict {
    pub risk: Risk,
    pub partner: Option<PartnerId>,
    pub held: bool,
    order_key: Option<String>,
    click_ms: Option<i64>,
}

/// Score `c` before it is written (inside its transaction): `superseding`
/// are the browser reports it is about to supersede (the same order, not a
/// duplicate), `keys` the journey's identifier keys (`email_hash:…`). A superseded or rejected conversion earns nothing and is not
/// scored.
pub(crate) async fn screen_in(
    conn: &mut dyn Db,
    c: &Conversion,
    superseding: &[String],
    keys: &[String],
    s: &Screening,
) -> Result<Option<Verdict>> {
    if matches!(
        c.status,
        ConversionStatus::Superseded | ConversionStatus::Rejected
    ) {
        return Ok(None);
    }
    let config = config_in(conn, &c.program_id).await?;
    let order_key = order_key(c);
    let credited: Vec<&PartnerId> = c
        .attribution
        .partners
        .iter()
        .filter(|p| p.weight > 0)
        .map(|p| &p.partner_id)
        .collect();
    let click_of = |p: &PartnerId| {
        c.attribution
            .credits
            .iter()
            .filter(|t| &t.partner_id == p && t.kind == TouchKind::Click)
            .map(|t| c.occurred_at - t.at)
            .min()
    };
    let first_click = credited.first().and_then(|p| click_of(p));
    let mut verdict = Verdict {
        risk: Risk::default(),
        partner: None,
        held: false,
        order_key,
        click_ms: first_click.map(|d| d.num_milliseconds()),
    };
    if !config.enabled {
        return Ok(None);
    }
    if credited.is_empty() {
        return Ok(Some(verdict));
    }
    let dup = duplicates(conn, c, verdict.order_key.as_deref(), superseding, &config).await?;
    // The click the conversion names was found suspicious (a bot, or
    // reasons at the program's click threshold): it earns no credit, and
    // says something about whoever sent the buyer.
    let flagged = match &c.click_id {
        Some(id) => fetch_optional(
            conn,
            "SELECT is_bot FROM clicks WHERE id = $1",
            vec![id.as_str().into()],
        )
        .await
        .context("loading the conversion's click")?
        .map(|r| r.int(0).map(|b| b != 0))
        .transpose()?
        .unwrap_or(false),
        None => false,
    };
    // The buyer's e-mail hash and user id travel as the journey's
    // identifier keys (the conversion keeps only its person).
    let key = |kind: &str| {
        keys.iter()
            .find_map(|k| k.strip_prefix(kind).and_then(|v| v.strip_prefix(':')))
    };
    // Without statistics yet, the statistical signals stay silent.
    let empty = crate::fraud_stats::PartnerStats::default();
    let no_program = ProgramFacts::default();
    let stats = s.stats.as_deref();
    let program = stats.map_or(&no_program, |st| &st.program);
    for partner in credited {
        let own = own_identifiers(conn, partner).await?;
        let ps = stats
            .and_then(|st| st.partners.get(partner.as_str()))
            .unwrap_or(&empty);
        let facts = ConversionFacts {
            value_minor: c.value.minor,
            order_id: verdict.order_key.as_deref(),
            customer_key: c.customer_key.as_deref(),
            email: s.email_domain.as_deref(),
            email_hash: key("email_hash"),
            user_id: key("user_id"),
            ip_hash: s.ip_hash,
            payment_fingerprint: s.payment_fingerprint.as_deref(),
            click_to_conversion: click_of(partner),
            credited_click_flagged: flagged,
        };
        let pf = PartnerFacts {
            partner_id: partner.as_str(),
            email_hash: own.email_hash.as_deref(),
            user_id: own.ids.user_id.as_deref(),
            signup_ip_hash: own
                .ids
                .signup_ip_hash
                .as_deref()
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
            payment_fingerprints: own.ids.payment_fingerprint.as_slice(),
            shares_account_with: &ps.shares_account_with,
            conversion_rate: ps.conversion_rate,
            refund_rate: ps.refund_rate,
            daily_clicks: &ps.daily_clicks,
            clicks_today: ps.clicks_today,
        };
        let risk = assess_conversion(&facts, &pf, program, &dup, &config);
        if verdict.partner.is_none() || risk.score > verdict.risk.score {
            verdict.risk = risk;
            verdict.partner = Some(partner.clone());
        }
    }
    verdict.held = verdict.risk.holds(&config);
    Ok(Some(verdict))
}

struct Own {
    email_hash: Option<String>,
    ids: PartnerIdentifiers,
}

async fn own_identifiers(conn: &mut dyn Db, partner: &PartnerId) -> Result<Own> {
    let row = fetch_optional(
        conn,
        "SELECT p.email, i.user_id, i.payment_fingerprint, i.signup_ip_hash \
         FROM partners p LEFT JOIN partner_identifiers i ON i.partner_id = p.id WHERE p.id = $1",
        vec![partner.as_str().into()],
    )
    .await
    .context("loading the partner's identifiers")?;
    let Some(r) = row else {
        return Ok(Own {
            email_hash: None,
            ids: PartnerIdentifiers::default(),
        });
    };
    let text = |i| r.opt_text(i).map(|t| t.map(str::to_owned));
    let ids = PartnerIdentifiers {
        user_id: text(1)?,
        payment_fingerprint: text(2)?,
        signup_ip_hash: text(3)?,
    };
    Ok(Own {
        email_hash: r.opt_text(0)?.map(email_hash),
        ids,
    })
}

async fn duplicates(
    conn: &mut dyn Db,
    c: &Conversion,
    order_key: Option<&str>,
    superseding: &[String],
    config: &FraudConfig,
) -> Result<Duplicates> {
    let mut dup = Duplicates::default();
    if let Some(key) = order_key {
        let rows = conn
            .fetch(
                "SELECT v.external_id FROM conversion_risk r JOIN conversions v \
                 ON v.id = r.conversion_id WHERE r.program_id = $1 AND r.order_key = $2 \
                 AND v.status IN ('approved', 'pending')",
                vec![c.program_id.as_str().into(), key.into()],
            )
            .await
            .context("looking for the same order")?;
        dup.same_order_other_source = rows.iter().any(|r| match r.opt_text(0) {
            Ok(Some(ext)) => !superseding.iter().any(|s| s == ext),
            _ => true,
        });
    }
    if let Some(customer) = &c.customer_key {
        let window = Duration::hours(i64::from(config.duplicate_conversion_hours));
        let row = fetch_optional(
            conn,
            "SELECT id FROM conversions WHERE program_id = $1 AND customer_key = $2 \
             AND occurred_at >= $3 AND occurred_at <= $4 AND value_minor = $5 \
             AND status IN ('approved', 'pending') LIMIT 1",
            vec![
                c.program_id.as_str().into(),
                customer.as_str().into(),
                to_ms(c.occurred_at - window).into(),
                to_ms(c.occurred_at + window).into(),
                c.value.minor.into(),
            ],
        )
        .await
        .context("looking for the same customer and amount")?;
        dup.same_customer_amount_within_window = row.is_some();
    }
    Ok(dup)
}

/// Keep the verdict of a conversion just written: its risk row, and when
/// held, the hold in the decision log. Returns the risk as stored.
pub(crate) async fn keep_verdict(
    conn: &mut dyn Db,
    c: &Conversion,
    v: Verdict,
) -> Result<StoredRisk> {
    let reasons = serde_json::to_string(&v.risk.reasons).expect("reasons serialize");
    let review = if v.held { "held" } else { "none" };
    conn.execute(
        &format!(
            "INSERT INTO conversion_risk ({RISK_COLUMNS}, order_key, click_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        vec![
            c.id.as_str().into(),
            c.program_id.as_str().into(),
            v.partner.as_ref().map(|p| p.as_str()).into(),
            i64::from(v.risk.score).into(),
            reasons.into(),
            review.into(),
            to_ms(c.received_at).into(),
            v.order_key.clone().into(),
            v.click_ms.into(),
        ],
    )
    .await
    .context("keeping a conversion's risk")?;
    if v.held {
        let note = format!("risk score {}", v.risk.score);
        log_decision(
            conn,
            &c.id,
            &c.program_id,
            "held",
            Some(&note),
            "system",
            c.received_at,
        )
        .await?;
    }
    Ok(StoredRisk {
        conversion_id: c.id.to_string(),
        program_id: c.program_id.to_string(),
        partner_id: v.partner.map(|p| p.to_string()),
        score: v.risk.score,
        reasons: v.risk.reasons,
        review: review.to_owned(),
        // As stored: to the millisecond.
        at: from_ms(to_ms(c.received_at))?,
    })
}

async fn log_decision(
    conn: &mut dyn Db,
    conversion: &ConversionId,
    program: &ProgramId,
    decision: &str,
    note: Option<&str>,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO fraud_decisions (id, conversion_id, program_id, decision, note, actor, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            tribute_core::ids::random_base62(22).into(),
            conversion.as_str().into(),
            program.as_str().into(),
            decision.into(),
            note.into(),
            actor.into(),
            to_ms(at).into(),
        ],
    )
    .await
    .context("logging a fraud decision")?;
    Ok(())
}

impl Store {
    /// A program's fraud settings (the defaults until changed).
    pub async fn fraud_config(&self, program: &ProgramId) -> Result<FraudConfig> {
        let mut conn = self.pool().acquire().await.context("connecting")?;
        Ok((*config_in(&mut *conn, program).await?).clone())
    }

    /// Replace a program's fraud settings.
    pub async fn set_fraud_config(
        &self,
        program: &ProgramId,
        config: &FraudConfig,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let json = serde_json::to_string(config).expect("settings serialize");
        sqlx::query(
            "INSERT INTO program_fraud (program_id, config, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (program_id) DO UPDATE SET config = excluded.config, \
             updated_at = excluded.updated_at",
        )
        .bind(program.as_str())
        .bind(json)
        .bind(to_ms(now))
        .execute(self.pool())
        .await
        .context("saving fraud settings")?;
        Ok(())
    }

    /// Set a partner's own identifiers (each `None` clears it).
    pub async fn set_partner_identifiers(
        &self,
        program: &ProgramId,
        partner: &PartnerId,
        ids: &PartnerIdentifiers,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO partner_identifiers (partner_id, program_id, user_id, \
             payment_fingerprint, signup_ip_hash, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (partner_id) DO UPDATE SET user_id = excluded.user_id, \
             payment_fingerprint = excluded.payment_fingerprint, \
             signup_ip_hash = excluded.signup_ip_hash, updated_at = excluded.updated_at",
        )
        .bind(partner.as_str())
        .bind(program.as_str())
        .bind(ids.user_id.as_deref())
        .bind(ids.payment_fingerprint.as_deref())
        .bind(ids.signup_ip_hash.as_deref())
        .bind(to_ms(now))
        .execute(self.pool())
        .await
        .context("saving a partner's identifiers")?;
        Ok(())
    }

    /// A partner's own identifiers (all `None` when never set).
    pub async fn partner_identifiers(&self, partner: &PartnerId) -> Result<PartnerIdentifiers> {
        let mut conn = self.pool().acquire().await.context("connecting")?;
        Ok(own_identifiers(&mut *conn, partner).await?.ids)
    }

    /// A conversion's risk (`None` for one recorded before scoring existed,
    /// or superseded).
    pub async fn conversion_risk(&self, id: &ConversionId) -> Result<Option<StoredRisk>> {
        let mut conn = self.pool().acquire().await.context("connecting")?;
        risk_in(&mut *conn, id).await
    }

    /// The risks of several conversions, by conversion id (one query).
    pub async fn conversion_risks_of(
        &self,
        ids: &[ConversionId],
    ) -> Result<std::collections::HashMap<String, StoredRisk>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let mut conn = self.pool().acquire().await.context("connecting")?;
        let sql = format!(
            "SELECT {RISK_COLUMNS} FROM conversion_risk WHERE conversion_id IN ({})",
            crate::sql::placeholders(1, ids.len())
        );
        let rows = conn
            .fetch(&sql, ids.iter().map(|i| i.as_str().into()).collect())
            .await
            .context("loading conversions' risks")?;
        rows.iter()
            .map(|r| risk_of(r).map(|k| (k.conversion_id.clone(), k)))
            .collect()
    }

    /// Held conversions waiting for a decision, oldest first, in one
    /// program or all.
    pub async fn review_queue(
        &self,
        program: Option<&ProgramId>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<StoredRisk>> {
        let mut conn = self.pool().acquire().await.context("connecting")?;
        let rows = conn
            .fetch(
                &format!(
                    "SELECT {RISK_COLUMNS} FROM conversion_risk WHERE review = 'held' \
                     AND ($1 = '' OR program_id = $1) \
                     ORDER BY at, conversion_id LIMIT $2 OFFSET $3"
                ),
                vec![
                    program.map_or("", |p| p.as_str()).into(),
                    limit.into(),
                    offset.into(),
                ],
            )
            .await
            .context("listing the review queue")?;
        rows.iter().map(risk_of).collect()
    }

    /// Every hold and decision on a conversion, oldest first.
    pub async fn fraud_decisions(&self, id: &ConversionId) -> Result<Vec<StoredDecision>> {
        let mut conn = self.pool().acquire().await.context("connecting")?;
        let rows = conn
            .fetch(
                "SELECT id, conversion_id, decision, note, actor, at FROM fraud_decisions \
                 WHERE conversion_id = $1 ORDER BY at, id",
                vec![id.as_str().into()],
            )
            .await
            .context("listing fraud decisions")?;
        rows.iter()
            .map(|r| {
                Ok(StoredDecision {
                    id: r.text(0)?.to_owned(),
                    conversion_id: r.text(1)?.to_owned(),
                    decision: r.text(2)?.to_owned(),
                    note: r.opt_text(3)?.map(str::to_owned),
                    actor: r.text(4)?.to_owned(),
                    at: from_ms(r.int(5)?)?,
                })
            })
            .collect()
    }

    /// Decide on a held conversion: approving takes the hold off its
    /// commissions (the normal hold period applies from there; a browser's
    /// unverified report stays held for its own reason), rejecting voids
    /// them through the ledger and marks the conversion rejected. A
    /// conversion not waiting for review is a `Conflict`.
    pub async fn review_conversion(
        &self,
        id: &ConversionId,
        decision: ReviewDecision,
        note: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<StoredRisk> {
        let mut tx = self.begin_write().await.context("starting a review")?;
        self.lock(&mut tx, id.as_str()).await?;
        let mut risk = risk_in(&mut *tx, id)
            .await?
            .ok_or(StoreError::NotFound("conversion"))?;
        if risk.review != "held" {
            return Err(StoreError::Conflict {
                field: "decision",
                message: format!("the conversion is not waiting for review ({})", risk.review),
            });
        }
        let program = ProgramId::parse(&risk.program_id).map_err(crate::corrupt("program"))?;
        match decision {
            ReviewDecision::Approve => {
                let status = fetch_optional(
                    &mut *tx,
                    "SELECT status FROM conversions WHERE id = $1",
                    vec![id.as_str().into()],
                )
                .await
                .context("loading the conversion's status")?;
                let pending = matches!(status.as_ref().map(|r| r.text(0)), Some(Ok("pending")));
                if !pending {
                    tx.execute(
                        "UPDATE commissions SET held = 0, \
                         status = CASE WHEN status = 'held' THEN 'pending' ELSE status END \
                         WHERE conversion_id = $1 AND held = 1",
                        vec![id.as_str().into()],
                    )
                    .await
                    .context("releasing held commissions")?;
                }
            }
            ReviewDecision::Reject => {
                let memo = format!("rejected in review: {}", note.unwrap_or("fraud"));
                crate::commissions::void_conversion(&mut *tx, id.as_str(), &memo, now).await?;
                tx.execute(
                    "UPDATE conversions SET status = 'rejected' WHERE id = $1",
                    vec![Arg::Text(id.as_str())],
                )
                .await
                .context("rejecting the conversion")?;
            }
        }
        let recorded = decision.recorded();
        tx.execute(
            "UPDATE conversion_risk SET review = $1 WHERE conversion_id = $2",
            vec![recorded.into(), id.as_str().into()],
        )
        .await
        .context("recording the review")?;
        log_decision(&mut *tx, id, &program, recorded, note, actor, now).await?;
        tx.commit().await.context("committing the review")?;
        risk.review = recorded.to_owned();
        Ok(risk)
    }
}
