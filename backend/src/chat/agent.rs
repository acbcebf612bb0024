//! Handing a user message to the agent-manager: over HTTP (`POST /chat`, the default)
//! or by putting a Celery protocol v2 task straight on the worker's queue — a Redis
//! list, or a RabbitMQ queue (`super::amqp`). Either way the answer comes back through
//! Redis (see `relay` and `persist`).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use redis::AsyncCommands;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};

use super::amqp::{AmqpPublisher, amqp_message};
use crate::config::{AgentHandoff, ChatConfig};

/// The body of `POST /chat`, and the kwargs of the Celery task (the same contract).
#[derive(Clone, Debug, Serialize)]
pub struct AgentRequest {
    pub message: String,
    pub session_id: String,
    pub message_id: String,
    pub user_id: String,
    pub page_id: String,
    pub wedding_context: Value,
    pub history: Vec<HistoryTurn>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryTurn {
    pub role: &'static str,
    pub content: String,
}

pub const TASK_NAME: &str = "agent.process_chat_message";

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("the assistant is temporarily unavailable (circuit open)")]
    CircuitOpen,
    #[error("the assistant could not be reached: {0}")]
    Unreachable(String),
    #[error("the assistant refused the message: {0}")]
    Refused(String),
}

/// What the breaker lets through, as readiness and `/metrics` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Hand-offs go through.
    Closed,
    /// Hand-offs fail fast until the cool-down ends.
    Open,
    /// The cool-down ended: one probe hand-off goes (or is going) through.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Default)]
struct Trip {
    /// `None` while closed.
    open_until: Option<Instant>,
    /// The half-open probe is in flight.
    probing: bool,
}

/// Fails fast after repeated failures instead of making every hand-off wait for
/// timeouts. Per instance; every state change is logged (`agent breaker ...`). Shared
/// (an `Arc` in `AppState`) so that readiness and `/metrics` can read its state.
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    failures: AtomicU32,
    trip: Mutex<Trip>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold,
            cooldown,
            failures: AtomicU32::new(0),
            trip: Mutex::new(Trip::default()),
        }
    }

    fn trip(&self) -> std::sync::MutexGuard<'_, Trip> {
        self.trip.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state now; cheap (one uncontended lock), for probes and scrapes.
    pub fn state(&self) -> BreakerState {
        let trip = self.trip();
        match trip.open_until {
            None => BreakerState::Closed,
            Some(_) if trip.probing => BreakerState::HalfOpen,
            Some(until) if Instant::now() >= until => BreakerState::HalfOpen,
            Some(_) => BreakerState::Open,
        }
    }

    /// Whether a call may go through now. After the cool-down one probe call is let
    /// through (half-open); its outcome closes or re-opens the circuit.
    pub fn allow(&self) -> bool {
        let mut trip = self.trip();
        match trip.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                // Another probe only if this one never reports back within a cool-down.
                trip.open_until = Some(Instant::now() + self.cooldown);
                trip.probing = true;
                tracing::info!(
                    breaker = "half_open",
                    "agent breaker half-open: one probe hand-off"
                );
                true
            }
            None => true,
        }
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        let mut trip = self.trip();
        trip.probing = false;
        if trip.open_until.take().is_some() {
            crate::metrics::agent_breaker(false);
            tracing::info!(
                breaker = "closed",
                "agent breaker closed: the agent-manager answers again"
            );
        }
    }

    pub fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.threshold {
            let mut trip = self.trip();
            if trip.open_until.is_none() {
                crate::metrics::agent_breaker(true);
                tracing::warn!(
                    breaker = "open",
                    failures = n,
                    cooldown_ms = self.cooldown.as_millis() as u64,
                    "agent breaker open: hand-offs wait for the probe"
                );
            }
            trip.open_until = Some(Instant::now() + self.cooldown);
            trip.probing = false;
        }
    }
}

pub struct AgentClient {
    cfg: ChatConfig,
    base_url: Option<String>,
    http: reqwest::Client,
    redis: Option<redis::aio::ConnectionManager>,
    broker: Broker,
    breaker: Arc<CircuitBreaker>,
}

