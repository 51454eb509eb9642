//! The promise of `mirror.apply`, checked on the plugin itself, below
//! vsamrd: each record put is stored whatever its key held (replaced or
//! inserted), each key erased is gone whether it was stored or not, and
//! the same batch applied again (what vsamrd sends after a stop) ends where
//! the first ended. A plugin built without the interface is checked too:
//! vsamrd then applies the batch with `replace`, `insert` and `delete`.

use crate::check::{Failure, Step, expect_eq, fail};
use crate::instances::with_instances;
use crate::subject::Subject;
use vsam_host::runtime::call::{Call, CallResult, RecordStore, Reply};
use vsam_plugin_sdk::{Dataset, Direction, Entry, Start};

/// Checks `mirror.apply` on fresh storage of `subject`.
pub async fn check_mirror_apply(subject: &Subject) -> Result<(), Failure> {
    with_instances(subject, |instances| run(instances.fresh()?)).await
}

fn dataset() -> Dataset {
    Dataset::ksds("CONF.MIRROR.APPLY", 4, 40)
}

fn ok(what: &str, result: CallResult) -> Step<Reply> {
    result.map_err(|e| Failure(format!("{what}: {e}")))
}

fn write(store: &mut dyn RecordStore, call: Call) -> Step {
    ok(call.name(), store.call(call)).map(drop)
}

/// Every record of the dataset, in key order.
fn records(store: &mut dyn RecordStore) -> Step<Vec<(Vec<u8>, Vec<u8>)>> {
    let scan = Call::Scan(dataset(), Start::Edge, Direction::Forward, 100);
    match ok("scan", store.call(scan))? {
        Reply::Entries(entries) => Ok(entries.into_iter().map(|e| (e.key, e.value)).collect()),
        other => fail(format!("scan answered {other:?}")),
    }
}

fn run(mut store: Box<dyn RecordStore>) -> Step {
    let store = store.as_mut();
    let ds = dataset();
    let record = |key: &[u8], tag: &str| [key, tag.as_bytes()].concat();
    let (k1, k2, k3, k4, k5) = (b"K001", b"K002", b"K003", b"K004", b"K005");
    let (k6, k7) = (b"K006", b"K007");
    write(store, Call::Create(ds.clone(), None))?;
    for key in [k1, k2, k3, k6] {
        write(
            store,
            Call::Insert(ds.clone(), key.to_vec(), record(key, "-OLD")),
        )?;
    }
    write(store, Call::Sync)?;
    let entry = |key: &[u8], tag: &str| Entry {
        key: key.to_vec(),
        value: record(key, tag),
    };
    // K1 replaced, K4 and K7 inserted; K2 and K6 erased, K5 (never
    // stored) erased. Three of each: a store that writes many rows per
    // statement in slots of a power of two leaves one empty.
    let batch = Call::Apply(
        ds.clone(),
        vec![entry(k1, "-NEW"), entry(k4, "-NEW"), entry(k7, "-NEW")],
        vec![k2.to_vec(), k5.to_vec(), k6.to_vec()],
    );
    let mut expected = vec![
        (k1.to_vec(), record(k1, "-NEW")),
        (k3.to_vec(), record(k3, "-OLD")),
        (k4.to_vec(), record(k4, "-NEW")),
        (k7.to_vec(), record(k7, "-NEW")),
    ];
    write(store, batch.clone())?;
    write(store, Call::Sync)?;
    expect_eq(
        "records after a batch that replaces, inserts and erases (present and absent)",
        records(store)?,
        expected.clone(),
    )?;
    write(store, batch)?;
    write(store, Call::Sync)?;
    expect_eq(
        "records after the same batch applied again",
        records(store)?,
        expected.clone(),
    )?;
    // A larger batch: 300 records (more than one statement's worth in a
    // store that writes 256 rows at a time) and 5 erases.
    let many: Vec<Vec<u8>> = (100..400)
        .map(|n| format!("M{n:03}").into_bytes())
        .collect();
    let batch = Call::Apply(
        ds.clone(),
        many.iter().map(|key| entry(key, "-MANY")).collect(),
        vec![
            k1.to_vec(),
            k3.to_vec(),
            k4.to_vec(),
            k5.to_vec(),
            k7.to_vec(),
        ],
    );
    write(store, batch)?;
    write(store, Call::Sync)?;
    expected = many
        .iter()
        .map(|key| (key.clone(), record(key, "-MANY")))
        .collect();
    let mut all = Vec::new();
    let mut from = Start::Edge;
    loop {
        let scan = Call::Scan(dataset(), from, Direction::Forward, 100);
        let Reply::Entries(entries) = ok("scan", store.call(scan))? else {
            return fail("scan answered something other than entries");
        };
        let Some(last) = entries.last().map(|e| e.key.clone()) else {
            break;
        };
        all.extend(entries.into_iter().map(|e| (e.key, e.value)));
        from = Start::Exclusive(last);
    }
    expect_eq(
        "records after a batch of 300 upserts and 5 erases",
        all,
        expected,
    )?;
    write(store, Call::Destroy(ds))
}
