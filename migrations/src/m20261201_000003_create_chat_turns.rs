use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000030_create_chat::ChatMessages;

/// Open chat turns: one row per accepted user message until it is answered, stopped
/// or failed. It is written in the same transaction as the message, so it is both the
/// hand-off outbox (`handoff_due_ms` set until the agent-manager took the message) and
/// the list the deadline sweeper checks. Times are Unix milliseconds, so "due" and
/// "lease expired" compare the same way on SQLite and PostgreSQL.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChatTurns::Table)
                    .if_not_exists()
                    .col(string_len(ChatTurns::MessageId, 26).primary_key())
                    .col(string_len(ChatTurns::SessionId, 26))
                    .col(big_integer(ChatTurns::AcceptedAtMs))
                    // Null once handed off.
                    .col(big_integer_null(ChatTurns::HandoffDueMs))
                    .col(integer(ChatTurns::Attempts).default(0))
                    .col(string_len_null(ChatTurns::LeaseOwner, 128))
                    .col(big_integer(ChatTurns::LeaseUntilMs).default(0))
                    .col(text_null(ChatTurns::LastError))
                    .col(timestamp_with_time_zone(ChatTurns::CreatedAt))
                    .col(timestamp_with_time_zone(ChatTurns::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatTurns::Table, ChatTurns::MessageId)
                            .to(ChatMessages::Table, ChatMessages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chat_turns_handoff_due")
                    .table(ChatTurns::Table)
                    .col(ChatTurns::HandoffDueMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chat_turns_accepted")
                    .table(ChatTurns::Table)
                    .col(ChatTurns::AcceptedAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ChatTurns::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum ChatTurns {
    Table,
    MessageId,
    SessionId,
    AcceptedAtMs,
    HandoffDueMs,
    Attempts,
    LeaseOwner,
    LeaseUntilMs,
    LastError,
    CreatedAt,
    UpdatedAt,
}
