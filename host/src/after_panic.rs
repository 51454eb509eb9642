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
//! And a task vsamrd cannot do without ([`spawn_essential`]: a mirror,
//! the fleet's follower, a bucket claim's renewal) that panics would leave
//! it running without, unseen: a mirror falling behind for ever, a claim
//! running out under a server that goes on writing.
//!
//! So the first task that finds such a lock stops vsamrd with
//! [`EXIT_HALF_CHANGED`], saying why. Every acknowledged write is in the
//! stores already (a stop is no worse than a `SIGKILL`, which the
//! reliability program tests); the service manager starts vsamrd again
//! from them (`packaging/vsamrd.service` restarts it on failure) and
//! clients reconnect.

use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
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
            Err(_) => stop_after_panic(&format!(
                "the lock taken at {} was held by a task that panicked (the bug logged before this line), so the state it guards in memory may be half-changed, and serving from it could lose or mix records",
                std::panic::Location::caller()
            )),
        }
    }
}

/// Stops vsamrd after a panic, for `why` (what the panic may have left
/// half-changed, or done without): says so in the log (and on standard
/// error if nothing logs yet), then ends the process with
/// [`EXIT_HALF_CHANGED`].
#[cold]
pub fn stop_after_panic(why: &str) -> ! {
    let why = format!(
        "vsamrd stops (exit code {EXIT_HALF_CHANGED}): {why}. Every acknowledged write is stored: start vsamrd again (its service manager does, on failure) and clients reconnect. Report both lines with `vsamrd --version`"
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

/// Spawns a task vsamrd cannot do without (a mirror, the fleet's
/// follower, a bucket claim's renewal, the admin port...), named by
/// `what`: if it panics, vsamrd stops ([`stop_after_panic`]) instead of
/// running on without it, a mirror falling behind or a claim running out
/// with nothing to show for it but one line in the log.
pub fn spawn_essential<F>(what: impl Into<String>, task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let what = what.into();
    tokio::spawn(async move {
        let why = format!(
            "the task that keeps {what} panicked (the bug logged before this line), and vsamrd would go on without it"
        );
        whole_or_stop(&why, task).await
    })
}

/// Runs `work`, which must not stop half-way (a reload replacing the
/// backends and the routing, under a lock that does not poison): if it
/// panics, vsamrd stops ([`stop_after_panic`]) for `why`.
pub async fn whole_or_stop<F: Future>(why: &str, work: F) -> F::Output {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(output) => output,
        Err(_) => stop_after_panic(why),
    }
}

/// For tests of what stops vsamrd: runs `scene` in a child process (this
/// test binary again, running only test `test`), where it must end the
/// process; returns the child's exit code and standard error.
#[cfg(test)]
pub(crate) fn stopped_in_child(test: &str, scene: impl FnOnce()) -> (Option<i32>, String) {
    const CHILD: &str = "VSAMRD_TEST_STOPS_IN_CHILD";
    if std::env::var_os(CHILD).is_some() {
        scene();
        unreachable!("{test}: the process went on");
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&child.stderr).into_owned();
    (child.status.code(), stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpoisoned_lock_is_taken_as_usual() {
        let lock = Mutex::new(1);
        *lock.lock_or_stop() += 1;
        assert_eq!(*lock.lock_or_stop(), 2);
    }

    #[test]
    fn a_lock_whose_holder_panicked_stops_the_process_saying_why() {
        let (code, stderr) = stopped_in_child(
            "after_panic::tests::a_lock_whose_holder_panicked_stops_the_process_saying_why",
            || {
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
            },
        );
        assert_eq!(code, Some(EXIT_HALF_CHANGED), "{stderr}");
        assert!(
            stderr.contains(
                "vsamrd stops (exit code 70): the lock taken at host/src/after_panic.rs:"
            ),
            "{stderr}"
        );
        assert!(stderr.contains("half-way through a change"), "{stderr}");
        assert!(!stderr.contains("went on"), "{stderr}");
    }

    #[test]
    fn an_essential_task_that_panics_stops_the_process() {
        let (code, stderr) = stopped_in_child(
            "after_panic::tests::an_essential_task_that_panics_stops_the_process",
            || {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(async {
                    let ended = spawn_essential("the mirror TEST", async {
                        panic!("a mirror's bug");
                    });
                    let _ = ended.await;
                    // Time for the stop, which ends the process first.
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                });
            },
        );
        assert_eq!(code, Some(EXIT_HALF_CHANGED), "{stderr}");
        assert!(stderr.contains("a mirror's bug"), "{stderr}");
        assert!(!stderr.contains("went on"), "{stderr}");
        assert!(
            stderr.contains(
                "vsamrd stops (exit code 70): the task that keeps the mirror TEST panicked"
            ),
            "{stderr}"
        );
    }

    #[test]
    fn work_that_panics_half_way_stops_the_process() {
        let (code, stderr) = stopped_in_child(
            "after_panic::tests::work_that_panics_half_way_stops_the_process",
            || {
                let runtime = tokio::runtime::Runtime::new().unwrap();
                runtime.block_on(whole_or_stop("a reload panicked half-way", async {
                    panic!("a reload's bug");
                }));
            },
        );
        assert_eq!(code, Some(EXIT_HALF_CHANGED), "{stderr}");
        assert!(stderr.contains("a reload's bug"), "{stderr}");
        assert!(
            stderr.contains("vsamrd stops (exit code 70): a reload panicked half-way."),
            "{stderr}"
        );
    }

    #[tokio::test]
    async fn an_essential_task_answers_as_spawned_when_it_does_not_panic() {
        assert_eq!(spawn_essential("a sum", async { 2 + 2 }).await.unwrap(), 4);
    }
}
