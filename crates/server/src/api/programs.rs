//! `/api/v1/programs`: admin only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tribute_core::attribution::ModelKind;
use tribute_core::ids::ProgramId;
use tribute_core::money::Currency;
use tribute_core::postback::NewPostbackToken;
use tribute_core::program::{AllowedDomain, CommissionTerms, Program, ProgramSettings};
use tribute_core::tracking::TrackingSettings;
use tribute_core::FieldError;

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::parse_program_id;
use crate::http::{List, Paging};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/programs", get(list).post(create))
        .route("/programs/{id}", get(show).patch(update))
        .route(
            "/programs/{id}/tracking",
            get(show_tracking).patch(update_tracking),
        )
        .route("/programs/{id}/postback-token", post(rotate_postback_token))
}

/// A program's tracking settings, with its postback URL. The token is
/// stored hashed and shown only when made, so the URL here holds a
/// `{postback_token}` placeholder and the hint says which token is current.
#[derive(serde::Serialize)]
struct TrackingView {
    program_id: ProgramId,
    #[serde(flatten)]
    settings: TrackingSettings,
    postback_url: String,
    /// The current token's prefix and last four characters; `null` until
    /// one is made with `POST /api/v1/programs/{id}/postback-token`.
    postback_token_hint: Option<String>,
}

/// A newly made postback token: the only time the token is shown.
#[derive(serde::Serialize)]
struct NewPostbackTokenView {
    program_id: ProgramId,
    postback_token: String,
    postback_token_hint: String,
    postback_url: String,
}

fn postback_url(state: &AppState, program: &ProgramId, token: &str) -> String {
    let base = state.config.public_url.trim_end_matches('/');
    format!(
        "{base}/postback?program_id={program}&token={token}&click_id={{click_id}}&amount={{amount}}&order_id={{order_id}}"
    )
}

async fn tracking_view(state: &AppState, program: &Program) -> ApiResult<TrackingView> {
    let tracking = state.store.program_tracking(&program.id).await?;
    Ok(TrackingView {
        program_id: program.id.clone(),
        settings: tracking.settings,
        postback_url: postback_url(state, &program.id, "{postback_token}"),
        postback_token_hint: tracking.postback.map(|p| p.hint),
    })
}

