//! State shared by all connections: catalog, backends, open datasets.

use super::alternate::AixIndex;
use super::dataset::DatasetState;
use super::deadlock::WaitGraph;
use super::subject::Subject;
use super::unit::{UnitSnapshot, UnitWatch};
use super::unit_memory::UnitMemory;
use crate::after_panic::LockOrStop;
use crate::catalog::{Catalog, DatasetDef};
use crate::config::Config;
use crate::config::UnitRule;
use crate::fleet::{Fleet, FleetRecords};
use crate::runtime::BackendHandle;
use crate::security::AccessPolicy;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vsam_protocol::{Status, Verb, open_error};

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
    /// Largest record a DEFINE may ask for.
    pub max_record: u32,
    /// Most records a unit of work may change before its commit.
    pub max_unit_records: usize,
    /// Most bytes of records a unit of work may hold before its commit.
    pub max_unit_bytes: usize,
    /// How long a unit of work may hold its records (None: no limit).
    pub max_unit_age: Option<std::time::Duration>,
}

/// The running backends and the rules that route new datasets to them: one
/// value, replaced whole by a reload, so a DEFINE never sees a rule that
/// names a backend it cannot find.
pub struct Routing {
    /// Running backends by name.
    pub backends: BTreeMap<String, BackendHandle>,
    /// Routing rules `(pattern, backend)`, first match wins.
    pub rules: Vec<(String, String)>,
    /// Backend for names no rule matches.
    pub default_backend: Option<String>,
}

impl Routing {
    /// The backend a new dataset called `name` goes to.
    pub fn route(&self, name: &str) -> Option<String> {
        crate::catalog::route(name, &self.rules, self.default_backend.as_deref())
    }
}

