//! The Redis side of a turn: one hash `chat:turn:<message_id>` that the worker updates
//! atomically with every item it publishes (`next_seq`, `at_ms` = Redis time of the
//! last item, `final` once `done`/`error` went out) and that a deadline failure marks
//! `failed`. Both sides change it only inside Lua scripts, so "the worker published
//! its final item" and "the turn failed" can never both happen, and a seq is never
//! used twice (docs/chat.md, "The guarantee"; the worker's half is in
//! agent-manager/app/services/publisher.py).

use redis::AsyncCommands;
use serde_json::json;

use super::store::{session_channel, session_stream_key};

/// Kept a day, like the per-session stream.
const TURN_TTL_SECS: u64 = 86_400;
const STREAM_MAXLEN: u64 = 1000;

/// On a Cluster the key carries the session's hash tag, so the scripts that also touch
/// the session's stream and channel stay in one slot.
pub fn turn_key(session_id: &str, message_id: &str) -> String {
    if crate::redis_conn::cluster_mode() {
        format!(
            "chat:turn:{}:{message_id}",
            crate::redis_conn::session_tag(session_id)
        )
    } else {
        format!("chat:turn:{message_id}")
    }
}

/// What the worker recorded of a turn so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TurnState {
    /// Redis time (ms) of the last item; `None` before the first.
    pub last_item_ms: Option<i64>,
    pub is_final: bool,
    pub failed: bool,
}

/// The turns' states (`(session_id, message_id)` each) and Redis's own clock (ms),
/// which `last_item_ms` is measured on (on a Cluster, one node's clock: the nodes'
/// clocks must agree within a fraction of the idle bound, as NTP keeps them).
pub async fn read_states(
    redis: &crate::redis_conn::Redis,
    turns: &[(String, String)],
) -> redis::RedisResult<(i64, Vec<TurnState>)> {
    let mut conn = redis.clone();
    let time: (String, String) = redis::cmd("TIME").query_async(&mut conn).await?;
    let hmget = |session: &str, message: &str| {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(turn_key(session, message))
            .arg("at_ms")
            .arg("final")
            .arg("failed");
        cmd
    };
    type Row = (Option<i64>, Option<String>, Option<String>);
    let rows: Vec<Row> = if redis.is_cluster() {
        // Turns of different sessions are in different slots: one command each,
        // sent at once on the multiplexed connections.
        let queries = turns.iter().map(|(s, m)| {
            let mut conn = redis.clone();
            let cmd = hmget(s, m);
            async move { cmd.query_async::<Row>(&mut conn).await }
        });
        futures::future::try_join_all(queries).await?
    } else {
        let mut pipe = redis::pipe();
        for (s, m) in turns {
            pipe.add_command(hmget(s, m));
        }
        pipe.query_async(&mut conn).await?
    };
    let now_ms = time.0.parse::<i64>().unwrap_or_default() * 1000
        + time.1.parse::<i64>().unwrap_or_default() / 1000;
    let states = rows
        .into_iter()
        .map(|(at, fin, failed)| TurnState {
            last_item_ms: at,
            is_final: fin.is_some(),
            failed: failed.is_some(),
        })
        .collect();
    Ok((now_ms, states))
}

/// How a deadline failure went in Redis.
#[derive(Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// This call failed the turn and published the `error` item under this seq.
    Failed(i64),
    /// An earlier call (any instance) already did.
    AlreadyFailed,
    /// The worker's final item went out first: the turn is not failed.
    AlreadyFinal,
}

// KEYS: turn hash, session stream, session channel.
// ARGV: the error item as JSON without `seq`, turn TTL, stream maxlen, stream TTL, the
// publish command (PUBLISH, or SPUBLISH on a Cluster).
// `published_at_ms` (Redis time) goes first, as in the worker's script (relay lag).
const FAIL_SCRIPT: &str = r#"
local t = KEYS[1]
if redis.call('HGET', t, 'failed') then return -2 end
if redis.call('HGET', t, 'final') then return -1 end
local seq = tonumber(redis.call('HGET', t, 'next_seq') or '0')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local item = '{"published_at_ms":' .. ms .. ',"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('HSET', t, 'failed', '1', 'final', '1', 'next_seq', seq + 1)
redis.call('EXPIRE', t, ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'item', item)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call(ARGV[5], KEYS[3], item)
return seq
"#;

/// Marks the turn failed (the worker publishes nothing after this) and sends the room
/// the `error` item, unless the worker's final item went out first. Idempotent: only
/// the first call, on whichever instance, publishes.
pub async fn fail(
    redis: &crate::redis_conn::Redis,
    session_id: &str,
    message_id: &str,
    question: &str,
) -> redis::RedisResult<FailOutcome> {
    let body = json!({
        "session_id": session_id, "message_id": message_id, "role": "assistant",
        "type": "error", "content": failure_text(question),
    })
    .to_string();
    let mut conn = redis.clone();
    let seq: i64 = redis::cmd("EVAL")
        .arg(FAIL_SCRIPT)
        .arg(3)
        .arg(turn_key(session_id, message_id))
        .arg(session_stream_key(session_id))
        .arg(session_channel(session_id))
        .arg(body)
        .arg(TURN_TTL_SECS)
        .arg(STREAM_MAXLEN)
        .arg(TURN_TTL_SECS)
        .arg(crate::redis_conn::publish_command())
        .query_async(&mut conn)
        .await?;
    Ok(match seq {
        -2 => FailOutcome::AlreadyFailed,
        -1 => FailOutcome::AlreadyFinal,
        seq => FailOutcome::Failed(seq),
    })
}

/// Whether a turn was failed in Redis (for the dispatcher: no hand-off then).
pub async fn is_failed(
    redis: &crate::redis_conn::Redis,
    session_id: &str,
    message_id: &str,
) -> redis::RedisResult<bool> {
    let mut conn = redis.clone();
    let v: Option<String> = conn
        .hget(turn_key(session_id, message_id), "failed")
        .await?;
    Ok(v.is_some())
}

/// The `error` item's text, in the language of the question: Korean when it has
/// Hangul, English otherwise (the worker's rule, `detect_language`).
pub fn failure_text(question: &str) -> &'static str {
    let korean = question.chars().any(|c| {
        ('\u{AC00}'..='\u{D7A3}').contains(&c)
            || ('\u{1100}'..='\u{11FF}').contains(&c)
            || ('\u{3130}'..='\u{318F}').contains(&c)
    });
    if korean {
        "죄송합니다. 답변을 제때 드리지 못했습니다. 메시지를 다시 보내 주세요."
    } else {
        "Sorry, the assistant could not answer in time. Please send your message again."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_text_follows_the_question_language() {
        assert!(failure_text("주차 되나요?").starts_with("죄송합니다"));
        assert!(failure_text("Where is it?").starts_with("Sorry"));
        assert!(failure_text("ok ㅋㅋ").starts_with("죄송합니다"));
    }
}
