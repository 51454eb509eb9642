//! The sandboxed instance that serves one backend: instantiated on the
//! first call and after a fault, each call run under its limits.

use crate::log_limit::limited;
use crate::runtime::bindings::{self, wit_types};
use crate::runtime::call::{Call, CallError, CallFuture, CallResult, RecordStore, Reply};
use crate::runtime::convert;
use crate::runtime::objects::host::BucketAccess;
use crate::runtime::settings::BackendSettings;
use crate::runtime::sql::SqlSession;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{ResourceTable, TypedFunc};
use wasmtime::{Store, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::instance::MeasuredLimits;
use super::pieces::{self, GetMany};
use super::{
    BACKEND_VARIABLE, BOOT_VARIABLE, CALL_GRACE, EPOCH_TICK, Grants, InstanceState, LoadedPlugin,
    ROLE_VARIABLE, Role, ah, boot,
};

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
    /// What its instances are for (see [`Role`]).
    role: Role,
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
            role: Role::Reader,
        }
    }

    /// The same store, its instances told they are `role` (a new store's
    /// are readers: only [`crate::runtime::start_stores`] makes a writer).
    pub fn with_role(self, role: Role) -> Self {
        Self { role, ..self }
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
                self.role,
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
                limited!(error, &format!("fault of backend {}", self.settings.name), backend = %self.settings.name, "{message}");
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
            "plugin {} of backend {} ran longer than the limit of {} ms in `{function}`; the instance was replaced{}",
            self.plugin.name,
            self.settings.name,
            self.settings.call_timeout_ms,
            self.raise_the_limit()
        );
        limited!(error, &format!("fault of backend {}", self.settings.name), backend = %self.settings.name, "{message}");
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
                        "exceeded its memory limit of {} MiB (`memory_limit_mb` of [backends.{}]: raise it if the data it serves needs more)",
                        self.settings.memory_limit >> 20,
                        self.settings.name
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
            "plugin {} of backend {} {what} in `{}`; the instance was replaced{}",
            self.plugin.name,
            self.settings.name,
            call.name(),
            if cause == "timeout" {
                self.raise_the_limit()
            } else {
                String::new()
            }
        );
        (cause, message)
    }

    /// What an operator can do about a call past its limit: a plugin that
    /// hangs is a bug, but a call may also need longer for the data (the
    /// first call on a dataset of a million objects lists them all; a new
    /// connection to an SQLite file reads the schema of every table), and
    /// then every call fails the same way until the limit is raised.
    fn raise_the_limit(&self) -> String {
        format!(
            " (`call_timeout_ms` of [backends.{}]: if calls on the data it serves need longer, raise it)",
            self.settings.name
        )
    }
}

/// An instance's table of WASI resources (open files, streams, pollables),
/// bounded by [`max_resources`].
fn resource_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(max_resources());
    table
}

/// The most resources one instance may hold: half the files this process
/// may open (at least 256). Every open file of a plugin is a file of
/// vsamrd's: without a bound (wasmtime's is a million) one plugin opening
/// files in a loop took every descriptor vsamrd had, and the server could
/// accept no connection and open no database. Half, not less: the CSV
/// plugin keeps a journal open for each dataset it has served.
pub fn max_resources() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let files = usize::try_from(crate::machine::open_files()).unwrap_or(usize::MAX);
        (files / 2).max(256)
    })
}

/// A new instance of `plugin` for a backend with `settings` and `grants`,
/// its `init` run. (A free function: its future holds only what it reads,
/// not the store, so it can move between threads.)
async fn instantiate(
    plugin: &LoadedPlugin,
    settings: &BackendSettings,
    grants: &Grants,
    deadline_ticks: u64,
    role: Role,
) -> Result<Live, Started> {
    let mut wasi = WasiCtxBuilder::new();
    // A file operation runs on the thread that runs the call rather
    // than hop to tokio's blocking pool and back: a read of a local file
    // is short, and a write group waiting on a slow disk's fsync runs
    // where blocking is allowed (see `worker::generation::run_batch`).
    wasi.allow_blocking_current_thread(true);
    wasi.env(BOOT_VARIABLE, boot());
    wasi.env(BACKEND_VARIABLE, &settings.name);
    wasi.env(ROLE_VARIABLE, role.as_str());
    if let Some(dir) = &settings.directory {
        crate::paths::make_private_dir(dir)
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
        objects: BucketAccess::new(grants.bucket.clone(), settings.storage_faults.clone()),
        table: resource_table(),
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
            Some(get_many) => pieces::get_many(get_many, ctx, ds, keys)
                .await
                .map(|r| r.map(Reply::Records)),
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
        Call::Scan(ds, from, dir, limit) => pieces::scan(store, ctx, ds, from, *dir, *limit)
            .await
            .map(|r| r.map(Reply::Entries)),
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

    fn stage_outbox(&mut self, row: crate::runtime::sql::outbox::OutboxRow) -> bool {
        self.live
            .as_mut()
            .is_some_and(|live| live.store.data_mut().sql.stage_outbox(row))
    }

    fn outbox_outcome(&mut self) -> crate::runtime::sql::outbox::Outcome {
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
