//! A plugin that traps, panics, loops or exhausts its memory: that request
//! fails with R15=12 and a message naming what happened (a panic's place
//! and message), other clients carry on,
//! and the next request gets a fresh instance. A plugin cannot write
//! outside the bucket it is granted, reach files outside its directory or
//! the network, nor hand a program a record longer than the dataset's.

use std::path::Path;
use std::time::{Duration, Instant};
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_tests::{FAULTY_WASM, start_with_plugin};

fn spec(name: &str) -> DatasetSpec {
    vsam_tests::ksds(name, 4, 64, "ascii")
}

async fn fault(ds: &Dataset, key: &[u8]) -> String {
    let error = ds
        .put(0, RplOptions::direct(), 0, [key, b"-x"].concat())
        .await
        .unwrap_err();
    let vsam = error
        .vsam()
        .unwrap_or_else(|| panic!("expected a VSAM error, got {error}"));
    assert_eq!((vsam.r15(), vsam.fdbk()), (12, 0), "{error}");
    vsam.status.message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_loops_and_memory_bombs_fail_only_their_request() {
    let server =
        start_with_plugin(FAULTY_WASM, "call_timeout_ms = 300\nmemory_limit_mb = 64").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("SB.KSDS")).await.unwrap();
    let ds = Dataset::open(&conn, "SB.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"GOOD-1".to_vec())
        .await
        .unwrap();

    // A bystander keeps working on another connection throughout.
    let bystander = Connection::connect(&server.address).await.unwrap();
    let pinger = tokio::spawn(async move {
        let mut pings = 0u32;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(1500) {
            vsam_client::ping(&bystander)
                .await
                .expect("the bystander is never disturbed");
            pings += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pings
    });

    let trap = fault(&ds, b"TRAP").await;
    assert!(
        trap.contains("trapped: wasm trap: out of bounds memory access")
            && trap.contains("insert")
            && trap.contains("replaced"),
        "{trap}"
    );
    // A panic is a trap too, and the message says where and why.
    let panic = fault(&ds, b"PANC").await;
    assert!(
        panic.contains("trapped: panicked at tests/plugins/faulty/src/lib.rs:")
            && panic.contains(": injected panic in `insert`"),
        "{panic}"
    );

    let started = Instant::now();
    let timeout = fault(&ds, b"LOOP").await;
    assert!(
        timeout.contains("longer than the limit of 300 ms"),
        "{timeout}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the loop was stopped after {:?}",
        started.elapsed()
    );

    let bomb = fault(&ds, b"BOMB").await;
    assert!(
        bomb.contains("exceeded its memory limit of 64 MiB"),
        "{bomb}"
    );

    // Fresh instance: the call works again (the faulty plugin keeps records
    // in memory, so the replaced instance starts empty).
    ds.put(0, RplOptions::direct(), 0, b"GOOD-2".to_vec())
        .await
        .unwrap();
    let got = ds
        .get(0, RplOptions::direct(), b"GOOD", 0, 0, 1)
        .await
        .unwrap();
    assert_eq!(got[0].data, b"GOOD-2");
    assert!(pinger.await.unwrap() > 10);
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_is_not_a_backend_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x0d\0\x01\0").unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[plugins.p]\npath = \"{}\"\n[backends.b]\nplugin = \"p\"\n",
        dir.path().join("data").display(),
        bogus.display()
    );
    let config =
        vsam_host::config::Config::parse(&text, "<test>", std::path::Path::new(".")).unwrap();
    let error = vsam_host::Server::bind(&config)
        .await
        .err()
        .expect("a bogus plugin must not start");
    assert!(format!("{error:#}").contains("plugin p"), "{error:#}");
}

/// The plugin asks its bucket (a directory) for names that climb out of it:
/// every one is refused by the host, and only the plain name is stored,
/// inside the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_write_outside_its_bucket() {
    let server = start_with_plugin(FAULTY_WASM, "bucket = { directory = \"bucket\" }").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("SB.ESCAPE", 4, 4000, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "SB.ESCAPE", OpenIntent::Input, 1)
        .await
        .unwrap();
    let report = ds
        .get(0, RplOptions::direct(), b"ESCP", 0, 0, 1)
        .await
        .unwrap();
    let report = String::from_utf8(report[0].data.clone()).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    for line in &lines[..4] {
        assert!(
            line.contains("Failed(") && line.contains("segment"),
            "{line}"
        );
    }
    assert_eq!(lines[4], "inside => stored");
    let data = server.data_dir.path();
    assert_eq!(
        std::fs::read(data.join("bucket/inside")).unwrap(),
        b"escaped"
    );
    assert!(!data.join("outside").exists() && !data.parent().unwrap().join("outside").exists());
    server.server.stop().await;
}

