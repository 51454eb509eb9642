//! A mirror: a backend that keeps a copy of every dataset a `[[mirrors]]`
//! rule names, in step with the change log.
//!
//! It starts with a copy: each dataset is defined on the mirror and
//! brought level with its primary (records the mirror lacks or holds
//! otherwise are written, records only it holds are erased), a batch at a
//! time with writes held off, as live migration does. Then it applies the
//! log's changes from the position it had when the copy began, whole
//! groups at a time, in commit order: each batch as its net effect (each
//! key's last change) in one transaction of the mirror, through the
//! plugin's `mirror.apply`. Applying is idempotent: a record is stored
//! whether or not the mirror holds its key, an erase of a key it lacks is
//! done; so changes applied again after a stop (the position is saved
//! once a second at most, so that its syncs do not compete with the
//! primary's) end where they ended the first time, and a copy that
//! overlapped changes is corrected by them.
//!
//! The position, and which datasets were copied, are saved in
//! `DIRECTORY/mirrors/BACKEND.json`. A mirror that was not followed
//! without a break (new, or left out of the configuration for a while)
//! starts with a copy again.
//!
//! A mirror also records its position beside its target's store (see
//! `applied`), which a restore of the data dir does not take back: a
//! mirror that finds itself recorded past the end of the log at a start
//! holds changes its datasets no longer do (the data dir was restored from
//! an older copy), and copies every dataset again.

mod applied;
mod closing;
mod net;
mod seed;

use crate::after_panic::LockOrStop;
use applied::AppliedRecord;
use closing::OpenOnTarget;
use net::NetChanges;
use seed::give_back_names;

use super::change::{Change, Operation};
use super::log::ChangeLog;
use crate::config::{MirrorMode, MirrorRule, OnFull, OnUnavailable};
use crate::runtime::call::{Call, CallError};
use crate::runtime::{AppliedPlace, BackendHandle};
use crate::vsam::Shared;
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, watch};
use vsam_plugin_sdk::{Dataset, StoreError};
use vsam_protocol::admin::MirrorRow;

/// Changes read from the log per batch (whole groups, so one more group
/// may follow).
const BATCH: usize = 1000;

/// How long an async mirror gathers changes before it applies them (less
/// when a full batch is waiting).
const GATHER: Duration = Duration::from_millis(25);

/// How often a mirror saves its position while it applies changes: each
/// save syncs the log and a file, and a restart replays at most this much
/// (idempotently).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The longest pause between two attempts on a mirror that fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What is saved of a mirror between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(super) struct Saved {
    /// Every change up to this sequence number is applied.
    pub applied: u64,
    /// The run of the server (see `followed.json`) it last followed in.
    pub run: u64,
    /// Datasets copied to it and followed since.
    pub seeded: BTreeSet<String>,
    /// Paused by the operator.
    pub paused: bool,
    /// It stopped because changes to its datasets passed this server by
    /// (see [`super::fleet`]): the next start copies everything again
    /// rather than going on from `applied`.
    #[serde(default)]
    pub copy_again: bool,
}

/// What a mirror is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Started (or resynced), and not yet through the datasets it must
    /// copy: its status says so rather than `following` before a copy.
    Starting,
    /// Copying datasets before it follows.
    Copying(String),
    /// Applying changes as they come.
    Following,
    /// Paused by the operator: changes wait in the log.
    Paused,
    /// Stopped: its queue passed `max_queue`, or a resync is needed.
    Stopped(String),
}

/// Forgets what mirror `mirror` of change log `log_id` left beside its
/// target's store at `place` (it was removed from the configuration while
/// the server was down): the names it claimed on a shared database, the
/// record of how far it applied the log. True once done (else tried again
/// at the next start).
pub(super) async fn forget_removed(
    shared: &Shared,
    place: AppliedPlace,
    log_id: &str,
    mirror: &str,
) -> bool {
    if let AppliedPlace::Database(url) = &place {
        return give_back_names(shared, url, log_id, mirror).await;
    }
    let record = AppliedRecord::new(place, log_id, mirror);
    match record.forget().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(
                mirror,
                "the mirror was removed from the configuration, but the record of how far it applied the change log stays in {} ({error}); tried again at the next start",
                record.label(shared)
            );
            false
        }
    }
}

