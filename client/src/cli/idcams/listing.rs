//! SYSPRINT: the commands as read, the messages of each function in
//! IDCAMS's form and numbers, and the condition codes.
//!
//! IBM's message numbers are used where IDCAMS has one for the case
//! (IDC0001I, IDC3012I...); what only this product says (a parameter
//! accepted and ignored, the server's explanation) carries `VSR`.

use super::deck::Command;
use std::io::Write;
use vsam_client::ClientError;
use vsam_protocol::{Status, fdbk, r15};

/// IDCAMS condition codes.
pub mod cc {
    /// The function ran as directed.
    pub const OK: u8 = 0;
    /// A problem, but the function went on (an entry LISTCAT cannot find,
    /// an empty input).
    pub const WARNING: u8 = 4;
    /// Done, with major parts bypassed (an entry to delete not found, a
    /// duplicate name at DEFINE, records left out of a REPRO).
    pub const BYPASSED: u8 = 8;
    /// The function could not be done (a logical error: bad or missing
    /// parameters, the server refused it).
    pub const FAILED: u8 = 12;
    /// Severe: the rest of the deck is not run (the server is lost, the
    /// IF-THEN-ELSE structure is broken).
    pub const SEVERE: u8 = 16;
}

/// Where the listing goes.
pub struct Listing {
    out: Box<dyn Write + Send>,
}

impl Listing {
    /// A listing on standard output.
    pub fn stdout() -> Self {
        Self {
            out: Box::new(std::io::stdout()),
        }
    }

    /// Lists a command as written.
    pub fn echo(&mut self, command: &Command) {
        for record in &command.source {
            self.line(record);
        }
    }

    /// One message line.
    pub fn message(&mut self, text: impl AsRef<str>) {
        self.line(text.as_ref());
    }

    /// Any line (a printed record, a LISTCAT line).
    pub fn line(&mut self, text: &str) {
        // A listing that cannot be written ends the run as IDCAMS ends
        // without SYSPRINT: there is no one left to tell.
        if writeln!(self.out, "{text}").is_err() {
            std::process::exit(i32::from(cc::SEVERE));
        }
    }

    /// IDC0001I after each function.
    pub fn function_completed(&mut self, code: u8) {
        self.line("");
        self.message(format!(
            "IDC0001I FUNCTION COMPLETED, HIGHEST CONDITION CODE WAS {code}"
        ));
        self.line("");
    }

    /// IDC0002I at the end.
    pub fn processing_complete(&mut self, maxcc: u8) {
        self.line("");
        self.message(format!(
            "IDC0002I IDCAMS PROCESSING COMPLETE. MAXIMUM CONDITION CODE WAS {maxcc}"
        ));
        let _ = self.out.flush();
    }

    /// The messages of a failed request to the server; returns the
    /// condition code it means: an entry not found (IDC3012I) or a name
    /// taken (IDC3013I) as `missing`/`duplicate` say, a connection lost
    /// 16, anything else 12.
    pub fn client_error(&mut self, entry: &str, error: &ClientError) -> u8 {
        match error {
            ClientError::Vsam(vsam) => {
                let status = &vsam.status;
                if is(status, fdbk::NOT_FOUND.0) {
                    self.message(format!("IDC3012I ENTRY {entry} NOT FOUND"));
                } else if is(status, fdbk::DUPLICATE_KEY.0)
                    && (vsam.request.starts_with("DEFINE") || vsam.request == "ALTER")
                {
                    self.message("IDC3013I DUPLICATE DATA SET NAME");
                } else {
                    self.message(format!(
                        "IDC3351I ** VSAM {} RETURN CODE IS {} - RPLFDBWD = X'00{:02X}00{:02X}'",
                        if vsam.request == "OPEN" {
                            "OPEN"
                        } else {
                            "I/O"
                        },
                        status.r15,
                        status.r15,
                        status.fdbk
                    ));
                }
                if status.message.starts_with(&format!("{entry} ")) {
                    // The server's message names the entry already.
                    self.message(format!("VSR3009I ** {}", status.message));
                } else if !status.message.is_empty() {
                    self.message(format!("VSR3009I ** {entry}: {}", status.message));
                }
                if is(status, fdbk::NOT_FOUND.0) || is(status, fdbk::DUPLICATE_KEY.0) {
                    cc::BYPASSED
                } else {
                    cc::FAILED
                }
            }
            ClientError::Connect { .. }
            | ClientError::Closed(_)
            | ClientError::ServerLost { .. } => {
                self.message(format!("VSR3300I ** THE SERVER IS LOST: {error}"));
                cc::SEVERE
            }
            other => {
                self.message(format!("VSR3009I ** {entry}: {other}"));
                cc::FAILED
            }
        }
    }
}

/// True for a logical error with this feedback code.
fn is(status: &Status, code: u8) -> bool {
    status.r15 == r15::LOGICAL && status.fdbk == code
}
