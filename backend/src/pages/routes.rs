//! Owner and editor routes: `/api/pages/...`.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use chrono::Utc;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    access::{Access, Need, access_revoked, load_page, members},
    context::build_wedding_context,
    dto::{DEFAULT_THEME, DEFAULT_TIME_ZONE, PageIn, PageOut, PagePatch},
    version::{self, IfMatch},
};
use crate::{
    auth::AuthUser,
    db::{
        begin_write, lock_page, new_id,
        page::{self, FileIds, GiftAccounts, PageStatus, Plan, Schedule},
        page_editor,
    },
    error::{Error, ErrorBody, Result, ResultExt},
    events::DomainEvent,
    extract::{Path, Query, ValidatedJson},
    pagination::{PageParams, Paginated, paginate},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_page, list_pages))
        .routes(routes!(get_page, update_page, delete_page))
        .routes(routes!(publish_page))
        .routes(routes!(unpublish_page))
        .routes(routes!(get_wedding_context))
}

/// Random slugs: 10 of 36 symbols (about 52 bits), so they cannot be walked.
fn generated_slug() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Create an invitation page (a draft) owned by the caller.
#[utoipa::path(post, path = "", tag = "pages", security(("bearer" = [])), request_body = PageIn,
    responses((status = 201, body = PageOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_page(
    State(state): State<AppState>,
    auth: AuthUser,
    ValidatedJson(input): ValidatedJson<PageIn>,
) -> Result<(StatusCode, Json<PageOut>)> {
    let slug = input.slug.unwrap_or_else(generated_slug);
    let model = page::ActiveModel {
        id: Set(new_id()),
        owner_id: Set(auth.id.clone()),
        slug: Set(slug),
        status: Set(PageStatus::Draft),
        plan: Set(Plan::Free),
        groom: Set(input.groom),
        bride: Set(input.bride),
        show_contacts: Set(input.show_contacts),
        wedding_at: Set(input.wedding_at.with_timezone(&Utc)),
        time_zone: Set(input.time_zone.unwrap_or_else(|| DEFAULT_TIME_ZONE.into())),
        venue: Set(input.venue.unwrap_or_default()),
        greeting: Set(input.greeting.unwrap_or_default()),
        theme: Set(input.theme.unwrap_or_else(|| DEFAULT_THEME.into())),
        gallery: Set(FileIds::default()),
        gift_accounts: Set(GiftAccounts(input.gift_accounts.unwrap_or_default())),
        rsvp: Set(input.rsvp.unwrap_or_default()),
        dress_code: Set(input.dress_code.filter(|d| !d.trim().is_empty())),
        schedule: Set(Schedule(input.schedule.unwrap_or_default())),
        view_count: Set(0),
        published_at: Set(None),
        version: Set(1),
        ..Default::default()
    }
    .insert(&state.db)
    .await
    .on_unique_violation("slug", "this page address is already taken")?;
    Ok((
        StatusCode::CREATED,
        Json(PageOut::new(model, Access::Owner, 0)),
    ))
}

/// Pages the caller owns or co-edits, newest first.
#[utoipa::path(get, path = "", tag = "pages", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Paginated<PageOut>)))]
async fn list_pages(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<Json<Paginated<PageOut>>> {
    let edited: Vec<String> = page_editor::Entity::find()
        .filter(page_editor::Column::UserId.eq(auth.id.clone()))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|e| e.page_id)
        .collect();
    let query = page::Entity::find().filter(
        Condition::any()
            .add(page::Column::OwnerId.eq(auth.id.clone()))
            .add(page::Column::Id.is_in(edited)),
    );
    let query = query.order_by_desc(page::Column::Id);
    let page = paginate(&state.db, query, params, |p| {
        let access = if p.owner_id == auth.id {
            Access::Owner
        } else {
            Access::Editor
        };
        let pending = state.views.pending(&p.id);
        PageOut::new(p, access, pending)
    })
    .await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/{id}", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = PageOut, headers(("ETag" = String, description = "the page's version"))),
        (status = 404, body = ErrorBody)))]
async fn get_page(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let (page, access) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let pending = state.views.pending(&page.id);
    Ok((
        version::etag_header(page.version),
        Json(PageOut::new(page, access, pending)),
    ))
}

