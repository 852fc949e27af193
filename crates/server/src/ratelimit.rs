//! Rate limits: per client address and per key, answered with a 429, a
//! `Retry-After` and the JSON error.
//!
//! A [`Limiter`] is two keyed GCRA limiters (the `governor` crate): one for
//! the client's address (IPv6 counted per /64, which one host usually owns),
//! one for the credential the request carries (its `Authorization` header,
//! or the `key` / `token` parameter of the snippet and postback). A request
//! passes when both have room. Each key costs a few dozen bytes; keys idle
//! for a while are swept every minute, so random addresses or tokens cannot
//! grow memory without bound.
//!
//! Where it applies ([`Guard`]): ingestion (`/v1/*`, `/collect`, `/postback`,
//! `POST /api/v1/conversions` and `/events`) always, with generous defaults;
//! the redirect only when the owner sets a per-address limit, since every
//! click is evidence and click velocity is the fraud checks' business. A
//! route without limits gets no layer at all, so it pays nothing. Sign-in
//! can reuse this as is: its own `Guard` with its own `Limiter` and filter.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::http::client::client_ip;
use crate::http::ApiError;

/// Requests per second allowed (each with a burst of twice as many).
/// `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Ingestion requests per second from one client address.
    pub ingest_per_ip: u32,
    /// Ingestion requests per second with one key, from anywhere. The
    /// snippet's key is shared by every visitor of a site: keep it high.
    pub ingest_per_key: u32,
    /// Redirects per second from one client address (off by default).
    pub redirect_per_ip: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            ingest_per_ip: 100,
            ingest_per_key: 1_000,
            redirect_per_ip: 0,
        }
    }
}

/// How often idle keys are forgotten.
const SWEEP: Duration = Duration::from_secs(60);

/// A per-address and a per-key limit (either may be off).
pub struct Limiter {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_key: Option<DefaultKeyedRateLimiter<u64>>,
    /// Keys the credential's hash, so the limiter never holds secrets.
    hasher: std::collections::hash_map::RandomState,
    clock: DefaultClock,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Limiter {
    /// A limiter, or `None` when both limits are off. A task sweeps idle
    /// keys while the limiter lives (call from within the runtime).
    pub fn new(per_ip: u32, per_key: u32) -> Option<Arc<Self>> {
        let this = Arc::new(Self {
            per_ip: limiter(per_ip),
            per_key: limiter(per_key),
            hasher: Default::default(),
            clock: DefaultClock::default(),
        });
        if this.per_ip.is_none() && this.per_key.is_none() {
            return None;
        }
        let weak: Weak<Self> = Arc::downgrade(&this);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                this.sweep();
            }
        });
        Some(this)
    }

    fn sweep(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_key {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Count one request from `ip` carrying `credential`; a 429 (with the
    /// seconds to wait) when either limit is spent.
    pub fn check(&self, ip: IpAddr, credential: Option<&[u8]>) -> Result<(), ApiError> {
        if let Some(l) = &self.per_ip {
            l.check_key(&address_key(ip))
                .map_err(|n| self.refusal(n.wait_time_from(self.clock.now())))?;
        }
        if let (Some(l), Some(c)) = (&self.per_key, credential) {
            l.check_key(&self.hasher.hash_one(c))
                .map_err(|n| self.refusal(n.wait_time_from(self.clock.now())))?;
        }
        Ok(())
    }

    fn refusal(&self, wait: Duration) -> ApiError {
        // Whole seconds, rounded up: `Retry-After: 0` would invite a retry storm.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::RateLimited {
            retry_after: secs.max(1),
        }
    }
}

/// IPv6 clients are counted per /64: one host commonly has a whole /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// Which requests of a router a [`Guard`] counts.
pub type Filter = fn(&Method, &str) -> bool;

/// A limiter applied to the requests a filter selects (middleware state).
pub struct Guard {
    pub limiter: Arc<Limiter>,
    pub trust_proxy: bool,
    pub filter: Filter,
}

/// The ingestion endpoints: every way in that writes, inbound webhooks
/// included (a provider that meets the limit gets 429 and retries later,
/// as Stripe, Shopify and HubSpot do).
pub fn ingestion(method: &Method, path: &str) -> bool {
    match path {
        "/postback" => true,
        "/collect" => method == Method::POST,
        "/api/v1/conversions" | "/api/v1/events" => method == Method::POST,
        p if p.starts_with("/hooks/") => method == Method::POST,
        p => p.starts_with("/v1/"),
    }
}

/// Every request of the router the guard is on.
pub fn everything(_: &Method, _: &str) -> bool {
    true
}

/// The credential a request carries, as bytes to hash.
fn credential(request: &Request) -> Option<Vec<u8>> {
    if let Some(v) = request.headers().get(header::AUTHORIZATION) {
        return Some(v.as_bytes().to_vec());
    }
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "key" || k == "token")
        .map(|(_, v)| v.as_bytes().to_vec())
}

/// Middleware: count the request if the guard's filter selects it; a 429
/// when a limit is spent.
pub async fn enforce(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path(), |u| u.path());
    if !(guard.filter)(request.method(), path) {
        return next.run(request).await;
    }
    // Without connection info (a router called in-process) every request
    // shares one address.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let ip = client_ip(guard.trust_proxy, peer, request.headers());
    let credential = credential(&request);
    match guard.limiter.check(ip, credential.as_deref()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ingestion_covers_the_ways_in_that_write_and_nothing_else() {
        assert!(ingestion(&Method::POST, "/v1/batch"));
        assert!(ingestion(&Method::POST, "/collect"));
        assert!(ingestion(&Method::GET, "/postback"));
        assert!(ingestion(&Method::POST, "/api/v1/conversions"));
        assert!(!ingestion(&Method::GET, "/api/v1/conversions"));
        assert!(!ingestion(&Method::GET, "/collect/config"));
        assert!(!ingestion(&Method::GET, "/t.js"));
        assert!(!ingestion(&Method::GET, "/api/v1/programs"));
        assert!(ingestion(&Method::POST, "/hooks/stripe/int_x"));
    }
}
