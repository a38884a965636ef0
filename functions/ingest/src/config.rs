//! Everything the function reads at start-up, and every AWS action it calls.

use std::sync::Arc;

use ocr_shared::aws::{DynamoJobStore, S3BlobStore, SdkConfig, SnsEventPublisher, SqsJobQueue};
use ocr_shared::config::{ConfigError, Env, JobOutlets, StackConfig, UploadSettings};
use ocr_shared::upload_policy::UploadLimits;

use crate::Ingest;

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",             // the job of an upload
    "dynamodb:UpdateItem",          // enqueue, reject, complete as duplicate
    "dynamodb:Query@index/by_hash", // dedup by hash
    "s3:GetObject@uploads/*",       // HEAD, ranged reads, hashing
    "s3:GetObject@results/*",       // the earlier result for a duplicate
    "s3:ListBucket",                // a missing object is a 404, not a 403
    "s3:PutObject@results/*",       // the duplicate's own copy of the result
    "s3:DeleteObject@uploads/*",    // rejected and orphaned uploads
    "sqs:SendMessage",              // the OCR queue
    "sns:Publish",                  // job events
];

pub struct Config {
    pub stack: StackConfig,
    pub outlets: JobOutlets,
    pub limits: UploadLimits,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stack: StackConfig::from_env(env)?,
            outlets: JobOutlets::from_env(env)?,
            limits: UploadSettings::from_env(env)?.limits,
        })
    }
}

impl Ingest {
    /// The function over the real AWS adapters, as Lambda and `ocr dev` run it.
    pub fn connect(sdk: &SdkConfig, config: Config) -> Self {
        Self {
            jobs: Arc::new(DynamoJobStore::connect(sdk, config.stack.table)),
            blobs: Arc::new(S3BlobStore::connect(sdk, config.stack.bucket)),
            queue: Arc::new(SqsJobQueue::connect(sdk, config.outlets.queue_url)),
            events: Arc::new(SnsEventPublisher::connect(sdk, config.outlets.topic_arn)),
            limits: config.limits,
        }
    }
}
