//! [`Sql`] on PostgreSQL: the writes run synchronously, as on SQLite, on a thread of the
//! engine's writer that owns its connection and a runtime of its own to drive sqlx with; each
//! statement is prepared once per connection (sqlx caches it by its text).

use std::cell::RefCell;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Column, PgConnection, Postgres, Row as _, TypeInfo};

use crate::store::StoreError;
use crate::store::sql::{Cell, Engine, Row, Sql, Value, highest_placeholder};

/// A connection in a transaction, and the runtime that drives it.
pub(crate) struct PgSql<'a> {
    runtime: &'a tokio::runtime::Runtime,
    conn: RefCell<&'a mut PgConnection>,
}

impl<'a> PgSql<'a> {
    /// Statements on `conn`, each run to completion on `runtime` (a runtime this thread owns:
    /// never called from inside another).
    pub(crate) fn new(runtime: &'a tokio::runtime::Runtime, conn: &'a mut PgConnection) -> Self {
        PgSql {
            runtime,
            conn: RefCell::new(conn),
        }
    }
}

impl Sql for PgSql<'_> {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn exec(&self, sql: &str, args: &[Value<'_>]) -> Result<u64, StoreError> {
        let mut conn = self.conn.borrow_mut();
        let query = bind(sql, args)?;
        Ok(self
            .runtime
            .block_on(query.execute(&mut **conn))?
            .rows_affected())
    }

    fn rows(&self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut conn = self.conn.borrow_mut();
        let query = bind(sql, args)?;
        self.runtime
            .block_on(query.fetch_all(&mut **conn))?
            .iter()
            .map(row)
            .collect()
    }
}

/// Binds each value with its type, NULLs included (PostgreSQL is told every parameter's type).
fn bind<'q>(
    sql: &'q str,
    args: &[Value<'q>],
) -> Result<Query<'q, Postgres, PgArguments>, StoreError> {
    let wanted = highest_placeholder(sql);
    if wanted > args.len() {
        return Err(StoreError::Corrupt(format!("no value for ${wanted}")));
    }
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in args {
        query = match *value {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Bytes(v) => query.bind(v),
        };
    }
    Ok(query)
}

/// A returned row in the engines' shared terms: integers of every width and booleans as
/// integers (SQLite has no booleans: `EXISTS (…)` is 0 or 1 there), text, bytes.
fn row(r: &PgRow) -> Result<Row, StoreError> {
    (0..r.columns().len())
        .map(|i| {
            let kind = r.column(i).type_info().name().to_owned();
            Ok(match kind.as_str() {
                "INT8" => r
                    .try_get::<Option<i64>, _>(i)?
                    .map_or(Cell::Null, Cell::Int),
                "INT4" => r
                    .try_get::<Option<i32>, _>(i)?
                    .map_or(Cell::Null, |v| Cell::Int(v.into())),
                "INT2" => r
                    .try_get::<Option<i16>, _>(i)?
                    .map_or(Cell::Null, |v| Cell::Int(v.into())),
                "BOOL" => r
                    .try_get::<Option<bool>, _>(i)?
                    .map_or(Cell::Null, |v| Cell::Int(v.into())),
                "TEXT" | "VARCHAR" | "NAME" | "BPCHAR" => r
                    .try_get::<Option<String>, _>(i)?
                    .map_or(Cell::Null, Cell::Text),
                "BYTEA" => r
                    .try_get::<Option<Vec<u8>>, _>(i)?
                    .map_or(Cell::Null, Cell::Bytes),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "column {i} has a type the store does not use: {other}"
                    )));
                }
            })
        })
        .collect::<Result<Vec<Cell>, StoreError>>()
        .map(Row)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;
    use crate::store::sql::args;
    use crate::store::testing::postgres::fresh_database;

    /// The checks SQLite's adapter passes ([`crate::store::sql::check_adapter`]), on a real
    /// server.
    #[test]
    fn the_same_statements_mean_the_same_on_postgresql() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut conn = runtime.block_on(async {
            let url = fresh_database().await;
            PgConnection::connect(&url).await.unwrap()
        });
        let pg = PgSql::new(&runtime, &mut conn);
        pg.exec("CREATE TABLE t (a BIGINT, b TEXT, c BYTEA)", args![])
            .unwrap();
        crate::store::sql::check_adapter(&pg);
        // PostgreSQL is told each value's type: text for a number is refused, not converted.
        assert!(matches!(
            pg.exec("INSERT INTO t (a) VALUES ($1)", args!["not a number"]),
            Err(StoreError::Corrupt(_) | StoreError::Invalid(_))
        ));
    }
}
