//! Payments against a fake PortOne that speaks the documented V2 API: prepare,
//! complete, webhooks (signed here by an independent small signer), refunds, and what
//! happens when PortOne lies, is down, or is not configured.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::broadcast::Receiver;

use crate::{
    common::{Session, TestApp, error_code},
    fake_portone::{API_SECRET, CHANNEL_KEY, FakePortOne, STORE_ID},
    pages::create_page,
};

const WEBHOOK_KEY: &[u8] = b"mocheong-test-webhook-signing-key";
pub(crate) const PRICE: i64 = 19_900;

fn webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(WEBHOOK_KEY))
}

pub(crate) async fn spawn(fake_url: &str, extra: &[(&str, &str)]) -> TestApp {
    // Server-side errors (and the audit trail) show up in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    let secret = webhook_secret();
    let mut vars = vec![
        ("PORTONE_API_BASE_URL", fake_url),
        ("PORTONE_API_SECRET", API_SECRET),
        ("PORTONE_STORE_ID", STORE_ID),
        ("PORTONE_CHANNEL_KEY", CHANNEL_KEY),
        ("PORTONE_WEBHOOK_SECRET", secret.as_str()),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(&vars).await
}

/// Signs like PortOne does (Standard Webhooks): base64 HMAC-SHA256 of `id.ts.body`.
fn sign(id: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_KEY).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn webhook_body(kind: &str, payment_id: &str) -> String {
    json!({
        "type": kind,
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {"storeId": STORE_ID, "paymentId": payment_id, "transactionId": format!("tx-{payment_id}")}
    })
    .to_string()
}

async fn post_webhook(app: &TestApp, headers: &[(&str, String)], body: &str, expect: u16) -> Value {
    let mut req = app
        .http
        .post(format!("{}/api/payments/webhook", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(status, expect, "webhook answered {status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A correctly signed webhook with a fresh id.
async fn send_webhook(app: &TestApp, kind: &str, payment_id: &str) -> Value {
    let id = format!("msg_{}", ulid::Ulid::new());
    send_webhook_as(app, &id, kind, payment_id, 200).await
}

async fn send_webhook_as(
    app: &TestApp,
    webhook_id: &str,
    kind: &str,
    payment_id: &str,
    expect: u16,
) -> Value {
    let body = webhook_body(kind, payment_id);
    let ts = now();
    let headers = [
        ("webhook-id", webhook_id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sign(webhook_id, ts, &body)),
    ];
    post_webhook(app, &headers, &body, expect).await
}

async fn page_id(app: &TestApp, owner: &Session) -> String {
    create_page(app, owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn prepare(app: &TestApp, owner: &Session, page_id: &str) -> String {
    let out = app
        .post(
            "/api/payments/prepare",
            Some(&owner.access),
            json!({"pageId": page_id, "plan": "premium"}),
            201,
        )
        .await;
    out["paymentId"].as_str().unwrap().to_owned()
}

async fn complete(app: &TestApp, owner: &Session, payment_id: &str, expect: u16) -> Value {
    app.post(
        "/api/payments/complete",
        Some(&owner.access),
        json!({"paymentId": payment_id}),
        expect,
    )
    .await
}

async fn plan_of(app: &TestApp, owner: &Session, page_id: &str) -> String {
    app.get(&format!("/api/pages/{page_id}"), Some(&owner.access), 200)
        .await["plan"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn payment(app: &TestApp, owner: &Session, payment_id: &str) -> Value {
    app.get(
        &format!("/api/payments/{payment_id}"),
        Some(&owner.access),
        200,
    )
    .await
}

/// Events of `kind` about `payment_id` published so far.
fn events(rx: &mut Receiver<backend::events::DomainEvent>, kind: &str, payment_id: &str) -> usize {
    let mut n = 0;
    while let Ok(e) = rx.try_recv() {
        if e.event_type == kind && e.data["paymentId"] == payment_id {
            n += 1;
        }
    }
    n
}

/// A page whose premium plan has been paid and applied.
pub(crate) async fn paid_page(
    app: &TestApp,
    fake: &FakePortOne,
    owner: &Session,
) -> (String, String) {
    let page = page_id(app, owner).await;
    let pay = prepare(app, owner, &page).await;
    fake.pay(&pay, PRICE);
    assert_eq!(complete(app, owner, &pay, 200).await["status"], "paid");
    (page, pay)
}

#[tokio::test]
async fn a_failed_attempt_followed_by_a_successful_one_is_applied() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    fake.put(&pay, FakePortOne::payment("FAILED", PRICE));
    assert_eq!(complete(&app, &owner, &pay, 200).await["status"], "failed");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
    // The buyer retries in the browser under the same payment id, and pays.
    fake.pay(&pay, PRICE);
    assert_eq!(complete(&app, &owner, &pay, 200).await["status"], "paid");
    assert_eq!(plan_of(&app, &owner, &page).await, "premium");
}

#[tokio::test]
async fn prepare_pay_complete_makes_the_page_premium_once() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let mut rx = app.state.events.subscribe();
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;

    let out = app
        .post(
            "/api/payments/prepare",
            Some(&owner.access),
            json!({"pageId": page, "plan": "premium"}),
            201,
        )
        .await;
    let pay = out["paymentId"].as_str().unwrap().to_owned();
    assert!(pay.starts_with("pay_") && pay.len() == 30, "{pay}");
    assert_eq!(out["storeId"], STORE_ID);
    assert_eq!(out["channelKey"], CHANNEL_KEY);
    assert_eq!(out["totalAmount"], PRICE);
    assert_eq!(out["currency"], "KRW");
    assert!(out["orderName"].as_str().is_some_and(|s| !s.is_empty()));
    // The server told PortOne what to expect.
    let registered = fake.pre_registered(&pay).expect("pre-registered");
    assert_eq!(registered["totalAmount"], PRICE);
    assert_eq!(registered["currency"], "KRW");
    assert_eq!(registered["storeId"], STORE_ID);

    // Not paid yet: PortOne does not know the payment; nothing changes.
    let err = complete(&app, &owner, &pay, 409).await;
    assert_eq!(error_code(&err), "payment_not_found_at_provider");
    assert_eq!(payment(&app, &owner, &pay).await["status"], "pending");

    fake.pay(&pay, PRICE);
    let done = complete(&app, &owner, &pay, 200).await;
    assert_eq!(done["status"], "paid");
    assert_eq!(done["amount"], PRICE);
    assert!(done["paidAt"].is_string());
    assert_eq!(plan_of(&app, &owner, &page).await, "premium");

    // Twice is harmless and applies nothing again.
    assert_eq!(complete(&app, &owner, &pay, 200).await["status"], "paid");
    assert_eq!(events(&mut rx, "payment.paid", &pay), 1);

    let list = app.get("/api/payments", Some(&owner.access), 200).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], pay.as_str());

    // Someone else's payment does not exist for them.
    let stranger = app.register().await;
    app.get(&format!("/api/payments/{pay}"), Some(&stranger.access), 404)
        .await;
    complete(&app, &stranger, &pay, 404).await;
    app.get("/api/payments", Some(&stranger.access), 200).await;
    app.get("/api/payments", None, 401).await;
}

#[tokio::test]
async fn only_the_owner_may_prepare_and_only_what_is_for_sale() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let editor = app.register().await;
    let stranger = app.register().await;
    let page = page_id(&app, &owner).await;
    crate::pages::add_editor(&app, &owner, &page, &editor).await;
    let body = json!({"pageId": page, "plan": "premium"});
    app.post(
        "/api/payments/prepare",
        Some(&editor.access),
        body.clone(),
        403,
    )
    .await;
    app.post(
        "/api/payments/prepare",
        Some(&stranger.access),
        body.clone(),
        404,
    )
    .await;
    app.post("/api/payments/prepare", None, body, 401).await;
    let err = app
        .post(
            "/api/payments/prepare",
            Some(&owner.access),
            json!({"pageId": page, "plan": "free"}),
            422,
        )
        .await;
    assert_eq!(err["error"]["field"], "plan");
    app.post(
        "/api/payments/prepare",
        Some(&owner.access),
        json!({"pageId": page, "plan": "platinum"}),
        422,
    )
    .await;
    // Nobody's attempt left a row behind.
    for s in [&owner, &editor, &stranger] {
        assert_eq!(
            app.get("/api/payments", Some(&s.access), 200).await["total"],
            0
        );
    }

    let pay = prepare(&app, &owner, &page).await;
    fake.pay(&pay, PRICE);
    complete(&app, &owner, &pay, 200).await;
    let err = app
        .post(
            "/api/payments/prepare",
            Some(&owner.access),
            json!({"pageId": page, "plan": "premium"}),
            409,
        )
        .await;
    assert_eq!(error_code(&err), "plan_already_active");
}

#[tokio::test]
async fn complete_and_webhook_at_once_apply_the_plan_once() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let mut rx = app.state.events.subscribe();
    let owner = app.register().await;
    for _ in 0..3 {
        let page = page_id(&app, &owner).await;
        let pay = prepare(&app, &owner, &page).await;
        fake.pay(&pay, PRICE);
        let (a, b, c) = tokio::join!(
            complete(&app, &owner, &pay, 200),
            send_webhook(&app, "Transaction.Paid", &pay),
            complete(&app, &owner, &pay, 200),
        );
        assert_eq!(a["status"], "paid");
        assert_eq!(b["status"], "processed");
        assert_eq!(c["status"], "paid");
        assert_eq!(plan_of(&app, &owner, &page).await, "premium");
        assert_eq!(events(&mut rx, "payment.paid", &pay), 1);
    }
}

#[tokio::test]
async fn a_smaller_amount_is_refused_and_held_for_review() {
    let fake = FakePortOne::start().await;
    // Without pre-registration a tampered browser could pay less; the server catches it.
    let app = spawn(&fake.base_url, &[("PORTONE_PRE_REGISTER", "false")]).await;
    let mut rx = app.state.events.subscribe();
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    assert!(fake.pre_registered(&pay).is_none());
    fake.pay(&pay, 100);

    let err = complete(&app, &owner, &pay, 409).await;
    assert_eq!(error_code(&err), "payment_mismatch");
    assert_eq!(payment(&app, &owner, &pay).await["status"], "suspicious");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
    // Neither a retry nor a webhook applies it.
    complete(&app, &owner, &pay, 409).await;
    assert_eq!(
        send_webhook(&app, "Transaction.Paid", &pay).await["status"],
        "processed"
    );
    assert_eq!(payment(&app, &owner, &pay).await["status"], "suspicious");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
    assert_eq!(events(&mut rx, "payment.paid", &pay), 0);
}

#[tokio::test]
async fn another_store_or_currency_is_refused() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;

    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    let mut other_store = FakePortOne::payment("PAID", PRICE);
    other_store.store_id = "store-someone-else".into();
    fake.put(&pay, other_store);
    assert_eq!(
        error_code(&complete(&app, &owner, &pay, 409).await),
        "payment_mismatch"
    );
    assert_eq!(payment(&app, &owner, &pay).await["status"], "suspicious");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");

    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    let mut dollars = FakePortOne::payment("PAID", PRICE);
    dollars.currency = "USD".into();
    fake.put(&pay, dollars);
    assert_eq!(
        error_code(&complete(&app, &owner, &pay, 409).await),
        "payment_mismatch"
    );
    assert_eq!(payment(&app, &owner, &pay).await["status"], "suspicious");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

#[tokio::test]
async fn a_virtual_account_waits_for_the_deposit_webhook() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    fake.put(&pay, FakePortOne::payment("VIRTUAL_ACCOUNT_ISSUED", PRICE));

    let out = complete(&app, &owner, &pay, 200).await;
    assert_eq!(out["status"], "awaiting_deposit");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
    // The issue webhook changes nothing more.
    send_webhook(&app, "Transaction.VirtualAccountIssued", &pay).await;
    assert_eq!(
        payment(&app, &owner, &pay).await["status"],
        "awaiting_deposit"
    );

    fake.pay(&pay, PRICE);
    let out = send_webhook(&app, "Transaction.Paid", &pay).await;
    assert_eq!(out["status"], "processed");
    assert_eq!(payment(&app, &owner, &pay).await["status"], "paid");
    assert_eq!(plan_of(&app, &owner, &page).await, "premium");
}

#[tokio::test]
async fn webhooks_without_a_valid_fresh_signature_are_refused() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    fake.pay(&pay, PRICE);
    let body = webhook_body("Transaction.Paid", &pay);
    let id = format!("msg_{}", ulid::Ulid::new());
    let ts = now();

    let cases: Vec<Vec<(&str, String)>> = vec![
        // Signed with another key.
        vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", {
                let mut mac = Hmac::<Sha256>::new_from_slice(b"another key").unwrap();
                mac.update(format!("{id}.{ts}.{body}").as_bytes());
                format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
            }),
        ],
        // A valid signature of a different body.
        vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                sign(&id, ts, &body.replace("Paid", "Failed")),
            ),
        ],
        // Stale and future timestamps, correctly signed.
        vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", (ts - 600).to_string()),
            ("webhook-signature", sign(&id, ts - 600, &body)),
        ],
        vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", (ts + 600).to_string()),
            ("webhook-signature", sign(&id, ts + 600, &body)),
        ],
        // Missing headers.
        vec![
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sign(&id, ts, &body)),
        ],
        vec![
            ("webhook-id", id.clone()),
            ("webhook-signature", sign(&id, ts, &body)),
        ],
        vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
        ],
        vec![],
        // Garbage in the signature header.
        vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", "v1,not-base64!! v2,xyz".into()),
        ],
    ];
    for headers in &cases {
        let err = post_webhook(&app, headers, &body, 401).await;
        assert_eq!(error_code(&err), "invalid_webhook_signature");
    }
    assert_eq!(payment(&app, &owner, &pay).await["status"], "pending");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");

    // The same id with a good signature (one of several listed) still goes through.
    let good = [
        ("webhook-id", id.clone()),
        ("webhook-timestamp", ts.to_string()),
        (
            "webhook-signature",
            format!("v1,AAAA {}", sign(&id, ts, &body)),
        ),
    ];
    assert_eq!(
        post_webhook(&app, &good, &body, 200).await["status"],
        "processed"
    );
    assert_eq!(payment(&app, &owner, &pay).await["status"], "paid");
}

