//! The two long steps of a migration: copying the records in key order
//! while writes go on, and verifying that both backends hold the same
//! records (count and checksum).
//!
//! A copy step holds writes off only while it reads a batch from the old
//! backend and queues it for the new one; a verify step while it reads a
//! batch from each. Clients keep working between steps.

use super::Progress;
use crate::after_panic::LockOrStop;
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, Reply};
use crate::vsam::DatasetState;
use crate::vsam::placement::{Covered, Mirror};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use vsam_plugin_sdk::{Direction, Entry, Start};

/// Most records per copy or verify step.
const BATCH: u32 = 500;

/// Records per copy or verify step of the dataset: [`BATCH`], fewer if
/// its records are long.
fn batch(state: &DatasetState) -> u32 {
    state.def.records_in(crate::catalog::BATCH_BYTES, BATCH)
}

/// Up to `limit` records of the dataset from `from`, in key order.
async fn scan(
    backend: &BackendHandle,
    state: &DatasetState,
    from: Start,
    limit: u32,
) -> Result<Vec<Entry>, String> {
    match backend
        .call(Call::Scan(
            state.plugin_dataset.clone(),
            from,
            Direction::Forward,
            limit,
        ))
        .await
    {
        Ok(Reply::Entries(entries)) => Ok(entries),
        Ok(other) => Err(format!(
            "backend {} answered a scan with {other:?}",
            backend.name()
        )),
        Err(error) => Err(format!("backend {}: {error}", backend.name())),
    }
}

/// Counts the source's records (for the progress estimate).
pub async fn count(
    state: &DatasetState,
    source: &BackendHandle,
    cancel: &AtomicBool,
) -> Result<u64, String> {
    let mut total = 0u64;
    let mut from = Start::Edge;
    while !cancel.load(Ordering::Relaxed) {
        let entries = scan(source, state, from, 2_000).await?;
        let Some(last) = entries.last() else { break };
        total += entries.len() as u64;
        from = Start::Exclusive(last.key.clone());
    }
    Ok(total)
}

/// Copies every record from `source` to the mirror's backend, batch by
/// batch, moving the mirror's cursor so writes behind it reach both.
pub async fn copy(
    state: &DatasetState,
    source: &BackendHandle,
    mirror: &Mirror,
    progress: &Mutex<Progress>,
    cancel: &AtomicBool,
) -> Result<(), String> {
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        if let Some(failure) = mirror.failure() {
            return Err(failure);
        }
        let held = state.hold_writes().await;
        let from = match mirror.covered() {
            Covered::Nothing => Start::Edge,
            Covered::UpTo(last) => Start::Exclusive(last),
            Covered::All => return Ok(()),
        };
        let entries = scan(source, state, from, batch(state)).await?;
        let Some(last) = entries.last().map(|e| e.key.clone()) else {
            mirror.set_covered(Covered::All);
            return Ok(());
        };
        let count = entries.len();
        let inserts = entries
            .into_iter()
            .map(|e| Call::Insert(state.plugin_dataset.clone(), e.key, e.value))
            .collect();
        // Queued before the cursor moves and writes resume: every write
        // that follows to the mirror is queued after these inserts, so it
        // lands on top of the copied record. No need to hold writes off
        // while the new backend stores them.
        let stored = mirror.backend.replica_submit(inserts);
        mirror.set_covered(Covered::UpTo(last));
        drop(held);
        let results = stored.answers().await;
        if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
            return Err(format!(
                "backend {} refused a copied record: {error}",
                mirror.backend.name()
            ));
        }
        if results.len() != count {
            return Err(format!(
                "backend {} stored {} of {count} copied records",
                mirror.backend.name(),
                results.len()
            ));
        }
        progress.lock_or_stop().copied += count as u64;
        tokio::task::yield_now().await;
    }
}

/// What a verification found: both backends hold `count` records whose
/// keys and contents hash to `checksum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records on each side.
    pub count: u64,
    /// SHA-256 over every record, hex.
    pub checksum: String,
}

/// Compares both backends record by record, a batch at a time with writes
/// held off; the first difference is an error naming its key.
pub async fn verify(
    state: &DatasetState,
    serving: &BackendHandle,
    copy: &BackendHandle,
    progress: Option<&Mutex<Progress>>,
    cancel: &AtomicBool,
) -> Result<Verified, String> {
    verify_batches(state, serving, copy, progress, None, cancel).await
}

/// Waits, with writes held off, until a copy that follows through the
/// change log has applied everything committed (see [`verify_settled`]).
pub type Settle = dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Sync;

/// [`verify`] for a copy that follows later (a mirror fed by the change
/// log): in each batch, with writes held off, `settle` first waits until
/// the copy has applied every change committed.
pub async fn verify_settled(
    state: &DatasetState,
    serving: &BackendHandle,
    copy: &BackendHandle,
    settle: &Settle,
    cancel: &AtomicBool,
) -> Result<Verified, String> {
    verify_batches(state, serving, copy, None, Some(settle), cancel).await
}

