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
