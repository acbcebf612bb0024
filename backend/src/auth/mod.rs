//! Accounts and sessions: register, login, rotating refresh tokens, logout, me.

mod extractor;
pub mod jwt;
pub mod password;
pub mod rate_limit;
pub mod refresh;
mod routes;

pub use extractor::{AdminUser, AuthUser, authenticate, bearer_token};
pub use routes::{UserOut, create_or_promote_admin, router};
