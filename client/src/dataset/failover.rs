//! What a lost server means to an open dataset: the dataset is opened
//! again on the next server of a fleet, its strings set where they were
//! ([`super::resume`]), and a request whose answer was lost is sent again
//! only if it changes nothing; anything else is reported.

use super::Dataset;
use super::resume::{Reposition, Strings};
use crate::catalog::expect_ok;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::link::Link;
use std::sync::{Arc, Mutex};
use vsam_protocol::{
    Answer, DatasetSpec, Get, Open, Point, Processing, Request, RplOptions, StringRef,
};

/// The OPEN a dataset was made with, and where it is open now.
pub(super) struct Opened {
    request: Open,
    now: Mutex<Bound>,
    /// One reopening at a time.
    reopening: tokio::sync::Mutex<()>,
}

/// What a request sent on a string was, as far as its answer concerns the
/// string (the records of a write are not kept).
enum Sent {
    Get(Get),
    Point(Point),
    EndReq,
    /// A PUT, PUT CHAIN or ERASE.
    Change,
    Other,
}

impl Sent {
    fn of(request: &Request) -> Self {
        match request {
            Request::Get(get) => Self::Get(get.clone()),
            Request::Point(point) => Self::Point(point.clone()),
            Request::EndReq { .. } => Self::EndReq,
            Request::Put(_) | Request::PutChain(_) | Request::Erase { .. } => Self::Change,
            _ => Self::Other,
        }
    }
}

impl Opened {
    /// Opened by `request` as `handle` on `link`.
    pub(super) fn new(request: Open, link: Arc<Link>, handle: u32) -> Self {
        Self {
            request,
            now: Mutex::new(Bound {
                link,
                handle,
                strings: Strings::default(),
            }),
            reopening: tokio::sync::Mutex::new(()),
        }
    }

    /// The socket and the handle it is open on now.
    pub(super) fn at(&self) -> (Arc<Link>, u32) {
        let now = self.now.lock().unwrap();
        (now.link.clone(), now.handle)
    }
}

/// The server the dataset is open on, its handle there, and its strings.
struct Bound {
    link: Arc<Link>,
    handle: u32,
    strings: Strings,
}

/// What a request does, for what a lost server means to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Changes nothing and holds nothing (GET NUP, POINT, ENDREQ): sent
    /// again on the next server.
    Look,
    /// GET UPD: never sent again (the record is not held).
    Hold,
    /// PUT UPD or ERASE of the held record.
    ChangeHeld,
    /// An insert, or a chain: in doubt when its answer is lost.
    Change,
}

impl Dataset {
    /// The socket and handle to send on: opened again on the next server
    /// if its own was lost.
    pub(super) async fn bound(&self) -> Result<(Arc<Link>, u32), ClientError> {
        let (link, handle) = self.open.at();
        if !self.conn.fails_over() || link.look().await.is_none() {
            return Ok((link, handle));
        }
        let _one = self.open.reopening.lock().await;
        let lost = {
            let now = self.open.now.lock().unwrap();
            if now.link.lost().is_none() {
                return Ok((now.link.clone(), now.handle));
            }
            now.link.clone()
        };
        let why = format!(
            "the connection to {} was lost ({})",
            lost.server,
            lost.lost().unwrap_or_default()
        );
        let (link, handle, _) =
            open_on(&self.conn, &self.open.request)
                .await
                .map_err(|e| ClientError::ServerLost {
                    dataset: self.spec.name.clone(),
                    request: "OPEN",
                    detail: format!("{why}, and opening the dataset again failed: {e}"),
                })?;
        let mut now = self.open.now.lock().unwrap();
        now.link = link.clone();
        now.handle = handle;
        now.strings.moved(&why);
        Ok((link, handle))
    }

    /// Sends a request on string `string` (built for the handle in use)
    /// and takes what its answer means for the string; a request that
    /// changes nothing is sent again on the next server if its own is
    /// lost.
    pub(super) async fn exchange(
        &self,
        string: u16,
        kind: Kind,
        mut build: impl FnMut(StringRef) -> Request,
    ) -> Result<Answer, ClientError> {
        let mut tries = 3;
        loop {
            let (link, handle) = self.bound().await?;
            let target = StringRef { handle, string };
            let request = build(target);
            let name = crate::connection::request_name(&request);
            if kind == Kind::ChangeHeld {
                let mut now = self.open.now.lock().unwrap();
                now.strings.check_hold(string, &self.spec.name, name)?;
            }
            if matches!(kind, Kind::Change | Kind::ChangeHeld)
                && self.in_unit()
                && let Some(lost) = self.conn.unit_lost()
            {
                return Err(ClientError::ServerLost {
                    dataset: self.spec.name.clone(),
                    request: name,
                    detail: format!("{lost}; ROLLBACK to end it, then run the unit again"),
                });
            }
            let sent = Sent::of(&request);
            let resumed = match &sent {
                Sent::Get(get) if RplOptions::parse(get.options).is_ok_and(sequential) => {
                    self.resume(&link, string, target).await
                }
                _ => Ok(None),
            };
            let answer = match resumed {
                Ok(Some(end)) => return Ok(end),
                Ok(None) => link.call(request).await,
                Err(e) => Err(e),
            };
            let answer = match answer {
                Err(ClientError::Closed(reason)) if self.conn.fails_over() => {
                    tries -= 1;
                    match kind {
                        Kind::Look if tries > 0 => continue,
                        Kind::Look => Err(ClientError::Closed(reason)),
                        Kind::Hold => Err(self.lost_in_flight(
                            name,
                            &link,
                            &reason,
                            "the record is not held: read it again for update",
                        )),
                        Kind::Change | Kind::ChangeHeld => Err(self.lost_in_flight(
                            name,
                            &link,
                            &reason,
                            "whether it was stored is unknown: read the record before repeating it",
                        )),
                    }
                }
                other => other,
            }?;
            let (answer, passed) = self.took(string, &sent, answer);
            match (answer, &sent) {
                (None, _) => {}
                (Some(answer), Sent::Get(get)) if passed > 0 => {
                    return Ok(self.fill(&link, string, get, answer, passed).await);
                }
                (Some(answer), _) => return Ok(answer),
            }
        }
    }

