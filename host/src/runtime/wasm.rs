//! WebAssembly plugins: the engine, compiled plugin versions, and the
//! sandboxed instance that serves one backend.
//!
//! Sandbox: a plugin sees only what its backend is granted (a preopened
//! directory as `/data`, logging); no network, no environment, no other
//! files. Each call runs under an epoch deadline (the per-call time limit)
//! and a memory cap. A call that traps, times out or hits the cap drops the
//! instance; the next call gets a fresh one.
//!
//! Host functions are async (WASI's clocks, polls and files, the SQL and
//! object-store capabilities), and every call, `init` included, runs under
//! a wall-clock limit too: the call limit plus [`CALL_GRACE`]. Epochs stop
//! a plugin that computes too long; the wall clock stops one that waits in
//! a host function (a sleep, a statement that waits on a lock, a store
//! that never answers), by dropping the call where it waits.
//!
//! Calls run as futures on the runtime's threads (the backend's task polls
//! them). At every epoch tick a call within its limit yields to the
//! runtime ([`on_epoch_tick`]), so a plugin computing for long holds a
//! runtime thread for one tick at a time, not for its whole limit.

use super::bindings::{self, wit_log, wit_objects, wit_sql, wit_types};
use super::call::{Call, CallError, CallFuture, CallResult, RecordStore, Reply};
use super::convert;
use super::objects::ObjectGrant;
use super::objects::host::BucketAccess;
use super::settings::BackendSettings;
use super::sql::{SqlGrant, SqlSession};
use super::storage_faults::{MeetsFaults, StorageFaults};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable, TypedFunc};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use wit_log::Level;

/// How often the epoch ticks; per-call time limits are multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How far past its limit a call may end: a call waiting in a host
/// function is dropped at its limit plus this (the time to notice and to
/// unwind), and answered as one that ran too long.
pub const CALL_GRACE: Duration = Duration::from_millis(100);

/// The shared wasmtime engine, linker and compiled-plugin cache.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache_dir: Option<PathBuf>,
    runtime: Handle,
}

/// One loaded plugin version: immutable once compiled.
pub struct LoadedPlugin {
    /// Plugin name from the config.
    pub name: String,
    /// SHA-256 of the component bytes, hex.
    pub content_hash: String,
    /// When it was compiled (or read from the cache) and checked.
    pub loaded_at: SystemTime,
    engine: Engine,
    pre: bindings::BackendCorePre<InstanceState>,
    /// vsamrd's tokio runtime: calls into the plugin's instances run on it
    /// (from the backend tasks that own them), with its timers and I/O.
    runtime: Handle,
}

/// The limits of an instance's store, noting the linear memory its
/// instance holds (for `/metrics`): the memories it made and grew.
struct MeasuredLimits {
    limits: StoreLimits,
    memory: u64,
}

impl wasmtime::ResourceLimiter for MeasuredLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory += desired.saturating_sub(current) as u64;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// What a plugin instance's store holds: its WASI context (the granted
/// directory), its session on the granted database, the granted bucket,
/// resource table, limits and the backend's name for logs.
pub struct InstanceState {
    wasi: WasiCtx,
    sql: SqlSession,
    objects: BucketAccess,
    table: ResourceTable,
    limits: MeasuredLimits,
    backend: String,
    log: bool,
    /// The cause its log lines are limited under (`plugin BACKEND`).
    log_cause: String,
    /// The panic message the plugin reported (the SDK's panic hook logs it
    /// just before the instance aborts), for the fault's description.
    panic: Option<String>,
    /// Epoch ticks the running call may still use (see [`on_epoch_tick`]).
    ticks_left: u64,
    /// Faults its file I/O meets (see [`super::storage_faults`]).
    storage_faults: Option<Arc<StorageFaults>>,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl MeetsFaults for InstanceState {
    fn storage_faults(&self) -> Option<Arc<StorageFaults>> {
        self.storage_faults.clone()
    }
}

impl wit_types::Host for InstanceState {}

impl wit_log::Host for InstanceState {
    async fn write(&mut self, level: Level, message: String) {
        if level == Level::Error && message.starts_with(vsam_plugin_sdk::log::PANIC_PREFIX) {
            let mut panic = message.clone();
            panic.truncate(panic.floor_char_boundary(400));
            self.panic = Some(panic);
        }
        if !self.log {
            return;
        }
        // A plugin logging in a loop gets its share of lines, no more.
        let Some(suppressed) = crate::log_limit::admit(&self.log_cause) else {
            return;
        };
        let note = crate::log_limit::note(suppressed);
        let backend = self.backend.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", backend, "{message}{note}"),
            Level::Debug => tracing::debug!(target: "plugin", backend, "{message}{note}"),
            Level::Info => tracing::info!(target: "plugin", backend, "{message}{note}"),
            Level::Warn => tracing::warn!(target: "plugin", backend, "{message}{note}"),
            Level::Error => tracing::error!(target: "plugin", backend, "{message}{note}"),
        }
    }
}

