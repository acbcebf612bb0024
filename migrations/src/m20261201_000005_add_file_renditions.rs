use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000010_create_files::Files;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `renditions`: the JPEG sizes made from a picture (`[{variant, width, height,
/// contentType}]`, smallest first). NULL marks a file stored before renditions existed:
/// the backfill makes its missing sizes (and HEIC thumbnails) and fills the column in.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Files::Table)
                    .add_column(json_null(FilesRenditions::Renditions))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Files::Table)
                    .drop_column(FilesRenditions::Renditions)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum FilesRenditions {
    Renditions,
}
