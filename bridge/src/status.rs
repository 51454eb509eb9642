//! COBOL FILE STATUS values the bridge sets, and how a VSAM answer maps to
//! them for each kind of statement.

use vsam_protocol::{Fdbk, OpenError, fdbk, open_error, r15};

/// FILE STATUS: two ASCII digits.
pub type FileStatus = [u8; 2];

/// Successful.
pub const OK: FileStatus = *b"00";
/// Successful, a duplicate alternate key exists (READ) or was made (WRITE).
pub const DUPLICATE_ALTERNATE: FileStatus = *b"02";
/// Successful OPEN of an OPTIONAL file that was missing.
pub const OPTIONAL_MISSING: FileStatus = *b"05";
/// A CLOSE REEL, UNIT or WITH NO REWIND of a file not on a reel device.
pub const NO_UNIT: FileStatus = *b"07";
/// AT END.
pub const AT_END: FileStatus = *b"10";
/// A sequential READ reached a relative record number too large for the
/// RELATIVE KEY item.
pub const OUT_OF_KEY_RANGE: FileStatus = *b"14";
/// Sequence error: a key out of order, or a changed prime key.
pub const SEQUENCE: FileStatus = *b"21";
/// Duplicate key.
pub const DUPLICATE: FileStatus = *b"22";
/// Record not found.
pub const NOT_FOUND: FileStatus = *b"23";
/// Boundary violation (a relative record number out of range).
pub const BOUNDARY: FileStatus = *b"24";
/// Permanent error: the server or the connection failed.
pub const PERMANENT: FileStatus = *b"30";
/// OPEN of a file that does not exist.
pub const FILE_MISSING: FileStatus = *b"35";
/// An OPEN of a file closed WITH LOCK earlier in the run.
pub const CLOSED_WITH_LOCK: FileStatus = *b"38";
/// OPEN not allowed for this file.
pub const OPEN_NOT_ALLOWED: FileStatus = *b"37";
/// The file's attributes conflict with the program's description.
pub const ATTRIBUTE_CONFLICT: FileStatus = *b"39";
/// OPEN of a file already open.
pub const ALREADY_OPEN: FileStatus = *b"41";
/// CLOSE of a file not open.
pub const NOT_OPEN: FileStatus = *b"42";
/// REWRITE or DELETE in sequential access without a READ just before.
pub const NO_READ: FileStatus = *b"43";
/// Record length out of the file's range, or changed on REWRITE.
pub const RECORD_LENGTH: FileStatus = *b"44";
/// READ with no valid next record (after AT END or a failed READ/START).
pub const NO_NEXT: FileStatus = *b"46";
/// READ or START on a file not open INPUT or I-O.
pub const NOT_INPUT: FileStatus = *b"47";
/// WRITE on a file not open OUTPUT, EXTEND (or I-O where allowed).
pub const NOT_OUTPUT: FileStatus = *b"48";
/// REWRITE or DELETE on a file not open I-O.
pub const NOT_IO: FileStatus = *b"49";
/// The record is locked by another program (held for update): transient,
/// try again, as GnuCOBOL's own file handler answers it.
pub const RECORD_LOCKED: FileStatus = *b"51";

/// The FILE STATUS of a VSAM answer with a non-zero return code.
pub fn of_vsam(r15_value: u8, fdbk_value: u8) -> FileStatus {
    match (r15_value, Fdbk(fdbk_value)) {
        (r15::OK, fdbk::DUPLICATE_KEY) => DUPLICATE_ALTERNATE,
        (r15::OK, _) => OK,
        (r15::PHYSICAL, _) => PERMANENT,
        (_, fdbk::END_OF_DATA) => AT_END,
        (_, fdbk::SEQUENCE_ERROR) | (_, fdbk::KEY_CHANGED) => SEQUENCE,
        (_, fdbk::DUPLICATE_KEY) => DUPLICATE,
        (_, fdbk::NOT_FOUND) | (_, fdbk::BAD_RBA) => NOT_FOUND,
        (_, fdbk::INVALID_RRN) => BOUNDARY,
        (_, fdbk::NO_SPACE) => BOUNDARY,
        (_, fdbk::NO_POSITION) => NO_NEXT,
        (_, fdbk::EXCLUSIVE_CONTROL) => RECORD_LOCKED,
        (_, fdbk::NO_GET_UPDATE) => NO_READ,
        (_, fdbk::INVALID_LENGTH) | (_, fdbk::LENGTH_CHANGED) => RECORD_LENGTH,
        // No FDBK shares a value with an OPEN error code.
        _ => match OpenError(fdbk_value) {
            open_error::NOT_FOUND => FILE_MISSING,
            open_error::INVALID_OPTIONS
            | open_error::NOT_AVAILABLE
            | open_error::NOT_AUTHORIZED => OPEN_NOT_ALLOWED,
            _ => PERMANENT,
        },
    }
}

/// True for statuses a program expects to handle itself (AT END, INVALID
/// KEY...); others are also explained on stderr.
pub fn is_routine(status: FileStatus) -> bool {
    matches!(status[0], b'0' | b'1' | b'2')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_held_by_another_program_is_status_51_not_a_permanent_error() {
        assert_eq!(
            of_vsam(r15::LOGICAL, fdbk::EXCLUSIVE_CONTROL.0),
            RECORD_LOCKED
        );
        assert_eq!(&of_vsam(r15::LOGICAL, fdbk::EXCLUSIVE_CONTROL.0), b"51");
        assert_eq!(of_vsam(r15::PHYSICAL, 0), PERMANENT);
        assert_eq!(of_vsam(r15::LOGICAL, fdbk::NOT_FOUND.0), NOT_FOUND);
        assert_eq!(of_vsam(r15::LOGICAL, open_error::NOT_FOUND.0), FILE_MISSING);
    }
}
