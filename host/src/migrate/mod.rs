//! Live migration: moving a dataset from one backend to another while
//! programs keep using it (`vsamr admin migrate DATASET --to BACKEND`).
//!
//! 1. Copy: the records are copied in key order, a batch at a time; a
//!    write behind the copy's cursor goes to both backends (IBM's
//!    OWNER=VSAM dual write), one ahead of it only to the old backend,
//!    which the copy will reach ([`crate::vsam::placement`]).
//! 2. Verify: both backends are compared record by record (count and a
//!    SHA-256 over keys and contents), a batch at a time.
//! 3. Cut over: with writes held off for an instant, the journal and the
//!    catalog move the dataset to the new backend and the placement swaps:
//!    the new backend serves, the old one keeps following every write.
//! 4. `--finalize` drops the old copy; `--rollback` (before that) returns
//!    the dataset to it, after checking that both still agree.
//!
//! A failure before the cutover rolls back by itself (the partial copy is
//! removed, or, if its backend is down, journaled and removed at the next
//! restart or by the next migration to that backend). The journal
//! ([`journal`]) makes a restart safe: a copy interrupted by a restart
//! starts again from the beginning; a cut-over migration comes back cut
//! over, the old backend following and first brought level with the new
//! one (a write in flight at a crash may have reached only the new one); a
//! rollback under way is completed. The dataset is never half on each side.

pub mod copy;
pub mod journal;
mod names;

use crate::after_panic::{LockOrStop, spawn_essential};
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, CallError};
use crate::vsam::placement::{Covered, Mirror, Placement};
use crate::vsam::{DatasetState, Shared};
use journal::{Entry, Journal, Stage};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use vsam_plugin_sdk::{Start, StoreError};
use vsam_protocol::admin::MigrationRow;

/// Where a migration is and how far it got.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The phase, as `status` names it.
    pub phase: &'static str,
    /// Records copied.
    pub copied: u64,
    /// Records counted at the start.
    pub total: u64,
    /// Records verified.
    pub verified: Option<u64>,
    /// The verified checksum.
    pub checksum: Option<String>,
    /// A failure, or a note.
    pub message: Option<String>,
    /// When it started.
    pub started: Instant,
    /// When copying ended (for the rate).
    pub copied_at: Option<Instant>,
}

/// One dataset on the move.
pub struct Migration {
    dataset: String,
    from: String,
    to: String,
    state: Arc<DatasetState>,
    progress: Mutex<Progress>,
    cancel: AtomicBool,
    /// The copy, or the leveling after a restart.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held by a rollback or finalize, so two never overlap.
    operation: tokio::sync::Mutex<()>,
}

impl Migration {
    fn row(&self) -> MigrationRow {
        let p = self.progress.lock_or_stop();
        let elapsed = p.started.elapsed().as_secs_f64();
        let copy_time = p
            .copied_at
            .map_or(elapsed, |at| at.duration_since(p.started).as_secs_f64());
        MigrationRow {
            dataset: self.dataset.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            phase: p.phase.into(),
            copied: p.copied,
            total: p.total,
            rate: if copy_time > 0.0 {
                p.copied as f64 / copy_time
            } else {
                0.0
            },
            elapsed_s: elapsed,
            verified: p.verified,
            checksum: p.checksum.clone(),
            message: p.message.clone(),
        }
    }

    fn set_phase(&self, phase: &'static str) {
        self.progress.lock_or_stop().phase = phase;
    }

    fn mirror(&self) -> Option<Arc<Mirror>> {
        self.state.placement().mirror.clone()
    }
}

/// Every migration of this server, and the journal that outlives it.
pub struct Migrations {
    shared: Arc<Shared>,
    journal: Journal,
    active: Mutex<BTreeMap<String, Arc<Migration>>>,
    ended: Mutex<VecDeque<MigrationRow>>,
    /// Set by [`Migrations::stop_all`]: the server is stopping, so no
    /// migration starts any more (one whose start raced the stop begins
    /// cancelled, and the journal keeps it for the next start).
    stopping: AtomicBool,
}

