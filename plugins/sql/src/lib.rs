//! The SQL backend: VSAM datasets as tables of the database the backend is
//! granted (embedded SQLite or PostgreSQL). See `plugins/sql/README.md`.
//!
//! Each dataset has a table, registered in `_vsam_catalog` with the full
//! dataset name beside it. Table names come from
//! [`vsam_plugin_sdk::naming::sql_table`], which gives distinct datasets
//! distinct tables and never a name of the plugin's own (`_vsam_...`).
//! Writes of a group share one transaction, committed by `sync`: the host
//! acknowledges them only after the commit, and a failure rolls the whole
//! group back.
#![warn(missing_docs)]

pub mod columns;
pub mod dialect;
pub mod mapping;
pub mod table;

use dialect::Sql;
use mapping::Mapping;
use std::collections::HashMap;
use std::str::FromStr;
use table::{Mode, Outcome, SqlFailure, Table};
use vsam_plugin_sdk::cache::DatasetCache;
use vsam_plugin_sdk::codepage::CodePage;
use vsam_plugin_sdk::naming;
use vsam_plugin_sdk::sql::{self, SqlError, Value};
use vsam_plugin_sdk::{
    Backend, Dataset, Direction, Entry, Organization, Start, StoreError, StoreResult,
};

/// The catalog of the plugin's tables, kept in the database itself: which
/// dataset owns which table. Its name is in the plugin's own namespace, so
/// no dataset's table can be it.
const CATALOG: &str = "_vsam_catalog";

/// Where versions before the naming rules kept the catalog; renamed to
/// [`CATALOG`] on first use (a dataset `VSAM.DATASETS` may have this table
/// now).
const LEGACY_CATALOG: &str = "vsam_datasets";

/// The most datasets whose table an instance keeps described (its
/// statements, mapping and column types, some 1.5 KB each); past it, the
/// one used longest ago is let go and described again from the catalog at
/// its next use. Kept for every dataset ever used, a batch that read
/// 100,000 datasets one after another left 149 MB in the instance, which
/// its memory limit would end in a failed call; the plugin holds no
/// records, so letting a description go loses nothing.
const MAX_TABLES: usize = 1024;

/// The SQL store.
pub struct SqlBackend {
    /// `keep_tables = "true"`: DELETE forgets a dataset but keeps its table.
    keep_tables: bool,
    /// `table.DATASET = NAME`: table names chosen in the configuration.
    table_names: HashMap<String, String>,
    dialect: Option<Sql>,
    /// The tables of the datasets used lately, at most [`MAX_TABLES`].
    tables: DatasetCache<Table>,
    in_transaction: bool,
    /// A write of the open group failed after others succeeded: the group
    /// was rolled back and `sync` must say so.
    group_lost: Option<String>,
}

impl SqlBackend {
    fn sql(&mut self) -> StoreResult<Sql> {
        if let Some(sql) = self.dialect {
            return Ok(sql);
        }
        let sql = Sql(sql::dialect().map_err(store_error)?);
        upgrade_legacy_catalog(sql).map_err(store_error)?;
        sql::batch(&format!(
            "CREATE TABLE IF NOT EXISTS {CATALOG} (dataset VARCHAR(44) PRIMARY KEY, \
             table_name TEXT NOT NULL, layout TEXT)"
        ))
        .map_err(store_error)?;
        // Finds a table's owner (see `owner_of`) at every DEFINE without
        // reading every row of a catalog of thousands. Only a speed-up: an
        // instance of another server making it at the same moment can make
        // this one fail (PostgreSQL), and the look-up still works.
        let _ = sql::batch(&format!(
            "CREATE INDEX IF NOT EXISTS {CATALOG}_table ON {CATALOG} (table_name)"
        ));
        self.dialect = Some(sql);
        Ok(sql)
    }

