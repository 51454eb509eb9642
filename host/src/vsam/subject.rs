//! Where every status message starts: "NAME REQUEST: ", written once here
//! so that a program's log always says which dataset and which request a
//! code is about. A leaf: every request file imports it.

use std::fmt::Display;
use vsam_protocol::{Fdbk, OpenError, Status, Verb};

/// The dataset and the request a status speaks of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The dataset (or alternate index, or path), upper case.
    pub dataset: &'a str,
    /// The request, as the program knows it (`GET`, `DEFINE AIX`), or a
    /// step of one (`OPEN (reset)`).
    pub request: &'a str,
}

impl<'a> Subject<'a> {
    /// `request` on `dataset`.
    pub fn new(dataset: &'a str, request: Verb) -> Self {
        Self {
            dataset,
            request: request.name(),
        }
    }

    /// A message about the subject: `NAME REQUEST: detail`.
    pub fn say(self, detail: impl Display) -> String {
        format!("{} {}: {detail}", self.dataset, self.request)
    }

    /// A logical error (R15=8) with its feedback code.
    pub fn logical(self, code: Fdbk, detail: impl Display) -> Status {
        Status::logical(code, self.say(detail))
    }

    /// A refusal (R15=8) with an OPEN error code.
    pub fn refused(self, code: OpenError, detail: impl Display) -> Status {
        Status::refused(code, self.say(detail))
    }

    /// A physical error (R15=12): the store failed.
    pub fn physical(self, detail: impl Display) -> Status {
        Status::physical(self.say(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsam_protocol::{fdbk, open_error, r15};

    #[test]
    fn every_message_names_the_dataset_and_the_request() {
        let about = Subject::new("PAY.MASTER", Verb::PutChain);
        let status = about.logical(fdbk::DUPLICATE_KEY, "a record with this key exists");
        assert_eq!(
            (status.r15, status.fdbk, status.message.as_str()),
            (
                r15::LOGICAL,
                0x08,
                "PAY.MASTER PUT CHAIN: a record with this key exists"
            )
        );
        let status = Subject::new("PAY.MASTER", Verb::Open).refused(open_error::NOT_FOUND, "gone");
        assert_eq!((status.fdbk, status.file_status()), (0x80, "35"));
        let status = Subject {
            dataset: "PAY.MASTER",
            request: "OPEN (reset)",
        }
        .physical("disk full");
        assert_eq!(status.r15, r15::PHYSICAL);
        assert_eq!(status.message, "PAY.MASTER OPEN (reset): disk full");
    }
}
