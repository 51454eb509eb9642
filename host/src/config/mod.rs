//! The TOML configuration of vsamrd, and the embedded default used when no
//! file is given.
//!
//! Every mistake is reported with the file, the line and the field, and
//! vsamrd refuses to start on it: a server that guesses around a bad config
//! would route records to the wrong place.

mod mirrors;
mod resolve;
mod secrets;
mod security;

use crate::catalog::DatasetDef;
use crate::runtime::objects::{BucketSpec, S3Spec};
pub use crate::runtime::settings::{BackendSettings, PluginSource};
use crate::runtime::sql::DatabaseUrl;
use crate::security::{AccessPolicy, TlsSettings};
pub use mirrors::{
    ChangeSettings, ChangesConfig, MirrorMode, MirrorRule, MirrorRuleConfig, OnFull, OnUnavailable,
    StreamSettings, StreamTable,
};
use resolve::Source;
pub use security::{AccessConfig, ClientConfig, TlsConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// `[server]`: where to listen and the limits every client lives with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address, `127.0.0.1:2387` by default.
    pub listen: String,
    /// Directory for the catalog, the plugin cache and backends' directories.
    pub data_dir: PathBuf,
    /// Largest frame accepted, in bytes.
    pub max_frame: u32,
    /// Memory for frames being received, shared by all connections, in
    /// MiB (frames over 64 KiB count); unset: a sixteenth of the machine's
    /// memory, between 64 MiB and 2 GiB.
    pub frame_memory_mb: Option<u64>,
    /// Most records one batched GET returns.
    pub max_batch: u32,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most simultaneous connections from one client address (one host
    /// cannot take every connection).
    pub max_connections_per_address: usize,
    /// Most connections still in the handshake (TLS, HELLO), apart from
    /// `max_connections`: sockets that never say HELLO cannot lock out
    /// clients that do.
    pub max_handshakes: usize,
    /// Most connections in the handshake from one client address.
    pub max_handshakes_per_address: usize,
    /// Most datasets one connection may hold open.
    pub max_open_per_connection: usize,
    /// Most strings (positions) per open dataset.
    pub max_strings: u16,
    /// Largest record length a DEFINE may ask for.
    pub max_record: u32,
    /// Most records one unit of work may change before it is committed
    /// (`commit` durability keeps them in memory until then).
    pub max_unit_records: usize,
    /// Most MiB of records one unit of work may hold before it is
    /// committed.
    pub max_unit_mb: u64,
    /// MiB of changed records the units of work of all connections may
    /// hold together; unset: an eighth of the machine's memory, between
    /// 256 MiB and 16 GiB.
    pub units_memory_mb: Option<u64>,
    /// Seconds a unit of work may hold the records it changed before it
    /// is rolled back, so that a stuck program cannot hold them from
    /// everyone forever (0: no limit).
    pub max_unit_secs: u64,
    /// Seconds a new connection gets for TLS and HELLO.
    pub handshake_timeout_secs: u64,
    /// Milliseconds a token that names no client (or not the
    /// certificate's) or a wrong admin token waits for its answer,
    /// holding its place among the handshakes: with
    /// `max_handshakes_per_address`, it bounds how fast one address can
    /// guess a token (0: answer at once).
    pub auth_failure_delay_ms: u64,
    /// Seconds a connection may stay without a request before it is
    /// closed (0: never; its datasets are closed with it).
    pub idle_timeout_secs: u64,
    /// Seconds a request may take to arrive once its first byte came, and
    /// an answer to be taken by the client: a slow client cannot pin a
    /// connection (slowloris).
    pub request_timeout_secs: u64,
    /// Microseconds a runtime thread keeps polling for the next request
    /// (or a database's answer) after a request before it sleeps: a
    /// sleeping CPU costs more to wake than a request takes (0: sleep at
    /// once, for machines whose cores are overcommitted).
    pub idle_poll_us: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: format!("127.0.0.1:{}", vsam_protocol::DEFAULT_PORT),
            data_dir: PathBuf::from("vsam-data"),
            max_frame: vsam_protocol::DEFAULT_MAX_FRAME,
            frame_memory_mb: None,
            max_batch: 10_000,
            max_connections: 1024,
            max_connections_per_address: 256,
            max_handshakes: 256,
            max_handshakes_per_address: 64,
            max_open_per_connection: 256,
            max_strings: 255,
            max_record: vsam_protocol::MAX_RECORD_LENGTH,
            max_unit_records: 1_000_000,
            max_unit_mb: 256,
            units_memory_mb: None,
            max_unit_secs: 0,
            handshake_timeout_secs: 10,
            auth_failure_delay_ms: 1000,
            idle_timeout_secs: 3600,
            request_timeout_secs: 30,
            idle_poll_us: 200,
        }
    }
}

