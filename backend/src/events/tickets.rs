//! Single-use tickets for `GET /api/events/sse?ticket=...`: `EventSource` cannot send an
//! `Authorization` header, and a long-lived JWT in a URL would end up in access logs.
//!
//! With Redis a ticket is a key with a TTL, taken with `GETDEL`, so it works once
//! whichever instance redeems it. Without Redis it lives in this process's memory.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::redis_conn::Redis;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "user-events:ticket:";

pub enum Tickets {
    Memory(Mutex<HashMap<String, (String, Instant)>>),
    Redis(Redis),
}

/// Only a hash of the ticket is stored, so reading Redis does not yield usable tickets.
fn digest(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

impl Tickets {
    pub fn in_memory() -> Self {
        Tickets::Memory(Mutex::default())
    }

    /// A new ticket for `user_id`, valid for `ttl`.
    pub async fn issue(&self, user_id: &str, ttl: Duration) -> anyhow::Result<String> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        match self {
            Tickets::Memory(map) => {
                let now = Instant::now();
                let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
                // Issuing is rare; sweeping here keeps the map small without a timer.
                map.retain(|_, (_, expires)| *expires > now);
                map.insert(digest(&ticket), (user_id.to_owned(), now + ttl));
            }
            Tickets::Redis(conn) => {
                let mut conn = conn.clone();
                let ttl_ms = ttl.as_millis().max(1) as u64;
                redis::cmd("SET")
                    .arg(format!("{KEY_PREFIX}{}", digest(&ticket)))
                    .arg(user_id)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut conn)
                    .await?;
            }
        }
        Ok(ticket)
    }

    /// The user the ticket was issued to, if it is known, unused and unexpired. The
    /// ticket is consumed either way.
    pub async fn redeem(&self, ticket: &str) -> anyhow::Result<Option<String>> {
        if ticket.is_empty() || ticket.len() > 128 {
            return Ok(None);
        }
        match self {
            Tickets::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
                Ok(map
                    .remove(&digest(ticket))
                    .filter(|(_, expires)| *expires > Instant::now())
                    .map(|(user_id, _)| user_id))
            }
            Tickets::Redis(conn) => {
                let mut conn = conn.clone();
                let user_id: Option<String> = redis::cmd("GETDEL")
                    .arg(format!("{KEY_PREFIX}{}", digest(ticket)))
                    .query_async(&mut conn)
                    .await?;
                Ok(user_id)
            }
        }
    }
}
