//! The blob store on S3: objects under `uploads/`, `results/` and `chunks/`, SigV4
//! presigned URLs (the upload URL signs `if-none-match: *`, so it works once),
//! ranged and ETag-pinned reads, and the SHA-256 S3 verified when it has one.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::presigning::{PresignedRequest as SdkPresigned, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::AwsCallError;
use crate::domain::{Sha256Hex, Timestamp};
use crate::ports::{BlobError, BlobStore, ObjectInfo, PresignedRequest, UploadSlot};

/// The documents bucket. Keys come from job ids only.
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// Over the bucket `bucket`, with a client of the shared SDK configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self::new(Self::client(sdk), bucket)
    }

    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// An S3 client for this SDK configuration; path-style addressing when an
    /// endpoint is overridden (moto and other local endpoints have no bucket DNS).
    pub fn client(config: &aws_config::SdkConfig) -> Client {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Client::from_conf(s3_config)
    }
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(ttl)
        .map_err(|e| BlobError::backend(AwsCallError::new("Presign", &e)))
}

fn to_request(presigned: SdkPresigned, ttl: Duration) -> PresignedRequest {
    PresignedRequest {
        method: presigned.method().to_owned(),
        url: presigned.uri().to_owned(),
        headers: presigned
            .headers()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect::<BTreeMap<_, _>>(),
        expires_at: Timestamp::now().plus(ttl),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    #[instrument(skip(self, slot), fields(size = slot.content_length))]
    async fn presign_upload(
        &self,
        key: &str,
        slot: &UploadSlot,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(slot.content_type.mime())
            .content_length(slot.content_length as i64)
            // Single use: a replay of the URL cannot overwrite what ingest checked.
            .if_none_match("*")
            .set_checksum_sha256(slot.sha256.as_ref().map(Sha256Hex::to_base64))
            .set_checksum_algorithm(
                slot.sha256
                    .as_ref()
                    .map(|_| aws_sdk_s3::types::ChecksumAlgorithm::Sha256),
            );
        let presigned = request
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| BlobError::backend(AwsCallError::new("PutObject presign", &e)))?;
        Ok(to_request(presigned, ttl))
    }

    #[instrument(skip(self))]
    async fn presign_download(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| BlobError::backend(AwsCallError::new("GetObject presign", &e)))?;
        Ok(to_request(presigned, ttl))
    }

    #[instrument(skip(self))]
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => return Ok(None),
            Err(e) => return Err(BlobError::backend(AwsCallError::new("HeadObject", &e))),
        };
        Ok(Some(ObjectInfo {
            size: output.content_length().unwrap_or(0).max(0) as u64,
            content_type: output.content_type().map(str::to_owned),
            // Only a whole-object checksum is the file's SHA-256 (multipart ones end in "-N").
            sha256: output
                .checksum_sha256()
                .and_then(|b64| Sha256Hex::from_base64(b64).ok()),
            etag: output.e_tag().map(str::to_owned),
        }))
    }

    #[instrument(skip(self))]
    async fn read_range(&self, key: &str, start: u64, len: u64) -> Result<Bytes, BlobError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let range = format!("bytes={}-{}", start, start + len - 1);
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
                return Err(BlobError::NotFound(key.to_owned()));
            }
            // 416: the range starts past the end, so there is nothing to read.
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 416 => {
                return Ok(Bytes::new());
            }
            Err(e) => return Err(BlobError::backend(AwsCallError::new("GetObject", &e))),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| BlobError::backend(AwsCallError::new("GetObject body", &e)))?;
        Ok(body.into_bytes())
    }

    #[instrument(skip(self))]
    async fn sha256(&self, key: &str) -> Result<Sha256Hex, BlobError> {
        let mut body = self.open(key).await?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| BlobError::backend(AwsCallError::new("GetObject body", &e)))?
        {
            hasher.update(&chunk);
        }
        Ok(Sha256Hex::from_digest(hasher.finalize().into()))
    }

    #[instrument(skip(self))]
    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        read_whole(self.open(key).await?).await
    }

    #[instrument(skip(self))]
    async fn get_if_match(&self, key: &str, etag: &str) -> Result<Bytes, BlobError> {
        read_whole(
            self.send_get(self.client.get_object().if_match(etag), key)
                .await?,
        )
        .await
    }

    #[instrument(skip(self, body), fields(size = body.len()))]
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| BlobError::backend(AwsCallError::new("PutObject", &e)))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| BlobError::backend(AwsCallError::new("DeleteObject", &e)))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn delete_prefix(&self, prefix: &str) -> Result<u32, BlobError> {
        let mut deleted = 0;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| BlobError::backend(AwsCallError::new("ListObjectsV2", &e)))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    self.delete(key).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

