//! The mirrors and the change stream of a running server, over its change
//! log: started with the server, changed by a reload, asked by the write
//! path (may a write run, have the sync mirrors applied it) and by the
//! operator (`vsamr admin mirror ...`).

use super::capture::Capture;
use super::change::{Change, Operation};
use super::log::{ChangeLog, Prepared};
use super::mirror::Mirror;
use super::outboxes::Outboxes;
use super::stream::Stream;
use crate::after_panic::{LockOrStop, spawn_essential};
use crate::config::{ChangeSettings, Config, MirrorRule, StreamSettings};
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, CallError, Reply};
use crate::vsam::Shared;
use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use vsam_plugin_sdk::{Direction, Start, StoreError};
use vsam_protocol::admin::{MirrorVerifyRow, MirrorsReport};

/// What `followed.json` remembers: which run of the server this is, and
/// which datasets it followed, so a mirror knows whether the changes it
/// waits for were all recorded while it was away.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Followed {
    run: u64,
    patterns: Vec<String>,
}

/// The write path's way to the followers: empty while nothing follows.
#[derive(Default)]
pub struct ChangeHub {
    running: ArcSwapOption<Followers>,
}

impl ChangeHub {
    /// The followers, if any.
    pub fn followers(&self) -> Option<Arc<Followers>> {
        self.running.load_full()
    }

    /// Why the change log's directory counts as lost, if it does (see
    /// [`Capture::lose`]).
    pub fn lost(&self) -> Option<Arc<String>> {
        self.running.load().as_ref()?.capture.lost()
    }

    pub(crate) fn set(&self, followers: Option<Arc<Followers>>) {
        self.running.store(followers);
    }

    /// Why a write to `dataset` (on backend `primary`) must not run now, if
    /// it must not (see [`Mirror::refusal`]).
    pub fn admit(&self, dataset: &str, primary: &str) -> Result<(), String> {
        // Looked at in place too: cloning the `Arc` on every write is an
        // atomic count that every runtime thread contends for.
        let running = self.running.load();
        let Some(followers) = running.as_ref() else {
            return Ok(());
        };
        if let Some(why) = followers.capture.lost()
            && followers.capture.wants(dataset)
        {
            return Err(why.to_string());
        }
        // On every write: the mirrors are looked at in place, not copied.
        let refusal = followers
            .published
            .load()
            .iter()
            .filter(|mirror| mirror.covers(dataset, primary))
            .find_map(|mirror| mirror.refusal(&followers.log));
        refusal.map_or(Ok(()), Err)
    }

    /// Waits until the sync mirrors of `dataset` applied every change
    /// committed so far (the caller's among them).
    pub async fn confirm(&self, dataset: &str, primary: &str) -> Result<(), String> {
        // Only sync mirrors make a write wait (none, usually: then nothing
        // is cloned or allocated).
        let (sequence, sync) = {
            let running = self.running.load();
            let Some(followers) = running.as_ref() else {
                return Ok(());
            };
            let sync: Vec<Arc<Mirror>> = followers
                .published
                .load()
                .iter()
                .filter(|mirror| mirror.is_sync() && mirror.covers(dataset, primary))
                .cloned()
                .collect();
            (followers.log.last_committed(), sync)
        };
        for mirror in sync {
            mirror.confirm(sequence).await?;
        }
        Ok(())
    }
}

