//! Unmodified COBOL programs through the GnuCOBOL file handler bridge.
//!
//! Each program in `tests/cobol` runs twice: compiled plainly, on
//! GnuCOBOL's own file handler and local files; and compiled with
//! `-fcallfh=vsamextfh`, its files mapped to datasets of a vsamrd. What
//! the two print (every record and every FILE STATUS) must be identical, on
//! every backend: SQLite, CSV files, the object store, PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vsam_conformance::Postgres;
use vsam_tests::cobol::{self, differences, mapping, program, run};
use vsam_tests::{CSV_WASM, S3_WASM, SQL_WASM, TestServer, start, start_with_plugin};

/// Programs compared, with the ASSIGN names of their files.
const COMPARED: &[(&str, &[&str])] = &[
    ("ixverbs", &["CUSTIX", "SPAREIX", "ABSENTIX"]),
    ("ixalt", &["CUSTALT"]),
    ("ixseq", &["PARTS"]),
    ("rlverbs", &["SLOTS"]),
    ("sqverbs", &["JOURNAL"]),
    ("rewrite", &["LEDGER"]),
    ("locks", &["LOCKMAN", "LOCKAUTO"]),
    ("closeopt", &["SEQF", "IDXF"]),
    ("rwlen", &["VARSEQ", "VARIX"]),
    ("relkey", &["RELKEY"]),
];

/// The statuses the programs must produce between them on GnuCOBOL, so a
/// comparison that passes has compared them all.
const STATUSES: &[&str] = &[
    "00", "02", "05", "07", "10", "14", "21", "22", "23", "24", "35", "38", "41", "42", "43", "44",
    "46", "47", "48", "49",
];

/// Runs every compared program both ways against `server` and checks the
/// outputs are the same; returns the GnuCOBOL outputs.
async fn same_output(server: &TestServer, prefix: &str) -> Vec<String> {
    same_output_with(server, prefix, &[]).await
}

/// `same_output` with more bridge settings in the environment.
async fn same_output_with(
    server: &TestServer,
    prefix: &str,
    settings: &[(&str, &str)],
) -> Vec<String> {
    let address = server.address.clone();
    let prefix = prefix.to_string();
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut natives = Vec::new();
        for (name, assigns) in COMPARED {
            let program = program(name);
            let native_dir = tempfile::tempdir().unwrap();
            let bridge_dir = tempfile::tempdir().unwrap();
            let native = run(&program.native, native_dir.path(), &[]);
            assert!(native.status.success(), "{name} on GnuCOBOL failed");
            let mut env = mapping(&address, &prefix, assigns);
            // GnuCOBOL's own handler answers 00 where the standard says 02
            // (see the_bridge_follows_the_standard...).
            env.push(("VSAMFH_DUPLICATE_READ_STATUS".into(), "00".into()));
            env.extend(settings.iter().cloned());
            let bridged = run(&program.bridged, bridge_dir.path(), &env);
            let native_out = String::from_utf8_lossy(&native.stdout).to_string();
            let bridged_out = String::from_utf8_lossy(&bridged.stdout).to_string();
            assert!(
                native_out == bridged_out,
                "{name}: the outputs differ\n{}\nbridge stderr:\n{}",
                differences(&native_out, &bridged_out),
                String::from_utf8_lossy(&bridged.stderr)
            );
            let local: Vec<_> = std::fs::read_dir(bridge_dir.path()).unwrap().collect();
            assert!(
                local.is_empty(),
                "{name}: the bridged run wrote local files: {local:?}"
            );
            natives.push(native_out);
        }
        natives
    })
    .await
    .unwrap()
}

