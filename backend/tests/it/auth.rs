use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{JWT_SECRET, PASSWORD, TestApp, error_code, session_from, unique_email};

#[tokio::test]
async fn register_login_me_refresh_logout() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let reg = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": email.to_uppercase(), "password": PASSWORD, "displayName": "  신랑  "}),
            201,
        )
        .await;
    assert_eq!(reg["user"]["email"], email, "email stored lower-cased");
    assert_eq!(reg["user"]["displayName"], "신랑", "display name trimmed");
    assert_eq!(reg["user"]["role"], "user");
    assert_eq!(reg["tokenType"], "Bearer");
    assert!(reg.get("passwordHash").is_none() && reg["user"].get("passwordHash").is_none());

    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
            200,
        )
        .await;
    let s = session_from(&login);
    let me = app.get("/api/auth/me", Some(&s.access), 200).await;
    assert_eq!(me["id"], s.user_id);
    assert_eq!(me["email"], email);

    let refreshed = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            200,
        )
        .await;
    let s2 = session_from(&refreshed);
    assert_ne!(s2.refresh, s.refresh, "refresh token rotates");
    app.get("/api/auth/me", Some(&s2.access), 200).await;

    app.post(
        "/api/auth/logout",
        None,
        json!({"refreshToken": s2.refresh}),
        204,
    )
    .await;
    let after = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s2.refresh}),
            401,
        )
        .await;
    assert_eq!(error_code(&after), "invalid_refresh_token");
    // Logout is idempotent.
    app.post(
        "/api/auth/logout",
        None,
        json!({"refreshToken": s2.refresh}),
        204,
    )
    .await;
}

#[tokio::test]
async fn duplicate_email_is_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    let s = app.register().await;
    let body = app
        .post(
            "/api/auth/register",
            None,
            json!({"email": s.email.to_uppercase(), "password": PASSWORD, "displayName": "Other"}),
            409,
        )
        .await;
    assert_eq!(error_code(&body), "already_exists");
    assert_eq!(body["error"]["field"], "email");
}

#[tokio::test]
async fn weak_or_missing_fields_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let email = unique_email();
    let cases = [
        (
            json!({"email": email, "password": "short1", "displayName": "A"}),
            "password",
        ),
        (
            json!({"email": email, "password": "onlyletters", "displayName": "A"}),
            "password",
        ),
        (
            json!({"email": email, "password": "x".repeat(129) + "1", "displayName": "A"}),
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD, "displayName": "A"}),
            "email",
        ),
        (
            json!({"email": email, "password": PASSWORD, "displayName": "   "}),
            "displayName",
        ),
        (json!({"email": email, "password": PASSWORD}), "displayName"),
        (json!({"password": PASSWORD, "displayName": "A"}), "email"),
        (
            json!({"email": email, "password": 12345678, "displayName": "A"}),
            "password",
        ),
    ];
    for (body, field) in cases {
        let out = app
            .post("/api/auth/register", None, body.clone(), 422)
            .await;
        assert_eq!(error_code(&out), "validation_failed", "{body}");
        assert_eq!(out["error"]["field"], field, "{body} -> {out}");
    }
    // None of those created the account.
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
        401,
    )
    .await;
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_are_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(format!("{}/api/auth/login", app.base))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_json");

    let res = app
        .http
        .post(format!("{}/api/auth/login", app.base))
        .header("content-type", "text/plain")
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "unsupported_media_type");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_the_same() {
    let app = TestApp::spawn().await;
    let s = app.register().await;
    let wrong_pw = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": s.email, "password": "wrong password 1"}),
            401,
        )
        .await;
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": unique_email(), "password": PASSWORD}),
            401,
        )
        .await;
    assert_eq!(wrong_pw, unknown);
    assert_eq!(error_code(&wrong_pw), "invalid_credentials");
}

fn claims_for(user_id: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user_id, "role": "user", "iat": now, "exp": now + exp_offset,
           "iss": "mocheong", "aud": "mocheong-api"})
}

