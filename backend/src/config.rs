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
    /// Login attempts allowed per minute for one account / one client IP.
    pub login_rate_per_account: u32,
    pub login_rate_per_ip: u32,
    /// Public reads / writes allowed per minute per client IP.
    pub public_read_rate_per_ip: u32,
    pub public_write_rate_per_ip: u32,
    /// How often batched public page views are written to the database.
    pub view_flush_interval: Duration,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    pub redis_url: Option<SecretString>,
    pub agent_manager_url: Option<String>,
    pub cors_origins: Vec<String>,
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
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
            .field("login_rate_per_account", &self.login_rate_per_account)
            .field("login_rate_per_ip", &self.login_rate_per_ip)
            .field("public_read_rate_per_ip", &self.public_read_rate_per_ip)
            .field("public_write_rate_per_ip", &self.public_write_rate_per_ip)
            .field("trust_proxy", &self.trust_proxy)
            .field("redis", &self.redis_url.as_ref().map(|_| "[configured]"))
            .field("agent_manager_url", &self.agent_manager_url)
            .field("cors_origins", &self.cors_origins)
            .field("log_format", &self.log_format)
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
        let login_rate_per_account = r.parse("LOGIN_RATE_PER_ACCOUNT", 5u32);
        let login_rate_per_ip = r.parse("LOGIN_RATE_PER_IP", 30u32);
        let public_read_rate_per_ip = r.parse("PUBLIC_READ_RATE_PER_IP", 120u32);
        let public_write_rate_per_ip = r.parse("PUBLIC_WRITE_RATE_PER_IP", 10u32);
        if login_rate_per_account == 0
            || login_rate_per_ip == 0
            || public_read_rate_per_ip == 0
            || public_write_rate_per_ip == 0
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
        let redis_url = r.get("REDIS_URL");
        if let Some(u) = &redis_url
            && !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
        {
            r.fail("REDIS_URL must start with redis://, rediss:// or unix://".into());
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
        let cfg = Config {
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
            login_rate_per_account,
            login_rate_per_ip,
            public_read_rate_per_ip,
            public_write_rate_per_ip,
            view_flush_interval: Duration::from_millis(
                r.parse("VIEW_FLUSH_INTERVAL_MS", 10_000u64).max(10),
            ),
            trust_proxy: r.parse_bool("TRUST_PROXY", false),
            redis_url: redis_url.map(Into::into),
            agent_manager_url,
            cors_origins: r
                .get("CORS_ORIGINS")
                .map(|s| {
                    s.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log_format,
            shutdown_grace: Duration::from_secs(r.parse("SHUTDOWN_GRACE_SECS", 10u64)),
            request_timeout: Duration::from_secs(r.parse("REQUEST_TIMEOUT_SECS", 30u64)),
            server_id,
            sse_keepalive: Duration::from_secs(sse_keepalive_secs),
            sse_ticket_ttl: Duration::from_secs(sse_ticket_ttl_secs),
            sse_replay_max,
            sse_replay_ttl: Duration::from_secs(sse_replay_ttl_secs),
        };
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
    fn production_requires_a_jwt_secret() {
        let err = Config::from_map(&vars(&[("APP_ENV", "production")])).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET is required"), "{err}");
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
        ]))
        .unwrap();
        let shown = format!("{cfg:?}");
        for secret in ["a-very-secret", "hunter2", "redispass"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert_eq!(cfg.database_kind(), "postgres");
    }
}
