//! Chat data: sessions, messages, read marks, and what a reconnecting client missed.

use redis::AsyncCommands;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::OnConflict,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::agent::HistoryTurn;
use crate::{
    auth::AuthUser,
    db::{
        begin_write,
        chat_message::{self, Components, Role, Status},
        chat_read, chat_session, chat_turn, lock_page, new_id,
    },
    error::{Error, Result},
    pages::access::{Access, Need, load_page},
};

/// The Redis stream where the agent keeps every item of a session (for resume). On a
/// Cluster it carries the session's hash tag (the slot of its channel).
pub fn session_stream_key(session_id: &str) -> String {
    if crate::redis_conn::cluster_mode() {
        format!("chat:stream:{}", crate::redis_conn::session_tag(session_id))
    } else {
        format!("chat:stream:{session_id}")
    }
}

/// The pub/sub channel of a session.
pub fn session_channel(session_id: &str) -> String {
    format!("chat:{session_id}")
}

/// The session a [`session_channel`] belongs to.
pub fn session_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("chat:").filter(|s| !s.is_empty())
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    pub id: String,
    pub session_id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub user_id: Option<String>,
    pub content: String,
    #[schema(value_type = Vec<Object>)]
    pub components: Vec<Value>,
    /// `pending`, `answered`, `stopped`, `failed` (user); `complete`, `stopped` (assistant).
    pub status: String,
    /// Assistant messages: the user message they answer.
    pub answer_to: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn label<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<chat_message::Model> for MessageOut {
    fn from(m: chat_message::Model) -> Self {
        MessageOut {
            role: label(&m.role),
            status: label(&m.status),
            id: m.id,
            session_id: m.session_id,
            user_id: m.user_id,
            content: m.content,
            components: m.components.0,
            answer_to: m.answer_to,
            client_msg_id: m.client_msg_id,
            created_at: m.created_at,
        }
    }
}

/// A session the user may see (through its page), or 404.
pub async fn load_session(
    db: &DatabaseConnection,
    session_id: &str,
    user: &AuthUser,
) -> Result<(chat_session::Model, Access)> {
    let session = chat_session::Entity::find_by_id(session_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("chat session"))?;
    let (_, access) = load_page(db, &session.page_id, user, Need::Edit)
        .await
        .map_err(|_| Error::not_found("chat session"))?;
    Ok((session, access))
}

