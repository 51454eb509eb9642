//! VSAM return codes (register 15), feedback codes and COBOL file status.
//!
//! The server answers every request with exactly the R15 and FDBK values a
//! VSAM program would see; this module names them once for host and clients.

use std::fmt;

/// Register 15 after a request.
pub mod r15 {
    /// The request succeeded.
    pub const OK: u8 = 0;
    /// The RPL (string) was already active for another request.
    pub const ACTIVE: u8 = 4;
    /// Logical error: the reason is in FDBK.
    pub const LOGICAL: u8 = 8;
    /// Physical error: the store failed (I/O error, backend outage, plugin fault).
    pub const PHYSICAL: u8 = 12;
}

/// Feedback codes with R15=8 (logical errors), and with R15=0 for warnings.
pub mod fdbk {
    use super::Fdbk;

    /// No error.
    pub const NONE: Fdbk = Fdbk(0x00);
    /// End of data: sequential GET past the end, or POINT KGE above the last key.
    pub const END_OF_DATA: Fdbk = Fdbk(0x04);
    /// Duplicate key (prime key, or occupied RRDS slot).
    pub const DUPLICATE_KEY: Fdbk = Fdbk(0x08);
    /// Key out of ascending sequence on a sequential PUT.
    pub const SEQUENCE_ERROR: Fdbk = Fdbk(0x0C);
    /// Record not found.
    pub const NOT_FOUND: Fdbk = Fdbk(0x10);
    /// Record held under exclusive control by another requester.
    pub const EXCLUSIVE_CONTROL: Fdbk = Fdbk(0x14);
    /// The data set cannot be extended (out of space).
    pub const NO_SPACE: Fdbk = Fdbk(0x1C);
    /// The RBA does not give the start of a record.
    pub const BAD_RBA: Fdbk = Fdbk(0x20);
    /// Not enough virtual storage.
    pub const NO_STORAGE: Fdbk = Fdbk(0x28);
    /// The work area is too small for the record: here, the record does
    /// not fit in an answer frame of the size the client accepts.
    pub const AREA_TOO_SMALL: Fdbk = Fdbk(0x2C);
    /// No string available: the string id is not below the open's string count.
    pub const NO_STRING: Fdbk = Fdbk(0x40);
    /// The request is not allowed by the open intent or access options.
    pub const NOT_ALLOWED_BY_OPEN: Fdbk = Fdbk(0x44);
    /// Keyed request against an ESDS.
    pub const KEYED_ON_ESDS: Fdbk = Fdbk(0x48);
    /// Addressed PUT-insert into a KSDS.
    pub const ADDRESSED_INSERT_KSDS: Fdbk = Fdbk(0x4C);
    /// ERASE against an ESDS.
    pub const ERASE_ON_ESDS: Fdbk = Fdbk(0x50);
    /// Sequential request with no position established.
    pub const NO_POSITION: Fdbk = Fdbk(0x58);
    /// PUT-update or ERASE without a preceding GET UPD.
    pub const NO_GET_UPDATE: Fdbk = Fdbk(0x5C);
    /// The prime key was changed on a PUT-update.
    pub const KEY_CHANGED: Fdbk = Fdbk(0x60);
    /// The record length changed on an ESDS update.
    pub const LENGTH_CHANGED: Fdbk = Fdbk(0x64);
    /// The RPL options are invalid or conflict.
    pub const INVALID_OPTIONS: Fdbk = Fdbk(0x68);
    /// The record length is invalid (0, above maximum, shorter than the key end,
    /// or not the slot size of a fixed RRDS).
    pub const INVALID_LENGTH: Fdbk = Fdbk(0x6C);
    /// The key length is too large or zero.
    pub const INVALID_KEY_LENGTH: Fdbk = Fdbk(0x70);
    /// Invalid relative record number.
    pub const INVALID_RRN: Fdbk = Fdbk(0xC0);
    /// Addressed request against an RRDS.
    pub const ADDRESSED_ON_RRDS: Fdbk = Fdbk(0xC4);
    /// PUT-insert in backward mode.
    pub const INSERT_BACKWARD: Fdbk = Fdbk(0xCC);
}

/// OPEN error codes (the ACB ERROR field), answered with R15=8.
pub mod open_error {
    use super::OpenError;

