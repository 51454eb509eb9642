//! Durability: what a store keeps once the instance that wrote it is gone.
//! The tutorial promises that writes are durable after `sync` and that the
//! truth lives in storage; these checks hold a plugin to it. A plugin that
//! keeps records in its instance's memory fails them, which the
//! `volatile` profile expects.

use crate::check::{Failure, Step, data, expect_eq, fail};
use crate::faults;
use crate::instances::{Instances, call, scan_all, with_instances};
use crate::lost_answers;
use crate::server::ServerUnderTest;
use crate::subject::Subject;
use futures::future::BoxFuture;
use vsam_client::{
    Connection, Dataset as OpenDataset, DatasetSpec, OpenIntent, Organization as Org, RplOptions,
};
use vsam_host::runtime::call::{Call, RecordStore, Reply};
use vsam_plugin_sdk::Dataset;
use vsam_protocol::Processing;

/// A check that needs the plugin itself (to replace its instances or
/// restart its server), not only a server's address.
pub struct DurableScenario {
    /// Its short name, for `--only`.
    pub id: &'static str,
    /// What it checks.
    pub name: &'static str,
    /// Runs it: `Some(why)` if it does not apply to the plugin.
    pub run: fn(Subject) -> BoxFuture<'static, Step<Option<String>>>,
}

/// Every durability check, in order.
pub fn durable_scenarios() -> Vec<DurableScenario> {
    vec![
        DurableScenario {
            id: "durable.replaced-instance",
            name: "synced writes are found by the instance that replaces the writer",
            run: |subject| Box::pin(applies(replaced_instance(subject))),
        },
        DurableScenario {
            id: "durable.restart",
            name: "acknowledged writes are read back after vsamrd restarts",
            run: |subject| Box::pin(applies(restart(subject))),
        },
        DurableScenario {
            id: "durable.sync-fails",
            name: "a failed fsync fails the call; synced records stay, writes resume",
            run: |subject| Box::pin(faults::sync_fails(subject)),
        },
        DurableScenario {
            id: "durable.full-disk",
            name: "a full disk answers no-space, stores nothing of the write, reads go on",
            run: |subject| Box::pin(faults::full_disk(subject)),
        },
        DurableScenario {
            id: "durable.torn-write",
            name: "a write cut short by a crash: synced records stay, the cut one is whole or gone",
            run: |subject| Box::pin(faults::torn_write(subject)),
        },
        DurableScenario {
            id: "durable.lost-answer",
            name: "a bucket took a write whose answer was lost: acknowledged records stay, the sync's writes whole or gone",
            run: |subject| Box::pin(lost_answers::lost_answer(subject)),
        },
        DurableScenario {
            id: "durable.store-gone",
            name: "a bucket went away after a write of a sync: acknowledged records stay, the next instance reads the sync's writes whole or gone",
            run: |subject| Box::pin(lost_answers::store_gone(subject)),
        },
    ]
}

/// A check that applies to every plugin.
async fn applies(check: impl Future<Output = Step>) -> Step<Option<String>> {
    check.await.map(|()| None)
}

fn ksds() -> Dataset {
    Dataset::ksds("CONF.DURABLE.KSDS", 4, 40)
}

fn record(key: &[u8], body: &str) -> Vec<u8> {
    [key, body.as_bytes()].concat()
}

async fn replaced_instance(subject: Subject) -> Step {
    with_instances(&subject, check_replaced_instance).await
}

fn check_replaced_instance(instances: &Instances) -> Step {
    let ds = ksds();
    let keys: [&[u8]; 5] = [b"K001", b"K002", b"K003", b"K004", b"K005"];
    let mut writer = instances.fresh()?;
    call(writer.as_mut(), Call::Create(ds.clone(), None))?;
    for key in keys {
        call(
            writer.as_mut(),
            Call::Insert(ds.clone(), key.to_vec(), record(key, "-FIRST")),
        )?;
    }
    call(
        writer.as_mut(),
        Call::Replace(
            ds.clone(),
            keys[1].to_vec(),
            record(keys[1], "-CHANGED-LONGER"),
        ),
    )?;
    call(writer.as_mut(), Call::Delete(ds.clone(), keys[2].to_vec()))?;
    call(writer.as_mut(), Call::Sync)?;
    // The writer goes (a fault, a hot swap, a unit's end) without another
    // call: what it synced must be in storage for the next instance.
    drop(writer);
    let mut next = instances.fresh()?;
    let call = |store: &mut dyn RecordStore, request: Call| {
        call(store, request).map_err(|failure| {
            Failure(format!(
                "a new instance, after the writer synced and went: {failure}"
            ))
        })
    };
    let expected = vec![
        record(keys[0], "-FIRST"),
        record(keys[1], "-CHANGED-LONGER"),
        record(keys[3], "-FIRST"),
        record(keys[4], "-FIRST"),
    ];
    let mut found = Vec::new();
    for key in keys {
        match call(next.as_mut(), Call::Get(ds.clone(), key.to_vec()))? {
            Reply::Record(Some(record)) => found.push(record),
            Reply::Record(None) => {}
            other => return fail(format!("get answered {other:?}")),
        }
    }
    expect_eq(
        "GETs by a new instance after the writer synced and went (an instance that keeps records in memory loses them)",
        &found,
        &expected,
    )?;
    expect_eq(
        "a scan by the new instance",
        scan_all(next.as_mut(), &ds)?,
        expected,
    )?;
    call(next.as_mut(), Call::Destroy(ds))?;
    Ok(())
}

