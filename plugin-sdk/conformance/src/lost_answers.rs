//! A bucket's faults a plugin over objects must survive: the store takes a
//! write, then the connection breaks before its answer; or the store goes
//! away right after it, so that whatever the plugin does about the failed
//! write (put back what it wrote) fails too, until the store is back. The
//! plugin sees a failed write that was made, in the middle of a sync that
//! writes several objects; whatever it does about it, no record a sync
//! acknowledged before may be lost, and each write of the failed sync must
//! be there whole or not at all (all of them or none, for a plugin that
//! keeps units whole) from the first read of the next instance on. The
//! host makes the faults below the plugin, in its `objects` functions
//! ([`vsam_host::runtime::storage_faults`]); the checks move them across
//! every write of such a sync in turn.

use crate::check::{Step, fail};
use crate::faults::{Applies, faults};
use crate::instances::{Instances, call, scan_all, with_instances};
use crate::subject::Subject;
use std::collections::{BTreeMap, BTreeSet};
use vsam_host::runtime::call::{Call, RecordStore, Reply};
use vsam_host::runtime::storage_faults::StorageFaults;
use vsam_plugin_sdk::Dataset;

/// How the bucket fails at the chosen write of a sync.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The write is made, its answer lost; the store answers on.
    LostAnswer,
    /// The write is made, its answer lost, and the store is gone (reads
    /// too) until the sync has failed and its instance is dropped.
    StoreGone,
}

impl Fault {
    fn arm(self, faults: &StorageFaults, n: u64) {
        match self {
            Fault::LostAnswer => faults.lose_answer_of_object_write(n),
            Fault::StoreGone => faults.lose_store_after_object_write(n),
        }
    }

    fn disarm(self, faults: &StorageFaults) {
        self.arm(faults, 0);
    }

    fn describe(self, n: u64, positions: u64) -> String {
        match self {
            Fault::LostAnswer => {
                format!("the answer of object write {n} of {positions} of a sync lost")
            }
            Fault::StoreGone => format!(
                "the store gone after object write {n} of {positions} of a sync (its answer lost), back once the sync failed"
            ),
        }
    }
}

/// Records stored before the faults: 400 of 100 bytes (40 KB), more than
/// one object holds in the object store plugin's default layout (32 KB),
/// several to an object in a small one: a sync splits objects full of
/// acknowledged records.
const STORED: u32 = 400;

/// The most writes of one sync the fault is moved across.
const MOST_POSITIONS: u64 = 40;

fn ksds() -> Dataset {
    Dataset::ksds("CONF.FAULTS.OBJECTS", 4, 100)
}

fn key(n: u32) -> Vec<u8> {
    format!("K{n:03}").into_bytes()
}

/// Record `n` in version `version`, 100 bytes.
fn record(n: u32, version: u32) -> Vec<u8> {
    let mut record = format!("K{n:03}-VERSION-{version}-").into_bytes();
    record.resize(100, b'.');
    record
}

/// The records a store holds, by key.
type Records = BTreeMap<Vec<u8>, Vec<u8>>;

/// One group of writes, as vsamrd sends it before a sync: records
/// inserted and replaced all over the key space, so that the sync writes
/// several objects (and splits some).
fn group(round: u32, stored: &Records) -> Vec<(Vec<u8>, Vec<u8>)> {
    let version = round + 1;
    let mut writes = Vec::new();
    for i in 0..12 {
        // Twelve places across the keys (the stored ones are even); at
        // each a new key between the stored ones (odd, a little further
        // each round) and a stored record replaced beside it.
        let place = 2 * (i * STORED / 12) + 2 * round;
        let (new, old) = ((place + 1) % (2 * STORED), place % (2 * STORED));
        if !stored.contains_key(&key(new)) {
            writes.push((key(new), record(new, version)));
        }
        if stored.contains_key(&key(old)) {
            writes.push((key(old), record(old, version)));
        }
    }
    writes
}

