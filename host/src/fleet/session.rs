//! One server's lock session on a shared PostgreSQL database: a connection
//! of its own that holds the server's record locks as session-level
//! advisory locks. PostgreSQL releases them when the session ends, so a
//! server that crashes or loses its connection frees every record it held.
//!
//! Each connection made is a generation. A lock taken in one generation is
//! gone once that connection is: whoever took it must not write as if it
//! still held it ([`LockSession::intact`]).

use super::solo::{self, FLEET_CHANNEL, JOIN};
use crate::after_panic::LockOrStop;
use crate::runtime::sql::postgres_tls::{self, TlsRequest};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio_postgres::Client;

/// The channel the shared catalog's changes are announced on, which every
/// lock session listens to.
pub(super) const CHANNEL: &str = "vsamrd_catalog";

/// How long connecting or one lock statement may take.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a readiness probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a lock is held: by one session alone, or by many together (each
/// server that has a dataset open holds its open lock shared; a DELETE
/// needs it alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One holder.
    Exclusive,
    /// Any number of holders, none of them alone.
    Shared,
}

impl Mode {
    /// The functions that take and give back a lock in this mode.
    fn functions(self) -> (&'static str, &'static str) {
        match self {
            Mode::Exclusive => ("pg_try_advisory_lock", "pg_advisory_unlock"),
            Mode::Shared => ("pg_try_advisory_lock_shared", "pg_advisory_unlock_shared"),
        }
    }
}

/// Which advisory keys a lock takes, so that the database tells them
/// apart (`pg_locks.objsubid` 1 and 2): a record's (one 64-bit key hashed
/// from its name) or a dataset's (two 32-bit keys). PostgreSQL computes the
/// hashes, so every server of the fleet finds the same lock for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// A record lock.
    Record,
    /// A dataset's open lock.
    Dataset,
}

/// One advisory lock: its name, how it is held, and its key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// What it locks (hashed by the database into its key).
    pub name: String,
    /// Alone or shared.
    pub mode: Mode,
    /// Record or dataset.
    pub space: Space,
}

/// One statement calling `function(mode)` on each lock, named by
/// parameter i + 1: a row of one boolean per lock.
fn statement(locks: &[Lock], function: impl Fn(Mode) -> &'static str) -> String {
    let calls: Vec<String> = locks
        .iter()
        .enumerate()
        .map(|(n, lock)| {
            let f = function(lock.mode);
            let n = n + 1;
            match lock.space {
                Space::Record => format!("{f}(hashtextextended(${n}, 0))"),
                Space::Dataset => format!("{f}(hashtext(${n}), hashtext(reverse(${n})))"),
            }
        })
        .collect();
    format!("SELECT {}", calls.join(", "))
}

