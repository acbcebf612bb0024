//! The Socket.IO namespace `/chat` (events and payloads: docs/chat.md).

use std::sync::{Arc, atomic::Ordering};

use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    extract::{AckSender, SocketRef, State, TryData},
};

use super::{
    ChatRuntime, presence,
    relay::broadcast,
    store::{self, session_channel},
};
use crate::{
    auth::{AuthUser, authenticate},
    pages::access::{Need, access_of, load_page},
};

/// The socket's user, set by the handshake middleware.
#[derive(Clone)]
pub struct SocketUser(pub AuthUser);

/// The room the socket talks in (its last `joinRoom`), and that room's session.
#[derive(Clone)]
pub struct CurrentRoom {
    pub room: String,
    pub page_id: String,
    pub session_id: String,
}

/// Rooms this socket joined and the session of each (for presence and for the
/// relay's subscriptions when it leaves).
#[derive(Clone, Default)]
pub struct JoinedRooms(pub Vec<Joined>);

#[derive(Clone)]
pub struct Joined {
    pub room: String,
    pub session_id: String,
}

impl JoinedRooms {
    fn contains(&self, room: &str) -> bool {
        self.0.iter().any(|j| j.room == room)
    }

    pub fn session_of(&self, room: &str) -> Option<String> {
        self.0
            .iter()
            .find(|j| j.room == room)
            .map(|j| j.session_id.clone())
    }
}

#[derive(Deserialize)]
pub struct HandshakeAuth {
    token: String,
}

#[derive(Debug)]
pub struct HandshakeRefused(String);

impl std::fmt::Display for HandshakeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs before the socket joins the namespace: no valid access token, no socket.
/// The client sees `connect_error` with this message.
///
/// The event handlers are registered here, not in [`on_connect`]: socketioxide sends
/// the client its connect packet when this middleware succeeds and only then spawns
/// the connect handler, so under load a client's first event (`joinRoom`) could
/// arrive before handlers registered there exist, and be dropped without a trace
/// (the chat benchmark lost about one join in a thousand that way).
pub async fn authenticate_socket(
    s: SocketRef,
    State(rt): State<Arc<ChatRuntime>>,
    TryData(auth): TryData<HandshakeAuth>,
) -> Result<(), HandshakeRefused> {
    let token = auth
        .map_err(|_| HandshakeRefused("unauthorized: missing auth.token".into()))?
        .token;
    // A database outage is not the client's fault: `unavailable:` tells it to retry
    // with the same token instead of logging the user out.
    let user = authenticate(&rt.state, &token).await.map_err(|e| {
        if is_outage(&e) {
            tracing::warn!(error = ?e, "handshake: database unavailable");
            HandshakeRefused("unavailable: please reconnect in a moment".into())
        } else {
            HandshakeRefused(format!("unauthorized: {e}"))
        }
    })?;
    s.extensions.insert(SocketUser(user));
    s.extensions.insert(JoinedRooms::default());
    s.on("joinRoom", join_room);
    s.on("chat-message", chat_message);
    s.on("stop-generation", stop_generation);
    s.on("read", read);
    s.on("resume", resume);
    s.on_disconnect(on_disconnect);
    Ok(())
}

/// Called once per socket that completed the handshake; `on_disconnect` undoes it.
pub async fn on_connect(State(rt): State<Arc<ChatRuntime>>) {
    rt.state
        .notifications
        .chat_sockets
        .fetch_add(1, Ordering::Relaxed);
}

/// Sends `payload` both as the ack (when the client asked for one) and as `event`.
fn reply(s: &SocketRef, ack: Option<AckSender>, event: &str, payload: &Value) {
    if let Some(ack) = ack {
        let _ = ack.send(payload);
    }
    if let Err(e) = s.emit(event, payload) {
        // A full socket buffer (a client not reading) or a socket already gone.
        tracing::warn!(error = %e, event, sid = %s.id, "reply not sent");
    }
}

