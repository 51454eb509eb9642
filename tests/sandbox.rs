//! A plugin that traps, panics, loops or exhausts its memory: that request
//! fails with R15=12 and a message naming what happened (a panic's place
//! and message), other clients carry on,
//! and the next request gets a fresh instance. A plugin cannot write
//! outside the bucket it is granted, reach files outside its directory or
//! the network, nor hand a program a record longer than the dataset's.

use std::path::Path;
use std::time::{Duration, Instant};
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_conformance::SeaweedFs;
use vsam_tests::logged::LoggedServer;
use vsam_tests::relay::Relay;
use vsam_tests::{FAULTY_WASM, start_with_plugin};

fn spec(name: &str) -> DatasetSpec {
    vsam_tests::ksds(name, 4, 64, "ascii")
}

/// The message of a request that failed with R15=12.
fn physical_error(error: vsam_client::ClientError) -> String {
    let vsam = error
        .vsam()
        .unwrap_or_else(|| panic!("expected a VSAM error, got {error}"));
    assert_eq!((vsam.r15(), vsam.fdbk()), (12, 0), "{error}");
    vsam.status.message.clone()
}

async fn fault(ds: &Dataset, key: &[u8]) -> String {
    physical_error(
        ds.put(0, RplOptions::direct(), 0, [key, b"-x"].concat())
            .await
            .unwrap_err(),
    )
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
        bomb.contains("exceeded its memory limit of 64 MiB (`memory_limit_mb` of [backends."),
        "{bomb}"
    );

    // Fresh instance: the call works again (the faulty plugin keeps records
    // in memory, so the replaced instance starts empty).
    ds.put(0, RplOptions::direct(), 0, b"GOOD-2".to_vec())
        .await
        .unwrap();
    let got = ds.read(b"GOOD").await.unwrap();
    assert_eq!(got.data, b"GOOD-2");
    assert!(pinger.await.unwrap() > 10);
    server.server.stop().await;
}

/// Plugin calls run on the runtime's threads: a plugin computing for its
/// whole limit yields at every epoch tick, so even with one runtime thread
/// the other connections are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_looping_plugin_does_not_hold_the_runtime_thread() {
    let server =
        start_with_plugin(FAULTY_WASM, "call_timeout_ms = 500\nmemory_limit_mb = 64").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("SB.SPIN")).await.unwrap();
    let ds = Dataset::open(&conn, "SB.SPIN", OpenIntent::Update, 1)
        .await
        .unwrap();
    let bystander = Connection::connect(&server.address).await.unwrap();
    let looping = tokio::spawn(async move { fault(&ds, b"LOOP").await });
    // The loop has started once the first pings wait behind nothing.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut slowest = Duration::ZERO;
    let mut pings = 0;
    let started = Instant::now();
    while !looping.is_finished() {
        let sent = Instant::now();
        vsam_client::ping(&bystander).await.unwrap();
        slowest = slowest.max(sent.elapsed());
        pings += 1;
    }
    let timeout = looping.await.unwrap();
    assert!(
        timeout.contains("longer than the limit of 500 ms"),
        "{timeout}"
    );
    assert!(
        started.elapsed() > Duration::from_millis(300) && pings > 10,
        "pings went on during the loop: {pings} in {:?}",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(100),
        "a ping waited {slowest:?} behind the looping plugin"
    );
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
        .reading(RplOptions::direct())
        .key(b"ESCP")
        .records()
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
        ds.reading(RplOptions::direct())
            .key(b"ESCF     ")
            .records()
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
    assert_eq!(
        outcome("environment"),
        "ok VSAMRD_BOOT VSAMRD_BACKEND VSAMRD_ROLE",
        "the host's environment stays outside; only this start's boot, the backend's name and the instance's role are given: {files}"
    );
    assert!(!data.join("escaped").exists() && !Path::new("/tmp/escaped").exists());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let key = format!("NETW{port:05}");
    let network = report(
        ds.reading(RplOptions::direct())
            .key(key.as_bytes())
            .records()
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
        .reading(RplOptions::direct())
        .key(b"LONG     ")
        .records()
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
            ds.reading(RplOptions::direct())
                .key(b"ESCF     ")
                .records()
                .await
                .unwrap()
        ),
        files
    );
    server.server.stop().await;
}

/// The message of a GET that failed with R15=12.
async fn get_fault(ds: &Dataset, key: &[u8]) -> String {
    physical_error(
        ds.reading(RplOptions::direct())
            .key(key)
            .records()
            .await
            .unwrap_err(),
    )
}

