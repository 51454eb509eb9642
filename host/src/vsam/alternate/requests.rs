//! IDCAMS's DEFINE ALTERNATEINDEX, DEFINE PATH and BLDINDEX, and what an
//! OPEN of a path opens.

use super::AixIndex;
use super::sequences::{REMEMBERED_BYTES, Sequences};
use crate::catalog::{DatasetDef, Relation};
use crate::fleet::FleetRefusal;
use crate::runtime::BackendHandle;
use crate::runtime::call::{Call, CallError, Reply};
use crate::vsam::shared::Shared;
use crate::vsam::shared_catalog;
use crate::vsam::subject::Subject;
use vsam_plugin_sdk::naming::check_dataset_name;
use vsam_plugin_sdk::{Direction, Start, StoreError};
use vsam_protocol::{AixSpec, Answer, Organization, PathSpec, Status, Verb, fdbk, open_error};

/// What an OPEN of a catalog entry opens: the base cluster, and for a
/// path the index it reads by. An alternate index itself is not opened.
pub(crate) fn resolve_open(
    shared: &Shared,
    entry: &DatasetDef,
) -> Result<(DatasetDef, Option<AixIndex>), Status> {
    let name = &entry.name;
    let about = Subject::new(name, Verb::Open);
    match &entry.relation {
        None => Ok((entry.clone(), None)),
        Some(Relation::Aix { .. }) => Err(about.refused(
            open_error::INVALID_OPTIONS,
            format!(
                "{name} is an alternate index; open a PATH over it (vsamr define-path) to read by its key"
            ),
        )),
        Some(Relation::Path { aix }) => {
            let missing = |what: &str| {
                about.refused(
                    open_error::NOT_FOUND,
                    format!("the path's {what} is missing from the catalog"),
                )
            };
            let (aix_def, _) = shared
                .catalog
                .get(aix)
                .ok_or_else(|| missing("alternate index"))?;
            let Some(Relation::Aix { base, .. }) = &aix_def.relation else {
                return Err(missing("alternate index"));
            };
            let (base, _) = shared
                .catalog
                .get(base)
                .ok_or_else(|| missing("base cluster"))?;
            let index = AixIndex::from_def(&aix_def, base.organization)
                .ok_or_else(|| missing("alternate index"))?;
            Ok((base, Some(index)))
        }
    }
}

