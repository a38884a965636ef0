//! Init time of each function's release binary, beside a hello-world and a
//! floor binary built the same way: from process start until its first
//! `GET /2018-06-01/runtime/invocation/next` to a minimal local Runtime API.
//! Prints the median of `STARTS` starts each, and the ratios.
//!
//!   make bench    (builds the release binaries first), or
//!   cargo build --release -p upload-api -p status-api -p ingest -p ocr-worker \
//!     -p notifier -p sweeper -p bench-hello -p bench-floor
//!   cargo bench -p ocr-tests --bench cold_start

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STARTS: usize = 21;
const NEXT: &str = "GET /2018-06-01/runtime/invocation/next";

/// The binaries, by the name their package builds.
const BINARIES: [&str; 8] = [
    "bench-hello",
    "bench-floor",
    "status-api",
    "upload-api",
    "ingest",
    "notifier",
    "sweeper",
    "ocr-worker",
];

fn release_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release")
}

/// What a deployed function's environment holds, with dummy resource names:
/// nothing is called before the first event.
fn environment(port: u16, name: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("lambda-ocr-{name}")),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_REGION", "ap-northeast-2".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_SESSION_TOKEN", "bench".into()),
    ];
    let resources = [
        ("JOBS_TABLE", "lambda-ocr-jobs"),
        ("DOCUMENTS_BUCKET", "lambda-ocr-documents"),
        (
            "JOBS_QUEUE_URL",
            "https://sqs.ap-northeast-2.amazonaws.com/123456789012/jobs",
        ),
        (
            "NOTIFIER_QUEUE_URL",
            "https://sqs.ap-northeast-2.amazonaws.com/123456789012/notifier",
        ),
        (
            "EVENTS_TOPIC_ARN",
            "arn:aws:sns:ap-northeast-2:123456789012:job-events",
        ),
        (
            "WEBHOOK_SECRET_ARN",
            "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:webhook",
        ),
        (
            "UPSTAGE_SECRET_ARN",
            "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:upstage",
        ),
    ];
    env.extend(resources.map(|(key, value)| (key, value.to_owned())));
    env
}

/// One start: milliseconds from spawn to the first `next` request.
fn start(binary: &Path, name: &str) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(environment(port, name))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    listener.set_nonblocking(true).unwrap();
    let (mut stream, _) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait().unwrap() {
                    let mut said = String::new();
                    child
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut said)
                        .unwrap();
                    panic!("{name} exited ({status}) before asking for an event:\n{said}");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{name} never asked for an event"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => panic!("{e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).unwrap();
    let elapsed = started.elapsed();
    let line = String::from_utf8_lossy(&head[..read]);
    assert!(line.starts_with(NEXT), "{name} asked: {line}");
    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
    let _ = child.kill();
    let _ = child.wait();
    elapsed.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let dir = release_dir();
    println!(
        "init: process start until the first {NEXT} from a local Runtime API; median of {STARTS} starts (release builds in {})",
        dir.display()
    );
    println!(
        "command: cargo bench -p ocr-tests --bench cold_start (after make bench's cargo build --release)"
    );
    let mut medians = Vec::new();
    for name in BINARIES {
        let binary = dir.join(name);
        assert!(
            binary.is_file(),
            "{} is not built: run `make bench` (it builds the release binaries first)",
            binary.display()
        );
        // One start unmeasured: the page cache holds the binary afterwards, as
        // Lambda's does after the first download.
        start(&binary, name);
        let times: Vec<f64> = (0..STARTS).map(|_| start(&binary, name)).collect();
        medians.push((name, median(times)));
    }
    let of = |wanted: &str| medians.iter().find(|(name, _)| *name == wanted).unwrap().1;
    let (hello, floor) = (of("bench-hello"), of("bench-floor"));
    println!("| binary | init (ms) | × floor | × hello-world |");
    println!("| --- | --- | --- | --- |");
    for (name, ms) in &medians {
        println!(
            "| {name} | {ms:.1} | {:.2} | {:.2} |",
            ms / floor,
            ms / hello
        );
    }
    let worst = medians
        .iter()
        .filter(|(name, _)| !name.starts_with("bench-"))
        .map(|(name, ms)| (name, ms / floor))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    println!(
        "budgets: every function's init ≤ 1.2 × the floor: {} (largest {} at {:.2}×); the floor ≤ 2 × hello-world: {} ({:.2}×)",
        if worst.1 <= 1.2 { "met" } else { "missed" },
        worst.0,
        worst.1,
        if floor <= 2.0 * hello {
            "met"
        } else {
            "missed"
        },
        floor / hello
    );
}
