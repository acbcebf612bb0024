//! The money logic, independent of HTTP so the admin API can call it too.
//!
//! The only source of truth about a payment is PortOne's own answer to
//! `GET /payments/{paymentId}`; what a browser or a webhook says only tells us
//! *when* to ask. Every state change is a conditional `UPDATE ... WHERE status IN
//! (...)` inside a transaction, and its effect on the page (plan applied or revoked)
//! happens only when that update changed a row, so concurrent completes and
//! webhooks apply a plan exactly once.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, sea_query::Expr,
};
use serde_json::json;

use super::portone::{PortOne, ProviderError, ProviderPayment};
use crate::{
    auth::AuthUser,
    config::{Environment, PortOneConfig},
    db::{
        begin_write, lock_page, new_id,
        page::{self, Plan},
        payment::{self, PaymentStatus},
    },
    error::{Error, Result},
    events::DomainEvent,
    pages::access::{Need, load_page, members},
    state::AppState,
};

pub const CURRENCY: &str = "KRW";

pub fn not_configured() -> Error {
    Error::unavailable(
        "payments_not_configured",
        "payments are not configured on this server",
    )
}

/// PortOne settings, or 503 when payments are switched off.
pub fn portone_config(state: &AppState) -> Result<&PortOneConfig> {
    state.cfg.portone.as_ref().ok_or_else(not_configured)
}

fn client(state: &AppState) -> Result<PortOne<'_>> {
    Ok(PortOne::new(&state.http, portone_config(state)?))
}

/// PortOne failures as API errors. Never a 500: the client may retry.
fn provider_error(payment_id: &str, err: ProviderError) -> Error {
    match err {
        ProviderError::Unavailable(why) => {
            tracing::warn!(payment_id, error = %why, "PortOne unavailable");
            Error::unavailable(
                "payment_provider_unavailable",
                "the payment provider is unavailable; try again",
            )
        }
        ProviderError::Api { status, kind, .. } if kind == "PAYMENT_NOT_FOUND" => {
            tracing::info!(payment_id, %status, "PortOne does not know this payment");
            Error::new(
                StatusCode::CONFLICT,
                "payment_not_found_at_provider",
                "the payment provider has no such payment yet",
            )
        }
        ProviderError::Api {
            status,
            kind,
            message,
        } => {
            // Our credentials or request are wrong: an operator problem, not the caller's.
            tracing::error!(payment_id, %status, kind, message, "PortOne refused a request");
            Error::new(
                StatusCode::BAD_GATEWAY,
                "payment_provider_error",
                "the payment provider refused the request",
            )
        }
    }
}

/// The price of a plan from the server's own table; the browser never names an amount.
pub fn price_of(state: &AppState, plan: Plan) -> Result<i64> {
    match plan {
        Plan::Premium => Ok(state.cfg.price_premium),
        Plan::Free => Err(Error::validation("plan", "the free plan is not for sale")),
    }
}

