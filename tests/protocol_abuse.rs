//! Bad input over the wire: a wrong first frame, malformed, truncated,
//! oversized and unknown frames, random bytes and random requests. Each gets
//! a specific answer (or the connection closed with a reason), and the
//! server and every other client carry on.

use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;
use vsam_protocol::{
    Answer, Get, Hello, Message, Open, OpenIntent, Put, Request, StringRef, encode_frame,
    protocol_error,
};
use vsam_tests::logged::LoggedServer;
use vsam_tests::{MEMORY_WASM, TestServer, start_with_plugin};

/// One server for the whole file, on a runtime of its own.
fn server() -> &'static str {
    static SERVER: OnceLock<(tokio::runtime::Runtime, TestServer)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let server = runtime.block_on(start_with_plugin(MEMORY_WASM, ""));
            (runtime, server)
        })
        .1
        .address
}

fn connect() -> TcpStream {
    let stream = TcpStream::connect(server()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn hello() -> Vec<u8> {
    encode_frame(
        0,
        &Request::Hello(Hello {
            major: 1,
            minor: 0,
            max_frame: 1 << 20,
            client: "abuse".into(),
            token: None,
        }),
    )
}

/// Reads one answer frame, or None when the server closed the connection.
fn read_answer(stream: &mut TcpStream) -> Option<(u32, Answer)> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut frame = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut frame).ok()?;
    let id = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
    Some((
        id,
        Answer::decode_payload(frame[0], &frame[5..]).expect("the server sends valid frames"),
    ))
}

/// Reads a PROTOCOL_ERROR with this code and fatality; returns its message.
fn expect_protocol_error(
    stream: &mut TcpStream,
    id: Option<u32>,
    code: u16,
    fatal: bool,
) -> String {
    match read_answer(stream) {
        Some((
            got,
            Answer::ProtocolError {
                code: got_code,
                fatal: got_fatal,
                message,
            },
        )) if got_code == code && got_fatal == fatal && id.is_none_or(|id| id == got) => message,
        other => panic!("expected protocol error {code} (fatal {fatal}), got {other:?}"),
    }
}

fn handshaken() -> TcpStream {
    let mut stream = connect();
    stream.write_all(&hello()).unwrap();
    assert!(matches!(
        read_answer(&mut stream),
        Some((0, Answer::Welcome(_)))
    ));
    stream
}

fn ping_works() {
    let mut stream = handshaken();
    stream.write_all(&encode_frame(77, &Request::Ping)).unwrap();
    match read_answer(&mut stream) {
        Some((77, Answer::Result { status, .. })) => assert!(status.is_ok()),
        other => panic!("PING got {other:?}"),
    }
}

fn expect_closed(stream: &mut TcpStream) {
    assert!(
        read_answer(stream).is_none(),
        "the connection should be closed"
    );
}

#[test]
fn a_request_before_hello_is_refused_with_a_reason() {
    let mut stream = connect();
    stream.write_all(&encode_frame(1, &Request::Ping)).unwrap();
    let message =
        expect_protocol_error(&mut stream, None, protocol_error::HANDSHAKE_REQUIRED, true);
    assert!(message.contains("HELLO"), "{message}");
    expect_closed(&mut stream);
    ping_works();
}

#[test]
fn another_major_version_is_refused() {
    let mut stream = connect();
    stream
        .write_all(&encode_frame(
            0,
            &Request::Hello(Hello {
                major: 9,
                minor: 0,
                max_frame: 1024,
                client: "x".into(),
                token: None,
            }),
        ))
        .unwrap();
    match read_answer(&mut stream) {
        Some((_, Answer::ProtocolError { code, message, .. })) => {
            assert_eq!(code, protocol_error::VERSION);
            assert!(
                message.contains("9.0")
                    && message.contains(&format!(
                        "{}.{}",
                        vsam_protocol::PROTOCOL_MAJOR,
                        vsam_protocol::PROTOCOL_MINOR
                    )),
                "{message}"
            );
        }
        other => panic!("got {other:?}"),
    }
    expect_closed(&mut stream);
}

#[test]
fn a_client_of_an_older_minor_is_answered_in_its_minor() {
    let mut stream = connect();
    stream.write_all(&hello()).unwrap();
    match read_answer(&mut stream) {
        Some((_, Answer::Welcome(welcome))) => {
            assert_eq!((welcome.major, welcome.minor), (1, 0));
        }
        other => panic!("got {other:?}"),
    }
}

