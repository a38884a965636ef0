use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, run, service_fn};
use notifier::{Config, Notifier, handle};
use ocr_shared::aws::{
    DynamoJobStore, S3BlobStore, SecretsManagerSource, SqsJobQueue, load_sdk_config,
};
use ocr_shared::config::{Env, ProcessEnv};
use ocr_shared::webhook::SystemResolver;

/// How long a read of the signing key serves before Secrets Manager is asked again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.aws).await;
    let notifier = Notifier {
        jobs: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table,
        )),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), config.bucket)),
        queue: Arc::new(SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.queue_url,
        )),
        secrets: Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            KEY_CACHE_TTL,
        )),
        secret_id: config.secret_id,
        resolver: Arc::new(SystemResolver),
        settings: config.settings,
    };
    run(service_fn(|event| handle(event, &notifier))).await
}
