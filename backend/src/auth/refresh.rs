//! Rotating refresh tokens.
//!
//! A refresh token is 32 random bytes (base64url); only its SHA-256 is stored. Every
//! use rotates it: the old row is marked revoked and points at its successor. All
//! tokens minted from one login share a family; presenting a token that was already
//! rotated means it was stolen (or replayed), so the whole family is revoked.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
    sea_query::{Expr, IntoCondition},
};
use sha2::{Digest, Sha256};

use crate::{
    db::{
        new_id,
        refresh_token::{self, Entity as RefreshTokens},
        user::{self, Status},
    },
    error::{Error, Result},
};

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn invalid() -> Error {
    Error::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
        "refresh token is invalid, expired or revoked",
    )
}

/// Mints the first token of a new family (a fresh login).
pub async fn issue<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    ttl: std::time::Duration,
) -> Result<String> {
    insert_token(db, user_id, &new_id(), &new_id(), ttl).await
}

async fn insert_token<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    id: &str,
    family_id: &str,
    ttl: std::time::Duration,
) -> Result<String> {
    let token = generate_token();
    let ttl = chrono::Duration::from_std(ttl).map_err(Error::internal)?;
    refresh_token::ActiveModel {
        id: Set(id.to_owned()),
        user_id: Set(user_id.to_owned()),
        family_id: Set(family_id.to_owned()),
        token_hash: Set(hash_token(&token)),
        expires_at: Set(Utc::now() + ttl),
        revoked_at: Set(None),
        replaced_by: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Exchanges a refresh token for a new one. Returns the user and the new token.
pub async fn rotate(
    db: &DatabaseConnection,
    presented: &str,
    ttl: std::time::Duration,
) -> Result<(user::Model, String)> {
    let txn = crate::db::begin_write(db).await?;
    let Some(row) = RefreshTokens::find()
        .filter(refresh_token::Column::TokenHash.eq(hash_token(presented)))
        .one(&txn)
        .await?
    else {
        return Err(invalid());
    };

    let user = user::Entity::find_by_id(row.user_id.clone())
        .one(&txn)
        .await?
        .ok_or_else(invalid)?;
    // Checked first: suspension revokes every token, and the client should learn why
    // its session ended rather than see a generic invalid token.
    if user.status != Status::Active {
        return Err(Error::forbidden("account is suspended").into_code("account_suspended"));
    }
    if row.revoked_at.is_some() {
        revoke_family(&txn, &row.family_id).await?;
        txn.commit().await?;
        tracing::warn!(user_id = %row.user_id, family_id = %row.family_id, "refresh token reuse; family revoked");
        return Err(invalid());
    }
    if row.expires_at <= Utc::now() {
        return Err(invalid());
    }

    // Conditional update: of two concurrent uses of one token only one can win; the
    // loser sees zero rows changed and is treated as reuse.
    let successor_id = new_id();
    let updated = RefreshTokens::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .col_expr(
            refresh_token::Column::ReplacedBy,
            Expr::value(successor_id.clone()),
        )
        .col_expr(refresh_token::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::Id.eq(row.id.clone()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        revoke_family(&txn, &row.family_id).await?;
        txn.commit().await?;
        return Err(invalid());
    }
    let token = insert_token(&txn, &user.id, &successor_id, &row.family_id, ttl).await?;
    txn.commit().await?;
    Ok((user, token))
}

/// Logout: revokes the family the presented token belongs to. Unknown tokens are
/// ignored so that logout is idempotent.
pub async fn revoke(db: &DatabaseConnection, presented: &str) -> Result<()> {
    if let Some(row) = RefreshTokens::find()
        .filter(refresh_token::Column::TokenHash.eq(hash_token(presented)))
        .one(db)
        .await?
    {
        revoke_family(db, &row.family_id).await?;
    }
    Ok(())
}

async fn revoke_family<C: ConnectionTrait>(db: &C, family_id: &str) -> Result<()> {
    revoke_where(db, refresh_token::Column::FamilyId.eq(family_id)).await
}

/// Revokes every refresh token of a user (suspension, password change).
pub async fn revoke_all_for_user<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<()> {
    revoke_where(db, refresh_token::Column::UserId.eq(user_id)).await
}

async fn revoke_where<C: ConnectionTrait>(db: &C, which: impl IntoCondition) -> Result<()> {
    let now = Utc::now();
    RefreshTokens::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .col_expr(refresh_token::Column::UpdatedAt, Expr::value(now))
        .filter(which)
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
