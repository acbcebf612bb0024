//! The real `backend` binary as an operator sees it: several instances started at the
//! same moment on a fresh database all migrate it and come up; its log alerts only on
//! real faults.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, Database};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::common::JWT_SECRET;

const INSTANCES: usize = 3;
const START_BOUND: Duration = Duration::from_secs(60);

/// A database nobody has migrated: a new SQLite file, or a new PostgreSQL database on
/// the test server (dropped again when this is dropped).
struct FreshDb {
    url: String,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl FreshDb {
    async fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var("TEST_DATABASE_URL") {
            Ok(test_url) if test_url.starts_with("postgres") => {
                let name = format!("mocheong_start_{}", ulid::Ulid::new()).to_lowercase();
                let server = test_url.rsplit_once('/').unwrap().0.to_owned();
                let admin = Database::connect(&test_url).await.unwrap();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                admin.close().await.ok();
                FreshDb {
                    url: format!("{server}/{name}"),
                    pg: Some((test_url, name)),
                    _dir: dir,
                }
            }
            _ => FreshDb {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("fresh.db").display()
                ),
                pg: None,
                _dir: dir,
            },
        }
    }
}

impl Drop for FreshDb {
    /// Drops the PostgreSQL database, pass or fail, on a runtime of its own (a
    /// test's runtime may be gone by now).
    fn drop(&mut self) {
        let Some((test_url, name)) = self.pg.take() else {
            return;
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&test_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    admin.execute_unprepared(&sql).await.ok();
                    admin.close().await.ok();
                }
            });
        })
        .join()
        .ok();
    }
}

/// Starts `backend serve` on a free port with its own data directory.
fn start_instance(db_url: &str, data_dir: &std::path::Path) -> Child {
    start_instance_with(db_url, data_dir, &[])
}

fn start_instance_with(db_url: &str, data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_backend"))
        .arg("serve")
        .current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", data_dir)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("backend binary starts")
}

type LogLines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Reads the instance's JSON log until its `listening` line and returns the address
/// (and the log read so far); panics with everything it printed if it exits first.
async fn listening_addr(child: &mut Child) -> String {
    wait_listening(child).await.0
}

async fn wait_listening(child: &mut Child) -> (String, Vec<String>, LogLines) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + START_BOUND;
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no `listening` line within the bound; printed: {seen:#?}"))
            .unwrap();
        let Some(line) = line else {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err)
                    .await
                    .ok();
            }
            panic!("instance exited during start-up; stdout: {seen:#?}; stderr: {err}");
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == "listening"
        {
            let addr = v["addr"].as_str().expect("addr field").to_owned();
            seen.push(line);
            return (addr, seen, lines);
        }
        seen.push(line);
    }
}

#[tokio::test]
async fn instances_started_together_on_a_fresh_database_all_come_up() {
    let db = FreshDb::create().await;
    let dirs: Vec<_> = (0..INSTANCES)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut children: Vec<Child> = dirs
        .iter()
        .map(|d| start_instance(&db.url, d.path()))
        .collect();
    let addrs = futures::future::join_all(children.iter_mut().map(listening_addr)).await;

    let http = reqwest::Client::new();
    for addr in &addrs {
        let res = http
            .get(format!("http://{addr}/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{addr}: {}", res.text().await.unwrap());
    }
    for child in &mut children {
        child.kill().await.ok();
    }
}

/// Client errors, readiness with the agent-manager down and a switched-off feature's
/// 503 are everyday traffic: none may page anyone. The start-up line is a summary.
#[tokio::test]
async fn client_errors_and_expected_503s_log_no_error() {
    let db = FreshDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let agent = format!("http://{dead}");
    let mut child = start_instance_with(&db.url, dir.path(), &[("AGENT_MANAGER_URL", &agent)]);
    let (addr, mut log, mut rest) = wait_listening(&mut child).await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let status = |res: reqwest::Response| res.status().as_u16();

    let user: serde_json::Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&serde_json::json!({"email": crate::common::unique_email(),
            "password": crate::common::PASSWORD, "displayName": "Ops"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = user["accessToken"].as_str().unwrap();
    let files = format!("{base}/api/files");
    let sent = [
        (404, http.delete(format!("{files}/01J00000000000000000000000")).bearer_auth(token)),
        (415, http.post(format!("{files}/presign")).bearer_auth(token).body("x")),
        (422, http.post(format!("{files}/presign")).bearer_auth(token)
            .json(&serde_json::json!({"purpose": "gallery", "fileName": "", "contentType": "image/png", "size": 1}))),
        (401, http.get(format!("{base}/api/auth/me"))),
        (404, http.get(format!("{base}/api/nope"))),
        (503, http.post(format!("{base}/api/payments/prepare")).bearer_auth(token)
            .json(&serde_json::json!({"pageId": "01J00000000000000000000000", "plan": "premium"}))),
        (200, http.get(format!("{base}/health/ready"))),
        (200, http.get(format!("{base}/health/ready"))),
        (200, http.get(format!("{base}/health/ready"))),
    ];
    for (expected, req) in sent {
        let req = req.build().unwrap();
        let what = format!("{} {}", req.method(), req.url().path());
        assert_eq!(status(http.execute(req).await.unwrap()), expected, "{what}");
    }
    child.kill().await.ok();
    while let Ok(Some(line)) = rest.next_line().await {
        log.push(line);
    }

    let entries: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let errors: Vec<_> = entries.iter().filter(|e| e["level"] == "ERROR").collect();
    assert!(
        errors.is_empty(),
        "ERROR lines for everyday traffic: {errors:#?}"
    );
    let down: Vec<_> = entries
        .iter()
        .filter(|e| e["message"] == "readiness check down")
        .collect();
    assert_eq!(
        down.len(),
        1,
        "one WARN when the agent-manager goes down, not one per probe"
    );
    assert_eq!(down[0]["level"], "WARN");
    let starting = log
        .iter()
        .find(|l| l.contains(r#""message":"starting""#))
        .expect("a start-up line");
    assert!(
        starting.len() < 600,
        "a summary, not the whole configuration: {starting}"
    );
}
