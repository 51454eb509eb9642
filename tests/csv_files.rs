//! The CSV backend's files are for people too: a CSV written by hand (text
//! in the dataset's code page, `\xHH` for other bytes) is adopted by DEFINE
//! and read back byte for byte; a broken one is reported with its line
//! when DEFINE would adopt it.

use vsam_client::{ChainedRecord, Connection, Dataset, DatasetSpec, OpenIntent, RplOptions};
use vsam_tests::{CSV_WASM, start_with_plugin};

fn spec(name: &str) -> DatasetSpec {
    vsam_tests::ksds(name, 4, 40, "cp037")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_csv_is_adopted_byte_for_byte() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let dir = server.data_dir.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("HAND.MADE.csv"),
        "key,record\nA001,\"A001 Smith, John\\x00\\x12\\x3C\"\nB002,B002 Müller \\\\ ok\n",
    )
    .unwrap();
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, spec("HAND.MADE")).await.unwrap();
    let ds = Dataset::open(&conn, "HAND.MADE", OpenIntent::Update, 1)
        .await
        .unwrap();
    let key = [0xC1, 0xF0, 0xF0, 0xF1]; // "A001" in cp037
    let record = ds
        .reading(RplOptions::direct())
        .key(&key)
        .records()
        .await
        .unwrap();
    let mut expected = vec![
        0xC1, 0xF0, 0xF0, 0xF1, 0x40, 0xE2, 0x94, 0x89, 0xA3, 0x88, 0x6B, 0x40, 0xD1, 0x96, 0x88,
        0x95,
    ];
    expected.extend([0x00, 0x12, 0x3C]);
    assert_eq!(
        record[0].data, expected,
        "text in cp037, commas quoted, escapes as bytes"
    );
    let second = ds.read(&[0xC2, 0xF0, 0xF0, 0xF2]).await.unwrap();
    assert_eq!(
        &second.data[5..12],
        &[0xD4, 0xDC, 0x93, 0x93, 0x85, 0x99, 0x40],
        "ü is X'DC' in cp037"
    );
    assert_eq!(
        second.data[12], 0xE0,
        "\\\\ is the backslash, X'E0' in cp037"
    );

    // Written back through vsamrd, the file stays readable text.
    ds.put(
        0,
        RplOptions::direct(),
        0,
        [0xC3, 0xF0, 0xF0, 0xF3, 0x40, 0xC1, 0x0D].to_vec(),
    )
    .await
    .unwrap();
    ds.close().await.unwrap();
    let text = std::fs::read_to_string(dir.join("HAND.MADE.csv")).unwrap();
    assert_eq!(text.lines().last().unwrap(), "C003,C003 A\\x0D");
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_csv_is_reported_with_its_line() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let dir = server.data_dir.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("BAD.KEY.csv"),
        "key,record\nA001,A001 fine\nA002,A009 key edited\n",
    )
    .unwrap();
    let conn = Connection::connect(&server.address).await.unwrap();
    // DEFINE reads the records it would adopt: the broken row refuses it,
    // named by its line.
    let error = vsam_client::define(&conn, spec("BAD.KEY"))
        .await
        .unwrap_err();
    let vsam = error.vsam().unwrap();
    assert_eq!(
        (vsam.r15(), vsam.fdbk()),
        (8, vsam_protocol::fdbk::INVALID_OPTIONS.0)
    );
    assert!(
        vsam.status.message.contains(
            "BAD.KEY DEFINE: backend b already holds records of BAD.KEY, and they cannot be read under this definition (I/O error: BAD.KEY.csv line 3, column key: the key column does not match bytes 1..4"
        ) && vsam.status.message.contains("fix the stored records"),
        "{}",
        vsam.status.message
    );
    assert!(vsam_client::info(&conn, "BAD.KEY").await.is_err());
    // Fixed, it is adopted.
    std::fs::write(
        dir.join("BAD.KEY.csv"),
        "key,record\nA001,A001 fine\nA002,A002 key edited\n",
    )
    .unwrap();
    vsam_client::define(&conn, spec("BAD.KEY")).await.unwrap();
    let ds = Dataset::open(&conn, "BAD.KEY", OpenIntent::Input, 1)
        .await
        .unwrap();
    let all = ds.browse(10).await.unwrap();
    assert_eq!(all.len(), 2);
    server.server.stop().await;
}

