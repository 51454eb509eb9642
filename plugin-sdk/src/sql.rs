//! The SQL database a backend is granted (`database = ...` in the host
//! configuration), for plugins that keep records in SQL tables.
//!
//! The host owns the connection: the plugin sends statements and parameters
//! and never learns where the database is or how to log in. Compiled
//! natively (tests, in-process baselines) every call fails with
//! [`SqlError::NotGranted`].

pub use crate::bindings::vsam::backend::sql::{Dialect, SqlError, Value};

/// Rows of a query: one `Vec<Value>` per row, columns in select order.
pub type Rows = Vec<Vec<Value>>;

#[cfg(target_arch = "wasm32")]
use crate::bindings::vsam::backend::sql as host;

/// The dialect of the granted database.
pub fn dialect() -> Result<Dialect, SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::current_dialect();
    #[cfg(not(target_arch = "wasm32"))]
    Err(SqlError::NotGranted)
}

/// Runs a statement with parameters and returns its rows.
pub fn query(statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::query(statement, params);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (statement, params);
        Err(SqlError::NotGranted)
    }
}

/// Runs a statement with parameters; returns the number of rows changed.
pub fn execute(statement: &str, params: &[Value]) -> Result<u64, SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::execute(statement, params);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (statement, params);
        Err(SqlError::NotGranted)
    }
}

/// Runs parameterless statements separated by `;` (DDL).
pub fn batch(statements: &str) -> Result<(), SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::batch(statements);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = statements;
        Err(SqlError::NotGranted)
    }
}

/// Starts a transaction.
pub fn begin() -> Result<(), SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::begin();
    #[cfg(not(target_arch = "wasm32"))]
    Err(SqlError::NotGranted)
}

/// Commits the open transaction.
pub fn commit() -> Result<(), SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::commit();
    #[cfg(not(target_arch = "wasm32"))]
    Err(SqlError::NotGranted)
}

/// Abandons the open transaction, if any.
pub fn rollback() -> Result<(), SqlError> {
    #[cfg(target_arch = "wasm32")]
    return host::rollback();
    #[cfg(not(target_arch = "wasm32"))]
    Err(SqlError::NotGranted)
}
