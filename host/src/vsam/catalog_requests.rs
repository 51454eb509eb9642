//! Catalog requests: DEFINE, DELETE, INFO, LIST and LISTCAT (IDCAMS's
//! DEFINE CLUSTER, DELETE and LISTCAT), a listing whole or a page at a
//! time.

use super::request::answer;
use super::shared::Shared;
use super::shared_catalog;
use super::subject::Subject;
use crate::catalog::{DatasetDef, Origin};
use crate::fleet::FleetRefusal;
use crate::runtime::call::{Call, CallError};
use std::ops::ControlFlow;
use vsam_plugin_sdk::StoreError;
use vsam_protocol::{Answer, CatalogEntry, DatasetSpec, Status, Verb, answer_frame_len, fdbk};

/// DEFINE: checks the attributes, creates the storage in the routed
/// backend and saves the catalog entry.
pub(crate) async fn define(shared: &Shared, spec: DatasetSpec) -> Result<Answer, Status> {
    let name = spec.name.to_ascii_uppercase();
    let about = Subject::new(&name, Verb::Define);
    if shared_catalog::find(shared, &name).await.is_some() {
        return Err(about.logical(
            fdbk::DUPLICATE_KEY,
            "a dataset of that name is already in the catalog",
        ));
    }
    let routing = shared.routing();
    let backend_name = if spec.backend.is_empty() {
        match routing.route(&name) {
            Some(backend) => backend,
            None => {
                return Err(about.logical(fdbk::INVALID_OPTIONS, "no routing rule matches the name and there is no default route; name a backend",
                ));
            }
        }
    } else {
        spec.backend.clone()
    };
    let Some(backend) = routing.backends.get(&backend_name) else {
        return Err(about.logical(
            fdbk::INVALID_OPTIONS,
            format!(
                "there is no backend {backend_name:?}; configured: {}",
                routing
                    .backends
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    if let Some(why) = shared_catalog::reserved_on(shared, &name, &backend_name) {
        return Err(about.logical(fdbk::INVALID_OPTIONS, why));
    }
    let def = match DatasetDef::from_spec(
        &DatasetSpec {
            name: name.clone(),
            ..spec
        },
        backend_name.clone(),
    ) {
        Ok(def) => def,
        // The answer names the dataset already ("NAME DEFINE: ...").
        Err(problem) => {
            let problem = problem
                .strip_prefix(&format!("{name}: "))
                .unwrap_or(&problem);
            return Err(about.logical(fdbk::INVALID_OPTIONS, problem.to_string()));
        }
    };
    if def.max_record > shared.limits.max_record {
        return Err(about.logical(
            fdbk::INVALID_OPTIONS,
            format!(
                "records of {} bytes are longer than this server allows ([server] max_record = {})",
                def.max_record, shared.limits.max_record
            ),
        ));
    }
    if let Some(url) = backend.shared_database() {
        // A mirror's tables there would be adopted as this dataset's
        // records, and the mirror would go on writing into them.
        match shared.fleet.session(&url).mirrored_by(&name).await {
            Ok(None) => {}
            Ok(Some(holder)) => {
                return Err(about.logical(
                    fdbk::DUPLICATE_KEY,
                    format!("the database of backend {backend_name} holds a mirror of a dataset of that name, kept by {holder}: DEFINE it under another name or on another backend, or remove that mirror from its server's configuration (a reload, or its next start, gives the name back; for a mirror no server runs any more, delete the name's row from table _vsamrd_mirrored)"),
                ));
            }
            Err(refusal) => {
                return Err(about.physical(format!(
                    "whether a mirror keeps a dataset of that name on the database of backend {backend_name} cannot be learned, and nothing was defined: {refusal}"
                )));
            }
        }
    }
    let claim = match shared_catalog::claim(shared, &def).await {
        Ok(Ok(claim)) => claim,
        Ok(Err(server)) => {
            return Err(about.logical(
                fdbk::DUPLICATE_KEY,
                format!("a dataset of that name is already in the catalog: {server} of the fleet defined it at the same time"),
            ));
        }
        Err(refusal) => {
            return Err(about.physical(format!(
                "the fleet's shared catalog could not take it, and nothing was defined: {refusal}"
            )));
        }
    };
    let created = match backend
        .call(Call::Create(def.to_plugin(), def.layout.clone()))
        .await
    {
        Ok(_) => true,
        Err(CallError::Store(StoreError::AlreadyExists)) => {
            match check_adopted(backend, &def).await {
                Ok(()) => {}
                Err(Adoption::Misfit(why)) => {
                    return Err(about.logical(fdbk::INVALID_OPTIONS, format!("backend {backend_name} already holds records of {name}, and they do not fit this definition: {why}; DEFINE it with the attributes its records were stored with, or give the new dataset another name"
                        ),
                    ));
                }
                Err(Adoption::Unreadable(why)) => {
                    return Err(about.logical(fdbk::INVALID_OPTIONS, format!("backend {backend_name} already holds records of {name}, and they cannot be read under this definition ({why}): fix the stored records, or DEFINE it with the attributes they were stored with"
                        ),
                    ));
                }
            }
            tracing::info!(dataset = %name, backend = %backend_name, "DEFINE adopts the records already stored in the backend");
            false
        }
        // The backend refuses the definition itself (its storage belongs to
        // another dataset, a record too long for the store): nothing failed,
        // the request is refused.
        Err(CallError::Store(StoreError::Invalid(why))) => {
            return Err(about.logical(
                fdbk::INVALID_OPTIONS,
                format!("backend {backend_name} refuses it: {why}"),
            ));
        }
        Err(error) => {
            return Err(about.physical(format!(
                "backend {backend_name} could not create storage: {}",
                describe(&error)
            )));
        }
    };
    let inserted = match shared.catalog.insert(def.clone()) {
        // Taken from the shared catalog already, by the sync that followed
        // this server's own claim.
        Ok(false)
            if shared
                .catalog
                .get(&name)
                .is_some_and(|(entry, _)| entry == def) =>
        {
            Ok(true)
        }
        other => other,
    };
    match inserted {
        Ok(true) => {
            claim.keep();
            tracing::info!(dataset = %name, backend = %backend_name, "defined");
            Ok(Answer::Catalog {
                datasets: vec![def.to_spec()],
            })
        }
        Ok(false) => Err(about.logical(
            fdbk::DUPLICATE_KEY,
            "a dataset of that name is already in the catalog",
        )),
        Err(error) => {
            if created {
                let _ = backend.call(Call::Destroy(def.to_plugin())).await;
            }
            Err(about.physical(format!("the catalog could not be saved: {error:#}")))
        }
    }
}

/// Most records of existing storage a DEFINE checks before adopting it
/// (fewer if they are long: `DatasetDef::records_in`): enough
/// to tell other attributes (a definition's key length or offset differs
/// in every record) without reading a large dataset whole.
const ADOPT_CHECKED: u32 = 1_000;

/// Why a DEFINE does not adopt stored records.
enum Adoption {
    /// A record read does not fit the definition.
    Misfit(String),
    /// The backend cannot read them under the definition (a CSV file whose
    /// rows do not parse with its key length, say).
    Unreadable(String),
}

/// Checks that the first records of storage a DEFINE would adopt fit the
/// definition: a KSDS's keys have its key length and sit at its key offset
/// in their records, and no record is longer than its maximum.
async fn check_adopted(
    backend: &crate::runtime::BackendHandle,
    def: &DatasetDef,
) -> Result<(), Adoption> {
    let ds = def.to_plugin();
    let entries = match backend
        .call(Call::Scan(
            ds.clone(),
            vsam_plugin_sdk::Start::Edge,
            vsam_plugin_sdk::Direction::Forward,
            def.records_in(crate::catalog::BATCH_BYTES, ADOPT_CHECKED),
        ))
        .await
    {
        Ok(crate::runtime::call::Reply::Entries(entries)) => entries,
        Ok(other) => {
            return Err(Adoption::Unreadable(format!(
                "the backend answered a scan with {other:?}"
            )));
        }
        Err(error) => return Err(Adoption::Unreadable(describe(&error))),
    };
    for entry in &entries {
        let length = entry.value.len() as u32;
        if length > def.max_record {
            return Err(Adoption::Misfit(format!(
                "the record under key X'{}' is {length} bytes long, the definition allows {}",
                hex::encode_upper(&entry.key),
                def.max_record
            )));
        }
        if def.organization != vsam_protocol::Organization::Ksds {
            continue;
        }
        if entry.key.len() != usize::from(def.key_length) {
            return Err(Adoption::Misfit(format!(
                "the record under key X'{}' has a {}-byte key, the definition says KEYS({} {})",
                hex::encode_upper(&entry.key),
                entry.key.len(),
                def.key_length,
                def.key_offset
            )));
        }
        let at = def.key_offset as usize;
        let field = entry.value.get(at..at + usize::from(def.key_length));
        if field != Some(entry.key.as_slice()) {
            return Err(Adoption::Misfit(format!(
                "the record under key X'{}' does not carry its key at offset {}",
                hex::encode_upper(&entry.key),
                def.key_offset
            )));
        }
    }
    Ok(())
}

/// DELETE: removes the dataset's storage and catalog entry.
pub(crate) async fn delete(shared: &Shared, name: &str) -> Result<Answer, Status> {
    let name = name.to_ascii_uppercase();
    let about = Subject::new(&name, Verb::Delete);
    let Some((def, origin)) = shared.catalog.get(&name) else {
        return Err(about.logical(fdbk::NOT_FOUND, "the dataset is not in the catalog"));
    };
    if origin == Origin::Config {
        return Err(about.logical(fdbk::INVALID_OPTIONS, "the dataset is defined in the configuration file; remove it there and reload (vsamr admin reload) or restart",
        ));
    }
    // An alternate index and a path go with what they relate to; an index
    // is deleted only while its base is closed (its writes upgrade it).
    let (indexes, paths) = shared.catalog.related(&name);
    let base = match &def.relation {
        Some(crate::catalog::Relation::Aix { base, .. }) => Some(base.clone()),
        Some(crate::catalog::Relation::Path { .. }) => None,
        None => None,
    };
    if let Some(base) = &base
        && shared.is_open(base)
    {
        return Err(about.logical(
            fdbk::EXCLUSIVE_CONTROL,
            format!("its base cluster {base} is open; CLOSE it everywhere first"),
        ));
    }
    let Some(_closed_to_opens) = shared.begin_delete(&name) else {
        return Err(about.logical(fdbk::EXCLUSIVE_CONTROL, "the dataset is open (or being deleted, or migrated: see vsamr admin status); CLOSE it everywhere first, finalize or roll back a migration",
        ));
    };
    let _closed_in_fleet = match shared_catalog::alone_in_fleet(shared, &def).await {
        Ok(alone) => alone,
        Err(FleetRefusal::HeldElsewhere) => {
            return Err(about.logical(
                fdbk::EXCLUSIVE_CONTROL,
                "the dataset is open on another server of the fleet (vsamr admin status lists the servers); CLOSE it everywhere first",
            ));
        }
        Err(FleetRefusal::Unavailable(why)) => {
            return Err(about.physical(format!("nothing was deleted: {why}")));
        }
    };
    let storage_of = |def: &DatasetDef| {
        def.relation.is_none() || matches!(def.relation, Some(crate::catalog::Relation::Aix { .. }))
    };
    if let Some(backend) = shared.backend(&def.backend) {
        for index in &indexes {
            let _ = backend.call(Call::Destroy(index.to_plugin())).await;
        }
    }
    if let Some(backend) = shared.backend(&def.backend)
        && storage_of(&def)
    {
        match backend.call(Call::Destroy(def.to_plugin())).await {
            Ok(_) | Err(CallError::Store(StoreError::NoSuchDataset)) => {}
            Err(error) => {
                return Err(about.physical(format!(
                    "backend {} could not remove the records: {}",
                    def.backend,
                    describe(&error)
                )));
            }
        }
    }
    let _alone = shared_catalog::changing(shared).await;
    for gone in paths.iter().chain(&indexes).chain([&def]) {
        if let Err(refusal) = shared_catalog::withdraw(shared, gone).await {
            return Err(about.physical(format!(
                "the records are removed, but the fleet's shared catalog could not be told that {} is deleted: {refusal}; DELETE it again",
                gone.name
            )));
        }
    }
    for related in paths.iter().chain(&indexes) {
        if let Err(error) = shared.catalog.remove(&related.name) {
            return Err(about.physical(format!("the catalog could not be saved: {error:#}")));
        }
    }
    match shared.catalog.remove(&name) {
        Ok(()) => {
            tracing::info!(dataset = %name, "deleted");
            Ok(answer(Ok(super::request::Done::default())))
        }
        Err(error) => Err(about.physical(format!("the catalog could not be saved: {error:#}"))),
    }
}

/// INFO: one catalog entry, to a client of protocol minor `minor` (an
/// entry it cannot decode is refused, naming the version it needs).
pub(crate) async fn info(shared: &Shared, name: &str, minor: u16) -> Result<Answer, Status> {
    let name = name.to_ascii_uppercase();
    match shared_catalog::find(shared, &name).await {
        Some(def) if def.organization.minor() > minor => Err(Subject::new(&name, Verb::Info)
            .logical(fdbk::INVALID_OPTIONS, newer(def.organization, minor))),
        Some(def) => Ok(Answer::Catalog {
            datasets: vec![def.to_spec()],
        }),
        None => Err(Subject::new(&name, Verb::Info)
            .logical(fdbk::NOT_FOUND, "the dataset is not in the catalog")),
    }
}

/// The most entries one page of a LIST or LISTCAT holds, however small:
/// a page is a bounded piece of work under the catalog's lock (a
/// catalog of a million datasets is listed a thousand at a time).
const PAGE_ENTRIES: usize = 1024;

/// Which part of the matches a LIST or LISTCAT answers, and to whom.
pub(crate) struct Listing<'a> {
    /// The names to list.
    pub pattern: &'a str,
    /// `None`: every match in one answer (protocol 1.6 and below); a name:
    /// one page, the matches after it (protocol 1.7).
    pub after: Option<&'a str>,
    /// The bytes an answer to this client may take (its HELLO
    /// `max_frame`).
    pub answer_frame: usize,
    /// The client's protocol minor: entries it cannot decode are left out.
    pub minor: u16,
}

impl Listing<'_> {
    /// The entries of this listing that `visible` lets the client see, each
    /// as `entry` makes it: every match, or as many after `after` as fit
    /// the frame beside `answer`, counted by `bytes` (at least one, so that
    /// an entry too large alone is refused by name, not skipped).
    ///
    /// Every match (protocol 1.6 and below) is built only while it fits
    /// the client's frame: one past it refuses the answer (X'2C') then,
    /// rather than after a copy of a catalog of a million entries, each
    /// with its copybook, was made in memory only to be refused.
    fn entries<T>(
        &self,
        verb: Verb,
        shared: &Shared,
        answer: usize,
        visible: impl Fn(&str) -> bool,
        entry: impl Fn(&DatasetDef) -> T,
        bytes: impl Fn(&T) -> usize,
    ) -> Result<Vec<T>, Status> {
        let shown = |def: &DatasetDef| visible(&def.name) && def.organization.minor() <= self.minor;
        let room = self.answer_frame.saturating_sub(answer);
        let whole = self.after.is_none();
        let mut page = Vec::new();
        let mut used = 0;
        let mut over = false;
        shared
            .catalog
            .visit_after(self.pattern, self.after.unwrap_or(""), |def| {
                if !shown(def) {
                    return ControlFlow::Continue(());
                }
                let item = entry(def);
                let size = bytes(&item);
                if !page.is_empty() && used + size > room {
                    over = whole;
                    return ControlFlow::Break(());
                }
                used += size;
                page.push(item);
                match whole || page.len() < PAGE_ENTRIES {
                    true => ControlFlow::Continue(()),
                    false => ControlFlow::Break(()),
                }
            });
        if over {
            return Err(Status::logical(
                fdbk::AREA_TOO_SMALL,
                format!(
                    "{verb}: the answer takes more than the {} bytes this client accepts (its HELLO max_frame): ask for less at a time (a narrower pattern), connect with a larger max_frame, or use a client of protocol 1.7, which lists a page at a time",
                    self.answer_frame
                ),
            ));
        }
        Ok(page)
    }
}

/// The longest pattern a LIST or LISTCAT takes: a dataset name has at most
/// 44 characters, and matching costs the pattern's length for every name
/// of the catalog, so a pattern of thousands is refused, not tried.
const MAX_PATTERN: usize = 128;

impl Listing<'_> {
    /// Refuses a pattern too long to be one (X'68').
    fn check(&self, verb: Verb) -> Result<(), Status> {
        if self.pattern.len() <= MAX_PATTERN {
            return Ok(());
        }
        Err(Status::logical(
            fdbk::INVALID_OPTIONS,
            format!(
                "{verb}: the pattern is {} bytes long; a pattern has at most {MAX_PATTERN} (a dataset name at most 44 characters)",
                self.pattern.len()
            ),
        ))
    }
}

/// LIST: the entries matching the pattern that `visible` lets the client
/// see and it can decode (all, or one page).
pub(crate) fn list(
    shared: &Shared,
    listing: &Listing,
    visible: impl Fn(&str) -> bool,
) -> Result<Answer, Status> {
    listing.check(Verb::List)?;
    let empty = answer_frame_len(&Answer::Catalog {
        datasets: Vec::new(),
    });
    let datasets = listing.entries(
        Verb::List,
        shared,
        empty,
        visible,
        DatasetDef::to_spec,
        DatasetSpec::encoded_len,
    )?;
    Ok(Answer::Catalog { datasets })
}

/// LISTCAT: like LIST, each entry with what it is (cluster, alternate
/// index with its base, path with its index).
pub(crate) fn listcat(
    shared: &Shared,
    listing: &Listing,
    visible: impl Fn(&str) -> bool,
) -> Result<Answer, Status> {
    listing.check(Verb::Listcat)?;
    let empty = answer_frame_len(&Answer::Entries {
        entries: Vec::new(),
    });
    let entries = listing.entries(
        Verb::Listcat,
        shared,
        empty,
        visible,
        DatasetDef::to_entry,
        CatalogEntry::encoded_len,
    )?;
    Ok(Answer::Entries { entries })
}

/// Why a dataset of `organization` is not shown to a client of protocol
/// minor `minor`.
pub(crate) fn newer(organization: vsam_protocol::Organization, minor: u16) -> String {
    format!(
        "the dataset is an {}, which protocol 1.{} introduced, and this connection speaks 1.{minor}: use a client of protocol 1.{} or later",
        organization.name().to_ascii_uppercase(),
        organization.minor(),
        organization.minor()
    )
}

fn describe(error: &CallError) -> String {
    error.to_string()
}
