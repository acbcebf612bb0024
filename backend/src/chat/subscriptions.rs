//! Which `chat:<session_id>` channels this instance listens to: only those of rooms it
//! holds a joined socket of (docs/chat.md "Relay across instances").
//!
//! Two halves:
//! - the *table* (what is wanted): per room, the local sockets joined to it and the
//!   sessions whose items go to it — the session each socket joined, and sessions the
//!   room was moved to (`session-info` of a new conversation). A room's channels are
//!   wanted from its first local join until its last local socket leaves;
//! - the *link* (what is live): the one pub/sub connection (RESP3, pushes go to the
//!   relay task) and the channels Redis confirmed on it.
//!
//! Every change of the table is followed by a `reconcile` of the channels it touched,
//! run under the link's lock, which compares wanted with live and sends SUBSCRIBE or
//! UNSUBSCRIBE. Joins and leaves may interleave in any order: each reconcile reads the
//! table as it is then, so the link converges to the last state. A join waits for its
//! channel's confirmation before the socket is answered, so every item published after
//! the answer reaches the socket, and every item published before it is in the
//! durable stream `resume` reads (the worker appends and publishes in one script).
//!
//! A maintenance loop pings the connection, replaces it when it is lost, subscribes
//! every wanted channel again on the new one and retries channels that failed.
//!
//! On a Redis Cluster each channel lives on the node that owns its slot. When a node
//! is lost (its master failed, and its replica takes over after the node timeout) or
//! Redis drops a sharded subscription (its slot moved), the link stays up for the
//! other nodes' channels, and every wanted channel is subscribed again: the ones of
//! the failed node are refused until the Cluster has promoted its replica, and are
//! retried every [`MAINTAIN_EVERY`] until then.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use redis::{
    PushInfo, aio::MultiplexedConnection, cluster::ClusterClient, cluster_async::ClusterConnection,
};
use socketioxide::extract::SocketRef;
use tokio::sync::{Notify, mpsc::UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::store::{session_channel, session_of_channel};
use crate::metrics;

/// Bound for connecting and for each command on the link.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the link is checked (PING) and failed channels retried.
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);
/// Sessions remembered per room while it has members (new conversations add one each);
/// the oldest go first. Items of a session dropped here still reach `resume`.
const MAX_SESSIONS_PER_ROOM: usize = 16;
/// Channels per SUBSCRIBE when a new connection subscribes everything again.
const RESUBSCRIBE_BATCH: usize = 500;
/// Sharded (un)subscribes in flight at once on a Cluster (one command per channel).
const CLUSTER_IN_FLIGHT: usize = 256;

#[derive(Default)]
struct Room {
    /// Local sockets joined to the room, by id. The relay hands items to them from
    /// here ([`Subscriptions::with_route`]): no lookup of each socket by id.
    members: HashMap<String, SocketRef>,
    /// Sessions whose items go to this room, oldest first.
    sessions: Vec<String>,
}

#[derive(Default)]
struct Table {
    rooms: HashMap<String, Room>,
    /// Wanted sessions and their room (a session belongs to one page, so one room).
    sessions: HashMap<String, String>,
}

