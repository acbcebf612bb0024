//! Redis → sockets. An instance listens only to the channels `chat:<session_id>` of
//! rooms it holds a joined socket of ([`super::subscriptions`]), and forwards each
//! message to its sockets in that room, in the order Redis delivered them (one
//! connection, one task: per-channel order is kept).
//!
//! Two kinds of messages travel on these channels:
//! - agent items on `chat:<session_id>` (the contract's `newMessage` items), forwarded
//!   to the room of that session's page;
//! - backend fan-out envelopes `{"_relay": {event, room, except?}, "payload": ...}`
//!   (user messages, presence, read receipts, session changes) so that members on
//!   other instances see them too.
//!
//! The relay never waits for the database: a channel is subscribed only for a room
//! that a local socket joined, so its room is known before its first item arrives.
//!
//! Items are not parsed into a JSON tree: the relay checks the text is JSON and hands
//! it to each socket as it came. A socket whose send buffer is full (a client that
//! stopped reading) is not skipped silently: it leaves its rooms and is disconnected,
//! so it never sees a later item after a missing one; the client reconnects and
//! `resume`s from its last seq (docs/chat.md "Relay across instances").

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use redis::{PushInfo, PushKind, Value as RedisValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use socketioxide::{SendError, SocketError, SocketIo, extract::SocketRef};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::{NAMESPACE, subscriptions::Subscriptions};
use crate::metrics;

/// How often a full socket is asked again to take its disconnect packet, and for how
/// long (after that engine.io's own heartbeat, which cannot queue its ping either,
/// has closed it).
const DISCONNECT_RETRY: Duration = Duration::from_millis(250);
const DISCONNECT_GIVE_UP: Duration = Duration::from_secs(60);

/// Sockets disconnected because their send buffer was full (also exported as
/// `mocheong_chat_relay_slow_sockets_total`; tests read this one).
pub static SLOW_SOCKETS_DISCONNECTED: AtomicU64 = AtomicU64::new(0);

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

/// A received envelope, its payload left as the text it came as.
#[derive(Deserialize)]
struct IncomingEnvelope<'a> {
    #[serde(rename = "_relay")]
    relay: RelayTarget,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The part of a `session-info` payload the relay reads: the room moved to a session.
#[derive(Deserialize)]
struct SessionInfo<'a> {
    session_id: &'a str,
}

/// Publishes a fan-out envelope that every instance listening to `channel` relays to
/// its sockets in `room`.
pub async fn broadcast(
    redis: &crate::redis_conn::Redis,
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
    redis.publish_chat(channel, text).await
}

/// Forwards what the pub/sub connection delivers until shutdown.
pub fn spawn(
    io: SocketIo,
    subs: Arc<Subscriptions>,
    mut pushes: UnboundedReceiver<PushInfo>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let push = tokio::select! {
                _ = shutdown.cancelled() => return,
                push = pushes.recv() => match push {
                    Some(p) => p,
                    None => return,
                },
            };
            match push.kind {
                PushKind::Message | PushKind::SMessage => {
                    if let [
                        RedisValue::BulkString(channel),
                        RedisValue::BulkString(payload),
                    ] = push.data.as_slice()
                    {
                        on_message(&io, &subs, channel, payload);
                    }
                }
                PushKind::Disconnection => subs.connection_lost(),
                _ => {}
            }
        }
    });
}

fn on_message(io: &SocketIo, subs: &Arc<Subscriptions>, channel: &[u8], bytes: &[u8]) {
    metrics::relay_items("in", 1);
    let channel = String::from_utf8_lossy(channel);
    let Ok(text) = serde_json::from_slice::<&RawValue>(bytes) else {
        tracing::debug!(%channel, "chat relay: message is not JSON; ignored");
        return;
    };
    // The backend's envelopes start with their `_relay` field (serde keeps the
    // struct's field order); agent items never have one.
    if text.get().starts_with(r#"{"_relay""#) {
        match serde_json::from_str::<IncomingEnvelope>(text.get()) {
            Ok(env) => {
                send_to_room(
                    io,
                    &env.relay.room,
                    env.relay.except.as_deref(),
                    &env.relay.event,
                    env.payload,
                );
                // A member started a new conversation: the room's items now also
                // come on the new session's channel.
                if env.relay.event == "session-info"
                    && let Ok(info) = serde_json::from_str::<SessionInfo>(env.payload.get())
                {
                    let (subs, room) = (Arc::clone(subs), env.relay.room.clone());
                    let session = info.session_id.to_owned();
                    tokio::spawn(async move { subs.add_session(&room, &session).await });
                }
            }
            Err(e) => tracing::warn!(%channel, error = %e, "chat relay: bad envelope"),
        }
        return;
    }
    let Some(session_id) = super::store::session_of_channel(&channel) else {
        return;
    };
    match subs.room_of(session_id) {
        Some(room) => send_to_room(io, &room, None, "newMessage", text),
        // Unsubscribed a moment ago (the room's last local socket left).
        None => metrics::relay_dropped("no_local_room", 1),
    }
}

/// Hands `data` to every socket of this instance in `room`.
fn send_to_room(io: &SocketIo, room: &str, except: Option<&str>, event: &str, data: &RawValue) {
    let Some(ns) = io.of(NAMESPACE) else {
        return;
    };
    let mut sent = 0;
    for socket in ns.to(room.to_owned()).sockets() {
        if except == Some(socket.id.as_str()) {
            continue;
        }
        match socket.emit(event, data) {
            Ok(()) => sent += 1,
            Err(SendError::Socket(SocketError::Closed)) => {}
            Err(SendError::Socket(SocketError::InternalChannelFull)) => drop_slow(socket, room),
            Err(e) => tracing::warn!(sid = %socket.id, error = %e, "chat relay: item not sent"),
        }
    }
    if sent > 0 {
        metrics::relay_items("out", sent);
    }
}

/// A socket whose buffer is full has just missed an item: it must not receive later
/// ones as if nothing happened. It leaves every room at once, and is disconnected as
/// soon as its disconnect packet fits (socketioxide refuses it while the buffer is
/// full); a client that never reads again is closed by engine.io's heartbeat, whose
/// ping cannot be queued either.
fn drop_slow(socket: SocketRef, room: &str) {
    metrics::relay_slow_socket();
    let total = SLOW_SOCKETS_DISCONNECTED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::warn!(
        sid = %socket.id,
        room,
        total,
        "chat relay: socket is not reading (send buffer full); disconnecting it so its client resumes"
    );
    socket.leave_all();
    tokio::spawn(async move {
        let started = Instant::now();
        while socket.connected() && started.elapsed() < DISCONNECT_GIVE_UP {
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull) => {
                    tokio::time::sleep(DISCONNECT_RETRY).await;
                }
                _ => return,
            }
        }
    });
}
