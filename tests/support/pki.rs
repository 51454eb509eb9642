//! A throwaway certificate authority for TLS tests: a CA, a server
//! certificate for 127.0.0.1 and `localhost`, a client certificate, and a
//! client certificate from a CA nobody trusts.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};

/// PEM files in a temporary directory.
pub struct Pki {
    /// The directory holding them, removed when the test ends.
    pub dir: tempfile::TempDir,
    /// The CA certificate that signs the others.
    pub ca: PathBuf,
    /// The server's certificate, for 127.0.0.1 and `localhost`.
    pub server_cert: PathBuf,
    /// Its private key.
    pub server_key: PathBuf,
    /// Valid for the DNS name given to [`make`].
    pub client_cert: PathBuf,
    /// Its private key.
    pub client_key: PathBuf,
    /// Same name, signed by another CA.
    pub stranger_cert: PathBuf,
    /// Its private key.
    pub stranger_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    dir: &Path,
    stem: &str,
    names: &[&str],
    issuer: &CertifiedIssuer<'static, KeyPair>,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let certificate = params.signed_by(&key, issuer).unwrap();
    (
        write(dir, &format!("{stem}.pem"), &certificate.pem()),
        write(dir, &format!("{stem}.key"), &key.serialize_pem()),
    )
}

/// A CA with a server certificate and client certificates for `client_name`.
pub fn make(client_name: &str) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority("vsam test CA");
    let stranger_ca = authority("somebody else's CA");
    let ca_path = write(dir.path(), "ca.pem", &ca.pem());
    let (server_cert, server_key) = leaf(dir.path(), "server", &["localhost", "127.0.0.1"], &ca);
    let (client_cert, client_key) = leaf(dir.path(), "client", &[client_name], &ca);
    let (stranger_cert, stranger_key) = leaf(dir.path(), "stranger", &[client_name], &stranger_ca);
    Pki {
        dir,
        ca: ca_path,
        server_cert,
        server_key,
        client_cert,
        client_key,
        stranger_cert,
        stranger_key,
    }
}