    /// The dataset that owns `table` in the catalog, other than `dataset`.
    fn owner_of(&self, sql: Sql, table: &str, dataset: &str) -> StoreResult<Option<String>> {
        let rows = sql::query(
            &format!(
                "SELECT dataset FROM {CATALOG} WHERE table_name = {} AND dataset <> {}",
                sql.param(1),
                sql.param(2)
            ),
            &[
                Value::Text(table.to_string()),
                Value::Text(dataset.to_string()),
            ],
        )
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .find_map(|row| match row.into_iter().next() {
                Some(Value::Text(owner)) => Some(owner),
                _ => None,
            }))
    }

    /// The table of a dataset, from the cache or the catalog table.
    fn table(&mut self, ds: &Dataset) -> StoreResult<&mut Table> {
        if !self.tables.contains(&ds.name) {
            let sql = self.sql()?;
            let rows = sql::query(
                &format!(
                    "SELECT table_name, layout FROM {CATALOG} WHERE dataset = {}",
                    sql.param(1)
                ),
                &[Value::Text(ds.name.clone())],
            )
            .map_err(store_error)?;
            let Some(row) = rows.into_iter().next() else {
                return Err(StoreError::NoSuchDataset);
            };
            let (Some(Value::Text(name)), layout) = (row.first().cloned(), row.get(1).cloned())
            else {
                return Err(StoreError::Io(format!(
                    "the {CATALOG} row of {} has no table name",
                    ds.name
                )));
            };
            let layout = match layout {
                Some(Value::Text(layout)) => Some(layout),
                _ => None,
            };
            let table = self.make_table(ds, &name, layout.as_deref(), sql)?;
            self.tables.insert(&ds.name, table);
        }
        Ok(self.tables.get_mut(&ds.name).expect("inserted above"))
    }

    /// A DEFINE of a dataset whose table the catalog holds already (the
    /// host lost its own entry, or refused a DEFINE before it): the table
    /// is taken under this definition, so that the host judges its rows by
    /// the attributes given now, not those of an attempt it refused.
    /// Answers `AlreadyExists`: the host adopts the rows, or refuses them.
    fn adopt_as(
        &mut self,
        ds: &Dataset,
        table: &str,
        layout: Option<&str>,
        sql: Sql,
    ) -> StoreResult<()> {
        let made = self.make_table(ds, table, layout, sql)?;
        let layout_value = layout.map_or(Value::Null, |l| Value::Text(l.to_string()));
        sql::execute(
            &format!(
                "UPDATE {CATALOG} SET layout = {} WHERE dataset = {}",
                sql.param(1),
                sql.param(2)
            ),
            &[layout_value, Value::Text(ds.name.clone())],
        )
        .map_err(store_error)?;
        self.tables.insert(&ds.name, made);
        Err(StoreError::AlreadyExists)
    }

    fn make_table(
        &self,
        ds: &Dataset,
        name: &str,
        layout: Option<&str>,
        sql: Sql,
    ) -> StoreResult<Table> {
        let mode = match layout {
            None => Mode::Raw,
            Some(layout) => {
                let codepage = CodePage::from_str(&ds.codepage).map_err(StoreError::Invalid)?;
                let mapping = Mapping::new(layout, codepage)
                    .map_err(|why| StoreError::Invalid(format!("{}: layout: {why}", ds.name)))?;
                let columns = mapping.columns.len() + table::BOOKKEEPING_COLUMNS;
                if columns > sql.max_columns() {
                    return Err(StoreError::Invalid(format!(
                        "{}: the layout maps to {columns} columns (each entry of a table, OCCURS, a column of its own), more than the {} a table of {} may have: describe large tables as one field each (PIC X(n) over the whole table), or define the dataset without a layout to store its records raw",
                        ds.name,
                        sql.max_columns(),
                        sql.database_name()
                    )));
                }
                Mode::Mapped(mapping)
            }
        };
        let key_range = (ds.organization == Organization::Ksds)
            .then_some((ds.key_offset as usize, ds.key_length as usize));
        Ok(Table::new(&ds.name, name, mode, sql, key_range))
    }

    /// Opens the group's transaction before its first write.
    fn write<T>(
        &mut self,
        ds: &Dataset,
        f: impl FnOnce(&mut Table) -> Result<T, SqlFailure>,
    ) -> StoreResult<T> {
        if let Some(why) = &self.group_lost {
            return Err(StoreError::Io(format!(
                "not run: an earlier write of this group failed ({why})"
            )));
        }
        self.table(ds)?;
        if !self.in_transaction {
            sql::begin().map_err(store_error)?;
            self.in_transaction = true;
        }
        let table = self.tables.get_mut(&ds.name).expect("loaded above");
        let result = f(table);
        if let Err(failure) = &result {
            // PostgreSQL refuses every statement of a failed transaction:
            // roll back now; sync reports the group failed.
            let why = failure_message(&ds.name, failure);
            let _ = sql::rollback();
            self.in_transaction = false;
            self.group_lost = Some(why);
        }
        result.map_err(|f| failure_error(&ds.name, f))
    }

    fn read<T>(
        &mut self,
        ds: &Dataset,
        f: impl FnOnce(&mut Table) -> Result<T, SqlFailure>,
    ) -> StoreResult<T> {
        let in_transaction = self.in_transaction;
        let result = f(self.table(ds)?);
        if let Err(failure) = &result
            && in_transaction
            && matches!(failure, SqlFailure::Sql(_))
        {
            let _ = sql::rollback();
            self.in_transaction = false;
            self.group_lost = Some(failure_message(&ds.name, failure));
        }
        result.map_err(|f| failure_error(&ds.name, f))
    }

    /// Commits what the group wrote before a catalog change; a failed
    /// commit is reported by the group's `sync`.
    fn settle(&mut self) {
        if self.in_transaction {
            self.in_transaction = false;
            if let Err(e) = sql::commit() {
                self.group_lost = Some(format!("commit failed: {}", sql_message(&e)));
            }
        }
    }
}

