//! `ocr dev`: the whole stack on this machine. moto for the AWS services
//! (started here unless AWS_ENDPOINT_URL names one), the six functions over
//! it, the API and the demo page on 127.0.0.1, and the pumps between them.

use std::collections::HashMap;
use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use ocr_shared::config::{EngineKind, Env, OcrSettings, vars};

use crate::functions::{self, Functions};
use crate::gateway::{self, Gateway};
use crate::moto::{self, MotoServer};
use crate::provision::{self, QueueSettings};
use crate::state::{Running, StateDir};
use crate::{pumps, token};

/// The name every local resource starts with.
pub const PREFIX: &str = "lambda-ocr-local";
/// The subject of the token `ocr dev` prints.
pub const DEFAULT_SUBJECT: &str = "dev";
/// How long requests in flight may take to finish after Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long printed tokens stay valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(30 * 86_400);

pub struct DevOptions {
    pub port: u16,
    pub state: StateDir,
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Says what is missing for the Tesseract engine, if anything.
fn tesseract_problem() -> Option<String> {
    let output = std::process::Command::new("tesseract")
        .arg("--list-langs")
        .output();
    match output {
        Err(_) => Some("tesseract is not installed: run `make setup-ocr` (Debian: tesseract-ocr tesseract-ocr-kor tesseract-ocr-script-hang poppler-utils)".into()),
        Ok(output) => {
            let langs = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            let missing: Vec<&str> = ["kor", "Hangul", "eng"]
                .into_iter()
                .filter(|wanted| !langs.lines().any(|line| line.trim() == *wanted))
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "tesseract lacks {}: run `make setup-ocr` (Debian: tesseract-ocr-kor tesseract-ocr-script-hang tesseract-ocr-eng)",
                    missing.join(", ")
                )
            })
        }
    }
}

/// What `ocr dev` tells its user once it is up.
struct Banner<'a> {
    base_url: &'a str,
    endpoint: &'a str,
    moto_started: bool,
    engine: EngineKind,
    token: &'a str,
    webhook_key: &'a str,
}

fn print_banner(banner: &Banner) {
    let Banner {
        base_url,
        endpoint,
        token,
        webhook_key,
        ..
    } = banner;
    let engine = match banner.engine {
        EngineKind::Tesseract => {
            "tesseract (kor+Hangul+eng), offline; set UPSTAGE_API_KEY for Upstage"
        }
        EngineKind::Upstage => "upstage",
    };
    let aws = if banner.moto_started {
        format!("{endpoint} (moto, started here; its state is in memory and ends with it)")
    } else {
        format!("{endpoint} (AWS_ENDPOINT_URL; kept when this stops)")
    };
    println!("lambda-ocr local stack");
    println!("  page    {base_url}/#token={token}");
    println!("  api     {base_url}/v1");
    println!("  aws     {aws}");
    println!("  engine  {engine}");
    println!("  token   {token}");
    println!("          (sub={DEFAULT_SUBJECT}; `ocr token --sub NAME` makes others)");
    println!("  webhook {webhook_key}");
    println!("          (the key sub=dev's webhooks are signed with: Lambda-OCR-Signature;");
    println!("           each owner reads their own from GET /v1/webhooks/key)");
    println!("  try     ocr submit tests/fixtures/documents/receipt.png --wait");
    println!("ready: Ctrl-C stops everything");
}

/// The OCR settings, once the engine they choose can run here: without an
/// Upstage key the worker reads with tesseract, so say now if it cannot.
fn engine_settings(env: &Env<'_>) -> anyhow::Result<OcrSettings> {
    let ocr = OcrSettings::from_env(env)?;
    if ocr.engine == EngineKind::Tesseract
        && let Some(problem) = tesseract_problem()
    {
        bail!(problem);
    }
    Ok(ocr)
}