/// `[admin]`: the operator's interface (`vsamr admin`): reload, status,
/// plugin versions, migrations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Whether vsamrd listens for admin requests at all.
    pub enabled: bool,
    /// Listen address, `127.0.0.1:2388` by default (loopback only: the
    /// interface can swap plugins and move datasets); a server listening on
    /// port 0 (any free port) gets a free admin port too.
    pub listen: Option<String>,
    /// File holding the token clients must send; created with a random
    /// token (readable by its owner only) if missing. Default:
    /// `admin.token` in the data dir.
    pub token_file: Option<PathBuf>,
    /// Reload when the config file or a plugin file changes (default true).
    pub watch_files: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            token_file: None,
            watch_files: true,
        }
    }
}

/// The admin interface, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Whether it listens at all.
    pub enabled: bool,
    /// Where to listen, if configured (else see [`AdminSettings::address`]).
    pub listen: Option<SocketAddr>,
    /// The token file.
    pub token_file: PathBuf,
    /// Reload on file changes.
    pub watch_files: bool,
}

/// `[plugins.NAME]`: a plugin's code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// `builtin:NAME` or a path to a `.wasm` component (relative to the
    /// config file).
    pub path: Spanned<String>,
}

/// `[backends.NAME]`: a plugin, its parameters and its capabilities.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Name of a `[plugins.NAME]` entry.
    pub plugin: Spanned<String>,
    /// Capability: a directory the plugin may use, seen by it as `/data`
    /// (relative paths are under the data dir). No directory, no files.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Capability: a SQL database the plugin may use, `sqlite:PATH` (relative
    /// paths are under the data dir) or `postgres://USER:PASSWORD@HOST/DB`.
    #[serde(default)]
    pub database: Option<Spanned<String>>,
    /// Capability: an object-store bucket the plugin may use.
    #[serde(default)]
    pub bucket: Option<Spanned<BucketConfig>>,
    /// Capability: the plugin's log lines go to vsamrd's log (default true).
    #[serde(default = "default_true")]
    pub log: bool,
    /// Parameters handed to the plugin's `init`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Longest a single plugin call may run, in milliseconds.
    #[serde(default = "default_call_timeout")]
    pub call_timeout_ms: u64,
    /// Most linear memory a plugin instance may use, in MiB.
    #[serde(default = "default_memory_limit")]
    pub memory_limit_mb: u64,
    /// Extra plugin instances, each with its own database connection, that
    /// serve GETs and browses in parallel (needs `database`: only for
    /// plugins that keep records in the database, like the SQL plugin).
    #[serde(default)]
    pub readers: usize,
}

/// `[backends.NAME.bucket]`: a local directory (`directory = "objects"`)
/// or an S3-compatible bucket (`name = ...`, with `endpoint`, `region`,
/// credentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// A local directory standing in for a bucket (relative paths are under
    /// the data dir).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// The S3 bucket's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The S3-compatible service's URL (AWS when unset).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region (else `AWS_REGION`, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// Virtual-hosted-style requests (`BUCKET.host`) instead of path-style.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Access key id (else `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key (else `AWS_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub secret_access_key: Option<String>,
}