/// Creates a pending payment for the page's owner and, when enabled, registers the
/// expected amount with PortOne first.
pub async fn prepare_payment(
    state: &AppState,
    user: &AuthUser,
    page_id: &str,
    plan: Plan,
) -> Result<payment::Model> {
    let cfg = portone_config(state)?;
    let (page, _) = load_page(&state.db, page_id, user, Need::Own).await?;
    let amount = price_of(state, plan)?;
    if page.plan == plan {
        return Err(Error::conflict(
            "plan_already_active",
            "the page already has this plan",
        ));
    }
    let id = format!("pay_{}", new_id());
    if cfg.pre_register {
        client(state)?
            .pre_register(&id, amount, CURRENCY)
            .await
            .map_err(|e| provider_error(&id, e))?;
    }
    // At most one open order per page: under the page lock, an order still open for
    // the same plan and price is handed out again instead of a second one, so two
    // tabs cannot both be charged (PortOne takes one payment per payment id).
    let txn = begin_write(&state.db).await?;
    lock_page(&txn, &page.id).await?;
    let open = payment::Entity::find()
        .filter(payment::Column::PageId.eq(page.id.clone()))
        .filter(payment::Column::Plan.eq(plan))
        .filter(payment::Column::Amount.eq(amount))
        .filter(payment::Column::Status.is_in(PaymentStatus::PAYABLE))
        .one(&txn)
        .await?;
    if let Some(open) = open {
        txn.commit().await?;
        return Ok(open);
    }
    let row = payment::ActiveModel {
        id: Set(id),
        page_id: Set(Some(page.id.clone())),
        user_id: Set(user.id.clone()),
        plan: Set(plan),
        order_name: Set("모청 프리미엄".into()),
        amount: Set(amount),
        currency: Set(CURRENCY.into()),
        store_id: Set(cfg.store_id.clone()),
        status: Set(PaymentStatus::Pending),
        cancelled_amount: Set(0),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Why PortOne's answer cannot be accepted for `row`, if it cannot.
fn mismatch(state: &AppState, row: &payment::Model, remote: &ProviderPayment) -> Option<String> {
    if remote.id != row.id {
        return Some(format!("payment id {} differs", remote.id));
    }
    if remote.store_id != row.store_id {
        return Some(format!(
            "store {} differs from {}",
            remote.store_id, row.store_id
        ));
    }
    if remote.currency != row.currency {
        return Some(format!(
            "currency {} differs from {}",
            remote.currency, row.currency
        ));
    }
    if remote.amount.total != row.amount {
        return Some(format!(
            "amount {} differs from {}",
            remote.amount.total, row.amount
        ));
    }
    let test_channel = remote.channel.as_ref().is_some_and(|c| c.kind == "TEST");
    if test_channel && state.cfg.environment == Environment::Production {
        return Some("paid through a TEST channel in production".into());
    }
    None
}

/// Reads the payment from PortOne and brings our record (and the page's plan) in
/// line with it. Shared by `complete` and the webhook; safe to run any number of
/// times, concurrently.
#[tracing::instrument(skip_all, fields(payment_id = %row.id))]
pub async fn sync_payment(state: &AppState, row: payment::Model) -> Result<payment::Model> {
    let remote = client(state)?
        .get_payment(&row.id)
        .await
        .map_err(|e| provider_error(&row.id, e))?;
    match remote.status.as_str() {
        "PAID" | "VIRTUAL_ACCOUNT_ISSUED" if PaymentStatus::PAYABLE.contains(&row.status) => {
            if let Some(reason) = mismatch(state, &row, &remote) {
                mark_suspicious(state, &row, &remote.status, &reason).await?;
                return Err(Error::conflict(
                    "payment_mismatch",
                    "the payment does not match the order; it was not applied and is held for review",
                ));
            }
            if remote.status == "PAID" {
                apply_paid(state, &row).await?;
            } else {
                transition(
                    state,
                    &row.id,
                    &[PaymentStatus::Pending, PaymentStatus::Failed],
                    PaymentStatus::AwaitingDeposit,
                    &remote.status,
                )
                .await?;
            }
        }
        "FAILED" => {
            transition(
                state,
                &row.id,
                &PaymentStatus::OPEN,
                PaymentStatus::Failed,
                &remote.status,
            )
            .await?;
        }
        "CANCELLED" | "PARTIAL_CANCELLED" if remote.amount.cancelled > row.cancelled_amount => {
            record_cancellation(state, &row, remote.amount.cancelled, &remote.status).await?;
        }
        _ => {}
    }
    let fresh = reload(state, &row.id).await?;
    if fresh.status == PaymentStatus::Suspicious {
        return Err(Error::conflict(
            "payment_mismatch",
            "the payment does not match the order; it is held for review",
        ));
    }
    Ok(fresh)
}

async fn reload(state: &AppState, id: &str) -> Result<payment::Model> {
    payment::Entity::find_by_id(id.to_owned())
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("payment"))
}

/// `status: from -> to`, only if the row is still in one of `from`.
async fn transition(
    state: &AppState,
    id: &str,
    from: &[PaymentStatus],
    to: PaymentStatus,
    provider_status: &str,
) -> Result<bool> {
    let res = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(to))
        .col_expr(
            payment::Column::ProviderStatus,
            Expr::value(provider_status.to_owned()),
        )
        .col_expr(payment::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payment::Column::Id.eq(id.to_owned()))
        .filter(payment::Column::Status.is_in(from.iter().copied()))
        .exec(&state.db)
        .await?;
    Ok(res.rows_affected == 1)
}

