//! Typed configuration, read from the environment (and `.env`) and validated once at
//! start-up. Every variable is documented in `.env.example`.

use std::{collections::HashMap, fmt, net::SocketAddr, path::PathBuf, time::Duration};

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// Where the process runs. Production refuses unsafe defaults (a generated JWT secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone)]
pub struct Config {
    pub environment: Environment,
    pub bind_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: SecretString,
    pub db_max_connections: u32,
    pub run_migrations: bool,
    pub jwt_secret: SecretString,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long after a rotation the rotated refresh token still answers with its
    /// successor (concurrent tabs) instead of counting as reuse; 0 turns it off.
    pub refresh_reuse_grace: Duration,
    /// Login attempts allowed per minute per client IP.
    pub login_rate_per_ip: u32,
    /// Failed logins per account and IP before the exponential back-off starts, and
    /// its longest wait.
    pub login_free_failures: u32,
    pub login_backoff_max: Duration,
    /// Editor invitations a page owner may send per hour.
    pub editor_invites_per_hour: u32,
    /// How long an editor invitation can be accepted.
    pub editor_invitation_ttl: Duration,
    /// Argon2 checks run at once, and how many more may wait (then 503).
    pub argon2_concurrency: usize,
    pub argon2_queue: usize,
    /// Public reads / writes allowed per minute per client IP.
    pub public_read_rate_per_ip: u32,
    pub public_write_rate_per_ip: u32,
    /// Public writes per minute per client IP on one page (a venue's guests share an
    /// address), per invitation code, and guestbook deletions per entry.
    pub public_write_rate_per_ip_page: u32,
    pub public_write_rate_per_invitation: u32,
    pub guestbook_delete_rate_per_entry: u32,
    /// Origin of the guests' web app, for share previews and calendar links
    /// (`<origin>/p/<slug>`); empty makes those links root-relative.
    pub public_web_base_url: String,
    /// How often batched public page views are written to the database.
    pub view_flush_interval: Duration,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    pub redis_url: Option<SecretString>,
    /// `REDIS_MODE=cluster`: `REDIS_URL` lists seed nodes of a Redis Cluster
    /// (comma-separated); chat channels are sharded and session keys hash-tagged.
    pub redis_cluster: bool,
    pub agent_manager_url: Option<String>,
    pub chat: ChatConfig,
    pub cors_origins: Vec<String>,
    /// Bearer token for `GET /metrics`; the route is off (404) without one.
    pub metrics_token: Option<SecretString>,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
    /// Connection admission of the HTTP server (slowloris limits).
    pub server: ServerConfig,
    /// Uploads: storage backend, size limits, quotas (see docs/files.md).
    pub files: FilesConfig,
    /// PortOne V2; `None` when `PORTONE_API_SECRET` is unset (payment routes answer 503).
    pub portone: Option<PortOneConfig>,
    /// Price of the premium plan (KRW); the server's own price table.
    pub price_premium: i64,
    /// Days after payment during which the owner may ask for a refund.
    pub refund_window_days: i64,
    /// This instance's name in the notification fan-out and the admin status:
    /// `SERVER_ID` (default `backend`) plus a random suffix, so it is always unique.
    pub server_id: String,
    /// Interval of the SSE keep-alive comment.
    pub sse_keepalive: Duration,
    /// Lifetime of a single-use `?ticket=` for the SSE stream.
    pub sse_ticket_ttl: Duration,
    /// How many recent events per user are kept for `Last-Event-ID` replay, and how long.
    pub sse_replay_max: usize,
    pub sse_replay_ttl: Duration,
}

/// Admission limits of the HTTP server (`HTTP_*` variables, docs/operations.md).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Time a client has to send a complete request head (HTTP/1), also while a
    /// kept-alive connection waits for its next request.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections in total; lowered at start-up to fit the descriptor limit.
    pub max_connections: usize,
    /// Open connections per client IP (the TCP peer); 0 turns the cap off. Default
    /// 256, or 0 with `TRUST_PROXY=true` (the peer is then the proxy).
    pub max_connections_per_ip: usize,
}

/// Where uploaded files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageBackend {
    /// A directory on this machine (the embedded default).
    Local,
    S3,
}

