//! The SQL plugin's tables as SQL users see them (embedded SQLite): typed
//! columns from a copybook, the raw fallback, rows written by plain SQL and
//! seen by the next GET, table names and the keep-tables switch.

use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::numeric::{Decimal, Packed, Picture};
use vsam_tests::{SQL_WASM, TestServer, ksds, start_with_plugin, wide_ksds};

const CUSTOMER_LAYOUT: &str = include_str!("../examples/customer.cpy");
const CUSTOMERS: &[u8] = include_bytes!("../examples/customer.dat");

async fn server(params: &str) -> TestServer {
    start_with_plugin(
        SQL_WASM,
        &format!("database = \"sqlite:tables.db\"\n[backends.b.params]\n{params}"),
    )
    .await
}

fn database(server: &TestServer) -> rusqlite::Connection {
    rusqlite::Connection::open(server.data_dir.path().join("tables.db")).unwrap()
}

fn text(s: &str) -> Vec<u8> {
    CodePage::Cp037.encode(s).unwrap()
}

fn balance(record: &[u8]) -> Decimal {
    Packed(Picture {
        digits: 9,
        scale: 2,
        signed: true,
    })
    .decode(&record[43..48])
    .unwrap()
}

async fn customers(conn: &Connection) -> Dataset {
    let mut spec = ksds("PROD.CUST.MASTER", 8, 120, "cp037");
    spec.layout = CUSTOMER_LAYOUT.into();
    vsam_client::define(conn, spec).await.unwrap();
    let ds = Dataset::open(conn, "PROD.CUST.MASTER", OpenIntent::Update, 2)
        .await
        .unwrap();
    for record in CUSTOMERS.chunks(120) {
        ds.put(0, RplOptions::direct(), 0, record.to_vec())
            .await
            .unwrap();
    }
    ds
}

