//! Units of work (protocol 1.4): the changes a connection makes to datasets
//! opened with `commit` durability ([`vsam_protocol::access::COMMIT`]) are
//! one unit, made durable all together by [`commit`] or undone by
//! [`rollback`].

use crate::catalog::expect_ok;
use crate::connection::Connection;
use crate::error::ClientError;
use vsam_protocol::Request;

/// The protocol minor version that has units of work.
pub(crate) const UNITS_MINOR: u16 = 4;

/// Refuses, before anything is sent, a unit of work on a server that does
/// not know them (it would take every change as durable at once, and could
/// not roll any back).
pub(crate) fn check_units(conn: &Connection, request: &'static str) -> Result<(), ClientError> {
    let welcome = conn.welcome();
    if welcome.minor >= UNITS_MINOR {
        return Ok(());
    }
    Err(ClientError::Unexpected {
        request,
        detail: format!(
            "server {} speaks protocol {}.{}, and units of work (COMMIT, ROLLBACK, commit durability) need 1.{UNITS_MINOR}: upgrade vsamrd",
            welcome.server, welcome.major, welcome.minor
        ),
    })
}

/// COMMIT: makes every change of the connection's unit of work durable and
/// ends the unit. With nothing pending it does nothing.
/// A unit its server's loss rolled back fails here with
/// [`ClientError::ServerLost`], and ends.
pub async fn commit(conn: &Connection) -> Result<(), ClientError> {
    check_units(conn, "COMMIT")?;
    if let Some(lost) = conn.unit_lost() {
        conn.unit_ended();
        return Err(ClientError::ServerLost {
            dataset: "-".into(),
            request: "COMMIT",
            detail: format!("{lost}; nothing of it is stored: run the unit again"),
        });
    }
    let answer = conn.call(Request::Commit).await;
    conn.unit_ended();
    expect_ok(answer?, "-", "COMMIT").map(drop)
}

/// ROLLBACK: undoes every change of the connection's unit of work and ends
/// the unit. With nothing pending it does nothing.
pub async fn rollback(conn: &Connection) -> Result<(), ClientError> {
    check_units(conn, "ROLLBACK")?;
    let answer = conn.call(Request::Rollback).await;
    conn.unit_ended();
    expect_ok(answer?, "-", "ROLLBACK").map(drop)
}
