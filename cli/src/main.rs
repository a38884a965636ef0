use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use ocr_cli::client::{self, Api, ListParams, SubmitOptions};
use ocr_cli::dev::{self, DEFAULT_SUBJECT, DevOptions, TOKEN_TTL};
use ocr_cli::functions::FunctionName;
use ocr_cli::state::StateDir;
use ocr_cli::{invoke, token};
use ocr_shared::domain::{DocumentType, JobStatus};

/// lambda-ocr: document OCR on AWS Lambda, and the same stack on this machine.
///
/// Exit codes: 0 done; 1 a job did not complete (failed, rejected, expired,
/// or still running when --wait gave up); 2 the command line is wrong; 3 the
/// command could not be carried out (the API refused it or could not be
/// reached, a file could not be read, no local stack is running).
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
        /// The port of the page and the API, on 127.0.0.1.
        #[arg(long, default_value_t = 3000, env = "OCR_DEV_PORT")]
        port: u16,
    },
    /// Prints a bearer token that `ocr dev` accepts.
    Token {
        /// The token's subject: the user whose jobs it reaches.
        #[arg(long, default_value = DEFAULT_SUBJECT)]
        sub: String,
    },
    /// Creates a job per file, uploads it, and (with --wait) prints what was read.
    Submit {
        /// The documents: PNG, JPEG, TIFF, BMP, WEBP, HEIC or PDF; one job each.
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
        /// The job's id, as `submit` printed it.
        id: String,
        #[command(flatten)]
        target: Target,
        /// The job as the API answers it, on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Deletes jobs: their record, upload and result are gone.
    Delete {
        /// The ids of the jobs.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Lists your jobs, newest first.
    List {
        #[command(flatten)]
        page: Page,
    },
    /// Finds your documents whose text holds QUERY (spaces, case and
    /// full-width forms ignored), newest first, with a snippet of each.
    Search {
        /// What to look for, e.g. "한빛 문서" or "invoice no. 42".
        query: String,
        #[command(flatten)]
        page: Page,
    },
    /// Runs one function once against the running local stack with an event file.
    Invoke {
        /// The function to run.
        #[arg(value_enum)]
        function: FunctionName,
        /// A JSON event in the shape AWS sends that function (see events/).
        #[arg(long)]
        event: PathBuf,
    },
}

/// One page of a listing or a search: where, which jobs, from where, and how shown.
#[derive(Args)]
struct Page {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    filters: Filters,
    /// The `next_cursor` of the page before (printed as `more: ...`).
    #[arg(long)]
    cursor: Option<String>,
    /// The page as the API answers it, on stdout.
    #[arg(long)]
    json: bool,
}

/// What `list` and `search` narrow to.
#[derive(Args)]
struct Filters {
    /// Only jobs in this status.
    #[arg(long, value_parser = PossibleValuesParser::new(JobStatus::ALL.map(JobStatus::as_str)))]
    status: Option<String>,
    /// Only documents of this type.
    #[arg(long, value_parser = PossibleValuesParser::new(DocumentType::ALL.map(DocumentType::as_str)))]
    document_type: Option<String>,
    /// Only jobs created at or after this instant (RFC 3339, e.g. 2026-11-01T00:00:00+09:00).
    #[arg(long)]
    after: Option<String>,
    /// Only jobs created before this instant (RFC 3339).
    #[arg(long)]
    before: Option<String>,
    /// Only completed jobs read with low confidence, which a person should check.
    #[arg(long)]
    needs_review: bool,
    /// Jobs per page (1-100).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
}

impl Filters {
    fn params(self, query: Option<String>) -> ListParams {
        ListParams {
            query,
            needs_review: self.needs_review,
            status: self.status,
            document_type: self.document_type,
            created_after: self.after,
            created_before: self.before,
            limit: self.limit,
        }
    }
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

fn show_listing(listing: &client::Listing, json: bool, more: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(listing)?);
    } else {
        client::print_list(listing, more);
    }
    Ok(())
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
            // 2 is clap's, for a wrong command line.
            ExitCode::from(3)
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
        Command::Invoke { function, event } => {
            init_logging();
            invoke_with(&state, function, &event).await?;
            Ok(true)
        }
        command => ask_api(&state, command).await,
    }
}

/// The commands that talk to the API: whether every job asked about ended well.
async fn ask_api(state: &StateDir, command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Submit {
            files,
            target,
            wait,
            webhook,
            json,
            timeout,
        } => {
            let options = SubmitOptions {
                wait,
                webhook,
                json,
                timeout: Duration::from_secs(timeout),
            };
            client::submit(&target.connect(state)?, &files, &options).await
        }
        Command::Status { id, target, json } => {
            let job = target.connect(state)?.job(&id).await?;
            client::show_job(&job, json)?;
            Ok(true)
        }
        Command::Delete { ids, target } => {
            target.connect(state)?.delete_all(&ids).await?;
            Ok(true)
        }
        Command::List { page } => {
            let api = page.target.connect(state)?;
            let listing = api
                .list(&page.filters.params(None), page.cursor.as_deref())
                .await?;
            show_listing(&listing, page.json, "ocr list")?;
            Ok(true)
        }
        Command::Search { query, page } => {
            search(state, query, page).await?;
            Ok(true)
        }
        Command::Dev { .. } | Command::Token { .. } | Command::Invoke { .. } => {
            unreachable!("run answers the local commands itself")
        }
    }
}

/// `ocr search`: the hits for `query` under `filters`, from `cursor`.
async fn search(state: &StateDir, query: String, page: Page) -> anyhow::Result<()> {
    let api = page.target.connect(state)?;
    let params = page.filters.params(Some(query.clone()));
    let hits = client::search(&api, &params, page.cursor.as_deref()).await?;
    show_listing(&hits, page.json, &format!("ocr search {query:?}"))
}

/// `ocr invoke`: one function of the running local stack, with the event in `event`.
async fn invoke_with(
    state: &StateDir,
    function: FunctionName,
    event: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(running) = state.running() else {
        bail!("no local stack is running: start one with `ocr dev` (or `make dev`)");
    };
    let text = std::fs::read_to_string(event)
        .with_context(|| format!("cannot read {}", event.display()))?;
    let event =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", event.display()))?;
    let result = invoke::run(&running, function, event).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_command_and_argument_has_its_help() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if arg.get_help().is_none() && !builtin {
                    missing.push(format!("{path} --{}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        check(&command, "ocr", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
}
