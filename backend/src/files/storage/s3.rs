//! Amazon S3 or any S3-compatible server (MinIO, Ceph, moto, ...). Uploads are spooled
//! to a temporary file first and then sent with one `PutObject` streamed from that
//! file: the request is retryable and the whole object never sits in memory.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation, retry::RetryConfig, timeout::TimeoutConfig,
    },
    error::SdkError,
    presigning::PresigningConfig,
    primitives::ByteStream,
};
use aws_smithy_http_client::{Builder as HttpClientBuilder, tls};
use secrecy::ExposeSecret;

use super::{ObjectReader, Storage, StorageError, StorageResult};
use crate::config::FilesConfig;

pub struct S3Storage {
    client: Client,
    bucket: String,
    spool: PathBuf,
}

impl S3Storage {
    pub async fn new(cfg: &FilesConfig, spool: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&spool)
            .with_context(|| format!("creating the upload spool at {}", spool.display()))?;
        let http = HttpClientBuilder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let region = Region::new(cfg.s3_region.clone());
        let mut builder = match (&cfg.s3_access_key_id, &cfg.s3_secret_access_key) {
            (Some(id), Some(secret)) => aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(region)
                .credentials_provider(Credentials::new(
                    id,
                    secret.expose_secret(),
                    None,
                    None,
                    "mocheong-config",
                ))
                .http_client(http),
            _ => {
                let shared = aws_config::defaults(BehaviorVersion::latest())
                    .region(region)
                    .http_client(http)
                    .load()
                    .await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        builder = builder
            .force_path_style(cfg.s3_force_path_style)
            // Many S3-compatible servers reject the newer default checksum headers.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Fail fast when the store is down: the client gets a 503 in seconds.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &cfg.s3_endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let storage = S3Storage {
            client: Client::from_conf(builder.build()),
            bucket: cfg.s3_bucket.clone(),
            spool,
        };
        if cfg.s3_create_bucket {
            storage.create_bucket().await?;
        }
        Ok(storage)
    }

    async fn create_bucket(&self) -> anyhow::Result<()> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if e.err().is_bucket_already_owned_by_you()
                    || e.err().is_bucket_already_exists() =>
            {
                Ok(())
            }
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("creating bucket {:?}", self.bucket)))
            }
        }
    }
}

fn unavailable<E, R>(err: SdkError<E, R>) -> StorageError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StorageError::unavailable(anyhow::Error::new(err))
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn spool_dir(&self) -> &Path {
        &self.spool
    }

    async fn put_file(&self, key: &str, file: &Path, content_type: &str) -> StorageResult<()> {
        let body = ByteStream::from_path(file)
            .await
            .map_err(StorageError::unavailable)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StorageResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn head(&self, key: &str) -> StorageResult<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn open(&self, key: &str) -> StorageResult<ObjectReader> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(ObjectReader {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                body: Box::pin(out.body.into_async_read()),
            }),
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
                Err(StorageError::NotFound)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> StorageResult<Option<String>> {
        let presigning = PresigningConfig::expires_in(ttl).map_err(StorageError::unavailable)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(unavailable)?;
        Ok(Some(req.uri().to_owned()))
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> StorageResult<Option<String>> {
        let presigning = PresigningConfig::expires_in(ttl).map_err(StorageError::unavailable)?;
        // Content type and length are signed: the client must PUT exactly these.
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            .presigned(presigning)
            .await
            .map_err(unavailable)?;
        Ok(Some(req.uri().to_owned()))
    }
}