/// The page's active (newest) session, created when the page has none or `fresh`.
pub async fn active_session(
    db: &DatabaseConnection,
    page_id: &str,
    user_id: &str,
    fresh: bool,
) -> Result<chat_session::Model> {
    if !fresh && let Some(s) = latest_session(db, page_id).await? {
        return Ok(s);
    }
    // Two first joins of a page at the same moment must not each start a session: the
    // page row is locked, then the check is repeated.
    let txn = begin_write(db).await?;
    lock_page(&txn, page_id).await?;
    if !fresh && let Some(s) = latest_session(&txn, page_id).await? {
        txn.commit().await?;
        return Ok(s);
    }
    let session = chat_session::ActiveModel {
        id: Set(new_id()),
        page_id: Set(page_id.to_owned()),
        started_by: Set(user_id.to_owned()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(session)
}

/// The page's newest session, if it has one.
pub async fn latest_session<C: ConnectionTrait>(
    db: &C,
    page_id: &str,
) -> Result<Option<chat_session::Model>> {
    Ok(chat_session::Entity::find()
        .filter(chat_session::Column::PageId.eq(page_id))
        .order_by_desc(chat_session::Column::Id)
        .one(db)
        .await?)
}

/// Stores a user message and opens its turn (the hand-off outbox row) in one
/// transaction, so no crash can leave an accepted message that nobody will hand off.
/// A repeated `client_msg_id` in the same session returns the stored message and
/// `false`: its turn, if still open, is already in the outbox.
pub async fn store_user_message(
    db: &DatabaseConnection,
    session_id: &str,
    page_id: &str,
    user_id: &str,
    text: &str,
    client_msg_id: Option<&str>,
) -> Result<(chat_message::Model, bool)> {
    if let Some(existing) = find_by_client_msg_id(db, session_id, client_msg_id).await? {
        return Ok((existing, false));
    }
    let txn = begin_write(db).await?;
    // Checked again under the write transaction: two sends of the same id at once.
    if let Some(existing) = find_by_client_msg_id(&txn, session_id, client_msg_id).await? {
        txn.commit().await?;
        return Ok((existing, false));
    }
    let inserted = chat_message::ActiveModel {
        id: Set(new_id()),
        session_id: Set(session_id.to_owned()),
        page_id: Set(page_id.to_owned()),
        user_id: Set(Some(user_id.to_owned())),
        role: Set(Role::User),
        content: Set(text.to_owned()),
        components: Set(Components::default()),
        status: Set(Status::Pending),
        answer_to: Set(None),
        client_msg_id: Set(client_msg_id.map(str::to_owned)),
        error: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        // PostgreSQL: the same client_msg_id committed by a concurrent send.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            txn.rollback().await?;
            if let Some(existing) = find_by_client_msg_id(db, session_id, client_msg_id).await? {
                return Ok((existing, false));
            }
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    let now = chrono::Utc::now().timestamp_millis();
    chat_turn::ActiveModel {
        message_id: Set(row.id.clone()),
        session_id: Set(session_id.to_owned()),
        accepted_at_ms: Set(now),
        handoff_due_ms: Set(Some(now)),
        attempts: Set(0),
        lease_owner: Set(None),
        lease_until_ms: Set(0),
        last_error: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok((row, true))
}

async fn find_by_client_msg_id<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    client_msg_id: Option<&str>,
) -> Result<Option<chat_message::Model>> {
    let Some(cid) = client_msg_id else {
        return Ok(None);
    };
    Ok(chat_message::Entity::find()
        .filter(chat_message::Column::SessionId.eq(session_id))
        .filter(chat_message::Column::ClientMsgId.eq(cid))
        .one(db)
        .await?)
}

/// Ends a turn: moves the user message from `pending` to `to` and closes its turn
/// row. Conditional on `pending`, so of a late answer and a deadline failure only the
/// first one counts (`true`); the other changes nothing.
pub async fn finish_turn<C: ConnectionTrait>(
    db: &C,
    message_id: &str,
    to: Status,
    error: Option<String>,
) -> Result<bool> {
    let moved = chat_message::Entity::update_many()
        .col_expr(
            chat_message::Column::Status,
            sea_orm::sea_query::Expr::value(to),
        )
        .col_expr(
            chat_message::Column::Error,
            sea_orm::sea_query::Expr::value(error),
        )
        .col_expr(
            chat_message::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now()),
        )
        .filter(chat_message::Column::Id.eq(message_id))
        .filter(chat_message::Column::Role.eq(Role::User))
        .filter(chat_message::Column::Status.eq(Status::Pending))
        .exec(db)
        .await?
        .rows_affected;
    chat_turn::Entity::delete_by_id(message_id.to_owned())
        .exec(db)
        .await?;
    Ok(moved == 1)
}

/// Counts a turn that reached its final state; called once its change is committed.
pub fn count_finished(to: Status) {
    crate::metrics::turn_finished(match to {
        Status::Answered => "answered",
        Status::Stopped => "stopped",
        _ => "failed",
    });
}

/// The turns before `before_id`, oldest first, for the agent.
pub async fn history(
    db: &DatabaseConnection,
    session_id: &str,
    before_id: &str,
    turns: u64,
) -> Result<Vec<HistoryTurn>> {
    let mut rows = chat_message::Entity::find()
        .filter(chat_message::Column::SessionId.eq(session_id))
        .filter(chat_message::Column::Id.lt(before_id))
        .filter(chat_message::Column::Status.ne(Status::Failed))
        .order_by_desc(chat_message::Column::Id)
        .limit(turns)
        .all(db)
        .await?;
    rows.reverse();
    Ok(rows
        .into_iter()
        .map(|m| HistoryTurn {
            role: if m.role == Role::User {
                "user"
            } else {
                "assistant"
            },
            content: m.content,
        })
        .collect())
}

/// Messages newest first, strictly before the `before` cursor. ULIDs grow with time,
/// so a page never shifts when new messages arrive.
pub async fn page_of_messages(
    db: &DatabaseConnection,
    session_id: &str,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<MessageOut>> {
    let mut query =
        chat_message::Entity::find().filter(chat_message::Column::SessionId.eq(session_id));
    if let Some(cursor) = before {
        query = query.filter(chat_message::Column::Id.lt(cursor));
    }
    Ok(query
        .order_by_desc(chat_message::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(MessageOut::from)
        .collect())
}

/// Messages after `after` (or the newest `limit` when absent), oldest first.
pub async fn messages_after(
    db: &DatabaseConnection,
    session_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<MessageOut>> {
    let mut query =
        chat_message::Entity::find().filter(chat_message::Column::SessionId.eq(session_id));
    let rows = match after {
        Some(cursor) => {
            query = query.filter(chat_message::Column::Id.gt(cursor));
            query
                .order_by_asc(chat_message::Column::Id)
                .limit(limit)
                .all(db)
                .await?
        }
        None => {
            let mut r = query
                .order_by_desc(chat_message::Column::Id)
                .limit(limit)
                .all(db)
                .await?;
            r.reverse();
            r
        }
    };
    Ok(rows.into_iter().map(MessageOut::from).collect())
}

/// What a reconnecting client missed: stored messages from the database, and the
/// items of answers from the durable stream. An answer is in one of the two, never
/// both: when the reply has items of an answer, its stored row is left out of
/// `messages` (the items end with the same `done`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumeOut {
    pub session_id: String,
    pub messages: Vec<MessageOut>,
    /// `newMessage` items (snake_case, exactly as streamed), in order: of the answer
    /// resumed, those with `seq > after_seq`; then every item of each later answer.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

impl ResumeOut {
    /// The socket's `resumed` payload: snake_case throughout, like every socket event.
    pub fn to_socket(&self) -> Value {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id, "session_id": m.session_id, "role": m.role, "user_id": m.user_id,
                    "content": m.content, "components": m.components, "status": m.status,
                    "answer_to": m.answer_to, "client_msg_id": m.client_msg_id,
                    "created_at": m.created_at,
                })
            })
            .collect();
        serde_json::json!({"session_id": self.session_id, "messages": messages, "items": self.items})
    }
}

/// Which answer a client resumes, and the last seq it has of it.
#[derive(Debug, Default, Clone)]
pub struct ResumeFrom<'a> {
    /// The last stored message the client has (for `messages`).
    pub last_message_id: Option<&'a str>,
    /// The answer followed; the newest answer in the stream when absent.
    pub message_id: Option<&'a str>,
    pub after_seq: Option<i64>,
}