#[tokio::test]
async fn a_replayed_webhook_id_is_ignored() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let (page, pay) = paid_page(&app, &fake, &owner).await;

    // The payment is cancelled at PortOne (e.g. from its console).
    let mut cancelled = FakePortOne::payment("CANCELLED", PRICE);
    cancelled.cancelled = PRICE;
    fake.put(&pay, cancelled);
    let id = format!("msg_{}", ulid::Ulid::new());
    let first = send_webhook_as(&app, &id, "Transaction.Paid", &pay, 200).await;
    assert_eq!(first["status"], "processed");
    assert_eq!(payment(&app, &owner, &pay).await["status"], "cancelled");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");

    // Replaying that delivery is acknowledged and does nothing.
    let page2 = page_id(&app, &owner).await;
    let pay2 = prepare(&app, &owner, &page2).await;
    fake.pay(&pay2, PRICE);
    let replay = send_webhook_as(&app, &id, "Transaction.Paid", &pay2, 200).await;
    assert_eq!(replay["status"], "duplicate");
    assert_eq!(payment(&app, &owner, &pay2).await["status"], "pending");
}

#[tokio::test]
async fn unknown_events_and_foreign_payments_are_acknowledged() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    fake.pay(&pay, PRICE);

    let out = send_webhook(&app, "BillingKey.Issued", &pay).await;
    assert_eq!(out["status"], "ignored");
    let out = send_webhook(&app, "Transaction.Paid", "pay_not_one_of_ours").await;
    assert_eq!(out["status"], "ignored");
    assert_eq!(payment(&app, &owner, &pay).await["status"], "pending");
}

