//! The exclusive lock on one local store, and who holds it.
//!
//! A `flock` belongs to the open file, not to the process: a child being
//! spawned (by this process, at any moment, from any thread) holds a copy
//! of every descriptor until its `exec` closes it, and with it every lock.
//! So a lock a server of this process has just let go of can still be
//! refused for a moment, to the next server of the same process (a server
//! embedded in a program, tests, a stop followed by a start). This module
//! tells that moment from a real holder: the locks this process holds are
//! listed here, and a lock refused while its file names this process but
//! the list does not is waited for, briefly, instead of refused.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a lock still held by a copy of a descriptor this process let
/// go of is waited for: a spawn's copy lives until its `exec`, well under
/// this even on a busy machine.
const LINGER: Duration = Duration::from_secs(2);

/// The lock files (device, inode) a [`StorageLock`] of this process holds.
static HELD_HERE: Mutex<BTreeSet<(u64, u64)>> = Mutex::new(BTreeSet::new());

fn held_here() -> std::sync::MutexGuard<'static, BTreeSet<(u64, u64)>> {
    HELD_HERE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An exclusive lock, released when dropped.
#[derive(Debug)]
pub struct StorageLock {
    file: File,
    path: PathBuf,
    identity: (u64, u64),
}

impl StorageLock {
    /// Takes the lock at `lock_path` for `what` (for messages), writing who
    /// holds it; refused, naming the holder, if another server holds it.
    pub fn acquire(lock_path: &Path, what: &str, data_dir: &Path) -> Result<Self> {
        if let Some(parent) = lock_path.parent() {
            crate::paths::make_private_dir(parent)
                .with_context(|| format!("{what}: creating {}", parent.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path)
            .with_context(|| format!("{what}: opening its lock {}", lock_path.display()))?;
        let identity = file
            .metadata()
            .map(|m| (m.dev(), m.ino()))
            .with_context(|| format!("{what}: reading its lock {}", lock_path.display()))?;
        let lingering_until = Instant::now() + LINGER;
        while file.try_lock().is_err() {
            let holder = holder(&mut file);
            let only_a_copy = holder_is_this_process(&holder) && !held_here().contains(&identity);
            if !only_a_copy || Instant::now() >= lingering_until {
                anyhow::bail!(
                    "{what} is in use by another vsamrd ({}; lock {}): a store on local disk belongs to one server; stop the other or give this one other storage",
                    if holder.is_empty() {
                        "holder unknown"
                    } else {
                        &holder
                    },
                    lock_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        held_here().insert(identity);
        let lock = Self {
            file,
            path: lock_path.to_path_buf(),
            identity,
        };
        let holder = format!(
            "pid {}, data dir {}\n",
            std::process::id(),
            data_dir.display()
        );
        lock.file
            .set_len(0)
            .and_then(|()| (&lock.file).rewind())
            .and_then(|()| (&lock.file).write_all(holder.as_bytes()))
            .with_context(|| format!("{what}: writing its lock {}", lock_path.display()))?;
        Ok(lock)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the store was taken from under the server, if it was: its lock
    /// file is gone from its path, or another file is there (the store
    /// was removed, moved or replaced while the server ran). What the
    /// server writes from then on goes to files no longer there.
    pub fn taken_away(&self) -> Option<&'static str> {
        let held = self.file.metadata().ok()?;
        match std::fs::metadata(&self.path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some("removed or moved"),
            Ok(now) if (now.dev(), now.ino()) != (held.dev(), held.ino()) => Some("replaced"),
            _ => None,
        }
    }

    /// Sets the lock file's modification time to now, so that a cleaner of
    /// old files (`systemd-tmpfiles` on /tmp) does not take a lock a long
    /// run never rewrites for an abandoned file.
    pub fn touch(&self) {
        let _ = self.file.set_modified(std::time::SystemTime::now());
    }
}

impl Drop for StorageLock {
    fn drop(&mut self) {
        held_here().remove(&self.identity);
    }
}

/// What the lock file says of its holder (`pid N, data dir D`).
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    text.trim().to_string()
}

fn holder_is_this_process(holder: &str) -> bool {
    holder
        .strip_prefix("pid ")
        .and_then(|rest| rest.split(',').next())
        .is_some_and(|pid| pid == std::process::id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(dir: &Path) -> Result<StorageLock> {
        StorageLock::acquire(&dir.join("vsamrd.lock"), "data dir", dir)
    }

    #[test]
    fn a_lock_held_by_a_server_of_this_process_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let held = take(dir.path()).unwrap();
        let asked = Instant::now();
        let refused = take(dir.path()).unwrap_err().to_string();
        assert!(asked.elapsed() < LINGER / 2, "{:?}", asked.elapsed());
        assert!(
            refused.contains(&format!(
                "data dir is in use by another vsamrd (pid {}, data dir {}",
                std::process::id(),
                dir.path().display()
            )),
            "{refused}"
        );
        drop(held);
        take(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_a_spawned_childs_copy_still_holds_is_taken_once_the_copy_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let held = take(dir.path()).unwrap();
        // What a child between its fork and its exec holds: a copy of the
        // descriptor, and with it the lock.
        let copy = held.file.try_clone().unwrap();
        drop(held);
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(copy);
        });
        let asked = Instant::now();
        let taken = take(dir.path());
        closer.join().unwrap();
        let lock = taken.unwrap();
        assert!(asked.elapsed() >= Duration::from_millis(250));
        let copy_of_new = lock.file.try_clone().unwrap();
        drop(lock);
        // A copy that outlives the wait is refused, naming the holder.
        let refused = take(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("is in use by another vsamrd"), "{refused}");
        drop(copy_of_new);
        take(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_named_by_another_process_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let held = take(dir.path()).unwrap();
        let copy = held.file.try_clone().unwrap();
        drop(held);
        copy.set_len(0).unwrap();
        (&copy).rewind().unwrap();
        (&copy).write_all(b"pid 1, data dir /elsewhere\n").unwrap();
        let asked = Instant::now();
        let refused = take(dir.path()).unwrap_err().to_string();
        assert!(asked.elapsed() < LINGER / 2, "{:?}", asked.elapsed());
        assert!(
            refused.contains("(pid 1, data dir /elsewhere; lock"),
            "{refused}"
        );
    }
}
