//! Expiring links the backend itself serves (local storage): an HMAC-SHA256 over
//! the method, file id, variant and expiry, keyed by a key derived from `JWT_SECRET`
//! so no extra secret has to be configured. Tampering with any part breaks the
//! signature; the comparison is constant-time.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::Config;

type HmacSha256 = Hmac<Sha256>;

pub use crate::db::file::Variant;

pub struct UrlSigner {
    key: [u8; 32],
}

impl UrlSigner {
    pub fn new(cfg: &Config) -> Self {
        // A derived key: a leaked file link reveals nothing usable to forge tokens.
        let mut h = Sha256::new();
        h.update(b"mocheong file urls\0");
        h.update(cfg.jwt_secret.expose_secret().as_bytes());
        UrlSigner {
            key: h.finalize().into(),
        }
    }

    fn mac(&self, method: &str, file_id: &str, variant: &str, exp: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(format!("{method}\n{file_id}\n{variant}\n{exp}").as_bytes());
        mac
    }

    pub fn sign(&self, method: &str, file_id: &str, variant: &str, exp: i64) -> String {
        hex::encode(
            self.mac(method, file_id, variant, exp)
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `sig` is right and `exp` (unix seconds) has not passed.
    pub fn verify(&self, method: &str, file_id: &str, variant: &str, exp: i64, sig: &str) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        exp >= chrono::Utc::now().timestamp()
            && self
                .mac(method, file_id, variant, exp)
                .verify_slice(&sig)
                .is_ok()
    }
}