fn statuses_in(outputs: &[String]) -> std::collections::BTreeSet<String> {
    outputs
        .iter()
        .flat_map(|out| out.lines())
        .filter(|line| !line.starts_with("  "))
        .filter_map(|line| line.rsplit(' ').next())
        .filter(|word| word.len() == 2 && word.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_print_the_same_on_gnucobol_and_through_vsamrd_on_sqlite() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let natives = same_output(&server, "SQLITE").await;
    let seen = statuses_in(&natives);
    let missing: Vec<_> = STATUSES.iter().filter(|s| !seen.contains(**s)).collect();
    assert!(
        missing.is_empty(),
        "the programs never produce {missing:?}; seen {seen:?}"
    );
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_print_the_same_on_gnucobol_and_through_vsamrd_on_csv_files() {
    let server = start_with_plugin(CSV_WASM, "").await;
    same_output(&server, "CSV").await;
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_print_the_same_on_gnucobol_and_through_vsamrd_on_the_object_store() {
    let server = start(&format!(
        "[plugins.s3]\npath = \"{S3_WASM}\"\n[backends.b]\nplugin = \"s3\"\nbucket = {{ directory = \"bucket\" }}\nparams = {{ ci_size = \"512\" }}\n[routing]\ndefault = \"b\"\n"
    ))
    .await;
    same_output(&server, "OBJ").await;
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_print_the_same_on_gnucobol_and_through_vsamrd_on_postgresql() {
    let postgres = Postgres::start().unwrap();
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    same_output(&server, "PG").await;
    server.server.stop().await;
}

/// Where GnuCOBOL 3.1.2's own handler departs from the standard, the bridge
/// gives what the standard and VSAM give (see `cobol/standard.cbl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_follows_the_standard_where_gnucobol_departs_from_it() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let address = server.address.clone();
    let (bridged, native) = tokio::task::spawn_blocking(move || {
        let program = program("standard");
        let dir = tempfile::tempdir().unwrap();
        let env = mapping(
            &address,
            "STD",
            &["STDPARTS", "STDSLOTS", "STDNAMES", "STDLOG", "STDNOTES"],
        );
        let bridged = run(&program.bridged, dir.path(), &env);
        let native = run(&program.native, dir.path(), &[]);
        (bridged, native)
    })
    .await
    .unwrap();
    let expected =
        std::fs::read_to_string(Path::new(cobol::SOURCES).join("standard.expected")).unwrap();
    let bridged = String::from_utf8_lossy(&bridged.stdout);
    assert!(bridged == expected, "{}", differences(&expected, &bridged));
    // The departures are real: GnuCOBOL's own handler prints otherwise.
    assert_ne!(String::from_utf8_lossy(&native.stdout), expected);
    server.server.stop().await;
}

/// Compiled with the bridge but not mapped, files stay on GnuCOBOL's own
/// handler; mapped and unmapped files mix in one program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_files_go_on_to_gnucobol_and_mix_with_mapped_ones() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let address = server.address.clone();
    tokio::task::spawn_blocking(move || {
        for name in ["ixseq", "rlverbs", "sqverbs"] {
            let program = program(name);
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let native = run(&program.native, a.path(), &[]);
            let passed_on = run(&program.bridged, b.path(), &[]);
            assert_eq!(
                String::from_utf8_lossy(&native.stdout),
                String::from_utf8_lossy(&passed_on.stdout),
                "{name} with no mapping"
            );
            assert!(
                std::fs::read_dir(b.path()).unwrap().next().is_some(),
                "{name}: files are local"
            );
        }
        // CUSTIX mapped, the optional and the absent file local.
        let program = program("ixverbs");
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let native = run(&program.native, a.path(), &[]);
        let mixed = run(
            &program.bridged,
            b.path(),
            &mapping(&address, "MIX", &["CUSTIX"]),
        );
        let (native, mixed) = (
            String::from_utf8_lossy(&native.stdout).to_string(),
            String::from_utf8_lossy(&mixed.stdout).to_string(),
        );
        assert!(native == mixed, "{}", differences(&native, &mixed));
        assert!(!b.path().join("CUSTIX").exists(), "CUSTIX went to vsamrd");
    })
    .await
    .unwrap();
    server.server.stop().await;
}

/// A misspelt variable of the bridge (`VSAMFH_SEVER`) stops every OPEN
/// with status 30 and a message naming the variable meant, rather than
/// leaving the program on the default server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_variable_of_the_bridge_stops_the_open_naming_the_one_meant() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let address = server.address.clone();
    let (stdout, stderr) = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut env = mapping(&address, "TYPO", &["CUSTIX"]);
        env.retain(|(var, _)| var != "VSAMFH_SERVER");
        env.push(("VSAMFH_SEVER".into(), address));
        let ran = run(&program("ixverbs").bridged, dir.path(), &env);
        (
            String::from_utf8_lossy(&ran.stdout).to_string(),
            String::from_utf8_lossy(&ran.stderr).to_string(),
        )
    })
    .await
    .unwrap();
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("OPEN OUTPUT ") && line.trim_end().ends_with(" 30")),
        "{stdout}"
    );
    assert!(
        stderr.contains("vsamextfh: OPEN CUSTIX: the bridge's configuration is wrong: VSAMFH_SEVER: the bridge reads no such variable (meant VSAMFH_SERVER?)"),
        "{stderr}"
    );
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    assert!(
        vsam_client::list(&conn, "TYPO.**")
            .await
            .unwrap()
            .is_empty(),
        "nothing was defined"
    );
    server.server.stop().await;
}

