//! READ (next, previous, by key), START, and the record each delivers to
//! the program: served from the records fetched ahead where it can be.

use super::*;

impl MappedFile {
    pub(super) fn readable(&self) -> bool {
        matches!(self.mode, Some(open_mode::INPUT | open_mode::IO))
    }

    /// The handle a browse by the key of reference uses.
    pub(super) fn browse_dataset(&self) -> Option<Dataset> {
        match self.reference {
            0 => self.dataset.clone(),
            n => self.paths.get(n - 1).cloned(),
        }
    }

    /// The status of a successful READ: 02 if a record with the same
    /// alternate key follows (and so configured).
    pub(super) fn read_status(&self, status: &vsam_protocol::Status) -> FileStatus {
        if status.r15 == 0 && status.fdbk == fdbk::DUPLICATE_KEY {
            self.duplicate_read_status
        } else {
            status::OK
        }
    }

    /// Makes the key a READ by key or a START names the key of reference;
    /// the key's place (`None` for a relative file, whose key is RELATIVE
    /// KEY). `Err` if the file has no such key.
    pub(super) fn take_reference(&mut self, fcd: &Fcd) -> Result<Option<KeyDef>, ()> {
        if self.org != FileOrg::Indexed {
            return Ok(None);
        }
        let n = fcd.key_of_reference();
        let key = self.keys.get(n).copied().ok_or(())?;
        if n != self.reference {
            self.drop_read_ahead();
        }
        self.reference = n;
        Ok(Some(key))
    }

    pub(super) fn deliver(&mut self, fcd: &mut Fcd, record: Record) {
        let area = fcd.record();
        let length = record.data.len().min(area.len());
        area[..length].copy_from_slice(&record.data[..length]);
        fcd.set_current_length(length);
        let rrn = (self.org == FileOrg::Relative).then_some(record.address);
        if let Some(rrn) = rrn {
            fcd.set_relative_key(rrn);
        }
        let variable = fcd.min_length() != fcd.max_length();
        if variable && !glue::interposed() && !self.warned {
            self.warned = true;
            eprintln!(
                "vsamextfh: file {}: GnuCOBOL does not pass the length of a record read to RECORD VARYING ... DEPENDING ON unless libvsamextfh comes before libcob: link with cobc -Q \"-L<dir> -lvsamextfh\"",
                self.assign
            );
        }
        self.delivery = Some(Delivery {
            length: Some(length),
            rrn,
        });
        self.last_read = Some(self.record_key(&record));
        self.last_read_length = record.data.len();
        self.position = self.last_read.clone();
        if rrn.is_some() {
            self.last_slot = Some(record);
        }
    }

    /// Takes back the relative record just read (its number does not fit
    /// the program's RELATIVE KEY, status 14): the next READ NEXT reads it
    /// again, as GnuCOBOL's own handler does.
    pub fn step_back(&mut self) {
        if let Some(record) = self.last_slot.take() {
            self.read_ahead.push_front(record);
            self.last_read = None;
        }
    }

    /// What the last READ or WRITE left to put back (once).
    pub fn take_delivery(&mut self) -> Option<Delivery> {
        self.delivery.take()
    }

    pub(super) fn browse_options(&self) -> RplOptions {
        match self.org {
            FileOrg::Sequential => RplOptions::addressed(Processing::Sequential),
            _ => RplOptions::sequential(),
        }
    }

    /// READ NEXT (or PREVIOUS, `backward`).
    pub fn read_next(&mut self, link: &mut Link, fcd: &mut Fcd, backward: bool) -> Outcome {
        self.last_read = None;
        if !self.readable() {
            return Ok(status::NOT_INPUT);
        }
        if self.dataset.is_none() {
            return Ok(status::AT_END);
        }
        let Some(dataset) = self.browse_dataset() else {
            return Ok(status::AT_END);
        };
        if self.at_end {
            return Ok(status::NO_NEXT);
        }
        // The changes gathered go before the requests below; a browse
        // carries them in its own round trip.
        if backward || self.resume_after.is_some() {
            match self.settle(link) {
                Ok(status::OK) => {}
                other => return other,
            }
        }
        let request = if backward {
            "READ PREVIOUS"
        } else {
            "READ NEXT"
        };
        if backward {
            let ahead = !self.read_ahead.is_empty() || self.resume_after.is_some();
            self.drop_read_ahead();
            if ahead && let Some(key) = self.position.clone() {
                let search = self.search(key);
                if let Err(failure) = link.run(search.before(dataset.clone())) {
                    return self.routine(request, failure);
                }
            }
        } else {
            if let Some(key) = self.resume_after.take() {
                let search = self.search(key);
                match link.run(search.after(dataset.clone())) {
                    Ok(Some(next)) => self.read_ahead.push_front(next),
                    Ok(None) => {}
                    Err(failure) => return self.routine(request, failure),
                }
            }
            if let Some(record) = self.read_ahead.pop_front() {
                self.deliver(fcd, record);
                return Ok(status::OK);
            }
        }
        let mut options = self.browse_options();
        // Through a path each READ asks on its own: its status says
        // whether the next record shares the alternate key.
        let batch = if backward || self.reference > 0 {
            if backward {
                options = options.backward();
            }
            1
        } else {
            self.read_ahead_size
        };
        let pending = self.changes_request();
        let (changes, sending) = match pending {
            Some((changes, sending)) => (changes, Some(sending)),
            None => (Vec::new(), None),
        };
        let browse = async move {
            dataset
                .get_with_status(BROWSE, options, &[], 0, 0, batch)
                .await
        };
        // Both are sent before either answer is read: the server runs them
        // in order, the changes first.
        let both = link.run(async move {
            let sent = async move {
                match sending {
                    Some(sending) => sending.await,
                    None => Vec::new(),
                }
            };
            Ok::<_, ClientError>(tokio::join!(sent, browse))
        });
        let browsed = match both {
            Ok((answers, browsed)) => match self.changes_verdict(&changes, answers) {
                Ok(status::OK) => browsed.map_err(Failure::from),
                refused => {
                    // The records browsed wait for the next READ NEXT.
                    if let Ok((records, _)) = browsed {
                        self.read_ahead = records.into();
                    }
                    return refused;
                }
            },
            Err(failure) => Err(failure),
        };
        match browsed {
            Ok((records, answer)) => {
                let mut records = VecDeque::from(records);
                let Some(first) = records.pop_front() else {
                    return Ok(status::AT_END);
                };
                self.read_ahead = records;
                self.deliver(fcd, first);
                Ok(self.read_status(&answer))
            }
            Err(Failure::Vsam(e)) if e.status.fdbk == fdbk::END_OF_DATA => {
                self.at_end = true;
                Ok(status::AT_END)
            }
            Err(failure) => self.routine(request, failure),
        }
    }

