//! moto's server (from the repository's `.venv`) on a free 127.0.0.1 port,
//! stopped when its owner drops it or exits, however it exits. It runs through
//! `moto_launcher.py`, which serialises DynamoDB requests as DynamoDB's own
//! atomic conditional writes require (moto alone lets two both pass).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// moto's application behind a lock on DynamoDB requests; run with the venv's python.
pub const LAUNCHER: &str = include_str!("moto_launcher.py");
/// The region every local resource lives in.
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct MotoServer {
    endpoint: String,
    log: PathBuf,
    /// The wrapper shell kills moto when this pipe closes: on `stop`, on drop,
    /// or when the owning process exits, even by SIGKILL.
    lifeline: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error(
        "moto_server was not found at {0}: run `make setup` (it installs moto[server] into .venv), or set MOTO_SERVER to its path"
    )]
    NotInstalled(PathBuf),
    #[error("moto_server could not be started: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("moto_server exited before it answered; its log ({log}) ends with:\n{tail}")]
    Exited { log: PathBuf, tail: String },
    #[error("moto_server did not answer on {endpoint} within {seconds} s; see {log}")]
    Timeout {
        endpoint: String,
        seconds: u64,
        log: PathBuf,
    },
}

/// Where moto's server is: `MOTO_SERVER`, else `.venv/bin/moto_server` in the
/// working directory, else in the repository this program was built from.
pub fn locate() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let here = Path::new(".venv/bin/moto_server");
    if here.is_file() {
        return here.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Answers when moto's HTTP API is up: its dashboard data endpoint returns JSON.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The shell runs moto and a watcher that kills it once stdin reaches EOF
/// (our exit); the shell itself ends with moto, so a dead start is seen.
const WATCHED: &str = r#"
    exec 3<&0
    port=$1 launcher=$2
    shift 2
    "$0" -c "$launcher" -H 127.0.0.1 -p "$port" "$@" &
    moto=$!
    ( read -r _ <&3; kill $moto 2>/dev/null ) &
    watcher=$!
    wait $moto
    status=$?
    kill $watcher 2>/dev/null
    exit $status
"#;

/// Waits until moto answers on `port`; its lifeline back, or why it never did
/// (it exited, or `READY_TIMEOUT` ran out: then it is stopped).
fn wait_until_ready(
    child: &mut std::process::Child,
    lifeline: std::process::ChildStdin,
    port: u16,
    log: &Path,
) -> Result<std::process::ChildStdin, MotoError> {
    let started = Instant::now();
    while !answers(port) {
        if child.try_wait()?.is_some() {
            return Err(MotoError::Exited {
                tail: tail(log),
                log: log.to_owned(),
            });
        }
        if started.elapsed() > READY_TIMEOUT {
            drop(lifeline);
            let _ = child.wait();
            return Err(MotoError::Timeout {
                endpoint: format!("http://127.0.0.1:{port}"),
                seconds: READY_TIMEOUT.as_secs(),
                log: log.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(lifeline)
}

impl MotoServer {
    /// Starts moto, installed beside `binary` (its `moto_server`), through the
    /// launcher on a free loopback port, and waits until it answers.
    pub fn start(binary: &Path) -> Result<Self, MotoError> {
        Self::start_with(binary, None, None)
    }

    /// Like `start`, on `port` when given, and keeping its state in `state`
    /// when given: written there when it stops, read back when it starts, so
    /// that a restart on the same port is a restart of the services.
    pub fn start_with(
        binary: &Path,
        port: Option<u16>,
        state: Option<&Path>,
    ) -> Result<Self, MotoError> {
        // The interpreter that installed moto_server is the one that can import moto.
        let python = binary.with_file_name("python");
        if !binary.is_file() || !python.is_file() {
            return Err(MotoError::NotInstalled(binary.to_owned()));
        }
        let port = match port {
            Some(port) => port,
            None => free_port()?,
        };
        let log = std::env::temp_dir().join(format!("lambda-ocr-moto-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        let mut child = Command::new("sh")
            .args(["-c", WATCHED])
            .arg(&python)
            .arg(port.to_string())
            .arg(LAUNCHER)
            .args(
                state
                    .map(|path| [std::ffi::OsStr::new("--state"), path.as_os_str()])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()?;
        let lifeline = child.stdin.take().expect("stdin is piped");
        let endpoint = format!("http://127.0.0.1:{port}");
        let lifeline = wait_until_ready(&mut child, lifeline, port, &log)?;
        Ok(Self {
            endpoint,
            log,
            lifeline: Mutex::new(Some(lifeline)),
            child: Mutex::new(child),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Stops moto and waits until it and its wrapper have exited.
    pub fn stop(&self) {
        let lifeline = self.lifeline.lock().map(|mut slot| slot.take());
        drop(lifeline);
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SDK configuration for a local endpoint: fixed region, dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "local"))
        .endpoint_url(endpoint)
        .load()
        .await
}
