//! One socket to one server: many requests in flight, answers matched by id.
//!
//! A caller registers the id it waits for, then writes its frame itself
//! (the socket's write half sits behind an async lock), so a request costs
//! no hand-off to another task. A reader task routes each answer to the
//! caller waiting for its id. When the socket is lost every waiting caller
//! is woken with the reason; a [`crate::Connection`] then moves to another
//! link.

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

/// Callers waiting for answers, by request id; `None` once the socket is
/// lost (dropping the senders wakes every waiting caller).
type Waiting = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<Answer>>>>>;

/// The socket's write half (plain or TLS) with the frame encoder.
type Writer = FramedWrite<WriteHalf<Box<dyn Stream>>, ClientCodec>;

/// A handshaken socket to one server.
pub(crate) struct Link {
    writer: tokio::sync::Mutex<Writer>,
    waiting: Waiting,
    next_id: AtomicU32,
    closed: Arc<Mutex<Option<String>>>,
    welcome: Arc<Welcome>,
    /// The address connected to.
    pub(crate) server: String,
    /// Its place in the connection's list of addresses.
    pub(crate) index: usize,
    reader: tokio::task::AbortHandle,
}

impl Drop for Link {
    /// The reader task stops with the link, and with it the socket closes.
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Link {
    /// Connects to one server and performs the handshake.
    pub(crate) async fn connect(
        server: &str,
        index: usize,
        options: &ConnectOptions,
    ) -> Result<Arc<Self>, ClientError> {
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

        Ok(Arc::new(Self {
            writer: tokio::sync::Mutex::new(writer),
            waiting,
            next_id: AtomicU32::new(1),
            closed,
            welcome: Arc::new(welcome),
            server: server.to_string(),
            index,
            reader: reader_task.abort_handle(),
        }))
    }

    /// The server's handshake answer.
    pub(crate) fn welcome(&self) -> &Arc<Welcome> {
        &self.welcome
    }

    /// Why the socket was lost, once it is.
    pub(crate) fn lost(&self) -> Option<String> {
        self.closed.lock().unwrap().clone()
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Closed(self.lost().unwrap_or_else(|| "connection closed".into()))
    }

    /// Sends one request and waits for its answer; [`ClientError::Closed`]
    /// if the socket is lost first.
    pub(crate) async fn call(&self, request: Request) -> Result<Answer, ClientError> {
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