/// Empty storage for an index (made afresh if some is left over).
async fn fresh_storage(backend: &BackendHandle, def: &DatasetDef) -> Result<(), CallError> {
    match backend.call(Call::Create(def.to_plugin(), None)).await {
        Err(CallError::Store(StoreError::AlreadyExists)) => {
            backend.call(Call::Destroy(def.to_plugin())).await?;
            backend
                .call(Call::Create(def.to_plugin(), None))
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}

/// A name a new catalog entry may take: valid and unused.
async fn free_name(shared: &Shared, about: Subject<'_>) -> Result<(), Status> {
    if let Err(problem) = check_dataset_name(about.dataset) {
        return Err(about.logical(fdbk::INVALID_OPTIONS, problem));
    }
    if shared_catalog::find(shared, about.dataset).await.is_some() {
        return Err(about.logical(fdbk::DUPLICATE_KEY, "a catalog entry of that name exists"));
    }
    Ok(())
}

/// Claims a new entry's name in the fleet's shared catalog, if its
/// backend's database is shared (see [`shared_catalog::claim`]): refused if
/// another server's DEFINE took it at the same time, or the catalog cannot
/// be reached.
async fn claimed(
    shared: &Shared,
    def: &DatasetDef,
    about: Subject<'_>,
) -> Result<shared_catalog::NameClaim, Status> {
    if let Some(why) = shared_catalog::reserved_on(shared, &def.name, &def.backend) {
        return Err(about.logical(fdbk::INVALID_OPTIONS, why));
    }
    match shared_catalog::claim(shared, def).await {
        Ok(Ok(claim)) => Ok(claim),
        Ok(Err(server)) => Err(about.logical(
            fdbk::DUPLICATE_KEY,
            format!("a catalog entry of that name exists: {server} of the fleet defined it at the same time"),
        )),
        Err(refusal) => Err(about.physical(format!(
            "the fleet's shared catalog could not take it, and nothing was defined: {refusal}"
        ))),
    }
}

/// Adds a new entry to this server's catalog; true also if the sync that
/// followed this server's own claim added it first.
fn insert(shared: &Shared, def: &DatasetDef) -> anyhow::Result<bool> {
    match shared.catalog.insert(def.clone()) {
        Ok(false) => Ok(shared
            .catalog
            .get(&def.name)
            .is_some_and(|(entry, _)| entry == *def)),
        other => other,
    }
}

/// DEFINE ALTERNATEINDEX: an empty index over a KSDS or ESDS, stored in
/// the base's backend (BLDINDEX fills it from existing records).
pub(crate) async fn define_aix(shared: &Shared, spec: AixSpec) -> Result<Answer, Status> {
    let name = spec.name.to_ascii_uppercase();
    let base_name = spec.base.to_ascii_uppercase();
    let about = Subject::new(&name, Verb::DefineAix);
    free_name(shared, about).await?;
    let Some((base, _)) = shared.catalog.get(&base_name) else {
        return Err(about.logical(
            fdbk::NOT_FOUND,
            format!("the base cluster {base_name} (RELATE) is not in the catalog"),
        ));
    };
    if base.relation.is_some() || base.organization.relative() {
        return Err(about.logical(
            fdbk::INVALID_OPTIONS,
            format!(
                "{base_name} is not a KSDS or an ESDS cluster; an alternate index relates to one"
            ),
        ));
    }
    let end = u64::from(spec.key_offset) + u64::from(spec.key_length);
    if spec.key_length == 0 || spec.key_length > 255 || end > u64::from(base.max_record) {
        return Err(about.logical(fdbk::INVALID_OPTIONS, format!("the alternate key (offset {}, length {}) must be 1 to 255 bytes within {base_name}'s records of up to {} bytes",
                spec.key_offset, spec.key_length, base.max_record
            ),
        ));
    }
    if shared.is_open(&base_name) {
        return Err(about.logical(
            fdbk::EXCLUSIVE_CONTROL,
            format!("the base cluster {base_name} is open; CLOSE it everywhere first"),
        ));
    }
    // Servers of a fleet that have the base open would not upgrade the
    // new index with their writes.
    let _base_closed_in_fleet = match shared_catalog::alone_in_fleet(shared, &base).await {
        Ok(alone) => alone,
        Err(FleetRefusal::HeldElsewhere) => {
            return Err(about.logical(
                fdbk::EXCLUSIVE_CONTROL,
                format!("the base cluster {base_name} is open on another server of the fleet; CLOSE it everywhere first"),
            ));
        }
        Err(FleetRefusal::Unavailable(why)) => {
            return Err(about.physical(format!("nothing was defined: {why}")));
        }
    };
    let Some(backend) = shared.backend(&base.backend) else {
        return Err(about.physical(format!(
            "the base's backend {} is not configured",
            base.backend
        )));
    };
    let def = DatasetDef {
        name: name.clone(),
        organization: Organization::Ksds,
        key_offset: spec.key_offset,
        key_length: spec.key_length,
        min_record: base.min_record,
        max_record: base.max_record,
        codepage: base.codepage,
        backend: base.backend.clone(),
        layout: None,
        relation: Some(Relation::Aix {
            base: base_name.clone(),
            base_key_length: if base.organization == Organization::Ksds {
                base.key_length
            } else {
                8
            },
            unique: spec.unique,
            upgrade: spec.upgrade,
        }),
    };
    let claim = claimed(shared, &def, about).await?;
    if let Err(error) = fresh_storage(&backend, &def).await {
        return Err(about.physical(format!(
            "backend {} could not create the index's storage: {error}",
            base.backend
        )));
    }
    match insert(shared, &def) {
        Ok(true) => {
            claim.keep();
            tracing::info!(aix = %name, base = %base_name, "alternate index defined");
            Ok(Answer::Catalog {
                datasets: vec![def.to_spec()],
            })
        }
        Ok(false) => Err(about.logical(fdbk::DUPLICATE_KEY, "a catalog entry of that name exists")),
        Err(error) => {
            let _ = backend.call(Call::Destroy(def.to_plugin())).await;
            Err(about.physical(format!("the catalog could not be saved: {error:#}")))
        }
    }
}

/// DEFINE PATH: a name that opens the base of an alternate index by the
/// alternate key.
pub(crate) async fn define_path(shared: &Shared, spec: PathSpec) -> Result<Answer, Status> {
    let name = spec.name.to_ascii_uppercase();
    let aix_name = spec.aix.to_ascii_uppercase();
    let about = Subject::new(&name, Verb::DefinePath);
    free_name(shared, about).await?;
    let Some((aix, _)) = shared.catalog.get(&aix_name) else {
        return Err(about.logical(
            fdbk::NOT_FOUND,
            format!("the alternate index {aix_name} (PATHENTRY) is not in the catalog"),
        ));
    };
    let Some(Relation::Aix { base, .. }) = &aix.relation else {
        return Err(about.logical(
            fdbk::INVALID_OPTIONS,
            format!("{aix_name} is not an alternate index"),
        ));
    };
    let Some((base, _)) = shared.catalog.get(base) else {
        return Err(about.physical(format!(
            "the base cluster {base} of {aix_name} is missing from the catalog"
        )));
    };
    // A path is a keyed view, whatever the base: a KSDS by the alternate key.
    let def = DatasetDef {
        name: name.clone(),
        organization: Organization::Ksds,
        key_offset: aix.key_offset,
        key_length: aix.key_length,
        min_record: base.min_record,
        max_record: base.max_record,
        codepage: base.codepage,
        backend: base.backend.clone(),
        layout: base.layout.clone(),
        relation: Some(Relation::Path { aix: aix_name }),
    };
    let claim = claimed(shared, &def, about).await?;
    match insert(shared, &def) {
        Ok(true) => {
            claim.keep();
            Ok(Answer::Catalog {
                datasets: vec![def.to_spec()],
            })
        }
        Ok(false) => Err(about.logical(fdbk::DUPLICATE_KEY, "a catalog entry of that name exists")),
        Err(error) => Err(about.physical(format!("the catalog could not be saved: {error:#}"))),
    }
}

/// Most records read from the base per step of a BLDINDEX (fewer if they
/// are long: `DatasetDef::records_in`).
const STEP: u32 = 500;

/// One past the last sequence number of `alternate` in the index being
/// built (0 if it has no entry): for a key BLDINDEX no longer remembers.
async fn next_stored_sequence(
    backend: &BackendHandle,
    index: &AixIndex,
    alternate: &[u8],
) -> Result<u64, String> {
    let last = backend
        .call(Call::Scan(
            index.storage.clone(),
            index.last_entry_bound(alternate),
            Direction::Backward,
            1,
        ))
        .await;
    match last {
        Ok(Reply::Entries(entries)) => Ok(index.sequence_after(alternate, entries.first())),
        Ok(other) => Err(format!("a scan was answered with {other:?}")),
        Err(error) => Err(error.to_string()),
    }
}

/// BLDINDEX: the index made afresh from every record of its base.
pub(crate) async fn bldindex(shared: &Shared, aix_name: &str) -> Result<Answer, Status> {
    let aix_name = aix_name.to_ascii_uppercase();
    let about = Subject::new(&aix_name, Verb::BldIndex);
    let Some((aix, _)) = shared.catalog.get(&aix_name) else {
        return Err(about.logical(fdbk::NOT_FOUND, "the alternate index is not in the catalog"));
    };
    let Some(Relation::Aix {
        base: base_name, ..
    }) = &aix.relation
    else {
        return Err(about.logical(
            fdbk::INVALID_OPTIONS,
            format!("{aix_name} is not an alternate index"),
        ));
    };
    let Some((base, _)) = shared.catalog.get(base_name) else {
        return Err(about.physical(format!(
            "the base cluster {base_name} is missing from the catalog"
        )));
    };
    if shared.is_open(base_name) {
        return Err(about.logical(
            fdbk::EXCLUSIVE_CONTROL,
            format!("the base cluster {base_name} is open; CLOSE it everywhere first"),
        ));
    }
    let (Some(backend), Some(index)) = (
        shared.backend(&base.backend),
        AixIndex::from_def(&aix, base.organization),
    ) else {
        return Err(about.physical(format!(
            "the base's backend {} is not configured",
            base.backend
        )));
    };
    if let Err(error) = fresh_storage(&backend, &aix).await {
        return Err(about.physical(format!(
            "backend {} could not make the index's storage: {error}",
            base.backend
        )));
    }
    let filled = fill(&backend, &base, &aix, &index, &about).await;
    // BLDINDEX read the base whole and wrote the index, neither open
    // anywhere: both are closed as a last CLOSE would, so that the
    // backend's instance keeps nothing of them.
    for dataset in [base.to_plugin(), index.storage.clone()] {
        backend.close_after("BLDINDEX", dataset).await;
    }
    let (records, sequences_distinct) = filled?;
    tracing::info!(aix = %aix_name, records, "alternate index built");
    // A UNIQUEKEY index holds each of its keys once.
    let keys = match index.unique {
        true => records,
        false => sequences_distinct,
    };
    Ok(Answer::Result {
        status: Status {
            message: format!("{aix_name}: {records} records indexed, {keys} alternate keys"),
            ..Status::ok()
        },
        records: Vec::new(),
    })
}

/// BLDINDEX's work: an entry in the index for every record of its base,
/// a step at a time; how many records were indexed and how many distinct
/// alternate keys a NONUNIQUEKEY index got.
async fn fill(
    backend: &BackendHandle,
    base: &DatasetDef,
    aix: &DatasetDef,
    index: &AixIndex,
    about: &Subject<'_>,
) -> Result<(u64, u64), Status> {
    let (base_name, aix_name) = (&base.name, &aix.name);
    let storage = base.to_plugin();
    // Fewer than STEP records a step if they are long; a step of fewer
    // than this many was the last.
    let step = base.records_in(crate::catalog::BATCH_BYTES, STEP);
    let mut from = Start::Edge;
    let mut sequences = Sequences::new(REMEMBERED_BYTES);
    let mut records = 0u64;
    loop {
        sequences.between_batches();
        let entries = match backend
            .call(Call::Scan(
                storage.clone(),
                from.clone(),
                Direction::Forward,
                step,
            ))
            .await
        {
            Ok(Reply::Entries(entries)) => entries,
            Ok(other) => {
                return Err(about.physical(format!(
                    "backend {} answered a scan with {other:?}",
                    base.backend
                )));
            }
            Err(error) => {
                return Err(about.physical(format!("reading {base_name} failed: {error}")));
            }
        };
        let Some(last) = entries.last() else {
            break;
        };
        from = Start::Exclusive(last.key.clone());
        let mut calls = Vec::with_capacity(entries.len());
        for entry in &entries {
            let Some(alternate) = index.alternate_key(&entry.value) else {
                continue;
            };
            let sequence = match index.unique {
                true => 0,
                false => {
                    let stored = || next_stored_sequence(backend, index, alternate);
                    match sequences.take(alternate, stored).await {
                        Ok(sequence) => sequence,
                        Err(error) => {
                            return Err(
                                about.physical(format!("reading {aix_name} back failed: {error}"))
                            );
                        }
                    }
                }
            };
            let key = index.entry_key(alternate, sequence);
            calls.push(Call::Insert(
                index.storage.clone(),
                key.clone(),
                AixIndex::entry_record(&key, &entry.key),
            ));
        }
        records += calls.len() as u64;
        for (result, call) in backend
            .call_chain(calls.clone())
            .await
            .into_iter()
            .zip(&calls)
        {
            match result {
                Ok(_) => {}
                Err(CallError::Store(StoreError::DuplicateKey)) => {
                    let Call::Insert(_, key, record) = call else {
                        continue;
                    };
                    let _ = fresh_storage(backend, aix).await;
                    return Err(about.logical(fdbk::DUPLICATE_KEY, format!("alternate key {} is held by two records of {base_name} (one has key {}), and {aix_name} is UNIQUEKEY; the index is left empty",
                            String::from_utf8_lossy(key),
                            String::from_utf8_lossy(&record[key.len()..])
                        ),
                    ));
                }
                Err(error) => {
                    return Err(about.physical(format!("writing the index failed: {error}")));
                }
            }
        }
        if entries.len() < step as usize {
            break;
        }
    }
    Ok((records, sequences.distinct))
}
