//! Order numbers: one atomic bump of a counter per number, correct however many writers run
//! at once (on PostgreSQL the bump also locks the counter's row until the transaction ends,
//! so numbers are handed out in commit order within an instance and never twice).

use crate::store::StoreError;
use crate::store::sql::{Sql, args};

/// The next number of a global order (`threads`, `outbox`).
pub(crate) fn next_in(conn: &dyn Sql, counter: &str) -> Result<i64, StoreError> {
    conn.row(
        "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value",
        args![counter],
    )?
    .ok_or_else(|| StoreError::Corrupt(format!("no counter {counter}")))?
    .int(0)
}