/// Renames the catalog of earlier versions (`vsam_datasets`) to
/// [`CATALOG`], once: its rows, and so every dataset's table, carry over.
/// Another instance may rename it at the same moment; whichever loses
/// finds the new catalog there.
fn upgrade_legacy_catalog(sql: Sql) -> Result<(), SqlError> {
    let exists = |name: &str| -> Result<bool, SqlError> {
        Ok(!sql::query(sql.table_exists(), &[Value::Text(name.to_string())])?.is_empty())
    };
    if exists(CATALOG)? || !exists(LEGACY_CATALOG)? {
        return Ok(());
    }
    // Only the catalog has these columns; a dataset's table has vsam_key.
    if sql::query(
        &format!("SELECT dataset, table_name, layout FROM {LEGACY_CATALOG} WHERE 1 = 0"),
        &[],
    )
    .is_err()
    {
        return Ok(());
    }
    match sql::batch(&format!("ALTER TABLE {LEGACY_CATALOG} RENAME TO {CATALOG}")) {
        Ok(()) => {
            vsam_plugin_sdk::log::info(&format!(
                "renamed the catalog table {LEGACY_CATALOG} to {CATALOG}: dataset tables keep their names"
            ));
            Ok(())
        }
        Err(_) if exists(CATALOG)? => Ok(()),
        Err(e) => Err(e),
    }
}

fn sql_message(e: &SqlError) -> String {
    match e {
        SqlError::NotGranted => {
            "no database is granted to this backend: set `database` in its [backends.NAME] section"
                .into()
        }
        SqlError::Unavailable(m) => format!("database unavailable: {m}"),
        SqlError::Constraint(m) => format!("constraint violated: {m}"),
        SqlError::NoSpace(m) => format!("database out of space: {m}"),
        SqlError::Failed(m) => m.clone(),
    }
}

fn store_error(e: SqlError) -> StoreError {
    match e {
        SqlError::NoSpace(_) => StoreError::NoSpace(sql_message(&e)),
        SqlError::NotGranted => StoreError::Invalid(sql_message(&e)),
        _ => StoreError::Io(sql_message(&e)),
    }
}

fn failure_message(dataset: &str, failure: &SqlFailure) -> String {
    match failure {
        SqlFailure::Sql(e) => format!("{dataset}: {}", sql_message(e)),
        SqlFailure::BadRow(why) => format!("{dataset}: {why}"),
    }
}

fn failure_error(dataset: &str, failure: SqlFailure) -> StoreError {
    match failure {
        SqlFailure::Sql(SqlError::NoSpace(m)) => StoreError::NoSpace(format!("{dataset}: {m}")),
        other => StoreError::Io(failure_message(dataset, &other)),
    }
}

impl Backend for SqlBackend {
    /// A group's writes are one transaction, committed by its sync.
    const WHOLE_UNITS: bool = true;

