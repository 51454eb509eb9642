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
//! runtime (`store::on_epoch_tick`), so a plugin computing for long holds a
//! runtime thread for one tick at a time, not for its whole limit.

mod cache;
mod contract;
mod instance;
mod pieces;
pub mod room;
mod store;

pub use instance::{Grants, InstanceState};
pub use store::{WasmStore, max_resources};

use contract::{check_component_header, check_contract};

use super::bindings::{self, wit_log, wit_objects, wit_sql, wit_types};
use super::objects::host::BucketAccess;
use super::sql::SqlSession;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy};

/// How often the epoch ticks; per-call time limits are multiples of it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How far past its limit a call may end: a call waiting in a host
/// function is dropped at its limit plus this (the time to notice and to
/// unwind), and answered as one that ran too long.
pub const CALL_GRACE: Duration = Duration::from_millis(100);

/// The shared wasmtime engine, linker and compiled-plugin cache.
pub struct PluginRuntime {
    engine: Engine,
    /// How many component instances the engine holds at once (see
    /// [`room`]).
    room: u32,
    linker: Linker<InstanceState>,
    cache: Option<cache::CompileCache>,
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

impl PluginRuntime {
    /// Builds the engine (pooling allocator, epoch interruption) and starts
    /// the epoch ticker. Compiled plugins are cached in `cache_dir`; calls
    /// into plugins and the connections of their grants run on `runtime`.
    pub fn new(cache_dir: Option<PathBuf>, runtime: Handle) -> Result<Arc<Self>> {
        Self::with_room(cache_dir, runtime, room::MIN_INSTANCES)
    }

    /// Like [`PluginRuntime::new`], with room for `room` plugin instances at
    /// once ([`room::room_for`] sizes it from the backends).
    pub fn with_room(cache_dir: Option<PathBuf>, runtime: Handle, room: u32) -> Result<Arc<Self>> {
        // Compiling a plugin version is background work: its threads yield
        // to the ones serving requests (a reload compiles while clients
        // work). The pool may exist already (another server in-process).
        let _ = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("vsamrd-compile-{i}"))
            .start_handler(|_| super::background::lower_priority())
            .build_global();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(room::pool(room)));
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
        let cache = cache_dir
            .map(|dir| {
                let shown = dir.display().to_string();
                cache::CompileCache::open(dir)
                    .with_context(|| format!("creating plugin cache {shown}"))
            })
            .transpose()?;
        Ok(Arc::new(Self {
            engine,
            room,
            linker,
            cache,
            runtime,
        }))
    }

    /// How many plugin instances it holds at once.
    pub fn room(&self) -> u32 {
        self.room
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
        match &self.cache {
            Some(cache) => ah(cache.compile(&self.engine, content_hash, bytes)),
            None => ah(Component::new(&self.engine, bytes)),
        }
    }
}

/// The environment variable every plugin instance finds this process's
/// boot in (see [`boot`]).
pub const BOOT_VARIABLE: &str = "VSAMRD_BOOT";

/// The environment variable every plugin instance finds its backend's
/// name in: two backends of one server may share a store (a bucket and
/// prefix), and a record one leaves there must not be taken for the
/// other's.
pub const BACKEND_VARIABLE: &str = "VSAMRD_BACKEND";

/// The environment variable every plugin instance finds its [`Role`] in:
/// a plugin that leaves a record of work in progress in shared storage
/// (the object store's undo record) may act on one its own backend's
/// failed sync left only in the instance that writes, since a reader or a
/// health check runs beside the writer and would undo a sync under way.
pub const ROLE_VARIABLE: &str = "VSAMRD_ROLE";

/// What an instance is for, as [`ROLE_VARIABLE`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// The instance that runs its backend's writes: one at a time per
    /// backend in a start of vsamrd (a swap's next writer makes its first
    /// call once the one before is gone), the only one that syncs.
    Writer,
    /// Any other: a backend's readers, a reload's health check, a tool's.
    #[default]
    Reader,
}

impl Role {
    /// The variable's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

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
    hex::encode(Sha256::digest(bytes))
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
            applied_place: None,
        }
    }
}

/// wasmtime has its own error type; this makes it an `anyhow::Error` so
/// `.context(...)` applies.
fn ah<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}
