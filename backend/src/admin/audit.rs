//! The audit log: [`record`] is called inside each admin action's transaction, so an
//! action and its record are committed together or not at all. Listing is the only
//! route; nothing edits or deletes a record through the API.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::AdminUser,
    db::{admin_audit_log, new_id},
    error::{ErrorBody, Result},
    extract::{Query, validation_error},
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
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/audit", tag = "admin", security(("bearer" = [])), params(AuditSearch, PageParams),
    responses((status = 200, body = Paginated<AuditOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(search): Query<AuditSearch>,
    Query(page): Query<PageParams>,
) -> Result<Json<Paginated<AuditOut>>> {
    search.validate().map_err(validation_error)?;
    let mut query = admin_audit_log::Entity::find();
    if let Some(action) = search.action.filter(|a| !a.is_empty()) {
        query = query.filter(admin_audit_log::Column::Action.eq(action));
    }
    if let Some(target) = search.target_id.filter(|t| !t.is_empty()) {
        query = query.filter(admin_audit_log::Column::TargetId.eq(target));
    }
    // ULIDs sort by creation time.
    let query = query.order_by_desc(admin_audit_log::Column::Id);
    Ok(Json(
        paginate(&state.db, query, page, AuditOut::from).await?,
    ))
}
