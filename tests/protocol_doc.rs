//! What docs/protocol.md says in prose of corner cases, checked against
//! the server, so that a client written from the document alone meets
//! the same answers: direct KGE past the last key, ESDS RBAs that start no
//! record, fields a request ignores, an RRDS load after OPEN, an empty
//! chain, an insert through a path, duplicates browsed backward, addressed
//! requests against a KSDS, ERASE's options, and `component`.

use vsam_client::{
    AixSpec, ClientError, Connection, Dataset, OpenIntent, Organization, PathSpec, RplOptions,
};
use vsam_protocol::{Answer, Processing, PutChain, Request, StringRef};
use vsam_tests::{MEMORY_WASM, start_with_plugin};

/// R15 and FDBK of a refusal; its `component` is 0.
fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (u8, u8) {
    let error = result.expect_err("refused");
    let vsam = error.vsam().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(vsam.status.component, 0, "{error}");
    (vsam.r15(), vsam.fdbk())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_corner_cases_hold() {
    let server = start_with_plugin(MEMORY_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();

    // KSDS: a direct KGE with nothing at or after the key is X'10' (a
    // POINT says X'04'); ADR requests are X'68', an ADR insert X'4C'.
    vsam_client::define(&conn, vsam_tests::ksds("DOC.KSDS", 4, 40, "ascii"))
        .await
        .unwrap();
    let ksds = Dataset::open(&conn, "DOC.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ksds.put(0, RplOptions::direct(), 0, b"A001x".to_vec())
        .await
        .unwrap();
    let kge = RplOptions::direct().greater_or_equal();
    assert_eq!(
        code(ksds.reading(kge).key(b"B000").records().await),
        (8, 0x10)
    );
    assert_eq!(code(ksds.point(0, kge, b"B000", 0, 0).await), (8, 0x04));
    let adr = RplOptions::addressed(Processing::Direct);
    assert_eq!(code(ksds.reading(adr).at(0).records().await), (8, 0x68));
    assert_eq!(code(ksds.point(0, adr, b"", 0, 0).await), (8, 0x68));
    assert_eq!(
        code(ksds.put(0, adr, 0, b"A002x".to_vec()).await),
        (8, 0x4C)
    );

    // ERASE's options are checked as RPL options.
    ksds.read_for_update(b"A001").await.unwrap();
    let target = StringRef {
        handle: ksds.handle(),
        string: 0,
    };
    let erase = Request::Erase {
        target,
        options: 0x8000_0000,
    };
    match conn.call(erase).await.unwrap() {
        Answer::Result { status, .. } => assert_eq!((status.r15, status.fdbk), (8, 0x68)),
        other => panic!("{other:?}"),
    }
    // A chain of no records changes nothing and succeeds.
    let chain = Request::PutChain(PutChain {
        target,
        options: 0,
        records: vec![],
    });
    match conn.call(chain).await.unwrap() {
        Answer::Result { status, records } => {
            assert!(status.is_ok() && records.is_empty(), "{status:?}");
        }
        other => panic!("{other:?}"),
    }

    // ESDS: SEQ and DIR alike append (address ignored); an RBA that starts
    // no record, at or past the end too, is X'20'; `key` is ignored.
    let mut spec = vsam_tests::ksds("DOC.ESDS", 0, 40, "ascii");
    spec.organization = Organization::Esds;
    spec.key_length = 0;
    vsam_client::define(&conn, spec).await.unwrap();
    let esds = Dataset::open(&conn, "DOC.ESDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    let first = esds
        .put(
            0,
            RplOptions::addressed(Processing::Sequential),
            0,
            b"one".to_vec(),
        )
        .await
        .unwrap();
    let second = esds.put(0, adr, 999, b"two".to_vec()).await.unwrap();
    assert_eq!((first.address, second.address), (0, 3));
    for rba in [1, 6, 100] {
        assert_eq!(
            code(esds.reading(adr).at(rba).records().await),
            (8, 0x20),
            "RBA {rba}"
        );
    }
    let found = esds.reading(adr).key(b"zzzz").at(3).record().await.unwrap();
    assert_eq!(found.data, b"two");
    assert_eq!(
        code(
            esds.reading(RplOptions::direct())
                .key(b"zz")
                .records()
                .await
        ),
        (8, 0x48)
    );

    // RRDS: a sequential insert right after OPEN goes to slot 1.
    let mut spec = vsam_tests::ksds("DOC.RRDS", 0, 10, "ascii");
    spec.organization = Organization::Rrds;
    spec.key_length = 0;
    spec.min_record = 10;
    vsam_client::define(&conn, spec).await.unwrap();
    let rrds = Dataset::open(&conn, "DOC.RRDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    let slot = rrds
        .put(0, RplOptions::sequential(), 0, b"0123456789".to_vec())
        .await
        .unwrap();
    assert_eq!(slot.address, 1);

    // Paths: DEFINE PATH over no index is X'10'; an insert through a path
    // goes to the base; backward, duplicates come in reverse order, X'08'
    // while one with the same key follows.
    let no_index = PathSpec {
        name: "DOC.NOPATH".into(),
        aix: "DOC.NOAIX".into(),
    };
    assert_eq!(
        code(vsam_client::define_path(&conn, no_index).await),
        (8, 0x10)
    );
    vsam_client::define(&conn, vsam_tests::ksds("DOC.BASE", 4, 40, "ascii"))
        .await
        .unwrap();
    let aix = AixSpec {
        name: "DOC.BASE.AIX".into(),
        base: "DOC.BASE".into(),
        key_offset: 4,
        key_length: 5,
        unique: false,
        upgrade: true,
    };
    vsam_client::define_aix(&conn, aix).await.unwrap();
    let path = PathSpec {
        name: "DOC.BASE.PATH".into(),
        aix: "DOC.BASE.AIX".into(),
    };
    vsam_client::define_path(&conn, path).await.unwrap();
    let path = Dataset::open(&conn, "DOC.BASE.PATH", OpenIntent::Update, 1)
        .await
        .unwrap();
    for record in ["K001SMITH", "K002SMITH", "K003JONES", "K004SMITH"] {
        path.put(0, RplOptions::direct(), 0, record.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let base = Dataset::open(&conn, "DOC.BASE", OpenIntent::Input, 1)
        .await
        .unwrap();
    assert_eq!(base.read(b"K003").await.unwrap().data, b"K003JONES");
    path.point(
        0,
        RplOptions::sequential().backward().last_record(),
        b"",
        0,
        0,
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    loop {
        match path
            .reading(RplOptions::sequential().backward())
            .with_status()
            .await
        {
            Ok((records, status)) => seen.push((
                String::from_utf8_lossy(&records[0].data[..4]).to_string(),
                status.fdbk,
            )),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    let expected: Vec<(String, u8)> = [("K004", 8), ("K002", 8), ("K001", 0), ("K003", 0)]
        .iter()
        .map(|(key, fdbk)| (key.to_string(), *fdbk))
        .collect();
    assert_eq!(seen, expected);
    server.server.stop().await;
}

/// A VRRDS (protocol 1.5) keeps each record's length; a client of an
/// older minor, which could not decode its entry, is refused its INFO
/// (X'68') and OPEN (X'A0') with the version it needs, and does not see it
/// in LIST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vrrds_is_kept_from_clients_older_than_1_5() {
    let server = start_with_plugin(MEMORY_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let mut spec = vsam_tests::ksds("DOC.VRRDS", 0, 20, "ascii");
    spec.organization = Organization::Vrrds;
    spec.key_length = 0;
    let defined = vsam_client::define(&conn, spec).await.unwrap();
    assert_eq!((defined.min_record, defined.max_record), (1, 20));
    let ds = Dataset::open(&conn, "DOC.VRRDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 4, b"short".to_vec())
        .await
        .unwrap();
    assert_eq!(
        ds.reading(RplOptions::direct())
            .at(4)
            .record()
            .await
            .unwrap()
            .data,
        b"short"
    );

    let options = vsam_client::ConnectOptions {
        minor: Some(4),
        ..Default::default()
    };
    let old = Connection::connect_with(&server.address, &options)
        .await
        .unwrap();
    let refused = vsam_client::info(&old, "DOC.VRRDS").await.map(drop);
    assert_eq!(code(refused), (8, 0x68));
    let refused = Dataset::open(&old, "DOC.VRRDS", OpenIntent::Input, 1)
        .await
        .map(drop);
    let error = refused
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(error.contains("protocol 1.5"), "{error}");
    assert_eq!(code(refused), (8, 0xA0));
    let listed = vsam_client::list(&old, "DOC.**").await.unwrap();
    assert!(
        listed.iter().all(|entry| entry.name != "DOC.VRRDS"),
        "{listed:?}"
    );
    let listed = vsam_client::list(&conn, "DOC.**").await.unwrap();
    assert!(listed.iter().any(|entry| entry.name == "DOC.VRRDS"));
    server.server.stop().await;
}
