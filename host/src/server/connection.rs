//! One connection: transport, handshake (with authentication), then its
//! requests in order (pipelined: a client may send many before reading
//! answers; answers are flushed when no further request is already
//! waiting), within the idle and request time limits.

use super::ServeSettings;
use super::frame_budget::BudgetedCodec;
use super::idle_poll::IdlePoll;
use super::limits::{ConnectionLimits, Place};
use super::transport::{self, Accepted};
use crate::log_limit::limited;
use crate::metrics::Refusal;
use crate::security::Identity;
use crate::vsam::{Client, Session, Shared};
use futures::{FutureExt, SinkExt, StreamExt};
use prometheus_client::metrics::counter::Counter;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::Instrument;
use vsam_protocol::{
    Answer, DecodeError, FrameError, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR, Request, ServerCodec,
    Status, Verb, Welcome, fdbk, message::request_name, open_error, protocol_error,
};

/// The server's name and version, as sent in WELCOME.
pub fn server_banner() -> String {
    format!(
        "vsamrd {} (VSAM Redirector server)",
        env!("CARGO_PKG_VERSION")
    )
}

/// True if `buffer` already holds a whole frame (so answers can wait for it).
fn complete_frame_buffered(buffer: &[u8]) -> bool {
    buffer.len() >= 4
        && buffer.len()
            >= 4 + u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize
}

/// A request whose payload decodes but whose enumerated field holds a
/// value outside its defined set is refused as the request's VSAM error, as
/// undefined RPL option bits and OPEN access bits are: DEFINE's
/// `organization` with X'68', OPEN's `intent` with open error X'A0'.
/// (`PROTOCOL_ERROR` 4 is for payloads that do not decode.)
fn out_of_range(kind: u8, error: &DecodeError) -> Option<Status> {
    let DecodeError::BadValue { field, problem } = error else {
        return None;
    };
    let verb = Verb::of_kind(kind)?;
    let message = format!("{}: field {field}: {problem}", verb.name());
    match (verb, *field) {
        (Verb::Define, "organization") => Some(Status::logical(fdbk::INVALID_OPTIONS, message)),
        (Verb::Open, "intent") => Some(Status::refused(open_error::INVALID_OPTIONS, message)),
        _ => None,
    }
}

/// Both sides speak the lower of their minor versions.
fn agreed_minor(client_minor: u16) -> u16 {
    client_minor.min(PROTOCOL_MINOR)
}

fn looks_like_text(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[..4]
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ')
}

fn fatal(code: u16, message: String) -> Answer {
    Answer::ProtocolError {
        code,
        fatal: true,
        message,
    }
}

/// A handshake turned away: what the client is answered, what the
/// refusals metric counts it as, and whether it was a guess at
/// credentials, which is answered only after `[server]
/// auth_failure_delay_ms` (a misconfigured client, plain TCP where TLS is
/// required say, learns why at once).
struct Refused {
    /// The fatal `PROTOCOL_ERROR`'s code and message.
    code: u16,
    message: String,
    reason: Refusal,
    guess: bool,
}

impl Refused {
    /// Not a client this server can speak with (no HELLO, another major
    /// version, bytes that are not a frame, too small a frame).
    fn protocol(code: u16, message: String) -> Self {
        Self {
            code,
            message,
            reason: Refusal::Protocol,
            guess: false,
        }
    }

    /// No identity this server takes; `guess` if credentials were offered
    /// and name no client.
    fn authentication(message: String, guess: bool) -> Self {
        Self {
            code: protocol_error::NOT_AUTHENTICATED,
            message,
            reason: Refusal::Authentication,
            guess,
        }
    }
}

/// The read half, noting when the first byte of a request not yet whole
/// arrived (a request must arrive whole within the request time limit),
/// and counting the bytes read.
struct Timed<R> {
    inner: R,
    first_byte_at: Option<Instant>,
    received: Counter,
}

impl<R: AsyncRead + Unpin> AsyncRead for Timed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.received.inc_by(read as u64);
            if self.first_byte_at.is_none() {
                self.first_byte_at = Some(Instant::now());
            }
        }
        polled
    }
}

