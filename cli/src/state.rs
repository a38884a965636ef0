//! The local state directory: the token signing key, and where a running
//! `ocr dev` says it is. `OCR_STATE_DIR`, else `$XDG_STATE_HOME/lambda-ocr`,
//! else `~/.local/state/lambda-ocr`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::provision::Resources;

/// What a running `ocr dev` writes for the other commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Running {
    pub api_url: String,
    pub endpoint: String,
    pub pid: u32,
    pub resources: Resources,
}

pub struct StateDir(PathBuf);

impl StateDir {
    pub fn locate() -> Self {
        if let Some(dir) = std::env::var_os("OCR_STATE_DIR") {
            return Self(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        Self(base.join("lambda-ocr"))
    }

    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    fn create(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.0)
            .with_context(|| format!("cannot create the state directory {}", self.0.display()))
    }

    /// The HS256 key `ocr dev` verifies tokens with; made on first use, readable by its owner only.
    pub fn signing_key(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.0.join("signing-key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return hex::decode(text.trim()).with_context(|| {
                format!(
                    "{} is not a hex key; delete it to make a new one",
                    path.display()
                )
            });
        }
        self.create()?;
        let key: [u8; 32] = rand::random();
        write_private(&path, hex::encode(key).as_bytes())?;
        Ok(key.to_vec())
    }

    fn running_path(&self) -> PathBuf {
        self.0.join("dev.json")
    }

    pub fn write_running(&self, running: &Running) -> anyhow::Result<()> {
        self.create()?;
        write_private(
            &self.running_path(),
            serde_json::to_string_pretty(running)?.as_bytes(),
        )
    }

    /// The running `ocr dev`, if one says so and its process is alive.
    pub fn running(&self) -> Option<Running> {
        let text = std::fs::read_to_string(self.running_path()).ok()?;
        let running: Running = serde_json::from_str(&text).ok()?;
        Path::new(&format!("/proc/{}", running.pid))
            .exists()
            .then_some(running)
    }

    pub fn clear_running(&self) {
        let _ = std::fs::remove_file(self.running_path());
    }
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}
