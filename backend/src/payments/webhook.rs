//! PortOne webhooks (version 2024-04-25), signed with Standard Webhooks.
//!
//! The signature covers `webhook-id.webhook-timestamp.<raw body>` with HMAC-SHA256
//! under the base64 secret after `whsec_`; `webhook-signature` holds space-separated
//! `v1,<base64>` entries, any of which may match. It is checked on the raw bytes,
//! before any JSON parsing, and the timestamp must be within five minutes of now.

use axum::{Json, extract::State, http::HeaderMap};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use super::service;
use crate::{
    db::{payment, payment_webhook},
    error::{Error, ErrorBody, Result},
    extract::RawBody,
    state::AppState,
};

/// How far a webhook's timestamp may be from our clock.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The HMAC key inside a `whsec_<base64>` secret; `None` when it is not valid base64.
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD.decode(b64).ok().filter(|k| !k.is_empty())
}

/// Why a webhook was refused; all of them answer 401.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    MissingHeaders,
    BadTimestamp,
    Stale,
    NoMatchingSignature,
}

impl Rejection {
    fn message(&self) -> &'static str {
        match self {
            Rejection::MissingHeaders => {
                "webhook-id, webhook-timestamp and webhook-signature are required"
            }
            Rejection::BadTimestamp => "webhook-timestamp is not a number",
            Rejection::Stale => "webhook-timestamp is too far from the current time",
            Rejection::NoMatchingSignature => "no webhook signature matches",
        }
    }
}

/// Checks the Standard Webhooks signature of `body`; returns the `webhook-id`.
pub fn verify(key: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<String, Rejection> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(Rejection::MissingHeaders);
    };
    let ts: i64 = timestamp.parse().map_err(|_| Rejection::BadTimestamp)?;
    // abs_diff: no overflow on absurd timestamps (the signature is checked after).
    if now.abs_diff(ts) > TOLERANCE_SECS as u64 {
        return Err(Rejection::Stale);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).map_err(|_| Rejection::NoMatchingSignature)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    for entry in signatures.split(' ') {
        let Some(("v1", encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(candidate) = STANDARD.decode(encoded) else {
            continue;
        };
        // `verify_slice` compares in constant time.
        if mac.clone().verify_slice(&candidate).is_ok() {
            return Ok(id.to_owned());
        }
    }
    Err(Rejection::NoMatchingSignature)
}

#[derive(Debug, Deserialize)]
struct WebhookIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: WebhookData,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookData {
    payment_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    /// `processed`, `duplicate` (this webhook-id was handled before) or `ignored`
    /// (not a payment event, or not one of our payments).
    pub status: &'static str,
}

/// PortOne webhook receiver (Standard Webhooks signature on the raw body).
///
/// The payload only says *which* payment changed; its state is re-read from PortOne
/// and applied exactly as `POST /api/payments/complete` does. A bad, missing or stale
/// signature is 401. A `webhook-id` seen before is acknowledged and ignored. An
/// unavailable PortOne answers 503 so that PortOne delivers the webhook again.
#[utoipa::path(post, path = "/webhook", tag = "payments",
    request_body(content = String, content_type = "application/json"),
    responses((status = 200, body = WebhookOut), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn receive_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookOut>> {
    let cfg = service::portone_config(&state)?;
    let key = cfg
        .webhook_secret
        .as_ref()
        .and_then(|s| decode_secret(s.expose_secret()))
        .ok_or_else(service::not_configured)?;
    let now = chrono::Utc::now().timestamp();
    let webhook_id = verify(&key, &headers, &body, now).map_err(|why| {
        tracing::warn!(reason = ?why, "webhook refused");
        Error::unauthorized(why.message()).into_code("invalid_webhook_signature")
    })?;
    if payment_webhook::Entity::find_by_id(webhook_id.clone())
        .one(&state.db)
        .await?
        .is_some()
    {
        return Ok(Json(WebhookOut {
            status: "duplicate",
        }));
    }
    let event: WebhookIn = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_request("invalid_json", format!("malformed webhook: {e}")))?;

    let payment = match &event.data.payment_id {
        Some(id) if event.kind.starts_with("Transaction.") => {
            payment::Entity::find_by_id(id.clone())
                .one(&state.db)
                .await?
        }
        _ => None,
    };
    let status = match payment {
        None => {
            tracing::info!(event_type = %event.kind, "webhook acknowledged and ignored");
            "ignored"
        }
        Some(payment) => match service::sync_payment(&state, payment).await {
            Ok(_) => "processed",
            // Our refusal (a mismatch, a payment PortOne does not know) is final:
            // acknowledge, or PortOne would deliver it again and again.
            Err(err) if err.status().is_client_error() => "processed",
            // PortOne unavailable or our database failing: nothing recorded, so the
            // redelivery is processed.
            Err(err) => return Err(err),
        },
    };
    // A concurrent delivery of the same webhook may have recorded it first; the sync
    // itself is idempotent, so that is fine.
    let recorded = payment_webhook::ActiveModel {
        webhook_id: Set(webhook_id),
        event_type: Set(event.kind.chars().take(64).collect()),
        payment_id: Set(event.data.payment_id.map(|p| p.chars().take(100).collect())),
        ..Default::default()
    }
    .insert(&state.db)
    .await;
    if let Err(err) = recorded
        && !matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        )
    {
        return Err(err.into());
    }
    Ok(Json(WebhookOut { status }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &[u8], id: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert(
            "webhook-signature",
            format!("v1,AAAA v1,{sig}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn any_listed_signature_may_match() {
        let key = b"0123456789abcdef";
        let h = signed(key, "msg_1", 1_000, b"{}");
        assert_eq!(verify(key, &h, b"{}", 1_000).unwrap(), "msg_1");
        assert_eq!(
            verify(key, &h, b"{ }", 1_000),
            Err(Rejection::NoMatchingSignature)
        );
        assert_eq!(verify(key, &h, b"{}", 1_000 + 301), Err(Rejection::Stale));
    }

    #[test]
    fn absurd_timestamps_are_stale_not_a_panic() {
        let key = b"0123456789abcdef";
        for ts in [i64::MIN, i64::MAX] {
            let h = signed(key, "msg_1", ts, b"{}");
            assert_eq!(verify(key, &h, b"{}", 1_000), Err(Rejection::Stale));
        }
    }

    #[test]
    fn secrets_are_whsec_base64() {
        assert_eq!(decode_secret("whsec_AQID").unwrap(), vec![1, 2, 3]);
        assert!(decode_secret("whsec_!!").is_none());
        assert!(decode_secret("whsec_").is_none());
    }
}