/// Errors go to the sender only, as `chat-error {event, code, message}` (and the ack).
fn refuse(s: &SocketRef, ack: Option<AckSender>, event: &str, code: &str, message: &str) {
    reply(
        s,
        ack,
        "chat-error",
        &json!({"event": event, "code": code, "message": message}),
    );
}

fn user_of(s: &SocketRef) -> Option<AuthUser> {
    s.extensions.get::<SocketUser>().map(|u| u.0)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinIn {
    room: String,
    /// Start a new conversation instead of continuing the active one.
    #[serde(default, alias = "new_session")]
    new_session: bool,
}

async fn join_room(
    s: SocketRef,
    State(rt): State<Arc<ChatRuntime>>,
    TryData(data): TryData<JoinIn>,
    ack: AckSender,
) {
    const EVENT: &str = "joinRoom";
    let Some(user) = user_of(&s) else { return };
    let Ok(data) = data else {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_payload",
            "expected {room: \"page-<id>\"}",
        );
    };
    let Some(page_id) = data
        .room
        .strip_prefix("page-")
        .filter(|id| !id.is_empty() && id.len() <= 26)
    else {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_room",
            "rooms are named page-<pageId>",
        );
    };
    let joined = s.extensions.get::<JoinedRooms>().unwrap_or_default();
    if !joined.contains(&data.room) && joined.0.len() >= rt.state.cfg.chat.max_rooms_per_socket {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "too_many_rooms",
            "this connection has joined too many rooms",
        );
    }
    // Not a member: the same answer as for a page that does not exist.
    if let Err(e) = load_page(&rt.state.db, page_id, &user, Need::Edit).await {
        return failed(&s, Some(ack), EVENT, e, "room not found");
    }
    // The session the room is on before a new one starts: the other instances with
    // members listen to its channel.
    let previous = if data.new_session {
        match store::latest_session(&rt.state.db, page_id).await {
            Ok(p) => p.map(|p| p.id),
            Err(e) => return failed(&s, Some(ack), EVENT, e, ""),
        }
    } else {
        None
    };
    let session =
        match store::active_session(&rt.state.db, page_id, &user.id, data.new_session).await {
            Ok(session) => session,
            Err(e) => return failed(&s, Some(ack), EVENT, e, ""),
        };
    // In the room first, then listening to its session: an item the instance gets
    // once the subscription is confirmed finds the socket in the room. The answer goes
    // out only after both, so whatever is published after it reaches the socket, and
    // whatever was published before it is in the durable stream (`resume`).
    s.join(data.room.clone());
    let mut joined = s.extensions.get::<JoinedRooms>().unwrap_or_default();
    joined.0.retain(|j| j.room != data.room);
    joined.0.push(Joined {
        room: data.room.clone(),
        session_id: session.id.clone(),
    });
    s.extensions.insert(joined);
    s.extensions.insert(CurrentRoom {
        room: data.room.clone(),
        page_id: page_id.to_owned(),
        session_id: session.id.clone(),
    });
    let sid = s.id.to_string();
    if let Some(subs) = &rt.subs {
        subs.join(&data.room, &session.id, &s).await;
        if !s.connected() {
            // Gone while joining: its disconnect handler may have run before the
            // join was counted.
            subs.leave(&data.room, &sid);
            return;
        }
    }
    let unread = store::unread_count(&rt.state.db, &session.id, &user.id)
        .await
        .unwrap_or_default();
    let info =
        json!({"session_id": session.id, "room": data.room, "page_id": page_id, "unread": unread});
    reply(&s, Some(ack), "session-info", &info);
    if let Some(redis) = &rt.redis {
        if let Some(previous) = previous.filter(|p| *p != session.id) {
            // Everyone in the room moves to the new conversation. Instances with
            // members listen to the room's previous session; on this envelope they
            // start listening to the new one too.
            let _ = broadcast(
                redis,
                &session_channel(&previous),
                "session-info",
                &data.room,
                Some(sid),
                info,
            )
            .await;
        }
        presence::joined(redis, &data.room, &session.id, &user.id).await;
    }
}

