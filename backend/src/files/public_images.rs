//! Stable, cacheable links for the pictures of a published page:
//! `{FILES_PUBLIC_BASE_URL}/api/public/images/{fileId}/{variant}/{tag}`, where `tag` is
//! the start of the file's SHA-256. A file's bytes never change, so the link never
//! changes either and is served `Cache-Control: public, max-age=31536000, immutable`
//! with an `ETag`, `If-None-Match` → 304, single `Range` → 206, and `HEAD`, so that
//! browsers, `next/image`, CDNs and chat-app link previews can all keep it.
//!
//! The bytes are served only while the file is a picture of a published page (in its
//! gallery or its cover); otherwise 404. The privacy trade-off, documented in
//! docs/files.md: a cache that already holds a picture may keep serving it for up to
//! a year after the page is unpublished or the picture deleted. Unpublished pages and
//! attachments keep short signed links.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{service::rendition_key, signing::Variant};
use crate::{
    config::Config,
    db::{
        file::{self, FileStatus},
        page::{self, PageStatus},
    },
    error::{Error, ErrorBody, Result},
    extract::Path,
    state::AppState,
};

/// One year: the longest `max-age` caches honour.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Guest routes, merged under `/api/public`.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_public_image))
}

/// The content tag of a file: 16 hex digits (64 bits) of its SHA-256.
fn tag_of(row: &file::Model) -> Option<&str> {
    row.sha256.as_deref().and_then(|s| s.get(..16))
}

/// The stable public link of `variant`, or `None` for a file without a content hash
/// (the caller falls back to a signed link).
pub fn image_url(cfg: &Config, row: &file::Model, variant: Variant) -> Option<String> {
    let tag = tag_of(row)?;
    Some(format!(
        "{}/api/public/images/{}/{}/{tag}",
        cfg.files.public_base_url,
        row.id,
        variant.as_str()
    ))
}

/// A picture of a published page, cacheable for a year.
#[utoipa::path(get, path = "/images/{id}/{variant}/{tag}", tag = "public",
    params(("id" = String, Path), ("variant" = String, Path, description = "`original`, `thumb` or `large`"),
        ("tag" = String, Path, description = "content tag from the page's gallery item")),
    responses((status = 200, description = "the picture"), (status = 206, description = "the requested byte range"),
        (status = 304, description = "the cached copy is current"), (status = 404, body = ErrorBody),
        (status = 416, description = "the range is outside the picture", body = ErrorBody)))]
async fn get_public_image(
    State(state): State<AppState>,
    Path((id, variant, tag)): Path<(String, Variant, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let not_found = || Error::not_found("image");
    let row = file::Entity::find_by_id(id)
        .filter(file::Column::Status.eq(FileStatus::Ready))
        .one(&state.db)
        .await?
        .filter(|f| tag_of(f) == Some(tag.as_str()) && f.content_type.starts_with("image/"))
        .ok_or_else(not_found)?;
    if !shown_on_published_page(&state, &row).await? {
        return Err(not_found());
    }
    let (key, content_type) = variant_object(&row, variant).ok_or_else(not_found)?;
    let etag = format!("\"{}-{}\"", tag, variant.as_str());
    let mut out = HeaderMap::new();
    let value = |v: String| HeaderValue::from_str(&v).map_err(Error::internal);
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    out.insert(header::ETAG, value(etag.clone())?);
    out.insert(
        header::LAST_MODIFIED,
        value(
            row.created_at
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        )?,
    );
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if none_match(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let object = state.storage.open(&key).await?;
    let size = object.size;
    out.insert(header::CONTENT_TYPE, value(content_type)?);
    out.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    // `If-Range` with another validator: the client's partial copy is stale, send all.
    let range_applies = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let range = headers
        .get(header::RANGE)
        .filter(|_| range_applies)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, size));
    match range {
        Some(Ranged::Unsatisfiable) => {
            out.insert(header::CONTENT_RANGE, value(format!("bytes */{size}"))?);
            let refused = Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "the range is outside the picture",
            );
            Ok((out, refused).into_response())
        }
        Some(Ranged::Bytes(start, end)) => {
            let mut body = object.body;
            // Skip to the start: objects are pictures of a few MB, so reading past the
            // prefix costs little and works the same on every store.
            tokio::io::copy(&mut (&mut body).take(start), &mut tokio::io::sink())
                .await
                .map_err(Error::internal)?;
            let len = end - start + 1;
            out.insert(
                header::CONTENT_RANGE,
                value(format!("bytes {start}-{end}/{size}"))?,
            );
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            let stream = ReaderStream::new(body.take(len));
            Ok((StatusCode::PARTIAL_CONTENT, out, Body::from_stream(stream)).into_response())
        }
        // No range, or a form we do not serve (several ranges): the whole picture.
        Some(Ranged::Ignore) | None => {
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            Ok((out, Body::from_stream(ReaderStream::new(object.body))).into_response())
        }
    }
}

