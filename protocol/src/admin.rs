//! The admin protocol: how `vsamr admin` asks a running vsamrd to reload,
//! report its status, list its plugin versions and move datasets.
//!
//! One JSON object per line over TCP (port 2388 on loopback by default):
//! the client sends an [`AdminRequest`] carrying the server's admin token,
//! the server answers with one [`AdminAnswer`] line. The admin port is a
//! different port from the VSAM one, so an operator can firewall it apart.

use serde::{Deserialize, Serialize};

/// The admin port vsamrd listens on (loopback) unless configured otherwise.
pub const DEFAULT_ADMIN_PORT: u16 = 2388;

/// Longest request line the server reads.
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// Longest answer line a client reads: far above any server's answer (the
/// status of a hundred thousand datasets is a few tens of megabytes), so
/// that only an endpoint that is not vsamrd's admin interface, sending
/// without a newline, reaches it, and the client's memory stays bounded.
pub const MAX_ANSWER_LINE: usize = 64 * 1024 * 1024;

/// One request: the token and what to do.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdminRequest {
    /// The server's admin token (the contents of its token file).
    pub token: String,
    /// What to do.
    #[serde(flatten)]
    pub command: AdminCommand,
}

/// What an operator can ask.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum AdminCommand {
    /// Re-read the configuration and the plugin files; apply what changed.
    Reload,
    /// The server, its backends, the last reload and migrations.
    Status,
    /// Every plugin version loaded, and who uses it.
    Plugins,
    /// Start moving a dataset to another backend while it stays in service:
    /// copy, verify, cut over. Answers at once; progress is in `status`.
    Migrate {
        /// The dataset.
        dataset: String,
        /// The backend to move it to.
        to: String,
    },
    /// End a cut-over migration: the old copy is removed.
    Finalize {
        /// The dataset.
        dataset: String,
    },
    /// Return a migrating dataset to its old backend (before finalize).
    Rollback {
        /// The dataset.
        dataset: String,
    },
    /// Roll back the unit of work of a connection (a stuck one holding
    /// records others need): its records are free at once, and the
    /// connection's next request is told.
    RollbackUnit {
        /// The connection, as `status` lists it.
        connection: u64,
    },
    /// Every connection open now: who, from where, since when, what it
    /// has open and holds.
    Connections,
    /// Ends a connection (a program that holds records others need and
    /// does not let go): its request under way is answered first, then it
    /// is told and closed, its unit of work rolled back and its records
    /// released.
    Disconnect {
        /// The connection, as `connections` lists it.
        connection: u64,
    },
    /// Every mirror's lag, queue and last error, and the change stream.
    MirrorStatus,
    /// Stop applying changes to a mirror (they wait in the change log).
    MirrorPause {
        /// The mirror backend.
        backend: String,
    },
    /// Apply changes to a paused mirror again.
    MirrorResume {
        /// The mirror backend.
        backend: String,
    },
    /// Copy every dataset to a mirror again, then follow: for a mirror that
    /// drifted or stopped.
    MirrorResync {
        /// The mirror backend.
        backend: String,
    },
    /// Compare a dataset on its backend and on a mirror: count and
    /// checksum, batch by batch with writes held off until the mirror has
    /// applied them.
    MirrorVerify {
        /// The mirror backend.
        backend: String,
        /// The dataset.
        dataset: String,
    },
}

impl AdminCommand {
    /// True if the server answers it promptly: nothing in it copies,
    /// compares or compiles, so a client may give up on an answer that
    /// does not come (a reload, a finalize or rollback of a migration, a
    /// mirror's resync or verify may take minutes).
    pub fn answered_promptly(&self) -> bool {
        match self {
            Self::Status
            | Self::Plugins
            | Self::Migrate { .. }
            | Self::RollbackUnit { .. }
            | Self::Connections
            | Self::Disconnect { .. }
            | Self::MirrorStatus
            | Self::MirrorPause { .. }
            | Self::MirrorResume { .. } => true,
            Self::Reload
            | Self::Finalize { .. }
            | Self::Rollback { .. }
            | Self::MirrorResync { .. }
            | Self::MirrorVerify { .. } => false,
        }
    }

    /// The command's name, as `vsamr admin` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reload => "reload",
            Self::Status => "status",
            Self::Plugins => "plugins",
            Self::Migrate { .. } => "migrate",
            Self::Finalize { .. } => "migrate --finalize",
            Self::Rollback { .. } => "migrate --rollback",
            Self::RollbackUnit { .. } => "rollback-unit",
            Self::Connections => "connections",
            Self::Disconnect { .. } => "disconnect",
            Self::MirrorStatus => "mirror status",
            Self::MirrorPause { .. } => "mirror pause",
            Self::MirrorResume { .. } => "mirror resume",
            Self::MirrorResync { .. } => "mirror resync",
            Self::MirrorVerify { .. } => "mirror verify",
        }
    }
}

