//! vsamrd as a process: acknowledged writes survive `kill -9`, SIGTERM
//! finishes and flushes, the catalog survives restarts, and a bad config
//! stops it with the file, line and field.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vsam_client::{
    ChainedRecord, ClientError, Connection, Dataset, DatasetSpec, OpenIntent, Organization,
    RplOptions,
};

struct Vsamrd {
    child: Child,
    address: String,
}

impl Drop for Vsamrd {
    /// A test that fails must not leave its vsamrd running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(data_dir: &Path, port: u16) -> Vsamrd {
    start_with_admin(data_dir, port, "127.0.0.1:0").await
}

async fn start_with_admin(data_dir: &Path, port: u16, admin: &str) -> Vsamrd {
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .args(["--listen", &address, "--admin-listen", admin, "--data-dir"])
        .arg(data_dir)
        .env("VSAMRD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("vsamrd starts");
    until_up(&address).await;
    Vsamrd { child, address }
}

/// Waits until a vsamrd answers at `address` (a minute at most).
async fn until_up(address: &str) {
    let started = Instant::now();
    while Connection::connect(address).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "vsamrd did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spec() -> DatasetSpec {
    DatasetSpec {
        name: "CRASH.KSDS".into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: 6,
        min_record: 0,
        max_record: 80,
        codepage: "ascii".into(),
        backend: String::new(),
        layout: String::new(),
    }
}

async fn read_all(address: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    read_dataset(address, "CRASH.KSDS").await
}

/// The write vsamrd died under: its key, the record before, the record it wrote.
/// The write vsamrd died under: its outcome is unknown to the client.
enum InDoubt {
    /// One insert or update: the record is either the old or the new one.
    Record {
        key: Vec<u8>,
        old: Option<Vec<u8>>,
        new: Vec<u8>,
    },
    /// A PUT CHAIN of new records: any prefix of it may be stored.
    Chain(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Records per PUT CHAIN in the kill test.
const CHAIN: u32 = 40;

/// Every acknowledged write survives `kill -9`, and so does a copy of the
/// data dir taken at that moment and started elsewhere (what an atomic
/// snapshot of a running server's file system holds: see the README's
/// backups): in every other round the server goes on from such a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut acknowledged = 0usize;
    let mut next_key = 0u32;
    for round in 0..5u64 {
        let mut server = start(dir.path(), port).await;
        let conn = Connection::connect(&server.address).await.unwrap();
        if round == 0 {
            vsam_client::define(&conn, spec()).await.unwrap();
        }
        assert_eq!(
            read_all(&server.address).await,
            expected,
            "round {round}: state after restart"
        );
        let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Update, 1)
            .await
            .unwrap();
        // A killer fires at a moment that moves every round, while a write
        // is on its way: the write it interrupts is in doubt.
        let pid = server.child.id().to_string();
        let kill_after = Duration::from_millis(60 + round * 37);
        let killer = tokio::spawn(async move {
            tokio::time::sleep(kill_after).await;
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        });
        let mut step = 0u32;
        let in_doubt = loop {
            step += 1;
            if step.is_multiple_of(5) {
                // A chain of new records: acknowledged as a whole.
                let chain: Vec<(Vec<u8>, Vec<u8>)> = (next_key..next_key + CHAIN)
                    .map(|n| {
                        let key = format!("{n:06}").into_bytes();
                        let record = [key.as_slice(), b"-CHAINED"].concat();
                        (key, record)
                    })
                    .collect();
                let records = chain
                    .iter()
                    .map(|(_, record)| ChainedRecord {
                        address: 0,
                        record: record.clone(),
                    })
                    .collect();
                match ds.put_chain(0, RplOptions::direct(), records).await {
                    Ok(outcome) => {
                        assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
                        assert_eq!(outcome.written.len(), chain.len());
                        acknowledged += chain.len();
                        next_key += CHAIN;
                        expected.extend(chain);
                        continue;
                    }
                    Err(_) => break InDoubt::Chain(chain),
                }
            }
            let update = next_key % 3 == 2 && !expected.is_empty();
            let (key, record) = if update {
                let key = expected
                    .keys()
                    .nth((next_key as usize * 7) % expected.len())
                    .unwrap()
                    .clone();
                let record = [key.as_slice(), format!("-UPDATED-{next_key}").as_bytes()].concat();
                (key, record)
            } else {
                let key = format!("{next_key:06}").into_bytes();
                (key.clone(), [key.as_slice(), b"-INSERTED"].concat())
            };
            let result: Result<(), ClientError> = async {
                if update {
                    ds.reading(RplOptions::direct().update())
                        .key(&key)
                        .records()
                        .await?;
                    ds.put(0, RplOptions::direct().update(), 0, record.clone())
                        .await?;
                } else {
                    ds.put(0, RplOptions::direct(), 0, record.clone()).await?;
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    expected.insert(key, record);
                    acknowledged += 1;
                    next_key += 1;
                }
                Err(_) => {
                    break InDoubt::Record {
                        old: expected.get(&key).cloned(),
                        key,
                        new: record,
                    };
                }
            }
        };
        killer.await.unwrap();
        let _ = server.child.wait();
        if round % 2 == 1 {
            // The data dir as the kill left it, copied to another path.
            let copy = tempfile::tempdir().unwrap();
            let copied = Command::new("cp")
                .arg("-a")
                .arg(dir.path().join("."))
                .arg(copy.path())
                .status()
                .unwrap();
            assert!(copied.success());
            dir = copy;
        }
        // Settle the one write vsamrd died under: either outcome is allowed.
        let server = start(dir.path(), port).await;
        let found = read_all(&server.address).await;
        match in_doubt {
            InDoubt::Record { key, old, new } => match found.get(&key) {
                Some(record) if *record == new => {
                    expected.insert(key, new);
                    next_key += 1;
                }
                other => assert_eq!(other, old.as_ref(), "the in-doubt write left a third state"),
            },
            InDoubt::Chain(chain) => {
                let stored = chain
                    .iter()
                    .take_while(|(key, record)| found.get(key) == Some(record))
                    .count();
                expected.extend(chain.into_iter().take(stored));
                next_key += CHAIN;
            }
        }
        assert_eq!(
            found, expected,
            "round {round}: every acknowledged write, nothing else"
        );
        let mut server = server;
        server.child.kill().unwrap();
        let _ = server.child.wait();
    }
    assert!(
        acknowledged > 20,
        "only {acknowledged} writes were acknowledged"
    );
}

/// Every file in `dir` and below.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => files.extend(walk(&path)),
            false => files.push(path),
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    // The CSV backend: SIGTERM must leave its file rewritten and complete.
    let csv_spec = DatasetSpec {
        backend: "csv".into(),
        ..spec()
    };
    vsam_client::define(&conn, csv_spec).await.unwrap();
    let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    for i in 0..20u32 {
        ds.put(
            0,
            RplOptions::direct(),
            0,
            format!("{i:06}-REC").into_bytes(),
        )
        .await
        .unwrap();
    }
    // The default backend, SQLite: SIGTERM must leave its database closed.
    let sqlite_spec = DatasetSpec {
        name: "CRASH.SQLITE".into(),
        ..spec()
    };
    vsam_client::define(&conn, sqlite_spec).await.unwrap();
    let sqlite = Dataset::open(&conn, "CRASH.SQLITE", OpenIntent::Update, 1)
        .await
        .unwrap();
    sqlite
        .put(0, RplOptions::direct(), 0, b"000001-REC".to_vec())
        .await
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "vsamrd did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let csv = std::fs::read_to_string(dir.path().join("csv/CRASH.KSDS.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        21,
        "header and 20 records written into the CSV:\n{csv}"
    );
    assert!(
        csv.lines().nth(1).unwrap().starts_with("000000,000000-REC"),
        "{csv}"
    );
    let journal = std::fs::metadata(dir.path().join("csv/CRASH.KSDS.journal")).unwrap();
    assert_eq!(
        journal.len(),
        0,
        "the journal was folded into the CSV at shutdown"
    );
    let sqlite_logs: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with("-wal") || name.ends_with("-shm")
        })
        .collect();
    assert!(
        sqlite_logs.is_empty(),
        "SQLite's databases were closed (their logs checkpointed and removed) before vsamrd exited: {sqlite_logs:?}"
    );
    let cached = std::fs::read_dir(dir.path().join("plugin-cache"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "cwasm")
        })
        .count();
    assert_eq!(
        cached, 3,
        "the compiled SQL, CSV and object-store plugins of the default are cached for the next start"
    );
    // The catalog and records survive the restart.
    let mut server = start(dir.path(), port).await;
    assert_eq!(read_all(&server.address).await.len(), 20);
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// `vsamrd check-config FILE`, run.
fn check_config(file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap()
}