/// How long a call may take past its limit in these tests: the documented
/// grace (100 ms) and room for a loaded machine.
const SLACK: Duration = Duration::from_millis(1500);

/// A plugin that sleeps inside a host function (WASI's clock and poll) in
/// `get` or in `sync` is stopped at its limit like one that computes too
/// long, and the other clients of the same backend are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_in_a_host_function_ends_at_its_limit() {
    let server = start_with_plugin(FAULTY_WASM, "call_timeout_ms = 500").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("SB.WAIT")).await.unwrap();
    let ds = Dataset::open(&conn, "SB.WAIT", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"GOOD-1".to_vec())
        .await
        .unwrap();
    let limit = Duration::from_millis(500);

    // Another client of the same backend, waiting behind the sleeper.
    let other = Connection::connect(&server.address).await.unwrap();
    let other_ds = Dataset::open(&other, "SB.WAIT", OpenIntent::Input, 1)
        .await
        .unwrap();
    let started = Instant::now();
    let bystander = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        let answer = other_ds
            .reading(RplOptions::direct())
            .key(b"GOOD")
            .records()
            .await;
        (answer.map(|records| records.len()), asked.elapsed())
    });
    let slept = get_fault(&ds, b"SLEP").await;
    let took = started.elapsed();
    assert!(
        slept.contains("ran longer than the limit of 500 ms in `get`")
            && slept.contains("replaced")
            && slept.contains("`call_timeout_ms` of [backends.b]: if calls on the data it serves need longer, raise it"),
        "{slept}"
    );
    assert!(took < limit + SLACK, "the sleeping GET took {took:?}");
    // The bystander waited for the sleeper's limit, not for its sleep. The
    // instance was replaced, and the faulty plugin keeps its records in
    // memory: the record is gone, the answer is "not found".
    let (answer, waited) = bystander.await.unwrap();
    assert!(waited < limit + SLACK, "the bystander waited {waited:?}");
    let error = answer.unwrap_err();
    assert_eq!(error.vsam().map(|v| v.fdbk()), Some(0x10), "{error}");

    // A write whose group sync sleeps: the write is not acknowledged.
    let started = Instant::now();
    let synced = fault(&ds, b"SSYN").await;
    assert!(
        synced.contains("ran longer than the limit of 500 ms in `sync`")
            && synced.contains("`call_timeout_ms` of [backends.b]"),
        "{synced}"
    );
    assert!(started.elapsed() < limit + SLACK, "{:?}", started.elapsed());

    ds.put(0, RplOptions::direct(), 0, b"GOOD-2".to_vec())
        .await
        .unwrap();
    // Stopping the server does not wait for a sleeper either.
    let sleeper = tokio::spawn(async move { get_fault(&ds, b"SLEP").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = Instant::now();
    server.server.stop().await;
    assert!(
        stopping.elapsed() < limit + SLACK,
        "stopping took {:?}",
        stopping.elapsed()
    );
    let _ = sleeper.await;
}

fn faulty_config(dir: &Path, params: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[admin]\nenabled = false\n\
         [plugins.faulty]\npath = \"{FAULTY_WASM}\"\n\
         [backends.b]\nplugin = \"faulty\"\ncall_timeout_ms = 500\n[backends.b.params]\n{params}\n\
         [routing]\ndefault = \"b\"\n",
        dir.join("data").display()
    )
}

/// An `init` that sleeps or spins stops start-up at the limit with the
/// time-limit message, never hangs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_that_sleeps_or_spins_fails_start_up_at_the_limit() {
    for (params, what) in [("init = \"sleep\"", "sleeps"), ("init = \"loop\"", "spins")] {
        let dir = tempfile::tempdir().unwrap();
        let config = vsam_host::config::Config::parse(
            &faulty_config(dir.path(), params),
            "<test>",
            dir.path(),
        )
        .unwrap();
        let started = Instant::now();
        let error = vsam_host::RunningServer::start_with(&config, Default::default())
            .await
            .err()
            .expect("start-up fails");
        let message = format!("{error:#}");
        assert!(
            message.contains("ran longer than the limit of 500 ms in `init`"),
            "an init that {what}: {message}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500) + SLACK,
            "an init that {what} held start-up {:?}",
            started.elapsed()
        );
    }
}

