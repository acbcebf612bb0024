use axum::{Json, extract::State};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::{AdminUser, UserOut},
    db::user,
    error::{ErrorBody, Result},
    extract::{Query, validation_error},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users))
}

#[derive(Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// Matches part of the email or display name.
    #[validate(length(max = 100))]
    pub q: Option<String>,
}

/// Users, newest first, optionally filtered by `q`.
#[utoipa::path(get, path = "/users", tag = "admin", security(("bearer" = [])), params(UserSearch, PageParams),
    responses((status = 200, body = Paginated<UserOut>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(search): Query<UserSearch>,
    Query(page): Query<PageParams>,
) -> Result<Json<Paginated<UserOut>>> {
    search.validate().map_err(validation_error)?;
    let mut query = user::Entity::find();
    if let Some(q) = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", q.to_lowercase().replace(['%', '_'], ""));
        query = query.filter(
            Condition::any()
                .add(user::Column::Email.like(pattern.clone()))
                .add(user::Column::DisplayName.like(pattern)),
        );
    }
    let query = query.order_by_desc(user::Column::Id);
    Ok(Json(paginate(&state.db, query, page, UserOut::from).await?))
}
