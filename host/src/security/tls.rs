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
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;
use x509_cert::der::Decode;

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

/// The server's TLS identity as both listeners use it. A reload that
/// finds the files renewed replaces it whole, so that each handshake uses
/// one identity throughout and connections already open keep theirs.
pub struct TlsIdentity {
    /// Accepts TLS connections with the certificate, key and client CAs.
    pub acceptor: TlsAcceptor,
    /// When the first certificate of the server's chain to end ends: what
    /// `/metrics` exports for alerts.
    pub not_after: SystemTime,
    /// The server certificate's subject and end, for the reload's report.
    pub description: String,
    /// SHA-256 over the certificates and the key, to tell renewed files
    /// from a reload that changed nothing.
    pub fingerprint: [u8; 32],
}

/// The identity the listeners share and reloads replace.
pub type SharedIdentity = Arc<arc_swap::ArcSwap<TlsIdentity>>;

/// Days before a certificate ends from which vsamrd warns, at start, at
/// each reload and in `check-config`.
pub const EXPIRY_WARNING_DAYS: u64 = 30;

impl TlsSettings {
    /// Whether a reload can move the listeners from `self` to `new`
    /// without a restart: the same policy, whatever the files.
    pub fn swappable_to(&self, new: &TlsSettings) -> bool {
        self.plain == new.plain && self.require_client_certificate == new.require_client_certificate
    }

    /// Reads the files and builds the identity both ports use; an error
    /// names the file and what is wrong with it.
    pub fn identity(&self) -> Result<TlsIdentity, String> {
        let certificates = read_certificates(&self.certificate)?;
        let client_cas = match &self.client_ca {
            Some(path) => read_certificates(path)?,
            None => Vec::new(),
        };
        let key = std::fs::read(&self.key).map_err(|e| self.bad_key(e))?;
        let mut digest = Sha256::new();
        for certificate in certificates.iter().chain(&client_cas) {
            digest.update(certificate.as_ref());
        }
        digest.update(&key);
        let validities: Vec<Validity> = certificates.iter().filter_map(validity).collect();
        let ending = validities.iter().min_by_key(|v| v.not_after);
        let description = match validities.first() {
            Some(leaf) => format!("{} (valid until {})", leaf.subject, leaf.ends),
            None => self.certificate.display().to_string(),
        };
        Ok(TlsIdentity {
            not_after: ending.map_or(SystemTime::UNIX_EPOCH, |v| v.not_after),
            description,
            fingerprint: digest.finalize().into(),
            acceptor: self.acceptor(certificates, client_cas, &key)?,
        })
    }

    /// The error of a key file that cannot be read or holds no key.
    fn bad_key(&self, error: impl std::fmt::Display) -> String {
        format!(
            "[tls] key {}: {error}; give a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            self.key.display()
        )
    }

    /// A warning for each certificate of the server's chain and of the
    /// client CAs that has ended, has not begun, or ends within
    /// [`EXPIRY_WARNING_DAYS`] of `now`: TLS clients refuse a server
    /// certificate out of its time, and client certificates signed by a
    /// CA out of its time are refused. (Files that cannot be read are
    /// the start's and the reload's error, not a warning.)
    pub fn validity_warnings(&self, now: SystemTime) -> Vec<String> {
        let files = [(
            &self.certificate,
            "server certificate",
            "TLS clients refuse it",
        )]
        .into_iter()
        .chain(self.client_ca.iter().map(|path| {
            (
                path,
                "client CA certificate",
                "client certificates it signed are refused",
            )
        }));
        let mut warnings = Vec::new();
        for (path, what, refused) in files {
            let Ok(certificates) = read_certificates(path) else {
                continue;
            };
            for found in certificates.iter().filter_map(validity) {
                let place = format!("[tls] {}: the {what} {}", path.display(), found.subject);
                let renew = "put a renewed certificate in the file and reload (vsamr admin reload, or SIGHUP)";
                if found.not_after <= now {
                    warnings.push(format!(
                        "{place} ended on {}: {refused}; {renew}",
                        found.ends
                    ));
                } else if found.not_before > now {
                    warnings.push(format!(
                        "{place} is valid only from {}: {refused} until then; check this machine's clock and the certificate",
                        found.begins
                    ));
                } else if let Ok(left) = found.not_after.duration_since(now)
                    && left < Duration::from_secs(EXPIRY_WARNING_DAYS * 86_400)
                {
                    warnings.push(format!(
                        "{place} ends on {}, in {} day(s): {renew} before then",
                        found.ends,
                        left.as_secs() / 86_400
                    ));
                }
            }
        }
        warnings
    }

