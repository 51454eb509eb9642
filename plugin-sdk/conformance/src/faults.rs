//! Storage faults a plugin over files must survive: a sync that fails, a
//! full disk, a write cut short by a crash. The host injects them into the
//! plugin's granted directory ([`vsam_host::runtime::storage_faults`]);
//! each check arms one, drives the plugin as vsamrd would, and checks what
//! the plugin answered and what a new instance finds. A plugin that keeps
//! nothing in its directory (its records are in a database, a bucket or
//! its memory) meets none of them: the check says so instead of passing.

use crate::check::{Failure, Step, expect_eq, fail};
use crate::instances::{Instances, call, scan_all, with_instances};
use crate::subject::Subject;
use vsam_host::runtime::call::{Call, CallError, CallResult, RecordStore, Reply};
use vsam_plugin_sdk::{Dataset, StoreError};

/// Why a check did not apply, if it did not.
pub(crate) type Applies = Option<String>;

fn ksds() -> Dataset {
    Dataset::ksds("CONF.FAULTS.KSDS", 4, 60)
}

fn key(n: u32) -> Vec<u8> {
    format!("K{n:03}").into_bytes()
}

fn record(n: u32) -> Vec<u8> {
    [
        key(n),
        format!("-RECORD-{n}-OF-THE-FAULT-CHECK").into_bytes(),
    ]
    .concat()
}

fn insert(store: &mut dyn RecordStore, n: u32) -> CallResult {
    store.call(Call::Insert(ksds(), key(n), record(n)))
}

/// Inserts and syncs records `numbers`, each acknowledged on its own.
fn insert_synced(store: &mut dyn RecordStore, numbers: impl IntoIterator<Item = u32>) -> Step {
    for n in numbers {
        call(store, Call::Insert(ksds(), key(n), record(n)))?;
        call(store, Call::Sync)?;
    }
    Ok(())
}

/// A new instance's scan must return exactly the records `kept` (in
/// order); a record in `maybe` may be there too, whole, in its place.
fn expect_records(store: &mut dyn RecordStore, what: &str, kept: &[u32], maybe: &[u32]) -> Step {
    let found = scan_all(store, &ksds())?;
    let mut allowed: Vec<u32> = kept.to_vec();
    for n in maybe {
        if found.contains(&record(*n)) {
            allowed.push(*n);
        }
    }
    allowed.sort_unstable();
    let expected: Vec<String> = allowed
        .iter()
        .map(|n| String::from_utf8_lossy(&record(*n)).into_owned())
        .collect();
    let found: Vec<String> = found
        .iter()
        .map(|rec| String::from_utf8_lossy(rec).into_owned())
        .collect();
    expect_eq(what, found, expected)
}

/// The faults of a component's instances (a check looks that there are
/// before it arms one: [`writes_files`], `lost_answers::writes_objects`).
pub(crate) fn faults(instances: &Instances) -> &vsam_host::runtime::storage_faults::StorageFaults {
    instances
        .faults
        .as_deref()
        .expect("the check found the faults before arming one")
}

/// Whether the plugin stores anything in its directory: it wrote bytes
/// there while it created the dataset and stored a record.
fn writes_files(instances: &Instances) -> Step<Applies> {
    let Some(faults) = &instances.faults else {
        return Ok(Some(
            "storage faults are injected below a WebAssembly plugin: run the kit on the component"
                .into(),
        ));
    };
    let mut store = instances.fresh()?;
    call(store.as_mut(), Call::Create(ksds(), None))?;
    insert_synced(store.as_mut(), [1])?;
    if faults.counts().bytes_written == 0 {
        call(store.as_mut(), Call::Destroy(ksds()))?;
        return Ok(Some(
            "the plugin wrote no file in its directory (its records live in a database, a bucket or its memory)".into(),
        ));
    }
    Ok(None)
}

/// A sync that fails must fail the call: the program is told the write
/// may not be durable. What was synced before stays; writing works again
/// once syncs do.
pub(crate) async fn sync_fails(subject: Subject) -> Step<Applies> {
    with_instances(&subject, |instances| {
        if let Some(reason) = writes_files(instances)? {
            return Ok(Some(reason));
        }
        let mut writer = instances.fresh()?;
        insert_synced(writer.as_mut(), [2])?;
        faults(instances).fail_syncs(true);
        let inserted = insert(writer.as_mut(), 3);
        let synced = writer.call(Call::Sync);
        faults(instances).fail_syncs(false);
        if faults(instances).counts().syncs_failed == 0 {
            return fail(format!(
                "the plugin wrote its files but called no fsync for an insert and a sync (insert answered {inserted:?}, sync {synced:?}): a write is not durable until its file is synced"
            ));
        }
        if inserted.is_ok() && synced.is_ok() {
            return fail(
                "every fsync failed, yet the insert and the sync answered success: the program is told a write is durable that may be lost",
            );
        }
        drop(writer);
        let mut next = instances.fresh()?;
        expect_records(
            next.as_mut(),
            "a new instance after a failed sync: the records synced before it",
            &[1, 2],
            &[3],
        )?;
        insert_synced(next.as_mut(), [4])?;
        drop(next);
        let mut last = instances.fresh()?;
        expect_records(
            last.as_mut(),
            "after syncs work again, a synced insert is kept",
            &[1, 2, 4],
            &[3],
        )?;
        call(last.as_mut(), Call::Destroy(ksds()))?;
        Ok(None)
    })
    .await
}