    /// The data set is not in the catalog.
    pub const NOT_FOUND: OpenError = OpenError(0x80);
    /// The open options conflict or are not allowed.
    pub const INVALID_OPTIONS: OpenError = OpenError(0xA0);
    /// The data set's backend is not available.
    pub const NOT_AVAILABLE: OpenError = OpenError(0xA8);
    /// Security verification failed: the client may not open the dataset
    /// this way (VSAM's X'98' for a RACF refusal; COBOL file status 37).
    /// Catalog requests refused by the access rules answer it too.
    pub const NOT_AUTHORIZED: OpenError = OpenError(0x98);
}

/// A feedback code of a data request (the RPL FDBK): a type of its own,
/// so that it cannot be given where an OPEN error code belongs (X'68'
/// and X'A0' both say "invalid options", to different fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fdbk(pub u8);

/// An OPEN error code (the ACB ERROR field), also answered by catalog
/// requests: a type of its own, so that it cannot be given as an FDBK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpenError(pub u8);

impl PartialEq<Fdbk> for u8 {
    fn eq(&self, code: &Fdbk) -> bool {
        *self == code.0
    }
}

impl PartialEq<OpenError> for u8 {
    fn eq(&self, code: &OpenError) -> bool {
        *self == code.0
    }
}

impl From<Fdbk> for u8 {
    fn from(code: Fdbk) -> u8 {
        code.0
    }
}

impl From<OpenError> for u8 {
    fn from(code: OpenError) -> u8 {
        code.0
    }
}

impl fmt::Display for Fdbk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X'{:02X}'", self.0)
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X'{:02X}'", self.0)
    }
}

/// The R15/FDBK pair of an answer, with the component code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Register 15.
    pub r15: u8,
    /// Feedback code (the RPL FDBK, or the ACB ERROR for OPEN).
    pub fdbk: u8,
    /// Component code: 0 for the base cluster.
    pub component: u8,
    /// Human-readable explanation; empty on plain success.
    pub message: String,
}

impl Status {
    /// Plain success.
    pub fn ok() -> Self {
        Self::default()
    }

    /// A logical error (R15=8) of a data request, with its feedback code.
    pub fn logical(fdbk: Fdbk, message: impl Into<String>) -> Self {
        Self {
            r15: r15::LOGICAL,
            fdbk: fdbk.0,
            component: 0,
            message: message.into(),
        }
    }

    /// An OPEN (or catalog request) refused with R15=8 and an OPEN error
    /// code in the feedback field.
    pub fn refused(code: OpenError, message: impl Into<String>) -> Self {
        Self {
            r15: r15::LOGICAL,
            fdbk: code.0,
            component: 0,
            message: message.into(),
        }
    }

    /// A success (R15=0) whose feedback code warns, such as X'08' for a
    /// duplicate alternate key; plain success for X'00'.
    pub fn warning(fdbk: Fdbk, message: impl Into<String>) -> Self {
        match fdbk {
            fdbk::NONE => Self::ok(),
            code => Self {
                fdbk: code.0,
                message: message.into(),
                ..Self::ok()
            },
        }
    }

    /// A physical error (R15=12): the store failed.
    pub fn physical(message: impl Into<String>) -> Self {
        Self {
            r15: r15::PHYSICAL,
            fdbk: 0,
            component: 0,
            message: message.into(),
        }
    }

    /// The feedback field as a data request's FDBK (for matching on
    /// [`fdbk`] codes).
    pub fn feedback(&self) -> Fdbk {
        Fdbk(self.fdbk)
    }

    /// The feedback field as an OPEN error code (for matching on
    /// [`open_error`] codes).
    pub fn open_error(&self) -> OpenError {
        OpenError(self.fdbk)
    }

    /// True for R15=0.
    pub fn is_ok(&self) -> bool {
        self.r15 == r15::OK
    }

    /// The COBOL FILE STATUS a program would see for this answer.
    pub fn file_status(&self) -> &'static str {
        file_status(self.r15, self.fdbk)
    }

    /// A short name of the condition, e.g. `duplicate key`.
    pub fn condition(&self) -> &'static str {
        condition(self.r15, self.fdbk)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "R15={} FDBK=X'{:02X}' (file status {})",
            self.r15,
            self.fdbk,
            self.file_status()
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The COBOL FILE STATUS that a return/feedback code pair maps to.
pub fn file_status(r15_value: u8, fdbk_value: u8) -> &'static str {
    match (r15_value, Fdbk(fdbk_value)) {
        (r15::OK, fdbk::DUPLICATE_KEY) => "02",
        (r15::OK, _) => "00",
        (r15::PHYSICAL, _) => "30",
        (r15::ACTIVE, _) => "9x",
        (_, fdbk::END_OF_DATA) => "10",
        (_, fdbk::SEQUENCE_ERROR) | (_, fdbk::KEY_CHANGED) => "21",
        (_, fdbk::DUPLICATE_KEY) => "22",
        (_, fdbk::NOT_FOUND) | (_, fdbk::INVALID_RRN) | (_, fdbk::BAD_RBA) => "23",
        (_, fdbk::NO_SPACE) => "24",
        (_, fdbk::EXCLUSIVE_CONTROL) => "93",
        (_, fdbk::NO_POSITION) => "46",
        (_, fdbk::NO_GET_UPDATE) => "43",
        (_, fdbk::INVALID_LENGTH) | (_, fdbk::LENGTH_CHANGED) => "44",
        (_, fdbk::NOT_ALLOWED_BY_OPEN) => "49",
        // No FDBK shares a value with an OPEN error code.
        _ => match OpenError(fdbk_value) {
            open_error::NOT_FOUND => "35",
            open_error::INVALID_OPTIONS | open_error::NOT_AUTHORIZED => "37",
            _ => "9x",
        },
    }
}

