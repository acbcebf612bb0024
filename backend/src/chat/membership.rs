//! The bound on a lost revocation: every instance re-checks, every
//! `CHAT_MEMBERSHIP_RECHECK_MS` (30 s), that the users of its joined sockets still
//! belong to those pages, and takes out those who do not (the same `room-closed` path
//! as a `page.access.revoked` event). The event does it at once; this catches the case
//! where Redis lost the event on its way to this instance.
//!
//! Off the relay's path: one task per instance, a snapshot of its sockets, then one
//! query per batch of [`BATCH`] pages (owners and editors together). A database that
//! fails or stalls keeps everyone as they are until the next round (logged).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};
use socketioxide::{SocketIo, extract::SocketRef};

use super::{
    NAMESPACE,
    gateway::{JoinedRooms, SocketUser},
    subscriptions::Subscriptions,
};
use crate::{
    db::{page, page_editor},
    metrics,
    state::AppState,
};

/// Pages looked up per query.
const BATCH: usize = 500;
/// One batch's query; a stalled database must not hold the loop.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn spawn(state: AppState, io: SocketIo, subs: Option<Arc<Subscriptions>>) {
    let every = state.cfg.chat.membership_recheck;
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is at once; nothing has joined yet
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            recheck(&state, &io, subs.as_ref()).await;
        }
    });
}

/// One round over this instance's joined sockets.
pub async fn recheck(state: &AppState, io: &SocketIo, subs: Option<&Arc<Subscriptions>>) {
    let Some(ns) = io.of(NAMESPACE) else { return };
    // The snapshot comes before the queries: a socket in it joined before they run,
    // so what they read is at least as new as the check its join passed.
    let mut by_page: BTreeMap<String, Vec<(SocketRef, String)>> = BTreeMap::new();
    for socket in ns.sockets() {
        let Some(SocketUser(user)) = socket.extensions.get::<SocketUser>() else {
            continue;
        };
        // Admins may join any page (the role is the handshake's; suspension
        // disconnects the socket by itself).
        if user.is_admin() {
            continue;
        }
        let joined = socket.extensions.get::<JoinedRooms>().unwrap_or_default();
        for j in joined.0 {
            if let Some(page_id) = j.room.strip_prefix("page-") {
                by_page
                    .entry(page_id.to_owned())
                    .or_default()
                    .push((socket.clone(), user.id.clone()));
            }
        }
    }
    let pages: Vec<String> = by_page.keys().cloned().collect();
    for batch in pages.chunks(BATCH) {
        let members = match tokio::time::timeout(QUERY_TIMEOUT, members_of(&state.db, batch)).await
        {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, pages = batch.len(), "chat membership re-check failed; kept as is, retried next round");
                continue;
            }
            Err(_) => {
                tracing::warn!(
                    pages = batch.len(),
                    "chat membership re-check timed out; kept as is, retried next round"
                );
                continue;
            }
        };
        for page_id in batch {
            let allowed = members.get(page_id);
            for (socket, user_id) in &by_page[page_id] {
                let still_joined = socket.extensions.get::<JoinedRooms>().is_some_and(|j| {
                    j.0.iter()
                        .any(|r| r.room.strip_prefix("page-") == Some(page_id))
                });
                // Members stay; a socket the revocation event took out meanwhile is done.
                if allowed.is_some_and(|m| m.contains(user_id)) || !still_joined {
                    continue;
                }
                metrics::membership_evicted();
                tracing::info!(sid = %socket.id, page_id, "chat membership re-check: the user lost this page");
                super::evict_socket(io, state.redis.as_ref(), subs, socket, page_id).await;
            }
        }
    }
}

/// The owner and editors of each page of `page_ids` that exists, in one query.
async fn members_of(
    db: &DatabaseConnection,
    page_ids: &[String],
) -> Result<HashMap<String, HashSet<String>>, sea_orm::DbErr> {
    let rows: Vec<(String, String, Option<String>)> = page::Entity::find()
        .select_only()
        .column(page::Column::Id)
        .column(page::Column::OwnerId)
        .column(page_editor::Column::UserId)
        .join_rev(JoinType::LeftJoin, page_editor::Relation::Page.def())
        .filter(page::Column::Id.is_in(page_ids.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    let mut members: HashMap<String, HashSet<String>> = HashMap::new();
    for (page_id, owner_id, editor_id) in rows {
        let m = members.entry(page_id).or_default();
        m.insert(owner_id);
        m.extend(editor_id);
    }
    Ok(members)
}
