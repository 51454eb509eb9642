//! What every request file works with and returns: the context of a data
//! request ([`Ctx`]), a success ([`Done`]) or the status of a failure, and
//! the RESULT answer they become. A leaf: the request files and the
//! session import it; it imports none of them.

use super::dataset::{DatasetState, Owner};
use super::rpl::Rpl;
use super::subject::Subject;
use vsam_protocol::{Answer, Fdbk, OpenIntent, Record, RplOptions, Status, Verb, fdbk};

/// What a data request works on: the dataset, one string, who it is, and
/// the request's RPL options (checked against the OPEN).
pub(crate) struct Ctx<'a> {
    pub state: &'a DatasetState,
    pub rpl: &'a mut Rpl,
    pub owner: Owner,
    pub intent: OpenIntent,
    pub request: Verb,
    pub options: RplOptions,
}

impl Ctx<'_> {
    /// What this request's messages start with.
    pub fn subject(&self) -> Subject<'_> {
        Subject::new(&self.state.def.name, self.request)
    }

    /// A logical error naming the dataset and the request.
    pub fn error(&self, code: Fdbk, detail: impl std::fmt::Display) -> Status {
        self.subject().logical(code, detail)
    }

    /// The request's name, for the calls it makes on the dataset.
    pub fn name(&self) -> &'static str {
        self.request.name()
    }

    /// Drops the record this string holds under exclusive control.
    pub fn release_held(&mut self) {
        if let Some(held) = self.rpl.held.take() {
            self.state.unlock(&held.key, self.owner);
        }
    }
}

/// A request that succeeded: the records it answers, and the feedback code
/// of its R15=0 answer (X'08' when a record's alternate key is shared by
/// the next record, or a write gave a NONUNIQUEKEY index a key it held).
#[derive(Debug, Default)]
pub(crate) struct Done {
    pub records: Vec<Record>,
    pub fdbk: Fdbk,
}

impl Done {
    /// A success that reports a duplicate alternate key (R15=0 FDBK X'08').
    pub fn duplicate_if(self, duplicate: bool) -> Self {
        Self {
            fdbk: if duplicate {
                fdbk::DUPLICATE_KEY
            } else {
                self.fdbk
            },
            ..self
        }
    }
}

impl From<Vec<Record>> for Done {
    fn from(records: Vec<Record>) -> Self {
        Self {
            records,
            fdbk: fdbk::NONE,
        }
    }
}

/// The outcome of a request: a success, or the status of the failure.
pub(crate) type Outcome = Result<Done, Status>;

/// Turns an outcome into the RESULT answer.
pub(crate) fn answer(outcome: Outcome) -> Answer {
    match outcome {
        Ok(done) => Answer::Result {
            status: success(done.fdbk),
            records: done.records,
        },
        Err(status) => Answer::Result {
            status,
            records: Vec::new(),
        },
    }
}

/// The answer to a request that may fail part way (PUT CHAIN): the records
/// it wrote, with the failure that stopped it, if any.
pub(crate) fn partial((done, outcome): (Done, Result<(), Status>)) -> Answer {
    Answer::Result {
        status: outcome.err().unwrap_or_else(|| success(done.fdbk)),
        records: done.records,
    }
}

/// The R15=0 status of a success with feedback code `code` (X'08' is the
/// only warning a success carries).
pub(crate) fn success(code: Fdbk) -> Status {
    Status::warning(code, "a duplicate alternate key exists")
}
