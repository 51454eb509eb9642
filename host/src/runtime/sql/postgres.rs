//! PostgreSQL connections from a pool (tokio-postgres + deadpool), driven
//! by vsamrd's tokio runtime and awaited by plugin calls. A
//! connection an instance gives back (its instance was replaced after a
//! fault, or a reader dropped its instance after a DEFINE) is reused, so a
//! new instance does not pay for a new connection and TLS handshake.

use super::postgres_tls::{self, TlsRequest};
use crate::runtime::bindings::wit_sql::{SqlError, Value};
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures::StreamExt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};

/// Most connections a backend keeps open to its PostgreSQL server.
const POOL_SIZE: usize = 16;

/// A backend's pool.
pub struct PgGrant {
    pool: Pool,
    timeout: Duration,
    result_bytes: u64,
    canceller: Canceller,
}

/// How a statement left running is cancelled: PostgreSQL's cancel request
/// goes on a connection of its own, over TLS when the pool's are.
#[derive(Clone)]
enum Canceller {
    Plain,
    Tls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl Canceller {
    /// Asks the server to cancel what `client`'s session runs, without
    /// waiting for it.
    ///
    /// Why: closing a connection does not stop its statement (the server
    /// notices only when it next writes to the client), and a plugin may
    /// turn its session's `statement_timeout` off; a call dropped at its
    /// limit would leave the statement running for as long as it likes,
    /// one more at each call.
    fn cancel(&self, client: &tokio_postgres::Client) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let token = client.cancel_token();
        let canceller = self.clone();
        runtime.spawn(async move {
            let cancelled = match canceller {
                Canceller::Plain => token.cancel_query(tokio_postgres::NoTls).await,
                Canceller::Tls(tls) => token.cancel_query(tls).await,
            };
            if let Err(error) = cancelled {
                tracing::warn!(
                    "could not cancel a statement of a PostgreSQL connection closed mid-statement: {}",
                    crate::runtime::error_chain(&error)
                );
            }
        });
    }
}

impl PgGrant {
    /// Builds the pool, its connections driven by `runtime`; no connection
    /// is made until a session needs one. The server ends any statement
    /// that runs past `timeout` (the plugin call's limit) itself too, and
    /// a call stopped at its limit cancels the statement it left (see
    /// [`Canceller`]), so it leaves no work behind on the server.
    /// A query's rows stop at `result_bytes` (see [`PgConnection::query`]).
    pub fn new(
        url: &str,
        timeout: Duration,
        result_bytes: u64,
        runtime: &Handle,
    ) -> anyhow::Result<Self> {
        let (text, tls) = postgres_tls::parse(url).map_err(anyhow::Error::msg)?;
        let mut config: tokio_postgres::Config = text.parse()?;
        config.connect_timeout(timeout);
        config.application_name("vsamrd");
        let options = config.get_options().unwrap_or_default().to_string();
        config.options(
            format!("{options} -c statement_timeout={}", timeout.as_millis()).trim_start(),
        );
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let (manager, canceller) = match &tls {
            TlsRequest::Off => {
                tracing::info!(
                    "PostgreSQL connections without TLS (add sslmode=verify-full to the URL to encrypt them)"
                );
                (
                    Manager::from_config(config, tokio_postgres::NoTls, manager_config()),
                    Canceller::Plain,
                )
            }
            TlsRequest::Prefer(roots) | TlsRequest::Require(roots) => {
                let connector = postgres_tls::connector(roots).map_err(anyhow::Error::msg)?;
                tracing::info!(
                    ?roots,
                    "PostgreSQL connections over TLS, server certificate verified"
                );
                (
                    Manager::from_config(config, connector.clone(), manager_config()),
                    Canceller::Tls(connector),
                )
            }
        };
        // The pool spawns its connections' tasks on the current runtime.
        let _entered = runtime.enter();
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        Ok(Self {
            pool,
            timeout,
            result_bytes,
            canceller,
        })
    }

    /// Makes every connection of the pool prepare its statements again.
    pub fn forget_statements(&self) {
        self.pool.manager().statement_caches.clear();
    }

