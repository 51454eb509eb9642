//! Reloading the configuration and the plugins while clients stay
//! connected: new plugin versions, changed backends, new routing rules and
//! new configured datasets, all or nothing.
//!
//! A reload first prepares everything off to the side: it reads and checks
//! the configuration, compiles every changed plugin and checks it against
//! the contract, and starts (instantiates and initialises) an instance of
//! every changed backend. If any step fails nothing is applied: the running
//! versions keep serving and the reason is logged and kept for
//! `vsamr admin status`. Then it swaps: each changed backend's pointer moves
//! to its new version (calls already queued finish on the old one, see
//! [`crate::runtime::worker`]) and the routing is replaced whole. Positions
//! and record locks live in the host's sessions, so open datasets, browses
//! and held records carry on across the swap.
//!
//! Triggers: `vsamr admin reload`, SIGHUP, and a change of the config file or
//! of a plugin file ([`watch`]). Reloads run one at a time.

pub mod health;
pub mod storage;
pub mod watch;

use crate::after_panic::LockOrStop;
use crate::config::Config;
use crate::runtime::{self, BackendHandle, Backends, LoadedPlugin, PluginRuntime, call::Call};
use crate::vsam::{Routing, Shared};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use vsam_plugin_sdk::StoreError;
use vsam_protocol::admin::ReloadReport;

/// How long a stopping server waits for a backend's last call (which its
/// `call_timeout_ms` bounds) before it lets go of the backend's store
/// anyway.
const BACKEND_STOP: Duration = Duration::from_secs(30);

/// Where the configuration comes from, and the command-line settings that
/// override it, so a reload reads it the way the start did.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    file: Option<PathBuf>,
    fixed: Option<Config>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    admin_listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
}

impl ConfigSource {
    /// A configuration file, read again at each reload.
    pub fn file(path: PathBuf) -> Self {
        Self {
            file: Some(path),
            ..Self::default()
        }
    }

    /// A file if one is given, else the embedded default.
    pub fn from_cli(file: Option<PathBuf>) -> Self {
        match file {
            Some(path) => Self::file(path),
            None => Self::fixed(Config::embedded_default()),
        }
    }

    /// A configuration given as a value (the embedded default, tests): a
    /// reload still picks up changed plugin files it names.
    pub fn fixed(config: Config) -> Self {
        Self {
            fixed: Some(config),
            ..Self::default()
        }
    }

    /// Overrides `server.listen` (`--listen`).
    pub fn listen(mut self, listen: Option<SocketAddr>) -> Self {
        self.listen = listen;
        self
    }

    /// Overrides `server.data_dir` (`--data-dir`).
    pub fn data_dir(mut self, data_dir: Option<PathBuf>) -> Self {
        self.data_dir = data_dir;
        self
    }

    /// Overrides `admin.listen` (`--admin-listen`).
    pub fn admin_listen(mut self, listen: Option<SocketAddr>) -> Self {
        self.admin_listen = listen;
        self
    }

    /// Overrides `metrics.listen` (`--metrics-listen`).
    pub fn metrics_listen(mut self, listen: Option<SocketAddr>) -> Self {
        self.metrics_listen = listen;
        self
    }

    /// The config file, if the configuration comes from one.
    pub fn path(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }

