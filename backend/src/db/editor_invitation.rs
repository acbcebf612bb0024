//! An invitation to co-edit a page, addressed to an e-mail (registered or not). Only
//! the invited user's acceptance makes them an editor; the owner never learns whether
//! the address has an account (see `pages::editors`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "editor_invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub page_id: String,
    /// Normalized (trimmed, lower case), as user e-mails are stored.
    pub email: String,
    /// The owner who sent it.
    pub invited_by: String,
    pub status: InvitationStatus,
    pub expires_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum InvitationStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "accepted")]
    Accepted,
    /// Declined by the invitee; the owner still sees it as pending (an unknown address
    /// cannot decline, so showing it would tell which addresses are registered).
    #[sea_orm(string_value = "declined")]
    Declined,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::page::Entity",
        from = "Column::PageId",
        to = "super::page::Column::Id"
    )]
    Page,
}

impl Related<super::page::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Page.def()
    }
}

crate::db::timestamped_active_model!();