#[tokio::test]
async fn a_test_channel_payment_is_refused_in_production() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[("APP_ENV", "production")]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    let mut test_pay = FakePortOne::payment("PAID", PRICE);
    test_pay.channel_type = "TEST";
    fake.put(&pay, test_pay.clone());
    assert_eq!(
        error_code(&complete(&app, &owner, &pay, 409).await),
        "payment_mismatch"
    );
    assert_eq!(payment(&app, &owner, &pay).await["status"], "suspicious");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");

    // In development a TEST channel is how one tries things out.
    let dev = spawn(&fake.base_url, &[]).await;
    let page = page_id(&dev, &owner).await;
    let pay = prepare(&dev, &owner, &page).await;
    fake.put(&pay, test_pay);
    assert_eq!(complete(&dev, &owner, &pay, 200).await["status"], "paid");
}

#[tokio::test]
async fn a_full_refund_revokes_the_plan() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let mut rx = app.state.events.subscribe();
    let owner = app.register().await;
    let (page, pay) = paid_page(&app, &fake, &owner).await;

    let out = app
        .post(
            &format!("/api/payments/{pay}/cancel"),
            Some(&owner.access),
            json!({"reason": "마음이 바뀌었어요"}),
            200,
        )
        .await;
    assert_eq!(out["status"], "cancelled");
    assert_eq!(out["cancelledAmount"], PRICE);
    assert_eq!(fake.status(&pay), Some("CANCELLED"));
    let sent = fake.cancel_requests().last().cloned().unwrap();
    assert_eq!(sent["currentCancellableAmount"], PRICE);
    assert_eq!(sent["amount"], PRICE);
    assert_eq!(sent["requester"], "CUSTOMER");
    assert_eq!(sent["storeId"], STORE_ID);
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
    assert_eq!(events(&mut rx, "payment.cancelled", &pay), 1);

    // Nothing left to refund; PortOne is not asked again.
    let before = fake.cancel_requests().len();
    let err = app
        .post(
            &format!("/api/payments/{pay}/cancel"),
            Some(&owner.access),
            json!({"reason": "again"}),
            409,
        )
        .await;
    assert_eq!(error_code(&err), "payment_not_refundable");
    assert_eq!(fake.cancel_requests().len(), before);
    // The Transaction.Cancelled webhook that follows changes nothing more.
    send_webhook(&app, "Transaction.Cancelled", &pay).await;
    assert_eq!(payment(&app, &owner, &pay).await["cancelledAmount"], PRICE);
    assert_eq!(events(&mut rx, "payment.cancelled", &pay), 0);
}

