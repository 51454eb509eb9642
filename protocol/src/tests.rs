use super::*;
use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn sample_requests() -> Vec<Request> {
    let target = StringRef {
        handle: 7,
        string: 1,
    };
    vec![
        Request::Hello(Hello {
            major: 1,
            minor: 0,
            max_frame: 1 << 20,
            client: "t".into(),
            token: Some("secret".into()),
        }),
        Request::Ping,
        Request::Commit,
        Request::Rollback,
        Request::Open(Open {
            dataset: "A.B".into(),
            intent: OpenIntent::Update,
            access: 0,
            strings: 2,
        }),
        Request::Close { handle: 9 },
        Request::Get(Get {
            target,
            options: 8,
            key: b"K1".to_vec(),
            generic_length: 1,
            address: 5,
            max_records: 100,
        }),
        Request::Put(Put {
            target,
            options: 256,
            address: 3,
            record: vec![0xC1; 10],
        }),
        Request::Erase { target, options: 0 },
        Request::Point(Point {
            target,
            options: 1024,
            key: vec![1, 2],
            generic_length: 0,
            address: 0,
        }),
        Request::EndReq { target },
        Request::Define(DatasetSpec {
            name: "PROD.CUST".into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: 8,
            min_record: 1,
            max_record: 200,
            codepage: "cp037".into(),
            backend: String::new(),
            layout: String::new(),
        }),
        Request::Delete { name: "X".into() },
        Request::Info { name: "X".into() },
        Request::List {
            pattern: "PROD.**".into(),
            after: None,
        },
        Request::List {
            pattern: "PROD.**".into(),
            after: Some("PROD.CUST".into()),
        },
        Request::List {
            pattern: "**".into(),
            after: Some(String::new()),
        },
        Request::Listcat {
            pattern: "PROD.*".into(),
            after: None,
        },
        Request::Listcat {
            pattern: "PROD.*".into(),
            after: Some("PROD.CUST".into()),
        },
        Request::Rename {
            name: "PROD.CUST".into(),
            new_name: "PROD.CUSTOMER".into(),
        },
        Request::DefineAix(AixSpec {
            name: "PROD.CUST.BYNAME".into(),
            base: "PROD.CUST".into(),
            key_offset: 8,
            key_length: 20,
            unique: false,
            upgrade: true,
        }),
        Request::DefinePath(PathSpec {
            name: "PROD.CUST.NAMEPATH".into(),
            aix: "PROD.CUST.BYNAME".into(),
        }),
        Request::BldIndex {
            aix: "PROD.CUST.BYNAME".into(),
        },
        Request::PutChain(PutChain {
            target,
            options: 8,
            records: vec![
                ChainedRecord {
                    address: 1,
                    record: vec![0xC1; 3],
                },
                ChainedRecord {
                    address: 2,
                    record: vec![0xC2],
                },
            ],
        }),
    ]
}

#[test]
fn a_put_chain_is_laid_out_as_documented() {
    let chain = Request::PutChain(PutChain {
        target: StringRef {
            handle: 1,
            string: 0,
        },
        options: 0,
        records: vec![ChainedRecord {
            address: 0,
            record: b"AB".to_vec(),
        }],
    });
    let frame = encode_frame(3, &chain);
    #[rustfmt::skip]
    let expected = [
        0, 0, 0, 33, 0x25, 0, 0, 0, 3, // length, kind, id
        0, 0, 0, 1, 0, 0, // handle, string
        0, 0, 0, 0, // options
        0, 0, 0, 1, // count
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'A', b'B', // address, record
    ];
    assert_eq!(frame, expected);
}

