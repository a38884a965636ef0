//! Starts moto's server (`moto_server` from the repository's `.venv`) on a
//! free 127.0.0.1 port, once per test process, and stops it when the process
//! ends, however it ends.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct MotoServer {
    endpoint: String,
    log: PathBuf,
    /// The wrapper shell kills moto when this pipe closes, i.e. when the test
    /// process exits: statics are never dropped, so it stays open until then.
    _lifeline: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
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

/// Where `make setup` puts moto's server, unless MOTO_SERVER says otherwise.
pub fn default_binary() -> PathBuf {
    match std::env::var_os("MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server"),
    }
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

impl MotoServer {
    /// Starts `binary` on a free loopback port and waits until it answers.
    pub fn start(binary: &Path) -> Result<Self, HarnessError> {
        if !binary.is_file() {
            return Err(HarnessError::NotInstalled(binary.to_owned()));
        }
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("lambda-ocr-moto-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        // The shell runs moto and a watcher that kills it once stdin reaches EOF
        // (our exit); the shell itself ends with moto, so a dead start is seen.
        let script = r#"
            exec 3<&0
            "$0" -H 127.0.0.1 -p "$1" &
            moto=$!
            ( read -r _ <&3; kill $moto 2>/dev/null ) &
            watcher=$!
            wait $moto
            status=$?
            kill $watcher 2>/dev/null
            exit $status
        "#;
        let mut child = Command::new("sh")
            .args(["-c", script])
            .arg(binary)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()?;
        let lifeline = child.stdin.take().expect("stdin is piped");
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while !answers(port) {
            if child.try_wait()?.is_some() {
                return Err(HarnessError::Exited {
                    tail: tail(&log),
                    log,
                });
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                return Err(HarnessError::Timeout {
                    endpoint,
                    seconds: READY_TIMEOUT.as_secs(),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            endpoint,
            log,
            _lifeline: Mutex::new(lifeline),
            _child: Mutex::new(child),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
}

/// The process's moto server, started on first use. A server that cannot
/// start fails the calling test with the reason: no test is skipped.
pub fn moto() -> &'static MotoServer {
    static SERVER: OnceLock<MotoServer> = OnceLock::new();
    SERVER.get_or_init(|| match MotoServer::start(&default_binary()) {
        Ok(server) => server,
        Err(error) => panic!("the AWS test backend is unavailable: {error}"),
    })
}

/// SDK configuration for moto: fixed region, dummy credentials, moto's endpoint.
pub async fn sdk_config() -> SdkConfig {
    let endpoint = tokio::task::spawn_blocking(|| moto().endpoint().to_owned())
        .await
        .expect("the moto start-up task panicked");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}
