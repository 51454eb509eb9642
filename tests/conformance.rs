//! The conformance suite passes through vsamrd on every shipped plugin,
//! loaded from their component files like any third-party plugin: memory,
//! CSV, and SQL on SQLite in raw and in mapped mode, also with reader
//! instances (PostgreSQL: see `postgres.rs`).

use std::collections::BTreeMap;
use std::path::Path;
use vsam_tests::{CSV_WASM, MEMORY_WASM, SQL_WASM, assert_conforms};

async fn passes(wasm: &str, database: Option<&str>, mapped: bool) {
    passes_with_readers(wasm, database, mapped, 0).await;
}

async fn passes_with_readers(wasm: &str, database: Option<&str>, mapped: bool, readers: usize) {
    let server = vsam_conformance::start_server_for_plugin(
        Path::new(wasm),
        &BTreeMap::new(),
        &vsam_conformance::Grants {
            database: database.map(str::to_string),
            readers,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_conforms(&server.address, "CONF", mapped, wasm).await;
    server.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_plugin_conforms() {
    passes(MEMORY_WASM, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_plugin_conforms() {
    passes(CSV_WASM, None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_sqlite_raw() {
    passes(SQL_WASM, Some("sqlite:vsam.db"), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_sqlite_mapped() {
    passes(SQL_WASM, Some("sqlite:vsam.db"), true).await;
}

/// Three reader instances serve GETs and browses beside the writer: the
/// suite (which deletes and redefines datasets) sees no stale instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_plugin_conforms_on_sqlite_with_readers() {
    passes_with_readers(SQL_WASM, Some("sqlite:vsam.db"), true, 3).await;
}

/// The `units.whole` promise, checked on each plugin below vsamrd: SQL and
/// CSV keep it, the in-memory example does not claim it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_keep_their_units_whole_promise() {
    use vsam_conformance::{Grants, WholeUnits, check_whole_units};
    let sqlite = Grants {
        database: Some("sqlite:units.db".into()),
        ..Default::default()
    };
    for (wasm, grants, expected) in [
        (SQL_WASM, sqlite, WholeUnits::Kept),
        (CSV_WASM, Grants::default(), WholeUnits::Kept),
        (MEMORY_WASM, Grants::default(), WholeUnits::NotClaimed),
    ] {
        let found = check_whole_units(Path::new(wasm), &BTreeMap::new(), &grants)
            .await
            .unwrap_or_else(|failure| panic!("{wasm}: {failure}"));
        assert_eq!(found, expected, "{wasm}");
    }
}