/// Starts bridged `name` with `env` in `dir`: a program that stops at a
/// line `WAITING` for a line on stdin. The child, its output to come, and
/// what it printed up to there.
fn until_waiting(
    name: &str,
    env: Vec<(String, String)>,
    dir: &Path,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let program = program(name);
    let mut child = Command::new(&program.bridged)
        .current_dir(dir)
        .env_remove("LD_LIBRARY_PATH")
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("WAITING") {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "the program ended early: {seen}"
        );
        seen.push_str(&line);
    }
    (child, stdout, seen)
}

/// Lets a program [`until_waiting`] started go on: the rest of its output
/// and its stderr, within 60 s.
async fn go_on(
    mut child: std::process::Child,
    mut stdout: BufReader<std::process::ChildStdout>,
) -> (String, String) {
    child.stdin.take().unwrap().write_all(b"GO\n").unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        (rest, String::from_utf8_lossy(&out.stderr).to_string())
    });
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the program finishes")
        .unwrap()
}

/// vsamrd goes away while a program has a file open: the next statement
/// gets status 30 with a message on stderr, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_gives_status_30_and_a_message_not_a_hang() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let dir = tempfile::tempdir().unwrap();
    let (child, stdout, seen) = until_waiting(
        "lostconn",
        mapping(&server.address, "LOST", &["LOSTIX"]),
        dir.path(),
    );
    assert!(seen.contains("READ BEFORE LOSS 00 0001FIRST"), "{seen}");
    server.server.stop().await;
    let stopped = Instant::now();
    let (rest, stderr) = go_on(child, stdout).await;
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "took {:?}",
        stopped.elapsed()
    );
    assert!(rest.contains("READ AFTER LOSS 30"), "{rest}");
    assert!(rest.contains("OPEN AFTER LOSS 30"), "{rest}");
    assert!(stderr.contains("set VSAMFH_SERVER"), "{stderr}");
    assert!(
        stderr
            .contains("vsamextfh: file LOSTIX (LOST.LOSTIX) READ: the connection to vsamrd failed"),
        "{stderr}"
    );
}

/// A program given two servers of a fleet (`VSAMFH_SERVER=a,b`) goes on
/// through the second when the first stops mid-browse: the browse
/// continues where it was, in order, none skipped or repeated, across the
/// bridge's read-ahead; a write after the loss is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_given_a_fleet_goes_on_through_the_next_server() {
    let postgres = Postgres::start().unwrap();
    let a = vsam_tests::fleet_server(&postgres.url).await;
    let b = vsam_tests::fleet_server(&postgres.url).await;
    let servers = format!("{},{}", a.address, b.address);
    let dir = tempfile::tempdir().unwrap();
    let (child, stdout, seen) = until_waiting(
        "failover",
        mapping(&servers, "FLEET", &["FAILIX"]),
        dir.path(),
    );
    assert!(seen.contains("READ BEFORE LOSS 00 0003BEFORE"), "{seen}");
    a.server.stop().await;
    let (rest, stderr) = go_on(child, stdout).await;
    assert!(
        rest.contains("READ AFTER LOSS 0597 LAST 0600"),
        "{rest}\n{stderr}"
    );
    assert!(rest.contains("END AFTER LOSS 10"), "{rest}");
    assert!(rest.contains("WRITE AFTER LOSS 00"), "{rest}\n{stderr}");
    assert!(rest.contains("READ BACK 00 0601AFTER"), "{rest}");
    b.server.stop().await;
}

