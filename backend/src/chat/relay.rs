//! Redis → sockets. Each instance holds ONE pattern subscription to `chat:*` and
//! forwards every item to the sockets it holds in the matching room, in the order
//! Redis delivered them (one task, one subscription: per-channel order is kept).
//!
//! Two kinds of messages travel on these channels:
//! - agent items on `chat:<session_id>` (the contract's `newMessage` items), forwarded
//!   to the room of that session's page;
//! - backend fan-out envelopes `{"_relay": {event, room, except?}, "payload": ...}`
//!   (user messages, presence, read receipts, session changes) so that members on
//!   other instances see them too.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use futures::StreamExt;
use redis::AsyncCommands;
use sea_orm::EntityTrait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;

use super::NAMESPACE;
use crate::{db::chat_session, state::AppState};

#[derive(Debug, Serialize, Deserialize)]
pub struct RelayEnvelope {
    #[serde(rename = "_relay")]
    pub relay: RelayTarget,
    pub payload: Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RelayTarget {
    pub event: String,
    pub room: String,
    /// The sending socket, which already has its own answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
}

/// Publishes a fan-out envelope that every instance relays to its sockets in `room`.
pub async fn broadcast(
    redis: &redis::aio::ConnectionManager,
    channel: &str,
    event: &str,
    room: &str,
    except: Option<String>,
    payload: Value,
) -> redis::RedisResult<()> {
    let envelope = RelayEnvelope {
        relay: RelayTarget {
            event: event.to_owned(),
            room: room.to_owned(),
            except,
        },
        payload,
    };
    let text = serde_json::to_string(&envelope).unwrap_or_default();
    redis
        .clone()
        .publish::<_, _, i64>(channel, text)
        .await
        .map(|_| ())
}

/// session id → room, filled on first sight (a session never changes its page).
#[derive(Default)]
struct RoomCache(Mutex<HashMap<String, String>>);

impl RoomCache {
    async fn room_of(&self, state: &AppState, session_id: &str) -> Option<String> {
        if let Some(room) = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session_id)
        {
            return Some(room.clone());
        }
        let session = chat_session::Entity::find_by_id(session_id.to_owned())
            .one(&state.db)
            .await
            .ok()??;
        let room = super::room_name(&session.page_id);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(session_id.to_owned(), room.clone());
        Some(room)
    }
}

/// Runs until shutdown, re-subscribing after Redis connection losses.
pub fn spawn(state: AppState, client: redis::Client, io: SocketIo, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let cache = RoomCache::default();
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if let Err(e) = pubsub.psubscribe("chat:*").await {
                        tracing::warn!(error = %e, "chat relay: subscribe failed");
                    } else {
                        tracing::info!("chat relay subscribed to chat:*");
                        let mut messages = pubsub.on_message();
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                next = messages.next() => match next {
                                    Some(msg) => {
                                        let channel = msg.get_channel_name().to_owned();
                                        if let Ok(text) = msg.get_payload::<String>() {
                                            deliver(&state, &io, &cache, &channel, &text).await;
                                        }
                                    }
                                    None => break,
                                }
                            }
                        }
                        tracing::warn!("chat relay: Redis subscription lost; reconnecting");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "chat relay: cannot connect to Redis"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
}

async fn deliver(state: &AppState, io: &SocketIo, cache: &RoomCache, channel: &str, text: &str) {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let (event, room, except, payload) = if value.get("_relay").is_some() {
        match serde_json::from_value::<RelayEnvelope>(value) {
            Ok(env) => (
                env.relay.event,
                env.relay.room,
                env.relay.except,
                env.payload,
            ),
            Err(_) => return,
        }
    } else {
        let session_id = value["session_id"]
            .as_str()
            .or_else(|| channel.strip_prefix("chat:"))
            .unwrap_or_default()
            .to_owned();
        let Some(room) = cache.room_of(state, &session_id).await else {
            return;
        };
        ("newMessage".to_owned(), room, None, value)
    };
    let Some(ns) = io.of(NAMESPACE) else {
        return;
    };
    for socket in ns.to(room).sockets() {
        if except.as_deref() == Some(socket.id.as_str()) {
            continue;
        }
        let _ = socket.emit(event.as_str(), &payload);
    }
}
