//! Co-editors and their invitations.
//!
//! Adding an editor by e-mail records a pending invitation, whether or not the address
//! has an account, and tells the owner the same thing either way: the owner's lists
//! show the address as `pending` (then `expired`) until the invited user accepts — a
//! decline looks like no answer, since an unknown address cannot decline. Only
//! acceptance makes the user an editor (and shows them in the editor list). A user
//! sees the invitations addressed to their e-mail, also those sent before they
//! registered. No e-mail is sent: a mailer can be plugged in where the invitation is
//! recorded ([`invite_editor`]).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use validator::Validate;

use super::access::{Access, Need, access_revoked, load_page};
use crate::{
    auth::AuthUser,
    db::{
        begin_write,
        editor_invitation::{self, InvitationStatus},
        lock_page, new_id, page, page_editor, user,
    },
    error::{Error, ErrorBody, Result},
    extract::{Path, ValidatedJson},
    state::AppState,
};

/// `/api/pages/{id}/editors...` and `/api/pages/{id}/editor-invitations...`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_editors, invite_editor))
        .routes(routes!(remove_editor))
        .routes(routes!(list_editor_invitations))
        .routes(routes!(revoke_editor_invitation))
}

/// `/api/me/editor-invitations...`: the invited user's side.
pub fn me_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_my_editor_invitations))
        .routes(routes!(accept_editor_invitation))
        .routes(routes!(decline_editor_invitation))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditorOut {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditorIn {
    /// The address to invite; it need not have an account yet.
    #[validate(length(min = 3, max = 320))]
    #[schema(min_length = 3, max_length = 320)]
    pub email: String,
}

/// An invitation as its page's owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EditorInvitationOut {
    pub id: String,
    /// The address, normalized.
    pub email: String,
    /// `pending` until it expires (`expired`); an accepted invitation leaves this list
    /// for the editor list. A decline is not shown (see the module docs).
    #[schema(example = "pending")]
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl EditorInvitationOut {
    fn new(inv: editor_invitation::Model, now: DateTime<Utc>) -> Self {
        EditorInvitationOut {
            status: if inv.expires_at <= now {
                "expired"
            } else {
                "pending"
            },
            id: inv.id,
            email: inv.email,
            created_at: inv.created_at,
            expires_at: inv.expires_at,
        }
    }
}

/// An invitation as the invited user sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyEditorInvitationOut {
    pub id: String,
    pub page_id: String,
    pub groom_name: String,
    pub bride_name: String,
    pub wedding_at: DateTime<Utc>,
    /// The display name of the owner who invited you.
    pub invited_by_name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedOut {
    pub page_id: String,
    /// `editor` (`owner` if the page has become yours meanwhile).
    pub access: Access,
}

/// The page's editors (accepted invitations), for its owner and editors.
#[utoipa::path(get, path = "/{id}/editors", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = Vec<EditorOut>), (status = 404, body = ErrorBody)))]
async fn list_editors(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<EditorOut>>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Edit).await?;
    let rows = page_editor::Entity::find()
        .filter(page_editor::Column::PageId.eq(page.id))
        .find_also_related(user::Entity)
        .all(&state.db)
        .await?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|(e, u)| {
                u.map(|u| EditorOut {
                    user_id: u.id,
                    email: u.email,
                    display_name: u.display_name,
                    added_at: e.created_at,
                })
            })
            .collect(),
    ))
}

