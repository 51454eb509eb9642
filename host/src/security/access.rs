//! Clients and access rules: authentication by token or certificate name,
//! and the check of every OPEN and catalog request against the rules.

use crate::catalog::matches;
use sha2::{Digest, Sha256};
use std::fmt;

/// How much a client may do with a dataset, in RACF's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// OPEN for input, INFO, LIST.
    Read,
    /// Also OPEN for output or update (PUT, ERASE, RST).
    Update,
    /// Also DEFINE, DELETE, DEFINE AIX/PATH and BLDINDEX.
    Alter,
}

impl Level {
    /// Parses `read`, `update` or `alter`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "read" => Ok(Level::Read),
            "update" => Ok(Level::Update),
            "alter" => Ok(Level::Alter),
            other => Err(format!(
                "{other:?} is not an access level: read (OPEN INPUT, LISTCAT), update (also OPEN OUTPUT/I-O) or alter (also DEFINE, DELETE, BLDINDEX)"
            )),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Read => "read",
            Level::Update => "update",
            Level::Alter => "alter",
        })
    }
}

/// A configured client: a name and the ways it proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The name rules refer to.
    pub name: String,
    /// SHA-256 of its token, if it may authenticate by token.
    pub token_sha256: Option<[u8; 32]>,
    /// A DNS name its client certificate must be valid for, if it may
    /// authenticate by certificate.
    pub certificate_name: Option<String>,
}

/// One `[[access]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Client names; `*` is any authenticated client, `anonymous` a client
    /// that showed neither token nor certificate.
    pub clients: Vec<String>,
    /// Dataset name pattern (`*` within a qualifier, `**` across, `%` one
    /// character).
    pub datasets: String,
    /// What the rule grants.
    pub level: Level,
}

/// The name rules use for a client without token or certificate.
pub const ANONYMOUS: &str = "anonymous";

/// Who is on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The configured client's name; `None` for an anonymous client.
    pub client: Option<String>,
    /// How it was recognized: `token`, `certificate` or `anonymous`.
    pub by: &'static str,
}

impl Identity {
    /// A client that showed nothing.
    pub fn anonymous() -> Self {
        Self {
            client: None,
            by: ANONYMOUS,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.client {
            Some(name) => write!(f, "client {name} (by {})", self.by),
            None => f.write_str("an anonymous client"),
        }
    }
}

/// Clients and rules, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// `[[clients]]`.
    pub clients: Vec<Client>,
    /// `[[access]]`, in order (a request is allowed if any rule grants it).
    pub rules: Vec<Rule>,
}