pub async fn resume(
    db: &DatabaseConnection,
    redis: Option<&crate::redis_conn::Redis>,
    session_id: &str,
    from: ResumeFrom<'_>,
) -> Result<ResumeOut> {
    let mut messages = messages_after(db, session_id, from.last_message_id, 200).await?;
    let mut items = Vec::new();
    if let Some(redis) = redis {
        let mut conn = redis.clone();
        let entries: redis::streams::StreamRangeReply = conn
            .xrange_all(session_stream_key(session_id))
            .await
            .map_err(|e| {
                Error::unavailable("unavailable", format!("cannot read the answer stream: {e}"))
            })?;
        let answers = answers_in_stream(
            entries
                .ids
                .iter()
                .filter_map(|e| e.get::<String>("item"))
                .filter_map(|raw| serde_json::from_str(&raw).ok()),
        );
        items = items_to_resume(&answers, from.message_id, from.after_seq.unwrap_or(-1));
        let in_items: std::collections::HashSet<&str> = items
            .iter()
            .filter_map(|i| i["message_id"].as_str())
            .collect();
        messages.retain(|m| !m.answer_to.as_deref().is_some_and(|q| in_items.contains(q)));
    }
    Ok(ResumeOut {
        session_id: session_id.to_owned(),
        messages,
        items,
    })
}

/// One answer's items from the stream, by `message_id` (ids are ULIDs, so the map is
/// in the order the questions were asked).
#[derive(Debug, Default)]
pub struct StreamAnswer {
    pub items: Vec<Value>,
    pub ended: bool,
}

/// Groups stream items by answer: each seq once (the first copy), nothing after the
/// answer's `done`/`error`.
pub fn answers_in_stream(
    items: impl Iterator<Item = Value>,
) -> std::collections::BTreeMap<String, StreamAnswer> {
    let mut answers: std::collections::BTreeMap<String, StreamAnswer> = Default::default();
    for item in items {
        let (Some(mid), Some(seq)) = (item["message_id"].as_str(), item["seq"].as_i64()) else {
            continue;
        };
        let answer = answers.entry(mid.to_owned()).or_default();
        if answer.ended || answer.items.iter().any(|i| i["seq"].as_i64() == Some(seq)) {
            continue;
        }
        answer.ended = matches!(item["type"].as_str(), Some("done" | "error"));
        answer.items.push(item);
    }
    for answer in answers.values_mut() {
        answer.items.sort_by_key(|i| i["seq"].as_i64());
    }
    answers
}

