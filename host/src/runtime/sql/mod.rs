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

mod host;
pub mod outbox;
mod postgres;
pub(crate) mod postgres_tls;
mod sqlite;

pub(crate) use super::bindings::wit_sql::{Dialect, SqlError, Value};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

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

impl DatabaseUrl {
    /// True if the URL itself holds a password (after the user name, or as
    /// `password=` in its query): the file it is written in is a secret.
    pub fn holds_password(&self) -> bool {
        match self {
            Self::Sqlite(_) => false,
            Self::Postgres(text) => postgres_tls::parse(text)
                .ok()
                .and_then(|(client_text, _)| client_text.parse::<tokio_postgres::Config>().ok())
                .is_some_and(|config| config.get_password().is_some()),
        }
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

/// The bytes a value takes in the rows returned.
fn value_bytes(value: &Value) -> u64 {
    match value {
        Value::Null => 1,
        Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(t) | Value::Numeric(t) => t.len() as u64,
        Value::Blob(b) => b.len() as u64,
    }
}

/// Rows past what the plugin's memory may hold: refused whole, before
/// they fill vsamrd's.
fn too_many_bytes(rows: usize, result_bytes: u64) -> SqlError {
    SqlError::Failed(format!(
        "the statement's rows pass {result_bytes} bytes at row {rows}, more than the plugin's memory may hold (memory_limit_mb): ask for fewer rows at a time"
    ))
}

/// A backend's granted database, ready to hand out connections.
pub enum SqlGrant {
    /// Each session opens its own connection to the file; a statement
    /// waits for a lock and runs at most this long, and returns at most
    /// this many bytes of rows.
    Sqlite(PathBuf, Duration, u64),
    /// Sessions borrow connections from a pool.
    Postgres(postgres::PgGrant),
}

impl SqlGrant {
    /// Makes every connection of the grant prepare its statements again
    /// (tables were dropped and made again, perhaps with other columns).
    pub fn forget_statements(&self) {
        if let Self::Postgres(grant) = self {
            grant.forget_statements();
        }
    }

    /// A grant for vsamrd's own statements (outboxes, the stream's table),
    /// on the current runtime: their rows are not bounded, since vsamrd
    /// asks for them in measured amounts.
    pub fn for_vsamrd(url: &DatabaseUrl, timeout: Duration) -> anyhow::Result<Arc<Self>> {
        Self::new(url, timeout, u64::MAX, &Handle::current())
    }

    /// Prepares the grant. PostgreSQL connections are driven by `runtime`;
    /// no statement waits or runs longer than `timeout` (a plugin call's
    /// limit), and none returns more than `result_bytes` of rows (what a
    /// plugin's memory may hold: rows are gathered in vsamrd's memory
    /// before they are handed over; see [`Self::for_vsamrd`] for vsamrd's
    /// own statements).
    pub fn new(
        url: &DatabaseUrl,
        timeout: Duration,
        result_bytes: u64,
        runtime: &Handle,
    ) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent() {
                    crate::paths::make_private_dir(parent)?;
                }
                Self::Sqlite(path.clone(), timeout, result_bytes)
            }
            DatabaseUrl::Postgres(text) => Self::Postgres(postgres::PgGrant::new(
                text,
                timeout,
                result_bytes,
                runtime,
            )?),
        }))
    }
}

/// One live connection of either kind. SQLite's calls are synchronous and
/// bounded by the grant's timeout (a lock wait, and the statement itself,
/// which SQLite interrupts: see `sqlite::SqliteConnection`); PostgreSQL's
/// are awaited, so a call stopped at its limit stops waiting for the
/// server.
enum Link {
    Sqlite(sqlite::SqliteConnection),
    Postgres(postgres::PgConnection),
}

impl Link {
    fn dialect(&self) -> Dialect {
        match self {
            Link::Sqlite(_) => Dialect::Sqlite,
            Link::Postgres(_) => Dialect::Postgres,
        }
    }

    async fn query(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        match self {
            Link::Sqlite(c) => c.query(statement, params),
            Link::Postgres(c) => c.query(statement, params).await,
        }
    }

