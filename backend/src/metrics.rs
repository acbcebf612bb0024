//! Prometheus metrics: every name is registered (described) once here; the rest of the
//! code only calls the small functions below. `GET /metrics` renders them in the text
//! exposition format, behind `METRICS_TOKEN` (docs/operations.md, "Metrics").
//!
//! The recorder is process-wide (the `metrics` crate's global): one process is one
//! instance. Figures that already live somewhere (open sockets, SSE streams, the
//! database pool) are read at scrape time instead of being counted twice.

use std::{
    sync::{LazyLock, OnceLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DbBackend;
use secrecy::ExposeSecret;

use crate::{chat::agent::BreakerState, error::Error, state::AppState};

/// The metric names, for dashboards and alerts (listed in docs/operations.md).
pub mod names {
    pub const HTTP_REQUESTS: &str = "mocheong_http_requests_total";
    pub const HTTP_DURATION: &str = "mocheong_http_request_duration_seconds";
    pub const SOCKETIO_SOCKETS: &str = "mocheong_socketio_sockets";
    pub const SSE_STREAMS: &str = "mocheong_sse_streams";
    pub const DB_POOL_CONNECTIONS: &str = "mocheong_db_pool_connections";
    pub const DB_POOL_MAX: &str = "mocheong_db_pool_max_connections";
    pub const RELAY_ITEMS: &str = "mocheong_chat_relay_items_total";
    pub const RELAY_LAG: &str = "mocheong_chat_relay_lag_seconds";
    pub const RELAY_SLOW_SOCKETS: &str = "mocheong_chat_relay_slow_sockets_total";
    pub const RELAY_DROPPED: &str = "mocheong_chat_relay_dropped_items_total";
    pub const RELAY_SUBSCRIPTIONS: &str = "mocheong_chat_relay_subscriptions";
    pub const HANDOFFS: &str = "mocheong_chat_handoffs_total";
    pub const HANDOFF_DURATION: &str = "mocheong_chat_handoff_duration_seconds";
    pub const BREAKER_OPEN: &str = "mocheong_chat_agent_breaker_open";
    pub const BREAKER_STATE: &str = "mocheong_chat_agent_breaker_state";
    pub const TURNS: &str = "mocheong_chat_turns_total";
    pub const OUTBOX_PENDING: &str = "mocheong_chat_outbox_pending";
    pub const MEMBERSHIP_EVICTIONS: &str = "mocheong_chat_membership_evictions_total";
    pub const BUILD_INFO: &str = "mocheong_build_info";
}
use names::*;

/// Latency buckets in seconds: 1 ms to 30 s (the request timeout).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder and describes every metric; later calls return the same
/// handle (tests build many apps in one process).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("non-empty buckets")
            .install_recorder()
            .expect("the metrics recorder is installed once");
        describe();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        // Without the exporter's own HTTP listener nobody drains histogram samples
        // between scrapes; do it here so they cannot pile up.
        let upkeep = handle.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
        handle
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, matched route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to the response head, by method and matched route (an SSE stream counts until its head)"
    );
    describe_gauge!(
        SOCKETIO_SOCKETS,
        "Socket.IO chat sockets open on this instance"
    );
    describe_gauge!(
        SSE_STREAMS,
        "SSE notification streams open on this instance"
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Database pool connections by state (in_use, idle)"
    );
    describe_gauge!(DB_POOL_MAX, "Database pool size limit (DB_MAX_CONNECTIONS)");
    describe_counter!(
        RELAY_ITEMS,
        "Chat items relayed, by direction (in: read from Redis, out: delivered to a socket)"
    );
    describe_histogram!(
        RELAY_LAG,
        Unit::Seconds,
        "Delay from an agent item's publication (its published_at_ms, Redis time) to its hand-off to this instance's sockets in the room; one sample per item per instance with sockets in the room"
    );
    describe_counter!(
        RELAY_SLOW_SOCKETS,
        "Sockets disconnected because their send buffer was full (the client resumes)"
    );
    describe_counter!(
        RELAY_DROPPED,
        "Agent items that reached no room, by reason (no_local_room: the room's last local socket left a moment before)"
    );
    describe_gauge!(
        RELAY_SUBSCRIPTIONS,
        "Chat session channels this instance is subscribed to (rooms with a local member)"
    );
    describe_counter!(HANDOFFS, "Hand-offs to the agent-manager by outcome");
    describe_histogram!(
        HANDOFF_DURATION,
        Unit::Seconds,
        "Duration of one hand-off to the agent-manager, retries included"
    );
    describe_gauge!(
        BREAKER_OPEN,
        "1 while the agent-manager circuit breaker is not closed (open or half-open)"
    );
    describe_gauge!(
        BREAKER_STATE,
        "1 for the agent-manager circuit breaker's current state (closed, open, half_open), 0 for the others"
    );
    describe_counter!(
        TURNS,
        "Chat turns by final state (answered, stopped, failed)"
    );
    describe_gauge!(OUTBOX_PENDING, "Accepted chat messages not yet handed off");
    describe_counter!(
        MEMBERSHIP_EVICTIONS,
        "Sockets taken out of a room by the periodic membership re-check (their revocation event did not reach this instance first)"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label names the build");
}

// ---- what other modules call ------------------------------------------------------

/// The relay's per-item metrics, registered once: a `counter!` call looks its key up
/// in the recorder every time, and the relay makes three per item.
struct RelayHandles {
    items_in: Counter,
    items_out: Counter,
    lag: Histogram,
}

static RELAY: LazyLock<RelayHandles> = LazyLock::new(|| {
    // Registered after the recorder exists, or the handles would record nowhere.
    install();
    RelayHandles {
        items_in: counter!(RELAY_ITEMS, "direction" => "in"),
        items_out: counter!(RELAY_ITEMS, "direction" => "out"),
        lag: histogram!(RELAY_LAG),
    }
});

/// An item read from Redis.
pub fn relay_item_in() {
    RELAY.items_in.increment(1);
}

/// One item handed to `n` sockets of a room.
pub fn relay_items_out(n: u64) {
    RELAY.items_out.increment(n);
}

/// `n` sockets had their session closed because their send buffer was full.
pub fn relay_slow_sockets(n: u64) {
    counter!(RELAY_SLOW_SOCKETS).increment(n);
}

/// `n` agent items reached no room, for `reason`.
pub fn relay_dropped(reason: &'static str, n: u64) {
    counter!(RELAY_DROPPED, "reason" => reason).increment(n);
}

/// Chat channels subscribed now.
pub fn relay_subscriptions(count: usize) {
    gauge!(RELAY_SUBSCRIPTIONS).set(count as f64);
}

/// How long after its publication an item reached the room.
pub fn relay_lag(lag: Duration) {
    RELAY.lag.record(lag.as_secs_f64());
}

/// One hand-off finished: `outcome` is e.g. `"accepted"`, `"refused"`,
/// `"unreachable"`, `"circuit_open"`.
pub fn handoff(outcome: &'static str, took: Duration) {
    counter!(HANDOFFS, "outcome" => outcome).increment(1);
    histogram!(HANDOFF_DURATION).record(took.as_secs_f64());
}

/// The agent circuit breaker opened (`true`) or closed (`false`).
pub fn agent_breaker(open: bool) {
    gauge!(BREAKER_OPEN).set(if open { 1.0 } else { 0.0 });
}

/// A chat turn reached its final state: `"answered"`, `"stopped"` or `"failed"`.
pub fn turn_finished(state: &'static str) {
    counter!(TURNS, "state" => state).increment(1);
}

/// The membership re-check took a socket out of a room.
pub fn membership_evicted() {
    counter!(MEMBERSHIP_EVICTIONS).increment(1);
}

/// Accepted messages waiting in the outbox for their hand-off.
pub fn outbox_pending(count: u64) {
    gauge!(OUTBOX_PENDING).set(count as f64);
}

// ---- the HTTP layer and the scrape route -------------------------------------------

/// Middleware counting every request by method, matched route (the pattern, so ids do
/// not explode the label set) and status, with its latency.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    histogram!(HTTP_DURATION, "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status).increment(1);
    res
}

