//! Dashboard figures. Counts are plain `COUNT(*)`s; revenue is summed in Rust from
//! the last 30 days' payments so the same code runs on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Asia::Seoul;
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::AdminUser,
    db::{
        chat_message, chat_session, page,
        page::PageStatus,
        payment::{self, PaymentStatus},
        rsvp,
        user::{self, Status},
    },
    error::{ErrorBody, Result},
    events::status::{EventsStatusOut, live_status},
    state::AppState,
};

/// Days of revenue the dashboard shows, today included.
const REVENUE_DAYS: i64 = 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_stats))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserStats {
    pub total: u64,
    pub suspended: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageStats {
    pub total: u64,
    pub published: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatStats {
    pub sessions: u64,
    /// Sessions with a message in the last 24 hours.
    pub active_last_24h: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevenueDay {
    /// Calendar day in Korea (Asia/Seoul), `YYYY-MM-DD`.
    pub date: NaiveDate,
    /// Won paid that day minus won refunded that day.
    pub net_krw: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsOut {
    pub users: UserStats,
    pub pages: PageStats,
    pub rsvps: u64,
    pub chat: ChatStats,
    /// The last 30 days, oldest first, every day present (zero when nothing happened).
    pub revenue_by_day: Vec<RevenueDay>,
    pub revenue_total_krw: i64,
    /// Connected chat sockets and SSE streams, this instance and all live instances
    /// (the same figures as `GET /api/admin/events/status`).
    pub live: EventsStatusOut,
}

/// Figures for the dashboard's front page, live connections across instances included.
#[utoipa::path(get, path = "/stats", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = StatsOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_stats(State(state): State<AppState>, _admin: AdminUser) -> Result<Json<StatsOut>> {
    let db = &state.db;
    let users = UserStats {
        total: user::Entity::find().count(db).await?,
        suspended: user::Entity::find()
            .filter(user::Column::Status.eq(Status::Suspended))
            .count(db)
            .await?,
    };
    let pages = PageStats {
        total: page::Entity::find().count(db).await?,
        published: page::Entity::find()
            .filter(page::Column::Status.eq(PageStatus::Published))
            .count(db)
            .await?,
    };
    let rsvps = rsvp::Entity::find().count(db).await?;
    let day_ago = Utc::now() - Duration::hours(24);
    let chat = ChatStats {
        sessions: chat_session::Entity::find().count(db).await?,
        active_last_24h: chat_message::Entity::find()
            .select_only()
            .column(chat_message::Column::SessionId)
            .distinct()
            .filter(chat_message::Column::CreatedAt.gte(day_ago))
            .count(db)
            .await?,
    };
    let revenue_by_day = revenue_by_day(&state).await?;
    let revenue_total_krw = revenue_by_day.iter().map(|d| d.net_krw).sum();
    Ok(Json(StatsOut {
        users,
        pages,
        rsvps,
        chat,
        revenue_by_day,
        revenue_total_krw,
        live: live_status(&state.notifications).await,
    }))
}

async fn revenue_by_day(state: &AppState) -> Result<Vec<RevenueDay>> {
    let now = Utc::now();
    // A day's margin on the UTC bound; the Seoul-day buckets are the exact filter.
    let since = now - Duration::days(REVENUE_DAYS + 1);
    let rows = payment::Entity::find()
        .filter(payment::Column::Currency.eq("KRW"))
        .filter(
            Condition::any()
                .add(payment::Column::PaidAt.gte(since))
                .add(payment::Column::CancelledAt.gte(since)),
        )
        .all(&state.db)
        .await?;
    Ok(bucket_revenue(
        &rows,
        now.with_timezone(&Seoul).date_naive(),
    ))
}

/// Net won per Seoul day for the [`REVENUE_DAYS`] days ending `today`. Paid amounts
/// count on the day they were paid; refunds count against the day of the latest
/// refund (the table keeps one cancelled total per payment).
fn bucket_revenue(rows: &[payment::Model], today: NaiveDate) -> Vec<RevenueDay> {
    let first = today - Duration::days(REVENUE_DAYS - 1);
    let mut days: BTreeMap<NaiveDate, i64> = (0..REVENUE_DAYS)
        .map(|i| (first + Duration::days(i), 0))
        .collect();
    for row in rows {
        let counted = matches!(
            row.status,
            PaymentStatus::Paid | PaymentStatus::PartiallyCancelled | PaymentStatus::Cancelled
        );
        if !counted || row.currency != "KRW" {
            continue;
        }
        if let Some(paid) = row.paid_at
            && let Some(total) = days.get_mut(&paid.with_timezone(&Seoul).date_naive())
        {
            *total += row.amount;
        }
        if let Some(cancelled) = row.cancelled_at
            && let Some(total) = days.get_mut(&cancelled.with_timezone(&Seoul).date_naive())
        {
            *total -= row.cancelled_amount;
        }
    }
    days.into_iter()
        .map(|(date, net_krw)| RevenueDay { date, net_krw })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone};

    use super::*;
    use crate::db::page::Plan;

    fn paid(amount: i64, at: DateTime<Utc>) -> payment::Model {
        payment::Model {
            id: crate::db::new_id(),
            page_id: None,
            user_id: "u".into(),
            plan: Plan::Premium,
            order_name: "premium".into(),
            amount,
            currency: "KRW".into(),
            store_id: "s".into(),
            status: PaymentStatus::Paid,
            cancelled_amount: 0,
            provider_status: None,
            failure_reason: None,
            paid_at: Some(at),
            cancelled_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn revenue_is_paid_minus_refunded_per_seoul_day() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        // 2026-11-22 23:30 UTC is already the 23rd in Seoul.
        let late_utc = Utc.with_ymd_and_hms(2026, 11, 22, 23, 30, 0).unwrap();
        let yesterday = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        let long_ago = Utc.with_ymd_and_hms(2026, 9, 1, 3, 0, 0).unwrap();
        let mut refunded = paid(19_900, yesterday);
        refunded.status = PaymentStatus::PartiallyCancelled;
        refunded.cancelled_amount = 5_000;
        refunded.cancelled_at = Some(late_utc);
        let mut suspicious = paid(1, late_utc);
        suspicious.status = PaymentStatus::Suspicious;
        let mut dollars = paid(10, late_utc);
        dollars.currency = "USD".into();
        let rows = [
            paid(19_900, late_utc),
            refunded,
            paid(9_900, long_ago),
            suspicious,
            dollars,
        ];

        let days = bucket_revenue(&rows, today);
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].date, NaiveDate::from_ymd_opt(2026, 10, 25).unwrap());
        assert_eq!(days[29].date, today);
        assert_eq!(days[29].net_krw, 19_900 - 5_000);
        assert_eq!(days[28].net_krw, 19_900);
        assert_eq!(days.iter().map(|d| d.net_krw).sum::<i64>(), 34_800);
    }
}