/// Invite a co-editor by e-mail (owner only). Records a pending invitation — for a
/// registered address and an unknown one alike, with the same 202 — that the invited
/// user accepts or declines (`/api/me/editor-invitations`); only acceptance makes
/// them an editor. Inviting the same address again renews the invitation. Editors may
/// edit and chat; not delete or pay. Limited per owner (`EDITOR_INVITES_PER_HOUR`).
#[utoipa::path(post, path = "/{id}/editors", tag = "pages", security(("bearer" = [])), request_body = EditorIn,
    responses((status = 202, body = EditorInvitationOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "the owner's own address (`already_owner`), or an editor's (`already_editor`)", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn invite_editor(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ValidatedJson(input): ValidatedJson<EditorIn>,
) -> Result<(StatusCode, Json<EditorInvitationOut>)> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Own).await?;
    state.limiters.editor_invites.check(&auth.id)?;
    let email = user::normalize_email(&input.email);
    if email == user::normalize_email(&auth.email) {
        return Err(
            Error::conflict("already_owner", "the owner is already on the page")
                .with_field("email"),
        );
    }
    // Telling that an editor's address is an editor reveals nothing: the editor list
    // shows it.
    let is_editor = page_editor::Entity::find()
        .join(JoinType::InnerJoin, page_editor::Relation::User.def())
        .filter(page_editor::Column::PageId.eq(page.id.clone()))
        .filter(user::Column::Email.eq(email.clone()))
        .one(&state.db)
        .await?
        .is_some();
    if is_editor {
        return Err(
            Error::conflict("already_editor", "this user already edits the page")
                .with_field("email"),
        );
    }
    let now = Utc::now();
    let expires_at = now + state.cfg.editor_invitation_ttl;
    let txn = begin_write(&state.db).await?;
    // Two invitations of one address at once: the second waits and renews the first.
    lock_page(&txn, &page.id).await?;
    let existing = editor_invitation::Entity::find()
        .filter(editor_invitation::Column::PageId.eq(page.id.clone()))
        .filter(editor_invitation::Column::Email.eq(email.clone()))
        .one(&txn)
        .await?;
    let invitation = match existing {
        Some(inv) => {
            let mut m = inv.into_active_model();
            m.status = Set(InvitationStatus::Pending);
            m.invited_by = Set(auth.id.clone());
            m.expires_at = Set(expires_at);
            m.responded_at = Set(None);
            m.created_at = Set(now);
            m.update(&txn).await?
        }
        None => {
            editor_invitation::ActiveModel {
                id: Set(new_id()),
                page_id: Set(page.id.clone()),
                email: Set(email),
                invited_by: Set(auth.id.clone()),
                status: Set(InvitationStatus::Pending),
                expires_at: Set(expires_at),
                responded_at: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await?
        }
    };
    txn.commit().await?;
    // A mailer would send the invitation here (none is configured: the invited user
    // finds it after signing in).
    Ok((
        StatusCode::ACCEPTED,
        Json(EditorInvitationOut::new(invitation, now)),
    ))
}

/// Remove an editor (owner only); their chat sockets leave the page's room at once.
#[utoipa::path(delete, path = "/{id}/editors/{user_id}", tag = "pages", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove_editor(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Own).await?;
    let res = page_editor::Entity::delete_many()
        .filter(page_editor::Column::PageId.eq(page.id.clone()))
        .filter(page_editor::Column::UserId.eq(user_id.clone()))
        .exec(&state.db)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::not_found("editor"));
    }
    access_revoked(&state, &page.id, vec![user_id], "editor_removed");
    Ok(StatusCode::NO_CONTENT)
}

/// The page's invitations not accepted yet (owner only), newest first: `pending`,
/// or `expired` once past `expiresAt`, for registered and unknown addresses alike.
#[utoipa::path(get, path = "/{id}/editor-invitations", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = Vec<EditorInvitationOut>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_editor_invitations(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<EditorInvitationOut>>> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Own).await?;
    let now = Utc::now();
    let rows = editor_invitation::Entity::find()
        .filter(editor_invitation::Column::PageId.eq(page.id))
        .filter(editor_invitation::Column::Status.ne(InvitationStatus::Accepted))
        .order_by_desc(editor_invitation::Column::CreatedAt)
        .all(&state.db)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|inv| EditorInvitationOut::new(inv, now))
            .collect(),
    ))
}