fn names(locks: &[Lock]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    locks
        .iter()
        .map(|lock| &lock.name as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// Locks taken or given back by one statement at most (a row of results
/// has at most 1,664 columns in PostgreSQL).
const LOCKS_PER_STATEMENT: usize = 1_000;

/// Calls `function(mode)` on each of `locks` (at most
/// [`LOCKS_PER_STATEMENT`]) in one statement: what each call answered, or
/// why the session failed.
async fn call(
    client: &Client,
    locks: &[Lock],
    function: impl Fn(Mode) -> &'static str,
) -> Result<Vec<bool>, String> {
    let text = statement(locks, function);
    // Typed parameters: one round trip (an unnamed statement) instead of a
    // prepare, an execute and a close; a GET UPD waits for its lock.
    let params: Vec<_> = names(locks)
        .into_iter()
        .map(|name| (name, tokio_postgres::types::Type::TEXT))
        .collect();
    let answered = client.query_typed(&text, &params);
    match tokio::time::timeout(LOCK_TIMEOUT, answered).await {
        Ok(Ok(rows)) if rows.len() == 1 => Ok((0..locks.len()).map(|n| rows[0].get(n)).collect()),
        Ok(Ok(rows)) => Err(format!(
            "the fleet's lock session answered {} rows to one lock statement",
            rows.len()
        )),
        Ok(Err(e)) => Err(format!(
            "the fleet's lock session failed: {}",
            crate::runtime::error_chain(&e)
        )),
        Err(_) => Err(format!(
            "the fleet's lock session did not answer within {} ms",
            LOCK_TIMEOUT.as_millis()
        )),
    }
}

/// The servers of the fleet: each one's lock session, with how many record
/// locks it holds alone (a record held for update or changed by a unit of
/// work) and how many datasets it has open.
const MEMBERS: &str = "SELECT a.application_name, COALESCE(host(a.client_addr), 'local socket'), \
     EXTRACT(EPOCH FROM now() - a.backend_start)::bigint, \
     (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.objsubid = 1 AND l.mode = 'ExclusiveLock'), \
     (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.objsubid = 2 AND l.mode = 'ShareLock' \
        AND NOT (l.classid = 1987273069 AND l.objid = 1936682095)), \
     a.pid = pg_backend_pid() \
     FROM pg_stat_activity a WHERE a.application_name LIKE 'vsamrd %' ORDER BY a.backend_start";

/// The database's limits on connections: `max_connections`, and how many
/// of them are kept for superusers and (PostgreSQL 16 on) for roles of
/// `pg_use_reserved_connections`.
const CONNECTION_LIMITS: &str = "SELECT current_setting('max_connections')::int, \
     current_setting('superuser_reserved_connections')::int, \
     COALESCE(current_setting('reserved_connections', true), '0')::int";

/// How many connections a database takes from clients like vsamrd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Its `max_connections`.
    pub max: i32,
    /// Those of them kept for superusers and reserved roles.
    pub reserved: i32,
}

impl ConnectionLimits {
    /// The connections ordinary clients may hold together.
    pub fn usable(&self) -> i32 {
        self.max - self.reserved
    }
}

/// One server of a fleet as the database sees its lock session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its application name: `vsamrd VERSION LISTEN pid PID`.
    pub server: String,
    /// Its address as the database sees it.
    pub address: String,
    /// Seconds since its lock session connected.
    pub connected_s: u64,
    /// Record locks it holds now (advisory locks held alone).
    pub locks: u64,
    /// Datasets it has open now (advisory locks held shared).
    pub opens: u64,
    /// True for this server's own session.
    pub this: bool,
}

/// Why a record lock could not be taken in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetRefusal {
    /// Another server of the fleet holds it.
    HeldElsewhere,
    /// The database cannot be reached or did not answer: the reason.
    Unavailable(String),
}

impl std::fmt::Display for FleetRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetRefusal::HeldElsewhere => f.write_str("held by another server of the fleet"),
            FleetRefusal::Unavailable(why) => f.write_str(why),
        }
    }
}

/// The connection now and its generation.
struct Link {
    client: Arc<Client>,
    generation: u64,
}

/// A server's lock session on one database (see the module doc).
pub struct LockSession {
    url: String,
    application: String,
    runtime: Handle,
    link: Mutex<Option<Link>>,
    /// Serializes reconnects: one new connection per loss.
    connecting: tokio::sync::Mutex<()>,
    generations: AtomicU64,
    /// The shared catalog's changes announced since its follower last
    /// read them (see [`Announced`]).
    changes: watch::Sender<Announced>,
    /// The generation in which this server holds the database alone, or 0
    /// (see [`solo`]).
    solo: Arc<AtomicU64>,
    /// Another server joined this database since this server started.
    fleet_seen: Arc<AtomicBool>,
    /// The server stopped: the session does not connect again.
    closed: AtomicBool,
    /// The open locks of the datasets this server has open: how many hold
    /// each here, and the generation its database lock was taken in (0:
    /// not held). Every new connection takes them again.
    opens: Mutex<HashMap<String, (usize, u64)>>,
}

/// The shared catalog's changes announced (NOTIFY on `vsamrd_catalog`) since
/// its follower last read them: the names to read again, or everything.
/// A DEFINE in a fleet costs each server the read of one row, not of the
/// whole table (every row, each definition parsed and checked: 100 ms per
/// DEFINE at 7,500 datasets, and growing with them).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Announced {
    /// The names announced defined or deleted.
    pub names: std::collections::BTreeSet<String>,
    /// Everything must be read again: a new connection (announcements may
    /// have been missed before it), an announcement naming no dataset, or
    /// more names than `MAX_ANNOUNCED`.
    pub everything: bool,
}

