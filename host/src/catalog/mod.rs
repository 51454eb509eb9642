//! The catalog: every dataset's definition, and which backend holds it.
//!
//! Datasets come from the configuration or from DEFINE requests; the latter
//! are saved under the data dir, so they survive restarts: each change
//! appended to `catalog.journal` (module `journal`), the whole catalog written
//! to `catalog.json` (a temporary file, synced and renamed) once the
//! journal is as large as it.

mod definition;
mod entries;
mod journal;
mod patterns;

pub use definition::{BATCH_BYTES, DatasetDef, Relation};
pub use patterns::{literal_prefix, matches, route};

use crate::after_panic::LockOrStop;
use entries::Entries;
use journal::{Journal, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a catalog entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[[datasets]]` in the config file.
    Config,
    /// A DEFINE request.
    Defined,
}

/// The most names one hold of the catalog's lock walks in a listing
/// (about half a millisecond).
pub const VISITS_PER_LOCK: usize = 4096;

/// What a reloaded configuration changes among configured datasets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    /// Datasets the configuration now defines.
    pub added: Vec<DatasetDef>,
    /// Configured datasets it no longer defines.
    pub removed: Vec<String>,
    /// Datasets it defines differently from the catalog (refused: a
    /// definition cannot change under stored records).
    pub changed: Vec<String>,
}

#[derive(Deserialize, Default)]
struct CatalogFile {
    datasets: Vec<DatasetDef>,
    /// Configured datasets that a migration moved to another backend than
    /// the configuration names: name -> backend.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    moved: BTreeMap<String, String>,
}

/// A [`CatalogFile`] to write, borrowing what it holds.
#[derive(Serialize)]
struct CatalogFileRef<'a> {
    datasets: Vec<&'a DatasetDef>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    moved: BTreeMap<&'a String, &'a String>,
}

/// All datasets, by name.
pub struct Catalog {
    path: PathBuf,
    entries: Mutex<Entries>,
    moved: Mutex<BTreeMap<String, String>>,
    /// The changes since the last snapshot, and that snapshot's size.
    journal: Mutex<(Journal, u64)>,
}

/// The journal is folded into a new snapshot once it holds this much, or
/// as much as the snapshot if that is more.
const SNAPSHOT_AT: u64 = 1 << 20;

impl Catalog {
    /// Makes sure the data dir has its catalog before anything else runs:
    /// on the first start in a data dir, an empty `catalog.json` is written
    /// at once. A data dir vsamrd has run on before (`ran_before`: its lock
    /// file, which was there before this start) but without a catalog (the
    /// file deleted or lost) stops vsamrd: the backends may still hold
    /// datasets that nothing would serve.
    pub fn ensure_present(data_dir: &Path, ran_before: Option<&Path>) -> anyhow::Result<()> {
        let path = data_dir.join("catalog.json");
        if path.exists() {
            return Ok(());
        }
        if let Some(lock) = ran_before {
            anyhow::bail!(
                "catalog {} is missing, but vsamrd has run on this data dir before ({} is there): the backends may hold datasets that only the catalog describes. Restore catalog.json from a backup (with catalog.journal beside it); or, to start with an empty catalog deliberately (datasets then need DEFINE again, with their old attributes), remove catalog.journal and write one: echo '{{\"datasets\": []}}' > {}",
                path.display(),
                lock.display(),
                path.display()
            );
        }
        crate::durable::replace_file(&path, b"{\"datasets\": []}\n")?;
        Ok(())
    }

    /// Loads `catalog.json` from the data dir (if present) and the changes
    /// its journal holds, and adds the config's datasets, which win over
    /// saved ones of the same name.
    pub fn open(data_dir: &Path, configured: &[DatasetDef]) -> anyhow::Result<Self> {
        let path = data_dir.join("catalog.json");
        let mut entries = Entries::default();
        let mut moved = BTreeMap::new();
        let mut snapshot_bytes = 0;
        match std::fs::read(&path) {
            Ok(bytes) => {
                snapshot_bytes = bytes.len() as u64;
                let file: CatalogFile = serde_json::from_slice(&bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "catalog {} is damaged: {e}; restore it from a backup",
                        path.display()
                    )
                })?;
                for def in file.datasets {
                    entries.insert(def, Origin::Defined);
                }
                moved = file.moved;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot read catalog {}: {e}", path.display()),
        }
        let (journal, records) = Journal::open(&data_dir.join("catalog.journal"))?;
        for step in records.into_iter().flatten() {
            match step {
                Step::Put(def) => {
                    entries.insert(def, Origin::Defined);
                }
                Step::Remove(name) => {
                    entries.remove(&name);
                }
                Step::Moved { name, backend } => {
                    moved.insert(name, backend);
                }
            }
        }
        for def in configured {
            let mut def = def.clone();
            if let Some(backend) = moved.get(&def.name)
                && *backend != def.backend
            {
                tracing::warn!(
                    dataset = %def.name,
                    "the configuration puts the dataset on backend {}, but a migration moved it to {backend}: it is served from {backend}; update the configuration",
                    def.backend
                );
                def.backend = backend.clone();
            }
            entries.insert(def, Origin::Config);
        }
        Ok(Self {
            path,
            entries: Mutex::new(entries),
            moved: Mutex::new(moved),
            journal: Mutex::new((journal, snapshot_bytes)),
        })
    }

    /// One entry.
    pub fn get(&self, name: &str) -> Option<(DatasetDef, Origin)> {
        self.entries.lock_or_stop().get(name).cloned()
    }

    /// Every entry's name, in order: what a caller that needs few of the
    /// entries themselves walks, without copying each with its copybook.
    pub fn names(&self) -> Vec<String> {
        self.entries.lock_or_stop().keys().cloned().collect()
    }

    /// The entries whose relation names `name` (the alternate indexes
    /// over a base, the paths over an index), in name order.
    pub fn naming(&self, name: &str) -> Vec<DatasetDef> {
        self.entries.lock_or_stop().naming(name).cloned().collect()
    }

    /// The alternate indexes over `base`, and the paths over it or over
    /// them: what a DELETE of `base` deletes with it, and what the first
    /// OPEN of a base keeps in step. Only these are copied: the catalog is
    /// read in place (a copy of every entry, each with its copybook, was 20
    /// ms at 10,000 datasets, under the lock of every OPEN).
    pub fn related(&self, base: &str) -> (Vec<DatasetDef>, Vec<DatasetDef>) {
        let entries = self.entries.lock_or_stop();
        let is_path = |def: &&DatasetDef| matches!(def.relation, Some(Relation::Path { .. }));
        let indexes: Vec<DatasetDef> = entries
            .naming(base)
            .filter(|def| matches!(def.relation, Some(Relation::Aix { .. })))
            .cloned()
            .collect();
        let mut paths: Vec<DatasetDef> = std::iter::once(base)
            .chain(indexes.iter().map(|index| index.name.as_str()))
            .flat_map(|name| entries.naming(name).filter(is_path))
            .cloned()
            .collect();
        paths.sort_by(|a, b| a.name.cmp(&b.name));
        (indexes, paths)
    }

    /// Entries whose names match a pattern, in name order.
    pub fn list(&self, pattern: &str) -> Vec<DatasetDef> {
        let pattern = if pattern.is_empty() {
            "**".to_string()
        } else {
            pattern.to_ascii_uppercase()
        };
        self.entries
            .lock_or_stop()
            .values()
            .filter(|(def, _)| matches(&pattern, &def.name))
            .map(|(def, _)| def.clone())
            .collect()
    }

    /// Visits, in name order, the entries after `after` whose names match
    /// `pattern`, until `visit` breaks: one page of a listing, without
    /// cloning the catalog, and starting at the pattern's literal prefix.
    /// The catalog's lock is held while `visit` looks, but let go every
    /// [`VISITS_PER_LOCK`] names: a page whose matches are few among
    /// many names (`*.CUST`, or a user allowed few of them) does not stop
    /// every OPEN and DEFINE for the length of the whole catalog.
    pub fn visit_after(
        &self,
        pattern: &str,
        after: &str,
        visit: impl FnMut(&DatasetDef) -> ControlFlow<()>,
    ) {
        self.visit_after_in(pattern, after, VISITS_PER_LOCK, visit)
    }

    fn visit_after_in(
        &self,
        pattern: &str,
        after: &str,
        per_lock: usize,
        mut visit: impl FnMut(&DatasetDef) -> ControlFlow<()>,
    ) {
        let pattern = if pattern.is_empty() {
            "**".to_string()
        } else {
            pattern.to_ascii_uppercase()
        };
        let prefix = literal_prefix(&pattern);
        let mut start = if after >= prefix {
            Bound::Excluded(after.to_string())
        } else {
            Bound::Included(prefix.to_string())
        };
        loop {
            let entries = self.entries.lock_or_stop();
            let range =
                entries.range::<str, _>((start.as_ref().map(String::as_str), Bound::Unbounded));
            let mut last = None;
            for (name, (def, _)) in range.take(per_lock.max(1)) {
                if !name.starts_with(prefix) {
                    return;
                }
                if matches(&pattern, name) && visit(def).is_break() {
                    return;
                }
                last = Some(name);
            }
            // Where the next hold of the lock goes on; names the
            // catalog gained or lost meanwhile are seen as a page is.
            match last {
                Some(name) => start = Bound::Excluded(name.clone()),
                None => return,
            }
        }
    }

    /// How `configured` (the datasets of a reloaded configuration) differs
    /// from the configured entries now in the catalog.
    pub fn config_changes(&self, configured: &[DatasetDef]) -> ConfigChanges {
        let entries = self.entries.lock_or_stop();
        let moved = self.moved.lock_or_stop();
        let mut changes = ConfigChanges::default();
        for def in configured {
            let mut def = def.clone();
            if let Some(backend) = moved.get(&def.name) {
                def.backend = backend.clone();
            }
            let def = &def;
            match entries.get(&def.name) {
                None => changes.added.push(def.clone()),
                Some((same, _)) if same == def => {}
                Some(_) => changes.changed.push(def.name.clone()),
            }
        }
        changes.removed = entries
            .values()
            .filter(|(def, origin)| {
                *origin == Origin::Config && !configured.iter().any(|c| c.name == def.name)
            })
            .map(|(def, _)| def.name.clone())
            .collect();
        changes
    }

    /// Applies a reloaded configuration's datasets: `added` become
    /// configured entries, `removed` configured entries are dropped (their
    /// records stay in the backend, as after a restart without them).
    pub fn apply_config(&self, added: &[DatasetDef], removed: &[String]) {
        let mut entries = self.entries.lock_or_stop();
        let moved = self.moved.lock_or_stop();
        for def in added {
            let mut def = def.clone();
            if let Some(backend) = moved.get(&def.name) {
                def.backend = backend.clone();
            }
            entries.insert(def, Origin::Config);
        }
        for name in removed {
            if entries.get(name).is_some_and(|(_, o)| *o == Origin::Config) {
                entries.remove(name);
            }
        }
    }

    /// How many datasets each backend holds.
    pub fn count_by_backend(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (def, _) in self.entries.lock_or_stop().values() {
            *counts.entry(def.backend.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Records that a dataset's records are now on `backend` (a migration's
    /// cutover or rollback) and saves the catalog.
    pub fn set_backend(&self, name: &str, backend: &str) -> anyhow::Result<()> {
        let mut entries = self.entries.lock_or_stop();
        let mut moved = self.moved.lock_or_stop();
        let Some(previous) = entries.set_backend(name, backend) else {
            anyhow::bail!("{name} is not in the catalog");
        };
        let (def, origin) = &entries[name];
        let origin = *origin;
        let previous_move = moved.clone();
        let step = if origin == Origin::Config {
            moved.insert(name.to_string(), backend.to_string());
            Step::Moved {
                name: name.to_string(),
                backend: backend.to_string(),
            }
        } else {
            Step::Put(def.clone())
        };
        if let Err(error) = self.save_with(&entries, &moved, vec![step]) {
            entries.set_backend(name, &previous);
            *moved = previous_move;
            return Err(error);
        }
        Ok(())
    }

    /// Adds a defined dataset and saves the catalog; false if the name exists.
    pub fn insert(&self, def: DatasetDef) -> anyhow::Result<bool> {
        let mut entries = self.entries.lock_or_stop();
        if entries.contains_key(&def.name) {
            return Ok(false);
        }
        entries.insert(def.clone(), Origin::Defined);
        let name = def.name.clone();
        if let Err(e) = self.save(&entries, vec![Step::Put(def)]) {
            entries.remove(&name);
            return Err(e);
        }
        Ok(true)
    }

    /// Renames a defined entry in one save: `renamed` (the entry under its
    /// new name) replaces `old`, and `related` replace the entries of the
    /// same names (an index's base, a path's index, now the new name).
    /// False if the new name is taken or `old` is gone.
    pub fn rename(
        &self,
        old: &str,
        renamed: DatasetDef,
        related: Vec<DatasetDef>,
    ) -> anyhow::Result<bool> {
        let mut entries = self.entries.lock_or_stop();
        if entries.contains_key(&renamed.name) || !entries.contains_key(old) {
            return Ok(false);
        }
        // What the entries changed were, to put back if the save fails
        // (not a copy of the whole catalog).
        let mut before: Vec<(String, Option<(DatasetDef, Origin)>)> = Vec::new();
        before.push((old.to_string(), entries.remove(old)));
        let mut steps = vec![Step::Remove(old.to_string())];
        for def in related {
            let origin = entries.get(&def.name).map_or(Origin::Defined, |(_, o)| *o);
            if origin == Origin::Defined {
                steps.push(Step::Put(def.clone()));
            }
            before.push((def.name.clone(), entries.insert(def, origin)));
        }
        steps.push(Step::Put(renamed.clone()));
        before.push((
            renamed.name.clone(),
            entries.insert(renamed, Origin::Defined),
        ));
        if let Err(e) = self.save(&entries, steps) {
            for (name, entry) in before.into_iter().rev() {
                match entry {
                    Some((def, origin)) => entries.insert(def, origin),
                    None => entries.remove(&name),
                };
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Removes a defined dataset and saves the catalog.
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let mut entries = self.entries.lock_or_stop();
        if let Some(old) = entries.remove(name)
            && let Err(e) = self.save(&entries, vec![Step::Remove(name.to_string())])
        {
            entries.insert(old.0, old.1);
            return Err(e);
        }
        Ok(())
    }

    /// Saves a change made to `entries`, whose `steps` the journal takes.
    fn save(
        &self,
        entries: &BTreeMap<String, (DatasetDef, Origin)>,
        steps: Vec<Step>,
    ) -> anyhow::Result<()> {
        let moved = self.moved.lock_or_stop();
        self.save_with(entries, &moved, steps)
    }

    /// Appends `steps` to the journal, or, once it holds as much as the
    /// snapshot, writes a new snapshot of `entries` and `moved` (which
    /// hold them already) and empties the journal.
    fn save_with(
        &self,
        entries: &BTreeMap<String, (DatasetDef, Origin)>,
        moved: &BTreeMap<String, String>,
        steps: Vec<Step>,
    ) -> anyhow::Result<()> {
        let mut journal = self.journal.lock_or_stop();
        let (journal, snapshot_bytes) = &mut *journal;
        if journal.length() < SNAPSHOT_AT.max(*snapshot_bytes) {
            return journal.append(&steps);
        }
        *snapshot_bytes = self.write_snapshot(entries, moved)?;
        if let Err(error) = journal.clear() {
            // The snapshot holds its steps: replayed over it, they end in
            // the same catalog.
            tracing::warn!("{error:#}");
        }
        Ok(())
    }

    /// Writes the whole catalog to `catalog.json`; its size.
    fn write_snapshot(
        &self,
        entries: &BTreeMap<String, (DatasetDef, Origin)>,
        moved: &BTreeMap<String, String>,
    ) -> anyhow::Result<u64> {
        // Written from the entries in place: a copy of every entry with
        // its copybook would double the catalog's memory for the moment.
        let file = CatalogFileRef {
            moved: moved
                .iter()
                .filter(|(name, _)| {
                    entries
                        .get(*name)
                        .is_some_and(|(_, origin)| *origin == Origin::Config)
                })
                .collect(),
            datasets: entries
                .values()
                .filter(|(_, origin)| *origin == Origin::Defined)
                .map(|(def, _)| def)
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)?;
        crate::durable::replace_file(&self.path, &bytes)?;
        Ok(bytes.len() as u64)
    }
}

#[cfg(test)]
mod tests;