impl BucketConfig {
    /// The bucket this table describes, or what is wrong with it.
    fn resolve(&self, data_dir: &Path) -> Result<BucketSpec, String> {
        let s3_fields = self.name.is_some()
            || self.endpoint.is_some()
            || self.region.is_some()
            || self.virtual_hosted_style
            || self.access_key_id.is_some()
            || self.secret_access_key.is_some();
        match (&self.directory, &self.name) {
            (Some(_), _) if s3_fields => Err(
                "a bucket is either a local `directory` or an S3 bucket `name` (with endpoint, region, credentials), not both".into(),
            ),
            (Some(dir), _) => crate::paths::under_data_dir(data_dir, dir).map(BucketSpec::Directory),
            (None, None) => Err(
                "give `directory = \"objects\"` (a local directory) or `name = \"BUCKET\"` (an S3 bucket)".into(),
            ),
            (None, Some(name)) => {
                if let Some(endpoint) = &self.endpoint
                    && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                {
                    return Err(format!(
                        "endpoint {endpoint:?} is not a URL like http://127.0.0.1:8333"
                    ));
                }
                if self.access_key_id.is_some() != self.secret_access_key.is_some() {
                    return Err("give both access_key_id and secret_access_key, or neither (then AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are used)".into());
                }
                Ok(BucketSpec::S3(S3Spec {
                    bucket: name.clone(),
                    endpoint: self.endpoint.clone(),
                    region: self.region.clone(),
                    virtual_hosted_style: self.virtual_hosted_style,
                    access_key_id: self.access_key_id.clone(),
                    secret_access_key: self.secret_access_key.clone(),
                }))
            }
        }
    }
}

/// Longest `[server] idle_poll_us`: 10 ms.
pub const MAX_IDLE_POLL_US: u64 = 10_000;

/// Longest `[server] auth_failure_delay_ms`: past it a refused client
/// would wait longer than most clients' connect timeouts.
pub const MAX_AUTH_FAILURE_DELAY_MS: u64 = 10_000;

/// Most reader instances a backend may have (its database pool holds one
/// connection per instance: 16).
pub const MAX_READERS: usize = 15;

fn default_true() -> bool {
    true
}

fn default_call_timeout() -> u64 {
    5_000
}

fn default_memory_limit() -> u64 {
    1_024
}

/// One routing rule: datasets whose name matches go to the backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Name pattern: `*` matches within a qualifier, `**` across
    /// qualifiers, `%` one character.
    pub pattern: Spanned<String>,
    /// Backend name.
    pub backend: Spanned<String>,
}

/// `[routing]`: which backend a newly defined dataset goes to.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Rules in order; the first match wins.
    #[serde(default)]
    pub rules: Vec<RouteRule>,
    /// Backend for names no rule matches.
    #[serde(default)]
    pub default: Option<Spanned<String>>,
}

/// `[[datasets]]`: a dataset defined by the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset name.
    pub name: Spanned<String>,
    /// `ksds`, `esds` or `rrds`.
    pub organization: Spanned<String>,
    /// Key offset (KSDS).
    #[serde(default)]
    pub key_offset: u32,
    /// Key length (KSDS).
    #[serde(default)]
    pub key_length: u16,
    /// Largest record length.
    pub record_size: Spanned<u32>,
    /// Smallest record length (default 1; the slot size for RRDS).
    #[serde(default)]
    pub min_record_size: Option<u32>,
    /// Code page (default cp037).
    #[serde(default)]
    pub codepage: Option<Spanned<String>>,
    /// Backend (default: by routing).
    #[serde(default)]
    pub backend: Option<Spanned<String>>,
    /// COBOL copybook describing the record (relative to the config file).
    #[serde(default)]
    pub layout: Option<Spanned<String>>,
}

/// `[[units]]`: how the units of work of matching datasets behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRuleConfig {
    /// Dataset name pattern (`*` within a qualifier, `**` across, `%`).
    pub datasets: Spanned<String>,
    /// Every open for output or update is in `commit` durability, asked
    /// for or not (CICS RECOVERY, DFSMStvs LOG(UNDO)).
    #[serde(default)]
    pub recoverable: bool,
    /// Commit a connection's unit after this many changes (0: never).
    #[serde(default)]
    pub checkpoint_records: u32,
    /// Commit a connection's unit at its first request this many ms after
    /// its first change (0: never).
    #[serde(default)]
    pub checkpoint_ms: u64,
}

