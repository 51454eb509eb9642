//! Units of work: changes made in `commit` durability are seen at once by
//! their own connection and by others only after COMMIT; ROLLBACK, a
//! dropped connection and a unit too large undo all of them; the records a
//! unit changed are held against other connections until it ends; CLOSE
//! commits; ESDS additions stay, as in CICS. On the SQL (SQLite) and CSV
//! backends, which keep units whole.

use vsam_client::{
    ClientError, Connection, Dataset, DatasetSpec, OpenIntent, Organization, RplOptions,
};
use vsam_protocol::{Processing, access, fdbk, r15};
use vsam_tests::{CSV_WASM, MEMORY_WASM, SQL_WASM, TestServer, start, start_with_plugin};

fn spec(name: &str) -> DatasetSpec {
    vsam_tests::ksds(name, 4, 40, "ascii")
}

async fn sql_server(extra_server: &str) -> TestServer {
    start(&format!(
        "{extra_server}[plugins.p]\npath = \"{SQL_WASM}\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"sqlite:b.db\"\n[routing]\ndefault = \"b\"\n"
    ))
    .await
}

/// A server on SQLite with `limits` (lines of its `[server]` section),
/// and its data directory.
async fn sql_server_limited(limits: &str) -> (vsam_host::RunningServer, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{limits}\n[plugins.p]\npath = \"{SQL_WASM}\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"sqlite:b.db\"\n[routing]\ndefault = \"b\"\n",
        data.path().display()
    );
    let config =
        vsam_host::config::Config::parse(&text, "<test>", std::path::Path::new(".")).unwrap();
    let server = vsam_host::RunningServer::start_with(&config, Default::default())
        .await
        .unwrap();
    (server, data)
}

async fn servers() -> Vec<(&'static str, TestServer)> {
    vec![
        ("sql", sql_server("").await),
        ("csv", start_with_plugin(CSV_WASM, "").await),
    ]
}

async fn open(conn: &Connection, name: &str, commit: bool) -> Dataset {
    let bits = if commit { access::COMMIT } else { 0 };
    Dataset::open_with_access(conn, name, OpenIntent::Update, bits, 2)
        .await
        .unwrap()
}

async fn insert(ds: &Dataset, record: &str) -> Result<(), ClientError> {
    ds.put(0, RplOptions::direct(), 0, record.as_bytes().to_vec())
        .await
        .map(drop)
}

async fn update(ds: &Dataset, record: &str) -> Result<(), ClientError> {
    ds.read_for_update(&record.as_bytes()[..4]).await?;
    ds.put(
        0,
        RplOptions::direct().update(),
        0,
        record.as_bytes().to_vec(),
    )
    .await
    .map(drop)
}

async fn erase(ds: &Dataset, key: &str) -> Result<(), ClientError> {
    ds.read_for_update(key.as_bytes()).await?;
    ds.erase(0).await
}

