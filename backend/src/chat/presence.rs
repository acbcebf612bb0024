//! Who is online in a room, across instances: a Redis sorted set per room
//! (`presence:<room>`, member = user id, score = expiry in ms). Each instance refreshes
//! the entries of the sockets it holds every 10 s; entries of a dead instance expire
//! after 30 s. Changes are announced to the room as `presence {room, online}`.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::StreamExt;

use redis::AsyncCommands;
use serde_json::json;
use socketioxide::{SocketIo, extract::SocketRef};
use tokio_util::sync::CancellationToken;

use super::{NAMESPACE, gateway::SocketUser, relay::broadcast, store::session_channel};

const TTL_MS: i64 = 30_000;
const HEARTBEAT: Duration = Duration::from_secs(10);

fn key(room: &str) -> String {
    format!("presence:{room}")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The users online in `room` now.
pub async fn online(redis: &crate::redis_conn::Redis, room: &str) -> Vec<String> {
    let mut conn = redis.clone();
    let _: redis::RedisResult<i64> = conn.zrembyscore(key(room), "-inf", now_ms()).await;
    conn.zrange(key(room), 0, -1).await.unwrap_or_default()
}

async fn announce(redis: &crate::redis_conn::Redis, room: &str, session_id: &str) {
    let users = online(redis, room).await;
    let _ = broadcast(
        redis,
        &session_channel(session_id),
        "presence",
        room,
        None,
        json!({"room": room, "online": users}),
    )
    .await;
}

pub async fn joined(redis: &crate::redis_conn::Redis, room: &str, session_id: &str, user_id: &str) {
    let mut conn = redis.clone();
    let _: redis::RedisResult<i64> = conn.zadd(key(room), user_id, now_ms() + TTL_MS).await;
    let _: redis::RedisResult<bool> = conn.expire(key(room), 3600).await;
    announce(redis, room, session_id).await;
}

/// A socket left. The user stays online while another of their sockets on this
/// instance is still in the room (sockets on other instances refresh their own entry).
pub async fn left(
    io: &SocketIo,
    redis: &crate::redis_conn::Redis,
    room: &str,
    session_id: &str,
    user_id: &str,
    socket_id: &str,
) {
    let still_here = io.of(NAMESPACE).is_some_and(|ns| {
        ns.to(room.to_owned()).sockets().iter().any(|s| {
            s.id.as_str() != socket_id
                && s.extensions
                    .get::<SocketUser>()
                    .is_some_and(|u| u.0.id == user_id)
        })
    });
    if !still_here {
        let _: redis::RedisResult<i64> = redis.clone().zrem(key(room), user_id).await;
    }
    announce(redis, room, session_id).await;
}

pub fn spawn_heartbeat(io: SocketIo, redis: crate::redis_conn::Redis, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(ns) = io.of(NAMESPACE) else { continue };
            refresh(&redis, &ns.sockets()).await;
        }
    });
}

/// Commands of one refresh in flight at once (the multiplexed connection pipelines them).
const REFRESH_CONCURRENCY: usize = 32;

/// Renews the entries of `sockets`: one `ZADD` per room naming each of its users once,
/// sent concurrently, rather than a round trip per socket and room.
async fn refresh(redis: &crate::redis_conn::Redis, sockets: &[SocketRef]) {
    let mut users_by_room: HashMap<String, HashSet<String>> = HashMap::new();
    for socket in sockets {
        let Some(user) = socket.extensions.get::<SocketUser>() else {
            continue;
        };
        for room in socket.rooms() {
            if room.starts_with("page-") {
                users_by_room
                    .entry(room.into_owned())
                    .or_default()
                    .insert(user.0.id.clone());
            }
        }
    }
    let expiry = now_ms() + TTL_MS;
    futures::stream::iter(users_by_room)
        .for_each_concurrent(REFRESH_CONCURRENCY, |(room, users)| {
            let mut conn = redis.clone();
            async move {
                let members: Vec<(i64, String)> = users.into_iter().map(|u| (expiry, u)).collect();
                let _: redis::RedisResult<i64> = conn.zadd_multiple(key(&room), &members).await;
            }
        })
        .await;
}
