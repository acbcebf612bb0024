//! A fake PortOne V2 API for the payment tests: a real HTTP server on port 0 with an
//! in-memory payment store, following the documented request and response shapes
//! (`GET /payments/{paymentId}`, `POST .../pre-register`, `POST .../cancel`, error
//! bodies `{type, message}`, `Authorization: PortOne <secret>`). Tests drive the
//! buyer's side through its methods (`pay`, `issue_virtual_account`, ...).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const API_SECRET: &str = "fake-portone-api-secret";
pub const STORE_ID: &str = "store-00000000-0000-0000-0000-000000000001";
pub const CHANNEL_KEY: &str = "channel-key-00000000-0000-0000-0000-000000000001";

#[derive(Clone, Debug)]
pub struct FakePayment {
    pub status: &'static str,
    pub store_id: String,
    pub currency: String,
    pub total: i64,
    pub cancelled: i64,
    pub channel_type: &'static str,
}

#[derive(Default)]
struct Store {
    payments: HashMap<String, FakePayment>,
    /// paymentId -> the pre-registered body.
    pre_registered: HashMap<String, Value>,
    /// Every cancel request body, in order.
    cancel_requests: Vec<Value>,
    /// When set, every call answers 500 (an outage behind PortOne's load balancer).
    outage: bool,
}

#[derive(Clone)]
pub struct FakePortOne {
    pub base_url: String,
    store: Arc<Mutex<Store>>,
    shutdown: CancellationToken,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Drop for FakePortOne {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({"type": kind, "message": message}))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("PortOne {API_SECRET}"))
}

fn payment_json(id: &str, p: &FakePayment) -> Value {
    let now = chrono::Utc::now().to_rfc3339();
    let paid = if matches!(p.status, "PAID" | "PARTIAL_CANCELLED" | "CANCELLED") {
        p.total
    } else {
        0
    };
    let mut body = json!({
        "status": p.status,
        "id": id,
        "transactionId": format!("tx-{id}"),
        "merchantId": "merchant-fake",
        "storeId": p.store_id,
        "channel": {
            "type": p.channel_type,
            "id": "channel-id-fake",
            "key": CHANNEL_KEY,
            "name": "fake channel",
            "pgProvider": "TOSSPAYMENTS",
            "pgMerchantId": "tosstest"
        },
        "version": "V2",
        "requestedAt": now,
        "updatedAt": now,
        "statusChangedAt": now,
        "orderName": "모청 프리미엄",
        "amount": {
            "total": p.total,
            "taxFree": 0,
            "vat": p.total / 11,
            "supply": p.total - p.total / 11,
            "discount": 0,
            "paid": paid,
            "cancelled": p.cancelled,
            "cancelledTaxFree": 0
        },
        "currency": p.currency,
        "customer": {},
        "isCulturalExpense": false,
        "promotionId": null
    });
    if paid > 0 {
        body["paidAt"] = json!(now);
        body["pgTxId"] = json!(format!("pg-{id}"));
    }
    if p.status == "VIRTUAL_ACCOUNT_ISSUED" {
        body["method"] = json!({"type": "PaymentMethodVirtualAccount", "bank": "SHINHAN",
            "accountNumber": "56211105948400", "remitteeName": "모청"});
    }
    body
}

async fn get_payment(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "인증 정보가 올바르지 않습니다.",
        );
    }
    let store = store.lock().unwrap();
    if store.outage {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
    }
    match store.payments.get(&id) {
        Some(p) => Json(payment_json(&id, p)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "PAYMENT_NOT_FOUND",
            "결제 건이 존재하지 않습니다.",
        ),
    }
}

async fn pre_register(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "인증 정보가 올바르지 않습니다.",
        );
    }
    let mut store = store.lock().unwrap();
    if store.payments.get(&id).is_some_and(|p| p.status == "PAID") {
        return error(
            StatusCode::CONFLICT,
            "ALREADY_PAID",
            "결제가 이미 완료되었습니다.",
        );
    }
    if !body["totalAmount"].is_i64() {
        return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "totalAmount");
    }
    store.pre_registered.insert(id, body);
    Json(json!({})).into_response()
}

