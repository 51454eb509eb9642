//! Live migration: a dataset moves CSV -> SQLite -> object store while
//! clients read, write and browse it and the plugins are swapped twenty
//! times; no request fails and every record a client was told is stored is
//! there exactly once at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::admin::AdminClient;
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, Organization, RplOptions};
use vsam_protocol::admin::{AdminAnswer, AdminCommand, MigrationRow};
use vsam_protocol::{Processing, fdbk};
use vsam_tests::deployment::Deployment;

/// A small deterministic random sequence (xorshift), one per client.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Asks for a migration and waits until it has cut over.
async fn migrate(admin: &mut AdminClient, dataset: &str, to: &str) -> MigrationRow {
    let command = AdminCommand::Migrate {
        dataset: dataset.into(),
        to: to.into(),
    };
    let AdminAnswer::Migration(_) = admin.request(command).await.unwrap() else {
        panic!("not a migration answer");
    };
    migrate_wait(admin, dataset).await
}

/// Waits until `dataset`'s migration has cut over; its row then.
async fn migrate_wait(admin: &mut AdminClient, dataset: &str) -> MigrationRow {
    let started = Instant::now();
    loop {
        let AdminAnswer::Status(status) = admin.request(AdminCommand::Status).await.unwrap() else {
            panic!("not a status");
        };
        let row = status
            .migrations
            .into_iter()
            .rev()
            .find(|m| m.dataset == dataset)
            .expect("the migration is shown");
        match row.phase.as_str() {
            "counting" | "copying" | "verifying" => {}
            "cut-over" => return row,
            _ => panic!("migration of {dataset} ended {row:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finalize(admin: &mut AdminClient, dataset: &str) -> MigrationRow {
    match admin
        .request(AdminCommand::Finalize {
            dataset: dataset.into(),
        })
        .await
        .unwrap()
    {
        AdminAnswer::Migration(row) => row,
        other => panic!("{other:?}"),
    }
}

/// One client's work: inserts, updates, erases, reads and browses of its
/// own keys, checked against what the server acknowledged. Returns the
/// records it should find at the end.
async fn client(
    address: String,
    id: u64,
    stop: Arc<AtomicBool>,
) -> (BTreeMap<Vec<u8>, Vec<u8>>, u64) {
    let conn = Connection::connect(&address).await.unwrap();
    let ds = Dataset::open(&conn, "MG.DATA", OpenIntent::Update, 1)
        .await
        .unwrap();
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (id + 1));
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut next = 0u32;
    let mut requests = 0u64;
    let key_of = |i: u32| format!("C{id}{i:06}").into_bytes();
    while !stop.load(Ordering::Relaxed) {
        let pick = if next == 0 {
            0
        } else {
            dice.roll(u64::from(next)) as u32
        };
        let key = key_of(pick);
        let roll = dice.roll(10);
        match roll {
            0..4 => {
                let key = key_of(next);
                next += 1;
                let mut value = key.clone();
                value.extend(format!("-v0-{}", dice.roll(1000)).as_bytes());
                ds.put(0, RplOptions::direct(), 0, value.clone())
                    .await
                    .unwrap_or_else(|e| panic!("insert: {e}"));
                model.insert(key, value);
            }
            4..6 if model.contains_key(&key) => {
                let held = ds
                    .reading(RplOptions::direct().update())
                    .key(&key)
                    .records()
                    .await
                    .unwrap_or_else(|e| panic!("GET UPD: {e}"));
                assert_eq!(Some(&held[0].data), model.get(&key));
                let mut value = key.clone();
                value.extend(format!("-v{}", requests % 97).as_bytes());
                ds.put(0, RplOptions::direct().update(), 0, value.clone())
                    .await
                    .unwrap_or_else(|e| panic!("update: {e}"));
                model.insert(key, value);
                requests += 1;
            }
            6 if model.contains_key(&key) => {
                ds.reading(RplOptions::direct().update())
                    .key(&key)
                    .records()
                    .await
                    .unwrap_or_else(|e| panic!("GET UPD for erase: {e}"));
                ds.erase(0).await.unwrap_or_else(|e| panic!("erase: {e}"));
                model.remove(&key);
                requests += 1;
            }
            7 | 8 if next > 0 => match ds.reading(RplOptions::direct()).key(&key).records().await {
                Ok(records) => assert_eq!(Some(&records[0].data), model.get(&key)),
                Err(e) => {
                    let vsam = e.vsam().unwrap_or_else(|| panic!("GET: {e}"));
                    assert_eq!(vsam.fdbk(), fdbk::NOT_FOUND, "{e}");
                    assert!(!model.contains_key(&key), "acknowledged record lost: {e}");
                }
            },
            _ if next > 0 => {
                ds.point(0, RplOptions::sequential().greater_or_equal(), &key, 0, 0)
                    .await
                    .unwrap_or_else(|e| panic!("POINT: {e}"));
                let batch = match ds.browse(20).await {
                    Ok(batch) => batch,
                    Err(e) if e.is_end_of_data() => Vec::new(),
                    Err(e) => panic!("browse: {e}"),
                };
                for pair in batch.windows(2) {
                    assert!(pair[0].key < pair[1].key, "browse out of order");
                }
                let mine: Vec<_> = batch
                    .iter()
                    .filter(|r| r.key.starts_with(format!("C{id}").as_bytes()))
                    .map(|r| (r.key.clone(), r.data.clone()))
                    .collect();
                let expected: Vec<_> = model
                    .range(key.clone()..)
                    .take(mine.len())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(mine, expected, "browse from {key:?}");
                ds.endreq(0).await.unwrap();
            }
            _ => continue,
        }
        requests += 1;
    }
    ds.close().await.unwrap();
    (model, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_to_sqlite_to_objects_under_load_with_twenty_swaps() {
    let deployment = Deployment::three_backends();
    let server = deployment.start().await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    let mut spec = vsam_tests::ksds("MG.DATA", 8, 40, "ascii");
    spec.backend = "csv".into();
    vsam_client::define(&conn, spec).await.unwrap();
    // Records of nobody's: there at the start, there at the end.
    let ds = Dataset::open(&conn, "MG.DATA", OpenIntent::Update, 1)
        .await
        .unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..3000u32 {
        let value = format!("P{i:07}-preloaded").into_bytes();
        ds.put(0, RplOptions::direct(), 0, value.clone())
            .await
            .unwrap();
        expected.insert(value[..8].to_vec(), value);
    }
    ds.close().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|id| tokio::spawn(client(address.clone(), id, stop.clone())))
        .collect();
    let swapper = {
        let reloader = server.reloader.clone();
        let deployment_dir = deployment.dir.path().to_path_buf();
        let versions: Vec<(String, Vec<u8>)> = (1..=20u32)
            .map(|n| {
                let plugin = ["sql", "csv", "s3"][n as usize % 3];
                (plugin.to_string(), deployment.version_bytes(plugin, n))
            })
            .collect();
        tokio::spawn(async move {
            let mut applied = 0;
            for (plugin, bytes) in versions {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let tmp = deployment_dir.join(".swap.tmp");
                std::fs::write(&tmp, &bytes).unwrap();
                std::fs::rename(&tmp, deployment_dir.join(format!("{plugin}.wasm"))).unwrap();
                let report = reloader.reload("test").await;
                assert_eq!(report.error, None);
                assert!(
                    report
                        .changes
                        .iter()
                        .any(|c| c.contains(&format!("plugin {plugin}: version"))),
                    "{:?}",
                    report.changes
                );
                applied += 1;
            }
            applied
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut admin = deployment.admin(&server).await;
    let to_sqlite = migrate(&mut admin, "MG.DATA", "sqlite").await;
    assert!(to_sqlite.verified.unwrap() >= 3000, "{to_sqlite:?}");
    eprintln!("to sqlite: {to_sqlite:?}");
    assert_eq!(finalize(&mut admin, "MG.DATA").await.phase, "finalized");
    let to_objects = migrate(&mut admin, "MG.DATA", "objects").await;
    assert_eq!(finalize(&mut admin, "MG.DATA").await.phase, "finalized");
    assert_eq!(swapper.await.unwrap(), 20, "twenty swaps");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    for client in clients {
        let (model, count) = client.await.expect("no client request failed");
        expected.extend(model);
        requests += count;
    }
    assert!(requests > 1000, "{requests} requests");
    assert!(to_objects.verified.unwrap() >= 3000);

    let info = vsam_client::info(&conn, "MG.DATA").await.unwrap();
    assert_eq!(info.backend, "objects");
    let ds = Dataset::open(&conn, "MG.DATA", OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut stored = BTreeMap::new();
    loop {
        match ds.browse(1000).await {
            Ok(batch) => {
                for record in batch {
                    assert!(
                        stored.insert(record.key, record.data).is_none(),
                        "a key twice"
                    );
                }
            }
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "every acknowledged record, exactly");
    // The old copies are gone.
    let csv_files: Vec<_> = std::fs::read_dir(deployment.dir.path().join("data/csv"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !csv_files
            .iter()
            .any(|f| f.to_string_lossy().starts_with("MG.DATA")),
        "{csv_files:?}"
    );
    server.stop().await;
}

/// Appends to an ESDS and fills RRDS and VRRDS slots, remembering what
/// each got.
struct Addressed {
    esds: Dataset,
    rrds: Dataset,
    vrrds: Dataset,
    appended: BTreeMap<u64, Vec<u8>>,
    slots: BTreeMap<u64, Vec<u8>>,
    /// The VRRDS's records, unpadded: each of its own length.
    notes: BTreeMap<u64, Vec<u8>>,
    next: u32,
}

impl Addressed {
    /// One append (records of varying length), and one slot if `slot`.
    async fn write(&mut self, slot: bool) {
        let i = self.next;
        self.next += 1;
        let record = format!("record {i:05} {}", "x".repeat(i as usize % 9)).into_bytes();
        let put = self
            .esds
            .put(
                0,
                RplOptions::addressed(Processing::Sequential),
                0,
                record.clone(),
            )
            .await
            .unwrap();
        self.appended.insert(put.address, record.clone());
        if slot {
            let rrn = u64::from(i) * 3 + 1;
            self.vrrds
                .put(0, RplOptions::direct(), rrn, record.clone())
                .await
                .unwrap();
            self.notes.insert(rrn, record.clone());
            let mut padded = record;
            padded.resize(30, b' ');
            self.rrds
                .put(0, RplOptions::direct(), rrn, padded.clone())
                .await
                .unwrap();
            self.slots.insert(rrn, padded);
        }
    }
}

fn spec(name: &str, organization: Organization, backend: &str) -> DatasetSpec {
    DatasetSpec {
        name: name.into(),
        organization,
        key_offset: 0,
        key_length: 0,
        min_record: if organization == Organization::Rrds {
            30
        } else {
            1
        },
        max_record: 30,
        codepage: "ascii".into(),
        backend: backend.into(),
        layout: String::new(),
    }
}

/// ESDS records keep their RBAs, RRDS records their slots and VRRDS
/// records their slots and lengths, including
/// those appended while the copy runs; a rollback after the cutover returns
/// every record written meanwhile to the old backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esds_and_rrds_keep_their_addresses_and_a_rollback_keeps_later_writes() {
    let deployment = Deployment::three_backends();
    let server = deployment.start().await;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await.unwrap();
    vsam_client::define(&conn, spec("MG.ESDS", Organization::Esds, "csv"))
        .await
        .unwrap();
    vsam_client::define(&conn, spec("MG.RRDS", Organization::Rrds, "csv"))
        .await
        .unwrap();
    vsam_client::define(&conn, spec("MG.VRRDS", Organization::Vrrds, "csv"))
        .await
        .unwrap();
    let mut writer = Addressed {
        esds: Dataset::open(&conn, "MG.ESDS", OpenIntent::Update, 1)
            .await
            .unwrap(),
        rrds: Dataset::open(&conn, "MG.RRDS", OpenIntent::Update, 1)
            .await
            .unwrap(),
        vrrds: Dataset::open(&conn, "MG.VRRDS", OpenIntent::Update, 1)
            .await
            .unwrap(),
        appended: BTreeMap::new(),
        slots: BTreeMap::new(),
        notes: BTreeMap::new(),
        next: 0,
    };
    let mut admin = deployment.admin(&server).await;
    for _ in 0..2000 {
        writer.write(true).await;
    }
    for dataset in ["MG.ESDS", "MG.RRDS", "MG.VRRDS"] {
        let command = AdminCommand::Migrate {
            dataset: dataset.into(),
            to: "objects".into(),
        };
        admin.request(command).await.unwrap();
    }
    // Writes while the copies run, and after.
    for _ in 0..1500 {
        writer.write(true).await;
    }
    for dataset in ["MG.ESDS", "MG.RRDS", "MG.VRRDS"] {
        migrate_wait(&mut admin, dataset).await;
    }
    // After the cutover: more appends, then back.
    for _ in 0..200 {
        writer.write(false).await;
    }
    let Addressed {
        esds,
        rrds,
        vrrds,
        appended,
        slots,
        notes,
        ..
    } = writer;
    let back = admin
        .request(AdminCommand::Rollback {
            dataset: "MG.ESDS".into(),
        })
        .await
        .unwrap();
    let AdminAnswer::Migration(back) = back else {
        panic!("{back:?}");
    };
    assert_eq!(back.phase, "rolled-back");
    assert_eq!(back.verified, Some(appended.len() as u64));
    assert_eq!(
        vsam_client::info(&conn, "MG.ESDS").await.unwrap().backend,
        "csv"
    );
    assert_eq!(finalize(&mut admin, "MG.RRDS").await.phase, "finalized");
    assert_eq!(finalize(&mut admin, "MG.VRRDS").await.phase, "finalized");
    assert_eq!(
        vsam_client::info(&conn, "MG.RRDS").await.unwrap().backend,
        "objects"
    );

    for (rba, record) in &appended {
        let got = esds
            .reading(RplOptions::addressed(Processing::Direct))
            .at(*rba)
            .records()
            .await
            .unwrap_or_else(|e| panic!("RBA {rba}: {e}"));
        assert_eq!(&got[0].data, record, "RBA {rba}");
    }
    for (rrn, slot) in &slots {
        let got = rrds
            .reading(RplOptions::direct())
            .at(*rrn)
            .records()
            .await
            .unwrap_or_else(|e| panic!("RRN {rrn}: {e}"));
        assert_eq!(&got[0].data, slot, "RRN {rrn}");
    }
    for (rrn, note) in &notes {
        let got = vrrds
            .reading(RplOptions::direct())
            .at(*rrn)
            .records()
            .await
            .unwrap_or_else(|e| panic!("VRRDS RRN {rrn}: {e}"));
        assert_eq!(
            &got[0].data, note,
            "VRRDS RRN {rrn}: the length it was written with"
        );
    }
    // New appends go on after the last RBA, on the old backend again.
    let last = appended
        .last_key_value()
        .map(|(rba, r)| rba + r.len() as u64);
    let next = esds
        .put(
            0,
            RplOptions::addressed(Processing::Sequential),
            0,
            b"after".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(Some(next.address), last);
    server.stop().await;
}

/// A copy the new backend refuses rolls back by itself; a rollback before
/// the cutover stops the copy; requests that make no sense are refused
/// with the reason. The dataset stays whole on its backend throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_cancelled_copies_leave_the_dataset_whole() {
    let deployment = Deployment::new("", false);
    deployment.write_config_text(&format!(
        "[plugins.faulty]\npath = \"{}\"\n[backends.faulty]\nplugin = \"faulty\"\n",
        vsam_tests::FAULTY_WASM
    ));
    let server = deployment.start().await;
    let conn = Connection::connect(&server.addr.to_string()).await.unwrap();
    vsam_client::define(&conn, vsam_tests::ksds("MG.FAIL", 8, 40, "ascii"))
        .await
        .unwrap();
    let ds = Dataset::open(&conn, "MG.FAIL", OpenIntent::Update, 1)
        .await
        .unwrap();
    for i in 0..2000u32 {
        ds.put(
            0,
            RplOptions::direct(),
            0,
            format!("K{i:07}-ok").into_bytes(),
        )
        .await
        .unwrap();
    }
    // The faulty plugin traps on this key: the copy cannot store it.
    ds.put(0, RplOptions::direct(), 0, b"TRAP0001-poison".to_vec())
        .await
        .unwrap();
    let mut admin = deployment.admin(&server).await;
    admin
        .request(AdminCommand::Migrate {
            dataset: "MG.FAIL".into(),
            to: "faulty".into(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    let failed = loop {
        // Writes go on while it runs.
        ds.put(
            0,
            RplOptions::direct(),
            0,
            format!("W{:07}-during", started.elapsed().as_micros() % 10_000_000).into_bytes(),
        )
        .await
        .ok();
        let AdminAnswer::Status(status) = admin.request(AdminCommand::Status).await.unwrap() else {
            panic!("not a status");
        };
        let row = status.migrations.into_iter().next_back().expect("shown");
        if row.phase == "failed" {
            break row;
        }
        assert_ne!(row.phase, "cut-over", "{row:?}");
        assert!(started.elapsed() < Duration::from_secs(60), "{row:?}");
    };
    let message = failed.message.unwrap();
    assert!(message.contains("backend faulty"), "{message}");
    assert!(message.contains("trapped"), "{message}");
    assert_eq!(
        vsam_client::info(&conn, "MG.FAIL").await.unwrap().backend,
        "sqlite"
    );
    let got = ds.read(b"K0001999").await.unwrap();
    assert_eq!(got.data, b"K0001999-ok");

    // Cancelled by a rollback before it cuts over.
    let AdminAnswer::Migration(_) = admin
        .request(AdminCommand::Migrate {
            dataset: "MG.FAIL".into(),
            to: "faulty".into(),
        })
        .await
        .unwrap()
    else {
        panic!("not a migration");
    };
    let AdminAnswer::Migration(back) = admin
        .request(AdminCommand::Rollback {
            dataset: "MG.FAIL".into(),
        })
        .await
        .unwrap()
    else {
        panic!("not a migration");
    };
    assert!(
        matches!(back.phase.as_str(), "rolled-back" | "failed"),
        "{back:?}"
    );
    assert_eq!(
        vsam_client::info(&conn, "MG.FAIL").await.unwrap().backend,
        "sqlite"
    );

    for (command, reason) in [
        (
            AdminCommand::Migrate {
                dataset: "MG.FAIL".into(),
                to: "sqlite".into(),
            },
            "already on backend sqlite",
        ),
        (
            AdminCommand::Migrate {
                dataset: "MG.FAIL".into(),
                to: "nowhere".into(),
            },
            "there is no backend nowhere; configured: faulty, sqlite",
        ),
        (
            AdminCommand::Migrate {
                dataset: "MG.NONE".into(),
                to: "faulty".into(),
            },
            "MG.NONE is not in the catalog",
        ),
        (
            AdminCommand::Finalize {
                dataset: "MG.FAIL".into(),
            },
            "MG.FAIL is not being migrated",
        ),
    ] {
        let error = admin.request(command).await.unwrap_err().to_string();
        assert!(error.contains(reason), "{error}");
    }
    let reader = Dataset::open(&conn, "MG.FAIL", OpenIntent::Input, 1)
        .await
        .unwrap();
    let mut count = 0;
    loop {
        match reader.browse(1000).await {
            Ok(batch) => count += batch.len(),
            Err(e) if e.is_end_of_data() => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(count >= 2001, "{count}");
    server.stop().await;
}
