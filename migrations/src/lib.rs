//! Schema migrations, shared by SQLite and PostgreSQL.
//!
//! An applied migration is never edited: add a new `mYYYYMMDD_HHMMSS_verb_table.rs`
//! and list it last in [`Migrator::migrations`].

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_users;
mod m20261123_000002_create_refresh_tokens;
mod m20261123_000003_create_pages;
mod m20261123_000004_create_page_editors;
mod m20261123_000005_create_invitations;
mod m20261123_000006_create_rsvps;
mod m20261123_000007_create_guestbook_entries;
mod m20261123_000010_create_files;
mod m20261123_000020_create_payments;
mod m20261123_000021_create_payment_webhooks;
mod m20261123_000030_create_chat;
mod m20261123_000050_create_admin_audit_log;
mod m20261201_000001_add_page_version_cover_rsvp_token;
mod m20261201_000002_alter_refresh_tokens;
mod m20261201_000003_create_chat_turns;
mod m20261201_000004_create_editor_invitations;
mod m20261201_000005_add_file_renditions;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_users::Migration),
            Box::new(m20261123_000002_create_refresh_tokens::Migration),
            Box::new(m20261123_000003_create_pages::Migration),
            Box::new(m20261123_000004_create_page_editors::Migration),
            Box::new(m20261123_000005_create_invitations::Migration),
            Box::new(m20261123_000006_create_rsvps::Migration),
            Box::new(m20261123_000007_create_guestbook_entries::Migration),
            Box::new(m20261123_000010_create_files::Migration),
            Box::new(m20261123_000030_create_chat::Migration),
            Box::new(m20261123_000020_create_payments::Migration),
            Box::new(m20261123_000021_create_payment_webhooks::Migration),
            Box::new(m20261123_000050_create_admin_audit_log::Migration),
            Box::new(m20261201_000001_add_page_version_cover_rsvp_token::Migration),
            Box::new(m20261201_000002_alter_refresh_tokens::Migration),
            Box::new(m20261201_000003_create_chat_turns::Migration),
            Box::new(m20261201_000004_create_editor_invitations::Migration),
            Box::new(m20261201_000005_add_file_renditions::Migration),
        ]
    }
}
