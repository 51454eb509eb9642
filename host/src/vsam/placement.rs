//! Where an open dataset's records are: its backend, and during a live
//! migration a second backend that follows every write (a mirror).
//!
//! While a copy runs, the mirror holds the records up to the copy's cursor;
//! a write at or below the cursor goes to both backends, one above it only
//! to the source, because the copy will carry it over. After the cutover the
//! roles swap: the new backend serves, and the old one keeps following
//! until the migration is finalized, so a rollback loses nothing.

use crate::after_panic::LockOrStop;
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, CallError, CallResult, Reply};
use std::sync::Mutex;
use vsam_plugin_sdk::StoreError;

/// How far the mirror holds the dataset's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Covered {
    /// Nothing copied yet.
    Nothing,
    /// Every record with a key up to and including this one.
    UpTo(Vec<u8>),
    /// Every record: the copy is complete and writes reach both.
    All,
}

impl Covered {
    fn covers(&self, key: &[u8]) -> bool {
        match self {
            Covered::Nothing => false,
            Covered::UpTo(last) => key <= last.as_slice(),
            Covered::All => true,
        }
    }
}

/// A backend that follows the writes of a dataset.
pub struct Mirror {
    /// The backend.
    pub backend: BackendHandle,
    covered: Mutex<Covered>,
    failure: Mutex<Option<String>>,
}

impl Mirror {
    /// A mirror holding `covered` of the records.
    pub fn new(backend: BackendHandle, covered: Covered) -> Self {
        Self {
            backend,
            covered: Mutex::new(covered),
            failure: Mutex::new(None),
        }
    }

    /// Moves the copy's cursor (only while writes are held off).
    pub fn set_covered(&self, covered: Covered) {
        *self.covered.lock_or_stop() = covered;
    }

    /// How far the mirror holds the records.
    pub fn covered(&self) -> Covered {
        self.covered.lock_or_stop().clone()
    }

    /// The first write the mirror could not follow: from then on it is not
    /// a faithful copy.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock_or_stop().clone()
    }

    /// Repeats on the mirror the writes among `calls` that succeeded on the
    /// primary (`results`) and fall in the covered range. An append is
    /// repeated as an insert at the RBA the primary gave it.
    pub async fn follow(&self, dataset: &str, calls: &[Call], results: &[CallResult]) {
        let covered = self.covered();
        let repeated: Vec<Call> = calls
            .iter()
            .zip(results)
            .filter_map(|(call, result)| match (call, result) {
                (Call::Insert(ds, key, value), Ok(_)) if covered.covers(key) => {
                    Some(Call::Insert(ds.clone(), key.clone(), value.clone()))
                }
                (Call::Append(ds, value), Ok(Reply::Key(key))) if covered.covers(key) => {
                    Some(Call::Insert(ds.clone(), key.clone(), value.clone()))
                }
                (Call::Replace(ds, key, value), Ok(_)) if covered.covers(key) => {
                    Some(Call::Replace(ds.clone(), key.clone(), value.clone()))
                }
                (Call::Delete(ds, key), Ok(_)) if covered.covers(key) => {
                    Some(Call::Delete(ds.clone(), key.clone()))
                }
                _ => None,
            })
            .collect();
        if repeated.is_empty() || self.failure().is_some() {
            return;
        }
        if let Err(reason) = self.apply(repeated).await {
            let message = format!(
                "backend {} could not follow a write of {dataset}: {reason}",
                self.backend.name()
            );
            tracing::error!("{message}; the copy there is no longer faithful");
            self.failure.lock_or_stop().get_or_insert(message);
        }
    }

    /// Runs writes on the mirror so that each record ends as the primary
    /// has it, whatever the mirror held before: an insert of a key it
    /// already holds replaces the record, a replace of a key it lacks
    /// inserts it, a delete of a key it lacks is done. A mirror that fell
    /// behind (a crash between the two writes) thus never refuses the
    /// writes that follow, and [`level`](crate::migrate::copy::level)
    /// repairs what it missed.
    pub async fn apply(&self, mut calls: Vec<Call>) -> Result<(), String> {
        while !calls.is_empty() {
            let count = calls.len();
            let results = self.backend.replica_chain(calls.clone()).await;
            let ran = results.len();
            match results.into_iter().last() {
                Some(Ok(_)) if ran == count => return Ok(()),
                Some(Err(CallError::Store(error))) => {
                    let failed = calls.drain(..ran).next_back().expect("a call failed");
                    match (failed, error) {
                        (Call::Insert(ds, key, value), StoreError::DuplicateKey) => {
                            calls.insert(0, Call::Replace(ds, key, value))
                        }
                        (Call::Replace(ds, key, value), StoreError::NotFound) => {
                            calls.insert(0, Call::Insert(ds, key, value))
                        }
                        (Call::Delete(..), StoreError::NotFound) => {}
                        (_, error) => return Err(CallError::Store(error).to_string()),
                    }
                }
                Some(Err(error)) => return Err(error.to_string()),
                _ => return Err("a write did not run".into()),
            }
        }
        Ok(())
    }
}

/// The backend serving a dataset and the mirror following it, if any.
pub struct Placement {
    /// The backend that answers every request.
    pub primary: BackendHandle,
    /// The backend that follows writes during a migration.
    pub mirror: Option<std::sync::Arc<Mirror>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_decides_what_the_mirror_gets() {
        assert!(!Covered::Nothing.covers(b"A"));
        let up_to = Covered::UpTo(b"M".to_vec());
        assert!(up_to.covers(b"A"));
        assert!(up_to.covers(b"M"));
        assert!(!up_to.covers(b"MA"));
        assert!(!up_to.covers(b"N"));
        assert!(Covered::All.covers(b"\xff\xff"));
    }
}