/// A full disk refuses a write with `no-space` (FDBK X'1C' for the
/// program), stores nothing of it, keeps serving reads, and takes writes
/// again once there is room; the bytes of the refused write that reached
/// the file do not harm a new instance.
pub(crate) async fn full_disk(subject: Subject) -> Step<Applies> {
    with_instances(&subject, |instances| {
        if let Some(reason) = writes_files(instances)? {
            return Ok(Some(reason));
        }
        let mut writer = instances.fresh()?;
        insert_synced(writer.as_mut(), [2, 3])?;
        // Room for a few bytes: the next record reaches the file in part.
        faults(instances).fill_disk_after(Some(9));
        let refused = match insert(writer.as_mut(), 4) {
            Ok(_) => {
                let synced = writer.call(Call::Sync);
                if synced.is_err() {
                    // What vsamrd does after a failed sync: the instance
                    // forgets what it held in memory.
                    writer.reset();
                }
                synced
            }
            Err(error) => Err(error),
        };
        let outcome = check_full(instances, writer.as_mut(), refused);
        faults(instances).fill_disk_after(None);
        outcome?;
        insert_synced(writer.as_mut(), [5])?;
        drop(writer);
        let mut next = instances.fresh()?;
        expect_records(
            next.as_mut(),
            "a new instance after the disk was full and room came back",
            &[1, 2, 3, 5],
            &[],
        )?;
        call(next.as_mut(), Call::Destroy(ksds()))?;
        Ok(None)
    })
    .await
}

fn check_full(instances: &Instances, writer: &mut dyn RecordStore, refused: CallResult) -> Step {
    match refused {
        Err(CallError::Store(StoreError::NoSpace(_))) => {}
        Err(other) => {
            return fail(format!(
                "a write on a full disk answered {other:?}, not no-space: the program would get another VSAM code than no space (FDBK X'1C')"
            ));
        }
        Ok(_) if faults(instances).counts().writes_refused == 0 => {
            return fail(
                "the insert and its sync wrote nothing to the full disk yet answered success: the record is not in storage",
            );
        }
        Ok(_) => {
            return fail(
                "a write on a full disk (the file system answered no space) and its sync answered success",
            );
        }
    }
    expect_records(
        writer,
        "reads while the disk is full: the refused record is not there",
        &[1, 2, 3],
        &[],
    )?;
    if let Reply::Record(Some(_)) = call(writer, Call::Get(ksds(), key(4)))? {
        return fail("the refused record is found by a GET");
    }
    Ok(())
}

/// vsamrd killed in the middle of a write: the bytes of the record reach
/// the file in part. A new instance opens the storage, finds every synced
/// record, the cut record whole or not at all, and takes new writes.
pub(crate) async fn torn_write(subject: Subject) -> Step<Applies> {
    with_instances(&subject, |instances| {
        if let Some(reason) = writes_files(instances)? {
            return Ok(Some(reason));
        }
        let mut writer = instances.fresh()?;
        insert_synced(writer.as_mut(), [2, 3])?;
        faults(instances).tear_next_write();
        let cut = match insert(writer.as_mut(), 4) {
            Ok(_) => writer.call(Call::Sync),
            Err(error) => Err(error),
        };
        drop(writer);
        if faults(instances).counts().writes_torn == 0 {
            return Err(Failure(format!(
                "an insert and a sync wrote nothing to a file (they answered {cut:?}): the record cannot be in storage"
            )));
        }
        if !matches!(cut, Err(CallError::Fault(_))) {
            return fail(format!(
                "the write cut short should have stopped the instance, but the call answered {cut:?}"
            ));
        }
        let mut next = instances.fresh()?;
        expect_records(
            next.as_mut(),
            "a new instance after a write was cut short: the synced records, the cut one whole or not at all",
            &[1, 2, 3],
            &[4],
        )?;
        insert_synced(next.as_mut(), [5])?;
        drop(next);
        let mut last = instances.fresh()?;
        expect_records(
            last.as_mut(),
            "a record written after the torn one is kept",
            &[1, 2, 3, 5],
            &[4],
        )?;
        call(last.as_mut(), Call::Destroy(ksds()))?;
        Ok(None)
    })
    .await
}
