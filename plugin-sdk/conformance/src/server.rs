//! Starting a vsamrd in-process with one plugin under test.

use crate::subject::{Grants, Native, Subject};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vsam_host::RunningServer;
use vsam_host::config::Config;
use vsam_host::runtime::{BackendHandle, VersionInfo};

/// The name of the backend under test.
pub(crate) const BACKEND: &str = "under-test";

/// A server serving one plugin as backend `under-test`, on a free port,
/// with a fresh data directory.
pub struct ServerUnderTest {
    /// The running server.
    pub server: RunningServer,
    /// Its address.
    pub address: String,
    /// Its data directory (kept until this value is dropped).
    pub data_dir: tempfile::TempDir,
    config: Config,
    native: Option<Native>,
}

impl ServerUnderTest {
    /// Starts vsamrd with the subject's plugin as its only backend, on a
    /// fresh data directory.
    pub async fn start(subject: &Subject) -> anyhow::Result<Self> {
        let Some(native) = &subject.native else {
            let data_dir = tempfile::tempdir()?;
            if let Some(compiled) = &subject.compiled {
                // The server's cache of compiled plugins is the run's.
                std::os::unix::fs::symlink(compiled, data_dir.path().join("plugin-cache"))?;
            }
            return start_in(data_dir, &subject.plugin, &subject.params, &subject.grants).await;
        };
        let data_dir = tempfile::tempdir()?;
        let config = Config::parse(
            &format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {}\n",
                toml_string(&data_dir.path().display().to_string())
            ),
            "<conformance>",
            Path::new("."),
        )?;
        let server =
            RunningServer::start_with(&config, native_backend(native, data_dir.path())?).await?;
        Ok(ServerUnderTest {
            address: server.addr.to_string(),
            server,
            data_dir,
            config,
            native: Some(native.clone()),
        })
    }

    /// Stops the server (it closes what clients left open) and starts a
    /// new one on the same data directory and storage, as an operator's
    /// restart does. The new server listens on another port.
    pub async fn restart(self) -> anyhow::Result<Self> {
        let Self {
            server,
            data_dir,
            config,
            native,
            ..
        } = self;
        // The old server first: it holds the storage's locks until it stops.
        server.stop().await;
        let extra = match &native {
            Some(native) => native_backend(native, data_dir.path())?,
            None => BTreeMap::new(),
        };
        let server = RunningServer::start_with(&config, extra).await?;
        Ok(Self {
            address: server.addr.to_string(),
            server,
            data_dir,
            config,
            native,
        })
    }
}

/// Backend `under-test` served by a native store whose files live in
/// `store` under the data directory.
fn native_backend(
    native: &Native,
    data_dir: &Path,
) -> anyhow::Result<BTreeMap<String, BackendHandle>> {
    let directory = data_dir.join("under-test");
    std::fs::create_dir_all(&directory)?;
    let handle = BackendHandle::spawn(
        "under-test",
        VersionInfo::native("under-test"),
        (native.0)(&directory),
        Vec::new(),
    )?;
    Ok(BTreeMap::from([("under-test".to_string(), handle)]))
}

/// Starts vsamrd with `plugin` (a .wasm component file) as the only
/// backend, granted a directory and `grants`, with `params` for its `init`.
pub async fn start_server_for_plugin(
    plugin: &Path,
    params: &BTreeMap<String, String>,
    grants: &Grants,
) -> anyhow::Result<ServerUnderTest> {
    start_in(tempfile::tempdir()?, plugin, params, grants).await
}

async fn start_in(
    data_dir: tempfile::TempDir,
    plugin: &Path,
    params: &BTreeMap<String, String>,
    grants: &Grants,
) -> anyhow::Result<ServerUnderTest> {
    let config = config_for_plugin(data_dir.path(), plugin, params, grants)?;
    let server = RunningServer::start_with(&config, BTreeMap::new()).await?;
    let address = server.addr.to_string();
    Ok(ServerUnderTest {
        server,
        address,
        data_dir,
        config,
        native: None,
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
