//! This server's catalog kept in step with the shared catalogs of the
//! databases it shares with a fleet (see `crate::fleet`): a dataset another
//! server defined there is served here, by the backend of this server on
//! the same database; one deleted there is dropped here. Changes arrive by
//! NOTIFY within milliseconds; an OPEN or INFO of a name this server does
//! not know yet asks the shared catalogs first.

use super::shared::Shared;
use crate::after_panic::spawn_essential;
use crate::catalog::{DatasetDef, Origin};
use crate::fleet::{Claim, FleetRefusal, LockSession, SharedEntry};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The backend of this server that serves datasets of the database at
/// `url`: the one named `preferred` if it is on that database, else the
/// first (by name) that is.
fn backend_on(shared: &Shared, url: &str, preferred: &str) -> Option<String> {
    let routing = shared.routing();
    let on_database: Vec<&String> = routing
        .backends
        .iter()
        .filter(|(_, handle)| handle.shared_database().as_deref() == Some(url))
        .map(|(name, _)| name)
        .collect();
    on_database
        .iter()
        .find(|name| name.as_str() == preferred)
        .or_else(|| on_database.first())
        .map(|name| name.to_string())
}

/// The lock session of the database `backend` shares, if it shares one.
pub(crate) fn session_of(shared: &Shared, backend: &str) -> Option<(String, Arc<LockSession>)> {
    let url = shared.backend(backend)?.shared_database()?;
    let session = shared.fleet.session(&url);
    Some((url, session))
}

/// Why a dataset named `name` cannot live on backend `backend`, if it
/// cannot: its table would be the one where the fleet sharing the
/// backend's database keeps its catalog.
pub(crate) fn reserved_on(shared: &Shared, name: &str, backend: &str) -> Option<String> {
    shared.backend(backend)?.shared_database()?;
    let table = crate::fleet::catalog_table_named(name)?;
    Some(format!(
        "its table on the database of backend {backend} would be {table}, where the servers sharing that database keep their catalog: give the dataset another name, or put it on a backend whose database is not shared"
    ))
}

/// Takes a shared entry into this server's catalog, on this server's
/// backend of the database; false if it cannot be (no such backend, or the
/// name is taken here by a dataset of another storage).
fn adopt(shared: &Shared, url: &str, mut def: DatasetDef) -> bool {
    let Some(backend) = backend_on(shared, url, &def.backend) else {
        return false;
    };
    def.backend = backend;
    let mine = shared.catalog.get(&def.name);
    if mine.as_ref().is_some_and(|(mine, _)| *mine == def) {
        // Taken (and checked) before: a whole reading of the catalog does
        // not parse every copybook again.
        return true;
    }
    // The table is written by servers, but anyone with the database's
    // credentials may change it: an entry is checked as a DEFINE is.
    if let Err(problem) = def.validate() {
        tracing::warn!(
            dataset = %def.name,
            "the fleet's shared catalog holds an entry this server refuses: {problem}; fix or delete its row in vsamrd_catalog"
        );
        return false;
    }
    match mine {
        Some((mine, _)) if mine.backend == def.backend && !shared.is_open(&def.name) => {
            // Deleted and defined again by another server since the last
            // sync: the new definition replaces the old one here, and the
            // backend forgets what it cached of the old one.
            let replaced = shared
                .catalog
                .remove(&def.name)
                .and_then(|()| shared.catalog.insert(def.clone()).map(drop));
            forget_caches(shared, &def.backend);
            match replaced {
                Ok(()) => {
                    tracing::info!(dataset = %def.name, backend = %def.backend, "defined again by another server of the fleet");
                    true
                }
                Err(error) => {
                    tracing::warn!(dataset = %def.name, "the catalog could not be saved: {error:#}");
                    false
                }
            }
        }
        Some(_)
            if shared
                .moving_copy(&def.name)
                .is_some_and(|copy| copy.shared_database().as_deref() == Some(url)) =>
        {
            // Its own entry, left for the old copy a migration keeps
            // following there until `--finalize` (see `migrate::names`).
            false
        }
        Some((mine, _)) => {
            tracing::warn!(
                dataset = %def.name,
                "the fleet's shared catalog defines the dataset on its database, and this server has one of that name on backend {}: this server keeps serving its own; DELETE one of them",
                mine.backend
            );
            false
        }
        None => match shared.catalog.insert(def.clone()) {
            Ok(_) => {
                tracing::info!(dataset = %def.name, backend = %def.backend, "defined by another server of the fleet");
                true
            }
            Err(error) => {
                tracing::warn!(dataset = %def.name, "the catalog could not be saved: {error:#}");
                false
            }
        },
    }
}

