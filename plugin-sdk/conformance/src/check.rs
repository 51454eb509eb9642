//! Assertions for scenarios: each failure says what was expected and what
//! the server answered.

use std::fmt;
use vsam_client::{ClientError, Record};

/// Why a scenario failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure(format!("unexpected error: {error}"))
    }
}

/// The result type of scenario steps.
pub type Step<T = ()> = Result<T, Failure>;

/// Fails the scenario with a message.
pub fn fail<T>(message: impl Into<String>) -> Step<T> {
    Err(Failure(message.into()))
}

/// Expects a request to fail with R15=8 and the given feedback code.
/// `fdbk` is an FDBK ([`vsam_protocol::fdbk`]) or, for OPEN and catalog
/// requests, an OPEN error code ([`vsam_protocol::open_error`]).
pub fn expect_fdbk<T: fmt::Debug>(
    what: &str,
    result: Result<T, ClientError>,
    fdbk: impl Into<u8>,
) -> Step {
    expect_status(what, result, 8, fdbk)
}

/// Expects a request to fail with the given R15 and feedback code.
pub fn expect_status<T: fmt::Debug>(
    what: &str,
    result: Result<T, ClientError>,
    r15: u8,
    fdbk: impl Into<u8>,
) -> Step {
    let fdbk: u8 = fdbk.into();
    match result {
        Err(ClientError::Vsam(e)) if e.status.r15 == r15 && e.status.fdbk == fdbk => Ok(()),
        Err(other) => fail(format!(
            "{what}: expected R15={r15} FDBK=X'{fdbk:02X}', got {other}"
        )),
        Ok(value) => fail(format!(
            "{what}: expected R15={r15} FDBK=X'{fdbk:02X}', got success {value:?}"
        )),
    }
}

/// Expects equality.
pub fn expect_eq<T: PartialEq + fmt::Debug>(what: &str, actual: T, expected: T) -> Step {
    if actual == expected {
        Ok(())
    } else {
        fail(format!("{what}: expected {expected:?}, got {actual:?}"))
    }
}

/// The data of records, for comparisons.
pub fn data(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.data.clone()).collect()
}
