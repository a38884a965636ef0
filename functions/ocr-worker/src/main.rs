use lambda_runtime::{Error, run, service_fn};
use ocr_shared::aws::load_sdk_config;
use ocr_shared::config::{Env, ProcessEnv};
use ocr_worker::{Config, Worker, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ocr_shared::telemetry::init();
    ocr_shared::metrics::install();
    let config = Config::from_env(&Env::new(&ProcessEnv))?;
    let sdk = load_sdk_config(&config.stack.aws).await;
    let worker = Worker::connect(&sdk, config)?;
    run(service_fn(|event| {
        ocr_shared::metrics::flushed(handle(event, &worker))
    }))
    .await
}
