//! The fit policy: which model a program attributes with, and which fit
//! of the data-driven models (Markov, Shapley) a conversion is attributed
//! with — a fresh stored one, or one made now over the last 90 days and
//! stored when it covers enough journeys to be worth reusing.

use chrono::{DateTime, Duration, Utc};
use tribute_core::attribution::{check_window_days, fit, Fit, ModelConfig};
use tribute_core::ids::ProgramId;
use tribute_core::program::Program;
use tribute_store::StoredFit;

use crate::http::ApiResult;
use crate::AppState;

/// The period a fit covers when none is chosen: the last 90 days.
pub const DEFAULT_FIT_DAYS: i64 = 90;

/// A program's default model with its window.
pub fn program_model(program: &Program) -> ApiResult<ModelConfig> {
    let model = program.settings.default_model;
    let window = check_window_days("window_days", program.settings.window_days)?;
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
        model: f.model(),
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
    let latest = state.store.latest_fit(program, cfg.model).await?;
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
