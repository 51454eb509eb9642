//! The `sql` interface a plugin imports, served by its instance's
//! [`SqlSession`]: the host functions of the SQL capability.

use super::SqlSession;
use crate::runtime::bindings::wit_sql::{self, Dialect, SqlError, Value};

impl wit_sql::Host for SqlSession {
    async fn current_dialect(&mut self) -> Result<Dialect, SqlError> {
        self.dialect().await
    }
    async fn query(
        &mut self,
        statement: String,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, SqlError> {
        SqlSession::query(self, &statement, &params).await
    }
    async fn execute(&mut self, statement: String, params: Vec<Value>) -> Result<u64, SqlError> {
        SqlSession::execute(self, &statement, &params).await
    }
    async fn batch(&mut self, statements: String) -> Result<(), SqlError> {
        SqlSession::batch(self, &statements).await
    }
    async fn begin(&mut self) -> Result<(), SqlError> {
        SqlSession::begin(self).await
    }
    async fn commit(&mut self) -> Result<(), SqlError> {
        SqlSession::commit(self).await
    }
    async fn rollback(&mut self) -> Result<(), SqlError> {
        SqlSession::rollback(self).await
    }
}
