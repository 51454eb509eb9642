//! Keeping the upgrade set in step with base writes.
//!
//! Per base record: new index entries are stored (and synced) before the
//! base write, old ones removed after it, so the indexes stay a superset
//! of the truth (see the module above). Writes to one base that touch its
//! indexes run one at a time (the base's index lock, and on a shared store
//! its indexes lock in the fleet): a unique-key check and the write it
//! allows cannot interleave with another's, on any server.

use super::AixIndex;
use crate::runtime::call::{Call, Reply};
use crate::vsam::dataset::DatasetState;
use vsam_plugin_sdk::keys::{key_number, number_key};
use vsam_plugin_sdk::{Direction, Start};
use vsam_protocol::{Status, fdbk};

/// An index entry to store for a base record.
struct NewEntry<'a> {
    index: &'a AixIndex,
    key: Vec<u8>,
    record: Vec<u8>,
    /// A stale entry holds the unique key: replace it.
    replaces: bool,
}

/// What a base write did beyond its own record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    /// A NONUNIQUEKEY index now holds the record's alternate key more
    /// than once (R15=0, FDBK X'08' on the request).
    pub duplicate: bool,
}

/// The entries a record under `base_key` needs in the upgrade set, and
/// whether one makes a duplicate; a unique key held by another record
/// refuses the write (FDBK X'08').
async fn plan<'a>(
    base: &'a DatasetState,
    request: &str,
    base_key: &[u8],
    record: &[u8],
    unchanged: Option<&[u8]>,
) -> Result<(Vec<NewEntry<'a>>, bool), Status> {
    let mut entries = Vec::new();
    let mut duplicate = false;
    for index in base.upgrade_set() {
        let Some(alternate) = index.alternate_key(record) else {
            continue;
        };
        if unchanged.and_then(|old| index.alternate_key(old)) == Some(alternate) {
            continue;
        }
        if index.unique {
            let found = index.unique_entry(base, request, alternate).await?;
            let replaces = found.is_some();
            if let Some(entry) = found
                && index.base_key(&entry) != base_key
                && index.resolve(base, request, &entry).await?.is_some()
            {
                return Err(Status::logical(
                    fdbk::DUPLICATE_KEY,
                    format!(
                        "{} {request}: alternate index {} (UNIQUEKEY) already holds this alternate key",
                        base.def.name, index.name
                    ),
                ));
            }
            entries.push(NewEntry {
                index,
                record: AixIndex::entry_record(alternate, base_key),
                key: alternate.to_vec(),
                replaces,
            });
        } else {
            duplicate |= index
                .has_duplicate(base, request, alternate, &|other| other != base_key)
                .await?;
            let key = index.entry_key(
                alternate,
                index.next_sequence(base, request, alternate).await?,
            );
            entries.push(NewEntry {
                index,
                record: AixIndex::entry_record(&key, base_key),
                key,
                replaces: false,
            });
        }
    }
    Ok((entries, duplicate))
}

