//! Rotating refresh tokens.
//!
//! A refresh token is 32 random bytes (base64url); only its SHA-256 is stored. Every
//! use rotates it: the old row is marked revoked and points at its successor. All
//! tokens minted from one login share a family; presenting a token that was already
//! rotated means it was stolen (or replayed), so the whole family is revoked.
//!
//! Except within the reuse grace window (`REFRESH_REUSE_GRACE_SECS`, the pattern Auth0
//! and Okta call a reuse interval): two tabs of one browser share one stored token and
//! refresh at the same moment, so the token just rotated by one tab is presented again
//! by the other. Within the window that answer is the same successor the first tab got
//! (both tabs go on with one token), provided the session is still alive. To hand out
//! the same successor without storing it, the rotated row keeps the successor sealed
//! with the rotated token: XOR with SHA-256 of a domain tag and the rotated token, a
//! one-time pad only the holder of the rotated token can remove.

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
    config::Config,
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

/// The pad that seals a successor: a hash of the rotated token under its own domain
/// tag, so it is not the stored `token_hash`.
fn seal_pad(rotated: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mocheong refresh successor seal\0");
    h.update(rotated.as_bytes());
    h.finalize().into()
}

fn seal(rotated: &str, successor: &str) -> String {
    let raw = URL_SAFE_NO_PAD
        .decode(successor)
        .expect("generated tokens are base64url");
    let pad = seal_pad(rotated);
    hex::encode(raw.iter().zip(pad).map(|(b, p)| b ^ p).collect::<Vec<u8>>())
}

/// The successor sealed by [`seal`]; `None` if the seal is malformed.
fn unseal(rotated: &str, sealed: &str) -> Option<String> {
    let raw = hex::decode(sealed).ok()?;
    let pad = seal_pad(rotated);
    (raw.len() == pad.len()).then(|| {
        URL_SAFE_NO_PAD.encode(raw.iter().zip(pad).map(|(b, p)| b ^ p).collect::<Vec<u8>>())
    })
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
    let token = generate_token();
    insert_token(db, user_id, &new_id(), &new_id(), &token, ttl).await?;
    Ok(token)
}

async fn insert_token<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    id: &str,
    family_id: &str,
    token: &str,
    ttl: std::time::Duration,
) -> Result<()> {
    let ttl = chrono::Duration::from_std(ttl).map_err(Error::internal)?;
    refresh_token::ActiveModel {
        id: Set(id.to_owned()),
        user_id: Set(user_id.to_owned()),
        family_id: Set(family_id.to_owned()),
        token_hash: Set(hash_token(token)),
        expires_at: Set(Utc::now() + ttl),
        revoked_at: Set(None),
        replaced_by: Set(None),
        successor_seal: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Exchanges a refresh token for a new one. Returns the user and the new token.
pub async fn rotate(
    db: &DatabaseConnection,
    presented: &str,
    cfg: &Config,
) -> Result<(user::Model, String)> {
    let txn = crate::db::begin_write(db).await?;
    let Some(row) = find_by_token(&txn, presented).await? else {
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
        let token = presented_again(&txn, row, presented, cfg.refresh_reuse_grace).await?;
        txn.commit().await?;
        return token.map(|t| (user, t)).ok_or_else(invalid);
    }
    if row.expires_at <= Utc::now() {
        return Err(invalid());
    }

    // Conditional update: of two concurrent uses of one token only one can win. The
    // loser sees zero rows changed; by then the winner has committed (PostgreSQL makes
    // the loser's UPDATE wait for it; SQLite's write lock serialises the whole
    // transaction), so the loser re-reads the row and is a presentation within the
    // grace window like any other.
    let successor = generate_token();
    let successor_id = new_id();
    let now = Utc::now();
    let updated = RefreshTokens::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .col_expr(
            refresh_token::Column::ReplacedBy,
            Expr::value(successor_id.clone()),
        )
        .col_expr(
            refresh_token::Column::SuccessorSeal,
            Expr::value(seal(presented, &successor)),
        )
        .col_expr(refresh_token::Column::UpdatedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(row.id.clone()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        let row = RefreshTokens::find_by_id(row.id)
            .one(&txn)
            .await?
            .ok_or_else(invalid)?;
        let token = presented_again(&txn, row, presented, cfg.refresh_reuse_grace).await?;
        txn.commit().await?;
        return token.map(|t| (user, t)).ok_or_else(invalid);
    }
    insert_token(
        &txn,
        &user.id,
        &successor_id,
        &row.family_id,
        &successor,
        cfg.refresh_token_ttl,
    )
    .await?;
    txn.commit().await?;
    Ok((user, successor))
}

/// How many rotations a late tab may follow to reach the live token (tab A refreshed
/// twice within the window while tab B still held the first token).
const MAX_GRACE_HOPS: usize = 4;

/// A revoked token presented again. Within the grace window after its rotation the
/// answer is its successor — the live token it was rotated into, following at most
/// [`MAX_GRACE_HOPS`] rotations each also within the window — provided the session
/// was not ended meanwhile. Anything else is reuse: the family is revoked (the caller
/// commits) and the answer is `None`.
async fn presented_again<C: ConnectionTrait>(
    db: &C,
    row: refresh_token::Model,
    presented: &str,
    grace: std::time::Duration,
) -> Result<Option<String>> {
    let grace = chrono::Duration::from_std(grace).map_err(Error::internal)?;
    let now = Utc::now();
    let family_id = row.family_id.clone();
    let (mut row, mut token) = (row, presented.to_owned());
    for _ in 0..MAX_GRACE_HOPS {
        let (Some(rotated_at), Some(successor_id), Some(sealed)) =
            (row.revoked_at, &row.replaced_by, &row.successor_seal)
        else {
            break; // revoked by logout or reuse, not rotated
        };
        if now - rotated_at > grace {
            break;
        }
        let Some(successor_token) = unseal(&token, sealed) else {
            break;
        };
        let Some(successor) = RefreshTokens::find_by_id(successor_id.clone())
            .one(db)
            .await?
            .filter(|s| s.token_hash == hash_token(&successor_token))
        else {
            break;
        };
        if successor.revoked_at.is_none() {
            return Ok((successor.expires_at > now).then_some(successor_token));
        }
        (row, token) = (successor, successor_token);
    }
    revoke_family(db, &family_id).await?;
    tracing::warn!(user_id = %row.user_id, family_id = %family_id, "refresh token reuse; family revoked");
    Ok(None)
}

async fn find_by_token<C: ConnectionTrait>(
    db: &C,
    presented: &str,
) -> Result<Option<refresh_token::Model>> {
    Ok(RefreshTokens::find()
        .filter(refresh_token::Column::TokenHash.eq(hash_token(presented)))
        .one(db)
        .await?)
}

/// Logout: revokes the family the presented token belongs to. Unknown tokens are
/// ignored so that logout is idempotent.
pub async fn revoke(db: &DatabaseConnection, presented: &str) -> Result<()> {
    if let Some(row) = find_by_token(db, presented).await? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_opens_only_with_the_rotated_token() {
        let (rotated, successor) = (generate_token(), generate_token());
        let sealed = seal(&rotated, &successor);
        assert_eq!(
            unseal(&rotated, &sealed).as_deref(),
            Some(successor.as_str())
        );
        assert_ne!(
            unseal(&generate_token(), &sealed).as_deref(),
            Some(successor.as_str())
        );
        // The seal is neither the successor nor its stored hash.
        assert_ne!(sealed, hash_token(&successor));
        assert!(unseal(&rotated, "zz").is_none());
    }
}