/// The resumed answer's items after `after_seq`, every item of the answers after it,
/// and answers before it only while still in progress.
pub fn items_to_resume(
    answers: &std::collections::BTreeMap<String, StreamAnswer>,
    message_id: Option<&str>,
    after_seq: i64,
) -> Vec<Value> {
    let Some(target) = message_id.or_else(|| answers.keys().next_back().map(String::as_str)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (mid, answer) in answers {
        let wanted: Box<dyn Fn(&Value) -> bool> = match mid.as_str().cmp(target) {
            std::cmp::Ordering::Equal => {
                Box::new(|i: &Value| i["seq"].as_i64().unwrap_or(-1) > after_seq)
            }
            std::cmp::Ordering::Greater => Box::new(|_| true),
            std::cmp::Ordering::Less if !answer.ended => Box::new(|_| true),
            std::cmp::Ordering::Less => Box::new(|_| false),
        };
        out.extend(answer.items.iter().filter(|i| wanted(i)).cloned());
    }
    out
}

/// Records that `user_id` has read up to `message_id` (never moves backwards).
pub async fn mark_read(
    db: &DatabaseConnection,
    session_id: &str,
    user_id: &str,
    message_id: &str,
) -> Result<()> {
    let belongs = chat_message::Entity::find_by_id(message_id.to_owned())
        .filter(chat_message::Column::SessionId.eq(session_id))
        .count(db)
        .await?;
    if belongs == 0 {
        return Err(Error::not_found("message"));
    }
    let current = chat_read::Entity::find_by_id((session_id.to_owned(), user_id.to_owned()))
        .one(db)
        .await?;
    if current
        .as_ref()
        .is_some_and(|c| c.last_read_message_id.as_str() >= message_id)
    {
        return Ok(());
    }
    let now = chrono::Utc::now();
    chat_read::Entity::insert(chat_read::ActiveModel {
        session_id: Set(session_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        last_read_message_id: Set(message_id.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([chat_read::Column::SessionId, chat_read::Column::UserId])
            .update_columns([
                chat_read::Column::LastReadMessageId,
                chat_read::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Messages by others after the user's read mark.
pub async fn unread_count(db: &DatabaseConnection, session_id: &str, user_id: &str) -> Result<u64> {
    let mark = chat_read::Entity::find_by_id((session_id.to_owned(), user_id.to_owned()))
        .one(db)
        .await?;
    let mut query = chat_message::Entity::find()
        .filter(chat_message::Column::SessionId.eq(session_id))
        .filter(
            sea_orm::Condition::any()
                .add(chat_message::Column::UserId.is_null())
                .add(chat_message::Column::UserId.ne(user_id)),
        );
    if let Some(m) = mark {
        query = query.filter(chat_message::Column::Id.gt(m.last_read_message_id));
    }
    Ok(query.count(db).await?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(mid: &str, seq: i64, kind: &str) -> Value {
        json!({"message_id": mid, "seq": seq, "type": kind, "content": format!("{mid}{seq}")})
    }

    fn seqs(items: &[Value]) -> Vec<(String, i64)> {
        items
            .iter()
            .map(|i| {
                (
                    i["message_id"].as_str().unwrap().to_owned(),
                    i["seq"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn resume_returns_the_rest_of_the_answer_even_when_it_ended_and_later_answers_whole() {
        let stream = vec![
            item("A", 0, "text-delta"),
            item("A", 1, "done"),
            item("B", 0, "text-delta"),
            item("B", 1, "text-delta"),
            item("B", 1, "text-delta"), // a copy (same seq): once
            item("B", 2, "done"),
            item("B", 3, "text-delta"), // after the end: never
            item("C", 0, "text-delta"),
        ];
        let answers = answers_in_stream(stream.into_iter());
        // Following B (ended, maybe not stored yet) from seq 0.
        let got = items_to_resume(&answers, Some("B"), 0);
        assert_eq!(
            seqs(&got),
            [("B".into(), 1), ("B".into(), 2), ("C".into(), 0)]
        );
        // Without message_id: the latest answer (C), from after_seq.
        assert_eq!(
            seqs(&items_to_resume(&answers, None, -1)),
            [("C".into(), 0)]
        );
        assert!(items_to_resume(&answers, None, 0).is_empty());
        // Resuming right at done: nothing is missing, nothing comes twice.
        assert_eq!(
            seqs(&items_to_resume(&answers, Some("B"), 2)),
            [("C".into(), 0)]
        );
    }
}
