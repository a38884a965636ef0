use lambda_runtime::{Error, run, service_fn};
use notifier::{Config, Notifier, handle};
use ocr_shared::aws::load_sdk_config;
use ocr_shared::config::{Env, ProcessEnv};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    ocr_shared::metrics::install();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.stack.aws).await;
    let notifier = Notifier::connect(&sdk, config);
    run(service_fn(|event| {
        ocr_shared::metrics::flushed(handle(event, &notifier))
    }))
    .await
}