/// What vsamrd run with `args` (and `variable` set) says when it stops
/// with an error, as it must.
fn vsamrd_refuses(args: &[&str], variable: Option<(&str, &Path)>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vsamrd"));
    if let Some((name, value)) = variable {
        command.env(name, value);
    }
    let output = command.args(args).output().unwrap();
    assert!(!output.status.success(), "vsamrd {args:?} did not fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A misspelt `VSAMRD_CONFIG` stops vsamrd, naming the variable meant,
/// rather than starting the embedded default in its place.
#[test]
fn a_misspelt_variable_stops_vsamrd_naming_the_one_meant() {
    let stderr = vsamrd_refuses(
        &["--listen", "127.0.0.1:1"],
        Some(("VSAMRD_CONFG", Path::new("/etc/vsamrd/vsamrd.toml"))),
    );
    assert!(
        stderr.starts_with(
            "vsamrd: VSAMRD_CONFG: vsamrd reads no such variable (meant VSAMRD_CONFIG?); it reads VSAMRD_CONFIG, VSAMRD_GIT_REVISION, VSAMRD_LOG, VSAMRD_LOG_FORMAT"
        ),
        "{stderr}"
    );
}

/// A port another program holds stops vsamrd with the port's use and
/// the setting that moves it.
#[test]
fn a_port_in_use_stops_vsamrd_naming_the_setting_that_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = free.local_addr().unwrap().to_string();
    drop(free);
    for (flag, says) in [
        (
            "--listen",
            format!(
                "cannot listen for VSAM requests on {taken}: set [server] listen (or --listen) to a free address"
            ),
        ),
        (
            "--admin-listen",
            format!(
                "cannot listen for admin requests on {taken}: set [admin] listen (or --admin-listen) to a free address"
            ),
        ),
    ] {
        let mut args = vec![
            "--data-dir",
            dir.path().to_str().unwrap(),
            flag,
            taken.as_str(),
        ];
        if flag != "--listen" {
            args.extend(["--listen", listen.as_str()]);
        }
        let stderr = vsamrd_refuses(&args, None);
        assert!(
            stderr.contains(&says) && stderr.contains("Address already in use"),
            "{stderr}"
        );
    }
}

#[test]
fn a_bad_config_stops_vsamrd_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:2387\"\n\n[backends.b]\nplugin = \"missing\"\n",
    )
    .unwrap();
    // The server, check-config FILE, and check-config of the file the
    // server would run with (--config, VSAMRD_CONFIG) say the same.
    for (args, variable) in [
        (vec!["--config", file.to_str().unwrap()], None),
        (vec!["check-config", file.to_str().unwrap()], None),
        (
            vec!["--config", file.to_str().unwrap(), "check-config"],
            None,
        ),
        (vec!["check-config"], Some(&file)),
    ] {
        let variable = variable.map(|file| ("VSAMRD_CONFIG", file.as_path()));
        let stderr = vsamrd_refuses(&args, variable);
        assert!(
            stderr.contains("bad.toml:5: field `backends.b.plugin`: no plugin named \"missing\""),
            "{stderr}"
        );
    }
    // Two different files, or none: which to check is not guessed.
    for (args, says) in [
        (
            vec![
                "--config",
                "/etc/vsamrd/vsamrd.toml",
                "check-config",
                file.to_str().unwrap(),
            ],
            "but --config (or VSAMRD_CONFIG) names /etc/vsamrd/vsamrd.toml: give one file",
        ),
        (
            vec!["check-config"],
            "check-config needs a file: vsamrd check-config FILE",
        ),
    ] {
        let stderr = vsamrd_refuses(&args, None);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vsamrd.toml");
    let output = check_config(&good);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("route     TEST.** -> scratch"));
}

/// A TLS certificate past its end is named by check-config (as at start
/// and at each reload), with the cure.
#[test]
fn check_config_names_a_certificate_past_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let certificate = params.self_signed(&key).unwrap();
    let (cert, key_file) = (dir.path().join("old.pem"), dir.path().join("old.key"));
    std::fs::write(&cert, certificate.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let file = dir.path().join("tls.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:2387\"\n[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key_file.display()
        ),
    )
    .unwrap();
    let output = check_config(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let warning = format!(
        "  warning   [tls] {}: the server certificate CN=rcgen self signed cert ended on 2001-01-01T00:00:00Z: TLS clients refuse it; put a renewed certificate in the file and reload",
        cert.display()
    );
    assert!(stdout.contains(&warning), "{warning:?} not in:\n{stdout}");
}

