//! One socket to one server: many requests in flight, answers matched by id.
//!
//! No task of its own reads the socket: a caller writes its frame itself
//! (the write half sits behind an async lock), then reads the answers
//! itself, as the leader, until its own comes, handing each other answer
//! to the caller that waits for its id; the others wait for theirs, or
//! for the read half to be free, whichever comes first. A request thus
//! costs no hand-off between tasks: the answer wakes the caller that
//! waits for it, and nobody else. Between requests nobody reads, so
//! [`Link::look`] looks at the socket to learn whether the server closed
//! it meanwhile; a [`crate::Connection`] then moves to another link before
//! it sends, rather than leave a change in doubt.
//!
//! An answer whose caller gave up (a time limit) is read by the next
//! caller, and dropped; a caller whose frame cannot be written at once
//! reads meanwhile, since the server may be waiting for such answers to
//! be taken before it reads more.
//!
//! The price: the leader must be polled. A caller's future that holds the
//! read half and is not polled (left in a `FuturesOrdered` while its
//! owner awaits another call) reads for nobody, and every other caller
//! waits (see [`crate::Connection`]; `vsamr idcams` REPRO between two
//! datasets polls its chains in flight while it reads the next records).

use crate::error::ClientError;
use crate::transport::{self, ConnectOptions, Probe, Stream};
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::oneshot;
use tokio_util::codec::{FramedRead, FramedWrite};
use vsam_protocol::{
    Answer, ClientCodec, DEFAULT_MAX_FRAME, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR, Request, Welcome,
};

/// Callers waiting for answers, by request id; `None` once the socket is
/// lost (dropping the senders wakes every waiting caller).
type Waiting = Mutex<Option<HashMap<u32, oneshot::Sender<Answer>>>>;

/// The socket's write half (plain or TLS) with the frame encoder.
type Writer = FramedWrite<WriteHalf<Box<dyn Stream>>, ClientCodec>;

/// The socket's read half with the frame decoder.
type Reader = FramedRead<ReadHalf<Box<dyn Stream>>, ClientCodec>;

/// A handshaken socket to one server.
pub(crate) struct Link {
    writer: tokio::sync::Mutex<Writer>,
    /// Held by the caller reading answers for every caller (the leader).
    reader: tokio::sync::Mutex<Reader>,
    /// Set on a connection that fails over (see [`Link::look`]).
    probe: Option<Probe>,
    waiting: Waiting,
    next_id: AtomicU32,
    closed: Mutex<Option<String>>,
    welcome: Arc<Welcome>,
    /// The address connected to.
    pub(crate) server: String,
    /// Its place in the connection's list of addresses.
    pub(crate) index: usize,
}

/// Why the first answer of `server` is not a redirector's: an answer in
/// HTTP (its first bytes read as a length) is named as such, since the
/// likely cause is vsamrd's own metrics port given for its VSAM port.
fn not_a_server(error: &vsam_protocol::FrameError) -> String {
    const HTTP: usize = u32::from_be_bytes(*b"HTTP") as usize;
    match error {
        vsam_protocol::FrameError::TooLarge { length: HTTP, .. } => {
            "not a VSAM redirector server: it answered in HTTP (a web server, or vsamrd's metrics port, [metrics] listen); give the VSAM port ([server] listen, 2387 by default)".into()
        }
        other => format!("not a VSAM redirector server: {other}"),
    }
}

/// What reading one frame did.
enum Read {
    /// The answer to the id given.
    Ours(Answer),
    /// Another caller's answer, handed to it (or dropped: it gave up).
    Theirs,
}

impl Link {
    /// Connects to one server and performs the handshake; `fails_over`
    /// for a connection that moves to another server when this one is lost
    /// (it then looks at the socket before each request, [`Link::look`]).
    pub(crate) async fn connect(
        server: &str,
        index: usize,
        options: &ConnectOptions,
        fails_over: bool,
    ) -> Result<Arc<Self>, ClientError> {
        let limit = options
            .connect_timeout
            .unwrap_or(transport::DEFAULT_CONNECT_TIMEOUT);
        match tokio::time::timeout(limit, Self::handshake(server, index, options, fails_over)).await
        {
            Ok(connected) => connected,
            Err(_) => Err(ClientError::Connect {
                server: server.to_string(),
                answered: true,
                reason: format!(
                    "no connection and WELCOME within {limit:?}: the address does not answer, or answers without speaking the redirector protocol (another program's port, a stopped server)"
                ),
            }),
        }
    }