/// What a backend's instances are granted besides their directory: its
/// database and its bucket, connected once and shared by its instances.
#[derive(Clone, Default)]
pub struct Grants {
    /// The `database` grant.
    pub database: Option<Arc<SqlGrant>>,
    /// The `bucket` grant.
    pub bucket: Option<Arc<ObjectGrant>>,
}

impl Grants {
    /// Connects what `settings` grant (no request is sent yet); their
    /// connections run on `runtime`.
    pub fn for_backend(settings: &BackendSettings, runtime: &Handle) -> Result<Self> {
        let timeout = Duration::from_millis(settings.call_timeout_ms);
        let database = settings
            .database
            .as_ref()
            .map(|url| {
                SqlGrant::new(url, timeout, runtime)
                    .with_context(|| format!("backend {}: database {url}", settings.name))
            })
            .transpose()?;
        // One object request may take at most 40% of the call limit, so a
        // plugin that meets a dead store still answers within it.
        let bucket = settings
            .bucket
            .as_ref()
            .map(|spec| {
                ObjectGrant::new(spec, timeout * 2 / 5, runtime)
                    .with_context(|| format!("backend {}: {spec}", settings.name))
            })
            .transpose()?;
        Ok(Self { database, bucket })
    }
}

impl PluginRuntime {
    /// Builds the engine (pooling allocator, epoch interruption) and starts
    /// the epoch ticker. Compiled plugins are cached in `cache_dir`; calls
    /// into plugins and the connections of their grants run on `runtime`.
    pub fn new(cache_dir: Option<PathBuf>, runtime: Handle) -> Result<Arc<Self>> {
        // Compiling a plugin version is background work: its threads yield
        // to the ones serving requests (a reload compiles while clients
        // work). The pool may exist already (another server in-process).
        let _ = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("vsamrd-compile-{i}"))
            .start_handler(|_| super::background::lower_priority())
            .build_global();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(2048)
            .total_memories(512)
            .total_tables(1024)
            .max_memory_size(4 << 30);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = ah(Engine::new(&config)).context("creating the WebAssembly engine")?;
        let mut linker = Linker::new(&engine);
        ah(wasmtime_wasi::p2::add_to_linker_async(&mut linker)).context("linking WASI")?;
        // Each interface is served by what it works on: the instance for
        // types and logging, the instance's SQL session and bucket for the
        // capabilities (their host functions live in `sql/` and `objects/`).
        ah(wit_types::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state| state,
        ))
        .context("linking the types interface")?;
        ah(wit_log::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state| state,
        ))
        .context("linking the log interface")?;
        ah(wit_sql::add_to_linker::<_, HasSelf<SqlSession>>(
            &mut linker,
            |state: &mut InstanceState| &mut state.sql,
        ))
        .context("linking the sql interface")?;
        ah(wit_objects::add_to_linker::<_, HasSelf<BucketAccess>>(
            &mut linker,
            |state: &mut InstanceState| &mut state.objects,
        ))
        .context("linking the objects interface")?;
        ah(super::storage_faults::add_to_linker(&mut linker))
            .context("linking the storage fault injection")?;

        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("vsamrd-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating plugin cache {}", dir.display()))?;
        }
        Ok(Arc::new(Self {
            engine,
            linker,
            cache_dir,
            runtime,
        }))
    }

    /// Compiles (or loads from the cache) a plugin and checks that it
    /// implements the contract, so a wrong plugin fails here, not mid-call.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<LoadedPlugin>> {
        let content_hash = content_hash(bytes);
        check_component_header(name, bytes)?;
        let component = self
            .compile(&content_hash, bytes)
            .with_context(|| format!("compiling plugin {name}"))?;
        let ty = component.component_type();
        check_contract(
            name,
            ty.imports(&self.engine).map(|(n, _)| n),
            ty.exports(&self.engine).map(|(n, _)| n),
        )?;
        let instance_pre = ah(self.linker.instantiate_pre(&component)).with_context(|| {
            format!(
                "plugin {name} does not fit the host: it must export vsam:backend/store@{} and import only WASI and vsam:backend/log",
                vsam_plugin_sdk::CONTRACT_VERSION
            )
        })?;
        let pre = ah(bindings::BackendCorePre::new(instance_pre)).with_context(|| {
            format!(
                "plugin {name} does not implement the backend contract vsam:backend/store@{}",
                vsam_plugin_sdk::CONTRACT_VERSION
            )
        })?;
        Ok(Arc::new(LoadedPlugin {
            name: name.to_string(),
            content_hash,
            loaded_at: SystemTime::now(),
            engine: self.engine.clone(),
            pre,
            runtime: self.runtime.clone(),
        }))
    }

    fn compile(&self, content_hash: &str, bytes: &[u8]) -> Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return ah(Component::new(&self.engine, bytes));
        };
        let mut key = Sha256::new();
        key.update(content_hash.as_bytes());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&self.engine.precompile_compatibility_hash(), &mut hasher);
        key.update(std::hash::Hasher::finish(&hasher).to_be_bytes());
        let path = dir.join(format!("{}.cwasm", hex(&key.finalize())));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (part of the name),
            // into the server's own data directory.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!("ignoring unusable cached plugin {}: {e:#}", path.display())
                }
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        crate::durable::replace_file(&path, &compiled).unwrap_or_else(|e| {
            tracing::warn!("cannot cache compiled plugin at {}: {e:#}", path.display())
        });
        // SAFETY: the bytes were produced just now by this engine.
        ah(unsafe { Component::deserialize(&self.engine, &compiled) })
    }
}