    /// Borrows a connection for one session.
    pub async fn connect(&self) -> Result<PgConnection, SqlError> {
        let client = within(self.timeout, self.pool.get()).await?.map_err(|e| {
            // The server's own error, without the pool's "Error occurred
            // while creating a new object" around it.
            let cause = match &e {
                deadpool_postgres::PoolError::Backend(backend) => {
                    crate::runtime::error_chain(backend)
                }
                other => crate::runtime::error_chain(other),
            };
            SqlError::Unavailable(format!("cannot connect to PostgreSQL: {cause}"))
        })?;
        Ok(PgConnection {
            pool: self.pool.clone(),
            client: Some(client),
            timeout: self.timeout,
            result_bytes: self.result_bytes,
            canceller: self.canceller.clone(),
            pending: AtomicBool::new(false),
            cache_clears: AtomicU32::new(0),
        })
    }
}

/// Awaits a future within the call limit.
async fn within<F: Future>(timeout: Duration, future: F) -> Result<F::Output, SqlError> {
    tokio::time::timeout(timeout, future).await.map_err(|_| {
        SqlError::Unavailable(format!(
            "PostgreSQL did not answer within {} ms",
            timeout.as_millis()
        ))
    })
}

/// One pooled connection.
pub struct PgConnection {
    /// The pool it came from, whose prepared statements a change of tables
    /// makes stale.
    pool: Pool,
    client: Option<Object>,
    timeout: Duration,
    result_bytes: u64,
    canceller: Canceller,
    /// A statement was sent and its answer not yet read: set while a
    /// statement runs, still set if the call awaiting it was dropped.
    pending: AtomicBool,
    /// How many times this connection's prepared statements were let go
    /// (see [`MAX_PREPARED`]): how many tables it has used, roughly.
    cache_clears: AtomicU32,
}

fn error(e: tokio_postgres::Error) -> SqlError {
    let message = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => crate::runtime::error_chain(&e),
    };
    if e.is_closed() {
        return SqlError::Unavailable(message);
    }
    match e.code() {
        None => SqlError::Unavailable(message),
        Some(code) if code.code().starts_with("23") => SqlError::Constraint(message),
        Some(code) if *code == SqlState::DISK_FULL => SqlError::NoSpace(message),
        Some(code)
            if code.code().starts_with("08")
                || code.code().starts_with("57P")
                || *code == SqlState::TOO_MANY_CONNECTIONS =>
        {
            SqlError::Unavailable(message)
        }
        Some(_) => SqlError::Failed(message),
    }
}

/// True for PostgreSQL's refusals to run a statement prepared for a table
/// that was dropped and made again with other column types since: its
/// result changed type (SQLSTATE 0A000, "cached plan must not change result
/// type"), or a parameter's type no longer fits its column (42804).
pub(super) fn is_stale_plan(failure: &SqlError) -> bool {
    matches!(failure, SqlError::Failed(message)
        if (message.starts_with("0A000") && message.contains("cached plan"))
            || message.starts_with("42804"))
}

/// True for statements that make, drop or change tables: the pool's
/// prepared statements may name their old shape. Checked on batches (where
/// plugins run their DDL, off the path of record writes); DDL run another
/// way is caught by [`is_stale_plan`] at the first statement it broke.
fn changes_tables(statements: &str) -> bool {
    let text = statements.as_bytes();
    ["CREATE TABLE", "DROP TABLE", "ALTER TABLE"]
        .iter()
        .any(|ddl| {
            text.windows(ddl.len())
                .any(|window| window.eq_ignore_ascii_case(ddl.as_bytes()))
        })
}

impl PgConnection {
    fn client(&self) -> Result<&Object, SqlError> {
        self.client
            .as_ref()
            .ok_or_else(|| SqlError::Unavailable("connection lost".into()))
    }

    async fn run<T>(
        &self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SqlError> {
        self.pending.store(true, Ordering::Relaxed);
        let result = within(self.timeout, future).await;
        if result.is_ok() {
            self.pending.store(false, Ordering::Relaxed);
        }
        let result = result?.map_err(error);
        if let Err(failure) = &result
            && is_stale_plan(failure)
        {
            // Prepared for a table dropped and made again since (by another
            // server of a fleet): every statement is prepared again.
            self.pool.manager().statement_caches.clear();
        }
        result
    }

    /// An answer never read leaves the connection busy: close it, and
    /// cancel the statement it was running.
    fn settle<T>(&mut self, result: Result<T, SqlError>) -> Result<T, SqlError> {
        if *self.pending.get_mut() {
            self.abort();
        }
        result
    }

    /// True once the connection has used so many tables that it is better
    /// closed at the end of its transaction (see [`RECYCLE_AFTER_CLEARS`]).
    pub fn worn_out(&self) -> bool {
        self.cache_clears.load(Ordering::Relaxed) >= RECYCLE_AFTER_CLEARS
    }

    /// Closes the connection instead of giving it back to the pool (its
    /// state is unknown: an open transaction, an unanswered statement).
    pub fn discard(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }

    /// Cancels the statement the connection runs, then discards it.
    fn abort(&mut self) {
        if let Some(client) = &self.client {
            self.canceller.cancel(client);
        }
        self.discard();
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        if *self.pending.get_mut() {
            self.abort();
        }
    }
}

/// Parameters as tokio-postgres takes them.
fn bind(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as _).collect()
}

