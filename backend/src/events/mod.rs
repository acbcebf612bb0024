//! Domain events: what happened (`rsvp.received`, `page.published`, ...) and to whom
//! it matters. Modules raise them through [`EventPublisher`]; the notification stream
//! delivers them. In-process for one instance; a Redis fan-out ([`RedisEvents`])
//! replaces it behind the same trait when several instances run. [`build`] picks one.
//!
//! The SSE side: [`hub`] holds this instance's open streams (user → set of streams),
//! [`recent`] keeps each user's last events for `Last-Event-ID` replay, [`tickets`]
//! issues the single-use `?ticket=`s, [`sse`] serves `GET /api/events/sse`, and
//! [`status`] reports the figures of every instance to admins.

pub mod hub;
pub mod recent;
mod redis_bus;
pub mod sse;
pub mod status;
pub mod tickets;

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicI64, Ordering},
};

use anyhow::Context;
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use redis_bus::{CHANNEL, RedisEvents, WireEvent};

use crate::config::Config;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    /// ULID; also the SSE event id.
    pub id: String,
    /// `rsvp.received`, `guestbook.posted`, `page.published`, ...
    pub event_type: &'static str,
    /// The users to notify (a page's owner and editors).
    pub user_ids: Vec<String>,
    pub data: serde_json::Value,
}

impl DomainEvent {
    pub fn new(event_type: &'static str, user_ids: Vec<String>, data: serde_json::Value) -> Self {
        DomainEvent {
            id: crate::db::new_id(),
            event_type,
            user_ids,
            data,
        }
    }
}

pub trait EventPublisher: Send + Sync {
    /// Fire and forget: a notification that cannot be delivered must never fail the
    /// request that caused it.
    fn publish(&self, event: DomainEvent);

    /// Everything published from now on.
    fn subscribe(&self) -> broadcast::Receiver<DomainEvent>;
}

/// Delivers events to subscribers of this process.
pub struct InProcessEvents {
    tx: broadcast::Sender<DomainEvent>,
}

impl Default for InProcessEvents {
    fn default() -> Self {
        InProcessEvents {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl EventPublisher for InProcessEvents {
    fn publish(&self, event: DomainEvent) {
        tracing::debug!(event_type = event.event_type, id = %event.id, "domain event");
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }
}

/// Sent to a user when an admin suspends them; it is the last event their open streams
/// carry: every instance closes that user's streams after delivering it.
pub const ACCOUNT_SUSPENDED: &str = "account.suspended";

/// Sent to users who lost a page (removed as editors, the page deleted): their chat
/// sockets leave the page's room on every instance. `data: {pageId, reason}`.
pub const PAGE_ACCESS_REVOKED: &str = "page.access.revoked";

/// The event names the SSE stream announces (modules may add more).
pub const EVENT_TYPES: &[&str] = &[
    "rsvp.received",
    "guestbook.posted",
    "payment.paid",
    "payment.cancelled",
    "file.uploaded",
    "page.published",
    "chat.reply.completed",
    ACCOUNT_SUSPENDED,
    "page.unpublished",
    PAGE_ACCESS_REVOKED,
];

/// Turns an event name that arrived over Redis back into the `&'static str` that
/// [`DomainEvent`] carries. Unknown but well-formed names (a newer instance during a
/// rolling deploy) are kept, up to a small bound so a flood of junk cannot grow memory.
pub fn intern_event_type(name: &str) -> Option<&'static str> {
    use std::{collections::HashSet, sync::Mutex};
    static EXTRA: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    const MAX_EXTRA: usize = 64;

    if let Some(known) = EVENT_TYPES.iter().find(|t| **t == name) {
        return Some(known);
    }
    let well_formed = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !well_formed {
        return None;
    }
    let mut extra = EXTRA.lock().unwrap_or_else(|e| e.into_inner());
    let extra = extra.get_or_insert_with(HashSet::new);
    if let Some(found) = extra.get(name) {
        return Some(found);
    }
    if extra.len() >= MAX_EXTRA {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    extra.insert(leaked);
    Some(leaked)
}

/// The SSE machinery of this instance, shared by the stream and status handlers.
pub struct Notifications {
    pub server_id: String,
    pub hub: Arc<hub::Hub>,
    pub recent: recent::Recent,
    pub tickets: tickets::Tickets,
    /// `Some` when Redis is configured: whether the pub/sub connection is up.
    pub redis_connected: Option<Arc<AtomicBool>>,
    pub redis: Option<crate::redis_conn::Redis>,
    /// Chat sockets connected to this instance, kept by the chat gateway; reported
    /// with the SSE figures in the instance heartbeat (one place for live figures).
    /// Signed: a socket's disconnect may be counted just before its connect.
    pub chat_sockets: AtomicI64,
}

impl Notifications {
    pub fn redis_is_connected(&self) -> bool {
        self.redis_connected
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Chooses the event implementation: Redis fan-out when `REDIS_URL` is set, in-process
/// otherwise; starts the background loops (dispatcher, Redis subscriber, heartbeat),
/// all of which stop when `shutdown` is cancelled.
pub fn build(
    cfg: &Config,
    redis: Option<crate::redis_conn::Redis>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Arc<dyn EventPublisher>, Arc<Notifications>)> {
    let hub = Arc::new(hub::Hub::default());
    let (events, recent, redis_connected): (Arc<dyn EventPublisher>, _, _) =
        match (&cfg.redis_url, &redis) {
            (Some(url), Some(conn)) => {
                // Classic pub/sub reaches every node of a Cluster, so the subscriber
                // may use any seed node (the next one when a node is down).
                let clients = if cfg.redis_cluster {
                    crate::redis_conn::seeds(url.expose_secret())
                } else {
                    vec![url.expose_secret().to_owned()]
                }
                .iter()
                .map(|u| redis::Client::open(u.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .context("parsing REDIS_URL")?;
                let connected = Arc::new(AtomicBool::new(false));
                let replay = recent::RedisRecent::new(cfg.sse_replay_max, cfg.sse_replay_ttl);
                let events = RedisEvents::start(
                    clients,
                    conn.clone(),
                    cfg.server_id.clone(),
                    replay,
                    connected.clone(),
                    shutdown.clone(),
                );
                (
                    Arc::new(events),
                    recent::Recent::Redis(conn.clone(), replay),
                    Some(connected),
                )
            }
            _ => (
                Arc::new(InProcessEvents::default()),
                recent::Recent::Memory(Arc::new(recent::MemoryRecent::new(
                    cfg.sse_replay_max,
                    cfg.sse_replay_ttl,
                ))),
                None,
            ),
        };
    let tickets = match &redis {
        Some(conn) => tickets::Tickets::Redis(conn.clone()),
        None => tickets::Tickets::in_memory(),
    };
    let notifications = Arc::new(Notifications {
        server_id: cfg.server_id.clone(),
        hub: hub.clone(),
        recent,
        tickets,
        redis_connected,
        redis,
        chat_sockets: AtomicI64::new(0),
    });
    hub::spawn_dispatcher(events.subscribe(), notifications.clone(), shutdown.clone());
    status::spawn_heartbeat(notifications.clone(), shutdown.clone());
    Ok((events, notifications))
}
