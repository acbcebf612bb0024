use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    m20261123_000003_create_pages::Pages, m20261123_000005_create_invitations::Invitations,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rsvps::Table)
                    .if_not_exists()
                    .col(string_len(Rsvps::Id, 26).primary_key())
                    .col(string_len(Rsvps::PageId, 26))
                    .col(string_len_null(Rsvps::InvitationId, 26))
                    // One answer per guest: `inv:<invitation id>` or
                    // `phone:<page id>:<digits>` for open RSVPs. A changed answer
                    // updates the row instead of adding one.
                    .col(string_len_uniq(Rsvps::DedupeKey, 80))
                    .col(string_len(Rsvps::Name, 50))
                    .col(string_len_null(Rsvps::Phone, 20))
                    .col(string_len_null(Rsvps::Side, 8))
                    .col(boolean(Rsvps::Attending))
                    .col(integer(Rsvps::PartySize))
                    .col(string_len_null(Rsvps::Meal, 50))
                    .col(string_len_null(Rsvps::Message, 500))
                    .col(timestamp_with_time_zone(Rsvps::CreatedAt))
                    .col(timestamp_with_time_zone(Rsvps::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Rsvps::Table, Rsvps::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Rsvps::Table, Rsvps::InvitationId)
                            .to(Invitations::Table, Invitations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rsvps_page")
                    .table(Rsvps::Table)
                    .col(Rsvps::PageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Rsvps::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Rsvps {
    Table,
    Id,
    PageId,
    InvitationId,
    DedupeKey,
    Name,
    Phone,
    Side,
    Attending,
    PartySize,
    Meal,
    Message,
    CreatedAt,
    UpdatedAt,
}
