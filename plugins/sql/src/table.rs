//! One dataset's table: the SQL that stores, finds and lists its records,
//! in raw mode (key and record as bytes) or mapped mode (typed columns).

use crate::dialect::{Sql, quote};
use crate::mapping::{Cell, Column, Kind, Mapping};
use vsam_plugin_sdk::naming;
use vsam_plugin_sdk::numeric::Decimal;
use vsam_plugin_sdk::sql::{self, SqlError, Value};
use vsam_plugin_sdk::{Direction, Entry, Start};

/// How a table holds records.
pub enum Mode {
    /// `vsam_key`, `vsam_record`.
    Raw,
    /// `vsam_key`, `vsam_raw`, `vsam_residue`, `vsam_length`, then one
    /// column per field.
    Mapped(Mapping),
}

/// What a write found.
pub enum Outcome {
    /// The row was written.
    Done,
    /// No row had the key.
    Missing,
}

/// A dataset's table.
pub struct Table {
    /// Dataset name, for messages.
    pub dataset: String,
    /// SQL table name (unquoted).
    pub name: String,
    /// Raw or mapped.
    pub mode: Mode,
    sql: Sql,
    quoted: String,
    /// `vsam_key` and the columns a record is made of, for SELECT.
    select: String,
    /// The statements of the per-record requests, built once.
    statements: Statements,
    /// Offset and length of the key in a KSDS record.
    key_range: Option<(usize, usize)>,
    /// Rows with no key that could not be given one (duplicates): skipped.
    unadoptable: Vec<Value>,
    /// The type of each parameter of a row in a multi-row statement, in
    /// the order of [`Statements::row_columns`]: learned from the table
    /// before its first such statement (see [`Table::slot_types`]).
    slot_types: Option<Vec<String>>,
}

/// A failure, with the table's dataset in the message.
pub type TableResult<T> = Result<T, SqlFailure>;

/// A SQL error or a row that cannot become a record.
#[derive(Debug)]
pub enum SqlFailure {
    /// The database refused or failed.
    Sql(SqlError),
    /// A row's values do not make a record of the layout.
    BadRow(String),
}

impl From<SqlError> for SqlFailure {
    fn from(e: SqlError) -> Self {
        SqlFailure::Sql(e)
    }
}

/// The statement text of GET, insert, replace and delete, and the two
/// ends of a many-key lookup (its placeholders go between them).
struct Statements {
    get: String,
    lookup_head: String,
    lookup_tail: String,
    insert: String,
    /// `INSERT INTO t (vsam_key, ...) SELECT * FROM (VALUES `, for many
    /// rows at once: its rows' slots and [`Statements::insert_rows_end`]
    /// follow.
    insert_rows_head: String,
    /// What follows the slots: skips the empty ones (see [`chunks`]).
    insert_rows_end: &'static str,
    /// The columns of a row, key first: one parameter each.
    row_columns: Vec<String>,
    /// What follows the rows to make a multi-row INSERT an upsert.
    upsert_tail: String,
    /// `DELETE FROM t WHERE vsam_key IN (`, for many keys at once.
    delete_keys_head: String,
    update: String,
    delete: String,
}

/// The columns of a mapped table besides the layout's fields: the key,
/// the raw record, the residue and the length (see [`Table::ddl`]).
pub const BOOKKEEPING_COLUMNS: usize = 4;

/// Rows one multi-row INSERT carries, at most (well below SQLite's 32,766
/// and PostgreSQL's 65,535 parameters).
const ROWS_PER_INSERT: usize = 500;
/// Parameters one multi-row INSERT carries, at most.
const PARAMS_PER_INSERT: usize = 30_000;