/// Refuses bytes that are not a WebAssembly component, with what they are
/// instead (a half-written file, a core module, something else).
fn check_component_header(name: &str, bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    match (bytes.get(..4), bytes.get(4..8)) {
        (Some(MAGIC), Some(version)) if version == COMPONENT => Ok(()),
        (Some(MAGIC), Some(version)) if version == MODULE => anyhow::bail!(
            "plugin {name} is a core WebAssembly module, not a component: build it for wasm32-wasip2 (cargo build --target wasm32-wasip2) or wrap it with `wasm-tools component new`"
        ),
        _ => anyhow::bail!(
            "plugin {name} is not a WebAssembly component ({} bytes, starting {:02x?}): a file still being written, or the wrong file",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        ),
    }
}

/// The contract's package, and the interface every backend exports.
const PACKAGE: &str = "vsam:backend/";
const STORE: &str = "vsam:backend/store";

/// Checks the contract versions a component's imports and exports name,
/// so a plugin built for another contract is refused with what to do
/// rather than with a type-matching error: the exported `store` must be of
/// this host's major version, and no import may be newer than the host's.
fn check_contract<'a>(
    name: &str,
    imports: impl Iterator<Item = &'a str>,
    exports: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let host = vsam_plugin_sdk::CONTRACT_VERSION;
    let parse = |version: &str| -> Option<(u64, u64)> {
        let mut parts = version.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    let (major, minor) = parse(host).expect("the contract version is x.y.z");
    let exports: Vec<&str> = exports.collect();
    let Some(store) = exports.iter().find(|e| e.starts_with(STORE)) else {
        anyhow::bail!(
            "plugin {name} is not a backend plugin: it exports no {STORE} (it exports: {}); build it with vsam-plugin-sdk's export_backend! macro",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        );
    };
    let version = store.split_once('@').map_or("", |(_, v)| v);
    if parse(version).is_none_or(|(m, _)| m != major) {
        anyhow::bail!(
            "plugin {name} implements contract vsam:backend@{version}, this vsamrd speaks vsam:backend@{host}: major versions must match; rebuild the plugin with a vsam-plugin-sdk for contract {major}.x, or run a vsamrd that speaks {version}",
            version = if version.is_empty() {
                "(unversioned)"
            } else {
                version
            }
        );
    }
    for import in imports.filter(|i| i.starts_with(PACKAGE)) {
        let version = import.split_once('@').map_or("", |(_, v)| v);
        match parse(version) {
            Some((m, n)) if m == major && n <= minor => {}
            _ => anyhow::bail!(
                "plugin {name} needs {import}, this vsamrd offers vsam:backend@{host}: run a vsamrd that offers it, or rebuild the plugin with a vsam-plugin-sdk for contract {host}"
            ),
        }
    }
    Ok(())
}

