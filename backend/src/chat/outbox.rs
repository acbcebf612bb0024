//! The hand-off outbox: every accepted message has a `chat_turns` row written in the
//! same transaction (see `store::store_user_message`). A dispatcher on every instance
//! takes due rows under a lease (a conditional UPDATE, so two instances never hand the
//! same message off at once, and a dead instance's rows are free again when its lease
//! runs out), hands them to the agent-manager, and on failure schedules the next
//! attempt with backoff. Attempts go on until the turn's first-item deadline fails it
//! (`deadline`). The agent-manager is idempotent per `message_id`, so a hand-off done
//! twice (a lease lost mid-call) is answered once.

use std::{sync::Arc, time::Duration};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{
    ChatRuntime,
    agent::{AgentRequest, HandoffError},
    deadline, store, turn,
};
use crate::{
    db::{
        chat_message::{self, Status},
        chat_turn, page,
    },
    pages::context::build_wedding_context,
};

/// How often the outbox is polled for rows this instance was not told about: another
/// instance's accept whose hand-off is overdue (that instance died), a lease run out.
/// A local accept wakes the dispatcher at once, and a local retry when it is due.
const POLL: Duration = Duration::from_secs(1);
/// Rows taken per round, and hand-offs in flight per instance.
const BATCH: u64 = 32;
const IN_FLIGHT: usize = 64;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn spawn(rt: Arc<ChatRuntime>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = rt.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            if let Err(e) = dispatch_due(&rt, &slots).await {
                tracing::warn!(error = %e, "hand-off dispatcher: database error; retrying");
            }
        }
    });
}

async fn dispatch_due(rt: &Arc<ChatRuntime>, slots: &Arc<Semaphore>) -> anyhow::Result<()> {
    let free = slots.available_permits().min(BATCH as usize) as u64;
    if free == 0 {
        return Ok(());
    }
    let now = now_ms();
    let due = chat_turn::Entity::find()
        .filter(chat_turn::Column::HandoffDueMs.lte(now))
        .filter(chat_turn::Column::LeaseUntilMs.lt(now))
        .order_by_asc(chat_turn::Column::HandoffDueMs)
        .limit(free)
        .all(&rt.state.db)
        .await?;
    for row in due {
        let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
            break;
        };
        let owner = &rt.state.cfg.chat.instance_id;
        if !claim(&rt.state.db, owner, &row.message_id, now, lease(rt)).await? {
            continue; // another instance took it
        }
        let rt = Arc::clone(rt);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = hand_off(&rt, &row).await {
                tracing::warn!(error = %e, message_id = %row.message_id, "hand-off attempt failed; will retry");
            }
        });
    }
    Ok(())
}

/// The lease covers one attempt: building the request and one call to the agent.
fn lease(rt: &ChatRuntime) -> i64 {
    rt.state.cfg.chat.agent_timeout.as_millis() as i64 + 5_000
}

