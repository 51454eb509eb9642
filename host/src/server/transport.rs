//! What a new connection speaks: TLS or plain TCP, told apart by its first
//! byte, and whether the listener's policy lets it in that way.

use crate::security::tls::{PlainPolicy, SharedIdentity, TLS_FIRST_BYTE};
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// How a listener takes connections: TLS (when configured) and who may
/// still use plain TCP.
#[derive(Clone)]
pub struct ListenerSecurity {
    /// The server's TLS identity, if `[tls]` is configured (a reload
    /// replaces it when the files are renewed).
    pub tls: Option<SharedIdentity>,
    /// Who may connect without TLS (everyone when TLS is not configured).
    pub plain: PlainPolicy,
}

impl ListenerSecurity {
    /// Plain TCP for everyone: no `[tls]`.
    pub fn plain() -> Self {
        Self {
            tls: None,
            plain: PlainPolicy::Allow,
        }
    }

    /// A line for the log saying how the listener at `address` is
    /// protected, and a warning when records would cross a network in
    /// clear.
    pub fn describe(&self, address: SocketAddr, what: &str) -> (String, bool) {
        match (&self.tls, self.plain) {
            (Some(_), PlainPolicy::Refuse) => (format!("{what} on {address}: TLS only"), false),
            (Some(_), PlainPolicy::Loopback) => (
                format!("{what} on {address}: TLS; plain TCP from loopback only"),
                false,
            ),
            (Some(_), PlainPolicy::Allow) => (
                format!(
                    "{what} on {address}: TLS, and plain TCP from any address (tls.plain = \"allow\": for trusted networks only)"
                ),
                true,
            ),
            (None, _) => (
                format!(
                    "{what} on {address}: plain TCP, no TLS{}",
                    if address.ip().is_loopback() {
                        " (loopback only)"
                    } else {
                        ": records and tokens cross the network in clear; configure [tls] unless the network is trusted"
                    }
                ),
                !address.ip().is_loopback(),
            ),
        }
    }
}

/// A connection after the transport handshake.
pub enum Accepted {
    /// Plain TCP; `refused` says why the policy does not take it (the
    /// connection still answers a text probe, then refuses the client).
    Plain {
        /// The connection.
        stream: TcpStream,
        /// Why the server's policy refuses plain TCP, if it does.
        refused: Option<String>,
    },
    /// TLS, with the client's certificate when it showed one (already
    /// verified against `client_ca`).
    Tls {
        /// The connection, its handshake done.
        stream: Box<TlsStream<TcpStream>>,
        /// The client's certificate (DER), if it showed one.
        certificate: Option<Vec<u8>>,
    },
}

/// Waits for the client's first byte and runs the TLS handshake if it
/// starts one. The caller bounds the time this takes.
pub async fn accept(
    stream: TcpStream,
    peer: SocketAddr,
    security: &ListenerSecurity,
) -> io::Result<Accepted> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if first[0] != TLS_FIRST_BYTE {
        let refused = match &security.tls {
            None => None,
            Some(_) => security.plain.refusal(peer.ip()),
        };
        return Ok(Accepted::Plain { stream, refused });
    }
    let Some(identity) = &security.tls else {
        return Err(io::Error::other(
            "the client started TLS, and this server has no [tls] configured; connect without TLS or configure [tls]",
        ));
    };
    let acceptor = identity.load().acceptor.clone();
    let stream = acceptor.accept(stream).await?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|certificate| certificate.to_vec());
    Ok(Accepted::Tls {
        stream: Box::new(stream),
        certificate,
    })
}
