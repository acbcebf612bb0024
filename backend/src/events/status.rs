//! `GET /api/admin/events/status`: the live figures (SSE streams, chat sockets) of this
//! instance and of every live instance. Each instance writes its figures to a Redis hash
//! `user-events:instance:<server_id>` (with a TTL) every few seconds and lists itself
//! in the sorted set `user-events:instances`; a dead instance drops out when its hash
//! expires.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use crate::redis_conn::Redis;
use axum::{Json, extract::State};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Notifications, recent::Recent};
use crate::{
    auth::AdminUser,
    error::{ErrorBody, Result},
    state::AppState,
};

/// The index of live instances and each instance's figures. On a Cluster they share a
/// hash tag: the heartbeat writes them in one transaction.
fn instances_key() -> &'static str {
    if crate::redis_conn::cluster_mode() {
        "user-events:{instances}"
    } else {
        "user-events:instances"
    }
}

fn instance_key(server_id: &str) -> String {
    if crate::redis_conn::cluster_mode() {
        format!("user-events:{{instances}}:{server_id}")
    } else {
        format!("user-events:instance:{server_id}")
    }
}
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Three missed heartbeats and an instance no longer counts.
const INSTANCE_TTL: Duration = Duration::from_secs(15);

/// Merged into the admin router (`/api/admin`).
pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events_status))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub server_id: String,
    /// Users with at least one open stream on the instance.
    pub connected_users: u64,
    pub open_streams: u64,
    /// Socket.IO sockets connected to the chat namespace.
    pub chat_sockets: u64,
    /// Whether the instance's Redis subscription is up (false without Redis).
    pub redis_connected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Every instance that reported within the last 15 seconds, this one included.
    pub instances: Vec<InstanceStatus>,
    /// Sums over `instances`; a user connected to two instances counts twice.
    pub connected_users: u64,
    pub open_streams: u64,
    pub chat_sockets: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsStatusOut {
    pub instance: InstanceStatus,
    pub redis_configured: bool,
    pub cluster: ClusterStatus,
}

fn this_instance(n: &Notifications) -> InstanceStatus {
    let (users, streams) = n.hub.counts();
    InstanceStatus {
        server_id: n.server_id.clone(),
        connected_users: users as u64,
        open_streams: streams as u64,
        chat_sockets: n.chat_sockets.load(Ordering::Relaxed).max(0) as u64,
        redis_connected: n.redis_is_connected(),
    }
}

/// Connected users, open streams and chat sockets, on this instance and summed across
/// instances.
#[utoipa::path(get, path = "/events/status", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = EventsStatusOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn events_status(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<EventsStatusOut>> {
    Ok(Json(live_status(&state.notifications).await))
}

/// This instance's figures read directly, the others' from their last heartbeat (at
/// most [`HEARTBEAT_EVERY`] old). Redis trouble leaves only this instance listed.
pub async fn live_status(n: &Notifications) -> EventsStatusOut {
    let instance = this_instance(n);
    let mut instances = vec![instance.clone()];
    if let Some(conn) = &n.redis {
        match others(conn.clone(), &n.server_id).await {
            Ok(found) => instances.extend(found),
            Err(e) => tracing::warn!(error = %e, "cannot read other instances' figures"),
        }
    }
    let cluster = ClusterStatus {
        connected_users: instances.iter().map(|i| i.connected_users).sum(),
        open_streams: instances.iter().map(|i| i.open_streams).sum(),
        chat_sockets: instances.iter().map(|i| i.chat_sockets).sum(),
        instances,
    };
    EventsStatusOut {
        instance,
        redis_configured: n.redis.is_some(),
        cluster,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The live instances other than `server_id`, from their heartbeat hashes.
async fn others(mut conn: Redis, server_id: &str) -> anyhow::Result<Vec<InstanceStatus>> {
    let oldest = now_ms() - INSTANCE_TTL.as_millis() as i64;
    let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(instances_key())
        .arg(oldest)
        .arg("+inf")
        .query_async(&mut conn)
        .await?;
    let ids: Vec<String> = ids.into_iter().filter(|id| id != server_id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hgetall(instance_key(id));
    }
    let hashes: Vec<std::collections::HashMap<String, String>> =
        pipe.query_async(&mut conn).await?;
    Ok(ids
        .into_iter()
        .zip(hashes)
        // An empty hash has expired: the instance is gone.
        .filter(|(_, h)| !h.is_empty())
        .map(|(server_id, h)| {
            let number = |k: &str| h.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            InstanceStatus {
                server_id,
                connected_users: number("connectedUsers"),
                open_streams: number("openStreams"),
                chat_sockets: number("chatSockets"),
                redis_connected: h.get("redisConnected").is_some_and(|v| v == "1"),
            }
        })
        .collect())
}

async fn report(conn: &mut Redis, me: &InstanceStatus) -> redis::RedisResult<()> {
    let key = instance_key(&me.server_id);
    let now = now_ms();
    redis::pipe()
        .atomic()
        .hset_multiple(
            &key,
            &[
                ("connectedUsers", me.connected_users.to_string()),
                ("openStreams", me.open_streams.to_string()),
                ("chatSockets", me.chat_sockets.to_string()),
                (
                    "redisConnected",
                    if me.redis_connected { "1" } else { "0" }.to_owned(),
                ),
                ("updatedAt", now.to_string()),
            ],
        )
        .ignore()
        .expire(&key, INSTANCE_TTL.as_secs() as i64)
        .ignore()
        .zadd(instances_key(), &me.server_id, now)
        .ignore()
        // Keeps the index from growing with instances that died long ago.
        .zrembyscore(
            instances_key(),
            "-inf",
            now - 10 * INSTANCE_TTL.as_millis() as i64,
        )
        .ignore()
        .query_async(conn)
        .await
}

/// Every few seconds: report this instance's figures (Redis) or prune the in-memory
/// replay buffer. On shutdown the instance removes its own entry.
pub fn spawn_heartbeat(notifications: Arc<Notifications>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Recent::Memory(memory) = &notifications.recent {
                memory.prune();
            }
            if let Some(conn) = &notifications.redis {
                let me = this_instance(&notifications);
                let mut conn = conn.clone();
                if let Err(e) = report(&mut conn, &me).await {
                    tracing::debug!(error = %e, "instance heartbeat not written");
                }
            }
        }
        if let Some(conn) = &notifications.redis {
            let mut conn = conn.clone();
            let _ = redis::pipe()
                .del(instance_key(&notifications.server_id))
                .ignore()
                .zrem(instances_key(), &notifications.server_id)
                .ignore()
                .query_async::<()>(&mut conn)
                .await;
        }
    });
}
