//! The audit log: [`record`] is called inside each admin action's transaction, so an
//! action and its record are committed together or not at all. Listing is the only
//! route; nothing edits or deletes a record through the API.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::list::{Filters, ListQuery, SortParams, sorted};
use crate::{
    auth::AdminUser,
    db::{admin_audit_log, new_id, user},
    error::{ErrorBody, Result},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// One admin action about to be recorded.
pub struct Entry<'a> {
    pub admin_id: &'a str,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<&'a str>,
}

/// Writes `entry` on `db`: pass the action's transaction.
pub async fn record<C: ConnectionTrait>(db: &C, entry: Entry<'_>) -> Result<()> {
    admin_audit_log::ActiveModel {
        id: Set(new_id()),
        admin_id: Set(entry.admin_id.to_owned()),
        action: Set(entry.action.to_owned()),
        target_type: Set(entry.target_type.to_owned()),
        target_id: Set(entry.target_id.to_owned()),
        before: Set(entry.before),
        after: Set(entry.after),
        reason: Set(entry.reason.map(str::to_owned)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A serialisable snapshot for `before`/`after`.
pub fn snapshot(value: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditOut {
    pub id: String,
    pub admin_id: String,
    /// The admin's current email and display name (`None` once the account is gone).
    pub admin_email: Option<String>,
    pub admin_name: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<admin_audit_log::Model> for AuditOut {
    fn from(m: admin_audit_log::Model) -> Self {
        AuditOut {
            id: m.id,
            admin_id: m.admin_id,
            admin_email: None,
            admin_name: None,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            before: m.before,
            after: m.after,
            reason: m.reason,
            created_at: m.created_at,
        }
    }
}

/// Fills in each row's admin email and name with one query.
pub async fn resolve_admins<C: ConnectionTrait>(db: &C, rows: &mut [AuditOut]) -> Result<()> {
    let ids: Vec<String> = rows.iter().map(|r| r.admin_id.clone()).collect();
    let admins: HashMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    for row in rows {
        if let Some(u) = admins.get(&row.admin_id) {
            row.admin_email = Some(u.email.clone());
            row.admin_name = Some(u.display_name.clone());
        }
    }
    Ok(())
}

#[derive(Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditSearch {
    /// Exact action, e.g. `user.suspend`.
    #[validate(length(max = 64))]
    #[param(max_length = 64)]
    pub action: Option<String>,
    /// Exact target id (a user, page or payment id).
    #[validate(length(max = 100))]
    #[param(max_length = 100)]
    pub target_id: Option<String>,
    /// `user`, `page`, `payment` or `guestbook_entry`.
    #[validate(length(max = 32))]
    pub target_type: Option<String>,
    /// The acting admin's id.
    #[validate(length(max = 40))]
    pub admin_id: Option<String>,
}

impl Filters for AuditSearch {
    const FIELDS: &'static [&'static str] = &["action", "targetId", "targetType", "adminId"];
    const SORTS: &'static [&'static str] = &["createdAt", "action"];
}

/// The audit log, newest first, each row with the admin's email and name.
#[utoipa::path(get, path = "/audit", tag = "admin", security(("bearer" = [])), params(AuditSearch, PageParams, SortParams),
    responses((status = 200, body = Paginated<AuditOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    list: ListQuery<AuditSearch>,
) -> Result<Json<Paginated<AuditOut>>> {
    let search = list.filters;
    let mut query = admin_audit_log::Entity::find();
    if let Some(action) = search.action.filter(|a| !a.is_empty()) {
        query = query.filter(admin_audit_log::Column::Action.eq(action));
    }
    if let Some(target) = search.target_id.filter(|t| !t.is_empty()) {
        query = query.filter(admin_audit_log::Column::TargetId.eq(target));
    }
    if let Some(kind) = search.target_type.filter(|t| !t.is_empty()) {
        query = query.filter(admin_audit_log::Column::TargetType.eq(kind));
    }
    if let Some(admin) = search.admin_id.filter(|a| !a.is_empty()) {
        query = query.filter(admin_audit_log::Column::AdminId.eq(admin));
    }
    // ULIDs sort by creation time.
    let column = match list.sort {
        "action" => admin_audit_log::Column::Action,
        _ => admin_audit_log::Column::Id,
    };
    let query = sorted(query, column, admin_audit_log::Column::Id, list.order);
    let mut page = paginate(&state.db, query, list.paging, AuditOut::from).await?;
    resolve_admins(&state.db, &mut page.items).await?;
    Ok(Json(page))
}