#[derive(Deserialize)]
struct ChatMessageIn {
    text: String,
    #[serde(default)]
    client_msg_id: Option<String>,
}

async fn chat_message(
    s: SocketRef,
    State(rt): State<Arc<ChatRuntime>>,
    TryData(data): TryData<ChatMessageIn>,
    ack: AckSender,
) {
    const EVENT: &str = "chat-message";
    let Some(user) = user_of(&s) else { return };
    let cfg = &rt.state.cfg.chat;
    let Ok(data) = data else {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_payload",
            "expected {text, client_msg_id?}",
        );
    };
    let text = data.text.trim();
    if text.is_empty() || text.chars().count() > cfg.max_message_chars {
        let msg = format!("a message is 1 to {} characters", cfg.max_message_chars);
        return refuse(&s, Some(ack), EVENT, "invalid_message", &msg);
    }
    if data
        .client_msg_id
        .as_ref()
        .is_some_and(|c| c.is_empty() || c.len() > 64)
    {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_message",
            "client_msg_id is 1 to 64 characters",
        );
    }
    let Some(current) = s.extensions.get::<CurrentRoom>() else {
        return refuse(&s, Some(ack), EVENT, "not_joined", "join a room first");
    };
    if !rt.limiter.allow(&user.id).await {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "rate_limited",
            "too many messages; wait a moment",
        );
    }
    let redis = match (
        rt.redis.clone(),
        rt.state.cfg.agent_manager_url.is_some()
            || cfg.handoff == crate::config::AgentHandoff::Celery,
    ) {
        (Some(r), true) => r,
        _ => {
            return refuse(
                &s,
                Some(ack),
                EVENT,
                "chat_unavailable",
                "the assistant is not configured on this server",
            );
        }
    };
    // No Redis, no answer and no error item: refuse now rather than accept a message
    // whose turn could not end within its bound.
    if !redis_up(&redis).await {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "unavailable",
            "the chat is briefly unavailable; please send again in a moment",
        );
    }
    // Membership can change after joining; check again before storing anything.
    if let Err(e) = load_page(&rt.state.db, &current.page_id, &user, Need::Edit).await {
        return failed(&s, Some(ack), EVENT, e, "room not found");
    }
    let session_id = current.session_id.clone();
    let (message, is_new) = match store::store_user_message(
        &rt.state.db,
        &session_id,
        &current.page_id,
        &user.id,
        text,
        data.client_msg_id.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return failed(&s, Some(ack), EVENT, e, ""),
    };
    // The message and its outbox row are committed: the hand-off and the deadline are
    // now the dispatcher's and the sweeper's, whatever happens to this instance.
    rt.wake.notify_one();
    // A repeated `client_msg_id` gets the same message back with its status, so a
    // client that lost the first ack knows whether to keep waiting (`pending`; the
    // outbox still hands it off) or to send a new message (`failed`).
    let status = serde_json::to_value(message.status).unwrap_or_default();
    reply(
        &s,
        Some(ack),
        "message-accepted",
        &json!({"message_id": message.id, "client_msg_id": message.client_msg_id,
            "session_id": session_id, "status": status}),
    );
    if !is_new {
        return;
    }
    let user_item = json!({
        "session_id": session_id, "message_id": message.id, "role": "user", "type": "text",
        "content": message.content, "user_id": user.id, "display_name": user.display_name,
        "created_at": message.created_at,
    });
    let _ = broadcast(
        &redis,
        &session_channel(&session_id),
        "newMessage",
        &current.room,
        Some(s.id.to_string()),
        user_item,
    )
    .await;
}

#[derive(Deserialize)]
struct MessageRef {
    message_id: String,
}