/// Where a direct (Celery) hand-off goes, from `AGENT_BROKER_URL`.
#[allow(
    clippy::large_enum_variant,
    reason = "one per AgentClient, never moved around"
)]
enum Broker {
    /// Unset, or the same URL as `REDIS_URL`: the shared Redis connection.
    SharedRedis,
    /// Another Redis, connected on first use (the connection manager then reconnects).
    Redis {
        client: redis::Client,
        conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    },
    Amqp(AmqpPublisher),
}

impl Broker {
    fn from_config(cfg: &ChatConfig, redis_url: Option<&str>) -> Broker {
        let Some(url) = cfg.broker_url.as_ref().map(|u| u.expose_secret()) else {
            return Broker::SharedRedis;
        };
        if url.starts_with("amqp://") || url.starts_with("amqps://") {
            return Broker::Amqp(AmqpPublisher::new(
                url.to_owned().into(),
                cfg.queue.clone(),
                &cfg.instance_id,
            ));
        }
        if Some(url) == redis_url {
            return Broker::SharedRedis;
        }
        match redis::Client::open(url) {
            Ok(client) => Broker::Redis {
                client,
                conn: tokio::sync::OnceCell::new(),
            },
            Err(e) => {
                tracing::error!(error = %e, "AGENT_BROKER_URL is not a usable Redis URL");
                Broker::SharedRedis
            }
        }
    }
}

impl AgentClient {
    /// `redis_url` is `REDIS_URL`, the URL of the shared `redis` connection.
    pub fn new(
        cfg: ChatConfig,
        base_url: Option<String>,
        http: reqwest::Client,
        redis: Option<redis::aio::ConnectionManager>,
        redis_url: Option<&str>,
        breaker: Arc<CircuitBreaker>,
    ) -> Self {
        let broker = Broker::from_config(&cfg, redis_url);
        AgentClient {
            cfg,
            base_url,
            http,
            redis,
            broker,
            breaker,
        }
    }

    /// One hand-off attempt, bounded by `AGENT_TIMEOUT_MS`. The outbox dispatcher
    /// retries failed ones with backoff; a 4xx is final.
    pub async fn submit(&self, req: &AgentRequest) -> Result<(), HandoffError> {
        if !self.breaker.allow() {
            return Err(HandoffError::CircuitOpen);
        }
        let result = match self.cfg.handoff {
            AgentHandoff::Http => self.post_chat(req).await,
            AgentHandoff::Celery => self.enqueue_celery(req).await,
        };
        match &result {
            // A 4xx shows the agent-manager is up; the message itself is the problem.
            Ok(()) | Err(HandoffError::Refused(_)) => self.breaker.success(),
            Err(_) => self.breaker.failure(),
        }
        result
    }

    async fn post_chat(&self, req: &AgentRequest) -> Result<(), HandoffError> {
        let base = self
            .base_url
            .as_ref()
            .ok_or_else(|| HandoffError::Unreachable("AGENT_MANAGER_URL is not set".into()))?;
        let mut call = self
            .http
            .post(format!("{base}/chat"))
            .timeout(self.cfg.agent_timeout)
            .json(req);
        if let Some(token) = &self.cfg.service_token {
            call = call.header("X-Service-Token", token.expose_secret());
        }
        let res = call
            .send()
            .await
            .map_err(|e| HandoffError::Unreachable(e.without_url().to_string()))?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() {
            Err(HandoffError::Refused(format!(
                "agent-manager answered {status}"
            )))
        } else {
            Err(HandoffError::Unreachable(format!(
                "agent-manager answered {status}"
            )))
        }
    }

