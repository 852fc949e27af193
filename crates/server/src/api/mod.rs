//! The JSON API under `/api/v1`: programs, partners, links, coupons,
//! conversions, metrics, the attribution tools, and what commissions are
//! computed with (reward rules, tiers, exchange rates), inbound
//! integrations and outbound webhook endpoints.
//!
//! Admin keys see everything; a partner key sees only its own partner
//! record, links, coupons, clicks and metrics (anything else answers 404).

mod attribution;
mod commissions;
mod conversions;
mod coupons;
mod fraud;
mod fx_rates;
mod integrations;
mod keys;
mod links;
mod partners;
pub(crate) mod payouts;
mod programs;
mod refunds;
mod reward_rules;
mod statement;
mod tiers;
mod webhooks;

use axum::Router;
use serde::{Deserialize, Deserializer};
use tribute_store::OwnedFilter;

use crate::http::query::{parse_partner_filter, parse_program_id, restrict_to_own};
use crate::http::{ApiError, Auth};
use crate::AppState;

/// The resources of `/api/v1` (ingestion's routes are merged beside them
/// in `routes`).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(programs::router())
        .merge(partners::router())
        .merge(links::router())
        .merge(coupons::router())
        .merge(keys::router())
        .merge(conversions::router())
        .merge(attribution::router())
        .merge(commissions::router())
        .merge(refunds::router())
        .merge(reward_rules::router())
        .merge(tiers::router())
        .merge(fx_rates::router())
        .merge(payouts::router())
        .merge(statement::router())
        .merge(integrations::router())
        .merge(webhooks::router())
        .merge(fraud::router())
}

/// For PATCH bodies: tells "absent" (`None`) from "set to null" (`Some(None)`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Trim an optional label; empty means absent.
pub fn opt_label(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    v.filter(|s| !s.trim().is_empty())
        .map(|s| tribute_core::partner::parse_label(field, &s, max))
        .transpose()
        .map_err(ApiError::from)
}

/// `?program_id=&partner_id=` of a list of records owned by partners.
#[derive(Deserialize)]
struct OwnedQuery {
    program_id: Option<String>,
    partner_id: Option<String>,
}

/// The filter of a list of partner-owned records (links, coupons), from the
/// query: a partner key sees only its own, and asking for another
/// partner's answers 404.
fn owned_filter(auth: &Auth, q: OwnedQuery) -> Result<OwnedFilter, ApiError> {
    let mut filter = OwnedFilter {
        program_id: q.program_id.as_deref().map(parse_program_id).transpose()?,
        partner_id: parse_partner_filter(q.partner_id.as_deref())?,
    };
    let own = auth.partner_scope()?.map(|(own, _)| own);
    restrict_to_own(&mut filter.partner_id, own)?;
    Ok(filter)
}