/// The programs run unchanged over TLS with a token; a program whose token
/// only grants read access gets file status 37 on OPEN OUTPUT and reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_run_over_tls_with_a_token_and_a_refused_open_is_status_37() {
    let pki = vsam_tests::pki::make("batch.clients.test");
    let token = |name: &str, token: &str| {
        let path = pki.dir.path().join(format!("{name}.token"));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        path.display().to_string()
    };
    let (batch, viewer) = (
        token("batch", "batch-secret"),
        token("viewer", "viewer-secret"),
    );
    let server = start(&format!(
        r#"
[plugins.p]
path = "{SQL_WASM}"
[backends.b]
plugin = "p"
database = "sqlite:cobol.db"
[routing]
default = "b"
[tls]
certificate = "{}"
key = "{}"
plain = "refuse"
[[clients]]
name = "batch"
token_sha256 = "{}"
[[clients]]
name = "viewer"
token_sha256 = "{}"
[[access]]
clients = ["batch"]
datasets = "TLS.**"
level = "alter"
[[access]]
clients = ["viewer"]
datasets = "TLS.**"
level = "read"
"#,
        pki.server_cert.display(),
        pki.server_key.display(),
        vsam_tests::sha256_hex("batch-secret"),
        vsam_tests::sha256_hex("viewer-secret"),
    ))
    .await;
    let ca = pki.ca.display().to_string();
    same_output_with(
        &server,
        "TLS",
        &[("VSAMFH_TLS_CA", &ca), ("VSAMFH_TOKEN_FILE", &batch)],
    )
    .await;
    let address = server.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut env = mapping(&address, "TLS", &["JOURNAL"]);
        env.push(("VSAMFH_TLS_CA".into(), ca));
        env.push(("VSAMFH_TOKEN_FILE".into(), viewer));
        run(&program("sqverbs").bridged, dir.path(), &env)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let status_of = |step: &str| {
        stdout
            .lines()
            .find(|line| {
                line.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .starts_with(step)
            })
            .and_then(|line| line.split_whitespace().last())
            .map(str::to_string)
    };
    assert_eq!(status_of("OPEN OUTPUT").as_deref(), Some("37"), "{stdout}");
    assert_eq!(status_of("OPEN INPUT").as_deref(), Some("00"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not authorized"), "{stderr}");
    server.server.stop().await;
}

/// Two programs update the same records while a third client holds one of
/// them: a REWRITE that meets the held record gets file status 51 (record
/// locked, as GnuCOBOL's own handler answers; a program waits and tries
/// again), never 30 or 9x, and once the record is released both finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_updating_the_same_records_see_status_51_and_carry_on() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let program = program("contend");
    let dir = tempfile::tempdir().unwrap();
    let env = |mode: &str, name: &str| {
        let mut env = mapping(&server.address, "CONT", &["CONTIX"]);
        env.push(("CONTEND_MODE".into(), mode.into()));
        env.push(("CONTEND_NAME".into(), name.into()));
        env
    };
    let loaded = run(&program.bridged, dir.path(), &env("LOAD", ""));
    assert!(
        String::from_utf8_lossy(&loaded.stdout).contains("LOADED 00"),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    // Another client takes record 0003 for update and keeps it a while.
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    let holder =
        vsam_client::Dataset::open(&conn, "CONT.CONTIX", vsam_client::OpenIntent::Update, 1)
            .await
            .unwrap();
    holder
        .reading(vsam_client::RplOptions::direct().update())
        .key(b"0003")
        .records()
        .await
        .unwrap();
    let programs: Vec<_> = ["FIRST", "SECOND"]
        .into_iter()
        .map(|name| {
            let (binary, dir, env) = (
                program.bridged.clone(),
                dir.path().to_path_buf(),
                env("UPDATE", name),
            );
            tokio::task::spawn_blocking(move || run(&binary, &dir, &env))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder
        .put(
            0,
            vsam_client::RplOptions::direct().update(),
            0,
            b"0003HOLDER          ".to_vec(),
        )
        .await
        .unwrap();
    for (name, program) in ["FIRST", "SECOND"].into_iter().zip(programs) {
        let output = program.await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("DONE 00"), "{name}: {stdout}");
        let locked: u32 = stdout
            .lines()
            .find_map(|line| line.strip_prefix("LOCKED "))
            .unwrap_or_else(|| panic!("{name}: {stdout}"))
            .trim()
            .parse()
            .unwrap();
        assert!(locked > 0, "{name} never met the held record: {stdout}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("status 30"), "{name}: {stderr}");
    }
    // Every record ends as one of the programs wrote it.
    let all = holder
        .reading(vsam_client::RplOptions::direct())
        .key(b"0001")
        .records()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&all[0].data).to_string();
    assert!(text.contains("FIRST") || text.contains("SECOND"), "{text}");
    server.server.stop().await;
}

/// COMMIT and ROLLBACK statements. In sync durability (the default) the
/// bridge behaves as GnuCOBOL's own handler, whose ROLLBACK undoes nothing.
/// In commit durability a ROLLBACK undoes every WRITE, REWRITE and DELETE
/// since the last COMMIT, with the same FILE STATUS all along, and CLOSE
/// commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_rollback_statements_end_units_of_work() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let program = program("units");
    let address = server.address.clone();
    let (native, sync, commit, commit_stderr) = tokio::task::spawn_blocking(move || {
        let run_in = |binary: &Path, env: &[(String, String)]| {
            let dir = tempfile::tempdir().unwrap();
            let output = run(binary, dir.path(), env);
            (
                String::from_utf8_lossy(&output.stdout).to_string(),
                String::from_utf8_lossy(&output.stderr).to_string(),
            )
        };
        let (native, _) = run_in(&program.native, &[]);
        let (sync, _) = run_in(&program.bridged, &mapping(&address, "SYNC", &["ACCTS"]));
        let mut env = mapping(&address, "UNIT", &["ACCTS"]);
        env.push(("VSAMFH_DURABILITY".into(), "commit".into()));
        let (commit, commit_stderr) = run_in(&program.bridged, &env);
        (native, sync, commit, commit_stderr)
    })
    .await
    .unwrap();
    assert!(
        native == sync,
        "sync durability is GnuCOBOL's behaviour:\n{}",
        differences(&native, &sync)
    );
    let expected = native.replace(
        "HAS 0001 ROLLED BACK \nHAS 0003 ROLLED BACK \n",
        "HAS 0001 COMMITTED   \nHAS 0002 COMMITTED   \n",
    );
    assert_ne!(expected, native, "the program's output changed: {native}");
    assert!(
        commit == expected,
        "commit durability rolls back:\n{}\nbridge stderr:\n{commit_stderr}",
        differences(&expected, &commit)
    );
    server.server.stop().await;
}

/// The compared programs print exactly what they print on GnuCOBOL also in
/// commit durability with a checkpoint every few changes: units of work
/// change when changes become durable, never a status or a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_print_the_same_in_commit_durability() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    same_output_with(
        &server,
        "DUR",
        &[("VSAMFH_DURABILITY", "commit"), ("VSAMFH_CHECKPOINT", "7")],
    )
    .await;
    server.server.stop().await;
}

