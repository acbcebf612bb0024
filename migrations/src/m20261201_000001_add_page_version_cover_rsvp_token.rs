//! Optimistic concurrency and a cover picture for pages; an edit token for open RSVPs.
//! Additive only: every new column has a default or is nullable, so old rows stay valid.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{m20261123_000003_create_pages::Pages, m20261123_000006_create_rsvps::Rsvps};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NewCols {
    /// Pages: raised by every content edit; a save naming an older one is refused.
    Version,
    /// Pages: the file shown in share previews and at the top of the page.
    CoverFileId,
    /// RSVPs: SHA-256 of the token returned to the first open-RSVP answerer.
    EditTokenHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds a single column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Pages::Table)
                    .add_column(integer(NewCols::Version).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Pages::Table)
                    .add_column(string_len_null(NewCols::CoverFileId, 26))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Rsvps::Table)
                    .add_column(string_len_null(NewCols::EditTokenHash, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, col) in [
            (Rsvps::Table.into_iden(), NewCols::EditTokenHash),
            (Pages::Table.into_iden(), NewCols::CoverFileId),
            (Pages::Table.into_iden(), NewCols::Version),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