    /// TCP, TLS, HELLO and WELCOME: [`Link::connect`] without its time
    /// limit.
    async fn handshake(
        server: &str,
        index: usize,
        options: &ConnectOptions,
        fails_over: bool,
    ) -> Result<Arc<Self>, ClientError> {
        let stream = transport::connect(server, options, fails_over)
            .await
            .map_err(|(reason, answered)| ClientError::Connect {
                server: server.to_string(),
                reason,
                answered,
            })?;
        let (stream, probe) = stream;
        let (read, write) = tokio::io::split(stream);
        let max_frame = options.max_frame.unwrap_or(DEFAULT_MAX_FRAME);
        let mut reader = FramedRead::new(read, ClientCodec::new(max_frame as usize));
        let mut writer = FramedWrite::new(write, ClientCodec::new(DEFAULT_MAX_FRAME as usize));
        let hello = Hello {
            major: PROTOCOL_MAJOR,
            minor: options
                .minor
                .map_or(PROTOCOL_MINOR, |minor| minor.min(PROTOCOL_MINOR)),
            max_frame,
            client: options
                .client
                .clone()
                .unwrap_or_else(|| format!("vsam-client {}", env!("CARGO_PKG_VERSION"))),
            token: options.token.clone(),
        };
        let lost = |reason: String| ClientError::Connect {
            server: server.to_string(),
            reason,
            answered: true,
        };
        writer
            .send((0, Request::Hello(hello)))
            .await
            .map_err(|e| lost(e.to_string()))?;
        let welcome = match reader.next().await {
            Some(Ok(incoming)) => match incoming.message {
                Ok(Answer::Welcome(welcome)) => welcome,
                Ok(Answer::ProtocolError { message, .. }) => {
                    return Err(lost(format!("handshake refused: {message}")));
                }
                Ok(other) => return Err(lost(format!("unexpected handshake answer {other:?}"))),
                Err(e) => return Err(lost(format!("bad handshake answer: {e}"))),
            },
            Some(Err(e)) => return Err(lost(not_a_server(&e))),
            None => {
                return Err(lost(
                    "the server closed the connection during the handshake".into(),
                ));
            }
        };
        writer
            .encoder_mut()
            .set_max_frame(welcome.max_frame as usize);

        Ok(Arc::new(Self {
            writer: tokio::sync::Mutex::new(writer),
            reader: tokio::sync::Mutex::new(reader),
            probe,
            waiting: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU32::new(1),
            closed: Mutex::new(None),
            welcome: Arc::new(welcome),
            server: server.to_string(),
            index,
        }))
    }

    /// The server's handshake answer.
    pub(crate) fn welcome(&self) -> &Arc<Welcome> {
        &self.welcome
    }

    /// Why the socket was lost, once it is known.
    pub(crate) fn lost(&self) -> Option<String> {
        self.closed.lock().unwrap().clone()
    }

