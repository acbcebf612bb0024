//! RSVP answers: recording (idempotent per guest), the owner's list, summary and CSV.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::AuthUser,
    db::{
        invitation, new_id,
        page::{self, Side},
        rsvp,
    },
    error::{Error, ErrorBody, Result},
    events::DomainEvent,
    extract::{Path, Query},
    pages::{
        access::{Need, load_page, members},
        rsvp_accepting,
    },
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rsvps))
        .routes(routes!(rsvp_summary))
        .routes(routes!(export_rsvps_csv))
}

/// A guest's answer through their invitation.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"attending": true, "partySize": 2, "meal": "한식", "message": "축하드려요!"}))]
pub struct RsvpIn {
    pub attending: bool,
    /// Guests coming, the respondent included (1–10). Ignored when not attending.
    #[validate(range(min = 1, max = 10))]
    #[schema(minimum = 1, maximum = 10)]
    #[serde(default = "one")]
    pub party_size: i32,
    /// One of the page's meal options.
    #[validate(length(max = 50))]
    #[schema(max_length = 50)]
    pub meal: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub message: Option<String>,
}

/// An answer on the public page by someone without an invitation.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"name": "박하객", "phone": "010-5555-6666", "side": "bride", "attending": true, "partySize": 1}))]
pub struct OpenRsvpIn {
    #[validate(length(min = 1, max = 50))]
    #[schema(min_length = 1, max_length = 50)]
    pub name: String,
    /// Identifies the guest: answering again with the same phone changes the answer.
    #[validate(custom(function = "crate::pages::validate::phone"))]
    #[schema(max_length = 20, pattern = "^[0-9+ -]+$", example = "010-1234-5678")]
    pub phone: String,
    pub side: Option<Side>,
    // The answer's fields, as in `RsvpIn`. Not `#[serde(flatten)]`: through a
    // flattened struct neither serde nor validator can name the failing field.
    pub attending: bool,
    #[validate(range(min = 1, max = 10))]
    #[schema(minimum = 1, maximum = 10)]
    #[serde(default = "one")]
    pub party_size: i32,
    #[validate(length(max = 50))]
    #[schema(max_length = 50)]
    pub meal: Option<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub message: Option<String>,
}

impl OpenRsvpIn {
    pub fn answer(&self) -> RsvpIn {
        RsvpIn {
            attending: self.attending,
            party_size: self.party_size,
            meal: self.meal.clone(),
            message: self.message.clone(),
        }
    }
}