/// The most names waiting to be read one by one; past them the whole
/// catalog is read, once.
pub const MAX_ANNOUNCED: usize = 4096;

impl Announced {
    /// Everything to read again.
    fn everything(&mut self) {
        self.names.clear();
        self.everything = true;
    }

    /// Takes an announcement: `define NAME` or `delete NAME` (as
    /// `fleet::catalog` sends them); anything else reads everything.
    fn heard(&mut self, payload: &str) {
        if self.everything {
            return;
        }
        let name = payload
            .strip_prefix("define ")
            .or_else(|| payload.strip_prefix("delete "))
            .filter(|name| !name.is_empty());
        match name {
            Some(name) if self.names.len() < MAX_ANNOUNCED => {
                self.names.insert(name.to_string());
            }
            _ => self.everything(),
        }
    }

    /// True if nothing was announced.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.names.is_empty()
    }
}

/// What a connection's driver tells the session of its notifications.
#[derive(Clone)]
struct Signals {
    changes: watch::Sender<Announced>,
    solo: Arc<AtomicU64>,
    fleet_seen: Arc<AtomicBool>,
    /// Wakes the connection's task that makes room for a joining server.
    make_room: Arc<Notify>,
    /// The connection's own backend process in the database (0 until
    /// known): PostgreSQL hands a listener its own announcements too, and a
    /// server waiting to join hears its own.
    own_pid: Arc<AtomicI32>,
}

impl LockSession {
    /// A session on the database at `url` (connected at its first lock),
    /// named `application` in `pg_stat_activity`.
    pub fn new(url: &str, application: &str, runtime: Handle) -> Self {
        Self {
            url: url.to_string(),
            application: application.to_string(),
            runtime,
            link: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
            changes: watch::Sender::new(Announced::default()),
            solo: Arc::new(AtomicU64::new(0)),
            fleet_seen: Arc::new(AtomicBool::new(false)),
            closed: AtomicBool::new(false),
            opens: Mutex::new(HashMap::new()),
        }
    }

