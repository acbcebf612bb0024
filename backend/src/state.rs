use std::{sync::Arc, time::Duration};

use anyhow::Context;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{
        jwt::JwtKeys,
        rate_limit::{KeyedLimiter, Limiters, LoginBackoff, spawn_cleanup},
    },
    chat::agent::CircuitBreaker,
    config::Config,
    db,
    events::{self, EventPublisher, Notifications},
    files::storage::Storage,
    gate::WorkGate,
    pages::views::ViewCounter,
};

/// Everything a handler may need, cloned cheaply into every request.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub db: DatabaseConnection,
    /// Present when `REDIS_URL` is set; reconnects by itself after Redis restarts.
    pub redis: Option<crate::redis_conn::Redis>,
    pub jwt: Arc<JwtKeys>,
    pub limiters: Arc<Limiters>,
    /// Domain events (`rsvp.received`, ...) for notification streams.
    pub events: Arc<dyn EventPublisher>,
    /// This instance's SSE streams, replay buffer, tickets and server id.
    pub notifications: Arc<Notifications>,
    /// Public page views, counted in memory and written in batches.
    pub views: Arc<ViewCounter>,
    /// Outbound HTTP (agent-manager, PortOne), with connection pooling.
    pub http: reqwest::Client,
    /// Uploaded files' bytes: S3 or a local directory (`STORAGE_BACKEND`).
    pub storage: Arc<dyn Storage>,
    /// Password hashing/verification (argon2id, 19 MiB each): bounded concurrency.
    pub argon2: Arc<WorkGate>,
    /// Image decodes of uploads: bounded concurrency.
    pub decodes: Arc<WorkGate>,
    /// The agent hand-off circuit breaker (used by the chat runtime; read by
    /// readiness and `/metrics`).
    pub agent_breaker: Arc<CircuitBreaker>,
    /// Cancelled on SIGTERM/Ctrl-C; every background loop watches it.
    pub shutdown: CancellationToken,
}

/// Connects to every configured dependency and runs migrations when enabled.
pub async fn build_state(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<AppState> {
    crate::metrics::install();
    let db = db::connect(&cfg)
        .await
        .context("connecting to the database")?;
    if cfg.run_migrations {
        db::migrate(&db).await.context("running migrations")?;
        crate::payments::duplicates::hold_duplicate_paid_orders(&db, None)
            .await
            .context("holding duplicate paid orders")?;
    }
    crate::redis_conn::set_cluster_mode(cfg.redis_cluster);
    let redis = match &cfg.redis_url {
        None => None,
        Some(url) => Some(
            crate::redis_conn::Redis::connect(url.expose_secret(), cfg.redis_cluster)
                .await
                .context("connecting to Redis")?,
        ),
    };
    // Redis fan-out when REDIS_URL is set, in-process otherwise.
    let (events, notifications) = events::build(&cfg, redis.clone(), &shutdown)?;
    let limiters = Arc::new(Limiters {
        login_backoff: LoginBackoff::new(cfg.login_free_failures, cfg.login_backoff_max),
        login_ip: KeyedLimiter::per_minute(cfg.login_rate_per_ip),
        public_read: KeyedLimiter::per_minute(cfg.public_read_rate_per_ip),
        public_write: KeyedLimiter::per_minute(cfg.public_write_rate_per_ip),
        editor_invites: KeyedLimiter::per_hour(cfg.editor_invites_per_hour),
        public_write_page: KeyedLimiter::per_minute(cfg.public_write_rate_per_ip_page),
        public_write_invitation: KeyedLimiter::per_minute(cfg.public_write_rate_per_invitation),
        guestbook_delete_entry: KeyedLimiter::per_minute(cfg.guestbook_delete_rate_per_entry),
    });
    spawn_cleanup(&limiters, shutdown.clone());
    let views = Arc::new(ViewCounter::default());
    views.spawn_flusher(db.clone(), cfg.view_flush_interval, shutdown.clone());
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
        .build()
        .context("building the HTTP client")?;
    let storage = crate::files::storage::build(&cfg)
        .await
        .context("setting up file storage")?;
    crate::files::sweeper::spawn(db.clone(), storage.clone(), &cfg.files, shutdown.clone());
    let state = AppState {
        argon2: WorkGate::new("password checks", cfg.argon2_concurrency, cfg.argon2_queue),
        decodes: WorkGate::new(
            "image decoding",
            cfg.files.decode_concurrency,
            cfg.files.decode_queue,
        ),
        storage,
        agent_breaker: Arc::new(CircuitBreaker::new(
            cfg.chat.breaker_threshold,
            cfg.chat.breaker_cooldown,
        )),
        jwt: Arc::new(JwtKeys::new(&cfg)),
        cfg: Arc::new(cfg),
        db,
        redis,
        limiters,
        events,
        notifications,
        views,
        http,
        shutdown,
    };
    // Pictures stored before their sizes existed get them in the background.
    crate::files::renditions::spawn(state.clone());
    Ok(state)
}