    async fn enqueue_celery(&self, req: &AgentRequest) -> Result<(), HandoffError> {
        let kwargs = serde_json::to_value(req).map_err(|e| HandoffError::Refused(e.to_string()))?;
        let mut conn = match &self.broker {
            Broker::Amqp(publisher) => {
                let msg = amqp_message(&kwargs, &self.cfg.instance_id);
                return publisher.publish(msg, self.cfg.agent_timeout).await;
            }
            Broker::SharedRedis => self
                .redis
                .clone()
                .ok_or_else(|| HandoffError::Unreachable("Redis is not configured".into()))?,
            Broker::Redis { client, conn } => {
                let connect = conn.get_or_try_init(|| client.get_connection_manager());
                match tokio::time::timeout(self.cfg.agent_timeout, connect).await {
                    Ok(Ok(c)) => c.clone(),
                    Ok(Err(e)) => return Err(HandoffError::Unreachable(e.to_string())),
                    Err(_) => {
                        return Err(HandoffError::Unreachable(
                            "the Redis broker did not answer in time".into(),
                        ));
                    }
                }
            }
        };
        let envelope = celery_envelope(&self.cfg.queue, &kwargs, &self.cfg.instance_id);
        let push = conn.lpush::<_, _, i64>(&self.cfg.queue, envelope.to_string());
        match tokio::time::timeout(self.cfg.agent_timeout, push).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(HandoffError::Unreachable(e.to_string())),
            Err(_) => Err(HandoffError::Unreachable(
                "Redis did not answer in time".into(),
            )),
        }
    }
}

/// The Celery protocol v2 headers of one task (the same on Redis and AMQP).
pub fn celery_headers(task_id: &str, kwargs: &Value, origin: &str) -> Value {
    let message_id = kwargs.get("message_id").cloned().unwrap_or(Value::Null);
    json!({
        "lang": "py",
        "task": TASK_NAME,
        "id": task_id,
        "shadow": null,
        "eta": null,
        "expires": null,
        "group": null,
        "group_index": null,
        "retries": 0,
        "timelimit": [null, null],
        "root_id": task_id,
        "parent_id": null,
        "argsrepr": "()",
        "kwargsrepr": format!("{{'message_id': {message_id}}}"),
        "origin": format!("mocheong-backend@{origin}"),
        "ignore_result": true
    })
}

/// The task body `[args, kwargs, embed]`: no positional args, no callbacks or chain.
pub fn celery_body(kwargs: &Value) -> Value {
    json!([[], kwargs, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])
}

/// The kombu Redis message carrying a Celery protocol v2 task (see
/// docs/agent-manager.md, "Celery task"): `body` is base64 of `[args, kwargs, embed]`.
pub fn celery_envelope(queue: &str, kwargs: &Value, origin: &str) -> Value {
    let task_id = uuid::Uuid::new_v4().to_string();
    json!({
        "body": STANDARD.encode(celery_body(kwargs).to_string()),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": celery_headers(&task_id, kwargs, origin),
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": uuid::Uuid::new_v4().to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_body_decodes_to_args_kwargs_embed() {
        let kwargs = json!({"message": "언제?", "message_id": "m1"});
        let env = celery_envelope("celery", &kwargs, "host");
        let body: Value =
            serde_json::from_slice(&STANDARD.decode(env["body"].as_str().unwrap()).unwrap())
                .unwrap();
        assert_eq!(body[0], json!([]));
        assert_eq!(body[1], kwargs);
        assert_eq!(body[2]["chain"], Value::Null);
        assert_eq!(env["headers"]["task"], TASK_NAME);
        assert_eq!(env["headers"]["id"], env["properties"]["correlation_id"]);
        assert_ne!(env["headers"]["id"], env["properties"]["delivery_tag"]);
        assert_eq!(env["properties"]["delivery_info"]["routing_key"], "celery");
    }

    #[test]
    fn breaker_opens_after_threshold_and_half_opens_after_cooldown() {
        let b = CircuitBreaker::new(2, Duration::from_millis(20));
        assert!(b.allow());
        b.failure();
        assert!(b.allow());
        b.failure();
        assert!(!b.allow(), "open after two failures");
        assert_eq!(b.state(), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(b.state(), BreakerState::HalfOpen, "a probe may go");
        assert!(b.allow(), "one trial after the cool-down");
        assert!(!b.allow(), "only one trial while half-open");
        assert_eq!(b.state(), BreakerState::HalfOpen, "the probe is in flight");
        b.failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed probe re-opens it");
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
    }
}