/// SHA-256 of a token, as `token_sha256` holds it.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl AccessPolicy {
    /// True when rules restrict what clients may do; without rules every
    /// client may do everything.
    pub fn enforced(&self) -> bool {
        !self.rules.is_empty()
    }

    /// True if some rule lets an anonymous client do something, or no rule
    /// restricts anyone.
    pub fn takes_anonymous(&self) -> bool {
        !self.enforced()
            || self
                .rules
                .iter()
                .any(|rule| rule.clients.iter().any(|c| c == ANONYMOUS))
    }

    /// The client a token names. Digests are compared whole, so the time
    /// taken does not tell how much of a guess was right.
    pub fn client_for_token(&self, token: &str) -> Option<&Client> {
        let digest = token_digest(token);
        self.clients.iter().find(|client| {
            client.token_sha256.is_some_and(|expected| {
                expected
                    .iter()
                    .zip(digest.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            })
        })
    }

    /// The client a verified certificate names (the first whose
    /// `certificate_name` the certificate is valid for).
    pub fn client_for_certificate(&self, certificate: &[u8]) -> Option<&Client> {
        self.clients.iter().find(|client| {
            client
                .certificate_name
                .as_deref()
                .is_some_and(|name| super::tls::certificate_names(certificate, name))
        })
    }

    /// Whether `identity` may work on `dataset` at `level`; the refusal says
    /// who, what and why, for the client and the log.
    pub fn check(&self, identity: &Identity, dataset: &str, level: Level) -> Result<(), String> {
        if !self.enforced() {
            return Ok(());
        }
        let granted = self
            .rules
            .iter()
            .filter(|rule| {
                rule.clients.iter().any(|c| match &identity.client {
                    Some(name) => c == "*" || c.eq_ignore_ascii_case(name),
                    None => c == ANONYMOUS,
                }) && matches(&rule.datasets, dataset)
            })
            .map(|rule| rule.level)
            .max();
        match granted {
            Some(have) if have >= level => Ok(()),
            Some(have) => Err(format!(
                "{identity} has {have} access to {dataset}, and this needs {level}; an [[access]] rule of the server's configuration grants more"
            )),
            None => Err(format!(
                "{identity} has no access to {dataset}; an [[access]] rule of the server's configuration must grant it"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AccessPolicy {
        AccessPolicy {
            clients: vec![
                Client {
                    name: "PAYROLL".into(),
                    token_sha256: Some(token_digest("pay-secret")),
                    certificate_name: None,
                },
                Client {
                    name: "AUDIT".into(),
                    token_sha256: Some(token_digest("audit-secret")),
                    certificate_name: None,
                },
            ],
            rules: vec![
                Rule {
                    clients: vec!["PAYROLL".into()],
                    datasets: "PAY.**".into(),
                    level: Level::Update,
                },
                Rule {
                    clients: vec!["*".into()],
                    datasets: "REF.*".into(),
                    level: Level::Read,
                },
                Rule {
                    clients: vec![ANONYMOUS.into()],
                    datasets: "PUBLIC.NEWS".into(),
                    level: Level::Read,
                },
            ],
        }
    }

    fn who(name: &str) -> Identity {
        Identity {
            client: Some(name.into()),
            by: "token",
        }
    }

    #[test]
    fn tokens_name_their_client_only() {
        let policy = policy();
        assert_eq!(
            policy.client_for_token("pay-secret").unwrap().name,
            "PAYROLL"
        );
        assert_eq!(
            policy.client_for_token("audit-secret").unwrap().name,
            "AUDIT"
        );
        assert!(policy.client_for_token("pay-secreT").is_none());
        assert!(policy.client_for_token("").is_none());
    }

    #[test]
    fn levels_are_granted_by_pattern_and_client() {
        let policy = policy();
        assert!(
            policy
                .check(&who("PAYROLL"), "PAY.MASTER.KSDS", Level::Update)
                .is_ok()
        );
        let refused = policy
            .check(&who("PAYROLL"), "PAY.MASTER", Level::Alter)
            .unwrap_err();
        assert!(
            refused.contains("has update access to PAY.MASTER, and this needs alter"),
            "{refused}"
        );
        assert!(
            policy
                .check(&who("AUDIT"), "PAY.MASTER", Level::Read)
                .is_err()
        );
        assert!(
            policy
                .check(&who("AUDIT"), "REF.RATES", Level::Read)
                .is_ok()
        );
        assert!(
            policy
                .check(&who("AUDIT"), "REF.RATES", Level::Update)
                .is_err()
        );
        // `*` is within one qualifier.
        assert!(
            policy
                .check(&who("AUDIT"), "REF.RATES.OLD", Level::Read)
                .is_err()
        );
        assert!(
            policy
                .check(&Identity::anonymous(), "REF.RATES", Level::Read)
                .is_err()
        );
        assert!(
            policy
                .check(&Identity::anonymous(), "PUBLIC.NEWS", Level::Read)
                .is_ok()
        );
        assert!(policy.takes_anonymous());
    }

    #[test]
    fn without_rules_everything_is_allowed() {
        let open = AccessPolicy::default();
        assert!(!open.enforced());
        assert!(open.takes_anonymous());
        assert!(
            open.check(&Identity::anonymous(), "ANY.THING", Level::Alter)
                .is_ok()
        );
        let mut closed = policy();
        closed
            .rules
            .retain(|rule| !rule.clients.contains(&ANONYMOUS.to_string()));
        assert!(!closed.takes_anonymous());
    }
}
