use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, run, service_fn};
use notifier::{Notifier, NotifierSettings, handle};
use ocr_shared::aws::{
    DynamoJobStore, S3BlobStore, SecretsManagerSource, SqsJobQueue, load_sdk_config,
};
use ocr_shared::config::{AwsSettings, Env, ProcessEnv, vars};
use ocr_shared::webhook::SystemResolver;

/// How long a read of the signing key serves before Secrets Manager is asked again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    let env = Env::new(&ProcessEnv);
    let settings = NotifierSettings::from_env(&env)?;
    let table = env.required(vars::JOBS_TABLE)?;
    let bucket = env.required(vars::DOCUMENTS_BUCKET)?;
    let queue_url = env.required(vars::NOTIFIER_QUEUE_URL)?;
    let secret_id = env.required(vars::WEBHOOK_SECRET_ARN)?;
    let sdk = load_sdk_config(&AwsSettings::from_env(&env)?).await;
    let notifier = Notifier {
        jobs: Arc::new(DynamoJobStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            table,
        )),
        blobs: Arc::new(S3BlobStore::new(S3BlobStore::client(&sdk), bucket)),
        queue: Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url)),
        secrets: Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            KEY_CACHE_TTL,
        )),
        secret_id,
        resolver: Arc::new(SystemResolver),
        settings,
    };
    run(service_fn(|event| handle(event, &notifier))).await
}
