//! `ocr dev` as a real process, as a user runs it: started, waited for
//! ("ready"), driven with `ocr` commands, stopped with Ctrl-C's signal.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest a test waits for a condition of the local stack. The tests
/// share two cores with Tesseract, a browser and moto, so a wait that is only
/// slow must not fail: the ceiling is far above any wait seen, and the wait
/// ends as soon as its condition holds.
pub const CEILING: Duration = Duration::from_secs(180);

/// Checks `condition` every `every` until it gives a value; past `ceiling`
/// panics, saying what was waited for and what `condition` last saw.
pub fn wait_for<T, E: std::fmt::Debug>(
    what: &str,
    ceiling: Duration,
    every: Duration,
    mut condition: impl FnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    loop {
        match condition() {
            Ok(value) => return value,
            Err(seen) if started.elapsed() >= ceiling => {
                panic!("{what}: not so after {ceiling:?}; last seen: {seen:?}")
            }
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A rendered test document.
pub fn document(name: &str) -> PathBuf {
    repo().join("tests/fixtures/documents").join(name)
}

/// Runs `tools/render_documents.py` with `args` in the test venv (`make
/// setup`), for documents too large to commit; fails loudly if it cannot.
pub fn render(args: &[&std::ffi::OsStr]) {
    run_tool("render_documents.py", args);
}

/// Runs `tools/{script}` with `args` in the test venv (`make setup`); fails loudly if it cannot.
pub fn run_tool(script: &str, args: &[&std::ffi::OsStr]) {
    let ran = Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("tools").join(script))
        .args(args)
        .output()
        .expect("the test venv's python runs (make setup)");
    assert!(
        ran.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
}

/// A process's peak resident memory so far (`VmHWM`), in MiB; 0 once it is gone.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ocr dev` with its own state directory and port.
pub struct Dev {
    pub child: Child,
    pub port: u16,
    pub state: tempfile::TempDir,
    /// The token it printed (subject `dev`).
    pub token: String,
    /// The key it signs webhooks with.
    pub webhook_key: String,
    binary: PathBuf,
    log: PathBuf,
    /// What it prints on stdout after "ready".
    printed: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl Dev {
    /// `binary dev` on a free port with a fresh state directory.
    pub fn start(binary: &Path) -> Self {
        Self::start_on(binary, free_port(), tempfile::tempdir().unwrap())
    }

    pub fn start_on(binary: &Path, port: u16, state: tempfile::TempDir) -> Self {
        Self::start_with(binary, port, state, &[])
    }

    /// `ocr dev` with `variables` set (AWS_ENDPOINT_URL, UPSTAGE_API_KEY, ...);
    /// those of this process that would change the stack are not passed on.
    pub fn start_with(
        binary: &Path,
        port: u16,
        state: tempfile::TempDir,
        variables: &[(&str, &str)],
    ) -> Self {
        let log = state.path().join(format!("ocr-dev-{port}.log"));
        let mut command = Command::new(binary);
        for name in [
            "AWS_ENDPOINT_URL",
            "UPSTAGE_API_KEY",
            "UPSTAGE_SECRET_ARN",
            "UPSTAGE_BASE_URL",
            "OCR_ENGINE",
        ] {
            command.env_remove(name);
        }
        let mut child = command
            .envs(variables.iter().copied())
            .args(["dev", "--port", &port.to_string()])
            .env("OCR_STATE_DIR", state.path())
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the ocr binary runs");
        let (lines, received) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let started = Instant::now();
        let mut token = None;
        let mut webhook_key = None;
        loop {
            let left = READY_TIMEOUT.saturating_sub(started.elapsed());
            match received.recv_timeout(left) {
                Ok(line) if line.trim_start().starts_with("token ") => {
                    token = line.split_whitespace().nth(1).map(str::to_owned);
                }
                Ok(line) if line.trim_start().starts_with("webhook ") => {
                    webhook_key = line.split_whitespace().nth(1).map(str::to_owned);
                }
                Ok(line) if line.starts_with("ready") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "ocr dev was not ready in {READY_TIMEOUT:?}; its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        println!(
            "ocr dev ready on port {port} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Self {
            child,
            port,
            state,
            token: token.expect("ocr dev prints a token"),
            webhook_key: webhook_key.expect("ocr dev prints the webhook key"),
            binary: binary.to_owned(),
            log,
            printed: std::sync::Mutex::new(received),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ocr ARGS...` against this stack.
    pub fn ocr(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .args(args)
            .env("OCR_STATE_DIR", self.state.path())
            .current_dir(repo())
            .output()
            .expect("the ocr binary runs")
    }

    /// Sends Ctrl-C's signal and waits for the exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        wait_for(
            "ocr dev stopped after SIGINT",
            CEILING,
            Duration::from_millis(100),
            || self.child.try_wait().unwrap().ok_or("running"),
        )
    }

    /// What it printed on stdout after "ready", until it exited (at most 10 s more).
    pub fn printed_until_exit(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let printed = self.printed.lock().unwrap();
        while let Ok(line) = printed.recv_timeout(Duration::from_secs(10)) {
            lines.push(line);
        }
        lines
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process whose parent chain leads to `root`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        parents.push((pid, ppid));
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}