/// A row's values, as the plugin receives them.
fn row_values(row: &tokio_postgres::Row) -> Result<Vec<Value>, SqlError> {
    (0..row.len())
        .map(|i| {
            row.try_get::<_, Column>(i)
                .map(|Column(value)| value)
                .map_err(|e| {
                    SqlError::Failed(format!(
                        "column {} of type {}: {e}",
                        row.columns()[i].name(),
                        row.columns()[i].type_()
                    ))
                })
        })
        .collect()
}

/// The most statements one connection keeps prepared. The SQL plugin
/// prepares its own for each dataset (a table each), which hold about
/// 28 KB of the database session's memory per dataset read, written and
/// browsed (`tests/postgres.rs`
/// `a_connection_serving_many_datasets_keeps_its_prepared_plans_bounded`):
/// a connection that had served ten thousand datasets held some 280 MB
/// of plans on the database for as long as it lived, and each reader as
/// many. Past the bound the connection's statements are let go (the
/// database frees them) and prepared again as they are used.
pub const MAX_PREPARED: usize = 512;

/// After how many lettings-go of its statements a connection is closed
/// (between transactions) and another opened. PostgreSQL also keeps, for
/// the life of a session, a description of every table it used (8 to
/// 15 KB each), which no statement frees: a connection serving a hundred
/// thousand datasets over its life would hold a gigabyte of the
/// database's memory, and every reader as much (`tests/postgres.rs`
/// `a_connection_that_used_many_tables_is_replaced_between_transactions`).
/// Eight lettings-go are some 4,000 statements, a few hundred datasets: a
/// new connection (a few milliseconds) per few hundred datasets a
/// connection moves on to.
pub const RECYCLE_AFTER_CLEARS: u32 = 8;

/// `statement` prepared on `client`, from its cache while the cache is
/// within [`MAX_PREPARED`]; `clears` counts the times it was let go.
async fn prepared(
    client: &Object,
    clears: &AtomicU32,
    statement: &str,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= MAX_PREPARED {
        client.statement_cache.clear();
        clears.fetch_add(1, Ordering::Relaxed);
    }
    client.prepare_cached(statement).await
}

impl PgConnection {
    /// A statement that returns rows, at most `result_bytes` of them:
    /// they are read as the server sends them (the connection holds one
    /// message at a time), so that a query returning more than the
    /// plugin's memory may hold stops there instead of filling vsamrd's.
    pub async fn query(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        let client = self.client()?;
        let clears = &self.cache_clears;
        let result_bytes = self.result_bytes;
        let rows = self
            .run(async move {
                let prepared = prepared(client, clears, statement).await?;
                let stream = client.query_raw(&prepared, bind(params)).await?;
                let mut stream = std::pin::pin!(stream);
                let mut out = Vec::new();
                let mut bytes = 0u64;
                while let Some(row) = stream.next().await {
                    let row = row?;
                    let values = match row_values(&row) {
                        Ok(values) => values,
                        Err(failure) => return Ok(Err(failure)),
                    };
                    bytes += values.iter().map(super::value_bytes).sum::<u64>();
                    if bytes > result_bytes {
                        return Ok(Err(super::too_many_bytes(out.len() + 1, result_bytes)));
                    }
                    out.push(values);
                }
                Ok(Ok(out))
            })
            .await;
        match self.settle(rows)? {
            Ok(rows) => Ok(rows),
            Err(failure) => {
                // Rows were left unread: the statement is cancelled and the
                // connection not given back.
                self.abort();
                Err(failure)
            }
        }
    }

