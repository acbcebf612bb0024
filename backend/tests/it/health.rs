use std::net::TcpListener as StdListener;

use crate::{
    common::{TestApp, error_code, redis_url},
    events::OwnRedis,
};

#[tokio::test]
async fn live_and_ready_on_the_embedded_defaults() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health/live", None, 200).await["status"], "ok");
    let ready = app.get("/health/ready", None, 200).await;
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    assert!(
        ready["checks"].get("redis").is_none(),
        "redis is not configured"
    );
}

#[tokio::test]
async fn ready_checks_redis_when_configured() {
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis_url())]).await;
    let ready = app.get("/health/ready", None, 200).await;
    assert_eq!(ready["checks"]["redis"]["status"], "up");
}

/// The worker (or the whole agent-manager) being down is an AI outage, not a reason
/// to take the instance out of the load balancer: 200, `degraded`, the agent `down`.
#[tokio::test]
async fn ready_stays_200_with_the_agent_manager_down() {
    // A port that was free a moment ago: nothing answers there.
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[("AGENT_MANAGER_URL", &url)]).await;
    let ready = app.get("/health/ready", None, 200).await;
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    let agent = &ready["checks"]["agentManager"];
    assert_eq!(agent["status"], "down");
    assert_eq!(agent["critical"], false);
    assert!(
        agent.get("error").is_none(),
        "anonymous callers get no internals: {ready}"
    );
    // An admin sees why.
    let admin = app.admin().await;
    let ready = app.get("/health/ready", Some(&admin.access), 200).await;
    assert!(
        ready["checks"]["agentManager"]["error"].is_string(),
        "{ready}"
    );
    // A signed-in non-admin does not.
    let user = app.register().await;
    let ready = app.get("/health/ready", Some(&user.access), 200).await;
    assert!(ready["checks"]["agentManager"].get("error").is_none());
}

#[tokio::test]
async fn ready_is_503_when_redis_is_down() {
    let mut redis = OwnRedis::start();
    let app = TestApp::spawn_with(&[("REDIS_URL", &redis.url())]).await;
    assert_eq!(app.get("/health/ready", None, 200).await["status"], "ok");
    redis.stop();
    let ready = app.get("/health/ready", None, 503).await;
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(ready["checks"]["redis"]["status"], "down");
    assert_eq!(ready["checks"]["redis"]["critical"], true);
    assert!(ready["checks"]["redis"].get("error").is_none());
    // Liveness does not depend on anything.
    app.get("/health/live", None, 200).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    assert_eq!(
        error_code(&app.get("/api/nope", None, 404).await),
        "not_found"
    );
    let res = app
        .http
        .delete(format!("{}/api/auth/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "method_not_allowed");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(format!("{}/health/live", app.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app
        .http
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .unwrap();
    assert!(!res.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None, 200).await;
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/me",
        "/api/admin/users",
        "/health/ready",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// An agent-manager stand-in whose `/health` answers 200: the probe passes, so only
/// the breaker can make the agent `degraded`.
async fn healthy_agent_manager() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/health", axum::routing::get(|| async { "{}" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// An open hand-off breaker is reported, to anyone, and does not fail readiness; it
/// shows in `/metrics` too.
#[tokio::test]
async fn ready_reports_the_breaker_and_stays_200_while_it_is_open() {
    let url = healthy_agent_manager().await;
    let app = TestApp::spawn_with(&[
        ("AGENT_MANAGER_URL", &url),
        ("AGENT_BREAKER_THRESHOLD", "2"),
        ("AGENT_BREAKER_COOLDOWN_SECS", "3600"),
        ("METRICS_TOKEN", "health-test-metrics-token-0123"),
    ])
    .await;
    let ready = app.get("/health/ready", None, 200).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["checks"]["agentManager"]["status"], "up");
    assert_eq!(ready["checks"]["agentManager"]["breaker"], "closed");

    // Two failed hand-offs in a row open it (the threshold above).
    app.state.agent_breaker.failure();
    app.state.agent_breaker.failure();
    let ready = app.get("/health/ready", None, 200).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    let agent = &ready["checks"]["agentManager"];
    assert_eq!(agent["breaker"], "open", "{ready}");
    assert_eq!(agent["status"], "degraded");
    assert_eq!(agent["critical"], false);
    assert!(agent.get("error").is_none(), "{ready}");

    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth("health-test-metrics-token-0123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mocheong_chat_agent_breaker_state{state=\"open\"} 1"),
        "{metrics}"
    );

    // A successful hand-off closes it again.
    app.state.agent_breaker.success();
    let ready = app.get("/health/ready", None, 200).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["checks"]["agentManager"]["breaker"], "closed");
}
