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

use super::{
    public_images,
    service::{Thumbnail, file_urls, srcset, stored_renditions},
    signing::Variant,
};
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
    OpenApiRouter::new()
        .routes(routes!(get_gallery, set_gallery))
        .routes(routes!(set_cover))
}

/// One picture as a page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GalleryItem {
    pub id: String,
    /// Full-size picture: an expiring link for the owner's view; on the public page a
    /// stable link cacheable for a year.
    pub url: String,
    /// A JPEG of at most 480 px on the longest side; the original when the picture is
    /// already that small (a HEIC always has one, so every browser can show it).
    pub thumb_url: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Every JPEG rendition (480 and 1080 px on the longest side, never upscaled),
    /// smallest first, for `srcset` or a `next/image` loader.
    pub thumbnails: Vec<Thumbnail>,
    /// `thumbnails` as a ready `srcset` value (`url 480w, ...`), with the original as
    /// the largest candidate when browsers can show it.
    pub srcset: String,
}

/// The ready files among `ids`, by id (gone or unfinished ones are left out).
async fn ready_files(state: &AppState, ids: &[String]) -> Result<HashMap<String, file::Model>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(file::Entity::find()
        .filter(file::Column::Id.is_in(ids.to_vec()))
        .filter(file::Column::Status.eq(FileStatus::Ready))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect())
}

/// The gallery's pictures in order, with fresh links. Ids whose file is gone or not
/// ready are skipped.
pub async fn gallery_items(state: &AppState, ids: &[String]) -> Result<Vec<GalleryItem>> {
    let rows = ready_files(state, ids).await?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = rows.get(id) {
            let urls = file_urls(state, row).await?;
            items.push(GalleryItem {
                id: row.id.clone(),
                srcset: srcset(row, &urls.url, &urls.thumbnails),
                url: urls.url,
                thumb_url: urls.thumb_url,
                width: row.width,
                height: row.height,
                thumbnails: urls.thumbnails,
            });
        }
    }
    Ok(items)
}

/// The gallery as guests get it: stable, cacheable links (see
/// [`super::public_images`]) instead of expiring ones. A file stored without a
/// content hash keeps a signed link.
pub async fn public_gallery_items(state: &AppState, ids: &[String]) -> Result<Vec<GalleryItem>> {
    let rows = ready_files(state, ids).await?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = rows.get(id) else { continue };
        let url = public_images::image_url(&state.cfg, row, Variant::Original);
        let (url, thumb_url, thumbnails) = match url {
            Some(url) => {
                let thumbnails: Vec<Thumbnail> = stored_renditions(row)
                    .into_iter()
                    .filter_map(|r| {
                        Some(Thumbnail {
                            width: r.width,
                            height: r.height,
                            url: public_images::image_url(&state.cfg, row, r.variant)?,
                        })
                    })
                    .collect();
                let thumb = match row.thumb_key {
                    Some(_) => public_images::image_url(&state.cfg, row, Variant::Thumb),
                    None => None,
                };
                (url.clone(), thumb.unwrap_or(url), thumbnails)
            }
            None => {
                let urls = file_urls(state, row).await?;
                (urls.url, urls.thumb_url, urls.thumbnails)
            }
        };
        items.push(GalleryItem {
            id: row.id.clone(),
            srcset: srcset(row, &url, &thumbnails),
            url,
            thumb_url,
            width: row.width,
            height: row.height,
            thumbnails,
        });
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

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverIn {
    /// A ready picture the caller owns or that belongs to this page; `null` removes
    /// the cover (the file is kept).
    #[validate(length(max = 40))]
    pub file_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverOut {
    pub cover_file_id: Option<String>,
    pub version: i32,
}

/// Set or remove the page's cover picture (owner, editors): shown in share previews
/// and at the top of the public page. Same rules as a gallery picture.
#[utoipa::path(put, path = "/{id}/cover", tag = "pages", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = CoverIn,
    responses((status = 200, body = CoverOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, description = "If-Match names an older page version", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn set_cover(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    ValidatedJson(input): ValidatedJson<CoverIn>,
) -> Result<impl IntoResponse> {
    let txn = db::begin_write(&state.db).await?;
    db::lock_page(&txn, &id).await?;
    let (page, _) = load_page(&txn, &id, &auth, Need::Edit).await?;
    version::check(page.version, if_match.as_deref(), None)?;
    if let Some(fid) = &input.file_id {
        let row = file::Entity::find_by_id(fid.clone())
            .filter(file::Column::Status.eq(FileStatus::Ready))
            .one(&txn)
            .await?
            .filter(|f| f.owner_id == auth.id || f.page_id.as_deref() == Some(page.id.as_str()))
            .ok_or_else(|| Error::not_found("file").with_field("fileId"))?;
        if !row.content_type.starts_with("image/") {
            return Err(Error::validation("fileId", "only a picture can be a cover"));
        }
        match row.page_id.as_deref() {
            Some(p) if p == page.id => {}
            Some(_) => {
                return Err(
                    Error::conflict("file_in_use", "this file belongs to another page")
                        .with_field("fileId"),
                );
            }
            None => {
                file::Entity::update_many()
                    .col_expr(file::Column::PageId, Expr::value(Some(page.id.clone())))
                    .filter(file::Column::Id.eq(fid.clone()))
                    .exec(&txn)
                    .await?;
            }
        }
    }
    let next_version = page.version + 1;
    let mut active = page.into_active_model();
    active.cover_file_id = Set(input.file_id);
    active.version = Set(next_version);
    let page = active.update(&txn).await?;
    txn.commit().await?;
    Ok((
        version::etag_header(page.version),
        Json(CoverOut {
            cover_file_id: page.cover_file_id,
            version: page.version,
        }),
    ))
}
