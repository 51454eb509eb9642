//! Servers that share a PostgreSQL database (a fleet) share what must be
//! shared through it: the record locks of exclusive control and of units of
//! work, held as session-level advisory locks in a connection of each
//! server's own, so that a crashed server's locks die with it.
//!
//! A dataset on a backend granted a PostgreSQL database takes, for each
//! record a string holds for update or a unit of work changes, the lock in
//! the database beside the one in memory; another server then answers
//! X'14' for it, as a second connection of the same server would.

mod catalog;
mod mirrored;
mod records;
mod session;
mod solo;

pub use catalog::{Claim, SharedEntry, catalog_table_named};
pub use mirrored::MirrorHolder;
pub use records::{FleetRecords, Hold, INDEXES_WAIT, open_lock};
pub use session::{Announced, FleetRefusal, Lock, LockSession, Member, Mode, Space};
pub use solo::NOT_SOLO;

use crate::after_panic::LockOrStop;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

tokio::task_local! {
    /// The database unlocks a request started, for [`answering`].
    static RELEASES: Arc<Mutex<Vec<JoinHandle<()>>>>;
}

/// Runs `request`, then waits until every record lock it gave back in a
/// fleet's database is given back: its answer then reaches the client
/// only when other servers may take the records.
pub async fn answering<F: Future>(request: F) -> F::Output {
    let releases = Arc::new(Mutex::new(Vec::new()));
    let output = RELEASES.scope(releases.clone(), request).await;
    let started = std::mem::take(&mut *releases.lock_or_stop());
    for unlock in started {
        let _ = unlock.await;
    }
    output
}

/// Notes an unlock under way for the request running now, if any.
fn started(unlock: JoinHandle<()>) {
    let _ = RELEASES.try_with(|releases| releases.lock_or_stop().push(unlock));
}

/// A server's lock sessions, one per shared database.
pub struct Fleet {
    /// How this server names itself in `pg_stat_activity`.
    application: String,
    sessions: Mutex<HashMap<String, Arc<LockSession>>>,
    /// The server stopped: sessions made from now on start closed.
    closed: std::sync::atomic::AtomicBool,
    /// The databases whose shared catalogs this server follows.
    followed: Mutex<std::collections::HashSet<String>>,
    /// Held while this server changes its catalog together with a shared
    /// one (a DEFINE from its claim to its entry, a DELETE, a sync), so
    /// that a sync never applies a snapshot older than a change made
    /// meanwhile.
    pub catalog: Arc<tokio::sync::Mutex<()>>,
}

impl Fleet {
    /// No session yet; `listen` is the address this server serves, which
    /// names its lock sessions.
    pub fn new(listen: &str) -> Self {
        Self {
            application: format!(
                "vsamrd {} {listen} pid {}",
                env!("CARGO_PKG_VERSION"),
                std::process::id()
            ),
            sessions: Mutex::new(HashMap::new()),
            closed: Default::default(),
            followed: Mutex::new(Default::default()),
            catalog: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// True the first time it is asked for `url`: this server starts
    /// following that database's shared catalog.
    pub fn starts_following(&self, url: &str) -> bool {
        self.followed.lock_or_stop().insert(url.to_string())
    }

    /// The lock session on the database at `url` (one per database, made on
    /// first use; call within the server's runtime; closed from the start
    /// once the server has stopped).
    pub fn session(&self, url: &str) -> Arc<LockSession> {
        self.sessions
            .lock_or_stop()
            .entry(url.to_string())
            .or_insert_with(|| {
                let session =
                    LockSession::new(url, &self.application, tokio::runtime::Handle::current());
                if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                    session.close();
                }
                Arc::new(session)
            })
            .clone()
    }

    /// The database at `url` as its lock session names it, if another
    /// server has shared it with this one since this one started (see
    /// [`LockSession::fleet_seen`]); `None` for a database this server has
    /// no lock session on.
    pub fn shared_with_others(&self, url: &str) -> Option<String> {
        let session = self.sessions.lock_or_stop().get(url).cloned()?;
        session.fleet_seen().then(|| session.label())
    }

    /// Closes every lock session for good, as the server stops: a server
    /// embedded in a process that goes on (a test, a benchmark) leaves no
    /// connection and no lock behind, as one whose process ends does.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        for session in self.sessions.lock_or_stop().values() {
            session.close();
        }
    }

    /// Every lock session, with the URL of its database.
    pub fn sessions(&self) -> Vec<(String, Arc<LockSession>)> {
        self.sessions
            .lock_or_stop()
            .iter()
            .map(|(url, session)| (url.clone(), session.clone()))
            .collect()
    }

    /// Every server sharing a database with this one, one row per database
    /// and server (a row saying why, for a database that cannot be asked).
    pub async fn status(&self) -> Vec<vsam_protocol::admin::FleetRow> {
        let sessions: Vec<Arc<LockSession>> =
            self.sessions.lock_or_stop().values().cloned().collect();
        let mut rows = Vec::new();
        for session in sessions {
            let database = session.label();
            match session.members().await {
                Ok(members) => {
                    rows.extend(
                        members
                            .into_iter()
                            .map(|member| vsam_protocol::admin::FleetRow {
                                database: database.clone(),
                                server: member.server,
                                address: member.address,
                                connected_s: member.connected_s,
                                locks: member.locks,
                                opens: member.opens,
                                this: member.this,
                            }),
                    )
                }
                Err(refusal) => rows.push(vsam_protocol::admin::FleetRow {
                    database,
                    server: format!("(cannot be asked: {refusal})"),
                    address: String::new(),
                    connected_s: 0,
                    locks: 0,
                    opens: 0,
                    this: false,
                }),
            }
        }
        rows
    }
}