async fn mark_suspicious(
    state: &AppState,
    row: &payment::Model,
    provider_status: &str,
    reason: &str,
) -> Result<()> {
    let res = payment::Entity::update_many()
        .col_expr(
            payment::Column::Status,
            Expr::value(PaymentStatus::Suspicious),
        )
        .col_expr(
            payment::Column::ProviderStatus,
            Expr::value(provider_status.to_owned()),
        )
        .col_expr(
            payment::Column::FailureReason,
            Expr::value(reason.to_owned()),
        )
        .col_expr(payment::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payment::Column::Id.eq(row.id.clone()))
        // Every state in which PAID could still be applied, a failed attempt included.
        .filter(payment::Column::Status.is_in(PaymentStatus::PAYABLE))
        .exec(&state.db)
        .await?;
    if res.rows_affected == 1 {
        // The admin's trail: a payment PortOne reports differently from our order.
        tracing::error!(
            target: "payments::audit",
            payment_id = %row.id,
            user_id = %row.user_id,
            page_id = ?row.page_id,
            reason,
            "payment refused and held for review"
        );
    }
    Ok(())
}

/// Marks the payment paid and gives the page its plan, in one transaction, once.
async fn apply_paid(state: &AppState, row: &payment::Model) -> Result<()> {
    let now = Utc::now();
    let txn = begin_write(&state.db).await?;
    if let Some(page_id) = &row.page_id {
        lock_page(&txn, page_id).await?;
    }
    let res = payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value(PaymentStatus::Paid))
        .col_expr(
            payment::Column::ProviderStatus,
            Expr::value("PAID".to_owned()),
        )
        .col_expr(payment::Column::PaidAt, Expr::value(now))
        .col_expr(payment::Column::UpdatedAt, Expr::value(now))
        .filter(payment::Column::Id.eq(row.id.clone()))
        .filter(payment::Column::Status.is_in(PaymentStatus::PAYABLE))
        .exec(&txn)
        .await?;
    let applied = res.rows_affected == 1;
    if applied && let Some(page_id) = &row.page_id {
        set_plan(&txn, page_id, row.plan).await?;
    }
    txn.commit().await?;
    if applied {
        tracing::info!(payment_id = %row.id, amount = row.amount, "payment paid; plan applied");
        publish(
            state,
            row,
            "payment.paid",
            json!({"paymentId": row.id, "pageId": row.page_id, "plan": row.plan, "amount": row.amount}),
        )
        .await;
    }
    Ok(())
}

async fn set_plan<C: ConnectionTrait>(db: &C, page_id: &str, plan: Plan) -> Result<()> {
    page::Entity::update_many()
        .col_expr(page::Column::Plan, Expr::value(plan))
        .col_expr(page::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(page::Column::Id.eq(page_id.to_owned()))
        .exec(db)
        .await?;
    Ok(())
}

async fn publish(
    state: &AppState,
    row: &payment::Model,
    kind: &'static str,
    data: serde_json::Value,
) {
    let mut users = vec![row.user_id.clone()];
    if let Some(page_id) = &row.page_id {
        // A notification must never fail the payment that caused it.
        match page::Entity::find_by_id(page_id.clone())
            .one(&state.db)
            .await
        {
            Ok(Some(page)) => match members(&state.db, &page).await {
                Ok(ids) => users = ids,
                Err(err) => tracing::warn!(error = %err, "payment event recipients"),
            },
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "payment event recipients"),
        }
    }
    state.events.publish(DomainEvent::new(kind, users, data));
}

