//! Everything the function reads at start-up, and every AWS action it calls.

use std::sync::Arc;

use ocr_shared::aws::{DynamoJobStore, S3BlobStore, SdkConfig, SecretsManagerSource};
use ocr_shared::config::{ConfigError, Env, StackConfig, vars};

use crate::StatusApi;

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",               // a job
    "dynamodb:BatchGetItem",          // a search's hits, whole
    "dynamodb:Query@index/by_owner",  // listing by owner
    "dynamodb:Query@index/by_search", // search
    "s3:GetObject@results/*",         // presigned result links
    "secretsmanager:GetSecretValue",  // the master webhook secret, for an owner's key
];

/// How long the master webhook secret is cached per container.
const SECRET_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(300);

pub struct Config {
    pub stack: StackConfig,
    pub webhook_secret_id: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stack: StackConfig::from_env(env)?,
            webhook_secret_id: env.required(vars::WEBHOOK_SECRET_ARN)?,
        })
    }
}

impl StatusApi {
    /// The function over the real AWS adapters, as Lambda and `ocr dev` run it.
    pub fn connect(sdk: &SdkConfig, config: Config) -> Self {
        Self {
            jobs: Arc::new(DynamoJobStore::connect(sdk, config.stack.table)),
            blobs: Arc::new(S3BlobStore::connect(sdk, config.stack.bucket)),
            secrets: Arc::new(SecretsManagerSource::connect(sdk, SECRET_CACHE_TTL)),
            webhook_secret_id: config.webhook_secret_id,
        }
    }
}