/// Takes the row for `owner` until `now + lease_ms` if it is still due and nobody
/// holds a live lease on it. One conditional UPDATE: of concurrent claims one wins.
pub async fn claim(
    db: &sea_orm::DatabaseConnection,
    owner: &str,
    message_id: &str,
    now: i64,
    lease_ms: i64,
) -> anyhow::Result<bool> {
    let taken = chat_turn::Entity::update_many()
        .col_expr(chat_turn::Column::LeaseOwner, Expr::value(owner.to_owned()))
        .col_expr(chat_turn::Column::LeaseUntilMs, Expr::value(now + lease_ms))
        .col_expr(
            chat_turn::Column::UpdatedAt,
            Expr::value(chrono::Utc::now()),
        )
        .filter(chat_turn::Column::MessageId.eq(message_id))
        .filter(chat_turn::Column::HandoffDueMs.lte(now))
        .filter(chat_turn::Column::LeaseUntilMs.lt(now))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

async fn hand_off(rt: &Arc<ChatRuntime>, row: &chat_turn::Model) -> anyhow::Result<()> {
    let db = &rt.state.db;
    let message = chat_message::Entity::find_by_id(row.message_id.clone())
        .one(db)
        .await?;
    let Some(message) = message.filter(|m| m.status == Status::Pending) else {
        // Already ended (or gone): nothing to hand off.
        chat_turn::Entity::delete_by_id(row.message_id.clone())
            .exec(db)
            .await?;
        return Ok(());
    };
    if let Some(redis) = &rt.redis
        && turn::is_failed(redis, &message.session_id, &message.id)
            .await
            .unwrap_or(false)
    {
        // Failed by its deadline on another instance that could not record it yet.
        if store::finish_turn(db, &message.id, Status::Failed, Some("deadline".into())).await? {
            store::count_finished(Status::Failed);
        }
        return Ok(());
    }
    let request = build_request(rt, &message).await?;
    let started = std::time::Instant::now();
    let outcome = rt.agent.submit(&request).await;
    crate::metrics::handoff(
        match &outcome {
            Ok(()) => "accepted",
            Err(HandoffError::Refused(_)) => "refused",
            Err(HandoffError::Unreachable(_)) => "unreachable",
            Err(HandoffError::CircuitOpen) => "circuit_open",
        },
        started.elapsed(),
    );
    let mine = || {
        chat_turn::Entity::update_many()
            .col_expr(
                chat_turn::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(chat_turn::Column::LeaseUntilMs, Expr::value(0i64))
            .col_expr(chat_turn::Column::Attempts, Expr::value(row.attempts + 1))
            .col_expr(
                chat_turn::Column::UpdatedAt,
                Expr::value(chrono::Utc::now()),
            )
            .filter(chat_turn::Column::MessageId.eq(row.message_id.as_str()))
            .filter(chat_turn::Column::LeaseOwner.eq(rt.state.cfg.chat.instance_id.as_str()))
    };
    match outcome {
        Ok(()) => {
            mine()
                .col_expr(
                    chat_turn::Column::HandoffDueMs,
                    Expr::value(Option::<i64>::None),
                )
                .exec(db)
                .await?;
            tracing::debug!(message_id = %message.id, attempts = row.attempts + 1, "handed off");
        }
        Err(HandoffError::Refused(reason)) => {
            tracing::warn!(message_id = %message.id, %reason, "the agent-manager refused the message");
            if let Some(redis) = &rt.redis {
                deadline::fail_turn(rt, redis, &message, &reason).await?;
            }
        }
        Err(e) => {
            let wait = backoff_ms(row.attempts);
            let next = now_ms() + wait;
            mine()
                .col_expr(chat_turn::Column::HandoffDueMs, Expr::value(Some(next)))
                .col_expr(
                    chat_turn::Column::LastError,
                    Expr::value(Some(e.to_string())),
                )
                .exec(db)
                .await?;
            tracing::info!(message_id = %message.id, attempts = row.attempts + 1, error = %e, "hand-off failed; retrying");
            wake_at(rt, Duration::from_millis(wait as u64));
        }
    }
    Ok(())
}

/// Wakes the dispatcher once `after` has passed (a retry is due then).
fn wake_at(rt: &Arc<ChatRuntime>, after: Duration) {
    let rt = Arc::clone(rt);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        rt.wake.notify_one();
    });
}

/// 250 ms, 500 ms, 1 s, 2 s, then every 4 s.
fn backoff_ms(attempts: i32) -> i64 {
    250i64 << attempts.clamp(0, 4)
}

async fn build_request(
    rt: &ChatRuntime,
    message: &chat_message::Model,
) -> anyhow::Result<AgentRequest> {
    let db = &rt.state.db;
    let context = match page::Entity::find_by_id(message.page_id.clone())
        .one(db)
        .await?
    {
        Some(page) => build_wedding_context(db, &page)
            .await
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let history = store::history(
        db,
        &message.session_id,
        &message.id,
        rt.state.cfg.chat.history_turns,
    )
    .await?;
    Ok(AgentRequest {
        message: message.content.clone(),
        session_id: message.session_id.clone(),
        message_id: message.id.clone(),
        user_id: message.user_id.clone().unwrap_or_default(),
        page_id: message.page_id.clone(),
        wedding_context: context,
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_then_stays_at_four_seconds() {
        let steps: Vec<i64> = (0..7).map(backoff_ms).collect();
        assert_eq!(steps, [250, 500, 1000, 2000, 4000, 4000, 4000]);
    }
}
