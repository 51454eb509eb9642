//! Storage and who owns it, through vsamrd and the real plugins: names that
//! differ only in `@ # $ -` and dots never share a table, file or object
//! (which would let one dataset's DELETE drop another's records, or a
//! client reach records its access rules deny); no dataset name reaches a
//! plugin's own bookkeeping; the SQL catalog of earlier versions carries
//! over, and its table names stay taken; a reload cannot take local storage
//! another server holds (two processes at start: `host/tests/process.rs`).

use vsam_client::admin::{AdminClient, read_token};
use vsam_client::{ClientError, ConnectOptions, Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::admin::{AdminAnswer, AdminCommand};
use vsam_protocol::fdbk;
use vsam_tests::deployment::Deployment;
use vsam_tests::{CSV_WASM, MEMORY_WASM, SQL_WASM, ksds, sha256_hex, start, start_with_plugin};

/// A KSDS of 4-byte keys on `backend`.
fn spec_on(name: &str, backend: &str) -> vsam_protocol::DatasetSpec {
    let mut spec = ksds(name, 4, 60, "ascii");
    spec.backend = backend.into();
    spec
}

/// A record naming the dataset it was written to.
fn record(name: &str) -> Vec<u8> {
    format!("K001{name}").into_bytes()
}

async fn write(conn: &Connection, name: &str) {
    let ds = Dataset::open(conn, name, OpenIntent::Update, 1)
        .await
        .unwrap();
    ds.put(0, RplOptions::direct(), 0, record(name))
        .await
        .unwrap_or_else(|e| panic!("PUT to {name}: {e}"));
    ds.close().await.unwrap();
}

/// Every record of `name`, in key order.
async fn records(conn: &Connection, name: &str) -> Vec<Vec<u8>> {
    let ds = Dataset::open(conn, name, OpenIntent::Input, 1)
        .await
        .unwrap_or_else(|e| panic!("OPEN of {name}: {e}"));
    let mut out = Vec::new();
    loop {
        match ds.browse(100).await {
            Ok(batch) => out.extend(batch.into_iter().map(|r| r.data)),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("GET of {name}: {e}"),
        }
    }
    ds.close().await.unwrap();
    out
}

fn vsam_code(error: ClientError) -> (u8, u8, String) {
    let vsam = error.vsam().expect("a VSAM error").clone();
    (vsam.status.r15, vsam.status.fdbk, vsam.to_string())
}

/// The names of what the shipped plugins keep for themselves (the SQL
/// catalog of today and of earlier versions, SQLite's and PostgreSQL's
/// system tables) and names SQLite reserves.
const BOOKKEEPING_NAMES: [&str; 8] = [
    "VSAM.DATASETS",
    "VSAM.CATALOG",
    "VSAM.SQLITE.CUST",
    "SQLITE.MASTER",
    "SQLITE.CUST",
    "SQLITE.SEQUENCE",
    "PG.CATALOG",
    "PG.CLASS",
];

/// On every shipped plugin: datasets named like a plugin's bookkeeping are
/// defined, written, read and deleted like any other, and the other
/// datasets of the backend, new DEFINEs and a restart are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dataset_name_reaches_a_plugins_own_bookkeeping() {
    let deployment = Deployment::three_backends();
    deployment.write_config_text(&format!(
        "[plugins.memory]\npath = \"{MEMORY_WASM}\"\n[backends.memory]\nplugin = \"memory\"\n"
    ));
    let backends = ["sqlite", "csv", "objects", "memory"];
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    for backend in backends {
        let keep = format!("KEEP.{}", backend.to_ascii_uppercase());
        vsam_client::define(&conn, spec_on(&keep, backend))
            .await
            .unwrap();
        write(&conn, &keep).await;
        for name in BOOKKEEPING_NAMES {
            vsam_client::define(&conn, spec_on(name, backend))
                .await
                .unwrap_or_else(|e| panic!("DEFINE {name} on {backend}: {e}"));
            write(&conn, name).await;
            assert_eq!(records(&conn, name).await, [record(name)], "{backend}");
            assert_eq!(records(&conn, &keep).await, [record(&keep)], "{backend}");
            vsam_client::delete(&conn, name)
                .await
                .unwrap_or_else(|e| panic!("DELETE {name} on {backend}: {e}"));
            assert_eq!(
                records(&conn, &keep).await,
                [record(&keep)],
                "{backend} after DELETE {name}"
            );
        }
        let fresh = format!("FRESH.{}", backend.to_ascii_uppercase());
        vsam_client::define(&conn, spec_on(&fresh, backend))
            .await
            .unwrap_or_else(|e| panic!("DEFINE after the bookkeeping names on {backend}: {e}"));
        write(&conn, &fresh).await;
    }
    server.stop().await;

    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    for backend in ["sqlite", "csv", "objects"] {
        for name in ["KEEP", "FRESH"] {
            let name = format!("{name}.{}", backend.to_ascii_uppercase());
            assert_eq!(
                records(&conn, &name).await,
                [record(&name)],
                "{name} after a restart"
            );
        }
    }
    server.stop().await;
}

