//! The JSON API under `/api/v1`: programs, partners, links, coupons, metrics.
//!
//! Admin keys see everything; a partner key sees only its own partner
//! record, links, coupons, clicks and metrics (anything else answers 404).

mod coupons;
mod links;
pub(crate) mod partners;
mod programs;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::Router;
use serde::{Deserialize, Deserializer, Serialize};
use tribute_core::ids::PartnerId;
use tribute_store::{OwnedFilter, Page};

use self::programs::parse_program_id;
use crate::error::ApiError;
use crate::extract::Auth;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(programs::router())
        .merge(partners::router())
        .merge(links::router())
        .merge(coupons::router())
        .merge(crate::ingest::router())
        .merge(crate::attribution::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// A page of results.
#[derive(Serialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl<T> List<T> {
    /// Build from `limit + 1` fetched rows: the extra row only says there is more.
    pub fn from_overfetch(mut rows: Vec<T>, page: Page) -> Self {
        let has_more = rows.len() as i64 > page.limit - 1;
        rows.truncate((page.limit - 1) as usize);
        Self {
            data: rows,
            limit: page.limit - 1,
            offset: page.offset,
            has_more,
        }
    }
}

/// `?limit=&offset=` (limit 1..=500, default 50), parsed into a page that
/// fetches one extra row to tell whether there is more.
pub struct Paging(pub Page);

#[derive(Deserialize)]
struct PagingQuery {
    limit: Option<String>,
    offset: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q: PagingQuery = serde_urlencoded_query(parts.uri.query())?;
        let limit = parse_int("limit", q.limit.as_deref(), 50, 1, 500)?;
        let offset = parse_int("offset", q.offset.as_deref(), 0, 0, i64::MAX / 2)?;
        Ok(Paging(Page {
            limit: limit + 1,
            offset,
        }))
    }
}

fn parse_int(
    field: &str,
    v: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                Some(field.to_owned()),
                format!("must be an integer between {min} and {max}"),
            )),
        },
    }
}

/// Parse a query string into `T`, naming the parameter on error; a
/// parameter given twice is refused rather than silently picking one.
pub fn serde_urlencoded_query<T: serde::de::DeserializeOwned>(
    q: Option<&str>,
) -> Result<T, ApiError> {
    let mut pairs = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        if pairs.contains_key(k.as_ref()) {
            return Err(ApiError::bad_request(
                Some(k.into_owned()),
                "is given more than once",
            ));
        }
        pairs.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
    }
    crate::extract::parse_json(&serde_json::to_vec(&pairs).map_err(anyhow::Error::from)?)
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
/// raw query: a partner key sees only its own, and asking for another
/// partner's answers 404.
pub(crate) fn owned_filter(auth: &Auth, raw_query: Option<&str>) -> Result<OwnedFilter, ApiError> {
    let q: OwnedQuery = serde_urlencoded_query(raw_query)?;
    let mut filter = OwnedFilter {
        program_id: q.program_id.as_deref().map(parse_program_id).transpose()?,
        partner_id: parse_partner_filter(q.partner_id.as_deref())?,
    };
    let own = auth.partner_scope()?.map(|(own, _)| own);
    restrict_to_own(&mut filter.partner_id, own)?;
    Ok(filter)
}

/// A `partner_id` query parameter, refused (400) when malformed.
pub(crate) fn parse_partner_filter(v: Option<&str>) -> Result<Option<PartnerId>, ApiError> {
    Ok(
        v.map(|p| PartnerId::parse(p).map_err(|e| e.at("partner_id")))
            .transpose()?,
    )
}

/// Restrict a list's `partner_id` filter to `own` (a partner key's partner;
/// `None` for admins). Another partner's id answers 404, never 403, so its
/// existence does not leak.
pub(crate) fn restrict_to_own(
    partner_id: &mut Option<PartnerId>,
    own: Option<&PartnerId>,
) -> Result<(), ApiError> {
    if let Some(own) = own {
        if partner_id.as_ref().is_some_and(|p| p != own) {
            return Err(ApiError::NotFound("partner"));
        }
        *partner_id = Some(own.clone());
    }
    Ok(())
}
