//! # vsam-host
//!
//! `vsamrd`, the VSAM redirector server: it decodes VSAM requests from the
//! wire natively, keeps every VSAM rule itself, and stores records through
//! sandboxed WebAssembly backend plugins chosen per dataset.
//!
//! Layers, top to bottom: [`server`] (TCP, handshake, pipelining) ->
//! [`vsam`] (sessions, positions, locks, return codes) -> [`catalog`]
//! (datasets and routing) -> [`runtime`] (plugins in wasmtime).

pub mod catalog;
pub mod config;
pub mod runtime;
pub mod server;
pub mod vsam;

use anyhow::{Context, Result};
use config::Config;
use runtime::{BackendHandle, PluginRuntime};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use vsam::Shared;

/// A bound, ready server. Dropping it without [`Server::run`] serves nothing.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    _data_dir_lock: File,
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
        let data_dir = &config.server.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let lock_path = data_dir.join("vsamrd.lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating {}", lock_path.display()))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "data dir {} is in use by another vsamrd (lock {} is held); stop it or use another --data-dir",
                data_dir.display(),
                lock_path.display()
            )
        })?;
        let runtime = PluginRuntime::new(Some(data_dir.join("plugin-cache")))?;
        let mut backends = runtime::start_backends(config, &runtime)?;
        backends.extend(extra);
        let catalog = catalog::Catalog::open(data_dir, &config.datasets)?;
        for def in &config.datasets {
            let backend = backends
                .get(&def.backend)
                .context("configured dataset on an unknown backend")?;
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
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let shared = Arc::new(Shared::new(config, catalog, backends));
        Ok(Self {
            listener,
            shared,
            max_connections: config.server.max_connections,
            _data_dir_lock: lock,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` becomes true; then finishes in-flight
    /// requests, closes connections and flushes open datasets.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        tracing::info!(address = %self.local_addr(), "{} listening", server::server_banner());
        server::serve(self.listener, self.shared, self.max_connections, shutdown).await;
        tracing::info!("stopped");
    }
}

/// A server running in the background of the current tokio runtime, for
/// tests, benchmarks and the conformance kit.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
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
        let server = Server::bind_with(config, extra).await?;
        let addr = server.local_addr();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server.run(stopped));
        Ok(Self { addr, stop, task })
    }

    /// Shuts down gracefully and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
