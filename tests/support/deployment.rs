//! A vsamrd deployment in a directory, as an operator has one: a config
//! file, a plugin file beside it and a data dir, all of which a test can
//! change while the server runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use vsam_client::admin::{AdminClient, read_token};
use vsam_host::RunningServer;
use vsam_host::reload::ConfigSource;

/// The directory holding `vsamrd.toml`, `sql.wasm` and `data/`.
pub struct Deployment {
    /// The directory.
    pub dir: tempfile::TempDir,
    backend_extra: String,
    watch: bool,
    three_backends: bool,
}

/// The plugin files a deployment may run, by plugin name.
fn built(plugin: &str) -> &'static str {
    match plugin {
        "sql" => crate::SQL_WASM,
        "csv" => crate::CSV_WASM,
        "s3" => crate::S3_WASM,
        other => panic!("no plugin {other}"),
    }
}

impl Deployment {
    /// The SQL plugin (a copy of the built one) as backend `sqlite` over an
    /// SQLite file, the default route; `backend_extra` goes into the
    /// backend's section; `watch` turns the file watcher on.
    pub fn new(backend_extra: &str, watch: bool) -> Self {
        let deployment = Self {
            dir: tempfile::tempdir().unwrap(),
            backend_extra: backend_extra.to_string(),
            watch,
            three_backends: false,
        };
        std::fs::copy(crate::SQL_WASM, deployment.plugin_path()).unwrap();
        deployment.write_config(backend_extra, watch);
        deployment
    }

    /// Like the embedded default, with every plugin a file: backends
    /// `sqlite` (plugin `sql`), `csv` (plugin `csv`, a directory) and
    /// `objects` (plugin `s3`, a local-directory bucket).
    pub fn three_backends() -> Self {
        let deployment = Self {
            dir: tempfile::tempdir().unwrap(),
            backend_extra: String::new(),
            watch: false,
            three_backends: true,
        };
        for plugin in ["sql", "csv", "s3"] {
            std::fs::copy(
                built(plugin),
                deployment.dir.path().join(format!("{plugin}.wasm")),
            )
            .unwrap();
        }
        deployment.write_config("", false);
        deployment
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("vsamrd.toml")
    }

    /// The plugin file backend `sqlite` runs.
    pub fn plugin_path(&self) -> PathBuf {
        self.dir.path().join("sql.wasm")
    }

    /// Rewrites the config file with `backend_extra` in the backend.
    pub fn write_config(&self, backend_extra: &str, watch: bool) {
        self.write(&self.config_text(backend_extra, watch, ""));
    }

    /// Rewrites the config file with extra sections after the base ones.
    pub fn write_config_text(&self, sections: &str) {
        self.write(&self.config_text(&self.backend_extra, self.watch, sections));
    }

    fn config_text(&self, backend_extra: &str, watch: bool, sections: &str) -> String {
        let others = if self.three_backends {
            "[plugins.csv]\npath = \"csv.wasm\"\n[plugins.s3]\npath = \"s3.wasm\"\n\
             [backends.csv]\nplugin = \"csv\"\ndirectory = \"csv\"\n\
             [backends.objects]\nplugin = \"s3\"\nbucket = { directory = \"objects\" }\n"
        } else {
            ""
        };
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\
             [admin]\nwatch_files = {watch}\n\
             [plugins.sql]\npath = \"sql.wasm\"\n\
             [backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:vsam.db\"\n{backend_extra}\n\
             {others}{sections}\n[routing]\ndefault = \"sqlite\"\n"
        )
    }

    /// Writes a file the way deploy tools do: a new file renamed over it.
    fn write(&self, text: &str) {
        let tmp = self.dir.path().join(".vsamrd.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.config_path()).unwrap();
    }

    /// The SQL plugin with a custom section naming `version`: the same
    /// code as a new version (a new content hash).
    pub fn plugin_version_bytes(&self, version: u32) -> Vec<u8> {
        self.version_bytes("sql", version)
    }

    /// A built plugin with a custom section naming `version`.
    pub fn version_bytes(&self, plugin: &str, version: u32) -> Vec<u8> {
        let mut bytes = std::fs::read(built(plugin)).unwrap();
        let name = b"vsam-test-version";
        let payload = version.to_be_bytes();
        let size = 1 + name.len() + payload.len();
        bytes.push(0); // custom section
        bytes.push(size as u8);
        bytes.push(name.len() as u8);
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(&payload);
        bytes
    }

    /// Deploys `version` of the SQL plugin (renamed into place); its hash.
    pub fn write_plugin_version(&self, version: u32) -> String {
        self.deploy("sql", version)
    }

    /// Deploys `version` of `plugin` (`sql`, `csv`, `s3`); its hash.
    pub fn deploy(&self, plugin: &str, version: u32) -> String {
        let bytes = self.version_bytes(plugin, version);
        let tmp = self.dir.path().join(format!(".{plugin}.wasm.tmp"));
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(tmp, self.dir.path().join(format!("{plugin}.wasm"))).unwrap();
        vsam_host::runtime::wasm::content_hash(&bytes)
    }

    /// Starts vsamrd on this deployment's config file.
    pub async fn start(&self) -> RunningServer {
        RunningServer::start_source(ConfigSource::file(self.config_path()), BTreeMap::new())
            .await
            .unwrap()
    }

    /// An admin client of `server`, with the token from its data dir.
    pub async fn admin(&self, server: &RunningServer) -> AdminClient {
        let token = read_token(&self.dir.path().join("data/admin.token")).unwrap();
        let address = server.admin_addr.expect("admin enabled").to_string();
        AdminClient::connect(&address, token).await.unwrap()
    }
}

/// `bytes` with every `from` replaced by `to` (of the same length).
pub fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "same length keeps the binary's sizes");
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut found = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
            found += 1;
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "nothing to replace");
    out
}
