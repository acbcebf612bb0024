//! Finishes what failed half-way: deletions whose object could not be removed
//! (`deleting` rows) and reservations never completed (old `pending` rows). For each,
//! the objects go first and the row last, so a crash at any point only leaves work
//! for the next round, never an object without a row.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use tokio_util::sync::CancellationToken;

use super::{service::remove_objects, storage::Storage};
use crate::{
    config::FilesConfig,
    db::file::{self, FileStatus},
};

/// A `deleting` row younger than this may still be handled by its request.
const DELETE_GRACE: Duration = Duration::from_secs(30);

pub fn spawn(
    db: DatabaseConnection,
    storage: Arc<dyn Storage>,
    cfg: &FilesConfig,
    shutdown: CancellationToken,
) {
    let interval = cfg.sweep_interval;
    // A direct upload may arrive until its link expires.
    let pending_after = cfg.pending_ttl.max(cfg.url_ttl + Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
            // A retired direct upload's link may be used until it expires.
            let deleting_after = DELETE_GRACE.max(pending_after);
            match sweep_once(&db, storage.as_ref(), pending_after, deleting_after).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "file sweeper removed stale files"),
                Err(e) => tracing::warn!(error = ?e, "file sweeper round failed"),
            }
        }
    });
}

/// One round; returns how many files were removed for good.
pub async fn sweep_once(
    db: &DatabaseConnection,
    storage: &dyn Storage,
    pending_after: Duration,
    deleting_after: Duration,
) -> anyhow::Result<usize> {
    let now = Utc::now();
    let stale = file::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(file::Column::Status.eq(FileStatus::Deleting))
                        .add(file::Column::UpdatedAt.lte(now - deleting_after)),
                )
                .add(
                    Condition::all()
                        .add(file::Column::Status.eq(FileStatus::Pending))
                        .add(file::Column::UpdatedAt.lte(now - pending_after)),
                ),
        )
        .limit(100)
        .all(db)
        .await?;
    let mut removed = 0;
    for row in stale {
        if let Err(e) = remove_objects(storage, &row).await {
            tracing::debug!(error = %e, file_id = %row.id, "storage still failing; will retry");
            continue;
        }
        file::Entity::delete_many()
            .filter(file::Column::Id.eq(row.id.clone()))
            .filter(file::Column::Status.eq(row.status))
            .exec(db)
            .await?;
        removed += 1;
    }
    Ok(removed)
}
