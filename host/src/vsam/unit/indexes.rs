//! The alternate indexes of a base that a unit of work changes.
//!
//! A unit's changes reach the upgrade set at COMMIT, in the job that
//! carries the base's changes: the entries of the alternate keys its
//! records take first, the entries of the keys they give up last. The
//! store keeps the job whole, so after a crash the indexes agree with
//! their bases; during the job they are a superset of them, as in `sync`
//! durability (see `alternate`).
//!
//! Until the commit the unit knows which of its records carry which
//! alternate key (`Carriers`), and a write is checked against the keys as
//! its connection sees them: a UNIQUEKEY index's key held by another
//! record is refused at the write (FDBK X'08'), and a NONUNIQUEKEY key
//! held by others is reported on it (R15=0, FDBK X'08'). At COMMIT the
//! unique keys are checked again on the committed indexes, under the
//! base's index lock: a key another connection stored meanwhile refuses
//! the COMMIT with FDBK X'08', and the unit is rolled back.

use super::changes::{Change, Pending};
use crate::runtime::call::Call;
use crate::vsam::alternate::AixIndex;
use crate::vsam::dataset::DatasetState;
use std::collections::BTreeMap;
use vsam_protocol::{Status, fdbk};

/// Checks a record a unit is about to hold under `key` (`before`: the
/// record there as the connection sees it, if any) against the alternate
/// keys as the connection sees them: the committed indexes with the
/// unit's own records laid over them. True if a NONUNIQUEKEY index then
/// holds one of the record's keys more than once.
pub(crate) async fn check_write(
    base: &DatasetState,
    request: &str,
    pending: Option<&Pending>,
    key: &[u8],
    before: Option<&[u8]>,
    record: &[u8],
) -> Result<bool, Status> {
    let in_unit = |other: &[u8]| pending.is_some_and(|p| p.changes.contains_key(other));
    let mut duplicate = false;
    for (n, index) in base.upgrade_set().enumerate() {
        let Some(alternate) = index.alternate_key(record) else {
            continue;
        };
        if before.and_then(|old| index.alternate_key(old)) == Some(alternate) {
            continue;
        }
        let carried = pending.is_some_and(|p| p.carriers.carried_by_other(n, alternate, key));
        if index.unique {
            // A committed entry of a record the unit changed is decided by
            // the unit's image of it (in the carriers).
            let stored = match index.unique_entry(base, request, alternate).await? {
                Some(entry) => {
                    let other = index.base_key(&entry);
                    other != key
                        && !in_unit(other)
                        && index.resolve(base, request, &entry).await?.is_some()
                }
                None => false,
            };
            if carried || stored {
                return Err(unique_taken(base, request, index, "another record holds"));
            }
        } else {
            let counts = |other: &[u8]| other != key && !in_unit(other);
            duplicate |= carried
                || index
                    .has_duplicate(base, request, alternate, &counts)
                    .await?;
        }
    }
    Ok(duplicate)
}

/// The index calls that bring a base's upgrade set in step with a unit's
/// changes to it: `before` the base's writes, and `after` them.
#[derive(Debug, Default)]
pub(crate) struct IndexCalls {
    /// New entries (inserted, or replacing a stale one's key).
    pub before: Vec<Call>,
    /// Entries of keys the records no longer carry, and stale ones.
    pub after: Vec<Call>,
}

/// What a unit does to one index: the records taking each alternate key
/// (with when they were written), and the keys records give up.
struct Moves<'a> {
    taken: BTreeMap<&'a [u8], Vec<(u64, &'a [u8])>>,
    left: Vec<(&'a [u8], &'a [u8])>,
}

/// Plans the index calls of `pending`'s changes on the committed indexes
/// (the caller holds the base's index lock, and the unit holds its
/// records). A unique key that another record holds refuses the commit.
pub(crate) async fn commit_calls(pending: &Pending, request: &str) -> Result<IndexCalls, Status> {
    let base = &pending.state;
    let mut calls = IndexCalls::default();
    if !base.upgrades() {
        return Ok(calls);
    }
    let old = committed_images(base, request, &pending.changes).await?;
    for index in base.upgrade_set() {
        let moves = moves(index, &pending.changes, &old);
        if index.unique {
            unique_calls(base, request, index, pending, &moves, &mut calls).await?;
        } else {
            duplicate_calls(base, request, index, moves, &mut calls).await?;
        }
    }
    Ok(calls)
}

