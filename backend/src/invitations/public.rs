//! Guests' side: the personal invitation and the RSVP forms.

use axum::{Json, extract::State, http::StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::rsvp::{OpenRsvpIn, Respondent, RsvpIn, RsvpOut, record_answer};
use crate::{
    db::{
        invitation,
        page::{self, PageStatus, Side},
        rsvp,
    },
    error::{Error, ErrorBody, Result},
    extract::{ClientIp, Path, ValidatedJson},
    pages::{dto::PublicPageOut, public::find_published},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_invitation))
        .routes(routes!(answer_invitation))
        .routes(routes!(answer_open_rsvp))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuestOut {
    pub name: String,
    pub side: Option<Side>,
    pub group: Option<String>,
}

/// The page personalised for one guest, with their current answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonalInvitationOut {
    pub guest: GuestOut,
    pub page: PublicPageOut,
    pub rsvp: Option<RsvpOut>,
}

/// An invitation whose page is published; anything else is 404.
async fn find_invitation(state: &AppState, code: &str) -> Result<(invitation::Model, page::Model)> {
    let not_found = || Error::not_found("invitation");
    if code.len() > 32 {
        return Err(not_found());
    }
    let inv = invitation::Entity::find()
        .filter(invitation::Column::Code.eq(code))
        .one(&state.db)
        .await?
        .ok_or_else(not_found)?;
    let page = page::Entity::find_by_id(inv.page_id.clone())
        .one(&state.db)
        .await?
        .filter(|p| p.status == PageStatus::Published)
        .ok_or_else(not_found)?;
    Ok((inv, page))
}

#[utoipa::path(get, path = "/invitations/{code}", tag = "public",
    responses((status = 200, body = PersonalInvitationOut), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn get_invitation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> Result<Json<PersonalInvitationOut>> {
    state.limiters.public_read.check(&ip)?;
    let (inv, page) = find_invitation(&state, &code).await?;
    let answer = rsvp::Entity::find()
        .filter(rsvp::Column::InvitationId.eq(inv.id.clone()))
        .one(&state.db)
        .await?
        .map(RsvpOut::from);
    state.views.record(&page.id);
    let gallery = crate::files::gallery_items(&state, &page.gallery.0).await?;
    Ok(Json(PersonalInvitationOut {
        guest: GuestOut {
            name: inv.guest_name,
            side: inv.side,
            group: inv.group_name,
        },
        page: PublicPageOut::new(page, gallery),
        rsvp: answer,
    }))
}

/// Answer (or change the answer) for an invited guest. 201 the first time, then 200.
#[utoipa::path(post, path = "/invitations/{code}/rsvp", tag = "public", request_body = RsvpIn,
    responses((status = 201, body = RsvpOut), (status = 200, body = RsvpOut), (status = 404, body = ErrorBody),
        (status = 409, description = "RSVP closed or past its deadline", body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn answer_invitation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
    ValidatedJson(answer): ValidatedJson<RsvpIn>,
) -> Result<(StatusCode, Json<RsvpOut>)> {
    state.limiters.public_write.check(&ip)?;
    let (inv, page) = find_invitation(&state, &code).await?;
    let recorded = record_answer(&state, &page, Respondent::Invited(&inv), answer).await?;
    Ok((recorded.status(), Json(recorded.into_out())))
}

/// Answer on the public page with name and phone, when the page allows open RSVPs.
#[utoipa::path(post, path = "/pages/{slug}/rsvp", tag = "public", request_body = OpenRsvpIn,
    responses((status = 201, body = RsvpOut), (status = 200, body = RsvpOut), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn answer_open_rsvp(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(slug): Path<String>,
    ValidatedJson(input): ValidatedJson<OpenRsvpIn>,
) -> Result<(StatusCode, Json<RsvpOut>)> {
    state.limiters.public_write.check(&ip)?;
    let page = find_published(&state.db, &slug).await?;
    if !page.rsvp.allow_open {
        return Err(
            Error::forbidden("this page takes RSVPs only through personal invitations")
                .into_code("open_rsvp_disabled"),
        );
    }
    let who = Respondent::Open {
        name: &input.name,
        phone: &input.phone,
        side: input.side,
        edit_token: input.edit_token.as_deref(),
    };
    let recorded = record_answer(&state, &page, who, input.answer()).await?;
    Ok((recorded.status(), Json(recorded.into_out())))
}