    /// Reads and checks the configuration, overrides applied.
    pub fn load(&self) -> Result<Config> {
        let mut config = match (&self.file, &self.fixed) {
            (Some(file), _) => Config::load(file)?,
            (None, Some(config)) => config.clone(),
            (None, None) => Config::embedded_default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(data_dir) = &self.data_dir {
            config.move_data_dir(data_dir.clone());
        }
        if let Some(listen) = self.admin_listen {
            config.admin.listen = Some(listen);
        }
        if let Some(listen) = self.metrics_listen {
            config.metrics_listen = Some(listen);
        }
        for warning in config.warnings(self.file.as_deref()) {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }
}

/// Whether a reload from `old` to `new` `[tls]` applies without a restart:
/// the same policy (TLS on or off, plain TCP, client certificates
/// required), whatever files hold the certificate, key and client CAs.
fn tls_swappable(
    old: Option<&crate::security::TlsSettings>,
    new: Option<&crate::security::TlsSettings>,
) -> bool {
    match (old, new) {
        (None, None) => true,
        (Some(old), Some(new)) => old.swappable_to(new),
        _ => false,
    }
}

/// What runs now: the configuration, its plugin versions and backends, and
/// backends supplied by the embedding program (kept across reloads).
pub(crate) struct Running {
    pub config: Config,
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    pub backends: Backends,
    pub extra: BTreeMap<String, BackendHandle>,
    /// Locks on the backends' local stores.
    pub stores: crate::local_storage::HeldStores,
    /// The TLS identity both listeners use, if `[tls]` is configured.
    pub tls: Option<crate::security::tls::SharedIdentity>,
}

impl Running {
    /// The routing a configuration asks for, over the running backends.
    fn routing(&self) -> Routing {
        let mut backends: BTreeMap<String, BackendHandle> = self
            .backends
            .iter()
            .map(|(name, (_, handle))| (name.clone(), handle.clone()))
            .collect();
        backends.extend(self.extra.clone());
        Routing {
            backends,
            rules: self.config.rules.clone(),
            default_backend: self.config.default_backend.clone(),
        }
    }
}

/// Reloads on request and remembers how the last one went.
pub struct Reloader {
    source: ConfigSource,
    runtime: Arc<PluginRuntime>,
    shared: Arc<Shared>,
    migrations: Arc<crate::migrate::Migrations>,
    running: tokio::sync::Mutex<Running>,
    last: Mutex<Option<ReloadReport>>,
}

/// A backend prepared by a reload, not yet serving.
struct Prepared {
    setup: runtime::BackendSetup,
    stores: runtime::StartedStores,
    /// Datasets its health check could not read.
    unreadable: Vec<health::Unreadable>,
}

/// Everything a reload will apply, checked.
struct Plan {
    config: Config,
    /// Locks on every local store of the new configuration's backends.
    locks: BTreeMap<PathBuf, Arc<crate::local_storage::StorageLock>>,
    /// Claims on every S3 bucket of the new configuration's backends.
    claims: BTreeMap<String, Arc<crate::runtime::objects::claim::BucketClaim>>,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    prepared: BTreeMap<String, Prepared>,
    removed_backends: Vec<String>,
    datasets: crate::catalog::ConfigChanges,
    /// The TLS identity read again from the files, when they changed.
    tls: Option<crate::security::tls::TlsIdentity>,
    changes: Vec<String>,
    notes: Vec<String>,
}

impl Reloader {
    /// A reloader for a server started from `source`.
    pub(crate) fn new(
        source: ConfigSource,
        runtime: Arc<PluginRuntime>,
        shared: Arc<Shared>,
        migrations: Arc<crate::migrate::Migrations>,
        running: Running,
    ) -> Self {
        Self {
            source,
            runtime,
            shared,
            migrations,
            running: tokio::sync::Mutex::new(running),
            last: Mutex::new(None),
        }
    }

    /// The configuration source (the watcher watches its file).
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// The files a change of which triggers a reload: the config file,
    /// every plugin file it names, and its TLS files (a renewed
    /// certificate serves new connections at once).
    pub async fn watched_files(&self) -> Vec<PathBuf> {
        let running = self.running.lock().await;
        let mut files: Vec<PathBuf> = self.source.path().cloned().into_iter().collect();
        if let Some(tls) = &running.config.tls {
            files.extend([tls.certificate.clone(), tls.key.clone()]);
            files.extend(tls.client_ca.clone());
        }
        files.extend(
            running
                .config
                .plugins
                .values()
                .filter_map(|source| match source {
                    crate::config::PluginSource::File(path) => Some(path.clone()),
                    crate::config::PluginSource::Builtin(_) => None,
                }),
        );
        files
    }

    /// Each backend's locks on its local stores (a backend without local
    /// stores has none); none while a reload runs (the next look sees
    /// them).
    pub async fn store_locks(&self) -> Vec<storage::StoreLock> {
        let Ok(running) = self.running.try_lock() else {
            return Vec::new();
        };
        running
            .config
            .backends
            .values()
            .flat_map(|backend| {
                backend.local_stores().into_iter().filter_map(|store| {
                    let lock = running.stores.locks().get(&store.lock_path())?;
                    Some(storage::StoreLock {
                        holder: storage::Holder::Backend(backend.name.clone()),
                        store: store.path,
                        lock: lock.clone(),
                    })
                })
            })
            .collect()
    }

    /// The last reload's report.
    pub fn last_report(&self) -> Option<ReloadReport> {
        self.last.lock_or_stop().clone()
    }

    /// Lets go of the locks on the backends' local stores and the claims
    /// on their S3 buckets, once the server has stopped serving: another
    /// server (in this process too) may take them at once, rather than when
    /// the last task holding this one ends. The backends' serving tasks
    /// end first, so that their files and databases are closed (an SQLite
    /// database's log checkpointed and gone) when the locks are given
    /// back. Its lock sessions on shared databases close too, freeing
    /// their locks.
    pub async fn release_stores(&self) {
        if let Some(followers) = self.shared.changes.followers() {
            followers.stop().await;
        }
        self.shared.changes.set(None);
        let mut running = self.running.lock().await;
        let backends: Vec<BackendHandle> = running
            .backends
            .values()
            .map(|(_, handle)| handle.clone())
            .chain(running.extra.values().cloned())
            .collect();
        let stopped = backends
            .iter()
            .map(|backend| async move { (backend.name(), backend.stop(BACKEND_STOP).await) });
        for (name, ended) in futures::future::join_all(stopped).await {
            if !ended {
                tracing::warn!(
                    "backend {name} was still running a call {} s after the server stopped; its store is let go of with the call unfinished",
                    BACKEND_STOP.as_secs()
                );
            }
        }
        running.stores.release_all().await;
        self.shared.fleet.close();
    }

    /// The plugin versions loaded now, by name.
    pub async fn plugins(&self) -> BTreeMap<String, Arc<LoadedPlugin>> {
        self.running.lock().await.plugins.clone()
    }

    /// Re-reads the configuration and plugins and applies what changed, or
    /// nothing if any part fails. `trigger` names what asked, for the log.
    pub async fn reload(&self, trigger: &str) -> ReloadReport {
        let started = Instant::now();
        let mut running = self.running.lock().await;
        let outcome = self.prepare(&running).await;
        let report = match outcome {
            Ok(plan) => {
                // Half-applied, the backends, the routing and `running`
                // would disagree, under a lock that does not poison.
                let (changes, notes) = crate::after_panic::whole_or_stop(
                    "a reload panicked while it replaced the backends and the routing (the bug logged before this line), which may now be half-replaced",
                    self.apply(&mut running, plan),
                )
                .await;
                ReloadReport {
                    trigger: trigger.to_string(),
                    at: unix_seconds(SystemTime::now()),
                    took_ms: started.elapsed().as_millis() as u64,
                    changes,
                    error: None,
                    notes,
                }
            }
            Err(error) => ReloadReport {
                trigger: trigger.to_string(),
                at: unix_seconds(SystemTime::now()),
                took_ms: started.elapsed().as_millis() as u64,
                changes: Vec::new(),
                error: Some(format!(
                    "{}; nothing was changed, the running configuration and plugins keep serving",
                    one_line(&format!("{error:#}"))
                )),
                notes: Vec::new(),
            },
        };
        self.shared
            .metrics
            .reloaded(report.error.is_none(), report.at);
        match &report.error {
            Some(error) => tracing::error!(trigger, "reload refused: {error}"),
            None if report.changes.is_empty() => {
                tracing::info!(trigger, "reload: nothing changed")
            }
            None => tracing::info!(
                trigger,
                took_ms = report.took_ms,
                "reload applied: {}",
                report.changes.join("; ")
            ),
        }
        for note in &report.notes {
            tracing::warn!(trigger, "reload: {note}");
        }
        *self.last.lock_or_stop() = Some(report.clone());
        report
    }

    /// Reads, compiles, checks and starts everything that changed, without
    /// touching what serves.
    async fn prepare(&self, running: &Running) -> Result<Plan> {
        let config = self.source.load()?;
        let mut notes = Vec::new();
        let old = &running.config;
        if config.listen != old.listen
            || config.server.data_dir != old.server.data_dir
            || config.server.max_frame != old.server.max_frame
            || config.server.max_batch != old.server.max_batch
            || config.server.max_connections != old.server.max_connections
            || config.server.max_open_per_connection != old.server.max_open_per_connection
            || config.server.max_strings != old.server.max_strings
            || config.server.max_record != old.server.max_record
            || config.server.max_unit_records != old.server.max_unit_records
            || config.server.max_unit_mb != old.server.max_unit_mb
            || config.server.max_unit_secs != old.server.max_unit_secs
            || config.server.max_connections_per_address != old.server.max_connections_per_address
            || config.server.max_handshakes != old.server.max_handshakes
            || config.server.max_handshakes_per_address != old.server.max_handshakes_per_address
            || config.server.handshake_timeout_secs != old.server.handshake_timeout_secs
            || config.server.auth_failure_delay_ms != old.server.auth_failure_delay_ms
            || config.server.idle_timeout_secs != old.server.idle_timeout_secs
            || config.server.request_timeout_secs != old.server.request_timeout_secs
            || config.server.idle_poll_us != old.server.idle_poll_us
            || config.admin != old.admin
            || !tls_swappable(old.tls.as_ref(), config.tls.as_ref())
        {
            notes.push(
                "changes to [server], [admin] and [tls] (other than the files of its certificate, key and client CAs) take effect at the next restart"
                    .to_string(),
            );
        }
        if config.metrics_listen != old.metrics_listen
            || config.metrics_datasets != old.metrics_datasets
        {
            notes.push("changes to [metrics] take effect at the next restart".to_string());
        }
        if self.shared.changes.followers().is_some()
            && (config.changes.directory != old.changes.directory
                || config.changes.segment_bytes != old.changes.segment_bytes)
        {
            notes.push(
                "changes to [changes] directory and segment_mb take effect at the next restart: the change log, its mirrors' positions and the stream stay where they are until then"
                    .to_string(),
            );
        }
        runtime::wasm::room::reload_fits(self.runtime.room(), &old.backends, &config.backends)?;
        // Local stores are claimed before any new instance can touch them.
        let locks = running.stores.for_config(&config)?;
        let claims = running.stores.claims_for(&config).await?;
        // Compiling and starting instances is blocking work: off the
        // runtime, on a thread of low priority.
        let runtime = self.runtime.clone();
        let loaded = running.plugins.clone();
        let setups: BTreeMap<String, runtime::BackendSetup> = running
            .backends
            .iter()
            .map(|(name, (setup, _))| (name.clone(), setup.clone()))
            .collect();
        let for_blocking = config.clone();
        let mut held: BTreeMap<String, Vec<crate::catalog::DatasetDef>> = BTreeMap::new();
        for def in self.shared.catalog.list("") {
            if !matches!(def.relation, Some(crate::catalog::Relation::Path { .. })) {
                held.entry(def.backend.clone()).or_default().push(def);
            }
        }
        let (done, prepared) = tokio::sync::oneshot::channel();
        let background = self.shared.background.clone();
        std::thread::Builder::new()
            .name("vsamrd-reload".into())
            .spawn(move || {
                let running = background.begin();
                let prepared = prepare_backends(&for_blocking, &runtime, &loaded, &setups, &held);
                drop(running);
                let _ = done.send(prepared);
            })
            .context("starting the reload thread")?;
        let (plugins, prepared, mut changes) = prepared
            .await
            .context("the reload's preparation panicked")??;
        let checks: Vec<_> = prepared
            .iter()
            .filter(|(_, p)| !p.unreadable.is_empty())
            .map(|(name, p)| {
                let what = if p.setup.plugin.content_hash == serving_hash(&running.backends, name) {
                    "settings".to_string()
                } else {
                    format!(
                        "version (plugin {} version {})",
                        p.setup.settings.plugin,
                        short(&p.setup.plugin.content_hash)
                    )
                };
                (name.clone(), what, p.unreadable.clone())
            })
            .collect();
        for (name, what, unreadable) in checks {
            let Some((_, serving)) = running.backends.get(&name) else {
                continue;
            };
            if let Some(failed) = health::regressed(serving, &unreadable).await {
                anyhow::bail!(
                    "backend {name}: the health check of the new {what} failed: it cannot read dataset {}, which the serving version reads ({}); check that the plugin file is this backend's plugin and that the settings point at the storage its datasets were defined in",
                    failed.def.name,
                    failed.error
                );
            }
        }
        let datasets = self.shared.catalog.config_changes(&config.datasets);
        let counts = self.shared.catalog.count_by_backend();
        let removed_backends: Vec<String> = running
            .backends
            .keys()
            .filter(|name| !config.backends.contains_key(*name))
            .cloned()
            .collect();
        let migrating = self.migrations.backends_in_use();
        for name in &removed_backends {
            if migrating.contains(name) {
                anyhow::bail!(
                    "backend {name} is no longer configured but a migration copies to or from it: finalize or roll it back first"
                );
            }
            let removed_datasets: u64 = datasets
                .removed
                .iter()
                .filter_map(|ds| self.shared.catalog.get(ds))
                .filter(|(def, _)| &def.backend == name)
                .count() as u64;
            let holds = counts.get(name).copied().unwrap_or(0) - removed_datasets;
            if holds > 0 {
                anyhow::bail!(
                    "backend {name} is no longer configured but holds {holds} dataset(s) in the catalog (LISTCAT shows them): move them with `vsamr admin migrate`, or delete them, before removing the backend"
                );
            }
            changes.push(format!("backend {name}: removed"));
        }
        if let Some(name) = datasets.changed.first() {
            anyhow::bail!(
                "dataset {name} is defined differently in the configuration than in the catalog: a definition cannot change under stored records; give the new definition a new name, or DELETE the dataset and reload"
            );
        }
        for name in &datasets.removed {
            if self.shared.is_open(name) {
                anyhow::bail!(
                    "dataset {name} was removed from the configuration but is open: CLOSE it everywhere, then reload"
                );
            }
            changes.push(format!(
                "dataset {name}: no longer configured (its records stay in its backend)"
            ));
        }
        for def in &datasets.added {
            if !config.backends.contains_key(&def.backend) {
                anyhow::bail!("dataset {}: no backend {}", def.name, def.backend);
            }
        }
        if config.units != old.units {
            changes.push(format!(
                "units: {} rule(s), applied to every OPEN from now on",
                config.units.len()
            ));
        }
        if config.access != old.access {
            changes.push(format!(
                "access: {} client(s), {} rule(s), applied to every request from now on",
                config.access.clients.len(),
                config.access.rules.len()
            ));
        }
        if config.rules != old.rules || config.default_backend != old.default_backend {
            changes.push(format!(
                "routing: {} rule(s), default {}",
                config.rules.len(),
                config.default_backend.as_deref().unwrap_or("(none)")
            ));
        }
        // Certificates renewed in their files (or other files named):
        // read now, so that a file that does not make an identity refuses
        // the reload while the running one serves on.
        let tls = match (&running.tls, &config.tls) {
            (Some(serving), Some(settings)) if tls_swappable(old.tls.as_ref(), Some(settings)) => {
                let identity = settings.identity().map_err(anyhow::Error::msg)?;
                (identity.fingerprint != serving.load().fingerprint).then_some(identity)
            }
            _ => None,
        };
        Ok(Plan {
            config,
            locks,
            claims,
            plugins,
            prepared,
            removed_backends,
            datasets,
            tls,
            changes,
            notes,
        })
    }

    /// Swaps every prepared backend in, replaces the routing and adds the
    /// new configured datasets.
    async fn apply(&self, running: &mut Running, plan: Plan) -> (Vec<String>, Vec<String>) {
        let Plan {
            config,
            locks,
            claims,
            plugins,
            prepared,
            removed_backends,
            datasets,
            tls,
            mut changes,
            mut notes,
        } = plan;
        if let (Some(identity), Some(serving)) = (tls, &running.tls) {
            changes.push(format!(
                "TLS: certificate {} for new connections (those open keep theirs)",
                identity.description
            ));
            self.shared.metrics.set_tls_expiry(identity.not_after);
            serving.store(Arc::new(identity));
        }
        for (name, Prepared { setup, stores, .. }) in prepared {
            let version = setup.plugin.version_info().serving(&setup.settings);
            let handle = match running.backends.remove(&name) {
                Some((_, handle)) => {
                    if let Err(error) = handle.replace(version, stores.writer, stores.readers) {
                        // Threads could not start: the old version serves on.
                        notes.push(format!("backend {name}: not swapped: {error}"));
                        continue;
                    }
                    handle
                }
                None => match BackendHandle::spawn(&name, version, stores.writer, stores.readers) {
                    Ok(handle) => {
                        if let Some(followers) = self.shared.changes.followers() {
                            handle.set_capture(Some(followers.capture().clone()));
                        }
                        handle
                    }
                    Err(error) => {
                        notes.push(format!("backend {name}: not started: {error}"));
                        continue;
                    }
                },
            };
            runtime::log_backend(&setup.settings, "backend swapped to a new version");
            running.backends.insert(name, (setup, handle));
        }
        for name in &removed_backends {
            running.backends.remove(name);
        }
        running.stores.keep(locks);
        running.stores.keep_claims(claims);
        self.shared.set_buckets(running.stores.claims());
        running.plugins = plugins;
        self.shared.set_access(config.access.clone());
        self.shared.set_unit_rules(config.units.clone());
        running.config = config;
        self.shared.set_routing(running.routing());
        let followed = match self.shared.changes.followers() {
            Some(followers) => followers.configure(&running.config).await,
            None => crate::changes::Followers::start(&running.config, &self.shared).await,
        };
        if let Err(error) = followed {
            notes.push(format!("mirrors and change stream: not changed: {error:#}"));
        }
        crate::vsam::shared_catalog::follow_shared_databases(&self.shared).await;
        crate::vsam::shared_catalog::check_connection_room(&self.shared).await;
        self.shared.catalog.apply_config(&[], &datasets.removed);
        for def in datasets.added {
            let Some(backend) = self.shared.backend(&def.backend) else {
                continue;
            };
            match backend
                .call(Call::Create(def.to_plugin(), def.layout.clone()))
                .await
            {
                Ok(_) | Err(runtime::call::CallError::Store(StoreError::AlreadyExists)) => {
                    changes.push(format!("dataset {}: added on {}", def.name, def.backend));
                    self.shared.catalog.apply_config(&[def], &[]);
                }
                Err(error) => notes.push(format!(
                    "dataset {}: backend {} cannot create it: {error}; fix it and reload",
                    def.name, def.backend
                )),
            }
        }
        (changes, notes)
    }
}

/// Loads the configuration's plugins (reusing unchanged versions) and
/// starts new stores for every backend that is new, whose settings changed
/// or whose plugin has a new version. Blocking.
#[allow(clippy::type_complexity)]
fn prepare_backends(
    config: &Config,
    runtime: &PluginRuntime,
    loaded: &BTreeMap<String, Arc<LoadedPlugin>>,
    setups: &BTreeMap<String, runtime::BackendSetup>,
    held: &BTreeMap<String, Vec<crate::catalog::DatasetDef>>,
) -> Result<(
    BTreeMap<String, Arc<LoadedPlugin>>,
    BTreeMap<String, Prepared>,
    Vec<String>,
)> {
    let plugins = runtime::load_plugins(&config.plugins, runtime, loaded)?;
    let mut changes = Vec::new();
    for (name, plugin) in &plugins {
        match loaded.get(name) {
            Some(old) if old.content_hash == plugin.content_hash => {}
            Some(old) => changes.push(format!(
                "plugin {name}: version {} replaces {}",
                short(&plugin.content_hash),
                short(&old.content_hash)
            )),
            None => changes.push(format!(
                "plugin {name}: version {} loaded",
                short(&plugin.content_hash)
            )),
        }
    }
    let mut prepared = BTreeMap::new();
    for (name, settings) in &config.backends {
        let old = setups.get(name);
        let plugin = plugins
            .get(&settings.plugin)
            .expect("the configuration names loaded plugins");
        let unchanged = old.is_some_and(|old| {
            old.settings == *settings && old.plugin.content_hash == plugin.content_hash
        });
        if unchanged {
            continue;
        }
        let setup = runtime::prepare_backend(settings, &plugins, old)?;
        let stores = runtime::start_stores(&setup.plugin, settings, &setup.grants)
            .with_context(|| format!("backend {name}: the new version did not start"))?;
        let unreadable = match (old, held.get(name)) {
            (Some(_), Some(datasets)) => {
                health::probe(&setup.plugin, settings, &setup.grants, datasets)
                    .map_err(|error| anyhow::anyhow!("backend {name}: {error}"))?
            }
            _ => Vec::new(),
        };
        changes.push(match old {
            Some(_) => format!(
                "backend {name}: now plugin {} version {}",
                settings.plugin,
                short(&plugin.content_hash)
            ),
            None => format!(
                "backend {name}: added (plugin {} version {})",
                settings.plugin,
                short(&plugin.content_hash)
            ),
        });
        prepared.insert(
            name.clone(),
            Prepared {
                setup,
                stores,
                unreadable,
            },
        );
    }
    Ok((plugins, prepared, changes))
}

/// The content hash of the plugin version serving backend `name`.
fn serving_hash(backends: &Backends, name: &str) -> String {
    backends
        .get(name)
        .map(|(setup, _)| setup.plugin.content_hash.clone())
        .unwrap_or_default()
}

/// A message on one line: a reason inside a report or a log line must not
/// break it (compiler errors come with line breaks and indentation).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first 12 hex digits of a content hash: enough to tell versions apart.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