/// The finding that started it: a client allowed only `PAY-CUST` reached,
/// overwrote and dropped `PAY.CUST`'s records through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_to_one_name_reaches_no_other_names_records() {
    let server = start(&format!(
        r#"
[plugins.sql]
path = "{SQL_WASM}"
[backends.sqlite]
plugin = "sql"
database = "sqlite:vsam.db"
[routing]
default = "sqlite"

[[clients]]
name = "owner"
token_sha256 = "{}"

[[clients]]
name = "other"
token_sha256 = "{}"

[[access]]
clients = ["owner"]
datasets = "**"
level = "alter"

[[access]]
clients = ["other"]
datasets = "PAY-CUST"
level = "alter"
"#,
        sha256_hex("owner-token"),
        sha256_hex("other-token"),
    ))
    .await;
    let connect = |token: &str| {
        let options = ConnectOptions {
            tls: None,
            token: Some(token.into()),
            ..Default::default()
        };
        let address = server.address.clone();
        async move { Connection::connect_with(&address, &options).await.unwrap() }
    };
    let owner = connect("owner-token").await;
    let other = connect("other-token").await;
    vsam_client::define(&owner, ksds("PAY.CUST", 4, 60, "ascii"))
        .await
        .unwrap();
    write(&owner, "PAY.CUST").await;

    vsam_client::define(&other, ksds("PAY-CUST", 4, 60, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&other, "PAY-CUST", OpenIntent::Update, 1)
        .await
        .unwrap();
    let (r15, code, message) = vsam_code(
        ds.reading(RplOptions::direct())
            .key(b"K001")
            .records()
            .await
            .unwrap_err(),
    );
    assert_eq!((r15, code), (8, fdbk::NOT_FOUND.0), "{message}");
    ds.put(0, RplOptions::direct(), 0, b"K001overwritten".to_vec())
        .await
        .unwrap();
    ds.close().await.unwrap();
    vsam_client::delete(&other, "PAY-CUST").await.unwrap();

    assert_eq!(records(&owner, "PAY.CUST").await, [record("PAY.CUST")]);
    server.server.stop().await;
}

/// Two datasets configured onto one table: the second DEFINE is refused
/// with X'68', naming whose table it is, and the first keeps its records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_define_never_takes_over_another_datasets_table() {
    let server = start_with_plugin(
        SQL_WASM,
        "database = \"sqlite:vsam.db\"\n[backends.b.params]\n\"table.APP.ONE\" = \"shared\"\n\"table.APP.TWO\" = \"shared\"\n",
    )
    .await;
    let conn = Connection::connect(&server.address).await.unwrap();
    vsam_client::define(&conn, ksds("APP.ONE", 4, 60, "ascii"))
        .await
        .unwrap();
    write(&conn, "APP.ONE").await;
    let (r15, code, message) = vsam_code(
        vsam_client::define(&conn, ksds("APP.TWO", 4, 60, "ascii"))
            .await
            .unwrap_err(),
    );
    assert_eq!((r15, code), (8, fdbk::INVALID_OPTIONS.0), "{message}");
    assert!(
        message.contains("APP.TWO DEFINE")
            && message.contains("table shared is the storage of dataset APP.ONE"),
        "{message}"
    );
    assert_eq!(records(&conn, "APP.ONE").await, [record("APP.ONE")]);
    server.server.stop().await;
}

