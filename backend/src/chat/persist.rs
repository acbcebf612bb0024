//! Exactly-once persistence of agent answers.
//!
//! The worker appends every final `done`/`error` item to the completion stream. All
//! instances read it through one consumer group: each entry goes to one instance,
//! which stores it and acknowledges only after the database commit. Entries a dead
//! instance left unacknowledged are claimed by another after `CHAT_CLAIM_IDLE_MS`.
//! The assistant row's unique `answer_to` turns a second store of the same answer
//! (a redelivery after a crash between commit and ack) into a no-op.

use std::time::Duration;

use redis::{
    AsyncCommands,
    streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
    },
};
use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::store::{self, finish_turn};
use crate::{
    db::{
        begin_write,
        chat_message::{self, Components, Role, Status},
        new_id, page,
    },
    events::DomainEvent,
    pages::access::members,
    state::AppState,
};

pub const GROUP: &str = "backend";

pub fn spawn(state: AppState, url: String, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let stream = state.cfg.chat.completion_stream.clone();
        let consumer = state.cfg.chat.instance_id.clone();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            // A connection of its own: a blocking XREADGROUP must not hold up the
            // shared multiplexed connection.
            let done = if state.cfg.redis_cluster {
                match crate::redis_conn::cluster_client(&url, None) {
                    Ok(client) => match client.get_async_connection().await {
                        Ok(mut conn) => {
                            consume(&state, &mut conn, &stream, &consumer, &shutdown).await
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            } else {
                // No client-side response timeout: XREADGROUP BLOCK waits on purpose.
                let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
                match redis::Client::open(url.as_str()) {
                    Ok(client) => match client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                    {
                        Ok(mut conn) => {
                            consume(&state, &mut conn, &stream, &consumer, &shutdown).await
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "completion consumer: Redis error; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    });
}

async fn consume<C: redis::aio::ConnectionLike + Send + Sync>(
    state: &AppState,
    conn: &mut C,
    stream: &str,
    consumer: &str,
    shutdown: &CancellationToken,
) -> redis::RedisResult<()> {
    // From the beginning of the stream the first time, so answers finished while no
    // backend ran are stored too (inserts are idempotent).
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(stream, GROUP, "0").await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(e);
    }
    let claim_idle = state.cfg.chat.claim_idle.as_millis() as u64;
    let mut last_claim = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        if last_claim.elapsed() >= Duration::from_millis(claim_idle.clamp(200, 10_000)) {
            last_claim = std::time::Instant::now();
            let claimed: StreamAutoClaimReply = conn
                .xautoclaim_options(
                    stream,
                    GROUP,
                    consumer,
                    claim_idle,
                    "0-0",
                    StreamAutoClaimOptions::default().count(100),
                )
                .await?;
            for entry in claimed.claimed {
                handle(state, conn, stream, entry).await?;
            }
        }
        let opts = StreamReadOptions::default()
            .group(GROUP, consumer)
            .count(100)
            .block(1000);
        let keys = [stream];
        let ids = [">"];
        let reply: Option<StreamReadReply> = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = conn.xread_options(&keys, &ids, &opts) => r?,
        };
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                handle(state, conn, stream, entry).await?;
            }
        }
    }
}

/// Stores one completion and acknowledges it. A database failure leaves the entry
/// pending, so it is claimed and retried later.
async fn handle<C: redis::aio::ConnectionLike + Send + Sync>(
    state: &AppState,
    conn: &mut C,
    stream: &str,
    entry: StreamId,
) -> redis::RedisResult<()> {
    let item: Option<Value> = entry
        .get::<String>("item")
        .and_then(|raw| serde_json::from_str(&raw).ok());
    match item {
        Some(item) => match store_completion(state, &item).await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(error = %e, entry = %entry.id, "could not store an answer; will retry");
                return Ok(());
            }
        },
        None => tracing::warn!(entry = %entry.id, "completion without a readable item; skipped"),
    }
    conn.xack::<_, _, _, i64>(stream, GROUP, &[&entry.id])
        .await?;
    Ok(())
}

pub async fn store_completion(state: &AppState, item: &Value) -> anyhow::Result<()> {
    let Some(message_id) = item["message_id"].as_str() else {
        return Ok(());
    };
    let Some(question) = chat_message::Entity::find_by_id(message_id.to_owned())
        .one(&state.db)
        .await?
    else {
        // Not one of ours (another deployment sharing the stream): nothing to store.
        tracing::debug!(message_id, "completion for an unknown message");
        return Ok(());
    };
    let stopped = item["stopped"].as_bool().unwrap_or(false);
    let txn = begin_write(&state.db).await?;
    let mut finished = None;
    // The question moves out of `pending` first, conditionally: an answer that comes
    // after the turn failed (its deadline passed) is not stored.
    let stored = match item["type"].as_str() {
        Some("done") => {
            let to = if stopped {
                Status::Stopped
            } else {
                Status::Answered
            };
            if finish_turn(&txn, message_id, to, None).await? {
                finished = Some(to);
                let components = item["components"].as_array().cloned().unwrap_or_default();
                let inserted = chat_message::Entity::insert(chat_message::ActiveModel {
                    id: Set(new_id()),
                    session_id: Set(question.session_id.clone()),
                    page_id: Set(question.page_id.clone()),
                    user_id: Set(None),
                    role: Set(Role::Assistant),
                    content: Set(item["content"].as_str().unwrap_or_default().to_owned()),
                    components: Set(Components(components)),
                    status: Set(if stopped {
                        Status::Stopped
                    } else {
                        Status::Complete
                    }),
                    answer_to: Set(Some(message_id.to_owned())),
                    client_msg_id: Set(None),
                    error: Set(None),
                    created_at: Set(chrono::Utc::now()),
                    updated_at: Set(chrono::Utc::now()),
                })
                .on_conflict(
                    OnConflict::column(chat_message::Column::AnswerTo)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
                inserted == 1
            } else {
                if question.status == Status::Failed {
                    tracing::info!(message_id, "late answer to a failed turn refused");
                }
                false
            }
        }
        Some("error") => {
            let reason = item["content"]
                .as_str()
                .unwrap_or("the assistant failed")
                .to_owned();
            if finish_turn(&txn, message_id, Status::Failed, Some(reason)).await? {
                finished = Some(Status::Failed);
            }
            false
        }
        _ => false,
    };
    txn.commit().await?;
    if let Some(to) = finished {
        store::count_finished(to);
    }
    if stored
        && let Some(page) = page::Entity::find_by_id(question.page_id.clone())
            .one(&state.db)
            .await?
    {
        state.events.publish(DomainEvent::new(
            "chat.reply.completed",
            members(&state.db, &page).await?,
            json!({"pageId": page.id, "sessionId": question.session_id, "messageId": message_id, "stopped": stopped}),
        ));
    }
    Ok(())
}
