//! `[tls]`, `[[clients]]` and `[[access]]`: who may connect and what they
//! may do (see [`crate::security`]).

use crate::security::access::{ANONYMOUS, AccessPolicy, Client, Level, Rule};
use crate::security::tls::{PlainPolicy, TlsSettings};
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// `[tls]`: TLS on the protocol and admin ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server (relative to the config file).
    pub certificate: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA certificates that sign client certificates.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Refuse TLS clients without a certificate (needs `client_ca`).
    #[serde(default)]
    pub require_client_certificate: bool,
    /// Who may still connect without TLS: `loopback` (default), `allow`
    /// or `refuse`.
    #[serde(default)]
    pub plain: Option<Spanned<String>>,
}

/// `[[clients]]`: a client the access rules can name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The name rules use.
    pub name: Spanned<String>,
    /// SHA-256 (hex) of the token the client sends
    /// (`printf %s "$TOKEN" | sha256sum`).
    #[serde(default)]
    pub token_sha256: Option<Spanned<String>>,
    /// A DNS name the client's certificate must be valid for.
    #[serde(default)]
    pub certificate_name: Option<Spanned<String>>,
}

/// `[[access]]`: what some clients may do with some datasets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Client names, `*` (any authenticated client) or `anonymous`.
    pub clients: Spanned<Vec<String>>,
    /// Dataset name pattern.
    pub datasets: Spanned<String>,
    /// `read`, `update` or `alter`.
    pub level: Spanned<String>,
}

/// A mistake in one of these sections: where (a span when known), which
/// field, what is wrong.
pub type SectionError = (Option<Range<usize>>, String, String);

/// Checks `[tls]`; relative paths resolve against `base`.
pub fn resolve_tls(tls: &TlsConfig, base: &Path) -> Result<TlsSettings, SectionError> {
    let path = |p: &PathBuf| {
        if p.is_relative() {
            base.join(p)
        } else {
            p.clone()
        }
    };
    let plain = match &tls.plain {
        None => PlainPolicy::Loopback,
        Some(text) => PlainPolicy::parse(text.get_ref())
            .map_err(|m| (Some(text.span()), "tls.plain".to_string(), m))?,
    };
    if tls.require_client_certificate && tls.client_ca.is_none() {
        return Err((
            None,
            "tls.require_client_certificate".into(),
            "client certificates are checked against `client_ca`: give the CA file too".into(),
        ));
    }
    let settings = TlsSettings {
        certificate: path(&tls.certificate),
        key: path(&tls.key),
        client_ca: tls.client_ca.as_ref().map(path),
        require_client_certificate: tls.require_client_certificate,
        plain,
    };
    // Read the files now: a server that starts must be able to serve TLS.
    settings
        .identity()
        .map_err(|m| (None, "tls".to_string(), m))?;
    Ok(settings)
}

/// Checks `[[clients]]` and `[[access]]`.
pub fn resolve_access(
    clients: &[ClientConfig],
    rules: &[AccessConfig],
    tls: Option<&TlsSettings>,
) -> Result<AccessPolicy, SectionError> {
    let mut policy = AccessPolicy::default();
    for (i, client) in clients.iter().enumerate() {
        let field = |f: &str| format!("clients[{i}].{f}");
        let name = client.name.get_ref().to_ascii_uppercase();
        if name.is_empty()
            || name == "*"
            || name.eq_ignore_ascii_case(ANONYMOUS)
            || policy.clients.iter().any(|c| c.name == name)
        {
            return Err((
                Some(client.name.span()),
                field("name"),
                format!(
                    "{name:?} cannot name a client: names are unique, and `*` and `anonymous` mean others in rules"
                ),
            ));
        }
        let token_sha256 = client
            .token_sha256
            .as_ref()
            .map(|hex| {
                parse_digest(hex.get_ref())
                    .ok_or_else(|| (Some(hex.span()), field("token_sha256"), "give the SHA-256 of the token as 64 hex digits (printf %s \"$TOKEN\" | sha256sum)".to_string()))
            })
            .transpose()?;
        // A token or a certificate names one client: a second client with
        // the same one (a block copied and not changed) would never be
        // told apart, and get the first one's rights.
        if let (Some(digest), Some(hex)) = (&token_sha256, &client.token_sha256)
            && let Some(other) = policy
                .clients
                .iter()
                .find(|c| c.token_sha256.as_ref() == Some(digest))
        {
            return Err((
                Some(hex.span()),
                field("token_sha256"),
                format!(
                    "client {name} has the token of client {}: a token names one client; give each its own",
                    other.name
                ),
            ));
        }
        if let Some(certificate_name) = &client.certificate_name
            && let Some(other) = policy.clients.iter().find(|c| {
                c.certificate_name
                    .as_ref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(certificate_name.get_ref()))
            })
        {
            return Err((
                Some(certificate_name.span()),
                field("certificate_name"),
                format!(
                    "client {name} has the certificate name of client {}: a certificate names one client; give each its own",
                    other.name
                ),
            ));
        }
        if let Some(certificate_name) = &client.certificate_name {
            let usable = tls.is_some_and(|tls| tls.client_ca.is_some());
            if !usable {
                return Err((
                    Some(certificate_name.span()),
                    field("certificate_name"),
                    "client certificates need [tls] with client_ca".into(),
                ));
            }
            if rustls::pki_types::ServerName::try_from(certificate_name.get_ref().as_str()).is_err()
            {
                return Err((
                    Some(certificate_name.span()),
                    field("certificate_name"),
                    format!(
                        "{:?} is not a DNS name or IP address a certificate can be valid for",
                        certificate_name.get_ref()
                    ),
                ));
            }
        }
        if token_sha256.is_none() && client.certificate_name.is_none() {
            return Err((
                Some(client.name.span()),
                field("name"),
                format!(
                    "client {name} has no way to prove who it is: give token_sha256, certificate_name or both"
                ),
            ));
        }
        policy.clients.push(Client {
            name,
            token_sha256,
            certificate_name: client
                .certificate_name
                .as_ref()
                .map(|n| n.get_ref().clone()),
        });
    }
    for (i, rule) in rules.iter().enumerate() {
        let field = |f: &str| format!("access[{i}].{f}");
        let level = Level::parse(rule.level.get_ref())
            .map_err(|m| (Some(rule.level.span()), field("level"), m))?;
        if rule.clients.get_ref().is_empty() {
            return Err((
                Some(rule.clients.span()),
                field("clients"),
                "name at least one client, `*` or `anonymous`".into(),
            ));
        }
        for name in rule.clients.get_ref() {
            let known = name == "*"
                || name == ANONYMOUS
                || policy
                    .clients
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(name));
            if !known {
                return Err((
                    Some(rule.clients.span()),
                    field("clients"),
                    format!(
                        "no [[clients]] entry is named {name:?}; use a configured name, `*` or `anonymous`"
                    ),
                ));
            }
        }
        let datasets = rule.datasets.get_ref().to_ascii_uppercase();
        if !super::is_name_pattern(&datasets) {
            return Err((
                Some(rule.datasets.span()),
                field("datasets"),
                format!(
                    "{:?} is not a dataset name pattern (letters, digits, . * ** %)",
                    rule.datasets.get_ref()
                ),
            ));
        }
        policy.rules.push(Rule {
            clients: rule
                .clients
                .get_ref()
                .iter()
                .map(|c| {
                    if c == "*" || c == ANONYMOUS {
                        c.clone()
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect(),
            datasets,
            level,
        });
    }
    Ok(policy)
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}
