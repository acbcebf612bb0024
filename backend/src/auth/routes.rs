use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::{Validate, ValidationError};

use super::{AuthUser, password, refresh};
use crate::{
    db::{
        new_id,
        user::{self, Role, Status, normalize_email},
    },
    error::{Error, ErrorBody, Result, ResultExt},
    extract::{ClientIp, ValidatedJson},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh_session))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"email": "minsu@example.com", "password": "wedding2027!", "displayName": "김민수"}))]
pub struct RegisterIn {
    #[validate(email(message = "must be a valid email address"), length(max = 320))]
    #[schema(max_length = 320, format = Email)]
    pub email: String,
    /// At least 8 characters, with a letter and a digit or symbol; at most 128.
    #[validate(custom(function = "strong_password"))]
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[validate(custom(function = "display_name"))]
    #[schema(min_length = 1, max_length = 50)]
    pub display_name: String,
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"email": "minsu@example.com", "password": "wedding2027!"}))]
pub struct LoginIn {
    #[validate(length(min = 1, max = 320))]
    #[schema(min_length = 1, max_length = 320)]
    pub email: String,
    #[validate(length(min = 1, max = 1024))]
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshIn {
    #[validate(length(min = 1, max = 256))]
    #[schema(min_length = 1, max_length = 256)]
    pub refresh_token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: Status,
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for UserOut {
    fn from(u: user::Model) -> Self {
        UserOut {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            role: u.role,
            status: u.status,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthOut {
    pub user: UserOut,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

fn strong_password(pw: &str) -> std::result::Result<(), ValidationError> {
    let len = pw.chars().count();
    let has_letter = pw.chars().any(char::is_alphabetic);
    let has_other = pw.chars().any(|c| !c.is_alphabetic());
    if !(8..=128).contains(&len) {
        return Err(
            ValidationError::new("length").with_message("must be 8 to 128 characters".into())
        );
    }
    if !(has_letter && has_other) {
        return Err(ValidationError::new("weak")
            .with_message("must contain a letter and a digit or symbol".into()));
    }
    Ok(())
}

fn display_name(name: &str) -> std::result::Result<(), ValidationError> {
    let len = name.trim().chars().count();
    if !(1..=50).contains(&len) || name.chars().any(char::is_control) {
        return Err(ValidationError::new("display_name")
            .with_message("must be 1 to 50 printable characters".into()));
    }
    Ok(())
}

fn auth_out(state: &AppState, user: user::Model, refresh_token: String) -> Result<AuthOut> {
    let access_token = state.jwt.issue(&user.id, user.role)?;
    Ok(AuthOut {
        user: user.into(),
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl.as_secs(),
    })
}

/// Create an account and start a session.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterIn,
    responses((status = 201, body = AuthOut), (status = 409, description = "email taken", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(input): ValidatedJson<RegisterIn>,
) -> Result<(StatusCode, Json<AuthOut>)> {
    state.limiters.login_ip.check(&ip)?;
    let hash = password::hash(&state.argon2, input.password).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    let user = user::ActiveModel {
        id: Set(new_id()),
        email: Set(normalize_email(&input.email)),
        password_hash: Set(hash),
        display_name: Set(input.display_name.trim().to_owned()),
        role: Set(Role::User),
        status: Set(Status::Active),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .on_unique_violation("email", "an account with this email already exists")?;
    let token = refresh::issue(&txn, &user.id, state.cfg.refresh_token_ttl).await?;
    txn.commit().await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(auth_out(&state, user, token)?)))
}

/// Exchange email and password for an access token and a refresh token.
///
/// A wrong email and a wrong password give the same answer. Attempts are limited per
/// account and per client IP (429 with `Retry-After`).
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginIn,
    responses((status = 200, body = AuthOut), (status = 401, body = ErrorBody),
        (status = 403, description = "account suspended", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidatedJson(input): ValidatedJson<LoginIn>,
) -> Result<Json<AuthOut>> {
    let email = normalize_email(&input.email);
    state.limiters.login_ip.check(&ip)?;
    state.limiters.login_account.check(&email)?;
    let found = user::find_by_email(&state.db, &email).await?;
    let stored = found.as_ref().map(|u| u.password_hash.clone());
    if !password::verify(&state.argon2, input.password, stored).await? {
        return Err(
            Error::unauthorized("email or password is incorrect").into_code("invalid_credentials")
        );
    }
    let user = found.ok_or_else(|| Error::internal(anyhow::anyhow!("verified without a user")))?;
    if user.status != Status::Active {
        return Err(Error::forbidden("account is suspended").into_code("account_suspended"));
    }
    let token = refresh::issue(&state.db, &user.id, state.cfg.refresh_token_ttl).await?;
    Ok(Json(auth_out(&state, user, token)?))
}

/// Rotate a refresh token: the presented token is spent and a new pair returned.
/// Presenting it again within `REFRESH_REUSE_GRACE_SECS` (another tab refreshing at
/// the same moment) returns the same successor; later, it revokes every token of that
/// session.
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshIn,
    responses((status = 200, body = AuthOut), (status = 401, body = ErrorBody)))]
async fn refresh_session(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<RefreshIn>,
) -> Result<Json<AuthOut>> {
    let (user, token) = refresh::rotate(&state.db, &input.refresh_token, &state.cfg).await?;
    Ok(Json(auth_out(&state, user, token)?))
}

/// End the session the refresh token belongs to. Idempotent.
#[utoipa::path(post, path = "/logout", tag = "auth", request_body = RefreshIn,
    responses((status = 204, description = "session ended")))]
async fn logout(
    State(state): State<AppState>,
    ValidatedJson(input): ValidatedJson<RefreshIn>,
) -> Result<StatusCode> {
    refresh::revoke(&state.db, &input.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The authenticated user.
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserOut), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<UserOut>> {
    let user = user::Entity::find_by_id(auth.id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("user"))?;
    Ok(Json(user.into()))
}

/// The `create-admin` command: creates an admin, or promotes an existing account.
/// Returns whether a new account was created.
pub async fn create_or_promote_admin(
    db: &DatabaseConnection,
    email: &str,
    display_name_in: &str,
    password_in: &str,
) -> anyhow::Result<bool> {
    use sea_orm::IntoActiveModel;
    if let Some(existing) = user::find_by_email(db, email).await? {
        let mut active = existing.into_active_model();
        active.role = Set(Role::Admin);
        active.update(db).await?;
        return Ok(false);
    }
    strong_password(password_in)
        .map_err(|e| anyhow::anyhow!("password {}", e.message.unwrap_or_default()))?;
    display_name(display_name_in)
        .map_err(|e| anyhow::anyhow!("name {}", e.message.unwrap_or_default()))?;
    if !validator::ValidateEmail::validate_email(&email) {
        anyhow::bail!("email is not a valid address");
    }
    user::ActiveModel {
        id: Set(new_id()),
        email: Set(normalize_email(email)),
        password_hash: Set({
            let pw = password_in.to_owned();
            tokio::task::spawn_blocking(move || password::hash_blocking(&pw)).await??
        }),
        display_name: Set(display_name_in.trim().to_owned()),
        role: Set(Role::Admin),
        status: Set(Status::Active),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(true)
}
