//! TLS for the protocol and admin ports: the server's certificate and key,
//! optional client certificates, and which clients may still connect
//! without TLS.
//!
//! Both ports tell TLS from plain TCP by the first byte a client sends (a
//! TLS ClientHello starts with 0x16; a redirector frame's length never
//! does, see [`TLS_FIRST_BYTE`]), so one port serves both and the policy
//! decides who may use which.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The first byte of a TLS handshake record. A redirector frame starts
/// with its big-endian length, and frames are limited below 0x16000000
/// bytes, so a plain client never sends it first; a text probe (`GET`,
/// a typed line) never does either.
pub const TLS_FIRST_BYTE: u8 = 0x16;

/// Who may connect without TLS when TLS is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainPolicy {
    /// Plain TCP from loopback only (the default): local tools and tests
    /// keep working, the network needs TLS.
    Loopback,
    /// Plain TCP from anywhere (a trusted network), TLS for who wants it.
    Allow,
    /// TLS only.
    Refuse,
}

impl PlainPolicy {
    /// Parses `loopback`, `allow` or `refuse`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "loopback" => Ok(Self::Loopback),
            "allow" => Ok(Self::Allow),
            "refuse" => Ok(Self::Refuse),
            other => Err(format!(
                "{other:?} is not a plain-TCP policy: loopback (plain TCP from this machine only), allow or refuse"
            )),
        }
    }

    /// Why a plain connection from `peer` is refused, if it is.
    pub fn refusal(self, peer: IpAddr) -> Option<String> {
        let loopback = peer.is_loopback()
            || matches!(peer, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
        match self {
            Self::Allow => None,
            Self::Loopback if loopback => None,
            Self::Loopback => Some(
                "this server takes plain TCP from loopback only; connect with TLS (vsamr --tls, or [tls] in the client's configuration)".into(),
            ),
            Self::Refuse => Some(
                "this server takes TLS connections only; connect with TLS (vsamr --tls)".into(),
            ),
        }
    }
}

/// `[tls]`, resolved: files are read when the acceptor is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file with the server's certificate chain.
    pub certificate: PathBuf,
    /// PEM file with its private key.
    pub key: PathBuf,
    /// PEM file with the CA certificates client certificates are checked
    /// against; without it clients show no certificate.
    pub client_ca: Option<PathBuf>,
    /// Refuse TLS clients that show no certificate.
    pub require_client_certificate: bool,
    /// Who may connect without TLS.
    pub plain: PlainPolicy,
}

impl TlsSettings {
    /// Reads the files and builds the acceptor both ports use; an error
    /// names the file and what is wrong with it.
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificates = read_certificates(&self.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            format!(
                "[tls] key {}: {e}; give a PEM private key (PKCS#8, PKCS#1 or SEC1)",
                self.key.display()
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("[tls]: {e}"))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in read_certificates(path)? {
                    roots
                        .add(certificate)
                        .map_err(|e| format!("[tls] client_ca {}: {e}", path.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match self.require_client_certificate {
                    true => verifier,
                    false => verifier.allow_unauthenticated(),
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| format!("[tls] client_ca {}: {e}", path.display()))?,
                )
            }
        };
        let config = builder.with_single_cert(certificates, key).map_err(|e| {
            format!(
                "[tls] certificate {} and key {} do not make a server identity: {e}",
                self.certificate.display(),
                self.key.display()
            )
        })?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn read_certificates(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("[tls] {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "[tls] {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certificates)
}

/// True if the DER `certificate` is valid for the DNS name (or IP address)
/// `name`, by its subject alternative names.
pub fn certificate_names(certificate: &[u8], name: &str) -> bool {
    let der = CertificateDer::from(certificate);
    let Ok(certificate) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(name) else {
        return false;
    };
    certificate.verify_is_valid_for_subject_name(&name).is_ok()
}
