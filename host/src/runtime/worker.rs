//! One thread per backend owns its store and runs calls in arrival order.
//!
//! A plugin instance is single-threaded and stateful (it may cache), so all
//! of a backend's calls go through one queue; async sessions wait on a
//! oneshot answer and never block a runtime thread on plugin code.
//!
//! Group commit: the worker takes every call already queued, runs them,
//! then asks the store to `sync` once, and only then answers. Writes are
//! acknowledged after they are durable, and many clients share one sync.

use super::call::{Call, CallError, CallResult, RecordStore};
use std::sync::mpsc;
use tokio::sync::oneshot;

struct Job {
    call: Call,
    answer: oneshot::Sender<CallResult>,
}

/// Most calls answered after one sync.
const MAX_GROUP: usize = 256;

/// Runs queued calls, syncs once if any of them wrote, then answers them.
fn run_group(store: &mut dyn RecordStore, batch: Vec<Job>) {
    let mut done: Vec<(oneshot::Sender<CallResult>, CallResult, bool)> =
        Vec::with_capacity(batch.len());
    let mut wrote = false;
    for job in batch {
        let write = job.call.is_write();
        let result = store.call(job.call);
        wrote |= write && result.is_ok();
        done.push((job.answer, result, write));
    }
    let synced = if wrote {
        store.call(Call::Sync).map(drop)
    } else {
        Ok(())
    };
    if let Err(error) = &synced {
        tracing::error!("sync failed, writes of this group are reported failed: {error}");
        store.reset();
    }
    for (answer, result, write) in done {
        let result = match (&synced, write, result) {
            (Err(error), true, Ok(_)) => Err(error.clone()),
            (_, _, result) => result,
        };
        let _ = answer.send(result);
    }
}

/// A handle to a backend: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct BackendHandle {
    name: String,
    plugin: String,
    queue: mpsc::Sender<Job>,
}

impl BackendHandle {
    /// Starts the worker thread that owns `store`.
    pub fn spawn(
        name: &str,
        plugin: &str,
        mut store: Box<dyn RecordStore>,
    ) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("backend-{name}"))
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_GROUP {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_group(store.as_mut(), batch);
                }
            })?;
        Ok(Self {
            name: name.to_string(),
            plugin: plugin.to_string(),
            queue,
        })
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin serving it.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Runs one call on the backend's thread.
    pub async fn call(&self, call: Call) -> CallResult {
        let (answer, result) = oneshot::channel();
        let unavailable = || CallError::Unavailable(format!("backend {} has stopped", self.name));
        self.queue
            .send(Job { call, answer })
            .map_err(|_| unavailable())?;
        result.await.map_err(|_| unavailable())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::call::Reply;
    use vsam_plugin_sdk::{Dataset, Organization, StoreError};

    #[derive(Default)]
    struct Fake {
        calls: Vec<&'static str>,
        fail_sync: bool,
        resets: u32,
    }

    impl RecordStore for Fake {
        fn call(&mut self, call: Call) -> CallResult {
            self.calls.push(call.name());
            match call {
                Call::Sync if self.fail_sync => {
                    Err(CallError::Store(StoreError::NoSpace("disk full".into())))
                }
                Call::Get(..) => Ok(Reply::Record(None)),
                _ => Ok(Reply::Done),
            }
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
    }

    fn ds() -> Dataset {
        Dataset {
            name: "A".into(),
            organization: Organization::Esds,
            key_offset: 0,
            key_length: 0,
            max_record_length: 9,
            min_record_length: 1,
            codepage: "ascii".into(),
        }
    }

    fn job(call: Call) -> (Job, oneshot::Receiver<CallResult>) {
        let (answer, receiver) = oneshot::channel();
        (Job { call, answer }, receiver)
    }

    #[test]
    fn one_sync_serves_a_group_of_writes() {
        let mut store = Fake::default();
        let (insert, inserted) = job(Call::Insert(ds(), vec![1], vec![1]));
        let (get, got) = job(Call::Get(ds(), vec![1]));
        let (replace, replaced) = job(Call::Replace(ds(), vec![1], vec![2]));
        run_group(&mut store, vec![insert, get, replace]);
        assert_eq!(store.calls, ["insert", "get", "replace", "sync"]);
        for mut answer in [inserted, got, replaced] {
            assert!(answer.try_recv().unwrap().is_ok());
        }
        let mut reads = Fake::default();
        let (get, _) = job(Call::Get(ds(), vec![1]));
        run_group(&mut reads, vec![get]);
        assert_eq!(reads.calls, ["get"], "no sync without a write");
    }

    #[test]
    fn a_failed_sync_fails_the_writes_and_resets_the_store() {
        let mut store = Fake {
            fail_sync: true,
            ..Fake::default()
        };
        let (insert, mut inserted) = job(Call::Insert(ds(), vec![1], vec![1]));
        let (get, mut got) = job(Call::Get(ds(), vec![1]));
        run_group(&mut store, vec![insert, get]);
        assert!(matches!(
            inserted.try_recv().unwrap(),
            Err(CallError::Store(StoreError::NoSpace(_)))
        ));
        assert!(got.try_recv().unwrap().is_ok(), "reads are unaffected");
        assert_eq!(store.resets, 1);
    }
}
