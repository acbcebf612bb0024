//! Payments for operators: list and filter, one payment with PortOne's own view of it,
//! and refunds (full or partial) through the Payments module's cancel path.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::{
    audit,
    list::{Filters, ListQuery, SortParams, sorted},
};
use crate::{
    auth::AdminUser,
    db::{
        begin_write,
        page::Plan,
        payment::{self, PaymentStatus},
    },
    error::{Error, ErrorBody, Result},
    extract::{Path, ValidatedJson},
    pagination::{PageParams, Paginated, paginate},
    payments::{
        portone::PortOne,
        service::{self, Actor},
    },
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(refund_payment))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminPaymentOut {
    pub id: String,
    pub page_id: Option<String>,
    pub user_id: String,
    pub plan: Plan,
    pub order_name: String,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub cancelled_amount: i64,
    pub provider_status: Option<String>,
    /// Why the payment was marked suspicious or failed.
    pub failure_reason: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<payment::Model> for AdminPaymentOut {
    fn from(m: payment::Model) -> Self {
        AdminPaymentOut {
            id: m.id,
            page_id: m.page_id,
            user_id: m.user_id,
            plan: m.plan,
            order_name: m.order_name,
            amount: m.amount,
            currency: m.currency,
            status: m.status,
            cancelled_amount: m.cancelled_amount,
            provider_status: m.provider_status,
            failure_reason: m.failure_reason,
            paid_at: m.paid_at,
            cancelled_at: m.cancelled_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PaymentSearch {
    pub status: Option<PaymentStatus>,
    /// `true`: only payments whose PortOne answer did not match ours; `false`: the rest.
    pub suspicious: Option<bool>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The paying user's id.
    #[validate(length(max = 40))]
    pub user_id: Option<String>,
    /// The page paid for.
    #[validate(length(max = 40))]
    pub page_id: Option<String>,
}

impl Filters for PaymentSearch {
    const FIELDS: &'static [&'static str] =
        &["status", "suspicious", "from", "to", "userId", "pageId"];
    const SORTS: &'static [&'static str] = &["createdAt", "paidAt", "amount", "updatedAt"];
}

/// Payments, newest first (or by `sort`), filtered by status, suspicion, creation
/// time, user and page.
#[utoipa::path(get, path = "/payments", tag = "admin", security(("bearer" = [])), params(PaymentSearch, PageParams, SortParams),
    responses((status = 200, body = Paginated<AdminPaymentOut>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_payments(
    State(state): State<AppState>,
    _admin: AdminUser,
    list: ListQuery<PaymentSearch>,
) -> Result<Json<Paginated<AdminPaymentOut>>> {
    let search = list.filters;
    let mut query = payment::Entity::find();
    if let Some(status) = search.status {
        query = query.filter(payment::Column::Status.eq(status));
    }
    match search.suspicious {
        Some(true) => query = query.filter(payment::Column::Status.eq(PaymentStatus::Suspicious)),
        Some(false) => query = query.filter(payment::Column::Status.ne(PaymentStatus::Suspicious)),
        None => {}
    }
    if let Some(from) = search.from {
        query = query.filter(payment::Column::CreatedAt.gte(from));
    }
    if let Some(to) = search.to {
        query = query.filter(payment::Column::CreatedAt.lt(to));
    }
    if let Some(user) = search.user_id.filter(|u| !u.is_empty()) {
        query = query.filter(payment::Column::UserId.eq(user));
    }
    if let Some(page) = search.page_id.filter(|p| !p.is_empty()) {
        query = query.filter(payment::Column::PageId.eq(page));
    }
    let column = match list.sort {
        "paidAt" => payment::Column::PaidAt,
        "amount" => payment::Column::Amount,
        "updatedAt" => payment::Column::UpdatedAt,
        _ => payment::Column::CreatedAt,
    };
    let query = sorted(query, column, payment::Column::Id, list.order);
    Ok(Json(
        paginate(&state.db, query, list.paging, AdminPaymentOut::from).await?,
    ))
}

/// What PortOne says about the payment right now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderView {
    pub status: String,
    pub total: i64,
    pub paid: i64,
    pub cancelled: i64,
    pub currency: String,
    /// `LIVE` or `TEST`.
    pub channel_type: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetailOut {
    pub payment: AdminPaymentOut,
    /// `None` when PortOne could not be asked; see `providerError`.
    pub provider: Option<ProviderView>,
    pub provider_error: Option<String>,
}

async fn load(db: &impl sea_orm::ConnectionTrait, id: &str) -> Result<payment::Model> {
    payment::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("payment"))
}

/// One payment, with PortOne's view of it side by side.
#[utoipa::path(get, path = "/payments/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "payment id")),
    responses((status = 200, body = PaymentDetailOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_payment(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<PaymentDetailOut>> {
    let row = load(&state.db, &id).await?;
    // PortOne being down or unconfigured must not hide our own record.
    let provider = match service::portone_config(&state) {
        Ok(cfg) => PortOne::new(&state.http, cfg)
            .get_payment(&row.id)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (provider, provider_error) = match provider {
        Ok(p) => (
            Some(ProviderView {
                status: p.status,
                total: p.amount.total,
                paid: p.amount.paid,
                cancelled: p.amount.cancelled,
                currency: p.currency,
                channel_type: p.channel.map(|c| c.kind),
            }),
            None,
        ),
        Err(e) => (None, Some(e)),
    };
    Ok(Json(PaymentDetailOut {
        payment: row.into(),
        provider,
        provider_error,
    }))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundIn {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
    /// Amount to refund; everything still refundable when absent.
    #[validate(range(min = 1))]
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
}

/// Refunds a payment fully or partly through PortOne, whatever the owners' refund
/// policy says. The audit row is written once PortOne has accepted the refund: a
/// provider call cannot be part of a database transaction.
#[utoipa::path(post, path = "/payments/{id}/refund", tag = "admin", security(("bearer" = [])), request_body = RefundIn,
    params(("id" = String, Path, description = "payment id")),
    responses((status = 200, body = AdminPaymentOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn refund_payment(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<RefundIn>,
) -> Result<Json<AdminPaymentOut>> {
    let before = load(&state.db, &id).await?;
    let after = service::cancel_payment(
        &state,
        before.clone(),
        input.amount,
        &input.reason,
        Actor::Admin(admin.0.id.clone()),
    )
    .await?;
    let txn = begin_write(&state.db).await?;
    audit::record(
        &txn,
        audit::Entry {
            admin_id: &admin.0.id,
            action: "payment.refund",
            target_type: "payment",
            target_id: &after.id,
            before: audit::snapshot(&AdminPaymentOut::from(before)),
            after: audit::snapshot(&AdminPaymentOut::from(after.clone())),
            reason: Some(&input.reason),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Json(after.into()))
}