#[test]
fn a_put_chain_with_upd_is_laid_out_as_documented() {
    let chain = Request::PutChain(PutChain {
        target: StringRef {
            handle: 1,
            string: 1,
        },
        options: RplOptions::direct().update().to_bits(),
        records: vec![ChainedRecord {
            address: 0,
            record: b"AB".to_vec(),
        }],
    });
    let frame = encode_frame(4, &chain);
    #[rustfmt::skip]
    let expected = [
        0, 0, 0, 33, 0x25, 0, 0, 0, 4, // length, kind, id
        0, 0, 0, 1, 0, 1, // handle, string
        0, 0, 0x01, 0x09, // options KEY|DIR|UPD
        0, 0, 0, 1, // count
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, b'A', b'B', // address, record
    ];
    assert_eq!(frame, expected);
}

#[test]
fn a_put_chain_count_beyond_its_payload_is_malformed_not_allocated() {
    let mut payload = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    payload.extend_from_slice(&u32::MAX.to_be_bytes());
    let error = Request::decode_payload(kind::PUT_CHAIN, &payload).unwrap_err();
    assert!(error.to_string().contains("address"), "{error}");
}

#[test]
fn every_request_round_trips_through_the_codec() {
    let mut client = ClientCodec::new(1 << 20);
    let mut server = ServerCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    let requests = sample_requests();
    for (i, request) in requests.iter().enumerate() {
        client
            .encode((i as u32, request.clone()), &mut buf)
            .unwrap();
    }
    for (i, request) in requests.iter().enumerate() {
        let incoming = server.decode(&mut buf).unwrap().unwrap();
        assert_eq!(incoming.id, i as u32);
        assert_eq!(incoming.message.as_ref().unwrap(), request);
    }
    assert!(server.decode(&mut buf).unwrap().is_none());
}

#[test]
fn every_answer_round_trips_through_the_codec() {
    let answers = vec![
        Answer::Welcome(Welcome {
            major: 1,
            minor: 0,
            max_frame: 9,
            max_batch: 3,
            max_record: 4,
            server: "s".into(),
        }),
        Answer::Result {
            status: Status::logical(fdbk::NOT_FOUND, "no"),
            records: vec![Record {
                address: 80,
                key: vec![0; 8],
                data: b"abc".to_vec(),
            }],
        },
        Answer::Opened {
            handle: 1,
            dataset: sample_requests()
                .into_iter()
                .find_map(|request| match request {
                    Request::Define(d) => Some(d),
                    _ => None,
                })
                .expect("a DEFINE among the samples"),
        },
        Answer::Catalog { datasets: vec![] },
        Answer::Entries {
            entries: sample_requests()
                .into_iter()
                .filter_map(|request| match request {
                    Request::Define(spec) => Some(spec),
                    _ => None,
                })
                .flat_map(|spec| {
                    [
                        EntryType::Cluster,
                        EntryType::Aix {
                            base: "PROD.CUST".into(),
                            unique: false,
                            upgrade: true,
                        },
                        EntryType::Path {
                            aix: "PROD.CUST.BYNAME".into(),
                        },
                    ]
                    .map(|entry_type| CatalogEntry {
                        spec: spec.clone(),
                        entry_type,
                    })
                })
                .collect(),
        },
        Answer::ProtocolError {
            code: 4,
            fatal: false,
            message: "bad".into(),
        },
    ];
    let mut server = ServerCodec::new(1 << 20);
    let mut client = ClientCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    let long_message = Answer::Result {
        status: Status::logical(fdbk::NOT_FOUND, "é".repeat(40_000)),
        records: vec![],
    };
    for answer in answers.iter().chain([&long_message]) {
        assert_eq!(
            crate::answer_frame_len(answer),
            crate::encode_frame(42, answer).len(),
            "{answer:?}"
        );
    }
    for answer in &answers {
        server.encode((42, answer.clone()), &mut buf).unwrap();
    }
    for answer in &answers {
        let incoming = client.decode(&mut buf).unwrap().unwrap();
        assert_eq!(incoming.id, 42);
        assert_eq!(incoming.message.as_ref().unwrap(), answer);
    }
}

