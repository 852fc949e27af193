//! Group commit for events: requests hand their events to one writer, which
//! commits whatever has gathered in one transaction and then answers every
//! request in it. Under load, one commit serves many requests; a request is
//! answered only after its events are durable.
//!
//! Events are moved, never copied: each request's events are appended to
//! the group, the group is moved into the store and handed back, and each
//! request is answered from its own stretch of it.
//!
//! One request's failure is its own: when a group's transaction fails (a
//! value the database refuses, a constraint), the writer writes each request
//! of the group again in a transaction of its own, so the others are stored
//! and only the request at fault gets the error. A group commit is then
//! never worse than one commit per request.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tribute_core::tracking::Event;
use tribute_store::{Store, StoreError};

use super::Worker;

/// Most events one transaction takes.
const MAX_GROUP: usize = 5_000;

/// The ids a request's events were stored under, or its failure.
type Reply = oneshot::Sender<Result<BTreeSet<String>, Arc<StoreError>>>;

#[derive(Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<(Vec<Event>, Reply)>,
}

impl EventWriter {
    /// Start the writer: the handle requests write through, and the worker.
    pub fn spawn(store: Store) -> (Self, Worker) {
        let (tx, mut rx) = mpsc::channel::<(Vec<Event>, Reply)>(1_024);
        let worker = Worker::spawn("event writer", async move {
            let mut pending: Vec<(Vec<Event>, Reply)> = Vec::new();
            while rx.recv_many(&mut pending, 256).await > 0 {
                // Take more requests while the group is small: they share the commit.
                let mut size: usize = pending.iter().map(|(e, _)| e.len()).sum();
                while size < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(item) => {
                            size += item.0.len();
                            pending.push(item);
                        }
                        Err(_) => break,
                    }
                }
                let mut group: Vec<Event> = Vec::with_capacity(size);
                let mut replies: Vec<(usize, Reply)> = Vec::with_capacity(pending.len());
                for (events, reply) in pending.drain(..) {
                    replies.push((events.len(), reply));
                    group.extend(events);
                }
                commit_group(&store, group, replies).await;
            }
        });
        (Self { tx }, worker)
    }

    /// Store events; returns the ids stored (repeats of an external id are not).
    pub async fn write(&self, mut events: Vec<Event>) -> anyhow::Result<BTreeSet<String>> {
        if events.is_empty() {
            return Ok(BTreeSet::new());
        }
        // Properties are free JSON and keep whatever text they carry, except
        // NUL, which PostgreSQL cannot store (see `tribute_core::text`).
        for e in &mut events {
            tribute_core::text::strip_nul(&mut e.properties);
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((events, reply))
            .await
            .map_err(|_| anyhow::anyhow!("event writer stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("event writer stopped"))?
            .map_err(|e| anyhow::Error::new(e).context("storing events"))
    }
}

/// The ids of `events` the store reports inserted (a repeat of an external
/// id is not).
fn stored_of<'a>(
    events: impl Iterator<Item = &'a Event>,
    inserted: &BTreeSet<String>,
) -> BTreeSet<String> {
    events
        .filter(|e| inserted.contains(e.id.as_str()))
        .map(|e| e.id.to_string())
        .collect()
}

/// Write `group` in one transaction and answer each request from its
/// stretch (`replies` holds each request's event count, in order). If that
/// fails and the group holds several requests, write each request alone.
async fn commit_group(store: &Store, group: Vec<Event>, replies: Vec<(usize, Reply)>) {
    let (group, result) = store.write_events(group).await;
    match result {
        Ok(outcome) => {
            let mut events = group.iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(stored_of(events.by_ref().take(n), &outcome.inserted)));
            }
        }
        // One request: its error is its own already.
        Err(e) if replies.len() == 1 => {
            if let Some((_, reply)) = replies.into_iter().next() {
                let _ = reply.send(Err(Arc::new(e)));
            }
        }
        Err(e) => {
            tracing::warn!(
                requests = replies.len(),
                events = group.len(),
                error = ?e,
                "event group commit failed; writing its requests one by one"
            );
            let mut rest = group.into_iter();
            for (n, reply) in replies {
                let (events, result) = store.write_events(rest.by_ref().take(n).collect()).await;
                let answer = result
                    .map(|outcome| stored_of(events.iter(), &outcome.inserted))
                    .map_err(Arc::new);
                let _ = reply.send(answer);
            }
        }
    }
}

