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
        chat_read, chat_session, lock_page, new_id,
    },
    error::{Error, Result},
    pages::access::{Access, Need, load_page},
};

/// The Redis stream where the agent keeps every item of a session (for resume).
pub fn session_stream_key(session_id: &str) -> String {
    format!("chat:stream:{session_id}")
}

/// The pub/sub channel of a session.
pub fn session_channel(session_id: &str) -> String {
    format!("chat:{session_id}")
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

async fn latest_session<C: ConnectionTrait>(
    db: &C,
    page_id: &str,
) -> Result<Option<chat_session::Model>> {
    Ok(chat_session::Entity::find()
        .filter(chat_session::Column::PageId.eq(page_id))
        .order_by_desc(chat_session::Column::Id)
        .one(db)
        .await?)
}

/// Stores a user message. A repeated `client_msg_id` in the same session returns the
/// stored message and `false` (nothing new to hand to the agent).
pub async fn store_user_message(
    db: &DatabaseConnection,
    session_id: &str,
    page_id: &str,
    user_id: &str,
    text: &str,
    client_msg_id: Option<&str>,
) -> Result<(chat_message::Model, bool)> {
    if let Some(cid) = client_msg_id
        && let Some(existing) = chat_message::Entity::find()
            .filter(chat_message::Column::SessionId.eq(session_id))
            .filter(chat_message::Column::ClientMsgId.eq(cid))
            .one(db)
            .await?
    {
        return Ok((existing, false));
    }
    let row = chat_message::ActiveModel {
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
    .insert(db)
    .await?;
    Ok((row, true))
}

pub async fn mark_user_message<C: ConnectionTrait>(
    db: &C,
    message_id: &str,
    status: Status,
    error: Option<String>,
) -> Result<()> {
    chat_message::Entity::update_many()
        .col_expr(
            chat_message::Column::Status,
            sea_orm::sea_query::Expr::value(status),
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
        .exec(db)
        .await?;
    Ok(())
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

/// What a reconnecting client missed: the finished messages from the database, and
/// the items of answers still being written from the durable stream (those with
/// `seq > after_seq` for the answer the client was following, all for others).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumeOut {
    pub session_id: String,
    pub messages: Vec<MessageOut>,
    /// `newMessage` items of answers not finished yet, in order.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

pub async fn resume(
    db: &DatabaseConnection,
    redis: Option<&redis::aio::ConnectionManager>,
    session_id: &str,
    last_message_id: Option<&str>,
    following: Option<(&str, i64)>,
) -> Result<ResumeOut> {
    let messages = messages_after(db, session_id, last_message_id, 200).await?;
    let mut items = Vec::new();
    if let Some(redis) = redis {
        let mut conn = redis.clone();
        let entries: redis::streams::StreamRangeReply = conn
            .xrange_all(session_stream_key(session_id))
            .await
            .map_err(|e| {
                Error::unavailable(
                    "redis_unavailable",
                    format!("cannot read the answer stream: {e}"),
                )
            })?;
        let parsed: Vec<Value> = entries
            .ids
            .iter()
            .filter_map(|e| e.get::<String>("item"))
            .filter_map(|raw| serde_json::from_str(&raw).ok())
            .collect();
        // Answers that already ended are in `messages` (or will be, via the database).
        let finished: std::collections::HashSet<String> = parsed
            .iter()
            .filter(|i| matches!(i["type"].as_str(), Some("done" | "error")))
            .filter_map(|i| i["message_id"].as_str().map(str::to_owned))
            .collect();
        items = parsed
            .into_iter()
            .filter(|i| {
                i["message_id"]
                    .as_str()
                    .is_some_and(|m| !finished.contains(m))
            })
            .filter(|i| match following {
                Some((mid, after_seq)) if i["message_id"] == mid => {
                    i["seq"].as_i64().unwrap_or(-1) > after_seq
                }
                _ => true,
            })
            .collect();
    }
    Ok(ResumeOut {
        session_id: session_id.to_owned(),
        messages,
        items,
    })
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
