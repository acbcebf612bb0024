//! The chat with the AI assistant: a Socket.IO gateway (namespace `/chat`), the
//! hand-off to the agent-manager, the Redis relay back to the rooms, exactly-once
//! persistence of answers, resume after reconnects, and the history REST API.
//! Contracts: docs/chat.md.

pub mod agent;
pub mod amqp;
pub mod deadline;
mod gateway;
pub mod history;
pub mod membership;
pub mod outbox;
mod owned_parts;
pub mod persist;
mod presence;
pub mod rate_limit;
pub mod relay;
pub mod store;
pub mod subscriptions;
pub mod turn;

use std::sync::Arc;

use serde_json::json;
use socketioxide::{SocketIo, extract::SocketRef, handler::ConnectHandler, layer::SocketIoLayer};
use tower::layer::util::Stack;

use crate::state::AppState;
use agent::AgentClient;
use rate_limit::ChatRateLimit;
use subscriptions::Subscriptions;

pub const NAMESPACE: &str = "/chat";

/// tungstenite's read buffer per socket, kept for the socket's life (engineioxide's
/// default is 4 KiB). Client frames are small: pings, events of a few hundred bytes;
/// a larger frame grows the buffer to its size once its header is read.
const WS_READ_BUFFER: usize = 256;

/// The Socket.IO layer with [`owned_parts::OwnedPartsLayer`] in front of it.
pub type ChatLayer = Stack<SocketIoLayer, owned_parts::OwnedPartsLayer>;

/// What the socket handlers share.
pub struct ChatRuntime {
    pub state: AppState,
    pub redis: Option<crate::redis_conn::Redis>,
    pub agent: AgentClient,
    /// Messages per user per minute, across instances.
    pub limiter: ChatRateLimit,
    /// Wakes this instance's hand-off dispatcher when a message was just stored.
    pub wake: tokio::sync::Notify,
    /// The session channels this instance listens to (with Redis).
    pub subs: Option<Arc<Subscriptions>>,
}

pub fn room_name(page_id: &str) -> String {
    format!("page-{page_id}")
}

