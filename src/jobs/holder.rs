//! Who holds claims and leases: this run of this instance of Sealpost.
//!
//! An instance is a data directory. Its id is made on first start and kept there (the file
//! `instance`), and a running daemon holds an exclusive lock on that file, so at most one
//! process is ever a given instance. A holder id is `<instance>/<run>`: at start, whatever an
//! earlier run of the same instance still held is known to be dead (the lock proves that run
//! is gone) and is taken back at once, while the claims and leases of *other* instances — on
//! a shared database — are left to run out.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why this process cannot be the instance of a data directory.
#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("another Sealpost is running with the data directory {0} (it holds {0}/instance)")]
    Running(PathBuf),
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// This run of this instance. Cheap to clone; the lock lasts while any clone does.
#[derive(Debug, Clone)]
pub struct Holder {
    instance: String,
    id: String,
    _lock: Option<Arc<File>>,
}

/// The file in the data directory that names the instance.
const INSTANCE_FILE: &str = "instance";

fn random_hex<const N: usize>() -> String {
    crate::crypto::random_bytes::<N>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Holder {
    /// Becomes the instance of `data_dir` (reading its id, or making one on first start) and
    /// locks it for as long as this holder, or a clone, lives.
    pub fn of_data_dir(data_dir: &Path) -> Result<Holder, HolderError> {
        let path = data_dir.join(INSTANCE_FILE);
        let io = |source| HolderError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(HolderError::Running(data_dir.to_owned()));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io)?;
        let text = text.trim();
        let instance = if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            text.to_owned()
        } else {
            let made = random_hex::<8>();
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{made}").map_err(io)?;
            file.sync_all().map_err(io)?;
            made
        };
        Ok(Holder::new(instance, Some(Arc::new(file))))
    }

    /// An instance of its own that no data directory names (tests, and tools that claim
    /// nothing another run could have left).
    pub fn ephemeral() -> Holder {
        Holder::new(random_hex::<8>(), None)
    }

    fn new(instance: String, lock: Option<Arc<File>>) -> Holder {
        let id = format!("{instance}/{}-{}", std::process::id(), random_hex::<4>());
        Holder {
            instance,
            id,
            _lock: lock,
        }
    }

    /// The id claims and leases are made with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the ids of every run of this instance start with.
    pub fn instance_prefix(&self) -> String {
        format!("{}/", self.instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_is_the_instance_and_a_restart_is_the_same_instance() {
        let dir = tempfile::tempdir().unwrap();
        let first = Holder::of_data_dir(dir.path()).unwrap();
        assert!(matches!(
            Holder::of_data_dir(dir.path()),
            Err(HolderError::Running(_))
        ));
        let prefix = first.instance_prefix();
        assert!(first.id().starts_with(&prefix));
        drop(first);
        let again = Holder::of_data_dir(dir.path()).unwrap();
        assert_eq!(again.instance_prefix(), prefix, "the same instance");
        assert!(again.id().starts_with(&prefix));
        assert_ne!(Holder::ephemeral().instance_prefix(), prefix);
    }
}