const KSDS_NAME: &str = "CONF.DURABLE.RESTART";
const ESDS_NAME: &str = "CONF.DURABLE.LOG";

fn spec(name: &str, organization: Org) -> DatasetSpec {
    DatasetSpec {
        name: name.into(),
        organization,
        key_offset: 0,
        key_length: if organization == Org::Ksds { 4 } else { 0 },
        min_record: 0,
        max_record: 60,
        codepage: "cp037".into(),
        backend: crate::server::BACKEND.into(),
        layout: String::new(),
    }
}

async fn restart(subject: Subject) -> Step {
    let server = ServerUnderTest::start(&subject)
        .await
        .map_err(|e| Failure(format!("cannot start vsamrd: {e:#}")))?;
    let written = write_before_restart(&server.address).await?;
    // Datasets stay open across the stop: vsamrd closes them itself.
    let server = server
        .restart()
        .await
        .map_err(|e| Failure(format!("cannot restart vsamrd on the same storage: {e:#}")))?;
    let outcome = read_after_restart(&server.address, &written).await;
    server.server.stop().await;
    outcome
}

/// What the client was told was written: the KSDS's and the ESDS's records
/// in order.
struct Written {
    ksds: Vec<Vec<u8>>,
    esds: Vec<Vec<u8>>,
}

async fn write_before_restart(address: &str) -> Step<Written> {
    let conn = Connection::connect(address).await?;
    vsam_client::define(&conn, spec(KSDS_NAME, Org::Ksds)).await?;
    vsam_client::define(&conn, spec(ESDS_NAME, Org::Esds)).await?;
    let ksds = OpenDataset::open(&conn, KSDS_NAME, OpenIntent::Update, 1).await?;
    let esds = OpenDataset::open(&conn, ESDS_NAME, OpenIntent::Update, 1).await?;
    let mut kept = std::collections::BTreeMap::new();
    for n in 1..=20u32 {
        let key = format!("R{n:03}").into_bytes();
        let rec = record(&key, &format!("-WRITTEN-{n}"));
        ksds.put(0, RplOptions::direct(), 0, rec.clone()).await?;
        kept.insert(key, rec);
    }
    let update = RplOptions::direct().update();
    for n in [3u32, 7] {
        let key = format!("R{n:03}").into_bytes();
        ksds.get(0, update, &key, 0, 0, 1).await?;
        let rec = record(&key, "-UPDATED-BEFORE-THE-RESTART");
        ksds.put(0, update, 0, rec.clone()).await?;
        kept.insert(key, rec);
    }
    for n in [5u32, 20] {
        let key = format!("R{n:03}").into_bytes();
        ksds.get(0, update, &key, 0, 0, 1).await?;
        ksds.erase(0).await?;
        kept.remove(&key);
    }
    let addressed = RplOptions::addressed(Processing::Sequential);
    let mut logged = Vec::new();
    for n in 1..=10u32 {
        let rec = format!("LOG RECORD {n} OF THE RUN").into_bytes();
        esds.put(0, addressed, 0, rec.clone()).await?;
        logged.push(rec);
    }
    Ok(Written {
        ksds: kept.into_values().collect(),
        esds: logged,
    })
}

async fn read_after_restart(address: &str, written: &Written) -> Step {
    let conn = Connection::connect(address).await?;
    for (name, expected, options) in [
        (KSDS_NAME, &written.ksds, RplOptions::sequential()),
        (
            ESDS_NAME,
            &written.esds,
            RplOptions::addressed(Processing::Sequential),
        ),
    ] {
        let ds = match OpenDataset::open(&conn, name, OpenIntent::Input, 1).await {
            Ok(ds) => ds,
            Err(e) => return fail(format!("OPEN {name} after the restart: {e}")),
        };
        let mut found = Vec::new();
        loop {
            match ds.reading(options).records().await {
                Ok(records) => found.extend(data(&records)),
                Err(e) if e.is_end_of_data() => break,
                Err(e) => return fail(format!("browse of {name} after the restart: {e}")),
            }
            if found.len() > 1000 {
                return fail(format!("browse of {name} never reached end of data"));
            }
        }
        expect_eq(
            &format!("{name} browsed after vsamrd restarted (acknowledged writes must survive)"),
            &found,
            expected,
        )?;
    }
    Ok(())
}