/// Records that `new_total` of the payment is now refunded (never lowering what was
/// recorded), and takes the plan back when the payment is fully refunded and no other
/// payment keeps the page premium.
async fn record_cancellation(
    state: &AppState,
    row: &payment::Model,
    new_total: i64,
    provider_status: &str,
) -> Result<()> {
    let now = Utc::now();
    let full = new_total >= row.amount;
    let to = if full {
        PaymentStatus::Cancelled
    } else {
        PaymentStatus::PartiallyCancelled
    };
    let txn = begin_write(&state.db).await?;
    // Before counting the page's other payments in force: a concurrent refund of
    // another payment of this page waits here and then sees this one's outcome.
    if let Some(page_id) = &row.page_id {
        lock_page(&txn, page_id).await?;
    }
    let update = |from: &'static [PaymentStatus]| {
        payment::Entity::update_many()
            .col_expr(payment::Column::Status, Expr::value(to))
            .col_expr(payment::Column::CancelledAmount, Expr::value(new_total))
            .col_expr(
                payment::Column::ProviderStatus,
                Expr::value(provider_status.to_owned()),
            )
            .col_expr(payment::Column::CancelledAt, Expr::value(now))
            .col_expr(payment::Column::UpdatedAt, Expr::value(now))
            .filter(payment::Column::Id.eq(row.id.clone()))
            .filter(payment::Column::CancelledAmount.lt(new_total))
            .filter(payment::Column::Status.is_in(from.iter().copied()))
    };
    let was_in_force = update(&PaymentStatus::IN_FORCE)
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !was_in_force {
        // Cancelled before we ever saw it paid: nothing to take back.
        update(&PaymentStatus::OPEN).exec(&txn).await?;
    }
    let mut revoked = false;
    if was_in_force
        && full
        && let Some(page_id) = &row.page_id
    {
        let others = payment::Entity::find()
            .filter(payment::Column::PageId.eq(page_id.clone()))
            .filter(payment::Column::Status.is_in(PaymentStatus::IN_FORCE))
            .count(&txn)
            .await?;
        if others == 0 {
            set_plan(&txn, page_id, Plan::Free).await?;
            revoked = true;
        }
    }
    txn.commit().await?;
    if was_in_force {
        tracing::info!(payment_id = %row.id, cancelled = new_total, revoked, "payment refunded");
        publish(
            state,
            row,
            "payment.cancelled",
            json!({"paymentId": row.id, "pageId": row.page_id, "cancelledAmount": new_total,
                   "fullyCancelled": full, "planRevoked": revoked}),
        )
        .await;
    }
    Ok(())
}

/// Who asks for a refund; the owner is bound by the refund policy, an admin is not.
#[derive(Clone, Debug)]
pub enum Actor {
    Owner(String),
    Admin(String),
}

/// Refunds `amount` (all that is left when `None`) through PortOne and records it.
///
/// Policy for owners: within `PAYMENT_REFUND_WINDOW_DAYS` of payment and before the
/// wedding. PortOne is told the balance we believe is left
/// (`currentCancellableAmount`), so a refund based on stale data is refused rather
/// than doubled.
#[tracing::instrument(skip_all, fields(payment_id = %row.id))]
pub async fn cancel_payment(
    state: &AppState,
    row: payment::Model,
    amount: Option<i64>,
    reason: &str,
    actor: Actor,
) -> Result<payment::Model> {
    portone_config(state)?;
    if !PaymentStatus::IN_FORCE.contains(&row.status) {
        return Err(Error::conflict(
            "payment_not_refundable",
            "only a paid payment can be refunded",
        ));
    }
    let remaining = row.amount - row.cancelled_amount;
    let amount = amount.unwrap_or(remaining);
    if amount <= 0 || amount > remaining {
        return Err(Error::validation(
            "amount",
            format!("amount must be between 1 and {remaining}"),
        ));
    }
    if let Actor::Owner(_) = &actor {
        // A partial refund keeps the plan; an owner could otherwise get back all but
        // one won and stay premium. Partial refunds are an admin's decision.
        if amount != remaining {
            return Err(Error::validation(
                "amount",
                format!("owners can refund only the whole remaining amount ({remaining})"),
            )
            .into_code("partial_refund_not_allowed"));
        }
        check_refund_policy(state, &row).await?;
    }
    let requester = match &actor {
        Actor::Owner(_) => "CUSTOMER",
        Actor::Admin(_) => "ADMIN",
    };
    claim_refund(state, &row).await?;
    let sent = client(state)?
        .cancel(&row.id, amount, reason, remaining, requester)
        .await;
    if !matches!(&sent, Ok(c) if c.status == "SUCCEEDED" || c.status == "REQUESTED") {
        release_refund(state, &row).await;
    }
    let cancellation = sent.map_err(|e| match e {
        ProviderError::Api { kind, .. }
            if matches!(
                kind.as_str(),
                "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"
                    | "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"
                    | "PAYMENT_ALREADY_CANCELLED"
                    | "PAYMENT_NOT_PAID"
            ) =>
        {
            tracing::warn!(payment_id = %row.id, kind, "PortOne refused the refund");
            Error::conflict(
                "refund_conflict",
                "the payment's refundable balance changed; reload and try again",
            )
        }
        other => provider_error(&row.id, other),
    })?;
    tracing::info!(payment_id = %row.id, ?actor, amount, status = %cancellation.status, "refund requested");
    match cancellation.status.as_str() {
        "SUCCEEDED" => {
            let provider_status = if row.cancelled_amount + amount >= row.amount {
                "CANCELLED"
            } else {
                "PARTIAL_CANCELLED"
            };
            record_cancellation(state, &row, row.cancelled_amount + amount, provider_status)
                .await?;
        }
        // Some methods (virtual accounts) refund later; the webhook records it then.
        "REQUESTED" => {}
        _ => {
            return Err(Error::new(
                StatusCode::BAD_GATEWAY,
                "refund_failed",
                "the payment provider could not refund the payment",
            ));
        }
    }
    reload(state, &row.id).await
}

