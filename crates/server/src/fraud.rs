//! The server's side of fraud screening: the click rules on the redirect
//! (with this node's sliding-window counts), and each program's statistics
//! for the conversion signals, computed in the background and handed to
//! each recording. The rules are `tribute_core::fraud`'s; the conversion
//! score is decided in the store's recording transaction.
//!
//! Velocity is counted per node: behind a load balancer each node sees its
//! share of a flood, so limits are per node (docs/fraud.md).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use tribute_core::click::{BotDetector, VisitorHasher};
use tribute_core::fraud::clicks::{assess_click, ClickFacts, Velocity};
use tribute_core::fraud::{FraudConfig, Reason, Risk};
use tribute_core::ids::ProgramId;
use tribute_store::{ProgramStats, Store};

/// How long a program's statistics are used before they are computed
/// again (in the background: the stale ones serve meanwhile).
const STATS_TTL: Duration = Duration::from_secs(600);

/// What a node keeps for fraud screening.
#[derive(Default)]
pub struct Screen {
    velocity: Mutex<Velocity>,
    stats: Mutex<HashMap<ProgramId, (Instant, Arc<ProgramStats>)>>,
    refreshing: Mutex<HashSet<ProgramId>>,
}

/// One click as the redirect sees it.
pub struct ClickRequest<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub ip: IpAddr,
    pub user_agent: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub partner_id: &'a str,
    pub link_id: &'a str,
    pub at: DateTime<Utc>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Screen {
    /// A click's reasons and whether it is suspicious (a bot, or reasons
    /// scoring at the program's click threshold). With the click rules off
    /// on this node (`rules: false`) only bots are flagged, and they are
    /// flagged even where the owner gave their rule no weight.
    pub fn screen_click(
        &self,
        c: &ClickRequest<'_>,
        config: &FraudConfig,
        rules: bool,
        bots: &BotDetector,
        hasher: &VisitorHasher,
    ) -> (Vec<Reason>, bool) {
        if !rules {
            return (Vec::new(), bots.is_bot(c.user_agent));
        }
        let reasons = self.assess_click(c, config, bots, hasher);
        let flagged = Risk::flags_click(&reasons, config)
            || (config.weight("bot_user_agent") == 0 && bots.is_bot(c.user_agent));
        (reasons, flagged)
    }

    /// Count a click and run the click rules on it: its reasons (empty
    /// when clean).
    fn assess_click(
        &self,
        c: &ClickRequest<'_>,
        config: &FraudConfig,
        bots: &BotDetector,
        hasher: &VisitorHasher,
    ) -> Vec<Reason> {
        let ip_hash = hasher.ip_key(c.ip);
        let visitor_hash = hasher.visitor_key(c.ip, c.user_agent.unwrap_or(""));
        let counts = self
            .velocity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(ip_hash, c.partner_id, c.link_id, visitor_hash, c.at);
        // Only a query can carry a paid-search click id or a campaign.
        let query: Vec<(String, String)> = c
            .query
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let facts = ClickFacts {
            user_agent: c.user_agent,
            accept_language: header(c.headers, header::ACCEPT_LANGUAGE.as_str()),
            sec_ch_ua: header(c.headers, "sec-ch-ua"),
            referrer: c.referrer,
            destination_query: &query,
            ip_hash,
            visitor_hash,
            partner_id: c.partner_id,
            link_id: c.link_id,
            at: c.at,
        };
        assess_click(&facts, &counts, config, bots)
    }

    /// Forget velocity older than the windows (memory only).
    pub fn prune(&self, now: DateTime<Utc>) {
        self.velocity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .prune(now);
    }

    /// A program's statistics as last computed, starting a computation in
    /// the background when there are none yet or they are older than
    /// [`STATS_TTL`]. Never waits for one.
    pub fn stats(
        self: &Arc<Self>,
        store: &Store,
        program: &ProgramId,
    ) -> Option<Arc<ProgramStats>> {
        let held = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(program)
            .cloned();
        if held
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= STATS_TTL)
        {
            self.refresh(store.clone(), program.clone());
        }
        held.map(|(_, s)| s)
    }

    fn refresh(self: &Arc<Self>, store: Store, program: ProgramId) {
        if !self
            .refreshing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(program.clone())
        {
            return;
        }
        let screen = self.clone();
        tokio::spawn(async move {
            let computed = store.fraud_stats(&program, Utc::now()).await;
            match computed {
                Ok(s) => {
                    screen
                        .stats
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(program.clone(), (Instant::now(), Arc::new(s)));
                }
                Err(e) => tracing::warn!(error = ?e, %program, "fraud statistics failed"),
            }
            screen
                .refreshing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&program);
        });
    }

    /// Prune the velocity counts every minute until `stop` turns true.
    pub fn spawn_pruner(
        self: &Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> crate::workers::Worker {
        let screen = self.clone();
        crate::workers::Worker::spawn("fraud velocity pruner", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => screen.prune(Utc::now()),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    }
}
