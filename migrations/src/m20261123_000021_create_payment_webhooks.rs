use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PaymentWebhooks::Table)
                    .if_not_exists()
                    // The Standard Webhooks `webhook-id`; the primary key makes a replay
                    // a unique violation.
                    .col(string_len(PaymentWebhooks::WebhookId, 100).primary_key())
                    .col(string_len(PaymentWebhooks::EventType, 64))
                    .col(string_len_null(PaymentWebhooks::PaymentId, 100))
                    .col(timestamp_with_time_zone(PaymentWebhooks::CreatedAt))
                    .col(timestamp_with_time_zone(PaymentWebhooks::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PaymentWebhooks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum PaymentWebhooks {
    Table,
    WebhookId,
    EventType,
    PaymentId,
    CreatedAt,
    UpdatedAt,
}
