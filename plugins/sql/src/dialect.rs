//! What differs between SQLite and PostgreSQL, in one place: placeholders,
//! type names, and how to ask whether a table exists.

use vsam_plugin_sdk::sql::Dialect;

/// SQL text for one dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sql(pub Dialect);

impl Sql {
    /// The placeholder of the `n`-th parameter (1-based).
    pub fn param(self, n: usize) -> String {
        match self.0 {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The placeholder of the `n`-th parameter, cast to SQL type `ty` on
    /// PostgreSQL (SQLite stores any type; `ty` is then empty).
    pub fn typed_param(self, n: usize, ty: &str) -> String {
        match self.0 {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}::{ty}"),
        }
    }

    /// A query with one parameter (a table's name, quoted as in
    /// statements) that returns the name and base type (without length or
    /// precision) of each of its columns; none on SQLite, whose columns
    /// take values of any type.
    pub fn column_types(self) -> Option<&'static str> {
        match self.0 {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(
                "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a \
                 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            ),
        }
    }

    /// Placeholders `first..first+count`, comma-separated.
    pub fn params(self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|n| self.param(n))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The binary column type: compares as unsigned bytes in both.
    pub fn bytes(self) -> &'static str {
        match self.0 {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
        }
    }

    /// A text column of at most `chars` characters.
    pub fn text(self, column: &str, chars: usize) -> String {
        match self.0 {
            Dialect::Sqlite => format!("TEXT CHECK (length({column}) <= {chars})"),
            Dialect::Postgres => format!("VARCHAR({chars})"),
        }
    }

    /// An exact decimal column of `digits` digits, `scale` after the point.
    /// SQLite has no exact decimal type: up to 15 digits its NUMERIC
    /// affinity stores values exactly enough to give the same digits back;
    /// longer numbers are kept as text.
    pub fn decimal(self, digits: u8, scale: u8) -> String {
        match self.0 {
            Dialect::Sqlite if digits <= 15 => "NUMERIC".into(),
            Dialect::Sqlite => "TEXT".into(),
            Dialect::Postgres => format!("NUMERIC({}, {scale})", digits.max(1)),
        }
    }

    /// What ends the `CREATE TABLE` of a raw table, whose rows are only
    /// ever reached by key: SQLite stores such a table clustered on its
    /// primary key (one B-tree instead of a table plus an index).
    pub fn keyed_table_options(self) -> &'static str {
        match self.0 {
            Dialect::Sqlite => " WITHOUT ROWID",
            Dialect::Postgres => "",
        }
    }

    /// The most columns a table may have: SQLite's default build
    /// (`SQLITE_MAX_COLUMN`) and PostgreSQL's fixed limit.
    pub fn max_columns(self) -> usize {
        match self.0 {
            Dialect::Sqlite => 2000,
            Dialect::Postgres => 1600,
        }
    }

    /// The database's name, for messages.
    pub fn database_name(self) -> &'static str {
        match self.0 {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// A 64-bit integer column.
    pub fn integer(self) -> &'static str {
        match self.0 {
            Dialect::Sqlite => "INTEGER",
            Dialect::Postgres => "BIGINT",
        }
    }

    /// A query with one parameter (the table name) that returns a row if
    /// the table exists. On SQLite it looks the name up in the schema
    /// SQLite holds in memory (a table has at least one column):
    /// `sqlite_master` has no index, and `pragma_table_list` compares every
    /// name, so that either cost each DEFINE a pass over every table (800
    /// and 550 us in a database of 15,000 tables, against 16 us).
    pub fn table_exists(self) -> &'static str {
        match self.0 {
            Dialect::Sqlite => "SELECT 1 FROM pragma_table_info(?1, 'main') LIMIT 1",
            Dialect::Postgres => {
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
            }
        }
    }

    /// A statement with one parameter (a name) that holds the lock of that
    /// name until the transaction ends, if the database is shared: on
    /// PostgreSQL, where servers of a fleet append to one ESDS, its next
    /// RBA is looked up and taken under it, so no RBA is handed out twice.
    /// SQLite belongs to one server, whose writer appends alone.
    pub fn transaction_lock(self) -> Option<&'static str> {
        match self.0 {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"),
        }
    }

    /// The expression naming a row physically, for rows SQL writers added
    /// without a key: SQLite's rowid, PostgreSQL's ctid (as text).
    pub fn row_id(self) -> &'static str {
        match self.0 {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "ctid::text",
        }
    }

    /// The condition selecting a row by the value of [`Sql::row_id`].
    pub fn row_id_is(self, n: usize) -> String {
        match self.0 {
            Dialect::Sqlite => format!("rowid = ?{n}"),
            Dialect::Postgres => format!("ctid = ${n}::tid"),
        }
    }
}

/// Quotes an identifier (our names are lower-case letters, digits and `_`,
/// but a table name from the configuration may be anything).
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        assert_eq!(Sql(Dialect::Sqlite).params(2, 3), "?2, ?3, ?4");
        assert_eq!(Sql(Dialect::Postgres).params(1, 2), "$1, $2");
        assert_eq!(Sql(Dialect::Sqlite).typed_param(3, "bytea"), "?3");
        assert_eq!(Sql(Dialect::Postgres).typed_param(3, "bytea"), "$3::bytea");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
