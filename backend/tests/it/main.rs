//! One integration-test binary. Every test starts the real server on a random port
//! against a real database: SQLite by default, PostgreSQL when `TEST_DATABASE_URL`
//! is set (`make test` runs the binary once for each).

mod common;

mod admin;
mod admission;
mod auth;
mod chat;
mod chat_rate_limit;
mod cors;
mod dashboard;
mod editor_invitations;
mod errors;
mod events;
mod fake_portone;
mod files;
mod guests;
mod hardening;
mod health;
mod metrics;
mod openapi;
mod page_access;
mod page_inputs;
mod pages;
mod parents;
mod payments;
mod public_images;
mod relay;
mod renditions;
mod startup;
