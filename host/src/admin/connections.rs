//! `vsamr admin connections` and `vsamr admin disconnect`: the connections
//! open now with what each holds, and the end of one (see
//! [`crate::vsam::sessions`]).

use super::AdminContext;
use crate::vsam::sessions::SessionSnapshot;
use std::collections::HashMap;
use vsam_protocol::admin::{AdminAnswer, ConnectionRow};

/// Every connection open now, oldest first.
pub fn list(context: &AdminContext) -> AdminAnswer {
    let held = context.shared.held_for_update();
    let units = unit_records(context);
    let connections = context
        .shared
        .sessions
        .snapshots()
        .into_iter()
        .map(|session| row(session, &held, &units))
        .collect();
    AdminAnswer::Connections { connections }
}

/// Ends connection `connection` for the operator: it is told and closed
/// once its request under way is answered, and closing it rolls its unit
/// of work back and releases its records.
pub fn disconnect(context: &AdminContext, connection: u64) -> AdminAnswer {
    let (held, units) = (context.shared.held_for_update(), unit_records(context));
    let reason = "ended by the operator (vsamr admin disconnect)".to_string();
    match context.shared.sessions.end(connection, reason) {
        Some(session) => {
            let row = row(session, &held, &units);
            tracing::warn!(
                connection,
                peer = %row.peer,
                identity = %row.identity,
                held_for_update = row.held_for_update,
                unit_records = row.unit_records,
                "connection ended by the operator"
            );
            AdminAnswer::Disconnected(row)
        }
        None => AdminAnswer::Error {
            message: format!(
                "no connection {connection} is open (or its end was ordered already): vsamr admin connections lists those that are"
            ),
        },
    }
}

/// Records each connection's unit of work holds.
fn unit_records(context: &AdminContext) -> HashMap<u64, u64> {
    context
        .shared
        .units()
        .into_iter()
        .map(|unit| (unit.session, unit.records as u64))
        .collect()
}

fn row(
    session: SessionSnapshot,
    held: &HashMap<u64, u64>,
    units: &HashMap<u64, u64>,
) -> ConnectionRow {
    ConnectionRow {
        connection: session.session,
        peer: session.peer.to_string(),
        identity: session.identity,
        client: session.client,
        connected_s: session.age.as_secs(),
        idle_s: session.idle.as_secs(),
        requests: session.requests,
        datasets: session.datasets,
        held_for_update: held.get(&session.session).copied().unwrap_or(0),
        unit_records: units.get(&session.session).copied().unwrap_or(0),
    }
}
