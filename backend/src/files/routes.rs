//! `/api/files/...`: upload, direct upload, metadata, links, bytes and deletion.

use axum::{
    Json,
    body::Body,
    extract::{
        DefaultBodyLimit, Multipart, State,
        multipart::{Field, MultipartError, MultipartRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::{
    inspect::{Kind, check_type, sanitize_name},
    service::{
        FileUrls, NewFile, Spooler, abandon, described, file_urls, inspect, largest_limit,
        limit_for, load_readable, mark_ready, remove_objects, reserve, retire, staging_key,
        store_renditions, thumb_key, too_large, type_error,
    },
    signing::{UrlSigner, Variant},
    storage::StorageError,
};
use crate::{
    auth::AuthUser,
    db::{
        self,
        file::{self, FileStatus, Purpose},
        new_id, page,
    },
    error::{Error, ErrorBody, Result},
    events::DomainEvent,
    extract::{Path, Query, ValidatedJson},
    pages::access::{Need, load_page, members},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(presign_upload))
        .routes(routes!(get_file, delete_file))
        .routes(routes!(get_file_url))
        .routes(routes!(complete_upload))
        .merge(
            // Upload bodies are limited per purpose while they stream, not by the
            // global JSON cap.
            OpenApiRouter::new()
                .routes(routes!(upload_file))
                .routes(routes!(get_content, put_content))
                .layer(DefaultBodyLimit::disable()),
        )
}

/// A file's metadata.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileOut {
    pub id: String,
    pub owner_id: String,
    pub page_id: Option<String>,
    pub purpose: Purpose,
    pub status: FileStatus,
    /// The uploader's file name, cleaned; display only.
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content (absent until a direct upload is completed).
    pub sha256: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub has_thumbnail: bool,
    /// The JPEG renditions stored, smallest first (links: `GET /api/files/{id}/url`).
    pub renditions: Vec<file::Rendition>,
    pub created_at: DateTime<Utc>,
}

impl From<file::Model> for FileOut {
    fn from(f: file::Model) -> Self {
        FileOut {
            has_thumbnail: f.thumb_key.is_some(),
            renditions: f.renditions.map(|r| r.0).unwrap_or_default(),
            id: f.id,
            owner_id: f.owner_id,
            page_id: f.page_id,
            purpose: f.purpose,
            status: f.status,
            name: f.original_name,
            content_type: f.content_type,
            size: f.size,
            sha256: f.sha256,
            width: f.width,
            height: f.height,
            created_at: f.created_at,
        }
    }
}

/// The multipart form of an upload (documentation only).
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
struct UploadForm {
    /// The file's bytes. Its name and content type are checked against its content.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    purpose: Purpose,
    /// The page the file is for; the caller must be able to edit it.
    page_id: Option<String>,
}

fn multipart_rejection(rej: MultipartRejection) -> Error {
    Error::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("expected a multipart/form-data body: {}", rej.body_text()),
    )
}

fn multipart_error(err: MultipartError) -> Error {
    Error::bad_request("invalid_multipart", err.body_text())
}

/// Fields a single-file upload form may have (file, purpose, pageId and a few extras
/// that are ignored).
const MAX_FORM_FIELDS: usize = 16;
/// Bytes of unknown fields, all together, read and dropped before the request fails.
const MAX_SKIPPED_FORM_BYTES: usize = 64 * 1024;

fn form_too_large() -> Error {
    Error::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "a form has the file and at most {MAX_FORM_FIELDS} fields, \
             {} KiB of unknown fields in all",
            MAX_SKIPPED_FORM_BYTES / 1024
        ),
    )
}

/// Reads a small text field without trusting its length.
async fn small_text(mut field: Field<'_>, name: &str) -> Result<String> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        out.extend_from_slice(&chunk);
        if out.len() > 200 {
            return Err(Error::validation(name, format!("{name} is too long")));
        }
    }
    String::from_utf8(out)
        .map(|s| s.trim().to_owned())
        .map_err(|_| Error::validation(name, format!("{name} is not UTF-8 text")))
}

fn parse_purpose(text: &str) -> Result<Purpose> {
    serde_json::from_value(json!(text))
        .map_err(|_| Error::validation("purpose", "purpose must be gallery, cover or attachment"))
}

fn publish_uploaded(state: &AppState, row: &file::Model, mut users: Vec<String>) {
    if !users.contains(&row.owner_id) {
        users.push(row.owner_id.clone());
    }
    state.events.publish(DomainEvent::new(
        "file.uploaded",
        users,
        json!({
            "fileId": row.id,
            "purpose": row.purpose,
            "pageId": row.page_id,
            "contentType": row.content_type,
            "size": row.size,
        }),
    ));
}