/// A journal removed, or replaced, while its dataset is open is noticed at
/// the next group sync, before the writes are acknowledged: the CSV is
/// rewritten from the records in memory and a new journal started, so
/// every acknowledged write is in the files, where a restart reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_removed_or_replaced_while_open_loses_no_write() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("TAMP.JOUR", 4, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "TAMP.JOUR", OpenIntent::Update, 1)
        .await
        .unwrap();
    let dir = server.data_dir.path().join("b");
    let journal = dir.join("TAMP.JOUR.journal");
    let csv = dir.join("TAMP.JOUR.csv");
    let mut next = 0u32;
    let mut put = async |count: u32| {
        for _ in 0..count {
            ds.put(
                0,
                RplOptions::direct(),
                0,
                format!("K{next:03}-record").into_bytes(),
            )
            .await
            .unwrap();
            next += 1;
        }
    };
    put(5).await;
    assert!(std::fs::metadata(&journal).unwrap().len() > 0);
    std::fs::remove_file(&journal).unwrap();
    // What a restart reads: the CSV, then the journal.
    let files =
        || std::fs::read_to_string(&csv).unwrap() + &std::fs::read_to_string(&journal).unwrap();
    put(3).await;
    let text = files();
    for n in 0..8 {
        assert!(text.contains(&format!("K{n:03}-record")), "K{n:03}: {text}");
    }
    assert!(journal.exists(), "a new journal is started");
    // Replaced by another file renamed over it.
    let other = dir.join("other.journal");
    std::fs::write(&other, "I,Z999,Z999-not-ours\n").unwrap();
    std::fs::rename(&other, &journal).unwrap();
    put(2).await;
    let text = files();
    for n in 0..10 {
        assert!(text.contains(&format!("K{n:03}-record")), "K{n:03}: {text}");
    }
    assert!(!text.contains("Z999"), "{text}");
    // The writes since go on into the new journal, and all are read back.
    put(1).await;
    assert!(
        std::fs::read_to_string(&journal)
            .unwrap()
            .contains("K010-record")
    );
    ds.close().await.unwrap();
    let reader = Dataset::open(&conn, "TAMP.JOUR", OpenIntent::Input, 1)
        .await
        .unwrap();
    let all = reader.browse(100).await.unwrap();
    assert_eq!(all.len(), 11);
}

/// A server on `data_dir` (kept between starts) with the CSV plugin as
/// backend `b`.
async fn csv_server_on(data_dir: &std::path::Path) -> vsam_host::RunningServer {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[plugins.p]\npath = \"{CSV_WASM}\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"b\"\n[routing]\ndefault = \"b\"\n",
        data_dir.display()
    );
    let config =
        vsam_host::config::Config::parse(&text, "<test>", std::path::Path::new(".")).unwrap();
    // The server stopped before lets go of the directory's lock once its
    // last task has ended, a moment after stop().
    for _ in 0..100 {
        match vsam_host::RunningServer::start_with(&config, Default::default()).await {
            Ok(server) => return server,
            Err(error) if format!("{error:#}").contains("in use by another vsamrd") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(error) => panic!("{error:#}"),
        }
    }
    panic!("the directory stayed locked after the server before stopped");
}

