//! Pages paid twice before the one-open-order rule existed: every page with more than
//! one payment in force keeps its first (earliest `paid_at`, then creation) and the
//! others are held for review — `suspicious`, reason `duplicate_paid_order`, one
//! admin-audit row by `system` (action `payment.hold`) — so an admin sees them among
//! the suspicious payments. Runs at every start-up after the migrations; idempotent:
//! a held payment is no longer in force, and the conditional update lets one instance
//! only hold each row (the audit row is written with it, in one transaction).

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func},
};
use serde_json::json;

use crate::{
    admin::audit,
    db::{
        begin_write,
        payment::{self, PaymentStatus},
    },
};

pub const REASON: &str = "duplicate_paid_order";
/// The `adminId` of audit rows that no person wrote.
pub const SYSTEM_ACTOR: &str = "system";

/// Holds every extra payment in force, of every page or only of `only_pages`;
/// returns the ids it held.
pub async fn hold_duplicate_paid_orders(
    db: &sea_orm::DatabaseConnection,
    only_pages: Option<&[String]>,
) -> Result<Vec<String>, DbErr> {
    let mut query = payment::Entity::find();
    if let Some(ids) = only_pages {
        query = query.filter(payment::Column::PageId.is_in(ids.iter().cloned()));
    }
    let pages: Vec<String> = query
        .select_only()
        .column(payment::Column::PageId)
        .filter(payment::Column::Status.is_in(PaymentStatus::IN_FORCE))
        .filter(payment::Column::PageId.is_not_null())
        .group_by(payment::Column::PageId)
        .having(Expr::expr(Func::count(Expr::col(payment::Column::Id))).gt(1))
        .into_tuple::<Option<String>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let mut held = Vec::new();
    for page_id in pages {
        let txn = begin_write(db).await?;
        let rows = payment::Entity::find()
            .filter(payment::Column::PageId.eq(page_id.clone()))
            .filter(payment::Column::Status.is_in(PaymentStatus::IN_FORCE))
            .order_by_asc(payment::Column::PaidAt)
            .order_by_asc(payment::Column::CreatedAt)
            .order_by_asc(payment::Column::Id)
            .all(&txn)
            .await?;
        // NULL `paid_at` sorts first on SQLite and last on PostgreSQL: keep the
        // earliest known payment whichever way the database sorts.
        let keep = rows
            .iter()
            .filter(|r| r.paid_at.is_some())
            .min_by_key(|r| (r.paid_at, r.created_at))
            .or(rows.first())
            .map(|r| r.id.clone());
        for row in rows.iter().filter(|r| Some(&r.id) != keep.as_ref()) {
            if hold(&txn, row).await? {
                held.push(row.id.clone());
            }
        }
        txn.commit().await?;
    }
    Ok(held)
}

async fn hold<C: ConnectionTrait>(txn: &C, row: &payment::Model) -> Result<bool, DbErr> {
    let res = payment::Entity::update_many()
        .col_expr(
            payment::Column::Status,
            Expr::value(PaymentStatus::Suspicious),
        )
        .col_expr(payment::Column::FailureReason, Expr::value(REASON))
        .col_expr(payment::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payment::Column::Id.eq(row.id.clone()))
        .filter(payment::Column::Status.is_in(PaymentStatus::IN_FORCE))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(false);
    }
    audit::record(
        txn,
        audit::Entry {
            admin_id: SYSTEM_ACTOR,
            action: "payment.hold",
            target_type: "payment",
            target_id: &row.id,
            before: Some(json!({"status": row.status})),
            after: Some(json!({"status": PaymentStatus::Suspicious, "failureReason": REASON})),
            reason: Some(REASON),
        },
    )
    .await
    .map_err(|e| DbErr::Custom(e.to_string()))?;
    tracing::warn!(
        target: "payments::audit",
        payment_id = %row.id,
        user_id = %row.user_id,
        page_id = ?row.page_id,
        amount = row.amount,
        reason = REASON,
        "second paid order of a page held for review"
    );
    Ok(true)
}
