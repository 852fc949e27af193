//! `/api/v1/commissions`, `/api/v1/ledger` and partner balances: what
//! partners earned, why, and where it stands; release, approval, rejection
//! and recompute (admin).
//!
//! A partner key sees only its own commissions, ledger lines and balance;
//! another partner's answer 404.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tribute_core::ids::{CommissionId, ConversionId, PartnerId};
use tribute_store::{CommissionFilter, LedgerFilter, Recompute, StoredCommission, StoredEntry};

use crate::http::query::{parse_partner_filter, parse_time, restrict_to_own};
use crate::http::{ApiError, ApiJson, ApiResult, Auth, List, Paging, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/commissions", get(list))
        .route("/commissions/release", post(release))
        .route("/commissions/recompute", post(recompute))
        .route("/commissions/{id}", get(show))
        .route("/commissions/{id}/approve", post(approve))
        .route("/commissions/{id}/reject", post(reject))
        .route("/ledger", get(ledger))
        .route("/partners/{id}/balance", get(balance))
}

const STATUSES: [&str; 5] = ["pending", "held", "payable", "paid", "voided"];

/// Filters of a list (`limit`/`offset` are read by [`Paging`]).
#[derive(Deserialize)]
struct ListQuery {
    program_id: Option<String>,
    partner_id: Option<String>,
    conversion_id: Option<String>,
    status: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<StoredCommission>>> {
    let mut partner_id = parse_partner_filter(q.partner_id.as_deref())?;
    restrict_to_own(&mut partner_id, auth.partner_scope()?.map(|(own, _)| own))?;
    let status = match q.status {
        Some(s) if STATUSES.contains(&s.as_str()) => Some(s),
        Some(_) => {
            return Err(ApiError::bad_request(
                Some("status".into()),
                "must be one of pending, held, payable, paid, voided",
            ))
        }
        None => None,
    };
    let filter = CommissionFilter {
        program_id: q
            .program_id
            .as_deref()
            .map(|p| tribute_core::ids::ProgramId::parse(p).map_err(|e| e.at("program_id")))
            .transpose()?,
        partner_id,
        conversion_id: q
            .conversion_id
            .as_deref()
            .map(|c| ConversionId::parse(c).map_err(|e| e.at("conversion_id")))
            .transpose()?,
        status,
    };
    let rows = state.store.commissions(&filter, page).await?;
    Ok(Json(List::from_overfetch(rows, page)))
}

async fn find(state: &AppState, auth: &Auth, id: &str) -> ApiResult<StoredCommission> {
    let id = CommissionId::parse(id).map_err(|_| ApiError::NotFound("commission"))?;
    let found = state.store.commission(&id).await?;
    match found {
        Some(c)
            if auth.can_see(&PartnerId::parse(&c.partner_id).map_err(anyhow::Error::from)?)? =>
        {
            Ok(c)
        }
        _ => Err(ApiError::NotFound("commission")),
    }
}

async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredCommission>> {
    find(&state, &auth, &id).await.map(Json)
}

#[derive(Serialize)]
struct Released {
    released: u64,
}

/// `POST /commissions/release`: post everything whose hold is over now.
async fn release(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Released>> {
    auth.require_admin()?;
    let store = state.store.clone();
    // Money-path work runs to completion even if the caller hangs up.
    let released = tokio::spawn(async move { store.release_due(Utc::now()).await })
        .await
        .map_err(|e| anyhow::anyhow!("release task failed: {e}"))??;
    Ok(Json(Released { released }))
}

/// `POST /commissions/{id}/approve`: post what is pending now, hold or not.
async fn approve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<StoredCommission>> {
    auth.require_admin()?;
    let c = find(&state, &auth, &id).await?;
    let id = CommissionId::parse(&c.id).map_err(anyhow::Error::from)?;
    let store = state.store.clone();
    let id2 = id.clone();
    tokio::spawn(async move { store.approve_commission(&id2, Utc::now()).await })
        .await
        .map_err(|e| anyhow::anyhow!("approval task failed: {e}"))??;
    find(&state, &auth, id.as_str()).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: String,
}

/// `POST /commissions/{id}/reject`: void everything still open of it.
async fn reject(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> ApiResult<Json<StoredCommission>> {
    auth.require_admin()?;
    let reason = tribute_core::partner::parse_label("reason", &body.reason, 500)?;
    let c = find(&state, &auth, &id).await?;
    let id = CommissionId::parse(&c.id).map_err(anyhow::Error::from)?;
    let store = state.store.clone();
    let id2 = id.clone();
    tokio::spawn(async move { store.reject_commission(&id2, &reason, Utc::now()).await })
        .await
        .map_err(|e| anyhow::anyhow!("rejection task failed: {e}"))??;
    find(&state, &auth, id.as_str()).await.map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecomputeQuery {
    conversion_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RecomputeBody {
    #[serde(default)]
    apply: bool,
}

/// `POST /commissions/recompute?conversion_id=`: what today's rules would
/// give; with `{"apply": true}`, post the correcting entries.
async fn recompute(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<RecomputeQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Recompute>> {
    auth.require_admin()?;
    let id = q
        .conversion_id
        .ok_or_else(|| ApiError::bad_request(Some("conversion_id".into()), "is required"))?;
    let id = ConversionId::parse(&id).map_err(|e| e.at("conversion_id"))?;
    let conversion = state
        .store
        .conversion(&id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))?;
    // The body is optional: none (or empty) previews.
    let apply = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        crate::http::extract::parse_body::<RecomputeBody>(&body)?.apply
    };
    let store = state.store.clone();
    let out = tokio::spawn(async move {
        store
            .recompute_conversion(&conversion, apply, Utc::now())
            .await
    })
    .await
    .map_err(|e| anyhow::anyhow!("recompute task failed: {e}"))??;
    Ok(Json(out))
}

#[derive(Deserialize)]
struct LedgerQuery {
    program_id: Option<String>,
    partner_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /ledger`: entries in the order made, each with its lines and the
/// explanation of the commission it moves. A partner key sees the entries
/// touching its own accounts.
async fn ledger(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
    Query(q): Query<LedgerQuery>,
) -> ApiResult<Json<List<StoredEntry>>> {
    let mut partner_id = parse_partner_filter(q.partner_id.as_deref())?;
    let own = auth.partner_scope()?.map(|(own, _)| own.clone());
    restrict_to_own(&mut partner_id, own.as_ref())?;
    let filter = LedgerFilter {
        program_id: q
            .program_id
            .as_deref()
            .map(|p| tribute_core::ids::ProgramId::parse(p).map_err(|e| e.at("program_id")))
            .transpose()?,
        partner_id,
        from: q
            .from
            .as_deref()
            .map(|s| parse_time("from", s))
            .transpose()?,
        to: q.to.as_deref().map(|s| parse_time("to", s)).transpose()?,
    };
    let mut rows = state.store.ledger(&filter, page).await?;
    if let Some(own) = &own {
        for e in &mut rows {
            // A partner sees its own lines of an entry, not the program's
            // accounts or another partner's (a payout's other half).
            e.lines.retain(
                |l| matches!(&l.account, tribute_core::ledger::Account::Partner(p, _) if p == own),
            );
        }
    }
    Ok(Json(List::from_overfetch(rows, page)))
}

#[derive(Serialize)]
struct Balance {
    partner_id: String,
    currency: String,
    pending: i64,
    payable: i64,
    paid: i64,
}

/// `GET /partners/{id}/balance`: the sums of the partner's accounts.
async fn balance(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Balance>> {
    let id = PartnerId::parse(&id).map_err(|_| ApiError::NotFound("partner"))?;
    let partner = auth.own("partner", state.store.partner(&id).await?, |p| &p.id)?;
    let program = state
        .program(&partner.program_id)
        .await?
        .ok_or(ApiError::NotFound("program"))?;
    let b = state.store.partner_balance(&id).await?;
    Ok(Json(Balance {
        partner_id: id.to_string(),
        currency: program.settings.currency.to_string(),
        pending: b.pending,
        payable: b.payable,
        paid: b.paid,
    }))
}
