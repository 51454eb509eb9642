//! TLS to PostgreSQL: what a backend's URL asks for, in libpq's words
//! (`sslmode`, `sslrootcert`), and the rustls connector that does it.
//!
//! vsamrd always checks the server's certificate when it uses TLS: against
//! the CA certificates of `sslrootcert=/path/ca.pem`, or the system's with
//! `sslrootcert=system` (the default), and the host name of the URL.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Where the CA certificates that vouch for the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The operating system's CA certificates.
    System,
    /// A PEM file of CA certificates.
    File(PathBuf),
}

/// Whether and how to use TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRequest {
    /// Plain TCP (`sslmode=disable`, or no `sslmode` and no `sslrootcert`).
    Off,
    /// TLS if the server offers it (`sslmode=prefer`), verified.
    Prefer(Roots),
    /// TLS or no connection (`require`, `verify-ca`, `verify-full`, or a
    /// `sslrootcert` without `sslmode`), verified.
    Require(Roots),
}

/// Splits a `postgres://` URL into the text tokio-postgres reads (its
/// `sslmode` reduced to disable/prefer/require, `sslrootcert` removed) and
/// the TLS request.
pub fn parse(url: &str) -> Result<(String, TlsRequest), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsRequest::Off));
    };
    let mut mode = None;
    let mut roots = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("{key}: not UTF-8 after percent-decoding"))?;
        match key {
            "sslmode" => mode = Some(value.into_owned()),
            "sslrootcert" if value == "system" => roots = Some(Roots::System),
            "sslrootcert" => {
                let path = PathBuf::from(value.as_ref());
                if !path.is_absolute() {
                    return Err(format!(
                        "sslrootcert must be an absolute path (or `system`), not {value:?}"
                    ));
                }
                roots = Some(Roots::File(path));
            }
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!(
                    "{key}: client certificates are not supported; authenticate with a password"
                ));
            }
            _ => kept.push(pair.to_string()),
        }
    }
    let request = match (mode.as_deref(), roots) {
        (None, None) | (Some("disable"), None) => TlsRequest::Off,
        (Some("disable"), Some(_)) => {
            return Err("sslrootcert with sslmode=disable: choose one".into());
        }
        (Some("prefer"), roots) => TlsRequest::Prefer(roots.unwrap_or(Roots::System)),
        (None | Some("require" | "verify-ca" | "verify-full"), roots) => {
            TlsRequest::Require(roots.unwrap_or(Roots::System))
        }
        (Some(other), _) => {
            return Err(format!(
                "sslmode={other}: use disable, prefer, require, verify-ca or verify-full"
            ));
        }
    };
    kept.push(
        match request {
            TlsRequest::Off => "sslmode=disable",
            TlsRequest::Prefer(_) => "sslmode=prefer",
            TlsRequest::Require(_) => "sslmode=require",
        }
        .to_string(),
    );
    Ok((format!("{base}?{}", kept.join("&")), request))
}

/// The connector for a TLS request: rustls (ring), the given roots.
pub fn connector(roots: &Roots) -> Result<MakeRustlsConnect, String> {
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(
                    "no CA certificates found on this system; give sslrootcert=/path/ca.pem".into(),
                );
            }
        }
        Roots::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
            if store.is_empty() {
                return Err(format!(
                    "sslrootcert {}: no certificate in the file",
                    path.display()
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_words_become_a_tls_request() {
        let base = "postgres://u:p@db:5432/x";
        assert_eq!(parse(base).unwrap(), (base.to_string(), TlsRequest::Off));
        let (text, request) = parse(&format!(
            "{base}?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3"
        ))
        .unwrap();
        assert_eq!(text, format!("{base}?connect_timeout=3&sslmode=require"));
        assert_eq!(
            request,
            TlsRequest::Require(Roots::File("/etc/ca.pem".into()))
        );
        assert_eq!(
            parse(&format!("{base}?sslmode=prefer")).unwrap().1,
            TlsRequest::Prefer(Roots::System)
        );
        assert_eq!(
            parse(&format!("{base}?sslrootcert=system")).unwrap().1,
            TlsRequest::Require(Roots::System),
            "a root certificate without a mode asks for TLS"
        );
        assert_eq!(
            parse(&format!("{base}?sslmode=disable")).unwrap(),
            (format!("{base}?sslmode=disable"), TlsRequest::Off)
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_with_the_reason() {
        let base = "postgres://db/x";
        for (query, expected) in [
            ("sslmode=allow", "use disable, prefer"),
            ("sslrootcert=ca.pem", "absolute path"),
            ("sslmode=disable&sslrootcert=/ca.pem", "choose one"),
            ("sslcert=/c.pem", "client certificates are not supported"),
        ] {
            let error = parse(&format!("{base}?{query}")).unwrap_err();
            assert!(error.contains(expected), "{query}: {error}");
        }
    }

    #[test]
    fn a_missing_or_empty_root_file_is_named() {
        let missing = connector(&Roots::File("/nonexistent/ca.pem".into()))
            .err()
            .unwrap();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let error = connector(&Roots::File(empty.path().into())).err().unwrap();
        assert!(error.contains("no certificate"), "{error}");
    }
}
