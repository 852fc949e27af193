//! Conversions recorded through the API, with attribution, commissions and
//! ledger postings, per second, on SQLite and PostgreSQL.
//!
//! `cargo bench -p tribute-server --bench conversions` starts the real
//! server in-process on a fresh database (a SQLite file; a new PostgreSQL
//! database on the test server), seeds a program with 20 partners (some in
//! two-level teams, override levels 10% and 5%), a program-wide 10% rule and
//! a 15% rule for the `agencies` group, a link per partner and one click per
//! conversion. Then `CLIENTS` tasks POST `/api/v1/conversions` over
//! keep-alive HTTP with a secret ingest key, each conversion with a unique
//! `external_id` and a `click_id` (so each is attributed and earns a
//! commission and its overrides); one in four is a subscription's later
//! payment (same `customer_id` and click as its first).
//!
//! Only a 201 counts. Afterwards everything is checked from the store: one
//! conversion per acknowledgement, each with its commission and exactly the
//! overrides its partner's team chain gives, every ledger entry balanced
//! (read back through `StoredEntry::journal_entry`), the stored balances
//! equal to a replay of the entries, and the program's accounts summing to
//! zero. Any failure fails the run.
//!
//! Sizes from the environment: `CONVERSIONS_SQLITE` (20,000),
//! `CONVERSIONS_POSTGRES` (10,000), `CONVERSIONS_CLIENTS` (32),
//! `CONVERSIONS_BACKENDS` (`sqlite,postgres`). Without a PostgreSQL server
//! that half is SKIPPED, unless `CI` is set (then it fails). With
//! `RUST_LOG=sqlx::query=debug` every statement is logged with its time
//! (what the per-conversion query counts in docs/benchmarks.md come from).
//!
//! Besides the rate and latencies it prints the process's CPU time per
//! conversion (server and clients): on a shared machine the rate follows
//! the other load, the CPU cost much less.
//!
//! Webhooks: `CONVERSIONS_WEBHOOKS` (`off,enqueue,on`) runs each backend
//! without an endpoint (`off`), then with one subscribed to every event (a
//! receiver in the process answering 204), so every conversion also
//! enqueues its `conversion.created`, `commission.created` and override
//! messages in its transaction. `enqueue` drives with the sender off (the
//! cost of enqueueing alone), then starts a server with nothing else to do
//! and times the outbox draining: messages delivered per second. `on`
//! drives with the sender delivering at the same time (and the receiver
//! sharing the machine). Each rate is printed against `off`'s, measured in
//! the same run (`CONVERSIONS_ROUNDS` alternations, 1).
//!
//! Fraud: `CONVERSIONS_FRAUD` (`on`) scores every conversion with the
//! program's default fraud settings; `off,on` also runs each variant with
//! fraud turned off for the program, and prints on's rate against off's.

mod outbox;
mod seed;
mod verify;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tribute_server::{App, RateLimits, ServerConfig, WebhookSettings};
use tribute_store::testing::TestDb;
use tribute_store::Backend;

use seed::{conversion, seed, Seed};
use verify::verify;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}"))
        })
        .unwrap_or(default)
}

/// What the clients saw.
#[derive(Default)]
struct Driven {
    /// Acknowledged conversion id → the partner index it should credit.
    acknowledged: HashMap<String, usize>,
    latencies: Vec<Duration>,
    failures: Vec<String>,
    elapsed: Duration,
}

async fn drive(address: String, seed: Arc<Seed>, n: usize, clients: usize) -> Driven {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("an HTTP client");
    let url = format!("{address}/api/v1/conversions");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, url, next, seed) = (client.clone(), url.clone(), next.clone(), seed.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Driven::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let (body, click) = conversion(&seed, i);
                let sent = Instant::now();
                let reply = client
                    .post(&url)
                    .bearer_auth(&seed.key)
                    .json(&body)
                    .send()
                    .await;
                let reply = match reply {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                let took = sent.elapsed();
                let parsed: Value = serde_json::from_str(&reply.1).unwrap_or(Value::Null);
                match (reply.0, parsed["id"].as_str()) {
                    (201, Some(id)) => {
                        out.latencies.push(took);
                        out.acknowledged.insert(id.to_owned(), seed.clicks[click].1);
                    }
                    (status, _) => out.failures.push(format!(
                        "conversion {i}: {status} {}",
                        reply.1.chars().take(300).collect::<String>()
                    )),
                }
            }
        }));
    }
    let mut all = Driven::default();
    for t in tasks {
        let d = t.await.expect("a client task");
        all.acknowledged.extend(d.acknowledged);
        all.latencies.extend(d.latencies);
        all.failures.extend(d.failures);
    }
    all.elapsed = start.elapsed();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Whether and how webhooks run beside the conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hooks {
    /// No endpoint: nothing is enqueued.
    Off,
    /// An endpoint; the sender off while driving, then timed alone.
    Enqueue,
    /// An endpoint and the sender delivering while driving.
    On,
}

