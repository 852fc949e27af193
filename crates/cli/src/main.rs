//! `tribute`: the server binary and its admin commands.

#![forbid(unsafe_code)]

/// mimalloc: the redirect and ingestion paths allocate many small strings
/// per request; glibc's malloc showed up at ~8% of the redirect profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod attribute;
mod demo;
mod keys;

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tribute_server::{App, ServerConfig};
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTE_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Command::Attribute(args) = &cli.command {
        // Pure computation: no runtime, no database.
        return attribute::run(args);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // Default: one worker per core. TRIBUTE_WORKER_THREADS overrides it
    // (e.g. to leave a core to a database or a proxy on the same machine).
    if let Some(n) = std::env::var("TRIBUTE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        runtime.worker_threads(n.max(1));
    }
    runtime.enable_all().build()?.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let store = open(&cli.database_url).await?;
            serve(store, &args).await
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
        Command::Demo(args) => {
            let store = open(&cli.database_url).await?;
            let public_url = public_url(&args);
            demo::seed_and_print(&store, &public_url).await?;
            serve(store, &args).await
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

fn public_url(args: &ServeArgs) -> String {
    args.public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen))
}

async fn serve(store: Store, args: &ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        public_url: public_url(args),
        trust_proxy: args.trust_proxy,
        ..ServerConfig::default()
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, backend = ?store.backend(), "serving");
    let app = App::start(store, config).await?;
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
