//! Files in a directory on this machine. Writes go to a temporary file inside the
//! store and are renamed into place, so a reader never sees half an object.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;

use super::{ObjectReader, Storage, StorageError, StorageResult};

pub struct LocalStorage {
    root: PathBuf,
    spool: PathBuf,
}

impl LocalStorage {
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        let spool = root.join(".tmp");
        std::fs::create_dir_all(&spool)
            .with_context(|| format!("creating the file store at {}", root.display()))?;
        Ok(LocalStorage {
            root: root.to_owned(),
            spool,
        })
    }

    /// Keys are server-made; this refuses anything that could leave the root anyway.
    fn path_of(&self, key: &str) -> StorageResult<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            });
        if !safe {
            return Err(StorageError::unavailable(anyhow::anyhow!(
                "refusing unsafe storage key {key:?}"
            )));
        }
        Ok(self.root.join(key))
    }

    async fn ensure_parent(path: &Path) -> StorageResult<()> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(StorageError::unavailable)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn spool_dir(&self) -> &Path {
        &self.spool
    }

    async fn put_file(&self, key: &str, file: &Path, _content_type: &str) -> StorageResult<()> {
        let dest = self.path_of(key)?;
        Self::ensure_parent(&dest).await?;
        match tokio::fs::rename(file, &dest).await {
            Ok(()) => Ok(()),
            // A spool file from another file system: copy, then rename the copy.
            Err(e) if e.kind() == ErrorKind::CrossesDevices => {
                let tmp = self.spool.join(format!("{}.part", crate::db::new_id()));
                tokio::fs::copy(file, &tmp)
                    .await
                    .map_err(StorageError::unavailable)?;
                tokio::fs::rename(&tmp, &dest)
                    .await
                    .map_err(StorageError::unavailable)
            }
            Err(e) => Err(StorageError::unavailable(e)),
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> StorageResult<()> {
        let dest = self.path_of(key)?;
        Self::ensure_parent(&dest).await?;
        let tmp = self.spool.join(format!("{}.part", crate::db::new_id()));
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(StorageError::unavailable)?;
        tokio::fs::rename(&tmp, &dest)
            .await
            .map_err(StorageError::unavailable)
    }

    async fn head(&self, key: &str) -> StorageResult<Option<u64>> {
        match tokio::fs::metadata(self.path_of(key)?).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::unavailable(e)),
        }
    }

    async fn open(&self, key: &str) -> StorageResult<ObjectReader> {
        let file = match tokio::fs::File::open(self.path_of(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(StorageError::NotFound),
            Err(e) => return Err(StorageError::unavailable(e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(StorageError::unavailable)?
            .len();
        Ok(ObjectReader {
            size,
            body: Box::pin(file),
        })
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::unavailable(e)),
        }
    }

    async fn presign_get(&self, _key: &str, _ttl: Duration) -> StorageResult<Option<String>> {
        Ok(None)
    }

    async fn presign_put(
        &self,
        _key: &str,
        _content_type: &str,
        _size: u64,
        _ttl: Duration,
    ) -> StorageResult<Option<String>> {
        Ok(None)
    }
}
