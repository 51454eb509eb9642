//! # vsam-host
//!
//! `vsamrd`, the VSAM redirector server: it decodes VSAM requests from the
//! wire natively, keeps every VSAM rule itself, and stores records through
//! sandboxed WebAssembly backend plugins chosen per dataset.
//!
//! Layers, top to bottom: [`server`] (TCP, handshake, pipelining) ->
//! [`vsam`] (sessions, positions, locks, return codes) -> [`catalog`]
//! (datasets and routing) -> [`runtime`] (plugins in wasmtime).
#![warn(missing_docs)]

pub mod admin;
pub mod after_panic;
pub mod catalog;
pub mod changes;
pub mod config;
pub mod durable;
pub mod fleet;
pub mod local_storage;
pub mod log_limit;
pub mod logging;
pub mod machine;
pub mod manpages;
pub mod metrics;
pub mod migrate;
pub mod paths;
pub mod probes;
pub mod reload;
pub mod runtime;
pub mod security;
pub mod server;
pub mod vsam;

use anyhow::{Context, Result};
use config::Config;
use reload::{ConfigSource, Reloader};
use runtime::{BackendHandle, PluginRuntime};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::watch;
use vsam::Shared;

/// A bound, ready server. Dropping it without [`Server::run`] serves nothing.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    reloader: Arc<Reloader>,
    admin: Option<(TcpListener, Arc<admin::AdminContext>)>,
    /// The `[metrics]` listener, if configured.
    metrics: Option<TcpListener>,
    migrations: Arc<migrate::Migrations>,
    watch_files: bool,
    settings: server::ServeSettings,
    data_dir_lock: Arc<local_storage::StorageLock>,
}

impl Server {
    /// Prepares everything from a configuration: locks the data dir, loads
    /// the catalog, compiles the plugins, starts the backends, binds.
    pub async fn bind(config: &Config) -> Result<Self> {
        Self::bind_with(config, BTreeMap::new()).await
    }

    /// Like [`Server::bind`], with extra backends supplied by the caller
    /// (for example a native store, to measure what the sandbox costs).
    pub async fn bind_with(
        config: &Config,
        extra: BTreeMap<String, BackendHandle>,
    ) -> Result<Self> {
        Self::bind_source(ConfigSource::fixed(config.clone()), extra).await
    }

