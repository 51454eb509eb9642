//! WRITE, REWRITE and DELETE: the record or its key taken from the
//! program, and the change sent at once or gathered for the unit of work.

use super::*;

impl MappedFile {
    /// The status of a successful WRITE or REWRITE: 02 if it made a
    /// duplicate alternate key.
    pub(super) fn write_status(status: &vsam_protocol::Status) -> FileStatus {
        if status.r15 == 0 && status.fdbk == fdbk::DUPLICATE_KEY {
            status::DUPLICATE_ALTERNATE
        } else {
            status::OK
        }
    }

    /// The record to write: the record area cut to its current length.
    pub(super) fn record_to_write(&self, fcd: &mut Fcd) -> Result<Vec<u8>, FileStatus> {
        let (min, max, current) = (fcd.min_length(), fcd.max_length(), fcd.current_length());
        let length = if current == 0 { max } else { current };
        if length < min.max(1) || length > max {
            return Err(status::RECORD_LENGTH);
        }
        Ok(fcd.record()[..length].to_vec())
    }

    /// WRITE.
    pub fn write(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        self.last_read = None;
        let mode = self.mode.unwrap_or(open_mode::CLOSED);
        let sequential = self.access_mode == AccessMode::Sequential;
        let allowed = match mode {
            open_mode::OUTPUT | open_mode::EXTEND => true,
            open_mode::IO => self.org != FileOrg::Sequential && !sequential,
            _ => false,
        };
        if !allowed {
            return Ok(status::NOT_OUTPUT);
        }
        let record = match self.record_to_write(fcd) {
            Ok(record) => record,
            Err(status) => return Ok(status),
        };
        let Some(dataset) = self.dataset.clone() else {
            return Ok(status::NOT_OUTPUT);
        };
        let (options, address, key) = match self.org {
            FileOrg::Sequential => (RplOptions::addressed(Processing::Sequential), 0, None),
            FileOrg::Indexed => {
                let key = self.prime_key(&record).unwrap_or_default();
                if sequential && self.last_written.as_ref().is_some_and(|last| key <= *last) {
                    return Ok(status::SEQUENCE);
                }
                (RplOptions::direct(), 0, Some(key))
            }
            _ => {
                let rrn = if sequential {
                    let last = self.last_written.as_deref().map_or(0, number);
                    fcd.set_relative_key(last + 1);
                    last + 1
                } else {
                    fcd.relative_key()
                };
                if rrn == 0 {
                    return Ok(status::BOUNDARY);
                }
                (RplOptions::direct(), rrn, Some(rrn.to_be_bytes().to_vec()))
            }
        };
        if self.defers_writes() {
            self.deferred_bytes += record.len();
            self.deferred.push(ChainedRecord { address, record });
            if self.org == FileOrg::Relative {
                self.delivery = Some(Delivery {
                    length: None,
                    rrn: Some(address),
                });
            }
            self.last_written = key;
            if self.deferred.len() >= DEFERRED_RECORDS || self.deferred_bytes >= DEFERRED_BYTES {
                return self.send_deferred(link);
            }
            return Ok(status::OK);
        }
        match self.settle(link) {
            Ok(status::OK) => {}
            other => return other,
        }
        let written = link.run(async move {
            dataset
                .put_with_status(BROWSE, options, address, record)
                .await
        });
        if written.is_ok() && !self.read_ahead.is_empty() {
            // The new record may belong among those fetched ahead.
            self.read_ahead.clear();
            self.resume_after = self.position.clone();
        }
        match written {
            Ok((_, answer)) => {
                if sequential {
                    if self.org == FileOrg::Relative {
                        self.delivery = Some(Delivery {
                            length: None,
                            rrn: Some(address),
                        });
                    }
                    self.last_written = key;
                }
                Ok(Self::write_status(&answer))
            }
            Err(failure) => self.routine("WRITE", failure),
        }
    }

    /// The record REWRITE and DELETE work on: in sequential access the one
    /// just read (status 43 without one), else the one the key names.
    pub(super) fn target(&mut self, fcd: &mut Fcd) -> Result<Vec<u8>, FileStatus> {
        let sequential =
            self.access_mode == AccessMode::Sequential || self.org == FileOrg::Sequential;
        let last_read = self.last_read.take();
        if sequential {
            let Some(read) = last_read else {
                return Err(status::NO_READ);
            };
            if self.org == FileOrg::Indexed && self.key_field(fcd, self.prime()) != read {
                return Err(status::SEQUENCE);
            }
            return Ok(read);
        }
        Ok(match self.org {
            FileOrg::Indexed => self.key_field(fcd, self.prime()),
            _ => fcd.relative_key().to_be_bytes().to_vec(),
        })
    }

    /// Takes the record under `key` on the update string.
    pub(super) async fn hold(
        dataset: &Dataset,
        org: FileOrg,
        key: &[u8],
    ) -> Result<(), ClientError> {
        Self::take(dataset, org, key).await.map(drop)
    }