/// The isolation of failures, on both backends. The writer is driven
/// directly: on a current-thread runtime, requests sent before the test
/// yields all land in the writer's next group, which an HTTP test cannot
/// arrange reliably.
#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;
    use tribute_core::identity::Identifiers;
    use tribute_core::ids::{EventId, ProgramId};
    use tribute_core::money::Currency;
    use tribute_core::program::{AllowedDomain, Program, ProgramSettings};
    use tribute_core::tracking::EventType;
    use tribute_store::testing::run_on;
    use tribute_store::Backend;

    async fn new_program(store: &Store, name: &str) -> Program {
        let program = Program {
            id: ProgramId::generate(),
            settings: ProgramSettings {
                name: name.into(),
                currency: Currency::parse("EUR").unwrap(),
                allowed_domains: vec![AllowedDomain::parse("acme.test").unwrap()],
                default_model: tribute_core::attribution::ModelKind::LastTouch,
                window_days: 30,
                cookie_days: 90,
                hold_days: 14,
            },
            created_at: Utc::now(),
        };
        store.insert_program(&program).await.unwrap();
        program
    }

    fn page_view(program: &Program, anonymous_id: &str) -> Event {
        let now = Utc::now();
        Event {
            id: EventId::generate_ordered(now.timestamp_millis()),
            program_id: program.id.clone(),
            external_id: None,
            event_type: EventType::PageView,
            name: None,
            ids: Identifiers {
                anonymous_id: Some(anonymous_id.into()),
                ..Identifiers::default()
            },
            click_id: None,
            partner: None,
            claim: tribute_core::identity::Claim::Verified,
            occurred_at: now,
            received_at: now,
            properties: json!({}),
        }
    }

    async fn a_request_the_database_refuses_fails_alone_and_the_rest_of_its_group_commits(
        store: Store,
    ) {
        let first = new_program(&store, "First").await;
        let second = new_program(&store, "Second").await;
        // A value every backend refuses whatever the edge checks: an event id
        // that is already stored (a primary-key violation).
        let stored = page_view(&first, "a0");
        store
            .ingest_events(std::slice::from_ref(&stored))
            .await
            .unwrap();
        let refused = Event {
            id: stored.id.clone(),
            ..page_view(&first, "a1")
        };
        let good = page_view(&second, "b1");
        let also_good = page_view(&second, "b2");

        let (writer, _worker) = EventWriter::spawn(store.clone());
        let (bad, ok, ok_too) = tokio::join!(
            writer.write(vec![refused]),
            writer.write(vec![good.clone()]),
            writer.write(vec![also_good.clone()]),
        );
        assert!(bad.is_err(), "the refused request gets its own error");
        assert_eq!(
            ok.expect("another program's request in the same group commits"),
            [good.id.to_string()].into()
        );
        assert_eq!(
            ok_too.expect("a third request in the same group commits"),
            [also_good.id.to_string()].into()
        );
        assert_eq!(store.count_events(&second.id).await.unwrap(), 2);
        assert_eq!(
            store.count_events(&first.id).await.unwrap(),
            1,
            "the refused event was not stored"
        );

        // The writer keeps working after a failed group.
        let later = page_view(&first, "a2");
        assert_eq!(
            writer.write(vec![later.clone()]).await.unwrap(),
            [later.id.to_string()].into()
        );
    }

    #[tokio::test]
    async fn on_sqlite_a_request_the_database_refuses_fails_alone_and_the_rest_of_its_group_commits(
    ) {
        run_on(
            Backend::Sqlite,
            a_request_the_database_refuses_fails_alone_and_the_rest_of_its_group_commits,
        )
        .await;
    }

    #[tokio::test]
    async fn on_postgres_a_request_the_database_refuses_fails_alone_and_the_rest_of_its_group_commits(
    ) {
        run_on(
            Backend::Postgres,
            a_request_the_database_refuses_fails_alone_and_the_rest_of_its_group_commits,
        )
        .await;
    }
}
