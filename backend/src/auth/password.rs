//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//! Hashing is CPU-heavy, so it runs on the blocking pool, never on the async workers,
//! and only as many at once as the argon2 [`WorkGate`] lets through (each check holds
//! 19 MiB): a burst of logins waits in a bounded queue or gets 503, not gigabytes.

use std::sync::{Arc, OnceLock};

use crate::{error::Error, gate::WorkGate};
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};

fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

pub async fn hash(gate: &Arc<WorkGate>, password: String) -> Result<String, Error> {
    let pass = gate.enter().await?;
    tokio::task::spawn_blocking(move || {
        let _pass = pass;
        hash_blocking(&password)
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))
}

/// Verifies `password` against `stored`. With no stored hash (unknown account) a dummy
/// hash is verified instead, so that both cases take the same time and an attacker
/// cannot tell which emails are registered.
pub async fn verify(
    gate: &Arc<WorkGate>,
    password: String,
    stored: Option<String>,
) -> Result<bool, Error> {
    let pass = gate.enter().await?;
    tokio::task::spawn_blocking(move || {
        let _pass = pass;
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let ok = argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok::<_, anyhow::Error>(known && ok)
    })
    .await
    .map_err(Error::internal)?
    .map_err(Error::internal)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("dummy password for timing").expect("hashing works"))
}
