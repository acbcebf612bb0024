use sea_orm_migration::{prelude::*, schema::*};

use crate::{m20261123_000001_create_users::Users, m20261123_000003_create_pages::Pages};

/// Pending co-editor invitations, by e-mail address: adding an editor records one
/// whether or not the address has an account, and only the invited user's acceptance
/// makes them an editor. One row per (page, address); inviting again renews it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EditorInvitations::Table)
                    .if_not_exists()
                    .col(string_len(EditorInvitations::Id, 26).primary_key())
                    .col(string_len(EditorInvitations::PageId, 26))
                    .col(string_len(EditorInvitations::Email, 320))
                    .col(string_len(EditorInvitations::InvitedBy, 26))
                    .col(string_len(EditorInvitations::Status, 16))
                    .col(timestamp_with_time_zone(EditorInvitations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(
                        EditorInvitations::RespondedAt,
                    ))
                    .col(timestamp_with_time_zone(EditorInvitations::CreatedAt))
                    .col(timestamp_with_time_zone(EditorInvitations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EditorInvitations::Table, EditorInvitations::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(EditorInvitations::Table, EditorInvitations::InvitedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_editor_invitations_page_email")
                    .table(EditorInvitations::Table)
                    .col(EditorInvitations::PageId)
                    .col(EditorInvitations::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_editor_invitations_email")
                    .table(EditorInvitations::Table)
                    .col(EditorInvitations::Email)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EditorInvitations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum EditorInvitations {
    Table,
    Id,
    PageId,
    Email,
    InvitedBy,
    Status,
    ExpiresAt,
    RespondedAt,
    CreatedAt,
    UpdatedAt,
}
