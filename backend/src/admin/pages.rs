//! Page moderation: list and search every page, unpublish with a reason (the owner and
//! editors are told through the event interface), delete.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::{
    audit,
    list::{Filters, ListQuery, SortParams, contains, sorted},
    users::ReasonIn,
};
use crate::{
    auth::AdminUser,
    db::{
        begin_write,
        page::{self, PageStatus, Plan},
    },
    error::{Error, ErrorBody, Result},
    events::DomainEvent,
    extract::{Path, ValidatedJson},
    pages::access::members,
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pages))
        .routes(routes!(unpublish_page))
        .routes(routes!(delete_page))
}

/// What the dashboard shows of a page (and what the audit log keeps of it).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminPageOut {
    pub id: String,
    pub owner_id: String,
    pub slug: String,
    pub status: PageStatus,
    pub plan: Plan,
    pub groom_name: String,
    pub bride_name: String,
    pub wedding_at: DateTime<Utc>,
    pub view_count: i64,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<page::Model> for AdminPageOut {
    fn from(p: page::Model) -> Self {
        AdminPageOut {
            id: p.id,
            owner_id: p.owner_id,
            slug: p.slug,
            status: p.status,
            plan: p.plan,
            groom_name: p.groom.name,
            bride_name: p.bride.name,
            wedding_at: p.wedding_at,
            view_count: p.view_count,
            published_at: p.published_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageSearch {
    /// Part of the slug (case-insensitive, `%` and `_` taken literally), or the exact
    /// page or owner id.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
    pub status: Option<PageStatus>,
    pub plan: Option<Plan>,
    /// Exact owner id.
    #[validate(length(max = 40))]
    pub owner_id: Option<String>,
}

impl Filters for PageSearch {
    const FIELDS: &'static [&'static str] = &["q", "status", "plan", "ownerId"];
    const SORTS: &'static [&'static str] = &[
        "createdAt",
        "updatedAt",
        "weddingAt",
        "publishedAt",
        "viewCount",
        "slug",
    ];
}

/// Every page, newest first (or by `sort`), optionally filtered.
#[utoipa::path(get, path = "/pages", tag = "admin", security(("bearer" = [])), params(PageSearch, PageParams, SortParams),
    responses((status = 200, body = Paginated<AdminPageOut>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_pages(
    State(state): State<AppState>,
    _admin: AdminUser,
    list: ListQuery<PageSearch>,
) -> Result<Json<Paginated<AdminPageOut>>> {
    let search = list.filters;
    let mut query = page::Entity::find();
    if let Some(q) = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(contains(page::Column::Slug, q))
                .add(page::Column::Id.eq(q))
                .add(page::Column::OwnerId.eq(q)),
        );
    }
    if let Some(status) = search.status {
        query = query.filter(page::Column::Status.eq(status));
    }
    if let Some(plan) = search.plan {
        query = query.filter(page::Column::Plan.eq(plan));
    }
    if let Some(owner) = search.owner_id.filter(|o| !o.is_empty()) {
        query = query.filter(page::Column::OwnerId.eq(owner));
    }
    let column = match list.sort {
        "updatedAt" => page::Column::UpdatedAt,
        "weddingAt" => page::Column::WeddingAt,
        "publishedAt" => page::Column::PublishedAt,
        "viewCount" => page::Column::ViewCount,
        "slug" => page::Column::Slug,
        _ => page::Column::Id,
    };
    let query = sorted(query, column, page::Column::Id, list.order);
    Ok(Json(
        paginate(&state.db, query, list.paging, AdminPageOut::from).await?,
    ))
}

async fn load(db: &impl sea_orm::ConnectionTrait, id: &str) -> Result<page::Model> {
    page::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("page"))
}

/// Takes a published page down for moderation; the owner and editors receive
/// `page.unpublished` with the reason.
#[utoipa::path(post, path = "/pages/{id}/unpublish", tag = "admin", security(("bearer" = [])), request_body = ReasonIn,
    params(("id" = String, Path, description = "page id")),
    responses((status = 200, body = AdminPageOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "not published", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn unpublish_page(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<ReasonIn>,
) -> Result<Json<AdminPageOut>> {
    let txn = begin_write(&state.db).await?;
    let before = load(&txn, &id).await?;
    if before.status != PageStatus::Published {
        return Err(Error::conflict(
            "page_not_published",
            "only a published page can be unpublished",
        ));
    }
    let recipients = members(&txn, &before).await?;
    let mut m = before.clone().into_active_model();
    m.status = Set(PageStatus::Draft);
    let after = m.update(&txn).await?;
    audit::record(
        &txn,
        audit::Entry {
            admin_id: &admin.0.id,
            action: "page.unpublish",
            target_type: "page",
            target_id: &after.id,
            before: audit::snapshot(&AdminPageOut::from(before)),
            after: audit::snapshot(&AdminPageOut::from(after.clone())),
            reason: Some(&input.reason),
        },
    )
    .await?;
    txn.commit().await?;
    state.events.publish(DomainEvent::new(
        "page.unpublished",
        recipients,
        json!({"pageId": after.id, "slug": after.slug, "reason": input.reason, "byAdmin": true}),
    ));
    Ok(Json(after.into()))
}

/// Deletes a page with everything on it; the audit log keeps what it was.
#[utoipa::path(delete, path = "/pages/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "page id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_page(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let txn = begin_write(&state.db).await?;
    let before = load(&txn, &id).await?;
    let lost = crate::pages::access::members(&txn, &before).await?;
    page::Entity::delete_by_id(before.id.clone())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        audit::Entry {
            admin_id: &admin.0.id,
            action: "page.delete",
            target_type: "page",
            target_id: &before.id,
            before: audit::snapshot(&AdminPageOut::from(before.clone())),
            after: None,
            reason: None,
        },
    )
    .await?;
    txn.commit().await?;
    crate::pages::access::access_revoked(&state, &before.id, lost, "page_deleted");
    Ok(StatusCode::NO_CONTENT)
}