/// Withdraw an invitation that was not accepted (owner only). An editor who already
/// accepted is removed with `DELETE /api/pages/{id}/editors/{userId}`.
#[utoipa::path(delete, path = "/{id}/editor-invitations/{invitation_id}", tag = "pages", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_editor_invitation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, invitation_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (page, _) = load_page(&state.db, &id, &auth, Need::Own).await?;
    let res = editor_invitation::Entity::delete_many()
        .filter(editor_invitation::Column::Id.eq(invitation_id))
        .filter(editor_invitation::Column::PageId.eq(page.id))
        .filter(editor_invitation::Column::Status.ne(InvitationStatus::Accepted))
        .exec(&state.db)
        .await?;
    if res.rows_affected == 0 {
        return Err(Error::not_found("editor invitation"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Pending, unexpired invitations addressed to the caller's e-mail, newest first.
#[utoipa::path(get, path = "/editor-invitations", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = Vec<MyEditorInvitationOut>)))]
async fn list_my_editor_invitations(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<MyEditorInvitationOut>>> {
    let rows = editor_invitation::Entity::find()
        .filter(editor_invitation::Column::Email.eq(user::normalize_email(&auth.email)))
        .filter(editor_invitation::Column::Status.eq(InvitationStatus::Pending))
        .filter(editor_invitation::Column::ExpiresAt.gt(Utc::now()))
        .order_by_desc(editor_invitation::Column::CreatedAt)
        .find_also_related(page::Entity)
        .all(&state.db)
        .await?;
    let inviters: Vec<String> = rows.iter().map(|(i, _)| i.invited_by.clone()).collect();
    let names: std::collections::HashMap<String, String> = user::Entity::find()
        .filter(user::Column::Id.is_in(inviters))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect();
    Ok(Json(
        rows.into_iter()
            .filter_map(|(inv, page)| {
                let page = page?;
                Some(MyEditorInvitationOut {
                    invited_by_name: names.get(&inv.invited_by).cloned().unwrap_or_default(),
                    id: inv.id,
                    page_id: page.id,
                    groom_name: page.groom.name,
                    bride_name: page.bride.name,
                    wedding_at: page.wedding_at,
                    created_at: inv.created_at,
                    expires_at: inv.expires_at,
                })
            })
            .collect(),
    ))
}

/// The caller's pending invitation `id`, read in `txn`; anyone else's is 404.
async fn my_pending_invitation(
    txn: &sea_orm::DatabaseTransaction,
    auth: &AuthUser,
    id: &str,
) -> Result<editor_invitation::Model> {
    editor_invitation::Entity::find_by_id(id.to_owned())
        .filter(editor_invitation::Column::Email.eq(user::normalize_email(&auth.email)))
        .filter(editor_invitation::Column::Status.eq(InvitationStatus::Pending))
        .one(txn)
        .await?
        .ok_or_else(|| Error::not_found("editor invitation"))
}

/// Accept an invitation addressed to your e-mail: you become an editor of the page
/// (edit it, chat about it). 410 `invitation_expired` after its `expiresAt`.
#[utoipa::path(post, path = "/editor-invitations/{id}/accept", tag = "pages", security(("bearer" = [])),
    responses((status = 200, body = AcceptedOut), (status = 404, body = ErrorBody),
        (status = 410, description = "the invitation expired (`invitation_expired`)", body = ErrorBody)))]
async fn accept_editor_invitation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<AcceptedOut>> {
    let txn = begin_write(&state.db).await?;
    let inv = my_pending_invitation(&txn, &auth, &id).await?;
    if inv.expires_at <= Utc::now() {
        return Err(Error::new(
            StatusCode::GONE,
            "invitation_expired",
            "this invitation has expired; ask the page's owner for a new one",
        ));
    }
    let page_id = inv.page_id.clone();
    let already = page_editor::Entity::find_by_id((page_id.clone(), auth.id.clone()))
        .one(&txn)
        .await?
        .is_some();
    let owner = page::Entity::find_by_id(page_id.clone())
        .one(&txn)
        .await?
        .is_some_and(|p| p.owner_id == auth.id);
    if !already && !owner {
        page_editor::ActiveModel {
            page_id: Set(page_id.clone()),
            user_id: Set(auth.id.clone()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
    }
    let mut m = inv.into_active_model();
    m.status = Set(InvitationStatus::Accepted);
    m.responded_at = Set(Some(Utc::now()));
    m.update(&txn).await?;
    txn.commit().await?;
    Ok(Json(AcceptedOut {
        page_id,
        access: if owner { Access::Owner } else { Access::Editor },
    }))
}

/// Decline an invitation addressed to your e-mail. The owner is not told (the
/// invitation shows as pending until it expires, as for an address with no account).
#[utoipa::path(post, path = "/editor-invitations/{id}/decline", tag = "pages", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn decline_editor_invitation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let txn = begin_write(&state.db).await?;
    let inv = my_pending_invitation(&txn, &auth, &id).await?;
    let mut m = inv.into_active_model();
    m.status = Set(InvitationStatus::Declined);
    m.responded_at = Set(Some(Utc::now()));
    m.update(&txn).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
