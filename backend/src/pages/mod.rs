//! Invitation pages: the couple's page, its editors, its public view, and the
//! wedding context the AI assistant receives.

pub mod access;
pub mod context;
pub mod dto;
pub mod editors;
pub mod public;
mod routes;
pub mod share;
pub mod validate;
pub mod version;
pub mod views;

/// Every `/api/pages` route of this module.
pub fn router() -> utoipa_axum::router::OpenApiRouter<crate::state::AppState> {
    routes::router().merge(editors::router())
}

use crate::db::page::RsvpSettings;

/// Whether the page takes RSVPs right now.
pub fn rsvp_accepting(settings: &RsvpSettings) -> bool {
    settings.open && settings.deadline.is_none_or(|d| chrono::Utc::now() <= d)
}