/// Make a new postback token, replacing the current one (which stops
/// working at once on this node, and within the cache TTL on others).
#[tracing::instrument(skip_all, fields(id = %id))]
async fn rotate_postback_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<NewPostbackTokenView>)> {
    auth.require_admin()?;
    let program = load(&state, &id).await?;
    let new = NewPostbackToken::generate();
    state
        .store
        .set_postback_token(&program.id, &new.hash, &new.hint)
        .await?;
    state.program_changed(&program.id);
    Ok((
        StatusCode::CREATED,
        Json(NewPostbackTokenView {
            postback_url: postback_url(&state, &program.id, &new.token),
            program_id: program.id,
            postback_token: new.token,
            postback_token_hint: new.hint,
        }),
    ))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show_tracking(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TrackingView>> {
    auth.require_admin()?;
    let program = load(&state, &id).await?;
    Ok(Json(tracking_view(&state, &program).await?))
}

/// Replace the tracking settings; fields left out take their defaults.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_tracking(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TrackingSettings>,
) -> ApiResult<Json<TrackingView>> {
    auth.require_admin()?;
    let program = load(&state, &id).await?;
    body.validate()?;
    state.store.set_program_tracking(&program.id, &body).await?;
    state.program_changed(&program.id);
    Ok(Json(tracking_view(&state, &program).await?))
}

/// A program as the API shows it: its settings and its commission terms.
#[derive(Serialize)]
struct ProgramView {
    #[serde(flatten)]
    program: Program,
    #[serde(flatten)]
    terms: CommissionTerms,
}

async fn view(state: &AppState, program: Program) -> ApiResult<ProgramView> {
    let terms = state
        .store
        .commission_terms(&program.id)
        .await?
        .ok_or(ApiError::NotFound("program"))?;
    Ok(ProgramView { program, terms })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProgram {
    name: String,
    currency: String,
    #[serde(default)]
    allowed_domains: Vec<String>,
    default_model: Option<String>,
    window_days: Option<i64>,
    cookie_days: Option<i64>,
    hold_days: Option<i64>,
    override_levels_bps: Option<Vec<u32>>,
    payout_min_amount: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateProgram {
    name: Option<String>,
    currency: Option<String>,
    allowed_domains: Option<Vec<String>>,
    default_model: Option<String>,
    window_days: Option<i64>,
    cookie_days: Option<i64>,
    hold_days: Option<i64>,
    override_levels_bps: Option<Vec<u32>>,
    payout_min_amount: Option<i64>,
}

fn domains(list: &[String]) -> Result<Vec<AllowedDomain>, FieldError> {
    list.iter().map(|d| AllowedDomain::parse(d)).collect()
}

pub(super) async fn load(state: &AppState, id: &str) -> ApiResult<Program> {
    state
        .store
        .program(&parse_program_id(id)?)
        .await?
        .ok_or(ApiError::NotFound("program"))
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateProgram>,
) -> ApiResult<(StatusCode, Json<ProgramView>)> {
    auth.require_admin()?;
    let settings = ProgramSettings {
        name: body.name.trim().to_owned(),
        currency: Currency::parse(&body.currency)?,
        allowed_domains: domains(&body.allowed_domains)?,
        default_model: match body.default_model.as_deref() {
            Some(m) => ProgramSettings::parse_default_model(m)?,
            None => ModelKind::LastTouch,
        },
        window_days: body.window_days.unwrap_or(30),
        cookie_days: body.cookie_days.unwrap_or(90),
        hold_days: body.hold_days.unwrap_or(30),
    };
    settings.validate()?;
    let terms = CommissionTerms {
        override_levels_bps: body.override_levels_bps.unwrap_or_default(),
        payout_min_amount: body.payout_min_amount.unwrap_or(0),
    };
    terms.validate()?;
    let program = Program {
        id: ProgramId::generate(),
        settings,
        created_at: Utc::now(),
    };
    state.store.insert_program(&program).await?;
    if terms != CommissionTerms::default() {
        state
            .store
            .set_commission_terms(&program.id, &terms)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(ProgramView { program, terms })))
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Paging(page): Paging,
) -> ApiResult<Json<List<ProgramView>>> {
    auth.require_admin()?;
    let mut rows = Vec::new();
    for program in state.store.programs(page).await? {
        rows.push(view(&state, program).await?);
    }
    Ok(Json(List::from_overfetch(rows, page)))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProgramView>> {
    auth.require_admin()?;
    let program = load(&state, &id).await?;
    Ok(Json(view(&state, program).await?))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProgram>,
) -> ApiResult<Json<ProgramView>> {
    auth.require_admin()?;
    let ProgramView {
        mut program,
        mut terms,
    } = view(&state, load(&state, &id).await?).await?;
    let s = &mut program.settings;
    if let Some(c) = body.currency {
        if Currency::parse(&c)? != s.currency {
            return Err(FieldError::new(
                "currency",
                "cannot change once the program exists: amounts are recorded in it",
            )
            .into());
        }
    }
    if let Some(v) = body.name {
        s.name = v.trim().to_owned();
    }
    if let Some(v) = body.allowed_domains {
        s.allowed_domains = domains(&v)?;
    }
    if let Some(v) = body.default_model {
        s.default_model = ProgramSettings::parse_default_model(&v)?;
    }
    if let Some(v) = body.window_days {
        s.window_days = v;
    }
    if let Some(v) = body.cookie_days {
        s.cookie_days = v;
    }
    if let Some(v) = body.hold_days {
        s.hold_days = v;
    }
    s.validate()?;
    if let Some(v) = body.override_levels_bps {
        terms.override_levels_bps = v;
    }
    if let Some(v) = body.payout_min_amount {
        terms.payout_min_amount = v;
    }
    terms.validate()?;
    state.store.update_program(&program).await?;
    state
        .store
        .set_commission_terms(&program.id, &terms)
        .await?;
    state.program_changed(&program.id);
    // Allowed domains gate redirects: cached links must be checked again.
    state.links_changed();
    Ok(Json(ProgramView { program, terms }))
}