/// Marks a refund of the payment's current balance as sent, so that concurrent refund
/// requests send PortOne one cancel, not several (the others get 409). A claim older
/// than twice the PortOne timeout (an instance died mid-call) can be taken over.
async fn claim_refund(state: &AppState, row: &payment::Model) -> Result<()> {
    let timeout = portone_config(state)?.timeout * 2;
    let now = Utc::now();
    let stale = now - Duration::from_std(timeout).unwrap_or(Duration::seconds(60));
    let res = payment::Entity::update_many()
        .col_expr(
            payment::Column::ProviderStatus,
            Expr::value(REFUND_CLAIM.to_owned()),
        )
        .col_expr(payment::Column::UpdatedAt, Expr::value(now))
        .filter(payment::Column::Id.eq(row.id.clone()))
        .filter(payment::Column::Status.is_in(PaymentStatus::IN_FORCE))
        .filter(payment::Column::CancelledAmount.eq(row.cancelled_amount))
        .filter(
            Condition::any()
                .add(payment::Column::ProviderStatus.is_null())
                .add(payment::Column::ProviderStatus.ne(REFUND_CLAIM))
                .add(payment::Column::UpdatedAt.lt(stale)),
        )
        .exec(&state.db)
        .await?;
    if res.rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::conflict(
            "refund_in_progress",
            "a refund of this payment is already under way; reload and try again",
        ))
    }
}

/// Gives the claim back after PortOne refused or could not be reached.
async fn release_refund(state: &AppState, row: &payment::Model) {
    let res = payment::Entity::update_many()
        .col_expr(
            payment::Column::ProviderStatus,
            Expr::value(row.provider_status.clone()),
        )
        .filter(payment::Column::Id.eq(row.id.clone()))
        .filter(payment::Column::ProviderStatus.eq(REFUND_CLAIM))
        .exec(&state.db)
        .await;
    if let Err(e) = res {
        // The claim then lapses by itself after twice the PortOne timeout.
        tracing::warn!(payment_id = %row.id, error = %e, "refund claim not released");
    }
}

/// `provider_status` while a refund request is out at PortOne.
const REFUND_CLAIM: &str = "CANCEL_REQUESTED";

async fn check_refund_policy(state: &AppState, row: &payment::Model) -> Result<()> {
    let now = Utc::now();
    let window = Duration::days(state.cfg.refund_window_days);
    if row.paid_at.is_none_or(|paid| now > paid + window) {
        return Err(Error::conflict(
            "refund_window_closed",
            format!(
                "refunds are possible within {} days of payment",
                state.cfg.refund_window_days
            ),
        ));
    }
    let page = match &row.page_id {
        Some(id) => page::Entity::find_by_id(id.clone()).one(&state.db).await?,
        None => None,
    };
    if page.is_none_or(|p| p.wedding_at <= now) {
        return Err(Error::conflict(
            "refund_window_closed",
            "refunds are not possible once the wedding has taken place",
        ));
    }
    Ok(())
}
