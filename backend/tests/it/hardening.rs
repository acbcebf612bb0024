//! Bounded expensive work (argon2, image decodes) and input hardening: each test is
//! the regression test of one finding of the attack review.

use image::ImageFormat;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use crate::{
    common::{PASSWORD, TestApp, error_code},
    files::{Backend, form, picture, send_form, spawn},
};

#[tokio::test]
async fn a_pixel_flood_is_refused_from_its_header() {
    // 200×100 = 20 000 pixels against a limit of 10 000.
    let app = spawn(Backend::Local, &[("FILES_MAX_IMAGE_PIXELS", "10000")]).await;
    let user = app.register().await;
    let png = picture(200, 100, ImageFormat::Png);
    let err = send_form(
        &app,
        &user.access,
        form("cover", "big.png", "image/png", png),
        422,
    )
    .await;
    assert_eq!(error_code(&err), "image_too_large");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("200×100")
    );
    let small = picture(100, 100, ImageFormat::Png);
    send_form(
        &app,
        &user.access,
        form("cover", "ok.png", "image/png", small),
        201,
    )
    .await;
}

#[tokio::test]
async fn a_truncated_jpeg_is_not_a_picture() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let jpeg = crate::files::jpeg();
    let cut = jpeg[..jpeg.len() * 4 / 10].to_vec();
    let err = send_form(
        &app,
        &user.access,
        form("gallery", "cut.jpg", "image/jpeg", cut),
        415,
    )
    .await;
    assert_eq!(error_code(&err), "invalid_image");
}

#[tokio::test]
async fn decodes_beyond_the_queue_are_answered_503_at_once() {
    let app = spawn(
        Backend::Local,
        &[
            ("FILES_DECODE_CONCURRENCY", "1"),
            ("FILES_DECODE_QUEUE", "0"),
        ],
    )
    .await;
    let user = app.register().await;
    let png = picture(64, 64, ImageFormat::Png);
    // Another decode holds the only turn, and nobody may wait: refused, not queued.
    let held = app.state.decodes.enter().await.unwrap();
    let res = app
        .http
        .post(format!("{}/api/files", app.base))
        .bearer_auth(&user.access)
        .multipart(form("cover", "a.png", "image/png", png.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()[RETRY_AFTER], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "busy");
    drop(held);
    send_form(
        &app,
        &user.access,
        form("cover", "a.png", "image/png", png),
        201,
    )
    .await;
}

#[tokio::test]
async fn n_plus_one_concurrent_decodes_never_run_n_plus_one_at_once() {
    const N: usize = 2;
    let app = spawn(
        Backend::Local,
        &[
            ("FILES_DECODE_CONCURRENCY", "2"),
            ("FILES_DECODE_QUEUE", "8"),
        ],
    )
    .await;
    let user = app.register().await;
    let png = picture(1200, 900, ImageFormat::Png);
    let uploads = (0..=N).map(|i| {
        let f = form("cover", &format!("p{i}.png"), "image/png", png.clone());
        send_form(&app, &user.access, f, 201)
    });
    futures::future::join_all(uploads).await;
    let peak = app.state.decodes.peak();
    assert!((1..=N).contains(&peak), "{peak} decodes ran at once");
    assert_eq!(app.state.decodes.in_flight(), 0);
}

#[tokio::test]
async fn password_checks_beyond_the_queue_are_answered_503_at_once() {
    let app = TestApp::spawn_with(&[("ARGON2_CONCURRENCY", "1"), ("ARGON2_QUEUE", "0")]).await;
    let user = app.register().await;
    let held = app.state.argon2.enter().await.unwrap();
    let login = json!({"email": user.email, "password": PASSWORD});
    let res = app
        .http
        .post(format!("{}/api/auth/login", app.base))
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key(RETRY_AFTER));
    drop(held);
    app.post("/api/auth/login", None, login, 200).await;
    assert_eq!(app.state.argon2.peak(), 1);
}

#[tokio::test]
async fn oversized_raw_bodies_get_the_json_413() {
    let app = TestApp::spawn().await;
    let user = app.register().await;
    let big = vec![b'a'; 2 * 1024 * 1024];
    for (path, mime, token) in [
        ("/api/payments/webhook", "application/json", None),
        (
            "/api/pages/nope/invitations/import",
            "text/csv",
            Some(user.access.as_str()),
        ),
    ] {
        let mut req = app
            .http
            .post(format!("{}{path}", app.base))
            .header("content-type", mime)
            .body(big.clone());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 413, "{path}");
        let body: Value = res.json().await.expect("a JSON error body");
        assert_eq!(error_code(&body), "payload_too_large", "{path}");
    }
}

#[tokio::test]
async fn bidi_and_invisible_characters_leave_file_names() {
    let app = spawn(Backend::Local, &[]).await;
    let user = app.register().await;
    let png = picture(32, 32, ImageFormat::Png);
    // Shown as "invoicegnp.png" without the override; with it, spoofed.
    let name = "invoice\u{202E}gnp\u{200B}.png";
    let out = send_form(
        &app,
        &user.access,
        form("cover", name, "image/png", png),
        201,
    )
    .await;
    assert_eq!(out["name"], "invoicegnp.png", "{out}");
}

fn token_with(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::common::JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_not_yet_valid_or_issued_in_the_future_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.register().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |iat: i64, nbf: Option<i64>| {
        let mut c = json!({"sub": user.user_id, "role": "user", "iat": iat, "exp": now + 3600,
            "iss": "mocheong", "aud": "mocheong-api"});
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        }
        c
    };
    // The same claims, valid now, pass: the refusals below are for nbf / iat only.
    let ok = token_with(claims(now, Some(now)));
    app.get("/api/auth/me", Some(&ok), 200).await;
    for bad in [claims(now, Some(now + 600)), claims(now + 600, None)] {
        let err = app.get("/api/auth/me", Some(&token_with(bad)), 401).await;
        assert_eq!(error_code(&err), "invalid_token");
    }
}

#[tokio::test]
async fn failed_logins_from_one_ip_do_not_lock_the_owner_out() {
    let app = TestApp::spawn_with(&[
        ("TRUST_PROXY", "true"),
        // Today's per-account limit, as configured in production.
        ("LOGIN_RATE_PER_ACCOUNT", "5"),
        ("LOGIN_FREE_FAILURES", "3"),
    ])
    .await;
    let owner = app.register().await;
    let login = |ip: &'static str, password: &'static str| {
        app.http
            .post(format!("{}/api/auth/login", app.base))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": owner.email, "password": password}))
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            login("203.0.113.7", "wrong password 1")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    // Three free failures, then the attacker's IP must wait.
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "{statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    let res = login("203.0.113.7", PASSWORD).await.unwrap();
    assert_eq!(
        res.status(),
        429,
        "the back-off holds even for the right password"
    );
    assert!(res.headers().contains_key(RETRY_AFTER));
    // The owner, from their own address, logs in at once.
    let res = login("198.51.100.20", PASSWORD).await.unwrap();
    assert_eq!(res.status(), 200);
}
