//! The SQL plugin on a real PostgreSQL server, started by
//! `scripts/postgres` for the test: the conformance suite in raw and mapped
//! mode (with and without reader instances), a database that goes away and
//! comes back mid-run, and a server that only speaks TLS.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
use vsam_conformance::Postgres;
use vsam_tests::migration::{migrate_until_cut_over, migration_rows, refused_migration};
use vsam_tests::{SQL_WASM, assert_conforms, ksds, start_with_plugin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_postgres_raw_and_mapped() {
    let postgres = Postgres::start().unwrap();
    // Each mode once with the writer alone and once with four readers
    // serving GETs and browses on their own connections.
    for (mapped, database, readers) in [
        (false, "raw", 0),
        (true, "mapped", 0),
        (false, "raw_readers", 4),
        (true, "mapped_readers", 4),
    ] {
        let url = postgres.database(database).unwrap();
        let server = vsam_conformance::start_server_for_plugin(
            Path::new(SQL_WASM),
            &BTreeMap::new(),
            &vsam_conformance::Grants {
                database: Some(url.clone()),
                readers,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_conforms(&server.address, "CONF", mapped, "sql on PostgreSQL").await;
        server.server.stop().await;
    }
    // The units.whole promise on PostgreSQL, below vsamrd, a mirror's
    // upserts, and the durability checks (a new instance, a restart).
    let subject = vsam_conformance::Subject::new(
        Path::new(SQL_WASM),
        vsam_conformance::Grants {
            database: Some(postgres.database("whole").unwrap()),
            ..Default::default()
        },
    );
    let whole = vsam_conformance::check_whole_units(&subject)
        .await
        .unwrap_or_else(|failure| panic!("sql on PostgreSQL: {failure}"));
    assert_eq!(whole, vsam_conformance::WholeUnits::Kept);
    vsam_conformance::check_mirror_apply(&subject)
        .await
        .unwrap_or_else(|failure| panic!("sql on PostgreSQL, mirror.apply: {failure}"));
    vsam_tests::assert_durable(&subject, "sql on PostgreSQL").await;
    // The mapped run really used typed columns (the browse scenario has 30
    // text records).
    let typed = postgres
        .psql(
            "mapped",
            "select count(*) from conf_s04_br where vsam_raw is null and conf_key is not null",
        )
        .unwrap();
    assert_ne!(typed, "0", "mapped records have typed columns");
}

fn record(n: u32) -> Vec<u8> {
    format!("{n:08}-record number {n:>6}-------").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_requests_cleanly_and_service_resumes() {
    let postgres = Postgres::start().unwrap();
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds("OUT.KSDS", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "OUT.KSDS", OpenIntent::Update, 2)
        .await
        .unwrap();
    for n in 0..10 {
        ds.put(0, RplOptions::direct(), 0, record(n)).await.unwrap();
    }

    postgres.stop().unwrap();
    let failed_get = ds
        .reading(RplOptions::direct())
        .key(b"00000003")
        .records()
        .await
        .unwrap_err();
    let vsam = failed_get
        .vsam()
        .expect("a VSAM error, not a lost connection");
    assert_eq!(vsam.r15(), 12, "{failed_get}");
    let message = failed_get.to_string();
    assert!(
        message.contains("OUT.KSDS") && message.contains("unavailable"),
        "{message}"
    );
    let failed_put = ds
        .put(0, RplOptions::direct(), 0, record(77))
        .await
        .unwrap_err();
    assert_eq!(failed_put.vsam().unwrap().r15(), 12, "{failed_put}");
    // By now the broken connection is gone and a new one is refused: the
    // message is PostgreSQL's (or the socket's) own cause.
    let refused = ds
        .reading(RplOptions::direct())
        .key(b"00000003")
        .records()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("OUT.KSDS GET")
            && refused.contains("cannot connect to PostgreSQL: ")
            && !refused.contains("creating a new object"),
        "{refused}"
    );

    postgres.restart().unwrap();
    // Service resumes by itself: the next requests reconnect.
    let mut resumed = None;
    for _ in 0..20 {
        match ds
            .reading(RplOptions::direct())
            .key(b"00000003")
            .records()
            .await
        {
            Ok(records) => {
                resumed = Some(records);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let records = resumed.expect("service resumed after the database came back");
    assert_eq!(records[0].data, record(3));
    // The write that failed left nothing behind, and can be made now.
    let missing = ds
        .reading(RplOptions::direct())
        .key(b"00000077")
        .records()
        .await
        .unwrap_err();
    assert_eq!(
        missing.vsam().unwrap().fdbk(),
        vsam_protocol::fdbk::NOT_FOUND
    );
    ds.put(0, RplOptions::direct(), 0, record(77))
        .await
        .unwrap();
    let count = postgres
        .psql("vsam", "select count(*) from out_ksds")
        .unwrap();
    assert_eq!(count, "11");
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_tables_take_plain_sql_writes_on_postgres() {
    let postgres = Postgres::start().unwrap();
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let mut spec = ksds("PROD.CUST.MASTER", 8, 120, "cp037");
    spec.layout = include_str!("../examples/customer.cpy").into();
    vsam_client::define(&conn, spec).await.unwrap();
    let ds = Dataset::open(&conn, "PROD.CUST.MASTER", OpenIntent::Update, 2)
        .await
        .unwrap();
    let customers = include_bytes!("../examples/customer.dat");
    for record in customers.chunks(120) {
        ds.put(0, RplOptions::direct(), 0, record.to_vec())
            .await
            .unwrap();
    }
    assert_eq!(
        postgres.psql(
            "vsam",
            "select cust_id, last_name, balance, credit_limit from prod_cust_master order by vsam_key limit 1"
        ).unwrap(),
        "00000042|SMITH|-301.75|5000"
    );
    postgres.psql(
        "vsam",
        "update prod_cust_master set first_name = 'ANNA' where cust_id = '00000042';
         insert into prod_cust_master (cust_id, last_name, balance) values ('00000007', 'NEWMAN', 99.5)",
    ).unwrap();
    let cp = vsam_plugin_sdk::codepage::CodePage::Cp037;
    let get = |key: &str| {
        let key = cp.encode(key).unwrap();
        let ds = &ds;
        async move {
            ds.reading(RplOptions::direct())
                .key(&key)
                .records()
                .await
                .unwrap()
                .remove(0)
                .data
        }
    };
    let updated = get("00000042").await;
    assert_eq!(cp.decode_lossy(&updated[28..43]).trim_end(), "ANNA");
    let inserted = get("00000007").await;
    assert_eq!(cp.decode_lossy(&inserted[8..28]).trim_end(), "NEWMAN");
    assert_eq!(
        postgres
            .psql(
                "vsam",
                "select count(*) from prod_cust_master where vsam_key is null"
            )
            .unwrap(),
        "0",
        "the inserted row was given its VSAM key"
    );

    // PostgreSQL's tables hold 1,600 columns: a layout of more is refused
    // at DEFINE saying so, and one at the limit is a table.
    let refused = vsam_client::define(&conn, vsam_tests::wide_ksds("PROD.WIDE", 1600 - 5 + 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the layout maps to 1601 columns")
            && refused.contains("more than the 1600 a table of PostgreSQL may have"),
        "{refused}"
    );
    vsam_client::define(&conn, vsam_tests::wide_ksds("PROD.WIDE", 1600 - 5))
        .await
        .unwrap();
    assert_eq!(
        postgres
            .psql(
                "vsam",
                "select count(*) from information_schema.columns where table_name = 'prod_wide'"
            )
            .unwrap(),
        "1600"
    );
    server.server.stop().await;
}

/// Many rows at once go through the table's own column types, as one row
/// does: a mapped table whose column was given another type than the
/// plugin's (BALANCE, `PIC S9(7)V99`, made an `integer` column) refuses a
/// balance with cents from a unit's inserts (one multi-row statement) as
/// it does from a single PUT, rather than rounding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rows_at_once_are_checked_by_the_tables_own_column_types() {
    let postgres = Postgres::start().unwrap();
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let mut spec = ksds("PROD.CUST.TYPED", 8, 120, "cp037");
    spec.layout = include_str!("../examples/customer.cpy").into();
    vsam_client::define(&conn, spec).await.unwrap();
    postgres
        .psql(
            "vsam",
            "alter table prod_cust_typed alter column balance type integer using balance::integer",
        )
        .unwrap();
    let customers = include_bytes!("../examples/customer.dat");
    // The first customer's balance is -301.75.
    let first = customers[..120].to_vec();
    let plain = Dataset::open(&conn, "PROD.CUST.TYPED", OpenIntent::Update, 1)
        .await
        .unwrap();
    let single = plain.put(0, RplOptions::direct(), 0, first.clone()).await;
    assert!(single.is_err(), "a single PUT is refused: {single:?}");
    plain.close().await.unwrap();

    let unit = Dataset::open_with_access(
        &conn,
        "PROD.CUST.TYPED",
        OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    for record in customers.chunks(120).take(3) {
        unit.put(0, RplOptions::direct(), 0, record.to_vec())
            .await
            .unwrap();
    }
    let committed = vsam_client::commit(&conn).await;
    assert!(
        committed.is_err(),
        "the unit's inserts are refused: {committed:?}"
    );
    let message = format!("{committed:?}");
    assert!(message.contains("integer"), "{message}");
    assert_eq!(
        postgres
            .psql("vsam", "select count(*) from prod_cust_typed")
            .unwrap(),
        "0",
        "nothing stored, nothing rounded"
    );
    server.server.stop().await;
}

/// A server that accepts TLS connections only: vsamrd connects over TLS
/// when the URL asks for it, checks the server's certificate against the
/// given CA, and says why when it cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgresql_is_used_and_the_certificate_checked() {
    let postgres = Postgres::start_tls().unwrap();
    assert!(
        postgres.url.contains("sslmode=verify-full"),
        "{}",
        postgres.url
    );
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds("TLS.KSDS", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "TLS.KSDS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, record(1)).await.unwrap();
    let got = ds.read(b"00000001").await.unwrap();
    assert_eq!(got.data, record(1));
    let encrypted = postgres
        .psql(
            "vsam",
            "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid) \
             where a.application_name = 'vsamrd' and s.ssl",
        )
        .unwrap();
    assert_ne!(encrypted, "0", "vsamrd's connections are TLS");
    server.server.stop().await;

    let base = postgres.url.split_once('?').unwrap().0;
    // The plugin connects at its first statement: DEFINE fails, saying why.
    let refused = |url: String| async move {
        let server = vsam_conformance::start_server_for_plugin(
            std::path::Path::new(SQL_WASM),
            &BTreeMap::new(),
            &vsam_conformance::Grants {
                database: Some(url.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let conn = Connection::connect(&server.address).await.unwrap();
        let error = vsam_client::define(&conn, ksds("TLS.REFUSED", 8, 40, "ascii"))
            .await
            .unwrap_err();
        server.server.stop().await;
        assert_eq!(error.vsam().map(|e| e.r15()), Some(12), "{error}");
        error.to_string()
    };
    // A certificate that is not the server's CA does not vouch for it.
    let wrong_ca = refused(format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        postgres.server_certificate().display()
    ))
    .await;
    assert!(
        wrong_ca.contains("TLS.REFUSED") && wrong_ca.contains("invalid peer certificate"),
        "{wrong_ca}"
    );
    // Without TLS this server turns vsamrd away, and vsamrd says so.
    let plain = refused(base.to_string()).await;
    assert!(plain.contains("no encryption"), "{plain}");
    // The right CA, but a host name the certificate was not made for (the
    // same server, reached through hostaddr).
    let other_name = refused(format!(
        "{}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={}",
        base.replace("127.0.0.1", "db.example"),
        postgres.ca().display()
    ))
    .await;
    assert!(
        other_name.contains("certificate not valid for name \"db.example\""),
        "{other_name}"
    );
}

/// Sixteen clients GET at once: the backend answers GETs queued together
/// with one query (`get-many`), and each client gets its own record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_gets_answered_together_each_get_their_record() {
    let postgres = Postgres::start().unwrap();
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds("MANY.KSDS", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "MANY.KSDS", OpenIntent::Output, 1)
        .await
        .unwrap();
    let records = (0..300).map(|n| vsam_client::ChainedRecord {
        address: 0,
        record: record(n),
    });
    let loaded = ds
        .put_chain(0, RplOptions::direct(), records.collect())
        .await
        .unwrap();
    assert!(loaded.failure.is_none());
    let mut clients = Vec::new();
    for client in 0..16u32 {
        let address = server.address.clone();
        clients.push(tokio::spawn(async move {
            let conn = Connection::connect(&address).await.unwrap();
            let ds = Dataset::open(&conn, "MANY.KSDS", OpenIntent::Input, 1)
                .await
                .unwrap();
            for i in 0..100u32 {
                let n = (client * 53 + i * 7) % 350;
                let key = format!("{n:08}");
                match ds
                    .reading(RplOptions::direct())
                    .key(key.as_bytes())
                    .records()
                    .await
                {
                    Ok(found) => assert_eq!(found[0].data, record(n), "key {key}"),
                    Err(e) => {
                        assert!(n >= 300, "key {key}: {e}");
                        assert_eq!(e.vsam().unwrap().fdbk(), vsam_protocol::fdbk::NOT_FOUND);
                    }
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    server.server.stop().await;
}

/// A plugin call waiting on PostgreSQL (a long statement, a row another
/// session holds locked) ends at the call limit: the request fails with
/// R15=12 and the time-limit message, the server's statement is cancelled
/// too, and the backend serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_on_postgresql_ends_at_its_limit() {
    use std::io::Write;
    use std::time::Instant;
    let postgres = Postgres::start().unwrap();
    postgres
        .psql(
            "vsam",
            "create table held (id text primary key, note text); insert into held values ('HELD', '')",
        )
        .unwrap();
    let server = start_with_plugin(
        vsam_tests::FAULTY_WASM,
        &format!("call_timeout_ms = 500\ndatabase = \"{}\"", postgres.url),
    )
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds("PG.WAIT", 4, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "PG.WAIT", OpenIntent::Update, 1)
        .await
        .unwrap();
    let limit = Duration::from_millis(500) + Duration::from_millis(1500);

    // Another session holds the row the plugin will update.
    let mut holder = std::process::Command::new("psql")
        .args(["-X", "-q", &postgres.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    holder
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"begin; select * from held where id = 'HELD' for update;\n")
        .unwrap();
    let locked = Instant::now();
    while postgres
        .psql(
            "vsam",
            "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'held' and l.mode = 'RowShareLock'",
        )
        .unwrap()
        == "0"
    {
        assert!(locked.elapsed() < Duration::from_secs(10), "psql never locked the row");
        std::thread::sleep(Duration::from_millis(20));
    }

    for key in [&b"PGSL"[..], b"SQLW", b"PGSX"] {
        let started = Instant::now();
        let error = ds
            .reading(RplOptions::direct())
            .key(key)
            .records()
            .await
            .unwrap_err();
        let took = started.elapsed();
        let message = error.to_string();
        assert!(took < limit, "{key:?} took {took:?}: {message}");
        // Whichever stops the wait first: the call limit (the call fails
        // with the time-limit message), or the statement's own limit (the
        // plugin, which ignores SQL errors here, answers "not found").
        assert!(
            (message.contains("R15=12")
                && message.contains("ran longer than the limit of 500 ms in `get`"))
                || message.contains("FDBK=X'10'"),
            "{key:?}: {message}"
        );
    }
    // The server's statements ended too: by statement_timeout, or
    // cancelled when the call was dropped (PGSX turned the timeout off).
    let quiet = Instant::now();
    loop {
        let running = postgres
            .psql(
                "vsam",
                "select count(*) from pg_stat_activity where query like '%pg_sleep(120)%' and pid <> pg_backend_pid()",
            )
            .unwrap();
        if running == "0" {
            break;
        }
        assert!(
            quiet.elapsed() < Duration::from_secs(5),
            "pg_sleep still runs on the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The backend serves on.
    ds.put(0, RplOptions::direct(), 0, b"GOOD-after".to_vec())
        .await
        .unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    server.server.stop().await;
}

/// A reload adds a PostgreSQL backend (its pool is made on vsamrd's
/// runtime from the reload's own thread), and the new backend serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_a_postgresql_backend() {
    let postgres = Postgres::start().unwrap();
    // Another server on the database defined a dataset there already.
    let other = vsam_tests::start_with_plugin(
        vsam_tests::SQL_WASM,
        &format!("database = \"{}\"", postgres.url),
    )
    .await;
    let on_other = Connection::connect(&other.address).await.unwrap();
    vsam_client::define(&on_other, ksds("PG.OTHER", 4, 40, "ascii"))
        .await
        .unwrap();
    let deployment = vsam_tests::deployment::Deployment::new("", false);
    let server = deployment.start().await;
    deployment.write_config_text(&format!(
        "[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n",
        postgres.url
    ));
    let report = server.reloader.reload("test").await;
    assert_eq!(report.error, None, "{report:?}");
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("backend pg: added")),
        "{report:?}"
    );
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    // The reloaded server follows the database's shared catalog at once.
    let started = std::time::Instant::now();
    loop {
        let listed = vsam_client::list(&conn, "PG.**").await.unwrap();
        if listed.iter().any(|spec| spec.name == "PG.OTHER") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "not listed: {listed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut spec = ksds("PG.ADDED", 4, 40, "ascii");
    spec.backend = "pg".into();
    vsam_client::define(&conn, spec).await.unwrap();
    let ds = Dataset::open(&conn, "PG.ADDED", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"K001-on-postgres".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();
    assert_eq!(
        postgres
            .psql("vsam", "select count(*) from pg_added")
            .unwrap(),
        "1"
    );
    server.stop().await;
    other.server.stop().await;
}

/// A migration to PostgreSQL that fails because the database stops in the
/// middle of the copy rolls back, and the partial copy it cannot remove
/// then is journaled: the retry, once the database is back, removes it and
/// migrates. `status` shows one row for the dataset, its current state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_left_by_a_failed_migration_is_taken_over_by_the_retry() {
    use vsam_protocol::admin::{AdminAnswer, AdminCommand};
    let postgres = Postgres::start().unwrap();
    let deployment = vsam_tests::deployment::Deployment::new("", false);
    deployment.write_config_text(&format!(
        "[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n",
        postgres.url
    ));
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, ksds("MIG.LEFT", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "MIG.LEFT", OpenIntent::Output, 1)
        .await
        .unwrap();
    const RECORDS: u32 = 60_000;
    let records = (0..RECORDS)
        .map(|n| vsam_client::ChainedRecord {
            address: 0,
            record: record(n),
        })
        .collect();
    ds.put_chain(0, RplOptions::sequential(), records)
        .await
        .unwrap();
    ds.close().await.unwrap();
    let mut admin = deployment.admin(&server).await;
    let migrate = || AdminCommand::Migrate {
        dataset: "MIG.LEFT".into(),
        to: "pg".into(),
    };
    admin.request(migrate()).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let row = migration_rows(&mut admin, "MIG.LEFT").await.pop().unwrap();
        assert!(
            matches!(row.phase.as_str(), "counting" | "copying"),
            "the copy must still run when the database stops: {row:?}"
        );
        if row.copied >= 2_000 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{row:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    postgres.stop().unwrap();
    let failed = loop {
        let row = migration_rows(&mut admin, "MIG.LEFT").await.pop().unwrap();
        if row.phase == "failed" {
            break row;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let message = failed.message.unwrap();
    assert!(
        message.contains("the copy on backend pg could not be removed")
            && message.contains("next migration to pg"),
        "{message}"
    );
    postgres.restart().unwrap();
    let left: u32 = postgres
        .psql("vsam", "select count(*) from mig_left")
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 0 && left < RECORDS, "a partial copy is left: {left}");

    admin.request(migrate()).await.unwrap();
    let cut_over = loop {
        let rows = migration_rows(&mut admin, "MIG.LEFT").await;
        assert_eq!(rows.len(), 1, "one row a dataset: {rows:?}");
        let row = rows.into_iter().next().unwrap();
        match row.phase.as_str() {
            "counting" | "copying" | "verifying" => {}
            "cut-over" => break row,
            _ => panic!("{row:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cut_over.verified, Some(u64::from(RECORDS)));
    let AdminAnswer::Migration(done) = admin
        .request(AdminCommand::Finalize {
            dataset: "MIG.LEFT".into(),
        })
        .await
        .unwrap()
    else {
        panic!("not a migration");
    };
    assert_eq!(done.phase, "finalized");
    assert_eq!(
        postgres
            .psql("vsam", "select count(*) from mig_left")
            .unwrap(),
        RECORDS.to_string()
    );
    server.stop().await;
}

/// A server with backend `pg` on `postgres` beside its default SQLite
/// backend `sqlite`, and its admin client.
async fn with_pg_backend(
    postgres: &Postgres,
) -> (
    vsam_tests::deployment::Deployment,
    vsam_host::RunningServer,
    vsam_client::admin::AdminClient,
) {
    let deployment = vsam_tests::deployment::Deployment::new("", false);
    deployment.write_config_text(&format!(
        "[backends.pg]\nplugin = \"sql\"\ndatabase = \"{}\"\n",
        postgres.url
    ));
    let server = deployment.start().await;
    let admin = deployment.admin(&server).await;
    (deployment, server, admin)
}

/// Migrates `dataset` to backend `to`, checks at the cutover whether the
/// shared catalog on `postgres` names it, then ends the migration with
/// `end` (finalize or rollback).
async fn migrate_and_end(
    admin: &mut vsam_client::admin::AdminClient,
    dataset: &str,
    to: &str,
    postgres: &Postgres,
    named_on_postgres: bool,
    end: vsam_protocol::admin::AdminCommand,
) {
    migrate_until_cut_over(admin, dataset, to).await;
    assert_eq!(
        named_in_shared_catalog(postgres, dataset),
        named_on_postgres,
        "{dataset} in the shared catalog at the cutover to {to}"
    );
    admin.request(end).await.unwrap();
}

/// True if the shared catalog on `postgres` defines `dataset`.
fn named_in_shared_catalog(postgres: &Postgres, dataset: &str) -> bool {
    let defined = postgres
        .psql(
            "vsam",
            &format!("select count(*) from vsamrd_catalog where name = '{dataset}' and definition is not null"),
        )
        .unwrap();
    defined.trim() == "1"
}

/// A dataset migrated onto a database a fleet shares is named in its
/// shared catalog at the cutover, so a server that joins finds it there at
/// once; migrated away and finalized, its name goes with its table, so no
/// server looks for it there. A migration to a database whose shared
/// catalog defines a dataset of that name (another server's, even empty)
/// is refused before anything is copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_keeps_the_shared_catalog_of_the_databases_it_moves_between() {
    let postgres = Postgres::start().unwrap();
    let (_deployment, server, mut admin) = with_pg_backend(&postgres).await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, ksds("MIG.MOVE", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "MIG.MOVE", OpenIntent::Output, 1)
        .await
        .unwrap();
    for n in 0..3 {
        ds.put(0, RplOptions::direct(), 0, record(n)).await.unwrap();
    }
    ds.close().await.unwrap();

    use vsam_protocol::admin::AdminCommand;
    let finalize = || AdminCommand::Finalize {
        dataset: "MIG.MOVE".into(),
    };
    migrate_and_end(&mut admin, "MIG.MOVE", "pg", &postgres, true, finalize()).await;
    let joined = vsam_tests::fleet_server(&postgres.url).await;
    let on_joined = Connection::connect(&joined.address).await.unwrap();
    let ds = Dataset::open(&on_joined, "MIG.MOVE", OpenIntent::Input, 1)
        .await
        .unwrap();
    assert_eq!(ds.read(&record(2)[..8]).await.unwrap().data, record(2));
    ds.close().await.unwrap();
    joined.server.stop().await;
    vsam_tests::until_servers_on(&postgres, 1).await;

    migrate_and_end(
        &mut admin,
        "MIG.MOVE",
        "sqlite",
        &postgres,
        true,
        finalize(),
    )
    .await;
    let gone = || {
        assert!(
            !named_in_shared_catalog(&postgres, "MIG.MOVE"),
            "the name stayed in the shared catalog after its table went"
        );
        let tables = postgres
            .psql(
                "vsam",
                "select count(*) from pg_tables where tablename = 'mig_move'",
            )
            .unwrap();
        assert_eq!(tables.trim(), "0");
    };
    gone();
    // Rolled back after the cutover: the name goes with the new copy.
    let rollback = AdminCommand::Rollback {
        dataset: "MIG.MOVE".into(),
    };
    migrate_and_end(&mut admin, "MIG.MOVE", "pg", &postgres, true, rollback).await;
    gone();
    // Defined on the shared database, then moved off it: its name goes.
    let mut born = ksds("MIG.BORN", 8, 40, "ascii");
    born.backend = "pg".into();
    vsam_client::define(&conn, born).await.unwrap();
    assert!(named_in_shared_catalog(&postgres, "MIG.BORN"));
    let finalize_born = AdminCommand::Finalize {
        dataset: "MIG.BORN".into(),
    };
    migrate_and_end(
        &mut admin,
        "MIG.BORN",
        "sqlite",
        &postgres,
        true,
        finalize_born,
    )
    .await;
    assert!(!named_in_shared_catalog(&postgres, "MIG.BORN"));

    // This server's dataset on SQLite, and another server's empty one of
    // the same name on the database.
    vsam_client::define(&conn, ksds("MIG.TAKEN", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "MIG.TAKEN", OpenIntent::Output, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, record(1)).await.unwrap();
    ds.close().await.unwrap();
    let other = vsam_tests::fleet_server(&postgres.url).await;
    let on_other = Connection::connect(&other.address).await.unwrap();
    vsam_client::define(&on_other, ksds("MIG.TAKEN", 8, 40, "ascii"))
        .await
        .unwrap();
    other.server.stop().await;
    vsam_tests::until_servers_on(&postgres, 1).await;
    let message = refused_migration(&mut admin, "MIG.TAKEN", "pg").await;
    assert!(
        message.contains(
            "shared catalog on the database of backend pg defines a dataset named MIG.TAKEN"
        ),
        "{message}"
    );
    let rows = postgres
        .psql("vsam", "select count(*) from mig_taken")
        .unwrap();
    assert_eq!(rows.trim(), "0", "the other server's dataset is untouched");
    server.stop().await;
}

/// A COMMIT while PostgreSQL is down answers R15=12 and rolls the unit
/// back, whole: after the database is back, nothing of it is stored, and
/// the next unit commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_during_a_database_outage_rolls_back_whole_and_the_next_unit_commits() {
    let postgres = Postgres::start().unwrap();
    let server = start_with_plugin(SQL_WASM, &format!("database = \"{}\"", postgres.url)).await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds("OUT.UNIT", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open_with_access(
        &conn,
        "OUT.UNIT",
        OpenIntent::Update,
        vsam_protocol::access::COMMIT,
        1,
    )
    .await
    .unwrap();
    for n in 0..3 {
        ds.put(0, RplOptions::direct(), 0, record(n)).await.unwrap();
    }
    vsam_client::commit(&conn).await.unwrap();
    // A unit of inserts and an update, then the database goes away.
    for n in 100..110 {
        ds.put(0, RplOptions::direct(), 0, record(n)).await.unwrap();
    }
    ds.read_for_update(b"00000001").await.unwrap();
    let mut changed = record(1);
    changed[10] = b'X';
    ds.put(0, RplOptions::direct().update(), 0, changed)
        .await
        .unwrap();
    postgres.stop().unwrap();
    let failed = vsam_client::commit(&conn).await.unwrap_err();
    let vsam = failed.vsam().expect("a VSAM error, not a lost connection");
    assert_eq!(vsam.r15(), 12, "{failed}");
    assert!(
        vsam.status.message.contains("rolled back"),
        "{}",
        vsam.status.message
    );
    postgres.restart().unwrap();
    let mut back = false;
    for _ in 0..40 {
        if ds.read(b"00000001").await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "service resumed after the database came back");
    assert_eq!(ds.read(b"00000001").await.unwrap().data, record(1));
    let count = postgres
        .psql("vsam", "select count(*) from out_unit")
        .unwrap();
    assert_eq!(count, "3", "nothing of the failed unit is stored");
    ds.put(0, RplOptions::direct(), 0, record(200))
        .await
        .unwrap();
    vsam_client::commit(&conn).await.unwrap();
    let count = postgres
        .psql("vsam", "select count(*) from out_unit")
        .unwrap();
    assert_eq!(count, "4", "the next unit commits");
    server.server.stop().await;
}

/// Each instance connects to PostgreSQL when it is first used, so backends
/// whose writers and readers may open more connections than the database
/// takes fail requests under load, long after the start ("sorry, too many
/// clients already"): vsamrd says so when it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_that_may_open_more_connections_than_the_database_takes_are_warned_of() {
    let postgres = Postgres::start().unwrap();
    let url = postgres.database("room").unwrap();
    for (backends, warned) in [(1, false), (7, true)] {
        let dir = tempfile::tempdir().unwrap();
        let port = vsam_tests::free_port();
        let mut config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[plugins.sql]\npath = \"builtin:sql\"\n[routing]\ndefault = \"p0\"\n",
            dir.path().join("data").display()
        );
        for i in 0..backends {
            config.push_str(&format!(
                "[backends.p{i}]\nplugin = \"sql\"\ndatabase = \"{url}\"\nreaders = 15\n"
            ));
        }
        let vsamrd = vsam_tests::logged::LoggedServer::start(dir.path(), port, &config, "warn");
        // Served: the start, and its check, are done.
        Connection::connect(&vsamrd.address).await.unwrap();
        let log = vsamrd.stop();
        let line = format!(
            "may open {} connections there (a writer and its readers each, and the fleet's lock session), and the database takes 97 (max_connections 100 less 3 reserved)",
            backends * 16 + 1
        );
        assert_eq!(log.contains(&line), warned, "{backends} backends: {log}");
    }
}

/// The anonymous memory (`RssAnon`, kB) of the database's sessions of
/// vsamrd's backends on `database`: where their prepared plans live.
fn plugin_sessions_memory_kb(postgres: &Postgres, database: &str) -> u64 {
    plugin_sessions(postgres, database)
        .iter()
        .map(|pid| vsam_tests::proc_status_kb(pid, "RssAnon"))
        .sum()
}

/// The database's sessions of vsamrd's backends on `database`.
fn plugin_sessions(postgres: &Postgres, database: &str) -> Vec<String> {
    let pids = postgres
        .psql(
            "postgres",
            &format!(
                "select pid from pg_stat_activity where datname = '{database}' and application_name = 'vsamrd'"
            ),
        )
        .unwrap();
    pids.lines()
        .map(|pid| pid.trim().to_string())
        .filter(|pid| !pid.is_empty())
        .collect()
}

/// Each dataset `PLAN.Dn` of `datasets` opened, written, read, browsed and
/// closed: the statements of all of them prepared on the writer's
/// connection.
async fn touch(conn: &Connection, datasets: std::ops::Range<u32>) {
    for n in datasets {
        let name = format!("PLAN.D{n}");
        let ds = Dataset::open(conn, &name, OpenIntent::Update, 1)
            .await
            .unwrap();
        ds.put(0, RplOptions::direct(), 0, b"K001 a record".to_vec())
            .await
            .unwrap();
        assert_eq!(ds.read(b"K001").await.unwrap().data, b"K001 a record");
        ds.point(
            0,
            RplOptions::sequential().greater_or_equal(),
            b"K000",
            0,
            0,
        )
        .await
        .unwrap();
        assert_eq!(ds.browse(10).await.unwrap().len(), 1);
        ds.close().await.unwrap();
    }
}

/// A server of one PostgreSQL backend on database `name` of `postgres`,
/// a connection to it, and `count` datasets `PLAN.Dn` defined. (Defined
/// first: a DEFINE changes tables, which makes every connection prepare
/// its statements again.)
async fn planning(
    postgres: &Postgres,
    name: &str,
    count: u32,
) -> (vsam_tests::TestServer, Connection) {
    let url = postgres.database(name).unwrap();
    let server = vsam_tests::start(&format!(
        "[plugins.sql]\npath = \"{SQL_WASM}\"\n[backends.pg]\nplugin = \"sql\"\ndatabase = \"{url}\"\n[routing]\ndefault = \"pg\"\n"
    ))
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    for n in 0..count {
        vsam_client::define(&conn, ksds(&format!("PLAN.D{n}"), 4, 40, "ascii"))
            .await
            .unwrap();
    }
    (server, conn)
}

/// A connection that moves on from dataset to dataset is closed between
/// transactions once it has used some 500 (see
/// `vsam_host::runtime::sql::postgres::RECYCLE_AFTER_CLEARS`), and another
/// opened: PostgreSQL keeps a description of every table a session used
/// for the session's life (+14 MB over 1,800 datasets before, the same
/// connection all along; +4 MB with the connection replaced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_used_many_tables_is_replaced_between_transactions() {
    let postgres = Postgres::start().unwrap();
    let (server, conn) = planning(&postgres, "recycled", 2000).await;
    touch(&conn, 0..200).await;
    let sessions = plugin_sessions(&postgres, "recycled");
    let before = plugin_sessions_memory_kb(&postgres, "recycled");
    touch(&conn, 200..2000).await;
    let after = plugin_sessions_memory_kb(&postgres, "recycled");
    let sessions_after = plugin_sessions(&postgres, "recycled");
    println!(
        "database sessions of the plugin: {before} kB after 200 datasets ({sessions:?}), {after} kB after 2,000 ({sessions_after:?})"
    );
    assert!(
        sessions_after.iter().all(|pid| !sessions.contains(pid)),
        "the same sessions after 1,800 more datasets: {sessions:?} then {sessions_after:?}"
    );
    assert!(
        after < before + 8 * 1024,
        "{before} kB after 200 datasets, {after} kB after 2,000"
    );
    // The work goes on on the new connection, every record there.
    for n in [0, 999, 1999] {
        let ds = Dataset::open(&conn, &format!("PLAN.D{n}"), OpenIntent::Input, 1)
            .await
            .unwrap();
        assert_eq!(ds.read(b"K001").await.unwrap().data, b"K001 a record");
        ds.close().await.unwrap();
    }
    server.server.stop().await;
}

/// A connection that serves many datasets (the SQL plugin prepares each
/// one's statements on its table) keeps a bounded number of them prepared:
/// the plans of a dataset read, written and browsed held about 28 KB of
/// the database session's memory for as long as the connection lived
/// (+17 MB over 400 datasets before the bound, +6 MB with it: the rest is
/// PostgreSQL's own cache of the tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_serving_many_datasets_keeps_its_prepared_plans_bounded() {
    let postgres = Postgres::start().unwrap();
    let (server, conn) = planning(&postgres, "plans", 450).await;
    touch(&conn, 0..50).await;
    let before = plugin_sessions_memory_kb(&postgres, "plans");
    touch(&conn, 50..450).await;
    let after = plugin_sessions_memory_kb(&postgres, "plans");
    println!(
        "database sessions of the plugin: {before} kB after 50 datasets, {after} kB after 450"
    );
    assert!(
        after < before + 12 * 1024,
        "{before} kB after 50 datasets, {after} kB after 450"
    );
    server.server.stop().await;
}
