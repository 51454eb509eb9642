//! Who gets in and what they may do: TLS with client certificates on the
//! protocol and admin ports, tokens, per-dataset access rules answered with
//! VSAM's security refusal, and the limits that keep one client (or a slow
//! one) from pinning the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use vsam_client::admin::AdminClient;
use vsam_client::{ClientError, ConnectOptions, Connection, Dataset, OpenIntent, TlsOptions};
use vsam_host::RunningServer;
use vsam_host::config::Config;
use vsam_protocol::admin::AdminCommand;
use vsam_protocol::{Answer, Hello, Message, Request, encode_frame, open_error, protocol_error};
use vsam_tests::{ksds, pki, sha256_hex};

const PAYROLL_NAME: &str = "payroll.clients.test";

async fn start(server_section: &str, rest: &str) -> (RunningServer, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server_section}\n\
         [plugins.m]\npath = \"builtin:memory\"\n[backends.b]\nplugin = \"m\"\n[routing]\ndefault = \"b\"\n{rest}",
        data_dir.path().display()
    );
    let config = Config::parse(&text, "<test>", Path::new(".")).unwrap();
    (RunningServer::start(&config).await.unwrap(), data_dir)
}

fn tls(pki: &pki::Pki, client: Option<(&Path, &Path)>) -> Option<TlsOptions> {
    Some(TlsOptions {
        ca_file: Some(pki.ca.clone()),
        certificate: client.map(|(c, k)| (c.to_path_buf(), k.to_path_buf())),
        server_name: None,
    })
}

async fn refused(address: &str, options: &ConnectOptions) -> String {
    match Connection::connect_with(address, options).await {
        Ok(_) => panic!("the server took a client it should refuse"),
        Err(error) => error.to_string(),
    }
}

fn vsam_code(error: ClientError) -> (u8, u8, String) {
    let vsam = error.vsam().expect("a VSAM error").clone();
    (vsam.status.r15, vsam.status.fdbk, vsam.to_string())
}

