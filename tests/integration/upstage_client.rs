//! The Upstage client against the fake that checks the published contract.

use std::time::Duration;

use bytes::Bytes;
use ocr_shared::domain::{ErrorCode, FileType};
use ocr_shared::engines::{UpstageEngine, UpstageKeySource};
use ocr_shared::ports::{Document, OcrEngine, OcrError};
use ocr_tests::fake_upstage::{API_KEY, FakeUpstage, Reply};
use secrecy::SecretString;

fn engine(fake: &FakeUpstage, key: &str, timeout: Duration) -> UpstageEngine {
    UpstageEngine::new(
        &fake.url,
        "ocr",
        UpstageKeySource::Inline(SecretString::from(key)),
        timeout,
    )
    .unwrap()
}

fn receipt() -> Document {
    Document {
        filename: "영수증.jpg".into(),
        file_type: FileType::Jpeg,
        bytes: Bytes::from_static(include_bytes!(
            "../../shared/tests/fixtures/headers/sample.jpg"
        )),
    }
}

#[tokio::test]
async fn a_request_follows_the_contract_and_the_answer_is_parsed() {
    let fake = FakeUpstage::start().await;
    let result = engine(&fake, API_KEY, Duration::from_secs(5))
        .recognize(&receipt())
        .await
        .unwrap();
    assert_eq!(result.model_version, "ocr-2.2.1");
    assert_eq!(result.pages[0].words.len(), 123);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].model, "ocr");
    assert_eq!(calls[0].filename, "영수증.jpg");
    assert_eq!(calls[0].content_type, "image/jpeg");
    assert_eq!(calls[0].size, receipt().bytes.len());
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized() {
    let fake = FakeUpstage::start().await;
    let error = engine(&fake, "up_wrong", Duration::from_secs(5))
        .recognize(&receipt())
        .await
        .unwrap_err();
    assert!(matches!(error, OcrError::Unauthorized { .. }), "{error:?}");
    assert!(error.to_string().contains("401"));
    assert_eq!(fake.refused(), vec!["invalid API key".to_owned()]);
}

#[tokio::test]
async fn a_refused_key_is_read_again_from_secrets_manager_on_the_next_call() {
    use std::sync::Arc;

    use ocr_shared::aws::SecretsManagerSource;
    let config = ocr_tests::sdk_config().await;
    let secret = ocr_tests::resources::secret(&config, "up_old_key_before_rotation").await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let fake = FakeUpstage::start().await;
    let engine = UpstageEngine::new(
        &fake.url,
        "ocr",
        UpstageKeySource::Secret {
            // A cache far longer than the test: only forgetting can pick up the new key.
            source: Arc::new(SecretsManagerSource::new(
                client.clone(),
                Duration::from_secs(3600),
            )),
            id: secret.clone(),
        },
        Duration::from_secs(5),
    )
    .unwrap();

    let error = engine.recognize(&receipt()).await.unwrap_err();
    assert!(matches!(error, OcrError::Unauthorized { .. }), "{error:?}");
    client
        .put_secret_value()
        .secret_id(&secret)
        .secret_string(API_KEY)
        .send()
        .await
        .unwrap();
    let result = engine.recognize(&receipt()).await.unwrap();
    assert_eq!(result.pages[0].words.len(), 123);
    assert_eq!(fake.calls().len(), 1);
    assert_eq!(fake.refused(), vec!["invalid API key".to_owned()]);
}

#[tokio::test]
async fn each_scripted_failure_is_classified() {
    let fake = FakeUpstage::start().await;
    fake.script([
        Reply::Error {
            status: 429,
            retry_after: Some(7),
        },
        Reply::Error {
            status: 500,
            retry_after: None,
        },
        Reply::Error {
            status: 413,
            retry_after: None,
        },
        Reply::Error {
            status: 415,
            retry_after: None,
        },
        Reply::Malformed,
        Reply::Hang(Duration::from_secs(3)),
    ]);
    let engine = engine(&fake, API_KEY, Duration::from_secs(1));
    let mut errors = Vec::new();
    for _ in 0..6 {
        errors.push(engine.recognize(&receipt()).await.unwrap_err());
    }
    assert!(
        matches!(&errors[0], OcrError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(7))
    );
    assert!(matches!(&errors[1], OcrError::Retryable { .. }));
    assert!(
        matches!(&errors[2], OcrError::Rejected { code, .. } if *code == ErrorCode::DocumentTooLarge)
    );
    assert!(
        matches!(&errors[3], OcrError::Rejected { code, .. } if *code == ErrorCode::UnsupportedDocument)
    );
    assert!(
        matches!(&errors[4], OcrError::Rejected { code, message } if *code == ErrorCode::OcrUnavailable && message.contains("not a document result")),
        "a 200 that does not parse is billed and not asked again: {:?}",
        errors[4]
    );
    assert!(
        matches!(&errors[5], OcrError::Retryable { message, .. } if message.contains("in time")),
        "{:?}",
        errors[5]
    );
    assert!(
        errors[0].to_string().contains("Too Many Requests"),
        "{}",
        errors[0]
    );
}

#[tokio::test]
async fn the_fake_refuses_requests_that_break_the_contract() {
    let fake = FakeUpstage::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/document-digitization", fake.url);
    let no_document = reqwest::multipart::Form::new().text("model", "ocr");
    let response = client
        .post(&url)
        .bearer_auth(API_KEY)
        .multipart(no_document)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let bad_model = reqwest::multipart::Form::new()
        .part(
            "document",
            reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("a.png"),
        )
        .text("model", "document-parse");
    let response = client
        .post(&url)
        .bearer_auth(API_KEY)
        .multipart(bad_model)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        fake.refused(),
        vec![
            "no document in the request".to_owned(),
            "invalid model name".to_owned()
        ]
    );
    assert!(fake.calls().is_empty());
}
