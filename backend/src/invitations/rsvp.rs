//! RSVP answers: recording (idempotent per guest), the owner's list, summary and CSV.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use crate::{
    auth::AuthUser,
    db::{
        begin_write, invitation, new_id,
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
    /// Identifies the guest's answer (one per phone number on a page).
    #[validate(custom(function = "crate::pages::validate::phone"))]
    #[schema(max_length = 20, pattern = "^[0-9+ -]+$", example = "010-1234-5678")]
    pub phone: String,
    /// Left out when changing an answer: the stored side stays.
    pub side: Option<Side>,
    /// Needed to change an answer: the `editToken` returned by the first one.
    #[validate(length(max = 64))]
    #[schema(max_length = 64)]
    pub edit_token: Option<String>,
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
    /// Only in the answer to a first open RSVP (and to the first change of an answer
    /// given before edit tokens existed): keep it to change the answer later. It is
    /// shown once and stored only as a hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit_token: Option<String>,
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
            edit_token: None,
        }
    }
}

/// Who is answering: an invited guest or an open-RSVP guest.
pub enum Respondent<'a> {
    Invited(&'a invitation::Model),
    Open {
        name: &'a str,
        phone: &'a str,
        /// `None` keeps the side already stored.
        side: Option<Side>,
        /// The token returned with the first answer; needed to change it.
        edit_token: Option<&'a str>,
    },
}

/// A recorded answer: the row, whether it is new, and (first open answer only) the
/// edit token to show the guest once.
pub struct Recorded {
    pub row: rsvp::Model,
    pub created: bool,
    pub edit_token: Option<String>,
}

impl Recorded {
    pub fn status(&self) -> StatusCode {
        if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        }
    }

    pub fn into_out(self) -> RsvpOut {
        RsvpOut {
            edit_token: self.edit_token,
            ..self.row.into()
        }
    }
}

/// 32 symbols of 56 (about 186 bits).
fn edit_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The answer's fields as they will be stored.
struct Answer {
    name: String,
    phone: Option<String>,
    side: Option<Side>,
    attending: bool,
    party_size: i32,
    meal: Option<String>,
    message: Option<String>,
}

impl Answer {
    /// Whether `row` already holds exactly this answer (a repeated submit).
    fn same_as(&self, row: &rsvp::Model) -> bool {
        self.name == row.name
            && self.side.is_none_or(|s| Some(s) == row.side)
            && self.attending == row.attending
            && self.party_size == row.party_size
            && self.meal == row.meal
            && self.message == row.message
    }
}

