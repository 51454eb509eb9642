//! The SQL capability: a database the host connects to on a backend's
//! behalf, so that its plugin can run statements without ever holding the
//! address or the credentials.
//!
//! A backend's `database` setting grants it one database: `sqlite:PATH`
//! (embedded, a file under the data dir unless absolute) or a PostgreSQL URL
//! (`postgres://user:password@host:port/db`, a pool of connections shared by
//! the backend's instances, over TLS when the URL's `sslmode` asks for it).
//! Each plugin instance gets an [`SqlSession`]
//! that connects on first use, reconnects after the database came back, and
//! rolls back a transaction the instance left open.

mod postgres;
mod postgres_tls;
mod sqlite;

use super::wasm::wit_sql::{Dialect, SqlError, Value};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where a backend's database is, as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (may hold a password: never logged).
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite:PATH` or `postgres://...` / `postgresql://...`;
    /// relative SQLite paths resolve against `data_dir`.
    pub fn parse(text: &str, data_dir: &std::path::Path) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("`sqlite:` needs a file path, e.g. sqlite:vsam.db".into());
            }
            return crate::paths::under_data_dir(data_dir, std::path::Path::new(path))
                .map(Self::Sqlite);
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let (client_text, _) = postgres_tls::parse(text)?;
            client_text
                .parse::<tokio_postgres::Config>()
                .map_err(|e| format!("not a usable PostgreSQL URL: {e}"))?;
            return Ok(Self::Postgres(text.to_string()));
        }
        Err(format!(
            "{:?} is not a database: use sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
            redact(text)
        ))
    }
}

/// Hides the password of a URL `scheme://user:password@host`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A backend's granted database, ready to hand out connections.
pub enum SqlGrant {
    /// Each session opens its own connection to the file.
    Sqlite(PathBuf),
    /// Sessions borrow connections from a pool.
    Postgres(postgres::PgGrant),
}

impl SqlGrant {
    /// Prepares the grant. PostgreSQL needs a tokio runtime to drive its
    /// connections; sessions block on it from backend worker threads.
    pub fn new(url: &DatabaseUrl, timeout: Duration) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                Self::Sqlite(path.clone())
            }
            DatabaseUrl::Postgres(text) => Self::Postgres(postgres::PgGrant::new(text, timeout)?),
        }))
    }
}

/// One live connection of either kind.
trait Connection: Send {
    fn dialect(&self) -> Dialect;
    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError>;
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError>;
    fn batch(&mut self, statements: &str) -> Result<(), SqlError>;
    /// Rolls back whatever transaction is open; false if the connection is
    /// unusable.
    fn abandon(&mut self) -> bool;
}

/// The database as one plugin instance sees it.
pub struct SqlSession {
    grant: Option<Arc<SqlGrant>>,
    connection: Option<Box<dyn Connection>>,
    in_transaction: bool,
}

impl SqlSession {
    /// A session on `grant`; without one every call fails `not-granted`.
    pub fn new(grant: Option<Arc<SqlGrant>>) -> Self {
        Self {
            grant,
            connection: None,
            in_transaction: false,
        }
    }

    fn connection(&mut self) -> Result<&mut Box<dyn Connection>, SqlError> {
        let grant = self.grant.as_ref().ok_or(SqlError::NotGranted)?;
        if self.connection.is_none() {
            let connection: Box<dyn Connection> = match grant.as_ref() {
                SqlGrant::Sqlite(path) => Box::new(sqlite::SqliteConnection::open(path)?),
                SqlGrant::Postgres(pg) => Box::new(pg.connect()?),
            };
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    /// Runs `f` on the connection; a lost connection is dropped (and its
    /// transaction with it) so the next call reconnects.
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Connection) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let result = f(self.connection()?.as_mut());
        if let Err(SqlError::Unavailable(_)) = &result {
            self.connection = None;
            self.in_transaction = false;
        }
        result
    }

    /// The dialect.
    pub fn dialect(&mut self) -> Result<Dialect, SqlError> {
        self.with(|c| Ok(c.dialect()))
    }

    /// A statement that returns rows.
    pub fn query(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        self.with(|c| c.query(statement, params))
    }

    /// A statement that changes rows.
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        self.with(|c| c.execute(statement, params))
    }

    /// Parameterless statements.
    pub fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        self.with(|c| c.batch(statements))
    }

    /// Starts a transaction.
    pub fn begin(&mut self) -> Result<(), SqlError> {
        if self.in_transaction {
            return Err(SqlError::Failed(
                "begin: a transaction is already open; commit or roll it back first".into(),
            ));
        }
        self.with(|c| c.batch("BEGIN"))?;
        self.in_transaction = true;
        Ok(())
    }

    /// Commits the open transaction.
    pub fn commit(&mut self) -> Result<(), SqlError> {
        if !self.in_transaction {
            return Err(SqlError::Failed(
                "commit: no transaction is open (it may have been lost with the connection)".into(),
            ));
        }
        self.in_transaction = false;
        let result = self.with(|c| c.batch("COMMIT"));
        if result.is_err() {
            self.abandon();
        }
        result
    }

    /// Abandons the open transaction.
    pub fn rollback(&mut self) -> Result<(), SqlError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        self.with(|c| c.batch("ROLLBACK"))
    }

    fn abandon(&mut self) {
        if let Some(connection) = self.connection.as_mut()
            && !connection.abandon()
        {
            self.connection = None;
        }
    }
}

impl Drop for SqlSession {
    fn drop(&mut self) {
        if self.in_transaction {
            self.abandon();
        }
    }
}
