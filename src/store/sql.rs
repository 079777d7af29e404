//! The statements the store's writes run, in words every engine understands: a statement's
//! text with `$1`, `$2`… placeholders (the same text on SQLite and PostgreSQL), its values
//! ([`Value`]), and the rows it returns ([`Row`]), behind one small interface ([`Sql`]) that
//! each engine implements on the transaction its writer holds.
//!
//! The writes are written once against this interface, so an operation — a post, a filing, a
//! claim — decides alike on every engine, and a change to one is a change to all. Where the
//! engines must differ (a claim's `FOR UPDATE SKIP LOCKED`), [`Sql::engine`] says which one
//! runs and the write picks its statement.
//!
//! Values are typed even when absent ([`Value::Int`] of `None` is a NULL integer): PostgreSQL
//! is told each parameter's type, and a bare NULL would leave it to guess.

use super::StoreError;

/// Which engine runs a statement, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    #[cfg(feature = "postgres")]
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "run only by its tests until the engine is wired in"
        )
    )]
    Postgres,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Bytes(Option<&'a [u8]>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl From<Option<u32>> for Value<'_> {
    fn from(v: Option<u32>) -> Self {
        Value::Int(v.map(i64::from))
    }
}

impl From<u16> for Value<'_> {
    fn from(v: u16) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl From<Option<u16>> for Value<'_> {
    fn from(v: Option<u16>) -> Self {
        Value::Int(v.map(i64::from))
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Value::Text(v.as_deref())
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Bytes(Some(v))
    }
}

impl<'a> From<&'a Vec<u8>> for Value<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Value::Bytes(Some(v))
    }
}

impl<'a> From<Option<&'a [u8]>> for Value<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        Value::Bytes(v)
    }
}

impl<'a> From<&'a Option<Vec<u8>>> for Value<'a> {
    fn from(v: &'a Option<Vec<u8>>) -> Self {
        Value::Bytes(v.as_deref())
    }
}

/// The values of a statement, in placeholder order: `args![a, b]` is `&[Value::from(a), …]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($v)),*][..]
    };
}
pub(crate) use args;

/// One column of a returned row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// A returned row, read by column position with the type the statement promises; a column
/// of another type is a defect in the statement, reported as corrupt data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("a statement returned no column {i}")))
    }

    fn mismatch(&self, i: usize, wanted: &str) -> StoreError {
        StoreError::Corrupt(format!(
            "column {i} is not {wanted}: {:?}",
            self.0.get(i).map(Cell::kind)
        ))
    }

    pub(crate) fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| self.mismatch(i, "an integer"))
    }

    pub(crate) fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            _ => Err(self.mismatch(i, "an integer")),
        }
    }

    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or_else(|| self.mismatch(i, "text"))
    }

    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.mismatch(i, "text")),
        }
    }

    pub(crate) fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_bytes(i)?.ok_or_else(|| self.mismatch(i, "bytes"))
    }

    pub(crate) fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Bytes(v) => Ok(Some(v.clone())),
            _ => Err(self.mismatch(i, "bytes")),
        }
    }
}

impl Cell {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Int(_) => "integer",
            Cell::Text(_) => "text",
            Cell::Bytes(_) => "bytes",
        }
    }
}

/// What the writes run their statements on: the engine's transaction (each operation inside
/// a savepoint of the writer's batch).
pub(crate) trait Sql {
    /// Which engine this is.
    fn engine(&self) -> Engine;

