//! One thread per backend owns its store and runs calls in arrival order.
//!
//! A plugin instance is single-threaded and stateful (it may cache), so all
//! of a backend's calls go through one queue; async sessions wait on a
//! oneshot answer and never block a runtime thread on plugin code.

use super::call::{Call, CallError, CallResult, RecordStore};
use std::sync::mpsc;
use tokio::sync::oneshot;

struct Job {
    call: Call,
    answer: oneshot::Sender<CallResult>,
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
                while let Ok(job) = jobs.recv() {
                    let result = store.call(job.call);
                    let _ = job.answer.send(result);
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
