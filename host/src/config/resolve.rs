//! Resolving each section of a parsed configuration file into what the
//! server runs with, one function per section, each reporting a mistake
//! with the file, line and field.

use super::security;
use super::{
    AdminSettings, BackendSettings, ConfigError, ConfigFile, MAX_AUTH_FAILURE_DELAY_MS,
    MAX_IDLE_POLL_US, MAX_READERS, PluginSource, ServerConfig, UnitRule, field_at, is_name_pattern,
    key_list, line_of,
};
use crate::catalog::DatasetDef;
use crate::runtime::sql::DatabaseUrl;
use crate::security::{AccessPolicy, TlsSettings};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use toml::Spanned;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::naming::check_dataset_name;
use vsam_protocol::Organization;

/// The longest backend name.
pub const MAX_BACKEND_NAME: usize = 64;

/// Routing rules `(pattern, backend)` in order, and the default backend.
type Routes = (Vec<(String, String)>, Option<String>);

/// The text a configuration was parsed from: where its mistakes are, and
/// what its relative paths are relative to.
pub(super) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a str,
    pub base: &'a Path,
}

impl Source<'_> {
    /// The file, decoded; a TOML or type mistake names its line and field.
    pub fn decode(&self) -> Result<ConfigFile, ConfigError> {
        toml::from_str(self.text).map_err(|e| ConfigError {
            file: self.origin.to_string(),
            line: e.span().map(|s| line_of(self.text, s.start)),
            field: e
                .span()
                .map(|s| field_at(self.text, s.start))
                .unwrap_or_default(),
            message: e.message().to_string(),
        })
    }

    /// A mistake in the value at `span`.
    pub(super) fn at(
        &self,
        span: std::ops::Range<usize>,
        field: String,
        message: String,
    ) -> ConfigError {
        ConfigError {
            file: self.origin.to_string(),
            line: Some(line_of(self.text, span.start)),
            field,
            message,
        }
    }

    /// A dataset name pattern, upper case; a value that is none names its
    /// place.
    pub(super) fn pattern(
        &self,
        value: &Spanned<String>,
        field: String,
    ) -> Result<String, ConfigError> {
        let pattern = value.get_ref().to_ascii_uppercase();
        if is_name_pattern(&pattern) {
            Ok(pattern)
        } else {
            Err(self.at(
                value.span(),
                field,
                format!(
                    "{:?} is not a dataset name pattern (letters, digits, . * ** %)",
                    value.get_ref()
                ),
            ))
        }
    }

    /// Refuses a backend name that is not a bare TOML key of at most
    /// [`MAX_BACKEND_NAME`] characters: the name is also a file's (a
    /// mirror's place in the change directory), a metric's label and a word
    /// of admin commands, where `/`, `..` or a space would reach another
    /// file or split a command.
    fn backend_name(&self, name: &str) -> Result<(), ConfigError> {
        let bare = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if bare && !name.is_empty() && name.len() <= MAX_BACKEND_NAME {
            return Ok(());
        }
        Err(ConfigError {
            file: self.origin.to_string(),
            line: self
                .text
                .lines()
                .position(|l| l.trim_start().starts_with("[backends.") && l.contains(name))
                .map(|i| i + 1),
            field: format!("backends.{name}"),
            message: format!(
                "{name:?} is not a backend name: letters, digits, '-' and '_' only, at most {MAX_BACKEND_NAME} characters (it also names the backend's files, metrics and admin commands)"
            ),
        })
    }

    /// A mistake in `field`, placed on the first line that names its key.
    pub(super) fn near(&self, field: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.origin.to_string(),
            line: self
                .text
                .lines()
                .position(|l| {
                    l.trim_start()
                        .starts_with(field.rsplit('.').next().unwrap_or(field))
                })
                .map(|i| i + 1),
            field: field.to_string(),
            message,
        }
    }

    /// `[server]`: its limits checked, `data_dir` made absolute; and the
    /// listen address.
    pub fn resolve_server(
        &self,
        file: &ConfigFile,
    ) -> Result<(ServerConfig, SocketAddr), ConfigError> {
        let listen: SocketAddr = file.server.listen.parse().map_err(|_| {
            self.near(
                "server.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:2387",
                    file.server.listen
                ),
            )
        })?;
        if file.server.max_frame < 1024 || file.server.max_frame > 1 << 28 {
            return Err(self.near(
                "server.max_frame",
                "must be between 1024 and 268435456 bytes (256 MiB)".into(),
            ));
        }
        if file.server.max_batch == 0 {
            return Err(self.near("server.max_batch", "must be at least 1".into()));
        }
        let positive = [
            ("server.max_connections", file.server.max_connections as u64),
            (
                "server.max_connections_per_address",
                file.server.max_connections_per_address as u64,
            ),
            ("server.max_handshakes", file.server.max_handshakes as u64),
            (
                "server.max_handshakes_per_address",
                file.server.max_handshakes_per_address as u64,
            ),
            (
                "server.max_open_per_connection",
                file.server.max_open_per_connection as u64,
            ),
            ("server.max_strings", u64::from(file.server.max_strings)),
            ("server.max_record", u64::from(file.server.max_record)),
            (
                "server.max_unit_records",
                file.server.max_unit_records as u64,
            ),
            ("server.max_unit_mb", file.server.max_unit_mb),
            (
                "server.handshake_timeout_secs",
                file.server.handshake_timeout_secs,
            ),
            (
                "server.request_timeout_secs",
                file.server.request_timeout_secs,
            ),
        ];
        if file.server.auth_failure_delay_ms > MAX_AUTH_FAILURE_DELAY_MS {
            return Err(self.near(
                "server.auth_failure_delay_ms",
                format!(
                    "at most {MAX_AUTH_FAILURE_DELAY_MS} (10 s), not {}: a refused client would wait past its own connect timeout and retry",
                    file.server.auth_failure_delay_ms
                ),
            ));
        }
        if file.server.idle_poll_us > MAX_IDLE_POLL_US {
            return Err(self.near(
                "server.idle_poll_us",
                format!(
                    "at most {MAX_IDLE_POLL_US} (10 ms), not {}: polling longer keeps a core busy long after the last request and gains nothing (0 turns polling off)",
                    file.server.idle_poll_us
                ),
            ));
        }
        if file.server.frame_memory_mb == Some(0) {
            return Err(self.near(
                "server.frame_memory_mb",
                "must be at least 1 (or left out: a sixteenth of the machine's memory)".into(),
            ));
        }
        if file.server.units_memory_mb == Some(0) {
            return Err(self.near(
                "server.units_memory_mb",
                "must be at least 1 (or left out: an eighth of the machine's memory)".into(),
            ));
        }
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(self.near(field, "must be at least 1".into()));
        }
        if file.server.max_record > vsam_protocol::MAX_RECORD_LENGTH
            || file.server.max_record > file.server.max_frame.saturating_sub(1024)
        {
            return Err(self.near(
                "server.max_record",
                format!(
                    "a record must fit in a frame: at most {} bytes, and 1 KiB less than max_frame",
                    vsam_protocol::MAX_RECORD_LENGTH
                ),
            ));
        }
        let mut server = file.server.clone();
        if server.data_dir.is_relative() {
            server.data_dir = self.base.join(&server.data_dir);
        }

        Ok((server, listen))
    }

    /// `[metrics]`: its address, if set.
    pub fn resolve_metrics(
        &self,
        file: &ConfigFile,
    ) -> Result<(Option<SocketAddr>, Vec<String>), ConfigError> {
        let listen = file
            .metrics
            .listen
            .as_ref()
            .map(|address| {
                address.parse().map_err(|_| {
                    self.near(
                        "metrics.listen",
                        format!("{address:?} is not an address like 127.0.0.1:9387"),
                    )
                })
            })
            .transpose()?;
        let mut datasets = Vec::new();
        for pattern in &file.metrics.datasets {
            let upper = pattern.to_ascii_uppercase();
            if !super::is_name_pattern(&upper) {
                return Err(self.near(
                    "metrics.datasets",
                    format!("{pattern:?} is not a dataset name pattern (qualifiers with * ** %, e.g. \"PROD.CUST.*\")"),
                ));
            }
            datasets.push(upper);
        }
        Ok((listen, datasets))
    }

    /// `[admin]`: its address, and its token file (in the data dir unless
    /// named).
    pub fn resolve_admin(
        &self,
        file: &ConfigFile,
        data_dir: &Path,
    ) -> Result<AdminSettings, ConfigError> {
        let admin = AdminSettings {
            enabled: file.admin.enabled,
            listen: file
                .admin
                .listen
                .as_ref()
                .map(|address| {
                    address.parse().map_err(|_| {
                        self.near(
                            "admin.listen",
                            format!("{address:?} is not an address like 127.0.0.1:2388"),
                        )
                    })
                })
                .transpose()?,
            token_file: match &file.admin.token_file {
                Some(path) if path.is_relative() => self.base.join(path),
                Some(path) => path.clone(),
                None => data_dir.join("admin.token"),
            },
            watch_files: file.admin.watch_files,
        };

        Ok(admin)
    }

    /// `[plugins.*]`: a builtin by name, or a file relative to the config.
    pub fn resolve_plugins(
        &self,
        file: &ConfigFile,
    ) -> Result<BTreeMap<String, PluginSource>, ConfigError> {
        let mut plugins = BTreeMap::new();
        for (name, plugin) in &file.plugins {
            let path = plugin.path.get_ref();
            let source = match path.strip_prefix("builtin:") {
                Some(builtin) if crate::runtime::builtin::names().contains(&builtin) => {
                    PluginSource::Builtin(builtin.to_string())
                }
                Some(builtin) => {
                    return Err(self.at(
                        plugin.path.span(),
                        format!("plugins.{name}.path"),
                        format!(
                            "there is no builtin plugin {builtin:?}; builtins are {}",
                            crate::runtime::builtin::names().join(", ")
                        ),
                    ));
                }
                None => PluginSource::File(self.base.join(path)),
            };
            plugins.insert(name.clone(), source);
        }

        Ok(plugins)
    }

    /// `[backends.*]`: each names a configured plugin; its storage resolved
    /// under the data dir.
    pub fn resolve_backends(
        &self,
        file: &ConfigFile,
        plugins: &BTreeMap<String, PluginSource>,
        data_dir: &Path,
    ) -> Result<BTreeMap<String, BackendSettings>, ConfigError> {
        let mut backends = BTreeMap::new();
        for (name, backend) in &file.backends {
            self.backend_name(name)?;
            let plugin = backend.plugin.get_ref();
            if !plugins.contains_key(plugin) {
                let cure = if crate::runtime::builtin::names().contains(&plugin.as_str()) {
                    format!(
                        "add [plugins.{plugin}] with path = \"builtin:{plugin}\" (a configuration file declares every plugin it uses, the builtin ones too)"
                    )
                } else {
                    format!(
                        "add a [plugins.{plugin}] section (path = a component file, or one of the builtins: {})",
                        crate::runtime::builtin::names()
                            .map(|b| format!("builtin:{b}"))
                            .join(", ")
                    )
                };
                return Err(self.at(
                    backend.plugin.span(),
                    format!("backends.{name}.plugin"),
                    format!(
                        "no plugin named {plugin:?}; {cure}; configured plugins: {}",
                        key_list(plugins)
                    ),
                ));
            }
            if backend.call_timeout_ms == 0
                || backend.memory_limit_mb == 0
                || backend.memory_limit_mb > 4096
            {
                return Err(self.near(
                    &format!("backends.{name}"),
                    "call_timeout_ms must be above 0 and memory_limit_mb between 1 and 4096".into(),
                ));
            }
            let database = backend
                .database
                .as_ref()
                .map(|url| {
                    DatabaseUrl::parse(url.get_ref(), data_dir)
                        .map_err(|m| self.at(url.span(), format!("backends.{name}.database"), m))
                })
                .transpose()?;
            let bucket = backend
                .bucket
                .as_ref()
                .map(|bucket| {
                    bucket
                        .get_ref()
                        .resolve(data_dir)
                        .map_err(|m| self.at(bucket.span(), format!("backends.{name}.bucket"), m))
                })
                .transpose()?;
            let directory = backend
                .directory
                .as_ref()
                .map(|d| {
                    crate::paths::under_data_dir(data_dir, d)
                        .map_err(|m| self.near(&format!("backends.{name}.directory"), m))
                })
                .transpose()?;
            if backend.readers > MAX_READERS {
                return Err(self.near(
                    &format!("backends.{name}.readers"),
                    format!("at most {MAX_READERS} readers, not {}", backend.readers),
                ));
            }
            if backend.readers > 0 && database.is_none() {
                return Err(self.near(
                &format!("backends.{name}.readers"),
                "readers need the records in a database (`database = ...`): a plugin over files keeps them in its one instance".into(),
            ));
            }
            backends.insert(
                name.clone(),
                BackendSettings {
                    database,
                    bucket,
                    name: name.clone(),
                    plugin: plugin.clone(),
                    directory,
                    log: backend.log,
                    params: backend
                        .params
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    call_timeout_ms: backend.call_timeout_ms,
                    memory_limit: backend.memory_limit_mb << 20,
                    readers: backend.readers,
                    storage_faults: None,
                },
            );
        }
        Ok(backends)
    }

    /// The backend a section names, if it is configured.
    pub(super) fn known_backend(
        &self,
        backends: &BTreeMap<String, BackendSettings>,
        name: &Spanned<String>,
        field: String,
    ) -> Result<String, ConfigError> {
        if backends.contains_key(name.get_ref()) {
            Ok(name.get_ref().clone())
        } else {
            let embedded = super::EMBEDDED_BACKENDS.contains(&name.get_ref().as_str());
            Err(self.at(
                name.span(),
                field,
                format!(
                    "no backend named {:?}; configured backends: {}{}",
                    name.get_ref(),
                    key_list(backends),
                    if embedded {
                        " (a configuration file replaces the embedded default: declare the backends sqlite, csv and objects it had, as examples/vsamrd.toml does)"
                    } else {
                        ""
                    }
                ),
            ))
        }
    }

    /// `[routing]`: the rules in order, and the default backend.
    pub fn resolve_routing(
        &self,
        file: &ConfigFile,
        backends: &BTreeMap<String, BackendSettings>,
    ) -> Result<Routes, ConfigError> {
        let mut rules = Vec::new();
        for (i, rule) in file.routing.rules.iter().enumerate() {
            let backend = self.known_backend(
                backends,
                &rule.backend,
                format!("routing.rules[{i}].backend"),
            )?;
            let pattern = self.pattern(&rule.pattern, format!("routing.rules[{i}].pattern"))?;
            rules.push((pattern, backend));
        }
        let default_backend = file
            .routing
            .default
            .as_ref()
            .map(|d| self.known_backend(backends, d, "routing.default".into()))
            .transpose()?;

        Ok((rules, default_backend))
    }

    /// `[[datasets]]`: each checked as a DEFINE would be, routed when it
    /// names no backend.
    pub fn resolve_datasets(
        &self,
        file: &ConfigFile,
        backends: &BTreeMap<String, BackendSettings>,
        rules: &[(String, String)],
        default_backend: Option<&str>,
    ) -> Result<Vec<DatasetDef>, ConfigError> {
        let mut datasets: Vec<DatasetDef> = Vec::new();
        for (i, ds) in file.datasets.iter().enumerate() {
            let field = |f: &str| format!("datasets[{i}].{f}");
            let name = ds.name.get_ref().to_ascii_uppercase();
            check_dataset_name(&name).map_err(|m| self.at(ds.name.span(), field("name"), m))?;
            if datasets.iter().any(|d| d.name == name) {
                return Err(self.at(
                    ds.name.span(),
                    field("name"),
                    format!("{name} is defined twice"),
                ));
            }
            let organization: Organization = ds
                .organization
                .get_ref()
                .parse()
                .map_err(|m| self.at(ds.organization.span(), field("organization"), m))?;
            let codepage = match &ds.codepage {
                Some(cp) => cp
                    .get_ref()
                    .parse::<CodePage>()
                    .map_err(|m| self.at(cp.span(), field("codepage"), m))?,
                None => CodePage::Cp037,
            };
            let backend = match &ds.backend {
                Some(b) => self.known_backend(backends, b, field("backend"))?,
                None => crate::catalog::route(&name, rules, default_backend).ok_or_else(|| {
                    self.at(
                        ds.name.span(),
                        field("backend"),
                        format!("no routing rule matches {name} and there is no routing.default"),
                    )
                })?,
            };
            let def = DatasetDef {
                name,
                organization,
                key_offset: ds.key_offset,
                key_length: ds.key_length,
                min_record: ds
                    .min_record_size
                    // An RRDS's slots are its record size; a VRRDS's
                    // records, as others', 1 byte or more.
                    .unwrap_or(if organization == Organization::Rrds {
                        *ds.record_size.get_ref()
                    } else {
                        1
                    }),
                max_record: *ds.record_size.get_ref(),
                codepage,
                backend,
                layout: match &ds.layout {
                    Some(path) => Some(
                        std::fs::read_to_string(self.base.join(path.get_ref())).map_err(|e| {
                            self.at(
                                path.span(),
                                field("layout"),
                                format!("cannot read copybook {}: {e}", path.get_ref()),
                            )
                        })?,
                    ),
                    None => None,
                },
                relation: None,
            };
            def.validate()
                .map_err(|m| self.at(ds.record_size.span(), format!("datasets[{i}]"), m))?;
            datasets.push(def);
        }

        Ok(datasets)
    }

    /// `[[units]]`: the rules of units of work by dataset name.
    pub fn resolve_units(&self, file: &ConfigFile) -> Result<Vec<UnitRule>, ConfigError> {
        let mut rules = Vec::new();
        for (i, rule) in file.units.iter().enumerate() {
            let pattern = self.pattern(&rule.datasets, format!("units[{i}].datasets"))?;
            rules.push(UnitRule {
                datasets: pattern,
                recoverable: rule.recoverable,
                checkpoint_records: rule.checkpoint_records,
                checkpoint_after: (rule.checkpoint_ms > 0)
                    .then(|| std::time::Duration::from_millis(rule.checkpoint_ms)),
            });
        }
        Ok(rules)
    }

    /// `[tls]`, `[[clients]]` and `[[access]]`.
    pub fn resolve_security(
        &self,
        file: &ConfigFile,
    ) -> Result<(Option<TlsSettings>, AccessPolicy), ConfigError> {
        let section_error = |(span, field, message): security::SectionError| match span {
            Some(span) => self.at(span, field, message),
            None => self.near(&field, message),
        };
        let tls = file
            .tls
            .as_ref()
            .map(|tls| {
                security::resolve_tls(tls.get_ref(), self.base).map_err(|(span, field, message)| {
                    section_error((span.or(Some(tls.span())), field, message))
                })
            })
            .transpose()?;
        let access = security::resolve_access(&file.clients, &file.access, tls.as_ref())
            .map_err(section_error)?;

        Ok((tls, access))
    }
}