/// The write half, counting the bytes written.
struct CountedWrite<W> {
    inner: W,
    sent: Counter,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountedWrite<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.sent.inc_by(*written as u64);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = &polled {
            self.sent.inc_by(*written as u64);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection's place in the handshake budget, and the budgets to take
/// its place among the connections from once its HELLO is accepted.
pub(super) type Admission = (Place, Arc<ConnectionLimits>);

/// What the transport settled about the client before its HELLO.
enum Channel {
    /// Plain TCP the listener takes.
    Plain,
    /// Plain TCP the listener's policy refuses, and why: the connection
    /// still answers a text probe, then refuses the HELLO.
    Refused(String),
    /// TLS; `client` is the client its certificate names, if it showed one
    /// that a `[[clients]]` entry lists.
    Tls { client: Option<String> },
}

/// The connection as the handshake and the request loop see it.
struct Peer<'a> {
    address: SocketAddr,
    shared: Arc<Shared>,
    settings: &'a ServeSettings,
    /// Told of every request and answer, when the server polls.
    poll: Option<Arc<IdlePoll>>,
    shutdown: watch::Receiver<bool>,
    /// Counted in its state for `/metrics` while it lives.
    counted: crate::metrics::Connection,
}

/// The longest client name a connection's log lines carry, in bytes.
pub const MAX_CLIENT_NAME: usize = 128;

/// The name a client gave in its HELLO, as its connection's log lines
/// carry it: every line of the connection repeats it, so it is one line
/// (control characters escaped) of at most [`MAX_CLIENT_NAME`] bytes. A
/// client's HELLO may hold a megabyte of name.
fn client_name(hello: &vsam_protocol::Hello) -> String {
    crate::log_limit::foreign_text(&hello.client, MAX_CLIENT_NAME)
}

/// The span everything a connection logs carries: its client's address,
/// and once known its id, client name and identity.
pub(super) fn span(address: SocketAddr) -> tracing::Span {
    tracing::info_span!(
        "connection",
        peer = %address,
        connection = tracing::field::Empty,
        client = tracing::field::Empty,
        identity = tracing::field::Empty,
    )
}

/// Serves one accepted TCP connection until it closes, fails a limit, or
/// the server shuts down (run in its [`span`]).
pub(super) async fn serve(
    stream: TcpStream,
    address: SocketAddr,
    shared: Arc<Shared>,
    settings: &ServeSettings,
    admission: Admission,
    poll: Option<Arc<IdlePoll>>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // A client gone without a word (its machine off, the network cut)
    // would otherwise hold its locks until idle_timeout_secs.
    if let Err(error) = vsam_protocol::keepalive::enable(&stream) {
        tracing::debug!(peer = %address, "no TCP keepalive: {error}");
    }
    let mut counted = shared.metrics.connection();
    let started = Instant::now();
    let accepted = tokio::time::timeout(
        settings.handshake_timeout,
        transport::accept(stream, address, &settings.security),
    )
    .await;
    let accepted = match accepted {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(error)) => {
            // Nothing sent (or the connection reset) is a close; any other
            // failure is the TLS handshake's.
            shared.metrics.refused(match error.kind() {
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                    Refusal::Closed
                }
                _ => Refusal::Tls,
            });
            limited!(info, "closed before the handshake", peer = %address, "connection closed before the handshake: {error}");
            return;
        }
        Err(_) => {
            shared.metrics.refused(Refusal::Protocol);
            limited!(info, "closed before the handshake", peer = %address, "closed: nothing (or no TLS handshake) within {:?}", settings.handshake_timeout);
            return;
        }
    };
    let remaining = settings.handshake_timeout.saturating_sub(started.elapsed());
    if matches!(accepted, Accepted::Tls { .. }) {
        counted.tls();
    }
    let peer = Peer {
        address,
        shared,
        settings,
        poll,
        shutdown,
        counted,
    };
    match accepted {
        Accepted::Plain { stream, refused } => {
            let channel = refused.map_or(Channel::Plain, Channel::Refused);
            run(stream, peer, channel, remaining, admission).await
        }
        Accepted::Tls {
            stream,
            certificate,
        } => {
            let client = certificate.and_then(|certificate| {
                peer.shared
                    .access()
                    .client_for_certificate(&certificate)
                    .map(|client| client.name.clone())
            });
            run(*stream, peer, Channel::Tls { client }, remaining, admission).await
        }
    }
}

