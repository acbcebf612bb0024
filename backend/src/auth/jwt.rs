//! Access tokens: HS256 JWTs with `sub`, `role`, `iat`, `exp`, `iss`, `aud`.
//! The algorithm is pinned: a token whose header names anything else (including
//! `none`) is refused before its signature is even looked at.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::{config::Config, db::user::Role, error::Error};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    /// Not before; we never set it, but a token that carries one is held to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Clock difference tolerated between instances, for `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 5;

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub ttl: Duration,
}

impl JwtKeys {
    pub fn new(cfg: &Config) -> Self {
        let secret = cfg.jwt_secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&cfg.jwt_issuer]);
        validation.set_audience(&[&cfg.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: cfg.jwt_issuer.clone(),
            audience: cfg.jwt_audience.clone(),
            ttl: cfg.access_token_ttl,
        }
    }

    pub fn issue(&self, user_id: &str, role: Role) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            role,
            iat: now,
            nbf: None,
            exp: now + self.ttl.as_secs() as i64,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        let invalid = || {
            Error::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid_token",
                "invalid access token",
            )
        };
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => Error::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "token_expired",
                    "access token has expired",
                ),
                _ => invalid(),
            })?;
        // Issued in the future: minted with a wrong clock or by someone else.
        if claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64 {
            return Err(invalid());
        }
        Ok(claims)
    }
}
