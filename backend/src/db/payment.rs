//! A premium-plan payment through PortOne. Amounts are integers in the currency's
//! minor unit (KRW has none, so won).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::page::Plan;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    /// `pay_<ulid>`; the paymentId PortOne knows the payment by.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `None` once the page has been deleted; the record stays for accounting.
    pub page_id: Option<String>,
    /// Who started the payment (the page's owner at the time).
    pub user_id: String,
    pub plan: Plan,
    pub order_name: String,
    /// What we asked for, from our own price table; PortOne's answer must match it.
    pub amount: i64,
    pub currency: String,
    pub store_id: String,
    pub status: PaymentStatus,
    pub cancelled_amount: i64,
    /// PortOne's status when we last looked (`PAID`, `VIRTUAL_ACCOUNT_ISSUED`, ...).
    pub provider_status: Option<String>,
    /// Why a payment was marked suspicious or failed; for the admin.
    pub failure_reason: Option<String>,
    pub paid_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Prepared; the buyer has not paid (or we have not seen it yet).
    #[sea_orm(string_value = "pending")]
    Pending,
    /// A virtual account was issued; waiting for the deposit.
    #[sea_orm(string_value = "awaiting_deposit")]
    AwaitingDeposit,
    #[sea_orm(string_value = "paid")]
    Paid,
    #[sea_orm(string_value = "partially_cancelled")]
    PartiallyCancelled,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// PortOne's answer did not match what we asked for; never applied.
    #[sea_orm(string_value = "suspicious")]
    Suspicious,
}

impl PaymentStatus {
    /// States from which a payment may still become paid.
    pub const OPEN: [PaymentStatus; 2] = [PaymentStatus::Pending, PaymentStatus::AwaitingDeposit];
    /// States in which PortOne's word that the payment is PAID is applied. A failed
    /// attempt can be followed by a successful one under the same payment id.
    pub const PAYABLE: [PaymentStatus; 3] = [
        PaymentStatus::Pending,
        PaymentStatus::AwaitingDeposit,
        PaymentStatus::Failed,
    ];
    /// States in which the plan is in force.
    pub const IN_FORCE: [PaymentStatus; 2] =
        [PaymentStatus::Paid, PaymentStatus::PartiallyCancelled];
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

crate::db::timestamped_active_model!();
