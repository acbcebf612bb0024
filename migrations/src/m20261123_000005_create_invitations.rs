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
                    .table(Invitations::Table)
                    .if_not_exists()
                    .col(string_len(Invitations::Id, 26).primary_key())
                    .col(string_len(Invitations::PageId, 26))
                    // Random, unguessable; the guest's link is /i/<code>.
                    .col(string_len_uniq(Invitations::Code, 32))
                    .col(string_len(Invitations::GuestName, 50))
                    .col(string_len_null(Invitations::Side, 8))
                    .col(string_len_null(Invitations::GroupName, 50))
                    .col(string_len_null(Invitations::Phone, 20))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone(Invitations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_page")
                    .table(Invitations::Table)
                    .col(Invitations::PageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Invitations {
    Table,
    Id,
    PageId,
    Code,
    GuestName,
    Side,
    GroupName,
    Phone,
    CreatedAt,
    UpdatedAt,
}