async fn stop_generation(
    s: SocketRef,
    State(rt): State<Arc<ChatRuntime>>,
    TryData(data): TryData<MessageRef>,
    ack: AckSender,
) {
    const EVENT: &str = "stop-generation";
    let Some(user) = user_of(&s) else { return };
    let Ok(data) = data else {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_payload",
            "expected {message_id}",
        );
    };
    let Some(redis) = rt.redis.clone() else {
        return refuse(&s, Some(ack), EVENT, "chat_unavailable", "chat needs Redis");
    };
    match owning_session(&rt, &user, &data.message_id).await {
        Err(e) => failed(&s, Some(ack), EVENT, e, ""),
        Ok(Some(_)) => {
            // The worker checks this flag between chunks (docs/agent-manager.md).
            let key = format!("chat:cancel:{}", data.message_id);
            let set: redis::RedisResult<()> = redis.clone().set_ex(key, "1", 3600).await;
            if let Err(e) = set {
                let err = crate::error::Error::internal(e);
                return failed(&s, Some(ack), EVENT, err, "");
            }
            reply(
                &s,
                Some(ack),
                "generation-stopping",
                &json!({"message_id": data.message_id}),
            );
        }
        Ok(None) => refuse(&s, Some(ack), EVENT, "not_found", "message not found"),
    }
}

