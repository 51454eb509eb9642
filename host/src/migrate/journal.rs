//! The migrations journal: which datasets are between two backends, and in
//! which phase, saved in `migrations.json` under the data dir (replaced
//! whole, see [`crate::durable`]) so a restart finishes the job.

use crate::after_panic::LockOrStop;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a migration is, as far as a restart must know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Copying or verifying: the old backend serves and is the truth. A
    /// restart copies again from the start.
    Copying,
    /// Cut over: the new backend serves, the old one follows.
    CutOver,
    /// A rollback after the cutover has begun: a restart completes it.
    RollingBack,
    /// No migration: backend `to` still holds a copy of the dataset, which
    /// lives on `from`, that could not be removed (the backend was down).
    /// A restart, or the next migration to `to`, removes it.
    Leftover,
}

/// One journal entry: a dataset's migration, or a copy left behind. A
/// dataset has at most one migration and one leftover per backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The dataset.
    pub dataset: String,
    /// The backend it comes from.
    pub from: String,
    /// The backend it goes to.
    pub to: String,
    /// Where it is.
    pub stage: Stage,
}

impl Entry {
    /// Whether `other` replaces this entry: the same dataset's migration,
    /// or its leftover on the same backend.
    fn same_slot(&self, other: &Entry) -> bool {
        let leftover = |e: &Entry| e.stage == Stage::Leftover;
        self.dataset == other.dataset
            && leftover(self) == leftover(other)
            && (!leftover(self) || self.to == other.to)
    }
}

#[derive(Serialize, Deserialize, Default)]
struct JournalFile {
    migrations: Vec<Entry>,
}

/// The journal file and its entries.
pub struct Journal {
    path: PathBuf,
    entries: Mutex<Vec<Entry>>,
}

impl Journal {
    /// Reads the journal in `data_dir` (empty if there is none).
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("migrations.json");
        let entries = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<JournalFile>(&bytes)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "migrations journal {} is damaged: {e}; restore it from a backup",
                            path.display()
                        )
                    })?
                    .migrations
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        Ok(Self {
            path,
            entries: Mutex::new(entries),
        })
    }

    /// Every entry.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock_or_stop().clone()
    }

    /// Records (or moves) a dataset's migration, or a leftover, durably.
    pub fn set(&self, entry: Entry) -> anyhow::Result<()> {
        let mut entries = self.entries.lock_or_stop();
        let mut next = entries.clone();
        next.retain(|e| !e.same_slot(&entry));
        next.push(entry);
        self.save(&next)?;
        *entries = next;
        Ok(())
    }

    /// Forgets a dataset's migration, durably.
    pub fn remove(&self, dataset: &str) -> anyhow::Result<()> {
        self.remove_where(|e| e.dataset == dataset && e.stage != Stage::Leftover)
    }

    /// Ends a dataset's migration and records the copy it leaves to
    /// remove, in one durable write: a crash before the copy is removed
    /// leaves it journaled, never forgotten.
    pub fn finish(&self, dataset: &str, leftover: Entry) -> anyhow::Result<()> {
        let mut entries = self.entries.lock_or_stop();
        let mut next = entries.clone();
        let migration = |e: &Entry| e.dataset == dataset && e.stage != Stage::Leftover;
        next.retain(|e| !(migration(e) || e.same_slot(&leftover)));
        next.push(leftover);
        self.save(&next)?;
        *entries = next;
        Ok(())
    }

    /// Forgets the copy of `dataset` left on `backend`, durably.
    pub fn remove_leftover(&self, dataset: &str, backend: &str) -> anyhow::Result<()> {
        self.remove_where(|e| e.dataset == dataset && e.stage == Stage::Leftover && e.to == backend)
    }

    fn remove_where(&self, forget: impl Fn(&Entry) -> bool) -> anyhow::Result<()> {
        let mut entries = self.entries.lock_or_stop();
        let mut next = entries.clone();
        next.retain(|e| !forget(e));
        self.save(&next)?;
        *entries = next;
        Ok(())
    }

    fn save(&self, entries: &[Entry]) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(&JournalFile {
            migrations: entries.to_vec(),
        })?;
        crate::durable::replace_file(&self.path, &bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        assert!(journal.entries().is_empty());
        let entry = Entry {
            dataset: "A.B".into(),
            from: "csv".into(),
            to: "sqlite".into(),
            stage: Stage::Copying,
        };
        journal.set(entry.clone()).unwrap();
        journal
            .set(Entry {
                stage: Stage::CutOver,
                ..entry.clone()
            })
            .unwrap();
        let reopened = Journal::open(dir.path()).unwrap().entries();
        assert_eq!(reopened.len(), 1);
        assert_eq!(reopened[0].stage, Stage::CutOver);
        let leftover = Entry {
            stage: Stage::Leftover,
            ..entry.clone()
        };
        journal.set(leftover.clone()).unwrap();
        assert_eq!(Journal::open(dir.path()).unwrap().entries().len(), 2);
        journal.remove("A.B").unwrap();
        assert_eq!(
            Journal::open(dir.path()).unwrap().entries(),
            std::slice::from_ref(&leftover)
        );
        journal.remove_leftover("A.B", "csv").unwrap();
        assert_eq!(Journal::open(dir.path()).unwrap().entries().len(), 1);
        journal.remove_leftover("A.B", "sqlite").unwrap();
        assert!(Journal::open(dir.path()).unwrap().entries().is_empty());
        journal.set(entry.clone()).unwrap();
        journal.finish("A.B", leftover.clone()).unwrap();
        assert_eq!(Journal::open(dir.path()).unwrap().entries(), [leftover]);
        std::fs::write(dir.path().join("migrations.json"), "{").unwrap();
        assert!(
            Journal::open(dir.path())
                .err()
                .unwrap()
                .to_string()
                .contains("damaged")
        );
    }
}