    /// The acceptor both ports use, from the files' contents.
    fn acceptor(
        &self,
        certificates: Vec<CertificateDer<'static>>,
        client_cas: Vec<CertificateDer<'static>>,
        key: &[u8],
    ) -> Result<TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| self.bad_key(e))?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("[tls]: {e}"))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in client_cas {
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

/// When a certificate is valid, and whose it is.
struct Validity {
    subject: String,
    not_before: SystemTime,
    not_after: SystemTime,
    begins: String,
    ends: String,
}

/// The validity of a DER certificate, if it parses.
fn validity(certificate: &CertificateDer<'_>) -> Option<Validity> {
    let parsed = x509_cert::Certificate::from_der(certificate.as_ref()).ok()?;
    let tbs = parsed.tbs_certificate;
    Some(Validity {
        subject: match tbs.subject.to_string() {
            subject if subject.is_empty() => "(without a subject)".to_string(),
            subject => subject,
        },
        not_before: tbs.validity.not_before.to_system_time(),
        not_after: tbs.validity.not_after.to_system_time(),
        begins: tbs.validity.not_before.to_string(),
        ends: tbs.validity.not_after.to_string(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};
    use std::path::Path;
    use std::time::UNIX_EPOCH;

    /// A self-signed certificate valid between two dates, and its key,
    /// written to `dir`.
    fn certificate(dir: &Path, stem: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> TlsSettings {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, stem);
        params.not_before = date_time_ymd(from.0, from.1, from.2);
        params.not_after = date_time_ymd(to.0, to.1, to.2);
        let certificate = params.self_signed(&key).unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert_path, certificate.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        TlsSettings {
            certificate: cert_path,
            key: key_path,
            client_ca: None,
            require_client_certificate: false,
            plain: PlainPolicy::Loopback,
        }
    }

    /// 2030-01-01T00:00:00Z minus `days`.
    fn days_before_2030(days: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_893_456_000 - days * 86_400)
    }

    #[test]
    fn certificates_out_of_their_time_or_near_its_end_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let server = certificate(dir.path(), "server", (2020, 1, 1), (2030, 1, 1));
        assert_eq!(
            server.validity_warnings(days_before_2030(31)),
            Vec::<String>::new()
        );
        let soon = server.validity_warnings(days_before_2030(10));
        assert_eq!(
            soon,
            [format!(
                "[tls] {}: the server certificate CN=server ends on 2030-01-01T00:00:00Z, in 10 day(s): put a renewed certificate in the file and reload (vsamr admin reload, or SIGHUP) before then",
                server.certificate.display()
            )]
        );
        let ended = server.validity_warnings(days_before_2030(0) + Duration::from_secs(1));
        assert!(
            ended[0].ends_with("the server certificate CN=server ended on 2030-01-01T00:00:00Z: TLS clients refuse it; put a renewed certificate in the file and reload (vsamr admin reload, or SIGHUP)"),
            "{ended:?}"
        );
        let early = server.validity_warnings(UNIX_EPOCH + Duration::from_secs(1_500_000_000));
        assert!(
            early[0].contains("the server certificate CN=server is valid only from 2020-01-01T00:00:00Z: TLS clients refuse it until then"),
            "{early:?}"
        );
        // A client CA is checked too, and said to be one.
        let ca = certificate(dir.path(), "ca", (2020, 1, 1), (2029, 12, 25));
        let with_ca = TlsSettings {
            client_ca: Some(ca.certificate.clone()),
            ..server.clone()
        };
        let warnings = with_ca.validity_warnings(days_before_2030(3));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[1].contains("the client CA certificate CN=ca ended on 2029-12-25T00:00:00Z: client certificates it signed are refused"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_identity_knows_its_end_and_tells_renewed_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let first = certificate(dir.path(), "server", (2020, 1, 1), (2030, 1, 1));
        let identity = first.identity().unwrap();
        assert_eq!(identity.not_after, days_before_2030(0));
        assert_eq!(
            identity.description,
            "CN=server (valid until 2030-01-01T00:00:00Z)"
        );
        assert_eq!(first.identity().unwrap().fingerprint, identity.fingerprint);
        let renewed = certificate(dir.path(), "server", (2020, 1, 1), (2031, 1, 1));
        let again = renewed.identity().unwrap();
        assert_ne!(again.fingerprint, identity.fingerprint);
        assert!(again.not_after > identity.not_after);
    }
}