/// The session of a message, if the user may act on it.
async fn owning_session(
    rt: &ChatRuntime,
    user: &AuthUser,
    message_id: &str,
) -> crate::error::Result<Option<String>> {
    use sea_orm::EntityTrait;
    let Some(message) = crate::db::chat_message::Entity::find_by_id(message_id.to_owned())
        .one(&rt.state.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(page) = crate::db::page::Entity::find_by_id(message.page_id.clone())
        .one(&rt.state.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(access_of(&rt.state.db, &page, user)
        .await?
        .map(|_| message.session_id))
}

async fn read(
    s: SocketRef,
    State(rt): State<Arc<ChatRuntime>>,
    TryData(data): TryData<MessageRef>,
    ack: AckSender,
) {
    const EVENT: &str = "read";
    let Some(user) = user_of(&s) else { return };
    let Ok(data) = data else {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_payload",
            "expected {message_id}",
        );
    };
    let session_id = match owning_session(&rt, &user, &data.message_id).await {
        Ok(Some(session_id)) => session_id,
        Ok(None) => return refuse(&s, Some(ack), EVENT, "not_found", "message not found"),
        Err(e) => return failed(&s, Some(ack), EVENT, e, ""),
    };
    if let Err(e) = store::mark_read(&rt.state.db, &session_id, &user.id, &data.message_id).await {
        return failed(&s, Some(ack), EVENT, e, "message not found");
    }
    let unread = store::unread_count(&rt.state.db, &session_id, &user.id)
        .await
        .unwrap_or_default();
    let receipt =
        json!({"session_id": session_id, "user_id": user.id, "message_id": data.message_id});
    reply(
        &s,
        Some(ack),
        "read-ack",
        &json!({"session_id": session_id, "message_id": data.message_id, "unread": unread}),
    );
    if let (Some(redis), Some(current)) = (&rt.redis, s.extensions.get::<CurrentRoom>()) {
        let _ = broadcast(
            redis,
            &session_channel(&session_id),
            "read",
            &current.room,
            Some(s.id.to_string()),
            receipt,
        )
        .await;
    }
}

#[derive(Deserialize)]
struct ResumeIn {
    session_id: String,
    /// The last finished message the client has.
    #[serde(default)]
    last_message_id: Option<String>,
    /// The answer the client was receiving, and the last `seq` it saw of it.
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    after_seq: Option<i64>,
}

async fn resume(
    s: SocketRef,
    State(rt): State<Arc<ChatRuntime>>,
    TryData(data): TryData<ResumeIn>,
    ack: AckSender,
) {
    const EVENT: &str = "resume";
    let Some(user) = user_of(&s) else { return };
    let Ok(data) = data else {
        return refuse(
            &s,
            Some(ack),
            EVENT,
            "invalid_payload",
            "expected {session_id, after_seq?, message_id?, last_message_id?}",
        );
    };
    if let Err(e) = store::load_session(&rt.state.db, &data.session_id, &user).await {
        return failed(&s, Some(ack), EVENT, e, "session not found");
    }
    let from = store::ResumeFrom {
        last_message_id: data.last_message_id.as_deref(),
        message_id: data.message_id.as_deref(),
        after_seq: data.after_seq,
    };
    match store::resume(&rt.state.db, rt.redis.as_ref(), &data.session_id, from).await {
        Ok(out) => reply(&s, Some(ack), "resumed", &out.to_socket()),
        Err(e) => failed(&s, Some(ack), EVENT, e, ""),
    }
}

async fn on_disconnect(s: SocketRef, io: SocketIo, State(rt): State<Arc<ChatRuntime>>) {
    rt.state
        .notifications
        .chat_sockets
        .fetch_sub(1, Ordering::Relaxed);
    let (Some(user), Some(redis)) = (user_of(&s), rt.redis.clone()) else {
        return;
    };
    let joined = s.extensions.get::<JoinedRooms>().unwrap_or_default();
    let sid = s.id.to_string();
    if let Some(subs) = &rt.subs {
        for j in &joined.0 {
            subs.leave(&j.room, &sid);
        }
    }
    for j in joined.0 {
        presence::left(&io, &redis, &j.room, &j.session_id, &user.id, &sid).await;
    }
}

/// Answers an event that could not be done: a 4xx error (not a member, no such
/// message) as `not_found` with `not_found_message`, a dependency outage as
/// `unavailable` (retryable), anything else as `internal`.
fn failed(
    s: &SocketRef,
    ack: Option<AckSender>,
    event: &str,
    err: crate::error::Error,
    not_found_message: &str,
) {
    if is_outage(&err) {
        tracing::warn!(error = ?err, event, "chat event: dependency unavailable");
        return refuse(
            s,
            ack,
            event,
            "unavailable",
            "the chat is briefly unavailable; please try again in a moment",
        );
    }
    if err.status().is_client_error() {
        return refuse(s, ack, event, "not_found", not_found_message);
    }
    tracing::error!(error = ?err, event, "chat event failed");
    refuse(
        s,
        ack,
        event,
        "internal",
        "something went wrong; please try again",
    );
}

/// Whether an error is a database or Redis outage (the client should retry), as
/// opposed to a bad request or a bug.
pub fn is_outage(err: &crate::error::Error) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let crate::error::Error::Internal(err) = err else {
        return err.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE;
    };
    err.chain().any(|cause| {
        if let Some(db) = cause.downcast_ref::<DbErr>() {
            return match db {
                DbErr::ConnectionAcquire(_) => true,
                DbErr::Conn(RuntimeErr::SqlxError(e))
                | DbErr::Exec(RuntimeErr::SqlxError(e))
                | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
                    e.as_ref(),
                    sea_orm::sqlx::Error::Io(_)
                        | sea_orm::sqlx::Error::Tls(_)
                        | sea_orm::sqlx::Error::Protocol(_)
                        | sea_orm::sqlx::Error::PoolTimedOut
                        | sea_orm::sqlx::Error::PoolClosed
                        | sea_orm::sqlx::Error::WorkerCrashed
                ),
                DbErr::Conn(_) => true,
                _ => false,
            };
        }
        cause
            .downcast_ref::<redis::RedisError>()
            .is_some_and(|e| e.is_io_error() || e.is_connection_dropped() || e.is_timeout())
    })
}

/// A short PING: is Redis there right now?
async fn redis_up(redis: &crate::redis_conn::Redis) -> bool {
    let mut conn = redis.clone();
    let ping = redis::cmd("PING");
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            ping.query_async::<String>(&mut conn)
        )
        .await,
        Ok(Ok(_))
    )
}
