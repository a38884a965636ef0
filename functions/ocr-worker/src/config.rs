//! Everything the function reads at start-up, and every AWS action it calls.

use std::time::Duration;

use ocr_shared::config::{
    AwsSettings, ConfigError, EngineKind, Env, OcrSettings, UpstageSettings, vars,
};
use ocr_shared::engines::upstage;

use crate::WorkerSettings;

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",              // the job
    "dynamodb:UpdateItem",           // lease, release, complete, fail; the OCR rate counter
    "s3:GetObject",                  // the upload
    "s3:PutObject",                  // the result
    "s3:DeleteObject",               // a result of a job deleted while it was read
    "sqs:SendMessage",               // a job deferred for OCR capacity
    "sqs:ChangeMessageVisibility",   // retry backoff
    "sns:Publish",                   // job events
    "secretsmanager:GetSecretValue", // the Upstage key
];

pub struct Config {
    pub aws: AwsSettings,
    pub table: String,
    pub bucket: String,
    pub queue_url: String,
    pub topic_arn: String,
    pub upstage: UpstageSettings,
    pub upstage_timeout: Duration,
    pub settings: WorkerSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let ocr = OcrSettings::from_env(env)?;
        let settings = WorkerSettings::from_env(env, &ocr)?;
        let upstage = match (ocr.engine, ocr.upstage) {
            (EngineKind::Upstage, Some(upstage)) => upstage,
            _ => {
                return Err(ConfigError::Invalid {
                    name: vars::OCR_ENGINE,
                    value: "tesseract".into(),
                    reason: "the Lambda worker reads with Upstage; set UPSTAGE_SECRET_ARN".into(),
                });
            }
        };
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            table: env.required(vars::JOBS_TABLE)?,
            bucket: env.required(vars::DOCUMENTS_BUCKET)?,
            queue_url: env.required(vars::JOBS_QUEUE_URL)?,
            topic_arn: env.required(vars::EVENTS_TOPIC_ARN)?,
            upstage,
            upstage_timeout: Duration::from_secs(env.number(
                vars::UPSTAGE_TIMEOUT_SECONDS,
                upstage::DEFAULT_TIMEOUT.as_secs(),
                5..=900,
            )?),
            settings,
        })
    }
}