/// The server's answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum AdminAnswer {
    /// The outcome of a reload (which may have been refused: see `error`).
    Reload(ReloadReport),
    /// Status.
    Status(StatusReport),
    /// Plugin versions.
    Plugins {
        /// One row per plugin version.
        versions: Vec<PluginVersionRow>,
    },
    /// A migration's state after a migrate, finalize or rollback request.
    Migration(MigrationRow),
    /// A unit of work was ordered rolled back.
    UnitRolledBack(UnitRow),
    /// The connections open now, oldest first.
    Connections {
        /// One row per connection.
        connections: Vec<ConnectionRow>,
    },
    /// A connection was ordered ended: what it was, as it was then.
    Disconnected(ConnectionRow),
    /// The mirrors and the change stream.
    Mirrors(MirrorsReport),
    /// A dataset compared on its backend and a mirror: equal.
    MirrorVerified(MirrorVerifyRow),
    /// The request was refused or failed.
    Error {
        /// What went wrong and what to do.
        message: String,
    },
}

/// What one reload did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// What asked for it: `admin`, `SIGHUP`, `file change`.
    pub trigger: String,
    /// When it finished, seconds since the Unix epoch.
    pub at: u64,
    /// How long it took, milliseconds (compiling, starting, swapping).
    pub took_ms: u64,
    /// The changes applied, one line each (empty: nothing had changed).
    pub changes: Vec<String>,
    /// Set if the reload was refused: nothing was applied, the running
    /// configuration and plugins keep serving.
    pub error: Option<String>,
    /// Things noticed that need an operator (settings that wait for a
    /// restart, for example).
    pub notes: Vec<String>,
}

/// What `vsamr admin status` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// `vsamrd VERSION (VSAM Redirector server)`.
    pub server: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// The VSAM listen address.
    pub listen: String,
    /// Where the configuration comes from.
    pub config: String,
    /// Connections open now.
    pub connections: u64,
    /// Every backend.
    pub backends: Vec<BackendRow>,
    /// The last reload, if any.
    pub last_reload: Option<ReloadReport>,
    /// Migrations running, cut over, or recently ended.
    #[serde(default)]
    pub migrations: Vec<MigrationRow>,
    /// Units of work holding changes not yet committed, oldest first.
    #[serde(default)]
    pub units: Vec<UnitRow>,
    /// The memory every unit of work holds together, against the limit.
    #[serde(default)]
    pub units_memory: Option<UnitsMemory>,
    /// The servers sharing a database with this one (a fleet), as each
    /// shared database sees them.
    #[serde(default)]
    pub fleet: Vec<FleetRow>,
    /// What the server refuses, and why, because its storage was taken
    /// from under it: a backend refusing every request, the change log
    /// refusing the writes it would record. Empty while all is well.
    #[serde(default)]
    pub refusing: Vec<String>,
}

/// One server of a fleet, seen in a shared database: its lock session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FleetRow {
    /// The database (host, port and name; no user or password).
    pub database: String,
    /// The server: `vsamrd VERSION LISTEN pid PID`, or why the database
    /// could not be asked.
    pub server: String,
    /// Its address as the database sees it.
    pub address: String,
    /// Seconds since its lock session connected.
    pub connected_s: u64,
    /// Record locks it holds there now.
    pub locks: u64,
    /// Datasets of the database it has open now.
    #[serde(default)]
    pub opens: u64,
    /// True for the server answering this status.
    pub this: bool,
}

/// What the units of work of all connections hold in the server's memory
/// (`server.units_memory_mb` is the limit).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnitsMemory {
    /// Bytes of changed records held now.
    pub used: u64,
    /// The most they may hold.
    pub limit: u64,
}

/// One open unit of work in a status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnitRow {
    /// The connection whose unit it is (for `rollback-unit`).
    pub connection: u64,
    /// Who is on the connection.
    pub identity: String,
    /// Seconds since its first change.
    pub age_s: u64,
    /// Records it changed: each is held against other connections until
    /// the unit ends.
    pub records: u64,
    /// Bytes of changed records it holds in the server's memory.
    pub bytes: u64,
    /// The datasets it changed.
    pub datasets: Vec<String>,
}

/// One connection, as `vsamr admin connections` shows it: enough to
/// find the program behind it and what it holds, before ending it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionRow {
    /// The connection's number: the one a refusal of a record it holds
    /// names (`held for update by connection N`), the log's `connection`.
    pub connection: u64,
    /// The client's address and port.
    pub peer: String,
    /// Who it is: the client its token or certificate names, or
    /// `anonymous`.
    pub identity: String,
    /// What the client says it is (its HELLO: `vsamr 0.1.0`, a COBOL
    /// program through the bridge...).
    pub client: String,
    /// Seconds since it connected.
    pub connected_s: u64,
    /// Seconds since its last request began.
    pub idle_s: u64,
    /// Requests it made.
    pub requests: u64,
    /// The datasets it has open (a name once per open).
    pub datasets: Vec<String>,
    /// Records its strings hold for update (a GET UPD not yet followed by
    /// its PUT, ERASE or ENDREQ): others are refused them.
    pub held_for_update: u64,
    /// Records its unit of work changed and has not committed.
    pub unit_records: u64,
}

