//! Whether a server holds a shared database alone: only then may it keep
//! a browse's read-ahead of that database's datasets, since no other
//! server can change a record behind it.
//!
//! The first server on a database takes the "solo" advisory lock alone. A
//! server that finds it taken announces itself on [`FLEET_CHANNEL`] and
//! waits until it can take the lock shared. The solo server, told so,
//! stops serving read-ahead at once, then takes the lock shared and gives
//! its sole hold back: the newcomer serves nothing (it is still starting,
//! or its lock session is being connected) before every read-ahead of the
//! database is gone. A server that has seen a fleet stays a member of it
//! (read-ahead off) until restarted.

use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// The channel a server joining the fleet announces itself on.
pub(super) const FLEET_CHANNEL: &str = "vsamrd_fleet";

/// What a joining server announces.
pub(super) const JOIN: &str = "join";

/// The advisory lock (two-int4 space: 'vsam', 'solo').
const SOLO: &str = "1987273069, 1936682095";

/// A `pg_locks` condition leaving the solo lock out: every server holds it
/// while it runs, so it is neither a record lock nor an open.
pub const NOT_SOLO: &str =
    "NOT (l.classid = 1987273069 AND l.objid = 1936682095 AND l.objsubid = 2)";

/// How long a joining server waits for a solo server to make room.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes the database alone if no other server is on it (and this server
/// was never in a fleet on it): true if it did. Otherwise joins the fleet:
/// announces itself until the solo server, if any, has made room.
/// Fails with why, in words.
pub(super) async fn claim(client: &Client, fleet_seen: bool) -> Result<bool, String> {
    let started = Instant::now();
    loop {
        // A holder that is gone (a server killed a moment ago, whose
        // session the database has not ended yet) leaves the lock free to
        // take alone: no fleet formed.
        if !fleet_seen && try_lock(client, "pg_try_advisory_lock").await? {
            return Ok(true);
        }
        if try_lock(client, "pg_try_advisory_lock_shared").await? {
            return Ok(false);
        }
        if started.elapsed() > JOIN_TIMEOUT {
            return Err(format!(
                "another server holds this database alone and did not make room for this one within {} s (it announces nothing on channel {FLEET_CHANNEL}: is it a vsamrd of an older version?)",
                JOIN_TIMEOUT.as_secs()
            ));
        }
        client
            .batch_execute(&format!("NOTIFY {FLEET_CHANNEL}, '{JOIN}'"))
            .await
            .map_err(failed)?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes room for a joining server: holds the lock shared, then gives the
/// sole hold back.
pub(super) async fn make_room(client: &Client) -> Result<(), String> {
    client
        .batch_execute(&format!(
            "SELECT pg_try_advisory_lock_shared({SOLO}); SELECT pg_advisory_unlock({SOLO})"
        ))
        .await
        .map_err(failed)
}

async fn try_lock(client: &Client, function: &str) -> Result<bool, String> {
    let row = client
        .query_one(&format!("SELECT {function}({SOLO})"), &[])
        .await
        .map_err(failed)?;
    Ok(row.get(0))
}

fn failed(error: tokio_postgres::Error) -> String {
    format!(
        "the fleet's lock session failed joining the fleet: {}",
        crate::runtime::error_chain(&error)
    )
}