/// A short name of the condition a return/feedback code pair reports.
pub fn condition(r15_value: u8, fdbk_value: u8) -> &'static str {
    match (r15_value, Fdbk(fdbk_value)) {
        (r15::OK, fdbk::DUPLICATE_KEY) => "ok, duplicate alternate key",
        (r15::OK, _) => "ok",
        (r15::ACTIVE, _) => "request already active",
        (r15::PHYSICAL, _) => "physical error",
        (_, fdbk::END_OF_DATA) => "end of data",
        (_, fdbk::DUPLICATE_KEY) => "duplicate key",
        (_, fdbk::SEQUENCE_ERROR) => "key out of sequence",
        (_, fdbk::NOT_FOUND) => "record not found",
        (_, fdbk::EXCLUSIVE_CONTROL) => "record held by another requester",
        (_, fdbk::NO_SPACE) => "out of space",
        (_, fdbk::AREA_TOO_SMALL) => "work area too small",
        (_, fdbk::BAD_RBA) => "RBA is not the start of a record",
        (_, fdbk::NO_STRING) => "no string available",
        (_, fdbk::NOT_ALLOWED_BY_OPEN) => "request not allowed by open options",
        (_, fdbk::KEYED_ON_ESDS) => "keyed request against an ESDS",
        (_, fdbk::ADDRESSED_INSERT_KSDS) => "addressed insert into a KSDS",
        (_, fdbk::ERASE_ON_ESDS) => "erase against an ESDS",
        (_, fdbk::NO_POSITION) => "no position established",
        (_, fdbk::NO_GET_UPDATE) => "no prior GET for update",
        (_, fdbk::KEY_CHANGED) => "prime key changed on update",
        (_, fdbk::LENGTH_CHANGED) => "record length changed on update",
        (_, fdbk::INVALID_OPTIONS) => "invalid request options",
        (_, fdbk::INVALID_LENGTH) => "invalid record length",
        (_, fdbk::INVALID_KEY_LENGTH) => "invalid key length",
        (_, fdbk::INVALID_RRN) => "invalid relative record number",
        (_, fdbk::ADDRESSED_ON_RRDS) => "addressed request against an RRDS",
        (_, fdbk::INSERT_BACKWARD) => "insert in backward mode",
        _ => match OpenError(fdbk_value) {
            open_error::NOT_FOUND => "data set not found",
            open_error::INVALID_OPTIONS => "open options not allowed",
            open_error::NOT_AVAILABLE => "data set not available",
            open_error::NOT_AUTHORIZED => "not authorized",
            _ => "logical error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_cobol_table() {
        assert_eq!(file_status(0, 0), "00");
        assert_eq!(file_status(0, 8), "02");
        assert_eq!(file_status(8, 4), "10");
        assert_eq!(file_status(8, 0x0C), "21");
        assert_eq!(file_status(8, 8), "22");
        assert_eq!(file_status(8, 0x10), "23");
        assert_eq!(file_status(8, 0xC0), "23");
        assert_eq!(file_status(8, 0x1C), "24");
        assert_eq!(file_status(12, 0), "30");
        assert_eq!(file_status(8, 0x80), "35");
        assert_eq!(file_status(8, 0x14), "93");
    }

    #[test]
    fn display_names_codes_in_hex() {
        let status = Status::logical(fdbk::DUPLICATE_KEY, "key 0001 exists");
        assert_eq!(
            status.to_string(),
            "R15=8 FDBK=X'08' (file status 22): key 0001 exists"
        );
        assert_eq!(status.condition(), "duplicate key");
    }
}
