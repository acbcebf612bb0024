//! One Redis handle for a single server and for a Redis Cluster (`REDIS_MODE`).
//!
//! Both variants are `redis::aio::ConnectionLike`, so call sites use `AsyncCommands`,
//! scripts and single-slot pipelines the same way. What differs in a Cluster:
//! - chat channels are *sharded* (`SPUBLISH` / `SSUBSCRIBE`, Redis ≥ 7): a message
//!   goes only to the shard that owns the channel's slot, not to every node;
//! - every key a Lua script or a pipeline touches must be in one slot, so the per-session
//!   keys carry the hash tag `{chat:<session_id>}` — the channel's own name, so the
//!   channel `chat:<session_id>` is in the same slot as its stream and turns
//!   ([`session_stream_key`](crate::chat::store::session_stream_key),
//!   [`turn_key`](crate::chat::turn::turn_key)). A single server keeps the names of
//!   the contract (docs/chat.md).
//!
//! The mode is set once at start-up ([`set_cluster_mode`]) because key names depend on it.

use std::{sync::OnceLock, time::Duration};

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};

static CLUSTER: OnceLock<bool> = OnceLock::new();

/// Called once at start-up; later calls keep the first value.
pub fn set_cluster_mode(cluster: bool) {
    let _ = CLUSTER.set(cluster);
}

/// Whether this process talks to a Redis Cluster.
pub fn cluster_mode() -> bool {
    CLUSTER.get().copied().unwrap_or(false)
}

/// The hash tag that keeps a session's keys in the slot of its channel (Cluster only).
pub fn session_tag(session_id: &str) -> String {
    format!("{{chat:{session_id}}}")
}

/// The seed nodes of `REDIS_URL` in Cluster mode (comma-separated URLs).
pub fn seeds(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Clone)]
pub enum Redis {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Redis {
    /// Connects to `url`: one server, or (Cluster) any of the comma-separated seeds.
    pub async fn connect(url: &str, cluster: bool) -> redis::RedisResult<Self> {
        if cluster {
            let client = cluster_client(url, None)?;
            return Ok(Redis::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)));
        Ok(Redis::Single(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Redis::Cluster(_))
    }

    /// The single server's connection (the Celery hand-off needs one: Celery's Redis
    /// broker cannot use a Cluster).
    pub fn single(&self) -> Option<&ConnectionManager> {
        match self {
            Redis::Single(c) => Some(c),
            Redis::Cluster(_) => None,
        }
    }

    /// Publishes on a chat channel: `PUBLISH`, or `SPUBLISH` on a Cluster.
    pub async fn publish_chat(&self, channel: &str, payload: String) -> redis::RedisResult<()> {
        let mut conn = self.clone();
        redis::cmd(publish_command())
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
    }
}

/// The command that publishes on a chat channel (also inside Lua scripts).
pub fn publish_command() -> &'static str {
    if cluster_mode() {
        "SPUBLISH"
    } else {
        "PUBLISH"
    }
}

/// A Cluster client over the seeds of `url`, with RESP3 and `pushes` when given (the
/// relay's sharded subscriptions). Timeouts as for the single server's connection.
pub fn cluster_client(
    url: &str,
    pushes: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> redis::RedisResult<ClusterClient> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(seeds(url))
        .connection_timeout(Duration::from_secs(3))
        .response_timeout(Duration::from_secs(3));
    if let Some(pushes) = pushes {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(pushes);
    }
    builder.build()
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Redis::Single(c) => c.req_packed_command(cmd),
            Redis::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Redis::Single(c) => c.req_packed_commands(cmd, offset, count),
            Redis::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Redis::Single(c) => c.get_db(),
            Redis::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_comma_separated_urls() {
        assert_eq!(
            seeds("redis://a:1, redis://b:2,"),
            ["redis://a:1", "redis://b:2"]
        );
        assert_eq!(session_tag("01S"), "{chat:01S}");
    }
}
