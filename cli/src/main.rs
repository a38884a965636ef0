use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use ocr_cli::client::{self, Api, SubmitOptions};
use ocr_cli::dev::{self, DEFAULT_SUBJECT, DevOptions, TOKEN_TTL};
use ocr_cli::state::StateDir;
use ocr_cli::{invoke, token};

/// lambda-ocr: document OCR on AWS Lambda, and the same stack on this machine.
#[derive(Parser)]
#[command(name = "ocr", version)]
struct Cli {
    /// Where the local signing key and the running stack's address live.
    #[arg(long, global = true, env = "OCR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole stack here: moto, the functions, the API and the demo page.
    Dev {
        #[arg(long, default_value_t = 3000, env = "OCR_DEV_PORT")]
        port: u16,
    },
    /// Prints a bearer token that `ocr dev` accepts.
    Token {
        #[arg(long, default_value = DEFAULT_SUBJECT)]
        sub: String,
    },
    /// Creates a job per file, uploads it, and (with --wait) prints what was read.
    Submit {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
        /// Wait until each job is finished.
        #[arg(long)]
        wait: bool,
        /// POST each job's final event, signed, to this URL.
        #[arg(long)]
        webhook: Option<String>,
        /// One JSON object per file on stdout (the job as the API shows it).
        #[arg(long)]
        json: bool,
        /// Longest wait per job, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Shows one job.
    Status {
        id: String,
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Lists your jobs, newest first.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Runs one function once against the running local stack with an event file.
    Invoke {
        /// upload-api, status-api, ingest, ocr-worker or notifier.
        function: String,
        #[arg(long)]
        event: PathBuf,
    },
}

/// Which API, as whom.
#[derive(Args)]
struct Target {
    /// The API's base URL; default: the running `ocr dev`.
    #[arg(long, env = "OCR_API_URL")]
    api: Option<String>,
    /// A bearer token; default: a local one for --sub.
    #[arg(long, env = "OCR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The subject of the local token made when none is given.
    #[arg(long, default_value = DEFAULT_SUBJECT)]
    sub: String,
}

impl Target {
    fn connect(&self, state: &StateDir) -> anyhow::Result<Api> {
        let base = match &self.api {
            Some(api) => api.clone(),
            None => match state.running() {
                Some(running) => running.api_url,
                None => "http://127.0.0.1:3000".into(),
            },
        };
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                let local = url::Url::parse(&base)
                    .ok()
                    .and_then(|url| url.host_str().map(str::to_owned))
                    .is_some_and(|host| {
                        host == "127.0.0.1" || host == "localhost" || host == "[::1]"
                    });
                if !local {
                    bail!(
                        "{base} is not the local stack: give --token (a JWT from the API's identity provider)"
                    );
                }
                token::mint(&state.signing_key()?, &self.sub, TOKEN_TTL)?
            }
        };
        Api::new(&base, token)
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,aws_smithy_runtime=warn,aws_config=warn,hyper=warn",
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("ocr: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let state = cli
        .state_dir
        .map(StateDir::at)
        .unwrap_or_else(StateDir::locate);
    match cli.command {
        Command::Dev { port } => {
            init_logging();
            dev::run(DevOptions { port, state }).await?;
            Ok(true)
        }
        Command::Token { sub } => {
            println!("{}", token::mint(&state.signing_key()?, &sub, TOKEN_TTL)?);
            Ok(true)
        }
        Command::Submit {
            files,
            target,
            wait,
            webhook,
            json,
            timeout,
        } => {
            let api = target.connect(&state)?;
            let options = SubmitOptions {
                wait,
                webhook,
                json,
                timeout: Duration::from_secs(timeout),
            };
            client::submit(&api, &files, &options).await
        }
        Command::Status { id, target, json } => {
            let job = target.connect(&state)?.job(&id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                client::print_job("job", &job);
            }
            Ok(true)
        }
        Command::List {
            target,
            status,
            limit,
            cursor,
            json,
        } => {
            let listing = target
                .connect(&state)?
                .list(status.as_deref(), limit, cursor.as_deref())
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                client::print_list(&listing);
            }
            Ok(true)
        }
        Command::Invoke { function, event } => {
            init_logging();
            let Some(running) = state.running() else {
                bail!("no local stack is running: start one with `ocr dev` (or `make dev`)");
            };
            let text = std::fs::read_to_string(&event)
                .with_context(|| format!("cannot read {}", event.display()))?;
            let event = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", event.display()))?;
            let result = invoke::run(&running, &function, event).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(true)
        }
    }
}