    /// Ends the session for good (the server stops): its connection closes,
    /// so PostgreSQL frees every lock it held at once, and nothing connects
    /// it again.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.link.lock_or_stop().take();
    }

    /// The generation of the lock session in which this server holds the
    /// database alone, while it does: then no other server can change its
    /// records, and a browse may read ahead (see `solo`).
    pub fn solo(&self) -> Option<u64> {
        let generation = self.solo.load(Ordering::Acquire);
        (generation != 0 && self.intact(generation)).then_some(generation)
    }

    /// True once another server has shared this database with this one
    /// (it stays so until this server restarts, as read-ahead does): their
    /// writes there pass through neither this server's locks in memory nor
    /// its change log.
    pub fn fleet_seen(&self) -> bool {
        self.fleet_seen.load(Ordering::Acquire)
    }

    /// How the server names itself in the database.
    pub fn application(&self) -> String {
        self.application.clone()
    }

    /// Changes of the shared catalog to follow: the value moves at every
    /// announced change and at every new connection; [`Self::take_announced`]
    /// says what they were.
    pub fn changes(&self) -> watch::Receiver<Announced> {
        self.changes.subscribe()
    }

    /// What was announced since the last call, forgotten here.
    pub fn take_announced(&self) -> Announced {
        let mut taken = Announced::default();
        self.changes.send_if_modified(|announced| {
            taken = std::mem::take(announced);
            false
        });
        taken
    }

    /// The connection serving now, if it is alive.
    fn alive(&self) -> Option<(Arc<Client>, u64)> {
        let link = self.link.lock_or_stop();
        link.as_ref()
            .filter(|link| !link.client.is_closed())
            .map(|link| (link.client.clone(), link.generation))
    }

    /// True while the connection of `generation` still serves: locks taken
    /// in it are held.
    pub fn intact(&self, generation: u64) -> bool {
        self.alive().is_some_and(|(_, now)| now == generation)
    }

    /// The live connection, connecting a new one (a new generation) if
    /// there is none.
    pub(super) async fn client(&self) -> Result<(Arc<Client>, u64), FleetRefusal> {
        if let Some(alive) = self.alive() {
            return Ok(alive);
        }
        let _one = self.connecting.lock().await;
        if let Some(alive) = self.alive() {
            return Ok(alive);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(FleetRefusal::Unavailable(
                "the server is stopping: its lock session is closed".into(),
            ));
        }
        let make_room = Arc::new(Notify::new());
        let client = Arc::new(self.connect(&make_room).await?);
        client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {FLEET_CHANNEL}"))
            .await
            .map_err(FleetRefusal::from)?;
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        let alone = solo::claim(&client, self.fleet_seen.load(Ordering::Acquire))
            .await
            .map_err(FleetRefusal::Unavailable)?;
        if alone {
            self.solo.store(generation, Ordering::Release);
        } else {
            self.fleet_seen.store(true, Ordering::Release);
        }
        self.take_opens_again(&client, generation).await?;
        let room_client = Arc::downgrade(&client);
        self.runtime.spawn(async move {
            make_room.notified().await;
            if let Some(client) = room_client.upgrade()
                && let Err(why) = solo::make_room(&client).await
            {
                tracing::warn!("{why}");
            }
        });
        *self.link.lock_or_stop() = Some(Link {
            client: client.clone(),
            generation,
        });
        // Announcements may have been missed while no connection listened.
        self.changes.send_modify(Announced::everything);
        tracing::info!(generation, alone, "fleet lock session connected");
        Ok((client, generation))
    }

    async fn connect(&self, make_room: &Arc<Notify>) -> Result<Client, FleetRefusal> {
        let signals = Signals {
            changes: self.changes.clone(),
            solo: self.solo.clone(),
            fleet_seen: self.fleet_seen.clone(),
            make_room: make_room.clone(),
            own_pid: Arc::new(AtomicI32::new(0)),
        };
        let unavailable = |e: String| {
            FleetRefusal::Unavailable(format!("cannot open the fleet's lock session: {e}"))
        };
        let (text, tls) = postgres_tls::parse(&self.url).map_err(unavailable)?;
        let mut config: tokio_postgres::Config =
            text.parse().map_err(|e| unavailable(format!("{e}")))?;
        config.connect_timeout(LOCK_TIMEOUT);
        config.application_name(&self.application);
        let options = config.get_options().unwrap_or_default().to_string();
        config.options(
            format!(
                "{options} -c statement_timeout={}",
                LOCK_TIMEOUT.as_millis()
            )
            .trim_start(),
        );
        let connecting = async {
            match &tls {
                TlsRequest::Off => {
                    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                    self.runtime.spawn(drive(connection, signals.clone()));
                    Ok::<_, FleetRefusal>(client)
                }
                TlsRequest::Prefer(roots) | TlsRequest::Require(roots) => {
                    let connector = postgres_tls::connector(roots)
                        .map_err(|e| FleetRefusal::Unavailable(e.to_string()))?;
                    let (client, connection) = config.connect(connector).await?;
                    self.runtime.spawn(drive(connection, signals.clone()));
                    Ok(client)
                }
            }
        };
        let connected = async {
            let client = connecting.await?;
            // Known before it listens: no announcement comes earlier.
            let pid: i32 = client
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0);
            signals.own_pid.store(pid, Ordering::Release);
            Ok::<_, FleetRefusal>(client)
        };
        match tokio::time::timeout(LOCK_TIMEOUT, connected).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(refusal)) => Err(refusal),
            Err(_) => Err(unavailable(format!(
                "no answer within {} ms",
                LOCK_TIMEOUT.as_millis()
            ))),
        }
    }

    /// Takes the open lock of dataset `name` in `mode` without waiting:
    /// the generation it was taken in (see [`LockSession::try_locks`]).
    pub async fn try_dataset_lock(&self, name: &str, mode: Mode) -> Result<u64, FleetRefusal> {
        self.try_locks(&[Lock {
            name: name.to_string(),
            mode,
            space: Space::Dataset,
        }])
        .await
    }

    /// Takes every lock of `locks` in one round trip without waiting, or
    /// none of them: the generation they were taken in. Locks are counted:
    /// each taken lock is given back once.
    pub async fn try_locks(&self, locks: &[Lock]) -> Result<u64, FleetRefusal> {
        let (client, generation) = self.client().await?;
        let mut granted: Vec<Lock> = Vec::new();
        for chunk in locks.chunks(LOCKS_PER_STATEMENT) {
            let taken = match call(&client, chunk, |mode| mode.functions().0).await {
                Ok(taken) => taken,
                Err(why) => {
                    // Whatever the session held goes with it.
                    self.drop_link(generation);
                    return Err(FleetRefusal::Unavailable(why));
                }
            };
            granted.extend(
                chunk
                    .iter()
                    .zip(&taken)
                    .filter(|(_, taken)| **taken)
                    .map(|(lock, _)| lock.clone()),
            );
            if taken.iter().any(|taken| !taken) {
                // All or none: give back what was granted.
                for chunk in granted.chunks(LOCKS_PER_STATEMENT) {
                    if call(&client, chunk, |mode| mode.functions().1)
                        .await
                        .is_err()
                    {
                        self.drop_link(generation);
                        break;
                    }
                }
                return Err(FleetRefusal::HeldElsewhere);
            }
        }
        Ok(generation)
    }

    /// Holds the open lock `name` shared for one more holder on this
    /// server: taken in the database for the first, and again by every new
    /// connection of the session while any holds it (so that a DELETE on
    /// another server waits for this server to close the dataset, across a
    /// lost connection too). Refused while a DELETE elsewhere holds it.
    pub async fn hold_open(self: &Arc<Self>, name: &str) -> Result<(), FleetRefusal> {
        self.keep_open(name).await?;
        if let Some(entry) = self.opens.lock_or_stop().get_mut(name) {
            entry.0 += 1;
        }
        Ok(())
    }

    /// Makes sure the open lock `name`, held here, is held in the database
    /// by the connection serving now.
    pub async fn keep_open(self: &Arc<Self>, name: &str) -> Result<(), FleetRefusal> {
        let held_in = self.opens.lock_or_stop().get(name).map(|entry| entry.1);
        if held_in.is_some_and(|generation| self.intact(generation)) {
            return Ok(());
        }
        let taken = self.try_dataset_lock(name, Mode::Shared).await?;
        let twice = {
            let mut opens = self.opens.lock_or_stop();
            let entry = opens.entry(name.to_string()).or_insert((0, 0));
            let twice = entry.1 == taken;
            entry.1 = taken;
            twice
        };
        if twice {
            // Taken meanwhile by another holder, or by the new connection.
            self.unlock_dataset(name.to_string(), taken, Mode::Shared);
        }
        Ok(())
    }

    /// One holder of the open lock `name` on this server closed the
    /// dataset: the last gives the lock back.
    pub fn let_go_open(self: &Arc<Self>, name: &str) {
        let released = {
            let mut opens = self.opens.lock_or_stop();
            match opens.get_mut(name) {
                Some(entry) if entry.0 > 1 => {
                    entry.0 -= 1;
                    None
                }
                Some(_) => opens.remove(name),
                None => None,
            }
        };
        if let Some((_, generation)) = released
            && generation != 0
        {
            self.unlock_dataset(name.to_string(), generation, Mode::Shared);
        }
    }

    /// Takes the open locks this server holds again on a new connection.
    async fn take_opens_again(&self, client: &Client, generation: u64) -> Result<(), FleetRefusal> {
        let names: Vec<String> = self
            .opens
            .lock_or_stop()
            .iter()
            .filter(|(_, (holders, _))| *holders > 0)
            .map(|(name, _)| name.clone())
            .collect();
        let locks: Vec<Lock> = names
            .iter()
            .map(|name| Lock {
                name: name.clone(),
                mode: Mode::Shared,
                space: Space::Dataset,
            })
            .collect();
        for chunk in locks.chunks(LOCKS_PER_STATEMENT) {
            let taken = call(client, chunk, |mode| mode.functions().0)
                .await
                .map_err(FleetRefusal::Unavailable)?;
            let mut opens = self.opens.lock_or_stop();
            for (lock, taken) in chunk.iter().zip(taken) {
                if let Some(entry) = opens.get_mut(&lock.name) {
                    entry.1 = if taken { generation } else { 0 };
                }
                if !taken {
                    tracing::warn!(
                        dataset = %lock.name,
                        "the dataset's open lock could not be taken again after the fleet's lock session reconnected: a DELETE on another server holds it"
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether the database answers a query now (a readiness probe): at
    /// most `PROBE_TIMEOUT`.
    pub async fn reachable(&self) -> Result<(), FleetRefusal> {
        let (client, generation) = tokio::time::timeout(PROBE_TIMEOUT, self.client())
            .await
            .map_err(|_| {
                FleetRefusal::Unavailable(format!(
                    "no answer within {} ms",
                    PROBE_TIMEOUT.as_millis()
                ))
            })??;
        match tokio::time::timeout(PROBE_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                self.drop_link(generation);
                Err(FleetRefusal::from(error))
            }
            Err(_) => Err(FleetRefusal::Unavailable(format!(
                "no answer within {} ms",
                PROBE_TIMEOUT.as_millis()
            ))),
        }
    }

    /// Connects now: the server shows in the fleet (see
    /// [`LockSession::members`]) before its first lock, and has taken the
    /// database alone or joined the fleet on it (see `solo`) before it
    /// serves anything. A database unavailable now is tried again at the
    /// first record lock.
    pub async fn join(&self) {
        if let Err(FleetRefusal::Unavailable(why)) = self.client().await {
            tracing::warn!("{why}; it is tried again at the first record lock");
        }
    }

    /// The servers whose lock sessions are connected to this database now
    /// (their application names start with `vsamrd `), oldest first.
    pub async fn members(&self) -> Result<Vec<Member>, FleetRefusal> {
        let (client, _) = self.client().await?;
        let rows = tokio::time::timeout(LOCK_TIMEOUT, client.query(MEMBERS, &[]))
            .await
            .map_err(|_| FleetRefusal::Unavailable("the database did not answer".into()))?
            .map_err(|e| FleetRefusal::Unavailable(crate::runtime::error_chain(&e)))?;
        Ok(rows
            .iter()
            .map(|row| Member {
                server: row.get(0),
                address: row.get(1),
                connected_s: row.get::<_, i64>(2).max(0) as u64,
                locks: row.get::<_, i64>(3).max(0) as u64,
                opens: row.get::<_, i64>(4).max(0) as u64,
                this: row.get(5),
            })
            .collect())
    }

    /// How many connections the database takes (see `ConnectionLimits`).
    pub async fn connection_limits(&self) -> Result<ConnectionLimits, FleetRefusal> {
        let (client, _) = self.client().await?;
        let row = tokio::time::timeout(LOCK_TIMEOUT, client.query_one(CONNECTION_LIMITS, &[]))
            .await
            .map_err(|_| FleetRefusal::Unavailable("the database did not answer".into()))?
            .map_err(|e| FleetRefusal::Unavailable(crate::runtime::error_chain(&e)))?;
        Ok(ConnectionLimits {
            max: row.get(0),
            reserved: row.get::<_, i32>(1) + row.get::<_, i32>(2),
        })
    }

    /// The database's host, port and name, without user or password.
    pub fn label(&self) -> String {
        let Ok((text, _)) = postgres_tls::parse(&self.url) else {
            return "(unparsable URL)".into();
        };
        let Ok(config) = text.parse::<tokio_postgres::Config>() else {
            return "(unparsable URL)".into();
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{host}:{port}/{}",
            config.get_dbname().unwrap_or("(default)")
        )
    }

    /// Gives back the open lock of dataset `name` taken in `mode` (see
    /// [`LockSession::unlock_all`]).
    pub fn unlock_dataset(self: &Arc<Self>, name: String, generation: u64, mode: Mode) {
        let lock = Lock {
            name,
            mode,
            space: Space::Dataset,
        };
        self.unlock_all(vec![lock], generation);
    }

    /// Gives back locks [`LockSession::try_locks`] took in `generation`, in
    /// one round trip and without waiting for the database. Nothing to do
    /// if that connection is gone (its locks went with it); if the unlock
    /// fails, the connection is closed so that no lock outlives its holder.
    pub fn unlock_all(self: &Arc<Self>, locks: Vec<Lock>, generation: u64) {
        if !self.intact(generation) {
            return;
        }
        let session = self.clone();
        let unlock = self.runtime.spawn(async move {
            let Some((client, now)) = session.alive() else {
                return;
            };
            if now != generation {
                return;
            }
            let mut given = true;
            for chunk in locks.chunks(LOCKS_PER_STATEMENT) {
                let answer = call(&client, chunk, |mode| mode.functions().1).await;
                given &= answer.is_ok_and(|given| given.iter().all(|given| *given));
            }
            if !given {
                tracing::warn!(
                    generation,
                    "a record lock could not be given back: the fleet's lock session is closed, which frees every lock it held"
                );
                session.drop_link(generation);
            }
        });
        super::started(unlock);
    }

    /// Closes the connection of `generation` (if it still serves): every
    /// lock of it is freed by PostgreSQL.
    fn drop_link(&self, generation: u64) {
        let mut link = self.link.lock_or_stop();
        if link.as_ref().is_some_and(|l| l.generation == generation) {
            *link = None;
        }
    }
}

/// Drives a lock session's connection until it ends, counting the shared
/// catalog's announcements and making room for servers that join.
async fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>, signals: Signals)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        match message {
            Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                if note.channel() == FLEET_CHANNEL
                    && note.payload() == JOIN
                    && note.process_id() != signals.own_pid.load(Ordering::Acquire)
                {
                    // No read-ahead from now on; the lock follows.
                    signals.fleet_seen.store(true, Ordering::Release);
                    if signals.solo.swap(0, Ordering::AcqRel) != 0 {
                        tracing::info!("another server joined the database: read-ahead off");
                        signals.make_room.notify_one();
                    }
                } else if note.channel() == CHANNEL {
                    signals
                        .changes
                        .send_modify(|announced| announced.heard(note.payload()));
                } else {
                    signals.changes.send_modify(Announced::everything);
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(
                    "the fleet's lock session ended: {}",
                    crate::runtime::error_chain(&error)
                );
                break;
            }
        }
    }
}

