//! The spool transport: one complete `.eml` file per notification in a directory.
//!
//! Files are written to a hidden temporary name, synced, and renamed into place, so a reader
//! (a test, or an MTA's pickup daemon) never sees half a message. The file is named after the
//! notification, so delivering the same notification twice replaces rather than duplicates it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{DeliveryError, TransportError};
use crate::outbound::compose::Notification;

pub struct SpoolTransport {
    dir: PathBuf,
}

impl SpoolTransport {
    pub fn new(dir: &Path) -> Result<SpoolTransport, TransportError> {
        crate::files::ensure_private_dir(dir).map_err(|source| TransportError::Spool {
            path: dir.to_owned(),
            source,
        })?;
        Ok(SpoolTransport {
            dir: dir.to_owned(),
        })
    }

    pub async fn deliver(&mut self, n: &Notification) -> Result<String, DeliveryError> {
        let dir = self.dir.clone();
        let name = format!("{}.eml", n.id);
        let bytes = n.bytes.clone();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
            .await
            .map_err(|e| DeliveryError::temporary(format!("spool writer failed: {e}")))?
            .map_err(|e| DeliveryError::temporary(format!("cannot write to the spool: {e}")))?;
        Ok(format!("spooled as {}.eml", n.id))
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}
