//! `/api/v1/reward-rules` (admin): what a program pays its partners.
//!
//! The body is core's rule shape (`tribute_core::commission::RuleTerms`,
//! parsed with its errors naming the field) with the program it belongs to.
//! A rule is never rewritten: `PATCH` takes the full terms and stores them
//! as the next version, so commissions already made keep the version they
//! were computed with (rate lock), and `GET …?version=` still reads it.
//! `DELETE` retires the rule: no new commission uses it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tribute_core::commission::{RewardRule, RuleTerms, Scope};
use tribute_core::ids::{ProgramId, RewardRuleId};
use tribute_core::FieldError;

use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth};
use crate::http::query::{parse_int, parse_program_id};
use crate::http::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reward-rules", get(list).post(create))
        .route("/reward-rules/{id}", get(show).patch(update).delete(retire))
}

/// A rule as the API shows it: core's shape and whether it is retired.
fn view(rule: &RewardRule, deleted: bool) -> Value {
    let mut v = rule.to_json();
    v["deleted"] = json!(deleted);
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    program_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    version: Option<String>,
}

/// The body as an object, refusing the fields the server sets.
fn body_object(body: &Value, server_set: &[&str]) -> ApiResult<()> {
    let obj: &Map<String, Value> = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request(None, "the body must be a JSON object"))?;
    if let Some(k) = server_set.iter().find(|k| obj.contains_key(**k)) {
        return Err(FieldError::new(*k, "is set by the server").into());
    }
    Ok(())
}

/// A scope's partner or link must be of the rule's program: a rule of one
/// program never pays (or excludes) another program's partner.
async fn check_scope(state: &AppState, program: &ProgramId, scope: &Scope) -> ApiResult<()> {
    match scope {
        Scope::Program | Scope::Group(_) => Ok(()),
        Scope::Partner(p) => match state.store.partner(p).await? {
            Some(p) if &p.program_id == program => Ok(()),
            _ => {
                Err(FieldError::new("scope.partner_id", "is not a partner of this program").into())
            }
        },
        Scope::Link(l) => match state.store.link(l).await? {
            Some(l) if &l.program_id == program => Ok(()),
            _ => Err(FieldError::new("scope.link_id", "is not a link of this program").into()),
        },
    }
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    auth.require_admin()?;
    body_object(&body, &["id", "version"])?;
    let program_id = body
        .get("program_id")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new("program_id", "is required"))?;
    let program_id = ProgramId::parse(program_id).map_err(|e| e.at("program_id"))?;
    let terms = RuleTerms::from_json(&body)?;
    if state.store.program(&program_id).await?.is_none() {
        return Err(FieldError::new("program_id", "no such program").into());
    }
    check_scope(&state, &program_id, &terms.scope).await?;
    let rule = RewardRule {
        id: RewardRuleId::generate(),
        program_id,
        version: 1,
        terms,
    };
    state.store.insert_reward_rule(&rule, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(view(&rule, false))))
}

/// `GET /reward-rules?program_id=`: the program's live rules, current
/// versions, by id.
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let program = parse_program_id(&q.program_id)?;
    let rules = state.store.reward_rules(&program).await?;
    let data: Vec<Value> = rules.iter().map(|r| view(r, false)).collect();
    Ok(Json(json!({"data": data})))
}

fn rule_id(id: &str) -> ApiResult<RewardRuleId> {
    RewardRuleId::parse(id).map_err(|_| ApiError::NotFound("reward rule"))
}

/// `GET /reward-rules/{id}?version=`: the current version, or the one
/// asked for (retired or not: commissions name old versions).
#[tracing::instrument(skip_all, fields(id = %id))]
async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let id = rule_id(&id)?;
    let version = q
        .version
        .as_deref()
        .map(|v| parse_int("version", Some(v), 1, 1, i64::from(u32::MAX)))
        .transpose()?
        .map(|v| v as u32);
    let (rule, deleted) = state
        .store
        .reward_rule(&id, version)
        .await?
        .ok_or(ApiError::NotFound("reward rule"))?;
    // An old version is not retired itself; only the latest can be.
    Ok(Json(view(&rule, deleted)))
}

/// `PATCH /reward-rules/{id}` with the full terms: stored as the next
/// version. Commissions already made keep the version they name.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let id = rule_id(&id)?;
    body_object(&body, &["id", "version", "program_id"])?;
    let terms = RuleTerms::from_json(&body)?;
    let (current, deleted) = state
        .store
        .reward_rule(&id, None)
        .await?
        .ok_or(ApiError::NotFound("reward rule"))?;
    if deleted {
        return Err(ApiError::NotFound("reward rule"));
    }
    check_scope(&state, &current.program_id, &terms.scope).await?;
    let rule = state
        .store
        .update_reward_rule(&id, &terms, Utc::now())
        .await?;
    Ok(Json(view(&rule, false)))
}

/// `DELETE /reward-rules/{id}`: retire the rule; the commissions it made stay.
#[tracing::instrument(skip_all, fields(id = %id))]
async fn retire(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    auth.require_admin()?;
    let id = rule_id(&id)?;
    state.store.delete_reward_rule(&id, Utc::now()).await?;
    let (rule, deleted) = state
        .store
        .reward_rule(&id, None)
        .await?
        .ok_or(ApiError::NotFound("reward rule"))?;
    Ok(Json(view(&rule, deleted)))
}