async fn records_of(address: &str, name: &str) -> Vec<String> {
    let conn = Connection::connect(address).await.unwrap();
    let ds = Dataset::open(&conn, name, OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut out = Vec::new();
    loop {
        match ds.browse(100).await {
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

/// The journal closes the rows of each sync (a group, a unit of work) with
/// a commit row, and a restart replays only closed rows: the rows of a unit
/// that never reached its sync are left out and cut off. A journal of an
/// older version (no version row) replays every complete row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_replays_whole_units_only() {
    let data = tempfile::tempdir().unwrap();
    let server = csv_server_on(data.path()).await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("UNIT.JOUR", 4, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "UNIT.JOUR", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"A001-one".to_vec())
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"A002-two".to_vec())
        .await
        .unwrap();
    let journal = data.path().join("b").join("UNIT.JOUR.journal");
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap(),
        "V,2,\nI,A001,A001-one\nC,,\nI,A002,A002-two\nC,,\n",
        "a version row, then each sync's rows closed by a commit row"
    );
    ds.close().await.unwrap();
    server.stop().await;

    // A unit closed, and one whose sync never came.
    std::fs::write(
        &journal,
        "V,2,\nI,A003,A003-whole\nR,A001,A001-ONE\nC,,\nI,A004,A004-never committed\nD,A002,\n",
    )
    .unwrap();
    let server = csv_server_on(data.path()).await;
    let address = server.addr.to_string();
    assert_eq!(
        records_of(&address, "UNIT.JOUR").await,
        ["A001-ONE", "A002-two", "A003-whole"]
    );
    let conn = Connection::connect(&address).await.unwrap();
    let ds = Dataset::open(&conn, "UNIT.JOUR", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"A005-five".to_vec())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        !text.contains("A004") && text.ends_with("I,A005,A005-five\nC,,\n"),
        "the rows never committed were cut off before the next write: {text:?}"
    );
    ds.close().await.unwrap();
    server.stop().await;

    // An older version's journal: every complete row counts.
    std::fs::write(&journal, "I,A006,A006-older\nD,A003,\n").unwrap();
    let server = csv_server_on(data.path()).await;
    assert_eq!(
        records_of(&server.addr.to_string(), "UNIT.JOUR").await,
        ["A001-ONE", "A002-two", "A005-five", "A006-older"]
    );
    server.stop().await;
}

/// A unit over two datasets writes a commit row in each journal, after an
/// undo record (`unit.undo`) naming both. A crash between the two commit
/// rows leaves the unit out of both datasets after the restart (cut off at
/// the next write, the record cleared); with both commit rows there, it
/// is in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_over_two_datasets_is_whole_after_a_crash_between_their_commit_rows() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("b");
    let server = csv_server_on(data.path()).await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    let mut opens = Vec::new();
    for name in ["UNIT.ONE", "UNIT.TWO"] {
        vsam_client::define(&conn, vsam_tests::ksds(name, 4, 40, "ascii"))
            .await
            .unwrap();
        let ds = Dataset::open_with_access(
            &conn,
            name,
            OpenIntent::Update,
            vsam_protocol::access::COMMIT,
            1,
        )
        .await
        .unwrap();
        ds.put(0, RplOptions::direct(), 0, b"A001-first".to_vec())
            .await
            .unwrap();
        opens.push(ds);
    }
    vsam_client::commit(&conn).await.unwrap();
    let record = std::fs::read_to_string(dir.join("unit.undo")).unwrap();
    let row = "V,2,\nI,A001,A001-first\nC,,\n";
    for name in ["UNIT.ONE", "UNIT.TWO"] {
        let journal = std::fs::read_to_string(dir.join(format!("{name}.journal"))).unwrap();
        assert_eq!(journal, row, "{name}");
        let line = format!("\n0 {} {name}.journal\n", row.len());
        assert!(
            record.starts_with("VSAMUNDO1\n")
                && record.contains(&line)
                && record.ends_with("END\n"),
            "the record names both journals, before and after the unit: {record:?}"
        );
    }
    for ds in opens {
        ds.close().await.unwrap();
    }
    server.stop().await;

    // A crash after the first commit row, before the second.
    let crashed = |second_committed: bool| {
        let one = "V,2,\nI,A002,A002-second\nC,,\n";
        let two = if second_committed {
            one.to_string()
        } else {
            "V,2,\nI,A002,A002-second\n".to_string()
        };
        std::fs::write(dir.join("UNIT.ONE.journal"), one).unwrap();
        std::fs::write(dir.join("UNIT.TWO.journal"), &two).unwrap();
        let record = format!(
            "VSAMUNDO1\n0 {} UNIT.ONE.journal\n0 {} UNIT.TWO.journal\nEND\n",
            one.len(),
            one.len()
        );
        std::fs::write(dir.join("unit.undo"), record).unwrap();
    };
    crashed(false);
    let server = csv_server_on(data.path()).await;
    let address = server.addr.to_string();
    for name in ["UNIT.ONE", "UNIT.TWO"] {
        assert_eq!(
            records_of(&address, name).await,
            ["A001-first"],
            "{name}: the unit is in neither dataset"
        );
    }
    let conn = Connection::connect(&address).await.unwrap();
    let ds = Dataset::open(&conn, "UNIT.ONE", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"A003-third".to_vec())
        .await
        .unwrap();
    let one = std::fs::read_to_string(dir.join("UNIT.ONE.journal")).unwrap();
    let two = std::fs::read_to_string(dir.join("UNIT.TWO.journal")).unwrap();
    assert!(
        !one.contains("A002") && !two.contains("A002"),
        "the next write cut the unit out of both journals: {one:?} {two:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("unit.undo")).unwrap(),
        "",
        "and cleared the record"
    );
    ds.close().await.unwrap();
    server.stop().await;

    // Both commit rows written: the unit is whole, in both.
    crashed(true);
    let server = csv_server_on(data.path()).await;
    let address = server.addr.to_string();
    assert_eq!(
        records_of(&address, "UNIT.ONE").await,
        ["A001-first", "A002-second", "A003-third"]
    );
    assert_eq!(
        records_of(&address, "UNIT.TWO").await,
        ["A001-first", "A002-second"]
    );
    server.stop().await;
}