/// The byte-level examples of docs/protocol.md, checked here so the
/// document cannot drift from the code.
#[test]
fn documented_frames_are_exact() {
    let ping = encode_frame(1, &Request::Ping);
    assert_eq!(ping, [0, 0, 0, 5, 0x02, 0, 0, 0, 1]);

    let commit = encode_frame(9, &Request::Commit);
    assert_eq!(commit, [0, 0, 0, 5, 0x26, 0, 0, 0, 9]);
    let rollback = encode_frame(10, &Request::Rollback);
    assert_eq!(rollback, [0, 0, 0, 5, 0x27, 0, 0, 0, 0x0A]);

    let open = encode_frame(
        2,
        &Request::Open(Open {
            dataset: "A".into(),
            intent: OpenIntent::Update,
            access: access::COMMIT,
            strings: 1,
        }),
    );
    assert_eq!(
        open,
        [
            0, 0, 0, 0x0C, 0x10, 0, 0, 0, 2, // length 12, OPEN, id 2
            0, 1, b'A', // dataset "A"
            2, 0x40, // intent update, access COMMIT
            0, 1, // one string
        ]
    );

    let hello = encode_frame(
        1,
        &Request::Hello(Hello {
            major: 1,
            minor: 6,
            max_frame: 0x0100_0000,
            client: "c".into(),
            token: None,
        }),
    );
    assert_eq!(
        hello,
        [
            0, 0, 0, 0x14, 0x01, 0, 0, 0, 1, b'V', b'S', b'A', b'M', 0, 1, 0, 6, 1, 0, 0, 0, 0, 1,
            b'c'
        ]
    );

    let refused = encode_frame(
        0,
        &Answer::ProtocolError {
            code: protocol_error::VERSION,
            fatal: true,
            message: String::new(),
        },
    );
    assert_eq!(refused, [0, 0, 0, 0x0A, 0xFF, 0, 0, 0, 0, 0, 2, 1, 0, 0]);

    // A DEFINE whose organization is 5: it decodes as far as that field,
    // which names itself (the server answers RESULT X'68').
    let define = [
        0, 0, 0, 0x1F, 0x30, 0, 0, 0, 5, // length 31, DEFINE, id 5
        0, 1, b'A', // name "A"
        5,    // organization 5
        0, 0, 0, 0, 0, 0, // key offset, key length
        0, 0, 0, 0, 0, 0, 0, 0x50, // min record 0, max record 80
        0, 0, 0, 0, // codepage, backend
        0, 0, 0, 0, // layout
    ];
    assert_eq!(define.len(), 4 + 0x1F);
    match Request::decode_payload(define[4], &define[9..]) {
        Err(DecodeError::BadValue { field, .. }) => assert_eq!(field, "organization"),
        other => panic!("{other:?}"),
    }
    let mut valid = define;
    valid[12] = 1;
    assert!(
        matches!(Request::decode_payload(valid[4], &valid[9..]), Ok(Request::Define(spec)) if spec.max_record == 80),
        "the same bytes with organization 1 are a DEFINE"
    );
    let invalid = encode_frame(
        5,
        &Answer::Result {
            status: Status::logical(fdbk::INVALID_OPTIONS, ""),
            records: vec![],
        },
    );
    assert_eq!(
        invalid,
        [
            0, 0, 0, 0x0E, 0x82, 0, 0, 0, 5, 8, 0x68, 0, 0, 0, 0, 0, 0, 0
        ]
    );

    let get = encode_frame(
        3,
        &Request::Get(Get {
            target: StringRef {
                handle: 1,
                string: 0,
            },
            options: options::bits::KEY | options::bits::DIR,
            key: vec![0xC1, 0xF1],
            generic_length: 0,
            address: 0,
            max_records: 1,
        }),
    );
    assert_eq!(
        get,
        [
            0, 0, 0, 0x23, 0x20, 0, 0, 0, 3, // length 35, GET, id 3
            0, 0, 0, 1, 0, 0, // handle 1, string 0
            0, 0, 0, 0x09, // options KEY|DIR
            0, 0, 0, 2, 0xC1, 0xF1, // key
            0, 0, // generic length
            0, 0, 0, 0, 0, 0, 0, 0, // address
            0, 0, 0, 1, // max records
        ]
    );

    let not_found = encode_frame(
        3,
        &Answer::Result {
            status: Status::logical(fdbk::NOT_FOUND, ""),
            records: vec![],
        },
    );
    assert_eq!(
        not_found,
        [
            0, 0, 0, 0x0E, 0x82, 0, 0, 0, 3, 8, 0x10, 0, 0, 0, 0, 0, 0, 0
        ]
    );
}

