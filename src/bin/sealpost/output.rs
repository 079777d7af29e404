//! What commands print: one JSON object per line on stdout. A resource the API also serves
//! is printed as the API's own type (`sealpost::http::api`), so a script sees one shape per
//! resource whichever door it reads through.

use std::io::Write;

use serde::Serialize;

/// Prints one JSON value as a line.
pub(crate) fn print_json(value: serde_json::Value) -> anyhow::Result<()> {
    print(&value)
}

/// Prints one serializable value (an API resource) as a line.
pub(crate) fn print<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
