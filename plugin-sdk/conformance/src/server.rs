//! Starting a vsamrd in-process with one plugin under test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vsam_host::RunningServer;
use vsam_host::config::Config;

/// A server serving one plugin as backend `under-test`, on a free port,
/// with a fresh data directory.
pub struct ServerUnderTest {
    /// The running server.
    pub server: RunningServer,
    /// Its address.
    pub address: String,
    /// Its data directory (kept until this value is dropped).
    pub data_dir: tempfile::TempDir,
}

/// What the backend under test is granted besides a directory of its own.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// A database: `sqlite:PATH` (relative to the fresh data directory) or
    /// a PostgreSQL URL.
    pub database: Option<String>,
    /// A bucket, as the TOML inline table of the backend's `bucket`
    /// setting: `{ directory = "objects" }` (under the fresh data
    /// directory) or `{ name = "vsam", endpoint = "http://...", ... }`.
    pub bucket: Option<String>,
    /// Reader instances besides the writer (they need a database).
    pub readers: usize,
}

/// Starts vsamrd with `plugin` (a .wasm component file) as the only
/// backend, granted a directory and `grants`, with `params` for its `init`.
pub async fn start_server_for_plugin(
    plugin: &Path,
    params: &BTreeMap<String, String>,
    grants: &Grants,
) -> anyhow::Result<ServerUnderTest> {
    let data_dir = tempfile::tempdir()?;
    let config = config_for_plugin(data_dir.path(), plugin, params, grants)?;
    let server = RunningServer::start_with(&config, BTreeMap::new()).await?;
    let address = server.addr.to_string();
    Ok(ServerUnderTest {
        server,
        address,
        data_dir,
    })
}

/// The configuration of a server whose only backend, `under-test`, is
/// `plugin` granted a directory and `grants`, with its data in `data_dir`.
pub(crate) fn config_for_plugin(
    data_dir: &Path,
    plugin: &Path,
    params: &BTreeMap<String, String>,
    grants: &Grants,
) -> anyhow::Result<Config> {
    let params_toml: String = params
        .iter()
        .map(|(k, v)| format!("{} = {}\n", toml_string(k), toml_string(v)))
        .collect();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = {data}

[plugins.under-test]
path = {plugin}

[backends.under-test]
plugin = "under-test"
directory = "under-test"
readers = {readers}
# The kit checks answers, not time limits: a call (a commit of a large
# unit, on a machine busy with other tests) gets ample time.
call_timeout_ms = 10000
{database}
{bucket}

[backends.under-test.params]
{params_toml}
[routing]
default = "under-test"
"#,
        data = toml_string(&data_dir.display().to_string()),
        plugin = toml_string(&absolute(plugin).display().to_string()),
        readers = grants.readers,
        database = grants
            .database
            .as_deref()
            .map(|url| format!("database = {}", toml_string(url)))
            .unwrap_or_default(),
        bucket = grants
            .bucket
            .as_deref()
            .map(|table| format!("bucket = {table}"))
            .unwrap_or_default(),
    );
    Ok(Config::parse(&text, "<conformance>", Path::new("."))?)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn toml_string(text: &str) -> String {
    toml_quote(text)
}

fn toml_quote(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}
