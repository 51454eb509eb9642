//! Shared helpers of the end-to-end tests: plugin paths and servers
//! configured around them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vsam_host::RunningServer;
use vsam_host::config::Config;

/// The SQL plugin component.
pub const SQL_WASM: &str = env!("VSAM_TEST_SQL_WASM");
/// The CSV plugin component.
pub const CSV_WASM: &str = env!("VSAM_TEST_CSV_WASM");
/// The in-memory example plugin component.
pub const MEMORY_WASM: &str = env!("VSAM_TEST_MEMORY_WASM");
/// The misbehaving test plugin component.
pub const FAULTY_WASM: &str = env!("VSAM_TEST_FAULTY_WASM");

/// A KSDS entry for DEFINE, with the key at offset 0, routed by the server.
pub fn ksds(
    name: &str,
    key_length: u16,
    max_record: u32,
    codepage: &str,
) -> vsam_protocol::DatasetSpec {
    vsam_protocol::DatasetSpec {
        name: name.into(),
        organization: vsam_protocol::Organization::Ksds,
        key_offset: 0,
        key_length,
        min_record: 0,
        max_record,
        codepage: codepage.into(),
        backend: String::new(),
        layout: String::new(),
    }
}

/// A server on a free port with a fresh data dir.
pub struct TestServer {
    pub server: RunningServer,
    pub address: String,
    pub data_dir: tempfile::TempDir,
}

/// Starts a server whose config is `backends_toml` (plugins, backends and
/// routing sections) plus a `[server]` section of its own.
pub async fn start(backends_toml: &str) -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{backends_toml}",
        data_dir.path().display()
    );
    let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
    let server = RunningServer::start_with(&config, BTreeMap::new())
        .await
        .unwrap();
    let address = server.addr.to_string();
    TestServer {
        server,
        address,
        data_dir,
    }
}

/// A server with one plugin file as backend `b`, the default route.
pub async fn start_with_plugin(wasm: &str, backend_extra: &str) -> TestServer {
    start(&format!(
        "[plugins.p]\npath = \"{wasm}\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"b\"\n{backend_extra}\n[routing]\ndefault = \"b\"\n"
    ))
    .await
}

/// Runs the conformance suite against `address` (datasets with layouts if
/// `mapped`) and fails with every failed scenario.
pub async fn assert_conforms(address: &str, prefix: &str, mapped: bool, what: &str) {
    let results = vsam_conformance::run_suite_with(address, prefix, "", mapped).await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|f| format!("{}: {f}", r.name)))
        .collect();
    assert!(
        results.len() >= 20,
        "the suite has {} scenarios",
        results.len()
    );
    assert!(
        failures.is_empty(),
        "{what} (mapped: {mapped}) failed:\n{}",
        failures.join("\n")
    );
}

/// A throwaway PostgreSQL server on 127.0.0.1, started by
/// `scripts/postgres` and stopped when dropped.
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/vsam`.
    pub url: String,
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres")
}

fn run_script(args: &[&str]) -> String {
    let output = std::process::Command::new(script())
        .args(args)
        .output()
        .expect("scripts/postgres runs");
    assert!(
        output.status.success(),
        "scripts/postgres {args:?} failed (PostgreSQL is installed by scripts/setup): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl Postgres {
    /// Starts a new cluster with an empty database `vsam` on a free port.
    /// Fails (never skips) if PostgreSQL is missing.
    pub fn start() -> Self {
        let parent = tempfile::tempdir().unwrap();
        // The server runs as user postgres, which must reach its directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = parent.path().join("cluster");
        let url = run_script(&["start", dir.to_str().unwrap(), &port.to_string()]);
        Self {
            url,
            dir,
            _parent: parent,
        }
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        run_script(&["stop", self.dir.to_str().unwrap()]);
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&self) {
        run_script(&["restart", self.dir.to_str().unwrap()]);
    }

    /// Creates another empty database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("create database {name}"));
        self.url.replace("/vsam", &format!("/{name}"))
    }

    /// Runs SQL with psql in `database`; returns the unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let output = std::process::Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .output();
    }
}