#[derive(Clone)]
pub struct FilesConfig {
    pub backend: StorageBackend,
    /// Root of the local store (`STORAGE_BACKEND=local`).
    pub local_dir: PathBuf,
    pub s3_bucket: String,
    pub s3_region: String,
    /// For S3-compatible servers (MinIO, ...); AWS when absent.
    pub s3_endpoint: Option<String>,
    pub s3_force_path_style: bool,
    /// Static credentials; the AWS default chain (env, profile, IMDS) when absent.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<SecretString>,
    /// Create the bucket at start-up when it is missing (development, tests).
    pub s3_create_bucket: bool,
    /// Largest file accepted per purpose, in bytes.
    pub max_gallery_bytes: u64,
    pub max_cover_bytes: u64,
    pub max_attachment_bytes: u64,
    /// Total bytes a user may store, by plan.
    pub quota_free_bytes: u64,
    pub quota_premium_bytes: u64,
    /// Lifetime of download and direct-upload URLs.
    pub url_ttl: Duration,
    /// Prefix of the links the backend serves itself (local storage), e.g.
    /// `https://api.mocheong.kr`; empty gives root-relative links.
    pub public_base_url: String,
    /// Image decodes run at once, and how many more may wait (then 503).
    pub decode_concurrency: usize,
    pub decode_queue: usize,
    /// Largest picture accepted, in pixels (width × height, read from the header
    /// before decoding).
    pub max_image_pixels: u64,
    /// Width of gallery thumbnails, in pixels.
    pub thumb_width: u32,
    /// How often the sweeper retries stuck deletions and expires unfinished uploads.
    pub sweep_interval: Duration,
    /// A reserved (pending) file older than this is abandoned and swept.
    pub pending_ttl: Duration,
}

impl fmt::Debug for FilesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilesConfig")
            .field("backend", &self.backend)
            .field("local_dir", &self.local_dir)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_endpoint", &self.s3_endpoint)
            .field(
                "s3_access_key_id",
                &self.s3_access_key_id.as_ref().map(|_| "[configured]"),
            )
            .field("s3_secret_access_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Credentials and switches for the PortOne V2 REST API and its webhooks.
#[derive(Clone)]
pub struct PortOneConfig {
    /// `https://api.portone.io` unless overridden (tests point it at a fake).
    pub api_base_url: String,
    pub api_secret: SecretString,
    pub store_id: String,
    pub channel_key: String,
    /// Standard Webhooks secret, `whsec_<base64>`; the webhook route needs it.
    pub webhook_secret: Option<SecretString>,
    /// Register the expected amount with PortOne before the browser pays.
    pub pre_register: bool,
    pub timeout: Duration,
}

impl fmt::Debug for Config {
    // Hand-written so that secrets and credentials inside URLs never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("bind_addr", &self.bind_addr)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_kind())
            .field("db_max_connections", &self.db_max_connections)
            .field("run_migrations", &self.run_migrations)
            .field("jwt_secret", &"[redacted]")
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field("login_rate_per_ip", &self.login_rate_per_ip)
            .field("public_read_rate_per_ip", &self.public_read_rate_per_ip)
            .field("public_write_rate_per_ip", &self.public_write_rate_per_ip)
            .field(
                "public_write_rate_per_ip_page",
                &self.public_write_rate_per_ip_page,
            )
            .field(
                "public_write_rate_per_invitation",
                &self.public_write_rate_per_invitation,
            )
            .field(
                "guestbook_delete_rate_per_entry",
                &self.guestbook_delete_rate_per_entry,
            )
            .field("public_web_base_url", &self.public_web_base_url)
            .field("trust_proxy", &self.trust_proxy)
            .field("redis", &self.redis_url.as_ref().map(|_| "[configured]"))
            .field("agent_manager_url", &self.agent_manager_url)
            .field("chat", &self.chat)
            .field("cors_origins", &self.cors_origins)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field("log_format", &self.log_format)
            .field("server", &self.server)
            .field("files", &self.files)
            .field(
                "portone",
                &self.portone.as_ref().map(|p| {
                    format!(
                        "{} store={} pre_register={}",
                        p.api_base_url, p.store_id, p.pre_register
                    )
                }),
            )
            .field("price_premium", &self.price_premium)
            .field("refund_window_days", &self.refund_window_days)
            .field("server_id", &self.server_id)
            .field("sse_keepalive", &self.sse_keepalive)
            .field("sse_ticket_ttl", &self.sse_ticket_ttl)
            .field("sse_replay_max", &self.sse_replay_max)
            .field("sse_replay_ttl", &self.sse_replay_ttl)
            .finish()
    }
}