/// What a plugin may reach besides its grants: nothing. Files outside its
/// directory (by `..`, by absolute path, through a symbolic link), the
/// host's environment, the network (connect, bind, name lookup); and a
/// record longer than the dataset allows never reaches a program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reaches_no_file_no_network_and_no_oversized_record() {
    let server = start_with_plugin(FAULTY_WASM, "").await;
    let data = server.data_dir.path();
    std::fs::create_dir_all(data.join("b")).unwrap();
    std::fs::write(data.join("b/inside.txt"), "inside").unwrap();
    std::fs::write(data.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(data, data.join("b/link")).unwrap();
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("SB.REACH", 9, 4000, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "SB.REACH", OpenIntent::Input, 1)
        .await
        .unwrap();
    let report =
        |record: Vec<vsam_client::Record>| String::from_utf8(record[0].data.clone()).unwrap();

    let files = report(
        ds.get(0, RplOptions::direct(), b"ESCF     ", 0, 0, 1)
            .await
            .unwrap(),
    );
    let outcome = |what: &str| {
        files
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{what} => ")))
            .unwrap_or_else(|| panic!("no line for {what}: {files}"))
            .to_string()
    };
    assert_eq!(outcome("read /data/inside.txt"), "ok inside", "{files}");
    for refused in [
        "read /data/../secret.txt",
        "read ../secret.txt",
        "read /data/link/secret.txt",
        "read /etc/passwd",
        "write /data/../escaped",
        "write /tmp/escaped",
    ] {
        assert!(
            outcome(refused).starts_with("refused"),
            "{refused}: {files}"
        );
    }
    assert!(outcome("list /").starts_with("refused"), "{files}");
    assert_eq!(outcome("environment"), "ok 0", "{files}");
    assert!(!data.join("escaped").exists() && !Path::new("/tmp/escaped").exists());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let key = format!("NETW{port:05}");
    let network = report(
        ds.get(0, RplOptions::direct(), key.as_bytes(), 0, 0, 1)
            .await
            .unwrap(),
    );
    // Lookups not permitted end as a resolver failure in wasmtime-wasi.
    assert_eq!(
        network.lines().collect::<Vec<_>>(),
        [
            "connect => refused access-denied",
            "bind => refused access-denied",
            "lookup => refused permanent-resolver-failure"
        ],
        "{network}"
    );
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "nothing connected"
    );

    let long = ds
        .get(0, RplOptions::direct(), b"LONG     ", 0, 0, 1)
        .await
        .expect_err("an oversized record is refused");
    let long = long.vsam().expect("a VSAM error").clone();
    assert_eq!((long.r15(), long.fdbk()), (12, 0), "{long}");
    let long = long.status.message;
    assert!(
        long.contains(
            "returned a record of 1048576 bytes, and the dataset's records are at most 4000"
        ),
        "{long}"
    );
    // The same instance and dataset go on serving.
    assert_eq!(
        report(
            ds.get(0, RplOptions::direct(), b"ESCF     ", 0, 0, 1)
                .await
                .unwrap()
        ),
        files
    );
    server.server.stop().await;
}