/// Stores the planned entries. An entry of a NONUNIQUEKEY index replaces
/// any older one of the same key and base record: those are stale (the
/// base record does not carry that key now), and would come back to life
/// when it does.
async fn store(
    base: &DatasetState,
    request: &str,
    base_key: &[u8],
    entries: &[NewEntry<'_>],
) -> Result<(), Status> {
    for entry in entries {
        if !entry.index.unique {
            let alternate = entry.index.entry_alternate(&entry.key).to_vec();
            purge(base, request, entry.index, &alternate, base_key).await?;
        }
        let storage = entry.index.storage.clone();
        let call = if entry.replaces {
            Call::Replace(storage, entry.key.clone(), entry.record.clone())
        } else {
            Call::Insert(storage, entry.key.clone(), entry.record.clone())
        };
        base.index_call(request, call).await?;
    }
    Ok(())
}

/// Deletes the entries of `index` under `alternate` that point to
/// `base_key`.
async fn purge(
    base: &DatasetState,
    request: &str,
    index: &AixIndex,
    alternate: &[u8],
    base_key: &[u8],
) -> Result<(), Status> {
    for key in index
        .entries_pointing(base, request, alternate, base_key)
        .await?
    {
        base.index_call(request, Call::Delete(index.storage.clone(), key))
            .await?;
    }
    Ok(())
}

/// Removes the entries that point to `base_key` under the alternate keys
/// of `record` (best effort: an entry left behind is stale, and skipped).
async fn remove(
    base: &DatasetState,
    request: &str,
    base_key: &[u8],
    record: &[u8],
    keep: Option<&[u8]>,
) {
    for index in base.upgrade_set() {
        let Some(alternate) = index.alternate_key(record) else {
            continue;
        };
        if keep.and_then(|new| index.alternate_key(new)) == Some(alternate) {
            continue;
        }
        let _ = purge(base, request, index, alternate, base_key).await;
    }
}

/// Inserts records (a PUT or a PUT CHAIN) through the upgrade set, one at
/// a time, until the first that fails.
pub(crate) async fn insert(
    base: &DatasetState,
    request: &str,
    calls: Vec<Call>,
) -> (Vec<Result<Reply, Status>>, Upgraded) {
    let _alone = match base.indexes_alone(request).await {
        Ok(alone) => alone,
        Err(status) => return (vec![Err(status)], Upgraded::default()),
    };
    let mut results = Vec::with_capacity(calls.len());
    let mut upgraded = Upgraded::default();
    for call in calls {
        let result = insert_one(base, request, call).await;
        let failed = result.is_err();
        if let Ok((_, duplicate)) = &result {
            upgraded.duplicate |= *duplicate;
        }
        results.push(result.map(|(reply, _)| reply));
        if failed {
            break;
        }
    }
    (results, upgraded)
}

async fn insert_one(
    base: &DatasetState,
    request: &str,
    call: Call,
) -> Result<(Reply, bool), Status> {
    let (key, record) = match &call {
        Call::Insert(_, key, record) => (key.clone(), record.clone()),
        // An ESDS record goes after the last one: its RBA is known before
        // it is written (one writer of the base; checked after).
        Call::Append(_, record) => (next_rba(base, request).await?, record.clone()),
        other => {
            return Err(Status::physical(format!(
                "{} {request}: only inserts and appends go through the alternate indexes, not {other:?}",
                base.def.name
            )));
        }
    };
    // A key already stored fails before the indexes are touched (writes
    // to this base wait on the index lock, so it stays so).
    if base.get(request, &key).await?.is_some() {
        return Err(Status::logical(
            fdbk::DUPLICATE_KEY,
            format!("{} {request}: a record with this key exists", base.def.name),
        ));
    }
    let (entries, duplicate) = plan(base, request, &key, &record, None).await?;
    store(base, request, &key, &entries).await?;
    let reply = base.write_base(request, call).await;
    match reply {
        Ok(Reply::Key(actual)) if actual != key => {
            // Another writer appended first: point the entries at the
            // record's real RBA (the predicted ones are stale).
            let (entries, _) = plan(base, request, &actual, &record, None).await?;
            store(base, request, &actual, &entries).await?;
            Ok((Reply::Key(actual), duplicate))
        }
        Ok(reply) => Ok((reply, duplicate)),
        Err(status) => {
            // The record is not there: its new entries are stale; drop
            // them now rather than at the next BLDINDEX.
            for entry in &entries {
                let call = Call::Delete(entry.index.storage.clone(), entry.key.clone());
                let _ = base.index_call(request, call).await;
            }
            Err(status)
        }
    }
}

/// The RBA the next appended record of an ESDS base gets.
async fn next_rba(base: &DatasetState, request: &str) -> Result<Vec<u8>, Status> {
    let last = base
        .scan(request, Start::Edge, Direction::Backward, 1)
        .await?;
    Ok(number_key(last.first().map_or(0, |entry| {
        key_number(&entry.key).unwrap_or(0) + entry.value.len() as u64
    })))
}

/// Replaces a base record through the upgrade set.
pub(crate) async fn replace(
    base: &DatasetState,
    request: &str,
    key: Vec<u8>,
    record: Vec<u8>,
) -> Result<Upgraded, Status> {
    let _alone = base.indexes_alone(request).await?;
    let old = base.get(request, &key).await?.unwrap_or_default();
    let (entries, duplicate) = plan(base, request, &key, &record, Some(&old)).await?;
    store(base, request, &key, &entries).await?;
    base.write_base(
        request,
        Call::Replace(base.plugin_dataset.clone(), key.clone(), record.clone()),
    )
    .await?;
    remove(base, request, &key, &old, Some(&record)).await;
    Ok(Upgraded { duplicate })
}

/// Deletes a base record through the upgrade set.
pub(crate) async fn delete(base: &DatasetState, request: &str, key: Vec<u8>) -> Result<(), Status> {
    let _alone = base.indexes_alone(request).await?;
    let old = base.get(request, &key).await?.unwrap_or_default();
    base.write_base(
        request,
        Call::Delete(base.plugin_dataset.clone(), key.clone()),
    )
    .await?;
    remove(base, request, &key, &old, None).await;
    Ok(())
}