/// A text line sent to the port, and what came back.
fn probe(address: &str, text: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(text).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_and_tokens_name_clients_and_rules_decide() {
    let pki = pki::make(PAYROLL_NAME);
    let rest = format!(
        r#"
[tls]
certificate = "{}"
key = "{}"
client_ca = "{}"
plain = "refuse"

[[clients]]
name = "payroll"
certificate_name = "{PAYROLL_NAME}"

[[clients]]
name = "audit"
token_sha256 = "{}"

[[access]]
clients = ["payroll"]
datasets = "PAY.**"
level = "alter"

[[access]]
clients = ["audit"]
datasets = "PAY.*"
level = "read"

[[clients]]
name = "hr"
token_sha256 = "{}"

[[access]]
clients = ["hr"]
datasets = "HR.**"
level = "alter"

[[access]]
clients = ["hr"]
datasets = "PAY.MASTER"
level = "alter"
"#,
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display(),
        sha256_hex("audit-token"),
        sha256_hex("hr-token"),
    );
    let (server, _data) = start("", &rest).await;
    let address = server.addr.to_string();

    // Plain TCP is refused with the reason; a text probe still learns what
    // answers.
    // At once: a client without TLS guesses nothing, so it does not wait
    // for `auth_failure_delay_ms` (a second).
    let started = Instant::now();
    let plain = refused(&address, &ConnectOptions::default()).await;
    assert!(plain.contains("TLS connections only"), "{plain}");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "refused in {:?}",
        started.elapsed()
    );
    let identification = probe(&address, b"HELLO?\r\n");
    assert!(
        identification.starts_with("vsamrd ")
            && identification.contains(&format!(
                "VSAM redirector protocol 1.{}",
                vsam_protocol::PROTOCOL_MINOR
            )),
        "{identification:?}"
    );

    // The client certificate names PAYROLL: it may define and update.
    let payroll = ConnectOptions {
        tls: tls(&pki, Some((&pki.client_cert, &pki.client_key))),
        token: None,
        ..Default::default()
    };
    let conn = Connection::connect_with(&address, &payroll).await.unwrap();
    vsam_client::define(&conn, ksds("PAY.MASTER", 4, 40, "cp037"))
        .await
        .unwrap();
    vsam_client::define(&conn, ksds("PAY.MASTER.HISTORY", 4, 40, "cp037"))
        .await
        .unwrap();
    let master = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    master
        .put(
            0,
            vsam_client::RplOptions::direct(),
            0,
            b"0001SMITH".to_vec(),
        )
        .await
        .unwrap();
    master.close().await.unwrap();
    let outside = vsam_client::define(&conn, ksds("HR.STAFF", 4, 40, "cp037"))
        .await
        .unwrap_err();
    let (r15, fdbk, message) = vsam_code(outside);
    assert_eq!((r15, fdbk), (8, open_error::NOT_AUTHORIZED.0), "{message}");
    assert!(
        message.contains("client PAYROLL (by certificate) has no access to HR.STAFF"),
        "{message}"
    );

    // The token names AUDIT: read only, and only one qualifier deep.
    let audit = ConnectOptions {
        tls: tls(&pki, None),
        token: Some("audit-token".into()),
        ..Default::default()
    };
    let conn = Connection::connect_with(&address, &audit).await.unwrap();
    let reader = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Input, 1)
        .await
        .unwrap();
    let record = reader
        .reading(vsam_client::RplOptions::direct())
        .key(b"0001")
        .records()
        .await
        .unwrap();
    assert_eq!(record[0].data, b"0001SMITH");
    let update = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Update, 1)
        .await
        .err()
        .unwrap();
    let (r15, fdbk, message) = vsam_code(update);
    assert_eq!((r15, fdbk), (8, open_error::NOT_AUTHORIZED.0), "{message}");
    assert!(message.contains("file status 37"), "{message}");
    assert!(
        message.contains("has read access to PAY.MASTER, and this needs update"),
        "{message}"
    );
    let deeper = Dataset::open(&conn, "PAY.MASTER.HISTORY", OpenIntent::Input, 1)
        .await
        .err()
        .unwrap();
    assert_eq!(vsam_code(deeper).1, open_error::NOT_AUTHORIZED);
    let delete = vsam_client::delete(&conn, "PAY.MASTER").await.unwrap_err();
    assert_eq!(vsam_code(delete).1, open_error::NOT_AUTHORIZED);
    let listed: Vec<String> = vsam_client::list(&conn, "**")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        listed,
        ["PAY.MASTER"],
        "LIST shows only what the client may read"
    );

    // HR puts an alternate index and a path of its own over PAY.MASTER:
    // PAYROLL's DELETE of PAY.MASTER would remove them, and is refused,
    // naming the index, until HR deletes them.
    let hr = ConnectOptions {
        tls: tls(&pki, None),
        token: Some("hr-token".into()),
        ..Default::default()
    };
    let hr = Connection::connect_with(&address, &hr).await.unwrap();
    reader.close().await.unwrap();
    vsam_client::define_aix(
        &hr,
        vsam_protocol::AixSpec {
            name: "HR.PAYIDX".into(),
            base: "PAY.MASTER".into(),
            key_offset: 4,
            key_length: 5,
            unique: false,
            upgrade: true,
        },
    )
    .await
    .unwrap();
    vsam_client::define_path(
        &hr,
        vsam_protocol::PathSpec {
            name: "HR.PAYPATH".into(),
            aix: "HR.PAYIDX".into(),
        },
    )
    .await
    .unwrap();
    let payroll_conn = Connection::connect_with(&address, &payroll).await.unwrap();
    let refused_delete = vsam_client::delete(&payroll_conn, "PAY.MASTER")
        .await
        .unwrap_err();
    let (r15, fdbk, message) = vsam_code(refused_delete);
    assert_eq!((r15, fdbk), (8, open_error::NOT_AUTHORIZED.0), "{message}");
    assert!(
        message.contains("PAY.MASTER DELETE: not authorized: it would also delete its alternate index HR.PAYIDX, and client PAYROLL (by certificate) has no access to HR.PAYIDX"),
        "{message}"
    );
    for name in ["HR.PAYIDX", "HR.PAYPATH", "PAY.MASTER"] {
        assert!(
            vsam_client::info(&hr, name).await.is_ok(),
            "{name} is still there"
        );
    }
    vsam_client::delete(&hr, "HR.PAYIDX").await.unwrap();
    vsam_client::delete(&payroll_conn, "PAY.MASTER")
        .await
        .unwrap();

    // Nobody else gets in: no credentials, a wrong token, a certificate
    // from a CA the server does not trust.
    let anonymous = refused(
        &address,
        &ConnectOptions {
            tls: tls(&pki, None),
            token: None,
            ..Default::default()
        },
    )
    .await;
    assert!(
        anonymous.contains("takes no anonymous clients"),
        "{anonymous}"
    );
    let wrong = refused(
        &address,
        &ConnectOptions {
            tls: tls(&pki, None),
            token: Some("audit-tokeN".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(wrong.contains("token matches no client"), "{wrong}");
    let stranger = refused(
        &address,
        &ConnectOptions {
            tls: tls(&pki, Some((&pki.stranger_cert, &pki.stranger_key))),
            token: None,
            ..Default::default()
        },
    )
    .await;
    assert!(stranger.contains("cannot connect"), "{stranger}");
    // A client that does not trust the server's CA stops at the handshake.
    let untrusting = refused(
        &address,
        &ConnectOptions {
            tls: Some(TlsOptions {
                ca_file: Some(pki.stranger_cert.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert!(untrusting.contains("TLS handshake failed"), "{untrusting}");

    // The admin port speaks TLS too, and refuses plain TCP with the reason.
    let admin = server.admin_addr.unwrap().to_string();
    let token = std::fs::read_to_string(_data.path().join("admin.token")).unwrap();
    let mut client =
        AdminClient::connect_with(&admin, token.trim().to_string(), tls(&pki, None).as_ref())
            .await
            .unwrap();
    client.request(AdminCommand::Status).await.unwrap();
    let mut plain_admin = AdminClient::connect(&admin, token.trim().to_string())
        .await
        .unwrap();
    let error = plain_admin.request(AdminCommand::Status).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("TLS connections only"),
        "{error:#}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_from_loopback_stays_available_and_tokens_work_without_tls() {
    let pki = pki::make(PAYROLL_NAME);
    let rest = format!(
        r#"
[tls]
certificate = "{}"
key = "{}"

[[clients]]
name = "batch"
token_sha256 = "{}"

[[access]]
clients = ["batch"]
datasets = "**"
level = "alter"

[[access]]
clients = ["anonymous"]
datasets = "PUBLIC.*"
level = "read"
"#,
        pki.server_cert.display(),
        pki.server_key.display(),
        sha256_hex("batch-token"),
    );
    let (server, _data) = start("", &rest).await;
    let address = server.addr.to_string();
    // Loopback: plain TCP is taken (tls.plain defaults to "loopback").
    let batch = ConnectOptions {
        tls: None,
        token: Some("batch-token".into()),
        ..Default::default()
    };
    let conn = Connection::connect_with(&address, &batch).await.unwrap();
    vsam_client::define(&conn, ksds("PUBLIC.NEWS", 4, 40, "cp037"))
        .await
        .unwrap();
    vsam_client::define(&conn, ksds("PRIVATE.NOTES", 4, 40, "cp037"))
        .await
        .unwrap();
    // TLS on the same port, without client certificates.
    let conn = Connection::connect_with(
        &address,
        &ConnectOptions {
            tls: tls(&pki, None),
            token: None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Dataset::open(&conn, "PUBLIC.NEWS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let private = Dataset::open(&conn, "PRIVATE.NOTES", OpenIntent::Input, 1)
        .await
        .err()
        .unwrap();
    let (_, fdbk, message) = vsam_code(private);
    assert_eq!(fdbk, open_error::NOT_AUTHORIZED);
    assert!(
        message.contains("an anonymous client has no access to PRIVATE.NOTES"),
        "{message}"
    );
    server.stop().await;
}

/// A HELLO frame of client `client`, with `token` if given.
fn hello_frame(client: &str, token: Option<&str>) -> Vec<u8> {
    encode_frame(
        0,
        &Request::Hello(Hello {
            major: 1,
            minor: 3,
            max_frame: 1 << 20,
            client: client.into(),
            token: token.map(Into::into),
        }),
    )
}

fn raw_hello(stream: &mut TcpStream) {
    stream.write_all(&hello_frame("raw", None)).unwrap();
    match read_answer(stream) {
        Some(Answer::Welcome(_)) => {}
        other => panic!("no WELCOME: {other:?}"),
    }
}

fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut frame = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut frame).ok()?;
    Some(Answer::decode_payload(frame[0], &frame[5..]).unwrap())
}

/// Waits for the fatal PROTOCOL_ERROR a closing connection gets; returns
/// its message and how long it took.
fn closed_with(stream: &mut TcpStream, code: u16) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    match read_answer(stream) {
        Some(Answer::ProtocolError {
            code: got,
            fatal: true,
            message,
        }) if got == code => (message, started.elapsed()),
        other => panic!("expected a fatal protocol error {code}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_time_limits_hold_against_greedy_and_slow_clients() {
    let (server, _data) = start(
        "max_connections_per_address = 3\nidle_timeout_secs = 3\nrequest_timeout_secs = 1\nhandshake_timeout_secs = 2\nmax_record = 1000",
        "",
    )
    .await;
    let address = server.addr.to_string();
    let checker = Connection::connect(&address).await.unwrap();

    // One address gets three connections; the fourth is told why not.
    let second = Connection::connect(&address).await.unwrap();
    let third = Connection::connect(&address).await.unwrap();
    let over = refused(&address, &ConnectOptions::default()).await;
    assert!(
        over.contains("too many connections from 127.0.0.1"),
        "{over}"
    );
    assert!(over.contains("max_connections_per_address"), "{over}");
    drop((second, third));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let address_for_blocking = address.clone();
    let slow = tokio::task::spawn_blocking(move || {
        let address = address_for_blocking;
        // Slowloris: a request begun and never finished is cut off after
        // request_timeout_secs (1 s), checked within another second.
        let mut slow = TcpStream::connect(&address).unwrap();
        raw_hello(&mut slow);
        slow.write_all(&[0, 0, 0, 40, 0x02]).unwrap();
        let (message, took) = closed_with(&mut slow, protocol_error::TIMEOUT);
        assert!(message.contains("did not arrive whole"), "{message}");
        assert!(took < Duration::from_secs(3), "took {took:?}");

        // Idle: closed after idle_timeout_secs (3 s).
        let mut idle = TcpStream::connect(&address).unwrap();
        raw_hello(&mut idle);
        let (message, took) = closed_with(&mut idle, protocol_error::TIMEOUT);
        assert!(message.contains("no request for 3s"), "{message}");
        assert!(
            took >= Duration::from_millis(2900) && took < Duration::from_secs(5),
            "took {took:?}"
        );

        // No HELLO at all: closed after handshake_timeout_secs (2 s).
        let mut silent = TcpStream::connect(&address).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = silent.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
    });
    // Meanwhile a working client is served throughout.
    while !slow.is_finished() {
        vsam_client::ping(&checker).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    slow.await.unwrap();

    // A client that sends requests and never reads the answers is closed
    // once the server has waited request_timeout_secs to send one.
    let conn = Connection::connect(&address).await.unwrap();
    vsam_client::define(&conn, ksds("BIG.ANSWERS", 4, 1000, "cp037"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "BIG.ANSWERS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(
        0,
        vsam_client::RplOptions::direct(),
        0,
        [b"0001".as_slice(), &[b'x'; 996]].concat(),
    )
    .await
    .unwrap();
    ds.close().await.unwrap();
    let address_for_blocking = address.clone();
    let greedy = tokio::task::spawn_blocking(move || {
        let mut greedy = TcpStream::connect(&address_for_blocking).unwrap();
        raw_hello(&mut greedy);
        let open = encode_frame(
            1,
            &Request::Open(vsam_protocol::Open {
                dataset: "BIG.ANSWERS".into(),
                intent: OpenIntent::Input,
                access: 0,
                strings: 1,
            }),
        );
        greedy.write_all(&open).unwrap();
        let get = encode_frame(
            2,
            &Request::Get(vsam_protocol::Get {
                target: vsam_protocol::StringRef {
                    handle: 1,
                    string: 0,
                },
                options: vsam_protocol::options::bits::KEY | vsam_protocol::options::bits::DIR,
                key: b"0001".to_vec(),
                generic_length: 0,
                address: 0,
                max_records: 1,
            }),
        );
        // 64 MiB of answers: far more than the socket buffers hold.
        greedy
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        let mut sent = 0;
        while sent < 64 * 1024 && greedy.write_all(&get).is_ok() {
            sent += 1;
        }
        // The server stops reading once it cannot send; its time limit
        // then closes the connection, which ends the writes or the reads.
        greedy
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        let mut answers = 0;
        while read_answer(&mut greedy).is_some() {
            answers += 1;
        }
        assert!(
            answers < sent,
            "{answers} answers for {sent} requests: the connection was not cut"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );
    });
    while !greedy.is_finished() {
        vsam_client::ping(&checker).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    greedy.await.unwrap();

    // A DEFINE beyond max_record is refused with the limit's name.
    let conn = Connection::connect(&address).await.unwrap();
    let big = vsam_client::define(&conn, ksds("BIG.RECORDS", 4, 2000, "cp037"))
        .await
        .unwrap_err();
    let (_, _, message) = vsam_code(big);
    assert!(message.contains("max_record = 1000"), "{message}");
    server.stop().await;
}

/// Sockets that never say HELLO hold places in the handshake budget only:
/// they cannot lock out a client that completes its handshake, a flood
/// past the handshake budget is refused while connected clients work on,
/// and the budget is free again once the silent sockets time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_say_hello_cannot_lock_clients_out() {
    let (server, _data) = start(
        "max_connections = 4\nmax_connections_per_address = 4\nmax_handshakes = 32\nmax_handshakes_per_address = 32\nhandshake_timeout_secs = 2",
        "",
    )
    .await;
    let address = server.addr.to_string();
    let working = Connection::connect(&address).await.unwrap();
    // Many more silent sockets than max_connections.
    let silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = Connection::connect(&address)
        .await
        .expect("a client that says HELLO gets in beside 20 silent sockets");
    vsam_client::ping(&late).await.unwrap();
    // Past the handshake budget: new connections are refused, saying why.
    let more: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let over = refused(&address, &ConnectOptions::default()).await;
    assert!(
        over.contains("too many connections in the handshake") && over.contains("max_handshakes"),
        "{over}"
    );
    vsam_client::ping(&working).await.unwrap();
    // The silent ones time out (2 s) and free the budget.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = Connection::connect(&address).await.unwrap();
    vsam_client::ping(&again).await.unwrap();
    drop((silent, more));
    server.stop().await;
}

/// Frames being received share a server-wide memory budget: while one
/// client holds most of it with a large unfinished frame, another's large
/// frame is refused with PROTOCOL_ERROR 9 saying why; small requests go on,
/// and the budget is back once the first frame is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_being_received_share_a_memory_budget() {
    let (server, _data) = start("frame_memory_mb = 1", "").await;
    let address = server.addr.to_string();
    let checker = Connection::connect(&address).await.unwrap();
    let address_for_blocking = address.clone();
    tokio::task::spawn_blocking(move || {
        let address = address_for_blocking;
        let frame_header = |length: u32| {
            let mut header = length.to_be_bytes().to_vec();
            header.push(0x02);
            header.extend_from_slice(&[0, 0, 0, 1]);
            header
        };
        let mut holder = TcpStream::connect(&address).unwrap();
        raw_hello(&mut holder);
        holder.write_all(&frame_header(900 * 1024)).unwrap();
        holder.write_all(&vec![0u8; 100 * 1024]).unwrap();
        std::thread::sleep(Duration::from_millis(200));

        let mut second = TcpStream::connect(&address).unwrap();
        raw_hello(&mut second);
        second.write_all(&frame_header(900 * 1024)).unwrap();
        let (message, _) = closed_with(&mut second, protocol_error::LIMIT);
        assert!(
            message.contains("memory budget for frames being received (1 MiB"),
            "{message}"
        );
        drop(holder);
        std::thread::sleep(Duration::from_millis(300));
        let mut third = TcpStream::connect(&address).unwrap();
        raw_hello(&mut third);
        third.write_all(&frame_header(900 * 1024)).unwrap();
        third
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(
            matches!(third.read(&mut byte), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
            "the budget is free again: the frame waits for its bytes"
        );
    })
    .await
    .unwrap();
    vsam_client::ping(&checker).await.unwrap();
    server.stop().await;
}

/// A TLS key and an admin token every user of the machine may read are
/// named in the log at start, with the cure, and so are a data dir and a
/// backend's directory outside it that every user may read; private, they
/// are not. What vsamrd makes itself is private from the start.
#[test]
fn secrets_and_records_every_user_may_read_are_named_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let pki = pki::make(PAYROLL_NAME);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, "a-token-of-the-operators-own\n").unwrap();
    let (data, outside) = (dir.path().join("data"), dir.path().join("outside"));
    let port = vsam_tests::free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n\
         [tls]\ncertificate = \"{}\"\nkey = \"{}\"\n\
         [plugins.p]\npath = \"{}\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"{}\"\n[routing]\ndefault = \"b\"\n",
        data.display(),
        token.display(),
        pki.server_cert.display(),
        pki.server_key.display(),
        vsam_tests::MEMORY_WASM,
        outside.display(),
    );
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let set = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let run = |files: u32, dirs: Option<u32>| {
        for file in [&token, &pki.server_key] {
            set(file, files);
        }
        if let Some(dirs) = dirs {
            for made in [&data, &outside] {
                set(made, dirs);
            }
        }
        vsam_tests::logged::LoggedServer::start(dir.path(), port, &config, "warn").stop()
    };
    let fresh = run(0o600, None);
    assert_eq!((mode(&data), mode(&outside)), (0o700, 0o700));
    assert!(
        !fresh.contains("every user of this machine may read it"),
        "{fresh}"
    );

    let open = run(0o644, Some(0o755));
    for (path, held, mode) in [
        (
            &token,
            "the admin token (whoever reads it administers vsamrd)",
            "0644",
        ),
        (&pki.server_key, "the TLS private key", "0644"),
        (&data, "the datasets' records (vsamrd's data dir)", "0755"),
        (&outside, "backend b's records", "0755"),
    ] {
        let warning = format!(
            "{} holds {held}, and every user of this machine may read it (mode {mode}): chmod o-rwx {}",
            path.display(),
            path.display()
        );
        assert!(open.contains(&warning), "{warning:?} not in:\n{open}");
    }
    let private = run(0o600, Some(0o700));
    assert!(
        !private.contains("every user of this machine may read it"),
        "{private}"
    );
}

/// Two clients with one certificate name (a block copied and not changed)
/// are refused at config check: the second would never be told apart from
/// the first, and would get its rights.
#[test]
fn two_clients_of_one_certificate_name_are_refused() {
    let pki = pki::make(PAYROLL_NAME);
    let text = format!(
        "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n\
         [[clients]]\nname = \"payroll\"\ncertificate_name = \"{PAYROLL_NAME}\"\n\
         [[clients]]\nname = \"reports\"\ncertificate_name = \"{}\"\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display(),
        PAYROLL_NAME.to_uppercase(),
    );
    let error = Config::parse(&text, "<test>", Path::new(".")).unwrap_err();
    assert_eq!(error.field, "clients[1].certificate_name", "{error}");
    assert!(
        error
            .message
            .contains("client REPORTS has the certificate name of client PAYROLL"),
        "{error}"
    );
}

/// A HELLO carrying `token` on a fresh connection to `address`: the
/// answer, and how long it took.
fn hello_with_token(address: &str, token: Option<&str>) -> (Option<Answer>, Duration) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(&hello_frame("guess", token)).unwrap();
    (read_answer(&mut stream), started.elapsed())
}

/// An admin client that asks and never reads its answers is let go once
/// an answer waits past `request_timeout_secs`, as on the protocol port:
/// its task ends, and with it what it held of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_client_that_does_not_take_its_answers_is_let_go() {
    let (server, data) = start("request_timeout_secs = 1", "").await;
    let admin = server.admin_addr.unwrap();
    let token = std::fs::read_to_string(data.path().join("admin.token")).unwrap();
    let line = serde_json::to_string(&vsam_protocol::admin::AdminRequest {
        token: token.trim().to_string(),
        command: AdminCommand::Status,
    })
    .unwrap()
        + "\n";
    let outcome = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(admin).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // Ask until the server stops reading: its answers fill both ends'
        // buffers, and it waits to send the next.
        let started = Instant::now();
        let requests = line.repeat(100);
        while stream.write_all(requests.as_bytes()).is_ok() {
            assert!(started.elapsed() < Duration::from_secs(60), "never blocked");
        }
        std::thread::sleep(Duration::from_secs(3));
        // Let go: the server closed, and the connection is reset.
        stream.write_all(requests.as_bytes()).map_err(|e| e.kind())
    })
    .await
    .unwrap();
    assert!(
        matches!(
            outcome,
            Err(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
        ),
        "the connection still open after its answer waited 3 s: {outcome:?}"
    );
    server.stop().await;
}

/// Someone guessing tokens gets one answer per connection and per second
/// (`[server] auth_failure_delay_ms`), on the protocol and the admin port,
/// while a client that is taken never waits; and a flood of connections
/// closed at once, or of wrong tokens, writes a bounded number of log
/// lines, the rest counted.
#[test]
fn guessing_tokens_is_slowed_and_floods_of_refusals_do_not_flood_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin_port) = (vsam_tests::free_port(), vsam_tests::free_port());
    let metrics_port = vsam_tests::free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [plugins.m]\npath = \"builtin:memory\"\n[backends.b]\nplugin = \"m\"\n[routing]\ndefault = \"b\"\n\
         [[clients]]\nname = \"batch\"\ntoken_sha256 = \"{}\"\n\
         [[clients]]\nname = \"reader\"\ntoken_sha256 = \"{}\"\n\
         [[access]]\nclients = [\"batch\"]\ndatasets = \"**\"\nlevel = \"alter\"\n\
         [[access]]\nclients = [\"reader\"]\ndatasets = \"PUBLIC.*\"\nlevel = \"read\"\n",
        dir.path().join("data").display(),
        sha256_hex("batch-token"),
        sha256_hex("reader-token"),
    );
    let server = vsam_tests::logged::LoggedServer::start(dir.path(), port, &config, "info");
    let address = server.address.clone();

    // A wrong token waits a second (the default) for its refusal; a right
    // one sent meanwhile is welcomed at once.
    let guessing = {
        let address = address.clone();
        std::thread::spawn(move || hello_with_token(&address, Some("batch-tokeN")))
    };
    std::thread::sleep(Duration::from_millis(100));
    let (taken, taken_in) = hello_with_token(&address, Some("batch-token"));
    assert!(matches!(taken, Some(Answer::Welcome(_))), "{taken:?}");
    let (refused, refused_in) = guessing.join().unwrap();
    match refused {
        Some(Answer::ProtocolError { code, message, .. }) => {
            assert_eq!(code, protocol_error::NOT_AUTHENTICATED);
            assert!(message.contains("token matches no client"), "{message}");
        }
        other => panic!("expected the token's refusal, got {other:?}"),
    }
    assert!(
        refused_in >= Duration::from_millis(1000) && taken_in < Duration::from_millis(800),
        "refused in {refused_in:?}, taken in {taken_in:?}"
    );
    // No credentials at all is no guess: a client not configured with its
    // token learns why at once.
    let (anonymous, anonymous_in) = hello_with_token(&address, None);
    match anonymous {
        Some(Answer::ProtocolError { code, message, .. }) => {
            assert_eq!(code, protocol_error::NOT_AUTHENTICATED);
            assert!(message.contains("takes no anonymous clients"), "{message}");
        }
        other => panic!("expected the anonymous refusal, got {other:?}"),
    }
    assert!(
        anonymous_in < Duration::from_millis(800),
        "refused in {anonymous_in:?}"
    );
    // A client announcing too small a frame is answered as a limit, and
    // counted as a client this server cannot speak with, not as a
    // connection limit.
    let mut tiny = TcpStream::connect(&address).unwrap();
    tiny.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    tiny.write_all(&encode_frame(
        0,
        &Request::Hello(Hello {
            major: 1,
            minor: 3,
            max_frame: 10,
            client: "tiny".into(),
            token: Some("batch-token".into()),
        }),
    ))
    .unwrap();
    match read_answer(&mut tiny) {
        Some(Answer::ProtocolError { code, .. }) => assert_eq!(code, protocol_error::LIMIT),
        other => panic!("expected the frame size's refusal, got {other:?}"),
    }

    // The admin port: wrong tokens sent in one go get one answer, after
    // the delay, and the connection ends.
    let mut admin = TcpStream::connect(("127.0.0.1", admin_port)).unwrap();
    admin
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let guesses: String = (0..100)
        .map(|n| {
            format!("{{\"token\": \"guess-{n:04}-of-the-admin-token\", \"command\": \"status\"}}\n")
        })
        .collect();
    admin.write_all(guesses.as_bytes()).unwrap();
    let mut answers = String::new();
    let _ = admin.read_to_string(&mut answers);
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(answers.lines().count(), 1, "{answers}");
    assert!(answers.contains("wrong admin token"), "{answers}");

    // A thousand connections closed before saying anything, and a
    // thousand OPENs the access rules refuse, each followed a second later
    // by one more: the log keeps its share of each, and the last line
    // counts the rest.
    let flood = 1000;
    let started = Instant::now();
    for _ in 0..flood {
        drop(TcpStream::connect(&address).unwrap());
    }
    std::thread::sleep(Duration::from_millis(1100));
    drop(TcpStream::connect(&address).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let batch = ConnectOptions {
            token: Some("batch-token".into()),
            ..Default::default()
        };
        let conn = Connection::connect_with(&address, &batch).await.unwrap();
        vsam_client::define(&conn, ksds("PAY.MASTER", 4, 40, "cp037"))
            .await
            .unwrap();
        let reader = ConnectOptions {
            token: Some("reader-token".into()),
            ..Default::default()
        };
        let conn = Connection::connect_with(&address, &reader).await.unwrap();
        for _ in 0..flood {
            let refused = Dataset::open(&conn, "PAY.MASTER", OpenIntent::Input, 1).await;
            assert_eq!(
                vsam_code(refused.err().unwrap()).1,
                open_error::NOT_AUTHORIZED
            );
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            Dataset::open(&conn, "PAY.MASTER", OpenIntent::Input, 1)
                .await
                .is_err()
        );
    });
    let flooding = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    // Every refusal is counted, whatever the log kept: the guess and the
    // anonymous HELLO, the admin guesses (one answered), the tiny frame,
    // and every connection closed at once
    // or turned away by the limit (the flood, the one after it, and the
    // start's probe).
    let (_, scrape) = runtime.block_on(vsam_tests::http_get(
        &format!("127.0.0.1:{metrics_port}"),
        "/metrics",
    ));
    let refused = |reason: &str| {
        vsam_tests::metric(
            &scrape,
            "vsamrd_connections_refused_total",
            &format!("reason=\"{reason}\""),
        )
        .unwrap_or_else(|| panic!("no refusals for {reason} in:\n{scrape}")) as u64
    };
    assert_eq!(refused("authentication"), 2, "{scrape}");
    assert_eq!(refused("admin_token"), 1, "{scrape}");
    assert_eq!(refused("protocol"), 1, "{scrape}");
    assert_eq!(refused("tls"), 0, "{scrape}");
    assert_eq!(refused("closed") + refused("limit"), flood + 2, "{scrape}");
    let log = server.stop();
    let most = (flooding.as_secs() as usize + 1) * vsam_host::log_limit::LINES_PER_SECOND as usize;
    // A connection closed at once is seen closing in its handshake, or
    // refused before it when 64 from this address are still in theirs
    // (the last of those suppressed are not counted by any line: no
    // refusal followed). One more closed at once: the start's probe.
    let (closed, closed_suppressed) =
        lines_and_suppressed(&log, "connection closed before the handshake");
    let (busy, busy_suppressed) =
        lines_and_suppressed(&log, "too many connections in the handshake");
    let (refused, refused_suppressed) = lines_and_suppressed(
        &log,
        "refused: client READER (by token) has no access to PAY.MASTER",
    );
    let counts = format!(
        "closed {closed} + {closed_suppressed}, busy {busy} + {busy_suppressed}, refused {refused} + {refused_suppressed}, in {flooding:?}"
    );
    assert!(
        closed <= most && busy <= most && refused <= most,
        "{counts}"
    );
    assert!(closed_suppressed > 0 && refused_suppressed > 0, "{counts}");
    assert!(
        (closed + busy) as u64 + closed_suppressed + busy_suppressed <= flood + 2,
        "{counts}"
    );
    assert_eq!(refused as u64 + refused_suppressed, flood + 1, "{counts}");
}

/// How many lines of `log` contain `text`, and how many more like them
/// their `suppressed` fields count.
fn lines_and_suppressed(log: &str, text: &str) -> (usize, u64) {
    let lines: Vec<&str> = log.lines().filter(|line| line.contains(text)).collect();
    let suppressed = lines
        .iter()
        .filter_map(|line| line.split("suppressed=").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    (lines.len(), suppressed)
}

/// A server on TLS only, from `DIR/vsamrd.toml` (so that reloads read
/// it again), with its data in `DIR/data`, the certificate and key
/// `files`, and `sections` beside.
async fn start_tls_from_file(dir: &Path, files: (&Path, &Path), sections: &str) -> RunningServer {
    let file = dir.join("vsamrd.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{sections}\
             [tls]\ncertificate = \"{}\"\nkey = \"{}\"\nplain = \"refuse\"\n\
             [plugins.m]\npath = \"builtin:memory\"\n[backends.b]\nplugin = \"m\"\n[routing]\ndefault = \"b\"\n",
            dir.join("data").display(),
            files.0.display(),
            files.1.display(),
        ),
    )
    .unwrap();
    RunningServer::start_source(
        vsam_host::reload::ConfigSource::file(file),
        Default::default(),
    )
    .await
    .unwrap()
}

/// A certificate renewed in its files serves new connections after a
/// reload, without a restart: connections open keep theirs, clients that
/// trust only the old CA are refused, `/metrics` shows the new end, and
/// files that do not make an identity refuse the reload while the
/// running certificate serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_serves_new_connections_after_a_reload() {
    let (old, new) = (pki::make(PAYROLL_NAME), pki::make(PAYROLL_NAME));
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::copy(&old.server_cert, &cert).unwrap();
    std::fs::copy(&old.server_key, &key).unwrap();
    let server = start_tls_from_file(
        dir.path(),
        (&cert, &key),
        "[admin]\nwatch_files = false\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .await;
    let address = server.addr.to_string();
    let metrics = server.metrics_addr.unwrap().to_string();
    let trusting = |pki: &pki::Pki| ConnectOptions {
        tls: tls(pki, None),
        ..Default::default()
    };
    let scraped = |name: &'static str, labels: &'static str| {
        let metrics = metrics.clone();
        async move {
            let (_, text) = vsam_tests::http_get(&metrics, "/metrics").await;
            vsam_tests::metric(&text, name, labels)
                .unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{text}"))
        }
    };
    let open = Connection::connect_with(&address, &trusting(&old))
        .await
        .unwrap();
    let before = scraped("vsamrd_tls_certificate_expiry_timestamp_seconds", "").await;
    assert!(before > 1_900_000_000.0, "{before}");
    assert!(
        server.reloader.watched_files().await.contains(&cert),
        "a watcher reloads on a renewed certificate"
    );

    std::fs::copy(&new.server_cert, &cert).unwrap();
    std::fs::copy(&new.server_key, &key).unwrap();
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.error.is_none() && reload.notes.is_empty(),
        "{reload:?}"
    );
    assert!(
        reload
            .changes
            .iter()
            .any(|c| c.starts_with("TLS: certificate ")
                && c.ends_with("for new connections (those open keep theirs)")),
        "{reload:?}"
    );
    Connection::connect_with(&address, &trusting(&new))
        .await
        .unwrap();
    let refused = refused(&address, &trusting(&old)).await;
    assert!(refused.contains("TLS handshake failed"), "{refused}");
    // The server counts the failed TLS handshake (once it has seen it).
    let started = Instant::now();
    while scraped("vsamrd_connections_refused_total", "reason=\"tls\"").await == 0.0 {
        assert!(started.elapsed() < Duration::from_secs(5), "not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    vsam_client::list(&open, "**").await.unwrap();
    // The same files again: nothing to report.
    let reload = server.reloader.reload("test").await;
    assert!(
        reload.changes.is_empty() && reload.error.is_none(),
        "{reload:?}"
    );

    // A key that is not one: refused, and the renewed certificate serves on.
    std::fs::write(&key, "not a key\n").unwrap();
    let reload = server.reloader.reload("test").await;
    let error = reload.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("[tls] key {}", key.display()))
            && error.contains("the running configuration and plugins keep serving"),
        "{reload:?}"
    );
    Connection::connect_with(&address, &trusting(&new))
        .await
        .unwrap();
    drop(open);
    server.stop().await;
}

