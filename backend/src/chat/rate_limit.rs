//! The per-user chat message limit (`CHAT_RATE_PER_MINUTE`), shared by every instance.
//!
//! With Redis the limit is a sliding window per user in one sorted set
//! (`chat:rate:<user_id>`: one member per accepted message, scored by Redis's own clock),
//! checked and updated by one Lua script, so all instances see the same count and no
//! instance clock is trusted. A refused message is not counted. Without Redis, or while
//! Redis does not answer, each instance falls back to its own in-process bucket: the limit
//! then holds per instance, and chat itself needs Redis anyway. After a Redis error the
//! limiter stays local for [`RETRY_REDIS_AFTER`], so messages do not each wait out a
//! connection timeout while Redis is down.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::redis_conn::Redis;

use crate::auth::rate_limit::KeyedLimiter;

/// Window length of the limit.
const WINDOW_MS: u64 = 60_000;
/// How long to count locally after Redis failed.
const RETRY_REDIS_AFTER: Duration = Duration::from_secs(5);

/// KEYS[1] = the user's set; ARGV = window (ms), limit, a unique member.
/// Returns 1 when the message is allowed (and counted), 0 when refused.
const SLIDING_WINDOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
";

pub struct ChatRateLimit {
    per_minute: u32,
    redis: Option<Redis>,
    local: KeyedLimiter<String>,
    redis_failed_at: Mutex<Option<Instant>>,
}

impl ChatRateLimit {
    pub fn new(per_minute: u32, redis: Option<Redis>) -> Self {
        let per_minute = per_minute.max(1);
        ChatRateLimit {
            per_minute,
            redis,
            local: KeyedLimiter::per_minute(per_minute),
            redis_failed_at: Mutex::new(None),
        }
    }

    /// Counts one message for `user_id`; `false` when the user is over the limit.
    pub async fn allow(&self, user_id: &str) -> bool {
        let Some(redis) = self.redis.as_ref().filter(|_| !self.redis_resting()) else {
            return self.local.check(&user_id.to_owned()).is_ok();
        };
        let mut conn = redis.clone();
        let result: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(SLIDING_WINDOW)
            .arg(1)
            .arg(format!("chat:rate:{user_id}"))
            .arg(WINDOW_MS)
            .arg(self.per_minute)
            .arg(ulid::Ulid::new().to_string())
            .query_async(&mut conn)
            .await;
        match result {
            Ok(allowed) => allowed == 1,
            Err(err) => {
                tracing::warn!(error = %err, "chat rate limit: Redis unavailable, using the in-process limit");
                *self.redis_failed_at.lock().expect("not poisoned") = Some(Instant::now());
                self.local.check(&user_id.to_owned()).is_ok()
            }
        }
    }

    fn redis_resting(&self) -> bool {
        self.redis_failed_at
            .lock()
            .expect("not poisoned")
            .is_some_and(|at| at.elapsed() < RETRY_REDIS_AFTER)
    }
}
