//! Changes that leave the server: every committed change of the datasets
//! that mirrors or the change stream follow, recorded in commit order in a
//! durable log ([`log`]) by the backends' serving tasks ([`capture`]),
//! applied to mirror backends ([`mirror`]) and written as JSON lines for
//! programs outside ([`stream`]); [`followers`] runs them. A backend with
//! a database of its own records its groups there too ([`outboxes`]), so
//! the log needs no sync of its own for them. Datasets other servers of a
//! fleet write too cannot be followed from one server's log ([`fleet`]).

pub mod capture;
pub mod change;
pub mod fleet;
pub mod followers;
pub mod log;
pub mod mirror;
pub mod outboxes;
pub mod stream;

pub use capture::Capture;
pub use change::{Change, Operation};
pub use followers::{ChangeHub, Followers};
pub use log::ChangeLog;

/// Runs file work of the followers (writes, syncs, removals) on a blocking
/// thread, not on a runtime thread that serves connections and the
/// backends' writers; a panic in it comes back as an error.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