/// What the handshake settled: who the client is, the frame sizes, and
/// its place among the connections (held while it is open).
struct Agreed {
    identity: Identity,
    /// What the client's HELLO says it is.
    client: String,
    answer_frame: usize,
    /// The protocol minor version both sides speak.
    minor: u16,
    _place: Place,
}

type Reader<S> = FramedRead<Timed<ReadHalf<S>>, BudgetedCodec>;
type Writer<S> = FramedWrite<CountedWrite<WriteHalf<S>>, ServerCodec>;

/// The handshake and the request loop over an accepted transport.
async fn run<S>(
    stream: S,
    mut peer: Peer<'_>,
    channel: Channel,
    handshake_time: Duration,
    admission: Admission,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let max_frame = peer.shared.limits.max_frame as usize;
    let (read, write) = tokio::io::split(stream);
    let (received, sent) = peer.shared.metrics.byte_counters();
    let mut reader = FramedRead::new(
        Timed {
            inner: read,
            first_byte_at: None,
            received,
        },
        BudgetedCodec::new(max_frame, peer.settings.frame_budget.clone()),
    );
    let mut writer = FramedWrite::new(
        CountedWrite { inner: write, sent },
        ServerCodec::new(max_frame),
    );
    let Some(agreed) = handshake(
        &mut reader,
        &mut writer,
        &mut peer,
        channel,
        handshake_time,
        admission,
    )
    .await
    else {
        return;
    };
    let Peer {
        address: peer,
        shared,
        settings,
        poll,
        mut shutdown,
        mut counted,
    } = peer;
    counted.opened();
    let metrics = shared.clone();
    let from = Client {
        address: peer,
        program: agreed.client,
    };
    let mut session =
        Session::new(shared, agreed.answer_frame, agreed.identity, from).speaking(agreed.minor);
    let id = session.id();
    let watch = session.watch();
    let mut ending = watch.ending();
    tracing::Span::current().record("connection", id);
    tracing::debug!(%peer, session = id, "connected");
    reader.get_mut().first_byte_at = None;
    let mut last_request = Instant::now();
    loop {
        // Wait for the next request, waking at the time limits: a request
        // begun must arrive whole in time, and an idle connection closes.
        let partial_since = reader.get_ref().first_byte_at;
        let wait = match (partial_since, settings.idle_timeout) {
            (Some(since), _) => settings.request_timeout.saturating_sub(since.elapsed()),
            (None, Some(idle)) => settings
                .request_timeout
                .min(idle.saturating_sub(last_request.elapsed())),
            (None, None) => settings.request_timeout,
        };
        let next = tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let _ = writer.send((0, fatal(protocol_error::SHUTTING_DOWN, "the server is shutting down".into()))).await;
                break;
            }
            reason = ending.reason() => {
                tracing::warn!(%peer, session = id, "connection ended by the operator: {reason}");
                // Its unit of work is rolled back as the connection closes.
                if metrics.units().iter().any(|unit| unit.session == id) {
                    metrics.metrics.unit_rolled_back("operator");
                }
                let _ = tokio::time::timeout(
                    settings.request_timeout,
                    writer.send((0, fatal(protocol_error::DISCONNECTED, format!("an operator ended this connection: {reason}; its unit of work is rolled back and its records released")))),
                )
                .await;
                break;
            }
            next = tokio::time::timeout(wait, reader.next()) => next,
        };
        let next = match next {
            Ok(next) => next,
            Err(_) => {
                let expired = match reader.get_ref().first_byte_at {
                    Some(since) if since.elapsed() >= settings.request_timeout => Some(format!(
                        "a request did not arrive whole within {:?} of its first byte ([server] request_timeout_secs)",
                        settings.request_timeout
                    )),
                    Some(_) => None,
                    None => settings.idle_timeout.filter(|idle| last_request.elapsed() >= *idle).map(|idle| {
                        format!("no request for {idle:?} ([server] idle_timeout_secs); open datasets were closed")
                    }),
                };
                match expired {
                    Some(why) => {
                        limited!(info, "connection time limit", %peer, session = id, "closing: {why}");
                        let _ = tokio::time::timeout(
                            settings.request_timeout,
                            writer.send((0, fatal(protocol_error::TIMEOUT, why))),
                        )
                        .await;
                        break;
                    }
                    None => continue,
                }
            }
        };
        let incoming = match next {
            None => break,
            Some(Err(FrameError::Io(error))) => {
                tracing::debug!(%peer, session = id, "connection error: {error}");
                break;
            }
            Some(Err(error)) => {
                limited!(warn, "malformed frame", %peer, session = id, "closing: {error}");
                let code = match error {
                    FrameError::TooLarge { .. } => protocol_error::FRAME_TOO_LARGE,
                    FrameError::OverBudget { .. } => protocol_error::LIMIT,
                    _ => protocol_error::MALFORMED,
                };
                let _ = tokio::time::timeout(
                    settings.request_timeout,
                    writer.send((
                        0,
                        fatal(
                            code,
                            format!("framing lost: {error}; closing the connection"),
                        ),
                    )),
                )
                .await;
                break;
            }
            Some(Ok(incoming)) => incoming,
        };
        last_request = Instant::now();
        watch.request(last_request);
        if let Some(poll) = &poll {
            poll.touch();
        }
        reader.get_mut().first_byte_at = match reader.read_buffer().is_empty() {
            true => None,
            false => Some(last_request),
        };
        let kind = request_name(incoming.kind);
        let serving = metrics.metrics.started(kind);
        let mut ended_by_bug = false;
        let mut dataset = None;
        let mut backend = None;
        let answer = match incoming.message {
            Ok(request) => {
                backend = session.backend_of(&request);
                let spans = crate::logging::request_spans();
                if metrics.metrics.per_dataset() || spans {
                    dataset = session.dataset_of(&request);
                }
                let handled = async {
                    if spans {
                        let span = tracing::info_span!(
                            "request",
                            id = incoming.id,
                            kind,
                            dataset = dataset.as_deref(),
                            backend = backend.as_deref(),
                        );
                        session.handle(request).instrument(span).await
                    } else {
                        session.handle(request).await
                    }
                };
                let (answer, bug) = answer_or_bug(handled, kind, incoming.id).await;
                ended_by_bug = bug;
                answer
            }
            Err(error) if let Some(status) = out_of_range(incoming.kind, &error) => {
                Answer::Result {
                    status,
                    records: Vec::new(),
                }
            }
            Err(DecodeError::UnknownKind(kind)) => Answer::ProtocolError {
                code: protocol_error::UNKNOWN_KIND,
                fatal: false,
                message: format!("request {}: unknown message kind {kind:#04x}", incoming.id),
            },
            Err(error) => Answer::ProtocolError {
                code: protocol_error::MALFORMED,
                fatal: false,
                message: format!(
                    "{} request {}: {error}",
                    request_name(incoming.kind),
                    incoming.id
                ),
            },
        };
        serving.answered(backend, &answer);
        if let Some(dataset) = &dataset {
            metrics.metrics.dataset_request(dataset, kind, &answer);
        }
        // A client that does not take its answers cannot hold the
        // connection (and its records) forever.
        let sent = tokio::time::timeout(settings.request_timeout, async {
            writer.feed((incoming.id, answer)).await?;
            if !complete_frame_buffered(reader.read_buffer()) {
                writer.flush().await?;
            }
            Ok::<(), FrameError>(())
        })
        .await;
        if let Some(poll) = &poll {
            poll.touch();
        }
        match sent {
            Ok(Ok(())) if ended_by_bug => break,
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                limited!(info, "connection time limit", %peer, session = id, "closing: the client took no answer within {:?} ([server] request_timeout_secs)", settings.request_timeout);
                break;
            }
        }
    }
    let _ = tokio::time::timeout(settings.request_timeout, writer.flush()).await;
    session.close_all().await;
    tracing::debug!(%peer, session = id, "disconnected");
}