    /// A statement that changes rows.
    pub async fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let client = self.client()?;
        let clears = &self.cache_clears;
        let changed = self
            .run(async move {
                let prepared = prepared(client, clears, statement).await?;
                client.execute(&prepared, &bind(params)).await
            })
            .await;
        self.settle(changed)
    }

    /// Parameterless statements.
    pub async fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        let client = self.client()?;
        let done = self.run(client.batch_execute(statements)).await;
        if changes_tables(statements) {
            self.pool.manager().statement_caches.clear();
        }
        self.settle(done)
    }

    /// Rolls back whatever is open; false (and the connection closed) if
    /// that fails.
    pub async fn abandon(&mut self) -> bool {
        if self.client.is_some() && self.batch("ROLLBACK").await.is_ok() {
            return true;
        }
        // Never give a connection in an unknown state back to the pool.
        self.discard();
        false
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Everything but binary data travels in text form, which the server
        // converts to the column's type (integer, numeric, text, ...).
        match self {
            Value::Null => return Ok(IsNull::Yes),
            Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Real(r) => out.extend_from_slice(r.to_string().as_bytes()),
            Value::Text(t) | Value::Numeric(t) => out.extend_from_slice(t.as_bytes()),
            Value::Blob(b) => out.extend_from_slice(b),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        match self {
            Value::Blob(_) if *ty == Type::BYTEA => Format::Binary,
            _ => Format::Text,
        }
    }

    to_sql_checked!();
}

/// A column value of any supported type.
struct Column(Value);

impl<'a> FromSql<'a> for Column {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Column(match *ty {
            Type::BOOL => Value::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Value::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Value::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => Value::Numeric(numeric_text(raw)?),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(String::from_sql(ty, raw)?),
        }))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Column(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
                | Type::BYTEA
        ) || <String as FromSql>::accepts(ty)
    }
}

/// The text of a NUMERIC in PostgreSQL's binary form: digit count, weight
/// (of the first base-10000 digit), sign, display scale, digits.
fn numeric_text(raw: &[u8]) -> Result<String, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated NUMERIC".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err("bad NUMERIC sign".into()),
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, _>>()?;
    let digit = |position: i32| -> u16 {
        // position: power of 10000, weight down to negative.
        let index = weight - position;
        if index >= 0 && (index as usize) < digits.len() {
            digits[index as usize]
        } else {
            0
        }
    };
    let mut integer = String::new();
    for position in (0..=weight.max(0)).rev() {
        if integer.is_empty() {
            if digit(position) != 0 || position == 0 {
                integer = digit(position).to_string();
            }
        } else {
            integer.push_str(&format!("{:04}", digit(position)));
        }
    }
    let mut fraction = String::new();
    let mut position = -1;
    while fraction.len() < dscale {
        fraction.push_str(&format!("{:04}", digit(position)));
        position -= 1;
    }
    fraction.truncate(dscale);
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    text.push_str(&integer);
    if dscale > 0 {
        text.push('.');
        text.push_str(&fraction);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::numeric_text;

    fn raw(words: &[u16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn numeric_binary_form_becomes_exact_text() {
        // 12345.678: digits 1, 2345, 6780; weight 1; scale 3.
        assert_eq!(
            numeric_text(&raw(&[3, 1, 0, 3, 1, 2345, 6780])).unwrap(),
            "12345.678"
        );
        assert_eq!(
            numeric_text(&raw(&[1, 0xFFFF, 0x4000, 2, 500])).unwrap(),
            "-0.05"
        );
        assert_eq!(numeric_text(&raw(&[0, 0, 0, 2])).unwrap(), "0.00");
        assert_eq!(numeric_text(&raw(&[1, 2, 0, 0, 7])).unwrap(), "700000000");
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn table_changes_and_stale_plans_are_told_apart() {
        use super::{changes_tables, is_stale_plan};
        use crate::runtime::bindings::wit_sql::SqlError;
        assert!(changes_tables("create table t (a int)"));
        assert!(changes_tables("BEGIN; DROP TABLE IF EXISTS t; COMMIT"));
        assert!(changes_tables("Alter Table x rename to y"));
        assert!(!changes_tables("BEGIN"));
        assert!(!changes_tables("COMMIT"));
        assert!(!changes_tables("INSERT INTO create_table_log VALUES (1)"));
        let failed = |m: &str| SqlError::Failed(m.to_string());
        assert!(is_stale_plan(&failed(
            "0A000: cached plan must not change result type"
        )));
        assert!(is_stale_plan(&failed(
            "42804: column \"name\" is of type numeric but expression is of type character varying"
        )));
        assert!(!is_stale_plan(&failed("23505: duplicate key value")));
        assert!(!is_stale_plan(&SqlError::Unavailable(
            "0A000: cached plan".into()
        )));
    }
}