#[test]
fn a_stray_http_request_learns_what_answers() {
    let mut stream = connect();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(
        text.starts_with("vsamrd ") && text.contains("VSAM") && text.ends_with("\r\n"),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 1);
}

#[test]
fn malformed_and_unknown_frames_fail_alone() {
    let mut stream = handshaken();
    // A GET cut short inside its handle field.
    stream
        .write_all(&[0, 0, 0, 7, 0x20, 0, 0, 0, 5, 0, 1])
        .unwrap();
    match read_answer(&mut stream) {
        Some((
            5,
            Answer::ProtocolError {
                code,
                fatal: false,
                message,
            },
        )) => {
            assert_eq!(code, protocol_error::MALFORMED);
            assert!(
                message.contains("GET") && message.contains("handle"),
                "{message}"
            );
        }
        other => panic!("got {other:?}"),
    }
    stream.write_all(&[0, 0, 0, 5, 0x6E, 0, 0, 0, 6]).unwrap();
    match read_answer(&mut stream) {
        Some((
            6,
            Answer::ProtocolError {
                code, fatal: false, ..
            },
        )) => assert_eq!(code, protocol_error::UNKNOWN_KIND),
        other => panic!("got {other:?}"),
    }
    stream.write_all(&encode_frame(7, &Request::Ping)).unwrap();
    assert!(matches!(
        read_answer(&mut stream),
        Some((7, Answer::Result { .. }))
    ));
}

#[test]
fn an_oversized_frame_closes_only_its_connection() {
    let mut stream = handshaken();
    stream
        .write_all(&[0x7F, 0, 0, 0, 0x21, 0, 0, 0, 1])
        .unwrap();
    let message = expect_protocol_error(&mut stream, None, protocol_error::FRAME_TOO_LARGE, true);
    assert!(message.contains("exceeds"), "{message}");
    expect_closed(&mut stream);
    ping_works();
}

#[test]
fn pipelined_requests_are_answered_in_order_by_id() {
    let mut stream = handshaken();
    let mut burst = Vec::new();
    for id in 100..300u32 {
        burst.extend(encode_frame(id, &Request::Ping));
    }
    stream.write_all(&burst).unwrap();
    for id in 100..300u32 {
        assert!(
            matches!(read_answer(&mut stream), Some((got, Answer::Result { .. })) if got == id)
        );
    }
}

fn arbitrary_request() -> impl Strategy<Value = Request> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (
            0u32..4,
            0u16..6,
            any::<u32>(),
            bytes.clone(),
            0u16..10,
            any::<u64>(),
            0u32..2000
        )
            .prop_map(
                |(handle, string, options, key, generic_length, address, max_records)| Request::Get(
                    Get {
                        target: StringRef { handle, string },
                        options: options & 0x1FFFF,
                        key,
                        generic_length,
                        address,
                        max_records,
                    }
                )
            ),
        (0u32..4, 0u16..6, any::<u32>(), any::<u64>(), bytes.clone()).prop_map(
            |(handle, string, options, address, record)| {
                Request::Put(Put {
                    target: StringRef { handle, string },
                    options: options & 0x1FFFF,
                    address,
                    record,
                })
            }
        ),
        (0u32..4, 0u16..6).prop_map(|(handle, string)| Request::Erase {
            target: StringRef { handle, string },
            options: 0
        }),
        (0u32..4, 0u16..6).prop_map(|(handle, string)| Request::EndReq {
            target: StringRef { handle, string }
        }),
        (0u32..4).prop_map(|handle| Request::Close { handle }),
        (0u8..3, 0u16..4).prop_map(|(intent, strings)| Request::Open(Open {
            dataset: "ABUSE.KSDS".into(),
            intent: [OpenIntent::Input, OpenIntent::Output, OpenIntent::Update][intent as usize],
            access: 0,
            strings,
        })),
        ("[A-Z%*.]{0,12}", proptest::option::of("[A-Z.]{0,12}"))
            .prop_map(|(pattern, after)| Request::List { pattern, after }),
    ]
}

