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
                    .table(ChatSessions::Table)
                    .if_not_exists()
                    .col(string_len(ChatSessions::Id, 26).primary_key())
                    .col(string_len(ChatSessions::PageId, 26))
                    .col(string_len(ChatSessions::StartedBy, 26))
                    .col(timestamp_with_time_zone(ChatSessions::CreatedAt))
                    .col(timestamp_with_time_zone(ChatSessions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatSessions::Table, ChatSessions::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chat_sessions_page")
                    .table(ChatSessions::Table)
                    .col(ChatSessions::PageId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChatMessages::Table)
                    .if_not_exists()
                    // ULID: the user message's id is the `message_id` of the contract.
                    .col(string_len(ChatMessages::Id, 26).primary_key())
                    .col(string_len(ChatMessages::SessionId, 26))
                    .col(string_len(ChatMessages::PageId, 26))
                    .col(string_len_null(ChatMessages::UserId, 26))
                    .col(string_len(ChatMessages::Role, 16))
                    .col(text(ChatMessages::Content))
                    .col(json(ChatMessages::Components))
                    .col(string_len(ChatMessages::Status, 16))
                    // For assistant rows: the user message answered. Unique, so a
                    // second copy of the same answer is a no-op.
                    .col(string_len_null(ChatMessages::AnswerTo, 26).unique_key())
                    .col(string_len_null(ChatMessages::ClientMsgId, 64))
                    .col(text_null(ChatMessages::Error))
                    .col(timestamp_with_time_zone(ChatMessages::CreatedAt))
                    .col(timestamp_with_time_zone(ChatMessages::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatMessages::Table, ChatMessages::SessionId)
                            .to(ChatSessions::Table, ChatSessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chat_messages_session")
                    .table(ChatMessages::Table)
                    .col(ChatMessages::SessionId)
                    .col(ChatMessages::Id)
                    .to_owned(),
            )
            .await?;
        // A client retrying the same send (after a reconnect) gets the same message.
        manager
            .create_index(
                Index::create()
                    .name("uq_chat_messages_client_msg")
                    .table(ChatMessages::Table)
                    .col(ChatMessages::SessionId)
                    .col(ChatMessages::ClientMsgId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChatReads::Table)
                    .if_not_exists()
                    .col(string_len(ChatReads::SessionId, 26))
                    .col(string_len(ChatReads::UserId, 26))
                    .col(string_len(ChatReads::LastReadMessageId, 26))
                    .col(timestamp_with_time_zone(ChatReads::CreatedAt))
                    .col(timestamp_with_time_zone(ChatReads::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(ChatReads::SessionId)
                            .col(ChatReads::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ChatReads::Table, ChatReads::SessionId)
                            .to(ChatSessions::Table, ChatSessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChatReads::Table.into_iden(),
            ChatMessages::Table.into_iden(),
            ChatSessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum ChatSessions {
    Table,
    Id,
    PageId,
    StartedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum ChatMessages {
    Table,
    Id,
    SessionId,
    PageId,
    UserId,
    Role,
    Content,
    Components,
    Status,
    AnswerTo,
    ClientMsgId,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub enum ChatReads {
    Table,
    SessionId,
    UserId,
    LastReadMessageId,
    CreatedAt,
    UpdatedAt,
}