    fn init(params: &[(String, String)]) -> Result<Self, String> {
        let mut keep_tables = false;
        let mut table_names = HashMap::new();
        for (name, value) in params {
            if name == "keep_tables" {
                keep_tables = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("keep_tables is {other:?}: use true or false")),
                };
            } else if let Some(dataset) = name.strip_prefix("table.") {
                if naming::is_internal_sql_name(value)
                    || value.to_ascii_lowercase().starts_with("sqlite_")
                {
                    return Err(format!(
                        "table.{dataset} = {value:?}: names starting with {} or sqlite_ belong to the plugin and the database; choose another table name",
                        naming::SQL_INTERNAL_PREFIX
                    ));
                }
                table_names.insert(dataset.to_ascii_uppercase(), value.clone());
            } else {
                return Err(format!(
                    "unknown parameter {name:?}: the SQL backend takes keep_tables and table.DATASET"
                ));
            }
        }
        Ok(Self {
            keep_tables,
            table_names,
            dialect: None,
            tables: DatasetCache::new(MAX_TABLES),
            in_transaction: false,
            group_lost: None,
        })
    }

    fn create(&mut self, ds: &Dataset, layout: Option<&str>) -> StoreResult<()> {
        self.settle();
        let sql = self.sql()?;
        let registered = sql::query(
            &format!(
                "SELECT table_name FROM {CATALOG} WHERE dataset = {}",
                sql.param(1)
            ),
            &[Value::Text(ds.name.clone())],
        )
        .map_err(store_error)?;
        // A row whose table is gone is stale: a DEFINE that found another
        // program's table there, refused since, and that table dropped or
        // renamed. The name is free again; left, it would refuse every
        // DEFINE of it ("no such table") until the row was deleted by hand.
        //
        // So is a row naming another table than the backend's params now
        // name for the dataset (`table.DATASET`): a DEFINE refused over
        // another program's table leaves its row, and the operator's cure
        // is to give the dataset a table of its own. A DEFINE reaches the
        // plugin only for a dataset the host does not hold, so the row is
        // no dataset's storage; the table it names is left as it is.
        let mut stale = false;
        if let Some(Value::Text(table)) = registered.first().and_then(|row| row.first()) {
            let exists = !sql::query(sql.table_exists(), &[Value::Text(table.clone())])
                .map_err(store_error)?
                .is_empty();
            let named = self
                .table_names
                .get(&ds.name)
                .filter(|named| *named != table);
            match (exists, named) {
                (true, None) => return self.adopt_as(ds, table, layout, sql),
                (true, Some(named)) => vsam_plugin_sdk::log::warn(&format!(
                    "dataset {}: its catalog row names table {table}, and the backend's params now name table {named}: the row is replaced, table {table} left as it is",
                    ds.name
                )),
                (false, _) => vsam_plugin_sdk::log::warn(&format!(
                    "dataset {}: its catalog row names table {table}, which is gone: the row is replaced",
                    ds.name
                )),
            }
            self.tables.remove(&ds.name);
            stale = true;
        }
        let name = self
            .table_names
            .get(&ds.name)
            .cloned()
            .unwrap_or_else(|| naming::sql_table(&ds.name));
        if let Some(owner) = self.owner_of(sql, &name, &ds.name)? {
            return Err(StoreError::Invalid(format!(
                "{}: table {name} is the storage of dataset {owner}; a dataset never takes over another's table (choose another with `table.{} = ...` in the backend's params)",
                ds.name, ds.name
            )));
        }
        let table = self.make_table(ds, &name, layout, sql)?;
        let existed = !sql::query(sql.table_exists(), &[Value::Text(name.clone())])
            .map_err(store_error)?
            .is_empty();
        let layout_value = layout.map_or(Value::Null, |l| Value::Text(l.to_string()));
        let run = || -> Result<(), SqlError> {
            sql::begin()?;
            if stale {
                sql::execute(
                    &format!("DELETE FROM {CATALOG} WHERE dataset = {}", sql.param(1)),
                    &[Value::Text(ds.name.clone())],
                )?;
            }
            if !existed {
                sql::batch(&table.ddl())?;
            }
            sql::execute(
                &format!(
                    "INSERT INTO {CATALOG} (dataset, table_name, layout) VALUES ({})",
                    sql.params(1, 3)
                ),
                &[
                    Value::Text(ds.name.clone()),
                    Value::Text(name.clone()),
                    layout_value,
                ],
            )?;
            sql::commit()
        };
        if let Err(e) = run() {
            let _ = sql::rollback();
            return Err(StoreError::Io(format!(
                "{}: cannot create table {name}: {}",
                ds.name,
                sql_message(&e)
            )));
        }
        vsam_plugin_sdk::log::info(&format!(
            "dataset {} is table {name} ({})",
            ds.name,
            if layout.is_some() { "mapped" } else { "raw" }
        ));
        self.tables.insert(&ds.name, table);
        if existed {
            // The host adopts the rows already there.
            return Err(StoreError::AlreadyExists);
        }
        Ok(())
    }

    fn destroy(&mut self, ds: &Dataset) -> StoreResult<()> {
        self.settle();
        let sql = self.sql()?;
        let drop_ddl = self.table(ds)?.drop_ddl();
        let keep = self.keep_tables;
        let run = || -> Result<(), SqlError> {
            sql::begin()?;
            sql::execute(
                &format!("DELETE FROM {CATALOG} WHERE dataset = {}", sql.param(1)),
                &[Value::Text(ds.name.clone())],
            )?;
            if !keep {
                sql::batch(&drop_ddl)?;
            }
            sql::commit()
        };
        let result = run();
        self.tables.remove(&ds.name);
        result.map_err(|e| {
            let _ = sql::rollback();
            StoreError::Io(format!(
                "{}: cannot drop its table: {}",
                ds.name,
                sql_message(&e)
            ))
        })
    }

    fn get(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.read(ds, |table| table.get(key))
    }

    fn get_many(&mut self, ds: &Dataset, keys: &[Vec<u8>]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.read(ds, |table| table.get_many(keys))
    }

    fn scan(
        &mut self,
        ds: &Dataset,
        from: Start,
        dir: Direction,
        limit: u32,
    ) -> StoreResult<Vec<Entry>> {
        self.read(ds, |table| table.scan(&from, dir, limit))
    }

    fn insert(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        match self.write(ds, |table| table.insert(&key, value))? {
            true => Ok(()),
            false => Err(StoreError::DuplicateKey),
        }
    }

    fn insert_many(&mut self, ds: &Dataset, entries: Vec<Entry>) -> StoreResult<()> {
        match self.write(ds, |table| table.insert_many(entries))? {
            true => Ok(()),
            false => Err(StoreError::DuplicateKey),
        }
    }

    fn apply(&mut self, ds: &Dataset, puts: Vec<Entry>, erases: Vec<Vec<u8>>) -> StoreResult<()> {
        self.write(ds, |table| table.apply(puts, erases))
    }

    fn replace(&mut self, ds: &Dataset, key: Vec<u8>, value: Vec<u8>) -> StoreResult<()> {
        match self.write(ds, |table| table.replace(&key, value))? {
            Outcome::Done => Ok(()),
            Outcome::Missing => Err(StoreError::NotFound),
        }
    }

    fn delete(&mut self, ds: &Dataset, key: &[u8]) -> StoreResult<()> {
        match self.write(ds, |table| table.delete(key))? {
            Outcome::Done => Ok(()),
            Outcome::Missing => Err(StoreError::NotFound),
        }
    }

    fn append(&mut self, ds: &Dataset, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.write(ds, |table| {
            let key = vsam_plugin_sdk::keys::number_key(table.next_rba()?);
            if table.insert(&key, value)? {
                Ok(key)
            } else {
                Err(SqlFailure::BadRow(format!(
                    "table {}: RBA X'{}' is already stored",
                    table.name,
                    table::hex(&key)
                )))
            }
        })
    }

    fn sync(&mut self) -> StoreResult<()> {
        if let Some(why) = self.group_lost.take() {
            return Err(StoreError::Io(format!(
                "the writes of this group were rolled back: {why}"
            )));
        }
        if self.in_transaction {
            self.in_transaction = false;
            sql::commit().map_err(store_error)?;
        }
        Ok(())
    }
}

vsam_plugin_sdk::export_backend!(SqlBackend);
