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
//! it to each socket as it came. The publishing scripts put `published_at_ms` (Redis
//! time) first in every item, so the relay lag (publication → handed to the room's
//! sockets) is read from the item's first bytes and measured on Redis's clock: the
//! relay keeps the offset of its own clock to Redis's (`TIME`, every
//! [`CLOCK_SYNC_EVERY`]). Each message is encoded once per room and the same bytes go
//! to each of its sockets: agent items straight from the subscription table's sockets,
//! envelopes through a Socket.IO broadcast. A socket whose send buffer is full (a
//! client that stopped reading) is not skipped silently: engine.io closes its session
//! at once, so it never sees a later item after a missing one; the client reconnects
//! and `resume`s from its last seq (docs/chat.md "Relay across instances").

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::{PushInfo, PushKind, Value as RedisValue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use socketioxide::{BroadcastError, SocketError, SocketIo, extract::SocketRef, socket::Sid};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::{NAMESPACE, subscriptions::Subscriptions};
use crate::{metrics, redis_conn::Redis};

/// How often the relay measures its clock's offset to Redis's again.
const CLOCK_SYNC_EVERY: Duration = Duration::from_secs(10);

/// Sockets whose session was closed because their send buffer was full (also exported as
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
    redis: Option<Redis>,
    shutdown: CancellationToken,
) {
    let clock = Arc::new(RedisClock::default());
    if let Some(redis) = redis {
        tokio::spawn(sync_clock(Arc::clone(&clock), redis, shutdown.clone()));
    }
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
                        on_message(&io, &subs, &clock, channel, payload).await;
                    }
                }
                PushKind::Disconnection => subs.connection_lost(),
                PushKind::Unsubscribe | PushKind::SUnsubscribe => {
                    if let Some(RedisValue::BulkString(channel)) = push.data.first()
                        && let Ok(channel) = std::str::from_utf8(channel)
                    {
                        subs.unsubscribed(channel);
                    }
                }
                _ => {}
            }
        }
    });
}

async fn on_message(
    io: &SocketIo,
    subs: &Arc<Subscriptions>,
    clock: &RedisClock,
    channel: &[u8],
    bytes: &[u8],
) {
    metrics::relay_item_in();
    // Channels are the ones this instance subscribed to: always UTF-8.
    let Ok(channel) = std::str::from_utf8(channel) else {
        return;
    };
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
                    subs.local_members(&env.relay.room),
                    env.relay.except.as_deref(),
                    &env.relay.event,
                    env.payload,
                )
                .await;
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
    let Some(session_id) = super::store::session_of_channel(channel) else {
        return;
    };
    match subs.with_route(session_id, |room, members| {
        deliver_item(room, members, text)
    }) {
        Some(()) => {
            if let Some(lag) = published_at_ms(text.get()).and_then(|at| clock.lag_of(at)) {
                metrics::relay_lag(lag);
            }
        }
        // Unsubscribed a moment ago (the room's last local socket left).
        None => metrics::relay_dropped("no_local_room", 1),
    }
}

/// The offset (ms) from this host's clock to Redis's, which `published_at_ms` is on.
/// `i64::MIN` until first measured: no lag is recorded before that.
pub struct RedisClock(AtomicI64);

impl Default for RedisClock {
    fn default() -> Self {
        RedisClock(AtomicI64::new(i64::MIN))
    }
}

impl RedisClock {
    /// Redis's time now in ms, by this host's clock and the last measured offset.
    pub fn now_ms(&self) -> Option<i64> {
        let offset = self.0.load(Ordering::Relaxed);
        (offset != i64::MIN).then(|| local_ms() + offset)
    }

    /// Records one `TIME` answer read between `before` and `after` (local ms): Redis
    /// read its clock about halfway, so the error is at most half the round trip.
    pub fn observe(&self, before: i64, redis_ms: i64, after: i64) {
        self.0
            .store(redis_ms - (before + after) / 2, Ordering::Relaxed);
    }

