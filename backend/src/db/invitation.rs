use sea_orm::entity::prelude::*;

use super::page::Side;

/// A named guest's personal invitation, reached through its unguessable `code`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub page_id: String,
    #[sea_orm(unique)]
    pub code: String,
    pub guest_name: String,
    pub side: Option<Side>,
    pub group_name: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

crate::db::timestamped_active_model!();
