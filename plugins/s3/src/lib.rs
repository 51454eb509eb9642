//! The object-store backend: VSAM datasets in an S3-compatible bucket (or
//! a local directory standing in for one), readable by ordinary S3 tools.
//!
//! A dataset is a definition object and control intervals: objects holding
//! the records of one key range each, as RECFM=VB records in key order (see
//! [`ci`] and [`layout`]). A GET reads one interval, a browse a few at a
//! time, a write rewrites an interval with a conditional write at the
//! host's group sync (see [`table`]), under an undo record when it
//! writes several, so that a unit of work is stored whole (see
//! [`intent`]).
//!
//! Parameters (`[backends.NAME.params]`):
//! - `prefix`: where in the bucket the datasets go (default: the top);
//! - `ci_size`: bytes at which an interval is full (default 32768);
//! - `cache`: unchanged intervals kept in memory per dataset for browsing
//!   (default 256);
//! - `cache_mb`: the most bytes of them per dataset (default 64), so that
//!   large intervals keep fewer.
#![warn(missing_docs)]

pub mod ci;
pub mod intent;
pub mod layout;
pub mod table;

use intent::{Intent, Whose};
use table::{Definition, Table, Tuning, store_error};
use vsam_plugin_sdk::cache::DatasetCache;
use vsam_plugin_sdk::instance;
use vsam_plugin_sdk::objects::{self, ObjectError};
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Start, StoreError, StoreResult, export_backend,
};

/// The most datasets an instance keeps open (their definition and the
/// bounds of their intervals, about 1 KB for a small one); past it, the
/// one used longest ago with nothing waiting for a sync is let go and read
/// from the bucket again at its next use. Kept for every dataset ever used, a batch
/// that used datasets one after another grew the instance until its
/// memory limit failed a call.
const MAX_TABLES: usize = 1024;

/// The object store: the bucket's prefix and the datasets opened lately.
pub struct ObjectBackend {
    prefix: String,
    tuning: Tuning,
    /// At most [`MAX_TABLES`], unless more hold writes not synced yet.
    tables: DatasetCache<Table>,
    /// This instance looked for an undo record an earlier instance of this
    /// start of vsamrd left (the writer before its first call, see
    /// `carry_out_leftover`; any other before its first sync, see `commit`).
    checked_leftover: bool,
    /// This instance runs its backend's writes (see
    /// [`vsam_plugin_sdk::instance::is_writer`]).
    writer: bool,
}

impl ObjectBackend {
    /// Stores what changed in the tables (all, or the one named `only`):
    /// one object as one conditional write; several under an undo record,
    /// so that they are stored all or none (see [`intent`]).
    fn commit(&mut self, only: Option<&str>) -> StoreResult<()> {
        let mut tables: Vec<&mut Table> = self
            .tables
            .iter_mut()
            .filter(|(name, _)| only.is_none_or(|only| only == *name))
            .map(|(_, table)| table)
            .collect();
        let changed: usize = tables.iter().map(|table| table.changed()).sum();
        if changed > 0 && !self.checked_leftover {
            // (An instance the host does not call the writer.) An earlier
            // instance of this start whose sync failed may have left its
            // undo record (its objects written, the record not deleted):
            // it is carried out before anything is written on top of them.
            // This start's syncs run one at a time, so none is under way.
            // What this instance read meanwhile may be of that failed
            // sync: its writes are refused, to be repeated.
            let restored = recover_own(&self.prefix)?;
            self.checked_leftover = true;
            if restored > 0 {
                return Err(StoreError::Io(format!(
                    "a sync that failed before left its undo record, now carried out ({restored} object(s) put back); this write was refused: repeat it (the dataset is read again)"
                )));
            }
        }
        if changed <= 1 {
            for table in &mut tables {
                table.sync()?;
                table.settle();
            }
            return Ok(());
        }
        let mut plan = Vec::new();
        for table in &tables {
            plan.extend(table.undo_plan()?);
        }
        let intent_name = intent::name(&self.prefix);
        let intent = Intent {
            boot: instance::boot(),
            backend: instance::backend(),
            objects: plan,
        };
        let mut stored = objects::put_if_absent(&intent_name, &intent.encode());
        if let Err(ObjectError::PreconditionFailed) = stored {
            // This start's syncs run one at a time: an intent of its own
            // is a failed sync's (a flush's: its instance lives on), to put
            // back first.
            recover_own(&self.prefix)?;
            stored = objects::put_if_absent(&intent_name, &intent.encode());
        }
        match stored {
            Ok(_) => {}
            Err(ObjectError::PreconditionFailed) => {
                return Err(StoreError::Io(format!(
                    "{intent_name} exists: another backend or server is committing a unit of work to this bucket prefix, or one was cut short (it is undone by its backend's next write, or at the next start of vsamrd); repeat the request"
                )));
            }
            Err(e) => return Err(store_error("the bucket", "storing an undo record", e)),
        }
        let mut failure = None;
        for table in &mut tables {
            if let Err(error) = table.sync() {
                failure = Some(error);
                break;
            }
        }
        let Some(failure) = failure else {
            // The commit point: the undo record goes.
            objects::delete(&intent_name)
                .map_err(|e| store_error("the bucket", "deleting the undo record", e))?;
            for table in &mut tables {
                table.settle();
            }
            return Ok(());
        };
        // Put back what this sync wrote: every object that holds what it
        // wrote, including one whose write failed without an answer (the
        // store may have taken it). If that fails too, the undo record
        // stays for the next instance to carry out.
        if intent.undo().is_ok() {
            let _ = objects::delete(&intent_name);
        }
        Err(failure)
    }