    /// A batch that passed over records given before the move asks for as
    /// many more, so that it is as long as asked (shorter only at the end).
    async fn fill(
        &self,
        link: &Link,
        string: u16,
        get: &Get,
        mut answer: Answer,
        passed: usize,
    ) -> Answer {
        let Answer::Result { records, .. } = &mut answer else {
            return answer;
        };
        let more = Get {
            max_records: passed as u32,
            ..get.clone()
        };
        if let Ok(following) = link.call(Request::Get(more.clone())).await
            && let (Some(Answer::Result { records: next, .. }), _) =
                self.took(string, &Sent::Get(more), following)
        {
            records.extend(next);
        }
        answer
    }

    /// Sets a moved string where it was before its sequential GET: `Some`
    /// answer if there is nothing more to read from there.
    async fn resume(
        &self,
        link: &Arc<Link>,
        string: u16,
        target: StringRef,
    ) -> Result<Option<Answer>, ClientError> {
        let (point, exact) = {
            let mut now = self.open.now.lock().unwrap();
            match now.strings.reposition(string, target, &self.spec) {
                Reposition::None => return Ok(None),
                Reposition::Point { point, exact } => (point, exact),
            }
        };
        match link.call(Request::Point(point)).await? {
            Answer::Result { status, .. } if status.is_ok() => Ok(None),
            Answer::Result { status, .. } if exact => Err(ClientError::ServerLost {
                dataset: self.spec.name.clone(),
                request: "GET",
                detail: format!(
                    "string {string} browsed backward from a record that is gone since its server was lost ({}): POINT it again",
                    status.message
                ),
            }),
            other => Ok(Some(other)),
        }
    }

    /// What an answer means for the string, and how many records given
    /// before the move it passed over; `None` if it held only those (the
    /// GET is sent again).
    fn took(&self, string: u16, sent: &Sent, mut answer: Answer) -> (Option<Answer>, usize) {
        let ok = matches!(&answer, Answer::Result { status, .. } if status.is_ok());
        if !ok {
            return (Some(answer), 0);
        }
        let mut now = self.open.now.lock().unwrap();
        let mut passed = 0;
        match sent {
            Sent::Get(get) => {
                let options = RplOptions::parse(get.options).unwrap_or_default();
                if let Answer::Result { records, .. } = &mut answer {
                    passed = now.strings.got(string, options, records);
                    if passed > 0 && records.is_empty() {
                        return (None, passed);
                    }
                }
            }
            Sent::Point(point) => now.strings.pointed(string, point),
            Sent::EndReq => now.strings.released(string, true),
            Sent::Change => {
                now.strings.released(string, false);
                if self.in_unit() {
                    self.conn.unit_changed();
                }
            }
            Sent::Other => {}
        }
        (Some(answer), passed)
    }

    pub(super) fn in_unit(&self) -> bool {
        self.open.request.access & vsam_protocol::access::COMMIT != 0
    }

    fn lost_in_flight(
        &self,
        request: &'static str,
        link: &Link,
        reason: &str,
        what_now: &str,
    ) -> ClientError {
        if self.in_unit() {
            self.conn.unit_in_doubt(format!(
                "the connection to {} was lost before the answer to a change of the unit of work ({reason}): the server rolled the unit back",
                link.server
            ));
        }
        ClientError::ServerLost {
            dataset: self.spec.name.clone(),
            request,
            detail: format!(
                "the connection to {} was lost before the answer ({reason}); {what_now}",
                link.server
            ),
        }
    }
}

/// A sequential GET (a browse), as opposed to a direct or skip-sequential
/// one that names its record.
fn sequential(options: RplOptions) -> bool {
    options.processing == Processing::Sequential
}

/// OPENs on the connection's server in use: its socket, the handle and the
/// catalog entry. An OPEN whose answer was lost is sent again on the next
/// server (the half-made open went with its connection).
pub(super) async fn open_on(
    conn: &Connection,
    request: &Open,
) -> Result<(Arc<Link>, u32, DatasetSpec), ClientError> {
    let mut tries = 3;
    loop {
        let link = conn.link().await?;
        match link.call(Request::Open(request.clone())).await {
            Err(ClientError::Closed(_)) if conn.fails_over() && tries > 1 => {
                tries -= 1;
                conn.replace(&link).await?;
            }
            Err(e) => return Err(e),
            Ok(answer) => {
                return match expect_ok(answer, &request.dataset, "OPEN")? {
                    Answer::Opened { handle, dataset } => Ok((link, handle, dataset)),
                    other => Err(ClientError::Unexpected {
                        request: "OPEN",
                        detail: format!("{other:?}"),
                    }),
                };
            }
        }
    }
}
