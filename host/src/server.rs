//! The TCP server: accepts connections on port 2387, runs the handshake,
//! and serves each connection's requests in order (pipelined: a client may
//! send many before reading answers; answers are flushed when no further
//! request is already waiting).

use crate::vsam::{Session, Shared};
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::codec::{FramedRead, FramedWrite};
use vsam_protocol::{
    Answer, DecodeError, FrameError, PROTOCOL_MAJOR, PROTOCOL_MINOR, Request, ServerCodec, Welcome,
    message::request_name, protocol_error,
};

/// The server's name and version, as sent in WELCOME.
pub fn server_banner() -> String {
    format!(
        "vsamrd {} (VSAM Redirector server)",
        env!("CARGO_PKG_VERSION")
    )
}

/// How long connections get to finish in-flight requests at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown` turns true, then lets every
/// connection finish its current request, closes them and returns.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "refused: {max_connections} connections are open, the limit");
                    connections.spawn(refuse(stream, format!("too many connections: this server allows {max_connections}")));
                    continue;
                };
                let shared = shared.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    serve_connection(stream, peer, shared, shutdown).await;
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!(
        "shutting down: finishing {} connection(s)",
        connections.len()
    );
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections did not finish within {DRAIN_TIMEOUT:?}; closing them");
        connections.shutdown().await;
    }
    for dataset in shared.open_datasets() {
        if let Err(status) = dataset.flush().await {
            tracing::warn!(dataset = %dataset.def.name, "flush at shutdown failed: {status}");
        }
    }
}

async fn refuse(stream: TcpStream, message: String) {
    let mut writer = FramedWrite::new(stream, ServerCodec::new(1 << 16));
    let _ = writer
        .send((
            0,
            Answer::ProtocolError {
                code: protocol_error::SHUTTING_DOWN,
                fatal: true,
                message,
            },
        ))
        .await;
}

/// True if `buffer` already holds a whole frame (so answers can wait for it).
fn complete_frame_buffered(buffer: &[u8]) -> bool {
    buffer.len() >= 4
        && buffer.len()
            >= 4 + u32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]) as usize
}

/// Both sides speak the lower of their minor versions.
fn agreed_minor(client_minor: u16) -> u16 {
    client_minor.min(PROTOCOL_MINOR)
}

/// A line for people (or `curl`) who connect to the port by hand.
fn identification() -> String {
    format!(
        "{} speaking the binary VSAM redirector protocol {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}; use vsamr or a redirector client (see docs/protocol.md)\r\n",
        server_banner()
    )
}

fn looks_like_text(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[..4]
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ')
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let max_frame = shared.limits.max_frame as usize;
    let (read, write) = stream.into_split();
    let mut reader = FramedRead::new(read, ServerCodec::new(max_frame));
    let mut writer = FramedWrite::new(write, ServerCodec::new(max_frame));

    // Handshake: the first frame must be a HELLO of a major version we speak.
    let first = tokio::select! {
        _ = shutdown.changed() => return,
        first = tokio::time::timeout(Duration::from_secs(30), reader.next()) => first,
    };
    let mut answer_frame = max_frame;
    let fatal = |code, message: String| Answer::ProtocolError {
        code,
        fatal: true,
        message,
    };
    let refusal = match first {
        Err(_) => Some(fatal(
            protocol_error::HANDSHAKE_REQUIRED,
            "no HELLO within 30 seconds".into(),
        )),
        Ok(None) => return,
        Ok(Some(Ok(incoming))) => match incoming.message {
            Ok(Request::Hello(hello)) if hello.major == PROTOCOL_MAJOR => {
                let agreed = (hello.max_frame as usize).clamp(1024, max_frame);
                answer_frame = agreed;
                reader.decoder_mut().set_max_frame(max_frame);
                writer.encoder_mut().set_max_frame(agreed);
                let welcome = Answer::Welcome(Welcome {
                    major: PROTOCOL_MAJOR,
                    minor: agreed_minor(hello.minor),
                    max_frame: max_frame as u32,
                    max_batch: shared.limits.max_batch,
                    max_record: vsam_protocol::MAX_RECORD_LENGTH,
                    server: server_banner(),
                });
                tracing::debug!(%peer, client = %hello.client, "handshake");
                if writer.send((incoming.id, welcome)).await.is_err() {
                    return;
                }
                None
            }
            Ok(Request::Hello(hello)) => Some(fatal(
                protocol_error::VERSION,
                format!(
                    "client speaks protocol {}.{}, this server speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}; upgrade the older side",
                    hello.major, hello.minor
                ),
            )),
            Ok(other) => Some(fatal(
                protocol_error::HANDSHAKE_REQUIRED,
                format!("the first request must be HELLO, not {}", other.name()),
            )),
            Err(error) => Some(fatal(
                protocol_error::NOT_A_CLIENT,
                format!("not a redirector client: {error}"),
            )),
        },
        Ok(Some(Err(error))) => {
            if looks_like_text(reader.read_buffer()) {
                let mut stream = writer.into_inner();
                let _ = stream.write_all(identification().as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
            Some(fatal(
                protocol_error::NOT_A_CLIENT,
                format!("not a redirector client: {error}"),
            ))
        }
    };
    if let Some(refusal) = refusal {
        tracing::info!(%peer, "handshake refused: {refusal:?}");
        let _ = writer.send((0, refusal)).await;
        return;
    }

    let mut session = Session::new(shared, answer_frame);
    let id = session.id();
    tracing::debug!(%peer, session = id, "connected");
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.changed() => {
                let _ = writer.send((0, fatal(protocol_error::SHUTTING_DOWN, "the server is shutting down".into()))).await;
                break;
            }
            next = reader.next() => next,
        };
        let incoming = match next {
            None => break,
            Some(Err(FrameError::Io(error))) => {
                tracing::debug!(%peer, session = id, "connection error: {error}");
                break;
            }
            Some(Err(error)) => {
                tracing::warn!(%peer, session = id, "closing: {error}");
                let code = match error {
                    FrameError::TooLarge { .. } => protocol_error::FRAME_TOO_LARGE,
                    _ => protocol_error::MALFORMED,
                };
                let _ = writer
                    .send((
                        0,
                        fatal(
                            code,
                            format!("framing lost: {error}; closing the connection"),
                        ),
                    ))
                    .await;
                break;
            }
            Some(Ok(incoming)) => incoming,
        };
        let answer = match incoming.message {
            Ok(request) => session.handle(request).await,
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
        if writer.feed((incoming.id, answer)).await.is_err() {
            break;
        }
        if !complete_frame_buffered(reader.read_buffer()) && writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.flush().await;
    session.close_all().await;
    tracing::debug!(%peer, session = id, "disconnected");
}