async fn verify_batches(
    state: &DatasetState,
    serving: &BackendHandle,
    copy: &BackendHandle,
    progress: Option<&Mutex<Progress>>,
    settle: Option<&Settle>,
    cancel: &AtomicBool,
) -> Result<Verified, String> {
    let mut hash = Sha256::new();
    let mut count = 0u64;
    let mut from = Start::Edge;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let held = state.hold_writes().await;
        if let Some(settle) = settle {
            settle().await?;
        }
        let ours = scan(serving, state, from.clone(), batch(state)).await?;
        let theirs = scan(copy, state, from, batch(state)).await?;
        drop(held);
        if ours != theirs {
            let at = ours
                .iter()
                .zip(&theirs)
                .find(|(a, b)| a != b)
                .map(|(a, b)| a.key.clone().min(b.key.clone()))
                .or_else(|| {
                    let shorter = ours.len().min(theirs.len());
                    ours.get(shorter)
                        .or(theirs.get(shorter))
                        .map(|e| e.key.clone())
                })
                .unwrap_or_default();
            return Err(format!(
                "the copies differ at key X'{}' ({} holds {} record(s) there, {} holds {})",
                hex::encode_upper(&at),
                serving.name(),
                ours.len(),
                copy.name(),
                theirs.len()
            ));
        }
        let Some(last) = ours.last().map(|e| e.key.clone()) else {
            break;
        };
        for entry in &ours {
            hash.update((entry.key.len() as u32).to_be_bytes());
            hash.update(&entry.key);
            hash.update((entry.value.len() as u32).to_be_bytes());
            hash.update(&entry.value);
        }
        count += ours.len() as u64;
        if let Some(progress) = progress {
            progress.lock_or_stop().verified = Some(count);
        }
        from = Start::Exclusive(last);
        tokio::task::yield_now().await;
    }
    Ok(Verified {
        count,
        checksum: hex::encode_upper(hash.finalize()),
    })
}

/// Brings `copy` level with `serving`, a batch of keys at a time with
/// writes held off: records it lacks or holds otherwise are written, records
/// only it holds are deleted. Returns how many records it repaired. Writes
/// between batches reach both through the mirror, whose writes replace
/// whatever the copy held ([`Mirror::apply`]), so once every batch is done
/// the copies agree. This is how a copy that missed writes (a crash between
/// the two backends' writes, a mirror that failed) is made whole again.
pub async fn level(
    state: &DatasetState,
    serving: &BackendHandle,
    copy: &Mirror,
    cancel: &AtomicBool,
) -> Result<u64, String> {
    let mut repaired = 0u64;
    let mut from = Start::Edge;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let held = state.hold_writes().await;
        let ours = scan(serving, state, from.clone(), batch(state)).await?;
        // The batch's upper bound: its last key, or none at the end.
        let bound = (ours.len() == batch(state) as usize).then(|| ours.last().unwrap().key.clone());
        let theirs = scan_to(&copy.backend, state, from, bound.as_deref()).await?;
        let fixes = differences(state, &ours, &theirs);
        repaired += fixes.len() as u64;
        if !fixes.is_empty() {
            copy.apply(fixes).await.map_err(|reason| {
                format!(
                    "backend {} cannot be brought level: {reason}",
                    copy.backend.name()
                )
            })?;
        }
        drop(held);
        let Some(last) = bound else {
            return Ok(repaired);
        };
        from = Start::Exclusive(last);
        tokio::task::yield_now().await;
    }
}

/// Every record of `backend` from `from` up to and including `bound` (to
/// the end without one).
async fn scan_to(
    backend: &BackendHandle,
    state: &DatasetState,
    mut from: Start,
    bound: Option<&[u8]>,
) -> Result<Vec<Entry>, String> {
    let mut all = Vec::new();
    loop {
        let read = scan(backend, state, from, batch(state)).await?;
        let full = read.len() == batch(state) as usize;
        let Some(last) = read.last().map(|e| e.key.clone()) else {
            return Ok(all);
        };
        let beyond = bound.is_some_and(|bound| last.as_slice() > bound);
        all.extend(
            read.into_iter()
                .filter(|e| bound.is_none_or(|bound| e.key.as_slice() <= bound)),
        );
        if beyond || !full {
            return Ok(all);
        }
        from = Start::Exclusive(last);
    }
}

/// The writes that make `theirs` hold exactly `ours` (both in key order).
fn differences(state: &DatasetState, ours: &[Entry], theirs: &[Entry]) -> Vec<Call> {
    let ds = || state.plugin_dataset.clone();
    let mut fixes = Vec::new();
    let (mut a, mut b) = (ours.iter().peekable(), theirs.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return fixes,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(o), Some(t)) => o.key.cmp(&t.key),
        };
        match order {
            std::cmp::Ordering::Less => {
                let o = a.next().unwrap();
                fixes.push(Call::Insert(ds(), o.key.clone(), o.value.clone()));
            }
            std::cmp::Ordering::Greater => {
                let t = b.next().unwrap();
                fixes.push(Call::Delete(ds(), t.key.clone()));
            }
            std::cmp::Ordering::Equal => {
                let (o, t) = (a.next().unwrap(), b.next().unwrap());
                if o.value != t.value {
                    fixes.push(Call::Replace(ds(), o.key.clone(), o.value.clone()));
                }
            }
        }
    }
}