/// The committed records of the keys the unit replaces or erases.
async fn committed_images(
    base: &DatasetState,
    request: &str,
    changes: &BTreeMap<Vec<u8>, Change>,
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, Status> {
    const AT_ONCE: usize = 1_000;
    let stored: Vec<Vec<u8>> = changes
        .iter()
        .filter(|(_, change)| change.stored)
        .map(|(key, _)| key.clone())
        .collect();
    let mut old = BTreeMap::new();
    for keys in stored.chunks(AT_ONCE) {
        let records = base.get_many(request, keys).await?;
        for (key, record) in keys.iter().zip(records) {
            if let Some(record) = record {
                old.insert(key.clone(), record);
            }
        }
    }
    Ok(old)
}

fn moves<'a>(
    index: &AixIndex,
    changes: &'a BTreeMap<Vec<u8>, Change>,
    old: &'a BTreeMap<Vec<u8>, Vec<u8>>,
) -> Moves<'a> {
    let mut moves = Moves {
        taken: BTreeMap::new(),
        left: Vec::new(),
    };
    for (key, change) in changes {
        let before = old.get(key).and_then(|record| index.alternate_key(record));
        let after = change
            .image
            .as_deref()
            .and_then(|record| index.alternate_key(record));
        if before == after {
            continue;
        }
        if let Some(alternate) = after {
            moves
                .taken
                .entry(alternate)
                .or_default()
                .push((change.written, key));
        }
        if let Some(alternate) = before {
            moves.left.push((alternate, key));
        }
    }
    moves
}

async fn unique_calls(
    base: &DatasetState,
    request: &str,
    index: &AixIndex,
    pending: &Pending,
    moves: &Moves<'_>,
    calls: &mut IndexCalls,
) -> Result<(), Status> {
    for (alternate, takers) in &moves.taken {
        let [(_, key)] = takers.as_slice() else {
            return Err(unique_taken(
                base,
                request,
                index,
                "two records of the unit would hold",
            ));
        };
        let entry = index.unique_entry(base, request, alternate).await?;
        if let Some(entry) = &entry {
            let other = index.base_key(entry);
            let holds = other != *key
                && match pending.changes.get(other) {
                    Some(change) => {
                        change
                            .image
                            .as_deref()
                            .and_then(|record| index.alternate_key(record))
                            == Some(*alternate)
                    }
                    None => index.resolve(base, request, entry).await?.is_some(),
                };
            if holds {
                return Err(unique_taken(
                    base,
                    request,
                    index,
                    "a record another connection stored since this unit's write holds",
                ));
            }
        }
        let storage = index.storage.clone();
        let record = AixIndex::entry_record(alternate, key);
        calls.before.push(match entry {
            Some(_) => Call::Replace(storage, alternate.to_vec(), record),
            None => Call::Insert(storage, alternate.to_vec(), record),
        });
    }
    for (alternate, key) in &moves.left {
        // A key another record of the unit takes was replaced above.
        if moves.taken.contains_key(alternate) {
            continue;
        }
        if let Some(entry) = index.unique_entry(base, request, alternate).await?
            && index.base_key(&entry) == *key
        {
            calls
                .after
                .push(Call::Delete(index.storage.clone(), entry.key));
        }
    }
    Ok(())
}

async fn duplicate_calls(
    base: &DatasetState,
    request: &str,
    index: &AixIndex,
    moves: Moves<'_>,
    calls: &mut IndexCalls,
) -> Result<(), Status> {
    let delete = |entry_key: Vec<u8>| Call::Delete(index.storage.clone(), entry_key);
    for (alternate, key) in moves.left {
        for entry_key in index
            .entries_pointing(base, request, alternate, key)
            .await?
        {
            calls.after.push(delete(entry_key));
        }
    }
    for (alternate, mut takers) in moves.taken {
        takers.sort_unstable();
        let mut sequence = index.next_sequence(base, request, alternate).await?;
        for (_, key) in takers {
            // Entries of this key and record are stale (the committed
            // record does not carry the key), and would come back to life.
            for entry_key in index
                .entries_pointing(base, request, alternate, key)
                .await?
            {
                calls.after.push(delete(entry_key));
            }
            let entry_key = index.entry_key(alternate, sequence);
            sequence += 1;
            let record = AixIndex::entry_record(&entry_key, key);
            calls
                .before
                .push(Call::Insert(index.storage.clone(), entry_key, record));
        }
    }
    Ok(())
}

/// The refusal of a unique alternate key that `holder` already.
fn unique_taken(base: &DatasetState, request: &str, index: &AixIndex, holder: &str) -> Status {
    Status::logical(
        fdbk::DUPLICATE_KEY,
        format!(
            "{} {request}: {holder} this alternate key in alternate index {} (UNIQUEKEY)",
            base.def.name, index.name
        ),
    )
}
