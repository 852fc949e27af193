//! The webhook sender: claims due deliveries from the outbox under a lease,
//! signs each per Standard Webhooks and posts it, then records the attempt
//! and schedules the next one (`tribute_core::webhook::RetryPolicy`).
//!
//! Every node runs one (unless `send` is off). The lease makes an attempt
//! one node's alone, and it outlives the 15 s request timeout, so a node
//! that dies mid-attempt only delays that message until its lease runs
//! out. Attempts that end together are recorded in one transaction (a
//! recorder task), so a busy outbox costs one commit per batch. On stop, no
//! new deliveries are claimed, those in flight finish and are recorded.
//!
//! SSRF: an endpoint's host is resolved by [`GuardedResolver`] on every
//! connection, and private, loopback and link-local addresses are dropped
//! (unless `allow_private`); redirects are not followed and proxies from
//! the environment are not used, so no answer can lead the request
//! elsewhere.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::{mpsc, watch, Semaphore};
use tribute_core::ids::WebhookEndpointId;
use tribute_core::webhook::{is_public_ip, Outcome, RetryPolicy};
use tribute_store::{AttemptResult, ClaimedDelivery, EndpointHealth, Store, StoredEndpoint};

use super::Worker;

/// How the sender behaves.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Allow private, loopback and link-local targets
    /// (`TRIBUTE_WEBHOOKS_ALLOW_PRIVATE`: for tests and closed networks).
    pub allow_private: bool,
    pub retry: RetryPolicy,
    /// How long the sender waits before looking again when nothing was due.
    pub poll: Duration,
    /// Attempts in flight at once, per node.
    pub concurrency: usize,
    /// The time one attempt may take, connection included.
    pub timeout: Duration,
    /// Whether this node sends (`TRIBUTE_WEBHOOK_SENDER`). Every node
    /// enqueues; with several nodes, some may leave sending to others.
    pub send: bool,
    /// How long delivered and failed messages (with their attempts) and
    /// inbound delivery bodies are kept (`TRIBUTE_WEBHOOK_RETENTION_DAYS`).
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry: RetryPolicy::default(),
            poll: Duration::from_millis(250),
            concurrency: 32,
            timeout: Duration::from_secs(15),
            send: true,
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A lease outlives an attempt's timeout by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(45);
/// The most of an answer kept in the attempt log.
const EXCERPT: usize = 1000;

/// Resolves endpoint hosts, keeping only addresses webhooks may reach.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow || is_public_ip(a.ip()))
                .collect();
            if found.is_empty() {
                let e = std::io::Error::other(format!(
                    "{host} resolves to no public address (private, loopback and link-local \
                     addresses are refused)"
                ));
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The sender's HTTP client: guarded resolution, no redirects, no proxy.
pub fn client(settings: &WebhookSettings) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.timeout)
        .user_agent(concat!("Tribute-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS backend is compiled in")
}

struct Sender {
    store: Store,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// This node's lease name.
    owner: String,
    /// Endpoints read for recent attempts (a second at most: a disabled
    /// or edited endpoint is seen on the next read).
    endpoints: Cache<WebhookEndpointId, Arc<StoredEndpoint>>,
}

/// An attempt that ended, waiting to be recorded.
struct Finished {
    delivery: ClaimedDelivery,
    result: AttemptResult,
    outcome: Outcome,
}

/// How often a node prunes what is past its retention.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The most attempts recorded in one transaction.
const RECORD_BATCH: usize = 256;

/// Run the sender until `stop` turns true.
pub fn spawn(store: Store, settings: WebhookSettings, mut stop: watch::Receiver<bool>) -> Worker {
    Worker::spawn("webhook sender", async move {
        if !settings.send {
            return;
        }
        let (done, finished) = mpsc::channel(RECORD_BATCH * 4);
        let sender = Arc::new(Sender {
            client: client(&settings),
            owner: format!("node-{}", tribute_core::ids::random_base62(12)),
            endpoints: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(1))
                .build(),
            store,
            settings,
        });
        let recorder = tokio::spawn(record(sender.clone(), finished));
        // Pruning runs beside sending, never holding it up.
        let pruner = {
            let (sender, mut stop) = (sender.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    sender.prune().await;
                    tokio::select! {
                        _ = tokio::time::sleep(PRUNE_EVERY) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            })
        };
        let slots = Arc::new(Semaphore::new(sender.settings.concurrency));
        loop {
            if *stop.borrow() {
                break;
            }
            let free = slots.available_permits();
            if free == 0 {
                // Wait for one attempt to end before claiming more.
                tokio::select! {
                    p = slots.clone().acquire_owned() => drop(p),
                    _ = stop.wait_for(|s| *s) => break,
                }
                continue;
            }
            let now = Utc::now();
            let lease = now
                + chrono::Duration::from_std(sender.settings.timeout + LEASE_MARGIN)
                    .unwrap_or(chrono::Duration::seconds(60));
            let claimed = match sender
                .store
                .claim_deliveries(&sender.owner, now, lease, free as i64)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = ?e, "claiming webhook deliveries failed");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(sender.settings.poll) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                continue;
            }
            for d in claimed {
                let permit = slots.clone().acquire_owned().await.expect("never closed");
                let (sender, done) = (sender.clone(), done.clone());
                tokio::spawn(async move {
                    if let Some(f) = sender.attempt(d).await {
                        let _ = done.send(f).await;
                    }
                    drop(permit);
                });
            }
        }
        // Let the attempts in flight finish, then record what is left.
        let _ = slots.acquire_many(sender.settings.concurrency as u32).await;
        drop(done);
        let _ = recorder.await;
        let _ = pruner.await;
    })
}

