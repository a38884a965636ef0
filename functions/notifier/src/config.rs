//! Everything the function reads at start-up, and every AWS action it calls.

use ocr_shared::config::{AwsSettings, ConfigError, Env, vars};

use crate::NotifierSettings;

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",              // the job of an event
    "dynamodb:UpdateItem",           // the webhook's delivery state
    "s3:GetObject",                  // presigned result links
    "sqs:ChangeMessageVisibility",   // retry backoff
    "secretsmanager:GetSecretValue", // the signing key
];

pub struct Config {
    pub aws: AwsSettings,
    pub table: String,
    pub bucket: String,
    pub queue_url: String,
    pub secret_id: String,
    pub settings: NotifierSettings,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            table: env.required(vars::JOBS_TABLE)?,
            bucket: env.required(vars::DOCUMENTS_BUCKET)?,
            queue_url: env.required(vars::NOTIFIER_QUEUE_URL)?,
            secret_id: env.required(vars::WEBHOOK_SECRET_ARN)?,
            settings: NotifierSettings::from_env(env)?,
        })
    }
}