/// Every problem found in the configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads `.env` (when present) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars)
    }

    /// Builds the configuration from a variable map; tests pass their own.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut r = Reader {
            vars,
            errors: Vec::new(),
        };
        let environment = match r.get("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                r.fail(format!(
                    "APP_ENV must be development or production, got {other:?}"
                ));
                Environment::Development
            }
        };
        let data_dir = PathBuf::from(r.get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = r
            .get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}/mocheong.db?mode=rwc", data_dir.display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            r.fail("DATABASE_URL must start with sqlite:, postgres:// or postgresql://".into());
        }
        let bind_addr = r.parse(
            "BIND_ADDR",
            "127.0.0.1:8080".parse().expect("valid default"),
        );
        let db_max_connections = r.parse("DB_MAX_CONNECTIONS", 10u32);
        let run_migrations = r.parse_bool("RUN_MIGRATIONS", true);

        let jwt_secret = match r.get("JWT_SECRET") {
            Some(s) if s.len() < 32 => {
                r.fail("JWT_SECRET must be at least 32 bytes".into());
                s
            }
            Some(s) => s,
            None if environment == Environment::Production => {
                r.fail("JWT_SECRET is required when APP_ENV=production".into());
                String::new()
            }
            None => match dev_jwt_secret(&data_dir) {
                Ok(s) => s,
                Err(e) => {
                    r.fail(format!(
                        "cannot keep a development JWT secret in DATA_DIR: {e}"
                    ));
                    String::new()
                }
            },
        };

        let access_secs = r.parse("ACCESS_TOKEN_TTL_SECS", 900u64);
        let refresh_secs = r.parse("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600u64);
        if access_secs == 0 || refresh_secs == 0 {
            r.fail("token lifetimes must be positive".into());
        }
        let login_rate_per_ip = r.parse("LOGIN_RATE_PER_IP", 30u32);
        let public_read_rate_per_ip = r.parse("PUBLIC_READ_RATE_PER_IP", 120u32);
        let public_write_rate_per_ip = r.parse("PUBLIC_WRITE_RATE_PER_IP", 120u32);
        let public_write_rate_per_ip_page = r.parse("PUBLIC_WRITE_RATE_PER_IP_PAGE", 60u32);
        let public_write_rate_per_invitation = r.parse("PUBLIC_WRITE_RATE_PER_INVITATION", 10u32);
        let guestbook_delete_rate_per_entry = r.parse("GUESTBOOK_DELETE_RATE_PER_ENTRY", 5u32);
        if login_rate_per_ip == 0
            || public_read_rate_per_ip == 0
            || public_write_rate_per_ip == 0
            || public_write_rate_per_ip_page == 0
            || public_write_rate_per_invitation == 0
            || guestbook_delete_rate_per_entry == 0
        {
            r.fail("rate limits must be positive".into());
        }
        let log_format = match r.get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                r.fail(format!("LOG_FORMAT must be text or json, got {other:?}"));
                LogFormat::Text
            }
        };
        let agent_manager_url = r
            .get("AGENT_MANAGER_URL")
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &agent_manager_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            r.fail("AGENT_MANAGER_URL must be an http(s) URL".into());
        }
        let metrics_token = r.get("METRICS_TOKEN").map(SecretString::from);
        if metrics_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 16)
        {
            r.fail("METRICS_TOKEN must be at least 16 bytes".into());
        }
        let redis_url = r.get("REDIS_URL");
        if let Some(u) = &redis_url
            && !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
        {
            r.fail("REDIS_URL must start with redis://, rediss:// or unix://".into());
        }
        let redis_cluster = match r.get("REDIS_MODE").as_deref() {
            None | Some("single") => false,
            Some("cluster") => true,
            Some(other) => {
                r.fail(format!(
                    "REDIS_MODE must be single or cluster, got {other:?}"
                ));
                false
            }
        };
        if let Some(u) = &redis_url
            && !redis_cluster
            && u.contains(',')
        {
            r.fail(
                "REDIS_URL lists several servers: set REDIS_MODE=cluster for a Redis Cluster"
                    .into(),
            );
        }
        let handoff = match r.get("AGENT_HANDOFF").as_deref() {
            None | Some("http") => AgentHandoff::Http,
            Some("celery") => AgentHandoff::Celery,
            Some(other) => {
                r.fail(format!(
                    "AGENT_HANDOFF must be http or celery, got {other:?}"
                ));
                AgentHandoff::Http
            }
        };
        // The Celery broker of the direct hand-off, the same variable the worker reads.
        // Unset: the REDIS_URL connection. The scheme picks the transport.
        let broker_url = r.get("AGENT_BROKER_URL");
        if let Some(u) = &broker_url
            && !["redis://", "rediss://", "unix://", "amqp://", "amqps://"]
                .iter()
                .any(|s| u.starts_with(s))
        {
            r.fail(
                "AGENT_BROKER_URL must start with redis://, rediss://, unix://, amqp:// or amqps://"
                    .into(),
            );
        }
        if redis_cluster && handoff == AgentHandoff::Celery && broker_url.is_none() {
            // Unset, the direct hand-off LPUSHes onto the Celery queue in REDIS_URL;
            // Celery's Redis transport cannot read a queue from a Cluster.
            r.fail("AGENT_HANDOFF=celery with REDIS_MODE=cluster needs AGENT_BROKER_URL (RabbitMQ or a single-node Redis): Celery cannot use a Redis Cluster as its broker".into());
        }
        let chat = ChatConfig {
            handoff,
            broker_url: broker_url.map(Into::into),
            service_token: r.get("AGENT_SERVICE_TOKEN").map(Into::into),
            queue: r.get("AGENT_QUEUE").unwrap_or_else(|| "celery".into()),
            completion_stream: r
                .get("AGENT_COMPLETION_STREAM")
                .unwrap_or_else(|| "chat:completions".into()),
            agent_timeout: Duration::from_millis(r.parse("AGENT_TIMEOUT_MS", 3000u64)),
            breaker_threshold: r.parse("AGENT_BREAKER_THRESHOLD", 5u32).max(1),
            breaker_cooldown: Duration::from_secs(
                r.parse("AGENT_BREAKER_COOLDOWN_SECS", 3u64).max(1),
            ),
            max_message_chars: r.parse("CHAT_MAX_MESSAGE_CHARS", 2000usize),
            rate_per_minute: r.parse("CHAT_RATE_PER_MINUTE", 20u32).max(1),
            max_rooms_per_socket: r.parse("CHAT_MAX_ROOMS_PER_SOCKET", 5usize).max(1),
            socket_buffer: r.parse("CHAT_SOCKET_BUFFER", 128usize).max(8),
            history_turns: r.parse("CHAT_HISTORY_TURNS", 10u64),
            claim_idle: Duration::from_millis(r.parse("CHAT_CLAIM_IDLE_MS", 5_000u64)),
            first_item_timeout: Duration::from_millis(
                r.parse("CHAT_FIRST_ITEM_TIMEOUT_MS", 20_000u64).max(100),
            ),
            idle_timeout: Duration::from_millis(
                r.parse("CHAT_IDLE_TIMEOUT_MS", 30_000u64).max(100),
            ),
            turn_timeout: Duration::from_millis(
                r.parse("CHAT_TURN_TIMEOUT_MS", 180_000u64).max(100),
            ),
            sweep_interval: Duration::from_millis(
                r.parse("CHAT_SWEEP_INTERVAL_MS", 1_000u64)
                    .clamp(50, 60_000),
            ),
            membership_recheck: Duration::from_millis(
                r.parse("CHAT_MEMBERSHIP_RECHECK_MS", 30_000u64)
                    .clamp(100, 3_600_000),
            ),
            // Filled with `server_id` below: one name per instance.
            instance_id: String::new(),
        };
        let behind_proxy = r.parse_bool("TRUST_PROXY", false);
        let server = ServerConfig {
            header_read_timeout: Duration::from_millis(
                r.parse("HTTP_HEADER_READ_TIMEOUT_MS", 10_000u64).max(100),
            ),
            idle_timeout: Duration::from_millis(
                r.parse("HTTP_IDLE_TIMEOUT_MS", 60_000u64).max(100),
            ),
            max_connections: r.parse("HTTP_MAX_CONNECTIONS", 10_000usize).max(1),
            // Behind a trusted proxy every connection comes from the proxy: no per-IP
            // cap unless one is asked for.
            max_connections_per_ip: r.parse(
                "HTTP_MAX_CONNECTIONS_PER_IP",
                if behind_proxy { 0 } else { 256usize },
            ),
        };
        let files = read_files_config(&mut r, &data_dir);
        let portone = read_portone(&mut r);
        let price_premium = r.parse("PAYMENT_PRICE_PREMIUM", 19_900i64);
        if price_premium <= 0 {
            r.fail("PAYMENT_PRICE_PREMIUM must be positive".into());
        }
        let refund_window_days = r.parse("PAYMENT_REFUND_WINDOW_DAYS", 7i64);
        if refund_window_days < 0 {
            r.fail("PAYMENT_REFUND_WINDOW_DAYS must not be negative".into());
        }
        let sse_keepalive_secs = r.parse("SSE_KEEPALIVE_SECS", 15u64);
        let sse_ticket_ttl_secs = r.parse("SSE_TICKET_TTL_SECS", 60u64);
        let sse_replay_max = r.parse("SSE_REPLAY_MAX", 100usize);
        let sse_replay_ttl_secs = r.parse("SSE_REPLAY_TTL_SECS", 600u64);
        if sse_keepalive_secs == 0 || sse_ticket_ttl_secs == 0 || sse_replay_ttl_secs == 0 {
            r.fail(
                "SSE_KEEPALIVE_SECS, SSE_TICKET_TTL_SECS and SSE_REPLAY_TTL_SECS must be positive"
                    .into(),
            );
        }
        let server_name = r.get("SERVER_ID").unwrap_or_else(|| "backend".into());
        if server_name.len() > 64
            || !server_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            r.fail("SERVER_ID must be at most 64 letters, digits, '-', '_' or '.'".into());
        }
        let server_id = format!(
            "{server_name}-{}",
            &ulid::Ulid::new().to_string().to_lowercase()[20..]
        );
        let mut cfg = Config {
            environment,
            bind_addr,
            data_dir,
            database_url: database_url.into(),
            db_max_connections,
            run_migrations,
            jwt_secret: jwt_secret.into(),
            jwt_issuer: r.get("JWT_ISSUER").unwrap_or_else(|| "mocheong".into()),
            jwt_audience: r
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| "mocheong-api".into()),
            access_token_ttl: Duration::from_secs(access_secs),
            refresh_token_ttl: Duration::from_secs(refresh_secs),
            refresh_reuse_grace: Duration::from_secs(r.parse("REFRESH_REUSE_GRACE_SECS", 5u64)),
            login_free_failures: r.parse("LOGIN_FREE_FAILURES", 5u32),
            editor_invites_per_hour: r.parse("EDITOR_INVITES_PER_HOUR", 30u32).max(1),
            editor_invitation_ttl: Duration::from_secs(
                r.parse("EDITOR_INVITATION_TTL_DAYS", 14u64).clamp(1, 365) * 86_400,
            ),
            login_backoff_max: Duration::from_secs(
                r.parse("LOGIN_BACKOFF_MAX_SECS", 900u64).max(1),
            ),
            login_rate_per_ip,
            argon2_concurrency: r
                .parse(
                    "ARGON2_CONCURRENCY",
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                )
                .max(1),
            argon2_queue: r.parse("ARGON2_QUEUE", 32usize),
            public_read_rate_per_ip,
            public_write_rate_per_ip,
            public_write_rate_per_ip_page,
            public_write_rate_per_invitation,
            guestbook_delete_rate_per_entry,
            public_web_base_url: r
                .get("PUBLIC_WEB_BASE_URL")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            view_flush_interval: Duration::from_millis(
                r.parse("VIEW_FLUSH_INTERVAL_MS", 10_000u64).max(10),
            ),
            trust_proxy: r.parse_bool("TRUST_PROXY", false),
            redis_url: redis_url.map(Into::into),
            redis_cluster,
            agent_manager_url,
            chat,
            cors_origins: r
                .get("CORS_ORIGINS")
                .map(|s| {
                    s.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            metrics_token,
            log_format,
            shutdown_grace: Duration::from_secs(r.parse("SHUTDOWN_GRACE_SECS", 10u64)),
            request_timeout: Duration::from_secs(r.parse("REQUEST_TIMEOUT_SECS", 30u64)),
            server,
            files,
            portone,
            price_premium,
            refund_window_days,
            server_id,
            sse_keepalive: Duration::from_secs(sse_keepalive_secs),
            sse_ticket_ttl: Duration::from_secs(sse_ticket_ttl_secs),
            sse_replay_max,
            sse_replay_ttl: Duration::from_secs(sse_replay_ttl_secs),
        };
        cfg.chat.instance_id = cfg.server_id.clone();
        if r.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(r.errors))
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }

    pub fn database_kind(&self) -> &'static str {
        if self.is_sqlite() {
            "sqlite"
        } else {
            "postgres"
        }
    }
}

