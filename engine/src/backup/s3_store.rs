//! Copies in S3-compatible object storage, through the `object_store` crate.
//!
//! Uploads stream the file in 8 MiB parts (a multipart upload above that size, aborted on
//! error), so memory stays bounded whatever the snapshot's size; the copy is then downloaded
//! and its digest checked, which proves what the bucket returns, not just what was sent.
//! Credentials come from the `AWS_*` environment variables only.

use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::BackupError;
use super::destination::{Destination, S3Destination};
use super::store::{Digest, LocalSnapshot, StoredSnapshot, snapshot_of_meta};
use crate::snapshot::meta::{META_SUFFIX, SnapshotMeta};

/// Upload part size, and the read buffer.
const PART: usize = 8 << 20;
/// Parts in flight at once.
const CONCURRENCY: usize = 2;

/// A bucket and prefix.
#[derive(Debug)]
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    shown: String,
}

impl S3Store {
    /// A client for the bucket, configured from the `AWS_*` variables and the destination.
    pub fn new(destination: &S3Destination) -> Result<S3Store, BackupError> {
        // reqwest is built without a default TLS provider; the tree's is ring.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let shown = Destination::S3(destination.clone()).to_string();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&destination.bucket);
        if let Some(endpoint) = &destination.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &destination.region {
            builder = builder.with_region(region);
        }
        if destination.allow_http {
            builder = builder.with_allow_http(true);
        }
        let store = builder.build().map_err(|source| BackupError::S3 {
            destination: shown.clone(),
            what: "configure the client".into(),
            source,
        })?;
        Ok(S3Store {
            store: Arc::new(store),
            prefix: destination.prefix.clone(),
            shown,
        })
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn root(&self) -> String {
        self.shown.clone()
    }

    /// Where the snapshot `name` is.
    pub fn location(&self, name: &str) -> String {
        format!("{}/{name}", self.shown)
    }

    fn key(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn meta_key(&self, name: &str) -> ObjectPath {
        self.key(&format!("{name}{META_SUFFIX}"))
    }

    fn error(&self, what: impl Into<String>) -> impl FnOnce(object_store::Error) -> BackupError {
        let destination = self.shown.clone();
        let what = what.into();
        move |source| BackupError::S3 {
            destination,
            what,
            source,
        }
    }

    pub(crate) async fn read_meta(&self, name: &str) -> Result<Option<SnapshotMeta>, BackupError> {
        let key = self.meta_key(name);
        let bytes = match self.store.get(&key).await {
            Ok(found) => found
                .bytes()
                .await
                .map_err(self.error(format!("read {key}")))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.error(format!("read {key}"))(err)),
        };
        SnapshotMeta::parse(&String::from_utf8_lossy(&bytes))
            .map(Some)
            .map_err(|reason| BackupError::Copy {
                location: self.location(name),
                reason: format!("its metadata is unreadable: {reason}"),
            })
    }

    pub(crate) async fn upload(&self, local: &LocalSnapshot) -> Result<(), BackupError> {
        let key = self.key(&local.name);
        let mut file =
            tokio::fs::File::open(&local.path)
                .await
                .map_err(|source| BackupError::Local {
                    path: local.path.clone(),
                    reason: format!("cannot open it: {source}"),
                })?;
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), key.clone(), PART)
            .with_max_concurrency(CONCURRENCY);
        let mut buffer = vec![0u8; PART];
        let mut shut_down = false;
        let sent = async {
            loop {
                let n = file
                    .read(&mut buffer)
                    .await
                    .map_err(|source| BackupError::Local {
                        path: local.path.clone(),
                        reason: format!("cannot read it: {source}"),
                    })?;
                if n == 0 {
                    break;
                }
                writer
                    .write_all(&buffer[..n])
                    .await
                    .map_err(|source| self.io_error(&key, source))?;
            }
            shut_down = true;
            writer
                .shutdown()
                .await
                .map_err(|source| self.io_error(&key, source))
        }
        .await;
        // A writer that failed before its last part can abort its multipart upload; one whose
        // completion failed cannot be aborted through it (the bucket's lifecycle rule for
        // incomplete multipart uploads cleans those up).
        if sent.is_err() && !shut_down {
            let _ = writer.abort().await;
        }
        sent
    }

    fn io_error(&self, key: &ObjectPath, source: std::io::Error) -> BackupError {
        BackupError::Io {
            destination: self.shown.clone(),
            what: format!("upload {key}"),
            source,
        }
    }

    pub(crate) async fn upload_meta(&self, name: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        let key = self.meta_key(name);
        self.store
            .put(&key, PutPayload::from(bytes))
            .await
            .map(drop)
            .map_err(self.error(format!("upload {key}")))
    }

    pub(crate) async fn digest(&self, name: &str) -> Result<Digest, BackupError> {
        let key = self.key(name);
        let found = match self.store.get(&key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(Digest::Missing),
            Err(err) => return Err(self.error(format!("read {key}"))(err)),
        };
        let mut stream = found.into_stream();
        let mut digest = Digest::of_chunks();
        while let Some(chunk) = stream.next().await {
            digest.update(&chunk.map_err(self.error(format!("read {key}")))?);
        }
        Ok(digest.finish())
    }

    pub(crate) async fn list(&self) -> Result<Vec<StoredSnapshot>, BackupError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        // Only this level: copies under a deeper prefix belong to another destination.
        let listing = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(self.error("list copies"))?;
        let sizes: std::collections::HashMap<String, u64> = listing
            .objects
            .iter()
            .filter_map(|o| Some((o.location.filename()?.to_string(), o.size)))
            .collect();
        let mut found = Vec::new();
        for object in &listing.objects {
            let Some(name) = object.location.filename().and_then(snapshot_of_meta) else {
                continue;
            };
            let Some(meta) = self.read_meta(name).await? else {
                continue;
            };
            found.push(StoredSnapshot::new(
                name.to_string(),
                self.location(name),
                meta,
                sizes.get(name).copied(),
            ));
        }
        Ok(found)
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<(), BackupError> {
        for key in [self.meta_key(name), self.key(name)] {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(self.error(format!("delete {key}"))(err)),
            }
        }
        Ok(())
    }
}