fn define_abuse_dataset() {
    static DEFINED: OnceLock<()> = OnceLock::new();
    DEFINED.get_or_init(|| {
        let mut stream = handshaken();
        let spec = vsam_protocol::DatasetSpec {
            name: "ABUSE.KSDS".into(),
            organization: vsam_protocol::Organization::Ksds,
            key_offset: 2,
            key_length: 3,
            min_record: 1,
            max_record: 30,
            codepage: "cp037".into(),
            backend: String::new(),
            layout: String::new(),
        };
        stream
            .write_all(&encode_frame(1, &Request::Define(spec)))
            .unwrap();
        assert!(matches!(
            read_answer(&mut stream),
            Some((1, Answer::Catalog { .. }))
        ));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bytes after a good handshake: the connection gets answers or a
    /// reasoned close, and a fresh client is still served.
    #[test]
    fn random_bytes_never_disturb_the_server(garbage in proptest::collection::vec(any::<u8>(), 1..300)) {
        let mut stream = handshaken();
        stream.write_all(&garbage).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        while read_answer(&mut stream).is_some() {}
        ping_works();
    }

    /// Random sequences of well-formed requests with random fields: every
    /// one is answered, none closes the connection.
    #[test]
    fn random_requests_are_always_answered(requests in proptest::collection::vec(arbitrary_request(), 1..25)) {
        define_abuse_dataset();
        let mut stream = handshaken();
        for (id, request) in requests.iter().enumerate() {
            stream.write_all(&encode_frame(id as u32 + 1, request)).unwrap();
            match read_answer(&mut stream) {
                Some((got, Answer::ProtocolError { fatal: false, .. })) | Some((got, Answer::Result { .. })) | Some((got, Answer::Opened { .. })) | Some((got, Answer::Catalog { .. })) => {
                    prop_assert_eq!(got, id as u32 + 1);
                }
                other => prop_assert!(false, "request {:?} got {:?}", request, other),
            }
        }
    }
}

#[test]
fn a_hello_announcing_a_tiny_max_frame_is_refused() {
    for max_frame in [0, 10, vsam_protocol::MIN_CLIENT_FRAME - 1] {
        let mut stream = connect();
        stream
            .write_all(&encode_frame(
                0,
                &Request::Hello(Hello {
                    major: vsam_protocol::PROTOCOL_MAJOR,
                    minor: 0,
                    max_frame,
                    client: "tiny".into(),
                    token: None,
                }),
            ))
            .unwrap();
        let message = expect_protocol_error(&mut stream, None, protocol_error::LIMIT, true);
        assert!(
            message.contains(&format!(
                "max_frame of {max_frame} bytes is below the 65536"
            )),
            "{message}"
        );
        expect_closed(&mut stream);
    }
    ping_works();
}

/// A client that announces a `max_frame` of 1 MiB never receives a larger
/// frame: a batch of records is cut to fit, and a record that cannot fit
/// alone is answered FDBK X'2C' (work area too small) with the size it
/// needs, directly and in a browse, whose position stays before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_never_exceed_the_frame_the_client_accepts() {
    use vsam_client::{ConnectOptions, Connection, Dataset, RplOptions};
    let server = start_with_plugin(MEMORY_WASM, "").await;
    let big = Connection::connect(&server.address).await.unwrap();
    let mut spec = vsam_tests::ksds("FRAME.KSDS", 4, 3 << 20, "ascii");
    spec.min_record = 1;
    vsam_client::define(&big, spec).await.unwrap();
    let ds = Dataset::open(&big, "FRAME.KSDS", vsam_client::OpenIntent::Output, 1)
        .await
        .unwrap();
    let record = |key: &str, size: usize| {
        let mut data = key.as_bytes().to_vec();
        data.resize(size, b'.');
        data
    };
    for n in 0..20 {
        ds.put(
            0,
            RplOptions::sequential(),
            0,
            record(&format!("A{n:03}"), 200_000),
        )
        .await
        .unwrap();
    }
    ds.put(0, RplOptions::sequential(), 0, record("B000", 2 << 20))
        .await
        .unwrap();
    ds.put(0, RplOptions::sequential(), 0, record("C000", 10))
        .await
        .unwrap();
    ds.close().await.unwrap();

    let small = Connection::connect_with(
        &server.address,
        &ConnectOptions {
            max_frame: Some(1 << 20),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ds = Dataset::open(&small, "FRAME.KSDS", vsam_client::OpenIntent::Input, 1)
        .await
        .unwrap();
    let too_large = |error: vsam_client::ClientError| {
        let vsam = error.vsam().unwrap_or_else(|| panic!("{error}")).clone();
        assert_eq!(
            (vsam.r15(), vsam.fdbk()),
            (8, vsam_protocol::fdbk::AREA_TOO_SMALL.0),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("the record takes 2097172 bytes of answer")
                && message.contains("connect with a max_frame of at least"),
            "{message}"
        );
    };
    too_large(
        ds.reading(RplOptions::direct())
            .key(b"B000")
            .records()
            .await
            .unwrap_err(),
    );
    let found = ds.read(b"A005").await.unwrap();
    assert_eq!(found.data.len(), 200_000);

    // A browse in batches of 100: cut to what fits, in order.
    ds.point(
        0,
        RplOptions::sequential().greater_or_equal(),
        b"A000",
        0,
        0,
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut batches = 0;
    while seen.len() < 20 {
        let batch = ds.browse(100).await.unwrap();
        assert!(!batch.is_empty() && batch.len() <= 5, "{}", batch.len());
        seen.extend(batch.into_iter().map(|r| r.key));
        batches += 1;
    }
    assert!(batches >= 4);
    let expected: Vec<Vec<u8>> = (0..20).map(|n| format!("A{n:03}").into_bytes()).collect();
    assert_eq!(seen, expected);
    // The big record stops the browse, batched or one at a time, without
    // being skipped.
    for batch in [100, 1, 1] {
        too_large(ds.browse(batch).await.unwrap_err());
    }
    // Past it by POINT, the browse goes on.
    ds.point(
        0,
        RplOptions::sequential().greater_or_equal(),
        b"C000",
        0,
        0,
    )
    .await
    .unwrap();
    let rest = ds.browse(100).await.unwrap();
    assert_eq!(rest[0].key, b"C000");
    // The connection is whole: nothing too large ever reached it.
    vsam_client::ping(&small).await.unwrap();
}

/// Reads a RESULT for `id` and returns its status.
fn expect_result(stream: &mut TcpStream, id: u32) -> vsam_protocol::Status {
    match read_answer(stream) {
        Some((got, Answer::Result { status, .. })) if got == id => status,
        other => panic!("expected a RESULT for request {id}, got {other:?}"),
    }
}

/// A value outside a field's defined set is the request's VSAM error (the
/// message names the field), as undefined RPL option bits are; the
/// connection goes on.
#[test]
fn values_outside_a_fields_set_are_the_requests_vsam_error() {
    let mut stream = handshaken();
    // DEFINE of "A" with organization 5.
    let mut define = vec![0, 0, 0, 0x1F, 0x30, 0, 0, 0, 5, 0, 1, b'A', 5];
    define.extend([
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    stream.write_all(&define).unwrap();
    let status = expect_result(&mut stream, 5);
    assert_eq!((status.r15, status.fdbk), (8, 0x68));
    assert!(
        status.message.contains("DEFINE") && status.message.contains("organization"),
        "{}",
        status.message
    );
    // OPEN of "A" with intent 3.
    stream
        .write_all(&[0, 0, 0, 0x0C, 0x10, 0, 0, 0, 6, 0, 1, b'A', 3, 0, 0, 1])
        .unwrap();
    let status = expect_result(&mut stream, 6);
    assert_eq!((status.r15, status.fdbk), (8, 0xA0));
    assert!(status.message.contains("intent"), "{}", status.message);
    // OPEN of a dataset that exists, with the undefined access bit 0x80.
    define_abuse_dataset();
    let open = encode_frame(
        7,
        &Request::Open(Open {
            dataset: "ABUSE.KSDS".into(),
            intent: OpenIntent::Input,
            access: 0x80,
            strings: 1,
        }),
    );
    stream.write_all(&open).unwrap();
    let status = expect_result(&mut stream, 7);
    assert_eq!((status.r15, status.fdbk), (8, 0xA0));
    assert!(status.message.contains("0x80"), "{}", status.message);
    stream.write_all(&encode_frame(8, &Request::Ping)).unwrap();
    assert!(expect_result(&mut stream, 8).is_ok());
}

/// A frame whose length is below 5 loses the framing: fatal code 4, id 0.
#[test]
fn a_length_below_five_closes_the_connection_with_code_4() {
    let mut stream = handshaken();
    stream.write_all(&[0, 0, 0, 3, 0x02, 0, 0]).unwrap();
    let message = expect_protocol_error(&mut stream, Some(0), protocol_error::MALFORMED, true);
    assert!(message.contains("framing"), "{message}");
    expect_closed(&mut stream);
    ping_works();
}

/// A client's name, which every log line of its connection carries, is
/// one line of bounded length there: a HELLO naming the client with a
/// newline and a hundred kilobytes writes neither a forged line nor a
/// hundred kilobytes per line (vsamrd as a process, its log read).
#[test]
fn a_clients_name_cannot_forge_or_flood_the_servers_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = vsam_tests::free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[admin]\nenabled = false\n\
         [plugins.p]\npath = \"{MEMORY_WASM}\"\n[backends.b]\nplugin = \"p\"\n[routing]\ndefault = \"b\"\n",
        dir.path().join("data").display()
    );
    let vsamrd = LoggedServer::start(dir.path(), port, &config, "debug");
    let mut stream = TcpStream::connect(&vsamrd.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let client = format!(
        "abuse\nFORGED vsamrd: a line of the server's own {}",
        "x".repeat(100_000)
    );
    stream
        .write_all(&encode_frame(
            0,
            &Request::Hello(Hello {
                major: 1,
                minor: 0,
                max_frame: 1 << 20,
                client,
                token: None,
            }),
        ))
        .unwrap();
    assert!(matches!(
        read_answer(&mut stream),
        Some((0, Answer::Welcome(_)))
    ));
    drop(stream);
    // The connection's last line (`disconnected`) is written once vsamrd
    // sees the close.
    let waited = std::time::Instant::now();
    while !vsamrd.log_text().contains("disconnected") && waited.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = vsamrd.stop();
    assert!(
        text.contains("abuse\\\\nFORGED"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "a client forged a line"
    );
    let longest = text
        .lines()
        .filter(|l| l.contains("abuse"))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        (1..1000).contains(&longest),
        "a line of the connection of {longest} bytes"
    );
}

/// A catalog larger than the client's answer frame is listed whole, a page
/// at a time (protocol 1.7): each page within the frame, in name order,
/// starting after the name asked, LIST and LISTCAT alike, and at most
/// 1,024 entries however small they are. A client of protocol 1.6 asks for
/// the whole list in one answer, which the server refuses with X'2C' when
/// it does not fit, as before. A pattern of many wildcards costs no more
/// than another; one longer than a pattern can be is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_larger_than_an_answer_frame_is_listed_a_page_at_a_time() {
    use vsam_client::{AixSpec, ConnectOptions, Connection, PathSpec};
    use vsam_protocol::{MIN_CLIENT_FRAME, answer_frame_len};
    let server = start_with_plugin(MEMORY_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    // A copybook of about 10 KB, as a record layout with its comments is.
    let mut layout = String::from("       01  W.\n           05  W-KEY  PIC X(8).\n");
    for line in 0..120 {
        layout.push_str(&format!(
            "      * LINE {line:03} OF THE RECORD LAYOUT'S DESCRIPTION, AS COPYBOOKS CARRY THEM\n"
        ));
    }
    layout.push_str("           05  W-REST PIC X(72).\n");
    let names: Vec<String> = (0..24).map(|n| format!("PAGE.D{n:03}")).collect();
    for name in names.iter().rev() {
        let mut spec = vsam_tests::ksds(name, 8, 80, "cp037");
        spec.layout = layout.clone();
        vsam_client::define(&conn, spec).await.unwrap();
    }
    vsam_client::define(&conn, vsam_tests::ksds("OTHER.D000", 8, 80, "cp037"))
        .await
        .unwrap();
    vsam_client::define_aix(
        &conn,
        AixSpec {
            name: "PAGE.XAIX".into(),
            base: "PAGE.D000".into(),
            key_offset: 8,
            key_length: 4,
            unique: false,
            upgrade: true,
        },
    )
    .await
    .unwrap();
    vsam_client::define_path(
        &conn,
        PathSpec {
            name: "PAGE.XPATH".into(),
            aix: "PAGE.XAIX".into(),
        },
    )
    .await
    .unwrap();
    let mut expected = names.clone();
    expected.extend(["PAGE.XAIX".to_string(), "PAGE.XPATH".to_string()]);

    let small = Connection::connect_with(
        &server.address,
        &ConnectOptions {
            max_frame: Some(MIN_CLIENT_FRAME),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let listed = vsam_client::list(&small, "PAGE.**").await.unwrap();
    let listed_names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(listed_names, expected);
    assert!(listed[..24].iter().all(|d| d.layout == layout));
    let entries = vsam_client::listcat(&small, "PAGE.**").await.unwrap();
    let entry_names: Vec<&str> = entries.iter().map(|e| e.spec.name.as_str()).collect();
    assert_eq!(entry_names, expected);
    assert!(matches!(
        &entries[24].entry_type,
        vsam_protocol::EntryType::Aix { base, .. } if base == "PAGE.D000"
    ));
    assert!(matches!(
        &entries[25].entry_type,
        vsam_protocol::EntryType::Path { aix } if aix == "PAGE.XAIX"
    ));

    // One page: within the frame, not the whole list; the next starts
    // right after the name asked; past the last, nothing.
    let page = |after: &str| Request::List {
        pattern: "PAGE.**".into(),
        after: Some(after.into()),
    };
    let first = small.call(page("")).await.unwrap();
    assert!(answer_frame_len(&first) <= MIN_CLIENT_FRAME as usize);
    let Answer::Catalog { datasets } = first else {
        panic!("{first:?}")
    };
    assert!(
        datasets.len() > 1 && datasets.len() < 24,
        "{}",
        datasets.len()
    );
    assert_eq!(datasets[0].name, "PAGE.D000");
    let Answer::Catalog { datasets } = small.call(page("PAGE.D010")).await.unwrap() else {
        panic!()
    };
    assert_eq!(datasets[0].name, "PAGE.D011");
    let Answer::Catalog { datasets } = small.call(page("PAGE.XPATH")).await.unwrap() else {
        panic!()
    };
    assert!(datasets.is_empty());

    // A client of protocol 1.6: the whole list in one answer, refused
    // when it does not fit; a narrower pattern fits.
    let old = Connection::connect_with(
        &server.address,
        &ConnectOptions {
            max_frame: Some(MIN_CLIENT_FRAME),
            minor: Some(6),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let error = vsam_client::list(&old, "PAGE.**").await.unwrap_err();
    let vsam = error.vsam().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(
        (vsam.r15(), vsam.fdbk()),
        (8, vsam_protocol::fdbk::AREA_TOO_SMALL.0),
        "{error}"
    );
    // Refused as soon as the entries built pass the frame, not after
    // every match was copied.
    assert!(
        error.to_string().contains(&format!(
            "LIST: the answer takes more than the {MIN_CLIENT_FRAME} bytes this client accepts"
        )) && error.to_string().contains("a client of protocol 1.7"),
        "{error}"
    );
    assert_eq!(vsam_client::list(&old, "PAGE.D02%").await.unwrap().len(), 4);

    // Small entries: a page stops at 1,024 of them.
    for n in 0..1030 {
        vsam_client::define(
            &conn,
            vsam_tests::ksds(&format!("MANY.D{n:04}"), 4, 8, "ascii"),
        )
        .await
        .unwrap();
    }
    let Answer::Catalog { datasets } = conn
        .call(Request::List {
            pattern: "MANY.*".into(),
            after: Some(String::new()),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(datasets.len(), 1024);
    assert_eq!(
        vsam_client::list(&conn, "MANY.*").await.unwrap().len(),
        1030
    );

    // A pattern made to be slow to match is matched like any other, over
    // the whole catalog; one too long to be a pattern is refused (X'68').
    let evil = format!("{}B", "**A".repeat(30));
    assert!(vsam_client::list(&conn, &evil).await.unwrap().is_empty());
    let long = "*".repeat(200);
    for request in ["LIST", "LISTCAT"] {
        let error = match request {
            "LIST" => vsam_client::list(&conn, &long).await.map(drop),
            _ => vsam_client::listcat(&conn, &long).await.map(drop),
        }
        .unwrap_err();
        let vsam = error.vsam().unwrap_or_else(|| panic!("{error}"));
        assert_eq!((vsam.r15(), vsam.fdbk()), (8, 0x68), "{error}");
        assert!(
            error
                .to_string()
                .contains("the pattern is 200 bytes long; a pattern has at most 128"),
            "{error}"
        );
    }
}
