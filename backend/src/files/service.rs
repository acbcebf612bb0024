//! The rules shared by the upload, direct-upload, read and gallery routes: limits,
//! quota, who may read a file, spooling uploads to disk, and the links handed out.

use std::path::Path;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QuerySelect, sea_query::Expr,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use super::{
    inspect::{Encoded, Kind, LARGE_SIZE, MAGIC_LEN, Sizes, TypeProblem},
    signing::{UrlSigner, Variant},
    storage::{Storage, StorageError},
};
use crate::{
    auth::AuthUser,
    config::FilesConfig,
    db::{
        self,
        file::{self, FileStatus, Purpose, Rendition, Renditions},
        page::{self, Plan},
    },
    error::{Error, Result},
    pages::access::access_of,
    state::AppState,
};

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound => Error::not_found("file"),
            StorageError::Unavailable(e) => {
                tracing::warn!(error = ?e, "file storage unavailable");
                Error::unavailable(
                    "storage_unavailable",
                    "file storage is unreachable right now; nothing was saved, try again later",
                )
            }
        }
    }
}

pub fn limit_for(cfg: &FilesConfig, purpose: Purpose) -> u64 {
    match purpose {
        Purpose::Gallery => cfg.max_gallery_bytes,
        Purpose::Cover => cfg.max_cover_bytes,
        Purpose::Attachment => cfg.max_attachment_bytes,
    }
}

/// The largest limit of any purpose: used while the purpose is not yet known.
pub fn largest_limit(cfg: &FilesConfig) -> u64 {
    cfg.max_gallery_bytes
        .max(cfg.max_cover_bytes)
        .max(cfg.max_attachment_bytes)
}

pub fn too_large(limit: u64) -> Error {
    Error::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the file is larger than the {limit} bytes allowed for this purpose"),
    )
    .with_field("file")
}

pub fn type_error(problem: TypeProblem) -> Error {
    let (code, message) = match problem {
        TypeProblem::Unsupported => (
            "unsupported_type",
            "only JPEG, PNG, WebP, GIF, HEIC and PDF files are accepted".to_owned(),
        ),
        TypeProblem::NotForPurpose(kind) => (
            "unsupported_type",
            format!("{} files are not accepted for this purpose", kind.mime()),
        ),
        TypeProblem::Mismatch { detected, claimed } => (
            "type_mismatch",
            format!(
                "the file's content is {} but it was sent as {claimed}",
                detected.mime()
            ),
        ),
    };
    Error::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, message).with_field("file")
}

/// A user is premium while any page they own is on the premium plan.
pub async fn quota_for<C: ConnectionTrait>(
    db: &C,
    cfg: &FilesConfig,
    user_id: &str,
) -> Result<u64> {
    let premium = page::Entity::find()
        .filter(page::Column::OwnerId.eq(user_id))
        .filter(page::Column::Plan.eq(Plan::Premium))
        .count(db)
        .await?
        > 0;
    Ok(if premium {
        cfg.quota_premium_bytes
    } else {
        cfg.quota_free_bytes
    })
}

/// Bytes the user stores or has reserved (pending uploads count).
pub async fn used_bytes<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<u64> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both databases agree.
    let total: Option<i64> = file::Entity::find_for_owner(user_id)
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(size), 0) AS BIGINT)"),
            "total",
        )
        .into_tuple()
        .one(db)
        .await?;
    Ok(total.unwrap_or(0).max(0) as u64)
}

/// What a new row needs; it starts `pending`.
pub struct NewFile {
    pub id: String,
    pub owner_id: String,
    pub page_id: Option<String>,
    pub purpose: Purpose,
    pub kind: Kind,
    pub original_name: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `None` until the bytes are checked (a direct upload before `complete`).
    pub renditions: Option<Renditions>,
}

pub fn storage_key(owner_id: &str, file_id: &str, kind: Kind) -> String {
    format!("users/{owner_id}/{file_id}.{}", kind.ext())
}

