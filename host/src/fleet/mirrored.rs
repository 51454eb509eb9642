//! Which datasets of a shared database are mirrors kept by a server (table
//! `_vsamrd_mirrored`), so that a mirror and a dataset of the same name
//! never share storage there.
//!
//! A mirror's tables on a PostgreSQL database look like any dataset's. A
//! server that DEFINEs the name on that database would adopt them as its
//! dataset's records, and the mirror would go on writing into its primary;
//! a mirror seeded into a dataset another server defined there would
//! overwrite it. So a mirror claims each name it keeps on a shared
//! database here (one mirror per name: the claim names its change log), a
//! DEFINE on that database is refused while a mirror holds the name, and a
//! mirror does not keep a name the shared catalog defines. A mirror that a
//! reload removes gives its names back.
//!
//! A mirror also records there how far it has applied its change log
//! (table `_vsamrd_mirror_applied`): its copy lives outside the data dir,
//! so a data dir restored from an older copy is told by it (see
//! `changes::mirror`).
//!
//! The tables' names start with an underscore: no dataset's table can
//! (see `runtime::sql::outbox::TABLE`).

use super::session::{FleetRefusal, LockSession};

/// The table, created by the first server that needs it.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS _vsamrd_mirrored (\
     name TEXT PRIMARY KEY, \
     log_id TEXT NOT NULL, \
     mirror TEXT NOT NULL, \
     server TEXT NOT NULL, \
     since TIMESTAMPTZ NOT NULL DEFAULT now())";

/// Claims a name for mirror backend `$3` of change log `$2`: a new row, or
/// the row that mirror holds already.
const CLAIM: &str = "INSERT INTO _vsamrd_mirrored (name, log_id, mirror, server) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET server = EXCLUDED.server \
     WHERE _vsamrd_mirrored.log_id = EXCLUDED.log_id AND _vsamrd_mirrored.mirror = EXCLUDED.mirror \
     RETURNING name";

const HOLDER: &str =
    "SELECT server, log_id, mirror, since::text FROM _vsamrd_mirrored WHERE name = $1";

const GIVE_BACK: &str = "DELETE FROM _vsamrd_mirrored WHERE log_id = $1 AND mirror = $2";

/// How far each mirror of a change log has applied it, one row a mirror.
const CREATE_APPLIED: &str = "CREATE TABLE IF NOT EXISTS _vsamrd_mirror_applied (\
     log_id TEXT NOT NULL, \
     mirror TEXT NOT NULL, \
     applied BIGINT NOT NULL, \
     at TIMESTAMPTZ NOT NULL DEFAULT now(), \
     PRIMARY KEY (log_id, mirror))";

/// Records mirror `$2` of change log `$1` as applied through `$3`.
const RECORD_APPLIED: &str = "INSERT INTO _vsamrd_mirror_applied (log_id, mirror, applied) VALUES ($1, $2, $3::bigint) \
     ON CONFLICT (log_id, mirror) DO UPDATE SET applied = EXCLUDED.applied, at = now()";

const APPLIED: &str =
    "SELECT applied::text FROM _vsamrd_mirror_applied WHERE log_id = $1 AND mirror = $2";

const FORGET_APPLIED: &str = "DELETE FROM _vsamrd_mirror_applied WHERE log_id = $1 AND mirror = $2";

/// The mirror that keeps a name on a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorHolder {
    /// The server that claimed it, as it names itself.
    pub server: String,
    /// Its change log's id.
    pub log_id: String,
    /// The mirror backend, as that server names it.
    pub mirror: String,
    /// Since when.
    pub since: String,
}

impl std::fmt::Display for MirrorHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mirror {} of {} (change log {}, since {})",
            self.mirror, self.server, self.log_id, self.since
        )
    }
}

impl LockSession {
    /// Claims `name` for mirror backend `mirror` of change log `log_id`:
    /// `None` once it holds it, else the mirror that does.
    pub async fn claim_mirrored(
        &self,
        name: &str,
        log_id: &str,
        mirror: &str,
    ) -> Result<Option<MirrorHolder>, FleetRefusal> {
        let server = self.application();
        let claimed = self
            .rows_creating(CREATE, CLAIM, &[&name, &log_id, &mirror, &server])
            .await?;
        if !claimed.is_empty() {
            return Ok(None);
        }
        self.mirrored_by(name).await
    }

    /// The mirror that keeps `name` on this database, if one does.
    pub async fn mirrored_by(&self, name: &str) -> Result<Option<MirrorHolder>, FleetRefusal> {
        let rows = self.rows_creating(CREATE, HOLDER, &[&name]).await?;
        Ok(rows.first().map(|row| MirrorHolder {
            server: row.get(0),
            log_id: row.get(1),
            mirror: row.get(2),
            since: row.get(3),
        }))
    }

    /// Gives back every name mirror backend `mirror` of change log
    /// `log_id` claimed, having forgotten how far it applied the log (so
    /// that a name given back has no position left behind).
    pub async fn give_back_mirrored(&self, log_id: &str, mirror: &str) -> Result<(), FleetRefusal> {
        self.rows_creating(CREATE_APPLIED, FORGET_APPLIED, &[&log_id, &mirror])
            .await?;
        self.rows_creating(CREATE, GIVE_BACK, &[&log_id, &mirror])
            .await?;
        Ok(())
    }

    /// Records that mirror backend `mirror` has applied change log
    /// `log_id` through sequence `applied`, in the database it keeps its
    /// copy in.
    pub async fn record_mirror_applied(
        &self,
        log_id: &str,
        mirror: &str,
        applied: u64,
    ) -> Result<(), FleetRefusal> {
        let applied = applied.to_string();
        self.rows_creating(
            CREATE_APPLIED,
            RECORD_APPLIED,
            &[&log_id, &mirror, &applied],
        )
        .await?;
        Ok(())
    }

    /// How far mirror backend `mirror` last recorded it had applied change
    /// log `log_id` (see [`LockSession::record_mirror_applied`]).
    pub async fn mirror_applied(
        &self,
        log_id: &str,
        mirror: &str,
    ) -> Result<Option<u64>, FleetRefusal> {
        let rows = self
            .rows_creating(CREATE_APPLIED, APPLIED, &[&log_id, &mirror])
            .await?;
        Ok(rows
            .first()
            .and_then(|row| row.get::<_, String>(0).parse().ok()))
    }
}
