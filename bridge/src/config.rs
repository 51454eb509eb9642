//! Which COBOL files go to vsamrd: the bridge's configuration.
//!
//! A file is named by its ASSIGN name. It is mapped to a dataset by a TOML
//! file (`VSAMFH_CONFIG`: `[files.NAME]`, or `[[map]]` rules) or by
//! environment variables (`VSAMFH_FILE_<NAME>=<DATASET>`, the name
//! upper-cased, every character other than a letter or digit made `_`;
//! `VSAMFH_MAP` rules). A file's own mapping comes first, then the rules
//! in order, `VSAMFH_MAP`'s before the file's (see `rules`). Files not
//! mapped go on to GnuCOBOL's own file handler.

use crate::rules::{self, MapRule};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use vsam_client::{ConnectOptions, TlsOptions};

/// Where vsamrd listens unless configured.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2387";
/// Seconds a request may take before the file gets status 30.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Records one READ NEXT fetches ahead unless configured (fewer for long
/// records: see [`READ_AHEAD_BYTES`]).
pub const DEFAULT_READ_AHEAD: u32 = 1024;
/// Bytes of records one READ NEXT fetches ahead, at most: files of long
/// records read fewer at a time.
pub const READ_AHEAD_BYTES: usize = 4 << 20;

/// The bridge's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// vsamrd's address (`host:port`).
    #[serde(default = "default_server")]
    pub server: String,
    /// Seconds one request may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Records a READ NEXT fetches ahead in one request, served to the
    /// next READ NEXTs (1: every READ NEXT asks the server).
    #[serde(default = "default_read_ahead")]
    pub read_ahead: u32,
    /// READ's status when the next record has the same alternate key:
    /// `"02"` as the COBOL standard and Enterprise COBOL say, or `"00"` as
    /// GnuCOBOL's own handler answers.
    #[serde(default = "default_duplicate_read_status")]
    pub duplicate_read_status: String,
    /// Connect with TLS (implied by `tls_ca` and `tls_cert`).
    #[serde(default)]
    pub tls: bool,
    /// PEM CA certificates that sign vsamrd's certificate (default: the
    /// system's trusted roots).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate chain of this client, for a server that names
    /// clients by certificate (with `tls_key`).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// File holding the token that names this program's client to
    /// vsamrd's access rules.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `"sync"` (the default): every WRITE, REWRITE and DELETE is durable
    /// before its status comes back. `"commit"`: the files opened for
    /// OUTPUT, I-O or EXTEND join the program's unit of work, durable at
    /// COMMIT, at CLOSE and every `checkpoint_records` changes, and undone
    /// by ROLLBACK (see the README).
    #[serde(default = "default_durability")]
    pub durability: String,
    /// In `commit` durability, a COMMIT after this many changes (0: only
    /// at COMMIT and CLOSE).
    #[serde(default)]
    pub checkpoint_records: u32,
    /// Mapped files by ASSIGN name.
    #[serde(default)]
    pub files: BTreeMap<String, FileMapping>,
    /// Rules mapping many files at once, first match wins.
    #[serde(default)]
    pub map: Vec<MapRule>,
    /// Print, at each OPEN, how the file was mapped (`VSAMFH_EXPLAIN`).
    #[serde(default)]
    pub explain: bool,
}

/// How a file found its dataset, for `VSAMFH_EXPLAIN` and `vsamfh-map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedBy {
    /// Its own mapping (`[files.NAME]`, `VSAMFH_FILE_<NAME>`).
    Own,
    /// A rule, described.
    Rule(String),
}

/// Where one COBOL file's records live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMapping {
    /// The dataset name in vsamrd's catalog.
    pub dataset: String,
    /// DEFINE the dataset, from the program's file description, when an
    /// OPEN OUTPUT (or an OPEN of an OPTIONAL file) finds it missing.
    #[serde(default)]
    pub define: bool,
    /// The backend a DEFINE names (empty: vsamrd's routing decides).
    #[serde(default)]
    pub backend: String,
}

