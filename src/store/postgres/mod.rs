//! The PostgreSQL engine, for several `sealpost serve` instances on one shared database.
//!
//! What stands here so far: the schema (`migrations/postgres/`, one squashed starting schema,
//! not SQLite's rebuild history) and opening a database with it. sqlx's migrator holds a
//! PostgreSQL advisory lock while it runs, so instances that start together migrate once; a
//! schema newer than this build is refused. The store's reads and writes follow (the
//! configuration still refuses a `postgres://` URL until they do, so nobody runs on half an
//! engine).
//!
//! TLS is chosen in the URL, as libpq does: `sslmode=disable|prefer|require|verify-ca|
//! verify-full` and `sslrootcert=/path/to/ca.pem` for a CA of the site's own.
// Until the store's operations are ported only the tests open a PostgreSQL database; the
// expectation fails the build once the engine is wired in, so this line goes with it.
#![cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "opened only by its tests until the engine is wired in"
    )
)]

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;

mod sql;
#[cfg(test)]
mod tests;

/// The schema's migrations, from `migrations/postgres/`.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long opening waits for a connection before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the database `url` names and brings its schema up to date (under the
/// migrator's advisory lock).
pub(crate) async fn open_pool(url: &str) -> Result<PgPool, StoreError> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("database.url: {e}")))?
        .application_name("sealpost");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
