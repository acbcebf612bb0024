//! Start-up as an operator sees it: several real `backend` binaries started at the
//! same moment on a fresh database all migrate it and come up.

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
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("backend binary starts")
}

/// Reads the instance's JSON log until its `listening` line and returns the address;
/// panics with everything it printed if it exits first.
async fn listening_addr(child: &mut Child) -> String {
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
            return v["addr"].as_str().expect("addr field").to_owned();
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