/// A mirror's live state.
struct Live {
    phase: Phase,
    saved: Saved,
    last_error: Option<(Instant, String)>,
    /// The commit time (ms since the epoch) of the oldest change not yet
    /// applied, or a time before it: the first change of the batch being
    /// applied, or once it is, a time no later than the next change's.
    /// The lag status shows is measured from it.
    waiting_since_ms: Option<u64>,
    lags: hdrhistogram::Histogram<u64>,
    applied_in_run: u64,
    /// A sync mirror that failed and went on as async (`degrade`).
    degraded: bool,
}

/// One mirror backend (see the module documentation).
pub struct Mirror {
    backend: String,
    rule: ArcSwap<MirrorRule>,
    state_path: PathBuf,
    applied: watch::Sender<u64>,
    /// The position last saved: what a restart goes on from, so the log
    /// keeps every change after it.
    persisted: std::sync::atomic::AtomicU64,
    live: Mutex<Live>,
    wake: Notify,
    resync: AtomicBool,
    ended: AtomicBool,
    /// A reload removed it: it gives back the names it claimed.
    removed: AtomicBool,
    /// The shared databases where it claimed the names it keeps (see
    /// `crate::fleet::mirrored`).
    claimed_on: Mutex<BTreeSet<String>>,
    /// Its target's side was asked in this run whether the mirror is past
    /// the log ([`Mirror::past_the_log`]); until then its position is not
    /// recorded there, so that the evidence stays.
    target_checked: AtomicBool,
    /// The position last recorded on its target's side (`u64::MAX`: none
    /// yet in this run).
    recorded: std::sync::atomic::AtomicU64,
    /// Where it records it, as last asked (the target's store may change
    /// with a reload).
    record: Mutex<Option<Arc<AppliedRecord>>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Mirror {
    /// A mirror of `rule` onto `backend`, from its saved state; `run` is
    /// this server's run, `continuous` whether the previous run followed
    /// its datasets (else it copies everything again), `head` the log's
    /// last committed sequence number.
    pub(super) fn new(
        backend: &str,
        rule: MirrorRule,
        state_path: PathBuf,
        run: u64,
        continuous: bool,
        head: u64,
    ) -> std::io::Result<Arc<Self>> {
        let saved: Option<Saved> = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut saved = match saved {
            Some(saved)
                if continuous
                    && saved.run + 1 == run
                    && saved.applied <= head
                    && !saved.copy_again =>
            {
                saved
            }
            // New, or not followed without a break: copy everything
            // again, then follow from here.
            other => Saved {
                applied: head,
                run,
                seeded: BTreeSet::new(),
                paused: other.is_some_and(|s| s.paused),
                copy_again: false,
            },
        };
        saved.run = run;
        let phase = if saved.paused {
            Phase::Paused
        } else {
            Phase::Starting
        };
        let mirror = Arc::new(Self {
            backend: backend.to_string(),
            rule: ArcSwap::from_pointee(rule),
            state_path,
            applied: watch::channel(saved.applied).0,
            persisted: std::sync::atomic::AtomicU64::new(0),
            live: Mutex::new(Live {
                phase,
                saved,
                last_error: None,
                waiting_since_ms: None,
                lags: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 2)
                    .expect("valid histogram bounds"),
                applied_in_run: 0,
                degraded: false,
            }),
            wake: Notify::new(),
            resync: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            claimed_on: Mutex::new(BTreeSet::new()),
            target_checked: AtomicBool::new(false),
            recorded: std::sync::atomic::AtomicU64::new(u64::MAX),
            record: Mutex::new(None),
        });
        mirror.save()?;
        Ok(mirror)
    }

    /// The mirror backend's name.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Its rule now.
    pub fn rule(&self) -> Arc<MirrorRule> {
        self.rule.load_full()
    }

    /// A reload changed its rule's settings.
    pub(super) fn set_rule(&self, rule: MirrorRule) {
        self.rule.store(Arc::new(rule));
        self.wake.notify_one();
    }

    /// True if it keeps a copy of `dataset`, which lives on `primary`.
    pub fn covers(&self, dataset: &str, primary: &str) -> bool {
        primary != self.backend && crate::catalog::matches(&self.rule.load().datasets, dataset)
    }

    /// True for a sync mirror: the writes it covers wait for it.
    pub fn is_sync(&self) -> bool {
        self.rule.load().mode == MirrorMode::Sync
    }