#[test]
fn check_config_shows_the_mirrors_and_where_the_stream_goes_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mirrored.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:2387\"\n\
         [plugins.sql]\npath = \"builtin:sql\"\n[plugins.csv]\npath = \"builtin:csv\"\n\
         [backends.main]\nplugin = \"sql\"\ndatabase = \"sqlite:main.db\"\n\
         [backends.copy]\nplugin = \"csv\"\ndirectory = \"copy\"\n\
         [routing]\ndefault = \"main\"\n\
         [changes]\nstream = \"postgres\"\nstream_database = \"postgres://vsam:s3cret@db.example/vsam\"\nstream_datasets = [\"PAY.**\"]\n\
         [[mirrors]]\ndatasets = \"PAY.**\"\nbackends = [\"copy\"]\n",
    )
    .unwrap();
    let output = check_config(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("  mirror    PAY.** -> copy (async)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  stream    PAY.** -> table _vsamrd_change_stream of postgres://vsam:***@db.example/vsam"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "{stdout}");
    // The file holds the stream's password: every user may read it at
    // 0644, which check-config says, and not once it is private.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stdout = String::from_utf8(check_config(&file).stdout).unwrap();
    let warning = format!(
        "  warning   {} holds secrets (changes.stream_database), and every user of this machine may read it (mode 0644): chmod o-rwx {}",
        file.display(),
        file.display()
    );
    assert!(stdout.contains(&warning), "{stdout}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stdout = String::from_utf8(check_config(&file).stdout).unwrap();
    assert!(!stdout.contains("warning"), "{stdout}");
}

/// A reader that goes away (`vsamrd check-config FILE | head -1`) ends
/// vsamrd quietly with 128 + SIGPIPE, as it ends other tools, rather than
/// with a panic's message.
#[test]
fn a_closed_output_pipe_ends_vsamrd_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vsamrd.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:2387\"\n\
         [plugins.sql]\npath = \"builtin:sql\"\n\
         [backends.main]\nplugin = \"sql\"\ndatabase = \"sqlite:main.db\"\n\
         [routing]\ndefault = \"main\"\n",
    )
    .unwrap();
    let man = dir.path().join("man");
    for args in [
        vec!["check-config".as_ref(), file.as_os_str()],
        vec!["completions".as_ref(), "bash".as_ref()],
        vec!["manpages".as_ref(), man.as_os_str()],
    ] {
        // The reading end closed before vsamrd starts: closed after, it
        // lost the race now and then to an output that fits in the pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "vsamrd {args:?}: {stderr}");
        assert!(stderr.is_empty(), "vsamrd {args:?}: {stderr}");
    }
}

