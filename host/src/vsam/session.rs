//! One connection's VSAM state: its open datasets and their strings.

use super::alternate::{self, AixIndex};
use super::dataset::{DatasetState, Owner};
use super::request::{Ctx, Done, Outcome, answer, success};
use super::rpl::Rpl;
use super::shared::Shared;
use super::{catalog_requests, erase, get, point, put};
use crate::security::{Identity, Level};
use std::collections::HashMap;
use std::sync::Arc;
use vsam_protocol::{
    Access, Answer, OpenIntent, Processing, Request, RplOptions, Status, StringRef, access, fdbk,
    open_error, protocol_error,
};

/// An open dataset on this connection.
pub(crate) struct OpenDataset {
    pub state: Arc<DatasetState>,
    /// Opened by a path: keyed GET and POINT go through this index.
    pub path: Option<Arc<AixIndex>>,
    pub intent: OpenIntent,
    pub access: u8,
    pub strings: Vec<Rpl>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.session_ended();
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
}

impl Session {
    /// A session for a new connection of `identity` whose client accepts
    /// answers of up to `answer_frame` bytes.
    pub fn new(shared: Arc<Shared>, answer_frame: usize, identity: Identity) -> Self {
        let id = shared.next_session_id();
        Self {
            id,
            shared,
            answer_frame,
            opens: HashMap::new(),
            next_handle: 1,
            identity,
        }
    }

    /// Checks the access rules; a refusal is logged with who asked for what
    /// and answered R15=8 with X'98', VSAM's security refusal.
    fn authorize(&self, request: &str, datasets: &[&str], level: Level) -> Result<(), Status> {
        let policy = self.shared.access();
        for dataset in datasets {
            let name = dataset.to_ascii_uppercase();
            if let Err(why) = policy.check(&self.identity, &name, level) {
                tracing::warn!(session = self.id, identity = %self.identity, dataset = %name, request, "refused: {why}");
                return Err(Status::logical(
                    open_error::NOT_AUTHORIZED,
                    format!("{name} {request}: not authorized: {why}"),
                ));
            }
        }
        Ok(())
    }