/// Where a direct upload lands: clients may write here (presigned S3 PUT, or the
/// signed local PUT) but never to `storage_key`. `complete` copies the bytes it
/// verified from here to `storage_key`, so what is served is exactly what was checked,
/// however often the upload link is used.
pub fn staging_key(row: &file::Model) -> String {
    format!("uploads/{}", row.storage_key.trim_start_matches("users/"))
}

pub fn thumb_key(owner_id: &str, file_id: &str) -> String {
    format!("users/{owner_id}/{file_id}.thumb.jpg")
}

/// Where a rendition is stored; derived, so removal never depends on the row.
pub fn rendition_key(row: &file::Model, variant: Variant) -> String {
    match variant {
        Variant::Original => row.storage_key.clone(),
        Variant::Thumb => row
            .thumb_key
            .clone()
            .unwrap_or_else(|| thumb_key(&row.owner_id, &row.id)),
        Variant::Large => format!("users/{}/{}.large.jpg", row.owner_id, row.id),
    }
}

/// The rows' description of freshly made renditions.
pub fn described(encoded: &[Encoded]) -> Renditions {
    Renditions(
        encoded
            .iter()
            .map(|e| Rendition {
                variant: e.variant,
                width: e.width,
                height: e.height,
                content_type: "image/jpeg".into(),
            })
            .collect(),
    )
}

/// Stores the renditions of `row` (its key for each variant).
pub async fn store_renditions(
    storage: &dyn Storage,
    row: &file::Model,
    encoded: Vec<Encoded>,
) -> Result<(), StorageError> {
    for e in encoded {
        let key = rendition_key(row, e.variant);
        storage.put_bytes(&key, e.bytes, "image/jpeg").await?;
    }
    Ok(())
}

/// The sizes of the renditions made for new pictures.
pub fn sizes(cfg: &FilesConfig) -> Sizes {
    Sizes {
        thumb: cfg.thumb_width,
        large: LARGE_SIZE.max(cfg.thumb_width),
    }
}

