use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, run, service_fn};
use ocr_shared::aws::{
    DynamoJobStore, DynamoRateLimiter, S3BlobStore, SecretsManagerSource, SnsEventPublisher,
    SqsJobQueue, load_sdk_config,
};
use ocr_shared::config::{
    AwsSettings, ConfigError, EngineKind, Env, OcrSettings, ProcessEnv, UpstageKey, vars,
};
use ocr_shared::engines::{UpstageEngine, UpstageKeySource, upstage};
use ocr_worker::{Worker, WorkerSettings, handle};

/// How long a read of the Upstage key serves before Secrets Manager is asked again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let env = Env::new(&ProcessEnv);
    let ocr = OcrSettings::from_env(&env)?;
    let settings = WorkerSettings::from_env(&env, &ocr)?;
    let table = env.required(vars::JOBS_TABLE)?;
    let bucket = env.required(vars::DOCUMENTS_BUCKET)?;
    let queue_url = env.required(vars::JOBS_QUEUE_URL)?;
    let topic_arn = env.required(vars::EVENTS_TOPIC_ARN)?;
    let timeout = Duration::from_secs(env.number(
        vars::UPSTAGE_TIMEOUT_SECONDS,
        upstage::DEFAULT_TIMEOUT.as_secs(),
        5..=900,
    )?);
    let sdk = load_sdk_config(&AwsSettings::from_env(&env)?).await;

    let upstage = match (ocr.engine, ocr.upstage) {
        (EngineKind::Upstage, Some(upstage)) => upstage,
        _ => {
            return Err(ConfigError::Invalid {
                name: vars::OCR_ENGINE,
                value: "tesseract".into(),
                reason: "the Lambda worker reads with Upstage; set UPSTAGE_SECRET_ARN".into(),
            }
            .into());
        }
    };
    let key = match upstage.key {
        UpstageKey::Inline(key) => UpstageKeySource::Inline(key),
        UpstageKey::Secret { arn } => UpstageKeySource::Secret {
            source: Arc::new(SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                KEY_CACHE_TTL,
            )),
            id: arn,
        },
    };
    let engine = UpstageEngine::new(&upstage.base_url, &upstage.model, key, timeout)?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let worker = Worker {
        jobs: Arc::new(DynamoJobStore::new(dynamodb.clone(), &table)),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), bucket)),
        queue: Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url)),
        events: Arc::new(SnsEventPublisher::new(
            aws_sdk_sns::Client::new(&sdk),
            topic_arn,
        )),
        engine: Arc::new(engine),
        limiter: Arc::new(DynamoRateLimiter::new(dynamodb, table)),
        settings,
    };
    run(service_fn(|event| handle(event, &worker))).await
}
