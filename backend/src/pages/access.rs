//! Who may do what with a page. Every owner route loads its page through
//! [`load_page`], so no handler can forget the check. A page the caller has no
//! access to is 404, exactly as if it did not exist.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::AuthUser,
    db::{page, page_editor},
    error::{Error, Result},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Owner,
    Editor,
    /// A platform admin who is neither owner nor editor.
    Admin,
}

/// What the caller is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read and edit the page, its guests, RSVPs and guestbook; chat about it.
    Edit,
    /// Delete the page, manage editors, pay: the owner only.
    Own,
}

pub async fn load_page<C: ConnectionTrait>(
    db: &C,
    page_id: &str,
    user: &AuthUser,
    need: Need,
) -> Result<(page::Model, Access)> {
    let page = page::Entity::find_by_id(page_id.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("page"))?;
    let access = access_of(db, &page, user)
        .await?
        .ok_or_else(|| Error::not_found("page"))?;
    if need == Need::Own && access != Access::Owner {
        return Err(Error::forbidden("only the page's owner may do this"));
    }
    Ok((page, access))
}

/// The caller's relation to the page, or `None` when they have none.
pub async fn access_of<C: ConnectionTrait>(
    db: &C,
    page: &page::Model,
    user: &AuthUser,
) -> Result<Option<Access>> {
    if page.owner_id == user.id {
        return Ok(Some(Access::Owner));
    }
    let is_editor = page_editor::Entity::find()
        .filter(page_editor::Column::PageId.eq(page.id.clone()))
        .filter(page_editor::Column::UserId.eq(user.id.clone()))
        .one(db)
        .await?
        .is_some();
    Ok(if is_editor {
        Some(Access::Editor)
    } else if user.is_admin() {
        Some(Access::Admin)
    } else {
        None
    })
}

/// The users to notify about a page: its owner and its editors.
pub async fn members<C: ConnectionTrait>(db: &C, page: &page::Model) -> Result<Vec<String>> {
    let mut ids = vec![page.owner_id.clone()];
    ids.extend(
        page_editor::Entity::find()
            .filter(page_editor::Column::PageId.eq(page.id.clone()))
            .all(db)
            .await?
            .into_iter()
            .map(|e| e.user_id),
    );
    Ok(ids)
}

/// Tells every instance that `users` lost the page: their chat sockets leave its room.
pub fn access_revoked(
    state: &crate::state::AppState,
    page_id: &str,
    users: Vec<String>,
    reason: &str,
) {
    state.events.publish(crate::events::DomainEvent::new(
        crate::events::PAGE_ACCESS_REVOKED,
        users,
        serde_json::json!({"pageId": page_id, "reason": reason}),
    ));
}
