//! Changes a file gathers in `commit` durability and sends many at a
//! time: a load's WRITEs as PUT CHAINs, the REWRITEs and DELETEs of records
//! just read as PUT CHAINs with UPD and GET UPD + ERASE pairs, all before
//! the file's next request to the server. A change the server refuses
//! marks the file, and the bridge rolls the program's unit back.

use super::{MappedFile, Outcome, UPDATE, number};
use crate::fcd::{AccessMode, FileOrg, open_mode};
use crate::link::{Failure, Link};
use crate::position::BROWSE;
use crate::status;
use futures::FutureExt;
use futures::future::BoxFuture;
use vsam_client::{ChainedRecord, ClientError};
use vsam_protocol::{Processing, RplOptions};

/// Records a load sends in one PUT CHAIN, at most.
pub(super) const DEFERRED_RECORDS: usize = 2_000;
/// Bytes a load sends in one PUT CHAIN, at most.
pub(super) const DEFERRED_BYTES: usize = 1 << 20;
/// REWRITEs and DELETEs sent together, at most.
pub(super) const DEFERRED_CHANGES: usize = 512;

/// The answers to the changes gathered, once sent: one per change, `None`
/// if it was made, else why not.
pub(super) type ChangesSent = BoxFuture<'static, Vec<Option<ClientError>>>;

/// A REWRITE (`record`) or DELETE (`None`) the bridge has checked and not
/// yet sent.
pub(super) struct DeferredChange {
    /// The record's key (or RBA/RRN as 8 bytes).
    pub(super) key: Vec<u8>,
    pub(super) record: Option<Vec<u8>>,
}

impl MappedFile {
    /// True if WRITEs are gathered and sent in chains: a load (OPEN
    /// OUTPUT, sequential access) of an indexed or relative file in
    /// `commit` durability. As in VSAM's load mode, the sequence and the
    /// length of each record are checked as it is written; the store's
    /// verdict (a key another program stored meanwhile, no space) comes at
    /// the next chain, the commit point or CLOSE, whose status carries it,
    /// and a refusal rolls the unit of work back.
    pub(super) fn defers_writes(&self) -> bool {
        self.in_unit
            && self.mode == Some(open_mode::OUTPUT)
            && self.access_mode == AccessMode::Sequential
            && matches!(self.org, FileOrg::Indexed | FileOrg::Relative)
    }

    /// True if REWRITEs and DELETEs are gathered and sent together: an
    /// I-O open in `commit` durability of a file without alternate keys
    /// (whose REWRITE status tells of duplicate alternate keys at once).
    /// As in VSAM's deferred writes, the statement's own checks (open
    /// mode, a record read first, the key unchanged, the length) are made
    /// at once; the store's verdict (a record another program holds or
    /// erased meanwhile) comes with the file's next request to the server,
    /// the commit point or CLOSE, whose status carries it, and a refusal
    /// rolls the unit of work back. Each record is taken under exclusive
    /// control when it is sent.
    pub(super) fn defers_changes(&self) -> bool {
        self.in_unit && self.mode == Some(open_mode::IO) && self.paths.is_empty()
    }

    /// Sends what the file gathered: a load's WRITEs, or REWRITEs and
    /// DELETEs. The status of the first the server refused is returned
    /// (and said on stderr with its record).
    pub fn send_deferred(&mut self, link: &mut Link) -> Outcome {
        if !self.deferred_changes.is_empty() {
            return self.send_changes(link);
        }
        self.send_load(link)
    }