fn default_server() -> String {
    DEFAULT_SERVER.to_string()
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_read_ahead() -> u32 {
    DEFAULT_READ_AHEAD
}

fn default_duplicate_read_status() -> String {
    "02".to_string()
}

fn default_durability() -> String {
    "sync".to_string()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: default_server(),
            timeout_secs: default_timeout(),
            read_ahead: default_read_ahead(),
            duplicate_read_status: default_duplicate_read_status(),
            tls: false,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            token_file: None,
            durability: default_durability(),
            checkpoint_records: 0,
            files: BTreeMap::new(),
            map: Vec::new(),
            explain: false,
        }
    }
}

/// The variables the bridge reads, beside `VSAMFH_FILE_<NAME>`. Any other
/// `VSAMFH_` variable is refused, as an unknown field of the TOML file is:
/// a misspelt one (`VSAMFH_SEVER`) would otherwise leave the program on
/// the default server, writing where no one looks.
pub const VARIABLES: &[&str] = &[
    "VSAMFH_CONFIG",
    "VSAMFH_SERVER",
    "VSAMFH_TIMEOUT",
    "VSAMFH_READ_AHEAD",
    "VSAMFH_TLS",
    "VSAMFH_TLS_CA",
    "VSAMFH_TLS_CERT",
    "VSAMFH_TLS_KEY",
    "VSAMFH_TOKEN_FILE",
    "VSAMFH_DUPLICATE_READ_STATUS",
    "VSAMFH_DURABILITY",
    "VSAMFH_CHECKPOINT",
    "VSAMFH_DEFINE",
    "VSAMFH_BACKEND",
    "VSAMFH_MAP",
    "VSAMFH_EXPLAIN",
];

/// The prefix of the variables that map one file each.
const FILE_PREFIX: &str = "VSAMFH_FILE_";

/// A yes-or-no variable: `1`, `yes`, `true` or `on`, or `0`, `no`,
/// `false`, `off` or empty; anything else is refused rather than read as
/// no.
fn switch(var: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" | "" => Ok(false),
        _ => Err(format!("{var}={value}: give 1 or 0 (yes or no)")),
    }
}