/// A `[[units]]` rule, resolved: what units of work are on datasets whose
/// names match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRule {
    /// The name pattern, upper case.
    pub datasets: String,
    /// Opens for output or update are in `commit` durability.
    pub recoverable: bool,
    /// Commit after this many changes (0: never).
    pub checkpoint_records: u32,
    /// Commit this long after the first change, at the next request.
    pub checkpoint_after: Option<std::time::Duration>,
}

impl UnitRule {
    /// The first of `rules` for dataset `name`.
    pub fn find<'a>(rules: &'a [UnitRule], name: &str) -> Option<&'a UnitRule> {
        rules
            .iter()
            .find(|rule| crate::catalog::matches(&rule.datasets, name))
    }
}

/// `[metrics]`: an HTTP listener for Prometheus (`/metrics`) and for load
/// balancers' and orchestrators' probes (`/healthz`, `/readyz`). Off
/// unless `listen` is set.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address, e.g. `127.0.0.1:9387`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Patterns of the datasets whose requests are also counted per
    /// dataset (`vsamrd_dataset_requests_total`); none by default, so
    /// that series stay few.
    #[serde(default)]
    pub datasets: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[server]`: listening, the data dir, limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[admin]`: the admin port and its token.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[metrics]`: the HTTP listener for Prometheus and probes.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[plugins.NAME]`: the components to load, by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    /// `[backends.NAME]`: a plugin with its settings and grants.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    /// `[routing]`: which backend a new dataset goes to.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// `[[datasets]]`: datasets defined at start.
    #[serde(default)]
    pub datasets: Vec<DatasetConfig>,
    /// `[tls]`: certificates for TLS on the protocol and admin ports.
    #[serde(default)]
    pub tls: Option<Spanned<TlsConfig>>,
    /// `[[clients]]`: who may connect, by certificate or token.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// `[[access]]`: what each client may do to which datasets.
    #[serde(default)]
    pub access: Vec<AccessConfig>,
    /// `[[units]]`: units of work and durability per dataset.
    #[serde(default)]
    pub units: Vec<UnitRuleConfig>,
    /// `[changes]`: the change log and the change stream.
    #[serde(default)]
    pub changes: ChangesConfig,
    /// `[[mirrors]]`: the backends that keep copies of datasets.
    #[serde(default)]
    pub mirrors: Vec<MirrorRuleConfig>,
}

/// A configuration error with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, or `<embedded default>`.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field, when known.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A checked configuration, ready to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`, with `data_dir` resolved.
    pub server: ServerConfig,
    /// Listen address, parsed.
    pub listen: SocketAddr,
    /// The admin interface.
    pub admin: AdminSettings,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Patterns of the datasets counted per dataset in `/metrics`.
    pub metrics_datasets: Vec<String>,
    /// Plugins by name.
    pub plugins: BTreeMap<String, PluginSource>,
    /// Backends by name.
    pub backends: BTreeMap<String, BackendSettings>,
    /// Routing rules `(pattern, backend)` in order.
    pub rules: Vec<(String, String)>,
    /// Default backend.
    pub default_backend: Option<String>,
    /// Datasets defined by the configuration.
    pub datasets: Vec<DatasetDef>,
    /// TLS on both ports, if configured.
    pub tls: Option<TlsSettings>,
    /// Clients and access rules.
    pub access: AccessPolicy,
    /// `[[units]]` rules, in order: the first match applies.
    pub units: Vec<UnitRule>,
    /// `[changes]`: the change log and the change stream.
    pub changes: ChangeSettings,
    /// `[[mirrors]]` rules, in order: the first match applies.
    pub mirrors: Vec<MirrorRule>,
    /// Where the configuration came from.
    pub origin: String,
}

impl AdminSettings {
    /// Where the admin interface listens for a server listening on
    /// `vsam_listen`: the configured address, else loopback port 2388, or
    /// a free port when the server itself takes a free port (tests, many
    /// servers on one machine).
    pub fn address(&self, vsam_listen: SocketAddr) -> Option<SocketAddr> {
        if !self.enabled {
            return None;
        }
        let default_port = match vsam_listen.port() {
            0 => 0,
            _ => vsam_protocol::admin::DEFAULT_ADMIN_PORT,
        };
        Some(
            self.listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port))),
        )
    }
}

