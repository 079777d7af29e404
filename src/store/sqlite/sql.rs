//! [`Sql`] on SQLite: the writer's connection (or the savepoint an operation runs in), with
//! statements prepared once and cached by their text.

use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection};

use crate::store::StoreError;
use crate::store::sql::{Cell, Engine, Row, Sql, Value, placeholder_number};

impl Sql for Connection {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn exec(&self, sql: &str, args: &[Value<'_>]) -> Result<u64, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        bind(&mut stmt, args)?;
        Ok(stmt.raw_execute()? as u64)
    }

    fn rows(&self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        bind(&mut stmt, args)?;
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let cells = (0..columns)
                .map(|i| cell(r.get_ref(i)?))
                .collect::<Result<Vec<Cell>, StoreError>>()?;
            out.push(Row(cells));
        }
        Ok(out)
    }
}

/// Binds `args` to the statement's placeholders by their numbers (`$2` takes the second
/// value, wherever it appears and however often), as PostgreSQL does: SQLite numbers named
/// placeholders in the order they first appear, which is not always theirs.
fn bind(stmt: &mut CachedStatement<'_>, args: &[Value<'_>]) -> Result<(), StoreError> {
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(placeholder_number)
            .ok_or_else(|| StoreError::Corrupt(format!("placeholder {i} is not written $n")))?;
        let value = args
            .get(n - 1)
            .ok_or_else(|| StoreError::Corrupt(format!("no value for ${n}")))?;
        match *value {
            Value::Int(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Text(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Bytes(v) => stmt.raw_bind_parameter(i, v)?,
        }
    }
    Ok(())
}

fn cell(v: ValueRef<'_>) -> Result<Cell, StoreError> {
    Ok(match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(v),
        ValueRef::Text(t) => Cell::Text(
            String::from_utf8(t.to_vec())
                .map_err(|_| StoreError::Corrupt("a text column is not UTF-8".into()))?,
        ),
        ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
        ValueRef::Real(_) => return Err(StoreError::Corrupt("a column holds a real".into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::args;

    #[test]
    fn the_statements_mean_what_they_mean_on_every_engine() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
            .unwrap();
        crate::store::sql::check_adapter(&c);
        // SQLite would number a bare `?` by position; the shared text never has one.
        assert!(matches!(
            c.exec("INSERT INTO t (a) VALUES (?)", args![1i64]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
