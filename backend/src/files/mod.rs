//! Uploaded files: photos for the gallery and cover, and attachments. Bytes live in
//! a [`storage::Storage`] (S3 or a local directory); metadata in the `files` table.
//! See docs/files.md for the rules (limits, types, quota, deletion, links).

pub mod gallery;
pub mod inspect;
pub mod public_images;
pub mod renditions;
mod routes;
pub mod service;
pub mod signing;
pub mod storage;
pub mod sweeper;

pub use gallery::{GalleryItem, gallery_items, public_gallery_items};
pub use routes::router;

/// Gallery routes, merged under `/api/pages`.
pub fn pages_router() -> utoipa_axum::router::OpenApiRouter<crate::state::AppState> {
    gallery::router()
}
