//! The turn deadline: every instance sweeps the open turns (`chat_turns`) and fails
//! those past their bound — no first item `CHAT_FIRST_ITEM_TIMEOUT_MS` after
//! `message-accepted`, no new item for `CHAT_IDLE_TIMEOUT_MS`, or longer than
//! `CHAT_TURN_TIMEOUT_MS` in all. Failing is safe to race: the Redis side is one Lua
//! script (`turn::fail`, first caller publishes the `error` item, and never after the
//! worker's final item) and the database side a conditional update from `pending`.

use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio_util::sync::CancellationToken;

use super::{
    ChatRuntime,
    outbox::now_ms,
    store,
    turn::{self, FailOutcome, TurnState},
};
use crate::{
    config::ChatConfig,
    db::{
        chat_message::{self, Status},
        chat_turn,
    },
};

/// Open turns looked at per sweep, oldest first.
const BATCH: u64 = 200;

pub fn spawn(rt: Arc<ChatRuntime>, redis: crate::redis_conn::Redis, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let every = rt.state.cfg.chat.sweep_interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = sweep(&rt, &redis).await {
                // Redis or the database is out: nothing can be failed or announced
                // now; the next sweep after they are back does it.
                tracing::warn!(error = %e, "deadline sweep skipped");
            }
        }
    });
}

async fn sweep(rt: &ChatRuntime, redis: &crate::redis_conn::Redis) -> anyhow::Result<()> {
    let cfg = &rt.state.cfg.chat;
    let now = now_ms();
    let earliest = cfg.first_item_timeout.min(cfg.idle_timeout);
    // Once a second per instance: the outbox depth for /metrics (a cheap count).
    let waiting = chat_turn::Entity::find()
        .filter(chat_turn::Column::HandoffDueMs.is_not_null())
        .count(&rt.state.db)
        .await?;
    crate::metrics::outbox_pending(waiting);
    let open = chat_turn::Entity::find()
        .filter(chat_turn::Column::AcceptedAtMs.lte(now - earliest.as_millis() as i64))
        .order_by_asc(chat_turn::Column::AcceptedAtMs)
        .limit(BATCH)
        .all(&rt.state.db)
        .await?;
    if open.is_empty() {
        return Ok(());
    }
    let turns: Vec<(String, String)> = open
        .iter()
        .map(|t| (t.session_id.clone(), t.message_id.clone()))
        .collect();
    let (redis_now, states) = turn::read_states(redis, &turns).await?;
    for (row, state) in open.iter().zip(states) {
        if ended_but_not_stored(cfg, redis_now, &state) {
            store_from_stream(rt, redis, row).await?;
            continue;
        }
        let Some(reason) = overdue(cfg, now, redis_now, row, &state) else {
            continue;
        };
        let Some(message) = chat_message::Entity::find_by_id(row.message_id.clone())
            .one(&rt.state.db)
            .await?
        else {
            continue;
        };
        fail_turn(rt, redis, &message, reason).await?;
    }
    Ok(())
}

/// The worker's final item went out an idle bound ago and the turn is still open: its
/// completion entry was never consumed (on a Cluster the worker appends it after the
/// item's script, so a worker dying in between leaves none).
fn ended_but_not_stored(cfg: &ChatConfig, redis_now_ms: i64, state: &TurnState) -> bool {
    state.is_final
        && !state.failed
        && state
            .last_item_ms
            .is_some_and(|at| redis_now_ms - at >= cfg.idle_timeout.as_millis() as i64)
}

/// Stores the turn's final item from the session's durable stream, as the completion
/// consumer would have (idempotent: the answer is stored once, and only while pending).
async fn store_from_stream(
    rt: &ChatRuntime,
    redis: &crate::redis_conn::Redis,
    row: &chat_turn::Model,
) -> anyhow::Result<()> {
    use redis::AsyncCommands;
    let mut conn = redis.clone();
    let entries: redis::streams::StreamRangeReply = conn
        .xrange_all(store::session_stream_key(&row.session_id))
        .await?;
    let last = entries
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("item"))
        .filter_map(|raw| serde_json::from_str::<serde_json::Value>(&raw).ok())
        .find(|i| {
            i["message_id"].as_str() == Some(row.message_id.as_str())
                && matches!(i["type"].as_str(), Some("done" | "error"))
        });
    if let Some(item) = last {
        tracing::warn!(message_id = %row.message_id, "answer ended without a completion entry; stored from the stream");
        super::persist::store_completion(&rt.state, &item).await?;
    }
    Ok(())
}

