//! `[metrics]`: a real server under load, scraped over HTTP; the counts
//! match what the test sent. `/readyz` follows the database: unready while
//! PostgreSQL is stopped, ready again once it is back.

use bytes::BytesMut;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};
use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
use vsam_conformance::{Postgres, SeaweedFs};
use vsam_protocol::{ClientCodec, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR, Request, access};
use vsam_tests::relay::Relay;
use vsam_tests::{CSV_WASM, S3_WASM, SQL_WASM, http_get, ksds, start_with_plugin};

/// The value of the series `name` with exactly `labels` (`a="b",c="d"`).
fn value(metrics: &str, name: &str, labels: &str) -> f64 {
    vsam_tests::metric(metrics, name, labels).unwrap_or(0.0)
}

/// A server of `wasm` with `backend_extra` and a metrics listener, a
/// connection to it with a new KSDS `name` open for update, and where the
/// metrics are served.
async fn serving(
    wasm: &str,
    backend_extra: &str,
    name: &str,
) -> (vsam_tests::TestServer, Connection, Dataset, String) {
    let server = start_with_plugin(
        wasm,
        &format!("{backend_extra}\n[metrics]\nlisten = \"127.0.0.1:0\""),
    )
    .await;
    let metrics = server
        .server
        .metrics_addr
        .expect("metrics listen")
        .to_string();
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds(name, 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, name, OpenIntent::Update, 1)
        .await
        .unwrap();
    (server, conn, ds, metrics)
}