/// One migration in a status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MigrationRow {
    /// The dataset.
    pub dataset: String,
    /// Its old backend.
    pub from: String,
    /// Its new backend.
    pub to: String,
    /// `counting`, `copying`, `verifying`, `cut-over` (the new backend
    /// serves, the old one follows until finalize), `finalized`,
    /// `rolled-back` or `failed`.
    pub phase: String,
    /// Records copied so far.
    pub copied: u64,
    /// Records the source held when the copy started (an estimate: writes
    /// go on).
    pub total: u64,
    /// Copy rate, records per second.
    pub rate: f64,
    /// Seconds since the migration started.
    pub elapsed_s: f64,
    /// Records found equal on both backends by the verification.
    pub verified: Option<u64>,
    /// SHA-256 over every verified record (key and contents), hex.
    pub checksum: Option<String>,
    /// Why it failed, or what to know.
    pub message: Option<String>,
}

/// The mirrors and the change stream of a server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MirrorsReport {
    /// The last sequence number committed to the change log.
    pub committed: u64,
    /// Bytes the change log holds on disk.
    pub log_bytes: u64,
    /// One row per mirror backend.
    pub mirrors: Vec<MirrorRow>,
    /// The change stream, if on.
    pub stream: Option<ChangeStreamRow>,
}

impl MirrorsReport {
    /// True when every mirror follows with nothing queued and the stream,
    /// if on, has written every committed change: what an operator or a
    /// test waits for before comparing the stores.
    pub fn caught_up(&self) -> bool {
        self.mirrors
            .iter()
            .all(|m| m.queued == 0 && m.phase == "following")
            && self
                .stream
                .as_ref()
                .is_none_or(|s| s.written == self.committed)
    }
}

/// One mirror backend.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MirrorRow {
    /// The mirror backend.
    pub backend: String,
    /// The dataset pattern of its rule.
    pub datasets: String,
    /// `sync`, `async`, or `sync (degraded to async)`.
    pub mode: String,
    /// `starting`, `copying DATASET`, `following`, `paused`, `stopped: WHY`.
    pub phase: String,
    /// Every change up to this sequence number is applied.
    pub applied: u64,
    /// Changes committed and not applied yet (its queue).
    pub queued: u64,
    /// Seconds since the oldest change not applied yet was committed.
    pub lag_seconds: f64,
    /// Time from commit to applied, 50th percentile over this run, ms.
    pub lag_p50_ms: u64,
    /// Time from commit to applied, 99th percentile over this run, ms.
    pub lag_p99_ms: u64,
    /// Changes applied in this run.
    pub applied_in_run: u64,
    /// Datasets copied to it and followed.
    pub datasets_followed: u64,
    /// Its last failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// Why writes to its datasets are refused now, if they are.
    pub refusing: Option<String>,
}

/// The change stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChangeStreamRow {
    /// Sequence number of the last line written.
    pub written: u64,
    /// The file being written.
    pub file: String,
    /// Its last failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// Why it lacks changes of datasets it carries, if it does: other
    /// servers of a fleet write them too, and their changes never reach
    /// this server.
    #[serde(default)]
    pub missing: Option<String>,
}

/// A dataset found equal on its backend and a mirror.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MirrorVerifyRow {
    /// The mirror backend.
    pub backend: String,
    /// The dataset.
    pub dataset: String,
    /// Records on each side.
    pub count: u64,
    /// SHA-256 over every record (key and contents), hex.
    pub checksum: String,
}

/// One backend in a status.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackendRow {
    /// Backend name.
    pub name: String,
    /// Plugin name.
    pub plugin: String,
    /// Content hash of the version serving it.
    pub hash: String,
    /// Datasets in the catalog on it.
    pub datasets: u64,
    /// Calls queued or running.
    pub in_flight: u64,
    /// Older versions still finishing calls.
    pub draining: u64,
}

/// One plugin version in `vsamr admin plugins`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginVersionRow {
    /// Plugin name.
    pub plugin: String,
    /// SHA-256 of the component, hex.
    pub hash: String,
    /// When it was loaded, seconds since the Unix epoch.
    pub loaded_at: u64,
    /// `serving`, `draining` (finishing calls after a swap) or `loaded`
    /// (no backend uses it).
    pub state: String,
    /// Backends running it.
    pub backends: Vec<String>,
    /// Datasets on those backends.
    pub datasets: u64,
    /// Calls queued or running on it now.
    pub in_flight: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_flat_json_object() {
        let request = AdminRequest {
            token: "t".into(),
            command: AdminCommand::Reload,
        };
        let line = serde_json::to_string(&request).unwrap();
        assert_eq!(line, r#"{"token":"t","command":"reload"}"#);
        assert_eq!(
            serde_json::from_str::<AdminRequest>(&line).unwrap(),
            request
        );
        assert!(
            serde_json::from_str::<AdminRequest>(r#"{"token":"t","command":"explode"}"#).is_err()
        );
    }
}