/// Buffers beyond this are grown as chunks come, not reserved from the length announced.
const MAX_RESERVED: u64 = 128 * 1024 * 1024;

/// A whole body in one buffer reserved from its announced length: a 50 MiB
/// object never needs twice its size in memory, as collecting its chunks and
/// then joining them would.
async fn read_whole(mut body: ByteStream) -> Result<Bytes, BlobError> {
    let (low, high) = body.size_hint();
    let mut whole = bytes::BytesMut::with_capacity(high.unwrap_or(low).min(MAX_RESERVED) as usize);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| BlobError::backend(AwsCallError::new("GetObject body", &e)))?
    {
        whole.extend_from_slice(&chunk);
    }
    Ok(whole.freeze())
}

impl S3BlobStore {
    async fn open(&self, key: &str) -> Result<ByteStream, BlobError> {
        self.send_get(self.client.get_object(), key).await
    }

    async fn send_get(
        &self,
        request: aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder,
        key: &str,
    ) -> Result<ByteStream, BlobError> {
        match request.bucket(&self.bucket).key(key).send().await {
            Ok(output) => Ok(output.body),
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => {
                Err(BlobError::Changed(key.to_owned()))
            }
            Err(e) => Err(BlobError::backend(AwsCallError::new("GetObject", &e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

    use super::*;
    use crate::domain::FileType;

    fn offline_store() -> S3BlobStore {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("ap-northeast-2"))
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .build();
        S3BlobStore::new(Client::from_conf(config), "documents")
    }

    fn query(url: &str, name: &str) -> Option<String> {
        let (_, query) = url.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.replace("%3B", ";"))
        })
    }

    fn slot(sha256: Option<Sha256Hex>) -> UploadSlot {
        UploadSlot {
            content_type: FileType::Jpeg,
            content_length: 123_456,
            sha256,
        }
    }

    #[tokio::test]
    async fn an_upload_url_signs_type_length_and_checksum_for_the_configured_time() {
        let digest = Sha256Hex::from_digest([7; 32]);
        let request = offline_store()
            .presign_upload(
                "uploads/abc",
                &slot(Some(digest.clone())),
                Duration::from_secs(600),
            )
            .await
            .unwrap();

        assert_eq!(request.method, "PUT");
        assert_eq!(query(&request.url, "X-Amz-Expires").as_deref(), Some("600"));
        let signed = query(&request.url, "X-Amz-SignedHeaders").unwrap();
        let signed: Vec<&str> = signed.split(';').collect();
        for header in [
            "content-length",
            "content-type",
            "host",
            "if-none-match",
            "x-amz-checksum-sha256",
        ] {
            assert!(
                signed.contains(&header),
                "{header} is not signed: {signed:?}"
            );
        }
        assert_eq!(
            request.headers.get("content-length").map(String::as_str),
            Some("123456")
        );
        assert_eq!(
            request.headers.get("content-type").map(String::as_str),
            Some("image/jpeg")
        );
        assert_eq!(
            request.headers.get("x-amz-checksum-sha256"),
            Some(&digest.to_base64())
        );
        assert_eq!(
            request.headers.get("if-none-match").map(String::as_str),
            Some("*"),
            "the URL can create the object once, never overwrite it"
        );
        // Every header the client is told to send is one the signature covers.
        for name in request.headers.keys() {
            assert!(
                signed.contains(&name.as_str()),
                "{name} would be sent unsigned"
            );
        }
    }

    #[tokio::test]
    async fn without_a_declared_hash_the_url_still_signs_type_and_length() {
        let request = offline_store()
            .presign_upload("uploads/abc", &slot(None), Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(query(&request.url, "X-Amz-Expires").as_deref(), Some("120"));
        let signed = query(&request.url, "X-Amz-SignedHeaders").unwrap();
        assert!(signed.contains("content-length"), "{signed}");
        assert!(signed.contains("content-type"), "{signed}");
        assert!(!signed.contains("x-amz-checksum-sha256"), "{signed}");
        assert!(!request.headers.contains_key("x-amz-checksum-sha256"));
    }

    #[tokio::test]
    async fn a_download_url_expires_as_asked() {
        let request = offline_store()
            .presign_download("results/abc.json", Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(query(&request.url, "X-Amz-Expires").as_deref(), Some("300"));
        assert!(request.url.contains("results/abc.json"), "{}", request.url);
    }
}
