//! The guestbook (방명록): guests leave a message with a password that lets them
//! delete it later; the couple can hide or delete any entry.

use axum::{Json, extract::State, http::StatusCode};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::{AuthUser, password},
    db::{guestbook_entry as entry, new_id},
    error::{Error, ErrorBody, InvalidField, Result},
    events::DomainEvent,
    extract::{ClientIp, Path, Query, ValidatedJson},
    i18n::Text,
    pages::{
        access::{Need, load_page, members},
        public::find_published,
    },
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

/// Owner routes, nested under `/api/pages`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all_entries))
        .routes(routes!(moderate_entry, delete_entry_as_owner))
}

/// Guest routes, nested under `/api/public`.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_entry, list_entries))
        .routes(routes!(delete_own_entry))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "박하객", "message": "결혼 축하해요!", "password": "1234"}))]
pub struct EntryIn {
    #[validate(length(min = 1, max = 30))]
    #[schema(min_length = 1, max_length = 30)]
    pub name: String,
    #[validate(length(min = 1, max = 1000))]
    #[schema(min_length = 1, max_length = 1000)]
    pub message: String,
    /// Lets the writer delete the entry later (4–64 characters). Stored hashed.
    #[validate(length(min = 4, max = 64))]
    #[schema(min_length = 4, max_length = 64)]
    pub password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct DeleteEntryIn {
    #[validate(length(min = 1, max = 64))]
    #[schema(min_length = 1, max_length = 64)]
    pub password: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct ModerateIn {
    pub hidden: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryOut {
    pub id: String,
    pub name: String,
    pub message: String,
    /// Only in the owner's view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl EntryOut {
    fn public(m: entry::Model) -> Self {
        EntryOut {
            id: m.id,
            name: m.name,
            message: m.message,
            hidden: None,
            created_at: m.created_at,
        }
    }

    fn for_owner(m: entry::Model) -> Self {
        EntryOut {
            hidden: Some(m.hidden),
            ..Self::public(m)
        }
    }
}

/// Sign the guestbook of a published page.
#[utoipa::path(post, path = "/pages/{slug}/guestbook", tag = "public", request_body = EntryIn,
    responses((status = 201, body = EntryOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn post_entry(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
    ValidatedJson(input): ValidatedJson<EntryIn>,
) -> Result<(StatusCode, Json<EntryOut>)> {
    state.limiters.public_write.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    let blank: Vec<InvalidField> = [("name", &input.name), ("message", &input.message)]
        .into_iter()
        .filter(|(_, value)| value.trim().is_empty())
        .map(|(field, _)| InvalidField {
            field: field.into(),
            code: "blank".into(),
            message: Text::en("must not be blank"),
        })
        .collect();
    if !blank.is_empty() {
        return Err(Error::invalid_fields(blank));
    }
    let hash = password::hash(&state.argon2, input.password).await?;
    let saved = entry::ActiveModel {
        id: Set(new_id()),
        page_id: Set(page.id.clone()),
        name: Set(input.name.trim().to_owned()),
        message: Set(input.message.trim().to_owned()),
        password_hash: Set(hash),
        hidden: Set(false),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    state.events.publish(DomainEvent::new(
        "guestbook.posted",
        members(&state.db, &page).await?,
        json!({"pageId": page.id, "entryId": saved.id, "name": saved.name}),
    ));
    Ok((StatusCode::CREATED, Json(EntryOut::public(saved))))
}

/// Visible entries, newest first.
#[utoipa::path(get, path = "/pages/{slug}/guestbook", tag = "public", params(PageParams),
    responses((status = 200, body = Paginated<EntryOut>), (status = 404, body = ErrorBody)))]
async fn list_entries(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Paginated<EntryOut>>> {
    state.limiters.public_read.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    let query = entry::Entity::find()
        .filter(entry::Column::PageId.eq(page.id))
        .filter(entry::Column::Hidden.eq(false));
    Ok(Json(
        paginate(
            &state.db,
            query.order_by_desc(entry::Column::Id),
            params,
            EntryOut::public,
        )
        .await?,
    ))
}

/// The writer deletes their own entry with its password.
#[utoipa::path(delete, path = "/pages/{slug}/guestbook/{entry_id}", tag = "public", request_body = DeleteEntryIn,
    responses((status = 204), (status = 403, description = "wrong password", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn delete_own_entry(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path((slug, entry_id)): Path<(String, String)>,
    ValidatedJson(input): ValidatedJson<DeleteEntryIn>,
) -> Result<StatusCode> {
    // Same bucket as posting: it also caps password guessing.
    state.limiters.public_write.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    let found = entry::Entity::find_by_id(entry_id)
        .filter(entry::Column::PageId.eq(page.id))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("guestbook entry"))?;
    if !password::verify(
        &state.argon2,
        input.password,
        Some(found.password_hash.clone()),
    )
    .await?
    {
        return Err(Error::forbidden("the password does not match").into_code("wrong_password"));
    }
    entry::Entity::delete_by_id(found.id)
        .exec(&state.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// All entries, hidden ones included (owner and editors).
#[utoipa::path(get, path = "/{id}/guestbook", tag = "guestbook", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Paginated<EntryOut>), (status = 404, body = ErrorBody)))]
async fn list_all_entries(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Paginated<EntryOut>>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let query = entry::Entity::find().filter(entry::Column::PageId.eq(page.id));
    Ok(Json(
        paginate(
            &state.db,
            query.order_by_desc(entry::Column::Id),
            params,
            EntryOut::for_owner,
        )
        .await?,
    ))
}

async fn find_entry(state: &AppState, page_id: &str, entry_id: String) -> Result<entry::Model> {
    entry::Entity::find_by_id(entry_id)
        .filter(entry::Column::PageId.eq(page_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("guestbook entry"))
}

/// Hide or show an entry.
#[utoipa::path(patch, path = "/{id}/guestbook/{entry_id}", tag = "guestbook", security(("bearer" = [])),
    request_body = ModerateIn, responses((status = 200, body = EntryOut), (status = 404, body = ErrorBody)))]
async fn moderate_entry(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, entry_id)): Path<(String, String)>,
    ValidatedJson(input): ValidatedJson<ModerateIn>,
) -> Result<Json<EntryOut>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let mut m = find_entry(&state, &page.id, entry_id)
        .await?
        .into_active_model();
    m.hidden = Set(input.hidden);
    Ok(Json(EntryOut::for_owner(m.update(&state.db).await?)))
}

#[utoipa::path(delete, path = "/{id}/guestbook/{entry_id}", tag = "guestbook", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_entry_as_owner(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, entry_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let found = find_entry(&state, &page.id, entry_id).await?;
    entry::Entity::delete_by_id(found.id)
        .exec(&state.db)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
