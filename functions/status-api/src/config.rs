//! Everything the function reads at start-up, and every AWS action it calls.

use ocr_shared::config::{AwsSettings, ConfigError, Env, vars};

/// The IAM actions this function's adapters call; the template must grant exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem", // a job
    "dynamodb:Query",   // listing by owner
    "s3:GetObject",     // presigned result links
];

pub struct Config {
    pub aws: AwsSettings,
    pub table: String,
    pub bucket: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            aws: AwsSettings::from_env(env)?,
            table: env.required(vars::JOBS_TABLE)?,
            bucket: env.required(vars::DOCUMENTS_BUCKET)?,
        })
    }
}
