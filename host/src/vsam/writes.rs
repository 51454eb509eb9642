//! A dataset's record writes outside a unit of work: one job on its
//! backend (with a migration's mirror following), or, when alternate
//! indexes are kept in step, record by record through its upgrade set.

use super::alternate::upgrade::{self, Upgraded};
use super::dataset::DatasetState;
use crate::runtime::call::{Call, Reply};
use vsam_protocol::Status;

/// Runs inserts and appends in order as one backend job, until the
/// first that fails; one result per call that ran. With alternate
/// indexes to upgrade, record by record through them.
pub(crate) async fn write_chain(
    state: &DatasetState,
    request: &str,
    calls: Vec<Call>,
) -> (Vec<Result<Reply, Status>>, Upgraded) {
    if calls.is_empty() {
        return (Vec::new(), Upgraded::default());
    }
    if state.upgrades() {
        return upgrade::insert(state, request, calls).await;
    }
    let results = state.write(calls).await;
    state.wrote();
    let results = results
        .into_iter()
        .map(|result| result.map_err(|e| state.fail(request, e)))
        .collect();
    (results, Upgraded::default())
}

/// Replaces the record under an existing key.
pub(crate) async fn replace(
    state: &DatasetState,
    request: &str,
    key: Vec<u8>,
    record: Vec<u8>,
) -> Result<Upgraded, Status> {
    if state.upgrades() {
        return upgrade::replace(state, request, key, record).await;
    }
    let result = state
        .write(vec![Call::Replace(
            state.plugin_dataset.clone(),
            key,
            record,
        )])
        .await
        .pop()
        .expect("one result per call");
    state.wrote();
    result
        .map(|_| Upgraded::default())
        .map_err(|e| state.fail(request, e))
}

/// Replaces records under existing keys in order, as one backend job
/// (record by record through the alternate indexes to upgrade), until
/// the first that fails: one result per replacement that ran.
pub(crate) async fn replace_chain(
    state: &DatasetState,
    request: &str,
    records: Vec<(Vec<u8>, Vec<u8>)>,
) -> (Vec<Result<(), Status>>, Upgraded) {
    if records.is_empty() {
        return (Vec::new(), Upgraded::default());
    }
    if state.upgrades() {
        let mut results = Vec::with_capacity(records.len());
        let mut upgraded = Upgraded::default();
        for (key, record) in records {
            match upgrade::replace(state, request, key, record).await {
                Ok(done) => {
                    upgraded.duplicate |= done.duplicate;
                    results.push(Ok(()));
                }
                Err(status) => {
                    results.push(Err(status));
                    break;
                }
            }
        }
        return (results, upgraded);
    }
    let calls = records
        .into_iter()
        .map(|(key, record)| Call::Replace(state.plugin_dataset.clone(), key, record))
        .collect();
    let results = state.write(calls).await;
    state.wrote();
    let results = results
        .into_iter()
        .map(|result| result.map(drop).map_err(|e| state.fail(request, e)))
        .collect();
    (results, Upgraded::default())
}

/// Deletes the record under `key`.
pub(crate) async fn delete(
    state: &DatasetState,
    request: &str,
    key: Vec<u8>,
) -> Result<(), Status> {
    if state.upgrades() {
        return upgrade::delete(state, request, key).await;
    }
    let result = state
        .write(vec![Call::Delete(state.plugin_dataset.clone(), key)])
        .await
        .pop()
        .expect("one result per call");
    state.wrote();
    result.map(drop).map_err(|e| state.fail(request, e))
}