/// How chat messages reach the agent-manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentHandoff {
    /// `POST {AGENT_MANAGER_URL}/chat`.
    Http,
    /// A hand-built Celery protocol v2 message put on the worker's queue: `LPUSH`ed
    /// onto a Redis list, or published over AMQP (`AGENT_BROKER_URL=amqp://...`).
    Celery,
}

#[derive(Clone)]
pub struct ChatConfig {
    pub handoff: AgentHandoff,
    /// Sent as `X-Service-Token` to the agent-manager.
    pub service_token: Option<SecretString>,
    /// `AGENT_BROKER_URL`: the Celery broker of the direct hand-off (Redis or AMQP);
    /// unset means the `REDIS_URL` connection.
    pub broker_url: Option<SecretString>,
    /// The Celery queue (a Redis list, or a RabbitMQ queue) for direct hand-off.
    pub queue: String,
    /// The Redis stream of finished answers, read with a consumer group.
    pub completion_stream: String,
    pub agent_timeout: Duration,
    /// Consecutive hand-off failures that open the circuit, and how long it stays open.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub max_message_chars: usize,
    pub rate_per_minute: u32,
    pub max_rooms_per_socket: usize,
    /// Packets a socket may have waiting to be written; a socket whose buffer is full
    /// is disconnected (docs/chat.md "Relay across instances").
    pub socket_buffer: usize,
    /// Earlier messages sent along as history.
    pub history_turns: u64,
    /// Completions left unacknowledged this long by a (dead) instance are claimed.
    pub claim_idle: Duration,
    /// A turn with no first item this long after `message-accepted` fails.
    pub first_item_timeout: Duration,
    /// A turn whose last item is this old (and not final) fails.
    pub idle_timeout: Duration,
    /// No turn lasts longer than this, however steadily it streams.
    pub turn_timeout: Duration,
    /// How often each instance's dispatcher and deadline sweeper look at open turns.
    pub sweep_interval: Duration,
    /// How often each instance re-checks that its joined sockets' users still belong
    /// to their pages (the bound when a revocation event is lost).
    pub membership_recheck: Duration,
    /// This instance's name (its consumer name in the completion group); the same
    /// as `Config::server_id`.
    pub instance_id: String,
}

