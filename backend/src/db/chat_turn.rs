use sea_orm::entity::prelude::*;

/// An open chat turn (a user message not yet answered, stopped or failed): the
/// hand-off outbox and the deadline sweeper's work list. See docs/chat.md.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_turns")]
pub struct Model {
    /// The user message (its `message_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: String,
    pub session_id: String,
    /// When `message-accepted` was sent (Unix ms): the turn's deadlines count from here.
    pub accepted_at_ms: i64,
    /// When the next hand-off attempt is due (Unix ms); `None` once handed off.
    pub handoff_due_ms: Option<i64>,
    pub attempts: i32,
    /// The instance holding the hand-off lease, until `lease_until_ms`.
    pub lease_owner: Option<String>,
    pub lease_until_ms: i64,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

crate::db::timestamped_active_model!();
