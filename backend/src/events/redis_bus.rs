//! Domain events fanned out to every backend instance through the Redis channel
//! `user-events`.
//!
//! Publishing: one ordered writer task per instance sends each event as ONE message
//! (carrying all its recipients) in a transaction that also appends it to each
//! recipient's replay list, then hands it to this instance's own streams.
//! Receiving: one dedicated pub/sub connection per instance, re-established with
//! backoff whenever it drops (Redis restart, network); messages this instance sent
//! itself are skipped because they were already delivered locally.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::redis_conn::Redis;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{DomainEvent, EventPublisher, hub::Outgoing, intern_event_type, recent::RedisRecent};

pub const CHANNEL: &str = "user-events";

/// Pending events per instance before `publish` starts delivering locally only.
const OUTBOX: usize = 4096;
/// A silent pub/sub connection is probed this often; no answer means reconnect.
const PROBE_EVERY: Duration = Duration::from_secs(10);
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

/// The JSON message on `user-events` (snake_case, like the other Redis contracts).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireEvent {
    /// ULID; also the SSE `id:`.
    pub id: String,
    pub user_ids: Vec<String>,
    pub event_type: String,
    pub data: serde_json::Value,
    /// The instance that published it.
    pub server_id: String,
}

pub struct RedisEvents {
    local: broadcast::Sender<DomainEvent>,
    outbox: mpsc::Sender<DomainEvent>,
}

impl RedisEvents {
    /// Starts the writer and the subscriber; both stop when `shutdown` is cancelled.
    pub fn start(
        clients: Vec<redis::Client>,
        conn: Redis,
        server_id: String,
        recent: RedisRecent,
        connected: Arc<AtomicBool>,
        shutdown: CancellationToken,
    ) -> Self {
        let local = broadcast::channel(1024).0;
        let (outbox, pending) = mpsc::channel(OUTBOX);
        tokio::spawn(write_loop(
            pending,
            conn,
            server_id.clone(),
            recent,
            local.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(subscribe_loop(
            clients,
            server_id,
            local.clone(),
            connected,
            shutdown,
        ));
        RedisEvents { local, outbox }
    }
}

impl EventPublisher for RedisEvents {
    fn publish(&self, event: DomainEvent) {
        tracing::debug!(event_type = event.event_type, id = %event.id, "domain event");
        if let Err(err) = self.outbox.try_send(event) {
            let event = err.into_inner();
            tracing::warn!(id = %event.id, "event outbox full; delivering on this instance only");
            let _ = self.local.send(event);
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.local.subscribe()
    }
}

async fn write_loop(
    mut pending: mpsc::Receiver<DomainEvent>,
    mut conn: Redis,
    server_id: String,
    recent: RedisRecent,
    local: broadcast::Sender<DomainEvent>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = pending.recv() => match next {
                Some(event) => event,
                None => break,
            },
        };
        let wire = WireEvent {
            id: event.id.clone(),
            user_ids: event.user_ids.clone(),
            event_type: event.event_type.to_owned(),
            data: event.data.clone(),
            server_id: server_id.clone(),
        };
        let text = serde_json::to_string(&wire).expect("a WireEvent serialises");
        let outgoing = Outgoing::from_event(&event);
        let written = if conn.is_cluster() {
            // Each recipient's replay list is in a slot of its own: one pipeline per
            // list (its three commands stay together), then the message.
            let lists = event.user_ids.iter().map(|user_id| {
                let mut pipe = redis::pipe();
                recent.record(&mut pipe, std::slice::from_ref(user_id), &outgoing);
                let mut conn = conn.clone();
                async move { pipe.query_async::<()>(&mut conn).await }
            });
            let mut publish = redis::pipe();
            publish.publish(CHANNEL, text).ignore();
            let mut c = conn.clone();
            tokio::time::timeout(REDIS_TIMEOUT, async move {
                futures_util::future::try_join_all(lists).await?;
                publish.query_async::<()>(&mut c).await
            })
            .await
        } else {
            let mut pipe = redis::pipe();
            pipe.atomic();
            recent.record(&mut pipe, &event.user_ids, &outgoing);
            pipe.publish(CHANNEL, text).ignore();
            tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(&mut conn)).await
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(id = %event.id, error = %e, "event not published to Redis; other instances miss it")
            }
            Err(_) => {
                tracing::warn!(id = %event.id, "publishing to Redis timed out; other instances miss it")
            }
        }
        // After Redis: a stream that opens now finds the event in its replay list.
        let _ = local.send(event);
    }
}