/// The change stream's writer and its task.
struct StreamTask {
    writer: Arc<Stream>,
    /// Set to end the task.
    ended: Arc<AtomicBool>,
    /// Taken by whoever waits for it to end.
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Longest a reload waits for the change stream's task to end before it
/// opens the stream with new settings: a task ends within a second of
/// being told, unless its last write or save waits on a table that does
/// not answer.
const STREAM_END_LIMIT: Duration = Duration::from_secs(30);

/// The running followers (see the module documentation).
pub struct Followers {
    /// The changes directory this server opened at start: the log's, and
    /// its mirrors' and stream's (a reload that names another one takes
    /// effect at the next start).
    dir: PathBuf,
    log: Arc<ChangeLog>,
    capture: Arc<Capture>,
    settings: Mutex<ChangeSettings>,
    mirrors: Mutex<BTreeMap<String, Arc<Mirror>>>,
    /// The mirrors as the write path reads them, without a lock: replaced
    /// whole by each configuration.
    published: arc_swap::ArcSwap<Vec<Arc<Mirror>>>,
    stream: Mutex<Option<StreamTask>>,
    run: u64,
    /// The patterns followed in the run before this one.
    before: Vec<String>,
    shared: Weak<Shared>,
    /// Set once the first configuration is applied.
    configured: AtomicBool,
    /// This server's hold on the change log's directory, until it stops.
    lock: Mutex<Option<Arc<crate::local_storage::StorageLock>>>,
    /// The mirrors' and the stream's tasks.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The backends' change outboxes.
    outboxes: Outboxes,
}

impl Followers {
    /// Opens the change log in the configured directory, settles the
    /// groups a stop left in doubt, and starts the mirrors and the stream.
    /// Nothing (and no file) when nothing follows and nothing did.
    pub async fn start(config: &Config, shared: &Arc<Shared>) -> anyhow::Result<()> {
        let settings = &config.changes;
        let patterns = settings.followed(&config.mirrors);
        let dir = &settings.directory;
        if patterns.is_empty() && !dir.exists() {
            return Ok(());
        }
        // The directory may be outside the data dir: one server's only,
        // claimed before anything in it is read or written.
        let lock = crate::local_storage::claim_change_directory(dir, &config.server.data_dir)?;
        crate::paths::make_private_dir(&dir.join("mirrors"))
            .map_err(|e| anyhow::anyhow!("change log {}: cannot make it: {e}", dir.display()))?;
        let before = read_followed(dir)?;
        let run = before.run + 1;
        write_followed(dir, run, &patterns)?;
        forget_removed_mirrors(dir, config, shared);
        if patterns.is_empty() {
            return Ok(());
        }
        let (log, doubt) = ChangeLog::open(&dir.join("log"), settings.segment_bytes)?;
        let capture = Arc::new(Capture::new(log.clone(), patterns, settings.strict));
        let followers = Arc::new(Self {
            dir: dir.clone(),
            log: log.clone(),
            capture: capture.clone(),
            settings: Mutex::new(settings.clone()),
            mirrors: Mutex::new(BTreeMap::new()),
            published: Default::default(),
            stream: Mutex::new(None),
            run,
            before: before.patterns,
            shared: Arc::downgrade(shared),
            configured: AtomicBool::new(false),
            lock: Mutex::new(Some(Arc::new(lock))),
            tasks: Mutex::new(Vec::new()),
            outboxes: Outboxes::default(),
        });
        // What the log lost or left in doubt that an outbox holds first:
        // each backend's groups stay in its order.
        let mut doubt = doubt;
        let backends = super::outboxes::databases(shared.routing().backends.values());
        let later = followers
            .outboxes
            .recover_all(&log, &capture, &backends, &mut doubt)
            .await;
        followers
            .outboxes
            .remove_unwritten_lanes(&log, &backends, &later, &mut doubt)
            .await;
        if !later.is_empty() {
            spawn_essential(
                "the change log's recovery of the outboxes it could not read at start",
                recover_later(Arc::downgrade(&followers), later),
            );
        }
        let mut unsettled = Vec::new();
        for prepared in doubt {
            if let Err(prepared) = settle(&log, shared, prepared).await {
                unsettled.push(prepared);
            }
        }
        if !unsettled.is_empty() {
            spawn_essential(
                "the change log's settling of the groups left in doubt at start",
                settle_later(log.clone(), Arc::downgrade(shared), unsettled),
            );
        }
        for backend in shared.routing().backends.values() {
            backend.set_capture(Some(capture.clone()));
        }
        followers.configure(config).await?;
        spawn_essential(
            "the change log's removal of what every follower has applied",
            retain(followers.clone()),
        );
        spawn_essential(
            "the change log's settling of groups whose COMMIT went unanswered",
            settle_doubts(Arc::downgrade(&followers)),
        );
        shared.changes.set(Some(followers));
        Ok(())
    }

