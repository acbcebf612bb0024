//! The admin dashboard's API, under `/api/admin`. Every handler takes [`AdminUser`],
//! so a route cannot be added without the admin check.
//!
//! [`AdminUser`]: crate::auth::AdminUser

pub mod audit;
mod guestbook;
mod list;
mod pages;
mod payments;
mod stats;
mod users;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    users::router()
        .merge(pages::router())
        .merge(guestbook::router())
        .merge(payments::router())
        .merge(stats::router())
        .merge(audit::router())
}