/// A reload whose new version hangs in `init` fails at the limit; the old
/// version serves on, and a later reload works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_whose_init_hangs_fails_and_the_old_version_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vsamrd.toml");
    std::fs::write(&file, faulty_config(dir.path(), "")).unwrap();
    let server = vsam_host::RunningServer::start_source(
        vsam_host::reload::ConfigSource::file(file.clone()),
        Default::default(),
    )
    .await
    .unwrap();
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, spec("SB.RELOAD")).await.unwrap();
    let ds = Dataset::open(&conn, "SB.RELOAD", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"KEPT-1".to_vec())
        .await
        .unwrap();

    std::fs::write(&file, faulty_config(dir.path(), "init = \"sleep\"")).unwrap();
    let started = Instant::now();
    let report = server.reloader.reload("test").await;
    let error = report.error.expect("the reload fails");
    assert!(
        error.contains("ran longer than the limit of 500 ms in `init`"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500) + SLACK,
        "the reload took {:?}",
        started.elapsed()
    );
    let kept = ds.read(b"KEPT").await.unwrap();
    assert_eq!(kept.data, b"KEPT-1", "the old instance serves on");

    std::fs::write(&file, faulty_config(dir.path(), "note = \"fixed\"")).unwrap();
    let report = server.reloader.reload("test").await;
    assert_eq!(report.error, None, "{report:?}");
    ds.put(0, RplOptions::direct(), 0, b"NEW--1".to_vec())
        .await
        .unwrap();
    server.stop().await;
}

/// An object store that stops answering (it accepts connections and never
/// answers): each request the plugin makes ends within the call limit (a
/// share of it), the call answers, and nothing waits for the silent
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_store_that_never_answers_holds_no_call_past_its_limit() {
    let seaweed = SeaweedFs::start().unwrap();
    let upstream = seaweed.endpoint.trim_start_matches("http://").to_string();
    let relay = Relay::start(&upstream).await;
    let server = start_with_plugin(
        FAULTY_WASM,
        &format!(
            "call_timeout_ms = 500\nbucket = {}",
            seaweed
                .bucket_table()
                .replace(&seaweed.endpoint, &format!("http://{}", relay.address))
        ),
    )
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("SB.SILENT")).await.unwrap();
    let ds = Dataset::open(&conn, "SB.SILENT", OpenIntent::Update, 1)
        .await
        .unwrap();
    relay.fall_silent();
    let started = Instant::now();
    let answer = ds
        .reading(RplOptions::direct())
        .key(b"OBJG")
        .records()
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(500) + SLACK,
        "the GET took {:?}",
        started.elapsed()
    );
    let error = answer.unwrap_err();
    assert_eq!(error.vsam().map(|v| v.fdbk()), Some(0x10), "{error}");
    server.server.stop().await;
}

/// A server whose S3 bucket does not answer at start does not start: it
/// cannot claim the bucket (see the object store in "Running a fleet"),
/// and says so within the store's time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_never_answers_at_start_stops_vsamrd_with_the_reason() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let started = Instant::now();
    let refused = vsam_tests::try_start(&format!(
        "[plugins.p]\npath = \"{FAULTY_WASM}\"\n[backends.b]\nplugin = \"p\"\nbucket = {{ name = \"b\", endpoint = \"http://127.0.0.1:{port}\", access_key_id = \"a\", secret_access_key = \"s\" }}\n[routing]\ndefault = \"b\"\n"
    ))
    .await
    .err()
    .expect("refused");
    let message = format!("{refused:#}");
    assert!(
        message.contains("backend b")
            && message.contains(".vsamrd-claim")
            && (message.contains("cannot be reached") || message.contains("did not answer")),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5) + SLACK,
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

/// A plugin that logs in a loop gets its share of log lines, and the next
/// line that passes says how many were suppressed; a line it logs stays
/// one line (a newline in it escaped) of bounded length: vsamrd as a
/// process, its log counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_logging_in_a_loop_is_held_to_its_share() {
    let dir = tempfile::tempdir().unwrap();
    let port = vsam_tests::free_port();
    let config = faulty_config(dir.path(), "").replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let vsamrd = LoggedServer::start(dir.path(), port, &config, "info");
    let conn = Connection::connect(&vsamrd.address).await.unwrap();
    vsam_client::define(&conn, spec("SB.LOGS")).await.unwrap();
    let ds = Dataset::open(&conn, "SB.LOGS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let _ = ds
        .reading(RplOptions::direct())
        .key(b"LOGS")
        .records()
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = ds
        .reading(RplOptions::direct())
        .key(b"LOG1")
        .records()
        .await;
    let _ = ds
        .reading(RplOptions::direct())
        .key(b"LOGF")
        .records()
        .await;
    let text = vsamrd.stop();
    let flood = text.lines().filter(|l| l.contains("flood line")).count();
    assert!(
        (1..=2 * vsam_host::log_limit::LINES_PER_SECOND as usize).contains(&flood),
        "{flood} flood lines logged"
    );
    let after = text
        .lines()
        .find(|l| l.contains("one line after the flood"))
        .expect("the line after the flood passes");
    assert!(after.contains("more like it suppressed"), "{after}");
    // A plugin's line is one line of vsamrd's log, of bounded length.
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a plugin forged a line"
    );
    assert!(text.contains("forging\\nFORGED vsamrd"), "{text}");
    let long = text
        .lines()
        .find(|l| l.contains("long line"))
        .expect("the long line is logged");
    assert!(
        long.len() < 4096 + 200 && long.contains("bytes more)"),
        "{} bytes: {}",
        long.len(),
        &long[long.len().saturating_sub(100)..]
    );
}

