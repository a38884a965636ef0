//! Everything the function reads at start-up, and every AWS action it calls.

use std::sync::Arc;

use ocr_shared::aws::{DynamoJobStore, DynamoRateLimiter, S3BlobStore, SdkConfig};
use ocr_shared::config::{ConfigError, Env, StackConfig, UploadSettings, vars};
use ocr_shared::webhook::AddressPolicy;

use crate::{UploadApi, UploadApiSettings};

/// The IAM actions this function's adapters call; the template must grant
/// exactly these (a test holds it to that).
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",             // owned_job
    "dynamodb:PutItem",             // create
    "dynamodb:UpdateItem",          // rate limiter
    "dynamodb:DeleteItem",          // delete
    "dynamodb:Query@index/by_hash", // dedup by hash
    "s3:PutObject@uploads/*",       // presigned upload (signed with this role)
    "s3:GetObject@results/*",       // a deduplicated job: its result is still there, and its link
    "s3:ListBucket",                // a missing result is a 404, not a 403
    "s3:DeleteObject@uploads/*",    // delete
    "s3:DeleteObject@results/*",
    "s3:DeleteObject@chunks/*", // delete: a long PDF's chunks an attempt left
];

pub struct Config {
    pub stack: StackConfig,
    pub settings: UploadApiSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stack: StackConfig::from_env(env)?,
            settings: UploadApiSettings::from_env(env)?,
        })
    }
}

impl UploadApi {
    /// The function over the real AWS adapters, as Lambda and `ocr dev` run it.
    pub fn connect(sdk: &SdkConfig, config: Config) -> Self {
        // One DynamoDB client (one connection pool) for jobs and the counter.
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        Self {
            jobs: Arc::new(DynamoJobStore::new(dynamodb.clone(), &config.stack.table)),
            blobs: Arc::new(S3BlobStore::connect(sdk, config.stack.bucket)),
            limiter: Arc::new(DynamoRateLimiter::new(dynamodb, config.stack.table)),
            settings: config.settings,
        }
    }
}

impl UploadApiSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            upload: UploadSettings::from_env(env)?,
            create_per_minute: env.number(vars::JOB_CREATE_RATE_PER_MINUTE, 60, 1..=100_000)?,
            webhooks: AddressPolicy {
                allow_local: env.flag(vars::WEBHOOK_ALLOW_LOCAL)?,
            },
        })
    }
}
