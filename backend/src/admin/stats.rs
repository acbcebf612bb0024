//! Dashboard figures. Counts are plain `COUNT(*)`s; revenue is summed in Rust from
//! the last 30 days' payments so the same code runs on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Asia::Seoul;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
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
    error::{Error, ErrorBody, Result},
    events::status::{EventsStatusOut, live_status},
    extract::Query,
    state::AppState,
};

/// Days of revenue the dashboard shows, today included.
const REVENUE_DAYS: i64 = 30;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_stats))
        .routes(routes!(get_series))
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
    let today = now.with_timezone(&Seoul).date_naive();
    let days = bucket_revenue(&rows, today - Duration::days(REVENUE_DAYS - 1), today);
    Ok(days
        .into_iter()
        .map(|(date, net_krw)| RevenueDay { date, net_krw })
        .collect())
}

/// Net won per Seoul day from `first` to `last` (inclusive). Paid amounts count on the
/// day they were paid; refunds count against the day of the latest refund (the table
/// keeps one cancelled total per payment).
fn bucket_revenue(
    rows: &[payment::Model],
    first: NaiveDate,
    last: NaiveDate,
) -> BTreeMap<NaiveDate, i64> {
    let mut days: BTreeMap<NaiveDate, i64> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| (d, 0))
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
    days
}

/// The longest range one series request may ask for.
const MAX_SERIES_DAYS: i64 = 366;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesIn {
    /// First day (Asia/Seoul), `YYYY-MM-DD`; 29 days before `to` by default.
    pub from: Option<NaiveDate>,
    /// Last day, included; today in Seoul by default. At most 366 days in all.
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesDay {
    /// Calendar day in Korea (Asia/Seoul).
    pub date: NaiveDate,
    pub signups: u64,
    pub pages_created: u64,
    /// First publications that day.
    pub pages_published: u64,
    /// First answers that day (changes are not counted again).
    pub rsvps: u64,
    /// Messages users sent to the assistant.
    pub chat_turns: u64,
    /// Won paid minus won refunded, as in `revenueByDay`.
    pub revenue_krw: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Always `Asia/Seoul`: the days are Korean calendar days.
    pub time_zone: &'static str,
    /// Every day of the range, oldest first, zeros included.
    pub days: Vec<SeriesDay>,
}

/// Daily figures for a chart: signups, pages created and published, RSVPs, chat turns
/// and revenue per Seoul calendar day over `from`..=`to`.
#[utoipa::path(get, path = "/stats/series", tag = "admin", security(("bearer" = [])), params(SeriesIn),
    responses((status = 200, body = SeriesOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn get_series(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(input): Query<SeriesIn>,
) -> Result<Json<SeriesOut>> {
    let to = input
        .to
        .unwrap_or_else(|| Utc::now().with_timezone(&Seoul).date_naive());
    let from = input.from.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(Error::validation("from", "from must not be after to"));
    }
    if (to - from).num_days() >= MAX_SERIES_DAYS {
        return Err(Error::validation(
            "from",
            format!("at most {MAX_SERIES_DAYS} days per request"),
        ));
    }
    let start = seoul_midnight(from);
    let end = seoul_midnight(to + Duration::days(1));
    let db = &state.db;
    let mut days: BTreeMap<NaiveDate, SeriesDay> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|date| {
            (
                date,
                SeriesDay {
                    date,
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut count = |stamps: Vec<DateTime<Utc>>, field: fn(&mut SeriesDay) -> &mut u64| {
        for at in stamps {
            if let Some(day) = days.get_mut(&at.with_timezone(&Seoul).date_naive()) {
                *field(day) += 1;
            }
        }
    };
    count(
        stamps(
            user::Entity::find(),
            user::Column::CreatedAt,
            start,
            end,
            db,
        )
        .await?,
        |d| &mut d.signups,
    );
    count(
        stamps(
            page::Entity::find(),
            page::Column::CreatedAt,
            start,
            end,
            db,
        )
        .await?,
        |d| &mut d.pages_created,
    );
    count(
        stamps(
            page::Entity::find(),
            page::Column::PublishedAt,
            start,
            end,
            db,
        )
        .await?,
        |d| &mut d.pages_published,
    );
    count(
        stamps(
            rsvp::Entity::find(),
            rsvp::Column::CreatedAt,
            start,
            end,
            db,
        )
        .await?,
        |d| &mut d.rsvps,
    );
    let turns = chat_message::Entity::find()
        .filter(chat_message::Column::Role.eq(chat_message::Role::User));
    count(
        stamps(turns, chat_message::Column::CreatedAt, start, end, db).await?,
        |d| &mut d.chat_turns,
    );
    let payments = payment::Entity::find()
        .filter(payment::Column::Currency.eq("KRW"))
        .filter(
            Condition::any()
                .add(
                    payment::Column::PaidAt
                        .gte(start)
                        .and(payment::Column::PaidAt.lt(end)),
                )
                .add(
                    payment::Column::CancelledAt
                        .gte(start)
                        .and(payment::Column::CancelledAt.lt(end)),
                ),
        )
        .all(db)
        .await?;
    for (date, net) in bucket_revenue(&payments, from, to) {
        if let Some(day) = days.get_mut(&date) {
            day.revenue_krw = net;
        }
    }
    Ok(Json(SeriesOut {
        from,
        to,
        time_zone: "Asia/Seoul",
        days: days.into_values().collect(),
    }))
}

/// 00:00 of `day` in Seoul, as UTC (Korea has no daylight saving time).
fn seoul_midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN)
        .and_local_timezone(Seoul)
        .single()
        .expect("Seoul has no ambiguous midnights")
        .with_timezone(&Utc)
}

/// The `column` timestamps of `query`'s rows within `[start, end)`: only that column
/// is read, and the days are bucketed in Rust so both databases run the same code.
async fn stamps<E: EntityTrait>(
    query: sea_orm::Select<E>,
    column: E::Column,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    db: &sea_orm::DatabaseConnection,
) -> Result<Vec<DateTime<Utc>>> {
    Ok(query
        .select_only()
        .column(column)
        .filter(column.gte(start))
        .filter(column.lt(end))
        .into_tuple::<DateTime<Utc>>()
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

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

        let days: Vec<(NaiveDate, i64)> = bucket_revenue(&rows, today - Duration::days(29), today)
            .into_iter()
            .collect();
        assert_eq!(days.len(), 30);
        assert_eq!(days[0].0, NaiveDate::from_ymd_opt(2026, 10, 25).unwrap());
        assert_eq!(days[29].0, today);
        assert_eq!(days[29].1, 19_900 - 5_000);
        assert_eq!(days[28].1, 19_900);
        assert_eq!(days.iter().map(|d| d.1).sum::<i64>(), 34_800);
    }
}
