//! Renditions for pictures stored before there were several sizes (and before HEIC
//! was decoded): a background loop on every instance picks ready pictures whose
//! `renditions` is still NULL, a few per round, makes their missing JPEG sizes through
//! the same decode gate as uploads, and records them. Links to a size are handed out
//! only once it is stored, so nothing is generated while a guest waits and a public
//! link never points at bytes that do not exist yet.
//!
//! Two instances may pick the same file: both write the same bytes under the same
//! keys, and only the first row update applies (`WHERE renditions IS NULL`).

use axum::http::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use tokio::io::AsyncReadExt;

use super::{
    inspect::{Kind, jpeg_dimensions},
    service::{Spooler, described, inspect, rendition_key, store_renditions, thumb_key},
};
use crate::{
    db::file::{self, FileStatus, Rendition, Renditions, Variant},
    error::Error,
    state::AppState,
};

/// Files looked at per round and instance: each is one decode.
const BATCH: u64 = 10;

pub fn spawn(state: AppState) {
    let interval = state.cfg.files.sweep_interval;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
            match backfill_once(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(files = n, "made the missing picture sizes"),
                Err(e) => tracing::warn!(error = ?e, "picture size backfill round failed"),
            }
        }
    });
}

/// One round; returns how many files got their renditions recorded.
pub async fn backfill_once(state: &AppState) -> anyhow::Result<usize> {
    let rows = file::Entity::find()
        .filter(file::Column::Status.eq(FileStatus::Ready))
        .filter(file::Column::ContentType.starts_with("image/"))
        .filter(file::Column::Renditions.is_null())
        .limit(BATCH)
        .all(&state.db)
        .await?;
    let mut done = 0;
    for row in rows {
        match backfill(state, &row).await {
            Ok(()) => done += 1,
            // Decodes are busy with uploads: they go first; try again next round.
            Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => break,
            Err(e) => {
                tracing::warn!(error = ?e, file_id = %row.id, "could not make picture sizes");
            }
        }
    }
    Ok(done)
}

async fn backfill(state: &AppState, row: &file::Model) -> Result<(), Error> {
    let kind = Kind::from_mime(&row.content_type)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("content type {}", row.content_type)))?;
    let mut object = state.storage.open(&row.storage_key).await?;
    let mut spool = Spooler::new(state.storage.spool_dir(), object.size)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = object.body.read(&mut buf).await.map_err(Error::internal)?;
        if n == 0 {
            break;
        }
        spool.write(&buf[..n]).await?;
    }
    let spooled = spool.finish().await?;
    let info = match inspect(state, &spooled, kind).await {
        Ok(info) => info,
        // Stored before the checks that refuse it now (a broken or huge HEIC): it
        // keeps being served as it is, with no sizes, and is not tried again.
        Err(e) if e.status().is_client_error() => {
            tracing::info!(file_id = %row.id, error = ?e, "picture cannot be resized; left as it is");
            return record(
                state,
                row,
                Renditions::default(),
                None,
                row.thumb_key.clone(),
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    let mut encoded = info.renditions;
    let mut kept = Vec::new();
    // A thumbnail made before is kept as it is: its link (and every cache holding
    // it) stays valid. Its size is read from its header.
    if row.thumb_key.is_some() {
        let key = rendition_key(row, Variant::Thumb);
        if let Some((width, height)) = read_dimensions(state, &key).await {
            encoded.retain(|e| e.variant != Variant::Thumb);
            kept.push(Rendition {
                variant: Variant::Thumb,
                width,
                height,
                content_type: "image/jpeg".into(),
            });
        }
    }
    let mut renditions = described(&encoded);
    renditions.0.extend(kept);
    renditions.0.sort_by_key(|r| r.width.max(r.height));
    let thumb = renditions
        .0
        .iter()
        .any(|r| r.variant == Variant::Thumb)
        .then(|| {
            row.thumb_key
                .clone()
                .unwrap_or_else(|| thumb_key(&row.owner_id, &row.id))
        });
    store_renditions(state.storage.as_ref(), row, encoded).await?;
    let size = info.width.zip(info.height);
    record(state, row, renditions, size, thumb).await
}

/// The size of a small stored JPEG, or `None` when it cannot be read.
async fn read_dimensions(state: &AppState, key: &str) -> Option<(u32, u32)> {
    let mut object = state.storage.open(key).await.ok()?;
    let mut bytes = Vec::new();
    // A thumbnail is tens of KB; never read more than a few MB of anything.
    (&mut object.body)
        .take(4 * 1024 * 1024)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    jpeg_dimensions(&bytes)
}

async fn record(
    state: &AppState,
    row: &file::Model,
    renditions: Renditions,
    size: Option<(u32, u32)>,
    thumb_key: Option<String>,
) -> Result<(), Error> {
    let mut update = file::Entity::update_many()
        .col_expr(file::Column::Renditions, Expr::value(Some(renditions)))
        .col_expr(file::Column::ThumbKey, Expr::value(thumb_key))
        .filter(file::Column::Id.eq(row.id.clone()))
        .filter(file::Column::Renditions.is_null());
    // Pictures stored before HEIC was decoded have no size yet.
    if let (Some((w, h)), None) = (size, row.width) {
        update = update
            .col_expr(file::Column::Width, Expr::value(Some(w as i32)))
            .col_expr(file::Column::Height, Expr::value(Some(h as i32)));
    }
    update.exec(&state.db).await?;
    Ok(())
}