/// A 40-byte record under `key`.
/// `/readyz` once a store has gone: the first answer that is not 200
/// (probes within a second of an answer get that answer again), or the
/// 200 still given after 10 s.
async fn unready(metrics: &str) -> (u16, String) {
    let started = Instant::now();
    loop {
        let (status, body) = http_get(metrics, "/readyz").await;
        if status != 200 || started.elapsed() > Duration::from_secs(10) {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn record(key: &str) -> Vec<u8> {
    let mut record = key.as_bytes().to_vec();
    record.resize(40, b'.');
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_clients_sent_and_readiness_follows_the_database() {
    let postgres = Postgres::start().unwrap();
    // Load: 40 inserts, 30 GETs found, 10 not found (X'10').
    let (server, conn, ds, metrics) = serving(
        SQL_WASM,
        &format!("database = \"{}\"", postgres.url),
        "MET.KSDS",
    )
    .await;
    for n in 0..40 {
        ds.put(0, RplOptions::direct(), 0, record(&format!("K{n:07}")))
            .await
            .unwrap();
    }
    for n in 0..30 {
        ds.read(format!("K{n:07}").as_bytes()).await.unwrap();
    }
    for n in 100..110 {
        assert!(ds.read(format!("K{n:07}").as_bytes()).await.is_err());
    }

    let (status, text) = http_get(&metrics, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let count = |labels: &str| value(&text, "vsamrd_requests_total", labels);
    assert_eq!(
        count(r#"kind="PUT",backend="b",outcome="ok",fdbk="""#),
        40.0,
        "{text}"
    );
    assert_eq!(
        count(r#"kind="GET",backend="b",outcome="ok",fdbk="""#),
        30.0,
        "{text}"
    );
    assert_eq!(
        count(r#"kind="GET",backend="b",outcome="logical",fdbk="10""#),
        10.0,
        "{text}"
    );
    assert_eq!(
        count(r#"kind="DEFINE",backend="",outcome="ok",fdbk="""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(r#"kind="OPEN",backend="b",outcome="ok",fdbk="""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "vsamrd_request_seconds_count", r#"kind="GET""#),
        40.0,
        "{text}"
    );
    // Every insert made durable by a group commit of backend b.
    let backend = |name: &str| value(&text, name, r#"backend="b""#);
    assert_eq!(backend("vsamrd_synced_writes_total"), 40.0, "{text}");
    let syncs = backend("vsamrd_syncs_total");
    assert!((1.0..=40.0).contains(&syncs), "{text}");
    assert!(backend("vsamrd_sync_seconds_total") > 0.0, "{text}");
    assert_eq!(
        value(
            &text,
            "vsamrd_plugin_faults_total",
            r#"backend="b",cause="trap""#
        ),
        0.0,
        "{text}"
    );
    assert_eq!(value(&text, "vsamrd_requests_in_flight", ""), 0.0, "{text}");
    assert_eq!(
        value(
            &text,
            "vsamrd_connections_now",
            r#"state="open",transport="tcp""#
        ),
        1.0,
        "{text}"
    );
    // Per plugin call: every insert timed; each sync is one group.
    let call = |call: &str| {
        value(
            &text,
            "vsamrd_plugin_call_seconds_count",
            &format!(r#"backend="b",call="{call}""#),
        )
    };
    assert_eq!(call("insert"), 40.0, "{text}");
    assert_eq!(call("sync"), syncs, "{text}");
    assert_eq!(backend("vsamrd_group_commit_size_count"), syncs, "{text}");
    assert_eq!(backend("vsamrd_group_commit_size_sum"), 40.0, "{text}");
    assert!(backend("vsamrd_plugin_memory_bytes") > 0.0, "{text}");
    // Without [tls], no certificate end to alert on.
    assert!(
        !text.contains("vsamrd_tls_certificate_expiry_timestamp_seconds"),
        "{text}"
    );

    // Probes.
    assert_eq!(http_get(&metrics, "/healthz").await.0, 200);
    assert_eq!(http_get(&metrics, "/readyz").await.0, 200);
    assert_eq!(http_get(&metrics, "/nothing").await.0, 404);
    postgres.stop().unwrap();
    let (status, body) = unready(&metrics).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not ready: database"), "{body}");
    assert_eq!(
        http_get(&metrics, "/healthz").await.0,
        200,
        "the process is up"
    );
    postgres.restart().unwrap();
    let started = Instant::now();
    while http_get(&metrics, "/readyz").await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(ds);
    drop(conn);
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_faults_are_counted_per_backend() {
    let (server, _conn, ds, metrics) = serving(
        vsam_tests::FAULTY_WASM,
        "call_timeout_ms = 500\nmemory_limit_mb = 64",
        "MET.FAULTY",
    )
    .await;
    ds.put(0, RplOptions::direct(), 0, record("OKAY0001"))
        .await
        .unwrap();
    for key in ["PANC0001", "PANC0002", "PANC0003", "LOOP0001", "BOMB0001"] {
        let refused = ds.put(0, RplOptions::direct(), 0, record(key)).await;
        assert_eq!(refused.unwrap_err().vsam().map(|v| v.r15()), Some(12));
    }
    let (_, text) = http_get(&metrics, "/metrics").await;
    for (cause, count) in [("timeout", 1.0), ("memory", 1.0), ("start", 0.0)] {
        assert_eq!(
            value(
                &text,
                "vsamrd_plugin_faults_total",
                &format!(r#"backend="b",cause="{cause}""#)
            ),
            count,
            "{cause}: {text}"
        );
    }
    assert_eq!(
        value(
            &text,
            "vsamrd_plugin_faults_total",
            r#"backend="b",cause="trap""#
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "vsamrd_requests_total",
            r#"kind="PUT",backend="b",outcome="physical",fdbk="""#
        ),
        5.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "vsamrd_backend_calls_in_flight", r#"backend="b""#),
        0.0,
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    server.server.stop().await;
}

/// A raw client: the bytes it wrote and read, frame by frame.
struct Raw {
    stream: tokio::net::TcpStream,
    codec: ClientCodec,
    buffer: BytesMut,
    wrote: u64,
    read: u64,
}

impl Raw {
    async fn connect(address: &str) -> Self {
        Self {
            stream: tokio::net::TcpStream::connect(address).await.unwrap(),
            codec: ClientCodec::new(1 << 20),
            buffer: BytesMut::new(),
            wrote: 0,
            read: 0,
        }
    }

    /// Sends a request and reads its answer whole.
    async fn call(&mut self, id: u32, request: Request) {
        let mut frame = BytesMut::new();
        self.codec.encode((id, request), &mut frame).unwrap();
        self.stream.write_all(&frame).await.unwrap();
        self.wrote += frame.len() as u64;
        loop {
            if let Some(_answer) = self.codec.decode(&mut self.buffer).unwrap() {
                return;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            self.read += n as u64;
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_bytes_locks_units_datasets_and_reloads_are_counted() {
    let server = start_with_plugin(
        CSV_WASM,
        "[metrics]\nlisten = \"127.0.0.1:0\"\ndatasets = [\"met.one\"]",
    )
    .await;
    let metrics = server.server.metrics_addr.unwrap().to_string();
    let scrape = || async { http_get(&metrics, "/metrics").await.1 };
    let conn = Connection::connect(&server.address).await.unwrap();
    for name in ["MET.ONE", "MET.TWO"] {
        vsam_client::define(&conn, ksds(name, 8, 40, "ascii"))
            .await
            .unwrap();
    }

    // Load from four connections at once: 25 inserts each into MET.ONE,
    // 10 reads each of MET.TWO.
    let mut clients = Vec::new();
    for client in 0..4 {
        let address = server.address.clone();
        clients.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let one = Dataset::open(&conn, "MET.ONE", OpenIntent::Update, 1)
                .await
                .unwrap();
            let two = Dataset::open(&conn, "MET.TWO", OpenIntent::Input, 1)
                .await
                .unwrap();
            for n in 0..25 {
                one.put(
                    0,
                    RplOptions::direct(),
                    0,
                    record(&format!("C{client}{n:06}")),
                )
                .await
                .unwrap();
            }
            for n in 0..10 {
                assert!(
                    two.read(format!("C{client}{n:06}").as_bytes())
                        .await
                        .is_err()
                );
            }
            one.close().await.unwrap();
            two.close().await.unwrap();
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let text = scrape().await;
    let requests = |labels: &str| value(&text, "vsamrd_requests_total", labels);
    assert_eq!(
        requests(r#"kind="PUT",backend="b",outcome="ok",fdbk="""#),
        100.0,
        "{text}"
    );
    assert_eq!(
        requests(r#"kind="GET",backend="b",outcome="logical",fdbk="10""#),
        40.0,
        "{text}"
    );
    assert_eq!(
        requests(r#"kind="OPEN",backend="b",outcome="ok",fdbk="""#),
        8.0,
        "{text}"
    );
    assert_eq!(value(&text, "vsamrd_connections_total", ""), 5.0, "{text}");
    let per_dataset = |labels: &str| value(&text, "vsamrd_dataset_requests_total", labels);
    assert_eq!(
        per_dataset(r#"dataset="MET.ONE",kind="PUT",outcome="ok""#),
        100.0,
        "{text}"
    );
    assert_eq!(
        per_dataset(r#"dataset="MET.ONE",kind="OPEN",outcome="ok""#),
        4.0,
        "{text}"
    );
    assert!(
        !text.contains(r#"dataset="MET.TWO""#),
        "only the datasets named: {text}"
    );

    // Bytes: exactly what a raw client wrote and read; its connection is
    // handshaking until its HELLO, then open. (The load's connections are
    // gone first: only `conn` is open.)
    let handshaking = r#"state="handshaking",transport="tcp""#;
    let open = r#"state="open",transport="tcp""#;
    let started = Instant::now();
    while value(&scrape().await, "vsamrd_connections_now", open) != 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the load's connections stay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = scrape().await;
    let mut raw = Raw::connect(&server.address).await;
    let started = Instant::now();
    while value(&scrape().await, "vsamrd_connections_now", handshaking) != 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never handshaking"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    raw.call(
        1,
        Request::Hello(Hello {
            major: PROTOCOL_MAJOR,
            minor: PROTOCOL_MINOR,
            max_frame: 1 << 20,
            client: "raw".into(),
            token: None,
        }),
    )
    .await;
    for id in 2..12 {
        raw.call(id, Request::Ping).await;
    }
    // A frame's bytes are counted once the write returns, which can be an
    // instant after the client has read them: wait for the count to settle.
    let started = Instant::now();
    let after = loop {
        let after = scrape().await;
        let sent = value(&after, "vsamrd_sent_bytes_total", "")
            - value(&before, "vsamrd_sent_bytes_total", "");
        if sent >= raw.read as f64 || started.elapsed() > Duration::from_secs(5) {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let delta = |name: &str| value(&after, name, "") - value(&before, name, "");
    assert_eq!(
        delta("vsamrd_received_bytes_total"),
        raw.wrote as f64,
        "{after}"
    );
    assert_eq!(delta("vsamrd_sent_bytes_total"), raw.read as f64, "{after}");
    assert_eq!(
        value(&after, "vsamrd_connections_now", handshaking),
        0.0,
        "{after}"
    );
    assert_eq!(
        value(&after, "vsamrd_connections_now", open),
        2.0,
        "{after}"
    );
    drop(raw);

    // A record held for update: the other connection is refused X'14'.
    let other = Connection::connect(&server.address).await.unwrap();
    let mine = Dataset::open(&conn, "MET.ONE", OpenIntent::Update, 1)
        .await
        .unwrap();
    let theirs = Dataset::open(&other, "MET.ONE", OpenIntent::Update, 1)
        .await
        .unwrap();
    mine.read_for_update(b"C0000000").await.unwrap();
    let refused = theirs.read_for_update(b"C0000000").await.unwrap_err();
    assert_eq!(refused.vsam().map(|v| v.fdbk()), Some(0x14), "{refused}");
    mine.close().await.unwrap();
    theirs.close().await.unwrap();
    // A unit of work holding a change, then committed.
    let unit = Dataset::open_with_access(&other, "MET.TWO", OpenIntent::Update, access::COMMIT, 1)
        .await
        .unwrap();
    unit.put(0, RplOptions::direct(), 0, record("U0000001"))
        .await
        .unwrap();
    let text = scrape().await;
    assert_eq!(
        value(
            &text,
            "vsamrd_record_lock_refusals_total",
            r#"held_by="string""#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(value(&text, "vsamrd_units_open", ""), 1.0, "{text}");
    vsam_client::commit(&other).await.unwrap();
    assert_eq!(value(&scrape().await, "vsamrd_units_open", ""), 0.0);
    // No bug met: the series is there, at zero.
    assert_eq!(
        vsam_tests::metric(&scrape().await, "vsamrd_panics_total", ""),
        Some(0.0)
    );

    // Reloads: the result and when.
    assert_eq!(
        value(&scrape().await, "vsamrd_reload_last_timestamp_seconds", ""),
        0.0
    );
    let report = server.server.reloader.reload("test").await;
    assert!(report.error.is_none(), "{report:?}");
    let text = scrape().await;
    assert_eq!(
        value(&text, "vsamrd_reloads_total", r#"result="applied""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "vsamrd_reload_last_success", ""),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "vsamrd_reload_last_timestamp_seconds", ""),
        report.at as f64,
        "{text}"
    );
    drop(unit);
    server.server.stop().await;
}

/// Prometheus (the Debian package scripts/setup installs) scraping a
/// server every second (OpenMetrics text) reads what the test sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_server() {
    let (server, _conn, ds, metrics) = serving(CSV_WASM, "", "PROM.KSDS").await;
    for n in 0..7 {
        ds.put(0, RplOptions::direct(), 0, record(&format!("P{n:07}")))
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vsamrd\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", vsam_tests::free_port());
    let mut prometheus = std::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus (Debian package prometheus; scripts/setup installs it)");
    let query =
        "/api/v1/query?query=vsamrd_requests_total%7Bkind%3D%22PUT%22%2Coutcome%3D%22ok%22%7D";
    let started = Instant::now();
    let answer = loop {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&web)).await
        {
            drop(stream);
            let (status, body) = http_get(&web, query).await;
            if status == 200 && body.contains("\"value\"") {
                break body;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape vsamrd within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let result = &answer["data"]["result"][0];
    assert_eq!(result["metric"]["job"], "vsamrd", "{answer}");
    assert_eq!(result["value"][1], "7", "{answer}");

    // Every query of the Grafana dashboard in examples/ is PromQL this
    // Prometheus runs, on series vsamrd serves.
    let (_, exposed) = http_get(&metrics, "/metrics").await;
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples/grafana/vsamrd-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let encoded: String = expr
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            let (status, body) = http_get(&web, &format!("/api/v1/query?query={encoded}")).await;
            assert!(
                status == 200 && body.contains("\"status\":\"success\""),
                "{expr}: {body}"
            );
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("vsamrd_"))
            {
                let family = ["_bucket", "_total"].iter().fold(name, |name, suffix| {
                    name.strip_suffix(suffix).unwrap_or(name)
                });
                assert!(
                    exposed.contains(&format!("# TYPE {family} ")),
                    "{expr}: vsamrd serves no {family}"
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 13, "{queries}");
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    server.server.stop().await;
}

/// `/readyz` asks the S3 bucket too: unready while it does not answer,
/// naming it; ready again once it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_bucket() {
    let seaweed = SeaweedFs::start().unwrap();
    let upstream = seaweed.endpoint.trim_start_matches("http://").to_string();
    let relay = Relay::start(&upstream).await;
    let bucket = seaweed
        .bucket_table()
        .replace(&seaweed.endpoint, &format!("http://{}", relay.address));
    let (server, _conn, ds, metrics) =
        serving(S3_WASM, &format!("bucket = {bucket}"), "READY.KSDS").await;
    ds.put(0, RplOptions::direct(), 0, record("R0000001"))
        .await
        .unwrap();
    assert_eq!(http_get(&metrics, "/readyz").await.0, 200);
    relay.fall_silent();
    let (status, body) = unready(&metrics).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not ready: bucket") && body.contains("no answer within 2000 ms"),
        "{body}"
    );
    assert_eq!(http_get(&metrics, "/healthz").await.0, 200);
    relay.resume();
    let started = Instant::now();
    while http_get(&metrics, "/readyz").await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(ds);
    server.server.stop().await;
}

/// Whoever reaches the metrics port holds nothing of the server's for
/// long: past the limit per address a connection is closed at once, a
/// connection that sends no request is closed after the header time, and
/// the port answers again once they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_port_bounds_its_connections_and_their_time() {
    use vsam_host::probes::{HEADER_TIMEOUT, MAX_CONNECTIONS_PER_ADDRESS};
    let (server, _conn, _ds, metrics) = serving(CSV_WASM, "", "PROBE.KSDS").await;
    vsam_tests::assert_bounded_port(&metrics, MAX_CONNECTIONS_PER_ADDRESS, HEADER_TIMEOUT).await;
    assert_eq!(http_get(&metrics, "/healthz").await.0, 200);
    server.server.stop().await;
}

/// A server on the CSV plugin whose threads poll `window_us` after each
/// request, and the address of its metrics.
async fn polling_server(window_us: u64) -> (vsam_tests::TestServer, String) {
    let server = vsam_tests::start(&format!(
        "idle_poll_us = {window_us}\n[plugins.p]\npath = \"{CSV_WASM}\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"b\"\n[routing]\ndefault = \"b\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n"
    ))
    .await;
    let metrics = server.server.metrics_addr.unwrap().to_string();
    (server, metrics)
}

/// `vsamrd_idle_poll_seconds_total` now.
async fn polled(metrics: &str) -> f64 {
    value(
        &http_get(metrics, "/metrics").await.1,
        "vsamrd_idle_poll_seconds_total",
        "",
    )
}

/// The polled seconds once they stop growing (the last request's window
/// passed), read every 100 ms; fails if they still grow after 10 s.
async fn settled_polling(metrics: &str) -> f64 {
    let mut settled = polled(metrics).await;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = polled(metrics).await;
        if now == settled {
            return settled;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still polling 10 s after the last request ({now} s)"
        );
        settled = now;
    }
}

/// A runtime with more threads than the machine has cores (a large
/// `TOKIO_WORKER_THREADS`) polls on as many threads as there are cores, not
/// on every thread: extra pollers would only take turns spinning.
#[test]
fn pollers_are_never_more_than_the_cores() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4 * cores)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (server, metrics) = polling_server(10_000).await;
        let first_request = Instant::now();
        let conn = Connection::connect(&server.address).await.unwrap();
        vsam_client::define(&conn, ksds("CORES.KSDS", 8, 40, "ascii"))
            .await
            .unwrap();
        let ds = Dataset::open(&conn, "CORES.KSDS", OpenIntent::Update, 1)
            .await
            .unwrap();
        // Requests for a second: every poller polls all along.
        let mut n = 0u64;
        while first_request.elapsed() < Duration::from_secs(1) {
            let key = format!("K{n:07}");
            ds.put(0, RplOptions::direct(), 0, record(&key))
                .await
                .unwrap();
            ds.read(key.as_bytes()).await.unwrap();
            n += 1;
        }
        let settled = settled_polling(&metrics).await;
        let elapsed = first_request.elapsed().as_secs_f64();
        // It polled, on each of at most `cores` threads: 4 * cores pollers
        // would have polled about four times the bound.
        assert!(settled >= 0.5, "polled only {settled} s in {elapsed} s");
        assert!(
            settled <= cores as f64 * elapsed,
            "polled {settled} s in {elapsed} s with {cores} core(s) and {} runtime threads",
            4 * cores
        );
        drop(ds);
        drop(conn);
        server.server.stop().await;
    });
}

/// `[server] idle_poll_us`: after requests the runtime's threads keep
/// polling for the window, and `vsamrd_idle_poll_seconds_total` counts it; an idle server
/// stops polling (and costs no CPU), and 0 turns polling off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_polls_after_requests_and_not_while_idle() {
    for window_us in [5_000u64, 0] {
        let (server, metrics) = polling_server(window_us).await;
        // Longer than the window: a server that just started polls not at
        // all until a request comes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(polled(&metrics).await, 0.0, "polled before any request");
        let first_request = Instant::now();
        let conn = Connection::connect(&server.address).await.unwrap();
        vsam_client::define(&conn, ksds("POLL.KSDS", 8, 40, "ascii"))
            .await
            .unwrap();
        let ds = Dataset::open(&conn, "POLL.KSDS", OpenIntent::Update, 1)
            .await
            .unwrap();
        for n in 0..100 {
            let key = format!("K{n:07}");
            ds.put(0, RplOptions::direct(), 0, record(&key))
                .await
                .unwrap();
            ds.read(key.as_bytes()).await.unwrap();
        }
        // Idle from here: the count settles once the window passed.
        let settled = settled_polling(&metrics).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(polled(&metrics).await, settled, "polled while idle");
        match window_us {
            0 => assert_eq!(settled, 0.0, "polled with idle_poll_us = 0"),
            _ => {
                // At least the window after the last answer; never more
                // than the time since the first request on each runtime
                // thread (two here), each of which polls.
                assert!(settled >= 0.005, "polled only {settled} s");
                assert!(
                    settled <= 2.0 * first_request.elapsed().as_secs_f64(),
                    "polled {settled} s in {:?}",
                    first_request.elapsed()
                );
            }
        }
        drop(ds);
        drop(conn);
        server.server.stop().await;
    }
}