fn sign(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_and_tampered_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let s = app.register().await;
    // A token we sign correctly is accepted: the forgeries below fail for their flaw only.
    let good = sign(Algorithm::HS256, JWT_SECRET, &claims_for(&s.user_id, 300));
    app.get("/api/auth/me", Some(&good), 200).await;

    let expired = sign(Algorithm::HS256, JWT_SECRET, &claims_for(&s.user_id, -120));
    let body = app.get("/api/auth/me", Some(&expired), 401).await;
    assert_eq!(error_code(&body), "token_expired");

    let other_key = sign(
        Algorithm::HS256,
        "another-secret-another-secret-0000",
        &claims_for(&s.user_id, 300),
    );
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&other_key), 401).await),
        "invalid_token"
    );

    // Right key, but another algorithm: the algorithm is pinned to HS256.
    let hs512 = sign(Algorithm::HS512, JWT_SECRET, &claims_for(&s.user_id, 300));
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&hs512), 401).await),
        "invalid_token"
    );

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims_for(&s.user_id, 300).to_string());
    let alg_none = format!("{none_header}.{payload}.");
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&alg_none), 401).await),
        "invalid_token"
    );

    // Tampered payload: promote ourselves to admin, keep the original signature.
    let parts: Vec<&str> = s.access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&tampered), 401).await),
        "invalid_token"
    );

    let mut wrong_aud = claims_for(&s.user_id, 300);
    wrong_aud["aud"] = json!("someone-else");
    let wrong_aud = sign(Algorithm::HS256, JWT_SECRET, &wrong_aud);
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&wrong_aud), 401).await),
        "invalid_token"
    );

    let mut wrong_iss = claims_for(&s.user_id, 300);
    wrong_iss["iss"] = json!("evil");
    let wrong_iss = sign(Algorithm::HS256, JWT_SECRET, &wrong_iss);
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&wrong_iss), 401).await),
        "invalid_token"
    );

    assert_eq!(
        error_code(&app.get("/api/auth/me", None, 401).await),
        "missing_token"
    );
    assert_eq!(
        error_code(&app.get("/api/auth/me", Some("garbage"), 401).await),
        "invalid_token"
    );
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let s = app.register().await;
    let r1 = session_from(
        &app.post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            200,
        )
        .await,
    );
    // The attacker replays the first token after the reuse grace window...
    pretend_rotations_are_old(&app, &s.user_id).await;
    let body = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            401,
        )
        .await;
    assert_eq!(error_code(&body), "invalid_refresh_token");
    // ...and now the legitimate successor is dead too.
    app.post(
        "/api/auth/refresh",
        None,
        json!({"refreshToken": r1.refresh}),
        401,
    )
    .await;
    // Another session of the same user (another family) is untouched.
    let other = session_from(
        &app.post(
            "/api/auth/login",
            None,
            json!({"email": s.email, "password": PASSWORD}),
            200,
        )
        .await,
    );
    app.post(
        "/api/auth/refresh",
        None,
        json!({"refreshToken": other.refresh}),
        200,
    )
    .await;
}

/// Moves every rotation of the user's tokens an hour into the past: past the reuse
/// grace window, without the test waiting for it.
async fn pretend_rotations_are_old(app: &TestApp, user_id: &str) {
    use backend::db::refresh_token;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::hours(1)),
        )
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::ReplacedBy.is_not_null())
        .exec(&app.state.db)
        .await
        .unwrap();
}

async fn refresh_status(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}/api/auth/refresh", app.base))
        .json(&json!({"refreshToken": token}))
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_share_one_successor() {
    // Two tabs (here four) holding the same stored token refresh at the same moment.
    let app = TestApp::spawn().await;
    let s = app.register().await;
    let outs = futures::future::join_all((0..4).map(|_| refresh_status(&app, &s.refresh))).await;
    for (status, body) in &outs {
        assert_eq!(*status, 200, "{body}");
    }
    let successors: Vec<&str> = outs
        .iter()
        .map(|(_, b)| b["refreshToken"].as_str().unwrap())
        .collect();
    assert!(
        successors.iter().all(|t| *t == successors[0]),
        "{successors:?}"
    );
    assert_ne!(successors[0], s.refresh);
    // The session lives on: the shared successor rotates normally and every tab's
    // access token works.
    for (_, body) in &outs {
        app.get("/api/auth/me", body["accessToken"].as_str(), 200)
            .await;
    }
    let next = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": successors[0]}),
            200,
        )
        .await;
    app.post(
        "/api/auth/refresh",
        None,
        json!({"refreshToken": next["refreshToken"]}),
        200,
    )
    .await;
}

#[tokio::test]
async fn a_late_tab_within_the_grace_window_gets_the_live_token() {
    let app = TestApp::spawn().await;
    let s = app.register().await;
    let r1 = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            200,
        )
        .await;
    let r2 = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": r1["refreshToken"]}),
            200,
        )
        .await;
    // The other tab still holds the first token: it joins the session where it is now.
    let late = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            200,
        )
        .await;
    assert_eq!(late["refreshToken"], r2["refreshToken"]);
    app.post(
        "/api/auth/refresh",
        None,
        json!({"refreshToken": r2["refreshToken"]}),
        200,
    )
    .await;
}