/// A CSV edited by hand while its dataset is closed everywhere is read
/// again at the next open, and a write after it keeps the edit: the plugin
/// let go of the records at the last close. (It kept them, and its next
/// rewrite of the CSV from memory dropped the row added by hand.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_edited_by_hand_while_closed_is_read_at_the_next_open() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let csv = server.data_dir.path().join("b/HAND.EDIT.csv");
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("HAND.EDIT", 4, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "HAND.EDIT", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"K001 by vsamrd".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();
    let mut text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text, "key,record\nK001,K001 by vsamrd\n");
    text.push_str("K002,K002 by hand\n");
    std::fs::write(&csv, &text).unwrap();
    let ds = Dataset::open(&conn, "HAND.EDIT", OpenIntent::Update, 1)
        .await
        .unwrap();
    assert_eq!(ds.read(b"K002").await.unwrap().data, b"K002 by hand");
    ds.put(0, RplOptions::direct(), 0, b"K003 by vsamrd".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "key,record\nK001,K001 by vsamrd\nK002,K002 by hand\nK003,K003 by vsamrd\n"
    );
    server.server.stop().await;
}

/// Datasets read one after another, each within the instance's memory
/// alone, are all served: a closed dataset's records leave the instance.
/// (They stayed, and the third dataset's load failed at the memory limit.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_used_one_after_another_need_memory_for_one_at_a_time() {
    let server = start_with_plugin(CSV_WASM, "memory_limit_mb = 32").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let record = |n: u32| {
        let mut record = format!("{n:06}").into_bytes();
        record.resize(4000, b'r');
        record
    };
    for name in ["SEQ.ONE", "SEQ.TWO", "SEQ.THREE", "SEQ.FOUR"] {
        vsam_client::define(&conn, vsam_tests::ksds(name, 6, 4000, "ascii"))
            .await
            .unwrap();
        let ds = Dataset::open(&conn, name, OpenIntent::Output, 1)
            .await
            .unwrap();
        // 8 MB of records.
        for chain in 0..10u32 {
            let records = (chain * 200..(chain + 1) * 200)
                .map(|n| ChainedRecord {
                    address: 0,
                    record: record(n),
                })
                .collect();
            let outcome = ds
                .put_chain(0, RplOptions::sequential(), records)
                .await
                .unwrap();
            assert!(outcome.failure.is_none(), "{name}: {:?}", outcome.failure);
        }
        ds.close().await.unwrap();
    }
    for name in ["SEQ.ONE", "SEQ.TWO", "SEQ.THREE", "SEQ.FOUR"] {
        let ds = Dataset::open(&conn, name, OpenIntent::Input, 1)
            .await
            .unwrap();
        assert_eq!(
            ds.read(b"001999").await.unwrap().data,
            record(1999),
            "{name}"
        );
        ds.close().await.unwrap();
    }
    server.server.stop().await;
}

