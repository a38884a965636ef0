use std::time::Duration;

use ocr_shared::aws::SecretsManagerSource;
use ocr_shared::ports::SecretSource;
use ocr_tests::{resources, sdk_config};
use secrecy::ExposeSecret;

#[tokio::test]
async fn a_secret_is_read_once_per_ttl_and_a_rotation_is_seen_after_it() {
    let config = sdk_config().await;
    let arn = resources::secret(&config, "up_key_1").await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let source = SecretsManagerSource::new(client.clone(), Duration::from_millis(800));
    assert_eq!(
        source.secret(&arn).await.unwrap().expose_secret(),
        "up_key_1"
    );

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("up_key_2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        source.secret(&arn).await.unwrap().expose_secret(),
        "up_key_1",
        "within the TTL the cached value serves"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        source.secret(&arn).await.unwrap().expose_secret(),
        "up_key_2"
    );

    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("up_key_3")
        .send()
        .await
        .unwrap();
    source.forget(&arn).await;
    assert_eq!(
        source.secret(&arn).await.unwrap().expose_secret(),
        "up_key_3"
    );
}

#[tokio::test]
async fn a_missing_secret_is_an_error_that_never_shows_a_value() {
    let config = sdk_config().await;
    let source = SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(&config),
        Duration::from_secs(60),
    );
    let error = source
        .secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:none")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("GetSecretValue"), "{error}");
}
