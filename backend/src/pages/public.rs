//! What guests reach without an account: `/api/public/pages/{slug}`.

use axum::{Json, extract::State};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::dto::PublicPageOut;
use crate::{
    db::page::{self, PageStatus},
    error::{Error, ErrorBody, Result},
    extract::{ClientIp, Path},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_public_page))
        .merge(super::share::router())
        .merge(crate::files::public_images::public_router())
}

/// A published page by its slug; drafts and archived pages are 404.
pub async fn find_published<C: ConnectionTrait>(db: &C, slug: &str) -> Result<page::Model> {
    page::Entity::find()
        .filter(page::Column::Slug.eq(slug))
        .filter(page::Column::Status.eq(PageStatus::Published))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("page"))
}

/// The public invitation page. Counts a view.
#[utoipa::path(get, path = "/pages/{slug}", tag = "public",
    responses((status = 200, body = PublicPageOut), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn get_public_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
) -> Result<Json<PublicPageOut>> {
    state.limiters.public_read.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    state.views.record(&page.id);
    let gallery = crate::files::public_gallery_items(&state, &page.gallery.0).await?;
    let cover = crate::files::public_gallery_items(&state, page.cover_file_id.as_slice())
        .await?
        .pop();
    Ok(Json(PublicPageOut {
        cover,
        ..PublicPageOut::new(page, gallery)
    }))
}