/// Out of file descriptors, new connections wait in the backlog and are
/// served once descriptors are free; the log says so in one line, not 20 a
/// second, even when descriptors come and go at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_new_connections_wait_and_the_log_says_it_once() {
    let (mut vsamrd, log, _dir) = start_after("ulimit -n 64", "info").await;
    // More sockets than vsamrd has descriptors left: the kernel completes
    // them all, vsamrd takes what it can and the rest wait.
    let held: Vec<_> = (0..100)
        .map(|_| std::net::TcpStream::connect(&vsamrd.address).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = std::fs::read_to_string(&log).unwrap();
    let lines = waiting.matches("accept failed").count();
    assert_eq!(lines, 1, "one line for the whole run: {waiting}");
    assert!(
        waiting.contains("out of file descriptors: raise its limit"),
        "{waiting}"
    );
    drop(held);
    // Descriptors free again: a client is served.
    let started = Instant::now();
    let conn = loop {
        match Connection::connect(&vsamrd.address).await {
            Ok(conn) => break conn,
            Err(error) => {
                assert!(started.elapsed() < Duration::from_secs(30), "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    drop(conn);
    let after = std::fs::read_to_string(&log).unwrap();
    assert!(after.contains("accepting connections again"), "{after}");
    vsamrd.child.kill().unwrap();
    let _ = vsamrd.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_vsamrd_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start(dir.path(), free_port()).await;
    let output = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("in use by another vsamrd"));
    first.child.kill().unwrap();
    let _ = first.child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_file() {
    use vsam_client::admin::{AdminClient, read_token};
    use vsam_protocol::admin::{AdminAnswer, AdminCommand};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vsamrd.toml");
    let base = "[admin]\nwatch_files = false\n[plugins.sql]\npath = \"builtin:sql\"\n[backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:vsam.db\"\n[routing]\ndefault = \"sqlite\"\n";
    std::fs::write(&config, base).unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", &address, "--admin-listen", &admin, "--data-dir"])
        .arg(dir.path().join("data"))
        .env("VSAMRD_LOG", "warn")
        .spawn()
        .unwrap();
    let started = Instant::now();
    while Connection::connect(&address).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = read_token(&dir.path().join("data/admin.token")).unwrap();
    let mut client = AdminClient::connect(&admin, token).await.unwrap();
    std::fs::write(
        &config,
        format!("{base}[[routing.rules]]\npattern = \"HUP.**\"\nbackend = \"sqlite\"\n"),
    )
    .unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let report = loop {
        let AdminAnswer::Status(status) = client.request(AdminCommand::Status).await.unwrap()
        else {
            panic!("not a status");
        };
        if let Some(report) = status.last_reload {
            break report;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(report.trigger, "SIGHUP");
    assert_eq!(report.error, None);
    assert_eq!(report.changes, ["routing: 1 rule(s), default sqlite"]);
    child.kill().unwrap();
    let _ = child.wait();
}

/// A configuration of many backends starts (each an instance of its own,
/// from an engine sized for them: a fixed 256 stopped vsamrd at start, and
/// its 1,000 async stacks past that), serves its last backend, swaps them
/// all in a reload, and a reload past the room is refused, saying a
/// restart applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_backends_start_and_a_reload_past_their_room_is_refused() {
    use vsam_client::admin::{AdminClient, read_token};
    use vsam_protocol::admin::{AdminAnswer, AdminCommand};
    const BACKENDS: usize = 1100;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vsamrd.toml");
    let write_config = |backends: usize, timeout_ms: u64| {
        let mut text = String::from(
            "[admin]\nwatch_files = false\n[plugins.csv]\npath = \"builtin:csv\"\n[routing]\ndefault = \"b0\"\n[[routing.rules]]\npattern = \"LAST.**\"\nbackend = \"b1099\"\n",
        );
        for i in 0..backends {
            text.push_str(&format!(
                "[backends.b{i}]\nplugin = \"csv\"\ndirectory = \"csv{i}\"\ncall_timeout_ms = {timeout_ms}\n"
            ));
        }
        std::fs::write(&config, text).unwrap();
    };
    write_config(BACKENDS, 5000);
    let address = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", &address, "--admin-listen", &admin, "--data-dir"])
        .arg(dir.path().join("data"))
        .env("VSAMRD_LOG", "warn")
        .spawn()
        .unwrap();
    let vsamrd = Vsamrd {
        child,
        address: address.clone(),
    };
    until_up(&vsamrd.address).await;
    let conn = Connection::connect(&address).await.unwrap();
    let mut spec = spec();
    spec.name = "LAST.KSDS".into();
    vsam_client::define(&conn, spec).await.unwrap();
    let info = vsam_client::info(&conn, "LAST.KSDS").await.unwrap();
    assert_eq!(info.backend, "b1099");
    let last = Dataset::open(&conn, "LAST.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    last.put(
        0,
        RplOptions::direct(),
        0,
        b"KEY001 on the last backend".to_vec(),
    )
    .await
    .unwrap();
    last.close().await.unwrap();
    let token = read_token(&dir.path().join("data/admin.token")).unwrap();
    let mut client = AdminClient::connect(&admin, token).await.unwrap();
    let reload = async |client: &mut AdminClient| {
        let AdminAnswer::Reload(report) = client.request(AdminCommand::Reload).await.unwrap()
        else {
            panic!("not a reload report");
        };
        report
    };
    // Every backend's settings change: each starts new instances beside
    // the old ones.
    write_config(BACKENDS, 6000);
    let swapped = reload(&mut client).await;
    assert_eq!(swapped.error, None);
    assert_eq!(
        swapped.changes.len(),
        BACKENDS,
        "{:?}",
        &swapped.changes[..3]
    );
    // Room for 2 x 1,100 + 64: 100 more backends would need 2,300.
    write_config(BACKENDS + 100, 6000);
    let refused = reload(&mut client).await;
    let error = refused.error.expect("refused");
    assert!(
        error.starts_with("the new configuration runs 1200 plugin instances, and while it replaces the 1100 that serve now vsamrd would need room for 2300; it was started with room for 2264"),
        "{error}"
    );
    assert!(
        error.contains("restart vsamrd to apply this configuration"),
        "{error}"
    );
    let records = read_dataset(&address, "LAST.KSDS").await;
    assert_eq!(records.len(), 1, "served after both reloads");
}

/// A live migration survives `kill -9` at any point: a copy under way
/// starts again after the restart and cuts over; a cut-over migration
/// comes back with the old copy following, and rolls back losing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_resumes_after_kill_9_and_rolls_back_whole() {
    use vsam_client::admin::{AdminClient, read_token};
    use vsam_protocol::admin::{AdminAnswer, AdminCommand, MigrationRow};
    let dir = tempfile::tempdir().unwrap();
    let admin_address = format!("127.0.0.1:{}", free_port());
    let start = |port: u16| {
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
            .args(["--listen", &address, "--admin-listen", &admin_address])
            .arg("--data-dir")
            .arg(dir.path())
            .env("VSAMRD_LOG", "warn")
            .spawn()
            .unwrap();
        (child, address)
    };
    async fn up(address: &str) -> Connection {
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
    async fn row(admin: &mut AdminClient) -> Option<MigrationRow> {
        let AdminAnswer::Status(status) = admin.request(AdminCommand::Status).await.unwrap() else {
            panic!("not a status");
        };
        status.migrations.into_iter().next_back()
    }
    let (mut child, address) = start(free_port());
    let conn = up(&address).await;
    let mut spec = spec();
    spec.backend = "csv".into();
    vsam_client::define(&conn, spec).await.unwrap();
    let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Output, 1)
        .await
        .unwrap();
    let records: Vec<ChainedRecord> = (0..100_000u32)
        .map(|i| ChainedRecord {
            address: 0,
            record: format!("K{i:05}-moving-record-{i}").into_bytes(),
        })
        .collect();
    let loaded = ds
        .put_chain(0, RplOptions::sequential(), records)
        .await
        .unwrap();
    assert_eq!(loaded.written.len(), 100_000);
    ds.close().await.unwrap();
    let before = read_all(&address).await;

    let token = read_token(&dir.path().join("admin.token")).unwrap();
    let mut admin = AdminClient::connect(&admin_address, token.clone())
        .await
        .unwrap();
    admin
        .request(AdminCommand::Migrate {
            dataset: "CRASH.KSDS".into(),
            to: "sqlite".into(),
        })
        .await
        .unwrap();
    // Stopped (SIGTERM) in the middle of the copy: the copy is not taken
    // for failed and undone, it starts again at the next start.
    async fn copying(admin: &mut AdminClient) {
        loop {
            let now = row(admin).await.expect("shown");
            assert_ne!(
                now.phase, "cut-over",
                "the copy ended before the stop: make it longer"
            );
            if now.phase == "copying" && now.copied > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    copying(&mut admin).await;
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    let (mut child, _) = start(free_port());
    let mut admin = loop {
        if let Ok(admin) = AdminClient::connect(&admin_address, token.clone()).await {
            break admin;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Killed in the middle of the copy started again.
    copying(&mut admin).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, address) = start(free_port());
    let conn = up(&address).await;
    let mut admin = AdminClient::connect(&admin_address, token.clone())
        .await
        .unwrap();
    let started = Instant::now();
    let cut_over = loop {
        let now = row(&mut admin).await.expect("the migration resumed");
        if now.phase == "cut-over" {
            break now;
        }
        assert!(
            matches!(now.phase.as_str(), "counting" | "copying" | "verifying"),
            "{now:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(120));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cut_over.verified, Some(100_000));
    assert_eq!(
        vsam_client::info(&conn, "CRASH.KSDS")
            .await
            .unwrap()
            .backend,
        "sqlite"
    );
    assert_eq!(read_all(&address).await, before);

    // Killed after the cutover: it comes back cut over, the old copy following.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, address) = start(free_port());
    let conn = up(&address).await;
    let mut admin = AdminClient::connect(&admin_address, token).await.unwrap();
    let resumed = row(&mut admin).await.expect("still shown");
    assert_eq!(resumed.phase, "cut-over");
    assert!(resumed.message.unwrap().contains("resumed after a restart"));
    let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(
        0,
        RplOptions::direct(),
        0,
        b"Z99999-written-on-the-new-copy".to_vec(),
    )
    .await
    .unwrap();
    ds.close().await.unwrap();
    let AdminAnswer::Migration(back) = admin
        .request(AdminCommand::Rollback {
            dataset: "CRASH.KSDS".into(),
        })
        .await
        .unwrap()
    else {
        panic!("not a migration");
    };
    assert_eq!(back.phase, "rolled-back");
    assert_eq!(back.verified, Some(100_001));
    assert_eq!(
        vsam_client::info(&conn, "CRASH.KSDS")
            .await
            .unwrap()
            .backend,
        "csv"
    );
    let after = read_all(&address).await;
    assert_eq!(after.len(), 100_001);
    assert!(after.contains_key(b"Z99999".as_slice()));
    child.kill().unwrap();
    let _ = child.wait();
}

/// After the cutover the new copy serves and the old one follows; a write
/// in flight when vsamrd is killed may reach only the new one. Killed at
/// moments that move from round to round under inserts, updates and
/// erases, then restarted each time, vsamrd still rolls back without
/// losing an acknowledged write: the restart brings the old copy level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_after_kill_9_at_any_moment_after_the_cutover_loses_nothing() {
    use vsam_client::admin::{AdminClient, read_token};
    use vsam_protocol::admin::{AdminAnswer, AdminCommand};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin_address = format!("127.0.0.1:{}", free_port());
    let mut server = start_with_admin(dir.path(), port, &admin_address).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(
        &conn,
        DatasetSpec {
            backend: "csv".into(),
            ..spec()
        },
    )
    .await
    .unwrap();
    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = (0..500u32)
        .map(|i| {
            let key = format!("{i:06}").into_bytes();
            (key.clone(), [key.as_slice(), b"-LOADED"].concat())
        })
        .collect();
    let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Output, 1)
        .await
        .unwrap();
    let records = expected
        .values()
        .map(|record| ChainedRecord {
            address: 0,
            record: record.clone(),
        })
        .collect();
    ds.put_chain(0, RplOptions::sequential(), records)
        .await
        .unwrap();
    ds.close().await.unwrap();
    let token = read_token(&dir.path().join("admin.token")).unwrap();
    let admin = |token: String| {
        let address = admin_address.clone();
        async move { AdminClient::connect(&address, token).await.unwrap() }
    };
    let mut control = admin(token.clone()).await;
    control
        .request(AdminCommand::Migrate {
            dataset: "CRASH.KSDS".into(),
            to: "sqlite".into(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let AdminAnswer::Status(status) = control.request(AdminCommand::Status).await.unwrap()
        else {
            panic!("not a status");
        };
        let row = status.migrations.last().cloned().expect("shown");
        if row.phase == "cut-over" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(control);

    let mut next = 500u32;
    let mut dice = 0x2545_F491_4F6C_DD1Du64;
    let mut roll = |below: u64| {
        dice ^= dice << 13;
        dice ^= dice >> 7;
        dice ^= dice << 17;
        dice % below
    };
    for round in 0..8u64 {
        let conn = Connection::connect(&server.address).await.unwrap();
        let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Update, 1)
            .await
            .unwrap();
        let pid = server.child.id().to_string();
        let kill_after = Duration::from_millis(40 + roll(400));
        let killer = tokio::spawn(async move {
            tokio::time::sleep(kill_after).await;
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        });
        // The write vsamrd died under: its key, the record before, after.
        let (key, old, new) = loop {
            let kind = roll(3);
            let key = if kind == 0 || expected.is_empty() {
                next += 1;
                format!("{next:06}").into_bytes()
            } else {
                expected
                    .keys()
                    .nth(roll(expected.len() as u64) as usize)
                    .unwrap()
                    .clone()
            };
            let old = expected.get(&key).cloned();
            let new = match (kind, &old) {
                (2, Some(_)) => None,
                _ => Some([key.as_slice(), format!("-R{round}-{next}").as_bytes()].concat()),
            };
            let result: Result<(), ClientError> = async {
                if old.is_some() {
                    ds.reading(RplOptions::direct().update())
                        .key(&key)
                        .records()
                        .await?;
                }
                match (&old, &new) {
                    (_, None) => ds.erase(0).await,
                    (Some(_), Some(record)) => ds
                        .put(0, RplOptions::direct().update(), 0, record.clone())
                        .await
                        .map(drop),
                    (None, Some(record)) => ds
                        .put(0, RplOptions::direct(), 0, record.clone())
                        .await
                        .map(drop),
                }
            }
            .await;
            match result {
                Ok(()) => match &new {
                    Some(record) => {
                        expected.insert(key, record.clone());
                    }
                    None => {
                        expected.remove(&key);
                    }
                },
                Err(_) => break (key, old, new),
            }
        };
        killer.await.unwrap();
        let _ = server.child.wait();
        server = start_with_admin(dir.path(), port, &admin_address).await;
        let found = read_all(&server.address).await;
        let now = found.get(&key).cloned();
        assert!(
            now == old || now == new,
            "round {round}: the write in doubt left a third state"
        );
        match now {
            Some(record) => expected.insert(key, record),
            None => expected.remove(&key),
        };
        assert_eq!(found, expected, "round {round}: the new copy after restart");
    }

    let mut control = admin(token).await;
    let AdminAnswer::Migration(back) = control
        .request(AdminCommand::Rollback {
            dataset: "CRASH.KSDS".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("the rollback after the kills is refused: {e}"))
    else {
        panic!("not a migration");
    };
    assert_eq!(back.phase, "rolled-back");
    assert_eq!(back.verified, Some(expected.len() as u64));
    assert_eq!(
        vsam_client::info(&conn_to(&server.address).await, "CRASH.KSDS")
            .await
            .unwrap()
            .backend,
        "csv"
    );
    assert_eq!(read_all(&server.address).await, expected);
}

async fn conn_to(address: &str) -> Connection {
    Connection::connect(address).await.unwrap()
}

/// A data dir whose catalog.json is gone while the backends still hold its
/// datasets stops vsamrd with what to do; a catalog written as the message
/// says starts it, with a warning for an entry on a backend that is not
/// configured; a DEFINE that would adopt stored records under other
/// attributes is refused, one with their attributes adopts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_catalog_stops_vsamrd_and_a_define_must_fit_the_stored_records() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec()).await.unwrap();
    let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"K00001-stored".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();
    server.child.kill().unwrap();
    let _ = server.child.wait();

    // The DEFINE is the journal's first change, a step putting it.
    let catalog = dir.path().join("catalog.json");
    let journal = dir.path().join("catalog.journal");
    let first_change = std::fs::read_to_string(&journal).unwrap();
    let steps: serde_json::Value =
        serde_json::from_str(first_change.lines().next().unwrap()).unwrap();
    let defined = steps[0]["put"].clone();
    assert_eq!(defined["name"], "CRASH.KSDS", "{first_change}");
    std::fs::remove_file(&catalog).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "catalog {} is missing, but vsamrd has run on this data dir before",
            catalog.display()
        )) && stderr.contains("Restore catalog.json from a backup")
            && stderr.contains("remove catalog.journal")
            && stderr.contains("echo '{\"datasets\": []}'"),
        "{stderr}"
    );

    // An empty catalog, as the message says, with one entry on a backend
    // this server does not have.
    std::fs::remove_file(&journal).unwrap();
    let mut gone = defined;
    gone["name"] = "OLD.GONE".into();
    gone["backend"] = "retired".into();
    std::fs::write(
        &catalog,
        serde_json::to_vec(&serde_json::json!({ "datasets": [gone] })).unwrap(),
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("VSAMRD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut server = Vsamrd {
        child,
        address: format!("127.0.0.1:{port}"),
    };
    let conn = loop {
        if let Ok(conn) = Connection::connect(&server.address).await {
            break conn;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!(
                "vsamrd exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let warnings = std::fs::read_to_string(&log).unwrap();
    assert!(
        warnings.contains("OLD.GONE")
            && warnings.contains("backend retired, which is not configured"),
        "{warnings}"
    );
    let refused = vsam_client::define(
        &conn,
        DatasetSpec {
            key_length: 2,
            ..spec()
        },
    )
    .await
    .unwrap_err();
    let vsam = refused.vsam().expect("a VSAM answer");
    assert_eq!(
        vsam.fdbk(),
        vsam_protocol::fdbk::INVALID_OPTIONS,
        "{refused}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("CRASH.KSDS DEFINE: backend sqlite already holds records of CRASH.KSDS, and they do not fit this definition: the record under key X'4B3030303031' has a 6-byte key, the definition says KEYS(2 0)"),
        "{message}"
    );
    vsam_client::define(&conn, spec()).await.unwrap();
    let ds = Dataset::open(&conn, "CRASH.KSDS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let found = ds.read(b"K00001").await.unwrap();
    assert_eq!(found.data, b"K00001-stored");
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// Every record through a path: (alternate key, record).
async fn through_path(conn: &Connection, path: &str, low: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let ds = Dataset::open(conn, path, OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut all = Vec::new();
    if ds
        .point(0, RplOptions::direct().greater_or_equal(), low, 0, 0)
        .await
        .is_err()
    {
        return all;
    }
    loop {
        match ds.browse(100).await {
            Ok(batch) => all.extend(batch.into_iter().map(|r| (r.key, r.data))),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{path}: {e}"),
        }
    }
    ds.close().await.unwrap();
    all
}

/// Each base record once through each path, under the key it carries, and
/// nothing else.
async fn indexes_agree(address: &str, round: u64) {
    let conn = Connection::connect(address).await.unwrap();
    let ds = Dataset::open(&conn, "CRASH.AIXB", OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut base = BTreeMap::new();
    loop {
        match ds.browse(1000).await {
            Ok(batch) => base.extend(batch.into_iter().map(|r| (r.key, r.data))),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    ds.close().await.unwrap();
    for (path, range) in [("CRASH.AIXB.NAMES", 6..12), ("CRASH.AIXB.CODES", 12..16)] {
        let low = vec![0u8; range.len()];
        let mut seen = BTreeMap::new();
        for (alternate, record) in through_path(&conn, path, &low).await {
            assert_eq!(
                record[range.clone()],
                alternate[..],
                "round {round}: {path} lists a record under another key"
            );
            let key = record[..6].to_vec();
            assert_eq!(
                base.get(&key),
                Some(&record),
                "round {round}: {path} shows a record the base does not hold"
            );
            assert!(
                seen.insert(key, ()).is_none(),
                "round {round}: {path} lists a record twice"
            );
        }
        assert_eq!(
            seen.len(),
            base.len(),
            "round {round}: {path} misses records"
        );
    }
}

/// A base and its alternate indexes written under load, vsamrd killed with
/// SIGKILL between (or in the middle of) base and index writes: after each
/// restart every path shows every base record once, under its own key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternate_indexes_stay_true_through_kill_9() {
    const NAMES: [&str; 4] = ["ADAMS ", "BROWN ", "CLARK ", "DAVIS "];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut n = 0u32;
    let mut writes = 0u32;
    for round in 0..5u64 {
        let mut server = start(dir.path(), port).await;
        let conn = Connection::connect(&server.address).await.unwrap();
        if round == 0 {
            vsam_client::define(
                &conn,
                DatasetSpec {
                    name: "CRASH.AIXB".into(),
                    max_record: 30,
                    ..spec()
                },
            )
            .await
            .unwrap();
            for (aix, path, offset, length, unique) in [
                ("CRASH.AIXB.NAME", "CRASH.AIXB.NAMES", 6, 6, false),
                ("CRASH.AIXB.CODE", "CRASH.AIXB.CODES", 12, 4, true),
            ] {
                let spec = vsam_client::AixSpec {
                    name: aix.into(),
                    base: "CRASH.AIXB".into(),
                    key_offset: offset,
                    key_length: length,
                    unique,
                    upgrade: true,
                };
                vsam_client::define_aix(&conn, spec).await.unwrap();
                let path = vsam_client::PathSpec {
                    name: path.into(),
                    aix: aix.into(),
                };
                vsam_client::define_path(&conn, path).await.unwrap();
            }
        }
        indexes_agree(&server.address, round).await;
        let ds = Dataset::open(&conn, "CRASH.AIXB", OpenIntent::Update, 1)
            .await
            .unwrap();
        let pid = server.child.id().to_string();
        let kill_after = Duration::from_millis(150 + round * 53);
        let killer = tokio::spawn(async move {
            tokio::time::sleep(kill_after).await;
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        });
        loop {
            n += 1;
            let key = format!("{:06}", (n * 7) % (n / 2 + 2)).into_bytes();
            let record = |name: &str| {
                format!(
                    "{}{name}{:04}-----------",
                    String::from_utf8_lossy(&key),
                    n % 10_000
                )
                .into_bytes()
            };
            let direct = RplOptions::direct();
            let result: Result<(), ClientError> = match n % 4 {
                0 | 1 => ds
                    .put(0, direct, 0, record(NAMES[n as usize % 4]))
                    .await
                    .map(drop),
                2 => match ds.get(0, direct.update(), &key, 0, 0, 1).await {
                    Ok(_) => ds
                        .put(0, direct.update(), 0, record(NAMES[(n as usize + 1) % 4]))
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                },
                _ => match ds.get(0, direct.update(), &key, 0, 0, 1).await {
                    Ok(_) => ds.erase(0).await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => writes += 1,
                Err(ClientError::Vsam(_)) => {}
                Err(_) => break,
            }
        }
        killer.await.unwrap();
        let _ = server.child.wait();
    }
    let mut server = start(dir.path(), port).await;
    indexes_agree(&server.address, 5).await;
    server.child.kill().unwrap();
    let _ = server.child.wait();
    assert!(writes > 20, "only {writes} writes went through");
}

/// Starts vsamrd on a config file, its admin interface on a free port.
async fn start_config(config: &Path, address: &str) -> Vsamrd {
    let child = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
        .args(["--admin-listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("VSAMRD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("vsamrd starts");
    let started = Instant::now();
    while Connection::connect(address).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "vsamrd did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vsamrd {
        child,
        address: address.to_string(),
    }
}

/// Two servers with data dirs of their own, pointed at one CSV directory,
/// one SQLite file or one local bucket: the second is refused and names
/// the first (pid and data dir); once the first stops, the storage is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_vsamrd_on_the_same_local_storage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let backends = [
        (
            "csv",
            format!(
                "plugin = \"csv\"\ndirectory = \"{}\"",
                shared.join("csv").display()
            ),
            format!("directory {}", shared.join("csv").display()),
        ),
        (
            "sqlite",
            format!(
                "plugin = \"sql\"\ndatabase = \"sqlite:{}\"",
                shared.join("vsam.db").display()
            ),
            format!("SQLite database {}", shared.join("vsam.db").display()),
        ),
        (
            "objects",
            format!(
                "plugin = \"s3\"\nbucket = {{ directory = \"{}\" }}",
                shared.join("objects").display()
            ),
            format!("local bucket {}", shared.join("objects").display()),
        ),
    ];
    let config = |name: &str, port: u16, sections: &[&(&str, String, String)]| {
        let mut text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{name}-data\"\n\
             [plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n[plugins.s3]\npath = \"builtin:s3\"\n"
        );
        for (backend, settings, _) in sections {
            text.push_str(&format!("[backends.{backend}]\n{settings}\n"));
        }
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let port = free_port();
    let first_config = config("first", port, &backends.iter().collect::<Vec<_>>());
    let mut first = start_config(&first_config, &format!("127.0.0.1:{port}")).await;
    let first_pid = first.child.id();
    for backend in &backends {
        let second = config(&format!("second-{}", backend.0), free_port(), &[backend]);
        let output = Command::new(env!("CARGO_BIN_EXE_vsamrd"))
            .args(["--admin-listen", "127.0.0.1:0", "--config"])
            .arg(&second)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        let holder = format!(
            "in use by another vsamrd (pid {first_pid}, data dir {}",
            dir.path().join("first-data").display()
        );
        assert!(
            stderr.contains(&format!("backend {}: {}", backend.0, backend.2))
                && stderr.contains(&holder),
            "{stderr}"
        );
        // check-config says where the data is.
        let output = check_config(&second);
        assert!(output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stdout).contains(&format!("data in {}", backend.2)),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
    first.child.kill().unwrap();
    let _ = first.child.wait();
    let port = free_port();
    let second = config("second-csv", port, &[&backends[0]]);
    let second = start_config(&second, &format!("127.0.0.1:{port}")).await;
    drop(second);
}

/// check-config refuses what start-up refuses: a plugin file that is
/// missing, random bytes, a core module rather than a component, and a
/// directory that cannot be made because a file is in the way.
#[test]
fn check_config_refuses_what_start_up_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("random.wasm"), b"\x13\x37 not wasm at all").unwrap();
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("afile"), b"x").unwrap();
    for (plugin, backend, expected) in [
        (
            "path = \"missing.wasm\"",
            "",
            "field `plugins.p.path`: plugin p: cannot read",
        ),
        (
            "path = \"random.wasm\"",
            "",
            "field `plugins.p.path`: plugin p is not a WebAssembly component",
        ),
        (
            "path = \"core.wasm\"",
            "",
            "plugin p is a core WebAssembly module, not a component",
        ),
        (
            "path = \"builtin:csv\"",
            "directory = \"../afile/csv\"",
            "leads out of the data dir",
        ),
        (
            "path = \"builtin:csv\"",
            &format!("directory = \"{}\"", dir.path().join("afile/csv").display()),
            "is a file, not a directory",
        ),
    ] {
        let file = dir.path().join("check.toml");
        std::fs::write(
            &file,
            format!("[plugins.p]\n{plugin}\n[backends.b]\nplugin = \"p\"\n{backend}\n"),
        )
        .unwrap();
        let output = check_config(&file);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{plugin} {backend}: accepted");
        assert!(stderr.contains(expected), "{plugin} {backend}: {stderr}");
    }
}

/// Every record of `name` in key order.
async fn read_dataset(address: &str, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let conn = Connection::connect(address).await.unwrap();
    let ds = Dataset::open(&conn, name, OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut all = BTreeMap::new();
    loop {
        match ds.browse(1000).await {
            Ok(batch) => all.extend(batch.into_iter().map(|r| (r.key, r.data))),
            Err(e) if e.is_end_of_data() => return all,
            Err(e) => panic!("{e}"),
        }
    }
}

/// One unit of work of the kill test on `ds`: ten inserts, three updates
/// and an erase of records `before` holds, then COMMIT unless `commit` is
/// false. Returns the records after the unit, and whether its COMMIT was
/// answered (Err: the server died; `Some(after)` if the COMMIT was on its
/// way, so the unit is in doubt).
async fn run_unit(
    conn: &Connection,
    ds: &Dataset,
    before: &BTreeMap<Vec<u8>, Vec<u8>>,
    serial: u32,
    commit: bool,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Option<BTreeMap<Vec<u8>, Vec<u8>>>> {
    let mut after = before.clone();
    let changes: Result<(), ClientError> = async {
        for n in 0..10u32 {
            let key = format!("{:06}", serial * 10 + n).into_bytes();
            let record = [key.as_slice(), format!("-unit-{serial}").as_bytes()].concat();
            ds.put(0, RplOptions::direct(), 0, record.clone()).await?;
            after.insert(key, record);
        }
        let old: Vec<Vec<u8>> = before.keys().step_by(7).take(4).cloned().collect();
        for (i, key) in old.iter().enumerate() {
            ds.read_for_update(key).await?;
            if i == 3 {
                ds.erase(0).await?;
                after.remove(key);
            } else {
                let record = [key.as_slice(), format!("-updated-{serial}").as_bytes()].concat();
                ds.put(0, RplOptions::direct().update(), 0, record.clone())
                    .await?;
                after.insert(key.clone(), record);
            }
        }
        Ok(())
    }
    .await;
    if changes.is_err() {
        return Err(None);
    }
    if !commit {
        return Ok(after);
    }
    match vsam_client::commit(conn).await {
        Ok(()) => Ok(after),
        Err(_) => Err(Some(after)),
    }
}

/// Units of work on SQLite, on CSV files and on a bucket directory (small
/// control intervals: a unit spans several), with vsamrd killed at moments
/// that move every round: after each restart every committed unit is
/// whole, no change of a unit that was not committed shows, and the unit
/// whose COMMIT was on its way is there whole or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_of_work_are_whole_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let config = dir.path().join("vsamrd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{address}\"\ndata_dir = \"{}\"\n\
             [plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n\
             [plugins.s3]\npath = \"builtin:s3\"\n\
             [backends.csv]\nplugin = \"csv\"\ndirectory = \"csv\"\n\
             [backends.sql]\nplugin = \"sql\"\ndatabase = \"sqlite:units.db\"\n\
             [backends.obj]\nplugin = \"s3\"\nbucket = {{ directory = \"bucket\" }}\n\
             params = {{ ci_size = \"1024\" }}\n\
             [routing]\nrules = [[\"UNIT.CSV.**\", \"csv\"], [\"UNIT.OBJ.**\", \"obj\"]]\ndefault = \"sql\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let names = ["UNIT.SQL.KSDS", "UNIT.CSV.KSDS", "UNIT.OBJ.KSDS"];
    let mut expected: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![BTreeMap::new(); names.len()];
    let mut in_doubt: Vec<Option<BTreeMap<Vec<u8>, Vec<u8>>>> = vec![None; names.len()];
    let mut committed = 0usize;
    let mut serial = 0u32;
    for round in 0..5u64 {
        let mut server = start_config(&config, &address).await;
        let conn = Connection::connect(&address).await.unwrap();
        for (i, name) in names.iter().enumerate() {
            if round == 0 {
                let mut spec = spec();
                spec.name = name.to_string();
                vsam_client::define(&conn, spec).await.unwrap();
            }
            let found = read_dataset(&address, name).await;
            if let Some(after) = in_doubt[i].take()
                && found == after
            {
                expected[i] = after;
            }
            assert_eq!(
                found, expected[i],
                "round {round}, {name}: the committed units, whole, and nothing else"
            );
        }
        let pid = server.child.id().to_string();
        let kill_after = Duration::from_millis(150 + round * 53);
        let killer = tokio::spawn(async move {
            tokio::time::sleep(kill_after).await;
            Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        });
        let mut tasks = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let address = address.clone();
            let name = name.to_string();
            let mut state = expected[i].clone();
            let first = serial + (i as u32) * 100_000;
            tasks.push(tokio::spawn(async move {
                let conn = Connection::connect(&address).await.unwrap();
                let ds = Dataset::open_with_access(
                    &conn,
                    &name,
                    OpenIntent::Update,
                    vsam_protocol::access::COMMIT,
                    1,
                )
                .await
                .unwrap();
                let mut units = 0usize;
                for n in 0.. {
                    // Every third unit is left without COMMIT and rolled
                    // back; the others commit.
                    let commit = n % 3 != 2;
                    match run_unit(&conn, &ds, &state, first + n, commit).await {
                        Ok(after) if commit => {
                            state = after;
                            units += 1;
                        }
                        Ok(_) => {
                            if vsam_client::rollback(&conn).await.is_err() {
                                return (state, None, units);
                            }
                        }
                        Err(doubt) => return (state, doubt, units),
                    }
                }
                unreachable!()
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let (state, doubt, units) = task.await.unwrap();
            expected[i] = state;
            in_doubt[i] = doubt;
            committed += units;
        }
        killer.await.unwrap();
        let _ = server.child.wait();
        serial += 1_000;
    }
    let server = start_config(&config, &address).await;
    for (i, name) in names.iter().enumerate() {
        let found = read_dataset(&server.address, name).await;
        if let Some(after) = in_doubt[i].take()
            && found == after
        {
            expected[i] = after;
        }
        assert_eq!(found, expected[i], "{name} at the end");
    }
    eprintln!("{committed} units committed");
    assert!(
        committed > 20,
        "only {committed} units were committed in all"
    );
}

/// The soft and hard limits of open files of process `pid`.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("Max open files in /proc/PID/limits");
    let mut numbers = line["Max open files".len()..].split_whitespace();
    (
        numbers.next().unwrap().to_string(),
        numbers.next().unwrap().to_string(),
    )
}

/// Starts vsamrd on a fresh data dir after the shell's `setup` (`sh -c
/// "SETUP && exec vsamrd ..."`), logging at `level` into the returned
/// file, and waits until it answers.
async fn start_after(setup: &str, level: &str) -> (Vsamrd, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("vsamrd.log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("{setup} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_vsamrd"))
        .args([
            "--listen",
            &address,
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("VSAMRD_LOG", level)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    until_up(&address).await;
    (Vsamrd { child, address }, log, dir)
}

/// Starts vsamrd after the shell's `setup` (see [`start_after`]), gives
/// its pid to `look`, kills it, and returns what it logged at `warn` with
/// what `look` found.
async fn started_briefly<T>(setup: &str, look: impl FnOnce(u32) -> T) -> (String, T) {
    let (vsamrd, log, _dir) = start_after(setup, "warn").await;
    let found = look(vsamrd.child.id());
    drop(vsamrd);
    (std::fs::read_to_string(&log).unwrap(), found)
}

/// vsamrd started as root says at start that it should not be (the
/// machine's account for the tests decides which side is seen here; the
/// unit test of `machine::root_warning` covers both).
#[tokio::test]
async fn vsamrd_warns_when_it_runs_as_root() {
    let (text, ()) = started_briefly("true", |_| ()).await;
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    assert_eq!(
        text.contains("vsamrd runs as root: a fault in it"),
        root,
        "{text}"
    );
}

/// vsamrd raises its soft limit of open files to the hard limit (a
/// service started with the usual soft 1,024 could not reach its own
/// max_connections), and says so when even the hard limit is too low for
/// the connections `[server]` admits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsamrd_takes_the_files_it_is_allowed_and_warns_when_they_are_too_few() {
    for (ulimit, warned) in [("ulimit -Sn 512", false), ("ulimit -n 512", true)] {
        let (text, (soft, hard)) = started_briefly(ulimit, open_files_limits).await;
        assert_eq!(soft, hard, "{ulimit}");
        assert_eq!(
            text.contains("vsamrd may open 512 files (RLIMIT_NOFILE), fewer than [server] max_connections (1024)"),
            warned,
            "{ulimit}: {text}"
        );
    }
}