#[test]
fn framing_errors_are_reported() {
    let mut server = ServerCodec::new(100);
    let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 1, 1][..]);
    assert!(matches!(
        server.decode(&mut buf),
        Err(FrameError::TooShort(2))
    ));
    let mut buf = BytesMut::from(&[0u8, 0, 1, 0][..]);
    assert!(matches!(
        server.decode(&mut buf),
        Err(FrameError::TooLarge {
            length: 256,
            max: 100
        })
    ));
}

#[test]
fn bad_payloads_fail_only_their_frame() {
    let mut server = ServerCodec::new(100);
    let mut buf = BytesMut::new();
    // A GET cut short, then an unknown kind, then a good PING.
    buf.extend_from_slice(&[0, 0, 0, 7, 0x20, 0, 0, 0, 1, 0, 0]);
    buf.extend_from_slice(&[0, 0, 0, 5, 0x77, 0, 0, 0, 2]);
    buf.extend_from_slice(&encode_frame(3, &Request::Ping));
    let first = server.decode(&mut buf).unwrap().unwrap();
    assert!(matches!(
        first.message,
        Err(DecodeError::Truncated {
            field: "handle",
            ..
        })
    ));
    let second = server.decode(&mut buf).unwrap().unwrap();
    assert_eq!(second.message, Err(DecodeError::UnknownKind(0x77)));
    let third = server.decode(&mut buf).unwrap().unwrap();
    assert_eq!(third.message, Ok(Request::Ping));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut frame = encode_frame(1, &Request::Close { handle: 1 });
    frame.push(0);
    frame[3] += 1;
    let mut server = ServerCodec::new(100);
    let incoming = server
        .decode(&mut BytesMut::from(&frame[..]))
        .unwrap()
        .unwrap();
    assert_eq!(
        incoming.message,
        Err(DecodeError::TrailingBytes(1, "CLOSE"))
    );
}

proptest! {
    /// Random bytes never panic the decoder; it either waits for more,
    /// yields frames, or reports a framing error.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut server = ServerCodec::new(256);
        let mut buf = BytesMut::from(&bytes[..]);
        for _ in 0..64 {
            match server.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let mut client = ClientCodec::new(256);
        let mut buf = BytesMut::from(&bytes[..]);
        for _ in 0..64 {
            match client.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Valid frames with random payload bytes decode or fail cleanly.
    #[test]
    fn random_payloads_never_panic(kind in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = Request::decode_payload(kind, &payload);
        let _ = Answer::decode_payload(kind, &payload);
    }

    #[test]
    fn records_round_trip(key in proptest::collection::vec(any::<u8>(), 0..40), data in proptest::collection::vec(any::<u8>(), 0..300), address in any::<u64>()) {
        let answer = Answer::Result { status: Status::ok(), records: vec![Record { address, key, data }] };
        let frame = encode_frame(9, &answer);
        let mut client = ClientCodec::new(1 << 16);
        let incoming = client.decode(&mut BytesMut::from(&frame[..])).unwrap().unwrap();
        prop_assert_eq!(incoming.message.unwrap(), answer);
    }
}

#[test]
fn a_bad_magic_is_shown_in_hex_and_as_text() {
    let mut payload = b"::::".to_vec();
    payload.extend_from_slice(&[0, 1, 0, 3]);
    let error = Request::decode_payload(kind::HELLO, &payload).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("expected 0x5653414D (\"VSAM\"), got 0x3A3A3A3A (\"::::\")"),
        "{text}"
    );
}