/// How many ended migrations `status` still shows.
const ENDED_SHOWN: usize = 16;

impl Migrations {
    /// The migrations of the server whose data dir holds the journal.
    pub fn open(shared: Arc<Shared>, data_dir: &std::path::Path) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            shared,
            journal: Journal::open(data_dir)?,
            active: Mutex::new(BTreeMap::new()),
            ended: Mutex::new(VecDeque::new()),
            stopping: AtomicBool::new(false),
        }))
    }

    /// Stops the work under way when the server stops, before its backends
    /// do, without undoing it: a copy stops at its next batch and the
    /// journal keeps it as copying, so the next start copies again from the
    /// beginning, as after a crash; a leveling after a restart stops (a
    /// rollback, or the next restart, levels again). Without it a copy
    /// would meet its backends stopping under it, take that for a failure
    /// and roll the migration back.
    pub async fn stop_all(&self) {
        let active: Vec<Arc<Migration>> = {
            // Under the lock `register` holds while it spawns a copy: a
            // migration registered after this sees `stopping`.
            let active = self.active.lock_or_stop();
            self.stopping.store(true, Ordering::Relaxed);
            active.values().cloned().collect()
        };
        for m in active {
            let Some(task) = m.task.lock_or_stop().take() else {
                continue;
            };
            // "cut-over" is set last, once the cutover is whole: what runs
            // then is a leveling, or a copy task about to end.
            if m.progress.lock_or_stop().phase == "cut-over" {
                task.abort();
            } else {
                tracing::info!(dataset = %m.dataset, to = %m.to, "the server stops: the migration's copy stops, and starts again from the beginning at the next start");
                m.cancel.store(true, Ordering::Relaxed);
            }
            let _ = task.await;
        }
    }

    /// Backends a migration copies to or from (a reload may not remove them).
    pub fn backends_in_use(&self) -> Vec<String> {
        self.active
            .lock_or_stop()
            .values()
            .flat_map(|m| [m.from.clone(), m.to.clone()])
            .collect()
    }

    /// Migrations recently ended, oldest first, then those running or cut
    /// over: one row a dataset, its current state.
    pub fn rows(&self) -> Vec<MigrationRow> {
        let mut rows: Vec<MigrationRow> = self.ended.lock_or_stop().iter().cloned().collect();
        rows.extend(self.active.lock_or_stop().values().map(|m| m.row()));
        rows
    }

    /// Starts moving `dataset` to backend `to`; the copy runs in the
    /// background.
    pub async fn start(self: &Arc<Self>, dataset: &str, to: &str) -> Result<MigrationRow, String> {
        let dataset = dataset.to_ascii_uppercase();
        if self.stopping.load(Ordering::Relaxed) {
            return Err(format!(
                "the server is stopping: migrate {dataset} again once it has started"
            ));
        }
        let Some((def, _)) = self.shared.catalog.get(&dataset) else {
            return Err(format!("{dataset} is not in the catalog"));
        };
        if def.backend == to {
            return Err(format!("{dataset} is already on backend {to}"));
        }
        if def.relation.is_some() {
            return Err(format!(
                "{dataset} is an alternate index or a path: migrate its base cluster"
            ));
        }
        if !self.shared.catalog.related(&dataset).0.is_empty() {
            return Err(format!(
                "{dataset} has alternate indexes, which live migration does not move yet: DELETE them, migrate, then DEFINE them again and BLDINDEX"
            ));
        }
        let Some(target) = self.shared.backend(to) else {
            return Err(format!(
                "there is no backend {to}; configured: {}",
                self.shared
                    .routing()
                    .backends
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let source = self.backend(&def.backend)?;
        names::fleet_refusal(&self.shared, &dataset, Some(&source), &target).await?;
        if self.active.lock_or_stop().contains_key(&dataset) {
            return Err(format!(
                "{dataset} is already being migrated: see vsamr admin status; finalize or roll it back first"
            ));
        }
        names::target_refusal(&self.shared, &def, &source, &target).await?;
        let state = self
            .shared
            .acquire(&def)
            .map_err(|status| status.message.clone())?;
        if let Err(message) = self.take_over_leftover(&state, &target).await {
            self.shared.release(&state);
            return Err(message);
        }
        if let Err(message) = prepare_target(&state, &target).await {
            self.shared.release(&state);
            return Err(message);
        }
        let entry = Entry {
            dataset: dataset.clone(),
            from: def.backend.clone(),
            to: to.to_string(),
            stage: Stage::Copying,
        };
        if let Err(error) = self.journal_set(entry.clone()) {
            self.shared.release(&state);
            let _ = target
                .replica_call(Call::Destroy(state.plugin_dataset.clone()))
                .await;
            return Err(format!("cannot write the migrations journal: {error:#}"));
        }
        let migration = self.register(entry, state);
        Ok(migration.row())
    }

    fn register(self: &Arc<Self>, entry: Entry, state: Arc<DatasetState>) -> Arc<Migration> {
        let migration = Arc::new(Migration {
            dataset: entry.dataset.clone(),
            from: entry.from,
            to: entry.to,
            state,
            progress: Mutex::new(Progress {
                phase: "counting",
                copied: 0,
                total: 0,
                verified: None,
                checksum: None,
                message: None,
                started: Instant::now(),
                copied_at: None,
            }),
            cancel: AtomicBool::new(false),
            task: Mutex::new(None),
            operation: tokio::sync::Mutex::new(()),
        });
        // A dataset shows one row: its current state.
        self.ended
            .lock_or_stop()
            .retain(|row| row.dataset != entry.dataset);
        let mut active = self.active.lock_or_stop();
        active.insert(entry.dataset, migration.clone());
        if entry.stage == Stage::Copying {
            // A start that raced the server's stop: the copy begins
            // cancelled, and the journal keeps it as copying for the next
            // start (rather than meeting the backends stopping under it
            // and rolling back).
            if self.stopping.load(Ordering::Relaxed) {
                migration.cancel.store(true, Ordering::Relaxed);
            }
            let this = self.clone();
            let running = migration.clone();
            let task = spawn_essential(
                format!("the migration of {} going", migration.dataset),
                async move { this.run(running).await },
            );
            *migration.task.lock_or_stop() = Some(task);
        }
        drop(active);
        migration
    }

    /// Copy, verify, cut over; on failure, roll back.
    async fn run(self: Arc<Self>, m: Arc<Migration>) {
        match self.copy_and_cut_over(&m).await {
            Ok(()) => tracing::info!(
                dataset = %m.dataset,
                from = %m.from,
                to = %m.to,
                "migration cut over; the old copy follows until finalize"
            ),
            Err(reason) if m.cancel.load(Ordering::Relaxed) => {
                tracing::info!(dataset = %m.dataset, "migration stopped: {reason}")
            }
            Err(reason) => {
                tracing::error!(dataset = %m.dataset, to = %m.to, "migration failed: {reason}; rolling back");
                m.progress.lock_or_stop().message = Some(reason);
                self.undo_copy(&m, "failed").await;
            }
        }
    }

    async fn copy_and_cut_over(&self, m: &Migration) -> Result<(), String> {
        let state = &m.state;
        let source = self.backend(&m.from)?;
        let target = self.backend(&m.to)?;
        let total = copy::count(state, &source, &m.cancel).await?;
        m.progress.lock_or_stop().total = total;
        m.set_phase("copying");
        let mirror = Arc::new(Mirror::new(target.clone(), Covered::Nothing));
        {
            let _held = state.hold_writes().await;
            state.set_placement(Placement {
                primary: source.clone(),
                mirror: Some(mirror.clone()),
            });
        }
        copy::copy(state, &source, &mirror, &m.progress, &m.cancel).await?;
        {
            let mut p = m.progress.lock_or_stop();
            p.copied_at = Some(Instant::now());
            p.phase = "verifying";
        }
        let verified = copy::verify(state, &source, &target, Some(&m.progress), &m.cancel).await?;
        // The shared catalogs change with the cutover, alone (see
        // `Fleet::catalog`): a sync meanwhile would find the name on the
        // target's database while this server's catalog says the source.
        let _alone = crate::vsam::shared_catalog::changing(&self.shared).await;
        let held = state.hold_writes().await;
        if let Some(failure) = mirror.failure() {
            return Err(failure);
        }
        // A server that joined the fleet during the copy would go on with
        // the old copy; a dataset of that name defined on the target's
        // database meanwhile would share the copy's storage.
        names::fleet_refusal(&self.shared, &m.dataset, Some(&source), &target).await?;
        names::claim_on_target(&self.shared, &state.def, &source, &target).await?;
        self.journal_set(Entry {
            dataset: m.dataset.clone(),
            from: m.from.clone(),
            to: m.to.clone(),
            stage: Stage::CutOver,
        })
        .map_err(|e| format!("cannot write the migrations journal: {e:#}"))?;
        if let Err(error) = self.set_backend(&m.dataset, &m.to) {
            // The journal says cut over: a restart completes it.
            tracing::error!(dataset = %m.dataset, "catalog not saved at cutover: {error:#}");
        }
        state.set_placement(Placement {
            primary: target,
            mirror: Some(Arc::new(Mirror::new(source, Covered::All))),
        });
        drop(held);
        let mut p = m.progress.lock_or_stop();
        p.phase = "cut-over";
        p.verified = Some(verified.count);
        p.checksum = Some(verified.checksum);
        Ok(())
    }

    /// Undoes a migration that has not cut over: the old backend alone
    /// serves again and the partial copy is removed.
    async fn undo_copy(&self, m: &Migration, phase: &'static str) {
        {
            let _held = m.state.hold_writes().await;
            if let Ok(source) = self.backend(&m.from) {
                m.state.set_placement(Placement {
                    primary: source,
                    mirror: None,
                });
            }
        }
        if let Err(error) = self.journal_finish(&m.dataset, &m.from, &m.to) {
            tracing::error!(dataset = %m.dataset, "cannot update the migrations journal: {error:#}");
        }
        if let Ok(target) = self.backend(&m.to)
            && let Err(left) = self.discard_copy(&m.state, &target, &m.from).await
        {
            let mut p = m.progress.lock_or_stop();
            p.message = Some(match p.message.take() {
                Some(reason) => format!("{reason}; {left}"),
                None => left,
            });
        }
        m.set_phase(phase);
        self.end(m);
    }

    /// Removes the copy of a dataset on `backend`, which does not serve it
    /// (that is `live`). If the backend cannot remove it now, the journal
    /// keeps it as a leftover, removed at the next restart or by the next
    /// migration to that backend; the note saying so is returned.
    async fn discard_copy(
        &self,
        state: &DatasetState,
        backend: &BackendHandle,
        live: &str,
    ) -> Result<(), String> {
        let dataset = &state.def.name;
        match self.remove_copy(state, backend, live).await {
            Ok(()) => {
                if let Err(error) =
                    durably(|| self.journal.remove_leftover(dataset, backend.name()))
                {
                    tracing::error!(%dataset, "cannot update the migrations journal: {error:#}");
                }
                Ok(())
            }
            Err(error) => {
                let note = format!(
                    "the copy on backend {} could not be removed ({error}); it is removed at the next restart or by the next migration to {}",
                    backend.name(),
                    backend.name()
                );
                tracing::error!(%dataset, "{note}");
                let leftover = Entry {
                    dataset: dataset.clone(),
                    from: live.to_string(),
                    to: backend.name().to_string(),
                    stage: Stage::Leftover,
                };
                if let Err(error) = self.journal_set(leftover) {
                    tracing::error!(%dataset, "cannot write the migrations journal: {error:#}; remove the copy on {} by hand", backend.name());
                }
                Err(note)
            }
        }
    }

    /// Removes the copy of a dataset on `backend` (absent storage is fine),
    /// and its name from the shared catalog of that database (see
    /// [`names::withdraw_from`]); the dataset lives on backend `live`.
    async fn remove_copy(
        &self,
        state: &DatasetState,
        backend: &BackendHandle,
        live: &str,
    ) -> Result<(), String> {
        destroy_copy(state, backend).await?;
        let live = self.shared.backend(live);
        names::withdraw_from(&self.shared, &state.def, backend, live.as_ref()).await;
        Ok(())
    }

    /// Before a migration to `target`: removes the copy an earlier, failed
    /// migration left there, or refuses saying why it cannot.
    async fn take_over_leftover(
        &self,
        state: &DatasetState,
        target: &BackendHandle,
    ) -> Result<(), String> {
        let dataset = &state.def.name;
        let left =
            self.journal.entries().into_iter().any(|e| {
                e.stage == Stage::Leftover && e.dataset == *dataset && e.to == target.name()
            });
        if !left {
            return Ok(());
        }
        self.remove_copy(state, target, &state.def.backend)
            .await
            .map_err(|error| {
            format!(
                "backend {} still holds the partial copy of {dataset} a failed migration left, and cannot remove it now: {error}; try again when the backend is reachable",
                target.name()
            )
        })?;
        tracing::info!(%dataset, backend = %target.name(), "the copy a failed migration left is removed");
        durably(|| self.journal.remove_leftover(dataset, target.name()))
            .map_err(|e| format!("cannot update the migrations journal: {e:#}"))
    }

    fn end(&self, m: &Migration) {
        let row = m.row();
        self.active.lock_or_stop().remove(&m.dataset);
        let mut ended = self.ended.lock_or_stop();
        ended.retain(|earlier| earlier.dataset != row.dataset);
        ended.push_back(row);
        while ended.len() > ENDED_SHOWN {
            ended.pop_front();
        }
        if self.shared.release(&m.state) {
            let state = m.state.clone();
            tokio::spawn(async move {
                if let Err(status) = state.flush().await {
                    tracing::warn!("{}", status.message);
                }
            });
        }
    }

    /// Journal and catalog writes end with an fsync: off the async
    /// workers, so a slow disk stalls no other client.
    fn journal_set(&self, entry: Entry) -> anyhow::Result<()> {
        durably(|| self.journal.set(entry))
    }

    fn journal_remove(&self, dataset: &str) -> anyhow::Result<()> {
        durably(|| self.journal.remove(dataset))
    }

    /// Ends `dataset`'s migration, serving from `live`, with its copy on
    /// `copy` journaled for removal until it is removed.
    fn journal_finish(&self, dataset: &str, live: &str, copy: &str) -> anyhow::Result<()> {
        let leftover = Entry {
            dataset: dataset.to_string(),
            from: live.to_string(),
            to: copy.to_string(),
            stage: Stage::Leftover,
        };
        durably(|| self.journal.finish(dataset, leftover))
    }

    fn set_backend(&self, dataset: &str, backend: &str) -> anyhow::Result<()> {
        durably(|| self.shared.catalog.set_backend(dataset, backend))
    }

    fn backend(&self, name: &str) -> Result<BackendHandle, String> {
        self.shared
            .backend(name)
            .ok_or_else(|| format!("backend {name} is no longer configured"))
    }

    fn active(&self, dataset: &str) -> Result<Arc<Migration>, String> {
        let dataset = dataset.to_ascii_uppercase();
        self.active
            .lock_or_stop()
            .get(&dataset)
            .cloned()
            .ok_or_else(|| format!("{dataset} is not being migrated"))
    }

    /// Ends a cut-over migration: the old backend stops following and its
    /// copy is removed.
    pub async fn finalize(&self, dataset: &str) -> Result<MigrationRow, String> {
        let m = self.active(dataset)?;
        let _operation = busy(&m)?;
        if m.progress.lock_or_stop().phase != "cut-over" {
            return Err(format!(
                "{} has not cut over yet (it is {}): wait for it, or roll it back",
                m.dataset,
                m.row().phase
            ));
        }
        // A leveling after a restart works on the copy about to go.
        let leveling = m.task.lock_or_stop().take();
        if let Some(leveling) = leveling {
            leveling.abort();
            let _ = leveling.await;
        }
        let serving = self.backend(&m.to)?;
        // The journal first: while it cannot be written, the old copy keeps
        // following, and a rollback stays possible.
        self.journal_finish(&m.dataset, &m.to, &m.from)
            .map_err(|e| format!("cannot update the migrations journal: {e:#}"))?;
        {
            let _held = m.state.hold_writes().await;
            m.state.set_placement(Placement {
                primary: serving,
                mirror: None,
            });
        }
        if let Ok(old) = self.backend(&m.from)
            && let Err(note) = self.discard_copy(&m.state, &old, &m.to).await
        {
            m.progress.lock_or_stop().message = Some(note);
        }
        m.set_phase("finalized");
        self.end(&m);
        tracing::info!(dataset = %m.dataset, from = %m.from, to = %m.to, "migration finalized; the old copy is removed");
        Ok(m.row())
    }

    /// Returns a dataset to its old backend. Before the cutover the copy
    /// stops; after it, the old copy is first brought level with the new
    /// one (a crash or a failed mirror write may have left it behind), then
    /// both are compared, and a rollback that would lose a write is refused.
    pub async fn rollback(&self, dataset: &str) -> Result<MigrationRow, String> {
        let m = self.active(dataset)?;
        let _operation = busy(&m)?;
        if m.progress.lock_or_stop().phase != "cut-over" {
            m.cancel.store(true, Ordering::Relaxed);
            let task = m.task.lock_or_stop().take();
            if let Some(task) = task {
                let _ = task.await;
            }
            // The copy may have cut over just before it saw the request.
            if m.progress.lock_or_stop().phase != "cut-over" {
                if self.active.lock_or_stop().contains_key(&m.dataset) {
                    self.undo_copy(&m, "rolled-back").await;
                }
                return Ok(m.row());
            }
        }
        let serving = self.backend(&m.to)?;
        let old = self.backend(&m.from)?;
        // A leveling after a restart may still run.
        let leveling = m.task.lock_or_stop().take();
        if let Some(leveling) = leveling {
            let _ = leveling.await;
        }
        m.set_phase("leveling");
        let never = AtomicBool::new(false);
        let mirror = self.faithful_mirror(&m, old.clone()).await;
        if let Err(error) = copy::level(&m.state, &serving, &mirror, &never).await {
            m.set_phase("cut-over");
            return Err(format!(
                "{}: the old copy on {} cannot be brought level ({error}); rolling back now would lose writes: try again when {} is reachable, or finalize",
                m.dataset, m.from, m.from
            ));
        }
        m.set_phase("verifying");
        let verified = copy::verify(&m.state, &serving, &old, None, &never).await;
        m.set_phase("cut-over");
        let verified = verified.map_err(|difference| {
            format!(
                "{}: {difference}; rolling back would lose writes: finalize, or migrate back",
                m.dataset
            )
        })?;
        let entry = Entry {
            dataset: m.dataset.clone(),
            from: m.from.clone(),
            to: m.to.clone(),
            stage: Stage::RollingBack,
        };
        {
            let _held = m.state.hold_writes().await;
            self.journal_set(entry)
                .map_err(|e| format!("cannot write the migrations journal: {e:#}"))?;
            self.set_backend(&m.dataset, &m.from)
                .map_err(|e| format!("cannot save the catalog: {e:#}"))?;
            m.state.set_placement(Placement {
                primary: old,
                mirror: None,
            });
        }
        if let Err(error) = self.journal_finish(&m.dataset, &m.from, &m.to) {
            tracing::error!(dataset = %m.dataset, "cannot update the migrations journal: {error:#}");
        }
        let left = self.discard_copy(&m.state, &serving, &m.from).await.err();
        {
            let mut p = m.progress.lock_or_stop();
            p.phase = "rolled-back";
            p.verified = Some(verified.count);
            p.checksum = Some(verified.checksum);
            p.message = left;
        }
        self.end(&m);
        tracing::info!(dataset = %m.dataset, backend = %m.from, "migration rolled back");
        Ok(m.row())
    }

    /// Picks up the journal after a restart: copies start again, cut-over
    /// migrations come back with the old backend following, rollbacks
    /// under way are completed.
    pub async fn resume(self: &Arc<Self>) {
        for entry in self.journal.entries() {
            if let Err(reason) = self.resume_one(entry.clone()).await {
                tracing::error!(
                    dataset = %entry.dataset,
                    "migration from {} to {} cannot resume: {reason}",
                    entry.from,
                    entry.to
                );
            }
        }
    }

    async fn resume_one(self: &Arc<Self>, entry: Entry) -> Result<(), String> {
        if entry.stage == Stage::Leftover {
            return self.remove_leftover(entry).await;
        }
        let (from, to) = (self.backend(&entry.from)?, self.backend(&entry.to)?);
        let Some((mut def, _)) = self.shared.catalog.get(&entry.dataset) else {
            let _ = self.journal_remove(&entry.dataset);
            return Err("the dataset is no longer in the catalog".into());
        };
        let serving = match entry.stage {
            Stage::Copying | Stage::RollingBack | Stage::Leftover => &entry.from,
            Stage::CutOver => &entry.to,
        };
        if def.backend != *serving {
            self.set_backend(&entry.dataset, serving)
                .map_err(|e| format!("cannot save the catalog: {e:#}"))?;
            def.backend = serving.clone();
        }
        let state = self
            .shared
            .acquire(&def)
            .map_err(|status| status.message.clone())?;
        match entry.stage {
            Stage::Copying => {
                tracing::info!(dataset = %entry.dataset, "a copy interrupted by a restart starts again from the beginning");
                if let Err(error) = self.remove_copy(&state, &to, &entry.from).await {
                    tracing::warn!(dataset = %entry.dataset, "{error}");
                }
                if let Err(message) = prepare_target(&state, &to).await {
                    let _ = self.journal_finish(&entry.dataset, &entry.from, &entry.to);
                    let _ = self.discard_copy(&state, &to, &entry.from).await;
                    self.shared.release(&state);
                    return Err(message);
                }
                self.register(entry, state);
            }
            Stage::CutOver => {
                let mirror = Arc::new(Mirror::new(from, Covered::All));
                state.set_placement(Placement {
                    primary: to.clone(),
                    mirror: Some(mirror.clone()),
                });
                let m = self.register(entry, state);
                {
                    let mut p = m.progress.lock_or_stop();
                    p.phase = "cut-over";
                    p.message = Some(
                        "resumed after a restart: the old copy follows again and is being brought level"
                            .into(),
                    );
                }
                let leveled = m.clone();
                let what = format!("the leveling of {}'s old copy going", m.dataset);
                let task = spawn_essential(what, async move {
                    let never = AtomicBool::new(false);
                    let note = match copy::level(&leveled.state, &to, &mirror, &never).await {
                        Ok(repaired) => {
                            tracing::info!(dataset = %leveled.dataset, backend = %leveled.from, repaired, "the old copy is level with the new one again");
                            format!(
                                "resumed after a restart: the old copy follows again, brought level ({repaired} record(s) repaired)"
                            )
                        }
                        Err(error) => {
                            tracing::warn!(dataset = %leveled.dataset, "the old copy could not be brought level: {error}; a rollback tries again");
                            format!(
                                "resumed after a restart: the old copy follows again but could not be brought level ({error}); a rollback tries again"
                            )
                        }
                    };
                    leveled.progress.lock_or_stop().message = Some(note);
                });
                *m.task.lock_or_stop() = Some(task);
            }
            Stage::RollingBack => {
                let _ = self.journal_finish(&entry.dataset, &entry.from, &entry.to);
                let _ = self.discard_copy(&state, &to, &entry.from).await;
                self.shared.release(&state);
                tracing::info!(dataset = %entry.dataset, "a rollback interrupted by a restart is complete");
            }
            Stage::Leftover => unreachable!("handled above"),
        }
        Ok(())
    }

    /// After a restart: removes a copy a migration could not remove.
    async fn remove_leftover(&self, entry: Entry) -> Result<(), String> {
        let dataset = &entry.dataset;
        let forget = || durably(|| self.journal.remove_leftover(dataset, &entry.to));
        let def = match self.shared.catalog.get(dataset) {
            // The name now lives on that backend again (DELETE and DEFINE):
            // that storage is no leftover.
            Some((def, _)) if def.backend != entry.to => def,
            _ => {
                let _ = forget();
                return Ok(());
            }
        };
        let backend = self.backend(&entry.to)?;
        let state = self
            .shared
            .acquire(&def)
            .map_err(|status| status.message.clone())?;
        let removed = self.remove_copy(&state, &backend, &entry.from).await;
        self.shared.release(&state);
        removed.map_err(|error| {
            format!("the copy a failed migration left on backend {} is still there ({error}); it is tried again at the next restart or migration", entry.to)
        })?;
        tracing::info!(%dataset, backend = %entry.to, "the copy a failed migration left is removed");
        forget().map_err(|e| format!("cannot update the migrations journal: {e:#}"))
    }

    /// The mirror following the dataset, replaced by a fresh one if it
    /// failed (it stops following at its first failure).
    async fn faithful_mirror(&self, m: &Migration, old: BackendHandle) -> Arc<Mirror> {
        let _held = m.state.hold_writes().await;
        if let Some(mirror) = m.mirror().filter(|mirror| mirror.failure().is_none()) {
            return mirror;
        }
        let mirror = Arc::new(Mirror::new(old, Covered::All));
        let primary = m.state.placement().primary.clone();
        m.state.set_placement(Placement {
            primary,
            mirror: Some(mirror.clone()),
        });
        mirror
    }
}

/// Claims the right to roll back or finalize `m`.
fn busy(m: &Migration) -> Result<tokio::sync::MutexGuard<'_, ()>, String> {
    m.operation.try_lock().map_err(|_| {
        format!(
            "{}: a rollback or finalize is already under way: see vsamr admin status",
            m.dataset
        )
    })
}

/// Runs blocking file work, telling a multi-threaded tokio runtime first so
/// it moves its other tasks to another worker.
fn durably<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Makes empty storage for the dataset on the target, which must not hold
/// records of it already.
async fn prepare_target(state: &DatasetState, target: &BackendHandle) -> Result<(), String> {
    let ds = state.plugin_dataset.clone();
    match target
        .replica_call(Call::Create(ds.clone(), state.def.layout.clone()))
        .await
    {
        Ok(_) | Err(CallError::Store(StoreError::AlreadyExists)) => {}
        Err(error) => {
            return Err(format!(
                "backend {} cannot create {}: {error}",
                target.name(),
                state.def.name
            ));
        }
    }
    match target
        .call(Call::Scan(
            ds,
            Start::Edge,
            vsam_plugin_sdk::Direction::Forward,
            1,
        ))
        .await
    {
        Ok(crate::runtime::call::Reply::Entries(entries)) if entries.is_empty() => Ok(()),
        Ok(_) => Err(format!(
            "backend {} already holds records of {} (left from an earlier copy?): remove them there first",
            target.name(),
            state.def.name
        )),
        Err(error) => Err(format!("backend {}: {error}", target.name())),
    }
}

/// Removes a copy's storage (absent storage is fine).
async fn destroy_copy(state: &DatasetState, backend: &BackendHandle) -> Result<(), String> {
    match backend
        .replica_call(Call::Destroy(state.plugin_dataset.clone()))
        .await
    {
        Ok(_) | Err(CallError::Store(StoreError::NoSuchDataset)) => Ok(()),
        Err(error) => Err(format!(
            "backend {} cannot remove the copy of {}: {error}",
            backend.name(),
            state.def.name
        )),
    }
}

#[cfg(test)]
mod tests;