impl Table {
    /// How many local sockets joined `room`.
    fn members(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// Adds `session` to `room` (which must exist); returns the sessions no longer wanted.
    fn add_session(&mut self, room: &str, session: &str) -> Vec<String> {
        let Some(r) = self.rooms.get_mut(room) else {
            return Vec::new();
        };
        if r.sessions.iter().any(|s| s == session) {
            return Vec::new();
        }
        r.sessions.push(session.to_owned());
        self.sessions.insert(session.to_owned(), room.to_owned());
        let mut dropped = Vec::new();
        while r.sessions.len() > MAX_SESSIONS_PER_ROOM {
            let old = r.sessions.remove(0);
            self.sessions.remove(&old);
            dropped.push(old);
        }
        dropped
    }
}

/// The pub/sub connection: SUBSCRIBE on a single server, SSUBSCRIBE (sharded, routed
/// to the node owning the channel's slot) on a Cluster.
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Channels of one (un)subscribe that a Cluster node did not confirm (by index, rising),
/// and why the first of them was refused.
#[derive(Default)]
struct Refused {
    channels: Vec<usize>,
    first_error: String,
}

impl Conn {
    /// How many channels one [`Conn::send`] takes when everything is subscribed again.
    /// A Cluster takes them all at once: a node that does not answer makes each of its
    /// channels wait [`REDIS_TIMEOUT`], and batches one after the other would add that up.
    fn batch(&self) -> usize {
        match self {
            Conn::Single(_) => RESUBSCRIBE_BATCH,
            Conn::Cluster(_) => usize::MAX,
        }
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE `channels`, each bounded by [`REDIS_TIMEOUT`].
    /// On a single server it is one command: an error means the connection failed. On
    /// a Cluster it is one command per channel (a sharded (un)subscribe names one slot,
    /// so one node), [`CLUSTER_IN_FLIGHT`] at a time: a node that cannot be reached
    /// refuses its channels, the others' go through.
    async fn send(&mut self, channels: &[String], on: bool) -> Result<Refused, String> {
        match self {
            Conn::Single(c) => if on {
                bounded(c.subscribe(channels)).await
            } else {
                bounded(c.unsubscribe(channels)).await
            }
            .map(|()| Refused::default()),
            Conn::Cluster(c) => {
                // Each future owns what it uses (collected first): the stream is held
                // across awaits of a task that must be `Send` for any lifetime.
                let each: Vec<_> = channels
                    .iter()
                    .map(|ch| {
                        let (mut c, ch) = (c.clone(), ch.clone());
                        async move {
                            if on {
                                bounded(c.ssubscribe(&ch)).await
                            } else {
                                bounded(c.sunsubscribe(&ch)).await
                            }
                            .err()
                        }
                    })
                    .collect();
                let errors: Vec<Option<String>> = futures::stream::iter(each)
                    .buffered(CLUSTER_IN_FLIGHT)
                    .collect()
                    .await;
                let mut refused = Refused::default();
                for (i, error) in errors.into_iter().enumerate() {
                    if let Some(e) = error {
                        if refused.channels.is_empty() {
                            refused.first_error = e;
                        }
                        refused.channels.push(i);
                    }
                }
                Ok(refused)
            }
        }
    }

    async fn ping(&mut self) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => redis::cmd("PING").query_async(c).await,
            Conn::Cluster(c) => redis::cmd("PING").query_async(c).await,
        }
    }
}

