//! The catalog's entries by name, with who names whom beside them: the
//! first OPEN of a base looks for its alternate indexes, and a DELETE for
//! what goes with it, in a catalog that may hold tens of thousands of
//! datasets. Looking through every entry for the few that name the base
//! (each with its copybook copied, as it once was) cost 20 ms at 10,000
//! datasets, under the lock every OPEN takes; the index answers at once.

use super::{DatasetDef, Origin, Relation};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

/// The entries, and for each name the entries whose relation names it (an
/// alternate index's base, a path's index). Read through [`Deref`] as the
/// map by name; changed only by the methods here, which keep both.
#[derive(Clone, Default)]
pub(super) struct Entries {
    by_name: BTreeMap<String, (DatasetDef, Origin)>,
    naming: BTreeMap<String, BTreeSet<String>>,
}

impl Deref for Entries {
    type Target = BTreeMap<String, (DatasetDef, Origin)>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

/// The entry an entry's relation names, if it has one.
fn named_by(def: &DatasetDef) -> Option<&str> {
    match &def.relation {
        Some(Relation::Aix { base, .. }) => Some(base),
        Some(Relation::Path { aix }) => Some(aix),
        None => None,
    }
}

impl Entries {
    /// Adds or replaces the entry of `def`'s name; the one it replaced.
    pub fn insert(&mut self, def: DatasetDef, origin: Origin) -> Option<(DatasetDef, Origin)> {
        let name = def.name.clone();
        if let Some(target) = named_by(&def) {
            self.naming
                .entry(target.to_string())
                .or_default()
                .insert(name.clone());
        }
        let replaced = self.by_name.insert(name, (def, origin));
        if let Some((old, _)) = &replaced {
            let still = self
                .by_name
                .get(&old.name)
                .and_then(|(def, _)| named_by(def));
            if let Some(target) = named_by(old).filter(|target| Some(*target) != still) {
                self.forget(target, &old.name);
            }
        }
        replaced
    }

    /// Removes the entry of `name`; the entry removed.
    pub fn remove(&mut self, name: &str) -> Option<(DatasetDef, Origin)> {
        let removed = self.by_name.remove(name)?;
        if let Some(target) = named_by(&removed.0) {
            self.forget(target, name);
        }
        Some(removed)
    }

    /// Moves the entry of `name` to `backend`; the backend it was on.
    pub fn set_backend(&mut self, name: &str, backend: &str) -> Option<String> {
        let (def, _) = self.by_name.get_mut(name)?;
        Some(std::mem::replace(&mut def.backend, backend.to_string()))
    }

    /// The entries whose relation names `name`, in name order.
    pub fn naming(&self, name: &str) -> impl Iterator<Item = &DatasetDef> {
        self.naming
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|naming| self.by_name.get(naming).map(|(def, _)| def))
    }

    fn forget(&mut self, target: &str, name: &str) {
        if let Some(names) = self.naming.get_mut(target) {
            names.remove(name);
            if names.is_empty() {
                self.naming.remove(target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsam_plugin_sdk::codepage::CodePage;
    use vsam_protocol::Organization;

    fn def(name: &str, relation: Option<Relation>) -> DatasetDef {
        DatasetDef {
            name: name.into(),
            organization: Organization::Ksds,
            key_offset: 0,
            key_length: 4,
            min_record: 1,
            max_record: 20,
            codepage: CodePage::Ascii,
            backend: "b".into(),
            layout: None,
            relation,
        }
    }

    fn aix(name: &str, base: &str) -> DatasetDef {
        let relation = Relation::Aix {
            base: base.into(),
            base_key_length: 4,
            unique: false,
            upgrade: true,
        };
        def(name, Some(relation))
    }

    fn path(name: &str, aix: &str) -> DatasetDef {
        def(name, Some(Relation::Path { aix: aix.into() }))
    }

    /// What the index answers, against a look through every entry.
    fn agrees(entries: &Entries) {
        for name in entries.keys().chain(["NONE".to_string()].iter()) {
            let indexed: Vec<&str> = entries.naming(name).map(|d| d.name.as_str()).collect();
            let looked: Vec<&str> = entries
                .values()
                .filter(|(d, _)| named_by(d) == Some(name.as_str()))
                .map(|(d, _)| d.name.as_str())
                .collect();
            assert_eq!(indexed, looked, "{name}");
        }
    }

    #[test]
    fn the_index_follows_every_change() {
        let mut entries = Entries::default();
        entries.insert(def("BASE", None), Origin::Defined);
        entries.insert(def("OTHER", None), Origin::Config);
        entries.insert(aix("BASE.IX2", "BASE"), Origin::Defined);
        entries.insert(aix("BASE.IX1", "BASE"), Origin::Defined);
        entries.insert(path("BASE.P", "BASE.IX1"), Origin::Defined);
        agrees(&entries);
        assert_eq!(
            entries.naming("BASE").map(|d| &d.name).collect::<Vec<_>>(),
            ["BASE.IX1", "BASE.IX2"]
        );
        // Replaced by an entry naming another, then nothing.
        entries.insert(aix("BASE.IX2", "OTHER"), Origin::Defined);
        agrees(&entries);
        entries.insert(def("BASE.IX2", None), Origin::Defined);
        agrees(&entries);
        // Replaced by the same relation: still named once.
        entries.insert(path("BASE.P", "BASE.IX1"), Origin::Config);
        agrees(&entries);
        assert_eq!(entries.naming("BASE.IX1").count(), 1);
        entries.remove("BASE.IX1");
        agrees(&entries);
        // The path names an entry gone: nothing names BASE.IX1's name now
        // but the path, as in the map.
        assert_eq!(entries.naming("BASE").count(), 0);
        assert!(entries.remove("BASE.IX1").is_none());
        assert_eq!(entries.set_backend("OTHER", "c").as_deref(), Some("b"));
        assert_eq!(entries["OTHER"].0.backend, "c");
        agrees(&entries);
        let copy = entries.clone();
        entries.remove("BASE.P");
        agrees(&entries);
        agrees(&copy);
        assert_eq!(copy.naming("BASE.IX1").count(), 1);
    }

    proptest::proptest! {
        /// Any sequence of inserts and removes over a few names, each
        /// entry naming another or none: the index agrees with a look
        /// through every entry after each step.
        #[test]
        fn the_index_agrees_with_a_look_through_every_entry(
            steps in proptest::collection::vec((0..6usize, 0..8usize, proptest::bool::ANY), 0..40)
        ) {
            let names = ["A", "B", "C", "D", "E", "F"];
            let mut entries = Entries::default();
            for (name, target, is_aix) in steps {
                let name = names[name];
                match (names.get(target), is_aix) {
                    (None, _) if target == 6 => {
                        entries.remove(name);
                    }
                    (None, _) => {
                        entries.insert(def(name, None), Origin::Defined);
                    }
                    (Some(target), true) => {
                        entries.insert(aix(name, target), Origin::Defined);
                    }
                    (Some(target), false) => {
                        entries.insert(path(name, target), Origin::Config);
                    }
                }
                agrees(&entries);
            }
        }
    }
}
