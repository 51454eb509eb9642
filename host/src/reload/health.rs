//! The health check a new plugin version, or new settings, of a backend
//! pass before they take traffic: an instance of their own reads one record
//! of each dataset the backend holds. A version that cannot read what the
//! serving one reads (a wrong component renamed over the plugin file, a
//! directory or database that is not the one the datasets were defined in)
//! is refused, and the serving version serves on.
//!
//! The probe instance runs beside the serving one, so a plugin must not
//! change storage when it only reads (see the plugin-sdk README).

use crate::catalog::DatasetDef;
use crate::runtime::BackendSettings;
use crate::runtime::call::{Call, CallError, RecordStore, Reply};
use crate::runtime::wasm::{Grants, WasmStore};
use crate::runtime::{BackendHandle, LoadedPlugin};
use std::sync::Arc;
use vsam_plugin_sdk::{Direction, Start};

/// Datasets probed per backend at most; a larger catalog is sampled evenly,
/// so a reload stays quick with a million datasets.
pub const PROBED: usize = 100;

/// A dataset the new version could not read, and its answer.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The dataset.
    pub def: DatasetDef,
    /// What the new version answered.
    pub error: String,
}

/// Up to [`PROBED`] of `datasets`, spread over the whole list.
fn sample(datasets: &[DatasetDef]) -> impl Iterator<Item = &DatasetDef> {
    let step = datasets.len().div_ceil(PROBED).max(1);
    datasets.iter().step_by(step)
}

/// A scan of one record from the start: the cheapest read of a dataset.
fn first_record(def: &DatasetDef) -> Call {
    Call::Scan(def.to_plugin(), Start::Edge, Direction::Forward, 1)
}

fn answer(result: Result<Reply, CallError>) -> Result<(), String> {
    match result {
        Ok(Reply::Entries(_)) => Ok(()),
        Ok(other) => Err(format!("answered a scan with {other:?}")),
        Err(error) => Err(error.to_string()),
    }
}

/// Reads one record of each (sampled) dataset with a probe instance of
/// `plugin` under `settings`; the datasets it cannot read. Blocking: runs
/// on the reload's thread.
pub fn probe(
    plugin: &Arc<LoadedPlugin>,
    settings: &BackendSettings,
    grants: &Grants,
    datasets: &[DatasetDef],
) -> Result<Vec<Unreadable>, String> {
    if datasets.is_empty() {
        return Ok(Vec::new());
    }
    let mut store = WasmStore::new(plugin.clone(), settings.clone(), grants.clone());
    store
        .ensure_instance()
        .map_err(|error| format!("the health check's instance did not start: {error}"))?;
    Ok(sample(datasets)
        .filter_map(|def| {
            answer(store.call(first_record(def)))
                .err()
                .map(|error| Unreadable {
                    def: def.clone(),
                    error,
                })
        })
        .collect())
}

/// The first of `unreadable` that the serving version reads: a dataset the
/// new version would fail. Datasets neither reads (storage removed by hand)
/// say nothing about the new version.
pub async fn regressed(serving: &BackendHandle, unreadable: &[Unreadable]) -> Option<Unreadable> {
    for dataset in unreadable {
        if answer(serving.call(first_record(&dataset.def)).await).is_ok() {
            return Some(dataset.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(count: usize) -> Vec<DatasetDef> {
        (0..count)
            .map(|i| DatasetDef {
                name: format!("A.D{i:07}"),
                organization: vsam_protocol::Organization::Ksds,
                key_offset: 0,
                key_length: 8,
                min_record: 1,
                max_record: 80,
                codepage: vsam_plugin_sdk::codepage::CodePage::Cp037,
                backend: "sqlite".into(),
                layout: None,
                relation: None,
            })
            .collect()
    }

    #[test]
    fn a_large_catalog_is_sampled_from_end_to_end() {
        assert_eq!(sample(&defs(3)).count(), 3);
        assert_eq!(sample(&defs(PROBED)).count(), PROBED);
        let many = defs(10_050);
        let picked: Vec<_> = sample(&many).collect();
        assert!(picked.len() <= PROBED && picked.len() >= PROBED / 2);
        assert_eq!(picked[0].name, "A.D0000000");
        assert!(picked.last().unwrap().name.as_str() > "A.D0009000");
    }
}
