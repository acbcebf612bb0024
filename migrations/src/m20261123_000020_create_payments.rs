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
                    .table(Payments::Table)
                    .if_not_exists()
                    // `pay_<ulid>`: also the paymentId PortOne knows the payment by.
                    .col(string_len(Payments::Id, 40).primary_key())
                    // Payment records are kept for accounting when a page is deleted.
                    .col(string_len_null(Payments::PageId, 26))
                    // No foreign key: the record outlives the account for the same reason.
                    .col(string_len(Payments::UserId, 26))
                    .col(string_len(Payments::Plan, 16))
                    .col(string_len(Payments::OrderName, 100))
                    .col(big_integer(Payments::Amount))
                    .col(string_len(Payments::Currency, 8))
                    .col(string_len(Payments::StoreId, 100))
                    .col(string_len(Payments::Status, 24).default("pending"))
                    .col(big_integer(Payments::CancelledAmount).default(0))
                    .col(string_len_null(Payments::ProviderStatus, 32))
                    .col(text_null(Payments::FailureReason))
                    .col(timestamp_with_time_zone_null(Payments::PaidAt))
                    .col(timestamp_with_time_zone_null(Payments::CancelledAt))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Payments::Table, Payments::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payments_user")
                    .table(Payments::Table)
                    .col(Payments::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payments_page")
                    .table(Payments::Table)
                    .col(Payments::PageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Payments {
    Table,
    Id,
    PageId,
    UserId,
    Plan,
    OrderName,
    Amount,
    Currency,
    StoreId,
    Status,
    CancelledAmount,
    ProviderStatus,
    FailureReason,
    PaidAt,
    CancelledAt,
    CreatedAt,
    UpdatedAt,
}
