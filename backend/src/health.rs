//! Liveness (the process answers) and readiness (its dependencies answer).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

#[derive(Serialize, ToSchema)]
pub struct LiveOut {
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckOut {
    /// `up` or `down`.
    status: &'static str,
    latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyOut {
    /// `ok` when every configured dependency is up, else `unavailable`.
    status: &'static str,
    checks: BTreeMap<&'static str, CheckOut>,
}

/// The process is running. Touches no dependency.
#[utoipa::path(get, path = "/live", tag = "health", responses((status = 200, body = LiveOut)))]
async fn live() -> Json<LiveOut> {
    Json(LiveOut { status: "ok" })
}

/// Database, Redis (when configured) and agent-manager (when configured) answer.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses((status = 200, body = ReadyOut), (status = 503, body = ReadyOut)))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadyOut>) {
    let db = timed(async { state.db.ping().await.map_err(|e| e.to_string()) });
    let redis = async {
        match state.redis.clone() {
            None => None,
            Some(mut conn) => Some(
                timed(async move {
                    redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .await,
            ),
        }
    };
    let agent = async {
        let url = state.cfg.agent_manager_url.as_ref()?;
        let http = state.http.clone();
        let url = format!("{url}/health");
        Some(
            timed(async move {
                let res = http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())?;
                if res.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("answered {}", res.status()))
                }
            })
            .await,
        )
    };
    let (db, redis, agent) = tokio::join!(db, redis, agent);
    let mut checks = BTreeMap::from([("database", db)]);
    if let Some(r) = redis {
        checks.insert("redis", r);
    }
    if let Some(a) = agent {
        checks.insert("agentManager", a);
    }
    let all_up = checks.values().all(|c| c.status == "up");
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(ReadyOut {
            status: if all_up { "ok" } else { "unavailable" },
            checks,
        }),
    )
}

async fn timed(check: impl Future<Output = Result<(), String>>) -> CheckOut {
    let started = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => CheckOut {
            status: "up",
            latency_ms,
            error: None,
        },
        Err(error) => CheckOut {
            status: "down",
            latency_ms,
            error: Some(error),
        },
    }
}