/// Every record as the dataset's connection sees it, forward.
async fn all(ds: &Dataset) -> Vec<String> {
    match ds
        .point(
            1,
            RplOptions::sequential().greater_or_equal(),
            b"\0\0\0\0",
            0,
            0,
        )
        .await
    {
        Err(e) if e.is_end_of_data() => return Vec::new(),
        other => other.unwrap(),
    }
    let mut out = Vec::new();
    loop {
        match ds
            .reading(RplOptions::sequential())
            .on(1)
            .batch(3)
            .records()
            .await
        {
            Ok(batch) => out.extend(
                batch
                    .into_iter()
                    .map(|r| String::from_utf8(r.data).unwrap()),
            ),
            Err(e) if e.is_end_of_data() => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Every record as the dataset's connection sees it, backward.
async fn all_backward(ds: &Dataset) -> Vec<String> {
    ds.point(
        1,
        RplOptions::sequential().backward().last_record(),
        b"",
        0,
        0,
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    loop {
        match ds
            .reading(RplOptions::sequential().backward())
            .on(1)
            .record()
            .await
        {
            Ok(record) => out.push(String::from_utf8(record.data).unwrap()),
            Err(e) if e.is_end_of_data() => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

fn code(error: &ClientError) -> (u8, u8) {
    let vsam = error
        .vsam()
        .unwrap_or_else(|| panic!("not a VSAM error: {error}"));
    (vsam.r15(), vsam.fdbk())
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_is_seen_by_others_only_after_commit_and_rollback_undoes_all_of_it() {
    for (backend, server) in servers().await {
        let a = Connection::connect(&server.address).await.unwrap();
        let b = Connection::connect(&server.address).await.unwrap();
        vsam_client::define(&a, spec("UW.ONE")).await.unwrap();
        let plain = open(&a, "UW.ONE", false).await;
        for record in ["0002-two", "0004-four", "0006-six"] {
            insert(&plain, record).await.unwrap();
        }
        plain.close().await.unwrap();

        let mine = open(&a, "UW.ONE", true).await;
        let theirs = open(&b, "UW.ONE", false).await;
        insert(&mine, "0001-one").await.unwrap();
        insert(&mine, "0005-five").await.unwrap();
        update(&mine, "0004-FOUR").await.unwrap();
        erase(&mine, "0006").await.unwrap();
        insert(&mine, "0009-nine").await.unwrap();
        update(&mine, "0009-NINE").await.unwrap();
        insert(&mine, "0007-seven").await.unwrap();
        erase(&mine, "0007").await.unwrap();
        let inside = strings(&[
            "0001-one",
            "0002-two",
            "0004-FOUR",
            "0005-five",
            "0009-NINE",
        ]);
        let before = strings(&["0002-two", "0004-four", "0006-six"]);
        assert_eq!(all(&mine).await, inside, "{backend}: the unit sees itself");
        let mut reversed = inside.clone();
        reversed.reverse();
        assert_eq!(
            all_backward(&mine).await,
            reversed,
            "{backend}: backward too"
        );
        assert_eq!(
            all(&theirs).await,
            before,
            "{backend}: others see the store"
        );
        assert_eq!(
            mine.read(b"0005").await.unwrap().data,
            b"0005-five",
            "{backend}: a direct GET of the unit's insert"
        );
        let erased = mine.read(b"0006").await.unwrap_err();
        assert_eq!(
            code(&erased),
            (r15::LOGICAL, fdbk::NOT_FOUND.0),
            "{backend}"
        );
        let duplicate = insert(&mine, "0005-again").await.unwrap_err();
        assert_eq!(
            code(&duplicate),
            (r15::LOGICAL, fdbk::DUPLICATE_KEY.0),
            "{backend}"
        );
        insert(&mine, "0006-six again").await.unwrap();
        erase(&mine, "0006").await.unwrap();

        // Held against the other connection until the unit ends.
        let held = theirs.read_for_update(b"0004").await.unwrap_err();
        assert_eq!(
            code(&held),
            (r15::LOGICAL, fdbk::EXCLUSIVE_CONTROL.0),
            "{backend}"
        );
        let message = &held.vsam().unwrap().status.message;
        assert!(message.contains("unit of work of connection"), "{message}");
        let taken = insert(&theirs, "0005-theirs").await.unwrap_err();
        assert_eq!(
            code(&taken),
            (r15::LOGICAL, fdbk::EXCLUSIVE_CONTROL.0),
            "{backend}"
        );
        assert_eq!(
            theirs.read(b"0004").await.unwrap().data,
            b"0004-four",
            "{backend}: a plain GET of a held record reads what is committed"
        );

        vsam_client::rollback(&a).await.unwrap();
        assert_eq!(all(&mine).await, before, "{backend}: rolled back");
        assert_eq!(all(&theirs).await, before, "{backend}");
        update(&theirs, "0004-theirs").await.unwrap();

        insert(&mine, "0003-three").await.unwrap();
        update(&mine, "0002-TWO").await.unwrap();
        erase(&mine, "0006").await.unwrap();
        assert_eq!(
            all(&theirs).await,
            strings(&["0002-two", "0004-theirs", "0006-six"])
        );
        vsam_client::commit(&a).await.unwrap();
        let after = strings(&["0002-TWO", "0003-three", "0004-theirs"]);
        assert_eq!(all(&theirs).await, after, "{backend}: committed");
        update(&theirs, "0003-free").await.unwrap();
        // Nothing pending: both do nothing.
        vsam_client::commit(&a).await.unwrap();
        vsam_client::rollback(&a).await.unwrap();
        mine.close().await.unwrap();
        theirs.close().await.unwrap();
        server.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_and_a_dropped_connection_rolls_back() {
    for (backend, server) in servers().await {
        let conn = Connection::connect(&server.address).await.unwrap();
        vsam_client::define(&conn, spec("UW.TWO")).await.unwrap();
        let ds = open(&conn, "UW.TWO", true).await;
        insert(&ds, "0001-kept").await.unwrap();
        ds.close().await.unwrap();

        let gone = Connection::connect(&server.address).await.unwrap();
        let ds = open(&gone, "UW.TWO", true).await;
        insert(&ds, "0002-lost").await.unwrap();
        update(&ds, "0001-LOST").await.unwrap();
        drop(ds);
        drop(gone);

        let reader = Connection::connect(&server.address).await.unwrap();
        let ds = open(&reader, "UW.TWO", false).await;
        // The dropped connection's session ends on the server a moment
        // later; its records are free once it has.
        let mut tries = 0;
        loop {
            match update(&ds, "0001-free").await {
                Ok(()) => break,
                Err(e) if tries < 100 && code(&e).1 == fdbk::EXCLUSIVE_CONTROL.0 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{backend}: {e}"),
            }
        }
        assert_eq!(all(&ds).await, strings(&["0001-free"]), "{backend}");
        server.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_larger_than_the_limit_is_refused_and_rolled_back() {
    let (server, _data) = sql_server_limited("max_unit_records = 5").await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    vsam_client::define(&conn, spec("UW.BIG")).await.unwrap();
    let ds = open(&conn, "UW.BIG", true).await;
    for n in 1..=5 {
        insert(&ds, &format!("{n:04}-in")).await.unwrap();
    }
    update(&ds, "0003-again").await.unwrap();
    let refused = insert(&ds, "0006-too many").await.unwrap_err();
    assert_eq!(code(&refused), (r15::LOGICAL, fdbk::NO_SPACE.0));
    let message = &refused.vsam().unwrap().status.message;
    assert!(
        message.contains("max_unit_records") && message.contains("rolled back"),
        "{message}"
    );
    assert_eq!(
        all(&ds).await,
        Vec::<String>::new(),
        "the unit was rolled back"
    );
    insert(&ds, "0007-next unit").await.unwrap();
    vsam_client::commit(&conn).await.unwrap();
    assert_eq!(all(&ds).await, strings(&["0007-next unit"]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esds_additions_stay_as_in_cics_and_stores_that_cannot_keep_units_refuse_them() {
    let server = sql_server("").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let mut esds = vsam_tests::ksds("UW.LOG", 0, 40, "ascii");
    esds.organization = Organization::Esds;
    vsam_client::define(&conn, esds).await.unwrap();
    let ds = open(&conn, "UW.LOG", true).await;
    let added = ds
        .put(
            0,
            RplOptions::addressed(Processing::Direct),
            0,
            b"first".to_vec(),
        )
        .await
        .unwrap();
    vsam_client::rollback(&conn).await.unwrap();
    let kept = ds
        .reading(RplOptions::addressed(Processing::Direct))
        .at(added.address)
        .record()
        .await
        .unwrap();
    assert_eq!(kept.data, b"first", "an ESDS addition is not backed out");
    server.server.stop().await;

    let server = start_with_plugin(MEMORY_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("UW.MEM")).await.unwrap();
    let refused = Dataset::open_with_access(&conn, "UW.MEM", OpenIntent::Update, access::COMMIT, 1)
        .await
        .err()
        .expect("refused");
    assert_eq!(code(&refused), (r15::LOGICAL, 0xA8));
    let message = &refused.vsam().unwrap().status.message;
    assert!(message.contains("units.whole"), "{message}");
    Dataset::open(&conn, "UW.MEM", OpenIntent::Update, 1)
        .await
        .unwrap();
    server.server.stop().await;
}

/// A browse in batches that changes every tenth record as it goes, in a
/// unit (the COBOL batch's read-and-rewrite): every record is read once,
/// in order, and the changes are there after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browse_that_updates_as_it_goes_reads_every_record_once() {
    for (backend, server) in servers().await {
        let conn = Connection::connect(&server.address).await.unwrap();
        vsam_client::define(&conn, spec("UW.SCAN")).await.unwrap();
        let plain = open(&conn, "UW.SCAN", false).await;
        let records: Vec<vsam_client::ChainedRecord> = (0..2000)
            .map(|n| vsam_client::ChainedRecord {
                address: 0,
                record: format!("{n:04}-old").into_bytes(),
            })
            .collect();
        plain
            .put_chain(0, RplOptions::direct(), records)
            .await
            .unwrap();
        plain.close().await.unwrap();
        let ds = open(&conn, "UW.SCAN", true).await;
        let mut seen = Vec::new();
        loop {
            match ds.browse(64).await {
                Ok(batch) => {
                    for record in batch {
                        let key = record.key.clone();
                        let n: u32 = String::from_utf8_lossy(&key).parse().unwrap();
                        seen.push(n);
                        if n % 10 == 9 {
                            ds.reading(RplOptions::direct().update())
                                .on(1)
                                .key(&key)
                                .record()
                                .await
                                .unwrap();
                            ds.put(
                                1,
                                RplOptions::direct().update(),
                                0,
                                format!("{n:04}-new").into_bytes(),
                            )
                            .await
                            .unwrap();
                        }
                    }
                }
                Err(e) if e.is_end_of_data() => break,
                Err(e) => panic!("{backend}: {e}"),
            }
        }
        assert_eq!(seen, (0..2000).collect::<Vec<u32>>(), "{backend}");
        vsam_client::commit(&conn).await.unwrap();
        let after = all(&ds).await;
        assert_eq!(after.len(), 2000, "{backend}");
        assert!(
            after
                .iter()
                .enumerate()
                .all(|(n, r)| r.ends_with(if n % 10 == 9 { "new" } else { "old" })),
            "{backend}"
        );
        server.server.stop().await;
    }
}

/// A unit's insert is checked against the store unless its key is above
/// every stored key; that bound rises with every insert of any connection,
/// so a duplicate is always X'08' at the PUT, never a surprise at COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_insert_in_a_unit_is_refused_at_the_put() {
    for (backend, server) in servers().await {
        let a = Connection::connect(&server.address).await.unwrap();
        let b = Connection::connect(&server.address).await.unwrap();
        vsam_client::define(&a, spec("UW.DUP")).await.unwrap();
        let plain = open(&b, "UW.DUP", false).await;
        for record in ["0001-b", "0005-b"] {
            insert(&plain, record).await.unwrap();
        }
        let unit = open(&a, "UW.DUP", true).await;
        for key in ["0001", "0005"] {
            let refused = insert(&unit, &format!("{key}-a")).await.unwrap_err();
            assert_eq!(code(&refused).1, fdbk::DUPLICATE_KEY.0, "{backend} {key}");
        }
        insert(&unit, "0006-a").await.unwrap();
        // Another connection stores keys above everything stored so far.
        insert(&plain, "0009-b").await.unwrap();
        plain
            .put_chain(
                0,
                RplOptions::direct(),
                vec![vsam_client::ChainedRecord {
                    address: 0,
                    record: b"0012-b".to_vec(),
                }],
            )
            .await
            .unwrap();
        for key in ["0009", "0012"] {
            let refused = insert(&unit, &format!("{key}-a")).await.unwrap_err();
            assert_eq!(code(&refused).1, fdbk::DUPLICATE_KEY.0, "{backend} {key}");
        }
        insert(&unit, "0013-a").await.unwrap();
        vsam_client::commit(&a).await.unwrap();
        assert_eq!(
            all(&plain).await,
            strings(&["0001-b", "0005-b", "0006-a", "0009-b", "0012-b", "0013-a"]),
            "{backend}"
        );
        // An OPEN OUTPUT with reset empties it: everything is above.
        unit.close().await.unwrap();
        plain.close().await.unwrap();
        let load = Dataset::open_with_access(
            &a,
            "UW.DUP",
            OpenIntent::Output,
            access::RESET | access::COMMIT,
            1,
        )
        .await
        .unwrap();
        for record in ["0001-load", "0002-load"] {
            load.put(0, RplOptions::sequential(), 0, record.as_bytes().to_vec())
                .await
                .unwrap();
        }
        let again = load
            .put(0, RplOptions::direct(), 0, b"0001-again".to_vec())
            .await
            .unwrap_err();
        assert_eq!(code(&again).1, fdbk::DUPLICATE_KEY.0, "{backend}");
        load.close().await.unwrap();
        let reader = open(&b, "UW.DUP", false).await;
        assert_eq!(
            all(&reader).await,
            strings(&["0001-load", "0002-load"]),
            "{backend}"
        );
        server.server.stop().await;
    }
}

/// Two units each holding a record the other asks for, and retrying as a
/// program does on status 51: the refusal that closes the cycle rolls that
/// unit back (R15=12, "deadlock"), which frees its record for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_between_two_units_rolls_one_back() {
    let server = sql_server("").await;
    let a = Connection::connect(&server.address).await.unwrap();
    let b = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&a, spec("UW.DEAD")).await.unwrap();
    let plain = open(&a, "UW.DEAD", false).await;
    for record in ["0001-one", "0002-two"] {
        insert(&plain, record).await.unwrap();
    }
    plain.close().await.unwrap();
    let first = open(&a, "UW.DEAD", true).await;
    let second = open(&b, "UW.DEAD", true).await;
    update(&first, "0001-by a").await.unwrap();
    update(&second, "0002-by b").await.unwrap();
    let waiting = update(&first, "0002-by a").await.unwrap_err();
    assert_eq!(code(&waiting), (r15::LOGICAL, fdbk::EXCLUSIVE_CONTROL.0));
    let victim = update(&second, "0001-by b").await.unwrap_err();
    let status = &victim.vsam().unwrap().status;
    assert_eq!(status.r15, r15::PHYSICAL, "{status:?}");
    assert!(
        status.message.contains("deadlock") && status.message.contains("1 changes"),
        "{}",
        status.message
    );
    update(&first, "0002-by a").await.unwrap();
    vsam_client::commit(&a).await.unwrap();
    let reader = open(&b, "UW.DEAD", false).await;
    assert_eq!(all(&reader).await, strings(&["0001-by a", "0002-by a"]));
    // The victim's connection goes on with a new unit.
    update(&second, "0001-by b").await.unwrap();
    vsam_client::commit(&b).await.unwrap();
    assert_eq!(all(&reader).await, strings(&["0001-by b", "0002-by a"]));
    server.server.stop().await;
}

/// A `[[units]]` rule makes a dataset recoverable (its opens for output or
/// update are in commit durability, also for clients that do not ask, such
/// as those of protocol 1.3) and commits units at checkpoints: every N
/// changes, or at the first request T ms after the first change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_units_rule_makes_datasets_recoverable_with_checkpoints() {
    let server = sql_server(
        "[[units]]\ndatasets = \"REC.COUNT.**\"\nrecoverable = true\ncheckpoint_records = 3\n\
         [[units]]\ndatasets = \"REC.**\"\nrecoverable = true\ncheckpoint_ms = 300\n",
    )
    .await;
    let a = Connection::connect(&server.address).await.unwrap();
    let b = Connection::connect(&server.address).await.unwrap();
    for name in ["REC.COUNT.A", "REC.TIME.A"] {
        vsam_client::define(&a, spec(name)).await.unwrap();
    }
    // No COMMIT bit: the rule puts the changes in a unit all the same.
    let counted = open(&a, "REC.COUNT.A", false).await;
    let reader = open(&b, "REC.COUNT.A", false).await;
    insert(&counted, "0001-a").await.unwrap();
    insert(&counted, "0002-a").await.unwrap();
    assert_eq!(
        all(&reader).await,
        Vec::<String>::new(),
        "not committed yet"
    );
    vsam_client::rollback(&a).await.unwrap();
    for record in ["0001-b", "0002-b", "0003-b"] {
        insert(&counted, record).await.unwrap();
    }
    assert_eq!(
        all(&reader).await,
        strings(&["0001-b", "0002-b", "0003-b"]),
        "the third change was a checkpoint"
    );
    insert(&counted, "0004-b").await.unwrap();
    assert_eq!(all(&reader).await.len(), 3);
    counted.close().await.unwrap();
    assert_eq!(all(&reader).await.len(), 4, "CLOSE commits");

    let timed = open(&a, "REC.TIME.A", false).await;
    let reader = open(&b, "REC.TIME.A", false).await;
    insert(&timed, "0001-t").await.unwrap();
    assert_eq!(all(&reader).await.len(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    insert(&timed, "0002-t").await.unwrap();
    assert_eq!(
        all(&reader).await,
        strings(&["0001-t", "0002-t"]),
        "the first request after 300 ms was a checkpoint"
    );
    // Opens for input are not in a unit; nothing to commit.
    let input = Dataset::open(&a, "REC.TIME.A", OpenIntent::Input, 1)
        .await
        .unwrap();
    assert_eq!(input.read(b"0002").await.unwrap().data, b"0002-t");
    server.server.stop().await;
}

/// One connection with the same dataset open twice, in commit and in sync
/// durability: the sync open may not change a record the connection's own
/// unit holds (the unit's commit would overwrite it), and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_open_cannot_change_what_its_own_unit_holds() {
    let server = sql_server("").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("UW.TWICE")).await.unwrap();
    let unit = open(&conn, "UW.TWICE", true).await;
    let plain = open(&conn, "UW.TWICE", false).await;
    insert(&plain, "0001-stored").await.unwrap();
    update(&unit, "0001-in unit").await.unwrap();
    insert(&unit, "0002-in unit").await.unwrap();
    for refused in [
        update(&plain, "0001-plain").await.unwrap_err(),
        insert(&plain, "0002-plain").await.unwrap_err(),
        erase(&plain, "0001").await.unwrap_err(),
    ] {
        assert_eq!(code(&refused), (r15::LOGICAL, fdbk::EXCLUSIVE_CONTROL.0));
        let message = &refused.vsam().unwrap().status.message;
        assert!(message.contains("own unit of work"), "{message}");
    }
    vsam_client::commit(&conn).await.unwrap();
    update(&plain, "0001-plain").await.unwrap();
    assert_eq!(all(&plain).await, strings(&["0001-plain", "0002-in unit"]));
    server.server.stop().await;
}

/// `server.units_memory_mb` bounds what the units of all connections hold
/// together: a change that would pass it is refused with X'1C' and its
/// unit rolled back, naming the setting; once another unit commits, the
/// memory is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_units_of_all_connections_share_one_memory_limit() {
    let (server, _data) = sql_server_limited("units_memory_mb = 1").await;
    let address = server.addr.to_string();
    let (first, second) = (
        Connection::connect(&address).await.unwrap(),
        Connection::connect(&address).await.unwrap(),
    );
    vsam_client::define(&first, vsam_tests::ksds("UW.WIDE", 4, 100_000, "ascii"))
        .await
        .unwrap();
    let record = |n: u32| {
        let mut record = format!("{n:04}").into_bytes();
        record.resize(100_000, b'x');
        record
    };
    let put = |ds: Dataset, n: u32| async move {
        ds.put(0, RplOptions::direct(), 0, record(n))
            .await
            .map(drop)
    };
    let mine = open(&first, "UW.WIDE", true).await;
    let theirs = open(&second, "UW.WIDE", true).await;
    for n in 1..=6 {
        put(mine.clone(), n).await.unwrap();
    }
    for n in 101..=104 {
        put(theirs.clone(), n).await.unwrap();
    }
    let refused = put(theirs.clone(), 105).await.unwrap_err();
    assert_eq!(code(&refused), (r15::LOGICAL, fdbk::NO_SPACE.0));
    let message = &refused.vsam().unwrap().status.message;
    assert!(
        message.contains("units_memory_mb") && message.contains("rolled back"),
        "{message}"
    );
    vsam_client::commit(&second).await.unwrap();
    assert!(
        matches!(theirs.read(b"0101").await, Err(e) if e.vsam().is_some_and(|v| v.status.fdbk == fdbk::NOT_FOUND.0)),
        "the refused unit was rolled back whole"
    );
    vsam_client::commit(&first).await.unwrap();
    for n in 201..=210 {
        put(theirs.clone(), n).await.unwrap();
    }
    vsam_client::commit(&second).await.unwrap();
    assert_eq!(mine.read(b"0210").await.unwrap().data, record(210));
    assert_eq!(mine.read(b"0006").await.unwrap().data, record(6));
    server.stop().await;
}

/// A client pinned to protocol 1.3 (as against a server below 1.4) sends
/// a PUT CHAIN with UPD as GET UPD and PUT UPD record by record, with the
/// same outcome: in order, stopping at the first that fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_chain_to_a_1_3_server_goes_record_by_record() {
    let server = sql_server("").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("UW.OLD")).await.unwrap();
    let ds = open(&conn, "UW.OLD", false).await;
    for record in ["0001-old", "0002-old", "0003-old"] {
        insert(&ds, record).await.unwrap();
    }
    let options = vsam_client::ConnectOptions {
        minor: Some(3),
        ..Default::default()
    };
    let older = Connection::connect_with(&server.address, &options)
        .await
        .unwrap();
    assert_eq!(older.welcome().minor, 3);
    let old_ds = open(&older, "UW.OLD", false).await;
    let chain = ["0001-new", "0009-new", "0002-new"]
        .iter()
        .map(|record| vsam_client::ChainedRecord {
            address: 0,
            record: record.as_bytes().to_vec(),
        })
        .collect();
    let outcome = old_ds
        .put_chain(1, RplOptions::direct().update(), chain)
        .await
        .unwrap();
    assert_eq!(outcome.written.len(), 1);
    assert_eq!(
        outcome.failure.map(|f| f.status.fdbk),
        Some(fdbk::NOT_FOUND.0)
    );
    assert_eq!(
        all(&ds).await,
        strings(&["0001-new", "0002-old", "0003-old"])
    );
    server.server.stop().await;
}

/// Key, name (a NONUNIQUEKEY alternate key), id (a UNIQUEKEY one).
fn customer(key: &str, name: &str, id: &str) -> String {
    format!("{key}{name:<5}{id:<4}-DATA")
}

/// The base keys of every record through a path, in alternate-key order.
async fn through(path: &Dataset) -> Vec<String> {
    let low = vec![0u8; path.spec().key_length as usize];
    match path
        .point(0, RplOptions::direct().greater_or_equal(), &low, 0, 0)
        .await
    {
        Err(e) if e.is_end_of_data() || e.vsam().is_some_and(|v| v.fdbk() == fdbk::NOT_FOUND) => {
            return Vec::new();
        }
        other => other.unwrap(),
    }
    let mut keys = Vec::new();
    loop {
        match path.reading(RplOptions::sequential()).record().await {
            Ok(record) => keys.push(String::from_utf8_lossy(&record.data[..4]).to_string()),
            Err(e) if e.is_end_of_data() => return keys,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A base over alternate indexes by name and by id (both upgraded), with
/// a path over each.
async fn define_customers(conn: &Connection) {
    vsam_client::define(conn, spec("AIXU.BASE")).await.unwrap();
    for (aix, path, offset, length, unique) in [
        ("AIXU.NAME", "AIXU.NAMES", 4, 5, false),
        ("AIXU.ID", "AIXU.IDS", 9, 4, true),
    ] {
        let aix_spec = vsam_client::AixSpec {
            name: aix.into(),
            base: "AIXU.BASE".into(),
            key_offset: offset,
            key_length: length,
            unique,
            upgrade: true,
        };
        vsam_client::define_aix(conn, aix_spec).await.unwrap();
        let path_spec = vsam_client::PathSpec {
            name: path.into(),
            aix: aix.into(),
        };
        vsam_client::define_path(conn, path_spec).await.unwrap();
    }
}

/// The changes of one unit: a duplicate name (reported R15=0 X'08'), a
/// record giving up its id to a record inserted after it, ids held by a
/// committed record and by the unit's own refused at the PUT, an erase.
async fn change_customers(ds: &Dataset) {
    let (_, status) = ds
        .put_with_status(
            0,
            RplOptions::direct(),
            0,
            customer("K004", "SMITH", "A4").into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!((status.r15, status.fdbk), (0, fdbk::DUPLICATE_KEY.0));
    update(ds, &customer("K001", "BROWN", "A9")).await.unwrap();
    insert(ds, &customer("K005", "ADAMS", "A1")).await.unwrap();
    for (taken, by) in [("A3", "a committed record"), ("A9", "the unit's K001")] {
        let refused = insert(ds, &customer("K006", "OTHER", taken))
            .await
            .expect_err(by);
        assert_eq!(
            code(&refused),
            (r15::LOGICAL, fdbk::DUPLICATE_KEY.0),
            "{by}"
        );
        let message = &refused.vsam().unwrap().status.message;
        assert!(message.contains("AIXU.ID"), "{message}");
    }
    erase(ds, "K002").await.unwrap();
}

/// A unit's changes to a base reach its alternate indexes at the commit
/// and not before (other connections read the committed indexes through
/// the paths), ROLLBACK leaves the indexes as they were, the unique keys
/// are checked at the PUT against what the unit sees and again at the
/// commit, and a path cannot join a unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternate_indexes_change_with_their_base_at_the_commit() {
    for (label, server) in servers().await {
        let conn = Connection::connect(&server.address).await.unwrap();
        let other = Connection::connect(&server.address).await.unwrap();
        define_customers(&conn).await;
        let ds = open(&conn, "AIXU.BASE", true).await;
        for (key, name, id) in [("K001", "SMITH", "A1"), ("K002", "JONES", "A2")] {
            insert(&ds, &customer(key, name, id)).await.unwrap();
        }
        insert(&ds, &customer("K003", "SMITH", "A3")).await.unwrap();
        vsam_client::commit(&conn).await.unwrap();
        let names = Dataset::open(&other, "AIXU.NAMES", OpenIntent::Input, 2)
            .await
            .unwrap();
        let ids = Dataset::open(&other, "AIXU.IDS", OpenIntent::Input, 2)
            .await
            .unwrap();
        let committed_names = strings(&["K002", "K001", "K003"]);
        let committed_ids = strings(&["K001", "K002", "K003"]);
        assert_eq!(through(&names).await, committed_names, "{label}");

        change_customers(&ds).await;
        assert_eq!(
            through(&names).await,
            committed_names,
            "{label}: before the commit"
        );
        assert_eq!(
            through(&ids).await,
            committed_ids,
            "{label}: before the commit"
        );
        vsam_client::rollback(&conn).await.unwrap();
        assert_eq!(
            through(&names).await,
            committed_names,
            "{label}: rolled back"
        );
        assert_eq!(through(&ids).await, committed_ids, "{label}: rolled back");

        change_customers(&ds).await;
        vsam_client::commit(&conn).await.unwrap();
        assert_eq!(
            through(&names).await,
            strings(&["K005", "K001", "K003", "K004"]),
            "{label}: ADAMS, BROWN, then the SMITHs in the order stored"
        );
        assert_eq!(
            through(&ids).await,
            strings(&["K005", "K003", "K004", "K001"]),
            "{label}: A1 went from K001 to K005, K001 has A9"
        );

        // A unique key another connection stores between the PUT and the
        // COMMIT refuses the COMMIT, and the unit is rolled back.
        insert(&ds, &customer("K007", "CLARK", "B1")).await.unwrap();
        let sync = open(&other, "AIXU.BASE", false).await;
        insert(&sync, &customer("K008", "DAVIS", "B1"))
            .await
            .unwrap();
        let refused = vsam_client::commit(&conn).await.expect_err("B1 is taken");
        assert_eq!(
            code(&refused),
            (r15::LOGICAL, fdbk::DUPLICATE_KEY.0),
            "{label}"
        );
        let message = &refused.vsam().unwrap().status.message;
        assert!(
            message.contains("AIXU.ID") && message.contains("rolled back"),
            "{message}"
        );
        assert!(
            !all(&ds)
                .await
                .iter()
                .any(|record| record.starts_with("K007")),
            "{label}: the refused unit is not stored"
        );
        assert_eq!(
            through(&ids).await,
            strings(&["K005", "K003", "K004", "K001", "K008"]),
            "{label}"
        );

        let refused =
            Dataset::open_with_access(&other, "AIXU.NAMES", OpenIntent::Input, access::COMMIT, 1)
                .await
                .err()
                .expect("a path is not opened in commit durability");
        assert_eq!(code(&refused), (r15::LOGICAL, 0xA0), "{label}");
        server.server.stop().await;
    }
}