pub async fn run(options: DevOptions) -> anyhow::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], options.port));
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address}: is another `ocr dev` running? Choose another with --port")
    })?;
    let base_url = format!("http://{address}");

    let process_env: HashMap<String, String> = std::env::vars().collect();
    let env = Env::new(&process_env);
    let ocr = engine_settings(&env)?;
    let (endpoint, moto) = aws_endpoint(&env).await?;
    let sdk = moto::sdk_config(&endpoint).await;
    let resources = provision_stack(&sdk, &env, &ocr, options.port, &base_url, &endpoint).await?;

    let variables = functions::environment(process_env.clone(), &resources, &endpoint);
    let functions = Arc::new(Functions::build(&sdk, &variables)?);
    let webhook_key = dev_user_webhook_key(&sdk, &resources).await;
    let signing_key = options.state.signing_key()?;
    let token = token::mint(&signing_key, DEFAULT_SUBJECT, TOKEN_TTL)?;
    options.state.write_running(&Running {
        api_url: base_url.clone(),
        endpoint: endpoint.clone(),
        pid: std::process::id(),
        resources: resources.clone(),
    })?;

    let pumps = tokio::spawn(pumps::run(
        aws_sdk_sqs::Client::new(&sdk),
        resources.clone(),
        functions.clone(),
    ));
    let app = gateway::router(Arc::new(Gateway {
        functions: functions.clone(),
        signing_key,
        origins: allowed_origins(&env, options.port, &base_url),
    }));

    print_banner(&Banner {
        base_url: &base_url,
        endpoint: &endpoint,
        moto_started: moto.is_some(),
        engine: ocr.engine,
        token: &token,
        webhook_key: &webhook_key,
    });

    let served = serve_until_stopped(listener, app).await;
    pumps.abort();
    let _ = pumps.await;
    options.state.clear_running();
    if let Some(moto) = moto {
        tokio::task::spawn_blocking(move || moto.stop()).await.ok();
    }
    print_tallies();
    served.context("the HTTP server failed")
}

/// What this run did, printed when it stops.
fn print_tallies() {
    // The figures the deployed functions publish as metrics, for this run.
    println!(
        "metrics  {}",
        ocr_shared::metrics::summary(&ocr_shared::metrics::tally())
    );
    // Lambda's REPORT lines, added up: what the cost model reads.
    println!(
        "invocations  {}",
        crate::invocations::summary(&crate::invocations::tally())
    );
    println!("stopped");
}

/// The AWS endpoint to use: `AWS_ENDPOINT_URL` when set, else a moto server
/// started here (returned, so that it is stopped at the end).
async fn aws_endpoint(env: &Env<'_>) -> anyhow::Result<(String, Option<MotoServer>)> {
    if let Some(endpoint) = env.optional(vars::AWS_ENDPOINT_URL) {
        return Ok((endpoint, None));
    }
    let binary = moto::locate();
    let server = tokio::task::spawn_blocking(move || MotoServer::start(&binary))
        .await
        .context("the moto start-up task failed")??;
    Ok((server.endpoint().to_owned(), Some(server)))
}

/// The table, bucket, queues, topic and secret, as the template sets them up.
async fn provision_stack(
    sdk: &aws_config::SdkConfig,
    env: &Env<'_>,
    ocr: &OcrSettings,
    port: u16,
    base_url: &str,
    endpoint: &str,
) -> anyhow::Result<provision::Resources> {
    let webhook_attempts = notifier::NotifierSettings::from_env(env)?.max_attempts;
    let origins = allowed_origins(env, port, base_url);
    provision::stack(
        sdk,
        PREFIX,
        QueueSettings {
            jobs_max_receives: ocr.max_attempts + 3,
            notifier_max_receives: webhook_attempts,
            visibility_seconds: 120,
        },
        &origins,
    )
    .await
    .with_context(|| format!("cannot create the stack's resources on {endpoint}"))
}

/// Browser origins the API and the bucket answer: the page's own, and those
/// `ALLOWED_ORIGINS` (comma-separated) adds, as the template's parameter does,
/// e.g. `http://localhost:8000` for the page served on its own.
fn allowed_origins(env: &Env<'_>, port: u16, base_url: &str) -> Vec<String> {
    let mut origins = vec![base_url.to_owned(), format!("http://localhost:{port}")];
    let extra = env.optional(vars::ALLOWED_ORIGINS).unwrap_or_default();
    origins.extend(
        extra
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned),
    );
    origins
}

/// The banner's user is the default token's: their key, as `GET /v1/webhooks/key` answers it.
async fn dev_user_webhook_key(
    sdk: &aws_config::SdkConfig,
    resources: &provision::Resources,
) -> String {
    let master = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(&resources.webhook_secret_arn)
        .send()
        .await
        .ok()
        .and_then(|secret| secret.secret_string)
        .unwrap_or_default();
    ocr_shared::webhook::owner_key(
        master.as_bytes(),
        &ocr_shared::domain::Owner::parse(DEFAULT_SUBJECT)
            .expect("the default subject is an owner"),
    )
}

/// Serves until Ctrl-C: then stops taking requests and lets those in flight
/// finish (a few seconds at most).
async fn serve_until_stopped(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> std::io::Result<()> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop.send(true);
    });
    let mut until_stopped = stopping.clone();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = until_stopped.wait_for(|stop| *stop).await;
        })
        .into_future();
    let mut grace = stopping;
    tokio::select! {
        served = server => served,
        _ = async {
            let _ = grace.wait_for(|stop| *stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}
