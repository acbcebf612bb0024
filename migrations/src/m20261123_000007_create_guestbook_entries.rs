use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000003_create_pages::Pages;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GuestbookEntries::Table)
                    .if_not_exists()
                    .col(string_len(GuestbookEntries::Id, 26).primary_key())
                    .col(string_len(GuestbookEntries::PageId, 26))
                    .col(string_len(GuestbookEntries::Name, 30))
                    .col(string_len(GuestbookEntries::Message, 1000))
                    // argon2id of the writer's password; lets them delete the entry.
                    .col(string_len(GuestbookEntries::PasswordHash, 255))
                    .col(boolean(GuestbookEntries::Hidden).default(false))
                    .col(timestamp_with_time_zone(GuestbookEntries::CreatedAt))
                    .col(timestamp_with_time_zone(GuestbookEntries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(GuestbookEntries::Table, GuestbookEntries::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_guestbook_page")
                    .table(GuestbookEntries::Table)
                    .col(GuestbookEntries::PageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GuestbookEntries::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum GuestbookEntries {
    Table,
    Id,
    PageId,
    Name,
    Message,
    PasswordHash,
    Hidden,
    CreatedAt,
    UpdatedAt,
}
