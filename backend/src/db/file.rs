//! An uploaded file: the object in storage is named by `storage_key`; this row is its
//! metadata. Queries go through the scoping helpers so no handler forgets the owner.

use sea_orm::{FromJsonQueryResult, entity::prelude::*};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: String,
    pub page_id: Option<String>,
    pub purpose: Purpose,
    pub status: FileStatus,
    #[sea_orm(unique)]
    pub storage_key: String,
    pub thumb_key: Option<String>,
    pub original_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: Option<String>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// The JPEG sizes made from a picture, smallest first (`[]` for a PDF or a picture
    /// small enough to need none). `None`: stored before renditions existed; the
    /// backfill ([`crate::files::renditions`]) makes them.
    pub renditions: Option<Renditions>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    #[sea_orm(string_value = "gallery")]
    Gallery,
    #[sea_orm(string_value = "cover")]
    Cover,
    #[sea_orm(string_value = "attachment")]
    Attachment,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Reserved: the object is being written or awaits a direct upload's `complete`.
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "ready")]
    Ready,
    /// Being removed; invisible to everyone; the sweeper finishes what failed.
    #[sea_orm(string_value = "deleting")]
    Deleting,
}

/// Which bytes of a file a link serves: the file itself or one of its JPEG renditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Original,
    /// At most `FILES_THUMB_WIDTH` (480) px on the longest side.
    Thumb,
    /// At most 1080 px on the longest side.
    Large,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Thumb => "thumb",
            Variant::Large => "large",
        }
    }
}

/// One stored rendition of a picture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rendition {
    pub variant: Variant,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct Renditions(pub Vec<Rendition>);

impl Model {
    /// The stored rendition of `variant`, if this file has one.
    pub fn rendition(&self, variant: Variant) -> Option<&Rendition> {
        self.renditions
            .as_ref()
            .and_then(|r| r.0.iter().find(|r| r.variant == variant))
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

crate::db::timestamped_active_model!();

impl Entity {
    /// The caller's own files that still count (everything but `deleting`).
    pub fn find_for_owner(owner_id: &str) -> Select<Entity> {
        Entity::find()
            .filter(Column::OwnerId.eq(owner_id))
            .filter(Column::Status.ne(FileStatus::Deleting))
    }
}