    /// The writer, before its first call: carries out the undo record the
    /// writer before it left if its sync failed and so did the put-back
    /// (the store went away), so that nothing of that sync is read, nor
    /// written on top of. Until the store answers, every call fails.
    fn carry_out_leftover(&mut self) -> StoreResult<()> {
        if self.writer && !self.checked_leftover {
            recover_own(&self.prefix)?;
            self.checked_leftover = true;
        }
        Ok(())
    }

    /// The table of `ds`, opened on first use (after the leftover check:
    /// every call on a dataset comes here first).
    fn table(&mut self, ds: &Dataset) -> StoreResult<&mut Table> {
        self.carry_out_leftover()?;
        let (prefix, tuning) = (&self.prefix, self.tuning);
        self.tables
            .get_or_open(&ds.name, || Table::open(prefix, ds, tuning))
    }
}

/// Carries out an undo record a failed sync of this start of vsamrd left
/// under `prefix`, if there is one, saying so in the log; how many objects
/// it put back.
fn recover_own(prefix: &str) -> StoreResult<usize> {
    let restored = intent::recover(prefix, Whose::ThisStart)
        .map_err(StoreError::Io)?
        .restored;
    if restored > 0 {
        vsam_plugin_sdk::log::warn(&format!(
            "a sync that failed left its undo record: its {restored} object(s) are put back as they were before it"
        ));
    }
    Ok(restored)
}

