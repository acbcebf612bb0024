//! A small client for the PortOne V2 REST API: only the calls this service makes.
//!
//! Every call carries `Authorization: PortOne <API secret>` and the store id, and has
//! its own timeout. Failures are split into "PortOne could not be reached or failed"
//! (retry later) and "PortOne answered with an error body `{type, message}`".

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;

use crate::config::PortOneConfig;

/// The part of PortOne's payment object we rely on (`GET /payments/{paymentId}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderPayment {
    /// `READY`, `PENDING`, `VIRTUAL_ACCOUNT_ISSUED`, `PAID`, `FAILED`,
    /// `PARTIAL_CANCELLED` or `CANCELLED`.
    pub status: String,
    pub id: String,
    pub store_id: String,
    pub channel: Option<SelectedChannel>,
    pub order_name: Option<String>,
    pub amount: PaymentAmount,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SelectedChannel {
    /// `LIVE` or `TEST`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentAmount {
    pub total: i64,
    #[serde(default)]
    pub paid: i64,
    #[serde(default)]
    pub cancelled: i64,
}

/// `POST /payments/{paymentId}/cancel` answers `{cancellation: {...}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancellation {
    /// `REQUESTED`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub id: String,
    pub total_amount: i64,
}

#[derive(Deserialize)]
struct CancelResponse {
    cancellation: Cancellation,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, timed out, a 5xx, or an answer we cannot read: try again later.
    #[error("PortOne unavailable: {0}")]
    Unavailable(String),
    /// A 4xx with PortOne's error body.
    #[error("PortOne refused ({status}): {kind}: {message}")]
    Api {
        status: StatusCode,
        kind: String,
        message: String,
    },
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

pub struct PortOne<'a> {
    http: &'a reqwest::Client,
    cfg: &'a PortOneConfig,
}

impl<'a> PortOne<'a> {
    pub fn new(http: &'a reqwest::Client, cfg: &'a PortOneConfig) -> Self {
        PortOne { http, cfg }
    }

    pub async fn get_payment(&self, payment_id: &str) -> Result<ProviderPayment, ProviderError> {
        let path = format!("/payments/{}", urlencode(payment_id));
        self.send(Method::GET, &path, None::<&()>).await
    }

    /// Tells PortOne the amount to expect, so a browser asking for less is refused
    /// by PortOne itself.
    pub async fn pre_register(
        &self,
        payment_id: &str,
        total_amount: i64,
        currency: &str,
    ) -> Result<(), ProviderError> {
        let path = format!("/payments/{}/pre-register", urlencode(payment_id));
        let body = json!({
            "storeId": self.cfg.store_id,
            "totalAmount": total_amount,
            "currency": currency,
        });
        let _: serde_json::Value = self.send(Method::POST, &path, Some(&body)).await?;
        Ok(())
    }

    /// Cancels `amount` of the payment. `current_cancellable_amount` makes PortOne
    /// refuse if our view of the balance is out of date.
    pub async fn cancel(
        &self,
        payment_id: &str,
        amount: i64,
        reason: &str,
        current_cancellable_amount: i64,
        requester: &str,
    ) -> Result<Cancellation, ProviderError> {
        let path = format!("/payments/{}/cancel", urlencode(payment_id));
        let body = CancelBody {
            store_id: &self.cfg.store_id,
            amount,
            reason,
            requester,
            current_cancellable_amount,
        };
        let res: CancelResponse = self.send(Method::POST, &path, Some(&body)).await?;
        Ok(res.cancellation)
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ProviderError> {
        let mut url = format!("{}{path}", self.cfg.api_base_url);
        if method == Method::GET {
            url.push_str(&format!("?storeId={}", urlencode(&self.cfg.store_id)));
        }
        let mut req = self
            .http
            .request(method, url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("PortOne {}", self.cfg.api_secret.expose_secret()),
            )
            .timeout(self.cfg.timeout);
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ProviderError::Unavailable(format!("unreadable answer: {e}")));
        }
        if status.is_client_error() {
            let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let (kind, message) = body
                .map(|b| (b.kind.unwrap_or_default(), b.message.unwrap_or_default()))
                .unwrap_or_default();
            return Err(ProviderError::Api {
                status,
                kind,
                message,
            });
        }
        Err(ProviderError::Unavailable(format!("HTTP {status}")))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelBody<'a> {
    store_id: &'a str,
    amount: i64,
    reason: &'a str,
    requester: &'a str,
    current_cancellable_amount: i64,
}

/// Percent-encodes everything but unreserved characters, for path segments and query
/// values.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