    /// Applies a reloaded configuration: followed patterns, mirrors added,
    /// changed or removed, the stream on or off.
    pub async fn configure(&self, config: &Config) -> anyhow::Result<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        self.capture
            .set_patterns(config.changes.followed(&config.mirrors));
        self.capture.set_strict(config.changes.strict);
        *self.settings.lock_or_stop() = config.changes.clone();
        self.configure_mirrors(config)?;
        drop(shared);
        let stream_dir = self.dir.join("stream");
        self.configure_stream(config.changes.stream.as_ref(), &stream_dir)
            .await?;
        self.configured.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Mirrors added, changed or removed by `config`.
    fn configure_mirrors(&self, config: &Config) -> anyhow::Result<()> {
        let dir = &self.dir;
        let head = self.log.last_committed();
        let mut mirrors = self.mirrors.lock_or_stop();
        let wanted: BTreeMap<String, MirrorRule> = config
            .mirrors
            .iter()
            .flat_map(|rule| rule.backends.iter().map(move |b| (b.clone(), rule.clone())))
            .collect();
        mirrors.retain(|backend, mirror| {
            let keep = wanted.contains_key(backend);
            if !keep {
                tracing::info!(mirror = %backend, "the mirror was removed from the configuration: it stops following");
                mirror.remove();
            }
            keep
        });
        for (backend, rule) in wanted {
            if let Some(mirror) = mirrors.get(&backend) {
                if *mirror.rule() != rule {
                    mirror.set_rule(rule);
                }
                continue;
            }
            // Followed without a break if the run before followed its
            // datasets and it starts with this run (not added by a reload).
            let continuous =
                !self.configured.load(Ordering::SeqCst) && self.before.contains(&rule.datasets);
            let mirror = Mirror::new(
                &backend,
                rule,
                dir.join("mirrors").join(format!("{backend}.json")),
                self.run,
                continuous,
                head,
            )?;
            let task = spawn_essential(
                format!("mirror {backend} in step"),
                mirror.clone().run(self.log.clone(), self.shared.clone()),
            );
            self.tasks.lock_or_stop().push(task);
            mirrors.insert(backend, mirror);
        }
        self.published
            .store(Arc::new(mirrors.values().cloned().collect()));
        Ok(())
    }

    /// Turns the change stream on or off, or moves it to new settings: the
    /// task of the settings before ends first (its last lines written, its
    /// position saved), then the stream opens as at a start, so that a
    /// stream going on in the same files continues from its last line and
    /// no two tasks ever write them. The old task stays in its place (and
    /// the log keeps what it has not written) until the new one is.
    async fn configure_stream(
        &self,
        wanted: Option<&StreamSettings>,
        dir: &Path,
    ) -> anyhow::Result<()> {
        let ending = {
            let mut current = self.stream.lock_or_stop();
            match (wanted, current.as_mut()) {
                (None, None) => return Ok(()),
                (Some(settings), Some(task))
                    if task.writer.settings() == settings && !task.ended.load(Ordering::SeqCst) =>
                {
                    return Ok(());
                }
                (_, Some(task)) => {
                    task.ended.store(true, Ordering::SeqCst);
                    task.task.take()
                }
                (Some(_), None) => None,
            }
        };
        if let Some(mut ending) = ending
            && tokio::time::timeout(STREAM_END_LIMIT, &mut ending)
                .await
                .is_err()
        {
            // Still ending: it keeps its place (and the log what it has not
            // written), so that the next reload waits for it again rather
            // than open its files beside it.
            if let Some(task) = self.stream.lock_or_stop().as_mut() {
                task.task = Some(ending);
            }
            anyhow::bail!(
                "the change stream's task did not end within {} s (its last write or save waits on its file or table): it stops once it has, and the next reload applies the stream's settings",
                STREAM_END_LIMIT.as_secs()
            );
        }
        let Some(settings) = wanted else {
            *self.stream.lock_or_stop() = None;
            tracing::info!("change stream: off");
            return Ok(());
        };
        let head = self.log.last_committed();
        let (writer, after) = Stream::open(dir, settings.clone(), head)?;
        let ended = Arc::new(AtomicBool::new(false));
        let task = spawn_essential(
            "the change stream written",
            writer
                .clone()
                .run(self.log.clone(), after, self.shared.clone(), ended.clone()),
        );
        tracing::info!(after, "change stream: on, to {}", writer.report().file);
        *self.stream.lock_or_stop() = Some(StreamTask {
            writer,
            ended,
            task: Some(task),
        });
        Ok(())
    }