#[tokio::test]
async fn a_partial_refund_keeps_the_plan() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let (page, pay) = paid_page(&app, &fake, &owner).await;
    let path = format!("/api/payments/{pay}/cancel");

    let err = app
        .post(
            &path,
            Some(&owner.access),
            json!({"reason": "r", "amount": PRICE + 1}),
            422,
        )
        .await;
    assert_eq!(err["error"]["field"], "amount");
    app.post(
        &path,
        Some(&owner.access),
        json!({"reason": "r", "amount": 0}),
        422,
    )
    .await;
    app.post(
        &path,
        Some(&owner.access),
        json!({"reason": "", "amount": 10}),
        422,
    )
    .await;
    assert!(fake.cancel_requests().is_empty());

    // An owner cannot take back part and keep the plan.
    let err = app
        .post(
            &path,
            Some(&owner.access),
            json!({"reason": "일부 환불", "amount": 5_000}),
            422,
        )
        .await;
    assert_eq!(err["error"]["code"], "partial_refund_not_allowed");
    assert!(fake.cancel_requests().is_empty());

    let admin = app.admin().await;
    let out = app
        .post(
            &path,
            Some(&admin.access),
            json!({"reason": "일부 환불", "amount": 5_000}),
            200,
        )
        .await;
    assert_eq!(out["status"], "partially_cancelled");
    assert_eq!(out["cancelledAmount"], 5_000);
    assert_eq!(fake.status(&pay), Some("PARTIAL_CANCELLED"));
    assert_eq!(plan_of(&app, &owner, &page).await, "premium");

    let out = app
        .post(&path, Some(&owner.access), json!({"reason": "나머지"}), 200)
        .await;
    assert_eq!(out["status"], "cancelled");
    assert_eq!(out["cancelledAmount"], PRICE);
    let sent = fake.cancel_requests();
    assert_eq!(sent[1]["currentCancellableAmount"], PRICE - 5_000);
    assert_eq!(sent[1]["amount"], PRICE - 5_000);
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