    /// Why the socket was lost, looking at it now: nobody reads it between
    /// requests, so what the server sent meanwhile (a close, or the last
    /// words of a server that shuts down or timed the client out) is read
    /// here, without waiting for anything that did not come.
    pub(crate) async fn look(&self) -> Option<String> {
        if let Some(why) = self.lost() {
            return Some(why);
        }
        // A caller reading now sees a loss itself.
        let Ok(mut reader) = self.reader.try_lock() else {
            return None;
        };
        loop {
            // Frames already read from the socket first, then what waits.
            match self.read_one(&mut reader, 0).now_or_never() {
                Some(Ok(_)) => continue,
                Some(Err(_)) => break,
                None if self.probe.as_ref().is_some_and(Probe::anything_waits) => {
                    if self.read_one(&mut reader, 0).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        self.lost()
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Closed(self.lost().unwrap_or_else(|| "connection closed".into()))
    }

    /// Sends one request and waits for its answer; [`ClientError::Closed`]
    /// if the socket is lost first.
    pub(crate) async fn call(&self, request: Request) -> Result<Answer, ClientError> {
        let (answer, mut answered) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        match self.waiting.lock().unwrap().as_mut() {
            Some(waiting) => waiting.insert(id, answer),
            None => return Err(self.closed_error()),
        };
        let sent = {
            let mut send = pin!(async { self.writer.lock().await.send((id, request)).await });
            loop {
                tokio::select! {
                    biased;
                    sent = &mut send => break sent,
                    // A frame that cannot be written whole at once may wait
                    // for the server, which may wait for answers to be
                    // taken (of a caller that gave up): take them
                    // meanwhile.
                    read = self.lead(0) => if read.is_err() {
                        return Err(self.closed_error());
                    },
                }
            }
        };
        if let Err(e) = sent {
            // The server's last words, if it closed the socket, say more.
            self.look().await;
            self.fail_all(format!("sending failed: {e}"));
            return Err(self.closed_error());
        }
        loop {
            tokio::select! {
                biased;
                answer = &mut answered => return answer.map_err(|_| self.closed_error()),
                read = self.lead(id) => match read {
                    Ok(Read::Ours(answer)) => {
                        // Closed first, its sender goes without waking this
                        // task again for nothing (a wake while it runs
                        // sends the task to the back of the queue, and
                        // another thread is woken to take it).
                        answered.close();
                        if let Some(waiting) = self.waiting.lock().unwrap().as_mut() {
                            waiting.remove(&id);
                        }
                        return Ok(answer);
                    }
                    // The answer was read by the last leader.
                    Ok(Read::Theirs) => {}
                    Err(error) => return Err(error),
                },
            }
        }
    }

    /// Takes the read half once it is free, then reads until the answer to
    /// `id` comes ([`Read::Ours`]); [`Read::Theirs`] at once if it came
    /// before (or for id 0, after one frame).
    async fn lead(&self, id: u32) -> Result<Read, ClientError> {
        let mut reader = self.reader.lock().await;
        let ours_waits = (self.waiting.lock().unwrap().as_ref())
            .is_some_and(|waiting| waiting.contains_key(&id));
        if id != 0 && !ours_waits {
            return Ok(Read::Theirs);
        }
        loop {
            match self.read_one(&mut reader, id).await? {
                Read::Theirs if id != 0 => continue,
                read => return Ok(read),
            }
        }
    }

    /// Reads one frame and routes it: the answer to `id` is returned (its
    /// caller takes its own entry out of the waiting list), any other goes
    /// to the caller waiting for it. A socket lost or a fatal
    /// answer fails every waiting caller.
    async fn read_one(&self, reader: &mut Reader, id: u32) -> Result<Read, ClientError> {
        let reason = match reader.next().await {
            Some(Ok(incoming)) => match incoming.message {
                Ok(Answer::ProtocolError {
                    fatal: true,
                    message,
                    ..
                }) => format!("the server closed the connection: {message}"),
                Ok(answer) => {
                    if id != 0 && incoming.id == id {
                        return Ok(Read::Ours(answer));
                    }
                    let waiter = self
                        .waiting
                        .lock()
                        .unwrap()
                        .as_mut()
                        .and_then(|waiting| waiting.remove(&incoming.id));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(answer);
                    }
                    return Ok(Read::Theirs);
                }
                Err(e) => format!("undecodable answer from the server: {e}"),
            },
            Some(Err(e)) => format!("connection lost: {e}"),
            None => "the server closed the connection".to_string(),
        };
        self.fail_all(reason);
        Err(self.closed_error())
    }

    /// Marks the socket lost with `reason` and wakes every waiting caller.
    fn fail_all(&self, reason: String) {
        self.closed.lock().unwrap().get_or_insert(reason);
        self.waiting.lock().unwrap().take();
    }
}