    /// Whether anything gathered waits to be sent.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty() || !self.deferred_changes.is_empty()
    }

    /// Sends the REWRITEs and DELETEs gathered, all in one round trip:
    /// each run of REWRITEs as one PUT CHAIN with UPD (records replaced by
    /// key), each DELETE as a GET UPD and an ERASE, every request sent
    /// before any answer is read (the server runs a connection's requests
    /// in order). The first change the server refused gives the status
    /// (and the program's unit is then rolled back, see `lib.rs`).
    fn send_changes(&mut self, link: &mut Link) -> Outcome {
        let Some((changes, sending)) = self.changes_request() else {
            return Ok(status::OK);
        };
        match link.run(async move { Ok::<_, ClientError>(sending.await) }) {
            Ok(answers) => self.changes_verdict(&changes, answers),
            Err(failure) => self.routine("REWRITE", failure),
        }
    }

    /// The requests that send the changes gathered (taken from the file),
    /// as one future whose answers line up with the changes: `None` for a
    /// change made, the error for one refused. `None` if nothing waits.
    pub(super) fn changes_request(&mut self) -> Option<(Vec<DeferredChange>, ChangesSent)> {
        if self.deferred_changes.is_empty() {
            return None;
        }
        let changes = std::mem::take(&mut self.deferred_changes);
        let dataset = self.dataset.clone()?;
        let org = self.org;
        let options = match org {
            FileOrg::Sequential => RplOptions::addressed(Processing::Direct).update(),
            _ => RplOptions::direct().update(),
        };
        let mut requests: Vec<BoxFuture<'static, Vec<Option<ClientError>>>> = Vec::new();
        let mut rest = &changes[..];
        while let Some(first) = rest.first() {
            let run = match first.record {
                Some(_) => rest.iter().take_while(|c| c.record.is_some()).count(),
                None => 1,
            };
            let (these, after) = rest.split_at(run);
            rest = after;
            let dataset = dataset.clone();
            if first.record.is_none() {
                let key = first.key.clone();
                requests.push(
                    async move {
                        let erasing = dataset.clone();
                        let erase = async move { erasing.erase(UPDATE).await };
                        vec![Self::held_change(dataset, org, key, erase).await.err()]
                    }
                    .boxed(),
                );
                continue;
            }
            let records: Vec<ChainedRecord> = these
                .iter()
                .map(|change| ChainedRecord {
                    address: if org == FileOrg::Indexed {
                        0
                    } else {
                        number(&change.key)
                    },
                    record: change.record.clone().unwrap_or_default(),
                })
                .collect();
            requests.push(
                async move {
                    let total = records.len();
                    let mut answers: Vec<Option<ClientError>> = vec![None; total];
                    match dataset.put_chain(UPDATE, options, records).await {
                        Ok(outcome) => {
                            if let Some(failure) = outcome.failure {
                                answers[outcome.written.len().min(total - 1)] =
                                    Some(ClientError::Vsam(failure));
                            }
                        }
                        Err(error) => answers[0] = Some(error),
                    }
                    answers
                }
                .boxed(),
            );
        }
        let sending = async move {
            futures::future::join_all(requests)
                .await
                .into_iter()
                .flatten()
                .collect()
        }
        .boxed();
        Some((changes, sending))
    }

    /// The statement's status after the changes gathered were sent: OK, or
    /// the status of the first one refused (said on stderr).
    pub(super) fn changes_verdict(
        &mut self,
        changes: &[DeferredChange],
        answers: Vec<Option<ClientError>>,
    ) -> Outcome {
        let count = changes.len();
        let refused = changes
            .iter()
            .zip(answers)
            .find_map(|(change, answer)| answer.map(|error| (change, error)));
        let Some((change, error)) = refused else {
            return Ok(status::OK);
        };
        let request = if change.record.is_some() {
            "REWRITE"
        } else {
            "DELETE"
        };
        let failure = Failure::from(error);
        if let Failure::Lost(_) = failure {
            return self.routine(request, failure);
        }
        let problem = self.failed(request, failure);
        eprintln!(
            "vsamextfh: {} (a {request} of the record {}, sent with {} other changes gathered)",
            problem.message,
            self.describe_key(&change.key),
            count - 1
        );
        self.refused_deferred = true;
        Ok(problem.status)
    }

    /// Sends the WRITEs gathered so far as PUT CHAINs. A record the server
    /// refuses ends the chain: its status is returned (and said on stderr
    /// with the record), and the records after it are not written.
    fn send_load(&mut self, link: &mut Link) -> Outcome {
        if self.deferred.is_empty() {
            return Ok(status::OK);
        }
        let records = std::mem::take(&mut self.deferred);
        self.deferred_bytes = 0;
        let Some(dataset) = self.dataset.clone() else {
            return Ok(status::OK);
        };
        let count = records.len();
        let chained = link.run(async move {
            dataset
                .put_chain(BROWSE, RplOptions::direct(), records)
                .await
        });
        match chained {
            Ok(outcome) => match outcome.failure {
                None => Ok(status::OK),
                Some(error) => {
                    let problem = self.failed("WRITE", Failure::Vsam(error));
                    eprintln!(
                        "vsamextfh: {} (a load's WRITE, sent with {} others gathered)",
                        problem.message,
                        count - 1
                    );
                    self.refused_deferred = true;
                    Ok(problem.status)
                }
            },
            Err(failure) => self.routine("WRITE", failure),
        }
    }

    /// Forgets the WRITEs, REWRITEs and DELETEs gathered and not sent (a
    /// ROLLBACK).
    pub fn drop_deferred(&mut self) {
        self.deferred.clear();
        self.deferred_bytes = 0;
        self.deferred_changes.clear();
    }

    /// Whether the server refused a change this file gathered, not yet
    /// handled (see `refused_deferred`).
    pub fn refused(&self) -> bool {
        self.refused_deferred
    }

    /// Whether the server refused a change this file gathered since the
    /// last call (see `refused_deferred`).
    pub fn take_refusal(&mut self) -> bool {
        std::mem::take(&mut self.refused_deferred)
    }

    /// Sends what the file gathered before one of its requests goes to
    /// the server: `Ok(OK)` to go on, else the status the statement ends
    /// with instead (a gathered change the server refused).
    pub(super) fn settle(&mut self, link: &mut Link) -> Outcome {
        if self.has_deferred() {
            self.send_deferred(link)
        } else {
            Ok(status::OK)
        }
    }

    /// Gathers a REWRITE or DELETE of the record the program read last
    /// (see [`MappedFile::defers_changes`]); the statement's status.
    pub(super) fn defer_change(
        &mut self,
        link: &mut Link,
        key: Vec<u8>,
        record: Option<Vec<u8>>,
    ) -> Outcome {
        self.change_ahead(&key, record.as_deref());
        self.deferred_changes.push(DeferredChange { key, record });
        if self.deferred_changes.len() >= DEFERRED_CHANGES {
            return self.send_changes(link);
        }
        Ok(status::OK)
    }
}
