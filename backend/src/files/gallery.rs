//! A page's photo gallery: an ordered list of the page's image files, shown to guests
//! as thumbnail and full-size links.

use std::collections::{HashMap, HashSet};

use axum::{Json, extract::State, response::IntoResponse};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::service::file_urls;
use crate::{
    auth::AuthUser,
    db::{
        self,
        file::{self, FileStatus},
        page::FileIds,
    },
    error::{Error, ErrorBody, Result},
    extract::{Path, ValidatedJson},
    pages::{
        access::{Need, load_page},
        version::{self, IfMatch},
    },
    state::AppState,
};

/// Most pictures one gallery holds.
pub const MAX_GALLERY: usize = 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_gallery, set_gallery))
}

/// One picture as a page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GalleryItem {
    pub id: String,
    /// Full-size picture (expiring link).
    pub url: String,
    /// About 480 px wide JPEG; the original when it is already small or cannot be
    /// decoded on the server (HEIC).
    pub thumb_url: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
}

/// The gallery's pictures in order, with fresh links. Ids whose file is gone or not
/// ready are skipped.
pub async fn gallery_items(state: &AppState, ids: &[String]) -> Result<Vec<GalleryItem>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: HashMap<String, file::Model> = file::Entity::find()
        .filter(file::Column::Id.is_in(ids.to_vec()))
        .filter(file::Column::Status.eq(FileStatus::Ready))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect();
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = rows.get(id) {
            let urls = file_urls(state, row).await?;
            items.push(GalleryItem {
                id: row.id.clone(),
                url: urls.url,
                thumb_url: urls.thumb_url,
                width: row.width,
                height: row.height,
            });
        }
    }
    Ok(items)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GalleryIn {
    /// The whole gallery in display order: attach by adding an id, reorder by moving
    /// it, detach by leaving it out (the file itself is kept).
    #[validate(length(max = 60))]
    #[schema(max_items = 60)]
    pub file_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GalleryOut {
    pub file_ids: Vec<String>,
    pub items: Vec<GalleryItem>,
}

/// A page's gallery (owner, editors).
#[utoipa::path(get, path = "/{id}/gallery", tag = "pages", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = GalleryOut), (status = 404, body = ErrorBody)))]
async fn get_gallery(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<GalleryOut>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let items = gallery_items(&state, &page.gallery.0).await?;
    Ok(Json(GalleryOut {
        file_ids: page.gallery.0,
        items,
    }))
}

/// Replace a page's gallery (owner, editors). Every file must be a finished image
/// the caller owns or that already belongs to this page; attaching ties the file to
/// the page, so the page's editors can see it too.
#[utoipa::path(put, path = "/{id}/gallery", tag = "pages", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = GalleryIn,
    responses((status = 200, body = GalleryOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, description = "If-Match names an older page version", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
// Client errors are not failures; internal ones are logged once by `error.rs`.
#[tracing::instrument(skip_all, err(level = "debug"))]
async fn set_gallery(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    ValidatedJson(input): ValidatedJson<GalleryIn>,
) -> Result<impl IntoResponse> {
    let mut seen = HashSet::new();
    for (i, fid) in input.file_ids.iter().enumerate() {
        if !seen.insert(fid) {
            return Err(Error::validation(
                format!("fileIds[{i}]"),
                "a file appears twice",
            ));
        }
    }
    let txn = db::begin_write(&state.db).await?;
    db::lock_page(&txn, &id).await?;
    let (page, _) = load_page(&txn, &id, &auth, Need::Edit).await?;
    version::check(page.version, if_match.as_deref(), None)?;
    let rows: HashMap<String, file::Model> = file::Entity::find()
        .filter(file::Column::Id.is_in(input.file_ids.clone()))
        .filter(file::Column::Status.eq(FileStatus::Ready))
        .all(&txn)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect();
    let mut to_attach = Vec::new();
    for (i, fid) in input.file_ids.iter().enumerate() {
        let field = format!("fileIds[{i}]");
        let row = rows
            .get(fid)
            .filter(|f| f.owner_id == auth.id || f.page_id.as_deref() == Some(page.id.as_str()))
            .ok_or_else(|| Error::not_found("file").with_field(field.clone()))?;
        if !row.content_type.starts_with("image/") {
            return Err(Error::validation(
                field,
                "only pictures can be in a gallery",
            ));
        }
        match row.page_id.as_deref() {
            Some(p) if p == page.id => {}
            Some(_) => {
                return Err(
                    Error::conflict("file_in_use", "this file belongs to another page")
                        .with_field(field),
                );
            }
            None => to_attach.push(fid.clone()),
        }
    }
    if !to_attach.is_empty() {
        file::Entity::update_many()
            .col_expr(file::Column::PageId, Expr::value(Some(page.id.clone())))
            .filter(file::Column::Id.is_in(to_attach))
            .exec(&txn)
            .await?;
    }
    let next_version = page.version + 1;
    let mut active = page.into_active_model();
    active.gallery = Set(FileIds(input.file_ids.clone()));
    active.version = Set(next_version);
    let page = active.update(&txn).await?;
    txn.commit().await?;
    let items = gallery_items(&state, &page.gallery.0).await?;
    Ok((
        version::etag_header(page.version),
        Json(GalleryOut {
            file_ids: page.gallery.0,
            items,
        }),
    ))
}