/// A request's answer, or, if serving it panicked (a bug in vsamrd's own
/// code, which the panic hook logs with its place), R15=12 saying so, and
/// true: the connection then closes after sending it, as its session may
/// be half-changed (closing rolls back its unit of work and releases its
/// records). Without it the client would only see its connection drop.
async fn answer_or_bug(
    handled: impl std::future::Future<Output = Answer>,
    kind: &str,
    id: u32,
) -> (Answer, bool) {
    match std::panic::AssertUnwindSafe(handled).catch_unwind().await {
        Ok(answer) => (answer, false),
        Err(_) => (
            Answer::Result {
                status: Status::physical(format!(
                    "{kind} request {id}: a bug in vsamrd's own code ended it (the server's log has its place), so whether a write of it was stored is not known: read before repeating it. This connection closes: its unit of work is rolled back and its records released; connect again"
                )),
                records: Vec::new(),
            },
            true,
        ),
    }
}

/// The handshake: the first frame must be a HELLO of a major version this
/// server speaks, from a client it takes. Answers WELCOME and returns what
/// was agreed, or answers the refusal (or a text probe) and returns `None`.
async fn handshake<S>(
    reader: &mut Reader<S>,
    writer: &mut Writer<S>,
    peer: &mut Peer<'_>,
    channel: Channel,
    handshake_time: Duration,
    (place_in_handshakes, limits): Admission,
) -> Option<Agreed>
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let settings = peer.settings;
    let first = tokio::select! {
        _ = peer.shutdown.changed() => return None,
        first = tokio::time::timeout(handshake_time, reader.next()) => first,
    };
    let refused = match first {
        Err(_) => Refused::protocol(
            protocol_error::HANDSHAKE_REQUIRED,
            format!("no HELLO within {:?}", settings.handshake_timeout),
        ),
        Ok(None) => {
            peer.shared.metrics.refused(Refusal::Closed);
            return None;
        }
        Ok(Some(Ok(incoming))) => match incoming.message {
            Ok(Request::Hello(hello)) => match agree(peer, &hello, &channel, &limits) {
                Ok(agreed) => {
                    writer.encoder_mut().set_max_frame(agreed.answer_frame);
                    let welcome = Answer::Welcome(Welcome {
                        major: PROTOCOL_MAJOR,
                        minor: agreed.minor,
                        max_frame: peer.shared.limits.max_frame,
                        max_batch: peer.shared.limits.max_batch,
                        max_record: peer.shared.limits.max_record,
                        server: server_banner(),
                    });
                    tracing::debug!(peer = %peer.address, client = %client_name(&hello), identity = %agreed.identity, tls = matches!(channel, Channel::Tls { .. }), "handshake");
                    return writer
                        .send((incoming.id, welcome))
                        .await
                        .ok()
                        .map(|()| agreed);
                }
                Err(refusal) => refusal,
            },
            Ok(other) => Refused::protocol(
                protocol_error::HANDSHAKE_REQUIRED,
                format!("the first request must be HELLO, not {}", other.name()),
            ),
            Err(error) => Refused::protocol(
                protocol_error::NOT_A_CLIENT,
                format!("not a redirector client: {error}"),
            ),
        },
        Ok(Some(Err(error))) => {
            if looks_like_text(reader.read_buffer()) {
                let stream = writer.get_mut();
                let line =
                    vsam_protocol::identification(&server_banner(), PROTOCOL_MAJOR, PROTOCOL_MINOR);
                let _ = stream.write_all(format!("{line}\r\n").as_bytes()).await;
                let _ = stream.shutdown().await;
                return None;
            }
            Refused::protocol(
                protocol_error::NOT_A_CLIENT,
                format!("not a redirector client: {error}"),
            )
        }
    };
    peer.shared.metrics.refused(refused.reason);
    if refused.guess {
        // A guess at a token costs its place among the handshakes for the
        // delay: one address guesses at most `max_handshakes_per_address`
        // tokens per delay, and a client that is taken never waits.
        tokio::select! {
            _ = peer.shutdown.changed() => {}
            _ = tokio::time::sleep(settings.auth_failure_delay) => {}
        }
    }
    drop(place_in_handshakes);
    let refusal = fatal(refused.code, refused.message);
    limited!(info, "handshake refusal", peer = %peer.address, "handshake refused: {refusal:?}");
    let _ = tokio::time::timeout(settings.request_timeout, writer.send((0, refusal))).await;
    None
}