/// `command` bounded by [`REDIS_TIMEOUT`]; its error, or the timeout, as text.
async fn bounded(command: impl Future<Output = redis::RedisResult<()>>) -> Result<(), String> {
    match tokio::time::timeout(REDIS_TIMEOUT, command).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

#[derive(Default)]
struct Link {
    conn: Option<Conn>,
    /// Sessions whose channel Redis confirmed on `conn`.
    live: HashSet<String>,
    /// When the last connection attempt failed: joins do not each wait for another
    /// attempt while Redis is down (the maintenance loop keeps trying).
    failed_at: Option<std::time::Instant>,
}

/// Where the pub/sub connection comes from. The Cluster client must have been built
/// with RESP3 and the same push sender ([`crate::redis_conn::cluster_client`]).
pub enum Source {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

pub struct Subscriptions {
    table: Mutex<Table>,
    link: tokio::sync::Mutex<Link>,
    source: Source,
    /// Where the connection delivers its pushes (the relay task).
    pushes: UnboundedSender<PushInfo>,
    /// Asks the maintenance loop to check the link now (the relay saw a disconnection).
    check: Notify,
    /// A connection reported it was lost: every wanted channel is subscribed again.
    resubscribe: AtomicBool,
    /// Sessions whose channel Redis dropped while they were wanted (a Cluster slot moved).
    dropped: Mutex<Vec<String>>,
}

impl Subscriptions {
    pub fn new(source: Source, pushes: UnboundedSender<PushInfo>) -> Arc<Self> {
        Arc::new(Subscriptions {
            table: Mutex::default(),
            link: tokio::sync::Mutex::default(),
            source,
            pushes,
            check: Notify::new(),
            resubscribe: AtomicBool::new(false),
            dropped: Mutex::default(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("not poisoned")
    }

    /// `socket` joined `room` in `session`. Returns once the session's channel is
    /// live (or Redis failed; the maintenance loop retries, and the client can `resume`).
    pub async fn join(&self, room: &str, session: &str, socket: &SocketRef) {
        let dropped = {
            let mut t = self.table();
            t.rooms
                .entry(room.to_owned())
                .or_default()
                .members
                .insert(socket.id.to_string(), socket.clone());
            t.add_session(room, session)
        };
        self.reconcile(&[session.to_owned()]).await;
        if !dropped.is_empty() {
            self.reconcile(&dropped).await;
        }
    }

    /// The room moved to a new `session` (a member started a new conversation). Only
    /// rooms with local members listen to it.
    pub async fn add_session(&self, room: &str, session: &str) {
        let (known, dropped) = {
            let mut t = self.table();
            let known = t.rooms.contains_key(room);
            (known, t.add_session(room, session))
        };
        if known {
            self.reconcile(&[session.to_owned()]).await;
            self.reconcile(&dropped).await;
        }
    }

    /// Socket `sid` left `room` (left it, was removed, or disconnected). After the last
    /// local member the room's channels are unsubscribed (in the background).
    pub fn leave(self: &Arc<Self>, room: &str, sid: &str) {
        let released = {
            let mut t = self.table();
            let Some(r) = t.rooms.get_mut(room) else {
                return;
            };
            r.members.remove(sid);
            if !r.members.is_empty() {
                return;
            }
            let r = t.rooms.remove(room).unwrap_or_default();
            for s in &r.sessions {
                t.sessions.remove(s);
            }
            r.sessions
        };
        let this = Arc::clone(self);
        tokio::spawn(async move { this.reconcile(&released).await });
    }

    /// Runs `f` on the room a session's items go to and its local sockets, while this
    /// instance listens to the session; `None` otherwise. `f` runs under the table's
    /// lock, so it must not wait (the relay hands packets to the sockets' queues).
    pub fn with_route<R>(
        &self,
        session: &str,
        f: impl FnOnce(&str, &mut dyn Iterator<Item = &SocketRef>) -> R,
    ) -> Option<R> {
        let t = self.table();
        let room = t.sessions.get(session)?;
        let r = t.rooms.get(room)?;
        Some(f(room, &mut r.members.values()))
    }

    /// How many local sockets joined `room`.
    pub fn local_members(&self, room: &str) -> usize {
        self.table().members(room)
    }

    /// Called by the relay when a connection reported it was lost (on a Cluster: the
    /// connection to one node).
    pub fn connection_lost(&self) {
        self.resubscribe.store(true, Ordering::Relaxed);
        self.check.notify_one();
    }

    /// Called by the relay when Redis reports `channel` unsubscribed: the answer to an
    /// unsubscribe of ours, or on a Cluster a slot that moved to another node, which
    /// drops its subscribers. The next maintenance pass takes it out of what is live,
    /// and subscribes it again if it is wanted then. Whether it is wanted when the push
    /// is read does not decide: it may be wanted again by the time the pass runs (a
    /// room's only member reloading while its slot moves). One wanted now is seen to at
    /// once.
    pub fn unsubscribed(&self, channel: &str) {
        let Some(session) = session_of_channel(channel) else {
            return;
        };
        self.dropped
            .lock()
            .expect("not poisoned")
            .push(session.to_owned());
        if self.table().sessions.contains_key(session) {
            self.check.notify_one();
        }
    }

    /// Brings the link in line with the table for `sessions` (for every wanted
    /// channel when there is no connection yet: it is made first).
    async fn reconcile(&self, sessions: &[String]) {
        if sessions.is_empty() {
            return;
        }
        let mut link = self.link.lock().await;
        if link.conn.is_none() {
            if link
                .failed_at
                .is_none_or(|at| at.elapsed() >= MAINTAIN_EVERY)
            {
                self.sync_all(&mut link).await;
            }
            return;
        }
        let (add, remove): (Vec<String>, Vec<String>) = {
            let t = self.table();
            let add = sessions
                .iter()
                .filter(|s| t.sessions.contains_key(*s) && !link.live.contains(*s))
                .cloned()
                .collect();
            let remove = sessions
                .iter()
                .filter(|s| !t.sessions.contains_key(*s) && link.live.contains(*s))
                .cloned()
                .collect();
            (add, remove)
        };
        if !add.is_empty() {
            self.send(&mut link, &add, true).await;
        }
        if !remove.is_empty() {
            self.send(&mut link, &remove, false).await;
        }
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE `sessions`' channels. A failed connection is
    /// dropped (the maintenance loop makes a new one and subscribes again); channels a
    /// Cluster node refused stay as they were, and the maintenance loop retries them.
    async fn send(&self, link: &mut Link, sessions: &[String], on: bool) {
        let Some(conn) = link.conn.as_mut() else {
            return;
        };
        let channels: Vec<String> = sessions.iter().map(|s| session_channel(s)).collect();
        match conn.send(&channels, on).await {
            Ok(refused) => {
                for (i, s) in sessions.iter().enumerate() {
                    if refused.channels.binary_search(&i).is_ok() {
                        continue;
                    }
                    if on {
                        link.live.insert(s.clone());
                    } else {
                        link.live.remove(s);
                    }
                }
                if !refused.channels.is_empty() {
                    tracing::warn!(
                        error = %refused.first_error,
                        channels = refused.channels.len(),
                        subscribe = on,
                        "chat relay: Redis Cluster nodes refused some channels (a node failing over?); retrying"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, channels = channels.len(), subscribe = on, "chat relay: (un)subscribe failed; reconnecting");
                lose(link);
                self.check.notify_one();
            }
        }
        metrics::relay_subscriptions(link.live.len());
    }

    async fn connect(&self) -> redis::RedisResult<Conn> {
        match &self.source {
            Source::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_push_sender(self.pushes.clone());
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Conn::Single(conn))
            }
            Source::Cluster(client) => Ok(Conn::Cluster(client.get_async_connection().await?)),
        }
    }

    /// One maintenance pass: forget what a lost connection or Redis took away, PING the
    /// connection (a silent one is replaced), then bring every channel in line with the
    /// table.
    async fn maintain_once(&self) {
        let mut link = self.link.lock().await;
        if self.resubscribe.swap(false, Ordering::Relaxed) {
            // Which channels the lost connection held is not known (on a Cluster, those
            // of one node): all are subscribed again, which is harmless for the others.
            link.live.clear();
        }
        for session in std::mem::take(&mut *self.dropped.lock().expect("not poisoned")) {
            link.live.remove(&session);
        }
        if let Some(conn) = link.conn.as_mut()
            && bounded(conn.ping()).await.is_err()
        {
            tracing::warn!("chat relay: the pub/sub connection does not answer; reconnecting");
            lose(&mut link);
        }
        self.sync_all(&mut link).await;
    }

    /// Connects when there is no connection, then subscribes what is wanted and not
    /// live and unsubscribes what is live and no longer wanted (after a reconnect:
    /// every wanted channel).
    async fn sync_all(&self, link: &mut Link) {
        if link.conn.is_none() {
            link.failed_at = Some(std::time::Instant::now());
            match tokio::time::timeout(REDIS_TIMEOUT, self.connect()).await {
                Ok(Ok(conn)) => {
                    link.conn = Some(conn);
                    link.failed_at = None;
                    let wanted = self.table().sessions.len();
                    tracing::info!(
                        channels = wanted,
                        "chat relay: connected to Redis; subscribing"
                    );
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "chat relay: cannot connect to Redis");
                    return;
                }
                Err(_) => {
                    tracing::warn!("chat relay: connecting to Redis timed out");
                    return;
                }
            }
        }
        let (add, remove): (Vec<String>, Vec<String>) = {
            let t = self.table();
            let add = t
                .sessions
                .keys()
                .filter(|s| !link.live.contains(*s))
                .cloned()
                .collect();
            let remove = link
                .live
                .iter()
                .filter(|s| !t.sessions.contains_key(*s))
                .cloned()
                .collect();
            (add, remove)
        };
        let batch = link.conn.as_ref().map_or(RESUBSCRIBE_BATCH, Conn::batch);
        for batch in add.chunks(batch) {
            if link.conn.is_none() {
                return;
            }
            self.send(link, batch, true).await;
        }
        for batch in remove.chunks(batch) {
            if link.conn.is_none() {
                return;
            }
            self.send(link, batch, false).await;
        }
        metrics::relay_subscriptions(link.live.len());
    }

    /// Keeps the link up until shutdown.
    pub fn spawn_maintenance(self: &Arc<Self>, shutdown: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                this.maintain_once().await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = this.check.notified() => {}
                    _ = tokio::time::sleep(MAINTAIN_EVERY) => {}
                }
            }
        });
    }

    /// Channels live on the connection now (tests, metrics).
    pub async fn live_count(&self) -> usize {
        self.link.lock().await.live.len()
    }
}

/// The connection is gone: nothing is live on it any more.
fn lose(link: &mut Link) {
    link.conn = None;
    link.live.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_keeps_its_newest_sessions() {
        let mut t = Table::default();
        t.rooms.insert("page-p".into(), Room::default());
        let mut dropped = Vec::new();
        for i in 0..(MAX_SESSIONS_PER_ROOM + 2) {
            dropped.extend(t.add_session("page-p", &format!("s{i:02}")));
        }
        assert_eq!(dropped, ["s00", "s01"]);
        assert_eq!(t.sessions.len(), MAX_SESSIONS_PER_ROOM);
        assert!(t.add_session("page-p", "s05").is_empty(), "already there");
        assert!(
            t.add_session("page-q", "x").is_empty() && !t.sessions.contains_key("x"),
            "a room without members listens to nothing"
        );
    }
}
