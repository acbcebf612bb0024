use std::io::BufRead;

use anyhow::Context;
use backend::{Config, auth, build_state, cancel_on_signal, db, run, telemetry};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "backend", about = "Mocheong backend", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an admin account, or give an existing account the admin role.
    /// The password is read from ADMIN_PASSWORD or, failing that, from the first line of stdin.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Admin")]
        name: String,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when this machine's instance (the port of BIND_ADDR) answers
    /// `/health/ready` with 200: the container health check, the image has no curl.
    Healthcheck,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    return_large_buffers_to_the_system();
    let cli = Cli::parse();
    let cfg = Config::from_env()?;
    telemetry::init(cfg.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            log_summary(&cfg);
            let shutdown = CancellationToken::new();
            cancel_on_signal(shutdown.clone());
            let listener = TcpListener::bind(cfg.bind_addr)
                .await
                .with_context(|| format!("binding {}", cfg.bind_addr))?;
            let state = build_state(cfg, shutdown).await?;
            tracing::info!(addr = %listener.local_addr()?, database = state.cfg.database_kind(), "listening");
            run(state, listener).await?;
            tracing::info!("stopped");
        }
        Command::Migrate => {
            let conn = db::connect(&cfg).await?;
            db::migrate(&conn).await?;
            let held =
                backend::payments::duplicates::hold_duplicate_paid_orders(&conn, None).await?;
            println!(
                "migrations applied ({}); {} duplicate paid order(s) held for review",
                cfg.database_kind(),
                held.len()
            );
        }
        Command::CreateAdmin { email, name } => {
            let password = match std::env::var("ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let conn = db::connect(&cfg).await?;
            db::migrate(&conn).await?;
            let created = auth::create_or_promote_admin(&conn, &email, &name, &password).await?;
            println!(
                "{} {email} as admin",
                if created { "created" } else { "promoted" }
            );
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&backend::openapi())?);
        }
        Command::Healthcheck => {
            let url = format!("http://127.0.0.1:{}/health/ready", cfg.bind_addr.port());
            let res = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(4))
                .build()?
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            anyhow::ensure!(res.status().is_success(), "{url} answered {}", res.status());
        }
    }
    Ok(())
}

/// One short line of what this instance runs with; the whole (redacted) configuration
/// at DEBUG.
fn log_summary(cfg: &Config) {
    tracing::info!(
        environment = ?cfg.environment,
        database = cfg.database_kind(),
        redis = cfg.redis_url.is_some(),
        agent_manager = cfg.agent_manager_url.as_deref().unwrap_or("off"),
        storage = ?cfg.files.backend,
        payments = cfg.portone.is_some(),
        metrics = cfg.metrics_token.is_some(),
        server_id = %cfg.server_id,
        // From TOKIO_WORKER_THREADS, else the cores this process may use (a container's
        // CPU limit counts): docs/operations.md "Scale out".
        runtime_workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "starting"
    );
    tracing::debug!(config = ?cfg, "configuration");
}

/// glibc raises its mmap threshold after the first large free, after which argon2's
/// 19 MiB password-hashing buffers come from per-thread arenas and are kept: a few
/// logins leave the process ~200 MiB bigger for good. A fixed 128 KiB threshold keeps
/// every large buffer in its own mapping, returned on free (measured: ~230 → 29.5 MiB
/// after 100 registrations, see docs/benchmarks.md). `MALLOC_MMAP_THRESHOLD_` in the
/// environment still wins.
#[allow(unsafe_code)]
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}
