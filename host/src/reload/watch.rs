//! Reloads when the config file or a plugin file changes.
//!
//! Directories are watched rather than files, so an editor's or a deploy
//! tool's write-then-rename is seen. Any event in a watched directory has
//! the files looked at again, each through its symlinks (the file it
//! leads to, its size and modification time): a renewal that changes no
//! file of the configured names is seen too, as when Kubernetes swaps the
//! `..data` link of a mounted secret or config map, or certbot points the
//! links in `live/` at new files. Without events the files are looked at
//! every 2 s too (a change whose event never came is seen late,
//! not never). Events are debounced: a reload starts
//! only once the files have been quiet for [`QUIET`], and a file still
//! growing then is left for the next event. A file caught half-written
//! anyway fails to parse or to compile and is refused like any bad
//! version: the running one keeps serving, and the complete file's own
//! event reloads again.

use super::Reloader;
use anyhow::{Context, Result};
use notify_debouncer_mini::notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// How long files must be quiet before a reload.
pub const QUIET: Duration = Duration::from_millis(300);

/// How often the files are looked at without an event: a change whose
/// event never came (a network file system sends none; a link swapped
/// while a loaded machine debounced the steps before it) is still seen.
const LOOK_AGAIN: Duration = Duration::from_secs(2);

/// Keeps the watch alive; dropping it stops watching.
pub struct FileWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    _thread: std::thread::JoinHandle<()>,
}

/// Dropping the watch ends its thread (within a quarter of a second); the
/// thread holds the reloader only weakly, so a stopped server's backends
/// and local-storage locks go with it at once.
impl Drop for FileWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Starts watching the configuration file and the plugins' component
/// files: once they have been quiet for [`QUIET`], `reloader` reloads, so
/// that an operator's edit or a deployment's copy takes effect without a
/// signal, and a file half-copied is not loaded.
pub async fn start(reloader: Arc<Reloader>, runtime: tokio::runtime::Handle) -> Result<FileWatch> {
    let files = reloader.watched_files().await;
    let (events, received) = mpsc::channel::<DebounceEventResult>();
    let mut debouncer =
        new_debouncer(QUIET, events).context("starting the file watcher for reloads")?;
    let mut watched_dirs = BTreeSet::new();
    watch_dirs(&mut debouncer, &mut watched_dirs, &files);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let reloader = Arc::downgrade(&reloader);
    let thread = std::thread::Builder::new()
        .name("vsamrd-watch".into())
        .spawn(move || {
            let mut files = files;
            let mut seen = stamps(&files);
            let mut looked = std::time::Instant::now();
            loop {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                match received.recv_timeout(Duration::from_millis(250)) {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::warn!("file watcher: {error}");
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) if looked.elapsed() < LOOK_AGAIN => {
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                looked = std::time::Instant::now();
                // Reading a file is an event too, and so is a change to
                // another file of the directory: only a file the paths
                // lead to now, or a new size or modification time, is a
                // change.
                if stamps(&files) == seen || still_growing(&files) {
                    continue;
                }
                let Some(reloader) = reloader.upgrade() else {
                    return;
                };
                files = runtime.block_on(async move {
                    reloader.reload("file change").await;
                    reloader.watched_files().await
                });
                seen = stamps(&files);
                watch_dirs(&mut debouncer, &mut watched_dirs, &files);
            }
        })
        .context("starting the file watcher thread")?;
    Ok(FileWatch {
        stop,
        _thread: thread,
    })
}

/// Watches the directory of every file not watched yet.
fn watch_dirs(
    debouncer: &mut Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>,
    watched: &mut BTreeSet<PathBuf>,
    files: &[PathBuf],
) {
    for file in files {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if watched.contains(&dir) {
            continue;
        }
        match debouncer.watcher().watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::info!(directory = %dir.display(), "watching for config and plugin changes");
                watched.insert(dir);
            }
            Err(error) => tracing::warn!(
                directory = %dir.display(),
                "cannot watch for changes ({error}); reload with SIGHUP or vsamr admin reload"
            ),
        }
    }
}

/// What a file's path leads to, through its symlinks.
#[derive(PartialEq)]
struct Stamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

/// Each file's [`Stamp`] (`None` if it is missing).
fn stamps(files: &[PathBuf]) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok()?;
            Some(Stamp {
                device: meta.dev(),
                inode: meta.ino(),
                size: meta.len(),
                modified: meta.modified().ok(),
            })
        })
        .collect()
}

/// True if a file's size changes over a short look: a writer is still at
/// it, and its last write will bring another event.
fn still_growing(files: &[PathBuf]) -> bool {
    let sizes = || -> Vec<Option<u64>> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
            .collect()
    };
    let before = sizes();
    std::thread::sleep(Duration::from_millis(50));
    before != sizes()
}
