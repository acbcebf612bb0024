//! Liveness (the process answers) and readiness (it can serve its callers).
//!
//! Readiness fails only on what every request needs: the database, and Redis when it
//! is configured. The agent-manager is reported (`degraded`) but never takes an
//! instance out of the load balancer: an AI outage must not take invitation pages,
//! RSVPs and payment webhooks offline with it. Its check also carries the hand-off
//! circuit breaker's state (`closed`/`open`/`half_open`): an open breaker makes the
//! agent `degraded`, never readiness fail. Failure details go to the log (once per
//! change) and to admins; anonymous callers see only the states.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{auth, chat::agent::BreakerState, config::AgentHandoff, state::AppState};

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
    /// `up` or `down`; the agent-manager's is `degraded` while it answers its health
    /// check but the hand-off breaker is not closed.
    status: &'static str,
    /// Whether readiness fails when this check is down.
    critical: bool,
    latency_ms: u64,
    /// Why the check failed; shown to admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The hand-off circuit breaker of this instance (agent-manager check only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    breaker: Option<BreakerState>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyOut {
    /// `ok` when every check is up; `degraded` when only a non-critical one (the
    /// agent-manager, or its breaker) is not — still 200; `unavailable` (503) when a
    /// critical one is down.
    status: &'static str,
    checks: BTreeMap<&'static str, CheckOut>,
}

/// The process is running. Touches no dependency.
#[utoipa::path(get, path = "/live", tag = "health", responses((status = 200, body = LiveOut)))]
async fn live() -> Json<LiveOut> {
    Json(LiveOut { status: "ok" })
}

/// Whether this instance can serve: 200 while the database and Redis (when
/// configured) answer, else 503. The agent-manager (when configured) and this
/// instance's hand-off circuit breaker are reported but do not fail readiness. With an
/// admin's bearer token the body carries each failed check's error.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses((status = 200, body = ReadyOut), (status = 503, body = ReadyOut)))]
async fn ready(State(state): State<AppState>, headers: HeaderMap) -> (StatusCode, Json<ReadyOut>) {
    let (db, redis, agent) = tokio::join!(
        check_database(&state),
        check_redis(&state),
        check_agent_manager(&state)
    );
    let mut checks = BTreeMap::from([("database", db)]);
    checks.extend(redis.map(|c| ("redis", c)));
    checks.extend(agent.map(|c| ("agentManager", c)));
    log_changes(&checks);

    let critical_down = checks.values().any(|c| c.critical && c.status == "down");
    let any_down = checks.values().any(|c| c.status != "up");
    if !caller_is_admin(&state, &headers).await {
        checks.values_mut().for_each(|c| c.error = None);
    }
    let (code, status) = match (critical_down, any_down) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (false, true) => (StatusCode::OK, "degraded"),
        (false, false) => (StatusCode::OK, "ok"),
    };
    (code, Json(ReadyOut { status, checks }))
}

async fn check_database(state: &AppState) -> CheckOut {
    timed(true, async {
        state.db.ping().await.map_err(|e| e.to_string())
    })
    .await
}

async fn check_redis(state: &AppState) -> Option<CheckOut> {
    let mut conn = state.redis.clone()?;
    Some(
        timed(true, async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await,
    )
}

/// The agent-manager's own `/health` (it fails when no Celery worker answers), with
/// the breaker's state: `degraded` while the breaker is not closed although the health
/// check passes. With Celery hand-offs and no `AGENT_MANAGER_URL` there is nothing to
/// probe: the breaker alone is reported (`open` → `down`).
async fn check_agent_manager(state: &AppState) -> Option<CheckOut> {
    let breaker = state.agent_breaker.state();
    let mut check = match &state.cfg.agent_manager_url {
        Some(base) => {
            let url = format!("{base}/health");
            let http = state.http.clone();
            timed(false, async move {
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
            .await
        }
        None if state.cfg.chat.handoff == AgentHandoff::Celery && state.redis.is_some() => {
            let result = match breaker {
                BreakerState::Open => Err("hand-offs fail (breaker open)".to_owned()),
                _ => Ok(()),
            };
            timed(false, async { result }).await
        }
        None => return None,
    };
    if check.status == "up" && breaker != BreakerState::Closed {
        check.status = "degraded";
    }
    check.breaker = Some(breaker);
    Some(check)
}

/// Probes come every few seconds from each load balancer: log a check going down (at
/// WARN, with its error) or coming back (INFO) once, not on every probe.
fn log_changes(checks: &BTreeMap<&'static str, CheckOut>) {
    static LAST_UP: Mutex<BTreeMap<&'static str, bool>> = Mutex::new(BTreeMap::new());
    let mut last = LAST_UP.lock().unwrap_or_else(|e| e.into_inner());
    for (name, check) in checks {
        let up = check.status != "down";
        match (last.insert(name, up), up) {
            (Some(before), _) if before == up => {}
            (_, false) => tracing::warn!(
                check = name,
                critical = check.critical,
                error = check.error.as_deref().unwrap_or_default(),
                "readiness check down"
            ),
            (Some(false), true) => tracing::info!(check = name, "readiness check up again"),
            (_, true) => {}
        }
    }
}

/// Admins (by bearer token) may see why a check failed; an invalid or missing token
/// just means "not an admin" here.
async fn caller_is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    auth::authenticate(state, token.trim())
        .await
        .is_ok_and(|user| user.is_admin())
}

async fn timed(critical: bool, check: impl Future<Output = Result<(), String>>) -> CheckOut {
    let started = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
    };
    let latency_ms = started.elapsed().as_millis() as u64;
    CheckOut {
        status: if result.is_ok() { "up" } else { "down" },
        critical,
        latency_ms,
        error: result.err(),
        breaker: None,
    }
}
