use std::time::Duration;

use bytes::Bytes;
use ocr_shared::aws::S3BlobStore;
use ocr_shared::domain::{FileType, Sha256Hex};
use ocr_shared::ports::{BlobError, BlobStore, UploadSlot};
use ocr_tests::{resources, sdk_config};
use sha2::{Digest, Sha256};

async fn store() -> S3BlobStore {
    let config = sdk_config().await;
    let bucket = resources::bucket(&config).await;
    S3BlobStore::new(S3BlobStore::client(&config), bucket)
}

/// Deterministic bytes that are not one repeated block.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn the_streamed_sha256_of_64_mib_equals_sha256sum() {
    let store = store().await;
    let bytes = pseudo_random(64 * 1024 * 1024);
    let file = std::env::temp_dir().join(format!("lambda-ocr-64mib-{}", uuid::Uuid::new_v4()));
    std::fs::write(&file, &bytes).unwrap();
    let output = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum runs");
    std::fs::remove_file(&file).unwrap();
    let expected = String::from_utf8(output.stdout).unwrap();
    let expected = expected.split_whitespace().next().unwrap().to_owned();

    store
        .put("uploads/large", Bytes::from(bytes), "application/pdf")
        .await
        .unwrap();
    let streamed = store.sha256("uploads/large").await.unwrap();
    assert_eq!(streamed.as_str(), expected);
}

#[tokio::test]
async fn a_presigned_put_stores_the_object_with_its_content_type() {
    let store = store().await;
    let body = include_bytes!("../../shared/tests/fixtures/headers/sample.png").to_vec();
    let digest = Sha256Hex::from_digest(Sha256::digest(&body).into());
    let slot = UploadSlot {
        content_type: FileType::Png,
        content_length: body.len() as u64,
        sha256: Some(digest.clone()),
    };
    let presigned = store
        .presign_upload("uploads/job-1", &slot, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(presigned.method, "PUT");
    assert_eq!(
        presigned.headers.get("content-type").map(String::as_str),
        Some("image/png")
    );
    assert_eq!(
        presigned.headers.get("x-amz-checksum-sha256"),
        Some(&digest.to_base64())
    );

    let client = reqwest::Client::new();
    // Other bytes than the declared SHA-256: refused, as S3 does (400 BadDigest), and not stored.
    let mut other = client
        .put(&presigned.url)
        .body(body.iter().rev().copied().collect::<Vec<u8>>());
    for (name, value) in &presigned.headers {
        other = other.header(name, value);
    }
    let refused = other.send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    assert!(refused.text().await.unwrap().contains("BadDigest"));
    assert!(store.head("uploads/job-1").await.unwrap().is_none());

    let mut request = client.put(&presigned.url).body(body.clone());
    for (name, value) in &presigned.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );

    // The same URL again, within its life, with other bytes of the same length
    // and no checksum header: S3 refuses it because the object exists.
    let mut replay = client
        .put(&presigned.url)
        .body(body.iter().rev().copied().collect::<Vec<u8>>());
    for (name, value) in presigned
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "x-amz-checksum-sha256")
    {
        replay = replay.header(name, value);
    }
    let replayed = replay.send().await.unwrap();
    assert_eq!(
        replayed.status().as_u16(),
        412,
        "a presigned PUT is single-use"
    );

    let info = store
        .head("uploads/job-1")
        .await
        .unwrap()
        .expect("the upload exists");
    let etag = info.etag.clone().expect("S3 tags every object");
    assert_eq!(
        store.get_if_match("uploads/job-1", &etag).await.unwrap(),
        Bytes::from(body.clone()),
        "the checked version reads back"
    );
    store
        .put(
            "uploads/job-1",
            Bytes::from_static(b"replaced"),
            "image/png",
        )
        .await
        .unwrap();
    assert!(
        matches!(
            store.get_if_match("uploads/job-1", &etag).await,
            Err(BlobError::Changed(_))
        ),
        "another version is refused, not read"
    );
    store
        .put("uploads/job-1", Bytes::from(body.clone()), "image/png")
        .await
        .unwrap();
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.content_type.as_deref(), Some("image/png"));
    assert_eq!(
        info.sha256,
        Some(digest),
        "S3 keeps the checksum it verified"
    );
    assert_eq!(
        store.get("uploads/job-1").await.unwrap(),
        Bytes::from(body.clone())
    );

    // The presigned GET serves the same bytes.
    let download = store
        .presign_download("uploads/job-1", Duration::from_secs(60))
        .await
        .unwrap();
    let fetched = client
        .get(&download.url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(fetched.as_ref(), body.as_slice());
}