/// In commit durability a sequential REWRITE is checked at once and sent
/// with the others gathered before the next request to the server. When
/// the server refuses one (another connection's unit holds the record),
/// the statement that sent it gets the status (51), and the bridge rolls
/// the whole unit back: the REWRITEs before and after it, told 00, are not
/// kept half. Once the record is free, the same run changes every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deferred_rewrite_rolls_the_unit_back() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let program = program("deferred");
    let dir = tempfile::tempdir().unwrap();
    let env = |mode: &str| {
        let mut env = mapping(&server.address, "DEFER", &["LEDGER"]);
        env.push(("DEFERRED_MODE".into(), mode.into()));
        env.push(("VSAMFH_DURABILITY".into(), "commit".into()));
        env
    };
    let native_dir = tempfile::tempdir().unwrap();
    let native_env = [("DEFERRED_MODE".to_string(), "LOAD".to_string())];
    run(&program.native, native_dir.path(), &native_env);
    let native = run(&program.native, native_dir.path(), &[]);
    let native = String::from_utf8_lossy(&native.stdout).to_string();
    assert_eq!(native, "READ 000700 10\nCLOSE 00\nCHANGED 000070\n");
    let loaded = run(&program.bridged, dir.path(), &env("LOAD"));
    assert_eq!(String::from_utf8_lossy(&loaded.stdout), "LOADED 00\n");

    // Another connection's unit of work changes record 350 and holds it.
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    let holder = vsam_client::Dataset::open_with_access(
        &conn,
        "DEFER.LEDGER",
        vsam_client::OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    holder.read_for_update(b"000350").await.unwrap();
    holder
        .put(
            0,
            vsam_client::RplOptions::direct().update(),
            0,
            b"000350000000001".to_vec(),
        )
        .await
        .unwrap();
    let (binary, path, held_env) = (
        program.bridged.clone(),
        dir.path().to_path_buf(),
        env("UPDATE"),
    );
    let refused = tokio::task::spawn_blocking(move || run(&binary, &path, &held_env))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stdout, "READ 000700 51\nCLOSE 00\nCHANGED 000000\n",
        "the refusal is the status of the READ that sent it, and nothing of the unit is kept; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("REWRITE") && stderr.contains("'000350'"),
        "stderr names the refused REWRITE and its record: {stderr}"
    );
    assert!(
        stderr.contains("the unit is rolled back"),
        "stderr says the unit was rolled back: {stderr}"
    );

    vsam_client::commit(&conn).await.unwrap();
    holder.close().await.unwrap();
    let (binary, path, free_env) = (
        program.bridged.clone(),
        dir.path().to_path_buf(),
        env("UPDATE"),
    );
    let again = tokio::task::spawn_blocking(move || run(&binary, &path, &free_env))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        native,
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    server.server.stop().await;
}

