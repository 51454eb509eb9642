//! Record locks: a READ of a file open I-O that says WITH LOCK (or any
//! READ under LOCK MODE AUTOMATIC or EXCLUSIVE) takes the record for update
//! on vsamrd, held against other programs until UNLOCK, the next locking
//! READ, the record's change, CLOSE, COMMIT or ROLLBACK.

use super::{MappedFile, Outcome, UPDATE};
use crate::fcd::{Fcd, FileOrg, LockMode, ReadLock, open_mode};
use crate::link::Link;
use crate::status::{self, FileStatus};

impl MappedFile {
    /// UNLOCK: the record a READ locked is released.
    pub fn unlock(&mut self, link: &mut Link) -> FileStatus {
        self.release_lock(link);
        // GnuCOBOL's own handler answers 00 also on a closed file.
        status::OK
    }

    /// Releases the record a READ locked, if one is (an ENDREQ of the
    /// update string).
    pub fn release_lock(&mut self, link: &mut Link) {
        if self.locked.take().is_none() {
            return;
        }
        if let Some(dataset) = self.dataset.clone() {
            let _ = link.run(async move { dataset.endreq(UPDATE).await });
        }
    }

    /// Whether the READ being run locks its record: a file open I-O, and
    /// WITH LOCK (or no phrase under LOCK MODE AUTOMATIC or EXCLUSIVE).
    fn locks(&self, fcd: &Fcd) -> bool {
        self.mode == Some(open_mode::IO)
            && match fcd.read_lock() {
                ReadLock::Lock => true,
                ReadLock::NoLock => false,
                ReadLock::Default => fcd.lock_mode() != LockMode::Manual,
            }
    }

    /// After a READ that succeeded with `status`: if it locks, takes the
    /// record it delivered for update (held against other programs until
    /// released, see `locked`) and delivers it as the server has it now.
    /// Status 51 if another program holds it.
    pub fn lock_read(&mut self, link: &mut Link, fcd: &mut Fcd, status: FileStatus) -> Outcome {
        if !matches!(status, status::OK | status::DUPLICATE_ALTERNATE) || !self.locks(fcd) {
            return Ok(status);
        }
        let key = match self.org {
            FileOrg::Indexed => self.key_field(fcd, self.prime()),
            FileOrg::Relative => fcd.relative_key().to_be_bytes().to_vec(),
            FileOrg::Sequential | FileOrg::LineSequential => match self.position.clone() {
                Some(key) => key,
                None => return Ok(status),
            },
        };
        let Some(dataset) = self.dataset.clone() else {
            return Ok(status);
        };
        let org = self.org;
        let taking = key.clone();
        match link.run(async move { Self::take(&dataset, org, &taking).await }) {
            Ok(mut records) => {
                self.locked = Some(key);
                if let Some(record) = records.pop()
                    && self.reference == 0
                {
                    self.deliver(fcd, record);
                }
                Ok(status)
            }
            Err(failure) => {
                self.locked = None;
                self.routine("READ", failure)
            }
        }
    }
}
