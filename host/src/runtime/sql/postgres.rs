//! PostgreSQL connections, each owned and driven by the thread of the
//! plugin instance that uses it (tokio-postgres on a current-thread runtime
//! of its own), so a statement costs no hand-off between threads.

use super::Connection;
use super::postgres_tls::{self, TlsRequest};
use crate::runtime::wasm::wit_sql::{Dialect, SqlError, Value};
use bytes::BytesMut;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A backend's PostgreSQL server: where it is and how to reach it.
pub struct PgGrant {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    timeout: Duration,
}

impl PgGrant {
    /// Reads the URL; no connection is made until a session needs one.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let (text, tls) = postgres_tls::parse(url).map_err(anyhow::Error::msg)?;
        let mut config: tokio_postgres::Config = text.parse()?;
        config.connect_timeout(timeout);
        config.application_name("vsamrd");
        let tls = match &tls {
            TlsRequest::Off => {
                tracing::info!(
                    "PostgreSQL connections without TLS (add sslmode=verify-full to the URL to encrypt them)"
                );
                None
            }
            TlsRequest::Prefer(roots) | TlsRequest::Require(roots) => {
                let connector = postgres_tls::connector(roots).map_err(anyhow::Error::msg)?;
                tracing::info!(
                    ?roots,
                    "PostgreSQL connections over TLS, server certificate verified"
                );
                Some(connector)
            }
        };
        Ok(Self {
            config,
            tls,
            timeout,
        })
    }

    /// Opens a connection for one session, driven by the calling thread.
    pub fn connect(&self) -> Result<PgConnection, SqlError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SqlError::Unavailable(format!("cannot start a PostgreSQL driver: {e}")))?;
        let connected = block(&runtime, self.timeout, async {
            // The connection task runs whenever this thread waits on a call.
            let client = match &self.tls {
                None => {
                    let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                    tokio::spawn(connection);
                    client
                }
                Some(tls) => {
                    let (client, connection) = self.config.connect(tls.clone()).await?;
                    tokio::spawn(connection);
                    client
                }
            };
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        let client = connected.map_err(|e| {
            SqlError::Unavailable(format!("cannot connect to PostgreSQL: {}", causes(&e)))
        })?;
        Ok(PgConnection {
            client: Some(client),
            statements: HashMap::new(),
            runtime,
            timeout: self.timeout,
        })
    }
}

/// An error and its causes, `: `-separated (a TLS failure says which
/// certificate check failed only in its causes).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Runs a future to completion on the connection's runtime, within the
/// call limit.
fn block<F: Future>(
    runtime: &Runtime,
    timeout: Duration,
    future: F,
) -> Result<F::Output, SqlError> {
    runtime
        .block_on(async { tokio::time::timeout(timeout, future).await })
        .map_err(|_| {
            SqlError::Unavailable(format!(
                "PostgreSQL did not answer within {} ms",
                timeout.as_millis()
            ))
        })
}

/// One connection, its prepared statements, and the runtime that drives it.
pub struct PgConnection {
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    runtime: Runtime,
    timeout: Duration,
}

fn error(e: tokio_postgres::Error) -> SqlError {
    let message = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => causes(&e),
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

impl PgConnection {
    fn client(&self) -> Result<&Client, SqlError> {
        self.client
            .as_ref()
            .ok_or_else(|| SqlError::Unavailable("connection lost".into()))
    }

    fn run<T>(
        &self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SqlError> {
        block(&self.runtime, self.timeout, future)?.map_err(error)
    }

    /// The statement prepared for `text`, prepared once per connection.
    fn prepared(&mut self, text: &str) -> Result<Statement, SqlError> {
        if let Some(statement) = self.statements.get(text) {
            return Ok(statement.clone());
        }
        let client = self.client()?;
        let statement = self.run(client.prepare(text))?;
        self.statements.insert(text.to_string(), statement.clone());
        Ok(statement)
    }
}

/// Parameters as tokio-postgres takes them.
fn bind(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as _).collect()
}

impl Connection for PgConnection {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let prepared = self.prepared(statement)?;
        let rows = self.run(self.client()?.query(&prepared, &bind(params)))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                let Column(value) = row.try_get(i).map_err(|e| {
                    SqlError::Failed(format!(
                        "column {} of type {}: {e}",
                        row.columns()[i].name(),
                        row.columns()[i].type_()
                    ))
                })?;
                values.push(value);
            }
            out.push(values);
        }
        Ok(out)
    }

    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        let prepared = self.prepared(statement)?;
        self.run(self.client()?.execute(&prepared, &bind(params)))
    }

    fn batch(&mut self, statements: &str) -> Result<(), SqlError> {
        self.run(self.client()?.batch_execute(statements))
    }

    fn abandon(&mut self) -> bool {
        if let Ok(client) = self.client()
            && self.run(client.batch_execute("ROLLBACK")).is_ok()
        {
            return true;
        }
        // A connection in an unknown state is closed, never reused.
        self.client = None;
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
}