/// Makes the instances of `backend` start again from storage (see
/// `BackendHandle::forget_caches`).
fn forget_caches(shared: &Shared, backend: &str) {
    if let Some(handle) = shared.backend(backend) {
        handle.forget_caches();
    }
}

/// Brings this server's catalog in step with the whole shared catalog of
/// the database at `url`: entries this server defined before the catalog
/// was shared are added to it; entries defined elsewhere are adopted;
/// entries deleted elsewhere are dropped.
pub(crate) async fn sync_once(shared: &Shared, url: &str) -> Result<(), FleetRefusal> {
    let _alone = shared.fleet.catalog.lock().await;
    let session = shared.fleet.session(url);
    let mut rows: Vec<SharedEntry> = session.entries().await?;
    let missing: Vec<DatasetDef> = {
        let named: std::collections::HashSet<&str> =
            rows.iter().map(|row| row.name.as_str()).collect();
        shared
            .catalog
            .names()
            .into_iter()
            .filter(|name| !named.contains(name.as_str()))
            .filter_map(|name| shared_here(shared, url, &name))
            .collect()
    };
    for def in &missing {
        session.carry_over(def).await?;
    }
    if !missing.is_empty() {
        rows = session.entries().await?;
    }
    for row in rows {
        apply_row(shared, url, row);
    }
    Ok(())
}

/// Brings this server's catalog in step with the rows of `names` in the
/// shared catalog of the database at `url`: the names its announcements
/// named.
pub(crate) async fn sync_named(
    shared: &Shared,
    url: &str,
    names: &std::collections::BTreeSet<String>,
) -> Result<(), FleetRefusal> {
    let _alone = shared.fleet.catalog.lock().await;
    let rows = shared.fleet.session(url).entries_named(names).await?;
    for row in rows {
        apply_row(shared, url, row);
    }
    Ok(())
}

/// This server's defined entry `name`, if it is on the database at `url`:
/// one the shared catalog holds, or should.
fn shared_here(shared: &Shared, url: &str, name: &str) -> Option<DatasetDef> {
    let (def, origin) = shared.catalog.get(name)?;
    let on_database = shared
        .backend(&def.backend)
        .and_then(|backend| backend.shared_database())
        .is_some_and(|database| database == url);
    (origin == Origin::Defined && on_database).then_some(def)
}

/// Takes one row of the shared catalog here: a definition is adopted, a
/// deleted name's entry dropped (unless a connection has it open: the
/// next whole reading drops it).
fn apply_row(shared: &Shared, url: &str, row: SharedEntry) {
    let Some(def) = row.definition else {
        if let Some(def) = shared_here(shared, url, &row.name)
            && !shared.is_open(&def.name)
        {
            let removed = shared.catalog.remove(&def.name);
            forget_caches(shared, &def.backend);
            match removed {
                Ok(()) => {
                    tracing::info!(dataset = %def.name, by = %row.server, "deleted by another server of the fleet")
                }
                Err(error) => {
                    tracing::warn!(dataset = %def.name, "the catalog could not be saved: {error:#}")
                }
            }
        }
        return;
    };
    adopt(shared, url, def);
}

