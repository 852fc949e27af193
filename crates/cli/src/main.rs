//! `tribute`: the server binary and its admin commands.

#![forbid(unsafe_code)]

/// mimalloc: the redirect and ingestion paths allocate many small strings
/// per request; glibc's malloc showed up at ~8% of the redirect profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod attribute;
mod demo;
mod demo_money;
mod keys;
mod payouts;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroUsize;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tribute_core::webhook::RetryPolicy;
use tribute_server::RateLimits;
use tribute_server::{App, ServerConfig, WebhookSettings};
use tribute_store::Store;

/// Tribute: partner tracking, attribution and commissions.
#[derive(Parser, Debug)]
#[command(name = "tribute", version, about)]
struct Cli {
    /// `sqlite://path` (or a bare path) or `postgres://…`.
    #[arg(
        long,
        env = "TRIBUTE_DATABASE_URL",
        default_value = "sqlite://tribute.db",
        global = true
    )]
    database_url: String,

    /// Runtime worker threads (default: one per core), e.g. to leave a core
    /// to a database or a proxy on the same machine.
    #[arg(long, env = "TRIBUTE_WORKER_THREADS", global = true)]
    worker_threads: Option<NonZeroUsize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TRIBUTE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Public base URL used in short links (default: http://<listen>).
    #[arg(long, env = "TRIBUTE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Take client addresses from X-Forwarded-For (only behind your own proxy).
    #[arg(long, env = "TRIBUTE_TRUST_PROXY")]
    trust_proxy: bool,
    /// Serve /metrics on this address only, without a key (otherwise it is
    /// served on --listen to admin keys).
    #[arg(long, env = "TRIBUTE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Ingestion requests per second per client address (burst: twice that; 0 = off).
    #[arg(long, env = "TRIBUTE_RATE_LIMIT_IP", default_value_t = RateLimits::default().ingest_per_ip)]
    rate_limit_ip: u32,
    /// Ingestion requests per second per key (burst: twice that; 0 = off).
    #[arg(long, env = "TRIBUTE_RATE_LIMIT_KEY", default_value_t = RateLimits::default().ingest_per_key)]
    rate_limit_key: u32,
    /// Redirects per second per client address (burst: twice that; 0 = off, the default).
    #[arg(long, env = "TRIBUTE_REDIRECT_RATE_LIMIT_IP", default_value_t = 0)]
    redirect_rate_limit_ip: u32,
    /// Let webhooks reach private, loopback and link-local addresses (tests,
    /// closed networks); refused by default (SSRF).
    #[arg(long, env = "TRIBUTE_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Multiply every webhook retry delay and the 5-day disabling period by
    /// this (e.g. 0.001 in tests; 1 in production).
    #[arg(long, env = "TRIBUTE_WEBHOOK_RETRY_SCALE", default_value_t = 1.0, value_parser = retry_scale)]
    webhook_retry_scale: f64,
    /// Send webhooks from this node (`false`: only enqueue them, and let
    /// other nodes sharing the database send).
    #[arg(long, env = "TRIBUTE_WEBHOOK_SENDER", default_value_t = true, action = clap::ArgAction::Set)]
    webhook_sender: bool,
    /// Days to keep delivered and failed webhook messages and inbound
    /// delivery bodies (personal data in providers' payloads goes with them).
    #[arg(long, env = "TRIBUTE_WEBHOOK_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    webhook_retention_days: u64,
    /// Run the fraud click rules (implausible browsers, velocity, duplicate
    /// clicks, paid-search ids, banned referrers) on every redirect;
    /// `false`: only bots are flagged.
    #[arg(long, env = "TRIBUTE_FRAUD_CLICK_RULES", default_value_t = true, action = clap::ArgAction::Set)]
    fraud_click_rules: bool,
}

/// A retry scale: a positive number no larger than 1.
fn retry_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("`{s}` must be a number above 0 and at most 1")),
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (migrating first).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    Key {
        #[command(subcommand)]
        command: keys::KeyCommand,
    },
    /// Seed a demo program with partners, links and traffic, then serve it.
    Demo(ServeArgs),
    /// Attribute conversions offline from a path file (CSV) under each model.
    Attribute(attribute::AttributeArgs),
    /// Payout batches: make one, export its files, mark it paid.
    Payouts {
        #[command(subcommand)]
        command: payouts::PayoutCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTE_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour_logs())
        .init();
    if let Command::Attribute(args) = &cli.command {
        // Pure computation: no runtime, no database.
        return attribute::run(args);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.worker_threads {
        runtime.worker_threads(n.get());
    }
    runtime.enable_all().build()?.block_on(run(cli))
}