/// Checks a HELLO: its version, its frame size, who the client is, and
/// whether the connection limits take one more from its address.
fn agree(
    peer: &Peer<'_>,
    hello: &Hello,
    channel: &Channel,
    limits: &ConnectionLimits,
) -> Result<Agreed, Refused> {
    if hello.major != PROTOCOL_MAJOR {
        return Err(Refused::protocol(
            protocol_error::VERSION,
            format!(
                "client speaks protocol {}.{}, this server speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}; upgrade the older side",
                hello.major, hello.minor
            ),
        ));
    }
    if hello.max_frame < vsam_protocol::MIN_CLIENT_FRAME {
        // Answered as a limit (the code a client sees), counted as a
        // client this server cannot speak with, not as a connection limit.
        return Err(Refused::protocol(
            protocol_error::LIMIT,
            format!(
                "the client's max_frame of {} bytes is below the {} bytes every client must accept",
                hello.max_frame,
                vsam_protocol::MIN_CLIENT_FRAME
            ),
        ));
    }
    let identity = authenticate(&peer.shared, hello, channel)?;
    let span = tracing::Span::current();
    span.record("client", client_name(hello).as_str());
    span.record("identity", tracing::field::display(&identity));
    let place = limits
        .connections
        .admit(peer.address.ip())
        .map_err(|message| Refused {
            code: protocol_error::LIMIT,
            message,
            reason: Refusal::Limit,
            guess: false,
        })?;
    Ok(Agreed {
        identity,
        client: client_name(hello),
        answer_frame: (hello.max_frame as usize).min(peer.shared.limits.max_frame as usize),
        minor: agreed_minor(hello.minor),
        _place: place,
    })
}

