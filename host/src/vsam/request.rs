//! What every request file works with and returns: the context of a data
//! request ([`Ctx`]), a success ([`Done`]) or the status of a failure, and
//! the RESULT answer they become. A leaf: the request files and the
//! session import it; it imports none of them.

use super::dataset::{DatasetState, Holder, Owner, Refused};
use super::rpl::Rpl;
use super::shared::Shared;
use super::subject::Subject;
use super::unit::Unit;
use super::unit::indexes::check_write;
use crate::fleet::FleetRefusal;
use crate::runtime::call::CallError;
use std::sync::Arc;
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::{Answer, Fdbk, OpenIntent, Record, RplOptions, Status, Verb, fdbk};

/// What a data request works on: the dataset, one string, who it is, the
/// request's RPL options (checked against the OPEN), and the connection's
/// unit of work when the dataset was opened in `commit` durability.
pub(crate) struct Ctx<'a> {
    pub state: &'a Arc<DatasetState>,
    pub rpl: &'a mut Rpl,
    pub owner: Owner,
    pub intent: OpenIntent,
    pub request: Verb,
    pub options: RplOptions,
    pub unit: Option<&'a mut Unit>,
    /// The server's shared state (deadlock detection).
    pub shared: &'a Shared,
}

impl Ctx<'_> {
    /// The record under `key` as this connection sees it: its unit's
    /// change if it made one, else the committed record.
    pub async fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        if let Some(change) = self
            .unit
            .as_deref()
            .and_then(|unit| unit.change(&self.state.def.name, key))
        {
            return Ok(change.image.clone());
        }
        self.state.get(self.name(), key).await
    }

    /// True if this connection sees a record under `key` (its unit's change,
    /// else the store, asked only if the key is not above every stored
    /// key).
    pub async fn taken(&self, key: &[u8]) -> Result<bool, Status> {
        if let Some(change) = self
            .unit
            .as_deref()
            .and_then(|unit| unit.change(&self.state.def.name, key))
        {
            return Ok(change.image.is_some());
        }
        if self.state.above_stored(self.name(), key).await? {
            return Ok(false);
        }
        Ok(self.state.get(self.name(), key).await?.is_some())
    }

    /// Up to `limit` records from `from` in `dir`, as this connection sees
    /// them: the committed records with its unit's changes laid over them.
    pub async fn scan(
        &self,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> Result<Vec<Entry>, Status> {
        let pending = self
            .unit
            .as_deref()
            .and_then(|unit| unit.pending(&self.state.def.name));
        let Some(pending) = pending else {
            return self.state.scan(self.name(), from, dir, limit).await;
        };
        let mut out: Vec<Entry> = Vec::new();
        let mut start = from;
        while out.len() < limit as usize {
            let batch = self
                .state
                .scan(self.name(), start.clone(), dir, limit)
                .await?;
            let exhausted = batch.len() < limit as usize;
            let next = batch.last().map(|last| Start::Exclusive(last.key.clone()));
            out.extend(pending.merge(batch, &start, dir, exhausted));
            match next {
                Some(next) if !exhausted => start = next,
                _ => break,
            }
        }
        out.truncate(limit as usize);
        Ok(out)
    }

    /// The status of this request refused because `holder` holds the
    /// record (R15=8 X'14'); a refusal that closes a deadlock between
    /// connections also rolls one unit of the cycle back.
    pub fn held(&self, holder: Holder) -> Status {
        self.shared.metrics.lock_refused(match holder {
            Holder::String(_) => "string",
            Holder::Unit(_) => "unit",
        });
        let refusal = self.error(
            fdbk::EXCLUSIVE_CONTROL,
            format!("the record is {holder}; retry after it is released"),
        );
        self.shared
            .refused(self.owner.session, holder.session(), refusal)
    }

    /// The status of this request refused because the record could not be
    /// taken: held here (see [`Ctx::held`]) or by another server of the
    /// fleet (R15=8 X'14'), or the fleet's database could not be asked
    /// (R15=12, as for a store that cannot be reached).
    pub fn refused(&self, refusal: Refused) -> Status {
        match refusal {
            Refused::Here(holder) => self.held(holder),
            Refused::Fleet(FleetRefusal::HeldElsewhere) => {
                self.shared.metrics.lock_refused("server");
                self.error(
                fdbk::EXCLUSIVE_CONTROL,
                "the record is held by another server of the fleet (for update, or changed by a unit of work not yet committed there); retry after it is released",
            )
            }
            Refused::Fleet(FleetRefusal::Unavailable(why)) => self.state.fail(
                self.name(),
                CallError::Unavailable(format!("the record's lock cannot be taken: {why}")),
            ),
        }
    }

    /// Takes `key` under exclusive control for this string (here, and in
    /// the fleet's database on a shared store): the generation of the
    /// database lock, if one was taken.
    pub async fn take(&self, key: &[u8]) -> Result<Option<u64>, Status> {
        self.state
            .take(key, self.owner)
            .await
            .map_err(|refusal| self.refused(refusal))
    }

    /// Refuses a write that relies on a record lock taken in the fleet's
    /// database in `generation` if the lock was lost meanwhile (the lock
    /// session's connection broke, and another server may have changed
    /// the record since).
    pub fn still_held(&self, generation: Option<u64>) -> Result<(), Status> {
        if self.state.intact(generation) {
            return Ok(());
        }
        Err(self.state.fail(
            self.name(),
            CallError::Unavailable(
                "the record's lock in the fleet's database was lost with its connection, so another server may have changed the record: nothing was written; read it again for update".into(),
            ),
        ))
    }

    /// Refuses a change made outside the unit of work (an open in `sync`
    /// durability) to a record this connection's own unit holds: the
    /// unit's commit would overwrite it with its own image.
    pub fn not_in_own_unit(&self, key: &[u8]) -> Result<(), Status> {
        if self.in_unit() || self.state.unit_of(key) != Some(self.owner.session) {
            return Ok(());
        }
        Err(self.error(
            fdbk::EXCLUSIVE_CONTROL,
            "the record is held by this connection's own unit of work (another open of the dataset, in commit durability): change it through that open, or COMMIT first",
        ))
    }

    /// Whether the request's changes join the connection's unit of work.
    pub fn in_unit(&self) -> bool {
        self.unit.is_some()
    }

    /// Records in the unit of work that `key` will hold `image` (`None`:
    /// erased), holding the record against other connections until the
    /// unit ends. `stored`: whether the committed store holds the key.
    /// A refusal (another connection holds it, or the unit outgrew its
    /// limits: then it was rolled back) is the request's status.
    pub async fn stage(
        &mut self,
        key: Vec<u8>,
        stored: bool,
        image: Option<Vec<u8>>,
    ) -> Result<(), Status> {
        let session = self.owner.session;
        if let Err(refusal) = self.state.hold_for_unit(&key, session).await {
            return Err(self.refused(refusal));
        }
        let unit = self.unit.as_deref_mut().expect("stage is called in a unit");
        if let Err(why) = unit.stage(self.state, key, stored, image) {
            unit.rollback(session);
            return Err(self.error(fdbk::NO_SPACE, why));
        }
        Ok(())
    }

    /// [`Ctx::stage`] of a record (an insert or an update), checked first
    /// against the alternate indexes the base keeps in step, as this
    /// connection sees them: a unique alternate key held by another record
    /// is refused (FDBK X'08'). True if a NONUNIQUEKEY index then holds
    /// one of the record's keys more than once.
    pub async fn stage_record(
        &mut self,
        key: Vec<u8>,
        stored: bool,
        record: Vec<u8>,
    ) -> Result<bool, Status> {
        let mut duplicate = false;
        if self.state.upgrades() {
            // A key the store does not hold has nothing before (an erase
            // earlier in the unit left none either).
            let before = match stored {
                true => self.read(&key).await?,
                false => None,
            };
            let pending = self
                .unit
                .as_deref()
                .and_then(|unit| unit.pending(&self.state.def.name));
            duplicate = check_write(
                self.state,
                self.name(),
                pending,
                &key,
                before.as_deref(),
                &record,
            )
            .await?;
        }
        self.stage(key, stored, Some(record)).await?;
        Ok(duplicate)
    }

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