/// Colours only for a person at a terminal: logs piped to a file or a log
/// collector would otherwise carry escape codes. Logs go to standard error,
/// so that is the stream asked; `NO_COLOR` (no-color.org) turns them off too.
fn colour_logs() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let listener = bind(&args).await?;
            let store = open(&cli.database_url).await?;
            serve(store, listener, &args).await
        }
        Command::Migrate => {
            let store = Store::connect(&cli.database_url)
                .await
                .with_context(|| format!("opening {}", redact(&cli.database_url)))?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Key { command } => {
            // Bad arguments must not leave a database behind.
            let plan = command.check()?;
            let store = open(&cli.database_url).await?;
            keys::run(&store, plan).await
        }
        Command::Payouts { command } => {
            // Bad arguments must not leave a database behind.
            let plan = command.check()?;
            let store = open(&cli.database_url).await?;
            payouts::run(&store, plan).await
        }
        Command::Demo(args) => {
            // Bind first: a demo that cannot serve must not seed a database
            // and print URLs that lead nowhere.
            let listener = bind(&args).await?;
            let store = open(&cli.database_url).await?;
            let public_url = public_url(&args, &listener);
            demo::seed_and_print(&store, &public_url, &database_name(&cli.database_url)).await?;
            serve(store, listener, &args).await
        }
        Command::Attribute(_) => unreachable!("handled before the runtime starts"),
    }
}

async fn open(url: &str) -> anyhow::Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("opening and migrating {}", redact(url)))
}

/// The database URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// What to call the database in messages: the SQLite file as given, or the
/// PostgreSQL URL without its password.
fn database_name(url: &str) -> String {
    match tribute_store::Backend::of_url(url) {
        tribute_store::Backend::Sqlite => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            let path = path.split('?').next().unwrap_or(path);
            if path.contains('/') {
                path.to_owned()
            } else {
                format!("./{path}")
            }
        }
        tribute_store::Backend::Postgres => redact(url),
    }
}

/// The public URL, or else the address actually bound (port 0 picks one).
fn public_url(args: &ServeArgs, listener: &TcpListener) -> String {
    let addr = listener.local_addr().unwrap_or(args.listen);
    args.public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
}

/// Take the listen address, or say why not and what to do about it.
async fn bind(args: &ServeArgs) -> anyhow::Result<TcpListener> {
    TcpListener::bind(args.listen).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                let mut other = args.listen;
                other.set_port(args.listen.port().wrapping_add(1).max(1));
                format!(
                    "another program is listening there; pick a free address with \
                     `--listen {other}` (or TRIBUTE_LISTEN)"
                )
            }
            _ => "pick another address with `--listen HOST:PORT` (or TRIBUTE_LISTEN)".to_owned(),
        };
        anyhow::anyhow!("cannot listen on {}: {e}; {hint}", args.listen)
    })
}

async fn serve(store: Store, listener: TcpListener, args: &ServeArgs) -> anyhow::Result<()> {
    // A database that cannot take writes (read-only file, mount or server)
    // would fail every click and conversion: refuse to start instead.
    let problems = store.readiness().await;
    if !problems.is_empty() {
        anyhow::bail!("the database is not ready: {}", problems.join("; "));
    }
    let config = ServerConfig {
        public_url: public_url(args, &listener),
        trust_proxy: args.trust_proxy,
        limits: RateLimits {
            ingest_per_ip: args.rate_limit_ip,
            ingest_per_key: args.rate_limit_key,
            redirect_per_ip: args.redirect_rate_limit_ip,
        },
        metrics_separate: args.metrics_listen.is_some(),
        click_rules: args.fraud_click_rules,
        webhooks: WebhookSettings {
            allow_private: args.webhooks_allow_private,
            retry: RetryPolicy {
                scale: args.webhook_retry_scale,
            },
            send: args.webhook_sender,
            retention: std::time::Duration::from_secs(args.webhook_retention_days * 24 * 3600),
            ..WebhookSettings::default()
        },
        ..ServerConfig::default()
    };
    let listen = listener.local_addr()?;
    let backend = store.backend();
    let mut app = App::start(store, config).await?;
    if let Some(addr) = args.metrics_listen {
        let metrics = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr} for metrics"))?;
        app = app.with_metrics_listener(metrics);
        tracing::info!(listen = %addr, "serving /metrics");
    }
    tracing::info!(%listen, backend = ?backend, "serving");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped; queued clicks flushed");
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish requests, flush the click queue.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn database_passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://tribute:s3cret@db:5432/tribute"),
            "postgres://tribute:***@db:5432/tribute"
        );
        assert_eq!(redact("sqlite://tribute.db"), "sqlite://tribute.db");
    }
}