    /// Ends the mirrors' and the stream's tasks (each saves its position)
    /// and lets go of the change log's directory: the server has stopped
    /// serving, and another (in this process too) may take it at once.
    pub async fn stop(&self) {
        for mirror in self.mirrors.lock_or_stop().values() {
            mirror.end();
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock_or_stop());
        if let Some(mut stream) = self.stream.lock_or_stop().take() {
            stream.ended.store(true, Ordering::SeqCst);
            tasks.extend(stream.task.take());
        }
        for task in tasks {
            // A task past its last batch ends at once; one waiting on a
            // store that does not answer is left behind after 10 s.
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.lock.lock_or_stop().take();
    }

    /// The lock on the change log's directory while this server holds it,
    /// for `reload::storage` to look at: the directory taken from under
    /// the running server makes the capture refuse ([`Capture::lose`]).
    pub fn directory_lock(&self) -> Option<Arc<crate::local_storage::StorageLock>> {
        self.lock.lock_or_stop().clone()
    }

    /// The change log's directory was taken from under the server: the
    /// capture refuses what it would record ([`Capture::lose`]) and the
    /// mirrors stop, saying `why`. False if it was lost already.
    pub fn lose(&self, why: String) -> bool {
        if !self.capture.lose(why.clone()) {
            return false;
        }
        for mirror in self.mirrors.lock_or_stop().values() {
            mirror.stop_for_lost_log(why.clone());
        }
        true
    }

    /// The change log.
    pub fn log(&self) -> &Arc<ChangeLog> {
        &self.log
    }

    /// The capture every backend records with.
    pub fn capture(&self) -> &Arc<Capture> {
        &self.capture
    }

    /// The mirrors that keep a copy of `dataset` (on backend `primary`).
    pub fn mirrors_of(&self, dataset: &str, primary: &str) -> Vec<Arc<Mirror>> {
        self.published
            .load()
            .iter()
            .filter(|m| m.covers(dataset, primary))
            .cloned()
            .collect()
    }

    /// The mirror on `backend`.
    pub fn mirror(&self, backend: &str) -> Option<Arc<Mirror>> {
        self.mirrors.lock_or_stop().get(backend).cloned()
    }

    /// Every mirror's figures and the stream's.
    pub fn report(&self) -> MirrorsReport {
        MirrorsReport {
            committed: self.log.last_committed(),
            log_bytes: self.log.disk_bytes(),
            mirrors: self
                .mirrors
                .lock_or_stop()
                .values()
                .map(|m| m.report(&self.log))
                .collect(),
            stream: self
                .stream
                .lock_or_stop()
                .as_ref()
                .map(|task| task.writer.report()),
        }
    }

    /// Compares `dataset` on its backend and on mirror `backend`, a batch
    /// at a time with writes held off until the mirror has applied every
    /// change committed before.
    pub async fn verify(&self, backend: &str, dataset: &str) -> Result<MirrorVerifyRow, String> {
        let mirror = self
            .mirror(backend)
            .ok_or_else(|| format!("no mirror runs on backend {backend}"))?;
        let shared = self.shared.upgrade().ok_or("the server is stopping")?;
        let (def, _) = shared
            .catalog
            .get(&dataset.to_ascii_uppercase())
            .ok_or_else(|| format!("no dataset {dataset} in the catalog"))?;
        if !mirror.covers(&def.name, &def.backend) {
            return Err(format!(
                "mirror {backend} does not keep a copy of {} (its rule covers {}, and the dataset lives on {})",
                def.name,
                mirror.rule().datasets,
                def.backend
            ));
        }
        let copy = shared
            .backend(backend)
            .ok_or_else(|| format!("backend {backend} is not configured"))?;
        let state = shared
            .acquire(&def)
            .map_err(|status| format!("dataset {}: {}", def.name, status.message))?;
        let log = self.log.clone();
        let wait = mirror.rule().wait.max(Duration::from_secs(30));
        let caught_up = move || -> futures::future::BoxFuture<'static, Result<(), String>> {
            let (mirror, log) = (mirror.clone(), log.clone());
            Box::pin(async move { mirror.caught_up(log.last_committed(), wait).await })
        };
        let cancel = AtomicBool::new(false);
        let verified = crate::migrate::copy::verify_settled(
            &state,
            &state.backend(),
            &copy,
            &caught_up,
            &cancel,
        )
        .await;
        // Both read whole: closed on each as a program's last CLOSE would.
        if let Err(status) = shared.release_and_flush(&state).await {
            tracing::warn!(dataset = %def.name, "after the verify: {}", status.message);
        }
        copy.close_after("the verify", state.plugin_dataset.clone())
            .await;
        let verified = verified?;
        Ok(MirrorVerifyRow {
            backend: backend.to_string(),
            dataset: def.name,
            count: verified.count,
            checksum: verified.checksum,
        })
    }
}

fn read_followed(dir: &Path) -> anyhow::Result<Followed> {
    match std::fs::read(dir.join("followed.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not what vsamrd wrote ({e}); remove it (every mirror then copies everything again)",
                dir.join("followed.json").display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Followed::default()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", dir.join("followed.json").display())),
    }
}

fn write_followed(dir: &Path, run: u64, patterns: &[String]) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(&Followed {
        run,
        patterns: patterns.to_vec(),
    })?;
    crate::durable::replace_file(&dir.join("followed.json"), &bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("followed.json").display()))
}

