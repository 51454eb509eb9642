//! A view of the File Control Description (FCD3) GnuCOBOL hands to an
//! external file handler: 216 bytes, numbers big-endian, and pointers to
//! the record area, the file name and the key definition block.

/// The option of a CLOSE (libcob's `COB_CLOSE_*`, which its EXTFH glue
/// passes in the FCD's `opt` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOption {
    /// CLOSE.
    Normal,
    /// CLOSE WITH LOCK: the file may not be opened again in this run.
    Lock,
    /// CLOSE WITH NO REWIND.
    NoRewind,
    /// CLOSE REEL or UNIT (FOR REMOVAL): the file stays open.
    Unit,
}

/// File organization (`fileOrg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrg {
    /// LINE SEQUENTIAL: a text file, kept by GnuCOBOL's own handler.
    LineSequential,
    /// RECORD SEQUENTIAL: an ESDS.
    Sequential,
    /// INDEXED: a KSDS.
    Indexed,
    /// RELATIVE: an RRDS.
    Relative,
}

/// ACCESS MODE (`accessFlags`, low bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// SEQUENTIAL.
    Sequential,
    /// RANDOM.
    Random,
    /// DYNAMIC.
    Dynamic,
}

/// Open mode values of `openMode`.
pub mod open_mode {
    /// OPEN INPUT.
    pub const INPUT: u8 = 0;
    /// OPEN OUTPUT.
    pub const OUTPUT: u8 = 1;
    /// OPEN I-O.
    pub const IO: u8 = 2;
    /// OPEN EXTEND.
    pub const EXTEND: u8 = 3;
    /// Not open.
    pub const CLOSED: u8 = 0x80;
}

/// The file's LOCK MODE, from `lockMode` (GnuCOBOL 3.1 sets 0x02 for
/// AUTOMATIC and 0x01 for EXCLUSIVE; MANUAL and no clause are 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Records are locked only by READ ... WITH LOCK.
    Manual,
    /// Every READ of a file open I-O locks its record.
    Automatic,
    /// As AUTOMATIC for records (the file itself is not locked).
    Exclusive,
}

/// What a READ asks of record locks (GnuCOBOL's `COB_READ_*` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLock {
    /// No phrase: as the file's LOCK MODE says.
    Default,
    /// WITH LOCK or WITH KEPT LOCK.
    Lock,
    /// WITH NO LOCK (or IGNORING LOCK).
    NoLock,
}

/// One key of an INDEXED file, from the key definition block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDef {
    /// Offset in the record.
    pub offset: usize,
    /// Length in bytes.
    pub length: usize,
    /// WITH DUPLICATES.
    pub duplicates: bool,
}

const FILE_STATUS: usize = 0;
const FILE_ORG: usize = 5;
const ACCESS_FLAGS: usize = 6;
const OPEN_MODE: usize = 7;
const OTHER_FLAGS: usize = 21;
const LOCK_MODE: usize = 28;
/// `opt`: GnuCOBOL stores a READ's options here (`COB_READ_*`).
const OPTIONS: usize = 84;
const FNAME_LEN: usize = 54;
const REF_KEY: usize = 60;
const EFF_KEY_LEN: usize = 66;
const CUR_REC_LEN: usize = 88;
const MIN_REC_LEN: usize = 92;
const MAX_REC_LEN: usize = 96;
const REL_KEY: usize = 144;
const REC_PTR: usize = 160;
const FNAME_PTR: usize = 168;
const KDB_PTR: usize = 184;
/// `otherFlags`: the file is OPTIONAL.
const OPTIONAL: u8 = 0x80;

/// The FCD of one call. Valid for the duration of the call only.
pub struct Fcd {
    base: *mut u8,
}

impl Fcd {
    /// Wraps the FCD pointer GnuCOBOL passed.
    ///
    /// # Safety
    /// `base` must point to a valid FCD3 whose pointers (record area, name,
    /// key block) are valid for the call.
    pub unsafe fn new(base: *mut u8) -> Self {
        Self { base }
    }

    /// The address of the record area: what identifies a file from call
    /// to call (GnuCOBOL may hand a new FCD after a CLOSE, but the FD's
    /// record area stays).
    pub fn record_address(&self) -> usize {
        self.pointer(REC_PTR) as usize
    }

