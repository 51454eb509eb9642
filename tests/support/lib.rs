//! Shared helpers of the end-to-end tests: plugin paths and servers
//! configured around them.
#![warn(missing_docs)]

pub mod cobol;
pub mod deployment;
pub mod logged;
pub mod migration;
pub mod pki;
pub mod relay;

use std::collections::BTreeMap;
use std::path::Path;
use vsam_host::RunningServer;
use vsam_host::config::Config;

/// The SQL plugin component.
pub const SQL_WASM: &str = env!("VSAM_TEST_SQL_WASM");
/// The CSV plugin component.
pub const CSV_WASM: &str = env!("VSAM_TEST_CSV_WASM");
/// The object-store plugin component.
pub const S3_WASM: &str = env!("VSAM_TEST_S3_WASM");
/// The in-memory example plugin component.
pub const MEMORY_WASM: &str = env!("VSAM_TEST_MEMORY_WASM");
/// The log example plugin component (what `vsam-plugin new` generates).
pub const LOG_WASM: &str = env!("VSAM_TEST_LOG_WASM");
/// The misbehaving test plugin component.
pub const FAULTY_WASM: &str = env!("VSAM_TEST_FAULTY_WASM");
/// A plugin over files that ignores sync errors, reports a full disk as an
/// I/O error and cannot read a torn log: the durability checks fail it.
pub const CARELESS_WASM: &str = env!("VSAM_TEST_CARELESS_WASM");

/// A free port on 127.0.0.1, for a server started as a process of its own
/// (its address must be known before it starts; see
/// [`vsam_conformance::free_port`] for why it is below the ephemeral range).
pub fn free_port() -> u16 {
    vsam_conformance::free_port()
}

/// The vsamrd binary `cargo test` builds beside the test binaries, for
/// tests that run it as a process (SIGKILL, its log as written).
pub fn vsamrd_binary() -> std::path::PathBuf {
    let vsamrd = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("vsamrd");
    assert!(
        vsamrd.exists(),
        "{} is built by cargo test",
        vsamrd.display()
    );
    vsamrd
}

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

/// A KSDS `name` with a copybook of an 8-byte key then a table of
/// `fields` one-byte entries (OCCURS): a layout as wide as wanted, for the
/// limits of a table's columns.
pub fn wide_ksds(name: &str, fields: usize) -> vsam_protocol::DatasetSpec {
    let mut spec = ksds(name, 8, 8 + fields as u32, "cp037");
    spec.layout = format!("01 W.\n 05 W-KEY PIC X(8).\n 05 W-E OCCURS {fields} TIMES PIC X.\n");
    spec
}

/// SHA-256 of a token in hex, as `[[clients]] token_sha256` holds it.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(vsam_host::security::access::token_digest(token))
}

/// A server on a free port with a fresh data dir.
pub struct TestServer {
    /// The server, to stop or reload.
    pub server: RunningServer,
    /// Where it listens, `127.0.0.1:PORT`.
    pub address: String,
    /// Its data dir, removed when the test ends.
    pub data_dir: tempfile::TempDir,
}

/// A field of `/proc/PROCESS/status` counted in kB (`VmHWM`, `RssAnon`...),
/// for `process` a pid or `self`.
pub fn proc_status_kb(process: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in kB in /proc/{process}/status"))
}

/// Starts a server whose config is `backends_toml` (plugins, backends and
/// routing sections) plus a `[server]` section of its own.
pub async fn start(backends_toml: &str) -> TestServer {
    try_start(backends_toml).await.unwrap()
}

/// Starts a server as [`start`] does, or says why it would not start.
pub async fn try_start(backends_toml: &str) -> anyhow::Result<TestServer> {
    let data_dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{backends_toml}",
        data_dir.path().display()
    );
    let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
    let server = RunningServer::start_with(&config, BTreeMap::new()).await?;
    let address = server.addr.to_string();
    Ok(TestServer {
        server,
        address,
        data_dir,
    })
}

/// A server of a fleet: the SQL plugin on the PostgreSQL database at
/// `url` as backend `b`, with a data dir of its own.
pub async fn fleet_server(url: &str) -> TestServer {
    start_with_plugin(SQL_WASM, &format!("database = \"{url}\"")).await
}

