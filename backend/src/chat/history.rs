//! Chat history over REST: a page's sessions, a session's messages (cursor paging),
//! and the same resume answer the socket gives.

use axum::{Json, extract::State};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::store::{self, MessageOut, ResumeOut};
use crate::{
    auth::AuthUser,
    db::chat_session,
    error::{ErrorBody, Result},
    extract::{Path, Query, validation_error},
    pages::access::{Need, load_page},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(list_messages))
        .routes(routes!(resume_session))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionOut {
    pub id: String,
    pub page_id: String,
    pub started_by: String,
    /// The newest session is the room's active conversation.
    pub active: bool,
    /// Messages by others that the caller has not read.
    pub unread: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The page's chat sessions, newest (active) first.
#[utoipa::path(get, path = "/pages/{id}/chat/sessions", tag = "chat", security(("bearer" = [])),
    responses((status = 200, body = Vec<SessionOut>), (status = 404, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<SessionOut>>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let sessions = chat_session::Entity::find()
        .filter(chat_session::Column::PageId.eq(page.id))
        .order_by_desc(chat_session::Column::Id)
        .all(&state.db)
        .await?;
    let mut out = Vec::with_capacity(sessions.len());
    for (i, s) in sessions.into_iter().enumerate() {
        let unread = store::unread_count(&state.db, &s.id, &auth.id).await?;
        out.push(SessionOut {
            active: i == 0,
            unread,
            id: s.id,
            page_id: s.page_id,
            started_by: s.started_by,
            created_at: s.created_at,
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorParams {
    /// Return messages older than this message id (the previous page's `nextCursor`).
    #[validate(length(equal = 26))]
    #[param(min_length = 26, max_length = 26)]
    pub before: Option<String>,
    /// 1–100, default 50.
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessagesOut {
    /// Newest first.
    pub items: Vec<MessageOut>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A session's messages, newest first, by cursor. Stable under concurrent inserts:
/// ids grow with time, so new messages never shift older pages.
#[utoipa::path(get, path = "/chat/sessions/{id}/messages", tag = "chat", security(("bearer" = [])), params(CursorParams),
    responses((status = 200, body = MessagesOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_messages(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<CursorParams>,
) -> Result<Json<MessagesOut>> {
    params.validate().map_err(validation_error)?;
    let (session, _) = store::load_session(&state.db, &id, &auth).await?;
    let limit = params.limit.unwrap_or(50);
    let items =
        store::page_of_messages(&state.db, &session.id, params.before.as_deref(), limit).await?;
    let next_cursor = if items.len() as u64 == limit {
        items.last().map(|m| m.id.clone())
    } else {
        None
    };
    Ok(Json(MessagesOut { items, next_cursor }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ResumeParams {
    pub last_message_id: Option<String>,
    pub message_id: Option<String>,
    pub after_seq: Option<i64>,
}

/// What a reconnecting client missed (the socket's `resume`, over REST).
#[utoipa::path(get, path = "/chat/sessions/{id}/resume", tag = "chat", security(("bearer" = [])), params(ResumeParams),
    responses((status = 200, body = ResumeOut), (status = 404, body = ErrorBody)))]
async fn resume_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<ResumeParams>,
) -> Result<Json<ResumeOut>> {
    let (session, _) = store::load_session(&state.db, &id, &auth).await?;
    let from = store::ResumeFrom {
        last_message_id: params.last_message_id.as_deref(),
        message_id: params.message_id.as_deref(),
        after_seq: params.after_seq,
    };
    Ok(Json(
        store::resume(&state.db, state.redis.as_ref(), &session.id, from).await?,
    ))
}