/// A database written by a version before the naming rules: its catalog
/// table `vsam_datasets` is renamed, `COL-CUST` keeps the table `col_cust`
/// it was given then, and `COL.CUST` (whose table that name is today) is
/// refused instead of adopting `COL-CUST`'s records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_versions_catalog_carries_over_and_its_tables_stay_taken() {
    let deployment = Deployment::new("", false);
    std::fs::create_dir_all(deployment.dir.path().join("data")).unwrap();
    {
        let db = rusqlite::Connection::open(deployment.dir.path().join("data/vsam.db")).unwrap();
        db.execute_batch(
            "CREATE TABLE vsam_datasets (dataset VARCHAR(44) PRIMARY KEY, table_name TEXT NOT NULL, layout TEXT);
             INSERT INTO vsam_datasets VALUES ('COL-CUST', 'col_cust', NULL);
             CREATE TABLE col_cust (vsam_key BLOB PRIMARY KEY, vsam_record BLOB NOT NULL) WITHOUT ROWID;
             INSERT INTO col_cust VALUES (x'4b303031', CAST('K001legacy' AS BLOB));",
        )
        .unwrap();
    }
    deployment.write_config_text(
        "[[datasets]]\nname = \"COL-CUST\"\norganization = \"ksds\"\nkey_length = 4\nrecord_size = 60\ncodepage = \"ascii\"\nbackend = \"sqlite\"\n",
    );
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    assert_eq!(records(&conn, "COL-CUST").await, [b"K001legacy".to_vec()]);

    let (r15, code, message) = vsam_code(
        vsam_client::define(&conn, ksds("COL.CUST", 4, 60, "ascii"))
            .await
            .unwrap_err(),
    );
    assert_eq!((r15, code), (8, fdbk::INVALID_OPTIONS.0), "{message}");
    assert!(
        message.contains("table col_cust is the storage of dataset COL-CUST"),
        "{message}"
    );
    // The old catalog's name is free for a dataset now.
    vsam_client::define(&conn, ksds("VSAM.DATASETS", 4, 60, "ascii"))
        .await
        .unwrap();
    write(&conn, "VSAM.DATASETS").await;
    server.stop().await;

    let db = rusqlite::Connection::open(deployment.dir.path().join("data/vsam.db")).unwrap();
    let owner: String = db
        .query_row(
            "SELECT dataset FROM _vsam_catalog WHERE table_name = 'vsam_datasets'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(owner, "VSAM.DATASETS");
    let legacy: String = db
        .query_row(
            "SELECT table_name FROM _vsam_catalog WHERE dataset = 'COL-CUST'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(legacy, "col_cust");
}

/// A reload that grants a backend a directory another server holds is
/// refused as a whole, naming the holder; the server serves on with what it
/// had, and the same reload works once the other server has stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_cannot_take_local_storage_another_server_holds() {
    let first = Deployment::three_backends();
    let first_server = first.start().await;
    let second = Deployment::new("", false);
    let second_server = second.start().await;
    let conn = Connection::connect(&second_server.addr.to_string())
        .await
        .unwrap();
    vsam_client::define(&conn, ksds("STAYS.HERE", 4, 60, "ascii"))
        .await
        .unwrap();
    write(&conn, "STAYS.HERE").await;

    let taken = first.dir.path().join("data/csv");
    second.write_config_text(&format!(
        "[plugins.csv]\npath = \"{CSV_WASM}\"\n[backends.csv]\nplugin = \"csv\"\ndirectory = \"{}\"\n",
        taken.display()
    ));
    let report = second_server.reloader.reload("test").await;
    let error = report.error.expect("the reload is refused");
    assert!(
        error.contains(&format!("backend csv: directory {}", taken.display()))
            && error.contains(&format!(
                "in use by another vsamrd (pid {}, data dir {}",
                std::process::id(),
                first.dir.path().join("data").display()
            )),
        "{error}"
    );
    assert_eq!(records(&conn, "STAYS.HERE").await, [record("STAYS.HERE")]);

    first_server.stop().await;
    let report = second_server.reloader.reload("test").await;
    assert_eq!(report.error, None, "{report:?}");
    vsam_client::define(&conn, spec_on("NOW.CSV", "csv"))
        .await
        .unwrap();
    write(&conn, "NOW.CSV").await;
    second_server.stop().await;
}

