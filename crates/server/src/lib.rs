//! Tribute's HTTP edge: the tracked redirect, the JSON API and the workers
//! behind them.
//!
//! Requests are parsed and checked here, turned into `tribute_core` values,
//! decided by the core and written by `tribute_store`. The layers, bottom
//! up: `http` (errors, extractors, views), `services` (what the server does:
//! recording conversions, the fit policy), `workers` (click and event
//! writers), then the ways in — `redirect`, `ingest`, `api` — whose routers
//! `routes` merges around one [`AppState`].

#![forbid(unsafe_code)]

mod api;
pub mod fraud;
mod health;
mod http;
mod ingest;
mod metrics;
pub mod openapi;
mod ratelimit;
mod redirect;
mod routes;
mod services;
mod workers;

pub use ratelimit::RateLimits;
pub use routes::app;
pub use workers::webhooks::WebhookSettings;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use moka::sync::Cache;
use tokio::net::TcpListener;
use tribute_core::apikey::{hash_token, Principal};
use tribute_core::click::{BotDetector, VisitorHasher};
use tribute_core::ids::{ApiKeyId, ProgramId};
use tribute_core::program::Program;
use tribute_store::{ProgramTracking, Store};

use crate::redirect::CachedLink;
use crate::workers::clicks::ClickQueue;
use crate::workers::Worker;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public base URL (`https://go.example.com`), for short links.
    pub public_url: String,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_proxy: bool,
    /// How many clicks may wait for the writer before redirects wait for it.
    pub click_queue: usize,
    /// Requests per second per client address and per key.
    pub limits: ratelimit::RateLimits,
    /// Whether `/metrics` is served on its own address ([`App::metrics_router`])
    /// rather than on the main one behind an admin key.
    pub metrics_separate: bool,
    /// How often commissions whose hold period is over are posted.
    pub release_every: Duration,
    /// How often every program's partners are moved between tiers
    /// (`workers::tiers`; also on demand with `POST /api/v1/tiers/evaluate`).
    pub tier_interval: Duration,
    /// The outbound webhook sender's settings.
    pub webhooks: workers::webhooks::WebhookSettings,
    /// Run the fraud click rules on each redirect (`false`: bots are still
    /// flagged, nothing else is checked).
    pub click_rules: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            trust_proxy: false,
            click_queue: 65_536,
            limits: ratelimit::RateLimits::default(),
            metrics_separate: false,
            release_every: Duration::from_secs(60),
            tier_interval: Duration::from_secs(24 * 60 * 60),
            webhooks: workers::webhooks::WebhookSettings::default(),
            click_rules: true,
        }
    }
}

/// Shared state of every handler: one `Arc`, so cloning it per request is
/// one atomic increment. Fields are reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

impl std::ops::Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppInner {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    /// Redirect lookups by code (`None` caches an unknown code too).
    pub links: Cache<String, Option<Arc<CachedLink>>>,
    /// Authenticated keys by token hash, so ingestion does not hit the database per request.
    keys: Cache<String, Option<(Principal, ApiKeyId)>>,
    /// Token hashes that matched no key, briefly: a flood of bad tokens
    /// costs one query per token, not one per request. Its own bounded cache,
    /// so random tokens cannot push known keys out.
    key_misses: Cache<String, ()>,
    /// The ingestion and redirect rate limits (`None`: off).
    ingest_limit: Option<Arc<ratelimit::Guard>>,
    redirect_limit: Option<Arc<ratelimit::Guard>>,
    /// Programs and their tracking settings, read on every ingestion request.
    programs: Cache<ProgramId, Arc<Program>>,
    tracking: Cache<ProgramId, Arc<ProgramTracking>>,
    pub clicks: ClickQueue,
    /// Group commit of events.
    pub events: workers::events::EventWriter,
    pub bots: Arc<BotDetector>,
    pub hasher: Arc<VisitorHasher>,
    /// Click velocity and program statistics for the fraud rules.
    pub fraud: Arc<fraud::Screen>,
    pub counters: Arc<metrics::Counters>,
    /// Keeps the tier evaluator running while the state lives.
    _tiers: workers::tiers::TierSchedule,
}

impl AppState {
    /// Resolve an API key to its principal (cached briefly: a revoked key
    /// stops working within the cache's lifetime on every node).
    pub async fn principal(&self, token: &str) -> Result<Option<Principal>, http::ApiError> {
        Ok(self.caller(token).await?.map(|(p, _)| p))
    }

    /// [`Self::principal`], with the id of the key (what a log of the
    /// owner's decisions keeps).
    pub async fn caller(
        &self,
        token: &str,
    ) -> Result<Option<(Principal, ApiKeyId)>, http::ApiError> {
        let hash = hash_token(token);
        if let Some(hit) = self.keys.get(&hash) {
            return Ok(hit);
        }
        if self.key_misses.contains_key(&hash) {
            return Ok(None);
        }
        let principal = self
            .store
            .api_key_by_token(token)
            .await?
            .and_then(|k| Some((k.principal()?, k.id)));
        if principal.is_some() {
            self.keys.insert(hash, principal.clone());
        } else {
            self.key_misses.insert(hash, ());
        }
        Ok(principal)
    }

    /// A program, cached briefly (the ingestion paths read it per request).
    pub async fn program(&self, id: &ProgramId) -> Result<Option<Arc<Program>>, http::ApiError> {
        if let Some(hit) = self.programs.get(id) {
            return Ok(Some(hit));
        }
        let Some(p) = self.store.program(id).await? else {
            return Ok(None);
        };
        let p = Arc::new(p);
        self.programs.insert(id.clone(), p.clone());
        Ok(Some(p))
    }

