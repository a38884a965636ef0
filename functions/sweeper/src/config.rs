//! Everything the function reads at start-up, and every AWS action it calls.

use std::sync::Arc;
use std::time::Duration;

use ocr_shared::aws::{DynamoJobStore, S3BlobStore, SdkConfig, SnsEventPublisher, SqsJobQueue};
use ocr_shared::config::{ConfigError, Env, JobOutlets, StackConfig, vars};

use crate::{SweepSettings, Sweeper};

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:Query@index/by_pending", // the unfinished jobs, oldest change first
    "dynamodb:GetItem",                // each of them, whole
    "dynamodb:UpdateItem",             // expire an abandoned upload; mark it announced
    "s3:GetObject@uploads/*",          // HEAD: an upload that arrived but was never ingested
    "s3:ListBucket",                   // a missing upload is a 404, not a 403
    "sqs:SendMessage",                 // a stuck job back to the OCR queue
    "sns:Publish",                     // job.expired
];

/// How long a job sits unchanged before the sweeper looks at it, by default:
/// above the longest delay a job rightly waits for (a retry or a rate-limit
/// backoff, at most SQS's 15-minute delay), so that it never re-sends one.
pub const DEFAULT_STALE_SECONDS: u64 = 1200;

/// Jobs one run looks at by default: ten pages of the index, each job read
/// whole, well within the function's timeout.
pub const DEFAULT_MAX_JOBS: u32 = 1000;

pub struct Config {
    pub stack: StackConfig,
    pub outlets: JobOutlets,
    pub settings: SweepSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            stack: StackConfig::from_env(env)?,
            outlets: JobOutlets::from_env(env)?,
            settings: SweepSettings {
                stale_after: Duration::from_secs(env.number(
                    vars::SWEEP_STALE_SECONDS,
                    DEFAULT_STALE_SECONDS,
                    60..=86_400,
                )?),
                max_jobs: env.number(vars::SWEEP_MAX_JOBS, DEFAULT_MAX_JOBS, 1..=10_000)?,
            },
        })
    }
}

impl Sweeper {
    /// The function over the real AWS adapters, as Lambda and `ocr dev` run it.
    pub fn connect(sdk: &SdkConfig, config: Config) -> Self {
        Self {
            jobs: Arc::new(DynamoJobStore::connect(sdk, config.stack.table)),
            blobs: Arc::new(S3BlobStore::connect(sdk, config.stack.bucket)),
            queue: Arc::new(SqsJobQueue::connect(sdk, config.outlets.queue_url)),
            events: Arc::new(SnsEventPublisher::connect(sdk, config.outlets.topic_arn)),
            settings: config.settings,
        }
    }
}