/// Records (or changes) an answer. Checks the page's RSVP settings: closed or past
/// the deadline is 409 `rsvp_closed`; a meal that is not on the menu is 422.
///
/// One row per guest, in one transaction: the insert either creates the row (201) or
/// finds it there (a double submit, or a change: 200), the members to notify are read
/// in the same transaction, and the event is raised only after the commit. An open
/// answer is changed only with the edit token returned by the first one (or by
/// sending the identical answer again); without it the answer is 409
/// `rsvp_edit_token_required` and nothing changes.
pub async fn record_answer(
    state: &AppState,
    page: &page::Model,
    who: Respondent<'_>,
    answer: RsvpIn,
) -> Result<Recorded> {
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
    let (dedupe_key, invitation_id, name, phone, side, presented) = match who {
        Respondent::Invited(inv) => (
            format!("inv:{}", inv.id),
            Some(inv.id.clone()),
            inv.guest_name.clone(),
            inv.phone.clone(),
            inv.side,
            None,
        ),
        Respondent::Open {
            name,
            phone,
            side,
            edit_token,
        } => (
            format!(
                "phone:{}:{}",
                page.id,
                crate::pages::validate::phone_digits(phone)
            ),
            None,
            name.trim().to_owned(),
            Some(phone.to_owned()),
            side,
            Some(edit_token),
        ),
    };
    let is_open = presented.is_some();
    let fields = Answer {
        name,
        phone,
        side,
        attending: answer.attending,
        party_size: if answer.attending {
            answer.party_size
        } else {
            0
        },
        meal,
        message: answer
            .message
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty()),
    };
    let token = is_open.then(edit_token);
    let now = Utc::now();
    let txn = begin_write(&state.db).await?;
    // ON CONFLICT DO NOTHING: of two racing first answers exactly one inserts; the
    // other waits for it (PostgreSQL) or for the write lock (SQLite) and sees the row.
    let inserted = rsvp::Entity::insert(rsvp::ActiveModel {
        id: Set(new_id()),
        page_id: Set(page.id.clone()),
        invitation_id: Set(invitation_id),
        dedupe_key: Set(dedupe_key.clone()),
        name: Set(fields.name.clone()),
        phone: Set(fields.phone.clone()),
        side: Set(fields.side),
        attending: Set(fields.attending),
        party_size: Set(fields.party_size),
        meal: Set(fields.meal.clone()),
        message: Set(fields.message.clone()),
        edit_token_hash: Set(token.as_deref().map(token_hash)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(rsvp::Column::DedupeKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let created = inserted == 1;
    let current = rsvp::Entity::find()
        .filter(rsvp::Column::DedupeKey.eq(dedupe_key))
        .one(&txn)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("rsvp missing after insert")))?;
    let (saved, edit_token) = if created {
        (current, token)
    } else {
        change_answer(&txn, current, fields, presented.flatten(), token).await?
    };
    let recipients = members(&txn, page).await?;
    txn.commit().await?;
    state.events.publish(DomainEvent::new(
        "rsvp.received",
        recipients,
        json!({"pageId": page.id, "rsvpId": saved.id, "name": saved.name, "attending": saved.attending,
               "partySize": saved.party_size, "changed": !created}),
    ));
    Ok(Recorded {
        row: saved,
        created,
        edit_token,
    })
}

/// Applies a new answer to an existing row. For an open RSVP the caller must hold
/// the row's edit token, unless the answer is identical (a repeated submit) or the
/// row predates edit tokens (it is then given one, returned to this caller).
async fn change_answer<C: ConnectionTrait>(
    db: &C,
    current: rsvp::Model,
    fields: Answer,
    presented: Option<&str>,
    fresh_token: Option<String>,
) -> Result<(rsvp::Model, Option<String>)> {
    let is_open = fresh_token.is_some();
    let mut new_token = None;
    if is_open {
        match (&current.edit_token_hash, presented) {
            (Some(stored), Some(p)) if token_hash(p) == *stored => {}
            (Some(_), _) if fields.same_as(&current) => return Ok((current, None)),
            (Some(_), Some(_)) => {
                return Err(
                    Error::forbidden("the edit token does not match this answer")
                        .into_code("rsvp_edit_token_invalid")
                        .with_field("editToken"),
                );
            }
            (Some(_), None) => {
                return Err(Error::conflict(
                    "rsvp_edit_token_required",
                    "this phone number has already answered; send the editToken returned with that answer to change it",
                )
                .with_field("editToken"));
            }
            (None, _) => new_token = fresh_token,
        }
    }
    let side = fields.side.or(current.side);
    let mut m = current.into_active_model();
    m.name = Set(fields.name);
    m.phone = Set(fields.phone);
    m.side = Set(if is_open { side } else { fields.side });
    m.attending = Set(fields.attending);
    m.party_size = Set(fields.party_size);
    m.meal = Set(fields.meal);
    m.message = Set(fields.message);
    if let Some(t) = &new_token {
        m.edit_token_hash = Set(Some(token_hash(t)));
    }
    Ok((m.update(db).await?, new_token))
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
    // Every side is present, with zeros when nobody answered for it.
    for side in ["groom", "bride", "unknown"] {
        s.by_side.insert(side.to_owned(), SideSummary::default());
    }
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