/// A batch that uses many small datasets one after another holds one at a
/// time in the instance, and keeps no file of the others open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_datasets_used_one_after_another_keep_the_instance_memory_bounded() {
    let server = start_with_plugin(CSV_WASM, "memory_limit_mb = 3").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    // The server runs in this process: its files are this process's.
    let files = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = files();
    vsam_tests::use_datasets_one_after_another(&conn, 3000).await;
    let after = files();
    assert!(
        after < before + 100,
        "{before} files open before 3,000 datasets, {after} after"
    );
    server.server.stop().await;
}

/// The data rows of `NAME.csv` in `dir`, as the file reads now.
fn csv_rows(dir: &std::path::Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{name}.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// An alternate index is closed with its base: its CSV file holds the
/// entries the base's writes made once the base is last closed, and those
/// BLDINDEX made once it ends (they stayed in the journal, and in the
/// instance's memory, for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alternate_indexs_file_is_written_when_its_base_is_closed() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let dir = server.data_dir.path().join("b");
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("CUST.BASE", 4, 20, "ascii"))
        .await
        .unwrap();
    let aix = |name: &str, upgrade: bool| vsam_client::AixSpec {
        name: name.into(),
        base: "CUST.BASE".into(),
        key_offset: 4,
        key_length: 4,
        unique: true,
        upgrade,
    };
    vsam_client::define_aix(&conn, aix("CUST.BYCITY", true))
        .await
        .unwrap();
    vsam_client::define_aix(&conn, aix("CUST.BUILT", false))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "CUST.BASE", OpenIntent::Update, 1)
        .await
        .unwrap();
    for n in 0..3 {
        let record = format!("K00{n}C00{n}").into_bytes();
        ds.put(0, RplOptions::direct(), 0, record).await.unwrap();
    }
    ds.close().await.unwrap();
    let entries = ["C000,C000K000", "C001,C001K001", "C002,C002K002"];
    assert_eq!(csv_rows(&dir, "CUST.BYCITY"), entries);
    assert!(csv_rows(&dir, "CUST.BUILT").is_empty());
    vsam_client::bldindex(&conn, "CUST.BUILT").await.unwrap();
    assert_eq!(csv_rows(&dir, "CUST.BUILT"), entries);
}

/// ALTER NEWNAME copies a dataset's records under its new name without an
/// open: the new name's CSV file holds them once the rename is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_datasets_file_holds_its_records() {
    let server = start_with_plugin(CSV_WASM, "").await;
    let dir = server.data_dir.path().join("b");
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("OLD.NAME", 4, 20, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "OLD.NAME", OpenIntent::Output, 1)
        .await
        .unwrap();
    for n in 0..3 {
        let record = format!("K00{n}DATA").into_bytes();
        ds.put(0, RplOptions::direct(), 0, record).await.unwrap();
    }
    ds.close().await.unwrap();
    vsam_client::rename(&conn, "OLD.NAME", "NEW.NAME")
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&dir, "NEW.NAME"),
        ["K000,K000DATA", "K001,K001DATA", "K002,K002DATA"]
    );
    assert!(!dir.join("OLD.NAME.csv").exists());
}