/// Why the turn must fail now, if it must. Item times are Redis's clock (the worker
/// stamps them there), acceptance is this instance's.
pub fn overdue(
    cfg: &ChatConfig,
    now_ms: i64,
    redis_now_ms: i64,
    row: &chat_turn::Model,
    state: &TurnState,
) -> Option<&'static str> {
    if state.failed {
        return Some("deadline"); // failed in Redis; the database has not caught up
    }
    if state.is_final {
        return None; // the answer ended; the completion consumer stores it
    }
    let age = now_ms - row.accepted_at_ms;
    if age >= cfg.turn_timeout.as_millis() as i64 {
        return Some("the answer took too long");
    }
    match state.last_item_ms {
        None if age >= cfg.first_item_timeout.as_millis() as i64 => {
            Some("no answer started in time")
        }
        Some(at) if redis_now_ms - at >= cfg.idle_timeout.as_millis() as i64 => {
            Some("the answer stalled")
        }
        _ => None,
    }
}

/// Fails a turn: the room gets the `error` item (once, whichever instance gets here
/// first), the question becomes `failed` and its turn row goes. Does nothing when the
/// worker's final item went out first.
pub async fn fail_turn(
    rt: &ChatRuntime,
    redis: &crate::redis_conn::Redis,
    message: &chat_message::Model,
    reason: &str,
) -> anyhow::Result<()> {
    if message.status != Status::Pending {
        chat_turn::Entity::delete_by_id(message.id.clone())
            .exec(&rt.state.db)
            .await?;
        return Ok(());
    }
    match turn::fail(redis, &message.session_id, &message.id, &message.content).await? {
        FailOutcome::AlreadyFinal => return Ok(()),
        FailOutcome::Failed(seq) => {
            tracing::warn!(message_id = %message.id, seq, reason, turn = "failed", "turn failed");
        }
        FailOutcome::AlreadyFailed => {}
    }
    if store::finish_turn(
        &rt.state.db,
        &message.id,
        Status::Failed,
        Some(reason.to_owned()),
    )
    .await?
    {
        store::count_finished(Status::Failed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ChatConfig {
        let mut vars = std::collections::HashMap::new();
        vars.insert("DATABASE_URL".to_owned(), "sqlite::memory:".to_owned());
        vars.insert(
            "JWT_SECRET".to_owned(),
            "unit-test-secret-0123456789abcdef0123".to_owned(),
        );
        vars.insert("CHAT_FIRST_ITEM_TIMEOUT_MS".to_owned(), "20000".to_owned());
        vars.insert("CHAT_IDLE_TIMEOUT_MS".to_owned(), "30000".to_owned());
        vars.insert("CHAT_TURN_TIMEOUT_MS".to_owned(), "180000".to_owned());
        crate::Config::from_map(&vars).unwrap().chat
    }

    fn row(accepted_at_ms: i64) -> chat_turn::Model {
        chat_turn::Model {
            message_id: "m".into(),
            session_id: "s".into(),
            accepted_at_ms,
            handoff_due_ms: None,
            attempts: 1,
            lease_owner: None,
            lease_until_ms: 0,
            last_error: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_turn_fails_only_past_one_of_its_bounds() {
        let cfg = cfg();
        let quiet = TurnState::default();
        let streaming = |at| TurnState {
            last_item_ms: Some(at),
            ..Default::default()
        };
        assert_eq!(overdue(&cfg, 19_999, 0, &row(0), &quiet), None);
        assert!(overdue(&cfg, 20_000, 0, &row(0), &quiet).is_some());
        // Items keep it alive; silence after them fails it.
        assert_eq!(
            overdue(&cfg, 50_000, 50_000, &row(0), &streaming(21_000)),
            None
        );
        assert!(overdue(&cfg, 51_000, 51_000, &row(0), &streaming(21_000)).is_some());
        // However steady, not longer than the turn bound.
        assert!(overdue(&cfg, 180_000, 180_000, &row(0), &streaming(179_999)).is_some());
        // An ended answer is the completion consumer's, whatever its age.
        let ended = TurnState {
            last_item_ms: Some(1),
            is_final: true,
            failed: false,
        };
        assert_eq!(overdue(&cfg, 900_000, 900_000, &row(0), &ended), None);
        let failed = TurnState {
            failed: true,
            ..ended
        };
        assert!(overdue(&cfg, 1, 1, &row(0), &failed).is_some());
    }
}