/// Checks the quota and inserts the `pending` row in one write transaction holding
/// the owner's row lock, so two uploads cannot both take the last free bytes.
pub async fn reserve(state: &AppState, new: NewFile) -> Result<file::Model> {
    let txn = db::begin_write(&state.db).await?;
    db::lock_row::<db::user::Entity, _>(&txn, &new.owner_id).await?;
    let quota = quota_for(&txn, &state.cfg.files, &new.owner_id).await?;
    let used = used_bytes(&txn, &new.owner_id).await?;
    if used.saturating_add(new.size) > quota {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            format!("this upload would exceed your storage quota ({used} of {quota} bytes used)"),
        )
        .with_details(serde_json::json!({"usedBytes": used, "quotaBytes": quota})));
    }
    let model = file::ActiveModel {
        storage_key: Set(storage_key(&new.owner_id, &new.id, new.kind)),
        thumb_key: Set(new
            .renditions
            .as_ref()
            .is_some_and(|r| r.0.iter().any(|r| r.variant == Variant::Thumb))
            .then(|| thumb_key(&new.owner_id, &new.id))),
        renditions: Set(new.renditions),
        id: Set(new.id),
        owner_id: Set(new.owner_id),
        page_id: Set(new.page_id),
        purpose: Set(new.purpose),
        status: Set(FileStatus::Pending),
        original_name: Set(new.original_name),
        content_type: Set(new.kind.mime().to_owned()),
        size: Set(new.size as i64),
        sha256: Set(new.sha256),
        width: Set(new.width.map(|w| w as i32)),
        height: Set(new.height.map(|h| h as i32)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(model)
}

pub async fn mark_ready(state: &AppState, row: file::Model) -> Result<file::Model> {
    let mut active = row.into_active_model();
    active.status = Set(FileStatus::Ready);
    Ok(active.update(&state.db).await?)
}

/// Undoes a reservation whose object could not be stored. Objects that may have been
/// written are removed; if even that fails the row is left `deleting` for the sweeper,
/// so no object is ever left without a row.
pub async fn abandon(state: &AppState, row: &file::Model, object_written: bool) {
    let removed = if object_written {
        remove_objects(state.storage.as_ref(), row).await.is_ok()
    } else {
        true
    };
    let outcome = if removed {
        file::Entity::delete_by_id(row.id.clone())
            .exec(&state.db)
            .await
            .map(|_| ())
    } else {
        file::Entity::update_many()
            .col_expr(file::Column::Status, Expr::value(FileStatus::Deleting))
            .filter(file::Column::Id.eq(row.id.clone()))
            .exec(&state.db)
            .await
            .map(|_| ())
    };
    if let Err(e) = outcome {
        tracing::error!(error = ?e, file_id = %row.id, "could not undo a failed upload");
    }
}

/// Removes the object, its renditions and any staged direct upload (a missing object
/// counts as removed). The rendition keys are derived, not read from the row, so a
/// rendition stored just before a failed row update is not left behind.
pub async fn remove_objects(storage: &dyn Storage, row: &file::Model) -> Result<(), StorageError> {
    if let Some(thumb) = &row.thumb_key {
        storage.delete(thumb).await?;
    }
    storage.delete(&thumb_key(&row.owner_id, &row.id)).await?;
    storage.delete(&rendition_key(row, Variant::Large)).await?;
    storage.delete(&staging_key(row)).await?;
    storage.delete(&row.storage_key).await
}

/// Withdraws a file whose upload link may still be in a client's hands: the row stays
/// `deleting` (and keeps counting against the quota) until the sweeper removes it and
/// its objects after the link has expired, so nothing written through the link later
/// is left without a row.
pub async fn retire(state: &AppState, row: &file::Model) -> Result<()> {
    file::Entity::update_many()
        .col_expr(file::Column::Status, Expr::value(FileStatus::Deleting))
        .col_expr(file::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(file::Column::Id.eq(row.id.clone()))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// The file if the caller may see it: its owner, or anyone with access to the page it
/// belongs to. Everyone else gets 404, as if it did not exist.
pub async fn load_readable(state: &AppState, id: &str, user: &AuthUser) -> Result<file::Model> {
    let row = file::Entity::find_by_id(id.to_owned())
        .filter(file::Column::Status.ne(FileStatus::Deleting))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("file"))?;
    if row.owner_id == user.id {
        return Ok(row);
    }
    if let Some(page_id) = &row.page_id
        && let Some(page) = page::Entity::find_by_id(page_id.clone())
            .one(&state.db)
            .await?
        && access_of(&state.db, &page, user).await?.is_some()
    {
        return Ok(row);
    }
    Err(Error::not_found("file"))
}

/// One JPEG rendition of a picture, for `srcset` (`{url} {width}w`) or `next/image`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub url: String,
}

/// A ready-made `srcset`: the renditions, and the original when browsers show it
/// as it is (not HEIC) and it is larger than them.
pub fn srcset(row: &file::Model, url: &str, thumbnails: &[Thumbnail]) -> String {
    let mut parts: Vec<String> = thumbnails
        .iter()
        .map(|t| format!("{} {}w", t.url, t.width))
        .collect();
    let largest = thumbnails.iter().map(|t| t.width).max().unwrap_or(0);
    if let Some(width) = row.width.filter(|w| *w as u32 > largest)
        && row.content_type != Kind::Heic.mime()
    {
        parts.push(format!("{url} {width}w"));
    }
    parts.join(", ")
}

/// Links to a file's bytes and its renditions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileUrls {
    pub url: String,
    /// The thumbnail, or the original when the picture is small or has none (PDF).
    pub thumb_url: String,
    /// Every JPEG rendition, smallest first (empty for a PDF or a small picture).
    pub thumbnails: Vec<Thumbnail>,
    pub expires_at: DateTime<Utc>,
}

