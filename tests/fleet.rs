//! Two vsamrd on one real PostgreSQL database (a fleet): a record one
//! server holds for update, or one of its units of work changed, is
//! refused with X'14' on the other, as on a second connection of one
//! server; a write that relied on a lock the database dropped is refused;
//! a closed connection frees its records for the other server.

use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};
use vsam_conformance::Postgres;
use vsam_protocol::{access, fdbk};
use vsam_tests::{TestServer, fleet_server, ksds, two_servers_sharing};

const NAME: &str = "FLEET.KSDS";

fn record(key: &str, text: &str) -> Vec<u8> {
    let mut record = format!("{key}{text}").into_bytes();
    record.resize(40, b'.');
    record
}

/// Two servers on `postgres`, the dataset defined on the first (the
/// second finds it in the shared catalog), holding one record `K0000001`.
async fn two_servers(postgres: &Postgres) -> (TestServer, TestServer) {
    two_servers_sharing(&postgres.url, NAME, [record("K0000001", "first")]).await
}

/// A connection to `server` with the dataset open for update, in
/// `commit` durability if `in_units`.
async fn open(server: &TestServer, in_units: bool) -> (Connection, Dataset) {
    let conn = Connection::connect(&server.address).await.unwrap();
    let ds = match in_units {
        true => Dataset::open_with_access(&conn, NAME, OpenIntent::Update, access::COMMIT, 1).await,
        false => Dataset::open(&conn, NAME, OpenIntent::Update, 1).await,
    };
    (conn, ds.unwrap())
}

