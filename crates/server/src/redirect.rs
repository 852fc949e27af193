//! `GET|HEAD /r/{code}`: the tracked redirect.
//!
//! The hot path: a cached link lookup, a click id, two keyed hashes, a bot
//! check, a queue push and a 302. No database round trip once the link is
//! cached; the click is committed by the batch writer (`clicks.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use tribute_core::click::{truncate_ip, Click};
use tribute_core::fraud::FraudConfig;
use tribute_core::ids::ClickId;
use tribute_core::link::{redirect_url, with_click_id, Destination, Link, ShortCode};
use url::Url;

use crate::fraud::ClickRequest;
use crate::http::client::client_ip;
use crate::http::error::ApiError;
use crate::metrics::Counters;
use crate::AppState;

/// What the redirect needs of a link, resolved once and cached.
pub struct CachedLink {
    pub link: Link,
    pub destination: Url,
    /// The destination with the link's UTM parameters: what a visitor with
    /// no query of their own is sent to, plus the click id.
    pub base: Url,
    /// False when the partner is suspended: the visitor is still sent on,
    /// but nothing is recorded or credited.
    pub credits: bool,
    /// The program's fraud settings (cached with the link).
    pub fraud: Arc<FraudConfig>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/r/{code}", get(redirect))
}

const NOT_FOUND_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Link not found</title>\
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}</style>\
</head><body><h1>Link not found</h1><p>This link does not exist or has expired.</p></body></html>";

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html(NOT_FOUND_PAGE)).into_response()
}

async fn lookup(state: &AppState, code: &str) -> Result<Option<Arc<CachedLink>>, ApiError> {
    if let Some(hit) = state.links.get(code) {
        return Ok(hit);
    }
    let found = match state.store.link_by_code(code).await? {
        None => None,
        Some(link) => {
            let credits = state
                .store
                .partner(&link.partner_id)
                .await?
                .is_some_and(|p| p.status.credits());
            // The allow-list is checked again here, not only when the link was
            // written: removing a domain from a program stops its links at once.
            let program = state.store.program(&link.program_id).await?;
            let fraud = Arc::new(state.store.fraud_config(&link.program_id).await?);
            match program.map(|p| Destination::parse(&link.destination, &p.settings)) {
                Some(Ok(destination)) => Some(Arc::new(CachedLink {
                    base: redirect_url(destination.url(), &link.utm, None, None),
                    link,
                    destination: destination.url().clone(),
                    credits,
                    fraud,
                })),
                _ => None,
            }
        }
    };
    state.links.insert(code.to_owned(), found.clone());
    Ok(found)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName, max: usize) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    // `to_str` guarantees visible ASCII, so a byte cut is a character cut.
    Some(v[..v.len().min(max)].to_owned())
}

/// The request is taken whole (not as `HeaderMap`, `Method`, `RawQuery`
/// extractors) so nothing is cloned on this path.
#[tracing::instrument(skip_all, fields(code = %code))]
async fn redirect(
    State(state): State<AppState>,
    Path(code): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Result<Response, ApiError> {
    let (method, query, headers) = (request.method(), request.uri().query(), request.headers());
    // A code that cannot exist costs neither a query nor a cache slot.
    if ShortCode::parse(&code).is_err() {
        return Ok(not_found());
    }
    let Some(cached) = lookup(&state, &code).await? else {
        return Ok(not_found());
    };
    let now = Utc::now();
    if cached.link.is_expired(now) {
        return Ok(not_found());
    }
    let link = &cached.link;
    let click_id = cached
        .credits
        .then(|| ClickId::generate_ordered(now.timestamp_millis()));
    let target = match (query, &click_id) {
        (None, Some(id)) => with_click_id(&cached.base, id.as_str()),
        _ => redirect_url(
            &cached.destination,
            &link.utm,
            click_id.as_ref().map(|c| c.as_str()),
            query,
        ),
    };
    if let Some(id) = click_id {
        let ip = client_ip(state.config.trust_proxy, peer, headers);
        let user_agent = header_str(headers, header::USER_AGENT, 512);
        let referrer = header_str(headers, header::REFERER, 1024);
        // The click rules: bots, implausible browsers, velocity, duplicates,
        // paid-search click ids, banned referrers. A flagged click is kept
        // with its reasons, as a bot: out of unique clicks and attribution.
        let (reasons, flagged) = state.fraud.screen_click(
            &ClickRequest {
                headers,
                query,
                ip,
                user_agent: user_agent.as_deref(),
                referrer: referrer.as_deref(),
                partner_id: link.partner_id.as_str(),
                link_id: link.id.as_str(),
                at: now,
            },
            &cached.fraud,
            state.config.click_rules,
            &state.bots,
            &state.hasher,
        );
        // A HEAD is never a person following a link (link previews, checkers):
        // it is recorded, and counted as a bot.
        let is_bot = method == Method::HEAD || flagged;
        let click = Click {
            id,
            program_id: link.program_id.clone(),
            link_id: link.id.clone(),
            partner_id: link.partner_id.clone(),
            at: now,
            ip_truncated: truncate_ip(ip),
            ip_hash: state.hasher.ip_hash(ip),
            visitor_hash: state
                .hasher
                .visitor_hash(ip, user_agent.as_deref().unwrap_or("")),
            user_agent,
            referrer,
            source: link.source.clone(),
            is_bot,
            reasons,
        };
        state.clicks.record(click).await;
        Counters::add(&state.counters.redirects_recorded, 1);
    } else {
        Counters::add(&state.counters.redirects_unrecorded, 1);
    }
    let location = HeaderValue::from_str(target.as_str())
        .map_err(|e| anyhow::anyhow!("redirect target is not a header value: {e}"))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            // Every click must reach us: no browser or proxy may replay the 302.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
    )
        .into_response())
}