/// Whether the backend holds what `change` left: the record for an insert
/// or replace, no record for an erase, the dataset for a define, none for
/// a delete. `Err` when the backend cannot say now.
async fn holds(backend: &BackendHandle, change: &Change) -> Result<bool, String> {
    let ds = change.dataset.clone();
    let call = match change.operation {
        Operation::Define(_) | Operation::Delete => {
            Call::Scan(ds, Start::Edge, Direction::Forward, 1)
        }
        _ => Call::Get(ds, change.key.clone()),
    };
    let found = match backend.call(call).await {
        Ok(Reply::Record(record)) => Some(record),
        Ok(Reply::Entries(_)) => Some(None),
        Err(CallError::Store(StoreError::NoSuchDataset)) => None,
        Ok(other) => return Err(format!("answered with {other:?}")),
        Err(error) => return Err(error.to_string()),
    };
    Ok(match (&change.operation, found) {
        (Operation::Insert | Operation::Replace, Some(record)) => record == change.record,
        (Operation::Erase, Some(record)) => record.is_none(),
        (Operation::Define(_), found) => found.is_some(),
        (Operation::Delete, found) => found.is_none(),
        (_, None) => false,
    })
}

/// Settles a group found in doubt: the changes the backend holds were
/// committed (a store that keeps groups whole holds all or none). `Err`
/// gives the group back when its backend cannot be asked now.
async fn settle(log: &ChangeLog, shared: &Shared, prepared: Prepared) -> Result<(), Prepared> {
    let Some(backend) = shared.backend(&prepared.backend) else {
        tracing::warn!(
            "change log: a group of {} changes of backend {} was in doubt, and the backend is no longer configured: it is dropped",
            prepared.changes.len(),
            prepared.backend
        );
        return log.abort(prepared.group).map_err(|_| prepared);
    };
    let mut held = Vec::new();
    for change in &prepared.changes {
        match holds(&backend, change).await {
            Ok(true) => held.push(change.clone()),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(
                    "change log: a group of backend {} is in doubt and the backend cannot be read now ({error}); it is settled when it can",
                    prepared.backend
                );
                return Err(prepared);
            }
        }
    }
    let result = if held.len() == prepared.changes.len() {
        tracing::info!(
            "change log: a group of {} changes of backend {} that a stop left in doubt was committed",
            held.len(),
            prepared.backend
        );
        log.settle(prepared.group, true)
    } else if held.is_empty() {
        log.settle(prepared.group, false)
    } else {
        // A store that does not keep groups whole kept part of it.
        tracing::warn!(
            "change log: backend {} kept {} of the {} changes of a group a stop left in doubt; those are recorded",
            prepared.backend,
            held.len(),
            prepared.changes.len()
        );
        log.settle(prepared.group, false)
            .and_then(|()| log.prepare(&prepared.backend, &held))
            .and_then(|group| log.settle(group, true))
    };
    result.map_err(|error| {
        tracing::error!("{error}");
        prepared
    })
}

