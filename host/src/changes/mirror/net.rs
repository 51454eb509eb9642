//! A batch of changes as its net effect: each key's last change, per
//! dataset, sent to the mirror as `apply` calls of one job (one commit).

use crate::runtime::BackendHandle;
use crate::runtime::call::Call;
use std::collections::BTreeMap;
use vsam_plugin_sdk::{Dataset, Entry};

/// Bytes of records one `apply` call carries, at most (a batch of large
/// records goes in several calls of one transaction).
const APPLY_BYTES_AT_ONCE: usize = 1 << 20;

/// The net effect of record changes, per dataset in the order each was
/// first changed: for each key, the record it ends with (`None`: erased).
/// Changes of one transaction's batch may be applied in any order but
/// each key's last, which this keeps.
#[derive(Default)]
pub(super) struct NetChanges {
    datasets: Vec<(Dataset, FinalRecords)>,
}

/// Each key changed, with the record it ends with (`None`: erased).
type FinalRecords = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

impl NetChanges {
    pub(super) fn set(&mut self, dataset: &Dataset, key: &[u8], record: Option<Vec<u8>>) {
        let keys = match self
            .datasets
            .iter()
            .position(|(ds, _)| ds.name == dataset.name)
        {
            Some(at) => &mut self.datasets[at].1,
            None => {
                self.datasets.push((dataset.clone(), BTreeMap::new()));
                &mut self.datasets.last_mut().expect("just pushed").1
            }
        };
        keys.insert(key.to_vec(), record);
    }

    /// The calls that apply them: one `apply` per dataset, more for one
    /// whose records pass [`APPLY_BYTES_AT_ONCE`] (each call's records are
    /// copied into the plugin's memory, which has a limit).
    fn take_calls(&mut self) -> Vec<Call> {
        let mut calls = Vec::new();
        for (ds, keys) in std::mem::take(&mut self.datasets) {
            let mut puts = Vec::new();
            let mut bytes = 0;
            let mut erases = Vec::new();
            for (key, record) in keys {
                let Some(value) = record else {
                    erases.push(key);
                    continue;
                };
                if bytes >= APPLY_BYTES_AT_ONCE {
                    calls.push(Call::Apply(
                        ds.clone(),
                        std::mem::take(&mut puts),
                        Vec::new(),
                    ));
                    bytes = 0;
                }
                bytes += key.len() + value.len();
                puts.push(Entry { key, value });
            }
            calls.push(Call::Apply(ds, puts, erases));
        }
        calls
    }

    /// Runs what is gathered on the mirror, as one job (one commit).
    pub(super) async fn flush(&mut self, target: &BackendHandle) -> Result<(), String> {
        let calls = self.take_calls();
        if calls.is_empty() {
            return Ok(());
        }
        let count = calls.len();
        let results = target.replica_chain(calls).await;
        let ran = results.len();
        match results.into_iter().find_map(Result::err) {
            Some(error) => Err(format!(
                "mirror {} refused a change: {error}",
                target.name()
            )),
            None if ran < count => Err(format!(
                "mirror {}: {} of {count} writes did not run",
                target.name(),
                count - ran
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], value: &[u8]) -> Entry {
        Entry {
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn a_batch_goes_as_each_keys_last_change_per_dataset_in_first_changed_order() {
        let (a, b) = (Dataset::ksds("A.DS", 2, 10), Dataset::ksds("B.DS", 2, 10));
        let mut net = NetChanges::default();
        net.set(&b, b"K1", Some(b"B1".to_vec()));
        net.set(&a, b"K2", Some(b"OLD".to_vec()));
        net.set(&a, b"K1", None);
        net.set(&a, b"K2", Some(b"NEW".to_vec()));
        // Inserted then erased in the batch: erased (the mirror may hold
        // it from an earlier attempt).
        net.set(&b, b"K3", Some(b"B3".to_vec()));
        net.set(&b, b"K3", None);
        // Erased then inserted again: stored.
        net.set(&a, b"K1", Some(b"BACK".to_vec()));
        let calls = net.take_calls();
        let shapes: Vec<_> = calls
            .iter()
            .map(|call| match call {
                Call::Apply(ds, puts, erases) => (ds.name.clone(), puts.clone(), erases.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shapes,
            vec![
                (
                    "B.DS".to_string(),
                    vec![put(b"K1", b"B1")],
                    vec![b"K3".to_vec()]
                ),
                (
                    "A.DS".to_string(),
                    vec![put(b"K1", b"BACK"), put(b"K2", b"NEW")],
                    vec![]
                ),
            ]
        );
        assert!(net.take_calls().is_empty(), "taken once");
    }

    #[test]
    fn a_batch_of_large_records_goes_in_calls_of_a_bounded_size() {
        let ds = Dataset::ksds("BIG.DS", 4, 32_760);
        let mut net = NetChanges::default();
        let records = 3 * APPLY_BYTES_AT_ONCE / 32_000;
        for n in 0..records {
            net.set(&ds, format!("{n:04}").as_bytes(), Some(vec![b'R'; 32_000]));
        }
        net.set(&ds, b"GONE", None);
        let calls = net.take_calls();
        let mut stored = 0;
        for (i, call) in calls.iter().enumerate() {
            let Call::Apply(_, puts, erases) = call else {
                panic!("{call:?}");
            };
            let bytes: usize = puts.iter().map(|e| e.key.len() + e.value.len()).sum();
            assert!(
                bytes < APPLY_BYTES_AT_ONCE + 32_004,
                "call {i}: {bytes} bytes"
            );
            assert_eq!(erases.len(), usize::from(i + 1 == calls.len()), "call {i}");
            stored += puts.len();
        }
        assert!(calls.len() >= 3, "{} calls", calls.len());
        assert_eq!(stored, records);
    }
}
