//! The chat with the AI assistant: a Socket.IO gateway (namespace `/chat`), the
//! hand-off to the agent-manager, the Redis relay back to the rooms, exactly-once
//! persistence of answers, resume after reconnects, and the history REST API.
//! Contracts: docs/chat.md.

pub mod agent;
mod gateway;
pub mod history;
mod owned_parts;
pub mod persist;
mod presence;
pub mod relay;
pub mod store;

use std::sync::Arc;

use serde_json::json;
use socketioxide::{SocketIo, handler::ConnectHandler, layer::SocketIoLayer};
use tower::layer::util::Stack;

use crate::{auth::rate_limit::KeyedLimiter, state::AppState};
use agent::AgentClient;

pub const NAMESPACE: &str = "/chat";

/// tungstenite's read buffer per socket (its default is 4 KiB). Client frames are
/// small (events of a few hundred bytes); a larger frame grows the buffer as needed.
const WS_READ_BUFFER: usize = 1024;

/// The Socket.IO layer with [`owned_parts::OwnedPartsLayer`] in front of it.
pub type ChatLayer = Stack<SocketIoLayer, owned_parts::OwnedPartsLayer>;

/// What the socket handlers share.
pub struct ChatRuntime {
    pub state: AppState,
    pub redis: Option<redis::aio::ConnectionManager>,
    pub agent: AgentClient,
    /// Messages per user per minute.
    pub limiter: KeyedLimiter<String>,
}

pub fn room_name(page_id: &str) -> String {
    format!("page-{page_id}")
}

/// Builds the Socket.IO layer and starts the background loops (relay, completion
/// consumer, presence heartbeat) when Redis is configured. Returns the layer to put
/// on the router and the `SocketIo` handle (closed at shutdown).
pub fn start(state: &AppState) -> (ChatLayer, SocketIo) {
    let rt = Arc::new(ChatRuntime {
        state: state.clone(),
        redis: state.redis.clone(),
        agent: AgentClient::new(
            state.cfg.chat.clone(),
            state.cfg.agent_manager_url.clone(),
            state.http.clone(),
            state.redis.clone(),
        ),
        limiter: KeyedLimiter::per_minute(state.cfg.chat.rate_per_minute),
    });
    let (layer, io) = SocketIo::builder()
        .with_state(Arc::clone(&rt))
        .max_buffer_size(state.cfg.chat.socket_buffer)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .build_layer();
    // The runtime must not hold `io` (which holds the runtime): handlers that need it
    // take socketioxide's `SocketIo` extractor.
    io.ns(
        NAMESPACE,
        gateway::on_connect.with(gateway::authenticate_socket),
    );

    disconnect_suspended(state, io.clone());

    let redis_client = state
        .cfg
        .redis_url
        .as_ref()
        .and_then(|url| redis::Client::open(secrecy::ExposeSecret::expose_secret(url)).ok());
    if let (Some(client), Some(redis)) = (redis_client, state.redis.clone()) {
        relay::spawn(
            state.clone(),
            client.clone(),
            io.clone(),
            state.shutdown.clone(),
        );
        persist::spawn(state.clone(), client, state.shutdown.clone());
        presence::spawn_heartbeat(io.clone(), redis, state.shutdown.clone());
    } else {
        tracing::warn!(
            "REDIS_URL is not set: the chat gateway accepts connections but cannot reach the assistant"
        );
    }
    (Stack::new(layer, owned_parts::OwnedPartsLayer), io)
}

/// A suspended account loses its open sockets at once, on every instance: the
/// `account.suspended` event reaches each instance's subscribers (new connections
/// are already refused by the handshake, which reads the user row).
fn disconnect_suspended(state: &AppState, io: SocketIo) {
    let mut events = state.events.subscribe();
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(e) if e.event_type == crate::events::ACCOUNT_SUSPENDED => {
                    let Some(ns) = io.of(NAMESPACE) else { continue };
                    for socket in ns.sockets() {
                        let suspended = socket
                            .extensions
                            .get::<gateway::SocketUser>()
                            .is_some_and(|u| e.user_ids.contains(&u.0.id));
                        if suspended {
                            let _ = socket.disconnect();
                        }
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// The room hears an `error` item for a message the agent never received, within
/// the hand-off bound. It also goes to the durable stream, so a resume sees it.
pub async fn publish_failure(
    redis: &redis::aio::ConnectionManager,
    session_id: &str,
    message_id: &str,
    reason: &str,
) {
    use redis::AsyncCommands;
    tracing::debug!(reason, "hand-off failure announced");
    let item = json!({
        "session_id": session_id, "message_id": message_id, "seq": 0, "role": "assistant", "type": "error",
        "content": "The assistant could not be reached. Please send your message again.",
    })
    .to_string();
    let mut conn = redis.clone();
    let _: redis::RedisResult<String> = conn
        .xadd(
            store::session_stream_key(session_id),
            "*",
            &[("item", item.as_str())],
        )
        .await;
    let _: redis::RedisResult<i64> = conn.publish(store::session_channel(session_id), item).await;
}