impl Config {
    /// Reads the configuration from the environment: `VSAMFH_CONFIG` (a
    /// TOML file), then `VSAMFH_SERVER`, `VSAMFH_TIMEOUT`,
    /// `VSAMFH_READ_AHEAD`, `VSAMFH_DUPLICATE_READ_STATUS`,
    /// `VSAMFH_DURABILITY`, `VSAMFH_CHECKPOINT`, and per file
    /// `VSAMFH_FILE_<NAME>`, with `VSAMFH_DEFINE=1` and `VSAMFH_BACKEND`
    /// for the files mapped that way.
    pub fn from_env() -> Result<Self, String> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let file = match vars.get("VSAMFH_CONFIG") {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("VSAMFH_CONFIG={path}: cannot read the file: {e}"))?,
            ),
            None => None,
        };
        Self::from_parts(file.as_deref(), &vars)
    }

    /// The configuration from a TOML text and environment variables.
    pub fn from_parts(
        toml_text: Option<&str>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        vsam_protocol::environment::check(
            "the bridge",
            "VSAMFH_",
            VARIABLES,
            &[FILE_PREFIX],
            vars.keys().map(String::as_str),
        )?;
        let mut config = match toml_text {
            Some(text) => toml::from_str::<Config>(text)
                .map_err(|e| format!("VSAMFH_CONFIG: {}", e.to_string().trim()))?,
            None => Config::default(),
        };
        config.files = config
            .files
            .into_iter()
            .map(|(name, mapping)| (env_name(&name), mapping))
            .collect();
        if let Some(server) = vars.get("VSAMFH_SERVER") {
            config.server = server.clone();
        }
        if let Some(timeout) = vars.get("VSAMFH_TIMEOUT") {
            config.timeout_secs = timeout
                .parse()
                .map_err(|_| format!("VSAMFH_TIMEOUT={timeout}: give a number of seconds"))?;
        }
        if let Some(read_ahead) = vars.get("VSAMFH_READ_AHEAD") {
            config.read_ahead = read_ahead.parse().map_err(|_| {
                format!("VSAMFH_READ_AHEAD={read_ahead}: give a number of records (1: none)")
            })?;
        }
        if let Some(tls) = vars.get("VSAMFH_TLS") {
            config.tls = switch("VSAMFH_TLS", tls)?;
        }
        for (var, field) in [
            ("VSAMFH_TLS_CA", &mut config.tls_ca),
            ("VSAMFH_TLS_CERT", &mut config.tls_cert),
            ("VSAMFH_TLS_KEY", &mut config.tls_key),
            ("VSAMFH_TOKEN_FILE", &mut config.token_file),
        ] {
            if let Some(path) = vars.get(var) {
                *field = Some(PathBuf::from(path));
            }
        }
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            return Err(
                "give both tls_cert and tls_key (VSAMFH_TLS_CERT, VSAMFH_TLS_KEY), or neither"
                    .into(),
            );
        }
        if let Some(status) = vars.get("VSAMFH_DUPLICATE_READ_STATUS") {
            config.duplicate_read_status = status.clone();
        }
        if !matches!(config.duplicate_read_status.as_str(), "00" | "02") {
            return Err(format!(
                "duplicate read status {:?}: give 02 (the standard) or 00 (as GnuCOBOL's own handler)",
                config.duplicate_read_status
            ));
        }
        if let Some(durability) = vars.get("VSAMFH_DURABILITY") {
            config.durability = durability.to_ascii_lowercase();
        }
        if !matches!(config.durability.as_str(), "sync" | "commit") {
            return Err(format!(
                "durability {:?}: give sync (every change durable before its status) or commit (units of work: durable at COMMIT, CLOSE and checkpoints) (VSAMFH_DURABILITY)",
                config.durability
            ));
        }
        if let Some(every) = vars.get("VSAMFH_CHECKPOINT") {
            config.checkpoint_records = every.parse().map_err(|_| {
                format!("VSAMFH_CHECKPOINT={every}: give a number of changes (0: no checkpoints)")
            })?;
        }
        let define = match vars.get("VSAMFH_DEFINE") {
            Some(value) => switch("VSAMFH_DEFINE", value)?,
            None => false,
        };
        let backend = vars.get("VSAMFH_BACKEND").cloned().unwrap_or_default();
        for rule in &config.map {
            rule.check().map_err(|e| format!("VSAMFH_CONFIG: {e}"))?;
        }
        if let Some(text) = vars.get("VSAMFH_MAP") {
            let mut rules = rules::from_env(text, define, &backend)?;
            rules.append(&mut config.map);
            config.map = rules;
        }
        if let Some(explain) = vars.get("VSAMFH_EXPLAIN") {
            config.explain = switch("VSAMFH_EXPLAIN", explain)?;
        }
        for (var, dataset) in vars {
            if let Some(name) = var.strip_prefix(FILE_PREFIX) {
                config.files.insert(
                    name.to_string(),
                    FileMapping {
                        dataset: dataset.to_ascii_uppercase(),
                        define,
                        backend: backend.clone(),
                    },
                );
            }
        }
        Ok(config)
    }

    /// How to connect: TLS and the token, read from its file now.
    pub fn connect_options(&self) -> Result<ConnectOptions, String> {
        let tls =
            (self.tls || self.tls_ca.is_some() || self.tls_cert.is_some()).then(|| TlsOptions {
                ca_file: self.tls_ca.clone(),
                certificate: self.tls_cert.clone().zip(self.tls_key.clone()),
                server_name: None,
            });
        let token = match &self.token_file {
            None => None,
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("token file {}: {e} (VSAMFH_TOKEN_FILE)", path.display()))?
                    .trim()
                    .to_string(),
            ),
        };
        Ok(ConnectOptions {
            tls,
            token,
            client: Some(client_name()),
            ..Default::default()
        })
    }

    /// True in `commit` durability (units of work).
    pub fn units(&self) -> bool {
        self.durability == "commit"
    }

    /// The mapping of a file by its ASSIGN name, if it has one, and what
    /// gave it; `Err` when a rule matches but makes no valid dataset name.
    /// `env` is the program's environment (a rule over paths resolves the
    /// name as GnuCOBOL does).
    pub fn mapping(
        &self,
        assign: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<(FileMapping, MappedBy)>, String> {
        if let Some(own) = self.files.get(&env_name(assign)) {
            return Ok(Some((own.clone(), MappedBy::Own)));
        }
        if self.map.is_empty() {
            return Ok(None);
        }
        let path = rules::resolve::resolve(assign, env);
        for rule in &self.map {
            if let Some(dataset) = rule.apply(assign.trim(), &path) {
                let dataset = dataset.map_err(|problem| {
                    format!(
                        "file {assign} ({path}): {problem}; map this file on its own ([files.\"{assign}\"], or VSAMFH_FILE_{}), or change the rule",
                        env_name(assign)
                    )
                })?;
                let mapping = FileMapping {
                    dataset,
                    define: rule.define,
                    backend: rule.backend.clone(),
                };
                return Ok(Some((mapping, MappedBy::Rule(rule.describe()))));
            }
        }
        Ok(None)
    }
}

