//! Logging: JSON lines for CloudWatch on Lambda, readable lines on a terminal.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once. On Lambda, `AWS_LAMBDA_LOG_FORMAT=JSON`
/// selects JSON and `AWS_LAMBDA_LOG_LEVEL` the level; `RUST_LOG` overrides both.
pub fn init() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|level| level.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn"
        ))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_target(false)
            .without_time() // CloudWatch stamps every line
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests, or `ocr dev` linking several handlers) keeps the first subscriber.
    let _ = result;
}

/// An error and every cause under it on one line: for logs, where the SDK's own
/// Display ("service error") says too little.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
