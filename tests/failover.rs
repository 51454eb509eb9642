//! A client given a fleet's addresses (`a,b`) fails over when its server
//! or its connection is lost: an open dataset is opened again on the next
//! server and a browse goes on where it was; a record held for update, a
//! unit of work not committed and a request in flight are reported, never
//! silently redone.

use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};
use vsam_conformance::Postgres;
use vsam_protocol::access;
use vsam_tests::relay::Relay;
use vsam_tests::{TestServer, two_servers_sharing};

const NAME: &str = "FAILOVER.KSDS";
const RECORDS: usize = 20;

fn key(n: usize) -> Vec<u8> {
    format!("K{n:07}").into_bytes()
}

fn record(n: usize, text: &str) -> Vec<u8> {
    let mut record = key(n);
    record.extend_from_slice(text.as_bytes());
    record.resize(40, b'.');
    record
}

/// Two servers on `postgres` sharing the dataset, which holds records 1
/// to 20.
async fn two_servers(postgres: &Postgres) -> (TestServer, TestServer) {
    two_servers_sharing(
        &postgres.url,
        NAME,
        (1..=RECORDS).map(|n| record(n, "first")),
    )
    .await
}

/// GET UPD of record `n` on string 2.
async fn hold_on_string_2(ds: &Dataset, n: usize) {
    ds.reading(RplOptions::direct().update())
        .on(2)
        .key(&key(n))
        .record()
        .await
        .unwrap();
}

fn assert_server_lost(result: Result<impl std::fmt::Debug, ClientError>, says: &str) {
    match result {
        Err(error @ ClientError::ServerLost { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(NAME) || message.contains("COMMIT"),
                "{message}"
            );
            assert!(message.contains(says), "{message}");
        }
        other => panic!("expected a lost server saying {says:?}, got {other:?}"),
    }
}

async fn read(server: &str, n: usize) -> Vec<u8> {
    let conn = Connection::connect(server).await.unwrap();
    let ds = Dataset::open(&conn, NAME, OpenIntent::Input, 1)
        .await
        .unwrap();
    ds.read(&key(n)).await.unwrap().data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_left_for_the_next_and_a_browse_goes_on_where_it_was() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let conn = Connection::connect(&format!("{},{}", a.address, b.address))
        .await
        .unwrap();
    assert_eq!(conn.server(), a.address);
    // String 0 browses forward, string 1 backward from the end, string 2
    // holds record 10 for update; a unit of work changes record 15.
    let ds = Dataset::open(&conn, NAME, OpenIntent::Update, 3)
        .await
        .unwrap();
    let forward = ds.browse(5).await.unwrap();
    assert_eq!(forward.last().unwrap().key, key(5));
    ds.point(
        1,
        RplOptions::sequential().backward().last_record(),
        b"",
        0,
        0,
    )
    .await
    .unwrap();
    let backward = ds
        .reading(RplOptions::sequential().backward())
        .on(1)
        .batch(2)
        .records()
        .await
        .unwrap();
    assert_eq!(backward.last().unwrap().key, key(RECORDS - 1));
    hold_on_string_2(&ds, 10).await;
    let unit = Dataset::open_with_access(&conn, NAME, OpenIntent::Update, access::COMMIT, 1)
        .await
        .unwrap();
    unit.read_for_update(&key(15)).await.unwrap();
    unit.put(
        0,
        RplOptions::direct().update(),
        0,
        record(15, "in the unit"),
    )
    .await
    .unwrap();

    let inserting = Dataset::open(&conn, NAME, OpenIntent::Update, 1)
        .await
        .unwrap();

    a.server.stop().await;

    // Nobody read the socket since A closed it: the insert looks first,
    // sees it closed, and is made on B, not reported in doubt.
    inserting
        .put(0, RplOptions::direct(), 0, record(RECORDS + 1, "on B"))
        .await
        .unwrap();
    assert_eq!(
        read(&b.address, RECORDS + 1).await,
        record(RECORDS + 1, "on B")
    );

    // The browses go on from where they were, on B.
    let next = ds.browse(3).await.unwrap();
    let keys: Vec<_> = next.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, [key(6), key(7), key(8)]);
    assert_eq!(conn.server(), b.address);
    assert_eq!(conn.failovers(), 1);
    let before = ds
        .reading(RplOptions::sequential().backward())
        .on(1)
        .record()
        .await
        .unwrap();
    assert_eq!(before.key, key(RECORDS - 2));
    // The record held for update went with A: its PUT UPD says so rather
    // than writing over a record another program may have changed.
    assert_server_lost(
        ds.put(2, RplOptions::direct().update(), 0, record(10, "late"))
            .await,
        "read it again for update",
    );
    assert_eq!(read(&b.address, 10).await, record(10, "first"));
    hold_on_string_2(&ds, 10).await;
    ds.put(
        2,
        RplOptions::direct().update(),
        0,
        record(10, "updated on B"),
    )
    .await
    .unwrap();
    assert_eq!(read(&b.address, 10).await, record(10, "updated on B"));
    // The unit went with A: it neither commits nor takes more changes
    // until it is rolled back; then units work again.
    assert_server_lost(
        unit.put(0, RplOptions::direct(), 0, record(30, "more"))
            .await,
        "ROLLBACK",
    );
    assert_server_lost(vsam_client::commit(&conn).await, "rolled the unit");
    assert_eq!(read(&b.address, 15).await, record(15, "first"));
    unit.read_for_update(&key(15)).await.unwrap();
    unit.put(0, RplOptions::direct().update(), 0, record(15, "unit on B"))
        .await
        .unwrap();
    vsam_client::commit(&conn).await.unwrap();
    assert_eq!(read(&b.address, 15).await, record(15, "unit on B"));
    b.server.stop().await;
}

