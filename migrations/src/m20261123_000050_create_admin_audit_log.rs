use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AdminAuditLog::Table)
                    .if_not_exists()
                    .col(string_len(AdminAuditLog::Id, 26).primary_key())
                    // No foreign keys: the record must outlive the admin and the target.
                    .col(string_len(AdminAuditLog::AdminId, 26))
                    .col(string_len(AdminAuditLog::Action, 64))
                    .col(string_len(AdminAuditLog::TargetType, 32))
                    .col(string_len(AdminAuditLog::TargetId, 100))
                    .col(json_null(AdminAuditLog::Before))
                    .col(json_null(AdminAuditLog::After))
                    .col(string_len_null(AdminAuditLog::Reason, 500))
                    .col(timestamp_with_time_zone(AdminAuditLog::CreatedAt))
                    .col(timestamp_with_time_zone(AdminAuditLog::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_audit_log_target")
                    .table(AdminAuditLog::Table)
                    .col(AdminAuditLog::TargetId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_audit_log_action")
                    .table(AdminAuditLog::Table)
                    .col(AdminAuditLog::Action)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AdminAuditLog::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum AdminAuditLog {
    Table,
    Id,
    AdminId,
    Action,
    TargetType,
    TargetId,
    Before,
    After,
    Reason,
    CreatedAt,
    UpdatedAt,
}