async fn subscribe_loop(
    clients: Vec<redis::Client>,
    server_id: String,
    local: broadcast::Sender<DomainEvent>,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    let mut next = 0;
    while !shutdown.is_cancelled() {
        let client = &clients[next % clients.len()];
        next += 1;
        match connect(client).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                connected.store(true, Ordering::Relaxed);
                tracing::info!(channel = CHANNEL, "subscribed to user events");
                relay(pubsub, &server_id, &local, &shutdown).await;
                connected.store(false, Ordering::Relaxed);
                if shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(
                    channel = CHANNEL,
                    "user-events subscription lost; reconnecting"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot subscribe to user events");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    connected.store(false, Ordering::Relaxed);
}

async fn connect(client: &redis::Client) -> anyhow::Result<redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await??;
    tokio::time::timeout(REDIS_TIMEOUT, pubsub.subscribe(CHANNEL)).await??;
    Ok(pubsub)
}

/// Forwards messages until the connection drops, a probe goes unanswered or shutdown.
async fn relay(
    pubsub: redis::aio::PubSub,
    server_id: &str,
    local: &broadcast::Sender<DomainEvent>,
    shutdown: &CancellationToken,
) {
    let (mut sink, mut messages) = pubsub.split();
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.reset();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            message = messages.next() => {
                let Some(message) = message else { return };
                probe.reset();
                let payload: String = match message.get_payload() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                if let Some(event) = decode(&payload, server_id) {
                    let _ = local.send(event);
                }
            }
            _ = probe.tick() => {
                if !answers_ping(&mut sink).await {
                    return;
                }
            }
        }
    }
}

/// Whether the subscribed connection still answers. In subscribed mode Redis answers
/// `PING` with `["pong", ""]`, not `PONG`, so any reply counts.
async fn answers_ping(sink: &mut redis::aio::PubSubSink) -> bool {
    matches!(
        tokio::time::timeout(REDIS_TIMEOUT, sink.ping::<redis::Value>()).await,
        Ok(Ok(_))
    )
}

/// A message from another instance as a [`DomainEvent`]; `None` for our own messages
/// and for anything malformed.
fn decode(payload: &str, server_id: &str) -> Option<DomainEvent> {
    let wire: WireEvent = match serde_json::from_str(payload) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "malformed message on user-events ignored");
            return None;
        }
    };
    if wire.server_id == server_id {
        return None;
    }
    let Some(event_type) = intern_event_type(&wire.event_type) else {
        tracing::warn!(event_type = %wire.event_type, "unknown event type on user-events ignored");
        return None;
    };
    Some(DomainEvent {
        id: wire.id,
        event_type,
        user_ids: wire.user_ids,
        data: wire.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the Redis of the integration tests (`TEST_REDIS_URL`, default local 6379).
    #[tokio::test]
    async fn a_subscribed_connection_answers_the_probe() {
        let url =
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        let client = redis::Client::open(url).unwrap();
        let (mut sink, _messages) = connect(&client).await.expect("Redis reachable").split();
        assert!(answers_ping(&mut sink).await);
    }

    #[test]
    fn own_and_malformed_messages_are_skipped() {
        let wire =
            serde_json::json!({"id": "01J", "user_ids": ["u"], "event_type": "rsvp.received",
            "data": {"a": 1}, "server_id": "me"})
            .to_string();
        assert!(decode(&wire, "me").is_none());
        let event = decode(&wire, "other").unwrap();
        assert_eq!(
            (event.event_type, event.user_ids),
            ("rsvp.received", vec!["u".to_owned()])
        );
        assert!(decode("not json", "other").is_none());
    }
}