async fn get(ds: &Dataset, key: &str) -> Vec<u8> {
    let records = ds
        .reading(RplOptions::direct())
        .key(&text(key))
        .records()
        .await
        .unwrap();
    records[0].data.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copybook_fields_are_typed_columns_and_sql_writes_reach_programs() {
    let server = server("").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let ds = customers(&conn).await;
    let db = database(&server);

    let (id, last, bal, limit, raw): (String, String, f64, i64, Option<Vec<u8>>) = db
        .query_row(
            "SELECT cust_id, last_name, balance, credit_limit, vsam_raw FROM prod_cust_master ORDER BY vsam_key LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (id.as_str(), last.as_str(), bal, limit, raw),
        ("00000042", "SMITH", -301.75, 5000, None)
    );
    let order_amount: f64 = db
        .query_row(
            "SELECT order_amount_2 FROM prod_cust_master WHERE cust_id = '00000042'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(order_amount, -20.0);
    // Every record comes back byte for byte.
    for record in CUSTOMERS.chunks(120) {
        let key = CodePage::Cp037.decode_lossy(&record[..8]);
        assert_eq!(get(&ds, &key).await, record);
    }

    // A modern application updates and inserts with plain SQL...
    db.execute(
        "UPDATE prod_cust_master SET last_name = 'SMYTHE', balance = 12.34 WHERE cust_id = '00000042'",
        [],
    )
    .unwrap();
    db.execute(
        "INSERT INTO prod_cust_master (cust_id, last_name, first_name, balance, credit_limit, status_code, opened_date) \
         VALUES ('00000007', 'NEWMAN', 'ROSA', 1.5, 10, 'A', 20260101)",
        [],
    )
    .unwrap();
    // ...and the old program sees both on its next GET.
    let updated = get(&ds, "00000042").await;
    assert_eq!(&updated[8..28], &text(&format!("{:<20}", "SMYTHE"))[..]);
    assert_eq!(balance(&updated), "12.34".parse().unwrap());
    assert_eq!(&updated[..8], CUSTOMERS[..8].to_vec().as_slice());
    let inserted = get(&ds, "00000007").await;
    assert_eq!(&inserted[8..28], &text(&format!("{:<20}", "NEWMAN"))[..]);
    assert_eq!(balance(&inserted), "1.50".parse().unwrap());
    assert_eq!(
        &inserted[109..],
        &text(&" ".repeat(11))[..],
        "FILLER is spaces"
    );
    let keyed: Vec<u8> = db
        .query_row(
            "SELECT vsam_key FROM prod_cust_master WHERE cust_id = '00000007'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keyed, text("00000007"), "the row got its VSAM key");
    // Browsing gives VSAM key order, the inserted row first.
    let first = ds
        .reading(RplOptions::sequential())
        .on(1)
        .batch(10)
        .records()
        .await
        .unwrap();
    assert_eq!(&first[0].data[..8], &text("00000007")[..]);
    assert_eq!(first.len(), 4);
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_columns_cannot_hold_are_kept_raw_and_exact() {
    let server = server("").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let ds = customers(&conn).await;
    let mut bad = CUSTOMERS[..120].to_vec();
    bad[..8].copy_from_slice(&text("00000999"));
    bad[45] = 0xAB; // not a packed decimal
    bad[20] = 0x00; // low-value inside LAST-NAME
    ds.put(0, RplOptions::direct(), 0, bad.clone())
        .await
        .unwrap();
    assert_eq!(get(&ds, "00000999").await, bad);
    let db = database(&server);
    let (raw, name): (Vec<u8>, Option<String>) = db
        .query_row(
            "SELECT vsam_raw, last_name FROM prod_cust_master WHERE vsam_key = ?1",
            [text("00000999")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((raw, name), (bad, None));
    let fallbacks: i64 = db
        .query_row(
            "SELECT count(*) FROM prod_cust_master WHERE vsam_raw IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(fallbacks, 1);
    server.server.stop().await;
}

fn tables(server: &TestServer) -> Vec<String> {
    let db = database(server);
    let mut statement = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_names_come_from_config_and_delete_can_keep_the_table() {
    let server = server("keep_tables = \"true\"\n\"table.APP.ORDERS\" = \"orders\"").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    for name in ["APP.ORDERS", "APP.ITEMS"] {
        vsam_client::define(&conn, ksds(name, 4, 20, "ascii"))
            .await
            .unwrap();
    }
    assert_eq!(tables(&server), ["_vsam_catalog", "app_items", "orders"]);
    vsam_client::delete(&conn, "APP.ORDERS").await.unwrap();
    assert_eq!(tables(&server), ["_vsam_catalog", "app_items", "orders"]);
    server.server.stop().await;

    let dropping = self::server("").await;
    let conn = Connection::connect(&dropping.address).await.unwrap();
    vsam_client::define(&conn, ksds("APP.ITEMS", 4, 20, "ascii"))
        .await
        .unwrap();
    vsam_client::delete(&conn, "APP.ITEMS").await.unwrap();
    assert_eq!(tables(&dropping), ["_vsam_catalog"]);
    dropping.server.stop().await;
}

/// Readers cache what they learn about a dataset's table; a dataset deleted
/// and defined again with another layout (through the writer) must be read
/// with the new one by every reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_a_dataset_defined_again_with_another_layout() {
    let server =
        start_with_plugin(SQL_WASM, "database = \"sqlite:tables.db\"\nreaders = 3\n").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let layouts = [
        "       01  R.\n           05  R-KEY  PIC X(4).\n           05  R-AMT  PIC 9(6).\n",
        "       01  R.\n           05  R-KEY  PIC X(4).\n           05  R-NAME PIC X(3).\n           05  R-QTY  PIC S9(3) COMP-3.\n",
    ];
    let records: [&[u8]; 2] = [b"K001000123", b"K001ABC\x12\x3C"];
    for (layout, record) in layouts.iter().zip(records) {
        let mut spec = ksds("APP.AGAIN", 4, 10, "ascii");
        spec.min_record = 1;
        spec.layout = layout.to_string();
        vsam_client::define(&conn, spec).await.unwrap();
        let ds = Dataset::open(&conn, "APP.AGAIN", OpenIntent::Update, 1)
            .await
            .unwrap();
        ds.put(0, RplOptions::direct(), 0, record.to_vec())
            .await
            .unwrap();
        // Enough GETs to reach every reader (round robin) more than once.
        for _ in 0..7 {
            let got = ds.read(b"K001").await.unwrap();
            assert_eq!(got.data, record, "under layout {layout}");
        }
        ds.close().await.unwrap();
        vsam_client::delete(&conn, "APP.AGAIN").await.unwrap();
    }
    let typed: i64 = database(&server)
        .query_row("SELECT count(*) FROM _vsam_catalog", [], |r| r.get(0))
        .unwrap();
    assert_eq!(typed, 0, "the catalog table forgets deleted datasets");
}

/// Another program's table where APP.ORDERS would go, with its one row.
fn their_table(db: &rusqlite::Connection) {
    db.execute_batch("CREATE TABLE app_orders (id INTEGER, note TEXT); INSERT INTO app_orders VALUES (1, 'theirs');")
        .unwrap();
}

/// The DEFINE of APP.ORDERS, refused over [`their_table`].
async fn define_refused_over_their_table(conn: &Connection) {
    let refused = vsam_client::define(conn, ksds("APP.ORDERS", 4, 20, "ascii")).await;
    let message = format!("{refused:?}");
    assert!(
        message.contains("cannot be read under this definition"),
        "{message}"
    );
}

/// Defines APP.ORDERS and writes one record of its own.
async fn define_and_write_mine(conn: &Connection) {
    vsam_client::define(conn, ksds("APP.ORDERS", 4, 20, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(conn, "APP.ORDERS", OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, b"0001 mine".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();
}

/// The note of their row in `table`: theirs, untouched.
fn their_note(db: &rusqlite::Connection, table: &str) -> String {
    db.query_row(&format!("SELECT note FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// A table of another program where a DEFINE would put its dataset: the
/// DEFINE is refused as records it cannot read; once that program's table
/// is gone (or renamed), the same DEFINE makes the dataset's own table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_define_refused_over_a_foreign_table_succeeds_once_the_table_is_gone() {
    let server = server("").await;
    their_table(&database(&server));
    let conn = Connection::connect(&server.address).await.unwrap();
    define_refused_over_their_table(&conn).await;
    // Their table moves away; the dataset is defined in a table of its own.
    database(&server)
        .execute_batch("ALTER TABLE app_orders RENAME TO their_orders")
        .unwrap();
    define_and_write_mine(&conn).await;
    assert_eq!(their_note(&database(&server), "their_orders"), "theirs");
    server.server.stop().await;
}

/// A DEFINE refused over another program's table, then the cure its
/// refusal suggests: the backend's params give the dataset a table of its
/// own (`table.DATASET`), a reload, and the same DEFINE makes that table;
/// the other program's table is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_define_refused_over_a_foreign_table_follows_a_table_named_since() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vsamrd.toml");
    let write_config = |params: &str| {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[admin]\nwatch_files = false\n\
             [plugins.p]\npath = \"{SQL_WASM}\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"sqlite:tables.db\"\n\
             [backends.b.params]\n{params}\n[routing]\ndefault = \"b\"\n",
            dir.path().join("data").display()
        );
        std::fs::write(&config, text).unwrap();
    };
    write_config("");
    let server = vsam_host::RunningServer::start_source(
        vsam_host::reload::ConfigSource::file(config.clone()),
        std::collections::BTreeMap::new(),
    )
    .await
    .unwrap();
    let database = || rusqlite::Connection::open(dir.path().join("data/tables.db")).unwrap();
    their_table(&database());
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    define_refused_over_their_table(&conn).await;
    write_config("\"table.APP.ORDERS\" = \"app_orders_vsam\"");
    let reload = server.reloader.reload("test").await;
    assert!(reload.error.is_none(), "{reload:?}");
    define_and_write_mine(&conn).await;
    let count = |table: &str| -> i64 {
        database()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!((count("app_orders"), count("app_orders_vsam")), (1, 1));
    assert_eq!(their_note(&database(), "app_orders"), "theirs");
    server.stop().await;
}

/// A kept table adopted again: a first DEFINE with the wrong attributes is
/// refused, and the DEFINE with the attributes its records were stored
/// with, which the refusal asks for, then adopts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_define_refused_for_its_attributes_adopts_the_table_when_given_the_right_ones() {
    let server = server("keep_tables = \"true\"").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    let ds = customers(&conn).await;
    let stored = get(&ds, "00000042").await;
    ds.close().await.unwrap();
    vsam_client::delete(&conn, "PROD.CUST.MASTER")
        .await
        .unwrap();
    // Without its copybook: the typed columns cannot be read as raw records.
    let refused = vsam_client::define(&conn, ksds("PROD.CUST.MASTER", 8, 120, "cp037")).await;
    assert!(
        format!("{refused:?}").contains("already holds records"),
        "{refused:?}"
    );
    let mut spec = ksds("PROD.CUST.MASTER", 8, 120, "cp037");
    spec.layout = CUSTOMER_LAYOUT.into();
    vsam_client::define(&conn, spec).await.unwrap();
    let ds = Dataset::open(&conn, "PROD.CUST.MASTER", OpenIntent::Input, 1)
        .await
        .unwrap();
    assert_eq!(get(&ds, "00000042").await, stored);
    server.server.stop().await;
}

/// A layout mapping to more columns than the database's tables may have
/// is refused at DEFINE, saying so and what to do, and one at the limit
/// is a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_wider_than_a_table_may_be_is_refused_saying_what_to_do() {
    let server = server("").await;
    let conn = Connection::connect(&server.address).await.unwrap();
    // The key, and the four columns of the plugin's own.
    let refused = vsam_client::define(&conn, wide_ksds("PROD.WIDE", 2000 - 5 + 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("the layout maps to 2001 columns (each entry of a table, OCCURS, a column of its own), more than the 2000 a table of SQLite may have")
            && refused.contains("define the dataset without a layout"),
        "{refused}"
    );
    vsam_client::define(&conn, wide_ksds("PROD.WIDE", 2000 - 5))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "PROD.WIDE", OpenIntent::Update, 1)
        .await
        .unwrap();
    let record: Vec<u8> = text("WIDE0001")
        .into_iter()
        .chain(text(&"A".repeat(1995)))
        .collect();
    ds.put(0, RplOptions::direct(), 0, record.clone())
        .await
        .unwrap();
    assert_eq!(get(&ds, "WIDE0001").await, record);
}

/// A batch that reads many datasets one after another: the instance keeps
/// the description of at most 1,024 tables, so that its memory does not
/// grow with every dataset it ever served (before, some 1.5 KB each: 3,000
/// datasets failed their calls at a limit of 4 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_served_one_after_another_keep_the_instance_memory_bounded() {
    let server = start_with_plugin(
        SQL_WASM,
        "database = \"sqlite:tables.db\"\nmemory_limit_mb = 4\n",
    )
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_tests::use_datasets_one_after_another(&conn, 3000).await;
    server.server.stop().await;
}