pub async fn file_urls(state: &AppState, row: &file::Model) -> Result<FileUrls> {
    let ttl = state.cfg.files.url_ttl;
    let expires_at = Utc::now() + ttl;
    let url = link(state, row, &row.storage_key, Variant::Original, expires_at).await?;
    let mut thumbnails = Vec::new();
    let mut thumb_url = None;
    for r in stored_renditions(row) {
        let key = rendition_key(row, r.variant);
        let href = link(state, row, &key, r.variant, expires_at).await?;
        if r.variant == Variant::Thumb {
            thumb_url = Some(href.clone());
        }
        thumbnails.push(Thumbnail {
            width: r.width,
            height: r.height,
            url: href,
        });
    }
    // A row from before renditions were recorded: its thumbnail, until the backfill.
    if let (None, Some(key)) = (&thumb_url, &row.thumb_key) {
        thumb_url = Some(link(state, row, key, Variant::Thumb, expires_at).await?);
    }
    Ok(FileUrls {
        thumb_url: thumb_url.unwrap_or_else(|| url.clone()),
        url,
        thumbnails,
        expires_at,
    })
}

/// The renditions a row has, smallest first (none recorded yet for a row from before
/// renditions: the backfill fills them in).
pub fn stored_renditions(row: &file::Model) -> Vec<Rendition> {
    match &row.renditions {
        Some(r) => r.0.clone(),
        None => Vec::new(),
    }
}

async fn link(
    state: &AppState,
    row: &file::Model,
    key: &str,
    variant: Variant,
    expires_at: DateTime<Utc>,
) -> Result<String> {
    if let Some(url) = state
        .storage
        .presign_get(key, state.cfg.files.url_ttl)
        .await?
    {
        return Ok(url);
    }
    let exp = expires_at.timestamp();
    let sig = UrlSigner::new(&state.cfg).sign("GET", &row.id, variant.as_str(), exp);
    Ok(format!(
        "{}/api/files/{}/content?variant={}&exp={exp}&sig={sig}",
        state.cfg.files.public_base_url,
        row.id,
        variant.as_str()
    ))
}

/// An upload being written to a temporary file, hashed on the way.
pub struct Spooler {
    tmp: NamedTempFile,
    file: tokio::fs::File,
    hasher: Sha256,
    head: Vec<u8>,
    size: u64,
    limit: u64,
}

/// A finished upload on disk; the temporary file is removed when this is dropped.
pub struct Spooled {
    pub tmp: NamedTempFile,
    pub size: u64,
    pub sha256: String,
    /// The first [`MAGIC_LEN`] bytes, for type detection.
    pub head: Vec<u8>,
}

impl Spooled {
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
}

impl Spooler {
    pub fn new(dir: &Path, limit: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(Error::internal)?;
        let tmp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(dir)
            .map_err(Error::internal)?;
        let file = tokio::fs::File::from_std(tmp.as_file().try_clone().map_err(Error::internal)?);
        Ok(Spooler {
            tmp,
            file,
            hasher: Sha256::new(),
            head: Vec::with_capacity(MAGIC_LEN),
            size: 0,
            limit,
        })
    }

    /// Appends a chunk; 413 as soon as the total passes the limit, before writing it.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(too_large(self.limit));
        }
        if self.head.len() < MAGIC_LEN {
            let take = (MAGIC_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await.map_err(Error::internal)?;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<Spooled> {
        self.file.flush().await.map_err(Error::internal)?;
        self.file.sync_all().await.map_err(Error::internal)?;
        Ok(Spooled {
            tmp: self.tmp,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            head: self.head,
        })
    }
}

/// Runs the image inspection off the async runtime, at most as many at once as the
/// decode gate lets through (503 `busy` beyond its queue).
pub async fn inspect(
    state: &AppState,
    spooled: &Spooled,
    kind: Kind,
) -> Result<super::inspect::ImageInfo> {
    use super::inspect::ImageProblem;
    let path = spooled.path().to_owned();
    let sizes = sizes(&state.cfg.files);
    let max_pixels = state.cfg.files.max_image_pixels;
    let pass = state.decodes.enter().await?;
    tokio::task::spawn_blocking(move || {
        let _pass = pass;
        super::inspect::inspect_image(&path, kind, sizes, max_pixels)
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| {
        let (status, code) = match e {
            ImageProblem::Undecodable { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_image")
            }
            ImageProblem::TooManyPixels { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "image_too_large")
            }
        };
        Error::new(status, code, e.to_string()).with_field("file")
    })
}
