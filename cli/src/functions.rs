//! The five functions, wired as their `main.rs` wires them in Lambda: each
//! reads its own `Config` from the environment a deployed function would see.
//! The one difference is the OCR engine: Tesseract here when no Upstage key is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::SdkConfig;
use ingest::Ingest;
use notifier::Notifier;
use ocr_shared::aws::{
    DynamoJobStore, DynamoRateLimiter, S3BlobStore, SecretsManagerSource, SnsEventPublisher,
    SqsJobQueue,
};
use ocr_shared::config::{EngineKind, Env, OcrSettings, UpstageKey, vars};
use ocr_shared::engines::{TesseractEngine, UpstageEngine, UpstageKeySource, upstage};
use ocr_shared::ports::OcrEngine;
use ocr_shared::webhook::SystemResolver;
use ocr_worker::{Worker, WorkerSettings};
use status_api::StatusApi;
use upload_api::UploadApi;

use crate::provision::Resources;

/// How long a read of a secret serves before Secrets Manager is asked again.
const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

pub struct Functions {
    pub upload_api: UploadApi,
    pub status_api: StatusApi,
    pub ingest: Ingest,
    pub worker: Worker,
    pub notifier: Notifier,
    /// Which engine the worker reads with.
    pub engine: EngineKind,
}

/// The environment of a deployed function: the caller's variables (limits, an
/// Upstage key, ...) with the stack's resource names and endpoint over them.
pub fn environment(
    base: impl IntoIterator<Item = (String, String)>,
    resources: &Resources,
    endpoint: &str,
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = base.into_iter().collect();
    let mut set = |name: &str, value: &str| {
        env.insert(name.to_owned(), value.to_owned());
    };
    set(vars::AWS_ENDPOINT_URL, endpoint);
    set(vars::JOBS_TABLE, &resources.table);
    set(vars::DOCUMENTS_BUCKET, &resources.bucket);
    set(vars::JOBS_QUEUE_URL, &resources.jobs_queue);
    set(vars::EVENTS_TOPIC_ARN, &resources.topic_arn);
    set(vars::NOTIFIER_QUEUE_URL, &resources.notifier_queue);
    set(vars::WEBHOOK_SECRET_ARN, &resources.webhook_secret_arn);
    // Local defaults a user may still override.
    for (name, value) in [
        (vars::WEBHOOK_ALLOW_LOCAL, "true"),
        (vars::OCR_RETRY_BASE_SECONDS, "2"),
        (vars::OCR_RATE_LIMIT_RPS, "50"),
    ] {
        env.entry(name.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    env
}

impl Functions {
    pub async fn build(
        sdk: &SdkConfig,
        variables: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let env = Env::new(variables);
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let s3 = S3BlobStore::client(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let secrets = Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            SECRET_CACHE_TTL,
        ));
        let events =
            |topic: &str| Arc::new(SnsEventPublisher::new(aws_sdk_sns::Client::new(sdk), topic));
        let jobs = |table: &str| Arc::new(DynamoJobStore::new(dynamodb.clone(), table));
        let blobs = |bucket: &str| Arc::new(S3BlobStore::new(s3.clone(), bucket));

        let config = upload_api::Config::from_env(&env).context("upload-api")?;
        let upload_api = UploadApi {
            jobs: jobs(&config.table),
            blobs: blobs(&config.bucket),
            limiter: Arc::new(DynamoRateLimiter::new(dynamodb.clone(), &config.table)),
            settings: config.settings,
        };

        let config = status_api::Config::from_env(&env).context("status-api")?;
        let status_api = StatusApi {
            jobs: jobs(&config.table),
            blobs: blobs(&config.bucket),
        };

        let config = ingest::Config::from_env(&env).context("ingest")?;
        let ingest = Ingest {
            jobs: jobs(&config.table),
            blobs: blobs(&config.bucket),
            queue: Arc::new(SqsJobQueue::new(sqs.clone(), &config.queue_url)),
            events: events(&config.topic_arn),
            limits: config.limits,
        };

        // The worker's own Config insists on Upstage (a Lambda has no tesseract);
        // locally the same settings are read, and the engine follows OCR_ENGINE.
        let ocr = OcrSettings::from_env(&env).context("ocr-worker")?;
        let (engine, engine_kind): (Arc<dyn OcrEngine>, _) = match (ocr.engine, &ocr.upstage) {
            (EngineKind::Upstage, Some(settings)) => {
                let key = match &settings.key {
                    UpstageKey::Inline(key) => UpstageKeySource::Inline(key.clone()),
                    UpstageKey::Secret { arn } => UpstageKeySource::Secret {
                        source: secrets.clone(),
                        id: arn.clone(),
                    },
                };
                let timeout = Duration::from_secs(env.number(
                    vars::UPSTAGE_TIMEOUT_SECONDS,
                    upstage::DEFAULT_TIMEOUT.as_secs(),
                    5..=900,
                )?);
                let engine = UpstageEngine::new(&settings.base_url, &settings.model, key, timeout)?;
                (Arc::new(engine), EngineKind::Upstage)
            }
            _ => (Arc::new(TesseractEngine::default()), EngineKind::Tesseract),
        };
        let table = env.required(vars::JOBS_TABLE)?;
        let worker = Worker {
            jobs: jobs(&table),
            blobs: blobs(&env.required(vars::DOCUMENTS_BUCKET)?),
            queue: Arc::new(SqsJobQueue::new(
                sqs.clone(),
                env.required(vars::JOBS_QUEUE_URL)?,
            )),
            events: events(&env.required(vars::EVENTS_TOPIC_ARN)?),
            engine,
            limiter: Arc::new(DynamoRateLimiter::new(dynamodb.clone(), &table)),
            settings: WorkerSettings::from_env(&env, &ocr).context("ocr-worker")?,
        };

        let config = notifier::Config::from_env(&env).context("notifier")?;
        let notifier = Notifier {
            jobs: jobs(&config.table),
            blobs: blobs(&config.bucket),
            queue: Arc::new(SqsJobQueue::new(sqs, &config.queue_url)),
            secrets,
            secret_id: config.secret_id,
            resolver: Arc::new(SystemResolver),
            settings: config.settings,
        };

        Ok(Self {
            upload_api,
            status_api,
            ingest,
            worker,
            notifier,
            engine: engine_kind,
        })
    }
}
