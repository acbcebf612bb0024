use sea_orm::entity::prelude::*;

use super::page::Side;

/// A guest's answer. One row per guest (see `dedupe_key`); changing an answer updates it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rsvps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub page_id: String,
    pub invitation_id: Option<String>,
    #[sea_orm(unique)]
    pub dedupe_key: String,
    pub name: String,
    pub phone: Option<String>,
    pub side: Option<Side>,
    pub attending: bool,
    pub party_size: i32,
    pub meal: Option<String>,
    pub message: Option<String>,
    /// Open RSVPs: SHA-256 (hex) of the token returned with the first answer; a change
    /// must present it.
    pub edit_token_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

crate::db::timestamped_active_model!();
