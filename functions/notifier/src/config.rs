//! Everything the function reads at start-up, and every AWS action it calls.

use std::sync::Arc;
use std::time::Duration;

use ocr_shared::aws::{DynamoJobStore, S3BlobStore, SdkConfig, SecretsManagerSource, SqsJobQueue};
use ocr_shared::config::{ConfigError, Env, StackConfig, vars};
use ocr_shared::webhook::{AddressPolicy, SystemResolver};

use crate::{Notifier, NotifierSettings};

/// How long a read of the signing key serves before Secrets Manager is asked again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",              // the job of an event
    "dynamodb:UpdateItem",           // the webhook's delivery state
    "s3:GetObject@results/*",        // presigned result links
    "sqs:ChangeMessageVisibility",   // retry backoff
    "secretsmanager:GetSecretValue", // the signing key
];

pub struct Config {
    pub stack: StackConfig,
    pub queue_url: String,
    pub secret_id: String,
    pub settings: NotifierSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stack: StackConfig::from_env(env)?,
            queue_url: env.required(vars::NOTIFIER_QUEUE_URL)?,
            secret_id: env.required(vars::WEBHOOK_SECRET_ARN)?,
            settings: NotifierSettings::from_env(env)?,
        })
    }
}

impl Notifier {
    /// The function over the real AWS adapters, as Lambda and `ocr dev` run it.
    pub fn connect(sdk: &SdkConfig, config: Config) -> Self {
        Self {
            jobs: Arc::new(DynamoJobStore::connect(sdk, config.stack.table)),
            blobs: Arc::new(S3BlobStore::connect(sdk, config.stack.bucket)),
            queue: Arc::new(SqsJobQueue::connect(sdk, config.queue_url)),
            secrets: Arc::new(SecretsManagerSource::connect(sdk, KEY_CACHE_TTL)),
            secret_id: config.secret_id,
            resolver: Arc::new(SystemResolver),
            settings: config.settings,
        }
    }
}

impl NotifierSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_attempts: env.number(vars::WEBHOOK_MAX_ATTEMPTS, 5, 1..=20)?,
            timeout: Duration::from_secs(5),
            retry_base: Duration::from_secs(30),
            policy: AddressPolicy {
                allow_local: env.flag(vars::WEBHOOK_ALLOW_LOCAL)?,
            },
        })
    }
}