    async fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        match self {
            Link::Sqlite(c) => c.execute(statement, params),
            Link::Postgres(c) => c.execute(statement, params).await,
        }
    }

    async fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        match self {
            Link::Sqlite(c) => c.batch(statements),
            Link::Postgres(c) => c.batch(statements).await,
        }
    }

    /// Rolls back whatever transaction is open; false if the connection is
    /// unusable.
    async fn abandon(&mut self) -> bool {
        match self {
            Link::Sqlite(c) => c.abandon(),
            Link::Postgres(c) => c.abandon().await,
        }
    }
}

/// The database as one plugin instance sees it.
pub struct SqlSession {
    grant: Option<Arc<SqlGrant>>,
    connection: Option<Link>,
    in_transaction: bool,
    /// A group's changes the next commit writes to the outbox first.
    outbox: Option<outbox::OutboxRow>,
    /// What became of the staged row at the last commit.
    outbox_outcome: outbox::Outcome,
    /// The outbox table was made (or found) on this connection.
    outbox_table_known: bool,
    /// The SQLite outbox's lane of the last (log, backend) written, found
    /// on this connection (see [`outbox::Lane`]).
    outbox_lane: Option<outbox::Lane>,
}

impl SqlSession {
    /// A session on `grant`; without one every call fails `not-granted`.
    pub fn new(grant: Option<Arc<SqlGrant>>) -> Self {
        Self {
            grant,
            connection: None,
            in_transaction: false,
            outbox: None,
            outbox_outcome: outbox::Outcome::NotWritten,
            outbox_table_known: false,
            outbox_lane: None,
        }
    }

    /// Stages a group's changes for the outbox (see [`outbox`]): the
    /// plugin's next commit writes them in its transaction. False (nothing
    /// staged) when no transaction is open to carry them.
    pub fn stage_outbox(&mut self, row: outbox::OutboxRow) -> bool {
        self.outbox_outcome = outbox::Outcome::NotWritten;
        if !self.in_transaction || self.connection.is_none() {
            self.outbox = None;
            return false;
        }
        self.outbox = Some(row);
        true
    }

    /// What became of the row staged last; the stage is cleared.
    pub fn take_outbox_outcome(&mut self) -> outbox::Outcome {
        self.outbox = None;
        std::mem::take(&mut self.outbox_outcome)
    }

    async fn connection(&mut self) -> Result<&mut Link, SqlError> {
        if !self.in_transaction
            && let Some(Link::Postgres(worn)) = &mut self.connection
            && worn.worn_out()
        {
            // Between transactions: what the database keeps for each
            // table the session used goes with it.
            worn.discard();
            self.forget_connection();
        }
        let grant = self.grant.as_ref().ok_or(SqlError::NotGranted)?;
        if self.connection.is_none() {
            let connection = match grant.as_ref() {
                SqlGrant::Sqlite(path, timeout, result_bytes) => Link::Sqlite(
                    sqlite::SqliteConnection::open(path, *timeout, *result_bytes)?,
                ),
                SqlGrant::Postgres(pg) => Link::Postgres(pg.connect().await?),
            };
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    /// Drops a lost connection (and its transaction with it) so the next
    /// call reconnects.
    fn check<T>(&mut self, result: Result<T, SqlError>) -> Result<T, SqlError> {
        if let Err(SqlError::Unavailable(_)) = &result {
            self.forget_connection();
        }
        result
    }

    /// Lets the connection go, and what was known of it and its
    /// transaction: the next call connects again.
    fn forget_connection(&mut self) {
        self.connection = None;
        self.in_transaction = false;
        self.outbox_table_known = false;
        self.outbox_lane = None;
    }

    /// The dialect.
    pub async fn dialect(&mut self) -> Result<Dialect, SqlError> {
        let result = self.connection().await.map(|c| c.dialect());
        self.check(result)
    }

    /// A statement that returns rows.
    pub async fn query(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        let mut result = match self.connection().await {
            Ok(c) => c.query(statement, params).await,
            Err(e) => Err(e),
        };
        if self.again_after(&result) {
            result = match self.connection().await {
                Ok(c) => c.query(statement, params).await,
                Err(e) => Err(e),
            };
        }
        self.check(result)
    }

    /// True if a statement failed only because the connection's prepared
    /// statement was planned for a table another server of a fleet has
    /// since dropped and made again with other columns, outside a
    /// transaction: the connection has forgotten its prepared statements,
    /// and the statement is run once more.
    fn again_after<T>(&self, result: &Result<T, SqlError>) -> bool {
        !self.in_transaction && result.as_ref().err().is_some_and(postgres::is_stale_plan)
    }

    /// A statement that changes rows.
    pub async fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let mut result = match self.connection().await {
            Ok(c) => c.execute(statement, params).await,
            Err(e) => Err(e),
        };
        if self.again_after(&result) {
            result = match self.connection().await {
                Ok(c) => c.execute(statement, params).await,
                Err(e) => Err(e),
            };
        }
        self.check(result)
    }

    /// Parameterless statements.
    pub async fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        let result = match self.connection().await {
            Ok(c) => c.batch(statements).await,
            Err(e) => Err(e),
        };
        self.check(result)
    }