/// Runs `writes` (an insert for a new key, a replace for a stored one)
/// and the sync: whether every write and the sync answered success.
fn run_group(store: &mut dyn RecordStore, stored: &Records, writes: &[(Vec<u8>, Vec<u8>)]) -> bool {
    let mut ok = true;
    for (key, value) in writes {
        let write = match stored.contains_key(key) {
            true => Call::Replace(ksds(), key.clone(), value.clone()),
            false => Call::Insert(ksds(), key.clone(), value.clone()),
        };
        if store.call(write).is_err() {
            ok = false;
            break;
        }
    }
    // A group that tried to write ends with a sync, as in vsamrd.
    store.call(Call::Sync).is_ok() && ok
}

/// What a new instance finds.
fn found(instances: &Instances) -> Step<Records> {
    let mut store = instances.fresh()?;
    let records = scan_all(store.as_mut(), &ksds())?;
    Ok(records
        .into_iter()
        .map(|record| (record.get(..4).unwrap_or(&record).to_vec(), record))
        .collect())
}

/// Whether the plugin keeps its records in objects: it wrote one while it
/// created the dataset and stored a record.
fn writes_objects(instances: &Instances) -> Step<Applies> {
    let Some(faults) = &instances.faults else {
        return Ok(Some(
            "bucket faults are injected below a WebAssembly plugin: run the kit on the component"
                .into(),
        ));
    };
    let mut store = instances.fresh()?;
    call(store.as_mut(), Call::Create(ksds(), None))?;
    call(store.as_mut(), Call::Insert(ksds(), key(0), record(0, 0)))?;
    call(store.as_mut(), Call::Sync)?;
    if faults.counts().object_writes == 0 {
        call(store.as_mut(), Call::Destroy(ksds()))?;
        return Ok(Some(
            "the plugin wrote no object in a bucket (its records live in files, a database or its memory)".into(),
        ));
    }
    Ok(None)
}

/// After a sync whose writes' answers were not all success: every record
/// acknowledged before is there as acknowledged, each write of the group
/// is there whole or not at all, and all or none of them if the plugin
/// keeps units whole. `read_after_failure` are the records of `before`
/// that a new instance read as an earlier failed sync wrote them (what a
/// read showed must stay).
fn check_after_failure(
    what: &str,
    before: &Records,
    read_after_failure: &BTreeSet<Vec<u8>>,
    writes: &[(Vec<u8>, Vec<u8>)],
    now: &Records,
    whole: bool,
) -> Step {
    let written: BTreeMap<&Vec<u8>, &Vec<u8>> = writes.iter().map(|(k, v)| (k, v)).collect();
    for (key, value) in before {
        let found = now.get(key);
        // As acknowledged, or as the failed sync wrote it (never gone: a
        // group erases nothing).
        if found != Some(value) && (found.is_none() || found != written.get(key).copied()) {
            let found = found.map_or("nothing".into(), |f| {
                String::from_utf8_lossy(f).into_owned()
            });
            let key = String::from_utf8_lossy(key);
            if read_after_failure.contains(key.as_bytes()) {
                return fail(format!(
                    "{what}: record {key} was read by a new instance as an earlier failed sync wrote it ({}), but a new instance now finds {found}: the plugin showed a failed sync's write, then took it back (settle a failed sync before the first read)",
                    String::from_utf8_lossy(value)
                ));
            }
            return fail(format!(
                "{what}: record {key} was acknowledged before the failed sync, but a new instance finds {found}: the plugin lost an acknowledged write"
            ));
        }
    }
    for (key, value) in now {
        if before.get(key) != Some(value) && written.get(key) != Some(&value) {
            return fail(format!(
                "{what}: a new instance finds {}, which neither a sync acknowledged nor the failed sync wrote",
                String::from_utf8_lossy(value)
            ));
        }
    }
    let made = writes.iter().filter(|(k, v)| now.get(k) == Some(v)).count();
    if whole && made != 0 && made != writes.len() {
        return fail(format!(
            "{what}: {made} of the failed sync's {} writes are stored: the plugin says it keeps units whole (all or none)",
            writes.len()
        ));
    }
    Ok(())
}