/// Waits (10 s at most) until at most `servers` lock sessions of vsamrd
/// remain on `postgres`'s database `vsam`. A stopped server's session may
/// linger there for a moment after it closed it, and a migration, which
/// the database's other servers refuse, would see it.
pub async fn until_servers_on(postgres: &vsam_conformance::Postgres, servers: usize) {
    let sessions = || -> usize {
        let count = postgres
            .psql(
                "vsam",
                "select count(*) from pg_stat_activity where application_name like 'vsamrd %'",
            )
            .unwrap();
        count.trim().parse().unwrap()
    };
    let started = std::time::Instant::now();
    while sessions() > servers {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{} vsamrd lock sessions left on the database, {servers} expected",
            sessions()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Two servers of a fleet on the database at `url`, a KSDS `name` (8-byte
/// keys, 40-byte records) defined on the first (the second finds it in
/// the shared catalog) and holding `records`.
pub async fn two_servers_sharing(
    url: &str,
    name: &str,
    records: impl IntoIterator<Item = Vec<u8>>,
) -> (TestServer, TestServer) {
    let a = fleet_server(url).await;
    let b = fleet_server(url).await;
    let conn = vsam_client::Connection::connect(&a.address).await.unwrap();
    vsam_client::define(&conn, ksds(name, 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = vsam_client::Dataset::open(&conn, name, vsam_protocol::OpenIntent::Output, 1)
        .await
        .unwrap();
    for record in records {
        ds.put(0, vsam_protocol::RplOptions::direct(), 0, record)
            .await
            .unwrap();
    }
    ds.close().await.unwrap();
    (a, b)
}

/// A server with one plugin file as backend `b`, the default route.
pub async fn start_with_plugin(wasm: &str, backend_extra: &str) -> TestServer {
    start(&format!(
        "[plugins.p]\npath = \"{wasm}\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"b\"\n{backend_extra}\n[routing]\ndefault = \"b\"\n"
    ))
    .await
}

/// A batch of jobs using `count` datasets one after another: each small
/// KSDS `BATCH.DSnnnnn` defined, opened, written, read and closed; then
/// the first three read again. Panics naming the dataset and request
/// that failed (a backend that keeps something of every dataset it
/// served fails one at its memory limit).
pub async fn use_datasets_one_after_another(conn: &vsam_client::Connection, count: usize) {
    use vsam_client::{Dataset, OpenIntent, RplOptions};
    let read = |ds: Dataset, name: String| async move {
        let record = ds
            .read(b"K001")
            .await
            .unwrap_or_else(|e| panic!("GET {name}: {e}"));
        assert_eq!(record.data, b"K001RECORD", "{name}");
        ds.close().await.unwrap();
    };
    for n in 0..count {
        let name = format!("BATCH.DS{n:05}");
        vsam_client::define(conn, ksds(&name, 4, 10, "ascii"))
            .await
            .unwrap_or_else(|e| panic!("DEFINE {name}: {e}"));
        let ds = Dataset::open(conn, &name, OpenIntent::Update, 1)
            .await
            .unwrap_or_else(|e| panic!("OPEN {name}: {e}"));
        ds.put(0, RplOptions::direct(), 0, b"K001RECORD".to_vec())
            .await
            .unwrap_or_else(|e| panic!("PUT {name}: {e}"));
        read(ds, name).await;
    }
    for n in 0..count.min(3) {
        let name = format!("BATCH.DS{n:05}");
        let ds = Dataset::open(conn, &name, OpenIntent::Input, 1)
            .await
            .unwrap_or_else(|e| panic!("OPEN {name} again: {e}"));
        read(ds, name).await;
    }
}

/// Runs the kit's durability checks (a new instance after a sync, a
/// restart) and `units.whole` on `subject` in the durable profile, and
/// fails with every failed check. Returns the ids that ran.
pub async fn assert_durable(subject: &vsam_conformance::Subject, what: &str) -> Vec<&'static str> {
    let options = vsam_conformance::KitOptions {
        profile: vsam_conformance::Profile::Durable,
        selection: vsam_conformance::Selection::only(["durable", "units.whole"]),
        mapped: false,
    };
    let results = vsam_conformance::run_kit(subject, &options)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    let failures: Vec<String> = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|f| format!("{}: {f}", r.id)))
        .collect();
    assert!(failures.is_empty(), "{what}:\n{}", failures.join("\n"));
    results.iter().map(|r| r.id).collect()
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

/// Checks that the port at `address` holds no one's connections for long
/// nor many at once: `per_address` connections that say nothing take
/// every place of this address, the next one is closed at once, and the
/// silent ones are closed once `first_request_within` (the time a
/// connection gets to send its first request) has passed.
pub async fn assert_bounded_port(
    address: &str,
    per_address: usize,
    first_request_within: std::time::Duration,
) {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    let closed = async |stream: &mut tokio::net::TcpStream, within: Duration| {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(within, stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    };
    let opened = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..per_address {
        silent.push(tokio::net::TcpStream::connect(address).await.unwrap());
    }
    // Each connection takes its place once the listener accepts it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = tokio::net::TcpStream::connect(address).await.unwrap();
    assert!(
        closed(&mut over, Duration::from_secs(2)).await,
        "{address}: a connection past the limit per address is closed at once"
    );
    for stream in &mut silent {
        assert!(
            closed(stream, first_request_within + Duration::from_secs(5)).await,
            "{address}: a connection without a request is closed in time"
        );
    }
    assert!(
        opened.elapsed() >= first_request_within - Duration::from_millis(100),
        "{address}: closed after {:?}, before its time",
        opened.elapsed()
    );
}

/// The value of the series `name` with exactly `labels` (`a="b",c="d"`,
/// or empty) in a `/metrics` text, if it is there.
pub fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = match labels {
        "" => format!("{name} "),
        labels => format!("{name}{{{labels}}} "),
    };
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.trim().parse().unwrap())
}

/// GET `path` from `address`: the status code and the body.
pub async fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response)
        .await
        .unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// The bucket of `seaweed`, as a backend's grant names it.
pub fn bucket_spec(
    seaweed: &vsam_conformance::SeaweedFs,
) -> vsam_host::runtime::objects::BucketSpec {
    vsam_host::runtime::objects::BucketSpec::S3(vsam_host::runtime::objects::S3Spec {
        bucket: seaweed.bucket.clone(),
        endpoint: Some(seaweed.endpoint.clone()),
        region: None,
        virtual_hosted_style: false,
        access_key_id: Some(seaweed.access_key_id.clone()),
        secret_access_key: Some(seaweed.secret_access_key.clone()),
    })
}

/// The bucket of `seaweed`, reached as a server's backends reach it (on
/// the current tokio runtime), to look at what they wrote there.
pub fn bucket_grant(
    seaweed: &vsam_conformance::SeaweedFs,
) -> std::sync::Arc<vsam_host::runtime::objects::ObjectGrant> {
    vsam_host::runtime::objects::ObjectGrant::new(
        &bucket_spec(seaweed),
        std::time::Duration::from_secs(5),
        1 << 30,
        &tokio::runtime::Handle::current(),
    )
    .unwrap()
}
