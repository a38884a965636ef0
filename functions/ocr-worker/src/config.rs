//! Everything the function reads at start-up, and every AWS action it calls.

use std::sync::Arc;
use std::time::Duration;

use ocr_shared::aws::{
    DynamoJobStore, DynamoRateLimiter, S3BlobStore, SdkConfig, SecretsManagerSource,
    SnsEventPublisher, SqsJobQueue,
};
use ocr_shared::config::{
    ConfigError, EngineKind, Env, JobOutlets, OcrSettings, StackConfig, UpstageKey,
    UpstageSettings, vars,
};
use ocr_shared::engines::{UpstageEngine, UpstageKeySource, upstage};
use ocr_shared::ports::OcrEngine;

use crate::budget::ByteBudget;
use crate::handler::Worker;
use crate::worker::{
    DEFAULT_BYTES_IN_FLIGHT, DEFAULT_LOW_CONFIDENCE, DEFAULT_PAGES_PER_CALL, Parts, WorkerSettings,
};

/// How long a read of the Upstage key serves before Secrets Manager is asked again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",              // the job
    "dynamodb:UpdateItem",           // lease, release, complete, fail; the OCR rate counter
    "s3:GetObject@uploads/*",        // the upload
    "s3:ListBucket",                 // a missing object is a 404, not a 403
    "s3:GetObject@results/*",        // a result an earlier attempt stored
    "s3:PutObject@results/*",        // the result
    "s3:DeleteObject@results/*",     // a result of a job deleted while it was read
    "s3:GetObject@chunks/*",         // a long PDF's chunks an earlier attempt read
    "s3:PutObject@chunks/*",         // each chunk, as it is read
    "s3:DeleteObject@chunks/*",      // the chunks, once merged
    "sqs:SendMessage",               // a job deferred for OCR capacity
    "sqs:ChangeMessageVisibility",   // retry backoff
    "sns:Publish",                   // job events
    "secretsmanager:GetSecretValue", // the Upstage key
];

/// What the worker reads documents with.
pub enum EngineSettings {
    Upstage {
        settings: UpstageSettings,
        timeout: Duration,
    },
    /// Only where the `tesseract` program is installed: the local stack, not Lambda.
    #[cfg(feature = "tesseract")]
    Tesseract,
}

pub struct Config {
    pub stack: StackConfig,
    pub outlets: JobOutlets,
    pub engine: EngineSettings,
    pub settings: WorkerSettings,
}

impl Config {
    /// Lambda's settings: Upstage only, as the Lambda runtime has no tesseract.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::read(env, || {
            Err(ConfigError::Invalid {
                name: vars::OCR_ENGINE,
                value: "tesseract".into(),
                reason: "the Lambda worker reads with Upstage; set UPSTAGE_SECRET_ARN".into(),
            })
        })
    }

    /// Either engine, as OCR_ENGINE and the presence of a key choose (`ocr dev`).
    #[cfg(feature = "tesseract")]
    pub fn from_env_any_engine(env: &Env) -> Result<Self, ConfigError> {
        Self::read(env, || Ok(EngineSettings::Tesseract))
    }

    /// `otherwise` is the engine when no Upstage key is set.
    fn read(
        env: &Env,
        otherwise: impl FnOnce() -> Result<EngineSettings, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let ocr = OcrSettings::from_env(env)?;
        let settings = WorkerSettings::from_env(env, &ocr)?;
        let engine = match (ocr.engine, ocr.upstage) {
            (EngineKind::Upstage, Some(upstage)) => EngineSettings::Upstage {
                settings: upstage,
                timeout: Duration::from_secs(env.number(
                    vars::UPSTAGE_TIMEOUT_SECONDS,
                    upstage::DEFAULT_TIMEOUT.as_secs(),
                    5..=900,
                )?),
            },
            _ => otherwise()?,
        };
        Ok(Self {
            stack: StackConfig::from_env(env)?,
            outlets: JobOutlets::from_env(env)?,
            engine,
            settings,
        })
    }
}

impl Worker {
    /// The function over the real AWS adapters, as Lambda and `ocr dev` run it.
    pub fn connect(sdk: &SdkConfig, config: Config) -> Result<Self, reqwest::Error> {
        let engine: Arc<dyn OcrEngine> = match config.engine {
            EngineSettings::Upstage { settings, timeout } => {
                let key = match settings.key {
                    UpstageKey::Inline(key) => UpstageKeySource::Inline(key),
                    UpstageKey::Secret { arn } => UpstageKeySource::Secret {
                        source: Arc::new(SecretsManagerSource::connect(sdk, KEY_CACHE_TTL)),
                        id: arn,
                    },
                };
                Arc::new(UpstageEngine::new(
                    &settings.base_url,
                    &settings.model,
                    key,
                    timeout,
                )?)
            }
            #[cfg(feature = "tesseract")]
            EngineSettings::Tesseract => Arc::new(ocr_shared::engines::TesseractEngine::default()),
        };
        // One DynamoDB client (one connection pool) for jobs and the counter.
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let in_flight = ByteBudget::new(config.settings.max_bytes_in_flight);
        let parts = Parts {
            jobs: Arc::new(DynamoJobStore::new(dynamodb.clone(), &config.stack.table)),
            blobs: Arc::new(S3BlobStore::connect(sdk, config.stack.bucket)),
            queue: Arc::new(SqsJobQueue::connect(sdk, config.outlets.queue_url)),
            events: Arc::new(SnsEventPublisher::connect(sdk, config.outlets.topic_arn)),
            engine,
            limiter: Arc::new(DynamoRateLimiter::new(dynamodb, config.stack.table)),
            settings: config.settings,
        };
        Ok(Self {
            parts,
            in_flight,
            decoding: ByteBudget::new(crate::worker::DECODE_BUDGET),
        })
    }
}

impl WorkerSettings {
    pub fn from_env(env: &Env, ocr: &OcrSettings) -> Result<Self, ConfigError> {
        Ok(Self {
            max_attempts: ocr.max_attempts,
            lease: Duration::from_secs(env.number(vars::OCR_LEASE_SECONDS, 300, 10..=3600)?),
            retry_base: Duration::from_secs(env.number(
                vars::OCR_RETRY_BASE_SECONDS,
                10,
                0..=900,
            )?),
            rate_limit_rps: ocr.rate_limit_rps,
            max_bytes_in_flight: env.number(
                vars::OCR_MAX_BYTES_IN_FLIGHT,
                DEFAULT_BYTES_IN_FLIGHT,
                1024 * 1024..=16 * 1024 * 1024 * 1024,
            )?,
            pages_per_call: env.number(
                vars::OCR_PAGES_PER_CALL,
                DEFAULT_PAGES_PER_CALL,
                1..=1000,
            )?,
            review_below: env.number(
                vars::LOW_CONFIDENCE_THRESHOLD,
                DEFAULT_LOW_CONFIDENCE,
                0.0..=1.0,
            )?,
        })
    }
}
