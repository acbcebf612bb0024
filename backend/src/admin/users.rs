use axum::{Json, extract::State};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::{
    audit::{self, AuditOut},
    list::{Filters, ListQuery, SortParams, contains, sorted},
    pages::AdminPageOut,
    payments::AdminPaymentOut,
};
use crate::{
    auth::{AdminUser, UserOut, refresh},
    db::{
        admin_audit_log, begin_write, page, page_editor, payment,
        user::{self, Role, Status},
    },
    error::{Error, ErrorBody, Result},
    events::{ACCOUNT_SUSPENDED, DomainEvent},
    extract::{Path, ValidatedJson},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user))
        .routes(routes!(suspend_user))
        .routes(routes!(reinstate_user))
        .routes(routes!(change_role))
}

#[derive(Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Part of the email or display name: case-insensitive, `%` and `_` taken literally.
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub q: Option<String>,
    pub status: Option<Status>,
    pub role: Option<Role>,
}

impl Filters for UserSearch {
    const FIELDS: &'static [&'static str] = &["q", "status", "role"];
    const SORTS: &'static [&'static str] = &["createdAt", "email", "displayName"];
}

/// Users, newest first (or by `sort`: `createdAt`, `email`, `displayName`), filtered by
/// `q`, `status` and `role`. An unknown parameter or value is 422.
#[utoipa::path(get, path = "/users", tag = "admin", security(("bearer" = [])), params(UserSearch, PageParams, SortParams),
    responses((status = 200, body = Paginated<UserOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    list: ListQuery<UserSearch>,
) -> Result<Json<Paginated<UserOut>>> {
    let search = list.filters;
    let mut query = user::Entity::find();
    if let Some(q) = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(contains(user::Column::Email, q))
                .add(contains(user::Column::DisplayName, q)),
        );
    }
    if let Some(status) = search.status {
        query = query.filter(user::Column::Status.eq(status));
    }
    if let Some(role) = search.role {
        query = query.filter(user::Column::Role.eq(role));
    }
    let column = match list.sort {
        "email" => user::Column::Email,
        "displayName" => user::Column::DisplayName,
        _ => user::Column::Id,
    };
    let query = sorted(query, column, user::Column::Id, list.order);
    Ok(Json(
        paginate(&state.db, query, list.paging, UserOut::from).await?,
    ))
}

/// How many payments and audit rows the user page shows (newest first); the full
/// lists are `GET /payments?userId=` and `GET /audit?targetId=`.
const DETAIL_ROWS: u64 = 50;

/// One user with what the dashboard shows beside them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDetailOut {
    pub user: UserOut,
    /// Pages the user owns, newest first.
    pub pages: Vec<AdminPageOut>,
    /// Pages the user co-edits.
    pub editing: Vec<AdminPageOut>,
    /// The newest 50 payments.
    pub payments: Vec<AdminPaymentOut>,
    /// The newest 50 admin actions on the user, their pages or their payments.
    pub audit: Vec<AuditOut>,
}

