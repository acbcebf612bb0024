use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Pages::Table)
                    .if_not_exists()
                    .col(string_len(Pages::Id, 26).primary_key())
                    .col(string_len(Pages::OwnerId, 26))
                    .col(string_len_uniq(Pages::Slug, 40))
                    .col(string_len(Pages::Status, 16).default("draft"))
                    .col(string_len(Pages::Plan, 16).default("free"))
                    // Nested parts of the invitation are JSON documents validated by
                    // the application; nothing queries inside them.
                    .col(json(Pages::Groom))
                    .col(json(Pages::Bride))
                    .col(boolean(Pages::ShowContacts).default(false))
                    .col(timestamp_with_time_zone(Pages::WeddingAt))
                    .col(string_len(Pages::TimeZone, 64))
                    .col(json(Pages::Venue))
                    .col(text(Pages::Greeting))
                    .col(string_len(Pages::Theme, 32))
                    .col(json(Pages::Gallery))
                    .col(json(Pages::GiftAccounts))
                    .col(json(Pages::Rsvp))
                    .col(string_len_null(Pages::DressCode, 200))
                    .col(json(Pages::Schedule))
                    .col(big_integer(Pages::ViewCount).default(0))
                    .col(timestamp_with_time_zone_null(Pages::PublishedAt))
                    .col(timestamp_with_time_zone(Pages::CreatedAt))
                    .col(timestamp_with_time_zone(Pages::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Pages::Table, Pages::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_pages_owner")
                    .table(Pages::Table)
                    .col(Pages::OwnerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Pages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Pages {
    Table,
    Id,
    OwnerId,
    Slug,
    Status,
    Plan,
    Groom,
    Bride,
    ShowContacts,
    WeddingAt,
    TimeZone,
    Venue,
    Greeting,
    Theme,
    Gallery,
    GiftAccounts,
    Rsvp,
    DressCode,
    Schedule,
    ViewCount,
    PublishedAt,
    CreatedAt,
    UpdatedAt,
}