    /// Takes the record under `key` on the update string, and returns it.
    pub(super) async fn take(
        dataset: &Dataset,
        org: FileOrg,
        key: &[u8],
    ) -> Result<Vec<Record>, ClientError> {
        let (options, key, address) = match org {
            FileOrg::Indexed => (RplOptions::direct().update(), key, 0),
            FileOrg::Relative => (RplOptions::direct().update(), &[][..], number(key)),
            _ => (
                RplOptions::addressed(Processing::Direct).update(),
                &[][..],
                number(key),
            ),
        };
        dataset.get(UPDATE, options, key, 0, address, 1).await
    }

    /// Takes the record and runs `change` on it in one round trip: both
    /// requests are sent before either answer is read (the server runs a
    /// connection's requests in order). If the record could not be taken,
    /// that is the failure; the change then fails for want of it.
    pub(super) async fn held_change<F, T>(
        dataset: Dataset,
        org: FileOrg,
        key: Vec<u8>,
        change: F,
    ) -> Result<T, ClientError>
    where
        F: std::future::Future<Output = Result<T, ClientError>>,
    {
        let (held, changed) = tokio::join!(Self::hold(&dataset, org, &key), change);
        held?;
        changed
    }

    /// What REWRITE and DELETE share: the open mode check, the record they
    /// change (see `target`) and the dataset; `Err` is the statement's
    /// status.
    pub(super) fn changed(&mut self, fcd: &mut Fcd) -> Result<(Vec<u8>, Dataset), FileStatus> {
        if self.mode != Some(open_mode::IO) {
            self.last_read = None;
            return Err(status::NOT_IO);
        }
        let key = self.target(fcd)?;
        let dataset = self.dataset.clone().ok_or(status::NOT_FOUND)?;
        Ok((key, dataset))
    }

    /// Makes the records read ahead show a REWRITE (`record`) or DELETE
    /// (`None`) of the record under `key`. They are in ascending order
    /// (only forward browses read ahead), so it is found by bisection.
    pub(super) fn change_ahead(&mut self, key: &[u8], record: Option<&[u8]>) {
        let org = self.org;
        let found = self.read_ahead.binary_search_by(|ahead| match org {
            FileOrg::Indexed => ahead.key.as_slice().cmp(key),
            _ => ahead.address.cmp(&number(key)),
        });
        let Ok(at) = found else {
            return;
        };
        match record {
            Some(record) => self.read_ahead[at].data = record.to_vec(),
            None => {
                self.read_ahead.remove(at);
            }
        }
    }

    /// REWRITE.
    pub fn rewrite(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        // A lock on the record ends with its change (the update string's
        // held record is what the change takes).
        self.locked = None;
        let read_first = self.last_read.clone();
        let (key, dataset) = match self.changed(fcd) {
            Ok(changed) => changed,
            Err(status) => return Ok(status),
        };
        let record = match self.record_to_write(fcd) {
            Ok(record) => record,
            Err(status) => return Ok(status),
        };
        // A length the server would refuse (an ESDS record keeps its
        // length, an RRDS slot is full length) is refused at once.
        let same_length = match self.org {
            FileOrg::Sequential => record.len() == self.last_read_length,
            FileOrg::Relative => {
                dataset.spec().organization == Organization::Vrrds
                    || record.len() == fcd.max_length()
            }
            _ => true,
        };
        if self.defers_changes() && read_first.as_deref() == Some(&key[..]) && same_length {
            return self.defer_change(link, key, Some(record));
        }
        match self.settle(link) {
            Ok(status::OK) => {}
            other => return other,
        }
        let options = match self.org {
            FileOrg::Sequential => RplOptions::addressed(Processing::Direct).update(),
            _ => RplOptions::direct().update(),
        };
        let update = {
            let (dataset, record) = (dataset.clone(), record.clone());
            async move {
                let (_, answer) = dataset.put_with_status(UPDATE, options, 0, record).await?;
                Ok(answer)
            }
        };
        match link.run(Self::held_change(dataset, self.org, key.clone(), update)) {
            Ok(answer) => {
                self.change_ahead(&key, Some(&record));
                Ok(Self::write_status(&answer))
            }
            Err(failure) => self.routine("REWRITE", failure),
        }
    }

    /// DELETE.
    pub fn delete(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        self.locked = None;
        let read_first = self.last_read.clone();
        let (key, dataset) = match self.changed(fcd) {
            Ok(changed) => changed,
            Err(status) => return Ok(status),
        };
        if self.defers_changes() && read_first.as_deref() == Some(&key[..]) {
            return self.defer_change(link, key, None);
        }
        match self.settle(link) {
            Ok(status::OK) => {}
            other => return other,
        }
        let erase = {
            let dataset = dataset.clone();
            async move { dataset.erase(UPDATE).await }
        };
        match link.run(Self::held_change(dataset, self.org, key.clone(), erase)) {
            Ok(()) => {
                self.change_ahead(&key, None);
                Ok(status::OK)
            }
            Err(failure) => self.routine("DELETE", failure),
        }
    }
}