fn number(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "s3 backend: parameter {name} = {value:?} must be a number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

impl Backend for ObjectBackend {
    /// A sync stores its objects all or none (see [`intent`]).
    const WHOLE_UNITS: bool = true;

    fn init(params: &[(String, String)]) -> Result<Self, String> {
        let mut prefix = String::new();
        let mut tuning = Tuning {
            ci_size: 32 * 1024,
            cache: 256,
            cache_bytes: 64 << 20,
        };
        for (name, value) in params {
            match name.as_str() {
                "prefix" => {
                    prefix = value.trim_matches('/').to_string();
                    if !prefix.is_empty() {
                        prefix.push('/');
                    }
                }
                "ci_size" => tuning.ci_size = number(name, value, 512..=16 << 20)?,
                "cache" => tuning.cache = number(name, value, 8..=1 << 20)?,
                "cache_mb" => tuning.cache_bytes = number(name, value, 1..=1 << 20)? << 20,
                other => {
                    return Err(format!(
                        "s3 backend: unknown parameter {other:?}; known: prefix, ci_size, cache, cache_mb"
                    ));
                }
            }
        }
        // Fail at start, not at the first request, if there is no bucket.
        objects::list(&prefix, None, 1).map_err(|e| match e {
            ObjectError::NotGranted => "s3 backend: no bucket is granted: add `bucket = { directory = \"objects\" }` or `bucket = { name = \"BUCKET\", endpoint = \"...\" }` to the backend's configuration".to_string(),
            ObjectError::Unavailable(m) | ObjectError::Failed(m) => {
                format!("s3 backend: the bucket cannot be listed: {m}")
            }
            ObjectError::PreconditionFailed => "s3 backend: the bucket cannot be listed".into(),
        })?;
        // A sync cut short by the end of an earlier start of vsamrd leaves
        // its undo record: put its objects back before serving anything.
        // (One of this start is a sync under way, in the instance this one
        // replaces or serves beside.)
        let restored = intent::recover(&prefix, Whose::EarlierStart)
            .map_err(|why| format!("s3 backend: {why}"))?
            .restored;
        if restored > 0 {
            vsam_plugin_sdk::log::warn(&format!(
                "a unit of work was cut short while it was stored: its {restored} object(s) are put back as they were before it"
            ));
        }
        Ok(Self {
            prefix,
            tuning,
            tables: DatasetCache::new(MAX_TABLES).letting_go_only(Table::is_clean),
            checked_leftover: false,
            writer: instance::is_writer(),
        })
    }

    fn create(&mut self, ds: &Dataset, layout: Option<&str>) -> StoreResult<()> {
        self.carry_out_leftover()?;
        if ds.max_record_length as usize > ci::MAX_RECORD {
            return Err(StoreError::Invalid(format!(
                "{}: records of up to {} bytes fit a control interval, not {}",
                ds.name,
                ci::MAX_RECORD,
                ds.max_record_length
            )));
        }
        let names = layout::Names::new(&self.prefix, ds);
        self.tables.remove(&ds.name);
        let definition = Definition::new(ds, layout, self.tuning);
        if let Some(stored) = Definition::read(&names, &ds.name)? {
            return Err(adopt(ds, &stored, &definition));
        }
        let leftovers = objects::list(&names.intervals(), None, 1)
            .map_err(|e| store_error(&ds.name, "checking the bucket", e))?;
        if let Some(leftover) = leftovers.first() {
            return Err(StoreError::Invalid(format!(
                "{}: the bucket already holds {} without a definition beside it; remove the objects under {} first",
                ds.name,
                leftover.name,
                names.root()
            )));
        }
        match objects::put_if_absent(&names.definition(), &definition.to_json()) {
            Ok(_) => Ok(()),
            Err(ObjectError::PreconditionFailed) => {
                // Another server defined it just now.
                match Definition::read(&names, &ds.name)? {
                    Some(stored) => Err(adopt(ds, &stored, &definition)),
                    None => Err(StoreError::AlreadyExists),
                }
            }
            Err(e) => Err(store_error(&ds.name, "storing its definition", e)),
        }
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.carry_out_leftover()?;
        self.tables.remove(&ds.name);
        let names = layout::Names::new(&self.prefix, ds);
        let err = |what: &'static str| move |e| store_error(&ds.name, what, e);
        if objects::head(&names.definition())
            .map_err(err("reading its definition"))?
            .is_none()
        {
            return Err(StoreError::NoSuchDataset);
        }
        // Intervals first, the definition last: an interrupted destroy
        // leaves a dataset that can be destroyed again.
        loop {
            let intervals = objects::list(&names.intervals(), None, 1000)
                .map_err(err("listing its control intervals"))?;
            if intervals.is_empty() {
                break;
            }
            for interval in intervals {
                objects::delete(&interval.name).map_err(err("deleting a control interval"))?;
            }
        }
        objects::delete(&names.definition()).map_err(err("deleting its definition"))
    }

    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.table(ds)?.get(key)
    }

    fn get_many(&mut self, ds: &Dataset, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.table(ds)?.get_many(keys)
    }

    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        self.table(ds)?.scan(&from, dir, limit)
    }

    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        self.table(ds)?.insert(key, value)
    }

    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        self.table(ds)?.replace(key, value)
    }

    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        self.table(ds)?.delete(key)
    }

    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.table(ds)?.append(value)
    }

    fn flush(&mut self, ds: &Dataset) -> StoreResult<()> {
        if self.tables.contains(&ds.name) {
            self.commit(Some(&ds.name))?;
            if let Some(table) = self.tables.get_mut(&ds.name) {
                table.forget_clean();
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> StoreResult<()> {
        self.commit(None)
    }
}

/// A dataset already in the bucket is adopted (`already-exists`: DEFINE
/// takes its records) if it was defined the same way, under the same name;
/// otherwise reading it with the new definition would garble it, or give
/// one dataset's records to another, so DEFINE is refused.
fn adopt(ds: &Dataset, stored: &Definition, wanted: &Definition) -> StoreError {
    if stored.dataset() != ds.name {
        // Objects copied or renamed in the bucket by hand.
        return StoreError::Invalid(format!(
            "{}: the objects under its name in the bucket are the storage of dataset {} (their dataset.json says so); a dataset never takes over another's storage",
            ds.name,
            stored.dataset()
        ));
    }
    if stored.same_shape(wanted) {
        StoreError::AlreadyExists
    } else {
        StoreError::Invalid(format!(
            "{}: the bucket already holds this dataset defined otherwise ({}); define it the same way to use its records, or delete it first",
            ds.name,
            stored.describe()
        ))
    }
}

export_backend!(ObjectBackend);