async fn cancel(
    State(store): State<Arc<Mutex<Store>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "인증 정보가 올바르지 않습니다.",
        );
    }
    let mut store = store.lock().unwrap();
    if store.outage {
        return (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response();
    }
    store.cancel_requests.push(body.clone());
    let Some(reason) = body["reason"].as_str().map(str::to_owned) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "reason is required",
        );
    };
    let Some(p) = store.payments.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "PAYMENT_NOT_FOUND",
            "결제 건이 존재하지 않습니다.",
        );
    };
    match p.status {
        "PAID" | "PARTIAL_CANCELLED" => {}
        "CANCELLED" => {
            return error(
                StatusCode::CONFLICT,
                "PAYMENT_ALREADY_CANCELLED",
                "이미 취소되었습니다.",
            );
        }
        _ => {
            return error(
                StatusCode::CONFLICT,
                "PAYMENT_NOT_PAID",
                "결제가 완료되지 않았습니다.",
            );
        }
    }
    let cancellable = p.total - p.cancelled;
    if let Some(current) = body["currentCancellableAmount"].as_i64()
        && current != cancellable
    {
        return error(
            StatusCode::CONFLICT,
            "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN",
            "취소 가능 잔액 검증에 실패하였습니다.",
        );
    }
    let amount = body["amount"].as_i64().unwrap_or(cancellable);
    if amount > cancellable || amount <= 0 {
        return error(
            StatusCode::CONFLICT,
            "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT",
            "결제 취소 금액이 취소 가능 금액을 초과합니다.",
        );
    }
    p.cancelled += amount;
    p.status = if p.cancelled == p.total {
        "CANCELLED"
    } else {
        "PARTIAL_CANCELLED"
    };
    let now = chrono::Utc::now().to_rfc3339();
    Json(json!({"cancellation": {
        "status": "SUCCEEDED",
        "id": format!("cancel-{}", ulid::Ulid::new()),
        "pgCancellationId": "pg-cancel",
        "totalAmount": amount,
        "taxFreeAmount": 0,
        "vatAmount": amount / 11,
        "reason": reason,
        "cancelledAt": now,
        "requestedAt": now
    }}))
    .into_response()
}

impl FakePortOne {
    pub async fn start() -> Self {
        let store = Arc::new(Mutex::new(Store::default()));
        let app = Router::new()
            .route("/payments/{id}", get(get_payment))
            .route("/payments/{id}/pre-register", post(pre_register))
            .route("/payments/{id}/cancel", post(cancel))
            .with_state(store.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .ok();
        });
        FakePortOne {
            base_url: format!("http://{addr}"),
            store,
            shutdown,
            server: Arc::new(Mutex::new(Some(server))),
        }
    }

    /// Stops the server and waits until it has closed its port and connections.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            server.await.ok();
        }
    }

    fn set(&self, id: &str, payment: FakePayment) {
        self.store
            .lock()
            .unwrap()
            .payments
            .insert(id.to_owned(), payment);
    }

    /// The buyer pays `total` through a LIVE channel of our store.
    pub fn pay(&self, id: &str, total: i64) {
        self.set(id, Self::payment("PAID", total));
    }

    pub fn payment(status: &'static str, total: i64) -> FakePayment {
        FakePayment {
            status,
            store_id: STORE_ID.into(),
            currency: "KRW".into(),
            total,
            cancelled: 0,
            channel_type: "LIVE",
        }
    }

    pub fn put(&self, id: &str, payment: FakePayment) {
        self.set(id, payment);
    }

    pub fn status(&self, id: &str) -> Option<&'static str> {
        self.store
            .lock()
            .unwrap()
            .payments
            .get(id)
            .map(|p| p.status)
    }

    pub fn pre_registered(&self, id: &str) -> Option<Value> {
        self.store.lock().unwrap().pre_registered.get(id).cloned()
    }

    pub fn set_outage(&self, on: bool) {
        self.store.lock().unwrap().outage = on;
    }

    pub fn cancel_requests(&self) -> Vec<Value> {
        self.store.lock().unwrap().cancel_requests.clone()
    }
}
