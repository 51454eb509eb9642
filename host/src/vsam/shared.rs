//! State shared by all connections: catalog, backends, open datasets.

use super::dataset::DatasetState;
use crate::catalog::{Catalog, DatasetDef};
use crate::config::Config;
use crate::runtime::BackendHandle;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vsam_protocol::{Status, open_error};

/// Limits every connection lives with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame.
    pub max_frame: u32,
    /// Most records per batched GET.
    pub max_batch: u32,
    /// Most opens per connection.
    pub max_open_per_connection: usize,
    /// Most strings per open.
    pub max_strings: u16,
}

/// Everything sessions share.
pub struct Shared {
    /// The catalog.
    pub catalog: Catalog,
    /// Running backends by name.
    pub backends: BTreeMap<String, BackendHandle>,
    /// Routing rules and default.
    pub rules: Vec<(String, String)>,
    /// Default backend.
    pub default_backend: Option<String>,
    /// Limits.
    pub limits: Limits,
    open: Mutex<HashMap<String, Arc<DatasetState>>>,
    next_session: AtomicU64,
}

impl Shared {
    /// Shared state for a configuration and its started backends.
    pub fn new(
        config: &Config,
        catalog: Catalog,
        backends: BTreeMap<String, BackendHandle>,
    ) -> Self {
        Self {
            catalog,
            backends,
            rules: config.rules.clone(),
            default_backend: config.default_backend.clone(),
            limits: Limits {
                max_frame: config.server.max_frame,
                max_batch: config.server.max_batch,
                max_open_per_connection: config.server.max_open_per_connection,
                max_strings: config.server.max_strings,
            },
            open: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
        }
    }

    /// A new connection id.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers one more open of `def`, creating its state if needed.
    pub fn acquire(&self, def: &DatasetDef) -> Result<Arc<DatasetState>, Status> {
        let backend = self.backends.get(&def.backend).ok_or_else(|| {
            Status::logical(
                open_error::NOT_AVAILABLE,
                format!(
                    "{} OPEN: its backend {} is not configured in this server",
                    def.name, def.backend
                ),
            )
        })?;
        let mut open = self.open.lock().unwrap();
        let state = open
            .entry(def.name.clone())
            .or_insert_with(|| Arc::new(DatasetState::new(def.clone(), backend.clone())))
            .clone();
        *state.users.lock().unwrap() += 1;
        Ok(state)
    }

    /// Registers a close; returns true when it was the last open (the
    /// caller then flushes the dataset).
    pub fn release(&self, state: &Arc<DatasetState>) -> bool {
        let mut open = self.open.lock().unwrap();
        let mut users = state.users.lock().unwrap();
        *users = users.saturating_sub(1);
        if *users == 0 {
            if open
                .get(&state.def.name)
                .is_some_and(|s| Arc::ptr_eq(s, state))
            {
                open.remove(&state.def.name);
            }
            true
        } else {
            false
        }
    }

    /// True if any connection has the dataset open.
    pub fn is_open(&self, name: &str) -> bool {
        self.open.lock().unwrap().contains_key(name)
    }

    /// Every dataset open now (for the flush at shutdown).
    pub fn open_datasets(&self) -> Vec<Arc<DatasetState>> {
        self.open.lock().unwrap().values().cloned().collect()
    }
}