/// Standard methods by name; anything else as `other`, so callers cannot add labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: 404 unless `METRICS_TOKEN` is set, then only with
/// `Authorization: Bearer <token>` (401 otherwise).
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = &state.cfg.metrics_token else {
        return Error::not_found("route").into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.expose_secret().as_bytes())) {
        return Error::unauthorized("a valid metrics token is required")
            .into_code("invalid_token")
            .into_response();
    }
    record_live_figures(&state);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        install().render(),
    )
        .into_response()
}

/// Figures kept elsewhere, copied into gauges right before rendering.
fn record_live_figures(state: &AppState) {
    let (_, streams) = state.notifications.hub.counts();
    gauge!(SSE_STREAMS).set(streams as f64);
    let sockets = state
        .notifications
        .chat_sockets
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(0);
    gauge!(SOCKETIO_SOCKETS).set(sockets as f64);
    let (size, idle) = match state.db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = state.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = state.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    let in_use = (size as usize).saturating_sub(idle);
    gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
    gauge!(DB_POOL_MAX).set(f64::from(state.cfg.db_max_connections));
    // Read from the breaker itself: a cool-down ending is no event that could set it.
    let breaker = state.agent_breaker.state();
    for s in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        gauge!(BREAKER_STATE, "state" => s.as_str()).set(if s == breaker { 1.0 } else { 0.0 });
    }
    gauge!(BREAKER_OPEN).set(if breaker == BreakerState::Closed {
        0.0
    } else {
        1.0
    });
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