/// The high-water mark of this process's resident memory, in bytes.
fn peak_rss() -> u64 {
    vsam_tests::proc_status_kb("self", "VmHWM") << 10
}

/// SQLite runs in vsamrd's threads, where neither the sandbox's epochs nor
/// the call's wall clock reach: a statement without end is interrupted at
/// the call's limit, rows past the plugin's memory are refused before
/// they fill vsamrd's (4,000 rows of a million bytes asked for), and no
/// statement opens another file (ATTACH, VACUUM INTO).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_statements_of_a_plugin_are_bounded_in_time_rows_files_and_pragmas() {
    let server = start_with_plugin(
        FAULTY_WASM,
        "call_timeout_ms = 500\nmemory_limit_mb = 64\ndatabase = \"sqlite:faulty.db\"",
    )
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("SB.SQL", 4, 4096, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "SB.SQL", OpenIntent::Update, 1)
        .await
        .unwrap();
    let report = |key: &'static [u8]| {
        let ds = &ds;
        async move {
            let records = tokio::time::timeout(
                Duration::from_millis(500) + SLACK,
                ds.reading(RplOptions::direct()).key(key).records(),
            )
            .await
            .unwrap_or_else(|_| panic!("{key:?} was not answered within the limit"))
            .unwrap();
            String::from_utf8_lossy(&records[0].data).into_owned()
        }
    };
    let endless = report(b"SQLX").await;
    assert!(
        endless.contains(
            "the statement ran longer than the call's limit of 500 ms and was interrupted"
        ),
        "{endless}"
    );
    let before = peak_rss();
    let large = report(b"SQLM").await;
    assert!(
        large.contains("the statement's rows pass 67108864 bytes at row")
            && large.contains("more than the plugin's memory may hold (memory_limit_mb)"),
        "{large}"
    );
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < 1 << 30, "vsamrd's memory grew by {grown} bytes");
    // Nor may a statement open another file than the granted database.
    let elsewhere = report(b"SQLA").await;
    for line in elsewhere.lines() {
        let (what, outcome) = line.split_once(" => ").expect("a line per statement");
        assert!(
            outcome.contains("not authorized") || outcome.contains("authorization denied"),
            "{line}"
        );
        let path = what.split_whitespace().nth(1).unwrap();
        assert!(!Path::new(path).exists(), "{path} was made");
    }
    assert_eq!(elsewhere.lines().count(), 2, "{elsewhere}");
    // Nor set a PRAGMA: the process's heap limits, the cache, durability;
    // asking about a table is fine.
    let pragmas = report(b"SQLP").await;
    let lines: Vec<&str> = pragmas.lines().collect();
    assert_eq!(lines.len(), 9, "{pragmas}");
    for line in &lines[..8] {
        assert!(line.contains("not authorized"), "{line}");
    }
    assert!(
        lines[8].starts_with("PRAGMA table_info(sqlite_master) => ok 5 rows"),
        "{}",
        lines[8]
    );
    // The backend serves on.
    ds.put(0, RplOptions::direct(), 0, b"GOOD-1".to_vec())
        .await
        .unwrap();
    server.server.stop().await;
}

