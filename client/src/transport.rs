//! How a client reaches a server: plain TCP or TLS (with an optional client
//! certificate), and the token it shows. The protocol and admin ports take
//! the same options.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How to connect: TLS and credentials. The default is plain TCP without a
/// token, which a server takes from loopback or a trusted network.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Connect with TLS.
    pub tls: Option<TlsOptions>,
    /// A token naming this client to the server's access rules.
    pub token: Option<String>,
    /// The largest answer frame this client accepts (HELLO `max_frame`;
    /// default [`vsam_protocol::DEFAULT_MAX_FRAME`], at least
    /// [`vsam_protocol::MIN_CLIENT_FRAME`]): the server cuts record batches
    /// to fit it and refuses, with FDBK X'2C', a record that cannot.
    pub max_frame: Option<u32>,
    /// The highest protocol minor version to speak (default and at most
    /// this client's [`vsam_protocol::PROTOCOL_MINOR`]): a client pinned
    /// to an older minor behaves as it would against an older server.
    pub minor: Option<u16>,
    /// Longest a connection may take to be made and welcomed: TCP, TLS,
    /// HELLO and the server's WELCOME (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]). An address that takes the connection
    /// and says nothing (another program's port, a stopped server) is an
    /// error then, not a wait without end.
    pub connect_timeout: Option<Duration>,
    /// What this client tells the server it is (HELLO's `client`): the
    /// program and what it does, shown by `vsamr admin connections` and
    /// in the server's log, so that an operator finds the program behind
    /// a connection. `vsam-client VERSION` when not given.
    pub client: Option<String>,
}

/// How long a connection may take to be made and welcomed, unless
/// [`ConnectOptions::connect_timeout`] says otherwise: above the server's
/// own time for a handshake (10 s) and its delay before refusing a token
/// (1 s), by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// TLS settings of a client.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM CA certificates that sign the server's certificate (default:
    /// the system's trusted roots).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and key of this client, for servers that
    /// identify clients by certificate.
    pub certificate: Option<(PathBuf, PathBuf)>,
    /// The name the server's certificate must carry (default: the host of
    /// the server address).
    pub server_name: Option<String>,
}

/// A connected byte stream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl TlsOptions {
    fn connector(&self) -> Result<TlsConnector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certificates = CertificateDer::pem_file_iter(path)
                    .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                if certificates.is_empty() {
                    return Err(format!(
                        "CA file {}: no PEM certificate in it",
                        path.display()
                    ));
                }
                for certificate in certificates {
                    roots
                        .add(certificate)
                        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                }
            }
            None => {
                for certificate in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(certificate);
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match &self.certificate {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let chain = CertificateDer::pem_file_iter(chain)
                    .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("client certificate {}: {e}", chain.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("client key {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate and key: {e}"))?
            }
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }
}

/// Why a TLS handshake failed, for a message. A server that closes the
/// connection at the client's first TLS bytes does not take TLS on that
/// port: vsamrd without `[tls]` does so (and logs why).
fn tls_failure(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => format!(
            "TLS handshake failed: the server closed the connection ({error}): it does not take TLS on this port (vsamrd takes TLS only with [tls] configured); connect without --tls, or configure [tls] on the server"
        ),
        _ => format!("TLS handshake failed: {error}"),
    }
}

/// Connects to `server` (`host:port`) as `options` say. If `probed`,
/// beside the stream comes a second handle on its socket, to look whether
/// anything came (or the server closed it) without reading ([`Probe`]);
/// it takes a file descriptor, so only a connection that fails over has
/// one.
pub(crate) async fn connect(
    server: &str,
    options: &ConnectOptions,
    probed: bool,
) -> Result<(Box<dyn Stream>, Option<Probe>), (String, bool)> {
    let unanswered = |reason: String| (reason, false);
    let answered = |reason: String| (reason, true);
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| unanswered(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    // A server gone without a word (its machine off, the network cut)
    // would otherwise leave a request waiting for its answer forever.
    let _ = vsam_protocol::keepalive::enable(&stream);
    let probe = probed
        .then(|| stream.as_fd().try_clone_to_owned())
        .transpose()
        .map_err(|e| unanswered(format!("cannot share the socket: {e}")))?
        .map(|fd| Probe(std::net::TcpStream::from(fd)));
    let Some(tls) = &options.tls else {
        return Ok((Box::new(stream), probe));
    };
    let host = match &tls.server_name {
        Some(name) => name.clone(),
        None => host_of(server).to_string(),
    };
    let name = ServerName::try_from(host.clone()).map_err(|_| {
        unanswered(format!(
            "{host:?} is not a name a server certificate can carry; give --tls-server-name"
        ))
    })?;
    let stream = tls
        .connector()
        .map_err(unanswered)?
        .connect(name, stream)
        .await
        .map_err(|e| answered(tls_failure(&e)))?;
    Ok((Box::new(stream), probe))
}

/// A second handle on a connection's socket (the same socket, in
/// non-blocking mode as the runtime set it): it tells whether bytes or
/// the server's close wait to be read, without reading them, so that a
/// socket nobody reads between requests is known lost before a request
/// is sent on it.
pub(crate) struct Probe(std::net::TcpStream);

impl Probe {
    /// True if something waits to be read: bytes, the end of the stream,
    /// or an error such as a reset.
    pub(crate) fn anything_waits(&self) -> bool {
        match self.0.peek(&mut [0]) {
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            Ok(_) => true,
        }
    }
}

/// The host part of `host:port` (without an IPv6 literal's brackets).
fn host_of(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(super::host_of("vsam.example.com:2387"), "vsam.example.com");
        assert_eq!(super::host_of("127.0.0.1:2387"), "127.0.0.1");
        assert_eq!(super::host_of("[::1]:2387"), "::1");
    }
}