/// Who the client is, from its certificate (TLS) and its HELLO token; or
/// why it may not connect.
fn authenticate(shared: &Shared, hello: &Hello, channel: &Channel) -> Result<Identity, Refused> {
    let refuse = |message: String| Err(Refused::authentication(message, false));
    let guessed = |message: String| Err(Refused::authentication(message, true));
    let by_certificate = match channel {
        Channel::Refused(why) => return refuse(why.clone()),
        Channel::Plain => None,
        Channel::Tls { client } => client.clone(),
    };
    let policy = shared.access();
    let by_token = match &hello.token {
        None => None,
        Some(token) => match policy.client_for_token(token) {
            Some(client) => Some(client.name.clone()),
            None => {
                return guessed(
                    "the token matches no client of this server ([[clients]] token_sha256); check the client's token".into(),
                );
            }
        },
    };
    let identity = match (by_certificate, by_token) {
        (Some(cert), Some(token)) if cert != token => {
            return guessed(format!(
                "the certificate names client {cert} and the token client {token}; use one identity"
            ));
        }
        (Some(name), _) => Identity {
            client: Some(name),
            by: "certificate",
        },
        (None, Some(name)) => Identity {
            client: Some(name),
            by: "token",
        },
        (None, None) => Identity::anonymous(),
    };
    if identity.client.is_none() && !policy.takes_anonymous() {
        return refuse(
            "this server takes no anonymous clients: send a token (vsamr --auth-token-file) or a client certificate".into(),
        );
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_that_panics_is_answered_r15_12_and_ends_its_connection() {
        let (answer, bug) = answer_or_bug(
            async {
                panic!("a bug");
            },
            "GET",
            7,
        )
        .await;
        assert!(bug);
        let Answer::Result { status, records } = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(status.r15, 12);
        assert!(records.is_empty());
        assert!(
            status
                .message
                .starts_with("GET request 7: a bug in vsamrd's own code ended it"),
            "{}",
            status.message
        );
        let fine = Answer::Result {
            status: Status::ok(),
            records: Vec::new(),
        };
        let (answer, bug) = answer_or_bug(async { fine.clone() }, "GET", 8).await;
        assert!(!bug);
        assert_eq!(answer, fine);
    }
}