/// Edit a page (owner or editor). With `If-Match: "<version>"` (or `version` in the
/// body) the edit is applied only to that version: a stale one is 412 `stale_version`.
#[utoipa::path(patch, path = "/{id}", tag = "pages", security(("bearer" = [])), request_body = PagePatch,
    params(("If-Match" = Option<String>, Header, description = "the ETag the edit was made on")),
    responses((status = 200, body = PageOut, headers(("ETag" = String, description = "the new version"))),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 412, description = "the page changed since that version", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_page(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    ValidatedJson(patch): ValidatedJson<PagePatch>,
) -> Result<impl IntoResponse> {
    // The check and the write in one transaction with the row locked, so two saves
    // of the same version cannot both pass.
    let txn = begin_write(&state.db).await?;
    lock_page(&txn, &id).await?;
    let (page, access) = load_page(&txn, &id, &auth, Need::Edit).await?;
    version::check(page.version, if_match.as_deref(), patch.version)?;
    let next_version = page.version + 1;
    let mut m = page.into_active_model();
    apply_patch(&mut m, patch);
    m.version = Set(next_version);
    let page = m
        .update(&txn)
        .await
        .on_unique_violation("slug", "this page address is already taken")?;
    txn.commit().await?;
    let pending = state.views.pending(&page.id);
    Ok((
        version::etag_header(page.version),
        Json(PageOut::new(page, access, pending)),
    ))
}

fn apply_patch(m: &mut page::ActiveModel, patch: PagePatch) {
    if let Some(v) = patch.slug {
        m.slug = Set(v);
    }
    if let Some(v) = patch.groom {
        m.groom = Set(v);
    }
    if let Some(v) = patch.bride {
        m.bride = Set(v);
    }
    if let Some(v) = patch.show_contacts {
        m.show_contacts = Set(v);
    }
    if let Some(v) = patch.wedding_at {
        m.wedding_at = Set(v.with_timezone(&Utc));
    }
    if let Some(v) = patch.time_zone {
        m.time_zone = Set(v);
    }
    if let Some(v) = patch.venue {
        m.venue = Set(v);
    }
    if let Some(v) = patch.greeting {
        m.greeting = Set(v);
    }
    if let Some(v) = patch.theme {
        m.theme = Set(v);
    }
    if let Some(v) = patch.gift_accounts {
        m.gift_accounts = Set(GiftAccounts(v));
    }
    if let Some(v) = patch.rsvp {
        m.rsvp = Set(v);
    }
    if let Some(v) = patch.dress_code {
        m.dress_code = Set(Some(v).filter(|d| !d.trim().is_empty()));
    }
    if let Some(v) = patch.schedule {
        m.schedule = Set(Schedule(v));
    }
}

/// Delete a page with everything on it (owner only).
#[utoipa::path(delete, path = "/{id}", tag = "pages", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_page(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Own).await?;
    let lost = members(&state.db, &page).await?;
    page::Entity::delete_by_id(page.id.clone())
        .exec(&state.db)
        .await?;
    access_revoked(&state, &page.id, lost, "page_deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Make the page visible at its public address. Needs a venue name.
#[utoipa::path(post, path = "/{id}/publish", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = PageOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn publish_page(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<PageOut>> {
    let (page, access) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    if page
        .venue
        .name
        .as_deref()
        .is_none_or(|n| n.trim().is_empty())
    {
        return Err(Error::validation(
            "venue.name",
            "a page needs its venue's name before it is published",
        )
        .into_code("incomplete_page"));
    }
    let was_published = page.status == PageStatus::Published;
    let recipients = members(&state.db, &page).await?;
    let mut m = page.into_active_model();
    m.status = Set(PageStatus::Published);
    if !was_published {
        m.published_at = Set(Some(Utc::now()));
    }
    let page = m.update(&state.db).await?;
    if !was_published {
        state.events.publish(DomainEvent::new(
            "page.published",
            recipients,
            json!({"pageId": page.id, "slug": page.slug}),
        ));
    }
    let pending = state.views.pending(&page.id);
    Ok(Json(PageOut::new(page, access, pending)))
}

/// Take the page back to draft; its public address answers 404 again.
#[utoipa::path(post, path = "/{id}/unpublish", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = PageOut), (status = 404, body = ErrorBody)))]
async fn unpublish_page(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<PageOut>> {
    let (page, access) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let mut m = page.into_active_model();
    m.status = Set(PageStatus::Draft);
    let page = m.update(&state.db).await?;
    let pending = state.views.pending(&page.id);
    Ok(Json(PageOut::new(page, access, pending)))
}

/// The JSON context the AI assistant receives for this page (see docs/wedding-context.md).
#[utoipa::path(get, path = "/{id}/context", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn get_wedding_context(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    Ok(Json(build_wedding_context(&state.db, &page).await?))
}
