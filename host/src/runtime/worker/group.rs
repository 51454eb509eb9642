//! Group commit: a worker runs every job already queued, then asks its
//! store to `sync` once, and only then answers; a write whose instance a
//! fault dropped before the sync is answered as failed.

use super::super::call::{Call, CallError, CallResult, RecordStore, Reply};
use super::{Answer, Job};
use vsam_plugin_sdk::Dataset;

/// Merges each run of consecutive single GETs on one dataset into one
/// lookup job: a store that can answer many keys with one database round
/// trip does so. Nothing is reordered, so every GET still sees exactly the
/// writes queued before it.
fn coalesce_lookups(batch: Vec<Job>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::with_capacity(batch.len());
    for job in batch {
        let job = match job {
            Job::Run { mut calls, answer } if matches!(calls.as_slice(), [Call::Get(..)]) => {
                let Some(Call::Get(dataset, key)) = calls.pop() else {
                    unreachable!("matched one GET");
                };
                Job::Lookups {
                    dataset,
                    keys: vec![key],
                    answers: vec![answer],
                }
            }
            other => other,
        };
        match (out.last_mut(), job) {
            (
                Some(Job::Lookups {
                    dataset,
                    keys,
                    answers,
                }),
                Job::Lookups {
                    dataset: next,
                    keys: more_keys,
                    answers: more_answers,
                },
            ) if *dataset == next => {
                keys.extend(more_keys);
                answers.extend(more_answers);
            }
            (_, job) => out.push(job),
        }
    }
    out
}

/// The store as a group runs it, counting the faults: a fault drops the
/// plugin instance, and with it what the instance held unsynced (cached
/// intervals, an open transaction, unflushed rows).
struct Tracked<'a> {
    store: &'a mut dyn RecordStore,
    /// The message of each fault so far, in order.
    faults: Vec<String>,
}

impl Tracked<'_> {
    async fn call(&mut self, call: Call) -> CallResult {
        let result = self.store.call_async(call).await;
        if let Err(CallError::Fault(message)) = &result {
            self.faults.push(message.clone());
        }
        result
    }

    /// Which instance runs the next call: how many faults came before it.
    fn instance(&self) -> usize {
        self.faults.len()
    }

    fn reset(&mut self) {
        self.store.reset();
    }
}

/// Runs a lookup job: one `get` for one key, one `get-many` for several.
/// A `get-many` that faults (the instance was replaced) is asked again key
/// by key, so only a GET that itself makes the plugin fail fails.
async fn run_lookups(
    store: &mut Tracked<'_>,
    dataset: Dataset,
    keys: Vec<Vec<u8>>,
) -> Vec<CallResult> {
    let count = keys.len();
    if count == 1 {
        let key = keys.into_iter().next().expect("one key");
        return vec![store.call(Call::Get(dataset, key)).await];
    }
    match store
        .call(Call::GetMany(dataset.clone(), keys.clone()))
        .await
    {
        Ok(Reply::Records(records)) if records.len() == count => {
            records.into_iter().map(|r| Ok(Reply::Record(r))).collect()
        }
        Ok(other) => {
            let wrong = CallError::Fault(format!(
                "the plugin answered {count} lookups with {other:?}"
            ));
            vec![Err(wrong); count]
        }
        Err(CallError::Fault(_)) => {
            let mut results = Vec::with_capacity(count);
            for key in keys {
                results.push(store.call(Call::Get(dataset.clone(), key)).await);
            }
            results
        }
        Err(error) => vec![Err(error); count],
    }
}

/// Most jobs answered after one sync.
pub(super) const MAX_GROUP: usize = 256;

/// A call's result, and for a write the instance that ran it.
type Ran = (CallResult, Option<usize>);

/// Runs a batch of queued jobs: runs of ordinary jobs as groups sharing a
/// sync ([`run_writes`]), and each unit of work alone between them
/// ([`run_unit`]).
pub(super) async fn run_group(store: &mut dyn RecordStore, batch: Vec<Job>) {
    let mut segment = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Unit { calls, answer } => {
                if !segment.is_empty() {
                    run_writes(store, std::mem::take(&mut segment)).await;
                }
                let _ = answer.send(run_unit(store, calls).await);
            }
            job => segment.push(job),
        }
    }
    if !segment.is_empty() {
        run_writes(store, segment).await;
    }
}