/// An ASSIGN name as it appears in a variable name: upper case, anything
/// but letters and digits made `_` (`cust-file` is `CUST_FILE`).
pub fn env_name(assign: &str) -> String {
    assign
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// What the bridge tells vsamrd it is: itself, and the COBOL program it
/// runs in (its executable's name and pid), so that `vsamr admin
/// connections` shows which program a connection is.
fn client_name() -> String {
    let program = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "a program".into());
    format!(
        "vsamextfh {} in {program} (pid {})",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_server_is_told_which_program_connects() {
        let name = client_name();
        let program = std::env::current_exe().unwrap();
        let program = program.file_name().unwrap().to_string_lossy();
        assert_eq!(
            name,
            format!(
                "vsamextfh {} in {program} (pid {})",
                env!("CARGO_PKG_VERSION"),
                std::process::id()
            )
        );
    }

    #[test]
    fn files_are_mapped_by_file_or_by_environment() {
        let text = "server = \"db1:2387\"\n[files.\"cust-file\"]\ndataset = \"PROD.CUST\"\ndefine = true\nbackend = \"pg\"\n";
        let config = Config::from_parts(
            Some(text),
            &vars(&[
                ("VSAMFH_FILE_ORDERS", "prod.orders"),
                ("VSAMFH_TIMEOUT", "5"),
                ("VSAMFH_READ_AHEAD", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(config.server, "db1:2387");
        assert_eq!(config.timeout_secs, 5);
        assert_eq!(config.read_ahead, 1);
        let none = |_: &str| None;
        let (cust, _) = config.mapping("CUST-FILE", &none).unwrap().unwrap();
        assert_eq!(
            (cust.dataset.as_str(), cust.define, cust.backend.as_str()),
            ("PROD.CUST", true, "pg")
        );
        let (orders, _) = config.mapping("orders", &none).unwrap().unwrap();
        assert_eq!(
            (orders.dataset.as_str(), orders.define),
            ("PROD.ORDERS", false)
        );
        assert!(config.mapping("OTHER", &none).unwrap().is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let error =
            Config::from_parts(Some("[files.A]\ndatset = \"X\"\n"), &vars(&[])).unwrap_err();
        assert!(error.contains("datset"), "{error}");
        let error = Config::from_parts(None, &vars(&[("VSAMFH_TIMEOUT", "soon")])).unwrap_err();
        assert!(error.contains("VSAMFH_TIMEOUT=soon"), "{error}");
        let error = Config::from_parts(None, &vars(&[("VSAMFH_DURABILITY", "lazy")])).unwrap_err();
        assert!(error.contains("VSAMFH_DURABILITY"), "{error}");
    }

    #[test]
    fn a_variable_the_bridge_does_not_read_is_refused_naming_the_one_meant() {
        let whole = Config::from_parts(None, &vars(&[("VSAMFH_SEVER", "x")])).unwrap_err();
        assert!(
            whole.contains("it reads VSAMFH_CONFIG, VSAMFH_SERVER"),
            "{whole}"
        );
        // Every variable it reads, and the file mappings, pass; others'
        // variables are not its business.
        let mut all: Vec<(&str, &str)> = VARIABLES.iter().map(|var| (*var, "")).collect();
        all.retain(|(var, _)| !matches!(*var, "VSAMFH_CONFIG" | "VSAMFH_MAP"));
        all.extend([
            ("VSAMFH_FILE_ORDERS", "PROD.ORDERS"),
            ("VSAMFH_TIMEOUT", "5"),
            ("VSAMFH_READ_AHEAD", "1"),
            ("VSAMFH_CHECKPOINT", "0"),
            ("VSAMFH_DURABILITY", "sync"),
            ("VSAMFH_DUPLICATE_READ_STATUS", "02"),
            ("VSAMFHX", "other"),
            ("PATH", "/bin"),
        ]);
        let config = Config::from_parts(None, &vars(&all)).unwrap();
        assert_eq!(config.files["ORDERS"].dataset, "PROD.ORDERS");
    }

    #[test]
    fn a_switch_is_yes_or_no_and_nothing_else() {
        for (value, tls) in [
            ("1", true),
            ("TRUE", true),
            ("on", true),
            ("no", false),
            ("0", false),
        ] {
            let config = Config::from_parts(None, &vars(&[("VSAMFH_TLS", value)])).unwrap();
            assert_eq!(config.tls, tls, "VSAMFH_TLS={value}");
        }
        for var in ["VSAMFH_TLS", "VSAMFH_DEFINE", "VSAMFH_EXPLAIN"] {
            let error = Config::from_parts(None, &vars(&[(var, "maybe")])).unwrap_err();
            assert_eq!(error, format!("{var}=maybe: give 1 or 0 (yes or no)"));
        }
    }

    #[test]
    fn units_of_work_are_chosen_by_file_or_environment() {
        let config = Config::from_parts(None, &vars(&[])).unwrap();
        assert!(!config.units(), "sync by default");
        let config = Config::from_parts(
            Some("durability = \"commit\"\ncheckpoint_records = 500\n"),
            &vars(&[]),
        )
        .unwrap();
        assert!(config.units());
        assert_eq!(config.checkpoint_records, 500);
        let config = Config::from_parts(
            None,
            &vars(&[
                ("VSAMFH_DURABILITY", "COMMIT"),
                ("VSAMFH_CHECKPOINT", "1000"),
            ]),
        )
        .unwrap();
        assert!(config.units());
        assert_eq!(config.checkpoint_records, 1000);
    }

    /// A file's own mapping wins over rules; `VSAMFH_MAP`'s rules come
    /// before the file's; a rule over paths sees the path GnuCOBOL opens;
    /// a rule that makes no valid name refuses the file.
    #[test]
    fn rules_map_files_after_their_own_mappings() {
        let text = "[[map]]\nassign = \"data/*.dat\"\ndataset = \"FILE.{stem}\"\n[[map]]\npath = \"/srv/**\"\ndataset = \"SRV.{stem}\"\ndefine = true\n";
        let config = Config::from_parts(
            Some(text),
            &vars(&[
                ("VSAMFH_MAP", "data/c*.dat=ENV.{stem}"),
                ("VSAMFH_FILE_DATA_OWN_DAT", "OWN.FILE"),
            ]),
        )
        .unwrap();
        let env = |name: &str| (name == "DD_CUSTFILE").then(|| "/srv/app/cust.dat".to_string());
        let dataset = |assign: &str| {
            config
                .mapping(assign, &env)
                .map(|found| found.map(|(mapping, _)| (mapping.dataset, mapping.define)))
        };
        assert_eq!(
            dataset("data/own.dat"),
            Ok(Some(("OWN.FILE".into(), false)))
        );
        assert_eq!(
            dataset("data/cust.dat"),
            Ok(Some(("ENV.CUST".into(), false)))
        );
        assert_eq!(
            dataset("data/parts.dat"),
            Ok(Some(("FILE.PARTS".into(), false)))
        );
        assert_eq!(dataset("CUSTFILE"), Ok(Some(("SRV.CUST".into(), true))));
        assert_eq!(dataset("OTHER"), Ok(None));
        let refused = dataset("data/customers.dat").unwrap_err();
        assert!(
            refused.contains("\"ENV.CUSTOMERS\"")
                && refused.contains("VSAMFH_FILE_DATA_CUSTOMERS_DAT"),
            "the first rule that matches decides: {refused}"
        );
        let wrong = Config::from_parts(Some("[[map]]\ndataset = \"X\"\n"), &vars(&[]));
        assert!(wrong.unwrap_err().contains("assign"));
    }
}