/// Storage taken from under the running server: a CSV directory outside
/// the data dir moved away makes its backend refuse every request (R15=12,
/// saying what happened and what to do) while the other backends serve,
/// and `/readyz` fails saying why; the data dir removed then makes every
/// backend refuse, one whose SQLite file is outside it too. Before, vsamrd
/// acknowledged writes into files no longer at their paths, gone at its
/// next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_taken_from_under_the_server_makes_its_backends_refuse() {
    let (data, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [plugins.sql]\npath = \"{SQL_WASM}\"\n[plugins.csv]\npath = \"{CSV_WASM}\"\n\
         [backends.main]\nplugin = \"sql\"\ndatabase = \"sqlite:main.db\"\n\
         [backends.away]\nplugin = \"csv\"\ndirectory = \"{}\"\n\
         [backends.other]\nplugin = \"sql\"\ndatabase = \"sqlite:{}\"\n[routing]\ndefault = \"main\"\n",
        data.path().display(),
        outside.path().join("files").display(),
        outside.path().join("other.db").display()
    );
    let config =
        vsam_host::config::Config::parse(&text, "<test>", std::path::Path::new(".")).unwrap();
    let server = vsam_host::RunningServer::start(&config).await.unwrap();
    let metrics = server.metrics_addr.unwrap().to_string();
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, spec_on("HERE.ONE", "main"))
        .await
        .unwrap();
    vsam_client::define(&conn, spec_on("AWAY.ONE", "away"))
        .await
        .unwrap();
    vsam_client::define(&conn, spec_on("OTHER.ONE", "other"))
        .await
        .unwrap();
    put_key(&conn, "HERE.ONE", 1).await.unwrap();
    put_key(&conn, "AWAY.ONE", 1).await.unwrap();

    std::fs::rename(outside.path().join("files"), outside.path().join("moved")).unwrap();
    refused_within(&conn, "AWAY.ONE", "backend away's storage").await;
    put_key(&conn, "HERE.ONE", 100).await.unwrap();
    put_key(&conn, "OTHER.ONE", 100).await.unwrap();
    let (status, body) = vsam_tests::http_get(&metrics, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("backend away"), "{body}");
    let refusing = refusing(&server, data.path()).await;
    assert!(
        matches!(refusing.as_slice(), [only] if only.starts_with("backend away: backend away's storage")),
        "{refusing:?}"
    );

    std::fs::remove_dir_all(data.path()).unwrap();
    refused_within(&conn, "OTHER.ONE", "the data dir").await;
    refused_within(&conn, "HERE.ONE", "").await;
    drop(conn);
    server.stop().await;
}

/// An admin client of `server`, whose data dir (with the token) is
/// `data_dir`.
async fn admin(server: &vsam_host::RunningServer, data_dir: &std::path::Path) -> AdminClient {
    let token = read_token(&data_dir.join("admin.token")).unwrap();
    let address = server.admin_addr.expect("admin enabled").to_string();
    AdminClient::connect(&address, token).await.unwrap()
}

