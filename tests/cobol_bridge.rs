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
];

/// The statuses the programs must produce between them on GnuCOBOL, so a
/// comparison that passes has compared them all.
const STATUSES: &[&str] = &[
    "00", "02", "05", "10", "21", "22", "23", "24", "35", "41", "42", "43", "44", "46", "47", "48",
    "49",
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
        let env = mapping(&address, "STD", &["STDPARTS", "STDSLOTS", "STDNAMES"]);
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

/// vsamrd goes away while a program has a file open: the next statement
/// gets status 30 with a message on stderr, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_gives_status_30_and_a_message_not_a_hang() {
    let server = start_with_plugin(SQL_WASM, "database = \"sqlite:cobol.db\"").await;
    let program = program("lostconn");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&program.bridged)
        .current_dir(dir.path())
        .env_remove("LD_LIBRARY_PATH")
        .envs(mapping(&server.address, "LOST", &["LOSTIX"]))
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
    assert!(seen.contains("READ BEFORE LOSS 00 0001FIRST"), "{seen}");
    server.server.stop().await;
    let stopped = Instant::now();
    child.stdin.take().unwrap().write_all(b"GO\n").unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let out = child.wait_with_output().unwrap();
        (rest, String::from_utf8_lossy(&out.stderr).to_string())
    });
    let (rest, stderr) = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the program finishes")
        .unwrap();
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
