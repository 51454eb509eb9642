//! A throwaway SeaweedFS S3 server for checking object-store plugins,
//! started and stopped with the project's `scripts/seaweedfs` (on 127.0.0.1
//! only, signatures checked).

use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A SeaweedFS server with an empty bucket, stopped on drop.
pub struct SeaweedFs {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket made at start.
    pub bucket: String,
    /// The credentials requests must be signed with.
    pub access_key_id: String,
    /// The secret of `access_key_id`.
    pub secret_access_key: String,
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/seaweedfs")
}

fn run(args: &[&str]) -> Result<String> {
    let output = Command::new(script())
        .args(args)
        .output()
        .context("running scripts/seaweedfs")?;
    ensure!(
        output.status.success(),
        "scripts/seaweedfs {args:?} failed (scripts/setup installs SeaweedFS): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl SeaweedFs {
    /// Starts a new server with bucket `vsam` on free ports. Fails, never
    /// skips, if SeaweedFS is missing.
    pub fn start() -> Result<Self> {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join("seaweedfs");
        let printed = run(&["start", path(&dir)?, "vsam"])?;
        let mut words = printed.split_whitespace().map(str::to_string);
        let (Some(endpoint), Some(access_key_id), Some(secret_access_key)) =
            (words.next(), words.next(), words.next())
        else {
            anyhow::bail!("scripts/seaweedfs printed {printed:?}, not ENDPOINT KEY SECRET");
        };
        Ok(Self {
            endpoint,
            bucket: "vsam".into(),
            access_key_id,
            secret_access_key,
            dir,
            _parent: parent,
        })
    }

    /// The `bucket` setting of a backend using this server (a TOML inline
    /// table).
    pub fn bucket_table(&self) -> String {
        format!(
            "{{ name = \"{}\", endpoint = \"{}\", access_key_id = \"{}\", secret_access_key = \"{}\" }}",
            self.bucket, self.endpoint, self.access_key_id, self.secret_access_key
        )
    }

    /// Stops the server (connections are cut; the data stays).
    pub fn stop(&self) -> Result<()> {
        run(&["stop", path(&self.dir)?]).map(drop)
    }

    /// Starts the stopped server again, same port, data and credentials.
    pub fn restart(&self) -> Result<()> {
        run(&["restart", path(&self.dir)?]).map(drop)
    }

    /// The last `lines` lines of the server's log, kept across its stops
    /// and restarts (each marked in it): what it said around a stop, for
    /// a test that finds writes missing after one.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

fn path(dir: &Path) -> Result<&str> {
    dir.to_str()
        .context("temporary directory path is not UTF-8")
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
