//! What one plugin instance holds: its WASI context, the grants of its
//! backend (SQL, object store), its memory limits, and the host functions
//! it may call.

use crate::runtime::bindings::{wit_log, wit_types};
use crate::runtime::objects::ObjectGrant;
use crate::runtime::objects::host::BucketAccess;
use crate::runtime::settings::BackendSettings;
use crate::runtime::sql::{SqlGrant, SqlSession};
use crate::runtime::storage_faults::{MeetsFaults, StorageFaults};
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use wit_log::Level;

/// The limits of an instance's store, noting the linear memory its
/// instance holds (for `/metrics`): the memories it made and grew.
pub(super) struct MeasuredLimits {
    pub(super) limits: StoreLimits,
    pub(super) memory: u64,
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
    pub(super) wasi: WasiCtx,
    pub(super) sql: SqlSession,
    pub(super) objects: BucketAccess,
    pub(super) table: ResourceTable,
    pub(super) limits: MeasuredLimits,
    pub(super) backend: String,
    pub(super) log: bool,
    /// The cause its log lines are limited under (`plugin BACKEND`).
    pub(super) log_cause: String,
    /// The panic message the plugin reported (the SDK's panic hook logs it
    /// just before the instance aborts), for the fault's description.
    pub(super) panic: Option<String>,
    /// Epoch ticks the running call may still use (see `store::on_epoch_tick`).
    pub(super) ticks_left: u64,
    /// Faults its file I/O meets (see [`crate::runtime::storage_faults`]).
    pub(super) storage_faults: Option<Arc<StorageFaults>>,
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
        let message = crate::log_limit::foreign_line(&message);
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
                SqlGrant::new(url, timeout, settings.memory_limit, runtime)
                    .with_context(|| format!("backend {}: database {url}", settings.name))
            })
            .transpose()?;
        // One object request may take at most 40% of the call limit, so a
        // plugin that meets a dead store still answers within it.
        let bucket = settings
            .bucket
            .as_ref()
            .map(|spec| {
                ObjectGrant::new(spec, timeout * 2 / 5, settings.memory_limit, runtime)
                    .with_context(|| format!("backend {}: {spec}", settings.name))
            })
            .transpose()?;
        Ok(Self { database, bucket })
    }
}
