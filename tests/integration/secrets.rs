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
    let rotate = |value: &'static str| {
        let client = client.clone();
        let arn = arn.clone();
        async move {
            client
                .put_secret_value()
                .secret_id(&arn)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    };

    // Within the TTL the cached value serves, however slow the machine.
    let long = SecretsManagerSource::new(client.clone(), Duration::from_secs(600));
    assert_eq!(long.secret(&arn).await.unwrap().expose_secret(), "up_key_1");
    rotate("up_key_2").await;
    assert_eq!(long.secret(&arn).await.unwrap().expose_secret(), "up_key_1");
    // Forgetting reads it again.
    long.forget(&arn).await;
    assert_eq!(long.secret(&arn).await.unwrap().expose_secret(), "up_key_2");

    // After the TTL the rotation is seen.
    let short = SecretsManagerSource::new(client.clone(), Duration::from_millis(300));
    assert_eq!(
        short.secret(&arn).await.unwrap().expose_secret(),
        "up_key_2"
    );
    rotate("up_key_3").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        short.secret(&arn).await.unwrap().expose_secret(),
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
