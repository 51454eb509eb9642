//! The connections open now, as an operator sees them, and the way to end
//! one.
//!
//! A refusal of a record names the connection that holds it (`held for
//! update by connection 7`); a program stuck with a GET UPD, or gone
//! quiet in the middle of its work, holds its records until its idle time
//! limit (an hour). `vsamr admin connections` lists every connection with
//! its address, client, age, idle time, open datasets and the records it
//! holds, so that the operator finds the program behind the number;
//! `vsamr admin disconnect` ends it as the server's shutdown would: the
//! request under way is answered, the client is told why, the unit of
//! work is rolled back and the records are released.

use crate::after_panic::LockOrStop;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// One connection: who it is, what it has open, and its end, which an
/// operator may order.
pub struct SessionWatch {
    /// The connection's number.
    pub session: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Who is on it: the client its token or certificate names, or
    /// `anonymous`.
    pub identity: String,
    /// What the client's HELLO says it is.
    pub client: String,
    /// When it connected.
    pub since: SystemTime,
    connected: Instant,
    /// Milliseconds from `connected` to the start of the last request.
    last_request_ms: AtomicU64,
    requests: AtomicU64,
    /// The dataset of each open handle.
    opened: Mutex<HashMap<u32, String>>,
    /// Why the operator ended it, once it did.
    ended: watch::Sender<Option<String>>,
}

/// The end of one connection, as its loop awaits it.
pub struct Ending(watch::Receiver<Option<String>>);

impl Ending {
    /// Resolves with the reason once the operator ends the connection
    /// (never, if the watch is gone first).
    pub async fn reason(&mut self) -> String {
        let reason = self
            .0
            .wait_for(Option::is_some)
            .await
            .map(|reason| reason.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    }
}

/// A connection as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// The connection's number.
    pub session: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Who is on it.
    pub identity: String,
    /// What the client says it is.
    pub client: String,
    /// Since it connected.
    pub age: Duration,
    /// Since its last request began.
    pub idle: Duration,
    /// Requests it made.
    pub requests: u64,
    /// The datasets it has open, in name order (once per open).
    pub datasets: Vec<String>,
}

impl SessionWatch {
    /// The watch of a connection from `peer` that has just been welcomed.
    pub fn new(session: u64, peer: SocketAddr, identity: String, client: String) -> Self {
        Self {
            session,
            peer,
            identity,
            client,
            since: SystemTime::now(),
            connected: Instant::now(),
            last_request_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            opened: Mutex::default(),
            ended: watch::Sender::new(None),
        }
    }

    /// A request begins `at` (the time its loop read already: no second
    /// look at the clock on every request's path).
    pub fn request(&self, at: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let since = at.saturating_duration_since(self.connected);
        self.last_request_ms
            .store(since.as_millis() as u64, Ordering::Relaxed);
    }

    /// Handle `handle` opened `dataset`.
    pub fn opened(&self, handle: u32, dataset: &str) {
        self.opened
            .lock_or_stop()
            .insert(handle, dataset.to_string());
    }

    /// Handle `handle` is closed.
    pub fn closed(&self, handle: u32) {
        self.opened.lock_or_stop().remove(&handle);
    }

    /// Orders the connection ended for `reason`; false if it was already.
    pub fn end(&self, reason: String) -> bool {
        self.ended.send_if_modified(|ended| {
            if ended.is_some() {
                return false;
            }
            *ended = Some(reason);
            true
        })
    }

    /// What the connection's loop waits on beside its next request.
    pub fn ending(&self) -> Ending {
        Ending(self.ended.subscribe())
    }

    /// The connection now.
    pub fn snapshot(&self) -> SessionSnapshot {
        let age = self.connected.elapsed();
        let last = Duration::from_millis(self.last_request_ms.load(Ordering::Relaxed));
        let mut datasets: Vec<String> = self.opened.lock_or_stop().values().cloned().collect();
        datasets.sort();
        SessionSnapshot {
            session: self.session,
            peer: self.peer,
            identity: self.identity.clone(),
            client: self.client.clone(),
            age,
            idle: age.saturating_sub(last),
            requests: self.requests.load(Ordering::Relaxed),
            datasets,
        }
    }
}

/// Every connection open now, by number.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<u64, std::sync::Arc<SessionWatch>>>,
}

impl Sessions {
    /// A welcomed connection begins.
    pub fn add(&self, watch: std::sync::Arc<SessionWatch>) {
        self.open.lock_or_stop().insert(watch.session, watch);
    }

    /// A connection is gone.
    pub fn remove(&self, session: u64) {
        self.open.lock_or_stop().remove(&session);
    }

    /// Every connection now, oldest first.
    pub fn snapshots(&self) -> Vec<SessionSnapshot> {
        let watches: Vec<_> = self.open.lock_or_stop().values().cloned().collect();
        let mut sessions: Vec<SessionSnapshot> = watches.iter().map(|w| w.snapshot()).collect();
        sessions.sort_by_key(|session| (std::cmp::Reverse(session.age), session.session));
        sessions
    }

    /// Orders connection `session` ended for `reason`: what it was, or
    /// `None` if no such connection is open (or its end was ordered
    /// already).
    pub fn end(&self, session: u64, reason: String) -> Option<SessionSnapshot> {
        let watch = self.open.lock_or_stop().get(&session).cloned()?;
        let snapshot = watch.snapshot();
        watch.end(reason).then_some(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn watch(session: u64) -> Arc<SessionWatch> {
        Arc::new(SessionWatch::new(
            session,
            "127.0.0.1:5000".parse().unwrap(),
            "anonymous".into(),
            "test".into(),
        ))
    }

    #[test]
    fn a_connection_shows_what_it_has_open_and_how_long_it_idles() {
        let one = watch(1);
        one.opened(1, "PAY.MASTER");
        one.opened(2, "PAY.LOG");
        one.opened(3, "PAY.MASTER");
        one.closed(2);
        one.request(Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let seen = one.snapshot();
        assert_eq!(seen.datasets, ["PAY.MASTER", "PAY.MASTER"]);
        assert_eq!(seen.requests, 1);
        assert!(seen.idle >= Duration::from_millis(30) && seen.idle <= seen.age);
        one.request(Instant::now());
        assert!(one.snapshot().idle < Duration::from_millis(30));
    }

    #[tokio::test]
    async fn an_ended_connection_hears_why_once() {
        let sessions = Sessions::default();
        let (one, two) = (watch(1), watch(2));
        sessions.add(one.clone());
        sessions.add(two.clone());
        assert_eq!(sessions.snapshots().len(), 2);
        assert_eq!(sessions.end(3, "no such".into()), None);
        let mut ending = one.ending();
        let waiting = tokio::spawn(async move { ending.reason().await });
        let ended = sessions
            .end(1, "stuck".into())
            .expect("connection 1 is open");
        assert_eq!(ended.session, 1);
        assert_eq!(waiting.await.unwrap(), "stuck");
        // Asked again before it is gone: not ended twice.
        assert_eq!(sessions.end(1, "again".into()), None);
        assert_eq!(one.ending().reason().await, "stuck");
        sessions.remove(1);
        assert_eq!(
            sessions
                .snapshots()
                .iter()
                .map(|s| s.session)
                .collect::<Vec<_>>(),
            [2]
        );
    }
}