/// One user with their pages, payments and audit trail.
#[utoipa::path(get, path = "/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = UserDetailOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<UserDetailOut>> {
    let db = &state.db;
    let user = load_user(db, &id).await?;
    let pages = page::Entity::find()
        .filter(page::Column::OwnerId.eq(user.id.clone()))
        .order_by_desc(page::Column::Id)
        .all(db)
        .await?;
    let edited: Vec<String> = page_editor::Entity::find()
        .filter(page_editor::Column::UserId.eq(user.id.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.page_id)
        .collect();
    let editing = page::Entity::find()
        .filter(page::Column::Id.is_in(edited))
        .order_by_desc(page::Column::Id)
        .all(db)
        .await?;
    let payments = payment::Entity::find()
        .filter(payment::Column::UserId.eq(user.id.clone()))
        .order_by_desc(payment::Column::CreatedAt)
        .limit(DETAIL_ROWS)
        .all(db)
        .await?;
    let mut targets = vec![user.id.clone()];
    targets.extend(pages.iter().map(|p| p.id.clone()));
    targets.extend(payments.iter().map(|p| p.id.clone()));
    let mut audit: Vec<AuditOut> = admin_audit_log::Entity::find()
        .filter(admin_audit_log::Column::TargetId.is_in(targets))
        .order_by_desc(admin_audit_log::Column::Id)
        .limit(DETAIL_ROWS)
        .all(db)
        .await?
        .into_iter()
        .map(AuditOut::from)
        .collect();
    audit::resolve_admins(db, &mut audit).await?;
    Ok(Json(UserDetailOut {
        user: user.into(),
        pages: pages.into_iter().map(AdminPageOut::from).collect(),
        editing: editing.into_iter().map(AdminPageOut::from).collect(),
        payments: payments.into_iter().map(AdminPaymentOut::from).collect(),
        audit,
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonIn {
    /// Why; kept in the audit log.
    #[validate(length(min = 1, max = 500))]
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionalReasonIn {
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleIn {
    pub role: Role,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

fn not_on_self(admin: &AdminUser, id: &str, what: &str) -> Result<()> {
    if admin.0.id == id {
        return Err(Error::conflict(
            "cannot_modify_self",
            format!("an admin cannot {what} their own account"),
        ));
    }
    Ok(())
}

async fn load_user<C: ConnectionTrait>(db: &C, id: &str) -> Result<user::Model> {
    user::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("user"))
}

/// Changes one user in a transaction with its audit record and, for a suspension, the
/// revocation of every refresh token. A change to the current value is a no-op and
/// is not recorded.
async fn change_user(
    state: &AppState,
    admin: &AdminUser,
    id: &str,
    action: &'static str,
    reason: Option<&str>,
    apply: impl FnOnce(&mut user::ActiveModel),
) -> Result<(user::Model, bool)> {
    let txn = begin_write(&state.db).await?;
    let before = load_user(&txn, id).await?;
    let mut active: user::ActiveModel = before.clone().into();
    apply(&mut active);
    if !active.is_changed() {
        return Ok((before, false));
    }
    let after = active.update(&txn).await?;
    if after.status == Status::Suspended {
        refresh::revoke_all_for_user(&txn, &after.id).await?;
    }
    audit::record(
        &txn,
        audit::Entry {
            admin_id: &admin.0.id,
            action,
            target_type: "user",
            target_id: &after.id,
            before: audit::snapshot(&UserOut::from(before)),
            after: audit::snapshot(&UserOut::from(after.clone())),
            reason,
        },
    )
    .await?;
    txn.commit().await?;
    tracing::info!(admin_id = %admin.0.id, user_id = %after.id, action, "admin changed a user");
    Ok((after, true))
}

/// Suspends a user: their access tokens stop working at once (every request reads the
/// user row), every refresh token is revoked in the same transaction, and their open
/// SSE streams on every instance are closed.
#[utoipa::path(post, path = "/users/{id}/suspend", tag = "admin", security(("bearer" = [])), request_body = ReasonIn,
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "own account", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn suspend_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<ReasonIn>,
) -> Result<Json<UserOut>> {
    not_on_self(&admin, &id, "suspend")?;
    let (row, _) = change_user(
        &state,
        &admin,
        &id,
        "user.suspend",
        Some(&input.reason),
        |u| {
            u.status = Set(Status::Suspended);
        },
    )
    .await?;
    // Also for a repeated call: a stream that slipped in closes too.
    state.events.publish(DomainEvent::new(
        ACCOUNT_SUSPENDED,
        vec![row.id.clone()],
        json!({"userId": row.id}),
    ));
    Ok(Json(row.into()))
}

/// Lifts a suspension; the user can log in again (old refresh tokens stay revoked).
#[utoipa::path(post, path = "/users/{id}/reinstate", tag = "admin", security(("bearer" = [])), request_body = OptionalReasonIn,
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reinstate_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<OptionalReasonIn>,
) -> Result<Json<UserOut>> {
    let (row, _) = change_user(
        &state,
        &admin,
        &id,
        "user.reinstate",
        input.reason.as_deref(),
        |u| {
            u.status = Set(Status::Active);
        },
    )
    .await?;
    Ok(Json(row.into()))
}

/// Makes a user an admin or an ordinary user. An admin cannot demote themself.
#[utoipa::path(patch, path = "/users/{id}/role", tag = "admin", security(("bearer" = [])), request_body = RoleIn,
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "own account", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn change_role(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<RoleIn>,
) -> Result<Json<UserOut>> {
    not_on_self(&admin, &id, "change the role of")?;
    let (row, _) = change_user(
        &state,
        &admin,
        &id,
        "user.role",
        input.reason.as_deref(),
        |u| {
            u.role = Set(input.role);
        },
    )
    .await?;
    Ok(Json(row.into()))
}
