//! A throwaway PostgreSQL server for checking SQL plugins, started and
//! stopped with the project's `scripts/postgres` (on 127.0.0.1 only).

use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL cluster with an empty database `vsam`, stopped on drop.
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/vsam`.
    pub url: String,
    port: u16,
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres")
}

fn run(program: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    ensure!(
        output.status.success(),
        "{} {args:?} failed (scripts/setup installs PostgreSQL): {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl Postgres {
    /// Starts a new cluster on a free port. Fails, never skips, if
    /// PostgreSQL is missing.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a new cluster that accepts TLS connections only, with a
    /// certificate from a throwaway CA ([`Postgres::ca`]); its URL asks for
    /// a verified TLS link.
    pub fn start_tls() -> Result<Self> {
        Self::start_with(&["--tls"])
    }

    /// The CA certificate of a cluster started with [`Postgres::start_tls`].
    pub fn ca(&self) -> PathBuf {
        self.dir.join("vsam-ca.pem")
    }

    /// The server's own certificate (a certificate that is not its CA).
    pub fn server_certificate(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    fn start_with(options: &[&str]) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir()?;
        // The server runs as user postgres, which must reach its directory.
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755))?;
        let port = crate::free_port();
        let dir = parent.path().join("cluster");
        let port_text = port.to_string();
        let mut args = vec!["start", path(&dir)?, &port_text];
        args.extend_from_slice(options);
        let url = run(&script(), &args)?;
        Ok(Self {
            url,
            port,
            dir,
            _parent: parent,
        })
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) -> Result<()> {
        run(&script(), &["stop", path(&self.dir)?]).map(drop)
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) -> Result<()> {
        run(&script(), &["restart", path(&self.dir)?]).map(drop)
    }

    /// Creates another empty database and returns its URL.
    pub fn database(&self, name: &str) -> Result<String> {
        self.psql("postgres", &format!("create database {name}"))?;
        Ok(self.url.replacen("/vsam", &format!("/{name}"), 1))
    }

    /// Runs SQL with psql in `database`; returns the unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let port = self.port.to_string();
        run(
            Path::new("psql"),
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }
}

fn path(dir: &Path) -> Result<&str> {
    dir.to_str()
        .context("temporary directory path is not UTF-8")
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
