use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, run, service_fn};
use ocr_shared::aws::{
    DynamoJobStore, DynamoRateLimiter, S3BlobStore, SecretsManagerSource, SnsEventPublisher,
    SqsJobQueue, load_sdk_config,
};
use ocr_shared::config::{Env, ProcessEnv, UpstageKey};
use ocr_shared::engines::{UpstageEngine, UpstageKeySource};
use ocr_worker::{Config, Worker, handle};

/// How long a read of the Upstage key serves before Secrets Manager is asked again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.aws).await;
    let key = match config.upstage.key {
        UpstageKey::Inline(key) => UpstageKeySource::Inline(key),
        UpstageKey::Secret { arn } => UpstageKeySource::Secret {
            source: Arc::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                KEY_CACHE_TTL,
            )),
            id: arn,
        },
    };
    let engine = UpstageEngine::new(
        &config.upstage.base_url,
        &config.upstage.model,
        key,
        config.upstage_timeout,
    )?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let worker = Worker {
        jobs: Arc::new(DynamoJobStore::new(dynamodb.clone(), &config.table)),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), config.bucket)),
        queue: Arc::new(SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.queue_url,
        )),
        events: Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&sdk),
            config.topic_arn,
        )),
        engine: Arc::new(engine),
        limiter: Arc::new(DynamoRateLimiter::new(dynamodb, config.table)),
        settings: config.settings,
    };
    run(service_fn(|event| handle(event, &worker))).await
}