    /// Like [`Server::bind_with`], for a configuration that a reload reads
    /// again from `source`.
    pub async fn bind_source(
        source: ConfigSource,
        extra: BTreeMap<String, BackendHandle>,
    ) -> Result<Self> {
        let config = source.load()?;
        warn_of_few_files(&config);
        let data_dir = &config.server.data_dir;
        paths::make_private_dir(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let lock_path = data_dir.join("vsamrd.lock");
        let ran_before = lock_path.exists();
        let lock = local_storage::StorageLock::acquire(
            &lock_path,
            &format!("data dir {}", data_dir.display()),
            data_dir,
        )?;
        // Checked once the data dir is ours; the lock file's presence from
        // before this start says vsamrd ran here.
        catalog::Catalog::ensure_present(data_dir, ran_before.then_some(lock_path.as_path()))?;
        let mut stores = local_storage::HeldStores::acquire(&config)?;
        let claims = stores.claims_for(&config).await?;
        stores.keep_claims(claims);
        let runtime = PluginRuntime::with_room(
            Some(data_dir.join("plugin-cache")),
            tokio::runtime::Handle::current(),
            runtime::wasm::room::room_for(&config.backends)?,
        )?;
        let (plugins, backends) =
            runtime::start_backends(&config.plugins, &config.backends, &runtime)?;
        let catalog = catalog::Catalog::open(data_dir, &config.datasets)?;
        // One line per backend gone, however many datasets it held.
        let mut orphans: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for def in catalog.list("") {
            if !backends.contains_key(&def.backend) && !extra.contains_key(&def.backend) {
                orphans.entry(def.backend).or_default().push(def.name);
            }
        }
        for (backend, datasets) in orphans {
            tracing::warn!(
                backend = %backend,
                "the catalog puts {} on backend {backend}, which is not configured: their requests fail until the backend is configured again (their records stay where they are)",
                some_names(&datasets, "dataset")
            );
        }
        for def in &config.datasets {
            let backend = match backends.get(&def.backend) {
                Some((_, handle)) => handle,
                None => extra
                    .get(&def.backend)
                    .context("configured dataset on an unknown backend")?,
            };
            match backend
                .call(runtime::call::Call::Create(
                    def.to_plugin(),
                    def.layout.clone(),
                ))
                .await
            {
                Ok(_) => {
                    tracing::info!(dataset = %def.name, "created storage for configured dataset")
                }
                Err(runtime::call::CallError::Store(
                    vsam_plugin_sdk::StoreError::AlreadyExists,
                )) => {}
                Err(error) => anyhow::bail!(
                    "dataset {}: backend {} cannot create it: {error}",
                    def.name,
                    def.backend
                ),
            }
        }
        let security = match &config.tls {
            None => server::transport::ListenerSecurity::plain(),
            Some(tls) => server::transport::ListenerSecurity {
                tls: Some(Arc::new(arc_swap::ArcSwap::from_pointee(
                    tls.identity().map_err(anyhow::Error::msg)?,
                ))),
                plain: tls.plain,
            },
        };
        let vsam_listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen for VSAM requests on {}: set [server] listen (or --listen) to a free address, or stop the program listening there",
                    config.listen
                )
            })?;
        let handles = backends
            .iter()
            .map(|(name, (_, handle))| (name.clone(), handle.clone()))
            .chain(extra.clone())
            .collect();
        let shared = Arc::new(Shared::new(&config, catalog, handles));
        shared.set_buckets(stores.claims());
        // In a fleet, this server shows in each shared database before it
        // serves (and has taken it alone, or joined the others on it), and
        // follows its shared catalog.
        vsam::shared_catalog::follow_shared_databases(&shared).await;
        vsam::shared_catalog::check_connection_room(&shared).await;
        if let Some(identity) = &security.tls {
            shared.metrics.set_tls_expiry(identity.load().not_after);
        }
        let running = reload::Running {
            config: config.clone(),
            plugins,
            backends,
            extra,
            stores,
            tls: security.tls.clone(),
        };
        let migrations = migrate::Migrations::open(shared.clone(), data_dir)?;
        migrations.resume().await;
        changes::Followers::start(&config, &shared).await?;
        let reloader = Arc::new(Reloader::new(
            source,
            runtime,
            shared.clone(),
            migrations.clone(),
            running,
        ));
        let admin = match config.admin.address(config.listen) {
            None => None,
            Some(address) => {
                let token = admin::token::load_or_create(&config.admin.token_file)?;
                let listener = TcpListener::bind(address).await.with_context(|| {
                    format!(
                        "cannot listen for admin requests on {address}: set [admin] listen (or --admin-listen) to a free address, or enabled = false"
                    )
                })?;
                let context = Arc::new(admin::AdminContext {
                    shared: shared.clone(),
                    reloader: reloader.clone(),
                    migrations: migrations.clone(),
                    token,
                    auth_failure_delay: Duration::from_millis(config.server.auth_failure_delay_ms),
                    answer_timeout: Duration::from_secs(config.server.request_timeout_secs),
                    security: security.clone(),
                    started: SystemTime::now(),
                    listen: vsam_listener.local_addr().unwrap_or(config.listen),
                });
                Some((listener, context))
            }
        };
        let metrics = match config.metrics_listen {
            None => None,
            Some(address) => Some(TcpListener::bind(address).await.with_context(|| {
                format!(
                    "cannot listen for metrics on {address}: set [metrics] listen (or --metrics-listen) to a free address"
                )
            })?),
        };
        Ok(Self {
            listener: vsam_listener,
            shared,
            reloader,
            admin,
            metrics,
            migrations,
            watch_files: config.admin.watch_files,
            settings: server::ServeSettings::new(&config.server, security),
            data_dir_lock: Arc::new(lock),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Where the admin interface listens, if it is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The reloader (SIGHUP and tests call it).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// Serves until `shutdown` becomes true; then finishes in-flight
    /// requests, closes connections and flushes open datasets.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        tracing::info!(address = %self.local_addr(), "{} listening", server::server_banner());
        let security = &self.settings.security;
        let (line, warn) = security.describe(self.local_addr(), "VSAM requests");
        match warn {
            true => tracing::warn!("{line}"),
            false => tracing::info!("{line}"),
        }
        let policy = self.shared.access();
        match policy.enforced() {
            true => tracing::info!(
                clients = policy.clients.len(),
                rules = policy.rules.len(),
                anonymous = policy.takes_anonymous(),
                "access rules apply to every OPEN and catalog request"
            ),
            false => tracing::info!(
                "no [[access]] rules: every client may open, update, define and delete every dataset"
            ),
        }
        if let Some((listener, context)) = self.admin {
            if let Ok(address) = listener.local_addr() {
                let (line, warn) = security.describe(address, "admin interface (vsamr admin)");
                match warn {
                    true => tracing::warn!(
                        "{line}; anyone who can reach it and knows the token can swap plugins"
                    ),
                    false => tracing::info!("{line}"),
                }
            }
            after_panic::spawn_essential(
                "the admin port served",
                admin::serve(listener, context, shutdown.clone()),
            );
        }
        if let Some(listener) = self.metrics {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "metrics and probes: http://{address}/metrics, /healthz, /readyz");
            }
            after_panic::spawn_essential(
                "the metrics and probes port served",
                probes::serve(
                    listener,
                    self.shared.clone(),
                    self.migrations.clone(),
                    shutdown.clone(),
                ),
            );
        }
        let _watch = match self.watch_files {
            false => None,
            true => reload::watch::start(self.reloader.clone(), tokio::runtime::Handle::current())
                .await
                .inspect_err(|error| {
                    tracing::warn!("{error:#}; reload with SIGHUP or vsamr admin reload")
                })
                .ok(),
        };
        let storage = after_panic::spawn_essential(
            "the watch on the data dir and the stores",
            reload::storage::watch(
                Arc::downgrade(&self.reloader),
                Arc::downgrade(&self.shared),
                Arc::downgrade(&self.data_dir_lock),
            ),
        );
        server::serve(self.listener, self.shared, self.settings, shutdown).await;
        storage.abort();
        self.migrations.stop_all().await;
        // Another server may take the buckets (and stores) at once.
        self.reloader.release_stores().await;
        tracing::info!("stopped");
    }
}