/// Certificates and configuration mounted the way Kubernetes mounts a
/// secret or a config map (each file a link through `..data`, a link to a
/// directory of the version, swapped by one rename) and the way certbot
/// renews (each link in `live/` pointed at the next file in `archive/`)
/// are renewed in place without an event on the files' own names: the
/// watcher still reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_renewed_behind_symlinks_are_reloaded_by_the_watcher() {
    use std::os::unix::fs::symlink;
    let (first, second, third) = (
        pki::make(PAYROLL_NAME),
        pki::make(PAYROLL_NAME),
        pki::make(PAYROLL_NAME),
    );
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("secret");
    let version = |name: &str, pki: &pki::Pki| {
        let path = mounted.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::copy(&pki.server_cert, path.join("server.pem")).unwrap();
        std::fs::copy(&pki.server_key, path.join("server.key")).unwrap();
    };
    version("..2026_12_01", &first);
    symlink("..2026_12_01", mounted.join("..data")).unwrap();
    for file in ["server.pem", "server.key"] {
        symlink(format!("..data/{file}"), mounted.join(file)).unwrap();
    }
    let server = start_tls_from_file(
        dir.path(),
        (&mounted.join("server.pem"), &mounted.join("server.key")),
        "[admin]\nwatch_files = true\n",
    )
    .await;
    let address = server.addr.to_string();
    let trusting = |pki: &pki::Pki| ConnectOptions {
        tls: tls(pki, None),
        ..Default::default()
    };
    Connection::connect_with(&address, &trusting(&first))
        .await
        .unwrap();
    let served_by = |pki: pki::Pki, what: &'static str| {
        let (address, reloader) = (address.clone(), server.reloader.clone());
        async move {
            let started = Instant::now();
            while Connection::connect_with(&address, &trusting(&pki))
                .await
                .is_err()
            {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{what}: not reloaded; last reload: {:?}",
                    reloader.last_report()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let report = reloader.last_report().unwrap();
            assert_eq!(
                (report.trigger.as_str(), &report.error),
                ("file change", &None)
            );
        }
    };

    // Kubernetes: the next version beside, `..data` swapped by a rename,
    // the old version removed.
    version("..2026_12_02", &second);
    symlink("..2026_12_02", mounted.join("..data_tmp")).unwrap();
    std::fs::rename(mounted.join("..data_tmp"), mounted.join("..data")).unwrap();
    std::fs::remove_dir_all(mounted.join("..2026_12_01")).unwrap();
    served_by(second, "a secret swapped by its ..data link").await;
    let refused = refused(&address, &trusting(&first)).await;
    assert!(refused.contains("TLS handshake failed"), "{refused}");

    // certbot: each link (in live/) pointed at the next files in
    // archive/, one after the other.
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::copy(&third.server_cert, archive.join("cert2.pem")).unwrap();
    std::fs::copy(&third.server_key, archive.join("privkey2.pem")).unwrap();
    for (link, target) in [("server.pem", "cert2.pem"), ("server.key", "privkey2.pem")] {
        std::fs::remove_file(mounted.join(link)).unwrap();
        symlink(archive.join(target), mounted.join(link)).unwrap();
    }
    served_by(third, "links pointed at renewed files").await;
    server.stop().await;
}