fn assert_held_elsewhere(result: Result<vsam_client::Record, ClientError>) {
    let error = result.expect_err("held by the other server");
    let vsam = error.vsam().expect("a VSAM answer");
    assert_eq!(
        (vsam.r15(), vsam.fdbk()),
        (8, fdbk::EXCLUSIVE_CONTROL.into()),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("FLEET.KSDS GET") && message.contains("another server of the fleet"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_held_on_one_server_is_refused_on_the_other() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let (_conn_a, on_a) = open(&a, false).await;
    let (_conn_b, on_b) = open(&b, false).await;

    // Held for update on A: B may read it, not take it.
    on_a.read_for_update(b"K0000001").await.unwrap();
    // The fleet as the database shows it (what `vsamr admin status`
    // lists): both servers' lock sessions and this test's, one record
    // lock held, the dataset open on each server.
    let observer = vsam_host::fleet::Fleet::new("observer");
    let members = observer.session(&postgres.url).members().await.unwrap();
    assert_eq!(members.len(), 3, "{members:?}");
    assert_eq!(members.iter().filter(|m| m.this).count(), 1, "{members:?}");
    assert_eq!(
        members.iter().map(|m| m.locks).sum::<u64>(),
        1,
        "{members:?}"
    );
    let mut opens: Vec<u64> = members.iter().map(|m| m.opens).collect();
    opens.sort();
    assert_eq!(opens, [0, 1, 1], "{members:?}");
    assert!(
        members.iter().all(|m| m
            .server
            .starts_with(&format!("vsamrd {} ", env!("CARGO_PKG_VERSION")))),
        "{members:?}"
    );
    assert_held_elsewhere(on_b.read_for_update(b"K0000001").await);
    // An insert of its key finds it stored (X'08'), as on one server.
    assert_refused(
        on_b.put(0, RplOptions::direct(), 0, record("K0000001", "again"))
            .await,
        fdbk::DUPLICATE_KEY.into(),
        "exists",
    );
    let read = on_b
        .reading(RplOptions::direct())
        .key(b"K0000001")
        .record()
        .await
        .unwrap();
    assert_eq!(read.data, record("K0000001", "first"));

    // A's update frees it; B then takes it and reads A's update.
    on_a.put(
        0,
        RplOptions::direct().update(),
        0,
        record("K0000001", "by A"),
    )
    .await
    .unwrap();
    let taken = on_b.read_for_update(b"K0000001").await.unwrap();
    assert_eq!(taken.data, record("K0000001", "by A"));
    assert_held_elsewhere(on_a.read_for_update(b"K0000001").await);
    on_b.put(
        0,
        RplOptions::direct().update(),
        0,
        record("K0000001", "by B"),
    )
    .await
    .unwrap();

    // A unit of work's change on A holds the record until ROLLBACK.
    let (conn_unit, in_unit) = open(&a, true).await;
    in_unit.read_for_update(b"K0000001").await.unwrap();
    in_unit
        .put(
            0,
            RplOptions::direct().update(),
            0,
            record("K0000001", "in A's unit"),
        )
        .await
        .unwrap();
    assert_held_elsewhere(on_b.read_for_update(b"K0000001").await);
    // A key A's unit inserted and has not committed: B's insert of it is
    // refused, as another connection's would be on A.
    in_unit
        .put(0, RplOptions::direct(), 0, record("K0000002", "A's unit"))
        .await
        .unwrap();
    assert_refused(
        on_b.put(0, RplOptions::direct(), 0, record("K0000002", "B"))
            .await,
        fdbk::EXCLUSIVE_CONTROL.into(),
        "another server of the fleet",
    );
    vsam_client::rollback(&conn_unit).await.unwrap();
    on_b.put(0, RplOptions::direct(), 0, record("K0000002", "B"))
        .await
        .unwrap();
    let taken = on_b.read_for_update(b"K0000001").await.unwrap();
    assert_eq!(taken.data, record("K0000001", "by B"), "rolled back");

    // A connection that ends frees what it held for the other server.
    drop(on_b);
    drop(_conn_b);
    within_5s(async || on_a.read_for_update(b"K0000001").await.is_ok()).await;
    drop(on_a);
    drop(_conn_a);
    drop(in_unit);
    drop(conn_unit);

    // Nothing is left held in the database once the connections are gone:
    // no record lock, no open.
    // (Each running server holds the fleet's membership lock.)
    let locks = format!(
        "select count(*) from pg_locks l where locktype = 'advisory' and {}",
        vsam_host::fleet::NOT_SOLO
    );
    let freed = within_5s(async || postgres.psql("vsam", &locks).unwrap() == "0").await;
    println!("every lock given back {freed:?} after the connections ended");
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_relied_on_a_lost_lock_is_refused() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let (_conn_a, on_a) = open(&a, false).await;
    on_a.read_for_update(b"K0000001").await.unwrap();

    // The database ends the session that holds A's lock (a restart, a
    // network failure, an operator's pg_terminate_backend).
    let ended = postgres
        .psql(
            "vsam",
            "select count(pg_terminate_backend(pid)) from pg_locks where locktype = 'advisory' and mode = 'ExclusiveLock'",
        )
        .unwrap();
    assert_eq!(ended, "1");
    // B may take the record now, and change it.
    let (_conn_b, on_b) = open(&b, false).await;
    within_5s(async || on_b.read_for_update(b"K0000001").await.is_ok()).await;
    on_b.put(
        0,
        RplOptions::direct().update(),
        0,
        record("K0000001", "by B"),
    )
    .await
    .unwrap();

    // A's update would overwrite B's: refused, nothing written.
    let refused = on_a
        .put(
            0,
            RplOptions::direct().update(),
            0,
            record("K0000001", "by A"),
        )
        .await
        .unwrap_err();
    let vsam = refused.vsam().expect("a VSAM answer");
    assert_eq!(vsam.r15(), 12, "{refused}");
    assert!(
        refused.to_string().contains("FLEET.KSDS PUT")
            && refused.to_string().contains("lost with its connection"),
        "{refused}"
    );
    let stored = on_a
        .reading(RplOptions::direct())
        .key(b"K0000001")
        .record()
        .await
        .unwrap();
    assert_eq!(stored.data, record("K0000001", "by B"));

    // A new lock session serves A's next GET UPD.
    drop(on_b);
    drop(_conn_b);
    within_5s(async || on_a.read_for_update(b"K0000001").await.is_ok()).await;
    let again = on_a.read_for_update(b"K0000001").await.unwrap();
    assert_eq!(again.data, record("K0000001", "by B"));
    on_a.put(
        0,
        RplOptions::direct().update(),
        0,
        record("K0000001", "by A again"),
    )
    .await
    .unwrap();
    // A still has the dataset open: its new lock session took the open
    // lock again, so another server may not delete the dataset under it.
    let conn_b = Connection::connect(&b.address).await.unwrap();
    assert_refused(
        vsam_client::delete(&conn_b, NAME).await,
        fdbk::EXCLUSIVE_CONTROL.into(),
        "open on another server of the fleet",
    );
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_one_esds_from_two_servers_never_share_an_rba() {
    let postgres = Postgres::start().unwrap();
    let servers = [
        fleet_server(&postgres.url).await,
        fleet_server(&postgres.url).await,
    ];
    let mut spec = ksds("FLEET.ESDS", 0, 40, "ascii");
    spec.organization = vsam_client::Organization::Esds;
    let conn = Connection::connect(&servers[0].address).await.unwrap();
    vsam_client::define(&conn, spec).await.unwrap();
    const WRITERS: usize = 4;
    const RECORDS: usize = 50;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let address = servers[writer % 2].address.clone();
            tokio::spawn(async move {
                let conn = Connection::connect(&address).await.unwrap();
                let ds = Dataset::open(&conn, "FLEET.ESDS", OpenIntent::Output, 1)
                    .await
                    .unwrap();
                let mut rbas = Vec::new();
                for n in 0..RECORDS {
                    let written = ds
                        .put(
                            0,
                            RplOptions::addressed(vsam_protocol::Processing::Sequential),
                            0,
                            record(&format!("W{writer}N{n:05}"), ""),
                        )
                        .await
                        .unwrap_or_else(|e| panic!("writer {writer}, record {n}: {e}"));
                    rbas.push(written.address);
                }
                rbas
            })
        })
        .collect();
    let mut rbas = Vec::new();
    for writer in writers {
        rbas.extend(writer.await.unwrap());
    }
    rbas.sort();
    rbas.dedup();
    assert_eq!(rbas.len(), WRITERS * RECORDS, "an RBA was handed out twice");
    // Each record under the RBA its PUT answered, read on either server.
    let conn = Connection::connect(&servers[1].address).await.unwrap();
    let ds = Dataset::open(&conn, "FLEET.ESDS", OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut read = Vec::new();
    loop {
        let batch = ds
            .reading(vsam_protocol::RplOptions::addressed(
                vsam_protocol::Processing::Sequential,
            ))
            .batch(1000)
            .records()
            .await;
        match batch {
            Ok(batch) => read.extend(batch.into_iter().map(|record| record.address)),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(read, rbas, "every record read back under its RBA");
    for server in servers {
        server.server.stop().await;
    }
}

/// HAProxy with `examples/haproxy/haproxy.cfg`, its servers and port
/// replaced; stopped when dropped.
struct Proxy {
    child: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Proxy {
    fn start(servers: [&str; 2]) -> Self {
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/haproxy/haproxy.cfg"
        ))
        .unwrap();
        let address = format!("127.0.0.1:{}", vsam_tests::free_port());
        let config = example
            .replace("bind *:2387", &format!("bind {address}"))
            .replace("192.0.2.1:2387", servers[0])
            .replace("192.0.2.2:2387", servers[1]);
        assert_ne!(config, example, "the example's placeholders changed");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = std::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("haproxy is installed by scripts/setup");
        Self {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `K0000001` on a new connection to `address`.
async fn read_through(address: &str) -> Result<Vec<u8>, ClientError> {
    let conn = Connection::connect(address).await?;
    let ds = Dataset::open(&conn, NAME, OpenIntent::Input, 1).await?;
    let record = ds
        .reading(RplOptions::direct())
        .key(b"K0000001")
        .record()
        .await?;
    Ok(record.data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_load_balancer_routes_around_a_stopped_server() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let proxy = Proxy::start([&a.address, &b.address]);
    // Both servers in service once HAProxy's HELLO checks pass.
    within_5s(async || read_through(&proxy.address).await.is_ok()).await;
    // Connections spread over both servers (leastconn, each held open).
    let mut held = Vec::new();
    for _ in 0..4 {
        let conn = Connection::connect(&proxy.address).await.unwrap();
        Dataset::open(&conn, NAME, OpenIntent::Input, 1)
            .await
            .unwrap();
        held.push(conn);
    }

    a.server.stop().await;
    // Every new connection is served by the server left, from the first:
    // a refused connect is retried on it, and the check marks A down.
    for n in 0..20 {
        let read = read_through(&proxy.address)
            .await
            .unwrap_or_else(|e| panic!("connection {n} after the stop: {e}"));
        assert_eq!(read, record("K0000001", "first"));
    }
    drop(held);
    drop(proxy);
    b.server.stop().await;
}

/// The names LIST shows on `server`.
async fn listed(server: &TestServer) -> Vec<String> {
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::list(&conn, "FLEET.**")
        .await
        .unwrap()
        .into_iter()
        .map(|spec| spec.name)
        .collect()
}

/// Waits until `check` holds, at most 5 s (fails the test after): how
/// long it took.
async fn within_5s(mut check: impl AsyncFnMut() -> bool) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "not seen within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    started.elapsed()
}

fn assert_refused(result: Result<impl std::fmt::Debug, ClientError>, code: u8, says: &str) {
    let error = result.expect_err("refused");
    let vsam = error.vsam().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(vsam.fdbk(), code, "{error}");
    assert!(error.to_string().contains(says), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_shared_by_the_fleet() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let on_a = Connection::connect(&a.address).await.unwrap();
    let on_b = Connection::connect(&b.address).await.unwrap();

    // A DEFINE on A: B answers INFO and OPEN at once, and lists it soon.
    vsam_client::define(&on_a, ksds("FLEET.NEW", 8, 40, "ascii"))
        .await
        .unwrap();
    let info = vsam_client::info(&on_b, "FLEET.NEW").await.unwrap();
    assert_eq!(info.key_length, 8);
    let seen = within_5s(async || listed(&b).await.contains(&"FLEET.NEW".to_string())).await;
    println!("a DEFINE listed on the other server after {seen:?}");
    // One name, one definition: a second DEFINE is a duplicate everywhere.
    assert_refused(
        vsam_client::define(&on_b, ksds("FLEET.NEW", 8, 40, "ascii")).await,
        fdbk::DUPLICATE_KEY.into(),
        "already in the catalog",
    );
    // Two DEFINEs of one name at once: one wins, the other is told.
    let (first, second) = tokio::join!(
        vsam_client::define(&on_a, ksds("FLEET.RACE", 8, 40, "ascii")),
        vsam_client::define(&on_b, ksds("FLEET.RACE", 10, 40, "ascii")),
    );
    assert!(
        first.is_ok() != second.is_ok(),
        "exactly one DEFINE wins: {first:?} {second:?}"
    );
    let loser = if first.is_ok() { second } else { first };
    assert_refused(loser, fdbk::DUPLICATE_KEY.into(), "already in the catalog");
    let winner_a = vsam_client::info(&on_a, "FLEET.RACE").await.unwrap();
    let winner_b = vsam_client::info(&on_b, "FLEET.RACE").await.unwrap();
    assert_eq!(
        winner_a.key_length, winner_b.key_length,
        "both serve the winner"
    );

    // DELETE waits for every server to close the dataset.
    let open_on_b = Dataset::open(&on_b, "FLEET.NEW", OpenIntent::Update, 1)
        .await
        .unwrap();
    assert_refused(
        vsam_client::delete(&on_a, "FLEET.NEW").await,
        fdbk::EXCLUSIVE_CONTROL.into(),
        "open on another server of the fleet",
    );
    // An alternate index needs its base closed on every server too.
    let aix = vsam_client::AixSpec {
        name: "FLEET.NEW.AIX".into(),
        base: "FLEET.NEW".into(),
        key_offset: 8,
        key_length: 4,
        unique: false,
        upgrade: true,
    };
    assert_refused(
        vsam_client::define_aix(&on_a, aix.clone()).await,
        fdbk::EXCLUSIVE_CONTROL.into(),
        "open on another server of the fleet",
    );
    open_on_b.close().await.unwrap();
    vsam_client::define_aix(&on_a, aix).await.unwrap();
    vsam_client::info(&on_b, "FLEET.NEW.AIX").await.unwrap();
    vsam_client::delete(&on_a, "FLEET.NEW").await.unwrap();
    let gone = within_5s(async || {
        !listed(&b)
            .await
            .iter()
            .any(|name| name.starts_with("FLEET.NEW"))
    })
    .await;
    println!("a DELETE gone from the other server after {gone:?}");
    assert_refused(
        vsam_client::info(&on_b, "FLEET.NEW").await,
        fdbk::NOT_FOUND.into(),
        "not in the catalog",
    );
    // The name is free again, for either server.
    vsam_client::define(&on_b, ksds("FLEET.NEW", 8, 40, "ascii"))
        .await
        .unwrap();
    vsam_client::info(&on_a, "FLEET.NEW").await.unwrap();

    // A name whose table would be the shared catalog's own: refused with
    // the reason, by DEFINE and by a rename; the catalog is intact.
    let reserved = "its table on the database of backend b would be vsamrd_catalog, where the servers sharing that database keep their catalog";
    assert_refused(
        vsam_client::define(&on_a, ksds("VSAMRD.CATALOG", 8, 40, "ascii")).await,
        fdbk::INVALID_OPTIONS.into(),
        reserved,
    );
    assert_refused(
        vsam_client::rename(&on_a, "FLEET.RACE", "VSAMRD.CATALOG").await,
        fdbk::INVALID_OPTIONS.into(),
        reserved,
    );
    vsam_client::info(&on_b, "FLEET.NEW").await.unwrap();

    // Rows written into the table by hand, one not a definition at all, one
    // a definition a DEFINE would refuse: left out, the others served.
    postgres
        .psql(
            "vsam",
            "insert into vsamrd_catalog (name, definition, server) values ('FLEET.BAD', 'not json', 'hand'); \
             insert into vsamrd_catalog (name, definition, server) select 'FLEET.WORSE', \
               regexp_replace(replace(definition, 'FLEET.NEW', 'FLEET.WORSE'), '\"max_record\":[0-9]+', '\"max_record\":0'), 'hand' \
               from vsamrd_catalog where name = 'FLEET.NEW'; \
             select pg_notify('vsamrd_catalog', 'by hand')",
        )
        .unwrap();
    for name in ["FLEET.BAD", "FLEET.WORSE"] {
        assert_refused(
            vsam_client::info(&on_b, name).await,
            fdbk::NOT_FOUND.into(),
            "not in the catalog",
        );
    }

    // A server started later (its data dir new) serves them all.
    let c = fleet_server(&postgres.url).await;
    within_5s(async || listed(&c).await.len() == listed(&a).await.len()).await;
    let on_c = listed(&c).await;
    assert!(
        on_c.contains(&"FLEET.NEW".to_string())
            && !on_c
                .iter()
                .any(|n| n.contains("BAD") || n.contains("WORSE")),
        "{on_c:?}"
    );
    for server in [a, b, c] {
        server.server.stop().await;
    }
}

/// An entry the shared catalog lacks (defined before the catalog was
/// shared, or its row removed by hand) is carried over by its server's next
/// whole reading and announced: another server lists it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_the_shared_catalog_lacks_is_carried_over_and_announced() {
    let postgres = Postgres::start().unwrap();
    let a = fleet_server(&postgres.url).await;
    let on_a = Connection::connect(&a.address).await.unwrap();
    vsam_client::define(&on_a, ksds("FLEET.CARRIED", 8, 40, "ascii"))
        .await
        .unwrap();
    let row = || {
        postgres
            .psql(
                "vsam",
                "select count(*) from vsamrd_catalog where name = 'FLEET.CARRIED' and definition is not null",
            )
            .unwrap()
    };
    assert_eq!(row().trim(), "1");
    // The row removed without a word: A keeps its entry, and a server
    // started now does not know it.
    postgres
        .psql(
            "vsam",
            "delete from vsamrd_catalog where name = 'FLEET.CARRIED'",
        )
        .unwrap();
    let b = fleet_server(&postgres.url).await;
    assert!(!listed(&b).await.contains(&"FLEET.CARRIED".to_string()));
    // A whole reading (asked by an announcement that names no dataset)
    // carries A's entry over; B lists it.
    postgres
        .psql("vsam", "select pg_notify('vsamrd_catalog', 'by hand')")
        .unwrap();
    let seen = within_5s(async || listed(&b).await.contains(&"FLEET.CARRIED".to_string())).await;
    println!("carried over and listed on the other server after {seen:?}");
    assert_eq!(row().trim(), "1");
    let on_b = Connection::connect(&b.address).await.unwrap();
    assert_eq!(
        vsam_client::info(&on_b, "FLEET.CARRIED")
            .await
            .unwrap()
            .key_length,
        8
    );
    for server in [a, b] {
        server.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chain_of_inserts_takes_its_locks_and_is_written_whole() {
    let postgres = Postgres::start().unwrap();
    let (a, b) = two_servers(&postgres).await;
    let conn = Connection::connect(&b.address).await.unwrap();
    let ds = Dataset::open(&conn, NAME, OpenIntent::Output, 1)
        .await
        .unwrap();
    // More records than one statement can lock (PostgreSQL answers at
    // most 1,664 columns a row).
    let records: Vec<vsam_client::ChainedRecord> = (2..5002)
        .map(|n| vsam_client::ChainedRecord {
            address: 0,
            record: record(&format!("K{n:07}"), "chained"),
        })
        .collect();
    let outcome = ds
        .put_chain(0, RplOptions::sequential(), records)
        .await
        .unwrap();
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    assert_eq!(outcome.written.len(), 5000);
    assert_eq!(
        postgres
            .psql("vsam", "select count(*) from fleet_ksds")
            .unwrap(),
        "5001"
    );
    drop(ds);
    drop(conn);
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browse_reads_ahead_only_while_its_server_is_alone_on_the_database() {
    let postgres = Postgres::start().unwrap();
    let a = fleet_server(&postgres.url).await;
    let conn = Connection::connect(&a.address).await.unwrap();
    vsam_client::define(&conn, ksds(NAME, 8, 40, "ascii"))
        .await
        .unwrap();
    let writer = Dataset::open(&conn, NAME, OpenIntent::Output, 1)
        .await
        .unwrap();
    for n in 1..=6 {
        writer
            .put(
                0,
                RplOptions::direct(),
                0,
                record(&format!("K{n:07}"), "first"),
            )
            .await
            .unwrap();
    }
    let reader_conn = Connection::connect(&a.address).await.unwrap();
    let browse = Dataset::open(&reader_conn, NAME, OpenIntent::Input, 1)
        .await
        .unwrap();
    let next = async || browse.next().await.unwrap().data;
    assert_eq!(next().await, record("K0000001", "first"));
    // The second GET of a browse fetches two records.
    assert_eq!(next().await, record("K0000002", "first"));

    // Alone on the database, A reads ahead: a change made behind its back
    // (plain SQL, no server) shows only at its next fetch.
    let behind = record("K0000003", "behind");
    postgres
        .psql(
            "vsam",
            &format!(
                "update fleet_ksds set vsam_record = '\\x{}' where vsam_key = '\\x{}'",
                hex::encode(&behind),
                hex::encode(b"K0000003")
            ),
        )
        .unwrap();
    assert_eq!(next().await, record("K0000003", "first"), "read ahead");

    // B joins: from then on A reads every record when asked, so each
    // change B makes shows at A's next GET.
    let b = fleet_server(&postgres.url).await;
    let (_conn_b, on_b) = open(&b, false).await;
    for n in 4..=6 {
        let key = format!("K{n:07}");
        on_b.read_for_update(key.as_bytes()).await.unwrap();
        on_b.put(0, RplOptions::direct().update(), 0, record(&key, "by B"))
            .await
            .unwrap();
        assert_eq!(next().await, record(&key, "by B"));
    }
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_defined_again_elsewhere_is_served_with_its_new_layout() {
    let postgres = Postgres::start().unwrap();
    let a = fleet_server(&postgres.url).await;
    let b = fleet_server(&postgres.url).await;
    let layout = |fields: &str| {
        let mut spec = ksds("FLEET.TYPED", 8, 20, "ascii");
        spec.min_record = 20;
        spec.layout = format!("       01 REC.\n           05 ID PIC X(8).\n{fields}");
        spec
    };
    let first = layout("           05 NAME PIC X(12).\n");
    let second = layout("           05 NAME PIC X(4).\n           05 CITY PIC X(8).\n");
    let on_a = Connection::connect(&a.address).await.unwrap();
    let on_b = Connection::connect(&b.address).await.unwrap();
    let write = async |conn: &Connection, record: &[u8]| {
        let ds = Dataset::open(conn, "FLEET.TYPED", OpenIntent::Update, 1)
            .await
            .unwrap();
        ds.put(0, RplOptions::direct(), 0, record.to_vec())
            .await
            .unwrap();
        ds.close().await.unwrap();
    };
    let read = async |conn: &Connection| {
        let ds = Dataset::open(conn, "FLEET.TYPED", OpenIntent::Input, 1)
            .await
            .unwrap();
        let data = ds.read(b"00000001").await.unwrap().data;
        ds.close().await.unwrap();
        data
    };
    vsam_client::define(&on_a, first).await.unwrap();
    write(&on_a, b"00000001SMITH       ").await;
    assert_eq!(read(&on_a).await, b"00000001SMITH       ");

    // B deletes it and defines it again with `spec`, writes `record`; A,
    // which read it as it was, serves the record as B wrote it.
    let again = async |spec: vsam_protocol::DatasetSpec, record: &[u8]| {
        vsam_client::delete(&on_b, "FLEET.TYPED").await.unwrap();
        vsam_client::define(&on_b, spec.clone()).await.unwrap();
        write(&on_b, record).await;
        within_5s(async || {
            vsam_client::info(&on_a, "FLEET.TYPED")
                .await
                .is_ok_and(|seen| seen.layout == spec.layout)
        })
        .await;
        assert_eq!(read(&on_a).await, record);
    };
    within_5s(async || vsam_client::info(&on_b, "FLEET.TYPED").await.is_ok()).await;
    // Other fields.
    again(second, b"00000001JONEPARIS   ").await;
    // The same columns of other types: A's statements, prepared for the
    // old table, are prepared again.
    let third = layout("           05 NAME PIC 9(4).\n           05 CITY PIC X(8).\n");
    again(third, b"000000011234LYON    ").await;
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_alternate_key_written_from_two_servers_at_once_is_stored_once() {
    let postgres = Postgres::start().unwrap();
    let a = fleet_server(&postgres.url).await;
    let b = fleet_server(&postgres.url).await;
    let on_a = Connection::connect(&a.address).await.unwrap();
    let on_b = Connection::connect(&b.address).await.unwrap();
    vsam_client::define(&on_a, ksds("FLEET.BASE", 8, 40, "ascii"))
        .await
        .unwrap();
    vsam_client::define_aix(
        &on_a,
        vsam_client::AixSpec {
            name: "FLEET.BASE.AIX".into(),
            base: "FLEET.BASE".into(),
            key_offset: 8,
            key_length: 4,
            unique: true,
            upgrade: true,
        },
    )
    .await
    .unwrap();
    vsam_client::define_path(
        &on_a,
        vsam_client::PathSpec {
            name: "FLEET.BASE.PATH".into(),
            aix: "FLEET.BASE.AIX".into(),
        },
    )
    .await
    .unwrap();
    within_5s(async || vsam_client::info(&on_b, "FLEET.BASE.PATH").await.is_ok()).await;

    // Each server inserts records of its own keys, the same alternate keys.
    const KEYS: usize = 40;
    let inserts = async |conn: &Connection, server: char| {
        let ds = Dataset::open(conn, "FLEET.BASE", OpenIntent::Update, 1)
            .await
            .unwrap();
        let mut stored = Vec::new();
        for n in 0..KEYS {
            let mut data = format!("{server}{n:07}X{n:03}").into_bytes();
            data.resize(40, b'.');
            match ds.put(0, RplOptions::direct(), 0, data).await {
                Ok(_) => stored.push(n),
                Err(error) => {
                    let vsam = error.vsam().unwrap_or_else(|| panic!("{error}"));
                    assert!(
                        vsam.fdbk() == u8::from(fdbk::DUPLICATE_KEY)
                            || vsam.fdbk() == u8::from(fdbk::EXCLUSIVE_CONTROL),
                        "{error}"
                    );
                }
            }
        }
        stored
    };
    let (from_a, from_b) = tokio::join!(inserts(&on_a, 'A'), inserts(&on_b, 'B'));
    for n in 0..KEYS {
        assert!(
            !(from_a.contains(&n) && from_b.contains(&n)),
            "alternate key X{n:03} stored by both servers"
        );
    }
    // The base holds only the records whose insert was answered, and the
    // path finds each by its alternate key.
    let base = Dataset::open(&on_b, "FLEET.BASE", OpenIntent::Input, 1)
        .await
        .unwrap();
    let all = base.browse(1000).await.unwrap();
    assert_eq!(
        all.len(),
        from_a.len() + from_b.len(),
        "no base record without its index entry"
    );
    let path = Dataset::open(&on_a, "FLEET.BASE.PATH", OpenIntent::Input, 1)
        .await
        .unwrap();
    for record in &all {
        let alternate = &record.data[8..12];
        let found = path.read(alternate).await.unwrap();
        assert_eq!(found.data, record.data);
    }
    a.server.stop().await;
    b.server.stop().await;
}
