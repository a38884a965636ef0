//! The six functions, wired as their `main.rs` wires them in Lambda: each
//! reads its own `Config` from the environment a deployed function would see.
//! The one difference is the OCR engine: Tesseract here when no Upstage key is set
//! (`ocr_worker::Config::from_env_any_engine`).

use std::collections::HashMap;

use anyhow::Context as _;
use aws_config::SdkConfig;
use ingest::Ingest;
use notifier::Notifier;
use ocr_shared::config::{Env, vars};
use ocr_worker::Worker;
use status_api::StatusApi;
use sweeper::Sweeper;
use upload_api::UploadApi;

use crate::provision::Resources;

/// The stack's functions, by their template names (`upload-api`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum FunctionName {
    UploadApi,
    StatusApi,
    Ingest,
    OcrWorker,
    Notifier,
    Sweeper,
}

impl FunctionName {
    pub const fn as_str(self) -> &'static str {
        match self {
            FunctionName::UploadApi => "upload-api",
            FunctionName::StatusApi => "status-api",
            FunctionName::Ingest => "ingest",
            FunctionName::OcrWorker => "ocr-worker",
            FunctionName::Notifier => "notifier",
            FunctionName::Sweeper => "sweeper",
        }
    }
}

impl std::fmt::Display for FunctionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub struct Functions {
    pub upload_api: UploadApi,
    pub status_api: StatusApi,
    pub ingest: Ingest,
    pub worker: Worker,
    pub notifier: Notifier,
    pub sweeper: Sweeper,
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
    pub fn build(sdk: &SdkConfig, variables: &HashMap<String, String>) -> anyhow::Result<Self> {
        let env = Env::new(variables);
        Ok(Self {
            upload_api: UploadApi::connect(
                sdk,
                upload_api::Config::from_env(&env).context(FunctionName::UploadApi)?,
            ),
            status_api: StatusApi::connect(
                sdk,
                status_api::Config::from_env(&env).context(FunctionName::StatusApi)?,
            ),
            ingest: Ingest::connect(
                sdk,
                ingest::Config::from_env(&env).context(FunctionName::Ingest)?,
            ),
            worker: Worker::connect(
                sdk,
                ocr_worker::Config::from_env_any_engine(&env).context(FunctionName::OcrWorker)?,
            )?,
            notifier: Notifier::connect(
                sdk,
                notifier::Config::from_env(&env).context(FunctionName::Notifier)?,
            ),
            sweeper: Sweeper::connect(
                sdk,
                sweeper::Config::from_env(&env).context(FunctionName::Sweeper)?,
            ),
        })
    }
}
