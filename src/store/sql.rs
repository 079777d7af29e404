//! Building statements whose number of values is known only at run time (`IN (…)` lists).
//!
//! Every dynamic SQL string built with these helpers holds `$n` placeholders only; the values
//! are always bound, never spliced into the text.

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Sqlite};

use super::StoreError;

/// `$from, $from+1, …` for `n` values.
pub(super) fn placeholder_list(n: usize, from: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn bind_args() -> SqliteArguments {
    SqliteArguments::default()
}

pub(super) fn bind<'q, T>(a: &mut SqliteArguments, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + 'q,
{
    a.add(value)
        .map_err(|e| StoreError::Invalid(format!("binding a value: {e}")))
}
