//! Typed authentication: a handler that takes [`AuthUser`] or [`AdminUser`] cannot run
//! for a caller without a valid access token (or, for admins, the admin role).

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use sea_orm::EntityTrait;

use crate::{
    db::user::{self, Role, Status},
    error::Error,
    state::AppState,
};

/// The caller, authenticated by `Authorization: Bearer <access JWT>`.
///
/// The token's signature and claims are checked, then the user row is read: a
/// suspended or deleted account stops working at once, and the role comes from the
/// database, not from the (possibly older) token.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// An authenticated caller with the admin role; anyone else gets 403.
#[derive(Clone, Debug)]
pub struct AdminUser(pub AuthUser);

pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Resolves an access token to an active user; shared with the socket handshake.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, Error> {
    let claims = state.jwt.verify(token)?;
    let row = user::Entity::find_by_id(claims.sub)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::unauthorized("invalid access token").into_code("invalid_token"))?;
    if row.status != Status::Active {
        return Err(Error::forbidden("account is suspended").into_code("account_suspended"));
    }
    Ok(AuthUser {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        role: row.role,
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let token = bearer_token(parts).ok_or_else(|| {
            Error::unauthorized("missing bearer token").into_code("missing_token")
        })?;
        let user = authenticate(state, token).await?;
        tracing::Span::current().record("user_id", user.id.as_str());
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(Error::forbidden("admin role required"));
        }
        Ok(AdminUser(user))
    }
}

impl From<user::Model> for AuthUser {
    fn from(u: user::Model) -> Self {
        AuthUser {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            role: u.role,
        }
    }
}