    /// How long ago (by Redis's clock) an item stamped `published_at_ms` went out.
    pub fn lag_of(&self, published_at_ms: i64) -> Option<Duration> {
        let now = self.now_ms()?;
        Some(Duration::from_millis(
            now.saturating_sub(published_at_ms).max(0) as u64,
        ))
    }
}

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Keeps `clock` current: one `TIME` round trip every [`CLOCK_SYNC_EVERY`]. A failed
/// read keeps the last offset (clocks drift slowly).
async fn sync_clock(clock: Arc<RedisClock>, mut redis: Redis, shutdown: CancellationToken) {
    loop {
        let before = local_ms();
        match redis::cmd("TIME")
            .query_async::<(String, String)>(&mut redis)
            .await
        {
            Ok((secs, micros)) => {
                let after = local_ms();
                let redis_ms = secs.parse::<i64>().unwrap_or_default() * 1000
                    + micros.parse::<i64>().unwrap_or_default() / 1000;
                clock.observe(before, redis_ms, after);
            }
            Err(e) => tracing::debug!(error = %e, "chat relay: reading Redis TIME failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CLOCK_SYNC_EVERY) => {}
        }
    }
}

/// `published_at_ms` when the item starts with it (as both publishing scripts write
/// it); no JSON parse on the relay's hot path.
pub fn published_at_ms(item: &str) -> Option<i64> {
    let rest = item.strip_prefix(r#"{"published_at_ms":"#)?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Hands an agent item to the room's local sockets: encoded once, and each socket gets
/// the same bytes straight from the relay's table (no lookup of each socket by id, as a
/// Socket.IO broadcast makes: at thousands of sockets each lookup is a cache miss).
/// A full send buffer is handled as in [`send_to_room`].
fn deliver_item(room: &str, members: &mut dyn Iterator<Item = &SocketRef>, item: &RawValue) {
    let mut members = members.peekable();
    let Some(first) = members.peek() else {
        return;
    };
    let packet = match first.encode_event("newMessage", item) {
        Ok(packet) => packet,
        Err(e) => {
            tracing::warn!(room, error = %e, "chat relay: item not encoded");
            return;
        }
    };
    let (mut out, mut full) = (0u64, 0u64);
    for socket in members {
        match socket.send_encoded(&packet) {
            Ok(()) => out += 1,
            Err(SocketError::InternalChannelFull) => full += 1,
            // Closed: its disconnect takes it out of the table.
            Err(_) => {}
        }
    }
    record_sent(room, out, full);
}

/// Hands `data` to this instance's `members` sockets in `room` (but `except`, the
/// sending socket, when it is here): one broadcast, so the packet is encoded once for
/// the room and each socket gets the same bytes.
///
/// A socket whose send buffer is full has just missed the packet: engine.io closes
/// its session at once (no later packet can reach it as if nothing happened; the
/// client reconnects and `resume`s). The broadcast reports it as a full-buffer error,
/// which is counted and logged here.
async fn send_to_room(
    io: &SocketIo,
    room: &str,
    members: usize,
    except: Option<&str>,
    event: &str,
    data: &RawValue,
) {
    let Some(ns) = io.of(NAMESPACE) else {
        return;
    };
    let sender = except
        .and_then(|sid| sid.parse::<Sid>().ok())
        .and_then(|sid| ns.get_socket(sid));
    let out = members.saturating_sub(usize::from(sender.is_some()));
    let sent = match sender {
        // A broadcast from a socket leaves that socket out.
        Some(socket) => socket.to(room.to_owned()).emit(event, data).await,
        None => ns.to(room.to_owned()).emit(event, data).await,
    };
    let full = match sent {
        Ok(()) => 0,
        Err(BroadcastError::Socket(errors)) => errors
            .iter()
            .filter(|e| matches!(e, SocketError::InternalChannelFull))
            .count() as u64,
        Err(e) => {
            tracing::warn!(room, error = %e, "chat relay: not sent");
            0
        }
    };
    record_sent(room, out as u64, full);
}

/// Counts what was handed to a room's sockets, and the sockets found not reading.
fn record_sent(room: &str, out: u64, full: u64) {
    if full > 0 {
        slow_sockets_dropped(room, full);
    }
    if out > 0 {
        metrics::relay_items_out(out);
    }
}

fn slow_sockets_dropped(room: &str, n: u64) {
    metrics::relay_slow_sockets(n);
    let total = SLOW_SOCKETS_DISCONNECTED.fetch_add(n, Ordering::Relaxed) + n;
    tracing::warn!(
        room,
        sockets = n,
        total,
        "chat relay: socket is not reading (send buffer full); its session was closed so its client reconnects and resumes"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publication_time_is_read_from_the_item_start() {
        let item = r#"{"published_at_ms":1733000000123,"session_id":"s","seq":0}"#;
        assert_eq!(published_at_ms(item), Some(1_733_000_000_123));
        assert_eq!(
            published_at_ms(r#"{"session_id":"s","published_at_ms":1}"#),
            None
        );
        assert_eq!(published_at_ms(r#"{"published_at_ms":"x"}"#), None);
    }

    #[test]
    fn lag_is_measured_on_the_redis_clock() {
        let clock = RedisClock::default();
        assert_eq!(clock.lag_of(0), None, "no lag before the first TIME");
        // Redis's clock is 5 s ahead of this host's.
        let now = local_ms();
        clock.observe(now, now + 5_000, now);
        let lag = clock.lag_of(now + 5_000 - 250).unwrap();
        assert!(lag >= Duration::from_millis(250) && lag < Duration::from_secs(5));
        assert_eq!(
            clock.lag_of(now + 60_000),
            Some(Duration::ZERO),
            "never negative"
        );
    }
}