    /// Starts a transaction.
    pub async fn begin(&mut self) -> Result<(), SqlError> {
        if self.in_transaction {
            return Err(SqlError::Failed(
                "begin: a transaction is already open; commit or roll it back first".into(),
            ));
        }
        self.batch("BEGIN").await?;
        self.in_transaction = true;
        Ok(())
    }

    /// Ends the open transaction as `result` says: committed when it is
    /// `Ok` (the commit's failure is the result then), rolled back when it
    /// is an error, which stays the result.
    pub async fn settle<T>(&mut self, result: Result<T, SqlError>) -> Result<T, SqlError> {
        match result {
            Ok(value) => self.commit().await.map(|()| value),
            Err(error) => {
                let _ = self.rollback().await;
                Err(error)
            }
        }
    }

    /// Commits the open transaction.
    pub async fn commit(&mut self) -> Result<(), SqlError> {
        if !self.in_transaction {
            return Err(SqlError::Failed(
                "commit: no transaction is open (it may have been lost with the connection)".into(),
            ));
        }
        let staged = self.outbox.take();
        if let Some(row) = &staged
            && let Err(error) = outbox::write(self, row).await
        {
            let _ = self.rollback().await;
            // The same kind of error, so that a full disk stays one.
            let why = |m: &str| {
                format!(
                    "the change outbox ({}) could not take the group's changes, so the group was rolled back: {m}",
                    outbox::TABLE
                )
            };
            return Err(match error {
                SqlError::NoSpace(m) => SqlError::NoSpace(why(&m)),
                SqlError::Unavailable(m) => SqlError::Unavailable(why(&m)),
                SqlError::NotGranted => SqlError::NotGranted,
                // The key (log, backend, group) is taken: another server
                // numbers its groups in a log of the same id.
                SqlError::Constraint(m) => SqlError::Failed(why(&format!(
                    "group {} of change log {} is already there, written by another vsamrd whose change log has the same id (a data dir copied from a server that still runs?); stop this server and remove the id file of its change log (log/id in its [changes] directory, DATA_DIR/changes by default) so that it gets an id of its own ({m})",
                    row.group, row.log_id
                ))),
                SqlError::Failed(m) => SqlError::Failed(why(&m)),
            });
        }
        self.in_transaction = false;
        let remote = matches!(self.connection, Some(Link::Postgres(_)));
        let result = self.batch("COMMIT").await;
        self.outbox_outcome = match (&staged, &result) {
            (None, _) => outbox::Outcome::NotWritten,
            (Some(_), Ok(())) => outbox::Outcome::Written,
            // A server that refuses a COMMIT has rolled it back; one whose
            // answer did not come may have committed.
            (Some(_), Err(SqlError::Unavailable(_))) if remote => outbox::Outcome::InDoubt,
            (Some(_), Err(_)) => outbox::Outcome::NotWritten,
        };
        if result.is_err()
            && let Some(connection) = self.connection.as_mut()
            && !connection.abandon().await
        {
            self.connection = None;
        }
        result
    }

    /// Abandons the open transaction.
    pub async fn rollback(&mut self) -> Result<(), SqlError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        self.batch("ROLLBACK").await
    }
}

/// Dropping a session needs no I/O: SQLite rolls back an open transaction
/// when its connection closes; a PostgreSQL connection that holds a
/// transaction (or a statement a stopped call left unanswered) is closed
/// rather than given back to the pool, and the server rolls it back.
impl Drop for SqlSession {
    fn drop(&mut self) {
        if self.in_transaction
            && let Some(Link::Postgres(connection)) = self.connection.as_mut()
        {
            connection.discard();
        }
    }
}