#[tokio::test]
async fn refunds_are_for_the_owner_within_policy_or_an_admin() {
    let fake = FakePortOne::start().await;
    // A zero-day window: any owner refund is already too late.
    let app = spawn(&fake.base_url, &[("PAYMENT_REFUND_WINDOW_DAYS", "0")]).await;
    let owner = app.register().await;
    let editor = app.register().await;
    let stranger = app.register().await;
    let (page, pay) = paid_page(&app, &fake, &owner).await;
    crate::pages::add_editor(&app, &owner, &page, &editor).await;
    let path = format!("/api/payments/{pay}/cancel");
    let body = json!({"reason": "환불"});
    app.post(&path, Some(&editor.access), body.clone(), 403)
        .await;
    app.post(&path, Some(&stranger.access), body.clone(), 404)
        .await;
    app.post(&path, None, body.clone(), 401).await;
    app.post(
        "/api/payments/pay_nope/cancel",
        Some(&owner.access),
        body.clone(),
        404,
    )
    .await;
    let err = app
        .post(&path, Some(&owner.access), body.clone(), 409)
        .await;
    assert_eq!(error_code(&err), "refund_window_closed");
    assert!(fake.cancel_requests().is_empty());
    assert_eq!(payment(&app, &owner, &pay).await["status"], "paid");
    assert_eq!(plan_of(&app, &owner, &page).await, "premium");

    // An admin is not bound by the owner's policy.
    let admin = app.admin().await;
    let out = app.post(&path, Some(&admin.access), body, 200).await;
    assert_eq!(out["status"], "cancelled");
    assert_eq!(fake.cancel_requests()[0]["requester"], "ADMIN");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

#[tokio::test]
async fn concurrent_refunds_cannot_refund_twice() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let admin = app.admin().await;
    let (page, pay) = paid_page(&app, &fake, &owner).await;
    let path = format!("/api/payments/{pay}/cancel");
    let body = json!({"reason": "동시 환불"});
    let (a, b) = tokio::join!(
        app.post_status(&path, &owner.access, body.clone()),
        app.post_status(&path, &admin.access, body),
    );
    let mut statuses = [a, b];
    statuses.sort();
    // One refund goes through; the other is refused, by us or by PortOne's
    // currentCancellableAmount check.
    assert_eq!(statuses, [200, 409], "{a} {b}");
    let out = payment(&app, &owner, &pay).await;
    assert_eq!(out["status"], "cancelled");
    assert_eq!(out["cancelledAmount"], PRICE);
    assert_eq!(fake.status(&pay), Some("CANCELLED"));
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

#[tokio::test]
async fn two_payments_of_a_page_refunded_at_once_take_the_plan_back() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let admin = app.admin().await;
    // Several rounds: each is a chance for the two refunds to overlap.
    for _ in 0..5 {
        let page = page_id(&app, &owner).await;
        // Two orders of a free page, both paid (prepare no longer hands out a second
        // open order, so the second is an older order row copied in directly).
        let first = prepare(&app, &owner, &page).await;
        let pays = [first.clone(), second_order(&app, &first).await];
        for pay in &pays {
            fake.pay(pay, PRICE);
            assert_eq!(complete(&app, &owner, pay, 200).await["status"], "paid");
        }
        let paths = pays.map(|pay| format!("/api/payments/{pay}/cancel"));
        let body = json!({"reason": "중복 결제"});
        let (a, b) = tokio::join!(
            app.post_status(&paths[0], &admin.access, body.clone()),
            app.post_status(&paths[1], &admin.access, body),
        );
        assert_eq!((a, b), (200, 200));
        // Neither refund alone revokes the plan; whichever commits second must.
        assert_eq!(plan_of(&app, &owner, &page).await, "free");
    }
}

