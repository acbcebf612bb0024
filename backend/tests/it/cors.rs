//! A browser on another origin (the Next.js app, the reference web client): the CORS
//! preflight and a Socket.IO handshake over the polling transport — what
//! `io(url + "/chat")` with default transports does before it upgrades to a websocket.

use reqwest::{Method, Response, header};
use serde_json::{Value, json};

use crate::common::TestApp;

const ORIGIN: &str = "http://localhost:3001";

async fn cross_origin_app() -> TestApp {
    TestApp::spawn_with(&[(
        "CORS_ORIGINS",
        "http://localhost:3001, https://admin.example",
    )])
    .await
}

fn header_of(res: &Response, name: header::HeaderName) -> String {
    res.headers()
        .get(&name)
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default()
}

fn assert_allowed(res: &Response) {
    assert_eq!(
        header_of(res, header::ACCESS_CONTROL_ALLOW_ORIGIN),
        ORIGIN,
        "{:?}",
        res.headers()
    );
    assert_eq!(
        header_of(res, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        "true"
    );
}

async fn preflight(app: &TestApp, path: &str, method: &str, headers: &str) -> Response {
    app.http
        .request(Method::OPTIONS, format!("{}{path}", app.base))
        .header(header::ORIGIN, ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rest_preflight_allows_spa_headers_and_exposes_request_id() {
    let app = cross_origin_app().await;
    let res = preflight(
        &app,
        "/api/auth/login",
        "POST",
        "authorization,content-type,x-request-id,accept-language",
    )
    .await;
    assert!(res.status().is_success(), "preflight: {}", res.status());
    assert_allowed(&res);
    let allowed = header_of(&res, header::ACCESS_CONTROL_ALLOW_HEADERS);
    for h in [
        "authorization",
        "content-type",
        "x-request-id",
        "accept-language",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert!(header_of(&res, header::ACCESS_CONTROL_ALLOW_METHODS).contains("patch"));

    // The actual request: the page's script may read the request id and Retry-After.
    let res = app
        .http
        .post(format!("{}/api/auth/login", app.base))
        .header(header::ORIGIN, ORIGIN)
        .json(&json!({"email": "nobody@example.com", "password": "wrong password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_allowed(&res);
    let exposed = header_of(&res, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
    assert!(res.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn unknown_origin_gets_no_cors_grant() {
    let app = cross_origin_app().await;
    let res = app
        .http
        .get(format!("{}/health/live", app.base))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !res.headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
    let res = app
        .http
        .get(format!("{}/socket.io/?EIO=4&transport=polling", app.base))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !res.headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

/// Engine.IO v4 packets of one polling response (separated by the record separator).
fn packets(body: &str) -> Vec<String> {
    body.split('\u{1e}').map(str::to_owned).collect()
}

#[tokio::test]
async fn socketio_polling_handshake_works_cross_origin() {
    let app = cross_origin_app().await;
    let user = app.register().await;
    let polling = format!("{}/socket.io/?EIO=4&transport=polling", app.base);

    // socket.io-client with `withCredentials` or extra headers sends a preflight first.
    let res = preflight(
        &app,
        "/socket.io/?EIO=4&transport=polling",
        "POST",
        "content-type",
    )
    .await;
    assert!(res.status().is_success(), "preflight: {}", res.status());
    assert_allowed(&res);

    // Engine.IO open.
    let res = app
        .http
        .get(&polling)
        .header(header::ORIGIN, ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_allowed(&res);
    let body = res.text().await.unwrap();
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    assert_eq!(open["upgrades"], json!(["websocket"]));
    let session = format!("{polling}&sid={sid}");

    // Socket.IO connect to /chat with the access token, as the client's `auth` option.
    let connect = format!("40/chat,{}", json!({"token": user.access}));
    let res = app
        .http
        .post(&session)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(connect)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_allowed(&res);

    // The namespace accepts the connection: `40/chat,{"sid":…}`. A ping may come
    // first; it is answered as a client would.
    let mut seen = Vec::new();
    let mut accepted = None;
    for _ in 0..5 {
        let res = app
            .http
            .get(&session)
            .header(header::ORIGIN, ORIGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_allowed(&res);
        for p in packets(&res.text().await.unwrap()) {
            if p == "2" {
                app.http
                    .post(&session)
                    .header(header::ORIGIN, ORIGIN)
                    .body("3")
                    .send()
                    .await
                    .unwrap();
            }
            if let Some(ack) = p.strip_prefix("40/chat,") {
                accepted = Some(ack.to_owned());
            }
            seen.push(p);
        }
        if accepted.is_some() {
            break;
        }
    }
    let accepted = accepted.unwrap_or_else(|| panic!("no connect ack in {seen:?}"));
    let accepted: Value = serde_json::from_str(&accepted).unwrap();
    assert!(accepted["sid"].is_string(), "{accepted}");
}