impl From<tokio_postgres::Error> for FleetRefusal {
    fn from(e: tokio_postgres::Error) -> Self {
        FleetRefusal::Unavailable(format!(
            "cannot open the fleet's lock session: {}",
            crate::runtime::error_chain(&e)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_name_what_to_read_again_or_everything() {
        let mut announced = Announced::default();
        assert!(announced.is_empty());
        announced.heard("define PROD.CUST");
        announced.heard("delete PROD.OLD");
        announced.heard("define PROD.CUST");
        assert_eq!(
            announced.names.iter().collect::<Vec<_>>(),
            ["PROD.CUST", "PROD.OLD"]
        );
        assert!(!announced.everything);
        // What names no dataset reads everything, once.
        for payload in ["", "define ", "rename A B", "DEFINE X"] {
            let mut announced = Announced::default();
            announced.heard(payload);
            assert!(
                announced.everything && announced.names.is_empty(),
                "{payload:?}"
            );
        }
        // Past MAX_ANNOUNCED names: everything, and no more names kept.
        let mut announced = Announced::default();
        for n in 0..=MAX_ANNOUNCED {
            announced.heard(&format!("define D{n}"));
        }
        assert!(announced.everything && announced.names.is_empty());
        announced.heard("define MORE");
        assert!(announced.names.is_empty());
    }

    #[test]
    fn taking_what_was_announced_forgets_it_without_waking_the_follower() {
        let session = LockSession::new(
            "postgres://nowhere/none",
            "test",
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .handle()
                .clone(),
        );
        let mut changes = session.changes();
        session
            .changes
            .send_modify(|announced| announced.heard("define A.B"));
        assert!(changes.has_changed().unwrap());
        changes.borrow_and_update();
        let taken = session.take_announced();
        assert_eq!(taken.names.iter().collect::<Vec<_>>(), ["A.B"]);
        assert!(session.take_announced().is_empty());
        assert!(!changes.has_changed().unwrap());
    }
}