/// Waits until `held` says the record is held (true) or free (false),
/// asking every 20 ms for up to 20 s.
async fn until_held(ds: &vsam_client::Dataset, key: &[u8], held: bool) {
    for _ in 0..1000 {
        match ds
            .reading(vsam_client::RplOptions::direct().update())
            .key(key)
            .on(1)
            .records()
            .await
        {
            Ok(_) => {
                ds.endreq(1).await.unwrap();
                if !held {
                    return;
                }
            }
            Err(e)
                if e.vsam()
                    .is_some_and(|v| v.status.fdbk == vsam_protocol::fdbk::EXCLUSIVE_CONTROL.0) =>
            {
                if held {
                    return;
                }
            }
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the record never became {}",
        if held { "held" } else { "free" }
    );
}

/// READ WITH LOCK (or any READ under LOCK MODE AUTOMATIC) of a file open
/// I-O holds the record against other programs and clients until UNLOCK,
/// the next locking READ, its REWRITE or DELETE, COMMIT or CLOSE; a
/// program that meets a held record gets status 51, and READ WITH NO LOCK
/// still reads it. GnuCOBOL 3.1's own handler does not lock records
/// between programs, so this is the bridge alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_locks_hold_between_programs_until_unlock_or_commit() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let program = program("lockwait");
    let dir = tempfile::tempdir().unwrap();
    let env = |mode: &str| {
        let mut env = mapping(&server.address, "WAIT", &["WAITMAN"]);
        env.push((
            "VSAMFH_FILE_WAITAUTO".to_string(),
            "WAIT.WAITMAN".to_string(),
        ));
        env.push(("LOCKWAIT_MODE".into(), mode.into()));
        env
    };
    let loaded = run(&program.bridged, dir.path(), &env("LOAD"));
    assert_eq!(String::from_utf8_lossy(&loaded.stdout), "LOADED 00\n");
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    let client =
        vsam_client::Dataset::open(&conn, "WAIT.WAITMAN", vsam_client::OpenIntent::Update, 2)
            .await
            .unwrap();

    // A client holds record 0002: a program's locking READs get 51.
    client.read_for_update(b"0002").await.unwrap();
    let tried = run(&program.bridged, dir.path(), &env("TRY"));
    assert_eq!(
        String::from_utf8_lossy(&tried.stdout),
        "TRY WITH LOCK 51\nTRY NO LOCK 0002LOADED           00\nTRY AUTOMATIC 51\nTRY AUTOMATIC 0003LOADED           00\n",
        "{}",
        String::from_utf8_lossy(&tried.stderr)
    );
    client.endreq(0).await.unwrap();

    // A program holds it: the client is refused until UNLOCK, and again
    // from the next READ WITH LOCK until COMMIT.
    let (binary, path, hold_env) = (
        program.bridged.clone(),
        dir.path().to_path_buf(),
        env("HOLD"),
    );
    let holder = tokio::task::spawn_blocking(move || run(&binary, &path, &hold_env));
    until_held(&client, b"0002", true).await;
    assert_eq!(
        client.read(b"0002").await.unwrap().data,
        b"0002LOADED          ",
        "a plain read is not refused"
    );
    std::fs::write(dir.path().join("GO1"), b"").unwrap();
    until_held(&client, b"0002", false).await;
    std::fs::write(dir.path().join("GO2"), b"").unwrap();
    until_held(&client, b"0002", true).await;
    std::fs::write(dir.path().join("GO3"), b"").unwrap();
    until_held(&client, b"0002", false).await;
    std::fs::write(dir.path().join("GO4"), b"").unwrap();
    let held = holder.await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&held.stdout),
        "HOLD LOCKED 00\nHOLD UNLOCKED 00\nHOLD LOCKED AGAIN 00\nHOLD COMMITTED\n",
        "{}",
        String::from_utf8_lossy(&held.stderr)
    );
    server.server.stop().await;
}