    /// The last sequence number applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// The position a restart would go on from: the log keeps the changes
    /// after it.
    pub fn persisted(&self) -> u64 {
        self.persisted.load(Ordering::SeqCst)
    }

    fn save(&self) -> std::io::Result<()> {
        let saved = self.live.lock_or_stop().saved.clone();
        let bytes = serde_json::to_vec_pretty(&saved).map_err(std::io::Error::other)?;
        crate::durable::replace_file(&self.state_path, &bytes)?;
        self.persisted.store(saved.applied, Ordering::SeqCst);
        Ok(())
    }

    /// Stops applying (changes wait in the log) or starts again.
    pub fn set_paused(&self, paused: bool) -> std::io::Result<()> {
        {
            let mut live = self.live.lock_or_stop();
            live.saved.paused = paused;
            if paused {
                live.phase = Phase::Paused;
            } else if live.phase == Phase::Paused {
                // Following once it has copied what it must.
                live.phase = Phase::Starting;
            }
        }
        self.wake.notify_one();
        self.save()
    }

    /// Copies every dataset again, then follows from there: for a mirror
    /// that drifted, stopped, or lost changes.
    pub fn request_resync(&self) {
        self.resync.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Ends its task (the server stops).
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Ends its task for good (a reload removed it): the names it claimed
    /// on shared databases are given back, so that a dataset may be
    /// defined there under them (a cut-over to the mirror).
    pub(super) fn remove(&self) {
        self.removed.store(true, Ordering::SeqCst);
        self.end();
    }

    /// True while it stopped following (queue full, or failed to copy).
    pub fn is_stopped(&self) -> bool {
        matches!(self.live.lock_or_stop().phase, Phase::Stopped(_))
    }

    /// Why writes to a dataset it covers are refused now, if they are: a
    /// sync mirror that cannot apply changes (`on_unavailable = "refuse"`),
    /// an async one whose queue is full (`on_full = "refuse"`).
    pub fn refusal(&self, log: &ChangeLog) -> Option<String> {
        let rule = self.rule.load();
        let live = self.live.lock_or_stop();
        if let Phase::Stopped(_) = live.phase {
            return None;
        }
        let paused = live.phase == Phase::Paused;
        let queued = log.last_committed().saturating_sub(self.applied());
        match rule.mode {
            MirrorMode::Sync
                if rule.on_unavailable == OnUnavailable::Refuse && queued > 0 && !paused =>
            {
                live.last_error.as_ref().map(|(_, error)| {
                    format!(
                        "its sync mirror {} cannot apply changes ({error}); writes are refused until it is back and has applied the {queued} waiting",
                        self.backend
                    )
                })
            }
            MirrorMode::Async if rule.on_full == OnFull::Refuse && queued >= rule.max_queue => {
                Some(format!(
                    "its mirror {} has {queued} changes waiting (max_queue {}); writes are refused until it catches up",
                    self.backend, rule.max_queue
                ))
            }
            _ => None,
        }
    }

    /// Waits until it applied every change up to `sequence`; an error
    /// naming why if it does not within `wait`.
    pub async fn caught_up(&self, sequence: u64, wait: Duration) -> Result<(), String> {
        let mut applied = self.applied.subscribe();
        match tokio::time::timeout(wait, applied.wait_for(|a| *a >= sequence)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(format!(
                "mirror {} has not applied the changes up to {sequence} within {} s ({})",
                self.backend,
                wait.as_secs(),
                self.live
                    .lock_or_stop()
                    .last_error
                    .as_ref()
                    .map_or("no error: it is slow, paused or stopped", |(_, e)| e
                        .as_str())
            )),
        }
    }

    /// For a sync mirror: waits until it applied every change committed up
    /// to `sequence`. A sync mirror that does not within its rule's
    /// `wait_ms` fails the write (`refuse`), or goes on as async with an
    /// alarm (`degrade`).
    pub async fn confirm(&self, sequence: u64) -> Result<(), String> {
        let rule = self.rule.load_full();
        if rule.mode != MirrorMode::Sync {
            return Ok(());
        }
        {
            let live = self.live.lock_or_stop();
            if live.degraded || matches!(live.phase, Phase::Stopped(_) | Phase::Paused) {
                return Ok(());
            }
        }
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout(rule.wait, applied.wait_for(|a| *a >= sequence)).await;
        if matches!(reached, Ok(Ok(_))) {
            return Ok(());
        }
        let why = self.live.lock_or_stop().last_error.as_ref().map_or_else(
            || "no error yet: it is slow".to_string(),
            |(_, e)| e.clone(),
        );
        if rule.on_unavailable == OnUnavailable::Degrade {
            let mut live = self.live.lock_or_stop();
            if !live.degraded {
                live.degraded = true;
                tracing::error!(
                    mirror = %self.backend,
                    "ALARM: sync mirror {} did not apply a change within {} ms ({why}): it goes on as an async mirror until it has caught up",
                    self.backend,
                    rule.wait.as_millis()
                );
            }
            return Ok(());
        }
        Err(format!(
            "the write is committed on the primary, but its sync mirror {} did not apply it within {} ms ({why}); the mirror applies it when it is back, and writes to the mirrored datasets are refused until then",
            self.backend,
            rule.wait.as_millis()
        ))
    }

    /// The figures `vsamr admin mirror status` shows.
    pub fn report(&self, log: &ChangeLog) -> MirrorRow {
        let rule = self.rule.load();
        let refusing = self.refusal(log);
        let live = self.live.lock_or_stop();
        let applied = self.applied();
        let queued = log.last_committed().saturating_sub(applied);
        let lag_seconds = match (queued, live.waiting_since_ms) {
            (0, _) => 0.0,
            (_, Some(since)) => now_ms().saturating_sub(since) as f64 / 1000.0,
            (_, None) => 0.0,
        };
        MirrorRow {
            backend: self.backend.clone(),
            datasets: rule.datasets.clone(),
            mode: match (rule.mode, live.degraded) {
                (MirrorMode::Sync, false) => "sync",
                (MirrorMode::Sync, true) => "sync (degraded to async)",
                (MirrorMode::Async, _) => "async",
            }
            .into(),
            phase: match &live.phase {
                Phase::Starting => "starting".into(),
                Phase::Copying(dataset) => format!("copying {dataset}"),
                Phase::Following => "following".into(),
                Phase::Paused => "paused".into(),
                Phase::Stopped(why) => format!("stopped: {why}"),
            },
            applied,
            queued,
            lag_seconds,
            lag_p50_ms: live.lags.value_at_quantile(0.5),
            lag_p99_ms: live.lags.value_at_quantile(0.99),
            applied_in_run: live.applied_in_run,
            last_error: live
                .last_error
                .as_ref()
                .map(|(at, error)| format!("{error} ({:.0} s ago)", at.elapsed().as_secs_f64())),
            datasets_followed: live.saved.seeded.len() as u64,
            refusing,
        }
    }

    fn set_phase(&self, phase: Phase) {
        self.live.lock_or_stop().phase = phase;
    }

    fn fail(&self, error: String) {
        let mut live = self.live.lock_or_stop();
        if live.last_error.as_ref().is_none_or(|(_, e)| *e != error) {
            tracing::error!(mirror = %self.backend, "{error}");
        }
        live.last_error = Some((Instant::now(), error));
    }

    /// Its task: copies what needs copying, then applies changes until a
    /// reload removes it.
    pub(super) async fn run(self: Arc<Self>, log: Arc<ChangeLog>, shared: Weak<Shared>) {
        let mut backoff = Duration::from_millis(50);
        let mut commits = log.subscribe();
        let mut reader = log.reader(self.applied());
        let mut pending: Vec<Change> = Vec::new();
        // When `pending` was read, if the read reached the log's end: every
        // change after it was committed later.
        let mut read_to_end_at: Option<u64> = None;
        let mut last_save = Instant::now();
        let mut unsaved = false;
        let mut last_apply = Instant::now();
        let mut open = OpenOnTarget::default();
        while !self.ended.load(Ordering::SeqCst) {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if self.resync.swap(false, Ordering::SeqCst) {
                let head = log.last_committed();
                {
                    let mut live = self.live.lock_or_stop();
                    // A resync resumes a paused mirror too.
                    live.saved.seeded.clear();
                    live.saved.applied = head;
                    live.saved.paused = false;
                    live.saved.copy_again = false;
                    live.phase = Phase::Starting;
                    live.degraded = false;
                }
                self.applied.send_replace(head);
                reader = log.reader(head);
                pending.clear();
                if let Err(e) = self.save() {
                    self.fail(format!("cannot save the mirror's position: {e}"));
                }
            }
            let (idle, paused) = {
                let live = self.live.lock_or_stop();
                (
                    matches!(live.phase, Phase::Paused | Phase::Stopped(_)),
                    live.phase == Phase::Paused,
                )
            };
            if idle {
                // Nothing is applied meanwhile: every due close goes now.
                let (closing, _) = open.due(Instant::now(), usize::MAX);
                self.close(&shared, closing).await;
                drop(shared);
                self.bound_paused_queue(&log);
                // A paused mirror reads what waits (it applies it once
                // resumed), so that the status knows how long it has.
                if paused && pending.is_empty() && log.last_committed() > self.applied() {
                    let read_at = now_ms();
                    if let Ok(batch) = reader.next_batch(BATCH) {
                        read_to_end_at = (batch.len() < BATCH).then_some(read_at);
                        self.live.lock_or_stop().waiting_since_ms =
                            batch.first().map(|c| c.time_ms);
                        pending = batch;
                    }
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            if let Some(why) = self.written_elsewhere(&shared) {
                self.stop_missing(why);
                continue;
            }
            if !self.target_checked.load(Ordering::SeqCst) {
                match self.past_the_log(&shared, &log).await {
                    Ok(past) => {
                        self.target_checked.store(true, Ordering::SeqCst);
                        if let Some(why) = past {
                            tracing::warn!(mirror = %self.backend, "{why}");
                            self.request_resync();
                            continue;
                        }
                    }
                    // Its database cannot be asked: nor can the mirror
                    // copy or apply, which say why in its status; asked
                    // again at the next turn.
                    Err(error) => tracing::debug!(mirror = %self.backend, "{error}"),
                }
            }
            // Copy the datasets not followed yet.
            match self.seed_all(&shared, log.id()).await {
                Ok(()) => {
                    let mut live = self.live.lock_or_stop();
                    if live.phase == Phase::Starting {
                        live.phase = Phase::Following;
                    }
                }
                Err(error) => {
                    self.fail(error);
                    drop(shared);
                    self.sleep(&mut backoff).await;
                    continue;
                }
            }
            if pending.is_empty() {
                // An async mirror gathers changes for a moment: one larger
                // batch costs its store far less than many small ones.
                let since = last_apply.elapsed();
                let queued = log.last_committed().saturating_sub(self.applied());
                if self.rule.load().mode == MirrorMode::Async
                    && since < GATHER
                    && (queued as usize) < BATCH
                {
                    drop(shared);
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER - since) => {}
                        _ = self.wake.notified() => {}
                    }
                    continue;
                }
                let read_at = now_ms();
                match reader.next_batch(BATCH) {
                    Ok(batch) => {
                        read_to_end_at = (batch.len() < BATCH).then_some(read_at);
                        pending = batch;
                    }
                    Err(error) => {
                        // A resync cannot help a log whose directory was
                        // taken away: that says what can.
                        let why = match shared.changes.lost() {
                            Some(lost) => lost.to_string(),
                            None => format!(
                                "{error}: `vsamr admin mirror resync {}` copies everything again",
                                self.backend
                            ),
                        };
                        self.set_phase(Phase::Stopped(why));
                        continue;
                    }
                }
            }
            let (closing, more_to_close) = open.due(Instant::now(), closing::CLOSES_PER_TURN);
            self.close(&shared, closing).await;
            let Some(last) = pending.last().map(|c| c.sequence) else {
                // Caught up: wait for the next commit.
                {
                    let mut live = self.live.lock_or_stop();
                    live.waiting_since_ms = None;
                    live.degraded = false;
                }
                if unsaved && last_save.elapsed() >= SAVE_EVERY {
                    self.persist(&log).await;
                    self.record_on_target(&shared, log.id()).await;
                    unsaved = false;
                    last_save = Instant::now();
                }
                // Saved once no change came for the rest of the second;
                // more datasets to close: at once.
                let wait = match (more_to_close, unsaved) {
                    (true, _) => Duration::ZERO,
                    (false, true) => SAVE_EVERY.saturating_sub(last_save.elapsed()),
                    (false, false) => Duration::from_secs(1),
                };
                drop(shared);
                tokio::select! {
                    _ = commits.changed() => {}
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            };
            self.live.lock_or_stop().waiting_since_ms = pending.first().map(|c| c.time_ms);
            last_apply = Instant::now();
            match self.apply(&shared, log.id(), &pending, &mut open).await {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    let now = now_ms();
                    {
                        let mut live = self.live.lock_or_stop();
                        live.last_error = None;
                        for change in &pending {
                            let _ = live.lags.record(now.saturating_sub(change.time_ms).max(1));
                        }
                        live.applied_in_run += pending.len() as u64;
                        live.saved.applied = last;
                        // The oldest change still waiting was committed
                        // after the last applied, and after the read if
                        // it reached the log's end.
                        live.waiting_since_ms = read_to_end_at
                            .or(pending.last().map(|c| c.time_ms))
                            .or(live.waiting_since_ms);
                    }
                    self.applied.send_replace(last);
                    pending.clear();
                    unsaved = true;
                    if last_save.elapsed() >= SAVE_EVERY {
                        self.persist(&log).await;
                        self.record_on_target(&shared, log.id()).await;
                        unsaved = false;
                        last_save = Instant::now();
                    }
                }
                Err(error) => {
                    self.fail(error);
                    let rule = self.rule.load();
                    if let Some(queued) = self.past_stopping_bound(&rule, &log) {
                        let why = format!(
                            "{queued} changes waited (max_queue {}); the mirror stopped following: `vsamr admin mirror resync {}` copies everything again once it is back",
                            rule.max_queue, self.backend
                        );
                        tracing::error!(mirror = %self.backend, "{why}");
                        self.set_phase(Phase::Stopped(why));
                        continue;
                    }
                    drop(shared);
                    self.sleep(&mut backoff).await;
                }
            }
        }
        if let Some(shared) = shared.upgrade() {
            self.close(&shared, open.take_all()).await;
        }
        self.persist(&log).await;
        if self.removed.load(Ordering::SeqCst) {
            self.give_back(&shared, log.id()).await;
        } else if let Some(shared) = shared.upgrade() {
            self.record_on_target(&shared, log.id()).await;
        }
    }

    /// Where it records how far it applied the log `log_id`, beside its
    /// target's store; `None` for a target without storage of its own (an
    /// in-memory store).
    fn applied_record(&self, shared: &Shared, log_id: &str) -> Option<Arc<AppliedRecord>> {
        let place = shared.backend(&self.backend)?.applied_place()?;
        let mut record = self.record.lock_or_stop();
        match &*record {
            Some(known) if known.is_at(&place) => Some(known.clone()),
            _ => {
                let made = Arc::new(AppliedRecord::new(place, log_id, &self.backend));
                *record = Some(made.clone());
                Some(made)
            }
        }
    }

    /// Whether its copy holds changes past the end of the log: its target's
    /// side records that it applied the log further than the log goes, so
    /// the data dir was restored from an older copy (or the log lost its
    /// end), and the mirror holds changes its datasets no longer do (a
    /// store in the data dir is restored with it, and its record with it).
    /// Says why, if so.
    async fn past_the_log(
        &self,
        shared: &Shared,
        log: &ChangeLog,
    ) -> Result<Option<String>, String> {
        let Some(record) = self.applied_record(shared, log.id()) else {
            return Ok(None);
        };
        if shared
            .changes
            .followers()
            .is_some_and(|followers| followers.capture().any_recovering())
        {
            // The log's end is not known yet: groups wait in an outbox.
            return Err(format!(
                "mirror {}: the change log is still taking back groups from a backend's outbox; how far the mirror applied it is compared with its end once it has",
                self.backend
            ));
        }
        let recorded = record.read(shared).await.map_err(|error| {
            format!(
                "mirror {} cannot learn from {} how far it applied the change log: {error}",
                self.backend,
                record.label(shared)
            )
        })?;
        let end = log.last_committed();
        Ok(recorded.filter(|applied| *applied > end).map(|applied| {
            format!(
                "mirror {} applied this server's change log through sequence {applied}, as {} records, but the log ends at {end}: the data dir was restored from an older copy (or the change log lost its end), and the mirror holds changes its datasets no longer do; it copies every dataset again",
                self.backend,
                record.label(shared)
            )
        }))
    }

    /// Records beside its target's store how far it applied the log (see
    /// [`Mirror::past_the_log`]): once that was asked in this run, and when
    /// the saved position moved. A failure is for the next save to mend.
    async fn record_on_target(&self, shared: &Shared, log_id: &str) {
        if !self.target_checked.load(Ordering::SeqCst) {
            return;
        }
        let applied = self.persisted();
        if self.recorded.load(Ordering::SeqCst) == applied {
            return;
        }
        let Some(record) = self.applied_record(shared, log_id) else {
            return;
        };
        match record.write(shared, applied).await {
            Ok(()) => self.recorded.store(applied, Ordering::SeqCst),
            Err(error) => tracing::debug!(
                mirror = %self.backend,
                "cannot record in {} how far the mirror applied the change log: {error}",
                record.label(shared)
            ),
        }
    }

    /// Gives back the names it claimed on shared databases, and forgets
    /// how far it applied the log.
    async fn give_back(&self, shared: &Weak<Shared>, log_id: &str) {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Where it was recorded last if the reload removed its backend too.
        let record = self
            .applied_record(&shared, log_id)
            .or_else(|| self.record.lock_or_stop().clone());
        if let Some(record) = record
            && let Err(error) = record.forget().await
        {
            tracing::warn!(mirror = %self.backend, "the record of how far the removed mirror applied the change log stays in {}: {error}", record.label(&shared));
        }
        // Where it claimed names in this run, and its target's database
        // (claimed in an earlier run, if it copied there).
        let mut databases = std::mem::take(&mut *self.claimed_on.lock_or_stop());
        databases.extend(
            shared
                .backend(&self.backend)
                .and_then(|target| target.shared_database()),
        );
        for url in databases {
            give_back_names(&shared, &url, log_id, &self.backend).await;
        }
    }

    /// The changes queued for an async mirror that stops at `max_queue`
    /// (`on_full = "stop"`), once they reached it; `None` below it, or for a
    /// mirror that does not stop there.
    fn past_stopping_bound(&self, rule: &MirrorRule, log: &ChangeLog) -> Option<u64> {
        let queued = log.last_committed().saturating_sub(self.applied());
        (rule.mode == MirrorMode::Async && rule.on_full == OnFull::Stop && queued >= rule.max_queue)
            .then_some(queued)
    }

    /// A paused async mirror whose queue passed `max_queue` with `on_full
    /// = "stop"` stops, so that the log does not grow without bound (with
    /// `"refuse"`, writes are refused instead: see [`Mirror::refusal`]).
    fn bound_paused_queue(&self, log: &ChangeLog) {
        let rule = self.rule.load();
        let past = self.past_stopping_bound(&rule, log);
        let mut live = self.live.lock_or_stop();
        if let Some(queued) = past
            && live.phase == Phase::Paused
        {
            let why = format!(
                "paused while {queued} changes waited (max_queue {}); `vsamr admin mirror resync {}` copies everything again",
                rule.max_queue, self.backend
            );
            tracing::error!(mirror = %self.backend, "{why}");
            live.phase = Phase::Stopped(why);
        }
    }

    /// Saves the position, once the log is durable through it: on a
    /// blocking thread (two syncs and a rename), not on a runtime thread
    /// that serves connections.
    async fn persist(self: &Arc<Self>, log: &Arc<ChangeLog>) {
        let (mirror, log) = (self.clone(), log.clone());
        let result =
            super::off_runtime(move || log.make_durable().and_then(|()| mirror.save())).await;
        if let Err(e) = result {
            self.fail(format!("cannot save the mirror's position: {e}"));
        }
    }

    async fn sleep(&self, backoff: &mut Duration) {
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = self.wake.notified() => {}
        }
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    fn target(&self, shared: &Shared) -> Result<BackendHandle, String> {
        shared.backend(&self.backend).ok_or_else(|| {
            format!(
                "mirror backend {} is not configured in this server",
                self.backend
            )
        })
    }

    /// Why it cannot follow its datasets from this server, if other
    /// servers write some of them (see [`super::fleet`]).
    fn written_elsewhere(&self, shared: &Shared) -> Option<String> {
        let patterns = [self.rule.load().datasets.clone()];
        let why = super::fleet::written_elsewhere(shared, &patterns, &self.backend)?;
        Some(format!(
            "{why}, so this mirror would miss them. It stopped: keep mirrors on a server alone on the databases of their datasets; started again alone there (the other servers stopped), this server copies every dataset to it again"
        ))
    }

    /// Stops it for `why`, in memory only: its change log's directory was
    /// taken from under the server (see `Capture::lose`), so that it has
    /// nothing more to read; what it does next is settled at the restart.
    pub(super) fn stop_for_lost_log(&self, why: String) {
        self.set_phase(Phase::Stopped(why));
        self.wake.notify_one();
    }

    /// Stops following for good in this run: changes of its datasets pass
    /// this server by, so its position means nothing, and the next start
    /// copies everything again.
    fn stop_missing(&self, why: String) {
        tracing::error!(mirror = %self.backend, "{why}");
        {
            let mut live = self.live.lock_or_stop();
            live.saved.copy_again = true;
            live.phase = Phase::Stopped(why);
        }
        if let Err(e) = self.save() {
            self.fail(format!("cannot save the mirror's state: {e}"));
        }
    }

    /// Closes `datasets` on the target, as a program's last CLOSE does (see
    /// [`closing`]).
    async fn close(&self, shared: &Shared, datasets: Vec<Dataset>) {
        if datasets.is_empty() {
            return;
        }
        let Ok(target) = self.target(shared) else {
            return;
        };
        for dataset in datasets {
            target.close_after("the mirror's writes", dataset).await;
        }
    }

    /// Applies a batch of changes, those of datasets it covers: each
    /// dataset's record changes as their net effect (the last change of
    /// each key wins), in one job, so that the mirror's store writes many
    /// rows per statement and commits once. A dataset defined since is
    /// claimed on a shared database under change log `log_id`, as a
    /// copied one is (see [`Self::claim_on`]).
    async fn apply(
        &self,
        shared: &Shared,
        log_id: &str,
        changes: &[Change],
        open: &mut OpenOnTarget,
    ) -> Result<(), String> {
        let target = self.target(shared)?;
        let rule = self.rule.load_full();
        let now = Instant::now();
        let mut net = NetChanges::default();
        for change in changes {
            let name = &change.dataset.name;
            if !crate::catalog::matches(&rule.datasets, name) {
                continue;
            }
            let seeded = self.live.lock_or_stop().saved.seeded.contains(name);
            match &change.operation {
                Operation::Define(layout) => {
                    // A dataset defined since: it starts empty on both.
                    let on_own_backend = shared
                        .catalog
                        .get(name)
                        .is_some_and(|(def, _)| def.backend == self.backend);
                    if on_own_backend {
                        continue;
                    }
                    net.flush(&target).await?;
                    // Claimed as a copy's name is, before anything is
                    // written there.
                    if let Some(url) = target.shared_database() {
                        self.claim_on(shared, &url, name, log_id).await?;
                    }
                    match target
                        .replica_call(Call::Create(change.dataset.clone(), layout.clone()))
                        .await
                    {
                        Ok(_) | Err(CallError::Store(StoreError::AlreadyExists)) => {}
                        Err(error) => {
                            return Err(format!(
                                "mirror {} cannot define {name}: {error}",
                                self.backend
                            ));
                        }
                    }
                    open.changed(&change.dataset, now);
                    self.live.lock_or_stop().saved.seeded.insert(name.clone());
                }
                Operation::Delete => {
                    if !seeded {
                        continue;
                    }
                    net.flush(&target).await?;
                    match target
                        .replica_call(Call::Destroy(change.dataset.clone()))
                        .await
                    {
                        Ok(_) | Err(CallError::Store(StoreError::NoSuchDataset)) => {}
                        Err(error) => {
                            return Err(format!(
                                "mirror {} cannot delete {name}: {error}",
                                self.backend
                            ));
                        }
                    }
                    open.forget(name);
                    self.live.lock_or_stop().saved.seeded.remove(name);
                }
                _ if !seeded => {}
                Operation::Insert | Operation::Replace => {
                    open.changed(&change.dataset, now);
                    net.set(
                        &change.dataset,
                        &change.key,
                        Some(change.record.clone().unwrap_or_default()),
                    );
                }
                Operation::Erase => {
                    open.changed(&change.dataset, now);
                    net.set(&change.dataset, &change.key, None);
                }
            }
        }
        net.flush(&target).await
    }
}
