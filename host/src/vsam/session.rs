//! One connection's VSAM state: its open datasets and their strings.

use super::alternate::{AixIndex, path, requests};
use super::dataset::{DatasetState, Owner};
use super::request::{Ctx, Done, Outcome, answer, partial};
use super::rpl::Rpl;
use super::sessions::SessionWatch;
use super::shared::Shared;
use super::subject::Subject;
use super::unit::{Unit, UnitLimits, UnitWatch};
use super::{catalog_requests, erase, get, point, put};
use crate::after_panic::LockOrStop;
use crate::log_limit::limited;
use crate::security::{Identity, Level};
use std::collections::HashMap;
use std::sync::Arc;
use vsam_protocol::{
    Access, Answer, OpenIntent, Processing, Request, RplOptions, Status, StringRef, Verb, access,
    fdbk, open_error, protocol_error,
};

/// An open dataset on this connection.
pub(crate) struct OpenDataset {
    pub state: Arc<DatasetState>,
    /// Opened by a path: keyed GET and POINT go through this index.
    pub path: Option<Arc<AixIndex>>,
    pub intent: OpenIntent,
    pub access: u8,
    pub strings: Vec<Rpl>,
    /// Opened in `commit` durability: its changes join the unit of work.
    pub commit: bool,
    /// The checkpoints of its `[[units]]` rule: commit the unit after this
    /// many changes (0: never), or this long after its first change.
    pub checkpoint: (u32, Option<std::time::Duration>),
}

impl Drop for Session {
    /// A session dropped without `close_all` (its task cut short) still
    /// lets go of what its unit of work holds.
    fn drop(&mut self) {
        self.unit.rollback(self.id);
        self.shared.session_ended(self.id);
    }
}

/// One connection's session.
pub struct Session {
    id: u64,
    shared: Arc<Shared>,
    /// Largest answer frame the client accepts.
    answer_frame: usize,
    opens: HashMap<u32, OpenDataset>,
    next_handle: u32,
    /// Who is on the connection, for the access rules.
    identity: Identity,
    /// Changes made in `commit` durability since the last commit point.
    unit: Unit,
    /// The protocol minor version of the connection: a dataset entry an
    /// older client cannot decode (a VRRDS, 1.5) is not sent to it.
    minor: u16,
    /// A dataset whose record locks live in a fleet's database was opened
    /// on this connection: its requests wait for the locks they give back.
    in_fleet: bool,
    /// The connection as the operator sees it.
    connection: Arc<SessionWatch>,
}

/// Where a connection comes from, for the operator's list.
pub struct Client {
    /// The client's address.
    pub address: std::net::SocketAddr,
    /// What its HELLO says it is.
    pub program: String,
}

