//! A TCP relay to a real server that a test makes misbehave as a network
//! would: hold back the server's answers, fall silent both ways with the
//! connections left open, or cut every connection. The server behind it
//! is the real one; only the path to it fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Everything passes.
const PASS: u8 = 0;
/// The server's bytes are dropped; the client's still reach it.
const WITHHOLD: u8 = 1;
/// Nothing passes either way; the sockets stay open.
const SILENT: u8 = 2;

/// A relay listening on `address`, to one upstream server.
pub struct Relay {
    /// Where clients connect.
    pub address: String,
    state: Arc<AtomicU8>,
    cut: Arc<Notify>,
}

impl Relay {
    /// Listens on a free loopback port and relays each connection to
    /// `upstream` (`HOST:PORT`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let state = Arc::new(AtomicU8::new(PASS));
        let cut = Arc::new(Notify::new());
        let (relay_state, relay_cut) = (state.clone(), cut.clone());
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (state, cut) = (relay_state.clone(), relay_cut.clone());
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    // Either way ending, or a cut, closes both sockets.
                    tokio::select! {
                        _ = pass(&mut client_read, &mut server_write, &state, false) => {}
                        _ = pass(&mut server_read, &mut client_write, &state, true) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Self {
            address,
            state,
            cut,
        }
    }

    /// Drops (`true`) or passes again (`false`) what the server sends.
    pub fn withhold_answers(&self, withhold: bool) {
        self.state
            .store(if withhold { WITHHOLD } else { PASS }, Ordering::SeqCst);
    }

    /// From now on nothing passes, either way, on any connection; they stay
    /// open, as through a network that lost its route.
    pub fn fall_silent(&self) {
        self.state.store(SILENT, Ordering::SeqCst);
    }

    /// Passes everything again, closing the connections that fell silent
    /// (their clients connect again, as after a network outage).
    pub fn resume(&self) {
        self.state.store(PASS, Ordering::SeqCst);
        self.cut();
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cut.notify_waiters();
    }
}

/// Copies `from` to `to` as the relay's state allows.
async fn pass(from: &mut OwnedReadHalf, to: &mut OwnedWriteHalf, state: &AtomicU8, answers: bool) {
    let mut buffer = vec![0; 65536];
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        match state.load(Ordering::SeqCst) {
            SILENT => std::future::pending::<()>().await,
            WITHHOLD if answers => continue,
            _ => {}
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
