//! Query strings: a typed [`Query`] extractor whose errors name the
//! parameter, [`Paging`] and [`List`] for lists, [`Period`] for reports, and
//! the partner-scoping rule of lists.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tribute_core::ids::{PartnerId, ProgramId};
use tribute_core::FieldError;
use tribute_store::Page;

use super::error::ApiError;
use super::extract::parse_json;

/// Parse a query string into `T`, naming the parameter on error; a
/// parameter given twice is refused rather than silently picking one.
pub fn parse_query<T: DeserializeOwned>(q: Option<&str>) -> Result<T, ApiError> {
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
    parse_json(&serde_json::to_vec(&pairs).map_err(anyhow::Error::from)?)
}

/// A query string parsed into `T` (all values arrive as strings): unknown,
/// repeated or malformed parameters are a 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query()).map(Query)
    }
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
/// fetches one extra row to tell whether there is more. Other parameters
/// are left to the handler's own [`Query`].
pub struct Paging(pub Page);

#[derive(Deserialize)]
struct PagingQuery {
    limit: Option<String>,
    offset: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q: PagingQuery = lenient_query(parts.uri.query())?;
        let limit = parse_int("limit", q.limit.as_deref(), 50, 1, 500)?;
        let offset = parse_int("offset", q.offset.as_deref(), 0, 0, i64::MAX / 2)?;
        Ok(Paging(Page {
            limit: limit + 1,
            offset,
        }))
    }
}

/// Only the named parameters of a query (others belong to another extractor).
fn lenient_query<T: DeserializeOwned>(q: Option<&str>) -> Result<T, ApiError> {
    let pairs: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
    serde_json::from_value(serde_json::Value::Object(pairs))
        .map_err(|e| ApiError::bad_request(None, e.to_string()))
}

/// An integer parameter within `min..=max`.
pub fn parse_int(
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

/// Parse a time bound: RFC 3339 (`2026-01-31T00:00:00Z`) or a date (`2026-01-31`, midnight UTC).
pub fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, FieldError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| FieldError::new(field, "must be an RFC 3339 time or a YYYY-MM-DD date"))
}

/// A reporting period `[from, to)`: `to` defaults to now, `from` to 30 days
/// before `to`; `from` after `to` is refused. As an extractor it reads a
/// query of `?from=&to=` only (a report with more options parses them in
/// its own [`Query`] and calls [`Period::parse`]).
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, FieldError> {
        let to = to
            .map(|s| parse_time("to", s))
            .transpose()?
            .unwrap_or_else(Utc::now);
        let from = from
            .map(|s| parse_time("from", s))
            .transpose()?
            .unwrap_or(to - Duration::days(30));
        if from > to {
            return Err(FieldError::new("from", "must not be after `to`"));
        }
        Ok(Self { from, to })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Period {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q: PeriodQuery = parse_query(parts.uri.query())?;
        Ok(Period::parse(q.from.as_deref(), q.to.as_deref())?)
    }
}

/// A program id in a path or filter: malformed is as unknown (404).
pub fn parse_program_id(id: &str) -> Result<ProgramId, ApiError> {
    ProgramId::parse(id).map_err(|_| ApiError::NotFound("program"))
}

/// A `partner_id` query parameter, refused (400) when malformed.
pub fn parse_partner_filter(v: Option<&str>) -> Result<Option<PartnerId>, ApiError> {
    Ok(
        v.map(|p| PartnerId::parse(p).map_err(|e| e.at("partner_id")))
            .transpose()?,
    )
}

/// Restrict a list's `partner_id` filter to `own` (a partner key's partner;
/// `None` for admins). Another partner's id answers 404, never 403, so its
/// existence does not leak.
pub fn restrict_to_own(
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