/// What `vsamr admin status` says the server refuses.
async fn refusing(server: &vsam_host::RunningServer, data_dir: &std::path::Path) -> Vec<String> {
    match admin(server, data_dir)
        .await
        .request(AdminCommand::Status)
        .await
        .unwrap()
    {
        AdminAnswer::Status(status) => status.refusing,
        other => panic!("{other:?}"),
    }
}

/// Writes record `key` (its first four bytes) to `name`, opened for it.
async fn put_key(conn: &Connection, name: &str, key: u32) -> Result<(), ClientError> {
    let ds = Dataset::open(conn, name, OpenIntent::Update, 1).await?;
    let written = ds
        .put(
            0,
            RplOptions::direct(),
            0,
            format!("{key:04}{name}").into_bytes(),
        )
        .await;
    let _ = ds.close().await;
    written.map(drop)
}

/// Writes to `name` until the server, which looks at its storage every
/// second, refuses with R15=12 and a reason naming `what`: within 10 s.
async fn refused_within(conn: &Connection, name: &str, what: &str) {
    let started = std::time::Instant::now();
    for key in 2.. {
        match put_key(conn, name, key).await {
            Ok(()) => {}
            Err(error) => {
                let (r15, _, message) = vsam_code(error);
                assert_eq!(r15, 12, "{message}");
                assert!(
                    message.contains(what)
                        && message.contains("while vsamrd ran")
                        && message.contains("restart vsamrd"),
                    "{message}"
                );
                return;
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{name}: still written to"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_log_taken_from_under_the_server_refuses_the_writes_it_would_record() {
    let (data, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [plugins.sql]\npath = \"{SQL_WASM}\"\n\
         [backends.main]\nplugin = \"sql\"\ndatabase = \"sqlite:main.db\"\n\
         [backends.copy]\nplugin = \"sql\"\ndatabase = \"sqlite:copy.db\"\n[routing]\ndefault = \"main\"\n\
         [changes]\ndirectory = \"{}\"\n[[mirrors]]\ndatasets = \"MIR.**\"\nbackends = [\"copy\"]\n",
        data.path().display(),
        outside.path().join("changes").display(),
    );
    let config =
        vsam_host::config::Config::parse(&text, "<test>", std::path::Path::new(".")).unwrap();
    let server = vsam_host::RunningServer::start(&config).await.unwrap();
    let metrics = server.metrics_addr.unwrap().to_string();
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    for name in ["MIR.ONE", "PLAIN.ONE"] {
        vsam_client::define(&conn, spec_on(name, "main"))
            .await
            .unwrap();
        put_key(&conn, name, 1).await.unwrap();
    }

    std::fs::rename(outside.path().join("changes"), outside.path().join("moved")).unwrap();
    refused_within(&conn, "MIR.ONE", "the change log's directory").await;
    // What the log does not follow is written, and the followed records read.
    put_key(&conn, "PLAIN.ONE", 100).await.unwrap();
    let ds = Dataset::open(&conn, "MIR.ONE", OpenIntent::Input, 1)
        .await
        .unwrap();
    let record = ds.read(b"0001").await.unwrap();
    assert_eq!(record.data, b"0001MIR.ONE");
    ds.close().await.unwrap();
    let (status, body) = vsam_tests::http_get(&metrics, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("change log"), "{body}");
    let refusing = refusing(&server, data.path()).await;
    assert!(
        matches!(refusing.as_slice(), [only] if only.starts_with("the change log's directory")),
        "{refusing:?}"
    );
    // The mirror stops, saying why (not a resync, which cannot help).
    let mirrors = match admin(&server, data.path())
        .await
        .request(AdminCommand::MirrorStatus)
        .await
        .unwrap()
    {
        AdminAnswer::Mirrors(report) => report.mirrors,
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(mirrors.as_slice(), [copy] if copy.phase.starts_with("stopped: the change log's directory")),
        "{mirrors:?}"
    );
    drop(conn);
    server.stop().await;
}