/// Builds the Socket.IO layer and starts the background loops (relay, completion
/// consumer, hand-off dispatcher, deadline sweeper, presence heartbeat) when Redis is
/// configured. Returns the layer to put on the router and the `SocketIo` handle
/// (closed at shutdown).
pub fn start(state: &AppState) -> (ChatLayer, SocketIo) {
    let redis_url = state
        .cfg
        .redis_url
        .as_ref()
        .map(|url| secrecy::ExposeSecret::expose_secret(url).to_owned());
    // The relay's pub/sub connection speaks RESP3: subscriptions are commands on a
    // normal connection (confirmed before a join is answered) and messages arrive as
    // pushes on this channel.
    let (pushes_tx, pushes) = tokio::sync::mpsc::unbounded_channel();
    let subs = redis_url
        .as_deref()
        .filter(|_| state.redis.is_some())
        .and_then(|url| {
            let source = if state.cfg.redis_cluster {
                subscriptions::Source::Cluster(Box::new(
                    crate::redis_conn::cluster_client(url, Some(pushes_tx.clone())).ok()?,
                ))
            } else {
                let client = redis::Client::open(url).ok()?;
                let info = client.get_connection_info().clone();
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                subscriptions::Source::Single(
                    redis::Client::open(info.set_redis_settings(settings)).ok()?,
                )
            };
            Some(Subscriptions::new(source, pushes_tx))
        });
    let rt = Arc::new(ChatRuntime {
        state: state.clone(),
        redis: state.redis.clone(),
        agent: AgentClient::new(
            state.cfg.chat.clone(),
            state.cfg.agent_manager_url.clone(),
            state.http.clone(),
            // The direct Celery hand-off on the shared Redis needs a single server
            // (config refuses it with REDIS_MODE=cluster).
            state.redis.as_ref().and_then(|r| r.single().cloned()),
            state
                .cfg
                .redis_url
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret),
            Arc::clone(&state.agent_breaker),
        ),
        limiter: ChatRateLimit::new(state.cfg.chat.rate_per_minute, state.redis.clone()),
        wake: tokio::sync::Notify::new(),
        subs: subs.clone(),
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

    enforce_access(state, io.clone(), subs.clone());
    membership::spawn(state.clone(), io.clone(), subs.clone());

    if let (Some(url), Some(redis), Some(subs)) = (redis_url, state.redis.clone(), subs) {
        subs.spawn_maintenance(state.shutdown.clone());
        relay::spawn(
            io.clone(),
            subs,
            pushes,
            state.redis.clone(),
            state.shutdown.clone(),
        );
        persist::spawn(state.clone(), url, state.shutdown.clone());
        outbox::spawn(Arc::clone(&rt), state.shutdown.clone());
        deadline::spawn(Arc::clone(&rt), redis.clone(), state.shutdown.clone());
        presence::spawn_heartbeat(io.clone(), redis, state.shutdown.clone());
    } else {
        tracing::warn!(
            "REDIS_URL is not set: the chat gateway accepts connections but cannot reach the assistant"
        );
    }
    (Stack::new(layer, owned_parts::OwnedPartsLayer), io)
}

/// Access is enforced on open sockets at once, on every instance: the domain events
/// reach each instance's subscribers. A suspended account loses its sockets (new
/// connections are already refused by the handshake, which reads the user row); a
/// user who lost a page (removed as editor, page deleted) leaves its room.
fn enforce_access(state: &AppState, io: SocketIo, subs: Option<Arc<Subscriptions>>) {
    let mut events = state.events.subscribe();
    let shutdown = state.shutdown.clone();
    let redis = state.redis.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                e = events.recv() => e,
            };
            let Some(ns) = io.of(NAMESPACE) else { continue };
            match event {
                Ok(e) if e.event_type == crate::events::ACCOUNT_SUSPENDED => {
                    for socket in ns.sockets() {
                        if socket_user_in(&socket, &e.user_ids) {
                            let _ = socket.disconnect();
                        }
                    }
                }
                Ok(e) if e.event_type == crate::events::PAGE_ACCESS_REVOKED => {
                    if let Some(page_id) = e.data["pageId"].as_str() {
                        evict_from_room(&io, redis.as_ref(), subs.as_ref(), page_id, &e.user_ids)
                            .await;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

fn socket_user_in(socket: &SocketRef, user_ids: &[String]) -> bool {
    socket
        .extensions
        .get::<gateway::SocketUser>()
        .is_some_and(|u| user_ids.contains(&u.0.id))
}

/// Takes `user_ids`' sockets on this instance out of the page's room, so the relay
/// (which sends to the room's sockets) delivers them nothing more; they are told
/// with `room-closed {room, reason}` and must `joinRoom` again (refused now).
async fn evict_from_room(
    io: &SocketIo,
    redis: Option<&crate::redis_conn::Redis>,
    subs: Option<&Arc<Subscriptions>>,
    page_id: &str,
    user_ids: &[String],
) {
    let Some(ns) = io.of(NAMESPACE) else { return };
    for socket in ns.to(room_name(page_id)).sockets() {
        if socket_user_in(&socket, user_ids) {
            evict_socket(io, redis, subs, &socket, page_id).await;
        }
    }
}

/// Takes one socket out of the page's room (see [`evict_from_room`]).
async fn evict_socket(
    io: &SocketIo,
    redis: Option<&crate::redis_conn::Redis>,
    subs: Option<&Arc<Subscriptions>>,
    socket: &SocketRef,
    page_id: &str,
) {
    let room = room_name(page_id);
    socket.leave(room.clone());
    let mut joined = socket
        .extensions
        .get::<gateway::JoinedRooms>()
        .unwrap_or_default();
    let session = joined.session_of(&room).unwrap_or_default();
    joined.0.retain(|r| r.room != room);
    socket.extensions.insert(joined);
    let current = socket.extensions.get::<gateway::CurrentRoom>();
    if current.as_ref().is_some_and(|c| c.room == room) {
        socket.extensions.remove::<gateway::CurrentRoom>();
    }
    let sid = socket.id.to_string();
    if let Some(subs) = subs {
        subs.leave(&room, &sid);
    }
    if let (Some(redis), Some(user)) = (redis, socket.extensions.get::<gateway::SocketUser>()) {
        presence::left(io, redis, &room, &session, &user.0.id, &sid).await;
    }
    let _ = socket.emit(
        "room-closed",
        &json!({"room": room, "reason": "access_revoked"}),
    );
    tracing::info!(sid = %socket.id, room, "socket removed from a room it lost access to");
}
