use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000002_create_refresh_tokens::RefreshTokens;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `successor_seal`: the successor of a rotated token, sealed with the rotated token
/// itself (XOR with a hash of it), so that presenting the rotated token again within the
/// reuse grace window returns the same successor. Without the rotated token the seal
/// reveals nothing; the successor is never stored in the clear.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(string_len_null(RefreshTokensSeal::SuccessorSeal, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .drop_column(RefreshTokensSeal::SuccessorSeal)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RefreshTokensSeal {
    SuccessorSeal,
}