/// Every file a plugin opens is one of vsamrd's descriptors: a plugin that
/// opens files in a loop and keeps them is stopped at its share
/// (`max_resources`), and the server still accepts connections and opens
/// files (the server runs in this process: its descriptors are this
/// test's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_opening_files_without_end_leaves_the_server_its_descriptors() {
    let server = start_with_plugin(FAULTY_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("SB.FILES", 4, 4096, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "SB.FILES", OpenIntent::Update, 1)
        .await
        .unwrap();
    let held = match ds
        .reading(RplOptions::direct())
        .key(b"FILE")
        .records()
        .await
    {
        Ok(records) => String::from_utf8_lossy(&records[0].data).into_owned(),
        // Stopped by a trap instead of an error: the instance, and its
        // files, are gone.
        Err(error) => physical_error(error),
    };
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let cap = vsam_host::runtime::max_resources();
    assert!(open < cap * 2, "{open} descriptors open ({held})");
    // New connections, and files the server opens, still work.
    let other = Connection::connect(&server.address).await.unwrap();
    vsam_client::ping(&other).await.unwrap();
    vsam_client::define(&other, vsam_tests::ksds("SB.AFTER", 4, 64, "ascii"))
        .await
        .unwrap();
    // Stopped at the bound: the open that passed it failed, or trapped.
    assert!(
        held.contains("opened") || held.contains("trapped"),
        "{held}"
    );
    server.server.stop().await;
}

/// Records of megabytes, read every way a program reads them: wasmtime
/// takes at most 128 MiB from a plugin in one call, so a sequential read's
/// read-ahead (32 records of 4 MiB), a batched GET and a rename (500
/// records a step) each failed with R15=12 once they asked for that much.
/// They now ask for what fits, and a scan or get-many that would pass it is
/// taken from the plugin in pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_megabytes_are_read_every_way() {
    const SIZE: u32 = 4 << 20;
    const RECORDS: u32 = 40;
    let server = vsam_tests::start(&format!(
        "max_frame = {}\n[plugins.p]\npath = \"{}\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"sqlite:big.db\"\n[routing]\ndefault = \"b\"\n",
        256 << 20,
        vsam_tests::SQL_WASM
    ))
    .await;
    let conn = Connection::connect_with(
        &server.address,
        &vsam_client::ConnectOptions {
            max_frame: Some(256 << 20),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("BIG.KSDS", 8, SIZE, "ascii"))
        .await
        .unwrap();
    let record = |n: u32| {
        let mut record = format!("{n:08}").into_bytes();
        record.resize(SIZE as usize, b'a' + (n % 26) as u8);
        record
    };
    // Every record, in order, in one batched GET (160 MiB in one answer
    // of a 256 MiB frame).
    let all_in_one_batch = async |name: &str| {
        let ds = Dataset::open(&conn, name, OpenIntent::Input, 1)
            .await
            .unwrap();
        let batch = ds.browse(RECORDS).await.unwrap();
        assert_eq!(batch.len(), RECORDS as usize, "{name}");
        assert!(
            (0..RECORDS).all(|n| batch[n as usize].data == record(n)),
            "{name}"
        );
        ds.close().await.unwrap();
    };
    // Written one PUT at a time; in `commit` access, committed whole.
    let write_all = async |name: &str, access: u8| {
        let ds = Dataset::open_with_access(&conn, name, OpenIntent::Output, access, 1)
            .await
            .unwrap();
        for n in 0..RECORDS {
            ds.put(0, RplOptions::sequential(), 0, record(n))
                .await
                .unwrap();
        }
        if access == vsam_protocol::access::COMMIT {
            vsam_client::commit(&conn).await.unwrap();
        }
        ds.close().await.unwrap();
    };
    write_all("BIG.KSDS", 0).await;

    // One GET at a time, as READ NEXT reads: every record, in order.
    let ds = Dataset::open(&conn, "BIG.KSDS", OpenIntent::Input, 1)
        .await
        .unwrap();
    for n in 0..RECORDS {
        let read = ds
            .next()
            .await
            .unwrap_or_else(|e| panic!("record {n}: {e}"));
        assert!(read.data == record(n), "record {n} differs");
    }
    ds.close().await.unwrap();
    all_in_one_batch("BIG.KSDS").await;

    // A rename copies them all, a step at a time.
    vsam_client::rename(&conn, "BIG.KSDS", "BIG.MOVED")
        .await
        .unwrap();
    all_in_one_batch("BIG.MOVED").await;

    // A unit of work of 40 of them (160 MiB), committed whole.
    vsam_client::define(&conn, vsam_tests::ksds("BIG.UNIT", 8, SIZE, "ascii"))
        .await
        .unwrap();
    write_all("BIG.UNIT", vsam_protocol::access::COMMIT).await;
    all_in_one_batch("BIG.UNIT").await;
    server.server.stop().await;
}