async fn notify_uploaded(state: &AppState, row: &file::Model) -> Result<()> {
    let users = match &row.page_id {
        Some(pid) => match page::Entity::find_by_id(pid.clone()).one(&state.db).await? {
            Some(p) => members(&state.db, &p).await?,
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    publish_uploaded(state, row, users);
    Ok(())
}

/// Upload a file (multipart form: `file`, `purpose`, optional `pageId`). The body is
/// streamed to a temporary file, checked (size, type from the content's magic bytes,
/// quota), then stored under a server-made key.
#[utoipa::path(post, path = "", tag = "files", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = FileOut), (status = 403, body = ErrorBody, description = "quota_exceeded"),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody, description = "storage_unavailable")))]
// Client errors are not failures; internal ones are logged once by `error.rs`.
#[tracing::instrument(skip_all, err(level = "debug"))]
async fn upload_file(
    State(state): State<AppState>,
    auth: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<FileOut>)> {
    let mut multipart = multipart.map_err(multipart_rejection)?;
    let mut purpose = None;
    let mut page_id = None;
    let mut upload = None;
    // Besides the file, a form is a few small fields: bound their number and their
    // bytes in total, so repeated fields cannot stream an endless body either.
    let mut fields = 0usize;
    let mut skipped = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        fields += 1;
        if fields > MAX_FORM_FIELDS {
            return Err(form_too_large());
        }
        match field.name() {
            Some("purpose") => purpose = Some(parse_purpose(&small_text(field, "purpose").await?)?),
            Some("pageId") => {
                page_id = Some(small_text(field, "pageId").await?).filter(|s| !s.is_empty())
            }
            Some("file") => {
                if upload.is_some() {
                    return Err(Error::validation("file", "send one file per request"));
                }
                let name = sanitize_name(field.file_name().unwrap_or_default());
                let claimed = field.content_type().map(str::to_owned);
                let limit = purpose
                    .map(|p| limit_for(&state.cfg.files, p))
                    .unwrap_or_else(|| largest_limit(&state.cfg.files));
                let mut spool = Spooler::new(state.storage.spool_dir(), limit)?;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    spool.write(&chunk).await?;
                }
                upload = Some((spool.finish().await?, name, claimed));
            }
            // Unknown fields are read and dropped, but they may not be used to send
            // an endless body past the per-purpose limits.
            _ => {
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    skipped += chunk.len();
                    if skipped > MAX_SKIPPED_FORM_BYTES {
                        return Err(form_too_large());
                    }
                }
            }
        }
    }
    let purpose = purpose.ok_or_else(|| {
        Error::validation(
            "purpose",
            "purpose is required: gallery, cover or attachment",
        )
    })?;
    let (spooled, name, claimed) =
        upload.ok_or_else(|| Error::validation("file", "the form has no file field"))?;
    if spooled.size == 0 {
        return Err(Error::validation("file", "the file is empty").into_code("empty_file"));
    }
    let limit = limit_for(&state.cfg.files, purpose);
    if spooled.size > limit {
        return Err(too_large(limit));
    }
    let kind = check_type(&spooled.head, purpose, claimed.as_deref(), &name).map_err(type_error)?;
    let page_id = match page_id {
        Some(pid) => Some(load_page(&state.db, &pid, &auth, Need::Edit).await?.0.id),
        None => None,
    };
    let info = inspect(&state, &spooled, kind).await?;

    let row = reserve(
        &state,
        NewFile {
            id: new_id(),
            owner_id: auth.id.clone(),
            page_id,
            purpose,
            kind,
            original_name: name,
            size: spooled.size,
            sha256: Some(spooled.sha256.clone()),
            width: info.width,
            height: info.height,
            renditions: Some(described(&info.renditions)),
        },
    )
    .await?;
    if let Err(e) = state
        .storage
        .put_file(&row.storage_key, spooled.path(), kind.mime())
        .await
    {
        abandon(&state, &row, false).await;
        return Err(e.into());
    }
    if let Err(e) = store_renditions(state.storage.as_ref(), &row, info.renditions).await {
        abandon(&state, &row, true).await;
        return Err(e.into());
    }
    let row = mark_ready(&state, row).await?;
    notify_uploaded(&state, &row).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresignIn {
    pub purpose: Purpose,
    #[validate(length(min = 1, max = 255))]
    #[schema(min_length = 1, max_length = 255)]
    pub file_name: String,
    /// One of image/jpeg, image/png, image/webp, image/gif, image/heic, application/pdf.
    pub content_type: String,
    /// Exact size in bytes of what will be uploaded.
    pub size: u64,
    pub page_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresignOut {
    pub file_id: String,
    /// PUT the bytes here, with exactly the headers below, then call `complete`.
    pub upload_url: String,
    pub method: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// Direct upload, step 1: reserve a file (quota counted) and get a URL to PUT the
/// bytes to: presigned S3 URL, or a signed backend URL with local storage.
#[utoipa::path(post, path = "/presign", tag = "files", security(("bearer" = [])), request_body = PresignIn,
    responses((status = 201, body = PresignOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
// Client errors are not failures; internal ones are logged once by `error.rs`.
#[tracing::instrument(skip_all, err(level = "debug"))]
async fn presign_upload(
    State(state): State<AppState>,
    auth: AuthUser,
    ValidatedJson(input): ValidatedJson<PresignIn>,
) -> Result<(StatusCode, Json<PresignOut>)> {
    if input.size == 0 {
        return Err(Error::validation("size", "the file is empty").into_code("empty_file"));
    }
    let limit = limit_for(&state.cfg.files, input.purpose);
    if input.size > limit {
        return Err(too_large(limit).with_field("size"));
    }
    let name = sanitize_name(&input.file_name);
    let declared = Kind::from_mime(&input.content_type).ok_or_else(|| {
        type_error(super::inspect::TypeProblem::Unsupported).with_field("contentType")
    })?;
    // The declared type stands in for the bytes until `complete` reads them.
    check_type(&magic_of(declared), input.purpose, None, &name).map_err(type_error)?;
    let page_id = match input.page_id {
        Some(pid) => Some(load_page(&state.db, &pid, &auth, Need::Edit).await?.0.id),
        None => None,
    };
    let row = reserve(
        &state,
        NewFile {
            id: new_id(),
            owner_id: auth.id.clone(),
            page_id,
            purpose: input.purpose,
            kind: declared,
            original_name: name,
            size: input.size,
            sha256: None,
            width: None,
            height: None,
            renditions: None,
        },
    )
    .await?;
    let ttl = state.cfg.files.url_ttl;
    let expires_at = Utc::now() + ttl;
    let presigned = match state
        .storage
        .presign_put(&staging_key(&row), declared.mime(), input.size, ttl)
        .await
    {
        Ok(url) => url,
        Err(e) => {
            abandon(&state, &row, false).await;
            return Err(e.into());
        }
    };
    let upload_url = presigned.unwrap_or_else(|| {
        let exp = expires_at.timestamp();
        let sig = UrlSigner::new(&state.cfg).sign("PUT", &row.id, Variant::Original.as_str(), exp);
        format!(
            "{}/api/files/{}/content?exp={exp}&sig={sig}",
            state.cfg.files.public_base_url, row.id
        )
    });
    Ok((
        StatusCode::CREATED,
        Json(PresignOut {
            file_id: row.id,
            upload_url,
            method: "PUT".into(),
            headers: [("Content-Type".to_owned(), declared.mime().to_owned())].into(),
            expires_at,
        }),
    ))
}

/// Leading bytes of a kind, to run the purpose and extension rules on a declaration.
fn magic_of(kind: Kind) -> Vec<u8> {
    match kind {
        Kind::Jpeg => vec![0xFF, 0xD8, 0xFF],
        Kind::Png => b"\x89PNG\r\n\x1a\n".to_vec(),
        Kind::Webp => b"RIFF\0\0\0\0WEBP".to_vec(),
        Kind::Gif => b"GIF89a".to_vec(),
        Kind::Heic => b"\0\0\0\x18ftypheic".to_vec(),
        Kind::Pdf => b"%PDF-".to_vec(),
    }
}

/// Direct upload, step 2: the object must exist with the declared size, and its bytes
/// must be of the declared type. The content is then read once to hash it, measure it
/// and make the thumbnail; only then does the file count as uploaded.
#[utoipa::path(post, path = "/{id}/complete", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = FileOut), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
// Client errors are not failures; internal ones are logged once by `error.rs`.
#[tracing::instrument(skip_all, err(level = "debug"))]
async fn complete_upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<FileOut>> {
    let row = file::Entity::find_for_owner(&auth.id)
        .filter(file::Column::Id.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("file"))?;
    if row.status == FileStatus::Ready {
        return Ok(Json(row.into()));
    }
    let declared = row.size as u64;
    let staged = staging_key(&row);
    match state.storage.head(&staged).await? {
        None => {
            return Err(
                Error::validation("id", "nothing has been uploaded for this file yet")
                    .into_code("upload_missing"),
            );
        }
        Some(size) if size != declared => {
            return Err(Error::validation(
                "size",
                format!("the uploaded object has {size} bytes, {declared} were declared"),
            )
            .into_code("size_mismatch"));
        }
        Some(_) => {}
    }
    let mut object = state.storage.open(&staged).await?;
    let mut spool = Spooler::new(state.storage.spool_dir(), declared)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = object
            .body
            .read(&mut buf)
            .await
            .map_err(|e| Error::from(StorageError::unavailable(e)))?;
        if n == 0 {
            break;
        }
        spool.write(&buf[..n]).await?;
    }
    let spooled = spool.finish().await?;
    let declared_kind = Kind::from_mime(&row.content_type).ok_or_else(|| {
        Error::internal(anyhow::anyhow!(
            "stored content type {:?}",
            row.content_type
        ))
    })?;
    let checked = check_type(
        &spooled.head,
        row.purpose,
        Some(declared_kind.mime()),
        &row.original_name,
    )
    .map_err(type_error);
    let info = match checked {
        Ok(kind) => inspect(&state, &spooled, kind).await,
        Err(e) => Err(e),
    };
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            // Bytes that are not what was declared never count. The upload link is
            // still valid, so the row is retired, not dropped (see `retire`).
            retire(&state, &row).await?;
            return Err(e);
        }
    };
    // Serve exactly the bytes that were checked: the staged object can still be
    // overwritten through the upload link, the final key cannot.
    let kind_mime = Kind::from_mime(&row.content_type)
        .map(|k| k.mime())
        .unwrap_or("application/octet-stream");
    state
        .storage
        .put_file(&row.storage_key, spooled.path(), kind_mime)
        .await?;
    let renditions = described(&info.renditions);
    let thumb_key = renditions
        .0
        .iter()
        .any(|r| r.variant == Variant::Thumb)
        .then(|| thumb_key(&row.owner_id, &row.id));
    store_renditions(state.storage.as_ref(), &row, info.renditions).await?;
    let mut active = row.into_active_model();
    active.status = Set(FileStatus::Ready);
    active.sha256 = Set(Some(spooled.sha256.clone()));
    active.width = Set(info.width.map(|w| w as i32));
    active.height = Set(info.height.map(|h| h as i32));
    active.thumb_key = Set(thumb_key);
    active.renditions = Set(Some(renditions));
    let row = active.update(&state.db).await?;
    // Best effort: the sweeper-free copy is gone; a later write through the link
    // only touches the staging key, which no row or page points at.
    if let Err(e) = state.storage.delete(&staged).await {
        tracing::debug!(error = %e, file_id = %row.id, "staged upload not removed");
    }
    notify_uploaded(&state, &row).await?;
    Ok(Json(row.into()))
}

/// A file's metadata: its owner, or editors of the page it belongs to.
#[utoipa::path(get, path = "/{id}", tag = "files", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = FileOut), (status = 404, body = ErrorBody)))]
async fn get_file(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<FileOut>> {
    Ok(Json(load_readable(&state, &id, &auth).await?.into()))
}

/// Expiring links to the file and its thumbnail (presigned S3 GET, or a signed
/// backend link with local storage).
#[utoipa::path(get, path = "/{id}/url", tag = "files", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = FileUrls), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn get_file_url(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<FileUrls>> {
    let row = load_readable(&state, &id, &auth).await?;
    if row.status != FileStatus::Ready {
        return Err(Error::conflict(
            "not_ready",
            "the upload has not been completed",
        ));
    }
    Ok(Json(file_urls(&state, &row).await?))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOut {
    /// `deleted`, or `deleting` when storage could not be reached and the removal
    /// will be finished in the background.
    pub status: String,
}

/// Delete a file (owner only): it leaves the page gallery and the quota at once; the
/// object and the row are removed together.
#[utoipa::path(delete, path = "/{id}", tag = "files", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 202, body = DeleteOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
// Client errors are not failures; internal ones are logged once by `error.rs`.
#[tracing::instrument(skip_all, err(level = "debug"))]
async fn delete_file(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let row = load_readable(&state, &id, &auth).await?;
    if row.owner_id != auth.id {
        return Err(Error::forbidden("only the file's owner may delete it"));
    }
    // 1. Hide it and take it out of its page's gallery, in one transaction.
    let txn = db::begin_write(&state.db).await?;
    file::Entity::update_many()
        .col_expr(file::Column::Status, Expr::value(FileStatus::Deleting))
        .col_expr(file::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(file::Column::Id.eq(row.id.clone()))
        .exec(&txn)
        .await?;
    if let Some(pid) = &row.page_id
        && let Some(p) = page::Entity::find_by_id(pid.clone()).one(&txn).await?
        && p.gallery.0.contains(&row.id)
    {
        let mut gallery = p.gallery.clone();
        gallery.0.retain(|g| g != &row.id);
        let mut active = p.into_active_model();
        active.gallery = Set(gallery);
        active.update(&txn).await?;
    }
    txn.commit().await?;
    // A direct upload not yet completed: its link may still be used, so the sweeper
    // removes row and objects once the link has expired.
    if row.status == FileStatus::Pending {
        return Ok((
            StatusCode::ACCEPTED,
            Json(DeleteOut {
                status: "deleting".into(),
            }),
        )
            .into_response());
    }
    // 2. Remove the objects; 3. then the row. A failure leaves the row `deleting`
    // and the sweeper retries, so neither an object nor a row is left dangling.
    match remove_objects(state.storage.as_ref(), &row).await {
        Ok(()) => {
            file::Entity::delete_by_id(row.id).exec(&state.db).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) => {
            tracing::warn!(error = %e, file_id = %row.id, "object delete deferred to the sweeper");
            Ok((
                StatusCode::ACCEPTED,
                Json(DeleteOut {
                    status: "deleting".into(),
                }),
            )
                .into_response())
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignedQuery {
    /// `original` (default) or `thumb`.
    #[param(inline)]
    pub variant: Option<Variant>,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Hex HMAC-SHA256.
    pub sig: String,
}

fn check_signature(
    state: &AppState,
    method: &str,
    id: &str,
    variant: Variant,
    q: &SignedQuery,
) -> Result<()> {
    if q.exp < Utc::now().timestamp() {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            "url_expired",
            "this link has expired",
        ));
    }
    if !UrlSigner::new(&state.cfg).verify(method, id, variant.as_str(), q.exp, &q.sig) {
        return Err(Error::new(
            StatusCode::FORBIDDEN,
            "invalid_signature",
            "this link is not valid",
        ));
    }
    Ok(())
}

/// The bytes behind a signed link (no account needed: the signature is the grant).
#[utoipa::path(get, path = "/{id}/content", tag = "files", params(("id" = String, Path), SignedQuery),
    responses((status = 200, description = "the file's bytes"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_content(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SignedQuery>,
) -> Result<Response> {
    let variant = q.variant.unwrap_or(Variant::Original);
    check_signature(&state, "GET", &id, variant, &q)?;
    let row = file::Entity::find_by_id(id)
        .filter(file::Column::Status.eq(FileStatus::Ready))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("file"))?;
    let (key, content_type) = super::public_images::variant_object(&row, variant)
        .ok_or_else(|| Error::not_found("thumbnail"))?;
    let object = state.storage.open(&key).await?;
    let mut headers = HeaderMap::new();
    let header_value = |v: String| HeaderValue::from_str(&v).map_err(Error::internal);
    headers.insert(header::CONTENT_TYPE, header_value(content_type)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.size));
    let max_age = (q.exp - Utc::now().timestamp()).max(0);
    headers.insert(
        header::CACHE_CONTROL,
        header_value(format!("private, max-age={max_age}"))?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let disposition = if row.content_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(format!(
            "{disposition}; filename*=UTF-8''{}",
            percent_encode(&row.original_name)
        ))?,
    );
    Ok((headers, Body::from_stream(ReaderStream::new(object.body))).into_response())
}

/// RFC 5987 encoding for `filename*`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Direct upload target with local storage: PUT the declared bytes to the signed link
/// from `presign`, then call `complete`.
#[utoipa::path(put, path = "/{id}/content", tag = "files", params(("id" = String, Path), SignedQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn put_content(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<SignedQuery>,
    body: Body,
) -> Result<StatusCode> {
    check_signature(&state, "PUT", &id, Variant::Original, &q)?;
    let row = file::Entity::find_by_id(id)
        .filter(file::Column::Status.eq(FileStatus::Pending))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("file"))?;
    let mut spool = Spooler::new(state.storage.spool_dir(), row.size as u64)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::bad_request("invalid_body", e.to_string()))?;
        spool.write(&chunk).await?;
    }
    let spooled = spool.finish().await?;
    if spooled.size != row.size as u64 {
        return Err(Error::validation(
            "size",
            format!(
                "{} bytes were sent, {} were declared",
                spooled.size, row.size
            ),
        )
        .into_code("size_mismatch"));
    }
    state
        .storage
        .put_file(&staging_key(&row), spooled.path(), &row.content_type)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
