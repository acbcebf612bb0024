//! The per-user chat limit holds across instances: two limiters with their own Redis
//! connections (as two backend instances have) share one window per user.

use backend::chat::rate_limit::ChatRateLimit;
use backend::redis_conn::Redis;

use crate::{
    common::{TestApp, redis_url},
    events::OwnRedis,
};

async fn connection() -> Redis {
    Redis::connect(&redis_url(), false)
        .await
        .expect("Redis reachable at TEST_REDIS_URL")
}

#[tokio::test]
async fn two_instances_share_one_limit_per_user() {
    let instance_1 = ChatRateLimit::new(3, Some(connection().await));
    let instance_2 = ChatRateLimit::new(3, Some(connection().await));
    let user = format!("it-rate-{}", ulid::Ulid::new());

    assert!(instance_1.allow(&user).await);
    assert!(instance_2.allow(&user).await);
    assert!(instance_1.allow(&user).await);
    // the fourth message in the minute is refused whichever instance takes it
    assert!(!instance_2.allow(&user).await);
    assert!(!instance_1.allow(&user).await);

    // another user has a window of their own
    let other = format!("it-rate-{}", ulid::Ulid::new());
    assert!(instance_2.allow(&other).await);

    let mut conn = connection().await;
    let counted: u64 = redis::cmd("ZCARD")
        .arg(format!("chat:rate:{user}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(counted, 3, "refused messages are not counted");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("chat:rate:{user}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "the window key expires: {ttl}");
    let _: () = redis::cmd("DEL")
        .arg(format!("chat:rate:{user}"))
        .arg(format!("chat:rate:{other}"))
        .query_async(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_redis_each_instance_limits_on_its_own() {
    let instance_1 = ChatRateLimit::new(2, None);
    let instance_2 = ChatRateLimit::new(2, None);
    let user = "it-rate-local";
    assert!(instance_1.allow(user).await);
    assert!(instance_1.allow(user).await);
    assert!(!instance_1.allow(user).await);
    assert!(instance_2.allow(user).await);
}

#[tokio::test]
async fn when_redis_stops_answering_the_instance_limits_on_its_own() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", url.as_str())]).await;
    let limit = ChatRateLimit::new(2, app.state.redis.clone());
    let user = "it-rate-fallback";
    assert!(limit.allow(user).await);
    assert!(limit.allow(user).await);
    assert!(!limit.allow(user).await, "Redis counted both");

    redis.stop();
    // The in-process bucket takes over (it has counted nothing yet): no error, no hang.
    let fallback = async {
        (
            limit.allow(user).await,
            limit.allow(user).await,
            limit.allow(user).await,
        )
    };
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), fallback)
        .await
        .expect("the limit answers while Redis is down");
    assert_eq!(got, (true, true, false));
}