/// Settles the groups whose backend could not be asked at start, as soon
/// as it can.
async fn settle_later(log: Arc<ChangeLog>, shared: Weak<Shared>, mut waiting: Vec<Prepared>) {
    while !waiting.is_empty() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut still = Vec::new();
        for prepared in waiting {
            if let Err(prepared) = settle(&log, &shared, prepared).await {
                still.push(prepared);
            }
        }
        waiting = still;
    }
}

/// Reads back the outboxes that could not be read at start, as soon as
/// they can be.
async fn recover_later(followers: Weak<Followers>, mut waiting: Vec<super::outboxes::Database>) {
    while !waiting.is_empty() {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(followers) = followers.upgrade() else {
            return;
        };
        // Groups in doubt were handed to the settling at start.
        let mut doubt = Vec::new();
        waiting = followers
            .outboxes
            .recover_all(&followers.log, &followers.capture, &waiting, &mut doubt)
            .await;
    }
}

/// Mirrors removed from the configuration while the server was down (a
/// state file in `DIR/mirrors` names each mirror that ran): their names on
/// shared databases are given back (see `crate::fleet::mirrored`) and the
/// records of how far they applied the log removed, as a reload that
/// removes a mirror does, and their state files go.
fn forget_removed_mirrors(dir: &std::path::Path, config: &Config, shared: &Arc<Shared>) {
    let wanted: std::collections::BTreeSet<&String> = config
        .mirrors
        .iter()
        .flat_map(|rule| &rule.backends)
        .collect();
    let Ok(entries) = std::fs::read_dir(dir.join("mirrors")) else {
        return;
    };
    // The log's id, as the claims name it; none if the log never ran.
    let Ok(log_id) = std::fs::read_to_string(dir.join("log").join("id")) else {
        return;
    };
    let log_id = log_id.trim().to_string();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(backend) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".json"))
            .map(str::to_string)
        else {
            continue;
        };
        if wanted.contains(&backend) {
            continue;
        }
        let Some(handle) = shared.backend(&backend) else {
            tracing::warn!(
                mirror = %backend,
                "a mirror removed from the configuration names a backend that is gone: if it kept names on a shared PostgreSQL database, DEFINEs of them there are refused until its rows in _vsamrd_mirrored (mirror = '{backend}') are deleted"
            );
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let Some(place) = handle.applied_place() else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let (shared, log_id) = (Arc::downgrade(shared), log_id.clone());
        tokio::spawn(async move {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if super::mirror::forget_removed(&shared, place, &log_id, &backend).await {
                let _ = std::fs::remove_file(&path);
            }
        });
    }
}

/// Settles the groups whose COMMIT went unanswered (see
/// [`Capture::in_doubt`]), each on a task of its own, for as long as the
/// followers run (they live as long as the server; at its next start every
/// outbox is read back anyway).
async fn settle_doubts(followers: Weak<Followers>) {
    loop {
        let Some(capture) = followers.upgrade().map(|f| f.capture.clone()) else {
            return;
        };
        let doubts = tokio::select! {
            doubts = capture.next_doubts() => doubts,
            // Ends with its followers.
            _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
        };
        for unsettled in doubts {
            spawn_essential(
                "the change log's settling of a group whose COMMIT went unanswered",
                settle_doubt(followers.clone(), unsettled),
            );
        }
    }
}

