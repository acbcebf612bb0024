use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::{
    service::{self, Actor},
    webhook,
};
use crate::{
    auth::AuthUser,
    db::{
        page::Plan,
        payment::{self, PaymentStatus},
    },
    error::{Error, ErrorBody, Result},
    extract::{Path, Query, ValidatedJson},
    pages::access::{Need, load_page},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

/// Nested under `/api/payments`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(prepare_payment))
        .routes(routes!(complete_payment))
        .routes(routes!(webhook::receive_webhook))
        .routes(routes!(list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(cancel_payment))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrepareIn {
    #[validate(length(min = 1, max = 26))]
    #[schema(min_length = 1, max_length = 26)]
    pub page_id: String,
    /// Only `premium` is for sale.
    pub plan: Plan,
}

/// What the browser SDK's `requestPayment` needs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrepareOut {
    pub payment_id: String,
    pub store_id: String,
    pub channel_key: String,
    pub order_name: String,
    pub total_amount: i64,
    /// ISO 4217 (`KRW`).
    pub currency: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompleteIn {
    #[validate(length(min = 1, max = 40))]
    #[schema(min_length = 1, max_length = 40)]
    pub payment_id: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelIn {
    #[validate(length(min = 1, max = 200))]
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
    /// Amount to refund; everything still refundable when absent.
    #[validate(range(min = 1))]
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOut {
    pub id: String,
    pub page_id: Option<String>,
    pub plan: Plan,
    pub order_name: String,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub cancelled_amount: i64,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<payment::Model> for PaymentOut {
    fn from(m: payment::Model) -> Self {
        PaymentOut {
            id: m.id,
            page_id: m.page_id,
            plan: m.plan,
            order_name: m.order_name,
            amount: m.amount,
            currency: m.currency,
            status: m.status,
            cancelled_amount: m.cancelled_amount,
            paid_at: m.paid_at,
            cancelled_at: m.cancelled_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// The caller's payment; anyone else's is 404. Admins see every payment.
async fn load_payment(state: &AppState, id: &str, user: &AuthUser) -> Result<payment::Model> {
    payment::Entity::find_by_id(id.to_owned())
        .one(&state.db)
        .await?
        .filter(|p| p.user_id == user.id || user.is_admin())
        .ok_or_else(|| Error::not_found("payment"))
}

/// Start paying for a plan (page owner only).
///
/// The amount comes from the server's price table. The answer is what the browser
/// SDK needs to open the payment window.
#[utoipa::path(post, path = "/prepare", tag = "payments", security(("bearer" = [])), request_body = PrepareIn,
    responses((status = 201, body = PrepareOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn prepare_payment(
    State(state): State<AppState>,
    auth: AuthUser,
    ValidatedJson(input): ValidatedJson<PrepareIn>,
) -> Result<(StatusCode, Json<PrepareOut>)> {
    let cfg = service::portone_config(&state)?;
    let row = service::prepare_payment(&state, &auth, &input.page_id, input.plan).await?;
    Ok((
        StatusCode::CREATED,
        Json(PrepareOut {
            payment_id: row.id,
            store_id: row.store_id,
            channel_key: cfg.channel_key.clone(),
            order_name: row.order_name,
            total_amount: row.amount,
            currency: row.currency,
        }),
    ))
}

/// Confirm a payment after the browser SDK returns.
///
/// The server asks PortOne for the payment and trusts only that answer: `PAID` with
/// our amount, currency and store applies the plan; `VIRTUAL_ACCOUNT_ISSUED` waits for
/// the deposit; anything that does not match is refused (409 `payment_mismatch`) and
/// held for review. Calling it again is harmless.
#[utoipa::path(post, path = "/complete", tag = "payments", security(("bearer" = [])), request_body = CompleteIn,
    responses((status = 200, body = PaymentOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn complete_payment(
    State(state): State<AppState>,
    auth: AuthUser,
    ValidatedJson(input): ValidatedJson<CompleteIn>,
) -> Result<Json<PaymentOut>> {
    service::portone_config(&state)?;
    let row = load_payment(&state, &input.payment_id, &auth).await?;
    let row = service::sync_payment(&state, row).await?;
    Ok(Json(row.into()))
}

/// The caller's payments, newest first.
#[utoipa::path(get, path = "", tag = "payments", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Paginated<PaymentOut>)))]
async fn list_payments(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<Json<Paginated<PaymentOut>>> {
    let query = payment::Entity::find()
        .filter(payment::Column::UserId.eq(auth.id.clone()))
        .order_by_desc(payment::Column::Id);
    Ok(Json(paginate(&state.db, query, params, Into::into).await?))
}

#[utoipa::path(get, path = "/{id}", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = PaymentOut), (status = 404, body = ErrorBody)))]
async fn get_payment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    Ok(Json(load_payment(&state, &id, &auth).await?.into()))
}

/// Refund a payment, fully or in part.
///
/// The page's owner may refund within the refund window after payment and before the
/// wedding; an admin may refund any time. A full refund takes the plan back.
#[utoipa::path(post, path = "/{id}/cancel", tag = "payments", security(("bearer" = [])), request_body = CancelIn,
    responses((status = 200, body = PaymentOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn cancel_payment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<CancelIn>,
) -> Result<Json<PaymentOut>> {
    service::portone_config(&state)?;
    let row = payment::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::not_found("payment"))?;
    let actor = if auth.is_admin() {
        Actor::Admin(auth.id.clone())
    } else {
        // The page's owner decides about its payments; editors 403, others 404.
        let page_id = row
            .page_id
            .clone()
            .ok_or_else(|| Error::not_found("payment"))?;
        load_page(&state.db, &page_id, &auth, Need::Own)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::NOT_FOUND {
                    Error::not_found("payment")
                } else {
                    e
                }
            })?;
        Actor::Owner(auth.id.clone())
    };
    let row =
        service::cancel_payment(&state, row, input.amount, input.reason.trim(), actor).await?;
    Ok(Json(row.into()))
}
