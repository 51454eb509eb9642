//! An open dataset's calls to its backend on behalf of requests: each
//! answer checked against the contract (lengths, scan order), each failure
//! made a VSAM status naming the dataset and the request, and writes passed
//! by the dataset's mirrors.

use super::{DatasetState, KeyBound};
use crate::after_panic::LockOrStop;
use crate::runtime::call::{Call, CallError, Reply};
use crate::vsam::subject::Subject;
use vsam_plugin_sdk::{Direction, Entry, Start, StoreError};
use vsam_protocol::{Status, Verb, fdbk, open_error};

impl DatasetState {
    /// What a status of `request` on this dataset starts with.
    fn about<'a>(&'a self, request: &'a str) -> Subject<'a> {
        Subject {
            dataset: &self.def.name,
            request,
        }
    }

    /// The status of a failed backend call.
    pub(crate) fn fail(&self, request: &str, error: CallError) -> Status {
        let about = self.about(request);
        let backend = self.backend();
        let backend = backend.name();
        match error {
            CallError::Store(StoreError::DuplicateKey) => {
                about.logical(fdbk::DUPLICATE_KEY, "a record with this key exists")
            }
            CallError::Store(StoreError::NotFound) => {
                about.logical(fdbk::NOT_FOUND, "no record with this key")
            }
            CallError::Store(StoreError::NoSpace(m)) => about.logical(
                fdbk::NO_SPACE,
                format!("backend {backend} is out of space: {m}"),
            ),
            CallError::Store(StoreError::NoSuchDataset) => about.physical(format!(
                "backend {backend} has no storage for the dataset: check that the backend points at the storage the dataset was defined in (its directory, database or bucket in the configuration, the plugin version) and that nothing outside vsamrd removed it; the catalog entry is kept"
            )),
            CallError::Store(StoreError::AlreadyExists) => about.physical(format!(
                "backend {backend} reported that storage already exists"
            )),
            CallError::Store(StoreError::Io(m)) => {
                about.physical(format!("backend {backend} I/O error: {m}"))
            }
            CallError::Store(StoreError::Invalid(m)) => {
                about.physical(format!("backend {backend} refused the call: {m}"))
            }
            CallError::Fault(m) | CallError::Unavailable(m) => about.physical(m),
        }
    }

    async fn call(&self, request: &str, call: Call) -> Result<Reply, Status> {
        self.backend()
            .call(call)
            .await
            .map_err(|e| self.fail(request, e))
    }

    /// Runs writes on the backend, and on the mirror if a migration has
    /// one: the writes' results are the primary's.
    pub(crate) async fn write(&self, calls: Vec<Call>) -> Vec<crate::runtime::call::CallResult> {
        if let Some(refusal) = self.mirrors_refuse() {
            return vec![Err(refusal)];
        }
        let mut results = self.write_through(calls).await;
        if results.iter().any(Result::is_ok)
            && let Err(error) = self.mirrors_confirm().await
        {
            // Committed on the primary: the last write acknowledged says
            // its sync mirrors have not applied it.
            if let Some(last) = results.iter_mut().rev().find(|r| r.is_ok()) {
                *last = Err(error);
            }
        }
        results
    }

    /// Why the dataset's mirrors refuse writes now (a sync mirror that is
    /// down, an async one whose queue is full), if they do.
    pub(crate) fn mirrors_refuse(&self) -> Option<CallError> {
        self.changes
            .admit(&self.def.name, self.backend().name())
            .err()
            .map(|why| CallError::Store(vsam_plugin_sdk::StoreError::Io(why)))
    }

    /// Waits until the dataset's sync mirrors applied what was committed.
    pub(crate) async fn mirrors_confirm(&self) -> Result<(), CallError> {
        self.changes
            .confirm(&self.def.name, self.backend().name())
            .await
            .map_err(|why| CallError::Store(vsam_plugin_sdk::StoreError::Io(why)))
    }

    async fn write_through(&self, calls: Vec<Call>) -> Vec<crate::runtime::call::CallResult> {
        let shared = self.gate.clone().read_owned().await;
        self.note_inserts(&calls);
        let placement = self.placement.load_full();
        let Some(mirror) = placement.mirror.clone() else {
            return placement.primary.call_chain(calls).await;
        };
        // A task of its own: a request dropped half way (a connection cut
        // at shutdown) must not leave the mirror without the write.
        let name = self.def.name.clone();
        let both = tokio::spawn(async move {
            let _shared = shared;
            let results = placement.primary.call_chain(calls.clone()).await;
            mirror.follow(&name, &calls, &results).await;
            results
        });
        both.await.unwrap_or_else(|error| {
            vec![Err(CallError::Fault(format!(
                "the write to both backends of a migration failed: {error}"
            )))]
        })
    }