/// Everything sessions share.
pub struct Shared {
    /// The catalog.
    pub catalog: Catalog,
    routing: ArcSwap<Routing>,
    /// Limits.
    pub limits: Limits,
    access: ArcSwap<AccessPolicy>,
    registry: Mutex<Registry>,
    next_session: AtomicU64,
    connections: AtomicU64,
    /// Every connection's unit of work, for the operator.
    units: Mutex<BTreeMap<u64, Arc<UnitWatch>>>,
    /// Every connection welcomed and not gone, for the operator.
    pub sessions: super::sessions::Sessions,
    /// Which connection waits for which (deadlock detection).
    pub(crate) waits: WaitGraph,
    /// The memory the units of work of all connections hold together.
    pub unit_memory: Arc<UnitMemory>,
    /// `[[units]]` rules (swapped by a reload).
    unit_rules: ArcSwap<Vec<UnitRule>>,
    /// Lock sessions on databases other servers share.
    pub fleet: Fleet,
    /// What the server counts, for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// The S3 buckets this server holds claims on, for `/readyz`.
    buckets: ArcSwap<Vec<Arc<crate::runtime::objects::claim::BucketClaim>>>,
    /// The mirrors and the change stream, if any follow changes.
    pub changes: Arc<crate::changes::ChangeHub>,
    /// Work beside requests (a reload compiling a plugin version), during
    /// which idle polling pauses.
    pub background: crate::runtime::background::BackgroundWork,
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
            routing: ArcSwap::from_pointee(Routing {
                backends,
                rules: config.rules.clone(),
                default_backend: config.default_backend.clone(),
            }),
            limits: Limits {
                max_frame: config.server.max_frame,
                max_batch: config.server.max_batch,
                max_open_per_connection: config.server.max_open_per_connection,
                max_strings: config.server.max_strings,
                max_record: config.server.max_record,
                max_unit_records: config.server.max_unit_records,
                max_unit_bytes: usize::try_from(config.server.max_unit_mb.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
                max_unit_age: (config.server.max_unit_secs > 0)
                    .then(|| std::time::Duration::from_secs(config.server.max_unit_secs)),
            },
            access: ArcSwap::from_pointee(config.access.clone()),
            registry: Mutex::new(Registry::default()),
            next_session: AtomicU64::new(1),
            connections: AtomicU64::new(0),
            units: Mutex::new(BTreeMap::new()),
            sessions: Default::default(),
            waits: WaitGraph::default(),
            unit_memory: Arc::new(UnitMemory::new(
                config
                    .server
                    .units_memory_mb
                    .unwrap_or_else(UnitMemory::default_mib),
            )),
            unit_rules: ArcSwap::from_pointee(config.units.clone()),
            fleet: Fleet::new(&config.server.listen),
            metrics: crate::metrics::Metrics::new(
                config.metrics_datasets.clone(),
                config.tls.is_some(),
            ),
            buckets: ArcSwap::from_pointee(Vec::new()),
            changes: Arc::default(),
            background: Default::default(),
        }
    }

    /// The S3 buckets this server holds now (at start, and after each
    /// reload), which `/readyz` asks.
    pub fn set_buckets(&self, buckets: Vec<Arc<crate::runtime::objects::claim::BucketClaim>>) {
        self.buckets.store(Arc::new(buckets));
    }

    /// The S3 buckets this server holds.
    pub fn buckets(&self) -> Arc<Vec<Arc<crate::runtime::objects::claim::BucketClaim>>> {
        self.buckets.load_full()
    }

    /// Backends and routing rules as they are now.
    pub fn routing(&self) -> Arc<Routing> {
        self.routing.load_full()
    }

    /// Replaces backends and routing rules (a reload).
    pub fn set_routing(&self, routing: Routing) {
        self.routing.store(Arc::new(routing));
    }

    /// A running backend.
    pub fn backend(&self, name: &str) -> Option<BackendHandle> {
        self.routing.load().backends.get(name).cloned()
    }

    /// The clients and access rules as they are now (a reload replaces
    /// them; connections keep their identity, the rules apply at once).
    pub fn access(&self) -> Arc<AccessPolicy> {
        self.access.load_full()
    }

    /// Replaces the access rules (a reload).
    pub fn set_access(&self, policy: AccessPolicy) {
        self.access.store(Arc::new(policy));
    }

    /// The `[[units]]` rule for dataset `name`, if one matches.
    pub fn unit_rule(&self, name: &str) -> Option<UnitRule> {
        UnitRule::find(&self.unit_rules.load(), name).cloned()
    }

    /// Replaces the `[[units]]` rules (a reload): opens from now on follow
    /// them.
    pub fn set_unit_rules(&self, rules: Vec<UnitRule>) {
        self.unit_rules.store(Arc::new(rules));
    }

    /// A new connection id; the connection counts as open until
    /// [`Shared::session_ended`].
    pub fn next_session_id(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// A session is gone.
    pub fn session_ended(&self, session: u64) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
        self.units.lock_or_stop().remove(&session);
        self.sessions.remove(session);
        self.waits.forget(session);
    }

    /// Records each connection's strings hold for update now, over every
    /// open dataset.
    pub fn held_for_update(&self) -> HashMap<u64, u64> {
        let mut held = HashMap::new();
        for state in self.open_datasets() {
            for (session, records) in state.held_for_update() {
                *held.entry(session).or_default() += records;
            }
        }
        held
    }

    /// The status of a request of `waiter` refused because `holder` holds
    /// the record (R15=8 X'14', `detail` saying who). If the refusal closes
    /// a cycle of connections waiting for each other, one unit of work of
    /// the cycle (the waiter's if it has one) is rolled back: its records
    /// are free, and its connection is told.
    pub(crate) fn refused(&self, waiter: u64, holder: u64, refusal: Status) -> Status {
        let Some(cycle) = self.waits.refused(waiter, holder) else {
            return refusal;
        };
        let chain = cycle
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" -> ");
        for victim in &cycle {
            let reason = format!(
                "deadlock: connections {chain} -> {waiter} each waited for a record the next one held; this unit was chosen to end it"
            );
            if self.roll_back_unit(*victim, reason) {
                self.metrics.unit_rolled_back("deadlock");
                tracing::warn!(connection = victim, cycle = %chain, "deadlock between units of work: one rolled back");
                self.waits.forget(*victim);
                break;
            }
        }
        refusal
    }

    /// Registers the unit of work of a new session.
    pub(crate) fn watch_unit(&self, watch: Arc<UnitWatch>) {
        self.units.lock_or_stop().insert(watch.session, watch);
    }

    /// The units of work holding changes now, oldest first.
    pub fn units(&self) -> Vec<UnitSnapshot> {
        let watches: Vec<Arc<UnitWatch>> = self.units.lock_or_stop().values().cloned().collect();
        let mut units: Vec<UnitSnapshot> = watches.iter().filter_map(|w| w.snapshot()).collect();
        units.sort_by_key(|unit| std::cmp::Reverse(unit.age));
        units
    }

    /// Rolls back every unit of work that has held its records longer than
    /// the server's `max_unit_secs`; returns how many.
    pub fn expire_units(&self) -> usize {
        let Some(limit) = self.limits.max_unit_age else {
            return 0;
        };
        let mut expired = 0;
        for unit in self.units() {
            if unit.age <= limit {
                continue;
            }
            let reason = format!(
                "it held {} changed record(s) of {} for more than {} s, the server's max_unit_secs; commit more often",
                unit.records,
                unit.datasets.join(", "),
                limit.as_secs()
            );
            if self.roll_back_unit(unit.session, reason.clone()) {
                self.metrics.unit_rolled_back("expired");
                tracing::warn!(
                    connection = unit.session,
                    "unit of work rolled back: {reason}"
                );
                expired += 1;
            }
        }
        expired
    }

    /// Orders the unit of work of connection `session` rolled back for
    /// `reason`; false if it holds no change.
    pub fn roll_back_unit(&self, session: u64, reason: String) -> bool {
        let watch = self.units.lock_or_stop().get(&session).cloned();
        watch.is_some_and(|watch| watch.doom(reason))
    }

    /// Sessions open now.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// True while some connection has `name` open.
    pub fn is_open(&self, name: &str) -> bool {
        self.registry.lock_or_stop().open.contains_key(name)
    }

    /// The alternate indexes over a base, as the host uses them.
    pub(crate) fn indexes_of(&self, base: &DatasetDef) -> Vec<AixIndex> {
        self.catalog
            .related(&base.name)
            .0
            .iter()
            .filter_map(|def| AixIndex::from_def(def, base.organization))
            .collect()
    }

    /// Registers one more open of `def`, creating its state if needed.
    pub fn acquire(&self, def: &DatasetDef) -> Result<Arc<DatasetState>, Status> {
        let about = Subject::new(&def.name, Verb::Open);
        let backend = self.backend(&def.backend).ok_or_else(|| {
            about.refused(
                open_error::NOT_AVAILABLE,
                format!(
                    "its backend {} is not configured in this server",
                    def.backend
                ),
            )
        })?;
        let mut registry = self.registry.lock_or_stop();
        if registry.deleting.contains(&def.name) {
            return Err(about.refused(open_error::NOT_AVAILABLE, "the dataset is being deleted"));
        }
        let state = registry
            .open
            .entry(def.name.clone())
            .or_insert_with(|| {
                // The first open finds the alternate indexes (later opens
                // share the state; DEFINE AIX needs the base closed).
                let indexes = self.indexes_of(def);
                let fleet = backend
                    .shared_database()
                    .map(|url| FleetRecords::new(self.fleet.session(&url), &def.name));
                Arc::new(DatasetState::new(
                    def.clone(),
                    backend,
                    indexes,
                    fleet,
                    self.changes.clone(),
                ))
            })
            .clone();
        *state.users.lock_or_stop() += 1;
        Ok(state)
    }

    /// Registers the end of a use of `state` (a copy, a verify) and, if
    /// it was the last, flushes the dataset as a last CLOSE does: what read
    /// it whole leaves nothing of it held in its backend's instance.
    pub async fn release_and_flush(&self, state: &Arc<DatasetState>) -> Result<(), Status> {
        match self.release(state) {
            true => state.flush().await,
            false => Ok(()),
        }
    }

    /// Registers a close; returns true when it was the last open (the
    /// caller then flushes the dataset).
    pub fn release(&self, state: &Arc<DatasetState>) -> bool {
        let mut registry = self.registry.lock_or_stop();
        let open = &mut registry.open;
        let mut users = state.users.lock_or_stop();
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

    /// Starts deleting a dataset: refused (`None`) while anyone has it
    /// open; until the guard is dropped, OPENs of it are refused.
    pub fn begin_delete(&self, name: &str) -> Option<DeleteGuard<'_>> {
        let mut registry = self.registry.lock_or_stop();
        if registry.open.contains_key(name) || !registry.deleting.insert(name.to_string()) {
            return None;
        }
        Some(DeleteGuard {
            shared: self,
            name: name.to_string(),
        })
    }

    /// The backend a live migration keeps a second copy of `name` on (the
    /// copy under way, or the old copy after the cutover), if `name` is
    /// moving: that storage is the migration's, which a mirror must not
    /// share, and which a sync of a shared catalog must not take for a
    /// dataset of its own.
    pub fn moving_copy(&self, name: &str) -> Option<BackendHandle> {
        let state = self.registry.lock_or_stop().open.get(name).cloned()?;
        let placement = state.placement();
        placement.mirror.as_ref().map(|copy| copy.backend.clone())
    }

    /// Every dataset open now (for the flush at shutdown).
    pub fn open_datasets(&self) -> Vec<Arc<DatasetState>> {
        self.registry
            .lock_or_stop()
            .open
            .values()
            .cloned()
            .collect()
    }
}