/// Joins the fleet on every shared database the routing's backends use and
/// follows its shared catalog, once per database: at start, and after a
/// reload that adds a backend on a database not used before.
pub(crate) async fn follow_shared_databases(shared: &Arc<Shared>) {
    let databases: std::collections::BTreeSet<String> = shared
        .routing()
        .backends
        .values()
        .filter_map(|handle| handle.shared_database())
        .collect();
    for url in databases {
        if shared.fleet.starts_following(&url) {
            shared.fleet.session(&url).join().await;
            let what = format!(
                "this server's catalog in step with the fleet's on {}",
                shared.fleet.session(&url).label()
            );
            spawn_essential(what, follow(Arc::downgrade(shared), url));
        }
    }
}

/// Warns, for each PostgreSQL database the backends use, when the
/// connections this server may open there (a writer and its readers per
/// backend, and the fleet's lock session), as many again for each other
/// server of its fleet, pass what the database takes: each instance
/// connects when it is first used, so past the limit a reader's or a
/// writer's first request fails with the database's "sorry, too many
/// clients already", under load and long after the start.
pub(crate) async fn check_connection_room(shared: &Shared) {
    let mut wanted: std::collections::BTreeMap<String, usize> = Default::default();
    for handle in shared.routing().backends.values() {
        if let Some(url) = handle.shared_database() {
            *wanted.entry(url).or_insert(1) += 1 + handle.readers();
        }
    }
    for (url, instances) in wanted {
        let session = shared.fleet.session(&url);
        // A database that does not answer now is not waited for: its
        // backends say so when they are used.
        let asked = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            (session.connection_limits().await, session.members().await)
        });
        let Ok((Ok(limits), Ok(members))) = asked.await else {
            continue;
        };
        let servers = members.len().max(1);
        let fleet_wide = instances * servers;
        let usable = usize::try_from(limits.usable()).unwrap_or(0);
        if fleet_wide > usable {
            let fleet = match servers {
                1 => String::new(),
                n => format!(
                    ", {fleet_wide} for the {n} servers of its fleet if they are configured alike"
                ),
            };
            tracing::warn!(
                database = %session.label(),
                "this server's backends on {} may open {instances} connections there (a writer and its readers each, and the fleet's lock session){fleet}, and the database takes {usable} (max_connections {} less {} reserved): past them, requests fail with \"sorry, too many clients already\" when an instance first connects; raise max_connections, or lower the backends' readers",
                session.label(),
                limits.max,
                limits.reserved
            );
        }
    }
}

/// Follows the shared catalog of the database at `url` while the server
/// runs: all of it at start, after every new lock session (announcements
/// may have been missed) and every 30 s (a row written by hand); between
/// them, the rows its announcements name, as they come.
async fn follow(shared: Weak<Shared>, url: String) {
    let Some(mut changes) = shared.upgrade().map(|s| s.fleet.session(&url).changes()) else {
        return;
    };
    let mut everything = true;
    loop {
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let announced = shared.fleet.session(&url).take_announced();
            everything |= announced.everything;
            let synced = match everything {
                true => sync_once(&shared, &url).await,
                false if announced.names.is_empty() => Ok(()),
                false => sync_named(&shared, &url, &announced.names).await,
            };
            if let Err(refusal) = synced {
                tracing::warn!("{refusal}; tried again in 1 s");
                drop(shared);
                everything = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            everything = false;
        }
        match tokio::time::timeout(Duration::from_secs(30), changes.changed()).await {
            Ok(Ok(())) => {}
            // The lock session is gone: the server stopped.
            Ok(Err(_)) => return,
            Err(_) => everything = true,
        }
    }
}

/// The definition of `name`: this server's catalog entry, else one a
/// shared catalog holds (then adopted here).
pub(crate) async fn find(shared: &Shared, name: &str) -> Option<DatasetDef> {
    if let Some((def, _)) = shared.catalog.get(name) {
        return Some(def);
    }
    let _alone = shared.fleet.catalog.lock().await;
    if let Some((def, _)) = shared.catalog.get(name) {
        // Taken in while this waited.
        return Some(def);
    }
    for (url, session) in shared.fleet.sessions() {
        if let Ok(Some(SharedEntry {
            definition: Some(def),
            ..
        })) = session.entry(name).await
            && adopt(shared, &url, def)
        {
            return shared.catalog.get(name).map(|(def, _)| def);
        }
    }
    None
}

