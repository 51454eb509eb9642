//! ALTER NEWNAME (the RENAME request): a catalog entry takes a new name,
//! its records going with it.
//!
//! Backends store records under the dataset's name, so a cluster's or an
//! alternate index's records are copied to new storage in the same
//! backend, a batch at a time, each batch durable; then the catalog
//! changes in one save (the entry under its new name, and the indexes and
//! paths that named it); then the old storage is removed. The entry is
//! closed to OPENs throughout (as for a DELETE), so nothing writes to it
//! meanwhile. A failure before the catalog changes leaves the entry as it
//! was and removes the partial copy; a crash then leaves only the copy,
//! which a later RENAME to that name refuses to overwrite.

use super::request::answer;
use super::shared::Shared;
use super::shared_catalog;
use super::subject::Subject;
use crate::catalog::{DatasetDef, Origin, Relation};
use crate::fleet::FleetRefusal;
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, CallError, Reply};
use vsam_plugin_sdk::naming::check_dataset_name;
use vsam_plugin_sdk::{Direction, Start, StoreError};
use vsam_protocol::{Answer, Status, Verb, fdbk};

/// Most records copied per batch (one durable job each).
const BATCH: u32 = 500;

/// RENAME: gives `name` the name `new_name`.
pub(crate) async fn rename(shared: &Shared, name: &str, new_name: &str) -> Result<Answer, Status> {
    let name = name.to_ascii_uppercase();
    let new_name = new_name.to_ascii_uppercase();
    let about = Subject::new(&name, Verb::Rename);
    if let Err(why) = check_dataset_name(&new_name) {
        return Err(about.logical(fdbk::INVALID_OPTIONS, format!("NEWNAME: {why}")));
    }
    if new_name == name {
        return Err(about.logical(
            fdbk::INVALID_OPTIONS,
            "the new name is the entry's name already",
        ));
    }
    let Some((def, origin)) = shared.catalog.get(&name) else {
        return Err(about.logical(fdbk::NOT_FOUND, "the dataset is not in the catalog"));
    };
    if origin == Origin::Config {
        return Err(about.logical(fdbk::INVALID_OPTIONS, "the dataset is defined in the configuration file; rename it there and reload (vsamr admin reload) or restart"));
    }
    if shared_catalog::find(shared, &new_name).await.is_some() {
        return Err(about.logical(
            fdbk::DUPLICATE_KEY,
            format!("{new_name} is in the catalog already"),
        ));
    }
    if let Some(why) = shared_catalog::reserved_on(shared, &new_name, &def.backend) {
        return Err(about.logical(fdbk::INVALID_OPTIONS, format!("{new_name}: {why}")));
    }
    let related = renamed_relations(shared, &def, &name, &new_name);
    if !related.is_empty() && shared_catalog::session_of(shared, &def.backend).is_some() {
        return Err(about.logical(fdbk::INVALID_OPTIONS, format!(
            "{} name it, and its backend {} is shared by a fleet, whose catalog cannot rename them with it: DELETE them, rename, and DEFINE them again",
            related.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
            def.backend
        )));
    }
    // Closed to OPENs while the records move: the entry, and for an index
    // its base (whose writes would upgrade it).
    let base = match &def.relation {
        Some(Relation::Aix { base, .. }) => shared.catalog.get(base).map(|(def, _)| def),
        _ => None,
    };
    let Some(_closed) = shared.begin_delete(&name) else {
        return Err(about.logical(fdbk::EXCLUSIVE_CONTROL, "the dataset is open (or being deleted, or migrated: see vsamr admin status); CLOSE it everywhere first"));
    };
    let _base_closed = match &base {
        Some(base) => match shared.begin_delete(&base.name) {
            Some(guard) => Some(guard),
            None => {
                return Err(about.logical(
                    fdbk::EXCLUSIVE_CONTROL,
                    format!(
                        "its base cluster {} is open; CLOSE it everywhere first",
                        base.name
                    ),
                ));
            }
        },
        None => None,
    };
    let mut alone = Vec::new();
    for held in std::iter::once(&def).chain(base.as_ref()) {
        match shared_catalog::alone_in_fleet(shared, held).await {
            Ok(lock) => alone.push(lock),
            Err(FleetRefusal::HeldElsewhere) => {
                return Err(about.logical(fdbk::EXCLUSIVE_CONTROL, format!("{} is open on another server of the fleet (vsamr admin status lists the servers); CLOSE it everywhere first", held.name)));
            }
            Err(FleetRefusal::Unavailable(why)) => {
                return Err(about.physical(format!("nothing was renamed: {why}")));
            }
        }
    }
    let renamed = DatasetDef {
        name: new_name.clone(),
        ..def.clone()
    };
    let claim = match shared_catalog::claim(shared, &renamed).await {
        Ok(Ok(claim)) => claim,
        Ok(Err(server)) => {
            return Err(about.logical(
                fdbk::DUPLICATE_KEY,
                format!("{new_name} is in the catalog already: {server} of the fleet defined it"),
            ));
        }
        Err(refusal) => {
            return Err(about.physical(format!("nothing was renamed: {refusal}")));
        }
    };
    let stored = !matches!(def.relation, Some(Relation::Path { .. }));
    let backend = shared.backend(&def.backend);
    if stored && backend.is_none() {
        return Err(about.physical(format!(
            "its backend {} is not running; nothing was renamed",
            def.backend
        )));
    }
    let mut copied = 0u64;
    if let (true, Some(backend)) = (stored, &backend) {
        copied = copy(backend, &def, &renamed)
            .await
            .map_err(|problem| match problem {
                Problem::Refused(why) => about.logical(fdbk::INVALID_OPTIONS, why),
                Problem::Failed(why) => about.physical(why),
            })?;
    }
    let undo = |why: String| async {
        if let (true, Some(backend)) = (stored, &backend) {
            let _ = backend.call(Call::Destroy(renamed.to_plugin())).await;
        }
        why
    };
    match shared.catalog.rename(&name, renamed.clone(), related) {
        Ok(true) => {}
        Ok(false) => {
            let why = undo(format!(
                "{new_name} was defined meanwhile; nothing was renamed"
            ))
            .await;
            return Err(about.logical(fdbk::DUPLICATE_KEY, why));
        }
        Err(error) => {
            let why = undo(format!(
                "the catalog could not be saved ({error:#}); nothing was renamed"
            ))
            .await;
            return Err(about.physical(why));
        }
    }
    claim.keep();
    let mut notes = Vec::new();
    {
        let _alone = shared_catalog::changing(shared).await;
        if let Err(refusal) = shared_catalog::withdraw(shared, &def).await {
            notes.push(format!(
                "the fleet's shared catalog still lists {name}: {refusal}"
            ));
        }
    }
    if let (true, Some(backend)) = (stored, &backend) {
        match backend.call(Call::Destroy(def.to_plugin())).await {
            Ok(_) | Err(CallError::Store(StoreError::NoSuchDataset)) => {}
            Err(error) => {
                tracing::warn!(dataset = %name, backend = %def.backend, "the records under the old name stay after ALTER NEWNAME: {error}");
                notes.push(format!(
                    "backend {} kept the records under the old name ({error}); a DEFINE of {name} would adopt them",
                    def.backend
                ));
            }
        }
        // The copy wrote the new name's storage without an open: closed
        // as a last CLOSE would, so that the backend's instance keeps
        // nothing of it (and a CSV file holds its records).
        backend
            .close_after("ALTER NEWNAME", renamed.to_plugin())
            .await;
    }
    tracing::info!(dataset = %name, new_name = %new_name, records = copied, "renamed");
    let mut message = format!("{name} renamed {new_name}: {copied} records moved");
    for note in notes {
        message.push_str("; ");
        message.push_str(&note);
    }
    Ok(match answer(Ok(super::request::Done::default())) {
        Answer::Result { records, .. } => Answer::Result {
            status: Status {
                message,
                ..Status::ok()
            },
            records,
        },
        other => other,
    })
}