/// wasmtime has its own error type; this makes it an `anyhow::Error` so
/// `.context(...)` applies.
fn ah<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}

/// A function of an optional interface the plugin may export (`lookup`,
/// `units`): `None` if it does not; refused if it does with another
/// signature than the contract's.
fn optional_export<Params, Results>(
    instance: &wasmtime::component::Instance,
    store: &mut Store<InstanceState>,
    interface: &str,
    function: &str,
) -> Result<Option<TypedFunc<Params, Results>>, Started>
where
    Params: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    Results: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    ah(instance
        .get_export_index(&mut *store, None, interface)
        .and_then(|exported| instance.get_export_index(&mut *store, Some(&exported), function))
        .map(|index| instance.get_typed_func(&mut *store, index))
        .transpose())
    .with_context(|| {
        let interface = interface.split(['/', '@']).nth(1).unwrap_or(interface);
        format!("the plugin's {interface}.{function} does not have the contract's signature")
    })
    .map_err(Started::Refused)
}

/// The environment variable every plugin instance finds this process's
/// boot in (see [`boot`]).
pub const BOOT_VARIABLE: &str = "VSAMRD_BOOT";

/// The environment variable every plugin instance finds its backend's
/// name in: two backends of one server may share a store (a bucket and
/// prefix), and a record one leaves there must not be taken for the
/// other's.
pub const BACKEND_VARIABLE: &str = "VSAMRD_BACKEND";

/// What tells this start of vsamrd from every other: the same for every
/// plugin instance it runs (a swap's, a reader's, one made after a
/// fault), different after a restart. A plugin that leaves a record of
/// work in progress in shared storage tells by it whether the writer of a
/// record it finds is gone with an earlier process.
pub fn boot() -> &'static str {
    static BOOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT.get_or_init(|| {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{}-{since_epoch:x}", std::process::id())
    })
}

