//! Domain events: what happened (`rsvp.received`, `page.published`, ...) and to whom
//! it matters. Modules raise them through [`EventPublisher`]; the notification stream
//! delivers them. In-process for one instance; a Redis fan-out replaces it behind the
//! same trait when several instances run.

use serde::Serialize;
use tokio::sync::broadcast;

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