    /// The record under `key`.
    pub async fn get(&self, request: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        match self
            .call(
                request,
                Call::Get(self.plugin_dataset.clone(), key.to_vec()),
            )
            .await?
        {
            Reply::Record(record) => {
                if let Some(record) = &record {
                    self.check_length(request, record)?;
                }
                Ok(record)
            }
            other => Err(self.protocol_violation(request, &other)),
        }
    }

    /// The records under `keys`, in order, asked with one `get-many`.
    pub async fn get_many(
        &self,
        request: &str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, Status> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let call = Call::GetMany(self.plugin_dataset.clone(), keys.to_vec());
        match self.call(request, call).await? {
            Reply::Records(records) if records.len() == keys.len() => {
                for record in records.iter().flatten() {
                    self.check_length(request, record)?;
                }
                Ok(records)
            }
            other => Err(self.protocol_violation(request, &other)),
        }
    }

    /// Up to `limit` records from `from` in `dir`.
    pub async fn scan(
        &self,
        request: &str,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> Result<Vec<Entry>, Status> {
        match self
            .call(
                request,
                Call::Scan(self.plugin_dataset.clone(), from.clone(), dir, limit),
            )
            .await?
        {
            Reply::Entries(entries) => {
                self.check_scan(request, &from, dir, limit, &entries)?;
                for entry in &entries {
                    self.check_length(request, &entry.value)?;
                }
                Ok(entries)
            }
            other => Err(self.protocol_violation(request, &other)),
        }
    }

    /// A plugin cannot hand a program a record longer than the dataset
    /// allows (the program's record area has that length).
    fn check_length(&self, request: &str, record: &[u8]) -> Result<(), Status> {
        if record.len() <= self.def.max_record as usize {
            return Ok(());
        }
        Err(self.about(request).physical(format!(
            "backend {} returned a record of {} bytes, and the dataset's records are at most {} (a plugin bug)",
            self.backend().name(),
            record.len(),
            self.def.max_record
        )))
    }

    /// A plugin must return keys in order, from the start, within the limit:
    /// the host's positioning depends on it.
    fn check_scan(
        &self,
        request: &str,
        from: &Start,
        dir: Direction,
        limit: u32,
        entries: &[Entry],
    ) -> Result<(), Status> {
        if scan_is_well_formed(from, dir, limit, entries) {
            Ok(())
        } else {
            Err(self.about(request).physical(format!(
                "backend {} returned a scan out of key order or past its limit (a plugin bug)",
                self.backend().name()
            )))
        }
    }

    /// Runs a call on an alternate index's storage (in the base's backend).
    pub(crate) async fn index_call(&self, request: &str, call: Call) -> Result<Reply, Status> {
        self.placement
            .load()
            .primary
            .call(call)
            .await
            .map_err(|e| self.fail(request, e))
    }

    /// Runs one write on the base alone (and its migration mirror).
    pub(crate) async fn write_base(&self, request: &str, call: Call) -> Result<Reply, Status> {
        let result = self
            .write(vec![call])
            .await
            .pop()
            .expect("one result per call");
        self.wrote();
        result.map_err(|e| self.fail(request, e))
    }

    /// Empties the dataset: its storage is dropped and created anew (an
    /// OPEN with RST). Refused while a migration copies it.
    pub async fn reset(&self) -> Result<(), Status> {
        let _alone = self.hold_writes().await;
        let placement = self.placement();
        if placement.mirror.is_some() {
            return Err(self.about(Verb::Open.name()).refused(
                open_error::NOT_AVAILABLE,
                "RST (reset to empty) is refused while the dataset is migrated; finalize or roll back the migration first",
            ));
        }
        let backend = &placement.primary;
        let storage = self.plugin_dataset.clone();
        match backend.call(Call::Destroy(storage.clone())).await {
            Ok(_) | Err(CallError::Store(StoreError::NoSuchDataset)) => {}
            Err(error) => return Err(self.fail("OPEN (reset)", error)),
        }
        let created = backend
            .call(Call::Create(storage, self.def.layout.clone()))
            .await;
        *self.key_bound.lock_or_stop() = (KeyBound::Empty, 0);
        // The alternate indexes empty with it.
        for index in &self.indexes {
            let storage = index.storage.clone();
            let _ = backend.call(Call::Destroy(storage.clone())).await;
            if let Err(error) = backend.call(Call::Create(storage, None)).await {
                return Err(self.fail("OPEN (reset of an alternate index)", error));
            }
        }
        self.wrote();
        created
            .map(drop)
            .map_err(|error| self.fail("OPEN (reset)", error))
    }

    /// Asks the backend (and a mirror) to compact and sync the dataset, and
    /// the alternate indexes its writes keep in step: they are written
    /// with it, and not otherwise closed (the CSV plugin kept an index's
    /// entries in memory, and its file without them, for good).
    pub async fn flush(&self) -> Result<(), Status> {
        if let Some(mirror) = &self.placement().mirror {
            let _ = mirror
                .backend
                .call(Call::Flush(self.plugin_dataset.clone()))
                .await;
        }
        let flushed = self
            .call(Verb::Close.name(), Call::Flush(self.plugin_dataset.clone()))
            .await
            .map(drop);
        for index in self.upgrade_set() {
            let request = format!("{} (of alternate index {})", Verb::Close.name(), index.name);
            if let Err(status) = self
                .index_call(&request, Call::Flush(index.storage.clone()))
                .await
            {
                tracing::warn!(dataset = %self.def.name, "{}", status.message);
            }
        }
        flushed
    }

    pub(crate) fn protocol_violation(&self, request: &str, reply: &Reply) -> Status {
        self.about(request).physical(format!(
            "backend {} answered with the wrong kind of reply ({reply:?})",
            self.backend().name()
        ))
    }
}

/// True if `entries` is what a scan from `from` in `dir` with `limit` may
/// return: strictly ordered in the direction, on the right side of the
/// start, and no more than the limit.
fn scan_is_well_formed(from: &Start, dir: Direction, limit: u32, entries: &[Entry]) -> bool {
    let ordered = entries.windows(2).all(|w| match dir {
        Direction::Forward => w[0].key < w[1].key,
        Direction::Backward => w[0].key > w[1].key,
    });
    let after_start = entries.first().is_none_or(|first| match (from, dir) {
        (Start::Edge, _) => true,
        (Start::Inclusive(k), Direction::Forward) => first.key >= *k,
        (Start::Exclusive(k), Direction::Forward) => first.key > *k,
        (Start::Inclusive(k), Direction::Backward) => first.key <= *k,
        (Start::Exclusive(k), Direction::Backward) => first.key < *k,
    });
    ordered && after_start && entries.len() <= limit as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&[u8]]) -> Vec<Entry> {
        keys.iter()
            .map(|k| Entry {
                key: k.to_vec(),
                value: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn scans_from_plugins_are_checked() {
        let fwd = Direction::Forward;
        let bwd = Direction::Backward;
        assert!(scan_is_well_formed(
            &Start::Edge,
            fwd,
            3,
            &entries(&[b"a", b"b", b"c"])
        ));
        assert!(
            !scan_is_well_formed(&Start::Edge, fwd, 2, &entries(&[b"a", b"b", b"c"])),
            "past the limit"
        );
        assert!(
            !scan_is_well_formed(&Start::Edge, fwd, 9, &entries(&[b"b", b"a"])),
            "out of order"
        );
        assert!(
            !scan_is_well_formed(&Start::Edge, fwd, 9, &entries(&[b"a", b"a"])),
            "a key twice"
        );
        assert!(scan_is_well_formed(
            &Start::Edge,
            bwd,
            9,
            &entries(&[b"b", b"a"])
        ));
        assert!(
            !scan_is_well_formed(&Start::Exclusive(b"b".to_vec()), fwd, 9, &entries(&[b"b"])),
            "the excluded key"
        );
        assert!(scan_is_well_formed(
            &Start::Inclusive(b"b".to_vec()),
            fwd,
            9,
            &entries(&[b"b"])
        ));
        assert!(
            !scan_is_well_formed(&Start::Inclusive(b"b".to_vec()), bwd, 9, &entries(&[b"c"])),
            "wrong side"
        );
        assert!(scan_is_well_formed(
            &Start::Exclusive(b"b".to_vec()),
            bwd,
            9,
            &[]
        ));
    }
}