/// The name of a plugin version: SHA-256 of its component bytes, hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl LoadedPlugin {
    /// The runtime its instances' calls and grants run on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// What the workers running this version report of it.
    pub fn version_info(&self) -> super::VersionInfo {
        super::VersionInfo {
            plugin: self.name.clone(),
            content_hash: self.content_hash.clone(),
            loaded_at: self.loaded_at,
            own_store: false,
            shared_database: None,
            database: None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The optional `lookup` interface a plugin may export besides `store`.
const LOOKUP_INTERFACE: &str = "vsam:backend/lookup@1.0.0";

/// The optional `units` interface: whether the plugin keeps the writes
/// between two syncs whole.
const UNITS_INTERFACE: &str = "vsam:backend/units@1.0.0";

/// The optional `mirror` interface: changes applied many at a time.
const MIRROR_INTERFACE: &str = "vsam:backend/mirror@1.0.0";

/// `mirror.apply`, typed.
type Apply = TypedFunc<
    (wit_types::Dataset, Vec<wit_types::Entry>, Vec<Vec<u8>>),
    (Result<(), wit_types::StoreError>,),
>;

/// `units.whole`, typed.
type Whole = TypedFunc<(), (bool,)>;

/// `units.insert-many`, typed.
type InsertMany =
    TypedFunc<(wit_types::Dataset, Vec<wit_types::Entry>), (Result<(), wit_types::StoreError>,)>;

/// `lookup.get-many`, typed.
type GetMany = TypedFunc<
    (wit_types::Dataset, Vec<Vec<u8>>),
    (Result<Vec<Option<Vec<u8>>>, wit_types::StoreError>,),
>;

struct Live {
    store: Store<InstanceState>,
    bindings: bindings::BackendCore,
    /// The plugin's `get-many`, if it exports one.
    get_many: Option<GetMany>,
    /// The plugin's `units.whole`, if it exports one.
    whole: Option<Whole>,
    /// The plugin's `units.insert-many`, if it exports one.
    insert_many: Option<InsertMany>,
    /// The plugin's `mirror.apply`, if it exports one.
    apply: Option<Apply>,
}

/// The instance serving one backend, created on first use and replaced
/// after a fault.
pub struct WasmStore {
    plugin: Arc<LoadedPlugin>,
    settings: BackendSettings,
    grants: Grants,
    live: Option<Live>,
    deadline_ticks: u64,
    /// The cause of its last fault (see [`RecordStore::fault_cause`]).
    last_fault: &'static str,
}

impl WasmStore {
    /// A store for `settings` backed by `plugin`, with `grants`; nothing
    /// runs until the first call (see [`WasmStore::ensure_instance`]).
    pub fn new(plugin: Arc<LoadedPlugin>, settings: BackendSettings, grants: Grants) -> Self {
        let deadline_ticks = settings
            .call_timeout_ms
            .div_ceil(EPOCH_TICK.as_millis() as u64)
            + 1;
        Self {
            plugin,
            settings,
            grants,
            live: None,
            deadline_ticks,
            last_fault: "trap",
        }
    }

    /// The wall-clock bound of one call: its limit plus [`CALL_GRACE`].
    fn wall_limit(&self) -> Duration {
        Duration::from_millis(self.settings.call_timeout_ms) + CALL_GRACE
    }

    /// Instantiates the plugin and runs its `init` if there is no live
    /// instance, blocking the thread (a plain thread's way: start-up runs
    /// every instance once before serving). Fails with the reason if the
    /// plugin cannot start, or if `init` runs or waits past the call limit.
    pub fn ensure_instance(&mut self) -> Result<(), CallError> {
        if self.live.is_some() {
            return Ok(());
        }
        let runtime = self.plugin.runtime.clone();
        runtime.block_on(self.start_instance())
    }

    /// [`WasmStore::ensure_instance`] as a future.
    async fn start_instance(&mut self) -> Result<(), CallError> {
        if self.live.is_some() {
            return Ok(());
        }
        let limit = self.wall_limit();
        let started = tokio::time::timeout(
            limit,
            instantiate(
                &self.plugin,
                &self.settings,
                &self.grants,
                self.deadline_ticks,
            ),
        )
        .await;
        let live = match started {
            Ok(Ok(live)) => live,
            Ok(Err(Started::Trapped(error))) if is_interrupt(&error) => {
                return Err(self.overtime("init"));
            }
            Ok(Err(Started::Trapped(error) | Started::Refused(error))) => {
                self.last_fault = "start";
                return Err(CallError::Fault(format!(
                    "backend {} could not start plugin {}: {error:#}",
                    self.settings.name, self.plugin.name
                )));
            }
            Err(_) => return Err(self.overtime("init")),
        };
        self.live = Some(live);
        Ok(())
    }

    /// Runs one call on the live instance (started first if there is
    /// none), under the call's limits.
    async fn run_call(&mut self, call: Call) -> CallResult {
        self.start_instance().await?;
        let limit = self.wall_limit();
        let live = self.live.as_mut().expect("instance started above");
        live.store.set_epoch_deadline(1);
        let state = live.store.data_mut();
        state.ticks_left = self.deadline_ticks;
        // Only a panic of this call describes its trap.
        state.panic = None;
        let outcome = tokio::time::timeout(limit, run(live, &call)).await;
        match outcome {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(error))) => Err(CallError::Store(convert::store_error(error))),
            Ok(Err(error)) => {
                let panic = live.store.data_mut().panic.take();
                let (cause, message) = self.describe_fault(&call, &error, panic);
                self.last_fault = cause;
                tracing::error!(backend = %self.settings.name, "{message}");
                self.live = None;
                Err(CallError::Fault(message))
            }
            // Stopped where it waited: the instance is in the middle of a
            // call and cannot be entered again.
            Err(_) => {
                self.live = None;
                Err(self.overtime(call.name()))
            }
        }
    }

    /// Whether the plugin exports the optional `lookup` interface (else
    /// many GETs become one `get` call per key).
    pub fn exports_lookup(&mut self) -> Result<bool, CallError> {
        self.ensure_instance()?;
        Ok(self
            .live
            .as_ref()
            .is_some_and(|live| live.get_many.is_some()))
    }

    /// The fault of a call that ran or waited past the limit.
    fn overtime(&mut self, function: &str) -> CallError {
        self.last_fault = "timeout";
        let message = format!(
            "plugin {} of backend {} ran longer than the limit of {} ms in `{function}`; the instance was replaced",
            self.plugin.name, self.settings.name, self.settings.call_timeout_ms
        );
        tracing::error!(backend = %self.settings.name, "{message}");
        CallError::Fault(message)
    }

    /// What a failed call's error means, and its cause for `/metrics`
    /// (`timeout`, `memory` or `trap`).
    fn describe_fault(
        &self,
        call: &Call,
        error: &wasmtime::Error,
        panic: Option<String>,
    ) -> (&'static str, String) {
        let (cause, what) = match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => (
                "timeout",
                format!(
                    "ran longer than the limit of {} ms",
                    self.settings.call_timeout_ms
                ),
            ),
            _ if format!("{error:#}").contains("memory")
                && format!("{error:#}").contains("grow") =>
            {
                (
                    "memory",
                    format!(
                        "exceeded its memory limit of {} MiB",
                        self.settings.memory_limit >> 20
                    ),
                )
            }
            _ => (
                "trap",
                match (panic, error.downcast_ref::<wasmtime::Trap>()) {
                    (Some(panic), _) => format!("trapped: {panic}"),
                    (None, Some(trap)) => format!("trapped: {trap}"),
                    (None, None) => format!("trapped: {}", first_line(error)),
                },
            ),
        };
        let message = format!(
            "plugin {} of backend {} {what} in `{}`; the instance was replaced",
            self.plugin.name,
            self.settings.name,
            call.name()
        );
        (cause, message)
    }
}