/// The backends of [`EMBEDDED_DEFAULT`], which a configuration file does
/// not have unless it declares them: a rule naming one says so.
pub const EMBEDDED_BACKENDS: [&str; 3] = ["sqlite", "csv", "objects"];

/// The configuration used when vsamrd starts without `--config`: the SQL
/// plugin over an embedded SQLite file as backend `sqlite` (the default
/// route), the CSV plugin as backend `csv`, and the object-store plugin over
/// a local directory as backend `objects`, all under the data dir.
pub const EMBEDDED_DEFAULT: &str = r#"
[server]
listen = "127.0.0.1:2387"
data_dir = "vsam-data"

[plugins.sql]
path = "builtin:sql"

[plugins.csv]
path = "builtin:csv"

[plugins.s3]
path = "builtin:s3"

[backends.sqlite]
plugin = "sql"
database = "sqlite:sqlite/vsam.db"

[backends.csv]
plugin = "csv"
directory = "csv"

[backends.objects]
plugin = "s3"
bucket = { directory = "objects" }

[routing]
default = "sqlite"
"#;

/// The dotted name of the field whose value is at `offset`: its key, under
/// the nearest table header above it (`server.max_connections`), so a
/// value of the wrong type is named as every other mistake is.
fn field_at(text: &str, offset: usize) -> String {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let key = key.trim().trim_matches('"');
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|header| {
            header
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string()
        });
    match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            field: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// Moves the data dir (`--data-dir`), and with it every backend
    /// directory and SQLite file that the configuration put under it.
    pub fn move_data_dir(&mut self, data_dir: PathBuf) {
        let old = self.server.data_dir.clone();
        let rebase = |path: &Path| path.strip_prefix(&old).ok().map(|r| data_dir.join(r));
        for backend in self.backends.values_mut() {
            if let Some(moved) = backend.directory.as_deref().and_then(rebase) {
                backend.directory = Some(moved);
            }
            if let Some(DatabaseUrl::Sqlite(path)) = &mut backend.database
                && let Some(moved) = rebase(path)
            {
                *path = moved;
            }
            if let Some(BucketSpec::Directory(path)) = &mut backend.bucket
                && let Some(moved) = rebase(path)
            {
                *path = moved;
            }
        }
        if let Some(moved) = rebase(&self.admin.token_file) {
            self.admin.token_file = moved;
        }
        if let Some(moved) = rebase(&self.changes.directory) {
            self.changes.directory = moved;
        }
        self.server.data_dir = data_dir;
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Self {
        Self::parse(EMBEDDED_DEFAULT, "<embedded default>", Path::new("."))
            .expect("the embedded default configuration is valid")
    }

    /// Parses and checks config text; relative paths resolve against `base`.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let source = Source { text, origin, base };
        let file = source.decode()?;
        let (server, listen) = source.resolve_server(&file)?;
        let admin = source.resolve_admin(&file, &server.data_dir)?;
        let (metrics_listen, metrics_datasets) = source.resolve_metrics(&file)?;
        let plugins = source.resolve_plugins(&file)?;
        let backends = source.resolve_backends(&file, &plugins, &server.data_dir)?;
        let (rules, default_backend) = source.resolve_routing(&file, &backends)?;
        let datasets =
            source.resolve_datasets(&file, &backends, &rules, default_backend.as_deref())?;
        let (tls, access) = source.resolve_security(&file)?;
        let units = source.resolve_units(&file)?;
        let changes = source.resolve_changes(&file, &server.data_dir)?;
        let mirrors =
            source.resolve_mirrors(&file, &backends, &rules, default_backend.as_deref())?;
        Ok(Self {
            server,
            listen,
            admin,
            metrics_listen,
            metrics_datasets,
            tls,
            access,
            plugins,
            backends,
            rules,
            default_backend,
            datasets,
            units,
            changes,
            mirrors,
            origin: origin.to_string(),
        })
    }
}

/// True if `pattern` can match dataset names: letters, digits, the
/// national characters, dots and the wildcards `*`, `**` and `%`.
pub(crate) fn is_name_pattern(pattern: &str) -> bool {
    !pattern.is_empty()
        && pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*%.@#$-".contains(c))
}

fn key_list<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        "(none)".to_string()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests;
