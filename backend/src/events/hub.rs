//! The open SSE streams of this instance: user id → the set of that user's streams
//! (one per browser tab), so every tab gets every event.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{DomainEvent, Notifications, recent::Recent};

/// Events a stream may fall behind by before it is closed; the client then reconnects
/// with `Last-Event-ID` and catches up from the replay buffer.
const STREAM_BUFFER: usize = 32;

/// One event as a user's stream sends it. The data is serialised once, however many
/// streams receive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub id: String,
    pub event_type: String,
    /// The event's `data`, as JSON text.
    pub data: String,
}

impl Outgoing {
    pub fn from_event(event: &DomainEvent) -> Self {
        Outgoing {
            id: event.id.clone(),
            event_type: event.event_type.to_owned(),
            data: event.data.to_string(),
        }
    }
}

type Streams = HashMap<String, HashMap<u64, mpsc::Sender<Arc<Outgoing>>>>;

#[derive(Default)]
pub struct Hub {
    streams: Mutex<Streams>,
    next_id: AtomicU64,
}

/// Removes its stream from the hub when dropped: when the client disconnects (the
/// response body is dropped) or the server shuts down.
pub struct Registration {
    hub: Arc<Hub>,
    user_id: String,
    stream_id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(&self.user_id, self.stream_id);
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a stream for `user_id`; events for the user arrive on the receiver.
    pub fn register(
        self: &Arc<Self>,
        user_id: &str,
    ) -> (Registration, mpsc::Receiver<Arc<Outgoing>>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let stream_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(user_id.to_owned())
            .or_default()
            .insert(stream_id, tx);
        let registration = Registration {
            hub: self.clone(),
            user_id: user_id.to_owned(),
            stream_id,
        };
        (registration, rx)
    }

    fn remove(&self, user_id: &str, stream_id: u64) {
        let mut streams = self.lock();
        if let Some(of_user) = streams.get_mut(user_id) {
            of_user.remove(&stream_id);
            if of_user.is_empty() {
                streams.remove(user_id);
            }
        }
    }

    /// Hands `event` to every stream of every user in `user_ids`. Never waits: a stream
    /// whose buffer is full is closed rather than slowing everyone else down.
    pub fn deliver(&self, user_ids: &[String], event: &Arc<Outgoing>) -> usize {
        let mut delivered = 0;
        let mut streams = self.lock();
        for user_id in user_ids {
            let Some(of_user) = streams.get_mut(user_id) else {
                continue;
            };
            of_user.retain(|_, tx| match tx.try_send(event.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(%user_id, "SSE stream too slow; closing it so it resumes");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if of_user.is_empty() {
                streams.remove(user_id);
            }
        }
        delivered
    }

    /// Ends every stream of `user_id` on this instance (a suspended account): dropping
    /// the senders ends each stream once it has sent what it already holds.
    pub fn close_user(&self, user_id: &str) -> usize {
        self.lock()
            .remove(user_id)
            .map_or(0, |of_user| of_user.len())
    }

    /// (connected users, open streams) on this instance.
    pub fn counts(&self) -> (usize, usize) {
        let streams = self.lock();
        (streams.len(), streams.values().map(HashMap::len).sum())
    }
}

/// Routes every event of the instance's bus to the streams this instance holds; in
/// in-process mode it also fills the replay buffer first (see [`Recent`]).
pub fn spawn_dispatcher(
    mut events: broadcast::Receiver<DomainEvent>,
    notifications: Arc<Notifications>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = events.recv() => match received {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "notification dispatcher fell behind; events dropped");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            let outgoing = Arc::new(Outgoing::from_event(&event));
            // Recorded before delivery: a stream registered after this delivery finds
            // the event in the buffer, one registered before gets it live.
            if let Recent::Memory(memory) = &notifications.recent {
                memory.record(&event.user_ids, &outgoing);
            }
            let delivered = notifications.hub.deliver(&event.user_ids, &outgoing);
            // Travels like any event, so every instance closes the streams it holds.
            if event.event_type == super::ACCOUNT_SUSPENDED {
                for user_id in &event.user_ids {
                    notifications.hub.close_user(user_id);
                }
            }
            tracing::debug!(event_type = event.event_type, id = %event.id, delivered, "event dispatched");
        }
    });
}