/// Every OPEN mode of a file present or missing, OPTIONAL or not, with the
/// bridge allowed to define datasets or not, against GnuCOBOL's own
/// handler (`cobol/openmx.cbl`). With definitions allowed the statuses are
/// GnuCOBOL's: a missing file is created by OPEN OUTPUT, and by OPEN I-O
/// or EXTEND only if OPTIONAL (05); otherwise it answers 35. Without them
/// a file GnuCOBOL would create answers 35 instead (the dataset must be
/// defined first), and a READ of it 47.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_matrix_matches_gnucobol() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let address = server.address.clone();
    tokio::task::spawn_blocking(move || {
        let program = program("openmx");
        let mut case = 0;
        for mode in ["INPUT", "OUTPUT", "IO", "EXTEND"] {
            for present in [false, true] {
                let native_dir = tempfile::tempdir().unwrap();
                let mode_env = |mode: &str| vec![("OPEN_MODE".to_string(), mode.to_string())];
                if present {
                    run(&program.native, native_dir.path(), &mode_env("OUTPUT"));
                }
                let native = run(&program.native, native_dir.path(), &mode_env(mode));
                let native = String::from_utf8_lossy(&native.stdout).to_string();
                for define in [true, false] {
                    case += 1;
                    let prefix = format!("OPEN{case}");
                    let bridge_dir = tempfile::tempdir().unwrap();
                    let env = |mode: &str, define: bool| {
                        let mut env = mapping(&address, &prefix, &["PLAINF", "OPTF"]);
                        env.retain(|(name, _)| name != "VSAMFH_DEFINE");
                        env.push(("VSAMFH_DEFINE".into(), u8::from(define).to_string()));
                        env.extend(mode_env(mode));
                        env
                    };
                    if present {
                        run(&program.bridged, bridge_dir.path(), &env("OUTPUT", true));
                    }
                    let bridged = run(&program.bridged, bridge_dir.path(), &env(mode, define));
                    let bridged_out = String::from_utf8_lossy(&bridged.stdout).to_string();
                    let created = |optional: bool| {
                        !present && (mode == "OUTPUT" || (optional && mode != "INPUT"))
                    };
                    let expected: String = native
                        .lines()
                        .map(|line| {
                            let optional = line.starts_with("OPTIONAL");
                            let reads = line.contains(" READ ");
                            match (define || !created(optional), reads) {
                                (true, _) => line.to_string(),
                                (false, false) => format!("{} 35", &line[..line.len() - 3]),
                                (false, true) => format!("{} 47", &line[..line.len() - 3]),
                            }
                        })
                        .map(|line| line + "\n")
                        .collect();
                    assert!(
                        bridged_out == expected,
                        "OPEN {mode}, files present: {present}, define: {define}\n{}\nbridge stderr:\n{}",
                        differences(&expected, &bridged_out),
                        String::from_utf8_lossy(&bridged.stderr)
                    );
                }
            }
        }
    })
    .await
    .unwrap();
    server.server.stop().await;
}