    /// A program's tracking settings and postback token hash, cached briefly.
    pub async fn tracking(&self, id: &ProgramId) -> Result<Arc<ProgramTracking>, http::ApiError> {
        if let Some(hit) = self.tracking.get(id) {
            return Ok(hit);
        }
        let t = Arc::new(self.store.program_tracking(id).await?);
        self.tracking.insert(id.clone(), t.clone());
        Ok(t)
    }

    /// Forget a cached program and its settings after a change (other nodes
    /// see it when their entries expire).
    pub fn program_changed(&self, id: &ProgramId) {
        self.programs.invalidate(id);
        self.tracking.invalidate(id);
    }

    /// Forget every cached key after a key was revoked here: it stops
    /// working at once on this node (others see it when their entries expire).
    pub fn keys_changed(&self) {
        self.keys.invalidate_all();
    }

    /// Forget cached links after a link or partner changed. Other nodes see
    /// the change when their entries expire (`LINK_TTL`).
    pub fn links_changed(&self) {
        self.links.invalidate_all();
    }
}

/// How long a node trusts its cached copy of a link or key.
const LINK_TTL: Duration = Duration::from_secs(30);
const KEY_TTL: Duration = Duration::from_secs(30);
/// How long an unknown token stays unknown: short, so a key just created
/// elsewhere works within seconds.
const KEY_MISS_TTL: Duration = Duration::from_secs(5);

/// A running application: the state for the router, and the workers to
/// flush when the server stops.
pub struct App {
    pub state: AppState,
    workers: Vec<Worker>,
    /// Stops the periodic jobs when the server stops.
    stop_periodic: tokio::sync::watch::Sender<bool>,
    /// Where `/metrics` is served alone, without a key (`--metrics-listen`).
    metrics_listener: Option<TcpListener>,
}

impl App {
    /// Build the state (loading server secrets) and start the workers.
    pub async fn start(store: Store, config: ServerConfig) -> anyhow::Result<Self> {
        let key = store
            .secret_or_init("visitor_hash_key", || tribute_core::ids::random_base62(43))
            .await?;
        let counters = Arc::new(metrics::Counters::default());
        let (clicks, click_writer) =
            workers::clicks::spawn_writer(store.clone(), config.click_queue, counters.clone());
        let (events, event_writer) = workers::events::EventWriter::spawn(store.clone());
        let (stop_periodic, stopping) = tokio::sync::watch::channel(false);
        let sender =
            workers::webhooks::spawn(store.clone(), config.webhooks.clone(), stopping.clone());
        let fraud = Arc::new(fraud::Screen::default());
        let pruner = fraud.spawn_pruner(stopping.clone());
        let release = workers::release::spawn(store.clone(), config.release_every, stopping);
        let (tiers, tier_evaluator) = workers::tiers::spawn(store.clone(), config.tier_interval);
        let guard = |limiter, filter| {
            Arc::new(ratelimit::Guard {
                limiter,
                trust_proxy: config.trust_proxy,
                filter,
            })
        };
        let limits = config.limits;
        let ingest_limit = ratelimit::Limiter::new(limits.ingest_per_ip, limits.ingest_per_key)
            .map(|l| guard(l, ratelimit::ingestion));
        let redirect_limit = ratelimit::Limiter::new(limits.redirect_per_ip, 0)
            .map(|l| guard(l, ratelimit::everything));
        let state = AppState(Arc::new(AppInner {
            store: store.clone(),
            config: Arc::new(config),
            links: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LINK_TTL)
                .build(),
            keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEY_TTL)
                .build(),
            key_misses: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEY_MISS_TTL)
                .build(),
            ingest_limit,
            redirect_limit,
            programs: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(LINK_TTL)
                .build(),
            tracking: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(LINK_TTL)
                .build(),
            clicks,
            events,
            bots: Arc::new(BotDetector::default()),
            hasher: Arc::new(VisitorHasher::new(key.as_bytes())),
            fraud,
            counters,
            _tiers: tiers,
        }));
        Ok(Self {
            state,
            workers: vec![
                click_writer,
                event_writer,
                release,
                tier_evaluator,
                sender,
                pruner,
            ],
            stop_periodic,
            metrics_listener: None,
        })
    }

    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// Also serve `/metrics`, alone and without a key, on `listener`: an
    /// address only the monitoring network reaches. Set
    /// `ServerConfig::metrics_separate` too, so the main address drops it.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Self {
        self.metrics_listener = Some(listener);
        self
    }

    /// Serve on `listener` until `shutdown` resolves, then flush queued clicks and events.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        let Self {
            state,
            workers,
            stop_periodic,
            metrics_listener,
        } = self;
        // Both listeners stop together: the metrics server holds the state
        // too, and the click writer finishes only once every holder is gone.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics = metrics_listener.map(|l| {
            let mut stopped = stopped.clone();
            let router = metrics::router().with_state(state.clone());
            tokio::spawn(std::future::IntoFuture::into_future(
                axum::serve(l, router).with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }),
            ))
        });
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await?;
        if let Some(task) = metrics {
            task.await??;
        }
        // The queues close when the last state (and its queue handles) goes.
        drop(state);
        let _ = stop_periodic.send(true);
        for w in workers {
            w.finish().await;
        }
        Ok(())
    }
}
