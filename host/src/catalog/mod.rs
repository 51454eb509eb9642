//! The catalog: every dataset's definition, and which backend holds it.
//!
//! Datasets come from the configuration or from DEFINE requests; the latter
//! are saved under the data dir, so they survive restarts: each change
//! appended to `catalog.journal` (module `journal`), the whole catalog written
//! to `catalog.json` (a temporary file, synced and renamed) once the
//! journal is as large as it.

mod journal;

use journal::{Journal, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::copybook::Copybook;
use vsam_plugin_sdk::naming::check_dataset_name;
use vsam_protocol::{DatasetSpec, MAX_RECORD_LENGTH, Organization};

/// A dataset's definition, as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetDef {
    /// Name, upper case.
    pub name: String,
    /// KSDS, ESDS or RRDS.
    #[serde(with = "organization_serde")]
    pub organization: Organization,
    /// Prime key offset (KSDS).
    pub key_offset: u32,
    /// Prime key length (KSDS).
    pub key_length: u16,
    /// Smallest record length.
    pub min_record: u32,
    /// Largest record length (slot size for RRDS).
    pub max_record: u32,
    /// Code page of record text.
    #[serde(with = "codepage_serde")]
    pub codepage: CodePage,
    /// Backend holding the records.
    pub backend: String,
    /// Record layout: a COBOL copybook's text, checked at DEFINE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// For an alternate index or a path: what it relates to. `None` for a
    /// cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
}

/// How a catalog entry that is not a cluster relates to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Relation {
    /// An alternate index over `base`: its key is the field at the entry's
    /// `key_offset` and `key_length` in the base's records.
    Aix {
        /// The base cluster.
        base: String,
        /// Length of the base's keys (a KSDS's prime key; 8 for an ESDS's
        /// RBA): what an index entry points with.
        base_key_length: u16,
        /// UNIQUEKEY.
        unique: bool,
        /// UPGRADE: base writes keep the index in step.
        upgrade: bool,
    },
    /// A path: opens the base of `aix` by the alternate key.
    Path {
        /// The alternate index.
        aix: String,
    },
}

