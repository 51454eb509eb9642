//! GETs answered together: the SQL plugin's `get-many` on a real SQLite
//! file gives, key for key, what `get` gives (raw and mapped tables, keys
//! that are missing or asked twice, a row a SQL writer added without a
//! key), and a backend's worker turns concurrent GETs into such lookups.

use std::time::Duration;
use vsam_host::config::BackendSettings;
use vsam_host::runtime::call::{Call, RecordStore, Reply};
use vsam_host::runtime::sql::{DatabaseUrl, SqlGrant};
use vsam_host::runtime::{BackendHandle, PluginRuntime, WasmStore, builtin};
use vsam_plugin_sdk::{Dataset, Organization};

const LAYOUT: &str =
    "       01  R.\n           05  R-KEY  PIC X(4).\n           05  R-NAME PIC X(6).\n";

fn dataset(name: &str) -> Dataset {
    Dataset {
        name: name.into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: 4,
        max_record_length: 10,
        min_record_length: 1,
        codepage: "ascii".into(),
    }
}

fn sql_store(dir: &std::path::Path, tokio: &tokio::runtime::Handle) -> WasmStore {
    let runtime = PluginRuntime::new(None, tokio.clone()).unwrap();
    let plugin = runtime.load("sql", builtin::SQL).unwrap();
    let database = DatabaseUrl::parse("sqlite:lookups.db", dir).unwrap();
    let grant = SqlGrant::new(&database, Duration::from_secs(5), 1 << 30, tokio).unwrap();
    let settings = BackendSettings {
        name: "b".into(),
        plugin: "sql".into(),
        directory: None,
        database: Some(database),
        bucket: None,
        log: false,
        params: Vec::new(),
        call_timeout_ms: 5000,
        memory_limit: 64 << 20,
        readers: 0,
        storage_faults: None,
    };
    let grants = vsam_host::runtime::Grants {
        database: Some(grant),
        bucket: None,
    };
    WasmStore::new(plugin, settings, grants)
}

fn record(key: &str, name: &str) -> Vec<u8> {
    format!("{key}{name:<6}").into_bytes()
}

#[test]
fn get_many_answers_key_for_key_what_get_answers() {
    let dir = tempfile::tempdir().unwrap();
    // The plugin runs on a plain thread, as in vsamrd.
    let dir_path = dir.path().to_path_buf();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let handle = tokio.handle().clone();
    std::thread::spawn(move || {
        let mut store = sql_store(&dir_path, &handle);
        assert!(
            store.exports_lookup().unwrap(),
            "the SQL plugin exports get-many"
        );
        for (name, layout) in [("APP.RAW", None), ("APP.MAPPED", Some(LAYOUT))] {
            let ds = dataset(name);
            store
                .call(Call::Create(ds.clone(), layout.map(str::to_string)))
                .unwrap();
            for (key, who) in [("K001", "ADA"), ("K002", "BOB"), ("K004", "DEB")] {
                store
                    .call(Call::Insert(ds.clone(), key.into(), record(key, who)))
                    .unwrap();
            }
            store.call(Call::Sync).unwrap();
        }
        // A SQL writer adds a row without vsam_key to the mapped table.
        let db = rusqlite::Connection::open(dir_path.join("lookups.db")).unwrap();
        db.execute(
            "INSERT INTO app_mapped (r_key, r_name) VALUES ('K003', 'CAL')",
            [],
        )
        .unwrap();
        for name in ["APP.RAW", "APP.MAPPED"] {
            let ds = dataset(name);
            let keys: Vec<Vec<u8>> = ["K004", "K003", "K009", "K001", "K004"]
                .iter()
                .map(|k| k.as_bytes().to_vec())
                .collect();
            let many = match store.call(Call::GetMany(ds.clone(), keys.clone())) {
                Ok(Reply::Records(records)) => records,
                other => panic!("{name}: {other:?}"),
            };
            let one_by_one: Vec<Option<Vec<u8>>> = keys
                .iter()
                .map(|key| match store.call(Call::Get(ds.clone(), key.clone())) {
                    Ok(Reply::Record(record)) => record,
                    other => panic!("{name}: {other:?}"),
                })
                .collect();
            assert_eq!(many, one_by_one, "{name}");
            let expected_k003 = (name == "APP.MAPPED").then(|| record("K003", "CAL"));
            assert_eq!(
                many,
                [
                    Some(record("K004", "DEB")),
                    expected_k003,
                    None,
                    Some(record("K001", "ADA")),
                    Some(record("K004", "DEB")),
                ],
                "{name}"
            );
        }
    })
    .join()
    .unwrap();
}

#[test]
fn concurrent_gets_through_the_worker_each_get_their_own_record() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = sql_store(dir.path(), runtime.handle());
    // The backend's task runs on the runtime.
    let _runtime = runtime.enter();
    let backend = BackendHandle::spawn(
        "b",
        vsam_host::runtime::VersionInfo::native("sql"),
        Box::new(store),
        Vec::new(),
    )
    .unwrap();
    runtime.block_on(async {
        let ds = dataset("APP.MANY");
        backend.call(Call::Create(ds.clone(), None)).await.unwrap();
        let inserts = (0..200)
            .map(|n| {
                let key = format!("{n:04}");
                Call::Insert(ds.clone(), key.clone().into_bytes(), record(&key, "X"))
            })
            .collect();
        for result in backend.call_chain(inserts).await {
            result.unwrap();
        }
        let mut tasks = Vec::new();
        for task in 0..16u32 {
            let backend = backend.clone();
            let ds = ds.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100u32 {
                    let n = (task * 37 + i * 11) % 250;
                    let key = format!("{n:04}");
                    let got = backend
                        .call(Call::Get(ds.clone(), key.clone().into_bytes()))
                        .await
                        .unwrap();
                    let expected = (n < 200).then(|| record(&key, "X"));
                    assert_eq!(got, Reply::Record(expected), "key {key}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}