/// A name claimed in a shared catalog for a DEFINE under way: withdrawn
/// again if the DEFINE fails (dropped without [`NameClaim::keep`]).
/// This server's catalog changes alone with the shared one until the claim
/// is kept or dropped.
pub(crate) struct NameClaim {
    session: Option<Arc<LockSession>>,
    name: String,
    /// Held until the claim is kept, or withdrawn: a sync of this server's
    /// catalog (its own announcement of the claim wakes one) must not read
    /// the claimed row of a DEFINE that failed and adopt it.
    alone: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl NameClaim {
    /// The DEFINE succeeded: the name stays claimed.
    pub(crate) fn keep(mut self) {
        self.session = None;
    }
}

/// Holds this server's catalog changes alone (see `Fleet::catalog`).
pub(crate) async fn changing(shared: &Shared) -> tokio::sync::OwnedMutexGuard<()> {
    shared.fleet.catalog.clone().lock_owned().await
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let name = std::mem::take(&mut self.name);
            let alone = self.alone.take();
            tokio::spawn(async move {
                if let Err(refusal) = session.withdraw(&name).await {
                    tracing::warn!(dataset = %name, "a failed DEFINE's claim stays in the shared catalog: {refusal}");
                }
                // Only now may a sync read the row: withdrawn, it is not
                // adopted.
                drop(alone);
            });
        }
    }
}

/// Claims a new dataset's name in the shared catalog of its backend's
/// database, before its storage is made (so that of two DEFINEs at once
/// one goes on and the other stops before touching the store): the claim
/// (nothing to claim if the backend does not share a database), or
/// `Err(server)` if another definition holds it (adopted here), naming the
/// server that made it.
pub(crate) async fn claim(
    shared: &Shared,
    def: &DatasetDef,
) -> Result<Result<NameClaim, String>, FleetRefusal> {
    let alone = changing(shared).await;
    let Some((url, session)) = session_of(shared, &def.backend) else {
        return Ok(Ok(NameClaim {
            session: None,
            name: def.name.clone(),
            alone: Some(alone),
        }));
    };
    match session.claim(def).await? {
        Claim::Claimed => Ok(Ok(NameClaim {
            session: Some(session),
            name: def.name.clone(),
            alone: Some(alone),
        })),
        Claim::Taken(theirs, server) => {
            adopt(shared, &url, theirs);
            Ok(Err(server))
        }
    }
}

/// Marks a deleted dataset deleted in the shared catalog of its backend's
/// database, if it shares one.
pub(crate) async fn withdraw(shared: &Shared, def: &DatasetDef) -> Result<(), FleetRefusal> {
    match session_of(shared, &def.backend) {
        Some((_, session)) => session.withdraw(&def.name).await,
        None => Ok(()),
    }
}

/// A dataset's open lock held alone in the fleet's database (no other
/// server has it open); given back when dropped.
pub(crate) struct Alone {
    session: Arc<LockSession>,
    name: String,
    generation: u64,
}

impl Drop for Alone {
    fn drop(&mut self) {
        self.session.unlock_dataset(
            std::mem::take(&mut self.name),
            self.generation,
            crate::fleet::Mode::Exclusive,
        );
    }
}

/// Takes `def`'s open lock alone in the fleet's database, if its backend
/// shares one: refused ([`FleetRefusal::HeldElsewhere`]) while another
/// server has the dataset open. What a DELETE and a DEFINE AIX need, as
/// they need the dataset closed on this server.
pub(crate) async fn alone_in_fleet(
    shared: &Shared,
    def: &DatasetDef,
) -> Result<Option<Alone>, FleetRefusal> {
    let Some((_, session)) = session_of(shared, &def.backend) else {
        return Ok(None);
    };
    let name = crate::fleet::open_lock(&def.name);
    let generation = session
        .try_dataset_lock(&name, crate::fleet::Mode::Exclusive)
        .await?;
    Ok(Some(Alone {
        session,
        name,
        generation,
    }))
}
