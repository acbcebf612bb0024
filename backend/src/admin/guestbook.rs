//! Guestbook moderation across pages: find entries, hide or show them again. A hidden
//! entry disappears from the public page; the owner still sees it.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::{
    audit,
    list::{Filters, ListQuery, SortParams, contains, sorted},
    users::OptionalReasonIn,
};
use crate::{
    auth::AdminUser,
    db::{begin_write, guestbook_entry},
    error::{Error, ErrorBody, Result},
    extract::{Path, ValidatedJson},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(hide_entry))
        .routes(routes!(unhide_entry))
}

/// An entry as moderators see it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminEntryOut {
    pub id: String,
    pub page_id: String,
    pub name: String,
    pub message: String,
    pub hidden: bool,
    pub created_at: DateTime<Utc>,
}

impl From<guestbook_entry::Model> for AdminEntryOut {
    fn from(m: guestbook_entry::Model) -> Self {
        AdminEntryOut {
            id: m.id,
            page_id: m.page_id,
            name: m.name,
            message: m.message,
            hidden: m.hidden,
            created_at: m.created_at,
        }
    }
}

#[derive(Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EntrySearch {
    #[validate(length(max = 40))]
    #[param(max_length = 40)]
    pub page_id: Option<String>,
    pub hidden: Option<bool>,
    /// Part of the message or the name: case-insensitive, `%` and `_` taken literally.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
}

impl Filters for EntrySearch {
    const FIELDS: &'static [&'static str] = &["pageId", "hidden", "q"];
    const SORTS: &'static [&'static str] = &["createdAt", "name"];
}

/// Guestbook entries of every page, newest first (or by `sort`: `createdAt`, `name`).
#[utoipa::path(get, path = "/guestbook", tag = "admin", security(("bearer" = [])), params(EntrySearch, PageParams, SortParams),
    responses((status = 200, body = Paginated<AdminEntryOut>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_entries(
    State(state): State<AppState>,
    _admin: AdminUser,
    list: ListQuery<EntrySearch>,
) -> Result<Json<Paginated<AdminEntryOut>>> {
    let search = list.filters;
    let mut query = guestbook_entry::Entity::find();
    if let Some(page_id) = search.page_id.filter(|p| !p.is_empty()) {
        query = query.filter(guestbook_entry::Column::PageId.eq(page_id));
    }
    if let Some(hidden) = search.hidden {
        query = query.filter(guestbook_entry::Column::Hidden.eq(hidden));
    }
    if let Some(q) = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            sea_orm::Condition::any()
                .add(contains(guestbook_entry::Column::Message, q))
                .add(contains(guestbook_entry::Column::Name, q)),
        );
    }
    let column = match list.sort {
        "name" => guestbook_entry::Column::Name,
        _ => guestbook_entry::Column::Id,
    };
    let query = sorted(query, column, guestbook_entry::Column::Id, list.order);
    Ok(Json(
        paginate(&state.db, query, list.paging, AdminEntryOut::from).await?,
    ))
}

async fn set_hidden(
    state: &AppState,
    admin: &AdminUser,
    id: &str,
    hidden: bool,
    reason: Option<&str>,
) -> Result<AdminEntryOut> {
    let txn = begin_write(&state.db).await?;
    let before = guestbook_entry::Entity::find_by_id(id.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| Error::not_found("guestbook entry"))?;
    if before.hidden == hidden {
        return Ok(before.into());
    }
    let mut m = before.clone().into_active_model();
    m.hidden = Set(hidden);
    let after = m.update(&txn).await?;
    audit::record(
        &txn,
        audit::Entry {
            admin_id: &admin.0.id,
            action: if hidden {
                "guestbook.hide"
            } else {
                "guestbook.unhide"
            },
            target_type: "guestbook_entry",
            target_id: &after.id,
            before: audit::snapshot(&AdminEntryOut::from(before)),
            after: audit::snapshot(&AdminEntryOut::from(after.clone())),
            reason,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(after.into())
}

/// Hides an entry from the public page.
#[utoipa::path(post, path = "/guestbook/{id}/hide", tag = "admin", security(("bearer" = [])), request_body = OptionalReasonIn,
    params(("id" = String, Path, description = "entry id")),
    responses((status = 200, body = AdminEntryOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn hide_entry(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<OptionalReasonIn>,
) -> Result<Json<AdminEntryOut>> {
    Ok(Json(
        set_hidden(&state, &admin, &id, true, input.reason.as_deref()).await?,
    ))
}

/// Shows a hidden entry again.
#[utoipa::path(post, path = "/guestbook/{id}/unhide", tag = "admin", security(("bearer" = [])), request_body = OptionalReasonIn,
    params(("id" = String, Path, description = "entry id")),
    responses((status = 200, body = AdminEntryOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn unhide_entry(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<OptionalReasonIn>,
) -> Result<Json<AdminEntryOut>> {
    Ok(Json(
        set_hidden(&state, &admin, &id, false, input.reason.as_deref()).await?,
    ))
}
