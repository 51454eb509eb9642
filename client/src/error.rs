//! Client errors. A VSAM error names the dataset, the request, R15, FDBK in
//! hex and the COBOL file status it maps to, e.g.
//! `duplicate key: PROD.CUST PUT R15=8 FDBK=X'08' (file status 22)`.

use std::fmt;
use vsam_protocol::Status;

/// A request that VSAM answered with a non-zero return code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsamError {
    /// Dataset name.
    pub dataset: String,
    /// Request name (`GET`, `PUT`, `DEFINE`...).
    pub request: &'static str,
    /// The status the server answered.
    pub status: Status,
}

impl VsamError {
    /// R15.
    pub fn r15(&self) -> u8 {
        self.status.r15
    }

    /// FDBK.
    pub fn fdbk(&self) -> u8 {
        self.status.fdbk
    }
}

impl fmt::Display for VsamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} R15={} FDBK=X'{:02X}' (file status {})",
            self.status.condition(),
            self.dataset,
            self.request,
            self.status.r15,
            self.status.fdbk,
            self.status.file_status()
        )?;
        if !self.status.message.is_empty() {
            write!(f, "\n  {}", self.status.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for VsamError {}

/// What a connection that nothing answered adds to its reason.
fn unreached_hint(answered: bool) -> &'static str {
    if answered {
        ""
    } else {
        " (is vsamrd running? set --server or VSAMR_SERVER)"
    }
}

/// Everything a client call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or refused the handshake.
    #[error("cannot connect to {server}: {reason}{}", unreached_hint(*.answered))]
    Connect {
        /// The address tried (the last of a fleet's list).
        server: String,
        /// Why it failed.
        reason: String,
        /// Whether something answered at the address (its TLS or
        /// redirector handshake failed, and `reason` says how), rather
        /// than no connection at all.
        answered: bool,
    },
    /// The connection was closed.
    #[error("{0}")]
    Closed(String),
    /// The server rejected a request at the protocol level.
    #[error("protocol error {code}: {message}")]
    Protocol {
        /// One of `vsam_protocol::protocol_error`'s codes.
        code: u16,
        /// The server's explanation.
        message: String,
    },
    /// The server answered something that does not fit the request.
    #[error("unexpected answer to {request}: {detail}")]
    Unexpected {
        /// The request's name (GET, OPEN...).
        request: &'static str,
        /// What was answered instead.
        detail: String,
    },
    /// The server of a fleet holding this request's state was lost: the
    /// request is in doubt, or what it needed (a record held for update, a
    /// unit of work) went with the server. The connection has moved, or
    /// moves at the next request, to another server of the list.
    #[error("{dataset} {request}: {detail}")]
    ServerLost {
        /// The dataset the request was on.
        dataset: String,
        /// The request's name.
        request: &'static str,
        /// What was lost, and what the caller can do.
        detail: String,
    },
    /// VSAM answered with a non-zero return code.
    #[error(transparent)]
    Vsam(#[from] VsamError),
}

impl ClientError {
    /// The VSAM status, if the failure was a VSAM one.
    pub fn vsam(&self) -> Option<&VsamError> {
        match self {
            ClientError::Vsam(e) => Some(e),
            _ => None,
        }
    }

    /// True for VSAM end of data (R15=8 FDBK X'04').
    pub fn is_end_of_data(&self) -> bool {
        self.vsam()
            .is_some_and(|e| e.status.r15 == 8 && e.status.fdbk == vsam_protocol::fdbk::END_OF_DATA)
    }
}