/// The key and content type of a file's `variant`, if it has one.
pub fn variant_object(row: &file::Model, variant: Variant) -> Option<(String, String)> {
    match variant {
        Variant::Original => Some((row.storage_key.clone(), row.content_type.clone())),
        // The thumbnail of a row from before renditions were recorded has a key only.
        Variant::Thumb => Some((row.thumb_key.clone()?, "image/jpeg".to_owned())),
        Variant::Large => {
            let r = row.rendition(Variant::Large)?;
            Some((rendition_key(row, variant), r.content_type.clone()))
        }
    }
}

/// Whether the file is the cover or in the gallery of a published page.
async fn shown_on_published_page(state: &AppState, row: &file::Model) -> Result<bool> {
    let Some(page_id) = &row.page_id else {
        return Ok(false);
    };
    let page = page::Entity::find_by_id(page_id.clone())
        .filter(page::Column::Status.eq(PageStatus::Published))
        .one(&state.db)
        .await?;
    Ok(page.is_some_and(|p| {
        p.cover_file_id.as_deref() == Some(row.id.as_str()) || p.gallery.0.contains(&row.id)
    }))
}

/// `If-None-Match` with the weak comparison of RFC 9110 (`W/` ignored, `*` matches).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t == etag)
        })
}

#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    Unsatisfiable,
    Ignore,
}

/// One `bytes=` range: `a-b`, `a-` or `-n` (the last n bytes).
fn parse_range(value: &str, size: u64) -> Ranged {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ranged::Ignore;
    };
    if spec.contains(',') {
        return Ranged::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return Ranged::Ignore;
            };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                    _ => return Ranged::Ignore,
                }
            };
            (start, end)
        }
        (true, false) => {
            let Ok(n) = b.parse::<u64>() else {
                return Ranged::Ignore;
            };
            if n == 0 {
                return Ranged::Unsatisfiable;
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (true, true) => return Ranged::Ignore,
    };
    if size == 0 || parsed.0 >= size {
        Ranged::Unsatisfiable
    } else {
        Ranged::Bytes(parsed.0, parsed.1)
    }
}

#[cfg(test)]
mod tests {
    use super::{Ranged, parse_range};

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ranged::Bytes(0, 99));
        assert_eq!(parse_range("bytes=900-", 1000), Ranged::Bytes(900, 999));
        assert_eq!(parse_range("bytes=-100", 1000), Ranged::Bytes(900, 999));
        assert_eq!(parse_range("bytes=990-2000", 1000), Ranged::Bytes(990, 999));
        assert_eq!(parse_range("bytes=1000-", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), Ranged::Ignore);
        assert_eq!(parse_range("items=0-1", 1000), Ranged::Ignore);
        assert_eq!(parse_range("bytes=9-1", 1000), Ranged::Ignore);
    }
}