    /// A DELETE removes the alternate indexes and paths over what it
    /// deletes: the client needs alter access to each of them too, or a
    /// client allowed `PAY.*` could remove `HR.PAYIDX`, defined by another.
    fn authorize_sphere(&self, name: &str) -> Result<(), Status> {
        let name = name.to_ascii_uppercase();
        let (indexes, paths) = alternate::requests::related(&self.shared, &name);
        let policy = self.shared.access();
        for member in indexes.iter().chain(&paths) {
            if let Err(why) = policy.check(&self.identity, &member.name, Level::Alter) {
                let kind = match member.relation {
                    Some(crate::catalog::Relation::Path { .. }) => "path",
                    _ => "alternate index",
                };
                tracing::warn!(session = self.id, identity = %self.identity, dataset = %name, member = %member.name, "DELETE refused: {why}");
                return Err(Status::logical(
                    open_error::NOT_AUTHORIZED,
                    format!(
                        "{name} DELETE: not authorized: it would also delete its {kind} {}, and {why}; have that {kind} deleted by a client with alter access to it first",
                        member.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Bytes of records an answer to this client may carry: its frame,
    /// less room for the header, status and message.
    fn answer_room(&self) -> usize {
        self.answer_frame.saturating_sub(get::ANSWER_OVERHEAD)
    }

    /// The connection id (for logs).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Runs one request and returns its answer.
    pub async fn handle(&mut self, request: Request) -> Answer {
        let name = request.name();
        let outcome = self.run(request).await;
        // The requests above keep their answers within the client's frame;
        // this holds for any other, such as a LIST of a huge catalog.
        let length = vsam_protocol::answer_frame_len(&outcome);
        if length > self.answer_frame {
            tracing::warn!(
                session = self.id,
                request = name,
                length,
                "an answer larger than the client's frame was not sent"
            );
            return answer(Err(Status::logical(
                fdbk::AREA_TOO_SMALL,
                format!(
                    "{name}: the answer takes {length} bytes, more than the {} bytes this client accepts (its HELLO max_frame): ask for less at a time (a narrower LIST pattern, fewer records), or connect with a larger max_frame",
                    self.answer_frame
                ),
            )));
        }
        outcome
    }

    async fn run(&mut self, request: Request) -> Answer {
        match request {
            Request::Hello(_) => Answer::ProtocolError {
                code: protocol_error::MALFORMED,
                fatal: false,
                message: "HELLO was already exchanged on this connection".into(),
            },
            Request::Ping => answer(Ok(Done::default())),
            Request::Open(open) => self.open(open).await,
            Request::Close { handle } => answer(self.close(handle).await),
            Request::Get(req) => {
                let limit = get::BatchLimit {
                    records: self.shared.limits.max_batch,
                    bytes: self.answer_room(),
                };
                let path = self.path_of(req.target.handle);
                answer(match self.ctx("GET", req.target, req.options) {
                    Ok((ctx, options)) => match path {
                        Some(index) => {
                            let batch = get::BatchLimit {
                                records: req.max_records.max(1).min(limit.records),
                                bytes: limit.bytes,
                            };
                            alternate::path::get(ctx, &index, options, &req, batch).await
                        }
                        None => get::get(ctx, options, &req, limit).await,
                    },
                    Err(status) => Err(status),
                })
            }
            Request::Put(req) => answer(match self.ctx("PUT", req.target, req.options) {
                Ok((ctx, options)) => put::put(ctx, options, req).await,
                Err(status) => Err(status),
            }),
            Request::PutChain(chain) => {
                let max_chain = self.shared.limits.max_batch;
                let (done, outcome) = match self.ctx("PUT CHAIN", chain.target, chain.options) {
                    Ok((ctx, options)) => {
                        put::put_chain(ctx, options, chain.records, max_chain).await
                    }
                    Err(status) => (Done::default(), Err(status)),
                };
                // The records written are answered with the failure too.
                Answer::Result {
                    status: outcome.err().unwrap_or_else(|| success(done.fdbk)),
                    records: done.records,
                }
            }
            Request::Erase { target, options } => {
                answer(match self.ctx("ERASE", target, options) {
                    Ok((ctx, options)) => erase::erase(ctx, options).await,
                    Err(status) => Err(status),
                })
            }
            Request::Point(req) => {
                let path = self.path_of(req.target.handle);
                answer(match self.ctx("POINT", req.target, req.options) {
                    Ok((ctx, options)) => match path {
                        Some(index) => alternate::path::point(ctx, &index, options, &req).await,
                        None => point::point(ctx, options, &req).await,
                    },
                    Err(status) => Err(status),
                })
            }
            Request::EndReq { target } => {
                answer(self.ctx("ENDREQ", target, 0).map(|(mut ctx, _)| {
                    ctx.release_held();
                    ctx.rpl.set_cursor(None);
                    Done::default()
                }))
            }
            Request::Define(spec) => match self.authorize("DEFINE", &[&spec.name], Level::Alter) {
                Ok(()) => catalog_requests::define(&self.shared, spec).await,
                Err(status) => answer(Err(status)),
            },
            Request::Delete { name } => match self
                .authorize("DELETE", &[&name], Level::Alter)
                .and_then(|()| self.authorize_sphere(&name))
            {
                Ok(()) => catalog_requests::delete(&self.shared, &name).await,
                Err(status) => answer(Err(status)),
            },
            Request::Info { name } => match self.authorize("INFO", &[&name], Level::Read) {
                Ok(()) => catalog_requests::info(&self.shared, &name),
                Err(status) => answer(Err(status)),
            },
            Request::List { pattern } => {
                let policy = self.shared.access();
                catalog_requests::list(&self.shared, &pattern, |name| {
                    policy.check(&self.identity, name, Level::Read).is_ok()
                })
            }
            Request::DefineAix(spec) => {
                match self.authorize("DEFINE AIX", &[&spec.name, &spec.base], Level::Alter) {
                    Ok(()) => alternate::requests::define_aix(&self.shared, spec).await,
                    Err(status) => answer(Err(status)),
                }
            }
            Request::DefinePath(spec) => {
                match self.authorize("DEFINE PATH", &[&spec.name, &spec.aix], Level::Alter) {
                    Ok(()) => alternate::requests::define_path(&self.shared, spec).await,
                    Err(status) => answer(Err(status)),
                }
            }
            Request::BldIndex { aix } => match self.authorize("BLDINDEX", &[&aix], Level::Alter) {
                Ok(()) => alternate::requests::bldindex(&self.shared, &aix).await,
                Err(status) => answer(Err(status)),
            },
        }
    }

    /// The index of an open made through a path.
    fn path_of(&self, handle: u32) -> Option<Arc<AixIndex>> {
        self.opens.get(&handle).and_then(|open| open.path.clone())
    }

    /// Finds the string a data request names and checks its options.
    fn ctx(
        &mut self,
        request: &'static str,
        target: StringRef,
        options: u32,
    ) -> Result<(Ctx<'_>, RplOptions), Status> {
        let Some(open) = self.opens.get_mut(&target.handle) else {
            return Err(Status::logical(
                fdbk::INVALID_OPTIONS,
                format!(
                    "{request}: handle {} is not open on this connection; OPEN the dataset first",
                    target.handle
                ),
            ));
        };
        let name = open.state.def.name.clone();
        let options = RplOptions::parse(options).map_err(|conflict| {
            Status::logical(
                fdbk::INVALID_OPTIONS,
                format!("{name} {request}: {conflict}"),
            )
        })?;
        let strings = open.strings.len();
        let Some(rpl) = open.strings.get_mut(usize::from(target.string)) else {
            return Err(Status::logical(
                fdbk::NO_STRING,
                format!(
                    "{name} {request}: string {} is not available: OPEN gave {strings} string(s)",
                    target.string
                ),
            ));
        };
        if request != "ENDREQ" && !access_allowed(open.access, options) {
            return Err(Status::logical(
                fdbk::NOT_ALLOWED_BY_OPEN,
                format!(
                    "{name} {request}: options {options} are not among the access options given at OPEN"
                ),
            ));
        }
        let ctx = Ctx {
            state: &open.state,
            rpl,
            owner: Owner {
                session: self.id,
                handle: target.handle,
                string: target.string,
            },
            intent: open.intent,
            request,
        };
        Ok((ctx, options))
    }

    async fn open(&mut self, open: vsam_protocol::Open) -> Answer {
        let name = open.dataset.to_ascii_uppercase();
        let Some((entry, _)) = self.shared.catalog.get(&name) else {
            return answer(Err(Status::logical(
                open_error::NOT_FOUND,
                format!(
                    "{name} OPEN: the dataset is not in the catalog; DEFINE it first (vsamr define {name} ...)"
                ),
            )));
        };
        let (def, path) = match alternate::requests::resolve_open(&self.shared, &entry) {
            Ok(resolved) => resolved,
            Err(status) => return answer(Err(status)),
        };
        // A path reads and writes its base: both names must allow it.
        let level = match open.intent {
            OpenIntent::Input => Level::Read,
            OpenIntent::Output | OpenIntent::Update => Level::Update,
        };
        if let Err(status) = self.authorize("OPEN", &[&name, &def.name], level) {
            return answer(Err(status));
        }
        let strings = open.strings.max(1);
        if strings > self.shared.limits.max_strings {
            return answer(Err(Status::logical(
                open_error::INVALID_OPTIONS,
                format!(
                    "{name} OPEN: {strings} strings asked, this server allows {}",
                    self.shared.limits.max_strings
                ),
            )));
        }
        if self.opens.len() >= self.shared.limits.max_open_per_connection {
            return answer(Err(Status::logical(
                open_error::INVALID_OPTIONS,
                format!(
                    "{name} OPEN: this connection already has {} datasets open, the limit; CLOSE one first",
                    self.opens.len()
                ),
            )));
        }
        let state = match self.shared.acquire(&def) {
            Ok(state) => state,
            Err(status) => return answer(Err(status)),
        };
        if open.access & access::RESET != 0
            && let Err(status) = self.reset(&state, open.intent).await
        {
            self.shared.release(&state);
            return answer(Err(status));
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
            },
        );
        tracing::debug!(session = self.id, dataset = %name, handle, "open");
        Answer::Opened {
            handle,
            dataset: entry.to_spec(),
        }
    }

    /// OPEN with RST: empties the dataset, which nobody else may have open.
    async fn reset(&self, state: &DatasetState, intent: OpenIntent) -> Result<(), Status> {
        let name = &state.def.name;
        if intent != OpenIntent::Output {
            return Err(Status::logical(
                open_error::INVALID_OPTIONS,
                format!("{name} OPEN: RST (reset to empty) needs an OPEN for output"),
            ));
        }
        if *state.users.lock().unwrap() > 1 {
            return Err(Status::logical(
                open_error::NOT_AVAILABLE,
                format!(
                    "{name} OPEN: RST (reset to empty) needs the dataset to itself, and another connection has it open; CLOSE it there first"
                ),
            ));
        }
        state.reset().await
    }

    async fn close(&mut self, handle: u32) -> Outcome {
        let Some(open) = self.opens.remove(&handle) else {
            return Err(Status::logical(
                fdbk::INVALID_OPTIONS,
                format!("CLOSE: handle {handle} is not open on this connection"),
            ));
        };
        self.finish(open).await
    }

    async fn finish(&self, open: OpenDataset) -> Outcome {
        open.state.unlock_all(self.id, None);
        if self.shared.release(&open.state) {
            open.state.flush().await?;
        }
        Ok(Done::default())
    }

    /// Closes everything the connection left open (disconnect, shutdown):
    /// releases its locks and flushes datasets nobody else uses.
    pub async fn close_all(&mut self) {
        let opens: Vec<OpenDataset> = self.opens.drain().map(|(_, open)| open).collect();
        for open in opens {
            let name = open.state.def.name.clone();
            if let Err(status) = self.finish(open).await {
                tracing::warn!(session = self.id, dataset = %name, "flush on close failed: {status}");
            }
        }
    }
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
