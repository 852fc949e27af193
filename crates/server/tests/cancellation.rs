//! Clients that hang up, and storage that fails for a while: neither may
//! leave the server unable to record money.
//!
//! A request future can be dropped at any `.await` (the client went away).
//! These tests drop hundreds of requests at random points, in-process, then
//! show that ordinary writes still succeed at once; and they make storage
//! fail (SQLite: the disk fills up; PostgreSQL: the server kills every
//! connection) and show that the server recovers by itself.

#[macro_use]
mod common;

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tower::ServiceExt;
use tribute_server::{App, ServerConfig};
use tribute_store::testing::{in_ci, TestDb};
use tribute_store::Backend;

use common::shop::shop;
use common::TestApp;

on_both_backends!(requests_dropped_at_random_points_leave_every_later_write_working);

/// Poll `fut` once.
async fn poll_once<F: Future>(mut fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Send `request` to `router` and drop it after a random number of polls,
/// with random pauses between them (the database works meanwhile).
async fn abandon(router: &axum::Router, request: Request<Body>, rng: &mut StdRng) {
    let mut fut = pin!(router.clone().oneshot(request));
    for _ in 0..rng.gen_range(1..40) {
        if poll_once(fut.as_mut()).await.is_ready() {
            return;
        }
        let pause = rng.gen_range(0..400);
        tokio::time::sleep(Duration::from_micros(pause)).await;
    }
}

fn json_post(path: &str, key: &str, body: serde_json::Value) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("a request")
}

async fn requests_dropped_at_random_points_leave_every_later_write_working(app: TestApp) {
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    // A second app on the same store (the same pool): its router is driven
    // in-process, so requests can be dropped between any two polls.
    let inner = App::start(app.store.clone(), ServerConfig::default())
        .await
        .expect("starting an in-process app");
    let router = inner.router();
    let mut rng = StdRng::seed_from_u64(0x7269_6275);
    for i in 0..150 {
        let request = match i % 3 {
            // Conversions: identity stitching, attribution, credits.
            0 | 1 => json_post(
                "/api/v1/conversions",
                &shop.ingest,
                json!({
                    "external_id": format!("hang-up-{i}"), "value": 100 + i, "currency": "EUR",
                    "email": format!("c{i}@example.com"), "click_id": tid,
                }),
            ),
            // Events that link identities (the stitching transaction).
            _ => json_post(
                "/api/v1/events",
                &shop.ingest,
                json!({"type": "lead", "anonymous_id": format!("a{i}"),
                       "email": format!("e{i}@example.com"), "click_id": tid}),
            ),
        };
        abandon(&router, request, &mut rng).await;
    }

    // Every kind of write succeeds at once afterwards.
    let sale = json!({"external_id": "after", "value": 4999, "currency": "EUR", "click_id": tid});
    let recorded = app.post("/conversions", &shop.ingest, &sale).await;
    assert_eq!(
        recorded.ok(201)["value"],
        4999,
        "a conversion after the hang-ups"
    );
    let lead = json!({"type": "lead", "anonymous_id": "later", "email": "later@example.com"});
    app.post("/events", &shop.ingest, &lead).await.ok(202);
    let renamed = app
        .patch(
            &format!("/partners/{}", shop.seed.alice.id),
            &app.admin_key,
            &json!({"name": "Alice A."}),
        )
        .await;
    assert_eq!(renamed.ok(200)["name"], "Alice A.");
    // Conversions whose request was dropped after recording began were
    // still recorded whole: each has its credit, none is half-written.
    let program = tribute_core::ids::ProgramId::parse(&shop.seed.program_id).expect("a program id");
    let mut dropped = 0;
    for i in (0..150).filter(|i| i % 3 != 2) {
        let c = app
            .store
            .conversion_by_keys(&program, Some(&format!("hang-up-{i}")), None)
            .await
            .expect("reading a conversion");
        if let Some(c) = c {
            let credits = app.store.conversion_credits(&c.id).await.expect("credits");
            assert_eq!(credits.len(), 1, "hang-up-{i} was recorded whole");
            dropped += 1;
        }
    }
    eprintln!("{dropped} of 100 abandoned conversions had started recording");
}

/// A small file system of its own (tmpfs), to fill up: needs root.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    /// Write a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("ballast");
        let mut f = std::fs::File::create(&path).expect("creating ballast");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_recovers_by_itself_after_the_disk_was_full() {
    let Some(disk) = SmallDisk::mount(16) else {
        assert!(
            !in_ci(),
            "CI=true but a tmpfs could not be mounted (needs root)"
        );
        eprintln!(
            "SKIPPED: sqlite_recovers_by_itself_after_the_disk_was_full: cannot mount a tmpfs"
        );
        return;
    };
    let db = TestDb::sqlite_at(disk.dir.path().join("tribute.db")).await;
    let mut app = common::start(db.store.clone(), Backend::Sqlite).await;
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    let sale = |n: u32| {
        json!({"external_id": format!("o-{n}"), "value": 1000 + n, "currency": "EUR",
               "email": format!("buyer{n}@example.com"), "click_id": tid})
    };

    let ballast = disk.fill();
    let mut refused = 0;
    for n in 0..20 {
        let r = app.post("/conversions", &shop.ingest, &sale(n)).await;
        if r.status.is_server_error() {
            refused += 1;
        } else {
            assert_eq!(
                r.status, 201,
                "o-{n} either fails or is recorded: {}",
                r.text
            );
        }
    }
    assert!(refused > 0, "a full disk refuses some conversions");

    std::fs::remove_file(ballast).expect("freeing the disk");
    for n in 100..150 {
        let r = app.post("/conversions", &shop.ingest, &sale(n)).await;
        assert_eq!(r.status, 201, "o-{n} after the disk was freed: {}", r.text);
    }
    app.shutdown().await;
    db.destroy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recovers_by_itself_after_its_connections_were_killed() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("SKIPPED: postgres_recovers_by_itself_after_its_connections_were_killed");
        return;
    };
    let mut app = common::start(db.store.clone(), Backend::Postgres).await;
    let shop = shop(&app).await;
    let tid = app.click_link(&shop.alice_code).await;
    for round in 0..3 {
        db.kill_connections().await;
        for n in 0..10 {
            let sale = json!({"external_id": format!("o-{round}-{n}"), "value": 500,
                              "currency": "EUR", "click_id": tid});
            let r = app.post("/conversions", &shop.ingest, &sale).await;
            assert_eq!(r.status, 201, "round {round}, o-{n}: {}", r.text);
        }
    }
    app.shutdown().await;
    db.destroy().await;
}