/// Runs `request` with the server's answer withheld, and cuts the
/// connection once the request has reached the server: its answer is lost.
async fn answer_lost<T>(relay: &Relay, request: impl std::future::Future<Output = T>) -> T {
    relay.withhold_answers(true);
    let cut = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        relay.cut();
    };
    let (outcome, ()) = tokio::join!(request, cut);
    relay.withhold_answers(false);
    outcome
}

/// A connection to `servers` with the dataset open.
async fn open(servers: &str, intent: OpenIntent) -> (Connection, Dataset) {
    let conn = Connection::connect(servers).await.unwrap();
    let ds = Dataset::open(&conn, NAME, intent, 1).await.unwrap();
    (conn, ds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_when_the_connection_is_lost_is_reported_not_redone() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let relay = Relay::start(&a.address).await;
    let list = format!("{},{}", relay.address, b.address);

    // A GET UPD whose answer is lost: an error, and the record is not held
    // by anyone (A let it go with the connection).
    let (conn, ds) = open(&list, OpenIntent::Update).await;
    let held = answer_lost(&relay, ds.read_for_update(&key(3))).await;
    assert_server_lost(held, "the record is not held");
    assert_eq!(conn.server(), relay.address, "moves at the next request");
    ds.read_for_update(&key(3)).await.unwrap();
    assert_eq!(conn.server(), b.address);
    ds.put(0, RplOptions::direct().update(), 0, record(3, "after"))
        .await
        .unwrap();

    // An insert whose answer is lost is in doubt: reported, not sent again
    // (it was stored: sending it again would answer a duplicate key).
    let (conn, ds) = open(&list, OpenIntent::Update).await;
    assert_eq!(conn.server(), relay.address);
    let put = answer_lost(
        &relay,
        ds.put(0, RplOptions::direct(), 0, record(40, "in doubt")),
    )
    .await;
    assert_server_lost(put, "whether it was stored is unknown");
    assert_eq!(
        ds.read(&key(40)).await.unwrap().data,
        record(40, "in doubt")
    );

    // A read whose answer is lost is simply asked again on the next server.
    let (conn, ds) = open(&list, OpenIntent::Input).await;
    let read = answer_lost(&relay, ds.read(&key(7))).await;
    assert_eq!(read.unwrap().data, record(7, "first"));
    assert_eq!(conn.failovers(), 1);

    // One address: no failover, the loss is reported as before.
    let (conn, ds) = open(&relay.address, OpenIntent::Input).await;
    assert!(!conn.fails_over());
    let read = answer_lost(&relay, ds.read(&key(7))).await;
    assert!(matches!(read, Err(ClientError::Closed(_))), "{read:?}");
    drop(relay);
    a.server.stop().await;
    b.server.stop().await;
}
