//! Many clients at once: inserts from concurrent connections all land
//! exactly once, two clients contending for one record serialize on
//! exclusive control without losing an update, and many callers sharing
//! one connection each get their own answer, whoever reads it.

use std::pin::pin;
use std::time::Duration;
use vsam_client::{ChainedRecord, Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_protocol::{Answer, Get, Open, Request, StringRef};
use vsam_tests::{CSV_WASM, start, start_with_plugin};

/// The in-memory plugin as the one backend.
const MEMORY: &str = "[plugins.m]\npath = \"builtin:memory\"\n[backends.b]\nplugin = \"m\"\n[routing]\ndefault = \"b\"\n";

fn counter_spec(name: &str) -> DatasetSpec {
    vsam_tests::ksds(name, 8, 32, "ascii")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_land_exactly_once() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, counter_spec("CC.INSERTS"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for client in 0..8u32 {
        let address = server.address.clone();
        tasks.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "CC.INSERTS", OpenIntent::Update, 1)
                .await
                .unwrap();
            for i in 0..50u32 {
                // Every client also tries a key another client owns: exactly one wins.
                let own = format!("{client:02}{i:06}-mine");
                ds.put(0, RplOptions::direct(), 0, own.into_bytes())
                    .await
                    .unwrap();
                let shared = format!("99{i:06}-by{client}");
                let _ = ds
                    .put(0, RplOptions::direct(), 0, shared.into_bytes())
                    .await;
            }
            ds.close().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ds = Dataset::open(&conn, "CC.INSERTS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut keys = Vec::new();
    loop {
        match ds.browse(500).await {
            Ok(batch) => keys.extend(batch.into_iter().map(|r| r.key)),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(keys.len(), 8 * 50 + 50);
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, keys, "every key once, in order");
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_contending_for_one_record_lose_no_update() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, counter_spec("CC.COUNTER"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "CC.COUNTER", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"COUNTER.00000000".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();

    let mut tasks = Vec::new();
    for _ in 0..2 {
        let address = server.address.clone();
        tasks.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "CC.COUNTER", OpenIntent::Update, 1)
                .await
                .unwrap();
            let upd = RplOptions::direct().update();
            let mut conflicts = 0u32;
            let mut done = 0;
            while done < 100 {
                match ds.get(0, upd, b"COUNTER.", 0, 0, 1).await {
                    Ok(records) => {
                        let value: u32 = std::str::from_utf8(&records[0].data[8..])
                            .unwrap()
                            .parse()
                            .unwrap();
                        let next = format!("COUNTER.{:08}", value + 1);
                        ds.put(0, upd, 0, next.into_bytes()).await.unwrap();
                        done += 1;
                    }
                    Err(e) if e.vsam().is_some_and(|v| v.fdbk() == 0x14) => {
                        conflicts += 1;
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let ds = Dataset::open(&conn, "CC.COUNTER", OpenIntent::Input, 1)
        .await
        .unwrap();
    let record = ds.read(b"COUNTER.").await.unwrap();
    assert_eq!(
        record.data, b"COUNTER.00000200",
        "200 increments, none lost ({conflicts} conflicts seen)"
    );
    server.server.stop().await;
}

/// Record `n` of `length` bytes: its key (8 digits), then a filler that
/// tells records apart.
fn numbered(n: u32, length: usize) -> Vec<u8> {
    let mut record = format!("{n:08}").into_bytes();
    record.resize(length, b'a' + (n % 26) as u8);
    record
}

/// Loads records 0 to `count - 1` of `length` bytes into `name`.
async fn load(conn: &Connection, name: &str, count: u32, length: usize) {
    vsam_client::define(conn, vsam_tests::ksds(name, 8, length as u32, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(conn, name, OpenIntent::Output, 1)
        .await
        .unwrap();
    let chain = (0..count)
        .map(|n| ChainedRecord {
            address: 0,
            record: numbered(n, length),
        })
        .collect();
    let outcome = ds
        .put_chain(0, RplOptions::sequential(), chain)
        .await
        .unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    ds.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_sharing_one_connection_each_get_their_own_answer() {
    let server = start(MEMORY).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    load(&conn, "CC.SHARED", 500, 64).await;
    let ds = std::sync::Arc::new(
        Dataset::open(&conn, "CC.SHARED", OpenIntent::Input, 32)
            .await
            .unwrap(),
    );
    // 32 callers, one string each, on one socket: whichever of them reads
    // an answer hands it to its caller. Every fifth caller also gives up on
    // a read at once (as a caller with a time limit does), so that callers
    // drop out while they wait, and while they read for the others.
    let mut tasks = Vec::new();
    for caller in 0..32u16 {
        let ds = ds.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100u32 {
                let n = (u32::from(caller) * 7919 + i * 13) % 500;
                let key = format!("{n:08}").into_bytes();
                if caller % 5 == 0 && i % 3 == 0 {
                    let given_up = tokio::time::timeout(
                        Duration::from_micros(1),
                        ds.get(caller, RplOptions::direct(), &key, 0, 0, 1),
                    )
                    .await;
                    if let Ok(records) = given_up {
                        assert_eq!(records.unwrap()[0].data, numbered(n, 64));
                    }
                    continue;
                }
                let records = ds
                    .get(caller, RplOptions::direct(), &key, 0, 0, 1)
                    .await
                    .unwrap();
                assert_eq!(records[0].data, numbered(n, 64), "caller {caller}, key {n}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(conn.failovers(), 0);
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_nobody_waits_for_do_not_stall_a_large_request() {
    let server = start(MEMORY).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    const LENGTH: usize = 30_000;
    load(&conn, "CC.LARGE", 300, LENGTH).await;
    let writing = Dataset::open(&conn, "CC.LARGE", OpenIntent::Update, 1)
        .await
        .unwrap();
    let opened = conn
        .call(Request::Open(Open {
            dataset: "CC.LARGE".into(),
            intent: OpenIntent::Input,
            access: 0,
            strings: 8,
        }))
        .await
        .unwrap();
    let Answer::Opened { handle, .. } = opened else {
        panic!("OPEN answered {opened:?}");
    };
    // Eight browses of 9 MB answers each (one per string), sent and given
    // up before their answers come: more than the socket's buffers hold,
    // so the server waits for them to be taken before it reads the next
    // request.
    for string in 0..8 {
        let get = Request::Get(Get {
            target: StringRef { handle, string },
            options: RplOptions::sequential().to_bits(),
            key: Vec::new(),
            generic_length: 0,
            address: 0,
            max_records: 300,
        });
        let mut browse = pin!(conn.call(get));
        assert!(futures::poll!(browse.as_mut()).is_pending());
    }
    // A chain of 12 MB: it can only be written whole if its caller takes
    // the answers nobody waits for while it writes.
    let chain = (1000..1400)
        .map(|n| ChainedRecord {
            address: 0,
            record: numbered(n, LENGTH),
        })
        .collect();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        writing.put_chain(0, RplOptions::direct(), chain),
    )
    .await
    .expect("the chain was not written within 20 s: nobody took the answers before it")
    .unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    let record = writing.read(b"00001399").await.unwrap();
    assert_eq!(record.data, numbered(1399, LENGTH));
    server.server.stop().await;
}
