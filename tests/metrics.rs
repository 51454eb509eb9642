//! `[metrics]`: a real server under load, scraped over HTTP; the counts
//! match what the test sent. `/readyz` follows the database: unready while
//! PostgreSQL is stopped, ready again once it is back.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
use vsam_conformance::Postgres;
use vsam_tests::{SQL_WASM, ksds, start_with_plugin};

/// GET `path` from `address`: the status code and the body.
async fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
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

/// The value of the series `name` with exactly `labels` (`a="b",c="d"`).
fn value(metrics: &str, name: &str, labels: &str) -> f64 {
    let prefix = match labels {
        "" => format!("{name} "),
        labels => format!("{name}{{{labels}}} "),
    };
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
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
    assert_eq!(count(r#"kind="PUT",outcome="ok",fdbk="""#), 40.0, "{text}");
    assert_eq!(count(r#"kind="GET",outcome="ok",fdbk="""#), 30.0, "{text}");
    assert_eq!(
        count(r#"kind="GET",outcome="logical",fdbk="10""#),
        10.0,
        "{text}"
    );
    assert_eq!(
        count(r#"kind="DEFINE",outcome="ok",fdbk="""#),
        1.0,
        "{text}"
    );
    assert_eq!(count(r#"kind="OPEN",outcome="ok",fdbk="""#), 1.0, "{text}");
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
    assert_eq!(backend("vsamrd_plugin_faults_total"), 0.0, "{text}");
    assert_eq!(value(&text, "vsamrd_requests_in_flight", ""), 0.0, "{text}");
    assert_eq!(value(&text, "vsamrd_connections_open", ""), 1.0, "{text}");

    // Probes.
    assert_eq!(http_get(&metrics, "/healthz").await.0, 200);
    assert_eq!(http_get(&metrics, "/readyz").await.0, 200);
    assert_eq!(http_get(&metrics, "/nothing").await.0, 404);
    postgres.stop().unwrap();
    let (status, body) = http_get(&metrics, "/readyz").await;
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
        "call_timeout_ms = 500",
        "MET.FAULTY",
    )
    .await;
    ds.put(0, RplOptions::direct(), 0, record("OKAY0001"))
        .await
        .unwrap();
    for n in 0..3 {
        let refused = ds
            .put(0, RplOptions::direct(), 0, record(&format!("PANC{n:04}")))
            .await;
        assert_eq!(refused.unwrap_err().vsam().map(|v| v.r15()), Some(12));
    }
    let (_, text) = http_get(&metrics, "/metrics").await;
    assert_eq!(
        value(&text, "vsamrd_plugin_faults_total", r#"backend="b""#),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "vsamrd_requests_total",
            r#"kind="PUT",outcome="physical",fdbk="""#
        ),
        3.0,
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