/// A second open order of the same page as `payment_id`, written straight to the
/// database (as rows made before prepare allowed only one could be).
async fn second_order(app: &TestApp, payment_id: &str) -> String {
    use backend::db::payment;
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
    let row = payment::Entity::find_by_id(payment_id.to_owned())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let id = format!("pay_{}", ulid::Ulid::new());
    let mut copy = row.into_active_model();
    copy.id = Set(id.clone());
    copy.reset_all().insert(&app.state.db).await.unwrap();
    id
}

#[tokio::test]
async fn a_page_has_at_most_one_open_order() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    // Two tabs preparing at once get the same order, so only one can be charged.
    let (a, b) = tokio::join!(prepare(&app, &owner, &page), prepare(&app, &owner, &page));
    assert_eq!(a, b);
    assert_eq!(prepare(&app, &owner, &page).await, a);
    // A failed attempt keeps the order open (the buyer retries under the same id).
    fake.put(&a, FakePortOne::payment("FAILED", PRICE));
    complete(&app, &owner, &a, 200).await;
    assert_eq!(prepare(&app, &owner, &page).await, a);
}

#[tokio::test]
async fn a_mismatch_after_a_failed_attempt_is_held_for_review() {
    use backend::db::payment;
    use sea_orm::EntityTrait;
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[("PORTONE_PRE_REGISTER", "false")]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let pay = prepare(&app, &owner, &page).await;
    fake.put(&pay, FakePortOne::payment("FAILED", PRICE));
    assert_eq!(complete(&app, &owner, &pay, 200).await["status"], "failed");
    fake.pay(&pay, 100);
    let err = complete(&app, &owner, &pay, 409).await;
    assert_eq!(error_code(&err), "payment_mismatch");
    let row = payment::Entity::find_by_id(pay.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, payment::PaymentStatus::Suspicious);
    let reason = row.failure_reason.unwrap_or_default();
    assert!(reason.contains("amount 100"), "{reason}");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

#[tokio::test]
async fn concurrent_owner_refunds_send_portone_one_cancel() {
    let fake = FakePortOne::start().await;
    let app = spawn(&fake.base_url, &[]).await;
    let owner = app.register().await;
    let (page, pay) = paid_page(&app, &fake, &owner).await;
    let path = format!("/api/payments/{pay}/cancel");
    let body = json!({"reason": "동시 환불"});
    let refunds = (0..8).map(|_| app.post_status(&path, &owner.access, body.clone()));
    let mut statuses = futures::future::join_all(refunds).await;
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(
        fake.cancel_requests().len(),
        1,
        "one refund, one cancel request"
    );
    assert_eq!(payment(&app, &owner, &pay).await["status"], "cancelled");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

/// A port nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn an_unreachable_portone_changes_nothing() {
    let down = closed_port_url().await;
    let app = spawn(&down, &[]).await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    // Pre-registration fails: no payment is created.
    let err = app
        .post(
            "/api/payments/prepare",
            Some(&owner.access),
            json!({"pageId": page, "plan": "premium"}),
            503,
        )
        .await;
    assert_eq!(error_code(&err), "payment_provider_unavailable");
    assert_eq!(
        app.get("/api/payments", Some(&owner.access), 200).await["total"],
        0
    );

    // PortOne answering 5xx: the same, and a retry after it recovers succeeds.
    let fake = FakePortOne::start().await;
    let up = spawn(&fake.base_url, &[]).await;
    let pay = prepare(&up, &owner, &page).await;
    fake.pay(&pay, PRICE);
    fake.set_outage(true);
    let err = complete(&up, &owner, &pay, 503).await;
    assert_eq!(error_code(&err), "payment_provider_unavailable");
    assert_eq!(payment(&up, &owner, &pay).await["status"], "pending");
    fake.set_outage(false);
    assert_eq!(complete(&up, &owner, &pay, 200).await["status"], "paid");

    // A payment prepared while PortOne was up, completed after it stopped.
    let page = page_id(&up, &owner).await;
    let pay = prepare(&up, &owner, &page).await;
    fake.pay(&pay, PRICE);
    fake.stop().await;
    let err = complete(&up, &owner, &pay, 503).await;
    assert_eq!(error_code(&err), "payment_provider_unavailable");
    assert_eq!(payment(&up, &owner, &pay).await["status"], "pending");
    // A webhook arriving meanwhile is not acknowledged, so PortOne sends it again.
    let out = send_webhook_as(
        &up,
        &format!("msg_{}", ulid::Ulid::new()),
        "Transaction.Paid",
        &pay,
        503,
    )
    .await;
    assert_eq!(error_code(&out), "payment_provider_unavailable");
    assert_eq!(payment(&up, &owner, &pay).await["status"], "pending");
    assert_eq!(plan_of(&up, &owner, &page).await, "free");

    // Wrong credentials are PortOne's 401, which is our configuration problem: 502.
    let fake = FakePortOne::start().await;
    let wrong = TestApp::spawn_with(&[
        ("PORTONE_API_BASE_URL", fake.base_url.as_str()),
        ("PORTONE_API_SECRET", "not-the-secret"),
        ("PORTONE_STORE_ID", STORE_ID),
        ("PORTONE_CHANNEL_KEY", CHANNEL_KEY),
    ])
    .await;
    fake.pay(&pay, PRICE);
    let err = complete(&wrong, &owner, &pay, 502).await;
    assert_eq!(error_code(&err), "payment_provider_error");
    assert_eq!(payment(&wrong, &owner, &pay).await["status"], "pending");
}

#[tokio::test]
async fn without_portone_configuration_payments_answer_503() {
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let page = page_id(&app, &owner).await;
    let err = app
        .post(
            "/api/payments/prepare",
            Some(&owner.access),
            json!({"pageId": page, "plan": "premium"}),
            503,
        )
        .await;
    assert_eq!(error_code(&err), "payments_not_configured");
    let err = complete(&app, &owner, "pay_x", 503).await;
    assert_eq!(error_code(&err), "payments_not_configured");
    app.post(
        "/api/payments/pay_x/cancel",
        Some(&owner.access),
        json!({"reason": "x"}),
        503,
    )
    .await;
    let body = webhook_body("Transaction.Paid", "pay_x");
    let ts = now();
    let headers = [
        ("webhook-id", "msg_x".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sign("msg_x", ts, &body)),
    ];
    let err = post_webhook(&app, &headers, &body, 503).await;
    assert_eq!(error_code(&err), "payments_not_configured");
    assert_eq!(plan_of(&app, &owner, &page).await, "free");
}

/// Pages paid twice before the one-open-order rule: the sweep keeps the first payment
/// and holds the other for review, once, with an audit row; admins find it among the
/// suspicious payments.
#[tokio::test]
async fn a_second_paid_order_of_a_page_is_held_for_review_once() {
    use backend::{
        db::{admin_audit_log, page::Plan, payment},
        payments::duplicates::hold_duplicate_paid_orders,
    };
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
    let app = TestApp::spawn().await;
    let owner = app.register().await;
    let admin = app.admin().await;
    let page = page_id(&app, &owner).await;
    let t0 = chrono::Utc::now() - chrono::Duration::days(30);
    let mut ids = Vec::new();
    // Inserted newest first, so that row order cannot pass for "the first paid".
    for days in [2, 0] {
        let at = t0 + chrono::Duration::days(days);
        let id = format!("pay_{}", ulid::Ulid::new());
        payment::ActiveModel {
            id: Set(id.clone()),
            page_id: Set(Some(page.clone())),
            user_id: Set(owner.user_id.clone()),
            plan: Set(Plan::Premium),
            order_name: Set("premium".into()),
            amount: Set(PRICE),
            currency: Set("KRW".into()),
            store_id: Set(STORE_ID.into()),
            status: Set(payment::PaymentStatus::Paid),
            cancelled_amount: Set(0),
            provider_status: Set(Some("PAID".into())),
            failure_reason: Set(None),
            paid_at: Set(Some(at)),
            cancelled_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&app.state.db)
        .await
        .unwrap();
        ids.push(id);
    }
    let (later, first) = (ids[0].clone(), ids[1].clone());
    let scope = [page.clone()];

    let held = hold_duplicate_paid_orders(&app.state.db, Some(&scope))
        .await
        .unwrap();
    assert_eq!(held, vec![later.clone()]);
    let row = |id: String| async {
        payment::Entity::find_by_id(id)
            .one(&app.state.db)
            .await
            .unwrap()
            .unwrap()
    };
    let kept = row(first.clone()).await;
    assert_eq!(kept.status, payment::PaymentStatus::Paid);
    let extra = row(later.clone()).await;
    assert_eq!(extra.status, payment::PaymentStatus::Suspicious);
    assert_eq!(
        extra.failure_reason.as_deref(),
        Some("duplicate_paid_order")
    );

    // Again (every start-up runs it): nothing more is held, nothing more is written.
    let again = hold_duplicate_paid_orders(&app.state.db, Some(&scope))
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    let audit = admin_audit_log::Entity::find()
        .filter(admin_audit_log::Column::TargetId.eq(later.clone()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].action, "payment.hold");
    assert_eq!(audit[0].admin_id, "system");
    assert_eq!(audit[0].reason.as_deref(), Some("duplicate_paid_order"));

    // The admin dashboard lists it with the suspicious payments and the audit log.
    let listed = app
        .get(
            &format!("/api/admin/payments?suspicious=true&pageId={page}"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], later.as_str());
    let log = app
        .get(
            &format!("/api/admin/audit?targetId={later}"),
            Some(&admin.access),
            200,
        )
        .await;
    assert_eq!(log["total"], 1, "{log}");
}