#[tokio::test]
async fn grace_window_does_not_outlive_logout_or_its_length() {
    let app = TestApp::spawn().await;
    // Logout within the window ends the session for the rotated token too.
    let s = app.register().await;
    let r1 = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            200,
        )
        .await;
    app.post(
        "/api/auth/logout",
        None,
        json!({"refreshToken": r1["refreshToken"]}),
        204,
    )
    .await;
    let (status, body) = refresh_status(&app, &s.refresh).await;
    assert_eq!((status, error_code(&body)), (401, "invalid_refresh_token"));

    // With the window off (0 s), the second of two concurrent uses is reuse: one
    // succeeds and the family, the winner's token included, is revoked.
    let strict = TestApp::spawn_with(&[("REFRESH_REUSE_GRACE_SECS", "0")]).await;
    let s = strict.register().await;
    let (a, b) = tokio::join!(
        refresh_status(&strict, &s.refresh),
        refresh_status(&strict, &s.refresh)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
    let winner = if a.0 == 200 { a.1 } else { b.1 };
    let (status, _) = refresh_status(&strict, winner["refreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn login_is_rate_limited_per_account() {
    let app = TestApp::spawn_with(&[("LOGIN_RATE_PER_ACCOUNT", "3")]).await;
    let s = app.register().await;
    // Raw requests: the helper would assert one status, this loop wants to see each.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = app
            .http
            .post(format!("{}/api/auth/login", app.base))
            .json(&json!({"email": s.email.to_uppercase(), "password": "wrong password 1"}))
            .send()
            .await
            .unwrap();
        statuses.push((
            res.status().as_u16(),
            res.headers().get("retry-after").is_some(),
        ));
    }
    assert_eq!(
        statuses,
        [(401, false), (401, false), (401, false), (429, true)]
    );
    // Even the right password is refused while the account is throttled.
    let body = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": s.email, "password": PASSWORD}),
            429,
        )
        .await;
    assert_eq!(error_code(&body), "rate_limited");
    // Another account from the same IP is not affected.
    let other = app.register().await;
    app.post(
        "/api/auth/login",
        None,
        json!({"email": other.email, "password": PASSWORD}),
        200,
    )
    .await;
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let app = TestApp::spawn_with(&[("LOGIN_RATE_PER_IP", "3")]).await;
    for _ in 0..3 {
        app.post(
            "/api/auth/login",
            None,
            json!({"email": unique_email(), "password": PASSWORD}),
            401,
        )
        .await;
    }
    app.post(
        "/api/auth/login",
        None,
        json!({"email": unique_email(), "password": PASSWORD}),
        429,
    )
    .await;
}

#[tokio::test]
async fn suspended_account_loses_access_and_refresh_at_once() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
    let app = TestApp::spawn().await;
    let s = app.register().await;
    let row = backend::db::user::Entity::find_by_id(s.user_id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut active = row.into_active_model();
    active.status = Set(backend::db::user::Status::Suspended);
    active.update(&app.state.db).await.unwrap();

    assert_eq!(
        error_code(&app.get("/api/auth/me", Some(&s.access), 403).await),
        "account_suspended"
    );
    let body = app
        .post(
            "/api/auth/refresh",
            None,
            json!({"refreshToken": s.refresh}),
            403,
        )
        .await;
    assert_eq!(error_code(&body), "account_suspended");
    let body = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": s.email, "password": PASSWORD}),
            403,
        )
        .await;
    assert_eq!(error_code(&body), "account_suspended");
}

#[tokio::test]
async fn create_admin_command_creates_then_promotes() {
    let email = unique_email();
    let db_url = crate::common::database_url();
    let run = |email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_backend"))
            .args(["create-admin", "--email", email, "--name", "운영자"])
            .env("DATABASE_URL", db_url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("ADMIN_PASSWORD", PASSWORD)
            .env("DATA_DIR", std::env::temp_dir().join("mocheong-it-data"))
            .output()
            .unwrap()
    };
    let out = run(&email);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created"));

    let app = TestApp::spawn().await;
    let admin = session_from(
        &app.post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
            200,
        )
        .await,
    );
    let me = app.get("/api/auth/me", Some(&admin.access), 200).await;
    assert_eq!(me["role"], "admin");

    // An existing ordinary account is promoted, not duplicated.
    let user = app.register().await;
    let out = run(&user.email);
    assert!(String::from_utf8_lossy(&out.stdout).contains("promoted"));
    assert_eq!(
        app.get("/api/auth/me", Some(&user.access), 200).await["role"],
        "admin"
    );
}

#[tokio::test]
async fn there_is_no_open_endpoint_that_makes_an_admin() {
    let app = TestApp::spawn().await;
    let body =
        json!({"email": unique_email(), "password": PASSWORD, "displayName": "X", "role": "admin"});
    let out = app
        .call(Method::POST, "/api/auth/register", None, Some(body), 201)
        .await;
    assert_eq!(
        out["user"]["role"], "user",
        "a client cannot choose its role"
    );
}