    /// A record key as a search argument: a key, or an RBA/RRN.
    pub(super) fn search(&self, key: Vec<u8>) -> Search {
        match self.org {
            FileOrg::Indexed => Search::Key {
                full: key.len(),
                bytes: key,
            },
            _ => Search::Number(number(&key)),
        }
    }

    /// What a READ by key and a START share: the changes gathered sent
    /// first, the checks, the key of reference they set (see
    /// `take_reference`) and the handle it reads through; `Err` is the
    /// statement's outcome.
    pub(super) fn keyed(
        &mut self,
        link: &mut Link,
        fcd: &Fcd,
    ) -> Result<(Option<KeyDef>, Dataset), Outcome> {
        match self.settle(link) {
            Ok(status::OK) => {}
            other => return Err(other),
        }
        self.last_read = None;
        if !self.readable() {
            return Err(Ok(status::NOT_INPUT));
        }
        if self.dataset.is_none() {
            return Err(Ok(status::NOT_FOUND));
        }
        self.drop_read_ahead();
        let reference = self
            .take_reference(fcd)
            .map_err(|()| Ok(status::NOT_FOUND))?;
        let dataset = self.browse_dataset().ok_or(Ok(status::NOT_FOUND))?;
        Ok((reference, dataset))
    }

    /// READ by key (RANDOM, or DYNAMIC with KEY): the position moves to the
    /// record, so a READ NEXT continues after it.
    pub fn read_key(&mut self, link: &mut Link, fcd: &mut Fcd) -> Outcome {
        let (reference, dataset) = match self.keyed(link, fcd) {
            Ok(keyed) => keyed,
            Err(outcome) => return outcome,
        };
        let options = RplOptions {
            intent: vsam_protocol::Intent::NoUpdateKeepPosition,
            ..RplOptions::direct()
        };
        let (key, address) = match reference {
            Some(reference) => (self.key_field(fcd, reference), 0),
            None => (Vec::new(), fcd.relative_key()),
        };
        match link.run(async move {
            dataset
                .get_with_status(BROWSE, options, &key, 0, address, 1)
                .await
        }) {
            Ok((mut records, answer)) => {
                self.at_end = false;
                if let Some(record) = records.pop() {
                    self.deliver(fcd, record);
                }
                Ok(self.read_status(&answer))
            }
            Err(failure) => self.routine("READ", failure),
        }
    }

    /// START with a condition on the key of reference (or RELATIVE KEY).
    pub fn start(&mut self, link: &mut Link, fcd: &mut Fcd, condition: Condition) -> Outcome {
        let (reference, dataset) = match self.keyed(link, fcd) {
            Ok(keyed) => keyed,
            Err(outcome) => return outcome,
        };
        self.at_end = false;
        let bound = match reference {
            Some(key) => {
                let effective = fcd.effective_key_length();
                let length = if effective == 0 || effective > key.length {
                    key.length
                } else {
                    effective
                };
                let argument = self.key_field(fcd, key)[..length].to_vec();
                Bound::for_key(condition, argument, key.length)
            }
            _ => Bound::for_number(condition, fcd.relative_key()),
        };
        let Some(bound) = bound else {
            return Ok(status::NOT_FOUND);
        };
        match link.run(bound.position(dataset)) {
            Ok(true) => Ok(status::OK),
            Ok(false) => Ok(status::NOT_FOUND),
            Err(failure) => self.routine("START", failure),
        }
    }
}
