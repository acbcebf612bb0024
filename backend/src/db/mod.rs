//! Database access: connection set-up and one module per table.

/// Every table has `created_at`/`updated_at`; this behaviour keeps them right on every
/// insert and update, so no handler has to remember.
macro_rules! timestamped_active_model {
    () => {
        #[async_trait::async_trait]
        impl ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
            where
                C: ConnectionTrait,
            {
                let now = chrono::Utc::now();
                if insert && self.created_at.is_not_set() {
                    self.created_at = ::sea_orm::ActiveValue::Set(now);
                }
                self.updated_at = ::sea_orm::ActiveValue::Set(now);
                Ok(self)
            }
        }
    };
}
pub(crate) use timestamped_active_model;

pub mod admin_audit_log;
pub mod chat_message;
pub mod chat_read;
pub mod chat_session;
pub mod chat_turn;
pub mod editor_invitation;
pub mod file;
pub mod guestbook_entry;
pub mod invitation;
pub mod page;
pub mod page_editor;
pub mod payment;
pub mod payment_webhook;
pub mod refresh_token;
pub mod rsvp;
pub mod user;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, PrimaryKeyTrait, QuerySelect, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, sqlx::sqlite::SqliteJournalMode,
};
use secrecy::ExposeSecret;

use crate::config::Config;

/// Opens the pool. For SQLite the data directory is created and WAL journaling is
/// switched on, so readers never wait for the single writer.
pub async fn connect(cfg: &Config) -> anyhow::Result<DatabaseConnection> {
    if cfg.is_sqlite() {
        std::fs::create_dir_all(&cfg.data_dir)?;
    }
    let mut opts = ConnectOptions::new(cfg.database_url.expose_secret().to_owned());
    opts.max_connections(cfg.db_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let db = Database::connect(opts).await?;
    Ok(db)
}

/// Key of the PostgreSQL advisory lock that serialises start-up migrations across
/// instances (any fixed number; this is "mocheong" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6d6f_6368_656f_6e67;

/// Applies pending migrations, safely when several instances start at once on the
/// same database. Everything runs in one transaction that first takes a database-wide
/// lock: `pg_advisory_xact_lock` on PostgreSQL, the write lock of `BEGIN IMMEDIATE`
/// on SQLite. The instances that wait find the work done when the lock is released
/// (the lock goes with the transaction, so a crashed migrator frees it too). Without
/// it two instances both see a migration pending and the second fails on the first's
/// tables. (A future migration that cannot run inside a transaction, such as
/// `CREATE INDEX CONCURRENTLY`, needs a release step of its own.)
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    let txn = begin_write(db).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    Ok(())
}

/// ULIDs: sortable by creation time, unguessable enough for row ids, 26 chars.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

/// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`IMMEDIATE`), so concurrent writers queue on the busy timeout instead of one of
/// them failing when it upgrades a read lock. Elsewhere it is a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Locks a row until the transaction ends, to serialise decisions that concurrent
/// transactions make by reading then writing (a page's plan from its payments, its
/// active chat session; a user's storage quota). `SELECT … FOR UPDATE` on
/// PostgreSQL; SQLite has no row locks and needs none, since [`begin_write`] takes its
/// single write lock up front.
pub async fn lock_row<E, C>(db: &C, id: &str) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::PrimaryKey: PrimaryKeyTrait<ValueType = String>,
    C: ConnectionTrait,
{
    E::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(db)
        .await?;
    Ok(())
}

/// [`lock_row`] for a page.
pub async fn lock_page<C: ConnectionTrait>(db: &C, page_id: &str) -> Result<(), DbErr> {
    lock_row::<page::Entity, _>(db, page_id).await
}