/// Fails unless a new instance found exactly the records `expected`,
/// naming the first that differ.
fn same(what: &str, found: &Records, expected: &Records) -> Step {
    let show = |record: Option<&Vec<u8>>| {
        record.map_or("nothing".to_string(), |r| {
            String::from_utf8_lossy(r).into_owned()
        })
    };
    let differing: Vec<String> = found
        .keys()
        .chain(expected.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|key| found.get(*key) != expected.get(*key))
        .take(3)
        .map(|key| {
            format!(
                "{}: found {}, expected {}",
                String::from_utf8_lossy(key),
                show(found.get(key)),
                show(expected.get(key))
            )
        })
        .collect();
    match differing.is_empty() {
        true => Ok(()),
        false => fail(format!("{what}: {}", differing.join("; "))),
    }
}

/// Moves the lost answer across every write of a sync of several objects.
pub(crate) async fn lost_answer(subject: Subject) -> Step<Applies> {
    across_a_sync(subject, Fault::LostAnswer).await
}

/// Moves the store's going away across every write of a sync of several
/// objects.
pub(crate) async fn store_gone(subject: Subject) -> Step<Applies> {
    across_a_sync(subject, Fault::StoreGone).await
}

/// Moves `fault` across every write of a sync of several objects.
async fn across_a_sync(subject: Subject, fault: Fault) -> Step<Applies> {
    with_instances(&subject, move |instances| {
        if let Some(reason) = writes_objects(instances)? {
            return Ok(Some(reason));
        }
        let mut writer = instances.fresh()?;
        let whole = matches!(call(writer.as_mut(), Call::WholeUnits)?, Reply::Whole(true));
        let mut stored: Records = BTreeMap::from([(key(0), record(0, 0))]);
        for chunk in (1..STORED).collect::<Vec<_>>().chunks(20) {
            for &n in chunk {
                let (k, v) = (key(2 * n), record(2 * n, 0));
                call(writer.as_mut(), Call::Insert(ksds(), k.clone(), v.clone()))?;
                stored.insert(k, v);
            }
            call(writer.as_mut(), Call::Sync)?;
        }
        // How many object writes a sync of one group makes, without faults.
        let counted = faults(instances).counts().object_writes;
        let writes = group(0, &stored);
        if !run_group(writer.as_mut(), &stored, &writes) {
            return fail("a group of inserts and replaces failed without any fault");
        }
        stored.extend(writes);
        let positions = faults(instances).counts().object_writes - counted;
        drop(writer);
        let mut read_after_failure = BTreeSet::new();
        for n in 1..=positions.clamp(1, MOST_POSITIONS) {
            let what = fault.describe(n, positions);
            let writes = group(n as u32, &stored);
            let mut writer = instances.fresh()?;
            fault.arm(faults(instances), n);
            let lost_before = faults(instances).counts().answers_lost;
            let acknowledged = run_group(writer.as_mut(), &stored, &writes);
            fault.disarm(faults(instances));
            drop(writer);
            let now = found(instances)?;
            if acknowledged {
                let mut expected = stored.clone();
                expected.extend(writes.iter().cloned());
                same(&format!("{what}, the sync answering success"), &now, &expected)?;
                for (key, _) in &writes {
                    read_after_failure.remove(key);
                }
            } else if faults(instances).counts().answers_lost == lost_before {
                return fail(format!(
                    "{what}: the group failed, yet no answer was lost (the sync made fewer writes than before?)"
                ));
            } else {
                check_after_failure(&what, &stored, &read_after_failure, &writes, &now, whole)?;
                for (key, value) in &writes {
                    match now.get(key) == Some(value) {
                        true => read_after_failure.insert(key.clone()),
                        false => read_after_failure.remove(key),
                    };
                }
            }
            stored = now;
        }
        if faults(instances).counts().answers_lost == 0 {
            return fail("no object write's answer was lost: the plugin's syncs wrote no object");
        }
        // Writes go on, and a new instance finds them.
        let mut writer = instances.fresh()?;
        let writes = group(positions as u32 + 1, &stored);
        if !run_group(writer.as_mut(), &stored, &writes) {
            return fail("after the faults, a group of inserts and replaces failed");
        }
        stored.extend(writes);
        drop(writer);
        same(
            "after the faults, the records a new instance finds",
            &found(instances)?,
            &stored,
        )?;
        let mut last = instances.fresh()?;
        call(last.as_mut(), Call::Destroy(ksds()))?;
        Ok(None)
    })
    .await
}
