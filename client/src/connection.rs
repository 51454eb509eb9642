//! A pipelined connection: many requests in flight, answers matched by id.
//!
//! A caller registers the id it waits for, then writes its frame itself
//! (the socket's write half sits behind an async lock), so a request costs
//! no hand-off to another task. A reader task routes each answer to the
//! caller waiting for its id. The connection is cheap to clone and share
//! between tasks.

use crate::error::ClientError;
use crate::transport::{self, ConnectOptions, Stream};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::WriteHalf;
use tokio::sync::oneshot;
use tokio_util::codec::{FramedRead, FramedWrite};
use vsam_protocol::{
    Answer, ClientCodec, DEFAULT_MAX_FRAME, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR, Request, Welcome,
};

/// Callers waiting for answers, by request id; `None` once the connection
/// is lost (dropping the senders wakes every waiting caller).
type Waiting = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<Answer>>>>>;

/// The socket's write half (plain or TLS) with the frame encoder.
type Writer = FramedWrite<WriteHalf<Box<dyn Stream>>, ClientCodec>;

/// A connection to vsamrd.
#[derive(Clone)]
pub struct Connection {
    writer: Arc<tokio::sync::Mutex<Writer>>,
    waiting: Waiting,
    next_id: Arc<AtomicU32>,
    closed: Arc<Mutex<Option<String>>>,
    welcome: Arc<Welcome>,
    server: String,
    _reader: Arc<ReaderTask>,
}

/// The task reading answers; it stops when the last clone of the
/// connection is dropped, and with it the socket closes.
struct ReaderTask(tokio::task::AbortHandle);

impl Drop for ReaderTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Connection {
    /// Connects over plain TCP without a token and performs the handshake.
    pub async fn connect(server: &str) -> Result<Self, ClientError> {
        Self::connect_with(server, &ConnectOptions::default()).await
    }

    /// Connects as `options` say (TLS, token) and performs the handshake.
    /// `server` may list several servers of a fleet, separated by commas
    /// (`db1:2387,db2:2387`): they are tried in order, and the first that
    /// completes the handshake is used; if none does, the error names
    /// each with its reason.
    pub async fn connect_with(server: &str, options: &ConnectOptions) -> Result<Self, ClientError> {
        let addresses: Vec<&str> = server
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .collect();
        if addresses.len() <= 1 {
            return Self::connect_one(server.trim(), options).await;
        }
        let mut reasons = Vec::with_capacity(addresses.len());
        for address in &addresses {
            match Self::connect_one(address, options).await {
                Ok(connection) => return Ok(connection),
                Err(ClientError::Connect { server, reason }) => {
                    reasons.push(format!("{server}: {reason}"));
                }
                Err(other) => return Err(other),
            }
        }
        Err(ClientError::Connect {
            server: server.to_string(),
            reason: format!("no server of the list answered ({})", reasons.join("; ")),
        })
    }

    /// Connects to one server and performs the handshake.
    async fn connect_one(server: &str, options: &ConnectOptions) -> Result<Self, ClientError> {
        let stream = transport::connect(server, options)
            .await
            .map_err(|reason| ClientError::Connect {
                server: server.to_string(),
                reason,
            })?;
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
            client: format!("vsam-client {}", env!("CARGO_PKG_VERSION")),
            token: options.token.clone(),
        };
        let lost = |reason: String| ClientError::Connect {
            server: server.to_string(),
            reason,
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
            Some(Err(e)) => return Err(lost(format!("not a VSAM redirector server: {e}"))),
            None => {
                return Err(lost(
                    "the server closed the connection during the handshake".into(),
                ));
            }
        };
        writer
            .encoder_mut()
            .set_max_frame(welcome.max_frame as usize);

        let waiting: Waiting = Arc::new(Mutex::new(Some(HashMap::new())));
        let closed = Arc::new(Mutex::new(None::<String>));
        let reader_waiting = waiting.clone();
        let reader_closed = closed.clone();
        let reader_task = tokio::spawn(async move {
            let reason = loop {
                match reader.next().await {
                    Some(Ok(incoming)) => match incoming.message {
                        Ok(Answer::ProtocolError {
                            fatal: true,
                            message,
                            ..
                        }) => {
                            break format!("the server closed the connection: {message}");
                        }
                        Ok(answer) => {
                            let waiter = reader_waiting
                                .lock()
                                .unwrap()
                                .as_mut()
                                .and_then(|m| m.remove(&incoming.id));
                            if let Some(waiter) = waiter {
                                let _ = waiter.send(answer);
                            }
                        }
                        Err(e) => break format!("undecodable answer from the server: {e}"),
                    },
                    Some(Err(e)) => break format!("connection lost: {e}"),
                    None => break "the server closed the connection".to_string(),
                }
            };
            fail_all(&reader_waiting, &reader_closed, reason);
        });

        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            waiting,
            next_id: Arc::new(AtomicU32::new(1)),
            closed,
            welcome: Arc::new(welcome),
            server: server.to_string(),
            _reader: Arc::new(ReaderTask(reader_task.abort_handle())),
        })
    }

    /// The server's handshake answer (name, version, limits).
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The address this connection was made to.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Closed(
            self.closed
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "connection closed".into()),
        )
    }

    /// Sends one request and waits for its answer. Many calls may be in
    /// flight at once on one connection.
    pub async fn call(&self, request: Request) -> Result<Answer, ClientError> {
        let (answer, answered) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        match self.waiting.lock().unwrap().as_mut() {
            Some(waiting) => waiting.insert(id, answer),
            None => return Err(self.closed_error()),
        };
        let sent = self.writer.lock().await.send((id, request)).await;
        if let Err(e) = sent {
            fail_all(&self.waiting, &self.closed, format!("sending failed: {e}"));
            return Err(self.closed_error());
        }
        answered.await.map_err(|_| self.closed_error())
    }
}

fn fail_all(waiting: &Waiting, closed: &Arc<Mutex<Option<String>>>, reason: String) {
    closed.lock().unwrap().get_or_insert(reason);
    waiting.lock().unwrap().take();
}
