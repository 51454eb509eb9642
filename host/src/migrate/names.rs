//! Whose a dataset's storage is on the backend a migration copies it to,
//! and its name in the shared catalogs of the databases it moves between.
//!
//! A dataset's storage on a backend is found by its name alone (the SQL
//! plugin's table, the CSV file). So the storage of that name on the target
//! may already belong to someone: a mirror of the dataset, this server's or
//! another's (the copy would mix with the mirror's records, and a failed
//! migration would remove the mirror's table); a dataset of that name
//! another server defined on a shared database; or the dataset itself, when
//! both backends use one database. A migration refuses such a target
//! before it writes anything.
//!
//! On a database a fleet shares, the shared catalog says which datasets
//! live there: a migration names the dataset in the target's catalog at
//! the cutover (a server joining later serves it from there), and takes
//! its name out of a database's catalog when its copy there is removed
//! (at `--finalize`, or a rollback), so that no server goes on looking
//! for a table that is gone.

use crate::catalog::DatasetDef;
use crate::fleet::{Claim, LockSession};
use crate::runtime::BackendHandle;
use crate::vsam::Shared;
use std::sync::Arc;

/// The shared database `backend` uses and its lock session, if it uses one.
fn shared_session(shared: &Shared, backend: &BackendHandle) -> Option<(String, Arc<LockSession>)> {
    let url = backend.shared_database()?;
    let session = shared.fleet.session(&url);
    Some((url, session))
}

/// True if backends `a` and `b` keep their datasets in one database.
fn one_database(a: &BackendHandle, b: &BackendHandle) -> bool {
    match (a.shared_database(), b.shared_database()) {
        (Some(a), Some(b)) => a == b,
        _ => a.database().is_some() && a.database() == b.database(),
    }
}

/// Why `def` (on `source`) must not be copied to `target`, if it must not:
/// the storage of its name there is not free for a copy (see the module
/// documentation).
pub(super) async fn target_refusal(
    shared: &Shared,
    def: &DatasetDef,
    source: &BackendHandle,
    target: &BackendHandle,
) -> Result<(), String> {
    let (dataset, to) = (&def.name, target.name());
    if one_database(source, target) {
        return Err(format!(
            "backends {} and {to} keep their datasets in one database, where {dataset} has one table: the copy would be the dataset itself. Migrate it to a backend on another database",
            source.name()
        ));
    }
    let mirrored_here = shared.changes.followers().is_some_and(|followers| {
        followers
            .mirrors_of(dataset, source.name())
            .iter()
            .any(|mirror| mirror.backend() == to)
    });
    if mirrored_here {
        return Err(format!(
            "backend {to} is a mirror of {dataset} ([[mirrors]]): its storage of {dataset} is the mirror's copy, which the migration would write into (and remove if it failed). Migrate it to another backend; or, to serve {dataset} from {to}, remove {to} from the mirrors of {dataset} (a reload), empty {dataset}'s storage on {to}, and migrate again"
        ));
    }
    if let Some(why) = crate::vsam::shared_catalog::reserved_on(shared, dataset, to) {
        return Err(format!("{dataset} cannot move to backend {to}: {why}"));
    }
    let Some((_, session)) = shared_session(shared, target) else {
        return Ok(());
    };
    let cannot_learn = |refusal: crate::fleet::FleetRefusal| {
        format!(
            "whether the database of backend {to} ({}) holds a dataset or a mirror named {dataset} cannot be learned, and nothing was copied: {refusal}",
            session.label()
        )
    };
    if let Some(holder) = session.mirrored_by(dataset).await.map_err(cannot_learn)? {
        return Err(format!(
            "the database of backend {to} holds a mirror of a dataset named {dataset}, kept by {holder}: the copy would write into the mirror's tables. Migrate it to another backend, or remove that mirror from its server's configuration first (for a mirror no server runs any more, delete the name's row from table _vsamrd_mirrored)"
        ));
    }
    let entry = session.entry(dataset).await.map_err(cannot_learn)?;
    if let Some(entry) = entry.filter(|entry| entry.definition.is_some()) {
        return Err(format!(
            "the fleet's shared catalog on the database of backend {to} defines a dataset named {dataset} there ({} wrote it last): the copy would write into that dataset's tables. Migrate it to another backend, or DELETE that dataset first (if no server uses it any more, delete its row from table vsamrd_catalog and drop its tables)",
            entry.server
        ));
    }
    Ok(())
}

