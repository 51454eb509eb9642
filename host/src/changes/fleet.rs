//! Followed datasets that other servers write too.
//!
//! A server's change log holds the changes this server commits. In a fleet
//! (servers sharing a PostgreSQL database, see `crate::fleet`), another
//! server's writes to the same datasets never pass through it: a mirror
//! fed from this log would miss them, and silently drift from its
//! primary, and the change stream would lack them. Mirrors stop and the
//! stream says so instead (see `Mirror::run` and `Stream::run`), from the
//! moment this server learns another one shares the database: before that
//! server writes anything, since it serves nothing until this one has made
//! room for it.

use crate::vsam::Shared;
use std::collections::BTreeMap;

/// Why the datasets `patterns` cover, except those on backend `except`
/// (a mirror's own), are written by other servers too: the first such
/// dataset, its backend and database. `None` while this server is alone
/// on the databases of every one of them.
pub fn written_elsewhere(shared: &Shared, patterns: &[String], except: &str) -> Option<String> {
    // Backends on a database another server shares, with its name.
    let shared_backends: BTreeMap<String, String> = shared
        .routing()
        .backends
        .iter()
        .filter(|(name, _)| name.as_str() != except)
        .filter_map(|(name, handle)| {
            let label = shared
                .fleet
                .shared_with_others(&handle.shared_database()?)?;
            Some((name.clone(), label))
        })
        .collect();
    if shared_backends.is_empty() {
        return None;
    }
    patterns.iter().find_map(|pattern| {
        shared.catalog.list(pattern).into_iter().find_map(|def| {
            if def.relation.is_some() {
                return None;
            }
            let label = shared_backends.get(&def.backend)?;
            Some(format!(
                "dataset {} is on backend {}, whose database ({label}) other vsamrd servers write too (a fleet): their changes to it never reach this server's change log",
                def.name, def.backend
            ))
        })
    })
}