/// Waits until the transaction that may have committed the group has
/// ended (unless it was committed for certain), then reads the backend's
/// outbox back into the log, as at start: the group takes its place there
/// if it was committed, and the backend writes again. Both are tried again
/// every 2 s while its database cannot be reached or the log written.
async fn settle_doubt(followers: Weak<Followers>, unsettled: super::capture::Unsettled) {
    let super::capture::Unsettled {
        backend,
        group,
        committed,
    } = unsettled;
    loop {
        let Some(followers) = followers.upgrade() else {
            return;
        };
        let Some(shared) = followers.shared.upgrade() else {
            return;
        };
        let database = super::outboxes::databases(shared.routing().backends.values())
            .into_iter()
            .find(|database| database.name == backend);
        drop(shared);
        let Some(database) = database else {
            // Gone with a reload: it writes no more.
            followers.capture.set_recovering(&backend, None);
            return;
        };
        let outcome = match committed {
            true => Ok(None),
            false => followers
                .outboxes
                .await_outcome(&followers.log, &database, group)
                .await
                .map(Some),
        };
        match outcome {
            Ok(made) => {
                if let Some(made) = made {
                    tracing::info!(
                        backend,
                        group,
                        "the commit that got no answer was {}",
                        if made { "made" } else { "not made" }
                    );
                }
                let later = followers
                    .outboxes
                    .recover_all(
                        &followers.log,
                        &followers.capture,
                        std::slice::from_ref(&database),
                        &mut Vec::new(),
                    )
                    .await;
                if !later.is_empty() {
                    tokio::spawn(recover_later(Arc::downgrade(&followers), later));
                }
                return;
            }
            Err(error) => tracing::warn!(
                backend,
                group,
                "cannot learn yet whether a commit that got no answer was made ({error}); the backend's writes wait"
            ),
        }
        drop(followers);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// How often the outbox rows the log holds durably are deleted: an SQLite
/// outbox is emptied by its backend's writer between two groups, which
/// wait for it, so a second's rows (a few milliseconds of work) rather
/// than five seconds' (up to 60 ms measured under 8 writers).
const EMPTY_EVERY: Duration = Duration::from_secs(1);

/// Removes the log segments every consumer has passed, and the outbox rows
/// the log holds durably, every [`EMPTY_EVERY`].
async fn retain(followers: Arc<Followers>) {
    let weak = Arc::downgrade(&followers);
    drop(followers);
    loop {
        tokio::time::sleep(EMPTY_EVERY).await;
        let Some(followers) = weak.upgrade() else {
            return;
        };
        if followers.capture.lost().is_some() {
            // Its directory was taken away (said once, by the storage
            // watcher): nothing is recorded any more, nothing to remove.
            return;
        }
        let mut oldest = followers.log.last_committed();
        for mirror in followers.mirrors.lock_or_stop().values() {
            if !mirror.is_stopped() {
                oldest = oldest.min(mirror.persisted());
            }
        }
        if let Some(task) = followers.stream.lock_or_stop().as_ref() {
            oldest = oldest.min(task.writer.persisted());
        }
        // Segments go only once the outbox rows of the groups in them are
        // gone: a row the log no longer holds would be taken back twice.
        let log = followers.log.clone();
        if let Err(error) = super::off_runtime(move || log.make_durable()).await {
            tracing::warn!("{error}");
            continue;
        }
        let Some(shared) = followers.shared.upgrade() else {
            return;
        };
        let backends = super::outboxes::databases(shared.routing().backends.values());
        drop(shared);
        if !followers
            .outboxes
            .empty(&followers.log, &followers.capture, &backends)
            .await
        {
            continue;
        }
        let log = followers.log.clone();
        if let Err(error) = super::off_runtime(move || log.retain_after(oldest)).await {
            tracing::warn!("change log: cannot remove segments every consumer has read: {error}");
        }
    }
}