/// Runs a unit of work's writes, then one sync that makes them all
/// durable. Everything before it was synced by the group before. On any
/// failure the instance is dropped, which discards every write of the
/// unit on a store that keeps units whole; a store that does not is
/// refused before anything runs.
async fn run_unit(store: &mut dyn RecordStore, calls: Vec<Call>) -> Vec<CallResult> {
    match store.call_async(Call::WholeUnits).await {
        Ok(Reply::Whole(true)) => {}
        _ => {
            return vec![Err(CallError::Store(vsam_plugin_sdk::StoreError::Invalid(
                "the plugin serving this backend now does not keep units of work whole (its units.whole is missing or false): the unit was not applied".into(),
            )))];
        }
    }
    let mut results = Vec::with_capacity(calls.len() + 1);
    for call in calls {
        let result = store.call_async(call).await;
        let failed = result.is_err();
        results.push(result);
        if failed {
            store.reset();
            return results;
        }
    }
    if let Err(error) = store.call_async(Call::Sync).await {
        tracing::error!("sync of a unit of work failed, the unit is rolled back: {error}");
        store.reset();
        results.push(Err(error));
    }
    results
}

/// Runs queued calls, syncs once if any of them tried to write, then
/// answers them. A write is acknowledged only if the instance that ran it
/// is the one that synced: one a fault dropped mid-group took the write
/// with it, and the write is answered as failed.
async fn run_writes(store: &mut dyn RecordStore, batch: Vec<Job>) {
    let mut store = Tracked {
        store,
        faults: Vec::new(),
    };
    let mut done: Vec<(Answer, Vec<Ran>)> = Vec::with_capacity(batch.len());
    let mut wrote = false;
    let mut reset_after_sync = false;
    for job in coalesce_lookups(batch) {
        let (calls, answer) = match job {
            Job::Run { calls, answer } => (calls, answer),
            Job::Unit { calls, answer } => {
                // run_group runs units alone; one here runs the same way.
                let _ = answer.send(run_unit(store.store, calls).await);
                continue;
            }
            Job::Reset if wrote => {
                // Writes of this group are in the instance until its sync.
                reset_after_sync = true;
                continue;
            }
            Job::Reset => {
                store.reset();
                continue;
            }
            Job::Lookups {
                dataset,
                keys,
                answers,
            } => {
                let results = run_lookups(&mut store, dataset, keys).await;
                for (answer, result) in answers.into_iter().zip(results) {
                    done.push((answer, vec![(result, None)]));
                }
                continue;
            }
        };
        let mut results = Vec::with_capacity(calls.len());
        for call in calls {
            let write = call.is_write();
            let result = store.call(call).await;
            let failed = result.is_err();
            // A group that tried to write ends with a sync even if every
            // write failed: the sync is where a plugin learns the group is
            // over (the SQL plugin refuses the rest of a group after a
            // failed statement, until its sync).
            wrote |= write;
            results.push((result, write.then(|| store.instance())));
            if failed {
                break;
            }
        }
        done.push((answer, results));
    }
    let synced = if wrote {
        store.call(Call::Sync).await.map(drop)
    } else {
        Ok(())
    };
    if let Err(error) = &synced {
        tracing::error!("sync failed, writes of this group are reported failed: {error}");
        store.reset();
    } else if reset_after_sync {
        store.reset();
    }
    // Why the writes each instance ran are not durable, if they are not.
    let lost = |instance: usize| -> Option<CallError> {
        match store.faults.get(instance) {
            Some(fault) => Some(CallError::Fault(format!(
                "not stored for certain: the plugin instance that ran this write was replaced before it was synced ({fault}); read the record before repeating the write"
            ))),
            None => synced.as_ref().err().cloned(),
        }
    };
    for (answer, results) in done {
        let _ = answer.send(acknowledged(results, &lost));
    }
}

/// A job's results as answered: up to its first write that was not made
/// durable, which fails with `lost`'s reason (the calls after it count as
/// not run, as after any failure).
fn acknowledged(results: Vec<Ran>, lost: &dyn Fn(usize) -> Option<CallError>) -> Vec<CallResult> {
    let mut answered = Vec::with_capacity(results.len());
    for (result, instance) in results {
        match (result, instance.and_then(lost)) {
            (Ok(_), Some(error)) => {
                answered.push(Err(error));
                break;
            }
            (result, _) => answered.push(result),
        }
    }
    answered
}
