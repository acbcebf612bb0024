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
                    .table(PageEditors::Table)
                    .if_not_exists()
                    .col(string_len(PageEditors::PageId, 26))
                    .col(string_len(PageEditors::UserId, 26))
                    .col(timestamp_with_time_zone(PageEditors::CreatedAt))
                    .col(timestamp_with_time_zone(PageEditors::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(PageEditors::PageId)
                            .col(PageEditors::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PageEditors::Table, PageEditors::PageId)
                            .to(Pages::Table, Pages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PageEditors::Table, PageEditors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_page_editors_user")
                    .table(PageEditors::Table)
                    .col(PageEditors::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PageEditors::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum PageEditors {
    Table,
    PageId,
    UserId,
    CreatedAt,
    UpdatedAt,
}