/// Descriptors vsamrd needs besides its connections: databases, plugin
/// files, the change log, listeners, logs.
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// Warns when this process may open fewer files than the connections
/// `[server]` admits need: past the limit an accept fails with `Too many
/// open files`, which a client sees as a server that does not answer.
fn warn_of_few_files(config: &Config) {
    let files = machine::open_files();
    let connections = (config.server.max_connections + config.server.max_handshakes) as u64;
    if files < connections + FILES_BESIDES_CONNECTIONS {
        tracing::warn!(
            "vsamrd may open {files} files (RLIMIT_NOFILE), fewer than [server] max_connections ({}) and max_handshakes ({}) need with {FILES_BESIDES_CONNECTIONS} more for databases, plugins and logs: past it connections fail with `Too many open files`; raise the limit (systemd: LimitNOFILE=; a shell: ulimit -n) or lower max_connections",
            config.server.max_connections,
            config.server.max_handshakes
        );
    }
}

/// The git revision vsamrd is built from, as its build script hands it to
/// the compiler. Cargo also sets it while it runs vsamrd's tests (and
/// `cargo run`), so the check of `VSAMRD_` variables knows it.
pub const REVISION_VARIABLE: &str = "VSAMRD_GIT_REVISION";

/// What `vsamrd --version` says: the version, the git revision it was built
/// from and the plugin contract it speaks, so that an operator can tell
/// which build runs and which plugins fit it.
pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (git {}; plugin contract vsam:backend@{})",
            env!("CARGO_PKG_VERSION"),
            env!("VSAMRD_GIT_REVISION"),
            vsam_plugin_sdk::CONTRACT_VERSION
        )
    })
}

/// A server running in the background of the current tokio runtime, for
/// tests, benchmarks and the conformance kit.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its admin interface listens, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// Where its metrics and probes are served, if configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Its reloader.
    pub reloader: Arc<Reloader>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Binds and starts serving.
    pub async fn start(config: &Config) -> Result<Self> {
        Self::start_with(config, BTreeMap::new()).await
    }

    /// Binds with extra backends and starts serving.
    pub async fn start_with(
        config: &Config,
        extra: BTreeMap<String, BackendHandle>,
    ) -> Result<Self> {
        Self::start_source(ConfigSource::fixed(config.clone()), extra).await
    }

    /// Binds a configuration read (and re-read at reloads) from `source`.
    pub async fn start_source(
        source: ConfigSource,
        extra: BTreeMap<String, BackendHandle>,
    ) -> Result<Self> {
        let server = Server::bind_source(source, extra).await?;
        let addr = server.local_addr();
        let admin_addr = server.admin_addr();
        let metrics_addr = server.metrics_addr();
        let reloader = server.reloader();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server.run(stopped));
        Ok(Self {
            addr,
            admin_addr,
            metrics_addr,
            reloader,
            stop,
            task,
        })
    }

    /// Shuts down gracefully and waits until it has: every backend's
    /// serving tasks have ended and closed their files and databases, and
    /// its local stores are free for another server, when it returns (a
    /// copy of its data dir taken then is whole).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.reloader.release_stores().await;
    }
}

/// `1 dataset A.B`, or `3 datasets A.B, C.D, E.F`, or `9998 datasets A.B,
/// C.D, E.F and 9995 more`: names for one log line, however many.
fn some_names(names: &[String], what: &str) -> String {
    const SHOWN: usize = 3;
    let plural = if names.len() == 1 { "" } else { "s" };
    let shown = names[..names.len().min(SHOWN)].join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => format!("{} {what}{plural} {shown}", names.len()),
        more => format!("{} {what}{plural} {shown} and {more} more", names.len()),
    }
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn the_long_version_names_the_build_and_the_contract() {
        let text = super::long_version();
        assert!(text.starts_with(env!("CARGO_PKG_VERSION")), "{text}");
        assert!(text.contains("(git "), "{text}");
        assert!(
            text.contains(&format!(
                "plugin contract vsam:backend@{}",
                vsam_plugin_sdk::CONTRACT_VERSION
            )),
            "{text}"
        );
    }
}

#[cfg(test)]
mod names_tests {
    #[test]
    fn a_log_line_names_a_few_and_counts_the_rest() {
        let names = |n: usize| (1..=n).map(|i| format!("D{i}")).collect::<Vec<_>>();
        assert_eq!(super::some_names(&names(1), "dataset"), "1 dataset D1");
        assert_eq!(
            super::some_names(&names(3), "dataset"),
            "3 datasets D1, D2, D3"
        );
        assert_eq!(
            super::some_names(&names(9998), "dataset"),
            "9998 datasets D1, D2, D3 and 9995 more"
        );
    }
}
