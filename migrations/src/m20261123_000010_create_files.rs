use sea_orm_migration::{prelude::*, schema::*};

use crate::{m20261123_000001_create_users::Users, m20261123_000003_create_pages::Pages};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .if_not_exists()
                    .col(string_len(Files::Id, 26).primary_key())
                    .col(string_len(Files::OwnerId, 26))
                    .col(string_len_null(Files::PageId, 26))
                    .col(string_len(Files::Purpose, 16))
                    // pending (reserved, object not yet confirmed) | ready | deleting
                    .col(string_len(Files::Status, 16))
                    .col(string_len_uniq(Files::StorageKey, 255))
                    .col(string_len_null(Files::ThumbKey, 255))
                    .col(string_len(Files::OriginalName, 255))
                    .col(string_len(Files::ContentType, 64))
                    .col(big_integer(Files::Size))
                    .col(string_len_null(Files::Sha256, 64))
                    .col(integer_null(Files::Width))
                    .col(integer_null(Files::Height))
                    .col(timestamp_with_time_zone(Files::CreatedAt))
                    .col(timestamp_with_time_zone(Files::UpdatedAt))
                    // No cascade from users: deleting rows would orphan their objects.
                    .foreign_key(
                        ForeignKey::create()
                            .from(Files::Table, Files::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    // A deleted page leaves its files with their owner (and quota).
                    .foreign_key(
                        ForeignKey::create()
                            .from(Files::Table, Files::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_files_owner")
                    .table(Files::Table)
                    .col(Files::OwnerId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_files_status_updated")
                    .table(Files::Table)
                    .col(Files::Status)
                    .col(Files::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Files::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Files {
    Table,
    Id,
    OwnerId,
    PageId,
    Purpose,
    Status,
    StorageKey,
    ThumbKey,
    OriginalName,
    ContentType,
    Size,
    Sha256,
    Width,
    Height,
    CreatedAt,
    UpdatedAt,
}