/// What a request is about (see [`Session::dataset_of`]).
enum About<'r> {
    /// The dataset its handle opened.
    Opened(&'r OpenDataset),
    /// A catalog entry it names.
    Named(&'r str),
    /// The entry it defines.
    Defined(&'r vsam_protocol::DatasetSpec),
    /// No dataset (PING, LIST, COMMIT...), or a handle not open.
    Nothing,
}

impl Session {
    /// What a request is about: the dataset its handle opened, or one it
    /// names.
    fn about<'r>(&'r self, request: &'r Request) -> About<'r> {
        let opened = |handle: u32| {
            self.opens
                .get(&handle)
                .map_or(About::Nothing, About::Opened)
        };
        match request {
            Request::Close { handle } => opened(*handle),
            Request::Get(get) => opened(get.target.handle),
            Request::Put(put) => opened(put.target.handle),
            Request::PutChain(chain) => opened(chain.target.handle),
            Request::Erase { target, .. } | Request::EndReq { target } => opened(target.handle),
            Request::Point(point) => opened(point.target.handle),
            Request::Open(open) => About::Named(&open.dataset),
            Request::Delete { name } | Request::Info { name } | Request::Rename { name, .. } => {
                About::Named(name)
            }
            Request::BldIndex { aix } => About::Named(aix),
            Request::DefineAix(spec) => About::Named(&spec.name),
            Request::DefinePath(spec) => About::Named(&spec.name),
            Request::Define(spec) => About::Defined(spec),
            Request::Hello(_)
            | Request::Ping
            | Request::List { .. }
            | Request::Listcat { .. }
            | Request::Commit
            | Request::Rollback => About::Nothing,
        }
    }

    /// The dataset a request is about (the one its handle opened, for
    /// requests on a string), for the per-dataset series of `/metrics`
    /// and the log.
    pub fn dataset_of(&self, request: &Request) -> Option<String> {
        match self.about(request) {
            About::Opened(open) => Some(open.state.def.name.clone()),
            About::Named(name) => Some(name.to_ascii_uppercase()),
            About::Defined(spec) => Some(spec.name.to_ascii_uppercase()),
            About::Nothing => None,
        }
    }

    /// The backend of the dataset a request is about (the one its handle
    /// opened, or the catalog's entry), for `/metrics` and the log.
    pub fn backend_of(&self, request: &Request) -> Option<String> {
        match self.about(request) {
            About::Opened(open) => Some(open.state.def.backend.clone()),
            About::Named(name) => self
                .shared
                .catalog
                .get(&name.to_ascii_uppercase())
                .map(|(def, _)| def.backend),
            About::Defined(spec) if !spec.backend.is_empty() => Some(spec.backend.clone()),
            About::Defined(_) | About::Nothing => None,
        }
    }

    /// A session for a new connection of `identity`, `from` a client that
    /// accepts answers of up to `answer_frame` bytes; the operator's list
    /// of connections shows it until it ends.
    pub fn new(shared: Arc<Shared>, answer_frame: usize, identity: Identity, from: Client) -> Self {
        let id = shared.next_session_id();
        let connection = Arc::new(SessionWatch::new(
            id,
            from.address,
            identity
                .client
                .clone()
                .unwrap_or_else(|| "anonymous".into()),
            from.program,
        ));
        shared.sessions.add(connection.clone());
        let watch = Arc::new(UnitWatch::new(id, identity.to_string()));
        shared.watch_unit(watch.clone());
        let unit = Unit::new(
            UnitLimits {
                records: shared.limits.max_unit_records,
                bytes: shared.limits.max_unit_bytes,
            },
            shared.unit_memory.clone(),
            watch,
        );
        Self {
            id,
            shared,
            answer_frame,
            opens: HashMap::new(),
            next_handle: 1,
            identity,
            unit,
            minor: vsam_protocol::PROTOCOL_MINOR,
            in_fleet: false,
            connection,
        }
    }

    /// What the operator sees of this connection, and the way it ends
    /// the connection.
    pub fn watch(&self) -> Arc<SessionWatch> {
        self.connection.clone()
    }

    /// The session of a connection that agreed protocol minor `minor`.
    pub fn speaking(mut self, minor: u16) -> Self {
        self.minor = minor;
        self
    }

    /// Checks the access rules; a refusal is logged with who asked for what
    /// and answered R15=8 with X'98', VSAM's security refusal.
    fn authorize(&self, request: Verb, datasets: &[&str], level: Level) -> Result<(), Status> {
        let policy = self.shared.access();
        for dataset in datasets {
            let name = dataset.to_ascii_uppercase();
            if let Err(why) = policy.check(&self.identity, &name, level) {
                limited!(warn, "access refusal", session = self.id, identity = %self.identity, dataset = %name, %request, "refused: {why}");
                return Err(Subject::new(&name, request)
                    .refused(open_error::NOT_AUTHORIZED, format!("not authorized: {why}")));
            }
        }
        Ok(())
    }

    /// A DELETE removes the alternate indexes and paths over what it
    /// deletes: the client needs alter access to each of them too, or a
    /// client allowed `PAY.*` could remove `HR.PAYIDX`, defined by another.
    fn authorize_sphere(&self, name: &str) -> Result<(), Status> {
        let name = name.to_ascii_uppercase();
        let (indexes, paths) = self.shared.catalog.related(&name);
        let policy = self.shared.access();
        for member in indexes.iter().chain(&paths) {
            if let Err(why) = policy.check(&self.identity, &member.name, Level::Alter) {
                let kind = match member.relation {
                    Some(crate::catalog::Relation::Path { .. }) => "path",
                    _ => "alternate index",
                };
                limited!(warn, "access refusal", session = self.id, identity = %self.identity, dataset = %name, member = %member.name, "DELETE refused: {why}");
                return Err(Subject::new(&name, Verb::Delete).refused(
                    open_error::NOT_AUTHORIZED,
                    format!(
                        "not authorized: it would also delete its {kind} {}, and {why}; have that {kind} deleted by a client with alter access to it first",
                        member.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// How much one GET may answer: the server's batch, in the bytes of
    /// this client's frame less room for the header, status and message.
    fn batch_limit(&self) -> get::BatchLimit {
        get::BatchLimit {
            records: self.shared.limits.max_batch,
            bytes: self.answer_frame.saturating_sub(get::ANSWER_OVERHEAD),
        }
    }

    /// The connection id (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Runs one request and returns its answer, once the record locks it
    /// gave back in a fleet's database are free for other servers (as they
    /// are at once for this server's other connections).
    ///
    /// A connection that never opened a dataset of a fleet has no such
    /// locks, and its requests run without the scope that collects them.
    /// The request's future is built in place either way: moving it costs
    /// a copy of its every byte, so the rare requests whose state is large
    /// (OPEN, DEFINE, a PUT and its index upkeep...) are boxed in `run`,
    /// and the fleet's scope, which would double it, in a box of its own.
    pub async fn handle(&mut self, request: Request) -> Answer {
        if self.in_fleet {
            Box::pin(crate::fleet::answering(self.handle_now(request))).await
        } else {
            self.handle_now(request).await
        }
    }

    async fn handle_now(&mut self, request: Request) -> Answer {
        let verb = request.verb();
        // A new request: this connection waits for nobody now.
        self.shared.waits.forget(self.id);
        if let Some(reason) = self.unit.doomed() {
            // Told at the first request after, whatever it is, and not run.
            return self.rolled_back(verb, reason, "not run");
        }
        let outcome = self
            .run(request)
            .await
            .unwrap_or_else(|status| answer(Err(status)));
        if refused_as_held(&outcome)
            && let Some(reason) = self.unit.doomed()
        {
            // The refusal closed a deadlock, and this unit ended it.
            return self.rolled_back(verb, reason, "refused");
        }
        if self.checkpoint_due()
            && let Err(status) = Box::pin(self.commit()).await
        {
            return answer(Err(Status::physical(format!(
                "{verb}: its change joined the unit of work, then the unit's checkpoint (its [[units]] rule) failed, and the unit was rolled back with every change since the last commit point: {}",
                status.message
            ))));
        }
        // The requests keep their answers within the client's frame; this
        // holds for any other, such as a LIST of a huge catalog.
        let length = vsam_protocol::answer_frame_len(&outcome);
        if length > self.answer_frame {
            limited!(
                warn,
                "answer over the client's frame",
                session = self.id,
                request = %verb,
                length,
                "an answer larger than the client's frame was not sent"
            );
            return answer(Err(Status::logical(
                fdbk::AREA_TOO_SMALL,
                format!(
                    "{verb}: the answer takes {length} bytes, more than the {} bytes this client accepts (its HELLO max_frame): ask for less at a time (a narrower LIST pattern, fewer records), or connect with a larger max_frame",
                    self.answer_frame
                ),
            )));
        }
        outcome
    }

    /// Forgets the unit of work the operator, the time limit or a deadlock
    /// rolled back, and the answer that says so to the client (R15=12).
    fn rolled_back(&mut self, verb: Verb, reason: String, what: &str) -> Answer {
        let records = self.unit.rollback(self.id);
        tracing::warn!(
            session = self.id,
            records,
            "unit of work rolled back: {reason}"
        );
        answer(Err(Status::physical(format!(
            "{verb}: {what}: this connection's unit of work was rolled back ({reason}); its {records} changes since the last commit point are gone: start the unit again"
        ))))
    }

    /// Every request, one line each: a data request finds its string
    /// ([`Session::ctx`]) and runs in its own file; a catalog request
    /// passes the access rules and runs in its own file.
    /// A LIST or LISTCAT of `pattern` for this client: whole, or the page
    /// after `after`, within its frame.
    fn listing<'a>(
        &self,
        pattern: &'a str,
        after: Option<&'a str>,
    ) -> catalog_requests::Listing<'a> {
        catalog_requests::Listing {
            pattern,
            after,
            answer_frame: self.answer_frame,
            minor: self.minor,
        }
    }

    async fn run(&mut self, request: Request) -> Result<Answer, Status> {
        let limit = self.batch_limit();
        let done = match request {
            Request::Hello(_) => return Ok(hello_again()),
            Request::Ping => Done::default(),
            Request::Open(open) => return Box::pin(self.open(open)).await,
            Request::Close { handle } => Box::pin(self.close(handle)).await?,
            Request::Get(req) => match self.path_of(req.target.handle) {
                None => {
                    get::get(self.ctx(Verb::Get, req.target, req.options)?, &req, limit).await?
                }
                Some(index) => {
                    Box::pin(path::get(
                        self.ctx(Verb::Get, req.target, req.options)?,
                        &index,
                        &req,
                        limit,
                    ))
                    .await?
                }
            },
            Request::Put(req) => {
                Box::pin(put::put(self.ctx(Verb::Put, req.target, req.options)?, req)).await?
            }
            Request::PutChain(chain) => {
                let ctx = self.ctx(Verb::PutChain, chain.target, chain.options)?;
                return Ok(partial(
                    Box::pin(put::put_chain(ctx, chain.records, limit.records)).await,
                ));
            }
            Request::Erase { target, options } => {
                Box::pin(erase::erase(self.ctx(Verb::Erase, target, options)?)).await?
            }
            Request::Point(req) => match self.path_of(req.target.handle) {
                None => {
                    Box::pin(point::point(
                        self.ctx(Verb::Point, req.target, req.options)?,
                        &req,
                    ))
                    .await?
                }
                Some(index) => {
                    Box::pin(path::point(
                        self.ctx(Verb::Point, req.target, req.options)?,
                        &index,
                        &req,
                    ))
                    .await?
                }
            },
            Request::EndReq { target } => end_request(self.ctx(Verb::EndReq, target, 0)?),
            Request::Commit => Box::pin(self.commit()).await?,
            Request::Rollback => self.rollback(),
            Request::Define(spec) => {
                self.authorize(Verb::Define, &[&spec.name], Level::Alter)?;
                return Box::pin(catalog_requests::define(&self.shared, spec)).await;
            }
            Request::Delete { name } => {
                self.authorize(Verb::Delete, &[&name], Level::Alter)?;
                self.authorize_sphere(&name)?;
                return Box::pin(catalog_requests::delete(&self.shared, &name)).await;
            }
            Request::Info { name } => {
                self.authorize(Verb::Info, &[&name], Level::Read)?;
                return Box::pin(catalog_requests::info(&self.shared, &name, self.minor)).await;
            }
            Request::List { pattern, after } => {
                let policy = self.shared.access();
                return catalog_requests::list(
                    &self.shared,
                    &self.listing(&pattern, after.as_deref()),
                    |name| policy.check(&self.identity, name, Level::Read).is_ok(),
                );
            }
            Request::Listcat { pattern, after } => {
                let policy = self.shared.access();
                return catalog_requests::listcat(
                    &self.shared,
                    &self.listing(&pattern, after.as_deref()),
                    |name| policy.check(&self.identity, name, Level::Read).is_ok(),
                );
            }
            Request::Rename { name, new_name } => {
                self.authorize(Verb::Rename, &[&name, &new_name], Level::Alter)?;
                return Box::pin(super::rename::rename(&self.shared, &name, &new_name)).await;
            }
            Request::DefineAix(spec) => {
                self.authorize(Verb::DefineAix, &[&spec.name, &spec.base], Level::Alter)?;
                return Box::pin(requests::define_aix(&self.shared, spec)).await;
            }
            Request::DefinePath(spec) => {
                self.authorize(Verb::DefinePath, &[&spec.name, &spec.aix], Level::Alter)?;
                return Box::pin(requests::define_path(&self.shared, spec)).await;
            }
            Request::BldIndex { aix } => {
                self.authorize(Verb::BldIndex, &[&aix], Level::Alter)?;
                return Box::pin(requests::bldindex(&self.shared, &aix)).await;
            }
        };
        Ok(answer(Ok(done)))
    }

    /// The index of an open made through a path.
    fn path_of(&self, handle: u32) -> Option<Arc<AixIndex>> {
        self.opens.get(&handle).and_then(|open| open.path.clone())
    }

    /// Finds the string a data request names and checks its options.
    fn ctx(&mut self, request: Verb, target: StringRef, options: u32) -> Result<Ctx<'_>, Status> {
        let Some(open) = self.opens.get_mut(&target.handle) else {
            return Err(Status::logical(
                fdbk::INVALID_OPTIONS,
                format!(
                    "{request}: handle {} is not open on this connection; OPEN the dataset first",
                    target.handle
                ),
            ));
        };
        let about = Subject::new(&open.state.def.name, request);
        let options = RplOptions::parse(options)
            .map_err(|conflict| about.logical(fdbk::INVALID_OPTIONS, conflict))?;
        let strings = open.strings.len();
        let Some(rpl) = open.strings.get_mut(usize::from(target.string)) else {
            return Err(about.logical(
                fdbk::NO_STRING,
                format!(
                    "string {} is not available: OPEN gave {strings} string(s)",
                    target.string
                ),
            ));
        };
        if request != Verb::EndReq && !access_allowed(open.access, options) {
            return Err(about.logical(
                fdbk::NOT_ALLOWED_BY_OPEN,
                format!("options {options} are not among the access options given at OPEN"),
            ));
        }
        Ok(Ctx {
            state: &open.state,
            rpl,
            owner: Owner {
                session: self.id,
                handle: target.handle,
                string: target.string,
            },
            intent: open.intent,
            request,
            options,
            unit: open.commit.then_some(&mut self.unit),
            shared: &self.shared,
        })
    }

    async fn open(&mut self, open: vsam_protocol::Open) -> Result<Answer, Status> {
        let name = open.dataset.to_ascii_uppercase();
        let about = Subject::new(&name, Verb::Open);
        let Some(entry) = super::shared_catalog::find(&self.shared, &name).await else {
            return Err(about.refused(
                open_error::NOT_FOUND,
                format!(
                    "the dataset is not in the catalog; DEFINE it first (vsamr define {name} ...)"
                ),
            ));
        };
        if entry.organization.minor() > self.minor {
            return Err(about.refused(
                open_error::INVALID_OPTIONS,
                catalog_requests::newer(entry.organization, self.minor),
            ));
        }
        let (def, path) = requests::resolve_open(&self.shared, &entry)?;
        // A path reads and writes its base: both names must allow it.
        let level = match open.intent {
            OpenIntent::Input => Level::Read,
            OpenIntent::Output | OpenIntent::Update => Level::Update,
        };
        self.authorize(Verb::Open, &[&name, &def.name], level)?;
        let undefined = open.access & !access::DEFINED;
        if undefined != 0 {
            return Err(about.refused(
                open_error::INVALID_OPTIONS,
                format!(
                    "access bits {undefined:#04x} are not defined (KEY 0x01, ADR 0x02, DIR 0x04, SEQ 0x08, SKP 0x10, RST 0x20, COMMIT 0x40)"
                ),
            ));
        }
        let strings = open.strings.max(1);
        if strings > self.shared.limits.max_strings {
            return Err(about.refused(
                open_error::INVALID_OPTIONS,
                format!(
                    "{strings} strings asked, this server allows {}",
                    self.shared.limits.max_strings
                ),
            ));
        }
        if self.opens.len() >= self.shared.limits.max_open_per_connection {
            return Err(about.refused(
                open_error::INVALID_OPTIONS,
                format!(
                    "this connection already has {} datasets open, the limit; CLOSE one first",
                    self.opens.len()
                ),
            ));
        }
        let state = self.shared.acquire(&def)?;
        self.in_fleet |= state.in_fleet();
        if let Err(refusal) = state.open_in_fleet().await {
            self.shared.release(&state);
            let why = match refusal {
                crate::fleet::FleetRefusal::HeldElsewhere => {
                    "another server of the fleet is deleting it".to_string()
                }
                crate::fleet::FleetRefusal::Unavailable(why) => why,
            };
            return Err(about.refused(open_error::NOT_AVAILABLE, why));
        }
        let rule = self.shared.unit_rule(&def.name);
        let recoverable = rule.as_ref().is_some_and(|rule| rule.recoverable);
        let commit =
            open.access & access::COMMIT != 0 || (recoverable && open.intent != OpenIntent::Input);
        if commit && let Err(mut status) = units_allowed(&state, path.is_some()).await {
            if open.access & access::COMMIT == 0 {
                status.message = format!(
                    "{} (the dataset is recoverable by the [[units]] rule {}: its opens for output or update are in commit durability)",
                    status.message,
                    rule.as_ref().map_or("", |rule| rule.datasets.as_str())
                );
            }
            self.shared.release(&state);
            return Err(status);
        }
        let checkpoint = rule.map_or((0, None), |rule| {
            (rule.checkpoint_records, rule.checkpoint_after)
        });
        if open.access & access::RESET != 0
            && let Err(status) = self.reset(&state, open.intent).await
        {
            self.shared.release(&state);
            return Err(status);
        }
        let handle = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        let strings = (0..strings).map(|_| Rpl::new()).collect();
        self.opens.insert(
            handle,
            OpenDataset {
                state,
                path: path.map(Arc::new),
                intent: open.intent,
                access: open.access,
                strings,
                commit,
                checkpoint,
            },
        );
        self.connection.opened(handle, &name);
        tracing::debug!(session = self.id, dataset = %name, handle, "open");
        Ok(Answer::Opened {
            handle,
            dataset: entry.to_spec(),
        })
    }

    /// OPEN with RST: empties the dataset, which nobody else may have open.
    async fn reset(&self, state: &DatasetState, intent: OpenIntent) -> Result<(), Status> {
        let about = Subject::new(&state.def.name, Verb::Open);
        if intent != OpenIntent::Output {
            return Err(about.refused(
                open_error::INVALID_OPTIONS,
                "RST (reset to empty) needs an OPEN for output",
            ));
        }
        if *state.users.lock_or_stop() > 1 {
            return Err(about.refused(
                open_error::NOT_AVAILABLE,
                "RST (reset to empty) needs the dataset to itself, and another connection has it open; CLOSE it there first",
            ));
        }
        state.reset().await
    }

    /// CLOSE: a commit point for an open in `commit` durability (the
    /// whole unit of work commits: a unit is never split); the handle is
    /// closed also when that commit fails, and CLOSE answers its error.
    async fn close(&mut self, handle: u32) -> Outcome {
        self.connection.closed(handle);
        let Some(open) = self.opens.remove(&handle) else {
            return Err(Status::logical(
                fdbk::INVALID_OPTIONS,
                format!("CLOSE: handle {handle} is not open on this connection"),
            ));
        };
        let committed = match open.commit {
            true => self.commit().await,
            false => Ok(Done::default()),
        };
        let finished = self.finish(open).await;
        committed.and(finished)
    }

    /// True if the `[[units]]` rule of a dataset the unit changes says it is
    /// time to commit: enough changes, or long enough since the first.
    fn checkpoint_due(&self) -> bool {
        if self.unit.is_empty() {
            return false;
        }
        let (records, age) = (self.unit.records(), self.unit.age());
        self.opens.values().filter(|open| open.commit).any(|open| {
            let (every, after) = open.checkpoint;
            (every > 0 && records >= every as usize) || after.is_some_and(|after| age >= after)
        })
    }

    /// COMMIT: makes the unit of work durable and ends it. Nothing pending
    /// is a success that does nothing.
    async fn commit(&mut self) -> Outcome {
        if self.unit.is_empty() {
            return Ok(Done::default());
        }
        let started = std::time::Instant::now();
        let records = self.unit.commit(self.id).await.inspect_err(|status| {
            tracing::warn!(
                session = self.id,
                "COMMIT failed, unit rolled back: {status}"
            );
        })?;
        tracing::debug!(
            session = self.id,
            records,
            ms = started.elapsed().as_millis() as u64,
            "unit of work committed"
        );
        Ok(Done::default())
    }

    /// ROLLBACK: forgets the unit of work. Nothing pending is a success
    /// that does nothing.
    fn rollback(&mut self) -> Done {
        let records = self.unit.rollback(self.id);
        if records > 0 {
            tracing::debug!(session = self.id, records, "unit of work rolled back");
        }
        Done::default()
    }

    async fn finish(&self, open: OpenDataset) -> Outcome {
        open.state.unlock_all(self.id, None);
        self.shared.release_and_flush(&open.state).await?;
        Ok(Done::default())
    }

    /// Closes everything the connection left open (disconnect, shutdown):
    /// releases its locks and flushes datasets nobody else uses.
    pub async fn close_all(&mut self) {
        // A connection gone mid-unit: the unit never happened.
        let records = self.unit.rollback(self.id);
        if records > 0 {
            tracing::info!(
                session = self.id,
                records,
                "connection ended with a unit of work pending: rolled back"
            );
        }
        let opens: Vec<OpenDataset> = self.opens.drain().map(|(_, open)| open).collect();
        for open in opens {
            let name = open.state.def.name.clone();
            if let Err(status) = self.finish(open).await {
                tracing::warn!(session = self.id, dataset = %name, "flush on close failed: {status}");
            }
        }
    }
}

/// Whether an OPEN may ask for `commit` durability: the dataset's
/// backend must keep units whole, and a path reads the committed index
/// (a unit's alternate keys reach it at COMMIT), so a path is opened in
/// `sync` durability; its base may take part in units.
async fn units_allowed(state: &DatasetState, through_path: bool) -> Result<(), Status> {
    let about = Subject::new(&state.def.name, Verb::Open);
    if through_path {
        return Err(about.refused(
            open_error::INVALID_OPTIONS,
            "commit durability (units of work) is not available through a path, whose alternate index learns a unit's changes only at COMMIT: open the path without COMMIT, or open its base with COMMIT",
        ));
    }
    let backend = state.backend();
    if !backend.keeps_units_whole().await {
        return Err(about.refused(
            open_error::NOT_AVAILABLE,
            format!(
                "commit durability (units of work) needs a backend whose plugin keeps the writes between two syncs whole, and plugin {} of backend {} does not (its units.whole is missing or false): open it without COMMIT, or route the dataset to a backend that does (sql, csv)",
                backend.plugin(),
                backend.name()
            ),
        ));
    }
    Ok(())
}

/// True for an answer R15=8 X'14': the record is held by another.
fn refused_as_held(outcome: &Answer) -> bool {
    matches!(outcome, Answer::Result { status, .. } if status.r15 == vsam_protocol::r15::LOGICAL && status.fdbk == fdbk::EXCLUSIVE_CONTROL)
}

/// The answer to a second HELLO.
fn hello_again() -> Answer {
    Answer::ProtocolError {
        code: protocol_error::MALFORMED,
        fatal: false,
        message: "HELLO was already exchanged on this connection".into(),
    }
}

/// ENDREQ: the string lets go of its held record and its position.
fn end_request(mut ctx: Ctx<'_>) -> Done {
    ctx.release_held();
    ctx.rpl.set_cursor(None);
    Done::default()
}

/// True if the OPEN's access bits allow the request's options.
fn access_allowed(bits: u8, options: RplOptions) -> bool {
    if bits == 0 {
        return true;
    }
    let access_bit = match options.access {
        Access::Key => access::KEY,
        Access::Address => access::ADR,
    };
    let processing_bit = match options.processing {
        Processing::Direct => access::DIR,
        Processing::Sequential => access::SEQ,
        Processing::SkipSequential => access::SKP,
    };
    let access_given = bits & (access::KEY | access::ADR) != 0;
    let processing_given = bits & (access::DIR | access::SEQ | access::SKP) != 0;
    (!access_given || bits & access_bit != 0) && (!processing_given || bits & processing_bit != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsam_protocol::options::bits;

    fn options(word: u32) -> RplOptions {
        RplOptions::parse(word).unwrap()
    }

    #[test]
    fn open_access_bits_limit_requests() {
        assert!(
            access_allowed(0, options(bits::ADR | bits::SKP)),
            "0 allows everything"
        );
        assert!(
            access_allowed(access::KEY, options(bits::KEY | bits::DIR)),
            "no processing bit given"
        );
        assert!(!access_allowed(access::KEY, options(bits::ADR)));
        assert!(access_allowed(
            access::KEY | access::SEQ,
            options(bits::KEY | bits::SEQ)
        ));
        assert!(!access_allowed(
            access::KEY | access::SEQ,
            options(bits::KEY | bits::DIR)
        ));
        assert!(!access_allowed(access::DIR, options(bits::SKP)));
    }
}
