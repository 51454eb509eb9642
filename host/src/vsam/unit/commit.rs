//! Carrying a unit of work out: the changes to the datasets of one backend
//! go to it as one job made durable by one sync.

use super::changes::Pending;
use super::indexes::commit_calls;
use crate::runtime::call::{Call, Reply};
use vsam_plugin_sdk::Entry;
use vsam_protocol::{Status, Verb};

/// Commits the changes of datasets that share one backend, as one job,
/// with a migration's mirror following them; writes to the datasets are
/// held off from a migration's copy and cutover meanwhile. The alternate
/// indexes of the bases' upgrade sets change in the same job (planned
/// under each base's index lock, taken before the write gate as every
/// writer of a base with indexes takes them).
pub(super) async fn commit_group(group: &[&Pending]) -> Result<(), Status> {
    let request = Verb::Commit.name();
    let mut alone = Vec::new();
    for pending in group.iter().filter(|pending| pending.state.upgrades()) {
        alone.push(pending.state.indexes_alone(request).await?);
    }
    let mut gates = Vec::with_capacity(group.len());
    for pending in group {
        gates.push(pending.state.writing().await);
    }
    let first = &group[0].state;
    let calls_of: Vec<Vec<Call>> = group.iter().map(|pending| pending.calls()).collect();
    for (pending, calls) in group.iter().zip(&calls_of) {
        pending.state.note_inserts(calls);
    }
    if calls_of.iter().all(Vec::is_empty) {
        return Ok(());
    }
    let mut indexes_of = Vec::with_capacity(group.len());
    for pending in group {
        indexes_of.push(commit_calls(pending, request).await?);
    }
    // The job, and which dataset each of its calls is for: new index
    // entries, the bases' changes (inserts many at a time, what a unit's
    // load is made of), then the index entries given up.
    let mut sent: Vec<Call> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    let mut send = |n: usize, calls: Vec<Call>| {
        owners.extend(std::iter::repeat_n(n, calls.len()));
        sent.extend(calls);
    };
    for (n, indexes) in indexes_of.iter_mut().enumerate() {
        send(n, std::mem::take(&mut indexes.before));
    }
    for (n, calls) in calls_of.iter().enumerate() {
        send(n, batched(calls));
    }
    for (n, indexes) in indexes_of.into_iter().enumerate() {
        send(n, indexes.after);
    }
    for pending in group {
        if let Some(refusal) = pending.state.mirrors_refuse() {
            return Err(pending.state.fail(request, refusal));
        }
    }
    let results = first.backend().commit_unit(sent).await;
    if let Some(at) = results.iter().position(Result::is_err) {
        let failed_on = owners.get(at).map_or(first, |&n| &group[n].state);
        let error = results[at].clone().expect_err("found as an error");
        return Err(failed_on.fail(request, error));
    }
    for (pending, calls) in group.iter().zip(&calls_of) {
        if let Some(mirror) = &pending.state.placement().mirror {
            let done: Vec<crate::runtime::call::CallResult> =
                calls.iter().map(|_| Ok(Reply::Done)).collect();
            mirror.follow(&pending.state.def.name, calls, &done).await;
        }
    }
    drop(gates);
    drop(alone);
    for pending in group {
        pending
            .state
            .mirrors_confirm()
            .await
            .map_err(|error| pending.state.fail(request, error))?;
    }
    Ok(())
}

/// Inserts sent to a store at once, at most.
const INSERTS_AT_ONCE: usize = 1_000;
/// Bytes of records sent to a store at once, at most.
const INSERT_BYTES_AT_ONCE: usize = 1 << 20;

/// `calls` with each run of inserts into one dataset sent as
/// `insert-many` calls of up to [`INSERTS_AT_ONCE`] records.
fn batched(calls: &[Call]) -> Vec<Call> {
    let mut out: Vec<Call> = Vec::new();
    // Bytes of the last insert-many so far.
    let mut bytes = 0;
    for call in calls {
        let Call::Insert(ds, key, value) = call else {
            out.push(call.clone());
            continue;
        };
        let entry = Entry {
            key: key.clone(),
            value: value.clone(),
        };
        if let Some(Call::InsertMany(into, entries)) = out.last_mut()
            && into == ds
            && entries.len() < INSERTS_AT_ONCE
            && bytes < INSERT_BYTES_AT_ONCE
        {
            bytes += entry.value.len();
            entries.push(entry);
            continue;
        }
        bytes = entry.value.len();
        out.push(Call::InsertMany(ds.clone(), vec![entry]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_units_inserts_go_many_at_a_time() {
        let ds = |name: &str| vsam_plugin_sdk::Dataset {
            name: name.into(),
            organization: vsam_plugin_sdk::Organization::Ksds,
            key_offset: 0,
            key_length: 2,
            max_record_length: 9,
            min_record_length: 1,
            codepage: "cp037".into(),
        };
        let insert = |d: &str, n: usize| Call::Insert(ds(d), vec![n as u8], vec![0; 4]);
        let mut calls: Vec<Call> = (0..INSERTS_AT_ONCE + 2).map(|n| insert("A", n)).collect();
        calls.push(Call::Delete(ds("A"), vec![9]));
        calls.push(insert("A", 7));
        calls.push(insert("B", 8));
        let sent = batched(&calls);
        let shape: Vec<(&str, usize)> = sent
            .iter()
            .map(|call| match call {
                Call::InsertMany(d, entries) => (d.name.as_str(), entries.len()),
                other => (other.name(), 1),
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("A", INSERTS_AT_ONCE),
                ("A", 2),
                ("delete", 1),
                ("A", 1),
                ("B", 1)
            ],
            "in order, cut at the limit, by dataset, around other calls"
        );
    }
}