type Served = tokio::task::JoinHandle<anyhow::Result<()>>;

/// Start Tribute on `db` with `config`; its address, stop and task.
fn serve(
    server_rt: &Runtime,
    db: &TestDb,
    config: ServerConfig,
) -> (String, oneshot::Sender<()>, Served) {
    server_rt.block_on(async {
        let app = App::start(db.store.clone(), config).await.expect("app");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        (address, stop, served)
    })
}

/// One backend: seed, serve, drive, stop, check, report; the rate, if run.
fn run(
    server_rt: &Runtime,
    client_rt: &Runtime,
    backend: Backend,
    n: usize,
    clients: usize,
    hooks: Hooks,
    fraud: bool,
) -> Option<f64> {
    let name = format!(
        "{backend:?}, webhooks {hooks:?}, fraud {}",
        if fraud { "on" } else { "off" }
    )
    .to_lowercase();
    let Some(db) = server_rt.block_on(TestDb::of(backend)) else {
        println!("conversions {name}: SKIPPED (no PostgreSQL server; set CI=true to fail instead)");
        return None;
    };
    let seeded = Instant::now();
    let seed = Arc::new(server_rt.block_on(seed(&db.store, n)));
    let seed_secs = seeded.elapsed().as_secs_f64();
    if !fraud {
        let off = tribute_core::fraud::FraudConfig {
            enabled: false,
            ..Default::default()
        };
        server_rt
            .block_on(
                db.store
                    .set_fraud_config(&seed.program.id, &off, chrono::Utc::now()),
            )
            .expect("fraud off");
    }
    let received = (hooks != Hooks::Off).then(|| {
        let (url, got) = client_rt.block_on(outbox::receiver());
        server_rt.block_on(outbox::subscribe(&db.store, &seed, &url));
        got
    });
    let config = ServerConfig {
        webhooks: WebhookSettings {
            allow_private: true,
            send: hooks == Hooks::On,
            ..WebhookSettings::default()
        },
        // Measuring the server, not the limiter: the owner's backend is
        // one address and one key.
        limits: RateLimits {
            ingest_per_ip: 0,
            ingest_per_key: 0,
            redirect_per_ip: 0,
        },
        ..Default::default()
    };
    let (address, stop, served) = serve(server_rt, &db, config.clone());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpu_before = process_cpu_secs();
    let started = Instant::now();
    let mut driven = client_rt.block_on(drive(address, seed.clone(), n, clients));
    let cpu = process_cpu_secs()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    // `on`: the outbox drains while the clients drive, timed from their
    // start; `enqueue`: a server with nothing else to do drains it after.
    let mut outbox = (hooks == Hooks::On).then(|| {
        let (delivered, last) =
            server_rt.block_on(outbox::drained(&db.store, Duration::from_secs(300)));
        (delivered, (last - started).as_secs_f64())
    });
    let _ = stop.send(());
    server_rt
        .block_on(served)
        .expect("server task")
        .expect("server stops cleanly");
    if hooks == Hooks::Enqueue {
        let mut sending = config.clone();
        sending.webhooks.send = true;
        let start = Instant::now();
        let (_, stop, served) = serve(server_rt, &db, sending);
        let (delivered, last) =
            server_rt.block_on(outbox::drained(&db.store, Duration::from_secs(300)));
        outbox = Some((delivered, (last - start).as_secs_f64()));
        let _ = stop.send(());
        server_rt
            .block_on(served)
            .expect("server task")
            .expect("server stops cleanly");
    }
    let outbox = outbox
        .zip(received.as_ref())
        .map(|((delivered, secs), got)| (delivered, got.load(Ordering::Relaxed), secs));
    driven.latencies.sort_unstable();
    let ok = driven.acknowledged.len();
    let secs = driven.elapsed.as_secs_f64();
    // Printed before the checks, so a run that fails them still shows its rate.
    println!(
        "conversions {name}: {ok} of {n} acknowledged in {secs:.2} s = {:.0} conversions/s \
         ({clients} clients; p50 {:.1} ms, p99 {:.1} ms; process CPU {} per conversion; \
         load average {})",
        ok as f64 / secs,
        percentile(&driven.latencies, 0.50),
        percentile(&driven.latencies, 0.99),
        cpu.map_or("unknown".to_owned(), |c| format!(
            "{:.2} ms",
            c * 1000.0 / ok.max(1) as f64
        )),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    if let Some((delivered, requests, secs)) = outbox {
        println!(
            "conversions {name}: outbox delivered {delivered} messages ({requests} requests \
             received) in {secs:.2} s ({}) = {:.0} messages/s",
            if hooks == Hooks::On {
                "from the drive's start, while driving"
            } else {
                "draining alone after the drive"
            },
            delivered as f64 / secs
        );
    }
    if !driven.failures.is_empty() {
        for f in driven.failures.iter().take(10) {
            eprintln!("  {f}");
        }
        server_rt.block_on(db.destroy());
        panic!(
            "conversions {name}: {} requests were not acknowledged",
            driven.failures.len()
        );
    }
    let checked = server_rt.block_on(verify(&db.store, &seed, &driven));
    server_rt.block_on(db.destroy());
    println!(
        "conversions {name}: checked {ok} conversions, {} commissions + {} overrides, \
         {} ledger entries balanced, accounts sum to 0 (seeded {n} clicks in {seed_secs:.1} s)",
        checked.commissions, checked.overrides, checked.entries,
    );
    Some(ok as f64 / secs)
}

/// CPU time (user + system) this process has used, in seconds: the server
/// and the in-process clients together. Linux only (`/proc`).
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports in USER_HZ, 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let clients = env_usize("CONVERSIONS_CLIENTS", 32).max(1);
    let backends =
        std::env::var("CONVERSIONS_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    // The server gets the runtime it would have alone (a worker per core);
    // the clients run on their own, as a separate process would.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("server")
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("client")
        .build()
        .expect("client runtime");
    let hooks = std::env::var("CONVERSIONS_WEBHOOKS").unwrap_or_else(|_| "off,enqueue,on".into());
    let hooks: Vec<Hooks> = hooks
        .split(',')
        .map(|h| match h.trim() {
            "off" => Hooks::Off,
            "enqueue" => Hooks::Enqueue,
            "on" => Hooks::On,
            other => panic!("CONVERSIONS_WEBHOOKS: {other:?} is not off, enqueue or on"),
        })
        .collect();
    let frauds: Vec<bool> = std::env::var("CONVERSIONS_FRAUD")
        .unwrap_or_else(|_| "on".into())
        .split(',')
        .map(|f| match f.trim() {
            "on" => true,
            "off" => false,
            other => panic!("CONVERSIONS_FRAUD: {other:?} is not off or on"),
        })
        .collect();
    let rounds = env_usize("CONVERSIONS_ROUNDS", 1).max(1);
    for backend in backends.split(',').map(str::trim) {
        let (backend, n) = match backend {
            "sqlite" => (Backend::Sqlite, env_usize("CONVERSIONS_SQLITE", 20_000)),
            "postgres" => (Backend::Postgres, env_usize("CONVERSIONS_POSTGRES", 10_000)),
            other => panic!("CONVERSIONS_BACKENDS: unknown backend {other:?} (sqlite, postgres)"),
        };
        let mut rates: HashMap<&'static str, Vec<f64>> = HashMap::new();
        let mut by_fraud: HashMap<bool, Vec<f64>> = HashMap::new();
        for _ in 0..rounds {
            for &fraud in &frauds {
                for &h in &hooks {
                    let Some(rate) = run(&server_rt, &client_rt, backend, n, clients, h, fraud)
                    else {
                        continue;
                    };
                    by_fraud.entry(fraud).or_default().push(rate);
                    if fraud != frauds[frauds.len() - 1] {
                        continue;
                    }
                    let key = match h {
                        Hooks::Off => "off",
                        Hooks::Enqueue => "enqueue",
                        Hooks::On => "on",
                    };
                    rates.entry(key).or_default().push(rate);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        if let (Some(on), Some(off)) = (by_fraud.get(&true), by_fraud.get(&false)) {
            println!(
                "conversions {backend:?}: fraud on / off = {:.3} ({:.0} / {:.0} conversions/s, \
                 mean of {} rounds)",
                mean(on) / mean(off),
                mean(on),
                mean(off),
                on.len()
            );
        }
        if let Some(off) = rates.get("off") {
            for key in ["enqueue", "on"] {
                if let Some(with) = rates.get(key) {
                    println!(
                        "conversions {backend:?}: webhooks {key} / off = {:.3} \
                         ({:.0} / {:.0} conversions/s, mean of {} rounds)",
                        mean(with) / mean(off),
                        mean(with),
                        mean(off),
                        with.len()
                    );
                }
            }
        }
    }
}