impl fmt::Debug for ChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatConfig")
            .field("handoff", &self.handoff)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "broker",
                &self.broker_url.as_ref().map(|u| {
                    let u = u.expose_secret();
                    u.split_once("://")
                        .map_or("?", |(scheme, _)| scheme)
                        .to_owned()
                }),
            )
            .field("queue", &self.queue)
            .field("completion_stream", &self.completion_stream)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

fn read_files_config(r: &mut Reader, data_dir: &std::path::Path) -> FilesConfig {
    const MIB: u64 = 1024 * 1024;
    let backend = match r.get("STORAGE_BACKEND").as_deref() {
        None | Some("local") => StorageBackend::Local,
        Some("s3") => StorageBackend::S3,
        Some(other) => {
            r.fail(format!(
                "STORAGE_BACKEND must be local or s3, got {other:?}"
            ));
            StorageBackend::Local
        }
    };
    let s3_bucket = r.get("S3_BUCKET").unwrap_or_default();
    if backend == StorageBackend::S3 && s3_bucket.is_empty() {
        r.fail("S3_BUCKET is required when STORAGE_BACKEND=s3".into());
    }
    let s3_endpoint = r.get("S3_ENDPOINT");
    if let Some(u) = &s3_endpoint
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        r.fail("S3_ENDPOINT must be an http(s) URL".into());
    }
    let s3_access_key_id = r.get("S3_ACCESS_KEY_ID");
    let s3_secret_access_key = r.get("S3_SECRET_ACCESS_KEY");
    if s3_access_key_id.is_some() != s3_secret_access_key.is_some() {
        r.fail("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together".into());
    }
    let files = FilesConfig {
        backend,
        local_dir: r
            .get("FILES_LOCAL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("files")),
        s3_bucket,
        s3_region: r.get("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        // Most S3-compatible servers only route path-style requests.
        s3_force_path_style: r.parse_bool("S3_FORCE_PATH_STYLE", s3_endpoint.is_some()),
        s3_endpoint,
        s3_access_key_id,
        s3_secret_access_key: s3_secret_access_key.map(Into::into),
        s3_create_bucket: r.parse_bool("S3_CREATE_BUCKET", false),
        max_gallery_bytes: r.parse("FILES_MAX_GALLERY_BYTES", 15 * MIB),
        max_cover_bytes: r.parse("FILES_MAX_COVER_BYTES", 15 * MIB),
        max_attachment_bytes: r.parse("FILES_MAX_ATTACHMENT_BYTES", 25 * MIB),
        quota_free_bytes: r.parse("FILES_QUOTA_FREE_BYTES", 200 * MIB),
        quota_premium_bytes: r.parse("FILES_QUOTA_PREMIUM_BYTES", 2048 * MIB),
        url_ttl: Duration::from_secs(r.parse("FILES_URL_TTL_SECS", 3600u64).max(1)),
        public_base_url: r
            .get("FILES_PUBLIC_BASE_URL")
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_default(),
        decode_concurrency: r.parse("FILES_DECODE_CONCURRENCY", 2usize).max(1),
        decode_queue: r.parse("FILES_DECODE_QUEUE", 8usize),
        max_image_pixels: r.parse("FILES_MAX_IMAGE_PIXELS", 50_000_000u64).max(1),
        thumb_width: r.parse("FILES_THUMB_WIDTH", 480u32).clamp(16, 4096),
        sweep_interval: Duration::from_secs(r.parse("FILES_SWEEP_INTERVAL_SECS", 60u64).max(1)),
        pending_ttl: Duration::from_secs(r.parse("FILES_PENDING_TTL_SECS", 3600u64).max(60)),
    };
    if files.max_gallery_bytes == 0 || files.max_cover_bytes == 0 || files.max_attachment_bytes == 0
    {
        r.fail("FILES_MAX_*_BYTES must be positive".into());
    }
    files
}

/// PortOne is on when its API secret is set; then the store id and channel key are
/// required too, and a webhook secret, when given, must be `whsec_<base64>`.
fn read_portone(r: &mut Reader<'_>) -> Option<PortOneConfig> {
    let api_secret = r.get("PORTONE_API_SECRET")?;
    let api_base_url = r
        .get("PORTONE_API_BASE_URL")
        .unwrap_or_else(|| "https://api.portone.io".into())
        .trim_end_matches('/')
        .to_owned();
    if !(api_base_url.starts_with("http://") || api_base_url.starts_with("https://")) {
        r.fail("PORTONE_API_BASE_URL must be an http(s) URL".into());
    }
    let store_id = r.get("PORTONE_STORE_ID").unwrap_or_else(|| {
        r.fail("PORTONE_STORE_ID is required when PORTONE_API_SECRET is set".into());
        String::new()
    });
    let channel_key = r.get("PORTONE_CHANNEL_KEY").unwrap_or_else(|| {
        r.fail("PORTONE_CHANNEL_KEY is required when PORTONE_API_SECRET is set".into());
        String::new()
    });
    let webhook_secret = r.get("PORTONE_WEBHOOK_SECRET");
    if let Some(secret) = &webhook_secret
        && crate::payments::webhook::decode_secret(secret).is_none()
    {
        r.fail("PORTONE_WEBHOOK_SECRET must be whsec_ followed by base64".into());
    }
    let pre_register = r.parse_bool("PORTONE_PRE_REGISTER", true);
    let timeout = Duration::from_secs(r.parse("PORTONE_TIMEOUT_SECS", 10u64).max(1));
    Some(PortOneConfig {
        api_base_url,
        api_secret: api_secret.into(),
        store_id,
        channel_key,
        webhook_secret: webhook_secret.map(Into::into),
        pre_register,
        timeout,
    })
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.vars
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn fail(&mut self, msg: String) {
        self.errors.push(msg);
    }

    fn parse<T: std::str::FromStr>(&mut self, key: &str, default: T) -> T {
        match self.get(key) {
            None => default,
            Some(raw) => raw.parse().unwrap_or_else(|_| {
                self.fail(format!("{key} has an invalid value {raw:?}"));
                default
            }),
        }
    }

    fn parse_bool(&mut self, key: &str, default: bool) -> bool {
        match self.get(key).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => default,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                self.fail(format!("{key} must be true or false, got {other:?}"));
                default
            }
        }
    }
}