/// A new instance of `plugin` for a backend with `settings` and `grants`,
/// its `init` run. (A free function: its future holds only what it reads,
/// not the store, so it can move between threads.)
async fn instantiate(
    plugin: &LoadedPlugin,
    settings: &BackendSettings,
    grants: &Grants,
    deadline_ticks: u64,
) -> Result<Live, Started> {
    let mut wasi = WasiCtxBuilder::new();
    // A file operation runs on the thread that runs the call rather
    // than hop to tokio's blocking pool and back: a read of a local file
    // is short, and a write group waiting on a slow disk's fsync runs
    // where blocking is allowed (see `worker::generation::run_batch`).
    wasi.allow_blocking_current_thread(true);
    wasi.env(BOOT_VARIABLE, boot());
    wasi.env(BACKEND_VARIABLE, &settings.name);
    if let Some(dir) = &settings.directory {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))
            .map_err(Started::Refused)?;
        ah(wasi
            .preopened_dir(dir, "/data", FsPerms::ReadWrite)
            .map(drop))
        .with_context(|| format!("granting directory {}", dir.display()))
        .map_err(Started::Refused)?;
    }
    let limits = MeasuredLimits {
        limits: StoreLimitsBuilder::new()
            .memory_size(settings.memory_limit as usize)
            .trap_on_grow_failure(true)
            .build(),
        memory: 0,
    };
    let state = InstanceState {
        wasi: wasi.build(),
        sql: SqlSession::new(grants.database.clone()),
        objects: BucketAccess(grants.bucket.clone()),
        table: ResourceTable::new(),
        limits,
        backend: settings.name.clone(),
        log: settings.log,
        log_cause: format!("plugin {}", settings.name),
        panic: None,
        ticks_left: deadline_ticks,
        storage_faults: settings.storage_faults.clone(),
    };
    let mut store = Store::new(&plugin.engine, state);
    store.limiter(|state| &mut state.limits);
    store.epoch_deadline_callback(on_epoch_tick);
    store.set_epoch_deadline(1);
    let trapped = |e: wasmtime::Error| Started::Trapped(e.into());
    let instance = plugin
        .pre
        .instance_pre()
        .instantiate_async(&mut store)
        .await
        .map_err(trapped)?;
    let bindings = bindings::BackendCore::new(&mut store, &instance).map_err(trapped)?;
    let get_many: Option<GetMany> =
        optional_export(&instance, &mut store, LOOKUP_INTERFACE, "get-many")?;
    let whole: Option<Whole> = optional_export(&instance, &mut store, UNITS_INTERFACE, "whole")?;
    let insert_many: Option<InsertMany> =
        optional_export(&instance, &mut store, UNITS_INTERFACE, "insert-many")?;
    let apply: Option<Apply> = optional_export(&instance, &mut store, MIRROR_INTERFACE, "apply")?;
    let init = bindings
        .vsam_backend_store()
        .call_init(&mut store, &settings.params)
        .await
        .map_err(trapped)?;
    init.map_err(|message| Started::Refused(anyhow::anyhow!("plugin init refused: {message}")))?;
    Ok(Live {
        store,
        bindings,
        get_many,
        whole,
        insert_many,
        apply,
    })
}

/// Why an instance did not start: its code trapped (or was stopped), or
/// the host or the plugin's `init` refused.
enum Started {
    Trapped(anyhow::Error),
    Refused(anyhow::Error),
}