/// The entries that name `def` and change with it: an index's base, a
/// path's index or cluster.
fn renamed_relations(
    shared: &Shared,
    def: &DatasetDef,
    name: &str,
    new_name: &str,
) -> Vec<DatasetDef> {
    shared
        .catalog
        .naming(name)
        .into_iter()
        .filter_map(|mut other| {
            let names_it = match &mut other.relation {
                Some(Relation::Aix { base, .. }) if base == name => {
                    *base = new_name.to_string();
                    true
                }
                Some(Relation::Path { aix }) if aix == name => {
                    *aix = new_name.to_string();
                    true
                }
                _ => false,
            };
            (names_it && other.name != def.name).then_some(other)
        })
        .collect()
}

/// Why the records could not be moved.
enum Problem {
    /// The backend refuses the new storage: nothing changed.
    Refused(String),
    /// Storing failed: nothing changed (the partial copy is removed).
    Failed(String),
}

/// Copies `from`'s records to new storage for `to`; returns how many.
async fn copy(backend: &BackendHandle, from: &DatasetDef, to: &DatasetDef) -> Result<u64, Problem> {
    let target = to.to_plugin();
    match backend
        .call(Call::Create(target.clone(), to.layout.clone()))
        .await
    {
        Ok(_) => {}
        Err(CallError::Store(StoreError::AlreadyExists)) => {
            return Err(Problem::Refused(format!(
                "backend {} already holds records under {} (left by an interrupted rename or a deleted dataset's storage): remove them there first; nothing was renamed",
                backend.name(),
                to.name
            )));
        }
        Err(CallError::Store(StoreError::Invalid(why))) => {
            return Err(Problem::Refused(format!(
                "backend {} refuses {}: {why}",
                backend.name(),
                to.name
            )));
        }
        Err(error) => {
            return Err(Problem::Failed(format!(
                "backend {} could not create storage for {}: {error}; nothing was renamed",
                backend.name(),
                to.name
            )));
        }
    }
    let source = from.to_plugin();
    // Fewer than BATCH records a step if they are long; a step of fewer
    // than this many was the last.
    let batch = from.records_in(crate::catalog::BATCH_BYTES, BATCH);
    let mut start = Start::Edge;
    let mut copied = 0u64;
    loop {
        let entries = match backend
            .call(Call::Scan(source.clone(), start, Direction::Forward, batch))
            .await
        {
            Ok(Reply::Entries(entries)) => entries,
            Ok(other) => {
                return Err(abandon(
                    backend,
                    to,
                    format!("the backend answered a scan with {other:?}"),
                )
                .await);
            }
            Err(error) => {
                return Err(abandon(
                    backend,
                    to,
                    format!("reading {} failed: {error}", from.name),
                )
                .await);
            }
        };
        let Some(last) = entries.last().map(|e| e.key.clone()) else {
            return Ok(copied);
        };
        let count = entries.len();
        let calls: Vec<Call> = entries
            .into_iter()
            .map(|e| Call::Insert(target.clone(), e.key, e.value))
            .collect();
        let results = backend.call_chain(calls).await;
        if let Some(Err(error)) = results.iter().find(|r| r.is_err()) {
            return Err(abandon(
                backend,
                to,
                format!("storing under {} failed: {error}", to.name),
            )
            .await);
        }
        if results.len() != count {
            return Err(abandon(
                backend,
                to,
                format!("the backend stored {} of {count} records", results.len()),
            )
            .await);
        }
        copied += count as u64;
        if count < batch as usize {
            return Ok(copied);
        }
        start = Start::Exclusive(last);
    }
}

/// Removes a partial copy; the failure, saying nothing was renamed.
async fn abandon(backend: &BackendHandle, to: &DatasetDef, why: String) -> Problem {
    let _ = backend.call(Call::Destroy(to.to_plugin())).await;
    Problem::Failed(format!("{why}; nothing was renamed"))
}
