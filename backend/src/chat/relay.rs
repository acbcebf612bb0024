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
//!
//! The relay task never waits for the database. A session's room is looked up once by
//! a task of its own; meanwhile only that session's items wait (in order, bounded),
//! every other room keeps flowing. Unknown sessions are remembered for a while, so a
//! stream of items for one does not become a stream of queries.
//!
//! Items are not parsed into a JSON tree: the relay checks the text is JSON and hands
//! it to each socket as it came. The publishing scripts put `published_at_ms` (Redis
//! time) first in every item, so the relay lag (publication → handed to the room's
//! sockets) is read from the item's first bytes and measured on Redis's clock: the
//! relay keeps the offset of its own clock to Redis's (`TIME`, every
//! [`CLOCK_SYNC_EVERY`]). A socket whose send buffer is full (a client that
//! stopped reading) is not skipped silently: it leaves its rooms and is disconnected,
//! so it never sees a later item after a missing one; the client reconnects and
//! `resume`s from its last seq (docs/chat.md "Relay across instances").

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use redis::AsyncCommands;
use sea_orm::{DatabaseConnection, EntityTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use socketioxide::{SendError, SocketError, SocketIo, extract::SocketRef};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::NAMESPACE;
use crate::{db::chat_session, metrics, state::AppState};

/// How long an unknown session id is remembered as unknown.
const MISS_TTL: Duration = Duration::from_secs(30);
/// One lookup attempt; a stalled database must not hold a lookup task forever.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// After this long without an answer from the database, a session's waiting items
/// are dropped (they are in the durable stream; clients resume from it).
const LOOKUP_GIVE_UP: Duration = Duration::from_secs(60);
/// Items kept per session while its room is looked up, and sessions looked up at once.
const MAX_WAITING_ITEMS: usize = 1024;
const MAX_WAITING_SESSIONS: usize = 10_000;
/// Cached session → room entries before the cache starts over.
const MAX_CACHED_SESSIONS: usize = 100_000;
/// How often a full socket is asked again to take its disconnect packet, and for how
/// long (after that engine.io's own heartbeat, which cannot queue its ping either,
/// has closed it).
const DISCONNECT_RETRY: Duration = Duration::from_millis(250);
const DISCONNECT_GIVE_UP: Duration = Duration::from_secs(60);
/// How often the relay measures its clock's offset to Redis's again.
const CLOCK_SYNC_EVERY: Duration = Duration::from_secs(10);

/// Sockets disconnected because their send buffer was full (also exported as
/// `mocheong_chat_relay_slow_sockets_total`; tests read this one).
pub static SLOW_SOCKETS_DISCONNECTED: AtomicU64 = AtomicU64::new(0);
/// Agent items that reached no room: their session's lookup gave up, or too many
/// items or sessions were waiting for a lookup (`mocheong_chat_relay_dropped_items_total`).
pub static ITEMS_DROPPED: AtomicU64 = AtomicU64::new(0);

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

/// Runs until shutdown, re-subscribing after Redis connection losses.
pub fn spawn(state: AppState, client: redis::Client, io: SocketIo, shutdown: CancellationToken) {
    let clock = Arc::new(RedisClock::default());
    if let Some(redis) = state.redis.clone() {
        tokio::spawn(sync_clock(Arc::clone(&clock), redis, shutdown.clone()));
    }
    tokio::spawn(async move {
        let (lookups_tx, mut lookups) = mpsc::unbounded_channel();
        let mut relay = Relay {
            io,
            db: state.db.clone(),
            rooms: HashMap::new(),
            waiting: HashMap::new(),
            lookups_tx,
            shutdown: shutdown.clone(),
            clock,
        };
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
                                Some((session_id, found)) = lookups.recv() => {
                                    relay.looked_up(session_id, found);
                                }
                                next = messages.next() => match next {
                                    Some(msg) => relay.on_message(
                                        msg.get_channel_name(),
                                        msg.get_payload_bytes(),
                                    ),
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
async fn sync_clock(
    clock: Arc<RedisClock>,
    mut redis: redis::aio::ConnectionManager,
    shutdown: CancellationToken,
) {
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

/// What the database said about a session.
enum Lookup {
    Room(String),
    NoSuchSession,
    /// The database did not answer within [`LOOKUP_GIVE_UP`].
    GaveUp,
}

enum Known {
    Room(String),
    Missing(Instant),
}

/// The relay task's state: only this task touches it, so no locks.
struct Relay {
    io: SocketIo,
    db: DatabaseConnection,
    rooms: HashMap<String, Known>,
    /// Items of sessions whose room is being looked up, in arrival order.
    waiting: HashMap<String, VecDeque<Box<RawValue>>>,
    lookups_tx: mpsc::UnboundedSender<(String, Lookup)>,
    shutdown: CancellationToken,
    clock: Arc<RedisClock>,
}

impl Relay {
    fn on_message(&mut self, channel: &str, bytes: &[u8]) {
        metrics::relay_items("in", 1);
        let Ok(text) = serde_json::from_slice::<&RawValue>(bytes) else {
            tracing::debug!(channel, "chat relay: message is not JSON; ignored");
            return;
        };
        // The backend's envelopes start with their `_relay` field (serde keeps the
        // struct's field order); agent items never have one.
        if text.get().starts_with(r#"{"_relay""#) {
            match serde_json::from_str::<IncomingEnvelope>(text.get()) {
                Ok(env) => {
                    send_to_room(
                        &self.io,
                        &env.relay.room,
                        env.relay.except.as_deref(),
                        &env.relay.event,
                        env.payload,
                    );
                }
                Err(e) => tracing::warn!(channel, error = %e, "chat relay: bad envelope"),
            }
            return;
        }
        let Some(session_id) = channel.strip_prefix("chat:").filter(|s| !s.is_empty()) else {
            return;
        };
        match self.rooms.get(session_id) {
            Some(Known::Room(room)) => self.deliver_item(room, text),
            Some(Known::Missing(at)) if at.elapsed() < MISS_TTL => {
                tracing::debug!(session_id, "chat relay: item for an unknown session");
            }
            _ => self.wait_for_room(session_id, text),
        }
    }

    /// Hands an agent item to the room's sockets here and records its lag once (when
    /// this instance has sockets in the room).
    fn deliver_item(&self, room: &str, item: &RawValue) {
        let sent = send_to_room(&self.io, room, None, "newMessage", item);
        if sent > 0
            && let Some(lag) = published_at_ms(item.get()).and_then(|at| self.clock.lag_of(at))
        {
            metrics::relay_lag(lag);
        }
    }

    /// Keeps the item until the session's room is known; starts the lookup if it is
    /// the session's first waiting item.
    fn wait_for_room(&mut self, session_id: &str, item: &RawValue) {
        if let Some(queue) = self.waiting.get_mut(session_id) {
            if queue.len() < MAX_WAITING_ITEMS {
                queue.push_back(item.to_owned());
            } else {
                metrics::relay_dropped("too_many_waiting", 1);
                let total = ITEMS_DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    session_id,
                    total,
                    "chat relay: too many items wait for this session's room; item dropped"
                );
            }
            return;
        }
        if self.waiting.len() >= MAX_WAITING_SESSIONS {
            metrics::relay_dropped("too_many_waiting", 1);
            let total = ITEMS_DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                session_id,
                total,
                "chat relay: too many sessions wait for their room; item dropped"
            );
            return;
        }
        self.waiting
            .insert(session_id.to_owned(), VecDeque::from([item.to_owned()]));
        let (db, tx, shutdown) = (
            self.db.clone(),
            self.lookups_tx.clone(),
            self.shutdown.clone(),
        );
        let session_id = session_id.to_owned();
        tokio::spawn(async move {
            if let Some(found) = shutdown
                .run_until_cancelled(look_up_room(&db, &session_id))
                .await
            {
                let _ = tx.send((session_id, found));
            }
        });
    }

    /// A lookup ended: deliver what waited for it, in order, and remember the answer.
    fn looked_up(&mut self, session_id: String, found: Lookup) {
        let items = self.waiting.remove(&session_id).unwrap_or_default();
        if self.rooms.len() >= MAX_CACHED_SESSIONS {
            self.rooms.clear();
        }
        match found {
            Lookup::Room(room) => {
                for item in &items {
                    self.deliver_item(&room, item);
                }
                self.rooms.insert(session_id, Known::Room(room));
            }
            Lookup::NoSuchSession => {
                tracing::warn!(
                    session_id,
                    items = items.len(),
                    "chat relay: items for a session that does not exist"
                );
                self.rooms
                    .insert(session_id, Known::Missing(Instant::now()));
            }
            Lookup::GaveUp => {
                // Not remembered: the next item tries again.
                metrics::relay_dropped("lookup_gave_up", items.len() as u64);
                let total = ITEMS_DROPPED.fetch_add(items.len() as u64, Ordering::Relaxed)
                    + items.len() as u64;
                tracing::error!(
                    session_id,
                    dropped = items.len(),
                    total,
                    "chat relay: the database did not answer; items dropped (clients resume from the durable stream)"
                );
            }
        }
    }
}

/// The room of a session, retried with backoff while the database fails or stalls.
async fn look_up_room(db: &DatabaseConnection, session_id: &str) -> Lookup {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    for attempt in 1.. {
        let query = chat_session::Entity::find_by_id(session_id.to_owned()).one(db);
        match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
            Ok(Ok(Some(session))) => return Lookup::Room(super::room_name(&session.page_id)),
            Ok(Ok(None)) => return Lookup::NoSuchSession,
            Ok(Err(e)) => {
                tracing::warn!(session_id, attempt, error = %e, "chat relay: session lookup failed; retrying");
            }
            Err(_) => {
                tracing::warn!(
                    session_id,
                    attempt,
                    "chat relay: session lookup timed out; retrying"
                );
            }
        }
        if started.elapsed() >= LOOKUP_GIVE_UP {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    Lookup::GaveUp
}

/// Hands `data` to every socket of this instance in `room`; returns to how many.
fn send_to_room(
    io: &SocketIo,
    room: &str,
    except: Option<&str>,
    event: &str,
    data: &RawValue,
) -> u64 {
    let Some(ns) = io.of(NAMESPACE) else {
        return 0;
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
    sent
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
