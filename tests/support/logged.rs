//! vsamrd run as a process of its own with its log in a file, for tests
//! that read what it logs (a line forged, a flood held back): an
//! in-process server's log is the test binary's, shared by every test.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running vsamrd process whose standard error is a file; killed when
/// dropped.
pub struct LoggedServer {
    child: Child,
    /// Where it serves VSAM requests: `127.0.0.1:PORT`.
    pub address: String,
    /// Its log.
    pub log: PathBuf,
}

impl LoggedServer {
    /// Writes `config` (which must listen on `127.0.0.1:port`) to
    /// `dir/vsamrd.toml`, starts vsamrd on it logging at `level` into
    /// `dir/vsamrd.log`, and returns once it accepts connections (at most
    /// a minute: vsamrd compiles its plugins first).
    pub fn start(dir: &Path, port: u16, config: &str, level: &str) -> Self {
        let address = format!("127.0.0.1:{port}");
        assert!(
            config.contains(&address),
            "the configuration does not listen on {address}"
        );
        let config_path = dir.join("vsamrd.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("vsamrd.log");
        let mut child = Command::new(crate::vsamrd_binary())
            .arg("--config")
            .arg(&config_path)
            .env("VSAMRD_LOG", level)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(&address).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "vsamrd exited at start ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "vsamrd did not start within a minute"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            address,
            log,
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Kills it and returns all it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
