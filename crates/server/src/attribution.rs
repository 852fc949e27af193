//! Attribution in the server: the model a program attributes with (and the
//! fit the data-driven models need), what-if previews, model comparison and
//! fits over a chosen period.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tribute_core::attribution::{attribute, fit, Attribution, Fit, ModelConfig, ModelKind};
use tribute_core::ids::{ConversionId, ProgramId};
use tribute_core::program::Program;
use tribute_core::FieldError;
use tribute_store::StoredFit;

use crate::api::partners::parse_period;
use crate::api::serde_urlencoded_query;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth};
use crate::AppState;

/// The period a fit covers when none is chosen: the last 90 days.
const DEFAULT_FIT_DAYS: i64 = 90;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversions/{id}/attribution", post(what_if))
        .route("/attribution/compare", get(compare))
        .route("/attribution/fits", post(create_fit).get(latest_fit))
}

/// A program's default model with its window.
pub fn program_model(program: &Program) -> ApiResult<ModelConfig> {
    let model = ModelKind::parse(&program.settings.default_model)?;
    let window = u32::try_from(program.settings.window_days)
        .map_err(|_| FieldError::new("window_days", "out of range"))?;
    Ok(ModelConfig::new(model).with_window_days(window))
}

/// Fit `cfg`'s data-driven model over a program's journeys of `[from, to)`.
pub async fn make_fit(
    state: &AppState,
    program: &ProgramId,
    cfg: &ModelConfig,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<Option<StoredFit>> {
    let journeys = state.store.journeys(program, from, to).await?;
    let n = journeys.len() as i64;
    let cfg = cfg.clone();
    // Fitting is CPU work (a linear solve, subset sums): off the async threads.
    let fitted = tokio::task::spawn_blocking(move || fit(&journeys, &cfg))
        .await
        .map_err(|e| anyhow::anyhow!("fit task failed: {e}"))??;
    Ok(fitted.map(|f| StoredFit {
        id: format!("fit_{}", tribute_core::ids::random_base62(20)),
        model: f.model().as_str().to_owned(),
        period_from: from,
        period_to: to,
        journeys: n,
        fit: f,
        created_at: Utc::now(),
    }))
}

/// Fewest journeys a fit made on the fly must cover to be stored (and so
/// reused): a fit of the first few journeys says little, and storing it
/// would pin every later conversion to it.
const MIN_JOURNEYS_TO_STORE: i64 = 100;

/// A stored fit older than this is replaced by a fresh one on next use.
const FIT_MAX_AGE_DAYS: i64 = 7;

/// The fit to attribute with: the latest stored one while it is fresh; else
/// one made now over the last 90 days, stored (when `store_new`) if it
/// covers enough journeys to be worth reusing.
pub async fn fit_for(
    state: &AppState,
    program: &ProgramId,
    cfg: &ModelConfig,
    store_new: bool,
) -> ApiResult<Option<Fit>> {
    if !cfg.model.is_data_driven() {
        return Ok(None);
    }
    let now = Utc::now();
    let latest = state.store.latest_fit(program, cfg.model.as_str()).await?;
    if let Some(f) = &latest {
        if now - f.created_at < Duration::days(FIT_MAX_AGE_DAYS) {
            return Ok(Some(f.fit.clone()));
        }
    }
    let Some(made) = make_fit(
        state,
        program,
        cfg,
        now - Duration::days(DEFAULT_FIT_DAYS),
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    if made.journeys < MIN_JOURNEYS_TO_STORE {
        // Too little data for a new fit: an older stored one is better.
        if let Some(f) = latest {
            return Ok(Some(f.fit));
        }
    } else if store_new {
        state.store.insert_fit(program, &made).await?;
    }
    Ok(Some(made.fit))
}

/// Options of a preview or comparison: `model`/`models`, `window_days`, `half_life_days`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelQuery {
    model: Option<String>,
    window_days: Option<String>,
    half_life_days: Option<String>,
}

fn configure(
    program: &Program,
    model: &str,
    window: Option<&str>,
    half_life: Option<&str>,
) -> ApiResult<ModelConfig> {
    let mut cfg = program_model(program)?;
    cfg.model = ModelKind::parse(model).map_err(|e| e.at("model"))?;
    if let Some(w) = window {
        let w: u32 = w
            .parse()
            .map_err(|_| FieldError::new("window_days", "must be a whole number of days"))?;
        cfg = cfg.with_window_days(w);
    }
    if let Some(h) = half_life {
        let h: f64 = h
            .parse()
            .map_err(|_| FieldError::new("half_life_days", "must be a number of days"))?;
        cfg = cfg.with_half_life_days(h);
    }
    cfg.validate()?;
    Ok(cfg)
}

#[derive(Serialize)]
struct PartnerPart {
    partner_id: String,
    amount: i64,
}

#[derive(Serialize)]
struct WhatIf {
    conversion_id: ConversionId,
    value: i64,
    currency: String,
    summary: String,
    partners: Vec<PartnerPart>,
    attribution: Attribution,
}

/// `POST /conversions/{id}/attribution?model=…`: how the conversion would be
/// credited under another model. Changes nothing.
async fn what_if(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<WhatIf>> {
    auth.require_admin()?;
    let q: ModelQuery = serde_urlencoded_query(q.as_deref())?;
    let id = ConversionId::parse(&id).map_err(|_| ApiError::NotFound("conversion"))?;
    let conversion = state
        .store
        .conversion(&id)
        .await?
        .ok_or(ApiError::NotFound("conversion"))?;
    let program = state
        .store
        .program(&conversion.program_id)
        .await?
        .ok_or(ApiError::NotFound("program"))?;
    let model = q
        .model
        .as_deref()
        .ok_or_else(|| FieldError::new("model", "is required"))?;
    let cfg = configure(
        &program,
        model,
        q.window_days.as_deref(),
        q.half_life_days.as_deref(),
    )?;
    let fit = fit_for(&state, &program.id, &cfg, false).await?;
    let touches = match &conversion.person_id {
        Some(p) => state.store.touches_of(p).await?,
        None => Vec::new(),
    };
    let attribution = attribute(&touches, conversion.occurred_at, &cfg, fit.as_ref())?;
    let partners = attribution
        .split(conversion.value.minor)
        .into_iter()
        .map(|(p, amount)| PartnerPart {
            partner_id: p.to_string(),
            amount,
        })
        .collect();
    Ok(Json(WhatIf {
        conversion_id: conversion.id,
        value: conversion.value.minor,
        currency: conversion.value.currency.to_string(),
        summary: attribution.summary(),
        partners,
        attribution,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareQuery {
    program_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    models: Option<String>,
    window_days: Option<String>,
    half_life_days: Option<String>,
}

#[derive(Serialize, Default, Clone)]
struct Credit {
    /// Sum of the exact shares, to 6 decimals (display).
    conversions: f64,
    /// Sum of each conversion's exact minor-unit part.
    value: i64,
}

#[derive(Serialize)]
struct Comparison {
    program_id: ProgramId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    conversions: usize,
    total_value: i64,
    /// model → partner id → credit.
    models: BTreeMap<String, BTreeMap<String, Credit>>,
}

async fn period_program(state: &AppState, program_id: Option<&str>) -> ApiResult<Program> {
    let id = program_id.ok_or_else(|| FieldError::new("program_id", "is required"))?;
    let id = ProgramId::parse(id).map_err(|e| e.at("program_id"))?;
    state
        .store
        .program(&id)
        .await?
        .ok_or_else(|| FieldError::new("program_id", "no such program").into())
}

/// `GET /attribution/compare?program_id=&from=&to=&models=a,b`: credit per
/// partner under each model, side by side, over the stored conversions.
async fn compare(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Comparison>> {
    auth.require_admin()?;
    let q: CompareQuery = serde_urlencoded_query(q.as_deref())?;
    let program = period_program(&state, q.program_id.as_deref()).await?;
    let (from, to) = parse_period(q.from.as_deref(), q.to.as_deref())?;
    let names: Vec<String> = match q.models.as_deref() {
        None | Some("all") => ModelKind::ALL
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect(),
        Some(list) => {
            // A model named twice is compared once (its credit would count twice).
            let mut names: Vec<String> = Vec::new();
            for name in list.split(',').map(str::trim) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            names
        }
    };
    let mut configs = Vec::new();
    for name in &names {
        let cfg = configure(
            &program,
            name,
            q.window_days.as_deref(),
            q.half_life_days.as_deref(),
        )
        .map_err(|e| match e {
            ApiError::Invalid(f) if f.field == "model" => {
                FieldError::new("models", f.message).into()
            }
            other => other,
        })?;
        let fit = fit_for(&state, &program.id, &cfg, false).await?;
        configs.push((cfg, fit));
    }
    let journeys = state
        .store
        .conversion_journeys(&program.id, from, to)
        .await?;
    let total_value = journeys.iter().map(|j| j.value_minor).sum();
    let count = journeys.len();
    let models = tokio::task::spawn_blocking(move || -> Result<_, FieldError> {
        let mut out: BTreeMap<String, BTreeMap<String, Credit>> = BTreeMap::new();
        for (cfg, fit) in &configs {
            let table = out.entry(cfg.model.as_str().to_owned()).or_default();
            for j in &journeys {
                let a = attribute(&j.touches, j.occurred_at, cfg, fit.as_ref())?;
                for p in &a.partners {
                    if a.weight_total > 0 {
                        table
                            .entry(p.partner_id.to_string())
                            .or_default()
                            .conversions += p.weight as f64 / a.weight_total as f64;
                    }
                }
                for (p, amount) in a.split(j.value_minor) {
                    table.entry(p.to_string()).or_default().value += amount;
                }
            }
            for c in table.values_mut() {
                c.conversions = (c.conversions * 1e6).round() / 1e6;
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| anyhow::anyhow!("comparison task failed: {e}"))??;
    Ok(Json(Comparison {
        program_id: program.id,
        from,
        to,
        conversions: count,
        total_value,
        models,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FitRequest {
    program_id: String,
    model: String,
    from: Option<String>,
    to: Option<String>,
    markov_order: Option<u8>,
}

#[derive(Serialize)]
struct FitView {
    id: String,
    model: String,
    period_from: DateTime<Utc>,
    period_to: DateTime<Utc>,
    journeys: i64,
    created_at: DateTime<Utc>,
    fit: Fit,
}

impl From<StoredFit> for FitView {
    fn from(f: StoredFit) -> Self {
        Self {
            id: f.id,
            model: f.model,
            period_from: f.period_from,
            period_to: f.period_to,
            journeys: f.journeys,
            created_at: f.created_at,
            fit: f.fit,
        }
    }
}

/// `POST /attribution/fits`: fit a data-driven model over a chosen period;
/// new conversions are attributed with it from now on.
async fn create_fit(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<FitRequest>,
) -> ApiResult<(StatusCode, Json<FitView>)> {
    auth.require_admin()?;
    let program = period_program(&state, Some(&body.program_id)).await?;
    let mut cfg = configure(&program, &body.model, None, None)?;
    if !cfg.model.is_data_driven() {
        return Err(FieldError::new("model", "only markov and shapley are fitted").into());
    }
    if let Some(o) = body.markov_order {
        cfg = cfg.with_markov_order(o);
        cfg.validate()?;
    }
    let (from, to) = parse_period(body.from.as_deref(), body.to.as_deref())?;
    let made = make_fit(&state, &program.id, &cfg, from, to)
        .await?
        .ok_or_else(|| FieldError::new("model", "is not data-driven"))?;
    state.store.insert_fit(&program.id, &made).await?;
    Ok((StatusCode::CREATED, Json(made.into())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatestFitQuery {
    program_id: Option<String>,
    model: Option<String>,
}

async fn latest_fit(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<FitView>> {
    auth.require_admin()?;
    let q: LatestFitQuery = serde_urlencoded_query(q.as_deref())?;
    let program = period_program(&state, q.program_id.as_deref()).await?;
    let model = q
        .model
        .ok_or_else(|| FieldError::new("model", "is required"))?;
    let f = state
        .store
        .latest_fit(&program.id, &model)
        .await?
        .ok_or(ApiError::NotFound("fit"))?;
    Ok(Json(f.into()))
}