/// How `rows` rows go in statements: `(rows, slots)` per statement, each
/// statement with a power of two of row slots no larger than `most`, full
/// ones first and the last padded up (150 rows: one statement of 150 rows
/// in 256 slots; 600 with `most` 256: 256, 256, then 88 in 128).
///
/// Why: a multi-row statement's text depends on its number of slots, and
/// the host prepares and keeps each text on its connection. Slots of any
/// number made a mirror's batches (a different count each time) prepare a
/// new statement for most batches, and keep up to 500 per table and
/// connection, for ever. Powers of two bound them to nine per table and
/// statement (1 to 256 slots), each prepared once; padding the last one
/// (slots left empty hold NULL keys, which the statement skips) makes a
/// batch one statement instead of one per bit of its row count, which
/// costs a PostgreSQL mirror a fifth less of its CPU per change and a
/// quarter less time per batch (measured on batches of 185 changes).
fn chunks(rows: usize, most: usize) -> impl Iterator<Item = (usize, usize)> {
    let largest = 1 << most.max(1).ilog2();
    let mut left = rows;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let slots = largest.min(left.next_power_of_two());
        let taken = slots.min(left);
        left -= taken;
        Some((taken, slots))
    })
}

impl Statements {
    fn new(sql: Sql, table: &str, mode: &Mode, select: &str) -> Self {
        let value_columns: Vec<&str> = match mode {
            Mode::Raw => vec!["vsam_record"],
            Mode::Mapped(mapping) => ["vsam_raw", "vsam_residue", "vsam_length"]
                .into_iter()
                .chain(mapping.columns.iter().map(|c| c.name.as_str()))
                .collect(),
        };
        let p1 = sql.param(1);
        // Mapped tables: rows a SQL writer inserted without a key come back
        // too, and get their key before the answer.
        let keyless = match mode {
            Mode::Raw => "",
            Mode::Mapped(_) => " OR vsam_key IS NULL",
        };
        let assignments: Vec<String> = value_columns
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = {}", sql.param(i + 2)))
            .collect();
        Self {
            get: format!("SELECT {select} FROM {table} WHERE vsam_key = {p1}{keyless}"),
            lookup_head: format!("SELECT {select} FROM {table} WHERE vsam_key IN ("),
            lookup_tail: format!("){keyless}"),
            insert: format!(
                "INSERT INTO {table} (vsam_key, {}) VALUES ({}) ON CONFLICT (vsam_key) DO NOTHING",
                value_columns.join(", "),
                sql.params(1, value_columns.len() + 1)
            ),
            insert_rows_head: format!(
                "INSERT INTO {table} (vsam_key, {}) SELECT * FROM (VALUES ",
                value_columns.join(", ")
            ),
            insert_rows_end: ") AS slots WHERE column1 IS NOT NULL",
            row_columns: std::iter::once("vsam_key")
                .chain(value_columns.iter().copied())
                .map(str::to_string)
                .collect(),
            upsert_tail: format!(
                " ON CONFLICT (vsam_key) DO UPDATE SET {}",
                value_columns
                    .iter()
                    .map(|column| format!("{column} = excluded.{column}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            delete_keys_head: format!("DELETE FROM {table} WHERE vsam_key IN ("),
            update: format!(
                "UPDATE {table} SET {} WHERE vsam_key = {p1}",
                assignments.join(", ")
            ),
            delete: format!("DELETE FROM {table} WHERE vsam_key = {p1}"),
        }
    }
}

fn outcome(changed: u64) -> Outcome {
    if changed == 0 {
        Outcome::Missing
    } else {
        Outcome::Done
    }
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::Blob(b) => Some(b),
        _ => None,
    }
}

impl Table {
    /// A table handle (no SQL runs); `key_range` is where a KSDS record
    /// holds its key.
    pub fn new(
        dataset: &str,
        name: &str,
        mode: Mode,
        sql: Sql,
        key_range: Option<(usize, usize)>,
    ) -> Self {
        let quoted = quote(name);
        let select = match &mode {
            Mode::Raw => "vsam_key, vsam_record".to_string(),
            Mode::Mapped(mapping) => {
                let mut columns = vec!["vsam_key", "vsam_raw", "vsam_residue", "vsam_length"];
                columns.extend(mapping.columns.iter().map(|c| c.name.as_str()));
                columns.join(", ")
            }
        };
        let statements = Statements::new(sql, &quoted, &mode, &select);
        Self {
            dataset: dataset.to_string(),
            name: name.to_string(),
            mode,
            sql,
            quoted,
            select,
            statements,
            key_range,
            unadoptable: Vec::new(),
            slot_types: None,
        }
    }

    /// The `CREATE TABLE` statement (run only for a table that is not
    /// there: an existing one is adopted as it is).
    pub fn ddl(&self) -> String {
        let s = self.sql;
        let bytes = s.bytes();
        // Constraints are named in the plugin's namespace: PostgreSQL's own
        // names for their indexes (`{table}_pkey`) could be a dataset's table.
        let constraint = |purpose| quote(&naming::sql_internal(purpose, &self.name));
        match &self.mode {
            Mode::Raw => format!(
                "CREATE TABLE {} (vsam_key {bytes} NOT NULL, vsam_record {bytes} NOT NULL, \
                 CONSTRAINT {} PRIMARY KEY (vsam_key)){}",
                self.quoted,
                constraint("pk"),
                s.keyed_table_options()
            ),
            Mode::Mapped(mapping) => {
                let mut columns = vec![
                    format!("vsam_key {bytes}"),
                    format!("vsam_raw {bytes}"),
                    format!("vsam_residue {bytes}"),
                    format!("vsam_length {}", s.integer()),
                ];
                for column in &mapping.columns {
                    let ty = match &column.kind {
                        Kind::Text => s.text(&column.name, column.size),
                        Kind::Integer(_) => s.integer().to_string(),
                        Kind::Decimal(_, picture) => s.decimal(picture.digits, picture.scale),
                    };
                    columns.push(format!("{} {ty}", column.name));
                }
                columns.push(format!("CONSTRAINT {} UNIQUE (vsam_key)", constraint("uk")));
                format!("CREATE TABLE {} ({})", self.quoted, columns.join(", "))
            }
        }
    }

    /// The `DROP TABLE` statement.
    pub fn drop_ddl(&self) -> String {
        format!("DROP TABLE IF EXISTS {}", self.quoted)
    }

    /// The record stored under `key`.
    pub fn get(&mut self, key: &[u8]) -> TableResult<Option<Vec<u8>>> {
        let params = [Value::Blob(key.to_vec())];
        let rows = sql::query(&self.statements.get, &params)?;
        if rows.iter().any(|row| row[0] == Value::Null) && self.adopt()? {
            return self.first_keyed(sql::query(&self.statements.get, &params)?);
        }
        self.first_keyed(rows)
    }

    /// The records under `keys`, one answer per key, with one query (rows
    /// that SQL writers added without a key are adopted first, as by
    /// [`Table::get`]).
    pub fn get_many(&mut self, keys: &[Vec<u8>]) -> TableResult<Vec<Option<Vec<u8>>>> {
        let statement = format!(
            "{}{}{}",
            self.statements.lookup_head,
            self.sql.params(1, keys.len()),
            self.statements.lookup_tail
        );
        let params: Vec<Value> = keys.iter().map(|key| Value::Blob(key.clone())).collect();
        let mut rows = sql::query(&statement, &params)?;
        if rows.iter().any(|row| row[0] == Value::Null) && self.adopt()? {
            rows = sql::query(&statement, &params)?;
        }
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows.iter().filter(|row| row[0] != Value::Null) {
            let (key, record) = self.record(row)?;
            found.insert(key, record);
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    fn first_keyed(&self, rows: Vec<Vec<Value>>) -> TableResult<Option<Vec<u8>>> {
        match rows.into_iter().find(|row| row[0] != Value::Null) {
            Some(row) => self.record(&row).map(|(_, record)| Some(record)),
            None => Ok(None),
        }
    }

    /// Key and record of a selected row.
    fn record(&self, row: &[Value]) -> TableResult<(Vec<u8>, Vec<u8>)> {
        let key = bytes(&row[0]).unwrap_or_default().to_vec();
        match &self.mode {
            Mode::Raw => Ok((key, bytes(&row[1]).unwrap_or_default().to_vec())),
            Mode::Mapped(mapping) => {
                if let Some(raw) = bytes(&row[1]) {
                    return Ok((key, raw.to_vec()));
                }
                let cells = mapping
                    .columns
                    .iter()
                    .zip(&row[4..])
                    .map(|(column, value)| cell(column, value))
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|cells| {
                        let length = match row[3] {
                            Value::Integer(n) => Some(n.max(0) as usize),
                            _ => None,
                        };
                        mapping.build(&cells, bytes(&row[2]), length)
                    })
                    .map_err(|why| {
                        SqlFailure::BadRow(format!(
                            "row with vsam_key X'{}' of table {} does not make a record of the layout: {why}",
                            hex(&key),
                            self.name
                        ))
                    })?;
                Ok((key, cells))
            }
        }
    }

    /// Gives rows that SQL writers inserted without `vsam_key` their key
    /// (the key field's bytes of the rebuilt record). True if any changed.
    fn adopt(&mut self) -> TableResult<bool> {
        if !matches!(self.mode, Mode::Mapped(_)) {
            return Ok(false);
        }
        let rows = sql::query(
            &format!(
                "SELECT {}, {} FROM {} WHERE vsam_key IS NULL LIMIT 1000",
                self.sql.row_id(),
                self.select,
                self.quoted
            ),
            &[],
        )?;
        let mut changed = false;
        for row in rows {
            if self.unadoptable.contains(&row[0]) {
                continue;
            }
            let (_, record) = self.record(&row[1..])?;
            let Some(key) = self.key_of(&record) else {
                self.refuse_adoption(&row[0], "only KSDS rows can be added without vsam_key");
                continue;
            };
            let p1 = self.sql.param(1);
            let taken = !sql::query(
                &format!("SELECT 1 FROM {} WHERE vsam_key = {p1}", self.quoted),
                &[Value::Blob(key.clone())],
            )?
            .is_empty();
            if taken {
                self.refuse_adoption(&row[0], &format!("key X'{}' is already stored", hex(&key)));
                continue;
            }
            sql::execute(
                &format!(
                    "UPDATE {} SET vsam_key = {p1} WHERE {}",
                    self.quoted,
                    self.sql.row_id_is(2)
                ),
                &[Value::Blob(key), row[0].clone()],
            )?;
            changed = true;
        }
        Ok(changed)
    }

    fn refuse_adoption(&mut self, row_id: &Value, why: &str) {
        vsam_plugin_sdk::log::error(&format!(
            "dataset {}: a row of table {} has no vsam_key and cannot get one: {why}; fix or delete it",
            self.dataset, self.name
        ));
        self.unadoptable.push(row_id.clone());
    }

    fn key_of(&self, record: &[u8]) -> Option<Vec<u8>> {
        let (offset, length) = self.key_range?;
        record.get(offset..offset + length).map(<[u8]>::to_vec)
    }

    /// Up to `limit` records from `from` in `dir`.
    pub fn scan(&mut self, from: &Start, dir: Direction, limit: u32) -> TableResult<Vec<Entry>> {
        self.adopt()?;
        let (order, inclusive, exclusive) = match dir {
            Direction::Forward => ("ASC", ">=", ">"),
            Direction::Backward => ("DESC", "<=", "<"),
        };
        let p1 = self.sql.param(1);
        let (condition, params) = match from {
            Start::Edge => ("vsam_key IS NOT NULL".to_string(), vec![]),
            Start::Inclusive(key) => (
                format!("vsam_key {inclusive} {p1}"),
                vec![Value::Blob(key.clone())],
            ),
            Start::Exclusive(key) => (
                format!("vsam_key {exclusive} {p1}"),
                vec![Value::Blob(key.clone())],
            ),
        };
        let rows = sql::query(
            &format!(
                "SELECT {} FROM {} WHERE {condition} ORDER BY vsam_key {order} LIMIT {limit}",
                self.select, self.quoted
            ),
            &params,
        )?;
        rows.iter()
            .map(|row| self.record(row).map(|(key, value)| Entry { key, value }))
            .collect()
    }

    /// The values of the columns after `vsam_key` for a record: in mapped
    /// mode typed values, or the record raw (with the reason logged) if the
    /// typed columns cannot hold it exactly.
    fn row_values(&self, key: &[u8], record: Vec<u8>) -> Vec<Value> {
        match &self.mode {
            Mode::Raw => vec![Value::Blob(record)],
            Mode::Mapped(mapping) => match mapping.split(&record) {
                Ok(split) => {
                    let mut values = vec![
                        Value::Null,
                        if mapping.has_residue() {
                            Value::Blob(split.residue)
                        } else {
                            Value::Null
                        },
                        split
                            .length
                            .map_or(Value::Null, |n| Value::Integer(n as i64)),
                    ];
                    values.extend(
                        mapping
                            .columns
                            .iter()
                            .zip(split.cells)
                            .map(|(column, cell)| value(column, cell)),
                    );
                    values
                }
                Err(why) => {
                    vsam_plugin_sdk::log::warn(&format!(
                        "dataset {}: record with key X'{}' is stored raw in column vsam_raw of table {}, \
                         its typed columns NULL: {why}",
                        self.dataset,
                        hex(key),
                        self.name
                    ));
                    let mut values = vec![Value::Blob(record), Value::Null, Value::Null];
                    values.extend(mapping.columns.iter().map(|_| Value::Null));
                    values
                }
            },
        }
    }

    /// Stores a record under a new key; `Ok(false)` if the key is taken.
    pub fn insert(&mut self, key: &[u8], record: Vec<u8>) -> TableResult<bool> {
        let mut params = vec![Value::Blob(key.to_vec())];
        params.extend(self.row_values(key, record));
        Ok(sql::execute(&self.statements.insert, &params)? == 1)
    }

    /// Stores many new records, several hundred per statement; false if a
    /// key was stored already (the caller's unit fails whole).
    pub fn insert_many(&mut self, entries: Vec<vsam_plugin_sdk::Entry>) -> TableResult<bool> {
        self.insert_rows(entries, " ON CONFLICT (vsam_key) DO NOTHING")
    }

    /// Writes `entries` with multi-row INSERTs ending in `tail` (what a
    /// stored key does), several hundred rows per statement; false as soon
    /// as a statement changed fewer rows than it carried.
    fn insert_rows(
        &mut self,
        entries: Vec<vsam_plugin_sdk::Entry>,
        tail: &str,
    ) -> TableResult<bool> {
        let types = self.slot_types()?.to_vec();
        let per_row = types.len();
        let rows_per = (PARAMS_PER_INSERT / per_row).clamp(1, ROWS_PER_INSERT);
        let mut entries = entries.into_iter();
        let shapes: Vec<(usize, usize)> = chunks(entries.len(), rows_per).collect();
        for (rows, slots) in shapes {
            let mut params = Vec::with_capacity(slots * per_row);
            for entry in entries.by_ref().take(rows) {
                params.push(Value::Blob(entry.key.clone()));
                params.extend(self.row_values(&entry.key, entry.value));
            }
            params.resize(slots * per_row, Value::Null);
            let values: Vec<String> = (0..slots)
                .map(|slot| {
                    let first = slot * per_row + 1;
                    let row: Vec<String> = types
                        .iter()
                        .enumerate()
                        .map(|(i, ty)| self.sql.typed_param(first + i, ty))
                        .collect();
                    format!("({})", row.join(", "))
                })
                .collect();
            let statement = format!(
                "{}{}{}{tail}",
                self.statements.insert_rows_head,
                values.join(", "),
                self.statements.insert_rows_end
            );
            let stored = sql::execute(&statement, &params).inspect_err(|_| {
                // The table may have changed under the statement (a column
                // given another type by hand): ask it again next time.
                self.slot_types = None;
            })?;
            if stored != rows as u64 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Stores each record under its key whether the key is stored or
    /// not, and removes each of `erases` if stored: a mirror's net
    /// changes, several hundred rows per statement. Keys are distinct.
    pub fn apply(
        &mut self,
        puts: Vec<vsam_plugin_sdk::Entry>,
        erases: Vec<Vec<u8>>,
    ) -> TableResult<()> {
        // An upsert counts each row it inserted or replaced: fewer is a
        // table that does not keep its key unique.
        let upsert = self.statements.upsert_tail.clone();
        if !self.insert_rows(puts, &upsert)? {
            return Err(SqlFailure::BadRow(format!(
                "table {}: an upsert of a mirror's records stored fewer rows than it carried",
                self.name
            )));
        }
        let mut erases = erases.into_iter();
        let shapes: Vec<(usize, usize)> = chunks(erases.len(), ROWS_PER_INSERT).collect();
        for (keys, slots) in shapes {
            let statement = format!(
                "{}{})",
                self.statements.delete_keys_head,
                self.sql.params(1, slots)
            );
            // Empty slots hold NULL, which no key equals.
            let mut params: Vec<Value> = erases.by_ref().take(keys).map(Value::Blob).collect();
            params.resize(slots, Value::Null);
            sql::execute(&statement, &params)?;
        }
        Ok(())
    }

    /// Overwrites the record under `key`.
    pub fn replace(&mut self, key: &[u8], record: Vec<u8>) -> TableResult<Outcome> {
        let mut params = vec![Value::Blob(key.to_vec())];
        params.extend(self.row_values(key, record));
        Ok(outcome(sql::execute(&self.statements.update, &params)?))
    }

    /// The types a multi-row statement's parameters are cast to, in the
    /// order of [`Statements::row_columns`]: on PostgreSQL, the base type
    /// of each of the table's own columns (`character varying`, not
    /// `character varying(8)`: the column's length and precision still
    /// check the value, as they check an INSERT's own `VALUES`). Its rows
    /// come from a `VALUES` list in a subquery (see [`chunks`]), whose
    /// parameters PostgreSQL would otherwise type as text; the table is
    /// asked once, so that one it adopted as it was keeps its own types,
    /// and again after a statement failed (a column altered by hand since).
    /// SQLite needs no cast.
    fn slot_types(&mut self) -> TableResult<&[String]> {
        if self.slot_types.is_none() {
            let columns = &self.statements.row_columns;
            let types = match self.sql.column_types() {
                None => vec![String::new(); columns.len()],
                Some(query) => {
                    let rows = sql::query(query, &[Value::Text(self.quoted.clone())])?;
                    let of = |column: &str| {
                        rows.iter().find_map(|row| match (&row[0], &row[1]) {
                            (Value::Text(name), Value::Text(ty)) if name == column => {
                                Some(ty.clone())
                            }
                            _ => None,
                        })
                    };
                    columns
                        .iter()
                        .map(|column| {
                            of(column).ok_or_else(|| {
                                SqlFailure::BadRow(format!(
                                    "table {} has no column {column}",
                                    self.name
                                ))
                            })
                        })
                        .collect::<TableResult<Vec<String>>>()?
                }
            };
            self.slot_types = Some(types);
        }
        Ok(self.slot_types.as_deref().unwrap_or_default())
    }

    /// Removes the record under `key`.
    pub fn delete(&mut self, key: &[u8]) -> TableResult<Outcome> {
        let params = [Value::Blob(key.to_vec())];
        Ok(outcome(sql::execute(&self.statements.delete, &params)?))
    }

    /// The RBA after the last record: its key plus its length. Call in a
    /// transaction: on a shared database, other servers' appends to the
    /// table wait for its end.
    pub fn next_rba(&self) -> TableResult<u64> {
        if let Some(lock) = self.sql.transaction_lock() {
            let name = format!("vsam append {}", self.name);
            sql::execute(lock, &[Value::Text(name)])?;
        }
        let (length, fixed) = match &self.mode {
            Mode::Raw => ("length(vsam_record)", 0),
            Mode::Mapped(mapping) => (
                "COALESCE(length(vsam_raw), vsam_length)",
                mapping.size as i64,
            ),
        };
        let rows = sql::query(
            &format!(
                "SELECT vsam_key, {length} FROM {} WHERE vsam_key IS NOT NULL ORDER BY vsam_key DESC LIMIT 1",
                self.quoted
            ),
            &[],
        )?;
        let Some(row) = rows.first() else {
            return Ok(0);
        };
        let key = vsam_plugin_sdk::keys::key_number(bytes(&row[0]).unwrap_or_default())
            .ok_or_else(|| {
                SqlFailure::BadRow(format!(
                    "table {}: the last vsam_key is not an 8-byte RBA",
                    self.name
                ))
            })?;
        let length = match row[1] {
            Value::Integer(n) => n,
            _ => fixed,
        };
        Ok(key + length as u64)
    }
}

/// A column value as the dialect stores it.
fn value(column: &Column, cell: Cell) -> Value {
    match (cell, &column.kind) {
        (Cell::Null, _) => Value::Null,
        (Cell::Text(text), _) => Value::Text(text),
        (Cell::Number(n), Kind::Integer(_))
            if n.scale == 0 && i64::try_from(n.unscaled).is_ok() =>
        {
            Value::Integer(n.unscaled as i64)
        }
        (Cell::Number(n), _) => Value::Numeric(n.to_string()),
    }
}

/// A stored value as a cell of `column`.
fn cell(column: &Column, value: &Value) -> Result<Cell, String> {
    let scale = match &column.kind {
        Kind::Text => {
            return match value {
                Value::Null => Ok(Cell::Null),
                Value::Text(t) => Ok(Cell::Text(t.clone())),
                Value::Integer(i) => Ok(Cell::Text(i.to_string())),
                other => Err(format!("column {} holds {other:?}, not text", column.name)),
            };
        }
        Kind::Integer(_) => 0,
        Kind::Decimal(_, picture) => picture.scale,
    };
    let number = match value {
        Value::Null => return Ok(Cell::Null),
        Value::Integer(i) => Decimal::new(i128::from(*i), 0),
        Value::Real(r) => format!("{r:.*}", usize::from(scale))
            .parse()
            .map_err(|e| format!("column {}: {e}", column.name))?,
        Value::Text(t) | Value::Numeric(t) => t
            .trim()
            .parse()
            .map_err(|e| format!("column {} holds {t:?}, not a number: {e}", column.name))?,
        Value::Blob(_) => return Err(format!("column {} holds bytes, not a number", column.name)),
    };
    number.rescale(scale).map(Cell::Number).ok_or_else(|| {
        format!(
            "column {} holds {number}, more decimal places than the {scale} of field {}",
            column.name, column.field
        )
    })
}

/// Upper-case hex, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn rows_go_in_statements_of_nine_shapes_at_most_and_only_the_last_padded() {
        let mut shapes = std::collections::BTreeSet::new();
        for rows in 0..=2_000 {
            let parts: Vec<(usize, usize)> = chunks(rows, 500).collect();
            assert_eq!(parts.iter().map(|p| p.0).sum::<usize>(), rows, "{parts:?}");
            assert!(
                parts
                    .iter()
                    .all(|&(rows, slots)| slots.is_power_of_two() && slots <= 256 && rows <= slots),
                "{parts:?}"
            );
            let (last, full) = parts
                .split_last()
                .map_or((None, &[][..]), |(l, f)| (Some(l), f));
            assert!(
                full.iter()
                    .all(|&(rows, slots)| rows == 256 && slots == 256),
                "{parts:?}"
            );
            if let Some(&(rows, slots)) = last {
                assert!(rows > slots / 2, "no more slots than needed: {parts:?}");
            }
            shapes.extend(parts.iter().map(|p| p.1));
        }
        assert_eq!(shapes.len(), 9, "{shapes:?}");
        assert_eq!(chunks(150, 500).collect::<Vec<_>>(), [(150, 256)]);
        assert_eq!(
            chunks(600, 256).collect::<Vec<_>>(),
            [(256, 256), (256, 256), (88, 128)]
        );
        assert_eq!(chunks(3, 1).collect::<Vec<_>>(), [(1, 1), (1, 1), (1, 1)]);
        assert_eq!(chunks(0, 500).count(), 0);
    }
}
