//! Fraud (admin): a program's rules, weights and thresholds
//! (`GET/PATCH /api/v1/programs/{id}/fraud`), the review queue of held
//! conversions (`GET /api/v1/review-queue`), the owner's decision
//! (`POST /api/v1/conversions/{id}/review`) and its log
//! (`GET /api/v1/conversions/{id}/review`), and the identifiers of a
//! partner the self-referral and shared-account rules compare
//! (`PUT /api/v1/partners/{id}/identifiers`).
//!
//! Partners never reach any of it: a held conversion shows them
//! `"review": "under_review"` and nothing more.

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tribute_core::fraud::config::RULES;
use tribute_core::fraud::{FraudConfig, Reason};
use tribute_core::identity::opaque;
use tribute_core::ids::{ConversionId, ProgramId};
use tribute_core::FieldError;
use tribute_store::{PartnerIdentifiers, ReviewDecision, StoredDecision, StoredRisk};

use super::partners::visible_partner;
use super::programs::load;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::{List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/programs/{id}/fraud", get(show).patch(update))
        .route("/review-queue", get(queue))
        .route("/conversions/{id}/review", get(decisions).post(review))
        .route("/partners/{id}/identifiers", put(set_identifiers))
}

/// One rule as a program weighs it.
#[derive(Serialize)]
struct RuleView {
    name: &'static str,
    description: &'static str,
    /// This program's weight (0: off).
    weight: u8,
    default_weight: u8,
}

/// A program's fraud settings, with every rule's effective weight.
#[derive(Serialize)]
struct FraudView {
    program_id: ProgramId,
    #[serde(flatten)]
    config: FraudConfig,
    rules: Vec<RuleView>,
}

fn view(program_id: ProgramId, config: FraudConfig) -> FraudView {
    let rules = RULES
        .iter()
        .map(|(name, default_weight, description)| RuleView {
            name,
            description,
            weight: config.weight(name),
            default_weight: *default_weight,
        })
        .collect();
    FraudView {
        program_id,
        config,
        rules,
    }
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<FraudView>> {
    auth.require_admin()?;
    let program = load(&state, &id).await?.id;
    let config = state.store.fraud_config(&program).await?;
    Ok(Json(view(program, config)))
}

/// Change the fields given; the rest keep their values (`weights` is
/// replaced as a whole). Errors name the field and change nothing.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<FraudView>> {
    auth.require_admin()?;
    let program = load(&state, &id).await?.id;
    let current = state.store.fraud_config(&program).await?;
    let config = current.patched(&patch)?;
    state
        .store
        .set_fraud_config(&program, &config, Utc::now())
        .await?;
    // Cached links carry their program's settings to the redirect.
    state.links_changed();
    Ok(Json(view(program, config)))
}

/// A held conversion in the review queue.
#[derive(Serialize)]
pub struct ReviewItem {
    conversion_id: String,
    program_id: String,
    /// The credited partner whose facts gave the score.
    partner_id: Option<String>,
    score: u8,
    reasons: Vec<Reason>,
    held_at: DateTime<Utc>,
}

impl From<StoredRisk> for ReviewItem {
    fn from(r: StoredRisk) -> Self {
        Self {
            conversion_id: r.conversion_id,
            program_id: r.program_id,
            partner_id: r.partner_id,
            score: r.score,
            reasons: r.reasons,
            held_at: r.at,
        }
    }
}

#[derive(Deserialize)]
struct QueueQuery {
    program_id: Option<String>,
}

async fn queue(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Json<List<ReviewItem>>> {
    auth.require_admin()?;
    let program = q
        .program_id
        .as_deref()
        .map(|p| ProgramId::parse(p).map_err(|e| e.at("program_id")))
        .transpose()?;
    let rows = state
        .store
        .review_queue(program.as_ref(), page.limit, page.offset)
        .await?;
    Ok(Json(List::from_overfetch(
        rows.into_iter().map(ReviewItem::from).collect(),
        page,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: String,
    note: Option<String>,
}

/// The review of a conversion: where it stands and every hold and decision.
#[derive(Serialize)]
struct ReviewView {
    conversion_id: String,
    score: u8,
    /// `none`, `held`, `approved` or `rejected`.
    review: String,
    decisions: Vec<StoredDecision>,
}

async fn review_view(state: &AppState, id: &ConversionId) -> ApiResult<ReviewView> {
    let risk = state
        .store
        .conversion_risk(id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))?;
    Ok(ReviewView {
        conversion_id: risk.conversion_id,
        score: risk.score,
        review: risk.review,
        decisions: state.store.fraud_decisions(id).await?,
    })
}

async fn decisions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewView>> {
    auth.require_admin()?;
    let id = ConversionId::parse(&id).map_err(|_| ApiError::NotFound("conversion"))?;
    Ok(Json(review_view(&state, &id).await?))
}

/// Approve (the commissions follow the normal hold from now) or reject
/// (they are voided through the ledger). Runs to completion on its own
/// task: a client that hangs up never leaves a decision half made.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn review(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Json<ReviewView>> {
    auth.require_admin()?;
    let decision = ReviewDecision::parse(&body.decision).ok_or_else(|| {
        ApiError::from(FieldError::new(
            "decision",
            "must be \"approve\" or \"reject\"",
        ))
    })?;
    let note = match body.note.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(n) => Some(tribute_core::partner::parse_label("note", n, 1000)?),
    };
    let id = ConversionId::parse(&id).map_err(|_| ApiError::NotFound("conversion"))?;
    let actor = format!("key:{}", auth.1);
    let task_state = state.clone();
    let task_id = id.clone();
    tokio::spawn(async move {
        task_state
            .store
            .review_conversion(
                &task_id,
                decision,
                note.as_deref(),
                &actor,
                Utc::now().trunc_subsecs(3),
            )
            .await
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("review task failed: {e}")))??;
    Ok(Json(review_view(&state, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifiersBody {
    user_id: Option<String>,
    payment_fingerprint: Option<String>,
    /// The IP the partner signed up from: only its keyed hash is kept.
    signup_ip: Option<String>,
}

/// What is kept of a partner's identifiers (the sign-up IP only as
/// "set", since only its hash is kept).
#[derive(Serialize)]
struct IdentifiersView {
    partner_id: String,
    user_id: Option<String>,
    payment_fingerprint: Option<String>,
    signup_ip_set: bool,
}

/// Replace a partner's identifiers (fields left out are cleared).
async fn set_identifiers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<IdentifiersBody>,
) -> ApiResult<Json<IdentifiersView>> {
    auth.require_admin()?;
    let partner = visible_partner(&state, &auth, &id).await?;
    let signup_ip = match body.signup_ip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<IpAddr>()
                .map_err(|_| FieldError::new("signup_ip", "must be an IPv4 or IPv6 address"))?,
        ),
    };
    let ids = PartnerIdentifiers {
        user_id: opaque("user_id", body.user_id.as_deref())?,
        payment_fingerprint: opaque("payment_fingerprint", body.payment_fingerprint.as_deref())?,
        signup_ip_hash: signup_ip.map(|ip| state.hasher.ip_hash(ip)),
    };
    state
        .store
        .set_partner_identifiers(&partner.program_id, &partner.id, &ids, Utc::now())
        .await?;
    Ok(Json(IdentifiersView {
        partner_id: partner.id.to_string(),
        user_id: ids.user_id,
        payment_fingerprint: ids.payment_fingerprint,
        signup_ip_set: ids.signup_ip_hash.is_some(),
    }))
}
