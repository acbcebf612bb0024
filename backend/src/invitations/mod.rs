//! Guest invitations (one personal link per guest) and RSVPs.

mod csv_import;
mod public;
mod routes;
pub mod rsvp;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Owner routes, nested under `/api/pages`.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router().merge(rsvp::router())
}

/// Guest routes, nested under `/api/public`.
pub fn public_router() -> OpenApiRouter<AppState> {
    public::router()
}