#[tokio::test]
async fn ranged_reads_return_the_head_and_stop_at_the_end() {
    let store = store().await;
    store
        .put(
            "uploads/small",
            Bytes::from_static(b"%PDF-1.7 tiny"),
            "application/pdf",
        )
        .await
        .unwrap();
    assert_eq!(
        store.read_range("uploads/small", 0, 5).await.unwrap(),
        Bytes::from_static(b"%PDF-")
    );
    assert_eq!(
        store.read_range("uploads/small", 9, 4096).await.unwrap(),
        Bytes::from_static(b"tiny")
    );
    assert_eq!(
        store.read_range("uploads/small", 100, 10).await.unwrap(),
        Bytes::new()
    );
}

#[tokio::test]
async fn missing_objects_are_absent_not_errors_and_delete_is_idempotent() {
    let store = store().await;
    assert_eq!(store.head("uploads/none").await.unwrap(), None);
    assert!(matches!(
        store.get("uploads/none").await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        store.sha256("uploads/none").await,
        Err(BlobError::NotFound(_))
    ));

    store
        .put(
            "results/r.json",
            Bytes::from_static(b"{\"text\":\"\xea\xb0\x80\"}"),
            "application/json",
        )
        .await
        .unwrap();
    store.delete("results/r.json").await.unwrap();
    assert_eq!(store.head("results/r.json").await.unwrap(), None);
    store.delete("results/r.json").await.unwrap();
}

#[tokio::test]
async fn of_eight_racing_puts_through_one_upload_url_exactly_one_lands() {
    let store = store().await;
    let body = include_bytes!("../../shared/tests/fixtures/headers/sample.png").to_vec();
    let slot = UploadSlot {
        content_type: FileType::Png,
        content_length: body.len() as u64,
        sha256: None,
    };
    let presigned = store
        .presign_upload("uploads/raced", &slot, Duration::from_secs(300))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let mut puts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut request = client.put(&presigned.url).body(body.clone());
        for (name, value) in &presigned.headers {
            request = request.header(name, value);
        }
        puts.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = puts.join_all().await;
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
}

#[tokio::test]
async fn deleting_a_prefix_removes_every_object_under_it_over_several_list_pages_and_nothing_else()
{
    let store = store().await;
    // More than one ListObjectsV2 page (1,000 keys) under the prefix.
    let prefix = "chunks/5cc7d92f-4a9d-43bd-b39c-3fe2c1c900a5/";
    let store = std::sync::Arc::new(store);
    let mut puts = tokio::task::JoinSet::new();
    for n in 1..=1005u32 {
        let store = store.clone();
        puts.spawn(async move {
            let key = format!("{prefix}{n:05}-{n:05}.json");
            store
                .put(&key, Bytes::from_static(b"{}"), "application/json")
                .await
        });
    }
    while let Some(put) = puts.join_next().await {
        put.unwrap().unwrap();
    }
    let other = "chunks/5cc7d92f-4a9d-43bd-b39c-3fe2c1c900a6/00001-00100.json";
    store
        .put(other, Bytes::from_static(b"{}"), "application/json")
        .await
        .unwrap();

    assert_eq!(store.delete_prefix(prefix).await.unwrap(), 1005);
    assert_eq!(store.delete_prefix(prefix).await.unwrap(), 0, "idempotent");
    assert!(
        store.head(other).await.unwrap().is_some(),
        "another job's chunk stays"
    );
    assert!(
        store
            .head(&format!("{prefix}00001-00001.json"))
            .await
            .unwrap()
            .is_none()
    );
}