    /// Runs a statement; how many rows it changed.
    fn exec(&self, sql: &str, args: &[Value<'_>]) -> Result<u64, StoreError>;

    /// Every row a statement returns.
    fn rows(&self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>, StoreError>;

    /// The first row a statement returns, if any.
    fn row(&self, sql: &str, args: &[Value<'_>]) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// The integer in the first column of the first row, if there is a row (an id a statement
    /// returns, a count).
    fn int(&self, sql: &str, args: &[Value<'_>]) -> Result<Option<i64>, StoreError> {
        self.row(sql, args)?.map(|r| r.int(0)).transpose()
    }

    /// The integers in the first column of every row (the ids an `UPDATE … RETURNING` touched).
    fn ints(&self, sql: &str, args: &[Value<'_>]) -> Result<Vec<i64>, StoreError> {
        self.rows(sql, args)?.iter().map(|r| r.int(0)).collect()
    }

    /// Whether a statement returns any row.
    fn exists(&self, sql: &str, args: &[Value<'_>]) -> Result<bool, StoreError> {
        Ok(self.row(sql, args)?.is_some())
    }

    /// What ends a `SELECT` whose rows the operation goes on to change: `FOR UPDATE` where
    /// the engine locks rows (PostgreSQL, several writers), nothing where the writer holds
    /// the whole database from its first statement (SQLite).
    fn for_update(&self) -> &'static str {
        match self.engine() {
            Engine::Sqlite => "",
            #[cfg(feature = "postgres")]
            Engine::Postgres => " FOR UPDATE",
        }
    }
}

/// The number a placeholder's name gives (`$3` → 3), as both engines' adapters read it.
pub(crate) fn placeholder_number(name: &str) -> Option<usize> {
    name.strip_prefix('$')?.parse().ok().filter(|n| *n > 0)
}

/// What every engine's adapter must mean by the same statements, checked on a table
/// `t (a integer, b text, c bytes)` the caller made empty: placeholders bound by number
/// whatever their order, a value used twice, typed NULLs, counts and booleans read as
/// integers.
/// The highest placeholder number in a statement's text (`$3` in "… $1 … $3"), for an adapter
/// whose driver would report a missing value as a protocol failure rather than a defect.
pub(crate) fn highest_placeholder(sql: &str) -> usize {
    sql.split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            rest[..digits].parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) fn check_adapter(c: &dyn Sql) {
    let n = c
        .exec(
            "INSERT INTO t (b, a, c) VALUES ($2, $1, $3)",
            args![7i64, "seven", &vec![7u8]],
        )
        .unwrap();
    assert_eq!(n, 1);
    let row = c
        .row(
            "SELECT a, b, c FROM t WHERE a = $1 AND b = $2",
            args![7i64, "seven"],
        )
        .unwrap()
        .unwrap();
    assert_eq!(row.int(0).unwrap(), 7);
    assert_eq!(row.text(1).unwrap(), "seven");
    assert_eq!(row.bytes(2).unwrap(), vec![7]);
    assert_eq!(c.int("SELECT $1 + a FROM t", args![1i64]).unwrap(), Some(8));
    let none: Option<i64> = None;
    c.exec("INSERT INTO t (a) VALUES ($1)", args![none])
        .unwrap();
    assert!(
        c.exists("SELECT 1 FROM t WHERE a IS NULL", args![])
            .unwrap()
    );
    let counts = c
        .row(
            "SELECT COUNT(*), EXISTS (SELECT 1 FROM t WHERE a IS NULL), a IS NULL
             FROM t WHERE a = 7 GROUP BY a",
            args![],
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            counts.int(0).unwrap(),
            counts.int(1).unwrap(),
            counts.int(2).unwrap()
        ),
        (1, 1, 0)
    );
    assert_eq!(
        c.ints("SELECT a FROM t WHERE a IS NOT NULL", args![])
            .unwrap(),
        [7]
    );
    assert!(matches!(
        c.exec("INSERT INTO t (a, b) VALUES ($1, $2)", args![1i64]),
        Err(StoreError::Corrupt(_))
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_by_position_and_type() {
        let row = Row(vec![
            Cell::Int(7),
            Cell::Null,
            Cell::Text("a".into()),
            Cell::Bytes(vec![1]),
        ]);
        assert_eq!(row.int(0).unwrap(), 7);
        assert_eq!(row.opt_int(1).unwrap(), None);
        assert_eq!(row.opt_text(1).unwrap(), None);
        assert_eq!(row.text(2).unwrap(), "a");
        assert_eq!(row.bytes(3).unwrap(), vec![1]);
        assert!(
            matches!(row.int(1), Err(StoreError::Corrupt(_))),
            "a NULL is no integer"
        );
        assert!(matches!(row.int(2), Err(StoreError::Corrupt(_))));
        assert!(matches!(row.text(4), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn placeholders_by_number() {
        assert_eq!(placeholder_number("$1"), Some(1));
        assert_eq!(placeholder_number("$12"), Some(12));
        assert_eq!(placeholder_number("$0"), None);
        assert_eq!(highest_placeholder("SELECT $2, $10 + $1"), 10);
        assert_eq!(highest_placeholder("SELECT 1"), 0);
        assert_eq!(placeholder_number("?1"), None);
        assert_eq!(placeholder_number(":name"), None);
    }

    #[test]
    fn values_keep_their_type_when_absent() {
        let none: Option<i64> = None;
        let bytes = Some(vec![1u8]);
        let v: &[Value] = args![1i64, none, "x", &bytes, true];
        assert_eq!(
            v,
            [
                Value::Int(Some(1)),
                Value::Int(None),
                Value::Text(Some("x")),
                Value::Bytes(Some(&[1][..])),
                Value::Int(Some(1)),
            ]
        );
    }
}
