use axum::{Json, extract::State, http::StatusCode};
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::csv_import::parse_guest_csv;
use crate::{
    auth::AuthUser,
    db::{begin_write, invitation, new_id, page::Side},
    error::{Error, ErrorBody, Result},
    extract::{Path, Query, RawBody, ValidatedJson},
    pages::access::{Need, load_page},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invitation, list_invitations))
        .routes(routes!(create_invitations_bulk))
        .routes(routes!(import_invitations_csv))
        .routes(routes!(delete_invitation))
}

pub const MAX_BULK: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuestIn {
    #[validate(length(min = 1, max = 50))]
    #[schema(min_length = 1, max_length = 50)]
    pub guest_name: String,
    pub side: Option<Side>,
    #[validate(length(max = 50))]
    #[schema(max_length = 50)]
    pub group: Option<String>,
    #[validate(custom(function = "crate::pages::validate::phone"))]
    #[schema(max_length = 20, pattern = "^[0-9+ -]+$", example = "010-1234-5678")]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct BulkIn {
    #[validate(length(min = 1, max = 1000), nested)]
    #[schema(min_items = 1, max_items = 1000)]
    pub guests: Vec<GuestIn>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationOut {
    pub id: String,
    /// The guest's personal code; their link is `/i/<code>`.
    pub code: String,
    pub guest_name: String,
    pub side: Option<Side>,
    pub group: Option<String>,
    pub phone: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<invitation::Model> for InvitationOut {
    fn from(m: invitation::Model) -> Self {
        InvitationOut {
            id: m.id,
            code: m.code,
            guest_name: m.guest_name,
            side: m.side,
            group: m.group_name,
            phone: m.phone,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOut {
    pub created: Vec<InvitationOut>,
}

/// 16 symbols of 56 (about 93 bits): guessing a code is hopeless even without the
/// per-IP limit on lookups.
fn invitation_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

async fn insert_guests<C: ConnectionTrait>(
    db: &C,
    page_id: &str,
    guests: Vec<GuestIn>,
) -> Result<Vec<InvitationOut>> {
    let mut out = Vec::with_capacity(guests.len());
    for g in guests {
        let row = invitation::ActiveModel {
            id: Set(new_id()),
            page_id: Set(page_id.to_owned()),
            code: Set(invitation_code()),
            guest_name: Set(g.guest_name.trim().to_owned()),
            side: Set(g.side),
            group_name: Set(g
                .group
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())),
            phone: Set(g.phone),
            ..Default::default()
        }
        .insert(db)
        .await?;
        out.push(row.into());
    }
    Ok(out)
}

/// Invite one named guest.
#[utoipa::path(post, path = "/{id}/invitations", tag = "invitations", security(("bearer" = [])), request_body = GuestIn,
    responses((status = 201, body = InvitationOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invitation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ValidatedJson(guest): ValidatedJson<GuestIn>,
) -> Result<(StatusCode, Json<InvitationOut>)> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let mut created = insert_guests(&state.db, &page.id, vec![guest]).await?;
    Ok((StatusCode::CREATED, Json(created.remove(0))))
}

/// Invite many guests at once; all or none.
#[utoipa::path(post, path = "/{id}/invitations/bulk", tag = "invitations", security(("bearer" = [])), request_body = BulkIn,
    responses((status = 201, body = BulkOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invitations_bulk(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<BulkIn>,
) -> Result<(StatusCode, Json<BulkOut>)> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let txn = begin_write(&state.db).await?;
    let created = insert_guests(&txn, &page.id, input.guests).await?;
    txn.commit().await?;
    Ok((StatusCode::CREATED, Json(BulkOut { created })))
}

/// Import guests from CSV (`Content-Type: text/csv`, UTF-8, header row).
///
/// Columns: `name`, `side` (`groom`/`bride`, or 신랑/신부), `group`, `phone`; Korean
/// headers 이름, 측, 그룹, 전화 also work. All or nothing: if any row is invalid,
/// nothing is imported and the answer is 422 listing every bad row in
/// `error.details.rows` as `{row, field, message}` (row 1 is the first data row).
#[utoipa::path(post, path = "/{id}/invitations/import", tag = "invitations", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = BulkOut), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn import_invitations_csv(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<BulkOut>)> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let is_csv = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/csv"));
    if !is_csv {
        return Err(Error::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: text/csv",
        ));
    }
    let guests = parse_guest_csv(&body)?;
    let txn = begin_write(&state.db).await?;
    let created = insert_guests(&txn, &page.id, guests).await?;
    txn.commit().await?;
    Ok((StatusCode::CREATED, Json(BulkOut { created })))
}

#[utoipa::path(get, path = "/{id}/invitations", tag = "invitations", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Paginated<InvitationOut>), (status = 404, body = ErrorBody)))]
async fn list_invitations(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Paginated<InvitationOut>>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let query = invitation::Entity::find()
        .filter(invitation::Column::PageId.eq(page.id))
        .order_by_asc(invitation::Column::Id);
    Ok(Json(
        paginate(&state.db, query, params, InvitationOut::from).await?,
    ))
}

/// Withdraw an invitation (its RSVP goes with it).
#[utoipa::path(delete, path = "/{id}/invitations/{invitation_id}", tag = "invitations", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_invitation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let res = invitation::Entity::delete_many()
        .filter(invitation::Column::Id.eq(invitation_id))
        .filter(invitation::Column::PageId.eq(page.id))
        .exec(&state.db)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::not_found("invitation"));
    }
    Ok(StatusCode::NO_CONTENT)
}