/// Both ends of a connection probe it when idle (TCP keepalive: 30 s,
/// then every 10 s), so that a peer gone without a word is found within a
/// minute: a client's locks are not held for the hour of its idle time
/// limit, and a client does not wait forever for an answer. An address
/// that takes the connection and says nothing is given up after the
/// client's connect time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_probed_and_a_silent_address_is_given_up() {
    let (server, _data) = start("", "").await;
    let port = server.addr.port();
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::list(&conn, "**").await.unwrap();
    // The server's end and the client's, each with its keepalive timer
    // once nothing is in flight (ss shows one timer at a time).
    let ends = |sockets: &str| -> Vec<String> {
        sockets
            .lines()
            .filter(|line| line.contains(&format!("127.0.0.1:{port} ")))
            .map(str::to_string)
            .collect()
    };
    let started = Instant::now();
    loop {
        let sockets = std::process::Command::new("ss")
            .args(["-tno", "state", "established"])
            .output()
            .unwrap();
        let sockets = String::from_utf8_lossy(&sockets.stdout).into_owned();
        let ours = ends(&sockets);
        assert_eq!(ours.len(), 2, "{sockets}");
        if ours.iter().all(|line| line.contains("timer:(keepalive,")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{sockets}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(conn);
    server.stop().await;

    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let error = Connection::connect_with(
        &silent.local_addr().unwrap().to_string(),
        &ConnectOptions {
            connect_timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        },
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        error.contains("no connection and WELCOME within 500ms: the address does not answer, or answers without speaking the redirector protocol"),
        "{error}"
    );
}
