//! `GET /metrics`: protected by its token, in the Prometheus text format, and its
//! figures move with traffic.

use crate::{
    common::TestApp,
    events::{Cred, open},
};

const TOKEN: &str = "metrics-test-token-0123456789";

async fn scrape(app: &TestApp) -> String {
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    res.text().await.unwrap()
}

/// The value of the sample named `name` whose labels include every pair of `labels`
/// (0 when there is none yet).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_are_off_without_a_token_and_refused_with_a_wrong_one() {
    let app = TestApp::spawn().await;
    app.get("/metrics", None, 404).await;
    let app = TestApp::spawn_with(&[("METRICS_TOKEN", TOKEN)]).await;
    app.get("/metrics", None, 401).await;
    app.get("/metrics", Some("wrong-token-0123456789"), 401)
        .await;
}

#[tokio::test]
async fn http_requests_streams_and_the_pool_show_in_the_scrape() {
    let app = TestApp::spawn_with(&[("METRICS_TOKEN", TOKEN)]).await;
    let route = [
        ("route", "/api/auth/me"),
        ("status", "401"),
        ("method", "GET"),
    ];
    let before = scrape(&app).await;
    for _ in 0..3 {
        app.get("/api/auth/me", None, 401).await;
    }
    let user = app.register().await;
    let _stream = open(&app, Cred::Bearer(&user.access), None).await;

    let after = scrape(&app).await;
    let counted = sample(&after, "mocheong_http_requests_total", &route)
        - sample(&before, "mocheong_http_requests_total", &route);
    // Other tests of this process may call the same route; never fewer than ours.
    assert!(
        counted >= 3.0,
        "{counted} new 401s on /api/auth/me:\n{after}"
    );
    assert!(
        sample(
            &after,
            "mocheong_http_request_duration_seconds_count",
            &[("route", "/api/auth/me")]
        ) >= 3.0
    );
    assert!(
        after.contains("mocheong_http_request_duration_seconds_bucket{"),
        "latency is a histogram"
    );
    assert!(
        sample(&after, "mocheong_sse_streams", &[]) >= 1.0,
        "{after}"
    );
    assert!(sample(&after, "mocheong_db_pool_max_connections", &[]) >= 1.0);
    assert!(after.contains("mocheong_db_pool_connections{state=\"idle\"}"));
    assert!(after.contains("mocheong_socketio_sockets"));
    // Labels carry route patterns, never raw ids.
    assert!(!after.contains(&user.user_id));
}