/// At every epoch tick inside plugin code: a call past its limit traps
/// (`Trap::Interrupt`); one within it yields, so the runtime thread it
/// runs on serves other tasks between its ticks (a plugin computing for
/// long holds a thread at most one tick at a time).
fn on_epoch_tick(
    mut store: wasmtime::StoreContextMut<'_, InstanceState>,
) -> wasmtime::Result<wasmtime::UpdateDeadline> {
    let state = store.data_mut();
    if state.ticks_left == 0 {
        return Ok(wasmtime::UpdateDeadline::Interrupt);
    }
    state.ticks_left -= 1;
    // tokio's own yield: the task goes behind the others and the thread
    // polls for I/O before it runs again (a plain wake would run it again
    // at once, and sockets would wait for dozens of ticks).
    Ok(wasmtime::UpdateDeadline::YieldCustom(
        1,
        Box::pin(tokio::task::yield_now()),
    ))
}

/// True for the trap of a call stopped at its epoch deadline.
fn is_interrupt(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

fn first_line(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    text.lines().next().unwrap_or("").to_string()
}

/// Runs one call on a live instance.
async fn run(
    live: &mut Live,
    call: &Call,
) -> wasmtime::Result<Result<Reply, wit_types::StoreError>> {
    let store = live.bindings.vsam_backend_store();
    let ctx = &mut live.store;
    match call {
        Call::Create(ds, layout) => store
            .call_create(ctx, &convert::dataset(ds), layout.as_deref())
            .await
            .map(|r| r.map(|()| Reply::Done)),
        Call::Destroy(ds) => store
            .call_destroy(ctx, &convert::dataset(ds))
            .await
            .map(|r| r.map(|()| Reply::Done)),
        Call::Get(ds, key) => store
            .call_get(ctx, &convert::dataset(ds), key)
            .await
            .map(|r| r.map(Reply::Record)),
        Call::GetMany(ds, keys) => match &live.get_many {
            Some(get_many) => get_many
                .call_async(&mut *ctx, (convert::dataset(ds), keys.clone()))
                .await
                .map(|(r,)| r.map(Reply::Records)),
            None => {
                let dataset = convert::dataset(ds);
                let mut answers = Vec::with_capacity(keys.len());
                for key in keys {
                    match store.call_get(&mut *ctx, &dataset, key).await? {
                        Ok(record) => answers.push(record),
                        Err(error) => return Ok(Err(error)),
                    }
                }
                Ok(Ok(Reply::Records(answers)))
            }
        },
        Call::Scan(ds, from, dir, limit) => store
            .call_scan(
                ctx,
                &convert::dataset(ds),
                &convert::start(from),
                convert::direction(*dir),
                *limit,
            )
            .await
            .map(|r| {
                r.map(|entries| Reply::Entries(entries.into_iter().map(convert::entry).collect()))
            }),
        Call::Insert(ds, key, value) => store
            .call_insert(ctx, &convert::dataset(ds), key, value)
            .await
            .map(|r| r.map(|()| Reply::Done)),
        Call::InsertMany(ds, entries) => match &live.insert_many {
            Some(insert_many) => {
                let entries = entries.iter().cloned().map(convert::wit_entry).collect();
                insert_many
                    .call_async(&mut *ctx, (convert::dataset(ds), entries))
                    .await
                    .map(|(r,)| r.map(|()| Reply::Done))
            }
            None => {
                let dataset = convert::dataset(ds);
                for entry in entries {
                    if let Err(error) = store
                        .call_insert(&mut *ctx, &dataset, &entry.key, &entry.value)
                        .await?
                    {
                        return Ok(Err(error));
                    }
                }
                Ok(Ok(Reply::Done))
            }
        },
        Call::Replace(ds, key, value) => store
            .call_replace(ctx, &convert::dataset(ds), key, value)
            .await
            .map(|r| r.map(|()| Reply::Done)),
        Call::Delete(ds, key) => store
            .call_delete(ctx, &convert::dataset(ds), key)
            .await
            .map(|r| r.map(|()| Reply::Done)),
        Call::Append(ds, value) => store
            .call_append(ctx, &convert::dataset(ds), value)
            .await
            .map(|r| r.map(Reply::Key)),
        Call::Flush(ds) => store
            .call_flush(ctx, &convert::dataset(ds))
            .await
            .map(|r| r.map(|()| Reply::Done)),
        Call::Sync => store.call_sync(ctx).await.map(|r| r.map(|()| Reply::Done)),
        Call::WholeUnits => match &live.whole {
            Some(whole) => whole
                .call_async(&mut *ctx, ())
                .await
                .map(|(whole,)| Ok(Reply::Whole(whole))),
            None => Ok(Ok(Reply::Whole(false))),
        },
        Call::Apply(ds, puts, erases) => match &live.apply {
            Some(apply) => {
                let puts = puts.iter().cloned().map(convert::wit_entry).collect();
                apply
                    .call_async(&mut *ctx, (convert::dataset(ds), puts, erases.clone()))
                    .await
                    .map(|(r,)| r.map(|()| Reply::Done))
            }
            // A plugin without it: each change with the store's own calls.
            None => {
                let dataset = convert::dataset(ds);
                for entry in puts {
                    let (key, value) = (&entry.key, &entry.value);
                    match store.call_replace(&mut *ctx, &dataset, key, value).await? {
                        Err(wit_types::StoreError::NotFound) => {
                            if let Err(error) =
                                store.call_insert(&mut *ctx, &dataset, key, value).await?
                            {
                                return Ok(Err(error));
                            }
                        }
                        Err(error) => return Ok(Err(error)),
                        Ok(()) => {}
                    }
                }
                for key in erases {
                    match store.call_delete(&mut *ctx, &dataset, key).await? {
                        Ok(()) | Err(wit_types::StoreError::NotFound) => {}
                        Err(error) => return Ok(Err(error)),
                    }
                }
                Ok(Ok(Reply::Done))
            }
        },
    }
}

impl RecordStore for WasmStore {
    fn call(&mut self, call: Call) -> CallResult {
        let runtime = self.plugin.runtime.clone();
        runtime.block_on(self.run_call(call))
    }

    fn call_async(&mut self, call: Call) -> CallFuture<'_> {
        Box::pin(self.run_call(call))
    }

    fn writes_block(&self) -> bool {
        self.settings.stores_on_local_disk()
    }

    fn memory_bytes(&self) -> u64 {
        self.live
            .as_ref()
            .map_or(0, |live| live.store.data().limits.memory)
    }

    fn fault_cause(&self) -> &'static str {
        self.last_fault
    }

    fn stage_outbox(&mut self, row: super::sql::outbox::OutboxRow) -> bool {
        self.live
            .as_mut()
            .is_some_and(|live| live.store.data_mut().sql.stage_outbox(row))
    }

    fn outbox_outcome(&mut self) -> super::sql::outbox::Outcome {
        self.live
            .as_mut()
            .map(|live| live.store.data_mut().sql.take_outbox_outcome())
            .unwrap_or_default()
    }

    fn reset(&mut self) {
        self.live = None;
        // A dataset's table may have been dropped and made again with other
        // columns: the connections prepare their statements again too.
        if let Some(database) = &self.grants.database {
            database.forget_statements();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_contract;

    fn check(imports: &[&str], exports: &[&str]) -> Result<(), String> {
        check_contract("p", imports.iter().copied(), exports.iter().copied())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn plugins_of_another_contract_are_refused_with_what_to_do() {
        let log = "vsam:backend/log@1.0.0";
        assert!(
            check(
                &[log, "wasi:io/streams@0.2.6"],
                &["vsam:backend/store@1.0.0"]
            )
            .is_ok()
        );
        assert!(
            check(
                &[],
                &["vsam:backend/store@1.0.3", "vsam:backend/lookup@1.0.0"]
            )
            .is_ok()
        );
        let newer = check(&[log], &["vsam:backend/store@2.0.0"]).unwrap_err();
        assert!(
            newer.contains("implements contract vsam:backend@2.0.0"),
            "{newer}"
        );
        assert!(newer.contains("major versions must match"), "{newer}");
        let older = check(&[], &["vsam:backend/store@0.9.0"]).unwrap_err();
        assert!(older.contains("vsam:backend@0.9.0"), "{older}");
        let needs = check(
            &["vsam:backend/objects@1.4.0"],
            &["vsam:backend/store@1.0.0"],
        )
        .unwrap_err();
        assert!(
            needs.contains("needs vsam:backend/objects@1.4.0"),
            "{needs}"
        );
        let none = check(&[], &["wasi:cli/run@0.2.0"]).unwrap_err();
        assert!(none.contains("not a backend plugin"), "{none}");
        assert!(none.contains("wasi:cli/run@0.2.0"), "{none}");
    }
}
