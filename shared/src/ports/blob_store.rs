//! The object store port: uploads and results by key, with the reads ingest
//! and the worker need (ranges, a verified SHA-256, a read pinned to one ETag)
//! and presigned upload and download URLs.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::{FileType, Sha256Hex, Timestamp};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object {0} does not exist")]
    NotFound(String),
    /// The object is no longer the version that was checked (its ETag differs).
    #[error("object {0} changed after it was checked")]
    Changed(String),
    #[error("blob store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl BlobError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        BlobError::Backend(Box::new(error))
    }
}

/// What the client will send: signed into the upload URL so the store itself
/// refuses other bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadSlot {
    pub content_type: FileType,
    pub content_length: u64,
    pub sha256: Option<Sha256Hex>,
}

/// A request the client makes as given: method, URL and the headers it must send.
#[derive(Clone, Debug, PartialEq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: Option<String>,
    /// The SHA-256 the store verified on upload, when the upload carried one.
    pub sha256: Option<Sha256Hex>,
    /// The store's version tag of these bytes: what a later read insists on.
    pub etag: Option<String>,
}

/// The documents bucket: uploads in, results out.
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn presign_upload(
        &self,
        key: &str,
        slot: &UploadSlot,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError>;

    async fn presign_download(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError>;

    /// Size, type and verified checksum; `None` when the object is absent.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError>;

    /// Up to `len` bytes from `start` (fewer at the end of the object).
    async fn read_range(&self, key: &str, start: u64, len: u64) -> Result<Bytes, BlobError>;

    /// SHA-256 of the whole object, streamed through in bounded memory.
    async fn sha256(&self, key: &str) -> Result<Sha256Hex, BlobError>;

    async fn get(&self, key: &str) -> Result<Bytes, BlobError>;

    /// The object only if it is still the version tagged `etag`, else `Changed`.
    async fn get_if_match(&self, key: &str, etag: &str) -> Result<Bytes, BlobError>;

    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), BlobError>;

    /// Removes the object; absent objects are not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Removes every object whose key starts with `prefix` (a job's chunks);
    /// returns how many there were.
    async fn delete_prefix(&self, prefix: &str) -> Result<u32, BlobError>;
}