fn one() -> i32 {
    1
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RsvpOut {
    pub id: String,
    pub invitation_id: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub side: Option<Side>,
    pub attending: bool,
    pub party_size: i32,
    pub meal: Option<String>,
    pub message: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl From<rsvp::Model> for RsvpOut {
    fn from(m: rsvp::Model) -> Self {
        RsvpOut {
            id: m.id,
            invitation_id: m.invitation_id,
            name: m.name,
            phone: m.phone,
            side: m.side,
            attending: m.attending,
            party_size: m.party_size,
            meal: m.meal,
            message: m.message,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Who is answering: an invited guest or an open-RSVP guest.
pub enum Respondent<'a> {
    Invited(&'a invitation::Model),
    Open {
        name: &'a str,
        phone: &'a str,
        side: Option<Side>,
    },
}

/// Records (or changes) an answer. Checks the page's RSVP settings: closed or past
/// the deadline is 409 `rsvp_closed`; a meal that is not on the menu is 422.
/// One row per guest, written with an upsert, so a double submit cannot make two.
pub async fn record_answer(
    state: &AppState,
    page: &page::Model,
    who: Respondent<'_>,
    answer: RsvpIn,
) -> Result<(rsvp::Model, bool)> {
    if !rsvp_accepting(&page.rsvp) {
        return Err(Error::conflict(
            "rsvp_closed",
            "this page no longer takes RSVPs",
        ));
    }
    let meal = if answer.attending {
        answer
            .meal
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
    } else {
        None
    };
    if let Some(m) = &meal
        && !page.rsvp.meal_options.iter().any(|o| o.trim() == m)
    {
        return Err(Error::validation(
            "meal",
            "not one of this page's meal options",
        ));
    }
    let (dedupe_key, invitation_id, name, phone, side) = match who {
        Respondent::Invited(inv) => (
            format!("inv:{}", inv.id),
            Some(inv.id.clone()),
            inv.guest_name.clone(),
            inv.phone.clone(),
            inv.side,
        ),
        Respondent::Open { name, phone, side } => (
            format!(
                "phone:{}:{}",
                page.id,
                crate::pages::validate::phone_digits(phone)
            ),
            None,
            name.trim().to_owned(),
            Some(phone.to_owned()),
            side,
        ),
    };
    let existing = rsvp::Entity::find()
        .filter(rsvp::Column::DedupeKey.eq(dedupe_key.clone()))
        .one(&state.db)
        .await?;
    let now = Utc::now();
    let row = rsvp::ActiveModel {
        id: Set(new_id()),
        page_id: Set(page.id.clone()),
        invitation_id: Set(invitation_id),
        dedupe_key: Set(dedupe_key.clone()),
        name: Set(name),
        phone: Set(phone),
        side: Set(side),
        attending: Set(answer.attending),
        party_size: Set(if answer.attending {
            answer.party_size
        } else {
            0
        }),
        meal: Set(meal),
        message: Set(answer
            .message
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())),
        created_at: Set(now),
        updated_at: Set(now),
    };
    rsvp::Entity::insert(row)
        .on_conflict(
            OnConflict::column(rsvp::Column::DedupeKey)
                .update_columns([
                    rsvp::Column::Name,
                    rsvp::Column::Phone,
                    rsvp::Column::Side,
                    rsvp::Column::Attending,
                    rsvp::Column::PartySize,
                    rsvp::Column::Meal,
                    rsvp::Column::Message,
                    rsvp::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
    let saved = rsvp::Entity::find()
        .filter(rsvp::Column::DedupeKey.eq(dedupe_key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("rsvp vanished after upsert")))?;
    let created = existing.is_none();
    state.events.publish(DomainEvent::new(
        "rsvp.received",
        members(&state.db, page).await?,
        json!({"pageId": page.id, "rsvpId": saved.id, "name": saved.name, "attending": saved.attending,
               "partySize": saved.party_size, "changed": !created}),
    ));
    Ok((saved, created))
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideSummary {
    pub responses: u64,
    pub attending: u64,
    pub headcount: u64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RsvpSummary {
    pub responses: u64,
    /// Answers saying yes.
    pub attending: u64,
    pub declined: u64,
    /// Guests expected: the party sizes of the yes answers.
    pub headcount: u64,
    /// Meal choice → guests (party size) choosing it.
    pub meals: BTreeMap<String, u64>,
    /// `groom`, `bride` and `unknown`.
    pub by_side: BTreeMap<String, SideSummary>,
}

pub async fn summarize<C: ConnectionTrait>(db: &C, page_id: &str) -> Result<RsvpSummary> {
    let rows = rsvp::Entity::find()
        .filter(rsvp::Column::PageId.eq(page_id))
        .all(db)
        .await?;
    let mut s = RsvpSummary::default();
    for r in rows {
        let party = r.party_size.max(0) as u64;
        s.responses += 1;
        let side = match r.side {
            Some(Side::Groom) => "groom",
            Some(Side::Bride) => "bride",
            None => "unknown",
        };
        let by_side = s.by_side.entry(side.to_owned()).or_default();
        by_side.responses += 1;
        if r.attending {
            s.attending += 1;
            s.headcount += party;
            by_side.attending += 1;
            by_side.headcount += party;
            if let Some(meal) = r.meal {
                *s.meals.entry(meal).or_default() += party;
            }
        } else {
            s.declined += 1;
        }
    }
    Ok(s)
}

/// Every answer, newest change first.
#[utoipa::path(get, path = "/{id}/rsvps", tag = "rsvp", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Paginated<RsvpOut>), (status = 404, body = ErrorBody)))]
async fn list_rsvps(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<Paginated<RsvpOut>>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let query = rsvp::Entity::find()
        .filter(rsvp::Column::PageId.eq(page.id))
        .order_by_desc(rsvp::Column::UpdatedAt)
        .order_by_desc(rsvp::Column::Id);
    Ok(Json(
        paginate(&state.db, query, params, RsvpOut::from).await?,
    ))
}

#[utoipa::path(get, path = "/{id}/rsvps/summary", tag = "rsvp", security(("bearer" = [])),
    responses((status = 200, body = RsvpSummary), (status = 404, body = ErrorBody)))]
async fn rsvp_summary(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<RsvpSummary>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    Ok(Json(summarize(&state.db, &page.id).await?))
}

/// Spreadsheet tools run formulas in cells that start with these; a guest's message
/// must stay text.
fn csv_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// All answers as CSV (UTF-8 with BOM so that spreadsheet tools read Korean right).
#[utoipa::path(get, path = "/{id}/rsvps/export", tag = "rsvp", security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
async fn export_rsvps_csv(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let rows = rsvp::Entity::find()
        .filter(rsvp::Column::PageId.eq(page.id.clone()))
        .order_by_asc(rsvp::Column::Id)
        .all(&state.db)
        .await?;
    let groups: BTreeMap<String, Option<String>> = invitation::Entity::find()
        .filter(invitation::Column::PageId.eq(page.id.clone()))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|i| (i.id, i.group_name))
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let csv_err = |e: csv::Error| Error::internal(e);
    writer
        .write_record([
            "name",
            "side",
            "group",
            "phone",
            "attending",
            "partySize",
            "meal",
            "message",
            "answeredAt",
        ])
        .map_err(csv_err)?;
    for r in rows {
        let group = r
            .invitation_id
            .as_ref()
            .and_then(|id| groups.get(id).cloned().flatten())
            .unwrap_or_default();
        let side = match r.side {
            Some(Side::Groom) => "groom",
            Some(Side::Bride) => "bride",
            None => "",
        };
        writer
            .write_record([
                csv_safe(&r.name),
                side.to_owned(),
                csv_safe(&group),
                csv_safe(r.phone.as_deref().unwrap_or_default()),
                if r.attending { "yes" } else { "no" }.to_owned(),
                r.party_size.to_string(),
                csv_safe(r.meal.as_deref().unwrap_or_default()),
                csv_safe(r.message.as_deref().unwrap_or_default()),
                r.updated_at.to_rfc3339(),
            ])
            .map_err(csv_err)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| Error::internal(anyhow::anyhow!("csv: {e}")))?;
    let mut res = bytes.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"rsvps.csv\""),
    );
    Ok(res)
}