mod organization_serde {
    use super::Organization;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(o: &Organization, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(o.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Organization, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

mod codepage_serde {
    use super::CodePage;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(c: &CodePage, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.name())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CodePage, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl DatasetDef {
    /// Checks the attributes against each other.
    pub fn validate(&self) -> Result<(), String> {
        check_dataset_name(&self.name)?;
        if self.max_record == 0 || self.max_record > MAX_RECORD_LENGTH {
            return Err(format!(
                "{}: record size {} must be between 1 and {MAX_RECORD_LENGTH}",
                self.name, self.max_record
            ));
        }
        if self.min_record == 0 || self.min_record > self.max_record {
            return Err(format!(
                "{}: minimum record size {} must be between 1 and the record size {}",
                self.name, self.min_record, self.max_record
            ));
        }
        match self.organization {
            Organization::Ksds => {
                if self.key_length == 0 || self.key_length > 255 {
                    return Err(format!(
                        "{}: a KSDS needs a key length from 1 to 255 (KEYS(length offset)), got {}",
                        self.name, self.key_length
                    ));
                }
                if u64::from(self.key_offset) + u64::from(self.key_length)
                    > u64::from(self.max_record)
                {
                    return Err(format!(
                        "{}: the key (offset {}, length {}) ends past the record size {}",
                        self.name, self.key_offset, self.key_length, self.max_record
                    ));
                }
            }
            Organization::Esds | Organization::Rrds | Organization::Vrrds => {
                if self.key_length != 0 || self.key_offset != 0 {
                    return Err(format!(
                        "{}: an {} has no key field: leave key offset and length out",
                        self.name,
                        self.organization.name().to_uppercase()
                    ));
                }
                if self.organization == Organization::Rrds && self.min_record != self.max_record {
                    return Err(format!(
                        "{}: an RRDS has fixed-length slots: the minimum record size must equal the record size {}",
                        self.name, self.max_record
                    ));
                }
            }
        }
        if let Some(layout) = &self.layout {
            self.check_layout(layout)?;
        }
        Ok(())
    }

    /// A layout must parse and describe records that fit the definition;
    /// a KSDS key must fall on the layout's bytes.
    fn check_layout(&self, layout: &str) -> Result<(), String> {
        let copybook = Copybook::parse(layout).map_err(|e| format!("{}: layout {e}", self.name))?;
        let size = copybook.record().map_or(0, |r| r.size);
        if size > self.max_record as usize {
            return Err(format!(
                "{}: the layout's record is {size} bytes, more than the record size {}",
                self.name, self.max_record
            ));
        }
        if (size as u64) < u64::from(self.key_offset) + u64::from(self.key_length) {
            return Err(format!(
                "{}: the layout's record ({size} bytes) ends before the key (offset {}, length {})",
                self.name, self.key_offset, self.key_length
            ));
        }
        Ok(())
    }

    /// From a DEFINE request (backend already chosen).
    pub fn from_spec(spec: &DatasetSpec, backend: String) -> Result<Self, String> {
        let codepage = if spec.codepage.is_empty() {
            Ok(CodePage::Cp037)
        } else {
            spec.codepage.parse()
        }?;
        let min_record = match (spec.min_record, spec.organization) {
            (0, Organization::Rrds) => spec.max_record,
            (0, _) => 1,
            (n, _) => n,
        };
        let def = Self {
            name: spec.name.to_ascii_uppercase(),
            organization: spec.organization,
            key_offset: spec.key_offset,
            key_length: spec.key_length,
            min_record,
            max_record: spec.max_record,
            codepage,
            backend,
            layout: (!spec.layout.is_empty()).then(|| spec.layout.clone()),
            relation: None,
        };
        def.validate()?;
        Ok(def)
    }

    /// As a protocol catalog entry.
    pub fn to_spec(&self) -> DatasetSpec {
        DatasetSpec {
            name: self.name.clone(),
            organization: self.organization,
            key_offset: self.key_offset,
            key_length: self.key_length,
            min_record: self.min_record,
            max_record: self.max_record,
            codepage: self.codepage.name().to_string(),
            backend: self.backend.clone(),
            layout: self.layout.clone().unwrap_or_default(),
        }
    }

    /// As a LISTCAT entry: the protocol entry and what it is.
    pub fn to_entry(&self) -> vsam_protocol::CatalogEntry {
        use vsam_protocol::EntryType;
        vsam_protocol::CatalogEntry {
            spec: self.to_spec(),
            entry_type: match &self.relation {
                None => EntryType::Cluster,
                Some(Relation::Aix {
                    base,
                    unique,
                    upgrade,
                    ..
                }) => EntryType::Aix {
                    base: base.clone(),
                    unique: *unique,
                    upgrade: *upgrade,
                },
                Some(Relation::Path { aix }) => EntryType::Path { aix: aix.clone() },
            },
        }
    }

    /// As the plugin contract's dataset record: for an alternate index,
    /// the shape of its own records (the alternate key, a sequence number
    /// when keys repeat, then the base key the entry points to).
    pub fn to_plugin(&self) -> vsam_plugin_sdk::Dataset {
        if let Some(Relation::Aix {
            base_key_length,
            unique,
            ..
        }) = &self.relation
        {
            let key_length = u32::from(self.key_length) + if *unique { 0 } else { 8 };
            let record = key_length + u32::from(*base_key_length);
            return vsam_plugin_sdk::Dataset {
                name: self.name.clone(),
                organization: vsam_plugin_sdk::Organization::Ksds,
                key_offset: 0,
                key_length,
                max_record_length: record,
                min_record_length: record,
                codepage: self.codepage.name().to_string(),
            };
        }
        vsam_plugin_sdk::Dataset {
            name: self.name.clone(),
            organization: match self.organization {
                Organization::Ksds => vsam_plugin_sdk::Organization::Ksds,
                Organization::Esds => vsam_plugin_sdk::Organization::Esds,
                // A VRRDS is stored as relative slots whose records vary
                // in length: plugins keep every record's bytes as given.
                Organization::Rrds | Organization::Vrrds => vsam_plugin_sdk::Organization::Rrds,
            },
            key_offset: self.key_offset,
            key_length: u32::from(self.key_length),
            max_record_length: self.max_record,
            min_record_length: self.min_record,
            codepage: self.codepage.name().to_string(),
        }
    }
}

/// True if `name` matches `pattern`: `*` is any run of characters within one
/// qualifier, `**` any run including dots, `%` exactly one character.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| go(rest, &n[i..])),
            [b'*', rest @ ..] => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'.')
                .any(|i| go(rest, &n[i..])),
            [b'%', rest @ ..] => n.first().is_some_and(|&c| c != b'.') && go(rest, &n[1..]),
            [c, rest @ ..] => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The backend a new dataset goes to: the first matching rule, else the default.
pub fn route(name: &str, rules: &[(String, String)], default: Option<&str>) -> Option<String> {
    rules
        .iter()
        .find(|(pattern, _)| matches(pattern, name))
        .map(|(_, backend)| backend.clone())
        .or_else(|| default.map(str::to_string))
}

/// Where a catalog entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[[datasets]]` in the config file.
    Config,
    /// A DEFINE request.
    Defined,
}

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

#[derive(Serialize, Deserialize, Default)]
struct CatalogFile {
    datasets: Vec<DatasetDef>,
    /// Configured datasets that a migration moved to another backend than
    /// the configuration names: name -> backend.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    moved: BTreeMap<String, String>,
}

/// All datasets, by name.
pub struct Catalog {
    path: PathBuf,
    entries: Mutex<BTreeMap<String, (DatasetDef, Origin)>>,
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
        let mut entries = BTreeMap::new();
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
                    entries.insert(def.name.clone(), (def, Origin::Defined));
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
                    entries.insert(def.name.clone(), (def, Origin::Defined));
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
            entries.insert(def.name.clone(), (def, Origin::Config));
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
        self.entries.lock().unwrap().get(name).cloned()
    }

    /// The alternate indexes over `base`, and the paths over it or over
    /// them: what a DELETE of `base` deletes with it.
    pub fn related(&self, base: &str) -> (Vec<DatasetDef>, Vec<DatasetDef>) {
        let all = self.list("**");
        let indexes: Vec<DatasetDef> = all
            .iter()
            .filter(|def| matches!(&def.relation, Some(Relation::Aix { base: b, .. }) if b == base))
            .cloned()
            .collect();
        let paths = all
            .into_iter()
            .filter(|def| {
                matches!(&def.relation, Some(Relation::Path { aix }) if *aix == base || indexes.iter().any(|i| i.name == *aix))
            })
            .collect();
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
            .lock()
            .unwrap()
            .values()
            .filter(|(def, _)| matches(&pattern, &def.name))
            .map(|(def, _)| def.clone())
            .collect()
    }

    /// How `configured` (the datasets of a reloaded configuration) differs
    /// from the configured entries now in the catalog.
    pub fn config_changes(&self, configured: &[DatasetDef]) -> ConfigChanges {
        let entries = self.entries.lock().unwrap();
        let moved = self.moved.lock().unwrap();
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
        let mut entries = self.entries.lock().unwrap();
        let moved = self.moved.lock().unwrap();
        for def in added {
            let mut def = def.clone();
            if let Some(backend) = moved.get(&def.name) {
                def.backend = backend.clone();
            }
            entries.insert(def.name.clone(), (def, Origin::Config));
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
        for (def, _) in self.entries.lock().unwrap().values() {
            *counts.entry(def.backend.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Records that a dataset's records are now on `backend` (a migration's
    /// cutover or rollback) and saves the catalog.
    pub fn set_backend(&self, name: &str, backend: &str) -> anyhow::Result<()> {
        let mut entries = self.entries.lock().unwrap();
        let mut moved = self.moved.lock().unwrap();
        let Some((def, origin)) = entries.get_mut(name) else {
            anyhow::bail!("{name} is not in the catalog");
        };
        let previous = std::mem::replace(&mut def.backend, backend.to_string());
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
            if let Some((def, _)) = entries.get_mut(name) {
                def.backend = previous;
            }
            *moved = previous_move;
            return Err(error);
        }
        Ok(())
    }

    /// Adds a defined dataset and saves the catalog; false if the name exists.
    pub fn insert(&self, def: DatasetDef) -> anyhow::Result<bool> {
        let mut entries = self.entries.lock().unwrap();
        if entries.contains_key(&def.name) {
            return Ok(false);
        }
        entries.insert(def.name.clone(), (def.clone(), Origin::Defined));
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
        let mut entries = self.entries.lock().unwrap();
        if entries.contains_key(&renamed.name) || !entries.contains_key(old) {
            return Ok(false);
        }
        let before = entries.clone();
        entries.remove(old);
        let mut steps = vec![Step::Remove(old.to_string())];
        for def in related {
            let origin = entries.get(&def.name).map_or(Origin::Defined, |(_, o)| *o);
            if origin == Origin::Defined {
                steps.push(Step::Put(def.clone()));
            }
            entries.insert(def.name.clone(), (def, origin));
        }
        steps.push(Step::Put(renamed.clone()));
        entries.insert(renamed.name.clone(), (renamed, Origin::Defined));
        if let Err(e) = self.save(&entries, steps) {
            *entries = before;
            return Err(e);
        }
        Ok(true)
    }

    /// Removes a defined dataset and saves the catalog.
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let mut entries = self.entries.lock().unwrap();
        if let Some(old) = entries.remove(name)
            && let Err(e) = self.save(&entries, vec![Step::Remove(name.to_string())])
        {
            entries.insert(name.to_string(), old);
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
        let moved = self.moved.lock().unwrap();
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
        let mut journal = self.journal.lock().unwrap();
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
        let file = CatalogFile {
            moved: moved
                .iter()
                .filter(|(name, _)| {
                    entries
                        .get(*name)
                        .is_some_and(|(_, origin)| *origin == Origin::Config)
                })
                .map(|(name, backend)| (name.clone(), backend.clone()))
                .collect(),
            datasets: entries
                .values()
                .filter(|(_, origin)| *origin == Origin::Defined)
                .map(|(def, _)| def.clone())
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file)?;
        crate::durable::replace_file(&self.path, &bytes)?;
        Ok(bytes.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_is_made_at_the_first_start_and_its_loss_noticed_later() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("vsamrd.lock");
        // Other files of the operator's are no sign of earlier use.
        std::fs::write(dir.path().join("client.token"), "x").unwrap();
        Catalog::ensure_present(dir.path(), None).unwrap();
        assert!(Catalog::open(dir.path(), &[]).unwrap().list("").is_empty());
        std::fs::write(&lock, "").unwrap();
        Catalog::ensure_present(dir.path(), Some(&lock)).unwrap();
        std::fs::remove_file(dir.path().join("catalog.json")).unwrap();
        let refused = Catalog::ensure_present(dir.path(), Some(&lock))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("is missing, but vsamrd has run on this data dir before"),
            "{refused}"
        );
        assert!(!dir.path().join("catalog.json").exists());
    }

    #[test]
    fn patterns_follow_idcams_rules() {
        assert!(matches("PROD.CUST.*", "PROD.CUST.MASTER"));
        assert!(!matches("PROD.CUST.*", "PROD.CUST.A.B"));
        assert!(matches("PROD.**", "PROD.CUST.A.B"));
        assert!(matches("**", "A"));
        assert!(matches("P%OD.X", "PROD.X"));
        assert!(!matches("P%OD.X", "PRROD.X"));
        assert!(matches("*.CUST", "PROD.CUST"));
        assert!(!matches("*", "A.B"));
    }

    #[test]
    fn routing_takes_the_first_match_then_the_default() {
        let rules = vec![
            ("PROD.**".to_string(), "pg".to_string()),
            ("**".to_string(), "csv".to_string()),
        ];
        assert_eq!(route("PROD.A", &rules, None).as_deref(), Some("pg"));
        assert_eq!(route("TEST.A", &rules, None).as_deref(), Some("csv"));
        assert_eq!(route("X", &[], Some("mem")).as_deref(), Some("mem"));
        assert_eq!(route("X", &[], None), None);
    }

    fn ksds(name: &str) -> DatasetDef {
        DatasetDef {
            name: name.into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: 8,
            min_record: 1,
            max_record: 80,
            codepage: CodePage::Cp037,
            backend: "csv".into(),
            layout: None,
            relation: None,
        }
    }

    #[test]
    fn layouts_are_checked_against_the_definition() {
        let layout = "01 R.\n 05 K PIC X(8).\n 05 AMT PIC S9(5) COMP-3.\n";
        let def = DatasetDef {
            layout: Some(layout.into()),
            ..ksds("A")
        };
        assert!(def.validate().is_ok());
        let long = DatasetDef {
            layout: Some("01 R.\n 05 K PIC X(81).\n".into()),
            ..ksds("A")
        };
        assert!(
            long.validate()
                .unwrap_err()
                .contains("81 bytes, more than the record size 80")
        );
        let short = DatasetDef {
            layout: Some("01 R.\n 05 K PIC X(4).\n".into()),
            ..ksds("A")
        };
        assert!(
            short
                .validate()
                .unwrap_err()
                .contains("ends before the key")
        );
        let bad = DatasetDef {
            layout: Some("01 R.\n 05 K PIC X(8) GLOBAL.\n".into()),
            ..ksds("A")
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("layout copybook line 2: clause GLOBAL")
        );
    }

    #[test]
    fn attributes_are_checked_together() {
        assert!(ksds("A").validate().is_ok());
        assert!(
            DatasetDef {
                key_offset: 75,
                ..ksds("A")
            }
            .validate()
            .unwrap_err()
            .contains("ends past")
        );
        assert!(
            DatasetDef {
                key_length: 0,
                ..ksds("A")
            }
            .validate()
            .is_err()
        );
        let rrds = DatasetDef {
            organization: Organization::Rrds,
            key_length: 0,
            ..ksds("A")
        };
        assert!(rrds.validate().unwrap_err().contains("fixed-length"));
        assert!(
            DatasetDef {
                min_record: 80,
                ..rrds
            }
            .validate()
            .is_ok()
        );
    }

    /// The data dir's catalog files: the snapshot's size and the
    /// journal's.
    fn sizes(dir: &Path) -> (u64, u64) {
        let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        (size("catalog.json"), size("catalog.journal"))
    }

    #[test]
    fn changes_go_to_the_journal_and_a_snapshot_is_written_once_it_is_as_large() {
        let dir = tempfile::tempdir().unwrap();
        Catalog::ensure_present(dir.path(), None).unwrap();
        let catalog = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
        // A DEFINE appends its line; the snapshot is not written.
        let (snapshot, _) = sizes(dir.path());
        assert!(catalog.insert(ksds("RUN.A0000")).unwrap());
        let (unchanged, journal) = sizes(dir.path());
        assert_eq!(unchanged, snapshot);
        assert!(
            journal > 0 && journal < 1000,
            "{journal} bytes for one DEFINE"
        );
        // Defines, removes, a rename and moves, past a snapshot.
        for n in 1..8000 {
            assert!(catalog.insert(ksds(&format!("RUN.A{n:04}"))).unwrap());
        }
        for n in (0..8000).step_by(7) {
            catalog.remove(&format!("RUN.A{n:04}")).unwrap();
        }
        assert!(
            catalog
                .rename("RUN.A0001", ksds("RUN.RENAMED"), vec![])
                .unwrap()
        );
        catalog.set_backend("RUN.A0002", "sqlite").unwrap();
        catalog.set_backend("CONF.DS", "sqlite").unwrap();
        let (snapshot, journal) = sizes(dir.path());
        assert!(
            snapshot > 500_000,
            "no snapshot was written: {snapshot} bytes"
        );
        assert!(journal < 1 << 20, "the journal kept {journal} bytes");
        let names = |catalog: &Catalog| -> Vec<(String, String)> {
            catalog
                .list("**")
                .into_iter()
                .map(|def| (def.name, def.backend))
                .collect()
        };
        let reopened = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
        assert_eq!(names(&reopened), names(&catalog));
        assert_eq!(reopened.get("RUN.A0002").unwrap().0.backend, "sqlite");
        assert_eq!(reopened.get("CONF.DS").unwrap().0.backend, "sqlite");
        assert!(reopened.get("RUN.A0001").is_none() && reopened.get("RUN.A0007").is_none());
        // A stop between a snapshot and emptying the journal: its steps,
        // replayed over the snapshot that holds them, change nothing.
        let journal = std::fs::read(dir.path().join("catalog.journal")).unwrap();
        drop(reopened);
        let again = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
        again
            .write_snapshot(&again.entries.lock().unwrap(), &again.moved.lock().unwrap())
            .unwrap();
        std::fs::write(dir.path().join("catalog.journal"), &journal).unwrap();
        let replayed = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
        assert_eq!(names(&replayed), names(&catalog));
    }

    #[test]
    fn a_change_a_stop_left_half_written_is_cut_off_and_a_damaged_one_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path(), &[]).unwrap();
        assert!(catalog.insert(ksds("RUN.ONE")).unwrap());
        drop(catalog);
        let path = dir.path().join("catalog.journal");
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"[{\"put\":{\"name\":\"RUN.TWO\"");
        std::fs::write(&path, &torn).unwrap();
        let reopened = Catalog::open(dir.path(), &[]).unwrap();
        assert!(reopened.get("RUN.ONE").is_some());
        assert!(reopened.get("RUN.TWO").is_none());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            whole,
            "the torn change is cut off"
        );
        assert!(reopened.insert(ksds("RUN.THREE")).unwrap());
        drop(reopened);
        assert!(
            Catalog::open(dir.path(), &[])
                .unwrap()
                .get("RUN.THREE")
                .is_some()
        );
        // A line damaged before others: the catalog does not open.
        let mut damaged = b"[{\"put\":0}]\n".to_vec();
        damaged.extend_from_slice(&std::fs::read(&path).unwrap());
        std::fs::write(&path, &damaged).unwrap();
        let error = Catalog::open(dir.path(), &[]).err().unwrap().to_string();
        assert!(
            error.contains("catalog journal") && error.contains("damaged at line 1"),
            "{error}"
        );
    }

    #[test]
    fn defined_datasets_persist_and_config_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path(), &[ksds("CONF.DS")]).unwrap();
        assert!(catalog.insert(ksds("RUN.DS")).unwrap());
        assert!(!catalog.insert(ksds("RUN.DS")).unwrap());
        let reopened = Catalog::open(dir.path(), &[]).unwrap();
        assert_eq!(reopened.get("RUN.DS").unwrap().1, Origin::Defined);
        assert!(reopened.get("CONF.DS").is_none());
        reopened.remove("RUN.DS").unwrap();
        let with_layout = DatasetDef {
            layout: Some("01 R.\n 05 K PIC X(8).\n".into()),
            ..ksds("LAY.DS")
        };
        assert!(reopened.insert(with_layout.clone()).unwrap());
        let again = Catalog::open(dir.path(), &[]).unwrap();
        assert_eq!(
            again.get("LAY.DS").unwrap().0,
            with_layout,
            "the layout survives a restart"
        );
        again.remove("LAY.DS").unwrap();
        assert!(
            Catalog::open(dir.path(), &[])
                .unwrap()
                .list("**")
                .is_empty()
        );
    }
}
