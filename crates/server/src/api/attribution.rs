//! `/api/v1` attribution tools: what-if previews, model comparison and
//! fits over a chosen period (the fit policy itself is `services::fit`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tribute_core::attribution::{attribute, Attribution, Fit, ModelConfig, ModelKind};
use tribute_core::ids::{ConversionId, ProgramId};
use tribute_core::money::sum_minor;
use tribute_core::program::Program;
use tribute_core::FieldError;
use tribute_store::StoredFit;

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::{Period, Query};
use crate::services::fit::{fit_for, make_fit, program_model};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/conversions/{id}/attribution", post(what_if))
        .route("/attribution/compare", get(compare))
        .route("/attribution/fits", post(create_fit).get(latest_fit))
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
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<WhatIf>> {
    auth.require_admin()?;
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
    /// Sum of each conversion's exact minor-unit part (`i128`: a sum over
    /// many conversions may pass `i64`; it never wraps).
    value: i128,
}

#[derive(Serialize)]
struct Comparison {
    program_id: ProgramId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    conversions: usize,
    /// Exact, in `i128` (see [`tribute_core::money::sum_minor`]).
    total_value: i128,
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
    Query(q): Query<CompareQuery>,
) -> ApiResult<Json<Comparison>> {
    auth.require_admin()?;
    let program = period_program(&state, q.program_id.as_deref()).await?;
    let Period { from, to } = Period::parse(q.from.as_deref(), q.to.as_deref())?;
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
    let total_value = sum_minor(journeys.iter().map(|j| j.value_minor));
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
                    table.entry(p.to_string()).or_default().value += i128::from(amount);
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
    model: ModelKind,
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
    let Period { from, to } = Period::parse(body.from.as_deref(), body.to.as_deref())?;
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
    Query(q): Query<LatestFitQuery>,
) -> ApiResult<Json<FitView>> {
    auth.require_admin()?;
    let program = period_program(&state, q.program_id.as_deref()).await?;
    let model = q
        .model
        .ok_or_else(|| FieldError::new("model", "is required"))?;
    let model = ModelKind::parse(&model)?;
    let f = state
        .store
        .latest_fit(&program.id, model)
        .await?
        .ok_or(ApiError::NotFound("fit"))?;
    Ok(Json(f.into()))
}
