//! Where file bytes live. One trait, two implementations chosen by `STORAGE_BACKEND`:
//! [`s3::S3Storage`] for production (AWS or any S3-compatible server) and
//! [`local::LocalStorage`], a directory under `./data/`, as the embedded default.
//!
//! Keys are always made by the server (`users/<user>/<file>.<ext>`); no client text
//! ever becomes part of a key or a path.

pub mod local;
pub mod s3;

use std::{path::Path, pin::Pin, sync::Arc, time::Duration};

use tokio::io::AsyncRead;

use crate::config::{Config, StorageBackend};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found")]
    NotFound,
    /// The store could not be reached or refused the request; retrying may help.
    #[error("storage unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

impl StorageError {
    pub fn unavailable(err: impl Into<anyhow::Error>) -> Self {
        StorageError::Unavailable(err.into())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A readable object and its length.
pub struct ObjectReader {
    pub size: u64,
    pub body: Pin<Box<dyn AsyncRead + Send>>,
}

#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// `local` or `s3`, for logs and health output.
    fn kind(&self) -> &'static str;

    /// Directory for temporary upload files. For the local store it sits inside the
    /// store, so finishing an upload is a rename on the same file system.
    fn spool_dir(&self) -> &Path;

    /// Stores the finished temporary file `file` under `key`. The file is consumed
    /// (moved or uploaded); the caller still removes it if it is left behind.
    async fn put_file(&self, key: &str, file: &Path, content_type: &str) -> StorageResult<()>;

    /// Stores a small in-memory object (thumbnails).
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StorageResult<()>;

    /// The object's size, or `None` when there is no such object.
    async fn head(&self, key: &str) -> StorageResult<Option<u64>>;

    /// Opens the object for reading.
    async fn open(&self, key: &str) -> StorageResult<ObjectReader>;

    /// Removes the object; a missing object is not an error (deletes are retried).
    async fn delete(&self, key: &str) -> StorageResult<()>;

    /// A URL a browser can GET the object from, valid for `ttl`; `None` when the store
    /// cannot sign URLs and the backend serves the bytes itself.
    async fn presign_get(&self, key: &str, ttl: Duration) -> StorageResult<Option<String>>;

    /// A URL a browser can PUT exactly `size` bytes of `content_type` to, valid for
    /// `ttl`; `None` when the backend receives the upload itself.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> StorageResult<Option<String>>;
}

/// Builds the configured store (and creates the S3 bucket when asked to).
pub async fn build(cfg: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    if cfg.files.public_base_url.is_empty() {
        tracing::warn!(
            "FILES_PUBLIC_BASE_URL is not set: file and image links are root-relative \
             (/api/...), so a frontend on another origin, link previews and CDNs cannot \
             load them; set it to this API's public origin"
        );
    }
    Ok(match cfg.files.backend {
        StorageBackend::Local => Arc::new(local::LocalStorage::new(&cfg.files.local_dir)?),
        StorageBackend::S3 => {
            let spool = cfg.data_dir.join("upload-spool");
            Arc::new(s3::S3Storage::new(&cfg.files, spool).await?)
        }
    })
}