/// A program whose files are named by paths and by environment variables
/// (`cobol/rulemap.cbl`: a relative path, a path under `$APPDIR`, a name
/// GnuCOBOL looks up in `DD_CUSTFILE`), mapped by rules in `VSAMFH_MAP`
/// instead of file by file: it prints what it prints on GnuCOBOL, its
/// files become the datasets the rules name, nothing is written locally,
/// and `VSAMFH_EXPLAIN=1` says at each OPEN where each file went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_named_by_paths_and_variables_are_mapped_by_rules() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let address = server.address.clone();
    let stderr = tokio::task::spawn_blocking(move || {
        let program = program("rulemap");
        let layout = |dir: &Path| {
            for sub in ["data", "app", "master"] {
                std::fs::create_dir_all(dir.join(sub)).unwrap();
            }
            vec![
                ("APPDIR".to_string(), dir.join("app").display().to_string()),
                (
                    "DD_CUSTFILE".to_string(),
                    dir.join("master/cust-master.dat").display().to_string(),
                ),
            ]
        };
        let native_dir = tempfile::tempdir().unwrap();
        let native = run(&program.native, native_dir.path(), &layout(native_dir.path()));
        let bridge_dir = tempfile::tempdir().unwrap();
        let mut env = layout(bridge_dir.path());
        // A fleet's list: the first address answers nothing.
        let servers = format!("127.0.0.1:1,{address}");
        for (name, value) in [
            ("VSAMFH_SERVER", servers.as_str()),
            ("VSAMFH_DEFINE", "1"),
            ("VSAMFH_EXPLAIN", "1"),
            (
                "VSAMFH_MAP",
                "data/*.dat=RULE.{stem}; path:**/app/*.dat=RULE.{stem}; path:**/master/*.dat=RULE.MASTER",
            ),
        ] {
            env.push((name.to_string(), value.to_string()));
        }
        let bridged = run(&program.bridged, bridge_dir.path(), &env);
        let (native, bridged_out) = (
            String::from_utf8_lossy(&native.stdout).to_string(),
            String::from_utf8_lossy(&bridged.stdout).to_string(),
        );
        let stderr = String::from_utf8_lossy(&bridged.stderr).to_string();
        assert!(
            native == bridged_out,
            "{}\nbridge stderr:\n{stderr}",
            differences(&native, &bridged_out)
        );
        for sub in ["data", "app", "master"] {
            let local: Vec<_> = std::fs::read_dir(bridge_dir.path().join(sub))
                .unwrap()
                .collect();
            assert!(local.is_empty(), "{sub}: local files {local:?}");
        }
        stderr
    })
    .await
    .unwrap();
    for line in [
        "file data/cust.dat (data/cust.dat): dataset RULE.CUST by the map rule assign = \"data/*.dat\"",
        "/app/orders.dat): dataset RULE.ORDERS by the map rule path = \"**/app/*.dat\"",
        "/master/cust-master.dat): dataset RULE.MASTER by the map rule path = \"**/master/*.dat\"",
    ] {
        assert!(stderr.contains(line), "no {line:?} in:\n{stderr}");
    }
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    for (name, organization) in [
        ("RULE.CUST", vsam_client::Organization::Ksds),
        ("RULE.ORDERS", vsam_client::Organization::Esds),
        ("RULE.MASTER", vsam_client::Organization::Rrds),
    ] {
        let spec = vsam_client::info(&conn, name).await.unwrap();
        assert_eq!(spec.organization, organization, "{name}");
    }
    server.server.stop().await;
}

/// A relative file whose records vary in length is a VRRDS: a program
/// that creates it and writes, reads (sequential, random and dynamic
/// access, START), rewrites and deletes records, and a later program that
/// reads what it left, print what they print on GnuCOBOL's own files,
/// every record at its own length and the record count included
/// (`cobol/vrel.cbl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variable_relative_files_are_vrrds_and_agree_with_gnucobol() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let address = server.address.clone();
    tokio::task::spawn_blocking(move || {
        let program = program("vrel");
        let native_dir = tempfile::tempdir().unwrap();
        let bridge_dir = tempfile::tempdir().unwrap();
        for mode in ["CREATE", "READ"] {
            let mode_env = ("VREL_MODE".to_string(), mode.to_string());
            let native = run(
                &program.native,
                native_dir.path(),
                std::slice::from_ref(&mode_env),
            );
            let mut env = mapping(&address, "VREL", &["VRELF"]);
            env.push(mode_env);
            let bridged = run(&program.bridged, bridge_dir.path(), &env);
            let (native, bridged_out) = (
                String::from_utf8_lossy(&native.stdout).to_string(),
                String::from_utf8_lossy(&bridged.stdout).to_string(),
            );
            assert!(
                native == bridged_out,
                "{mode}: {}\nbridge stderr:\n{}",
                differences(&native, &bridged_out),
                String::from_utf8_lossy(&bridged.stderr)
            );
        }
    })
    .await
    .unwrap();
    let conn = vsam_client::Connection::connect(&server.address)
        .await
        .unwrap();
    let spec = vsam_client::info(&conn, "VREL.VRELF").await.unwrap();
    assert_eq!(
        (spec.organization, spec.min_record, spec.max_record),
        (vsam_client::Organization::Vrrds, 5, 40)
    );
    server.server.stop().await;
}
