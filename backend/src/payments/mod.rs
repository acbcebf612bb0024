//! Premium plans paid through PortOne V2: prepare, verify (complete and webhooks),
//! refunds. The money logic lives in [`service`] so the admin API can reuse it.

pub mod duplicates;
pub mod portone;
mod routes;
pub mod service;
pub mod webhook;

pub use routes::{PaymentOut, router};