/// Development only: a random secret kept in the data directory, so that tokens
/// survive restarts of `make run` without anyone having to configure one.
fn dev_jwt_secret(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("dev-jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= 32
    {
        return Ok(s.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    std::fs::write(&path, &secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_per_ip_connection_cap_is_off_behind_a_trusted_proxy() {
        let jwt = ("JWT_SECRET", "a-very-secret-value-that-is-32-bytes!!");
        let direct = Config::from_map(&vars(&[jwt])).unwrap();
        assert_eq!(direct.server.max_connections_per_ip, 256);
        let proxied = Config::from_map(&vars(&[jwt, ("TRUST_PROXY", "true")])).unwrap();
        assert_eq!(proxied.server.max_connections_per_ip, 0);
        let asked = Config::from_map(&vars(&[
            jwt,
            ("TRUST_PROXY", "true"),
            ("HTTP_MAX_CONNECTIONS_PER_IP", "5000"),
        ]))
        .unwrap();
        assert_eq!(asked.server.max_connections_per_ip, 5000);
    }

    #[test]
    fn the_broker_url_is_redis_or_amqp() {
        let jwt = ("JWT_SECRET", "a-very-secret-value-that-is-32-bytes!!");
        let unset = Config::from_map(&vars(&[jwt])).unwrap();
        assert!(
            unset.chat.broker_url.is_none(),
            "unset: the REDIS_URL connection"
        );
        for ok in [
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "amqps://h/v",
            "redis://h:6379/1",
        ] {
            let cfg = Config::from_map(&vars(&[jwt, ("AGENT_BROKER_URL", ok)])).unwrap();
            assert_eq!(cfg.chat.broker_url.unwrap().expose_secret(), ok);
        }
        let err = Config::from_map(&vars(&[jwt, ("AGENT_BROKER_URL", "sqs://queue")])).unwrap_err();
        assert!(
            err.to_string().contains("AGENT_BROKER_URL must start with"),
            "{err}"
        );
        // The password stays out of the debug output.
        let cfg =
            Config::from_map(&vars(&[jwt, ("AGENT_BROKER_URL", "amqp://u:hunter2@h/v")])).unwrap();
        assert!(!format!("{:?}", cfg.chat).contains("hunter2"));
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        let err = Config::from_map(&vars(&[("APP_ENV", "production")])).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET is required"), "{err}");
    }

    #[test]
    fn a_redis_cluster_is_chosen_explicitly_and_the_celery_hand_off_then_needs_its_own_broker() {
        let jwt = ("JWT_SECRET", "unit-test-secret-0123456789abcdef0123");
        let seeds = ("REDIS_URL", "redis://a:7000,redis://b:7001");
        let err = Config::from_map(&vars(&[jwt, seeds])).unwrap_err();
        assert!(err.to_string().contains("REDIS_MODE=cluster"), "{err}");
        let cfg = Config::from_map(&vars(&[jwt, seeds, ("REDIS_MODE", "cluster")])).unwrap();
        assert!(cfg.redis_cluster);
        assert!(!Config::from_map(&vars(&[jwt])).unwrap().redis_cluster);
        let err = Config::from_map(&vars(&[
            jwt,
            seeds,
            ("REDIS_MODE", "cluster"),
            ("AGENT_HANDOFF", "celery"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("AGENT_HANDOFF=celery"), "{err}");
        let cfg = Config::from_map(&vars(&[
            jwt,
            seeds,
            ("REDIS_MODE", "cluster"),
            ("AGENT_HANDOFF", "celery"),
            ("AGENT_BROKER_URL", "amqp://guest:guest@rabbitmq:5672/%2f"),
        ]))
        .unwrap();
        assert_eq!(cfg.chat.handoff, AgentHandoff::Celery);
        let err = Config::from_map(&vars(&[jwt, ("REDIS_MODE", "sentinel")])).unwrap_err();
        assert!(err.to_string().contains("REDIS_MODE"), "{err}");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let err = Config::from_map(&vars(&[
            ("JWT_SECRET", "short"),
            ("BIND_ADDR", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let cfg = Config::from_map(&vars(&[
            ("JWT_SECRET", "a-very-secret-value-that-is-32-bytes!!"),
            ("DATABASE_URL", "postgres://user:hunter2@db/app"),
            ("REDIS_URL", "redis://:redispass@cache:6379"),
            ("PORTONE_API_SECRET", "portone-api-secret-value"),
            ("PORTONE_STORE_ID", "store-1"),
            ("PORTONE_CHANNEL_KEY", "channel-1"),
            ("PORTONE_WEBHOOK_SECRET", "whsec_c2VjcmV0LXdlYmhvb2sta2V5"),
        ]))
        .unwrap();
        let shown = format!("{cfg:?}");
        for secret in [
            "a-very-secret",
            "hunter2",
            "redispass",
            "portone-api-secret",
            "c2VjcmV0",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert_eq!(cfg.database_kind(), "postgres");
    }

    #[test]
    fn portone_is_off_without_a_secret_and_complete_with_one() {
        let jwt = ("JWT_SECRET", "a-very-secret-value-that-is-32-bytes!!");
        let cfg = Config::from_map(&vars(&[jwt])).unwrap();
        assert!(cfg.portone.is_none());
        assert_eq!(cfg.price_premium, 19_900);
        let err = Config::from_map(&vars(&[
            jwt,
            ("PORTONE_API_SECRET", "s"),
            ("PORTONE_WEBHOOK_SECRET", "whsec_not base64!"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        let cfg = Config::from_map(&vars(&[
            jwt,
            ("PORTONE_API_SECRET", "s"),
            ("PORTONE_STORE_ID", "store-1"),
            ("PORTONE_CHANNEL_KEY", "channel-1"),
        ]))
        .unwrap();
        let portone = cfg.portone.unwrap();
        assert_eq!(portone.api_base_url, "https://api.portone.io");
        assert!(portone.pre_register);
    }
}