/// Other servers on the shared databases of `source` and `target`, if
/// any: the servers of a fleet do not coordinate a migration (they would
/// go on using the old copy), so one is refused while they are there.
pub(super) async fn fleet_refusal(
    shared: &Shared,
    dataset: &str,
    source: Option<&BackendHandle>,
    target: &BackendHandle,
) -> Result<(), String> {
    for backend in source.into_iter().chain([target]) {
        let Some((_, session)) = shared_session(shared, backend) else {
            continue;
        };
        let others: Vec<String> = match session.members().await {
            Ok(members) => members
                .into_iter()
                .filter(|member| !member.this)
                .map(|member| member.server)
                .collect(),
            Err(_) => Vec::new(),
        };
        if !others.is_empty() {
            return Err(format!(
                "{dataset} would move from or to a database other servers share ({}), and the servers of a fleet do not coordinate a migration: they would go on using the old copy. Stop the others first, or copy it with vsamr repro",
                others.join(", ")
            ));
        }
    }
    Ok(())
}

/// At the cutover: names `def` (as it will be, on `target`) in the shared
/// catalog of `target`'s database, unless `source` is on that database
/// too. Refused if a dataset of that name was defined there meanwhile.
pub(super) async fn claim_on_target(
    shared: &Shared,
    def: &DatasetDef,
    source: &BackendHandle,
    target: &BackendHandle,
) -> Result<(), String> {
    let Some((_, session)) = shared_session(shared, target) else {
        return Ok(());
    };
    if one_database(source, target) {
        return Ok(());
    }
    let moved = DatasetDef {
        backend: target.name().to_string(),
        ..def.clone()
    };
    match session.claim(&moved).await {
        Ok(Claim::Claimed) => Ok(()),
        // Named there by an earlier try of this migration (a restart).
        Ok(Claim::Taken(theirs, _)) if theirs == moved => Ok(()),
        Ok(Claim::Taken(_, server)) => Err(format!(
            "{server} defined a dataset named {} on the database of backend {} during the copy: the migration stops, and the copy is removed",
            def.name,
            target.name()
        )),
        Err(refusal) => Err(format!(
            "the shared catalog of backend {}'s database cannot name {} there, so the migration stops: {refusal}",
            target.name(),
            def.name
        )),
    }
}

/// The copy of `def` on `backend` is removed: its name is taken out of the
/// shared catalog of that database, if the catalog holds the definition
/// this server wrote there, and if the dataset does not live on that
/// database still (on `live`). A failure is logged: the entry then names
/// a dataset without storage until it is deleted by hand.
pub(super) async fn withdraw_from(
    shared: &Shared,
    def: &DatasetDef,
    backend: &BackendHandle,
    live: Option<&BackendHandle>,
) {
    let Some((_, session)) = shared_session(shared, backend) else {
        return;
    };
    if live.is_some_and(|live| one_database(live, backend)) {
        return;
    }
    let there = DatasetDef {
        backend: backend.name().to_string(),
        ..def.clone()
    };
    match session.withdraw_if(&there).await {
        Ok(true) => {
            tracing::info!(dataset = %def.name, backend = %backend.name(), "its copy there is removed, and so is its name in that database's shared catalog")
        }
        Ok(false) => {}
        Err(refusal) => tracing::warn!(
            dataset = %def.name,
            "its copy on backend {} is removed, but its name stays in the shared catalog of that database ({refusal}): servers of the fleet there would look for it; delete its row from table vsamrd_catalog",
            backend.name()
        ),
    }
}
