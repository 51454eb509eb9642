//! What vsamrd does when a panic may have left its state half-changed: it
//! stops.
//!
//! A panic is a bug in vsamrd ([`crate::logging::log_panics`] reports it);
//! it ends the task it happened in, and if that task held a lock on state
//! kept in memory (the catalog, a dataset's record locks, a mirror's
//! position), that state may be half-changed: an entry in one index and
//! not in the other, a record lock taken and never given back. Answering
//! clients from it could lose or mix their records; panicking again at
//! every later use (what Rust's poisoned lock does when unwrapped) would
//! leave a server that is up, passes its probes, and fails every request
//! that touches the state, for ever.
//!
//! A backend's group of writes is such state too: a panic in it may come
//! between the store's commit and the change log's, which must agree
//! (`runtime::worker`; a panic in a group that only reads drops the
//! instance and goes on).
//!
//! So the first task that finds such a lock stops vsamrd with
//! [`EXIT_HALF_CHANGED`], saying why. Every acknowledged write is in the
//! stores already (a stop is no worse than a `SIGKILL`, which the
//! reliability program tests); the service manager starts vsamrd again
//! from them (`packaging/vsamrd.service` restarts it on failure) and
//! clients reconnect.

use std::sync::{Mutex, MutexGuard};

/// vsamrd's exit code when a panic left state in memory half-changed
/// (`EX_SOFTWARE` of sysexits.h): a service manager restarts it.
pub const EXIT_HALF_CHANGED: i32 = 70;

/// `lock()` for vsamrd's own state: the guard, or a stop of vsamrd if a
/// panic left the state half-changed (see the module's text).
pub trait LockOrStop<T: ?Sized> {
    /// Locks, or stops vsamrd with [`EXIT_HALF_CHANGED`] if the lock's
    /// last holder panicked.
    fn lock_or_stop(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockOrStop<T> for Mutex<T> {
    #[track_caller]
    fn lock_or_stop(&self) -> MutexGuard<'_, T> {
        match self.lock() {
            Ok(guard) => guard,
            Err(_) => stop_half_changed(&format!(
                "the lock taken at {} was held by a task that panicked (the bug logged before this line), so the state it guards in memory may be half-changed",
                std::panic::Location::caller()
            )),
        }
    }
}

/// Stops vsamrd because a panic may have left `what` half-changed: says
/// so in the log (and on standard error if nothing logs yet), then ends
/// the process with [`EXIT_HALF_CHANGED`].
#[cold]
pub fn stop_half_changed(what: &str) -> ! {
    let why = format!(
        "vsamrd stops (exit code {EXIT_HALF_CHANGED}): {what}, and serving from it could lose or mix records. Every acknowledged write is stored: start vsamrd again (its service manager does, on failure) and clients reconnect. Report both lines with `vsamrd --version`"
    );
    let logged = tracing::dispatcher::get_default(|dispatch| {
        !dispatch.is::<tracing::subscriber::NoSubscriber>()
    });
    if logged {
        tracing::error!("{why}");
    } else {
        eprintln!("{why}");
    }
    std::process::exit(EXIT_HALF_CHANGED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Set in the child process that poisons a lock and takes it again.
    const CHILD: &str = "VSAMRD_POISON_TEST_CHILD";

    #[test]
    fn an_unpoisoned_lock_is_taken_as_usual() {
        let lock = Mutex::new(1);
        *lock.lock_or_stop() += 1;
        assert_eq!(*lock.lock_or_stop(), 2);
    }

    #[test]
    fn a_lock_whose_holder_panicked_stops_the_process_saying_why() {
        if std::env::var_os(CHILD).is_some() {
            let lock = std::sync::Arc::new(Mutex::new(Vec::<u32>::new()));
            let held = lock.clone();
            let panicked = std::thread::spawn(move || {
                let mut entries = held.lock_or_stop();
                entries.push(1);
                panic!("half-way through a change");
            })
            .join();
            assert!(panicked.is_err());
            let _never = lock.lock_or_stop();
            unreachable!("vsamrd went on with a half-changed state");
        }
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "poison::tests::a_lock_whose_holder_panicked_stops_the_process_saying_why",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert_eq!(child.status.code(), Some(EXIT_HALF_CHANGED), "{stderr}");
        assert!(
            stderr.contains("vsamrd stops (exit code 70): the lock taken at host/src/poison.rs:"),
            "{stderr}"
        );
        assert!(stderr.contains("half-way through a change"), "{stderr}");
        assert!(!stderr.contains("went on"), "{stderr}");
    }
}
