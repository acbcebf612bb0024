//! Test harness: a real server on port 0 and a client that asserts the status of
//! every call. Tests are isolated by random emails and ids, not by wiping tables.

#![allow(dead_code)]

use std::{collections::HashMap, net::SocketAddr, sync::OnceLock};

use backend::{AppState, Config, build_state, run};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const JWT_SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const PASSWORD: &str = "correct horse 42";

/// The database every test of this process shares, migrated once.
pub fn database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
            let path = std::env::temp_dir().join(format!("mocheong-it-{}.db", ulid::Ulid::new()));
            format!("sqlite://{}?mode=rwc", path.display())
        });
        // Migrate on a runtime of its own: pools must not outlive the runtime that
        // made them, and each test has its own runtime.
        let for_thread = url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let cfg = Config::from_map(&base_vars(&for_thread)).unwrap();
                let db = backend::db::connect(&cfg)
                    .await
                    .expect("test database reachable");
                backend::db::migrate(&db).await.expect("migrations apply");
                db.close().await.ok();
            });
        })
        .join()
        .expect("migration thread");
        url
    })
}

fn base_vars(db_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".into(), db_url.into()),
        ("JWT_SECRET".into(), JWT_SECRET.into()),
        ("RUN_MIGRATIONS".into(), "false".into()),
        ("DB_MAX_CONNECTIONS".into(), "5".into()),
        (
            "DATA_DIR".into(),
            std::env::temp_dir()
                .join("mocheong-it-data")
                .display()
                .to_string(),
        ),
        ("LOGIN_RATE_PER_ACCOUNT".into(), "1000".into()),
        ("LOGIN_RATE_PER_IP".into(), "1000".into()),
    ])
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts the server with extra configuration variables.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let mut vars = base_vars(database_url());
        for (k, v) in overrides {
            vars.insert((*k).into(), (*v).into());
        }
        let cfg = Config::from_map(&vars).expect("test config is valid");
        let shutdown = CancellationToken::new();
        let state = build_state(cfg, shutdown.clone())
            .await
            .expect("state builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(state.clone(), listener));
        TestApp {
            addr,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            state,
            shutdown,
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req
    }

    /// Sends a request and asserts its status; returns the JSON body (Null if empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let req = self.request(method.clone(), path, token, body);
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::from_u16(expect).unwrap(),
            "{method} {path} answered {status}: {text}"
        );
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>, expect: u16) -> Value {
        self.call(Method::GET, path, token, None, expect).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value, expect: u16) -> Value {
        self.call(Method::POST, path, token, Some(body), expect)
            .await
    }

    /// POSTs and returns only the status: for requests raced against each other
    /// (`tokio::join!`), where the test asserts the set of outcomes.
    pub async fn post_status(&self, path: &str, token: &str, body: Value) -> u16 {
        let req = self.request(Method::POST, path, Some(token), Some(body));
        req.send().await.expect("request sent").status().as_u16()
    }

    /// Registers a fresh user with a random email.
    pub async fn register(&self) -> Session {
        let email = unique_email();
        let out = self
            .post(
                "/api/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "displayName": "Test User"}),
                201,
            )
            .await;
        session_from(&out)
    }

    /// Creates an admin through the same code path as `backend create-admin`.
    pub async fn admin(&self) -> Session {
        let email = unique_email();
        backend::auth::create_or_promote_admin(&self.state.db, &email, "Admin", PASSWORD)
            .await
            .unwrap();
        let out = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
                200,
            )
            .await;
        session_from(&out)
    }
}

pub fn session_from(out: &Value) -> Session {
    Session {
        user_id: out["user"]["id"].as_str().expect("user id").into(),
        email: out["user"]["email"].as_str().expect("email").into(),
        access: out["accessToken"].as_str().expect("access token").into(),
        refresh: out["refreshToken"].as_str().expect("refresh token").into(),
    }
}

pub fn unique_email() -> String {
    format!(
        "user-{}@example.com",
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// Asserts the standard error body and returns its code.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}
