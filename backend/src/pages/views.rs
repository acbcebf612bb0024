//! Public page views, counted in memory and added to the database in one `UPDATE`
//! per page every flush interval, so a popular page costs no write per request.
//! Each instance flushes its own counts; increments add up across instances.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use tokio_util::sync::CancellationToken;

use crate::db::page;

#[derive(Default)]
pub struct ViewCounter {
    pending: Mutex<HashMap<String, i64>>,
}

impl ViewCounter {
    pub fn record(&self, page_id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry(page_id.to_owned()).or_default() += 1;
    }

    /// Views counted here but not yet written.
    pub fn pending(&self, page_id: &str) -> i64 {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(page_id).copied().unwrap_or_default()
    }

    pub async fn flush<C: ConnectionTrait>(&self, db: &C) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (page_id, n) in batch {
            let res = page::Entity::update_many()
                .col_expr(
                    page::Column::ViewCount,
                    Expr::col(page::Column::ViewCount).add(n),
                )
                .filter(page::Column::Id.eq(page_id.clone()))
                .exec(db)
                .await;
            if let Err(err) = res {
                // Put the count back; the next flush tries again.
                tracing::warn!(error = %err, page_id, "could not write page views");
                *self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(page_id)
                    .or_default() += n;
            }
        }
    }

    pub fn spawn_flusher(
        self: &std::sync::Arc<Self>,
        db: DatabaseConnection,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let counter = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        counter.flush(&db).await;
                        break;
                    }
                    _ = tick.tick() => counter.flush(&db).await,
                }
            }
        });
    }
}
