//! The promise of `units.whole`, checked on the plugin itself, below
//! vsamrd: a plugin that says it keeps units whole must lose every write
//! made since its last `sync` when its instance is dropped (how vsamrd
//! rolls a unit back) and when a new instance opens the storage after the
//! old one went without a `sync` (what a crash of vsamrd leaves), and keep
//! every write a `sync` made durable; and `insert-many` must refuse a
//! stored key.

use crate::check::{Failure, Step, expect_eq, fail};
use crate::instances::with_instances;
use crate::subject::Subject;
use vsam_host::runtime::call::{Call, CallError, CallResult, RecordStore, Reply};
use vsam_plugin_sdk::{Dataset, Entry, StoreError};

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WholeUnits {
    /// The plugin says it keeps units whole, and it does.
    Kept,
    /// The plugin does not say so (vsamrd opens its datasets in `sync`
    /// durability only): nothing to check.
    NotClaimed,
}

/// Checks the `units.whole` promise of `subject` on fresh storage.
pub async fn check_whole_units(subject: &Subject) -> Result<WholeUnits, Failure> {
    with_instances(subject, |instances| run(|| instances.fresh())).await
}

fn dataset() -> Dataset {
    Dataset::ksds("CONF.UNITS.WHOLE", 4, 40)
}

fn ok(what: &str, result: CallResult) -> Step<Reply> {
    result.map_err(|e| Failure(format!("{what}: {e}")))
}

fn get(store: &mut dyn RecordStore, key: &[u8]) -> Step<Option<Vec<u8>>> {
    match ok("get", store.call(Call::Get(dataset(), key.to_vec())))? {
        Reply::Record(record) => Ok(record),
        other => fail(format!("get answered {other:?}")),
    }
}

fn write(store: &mut dyn RecordStore, call: Call) -> Step {
    ok(call.name(), store.call(call)).map(drop)
}

fn run(fresh: impl Fn() -> Step<Box<dyn RecordStore>>) -> Step<WholeUnits> {
    let mut store = fresh()?;
    match ok("units.whole", store.call(Call::WholeUnits))? {
        Reply::Whole(true) => {}
        Reply::Whole(false) => return Ok(WholeUnits::NotClaimed),
        other => return fail(format!("units.whole answered {other:?}")),
    }
    let ds = dataset();
    write(store.as_mut(), Call::Create(ds.clone(), None))?;
    let (k1, k2, k3, k4) = (b"K001", b"K002", b"K003", b"K004");
    let record = |key: &[u8], tag: &str| [key, tag.as_bytes()].concat();
    write(
        store.as_mut(),
        Call::Insert(ds.clone(), k1.to_vec(), record(k1, "-ONE")),
    )?;
    write(
        store.as_mut(),
        Call::Insert(ds.clone(), k2.to_vec(), record(k2, "-TWO")),
    )?;
    write(store.as_mut(), Call::Sync)?;
    let committed = |store: &mut dyn RecordStore, what: &str| -> Step {
        expect_eq(
            what,
            (
                get(store, k1)?,
                get(store, k2)?,
                get(store, k3)?,
                get(store, k4)?,
            ),
            (
                Some(record(k1, "-ONE")),
                Some(record(k2, "-TWO")),
                None,
                None,
            ),
        )
    };
    // A unit rolled back: its instance dropped before the sync.
    write(
        store.as_mut(),
        Call::Insert(ds.clone(), k3.to_vec(), record(k3, "-NEW")),
    )?;
    write(
        store.as_mut(),
        Call::Replace(ds.clone(), k1.to_vec(), record(k1, "-CHANGED")),
    )?;
    write(store.as_mut(), Call::Delete(ds.clone(), k2.to_vec()))?;
    store.reset();
    committed(
        store.as_mut(),
        "writes of an instance dropped before its sync (a unit rolled back)",
    )?;
    // A crash: the instance gone without a sync, a new one on the storage.
    write(
        store.as_mut(),
        Call::Insert(ds.clone(), k4.to_vec(), record(k4, "-NEW")),
    )?;
    write(store.as_mut(), Call::Delete(ds.clone(), k1.to_vec()))?;
    drop(store);
    let mut store = fresh()?;
    committed(
        store.as_mut(),
        "writes not synced, seen by a new instance (a crash before the commit)",
    )?;
    // insert-many refuses a stored key, and the unit goes with the instance.
    let entry = |key: &[u8], tag: &str| Entry {
        key: key.to_vec(),
        value: record(key, tag),
    };
    let duplicate = store.call(Call::InsertMany(
        ds.clone(),
        vec![entry(k4, "-MANY"), entry(k1, "-AGAIN")],
    ));
    if !matches!(duplicate, Err(CallError::Store(StoreError::DuplicateKey))) {
        return fail(format!(
            "insert-many of a stored key answered {duplicate:?}, not duplicate-key"
        ));
    }
    store.reset();
    committed(
        store.as_mut(),
        "an insert-many refused, its instance dropped",
    )?;
    // And what a sync commits stays, for a new instance too.
    write(
        store.as_mut(),
        Call::Insert(ds.clone(), k3.to_vec(), record(k3, "-KEPT")),
    )?;
    write(
        store.as_mut(),
        Call::InsertMany(ds.clone(), vec![entry(k4, "-MANY")]),
    )?;
    write(store.as_mut(), Call::Sync)?;
    drop(store);
    let mut store = fresh()?;
    expect_eq(
        "synced writes (an insert, an insert-many), seen by a new instance",
        (get(store.as_mut(), k3)?, get(store.as_mut(), k4)?),
        (Some(record(k3, "-KEPT")), Some(record(k4, "-MANY"))),
    )?;
    write(store.as_mut(), Call::Destroy(ds))?;
    Ok(WholeUnits::Kept)
}
