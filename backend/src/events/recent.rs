//! Each user's recent events, bounded in count and age, replayed to a stream that
//! reconnects with `Last-Event-ID` so a short network drop loses nothing.
//!
//! With Redis: a list per user, `user-events:recent:<user_id>`, written by the
//! publishing instance in the same transaction as the `PUBLISH`. Without Redis: a map
//! in this process, written by the dispatcher just before delivery.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::redis_conn::Redis;

use super::hub::Outgoing;

pub const KEY_PREFIX: &str = "user-events:recent:";

pub enum Recent {
    Memory(Arc<MemoryRecent>),
    Redis(Redis, RedisRecent),
}

impl Recent {
    /// The user's events that came after `last_id`, oldest first. When `last_id` has
    /// already left the buffer, everything newer than it (ULIDs sort by time) is sent.
    pub async fn since(&self, user_id: &str, last_id: &str) -> anyhow::Result<Vec<Arc<Outgoing>>> {
        let kept = match self {
            Recent::Memory(memory) => memory.all(user_id),
            Recent::Redis(conn, settings) => settings.all(conn.clone(), user_id).await?,
        };
        Ok(after(kept, last_id))
    }
}

fn after(kept: Vec<Arc<Outgoing>>, last_id: &str) -> Vec<Arc<Outgoing>> {
    match kept.iter().position(|e| e.id == last_id) {
        Some(at) => kept.into_iter().skip(at + 1).collect(),
        None => kept
            .into_iter()
            .filter(|e| e.id.as_str() > last_id)
            .collect(),
    }
}

/// Per user: (when recorded, event), oldest first.
type ByUser = HashMap<String, VecDeque<(Instant, Arc<Outgoing>)>>;

pub struct MemoryRecent {
    max: usize,
    ttl: Duration,
    by_user: Mutex<ByUser>,
}

impl MemoryRecent {
    pub fn new(max: usize, ttl: Duration) -> Self {
        MemoryRecent {
            max,
            ttl,
            by_user: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ByUser> {
        self.by_user.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, user_ids: &[String], event: &Arc<Outgoing>) {
        if self.max == 0 {
            return;
        }
        let now = Instant::now();
        let mut by_user = self.lock();
        for user_id in user_ids {
            let kept = by_user.entry(user_id.clone()).or_default();
            kept.push_back((now, event.clone()));
            while kept.len() > self.max {
                kept.pop_front();
            }
        }
    }

    fn all(&self, user_id: &str) -> Vec<Arc<Outgoing>> {
        let now = Instant::now();
        self.lock()
            .get(user_id)
            .map(|kept| {
                kept.iter()
                    .filter(|(at, _)| now.duration_since(*at) < self.ttl)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets expired events (and users left with none); run periodically.
    pub fn prune(&self) {
        let now = Instant::now();
        self.lock().retain(|_, kept| {
            while kept
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) >= self.ttl)
            {
                kept.pop_front();
            }
            !kept.is_empty()
        });
    }
}

#[derive(Clone, Copy)]
pub struct RedisRecent {
    pub max: usize,
    pub ttl: Duration,
}

impl RedisRecent {
    pub fn new(max: usize, ttl: Duration) -> Self {
        RedisRecent { max, ttl }
    }

    pub fn key(user_id: &str) -> String {
        format!("{KEY_PREFIX}{user_id}")
    }

    /// Adds the commands that record `event` for `user_ids` to a transaction.
    pub fn record(&self, pipe: &mut redis::Pipeline, user_ids: &[String], event: &Outgoing) {
        if self.max == 0 {
            return;
        }
        let json = serde_json::to_string(event).expect("an Outgoing serialises");
        let ttl = self.ttl.as_secs().max(1) as i64;
        for user_id in user_ids {
            let key = Self::key(user_id);
            pipe.rpush(&key, &json)
                .ignore()
                .ltrim(&key, -(self.max as isize), -1)
                .ignore()
                .expire(&key, ttl)
                .ignore();
        }
    }

    async fn all(&self, mut conn: Redis, user_id: &str) -> anyhow::Result<Vec<Arc<Outgoing>>> {
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(Self::key(user_id))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|item| serde_json::from_str::<Outgoing>(item).ok())
            .map(Arc::new)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Arc<Outgoing> {
        Arc::new(Outgoing {
            id: id.into(),
            event_type: "x".into(),
            data: "{}".into(),
        })
    }

    fn ids(events: &[Arc<Outgoing>]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn replays_what_follows_the_last_seen_id() {
        let kept = vec![ev("01A"), ev("01C"), ev("01B")];
        // Found: position wins over ordering (ids from different instances may interleave).
        assert_eq!(ids(&after(kept.clone(), "01A")), ["01C", "01B"]);
        assert_eq!(ids(&after(kept.clone(), "01B")), Vec::<&str>::new());
        // Already evicted: everything newer.
        assert_eq!(ids(&after(kept, "01AZ")), ["01C", "01B"]);
    }

    #[test]
    fn memory_buffer_is_bounded() {
        let memory = MemoryRecent::new(2, Duration::from_secs(60));
        for id in ["1", "2", "3"] {
            memory.record(&["u".into()], &ev(id));
        }
        assert_eq!(ids(&memory.all("u")), ["2", "3"]);
    }
}