    fn byte(&self, at: usize) -> u8 {
        // SAFETY: `at` is inside the 216-byte FCD (constants above).
        unsafe { *self.base.add(at) }
    }

    fn set_byte(&mut self, at: usize, value: u8) {
        // SAFETY: as `byte`.
        unsafe { *self.base.add(at) = value }
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.byte(at), self.byte(at + 1)])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([0, 1, 2, 3].map(|i| self.byte(at + i)))
    }

    fn set_u32(&mut self, at: usize, value: u32) {
        for (i, b) in value.to_be_bytes().into_iter().enumerate() {
            self.set_byte(at + i, b);
        }
    }

    fn pointer(&self, at: usize) -> *mut u8 {
        let bytes = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| self.byte(at + i));
        usize::from_ne_bytes(bytes) as *mut u8
    }

    /// Sets FILE STATUS (two ASCII digits).
    pub fn set_status(&mut self, status: [u8; 2]) {
        self.set_byte(FILE_STATUS, status[0]);
        self.set_byte(FILE_STATUS + 1, status[1]);
    }

    /// The organization; `None` for values GnuCOBOL does not send.
    pub fn organization(&self) -> Option<FileOrg> {
        match self.byte(FILE_ORG) {
            0 => Some(FileOrg::LineSequential),
            1 => Some(FileOrg::Sequential),
            2 => Some(FileOrg::Indexed),
            3 => Some(FileOrg::Relative),
            _ => None,
        }
    }

    /// The access mode.
    pub fn access_mode(&self) -> AccessMode {
        match self.byte(ACCESS_FLAGS) & 0x7F {
            4 => AccessMode::Random,
            8 => AccessMode::Dynamic,
            _ => AccessMode::Sequential,
        }
    }

    /// Records the open mode (a handler sets it on OPEN and CLOSE).
    pub fn set_open_mode(&mut self, mode: u8) {
        self.set_byte(OPEN_MODE, mode);
    }

    /// LOCK MODE.
    pub fn lock_mode(&self) -> LockMode {
        match self.byte(LOCK_MODE) & 0x07 {
            m if m & 0x01 != 0 => LockMode::Exclusive,
            m if m & 0x02 != 0 => LockMode::Automatic,
            _ => LockMode::Manual,
        }
    }

    /// The option of the CLOSE being run (meaningful on CLOSE only).
    pub fn close_option(&self) -> CloseOption {
        match self.u32_at(OPTIONS) {
            1 => CloseOption::Lock,
            2 => CloseOption::NoRewind,
            3 | 4 => CloseOption::Unit,
            _ => CloseOption::Normal,
        }
    }

    /// The lock phrase of the READ being run (meaningful on READ only: the
    /// field keeps the last statement's options).
    pub fn read_lock(&self) -> ReadLock {
        const LOCK: u32 = 0x10;
        const NO_LOCK: u32 = 0x20;
        const KEPT_LOCK: u32 = 0x40;
        const IGNORE_LOCK: u32 = 0x100;
        let options = self.u32_at(OPTIONS);
        if options & (NO_LOCK | IGNORE_LOCK) != 0 {
            ReadLock::NoLock
        } else if options & (LOCK | KEPT_LOCK) != 0 {
            ReadLock::Lock
        } else {
            ReadLock::Default
        }
    }

    /// SELECT OPTIONAL.
    pub fn optional(&self) -> bool {
        self.byte(OTHER_FLAGS) & OPTIONAL != 0
    }

    /// The name from ASSIGN, trimmed.
    pub fn file_name(&self) -> String {
        let length = usize::from(self.u16_at(FNAME_LEN));
        let pointer = self.pointer(FNAME_PTR);
        if pointer.is_null() || length == 0 {
            return String::new();
        }
        // SAFETY: GnuCOBOL points fnamePtr at `fnameLen` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(pointer, length) };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).trim().to_string()
    }

    /// The key of reference (0: the prime key).
    pub fn key_of_reference(&self) -> usize {
        usize::from(self.u16_at(REF_KEY))
    }

    /// The key length a START compares (a partial key), 0 if not given.
    pub fn effective_key_length(&self) -> usize {
        usize::from(self.u16_at(EFF_KEY_LEN))
    }

    /// Length of the record to write, or of the record read.
    pub fn current_length(&self) -> usize {
        self.u32_at(CUR_REC_LEN) as usize
    }

    /// Sets the length of the record read.
    pub fn set_current_length(&mut self, length: usize) {
        self.set_u32(CUR_REC_LEN, length as u32);
    }

    /// Smallest record length.
    pub fn min_length(&self) -> usize {
        self.u32_at(MIN_REC_LEN) as usize
    }

    /// Largest record length: the size of the record area.
    pub fn max_length(&self) -> usize {
        self.u32_at(MAX_REC_LEN) as usize
    }

    /// RELATIVE KEY.
    pub fn relative_key(&self) -> u64 {
        u64::from(self.u32_at(REL_KEY + 4))
    }

    /// Returns a relative record number to RELATIVE KEY.
    pub fn set_relative_key(&mut self, rrn: u64) {
        self.set_u32(REL_KEY, 0);
        self.set_u32(REL_KEY + 4, rrn as u32);
    }

    /// The record area (`maxRecLen` bytes).
    pub fn record(&mut self) -> &mut [u8] {
        let pointer = self.pointer(REC_PTR);
        let length = self.max_length();
        if pointer.is_null() {
            return &mut [];
        }
        // SAFETY: GnuCOBOL's record area holds the longest record.
        unsafe { std::slice::from_raw_parts_mut(pointer, length) }
    }

    /// The keys of an INDEXED file (prime key first). A key made of
    /// several pieces (SOURCE IS a b) is `Err` with its number.
    pub fn keys(&self) -> Result<Vec<KeyDef>, usize> {
        let kdb = self.pointer(KDB_PTR);
        if kdb.is_null() {
            return Ok(Vec::new());
        }
        // SAFETY: the KDB holds `nkeys` 16-byte key entries from byte 14,
        // each pointing (offset from the KDB) at 10-byte components.
        unsafe {
            let read16 = |p: *const u8| u16::from_be_bytes([*p, *p.add(1)]);
            let read32 = |p: *const u8| u32::from_be_bytes([*p, *p.add(1), *p.add(2), *p.add(3)]);
            let count = usize::from(read16(kdb.add(6)));
            let mut keys = Vec::with_capacity(count);
            for n in 0..count {
                let entry = kdb.add(14 + 16 * n);
                let components = read16(entry);
                let component = kdb.add(usize::from(read16(entry.add(2))));
                if components != 1 {
                    return Err(n);
                }
                keys.push(KeyDef {
                    offset: read32(component.add(2)) as usize,
                    length: read32(component.add(6)) as usize,
                    duplicates: *entry.add(4) & 0x40 != 0,
                });
            }
            Ok(keys)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes GnuCOBOL 3.1.2 passed for each lock clause and phrase
    /// (measured with a handler that printed `lockMode` and `opt`).
    #[test]
    fn lock_clauses_and_phrases_read_as_gnucobol_sets_them() {
        let mut bytes = [0u8; 216];
        let mut with = |lock_mode: u8, options: u32| {
            bytes[LOCK_MODE] = lock_mode;
            bytes[OPTIONS..OPTIONS + 4].copy_from_slice(&options.to_be_bytes());
            // SAFETY: a whole FCD3's bytes; no pointer field is read.
            let fcd = unsafe { Fcd::new(bytes.as_mut_ptr()) };
            (fcd.lock_mode(), fcd.read_lock())
        };
        assert_eq!(with(0x00, 0x10), (LockMode::Manual, ReadLock::Lock));
        assert_eq!(with(0x00, 0x20), (LockMode::Manual, ReadLock::NoLock));
        assert_eq!(
            with(0x00, 0x50),
            (LockMode::Manual, ReadLock::Lock),
            "KEPT LOCK"
        );
        assert_eq!(
            with(0x00, 0x11),
            (LockMode::Manual, ReadLock::Lock),
            "NEXT WITH LOCK"
        );
        assert_eq!(with(0x02, 0x00), (LockMode::Automatic, ReadLock::Default));
        assert_eq!(with(0x01, 0x00), (LockMode::Exclusive, ReadLock::Default));
    }
}