/// Record attempts as they end: each batch that gathered in one
/// transaction, then the endpoints' health where it changed.
async fn record(sender: Arc<Sender>, mut finished: mpsc::Receiver<Finished>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let results: Vec<_> = batch
            .iter()
            .map(|f| (f.delivery.clone(), f.result.clone()))
            .collect();
        if let Err(e) = sender.store.finish_attempts(&sender.owner, &results).await {
            // The leases run out and the deliveries are tried again.
            tracing::error!(error = ?e, attempts = results.len(), "recording webhook attempts failed");
            batch.clear();
            continue;
        }
        for f in batch.drain(..) {
            sender.health(&f).await;
        }
    }
}

impl Sender {
    /// Remove delivered and failed messages and inbound bodies past their
    /// retention, in short transactions; failures wait for the next round.
    async fn prune(&self) {
        let Ok(keep) = chrono::Duration::from_std(self.settings.retention) else {
            return;
        };
        let before = Utc::now() - keep;
        loop {
            match self.store.prune_webhooks(before, 1000).await {
                Ok((d, b)) if d + b > 0 => {
                    tracing::info!(deliveries = d, bodies = b, "pruned webhook history");
                    if d < 1000 && b < 1000 {
                        return;
                    }
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(error = ?e, "pruning webhook history failed");
                    return;
                }
            }
        }
    }

    async fn endpoint(&self, id: &WebhookEndpointId) -> Option<Arc<StoredEndpoint>> {
        if let Some(e) = self.endpoints.get(id) {
            return Some(e);
        }
        match self.store.endpoint(id).await {
            Ok(Some(e)) => {
                let e = Arc::new(e);
                self.endpoints.insert(id.clone(), e.clone());
                Some(e)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = ?e, "loading a webhook endpoint failed");
                None
            }
        }
    }

    /// Send one claimed delivery; what came of it, to record.
    async fn attempt(&self, d: ClaimedDelivery) -> Option<Finished> {
        // Without its endpoint (a read failed), the lease runs out and the
        // delivery is tried again.
        let endpoint = self.endpoint(&d.endpoint_id).await?;
        let started_at = Utc::now();
        let clock = Instant::now();
        let sent = self.send(&endpoint, &d, started_at).await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        let (status_code, retry_after, response, error) = match sent {
            Ok(a) => (Some(a.status), a.retry_after, Some(a.excerpt), None),
            Err(e) => (None, None, None, Some(e)),
        };
        let outcome = Outcome::of(status_code);
        let next_attempt_at = match outcome {
            Outcome::Delivered | Outcome::Gone => None,
            Outcome::Failed => self
                .settings
                .retry
                .next_delay(d.attempt, rand::thread_rng().gen(), retry_after)
                .and_then(|delay| chrono::Duration::from_std(delay).ok())
                .map(|delay| Utc::now() + delay),
        };
        let result = AttemptResult {
            started_at,
            duration_ms,
            status_code,
            error,
            response,
            next_attempt_at,
            delivered: outcome == Outcome::Delivered,
        };
        Some(Finished {
            delivery: d,
            result,
            outcome,
        })
    }

    /// Note an attempt's outcome on its endpoint, when it changes anything:
    /// a healthy endpoint that stays healthy needs no write.
    async fn health(&self, f: &Finished) {
        let id = &f.delivery.endpoint_id;
        // Judged by the endpoint as cached now, not as it was when the
        // attempt began: a failure recorded since drops it from the cache,
        // and then the success is written and ends the failing streak.
        let healthy = self
            .endpoints
            .get(id)
            .is_some_and(|e| e.failing_since.is_none());
        if f.outcome == Outcome::Delivered && healthy {
            return;
        }
        match self
            .store
            .endpoint_result(
                id,
                f.outcome == Outcome::Delivered,
                f.outcome == Outcome::Gone,
                Utc::now(),
                self.settings.retry.disable_after(),
            )
            .await
        {
            Ok(EndpointHealth::Disabled) => {
                self.endpoints.invalidate(id);
                tracing::warn!(endpoint = %id, "webhook endpoint disabled");
            }
            Ok(_) => self.endpoints.invalidate(id),
            Err(e) => tracing::error!(error = ?e, "updating an endpoint's health failed"),
        }
    }

    async fn send(
        &self,
        endpoint: &StoredEndpoint,
        d: &ClaimedDelivery,
        now: DateTime<Utc>,
    ) -> Result<Answer, String> {
        let url = reqwest::Url::parse(&endpoint.url).map_err(|e| format!("bad URL: {e}"))?;
        // An IP literal is never resolved, so the resolver cannot check it.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            if !self.settings.allow_private && !is_public_ip(ip) {
                return Err(format!("{ip} is not a public address: refused"));
            }
        }
        let timestamp = now.timestamp();
        let signature = endpoint
            .signing_secrets(now)
            .iter()
            .map(|s| s.sign(&d.msg_id, timestamp, d.payload.as_bytes()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, now));
        let mut body = Vec::new();
        while body.len() < EXCERPT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let excerpt: String = String::from_utf8_lossy(&body)
            .chars()
            .take(EXCERPT)
            .collect();
        Ok(Answer {
            status,
            retry_after,
            excerpt,
        })
    }
}

struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    excerpt: String,
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v.trim()).ok()?;
    (at.with_timezone(&Utc) - now).to_std().ok()
}

/// A failed request in a sentence, with its cause chain (a refused
/// address says so).
fn describe(e: reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_only_to_loopback() {
        let guarded = GuardedResolver {
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        let err = match guarded.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
        let open = GuardedResolver {
            allow_private: true,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