/// Datasets open now, and datasets being deleted (which cannot be opened).
#[derive(Default)]
struct Registry {
    open: HashMap<String, Arc<DatasetState>>,
    deleting: HashSet<String>,
}

/// Keeps a dataset closed to OPENs while a DELETE runs.
pub struct DeleteGuard<'a> {
    shared: &'a Shared,
    name: String,
}

impl Drop for DeleteGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .registry
            .lock_or_stop()
            .deleting
            .remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::call::{Call, CallResult, RecordStore, Reply};

    struct Nothing;

    impl RecordStore for Nothing {
        fn call(&mut self, _call: Call) -> CallResult {
            Ok(Reply::Done)
        }
    }

    #[tokio::test]
    async fn delete_and_open_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse("", "<test>", dir.path()).unwrap();
        let backend = BackendHandle::spawn(
            "b",
            crate::runtime::VersionInfo::native("nothing"),
            Box::new(Nothing),
            Vec::new(),
        )
        .unwrap();
        let catalog = Catalog::open(dir.path(), &[]).unwrap();
        let shared = Shared::new(
            &config,
            catalog,
            BTreeMap::from([("b".to_string(), backend)]),
        );
        let def = DatasetDef {
            name: "A.B".into(),
            organization: vsam_protocol::Organization::Esds,
            key_offset: 0,
            key_length: 0,
            min_record: 1,
            max_record: 10,
            codepage: vsam_plugin_sdk::codepage::CodePage::Ascii,
            backend: "b".into(),
            layout: None,
            relation: None,
        };
        let state = shared.acquire(&def).unwrap();
        assert!(shared.begin_delete("A.B").is_none(), "open: no delete");
        assert!(shared.release(&state), "the last close");
        let guard = shared
            .begin_delete("A.B")
            .expect("closed: delete may start");
        assert!(shared.begin_delete("A.B").is_none(), "one delete at a time");
        let refused = shared.acquire(&def).err().expect("no open during a delete");
        assert_eq!(refused.fdbk, open_error::NOT_AVAILABLE);
        drop(guard);
        assert!(shared.acquire(&def).is_ok());
    }
}
